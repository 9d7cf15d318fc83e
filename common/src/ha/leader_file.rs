//! Leader retrieval without ZooKeeper, for YARN applications with more than
//! one attempt: the AM attempt that runs writes its [`LeaderInfo`] to a file
//! in the application's staging dir (`hdfs://` or a local path), and
//! TaskManagers read it every `interval`. YARN's own attempt order is the
//! election: the RM starts a new attempt only once the previous AM
//! container has exited.

use std::time::Duration;

use tokio::sync::watch;
use tracing::debug;

use super::LeaderInfo;

/// The leader file of an application whose staging dir is `staging_dir`.
pub fn location(staging_dir: &str) -> String {
    format!("{}/leader.json", staging_dir.trim_end_matches('/'))
}

/// The file's bytes, `None` when it does not exist (yet).
pub async fn read(location: &str) -> Result<Option<Vec<u8>>, String> {
    if crate::hdfs::is_hdfs(location) {
        let (client, path) = crate::hdfs::connect_async(location).await.map_err(|e| e.to_string())?;
        if !crate::hdfs::is_file(&client, &path).await.map_err(|e| e.to_string())? {
            return Ok(None);
        }
        return crate::hdfs::read_range(&client, &path, 0, 64 << 10)
            .await
            .map(|b| Some(b.to_vec()))
            .map_err(|e| e.to_string());
    }
    match tokio::fs::read(local(location)).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{location}: {e}")),
    }
}

/// Writes `info` to `location`, aside then renamed.
pub async fn write(location: &str, info: &LeaderInfo) -> Result<(), String> {
    let bytes = serde_json::to_vec(info).map_err(|e| e.to_string())?;
    if crate::hdfs::is_hdfs(location) {
        let (client, path) = crate::hdfs::connect_async(location).await.map_err(|e| e.to_string())?;
        let tmp = format!("{path}.tmp");
        let opts = hdfs_native::WriteOptions { overwrite: true, create_parent: true, ..Default::default() };
        let mut w = client.create(&tmp, opts).await.map_err(|e| format!("HDFS create {tmp}: {e}"))?;
        w.write_bytes(bytes.into()).await.map_err(|e| format!("HDFS write {tmp}: {e}"))?;
        w.close().await.map_err(|e| format!("HDFS close {tmp}: {e}"))?;
        return client.rename(&tmp, &path, true).await.map_err(|e| format!("HDFS rename into {path}: {e}"));
    }
    let path = local(location);
    let tmp = format!("{path}.tmp");
    tokio::fs::write(&tmp, &bytes).await.map_err(|e| format!("{tmp}: {e}"))?;
    tokio::fs::rename(&tmp, path).await.map_err(|e| format!("{location}: {e}"))
}

/// A local location, as a path or a `file://` URL (a staging dir on the local file system).
fn local(location: &str) -> &str {
    location.strip_prefix("file://").unwrap_or(location)
}

/// Follows the file: `tx` holds the leader it names (`None` while it is
/// missing or unreadable as a leader). A read that fails keeps the last value.
pub(super) async fn follow(location: String, interval: Duration, tx: watch::Sender<Option<LeaderInfo>>) {
    loop {
        match read(&location).await {
            Ok(bytes) => super::zookeeper::publish(&tx, bytes.and_then(|b| LeaderInfo::decode(&b))),
            Err(e) => debug!(error = %e, %location, "cannot read the leader file; trying again"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}
