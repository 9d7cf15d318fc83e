//! ZooKeeper through the `zookeeper-client` crate: the election (Curator's
//! LeaderLatch recipe), the leader's fenced writes, and leader retrieval.
//!
//! A leader steps down the moment its session is anything but connected
//! (Flink's default: a SUSPENDED connection loses leadership). The client sees
//! a silent server after two thirds of the session timeout, and the server
//! frees the latch only after the whole timeout: the old leader has stopped
//! before a new one can be elected.

use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};
use zookeeper_client as zk;

use super::{HaLocator, LeaderInfo};

#[derive(Debug, thiserror::Error)]
pub enum HaError {
    #[error("cannot reach ZooKeeper at {quorum}: {source}; check that the quorum is up and that --ha names it")]
    Connect {
        quorum: String,
        #[source]
        source: zk::Error,
    },
    #[error("ZooKeeper {action} {path} failed: {source}")]
    Op {
        action: &'static str,
        path: String,
        #[source]
        source: zk::Error,
    },
    #[error("the cluster {0} was stopped; a standby does not take over a stopped cluster")]
    Stopped(String),
}

fn op<'a>(action: &'static str, path: &'a str) -> impl FnOnce(zk::Error) -> HaError + 'a {
    move |source| HaError::Op { action, path: path.to_owned(), source }
}

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

/// One ZooKeeper session.
#[derive(Clone)]
pub struct ZooKeeper {
    client: zk::Client,
    locator: HaLocator,
}

impl ZooKeeper {
    pub async fn connect(locator: &HaLocator) -> Result<Self, HaError> {
        let client = zk::Client::connector()
            .with_session_timeout(locator.session_timeout)
            .with_connection_timeout(locator.session_timeout.min(Duration::from_secs(10)))
            .connect(&locator.quorum)
            .await
            .map_err(|source| HaError::Connect { quorum: locator.quorum.clone(), source })?;
        Ok(Self { client, locator: locator.clone() })
    }

    pub fn locator(&self) -> &HaLocator {
        &self.locator
    }

    pub fn client(&self) -> &zk::Client {
        &self.client
    }

    /// Creates `path` and its parents where missing.
    pub async fn ensure_path(&self, path: &str) -> Result<(), HaError> {
        match self.client.mkdir(path, &persistent()).await {
            Ok(()) | Err(zk::Error::NodeExists) => Ok(()),
            Err(e) => Err(op("mkdir", path)(e)),
        }
    }

    pub async fn is_stopped(&self) -> Result<bool, HaError> {
        let path = self.locator.stopped_path();
        Ok(self.client.check_stat(&path).await.map_err(op("stat", &path))?.is_some())
    }

    /// The children of `path` (none when it does not exist).
    pub async fn children(&self, path: &str) -> Result<Vec<String>, HaError> {
        match self.client.list_children(path).await {
            Ok(c) => Ok(c),
            Err(zk::Error::NoNode) => Ok(Vec::new()),
            Err(e) => Err(op("list", path)(e)),
        }
    }

    /// The data of `path`, `None` when it does not exist.
    pub async fn data(&self, path: &str) -> Result<Option<Vec<u8>>, HaError> {
        match self.client.get_data(path).await {
            Ok((d, _)) => Ok(Some(d)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(op("read", path)(e)),
        }
    }
}

/// Contending for leadership of one cluster.
pub struct Election;

impl Election {
    /// Waits until this process leads the cluster, then publishes `info`
    /// (whose `session_id` must be fresh). Ends with [`HaError::Stopped`] when
    /// the cluster was stopped, before or while waiting.
    pub async fn contend(zk: &ZooKeeper, info: LeaderInfo) -> Result<Leadership, HaError> {
        let locator = zk.locator.clone();
        let latch = locator.latch_path();
        zk.ensure_path(&latch).await?;
        zk.ensure_path(&format!("{}/leader", locator.cluster_path())).await?;
        zk.ensure_path(&locator.job_graphs_path()).await?;
        let stopped = locator.stopped_path();
        let client = zk.client.clone();
        let prefix = zk::LockPrefix::new_curator(&latch, "latch-").map_err(op("lock", &latch))?;
        let options = zk::LockOptions::new(zk::Acls::anyone_all());
        let lock = client.lock(prefix, &[], options);
        tokio::pin!(lock);
        // Waiting on the latch, and watching for the cluster to be stopped.
        let lock = loop {
            let (stat, watcher) = client.check_and_watch_stat(&stopped).await.map_err(op("watch", &stopped))?;
            if stat.is_some() {
                return Err(HaError::Stopped(locator.cluster_path()));
            }
            tokio::select! {
                l = &mut lock => break l.map_err(op("lock", &latch))?.into_owned(),
                _ = watcher.changed() => continue,
            }
        };
        if zk.is_stopped().await? {
            return Err(HaError::Stopped(locator.cluster_path()));
        }
        let leadership = Leadership { zk: zk.clone(), lock, info };
        leadership.publish().await?;
        info!(session_id = %leadership.info.session_id, latch = %leadership.lock.lock_path(), "granted leadership");
        Ok(leadership)
    }
}

/// Held while this process leads. Every write it makes is fenced: it happens
/// only if its latch node still exists, i.e. only while it still leads.
pub struct Leadership {
    zk: ZooKeeper,
    lock: zk::OwnedLockClient,
    pub info: LeaderInfo,
}

impl Leadership {
    async fn publish(&self) -> Result<(), HaError> {
        let path = self.zk.locator.connection_info_path();
        let data = serde_json::to_vec(&self.info).unwrap_or_default();
        // A leader that stepped down with its session alive leaves its node behind.
        match self.lock.delete(&path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => {}
            Err(e) => return Err(op("delete", &path)(e)),
        }
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        self.lock.create(&path, &data, &ephemeral).await.map_err(op("create", &path))?;
        Ok(())
    }

    pub fn zookeeper(&self) -> &ZooKeeper {
        &self.zk
    }

    /// This leader's latch node: it leads for as long as the node exists.
    pub fn latch(&self) -> &str {
        self.lock.lock_path()
    }

    /// Resolves, with the reason, when this process may no longer lead: its
    /// session is disconnected (it may be expiring), expired or closed.
    pub fn lost(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut state = self.zk.client.state_watcher();
        async move {
            loop {
                let now = state.peek_state();
                if now != zk::SessionState::SyncConnected {
                    return format!("the ZooKeeper session is {now}");
                }
                state.changed().await;
            }
        }
    }

    /// Creates or replaces the persistent node `path` with `data`, fenced.
    pub async fn put(&self, path: &str, data: &[u8]) -> Result<(), HaError> {
        match self.lock.create(path, data, &persistent()).await {
            Ok(_) => Ok(()),
            Err(zk::Error::NodeExists) => {
                self.lock.set_data(path, data, None).await.map(|_| ()).map_err(op("set", path))
            }
            Err(e) => Err(op("create", path)(e)),
        }
    }

    /// Deletes `path` if it exists, fenced.
    pub async fn remove(&self, path: &str) -> Result<(), HaError> {
        match self.lock.delete(path, None).await {
            Ok(()) | Err(zk::Error::NoNode) => Ok(()),
            Err(e) => Err(op("delete", path)(e)),
        }
    }

    /// Marks the cluster stopped (standbys exit), fenced.
    pub async fn mark_stopped(&self) -> Result<(), HaError> {
        self.put(&self.zk.locator.stopped_path(), b"").await
    }
}

/// Follows who leads a cluster: a task keeps `current` up to date (`None`
/// while no leader is published), across ZooKeeper restarts and session loss.
pub struct LeaderRetrieval {
    pub current: watch::Receiver<Option<LeaderInfo>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LeaderRetrieval {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LeaderRetrieval {
    pub fn start(locator: HaLocator) -> Self {
        let (tx, current) = watch::channel(None);
        let task = tokio::spawn(follow(locator, tx));
        Self { current, task }
    }

    /// Follows whatever `source` names.
    pub fn follow(source: super::LeaderSource) -> Self {
        match source {
            super::LeaderSource::ZooKeeper(l) => Self::start(l),
            super::LeaderSource::File { location, interval } => {
                let (tx, current) = watch::channel(None);
                let task = tokio::spawn(super::leader_file::follow(location, interval, tx));
                Self { current, task }
            }
        }
    }

    /// Waits up to `timeout` for a leader.
    pub async fn leader(&mut self, timeout: Duration) -> Option<LeaderInfo> {
        let wait = self.current.wait_for(Option::is_some);
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(info)) => info.clone(),
            _ => None,
        }
    }
}

pub(super) fn publish(tx: &watch::Sender<Option<LeaderInfo>>, leader: Option<LeaderInfo>) {
    tx.send_if_modified(|cur| {
        if *cur == leader {
            return false;
        }
        match &leader {
            Some(l) => info!(session_id = %l.session_id, rpc = %l.rpc_address, "new leader"),
            None => info!("no leader known"),
        }
        *cur = leader;
        true
    });
}

async fn follow(locator: HaLocator, tx: watch::Sender<Option<LeaderInfo>>) {
    let path = locator.connection_info_path();
    let mut backoff = Duration::from_millis(50);
    loop {
        let zk = match ZooKeeper::connect(&locator).await {
            Ok(zk) => zk,
            Err(e) => {
                debug!(error = %e, "leader retrieval: ZooKeeper unreachable; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let mut state = zk.client.state_watcher();
        loop {
            let (leader, watcher) = match zk.client.get_and_watch_data(&path).await {
                Ok((data, _, w)) => (LeaderInfo::decode(&data), w),
                Err(zk::Error::NoNode) => match zk.client.check_and_watch_stat(&path).await {
                    Ok((Some(_), _)) => continue, // created in between
                    Ok((None, w)) => (None, w),
                    Err(e) => {
                        debug!(error = %e, "leader retrieval lost ZooKeeper");
                        break;
                    }
                },
                Err(e) => {
                    debug!(error = %e, "leader retrieval lost ZooKeeper");
                    break;
                }
            };
            publish(&tx, leader);
            tokio::select! {
                _ = watcher.changed() => {}
                s = state.changed() => {
                    // Cut off from ZooKeeper, we cannot know whether our leader still
                    // leads: we stop following it (Flink's default for a SUSPENDED
                    // connection), as the leader itself steps down.
                    if s != zk::SessionState::SyncConnected {
                        publish(&tx, None);
                    }
                    if matches!(s, zk::SessionState::Expired | zk::SessionState::Closed | zk::SessionState::AuthFailed) {
                        warn!(state = %s, "leader retrieval: ZooKeeper session ended; reconnecting");
                        break;
                    }
                    continue;
                }
            }
            if tx.is_closed() {
                return;
            }
        }
    }
}
