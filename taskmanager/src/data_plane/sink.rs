//! The built-in text sink: writes its input, as it arrives, to this attempt's
//! staging file (see `common::output`); the JobMaster commits or aborts.
//!
//! Output order is deterministic: with several input channels, each channel
//! is written (concurrently, as it arrives) to a segment file of its own, and
//! the segments are joined in channel order (producer subtask order) at the
//! end. So a part file is byte-identical across runs whenever each upstream
//! subtask's output is, which lets a restarted job reproduce a clean run.
//! Joining uses `std::io::copy`, which Linux does in the kernel
//! (`copy_file_range`).

use std::path::{Path, PathBuf};

use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::input::InputStream;
use super::TaskError;

pub(crate) async fn run(staging: &Path, channels: Vec<InputStream>, label: &str) -> Result<(), TaskError> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        TaskError::Failed(format!(
            "{label}: {what} {path:?} failed: {e}; check that the sink directory is writable and has space"
        ))
    };
    if let Some(dir) = staging.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| fail("creating the directory of", staging, e))?;
    }
    // One channel (or none): straight into the staging file.
    let segments: Vec<PathBuf> = match channels.len() {
        0 | 1 => vec![staging.to_path_buf()],
        n => (0..n).map(|i| segment(staging, i)).collect(),
    };
    let mut channels = channels;
    if channels.is_empty() {
        channels.push(Box::pin(futures::stream::empty()));
    }
    let writes = channels.into_iter().zip(&segments).map(|(mut input, path)| async move {
        let mut file = tokio::fs::File::create(path).await.map_err(|e| fail("creating", path, e))?;
        // tokio's File writes through a blocking thread; a larger chunk means fewer hops.
        file.set_max_buf_size(4 << 20);
        while let Some(buf) = input.next().await {
            let buf = buf.map_err(|why| TaskError::Failed(format!("{label}: {why}")))?;
            file.write_all(&buf).await.map_err(|e| fail("writing", path, e))?;
        }
        file.flush().await.map_err(|e| fail("writing", path, e))?;
        Ok::<_, TaskError>(file)
    });
    let files = futures::future::try_join_all(writes).await?;
    drop(files);
    if segments.len() > 1 {
        let (staging, segments) = (staging.to_path_buf(), segments.clone());
        tokio::task::spawn_blocking(move || join(&staging, &segments))
            .await
            .map_err(|e| TaskError::Failed(format!("{label}: joining the output segments panicked: {e}")))?
            .map_err(|(path, e)| fail("joining segment", &path, e))?;
    }
    let file =
        tokio::fs::OpenOptions::new().write(true).open(staging).await.map_err(|e| fail("opening", staging, e))?;
    file.sync_all().await.map_err(|e| fail("syncing", staging, e))?;
    Ok(())
}

fn segment(staging: &Path, channel: usize) -> PathBuf {
    let mut name = staging.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".channel-{channel}"));
    staging.with_file_name(name)
}

/// Segment 0 becomes the staging file; the others are appended in order.
fn join(staging: &Path, segments: &[PathBuf]) -> Result<(), (PathBuf, std::io::Error)> {
    let Some((first, rest)) = segments.split_first() else { return Ok(()) };
    std::fs::rename(first, staging).map_err(|e| (first.clone(), e))?;
    let mut out = std::fs::OpenOptions::new().append(true).open(staging).map_err(|e| (staging.to_path_buf(), e))?;
    for seg in rest {
        let mut input = std::fs::File::open(seg).map_err(|e| (seg.clone(), e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| (seg.clone(), e))?;
        std::fs::remove_file(seg).map_err(|e| (seg.clone(), e))?;
    }
    Ok(())
}
