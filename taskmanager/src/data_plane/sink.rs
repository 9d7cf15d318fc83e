//! The built-in text sink: writes its input, as it arrives, to this attempt's
//! staging file (see `common::output`); the JobMaster commits or aborts.

use std::path::Path;

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::input::InputStream;
use super::TaskError;

pub(crate) async fn run(staging: &Path, mut inputs: InputStream, label: &str) -> Result<(), TaskError> {
    let fail = |what: &str, e: std::io::Error| {
        TaskError::Failed(format!(
            "{label}: {what} {staging:?} failed: {e}; check that the sink directory is writable and has space"
        ))
    };
    if let Some(dir) = staging.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| fail("creating the directory of", e))?;
    }
    let mut file = tokio::fs::File::create(staging).await.map_err(|e| fail("creating", e))?;
    // tokio's File writes through a blocking thread; a larger chunk means fewer hops.
    file.set_max_buf_size(4 << 20);
    while let Some(buf) = inputs.next().await {
        let buf = buf.map_err(|why| TaskError::Failed(format!("{label}: {why}")))?;
        file.write_all(&buf).await.map_err(|e| fail("writing", e))?;
    }
    file.flush().await.map_err(|e| fail("writing", e))?;
    file.sync_all().await.map_err(|e| fail("syncing", e))?;
    Ok(())
}
