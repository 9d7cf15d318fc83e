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

/// Writes `info` to `location`, aside then renamed.
pub async fn write(location: &str, info: &LeaderInfo) -> Result<(), super::storage::StorageError> {
    super::storage::write(location, serde_json::to_vec(info).unwrap_or_default()).await
}

/// Follows the file: `tx` holds the leader it names (`None` while it is
/// missing or unreadable as a leader). A read that fails keeps the last value.
pub(super) async fn follow(location: String, interval: Duration, tx: watch::Sender<Option<LeaderInfo>>) {
    loop {
        match super::storage::read(&location).await {
            Ok(bytes) => super::zookeeper::publish(&tx, bytes.and_then(|b| LeaderInfo::decode(&b))),
            Err(e) => debug!(error = %e, %location, "cannot read the leader file; trying again"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}
