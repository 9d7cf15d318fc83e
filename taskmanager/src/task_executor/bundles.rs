//! Bundles uploaded to a session live in the Dispatcher's blob store; a
//! TaskExecutor fetches each one once (by SHA-256), checks it, unpacks it
//! into its work dir and runs every task of that bundle from there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::jobspec::Bundle;
use common::protocol::BundleBlob;
use common::rpc::AppSecret;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

#[derive(Clone, Default)]
pub(crate) struct BundleCache {
    unpacked: Arc<Mutex<HashMap<String, PathBuf>>>,
}

impl BundleCache {
    /// The local directory of `blob`'s bundle, fetching it on first use.
    pub(crate) async fn get(&self, blob: &BundleBlob, work_dir: &Path, secret: &AppSecret) -> Result<PathBuf, String> {
        // Held across the download: two tasks of one bundle fetch it once.
        let mut unpacked = self.unpacked.lock().await;
        if let Some(dir) = unpacked.get(&blob.sha256) {
            return Ok(dir.clone());
        }
        let bytes = fetch(blob, secret).await?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != blob.sha256 {
            return Err(format!(
                "the bundle from {} is corrupt: its SHA-256 is {actual}, not {}",
                blob.url, blob.sha256
            ));
        }
        let root = work_dir.join("bundles").join(&blob.sha256);
        let archive = root.with_extension("tar.gz");
        let (archive2, root2, limits) = (archive.clone(), root.clone(), blob.limits);
        let dir = tokio::task::spawn_blocking(move || -> Result<PathBuf, String> {
            std::fs::create_dir_all(archive2.parent().unwrap_or(Path::new("."))).map_err(|e| e.to_string())?;
            std::fs::write(&archive2, &bytes).map_err(|e| format!("cannot write {}: {e}", archive2.display()))?;
            let _ = std::fs::remove_dir_all(&root2);
            Bundle::load(&archive2, &root2, &limits).map(|b| b.dir).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())??;
        tracing::info!(url = %blob.url, dir = %dir.display(), "fetched the job bundle");
        unpacked.insert(blob.sha256.clone(), dir.clone());
        Ok(dir)
    }
}

/// The blob's bytes, no more than the session's upload limit (its unpacked
/// size limit: a blob larger than that cannot be a bundle it took).
async fn fetch(blob: &BundleBlob, secret: &AppSecret) -> Result<Vec<u8>, String> {
    let http = common::http::client_builder()
        .map_err(|e| e.to_string())?
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = http
        .get(&blob.url)
        .bearer_auth(secret.to_hex())
        .send()
        .await
        .map_err(|e| format!("cannot fetch the bundle from {}: {e}", blob.url))?;
    if !resp.status().is_success() {
        return Err(format!("fetching the bundle from {} failed: {}", blob.url, resp.status()));
    }
    let limit = blob.limits.max_bytes;
    let too_large = || format!("the bundle at {} is larger than the session's limit of {limit} bytes", blob.url);
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) =
        resp.chunk().await.map_err(|e| format!("reading the bundle from {} failed: {e}", blob.url))?
    {
        if bytes.len() as u64 + chunk.len() as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
