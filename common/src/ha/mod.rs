//! High availability (issue 11): where a cluster's leader is found, how one is
//! elected, and the names of everything kept in ZooKeeper.
//!
//! One leader per cluster, as in Flink since 1.15: the Dispatcher, the
//! ResourceManager and every JobMaster run under one leadership. The leader
//! session id is the fencing token: it is the ResourceManager's id, so every
//! leader-scoped command a TaskExecutor gets carries it (or the id of a
//! JobMaster the same leader's ResourceManager granted slots to).
//!
//! ZooKeeper layout, under `<root>/<cluster id>` (Flink's names where Flink has them):
//! - `latch/`: the election (Apache Curator's LeaderLatch recipe: ephemeral
//!   sequential nodes, the lowest leads);
//! - `leader/connection_info`: the leader's [`LeaderInfo`], ephemeral, written
//!   only while its writer holds the latch;
//! - `jobgraphs/<job id>`: a pointer to a submitted job in the storage dir;
//! - `stopped`: the cluster was stopped; standbys exit instead of taking over.

pub mod leader_file;
pub mod storage;
mod zookeeper;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::zookeeper::{Election, HaError, LeaderRetrieval, Leadership, ZooKeeper};

/// Where a TaskManager finds its leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaderSource {
    ZooKeeper(HaLocator),
    /// A file the current leader writes (YARN attempts without ZooKeeper), read every `interval`.
    File {
        location: String,
        interval: Duration,
    },
}

/// A TaskManager that finds its leader in a file ([`leader_file`]): its location.
pub const ENV_LEADER_FILE: &str = "YF_LEADER_FILE";

impl LeaderSource {
    pub fn to_env(&self) -> Vec<(String, String)> {
        match self {
            LeaderSource::ZooKeeper(l) => l.to_env(),
            LeaderSource::File { location, .. } => vec![(ENV_LEADER_FILE.into(), location.clone())],
        }
    }

    /// `None` when the process follows a fixed address.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, LocatorError> {
        if let Some(l) = HaLocator::from_env(&get)? {
            return Ok(Some(LeaderSource::ZooKeeper(l)));
        }
        Ok(get(ENV_LEADER_FILE).map(|location| LeaderSource::File { location, interval: Duration::from_millis(500) }))
    }
}

/// Environment of a TaskManager (or any process) that finds its leader through ZooKeeper.
pub const ENV_HA_ZOOKEEPER: &str = "YF_HA_ZOOKEEPER";
pub const ENV_HA_CLUSTER_ID: &str = "YF_HA_CLUSTER_ID";
pub const ENV_HA_SESSION_TIMEOUT_MS: &str = "YF_HA_SESSION_TIMEOUT_MS";

/// Flink's `high-availability.zookeeper.client.session-timeout` default.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a cluster's HA state lives in ZooKeeper: `zookeeper://host:port[,host:port]/root`
/// plus the cluster id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaLocator {
    /// `host:port,host:port`, as ZooKeeper clients take it.
    pub quorum: String,
    /// The root path, e.g. `/yarn-flink` (Flink's `high-availability.zookeeper.path.root`).
    pub root: String,
    /// Flink's `high-availability.cluster-id`.
    pub cluster_id: String,
    pub session_timeout: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocatorError {
    #[error("{0:?} is not a ZooKeeper address: write zookeeper://host:port[,host:port]/root, e.g. zookeeper://127.0.0.1:2181/yarn-flink")]
    Url(String),
    #[error("the cluster id {0:?} may not be empty or contain `/`; use letters, digits, `-`, `_` or `.`")]
    ClusterId(String),
    #[error("environment variable {name} is malformed: {detail}")]
    Env { name: &'static str, detail: String },
}

impl HaLocator {
    pub fn parse(url: &str, cluster_id: &str, session_timeout: Duration) -> Result<Self, LocatorError> {
        let bad = || LocatorError::Url(url.to_owned());
        let rest = url.strip_prefix("zookeeper://").ok_or_else(bad)?;
        let (quorum, root) = match rest.split_once('/') {
            Some((q, r)) => (q, format!("/{}", r.trim_end_matches('/'))),
            None => (rest, "/yarn-flink".to_owned()),
        };
        let hosts_ok = !quorum.is_empty()
            && quorum.split(',').all(|h| {
                h.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            });
        if !hosts_ok || root == "/" || root.contains("//") {
            return Err(bad());
        }
        let cluster_ok = !cluster_id.is_empty()
            && cluster_id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && cluster_id != "."
            && cluster_id != "..";
        if !cluster_ok {
            return Err(LocatorError::ClusterId(cluster_id.to_owned()));
        }
        Ok(Self { quorum: quorum.to_owned(), root, cluster_id: cluster_id.to_owned(), session_timeout })
    }

    pub fn url(&self) -> String {
        format!("zookeeper://{}{}", self.quorum, self.root)
    }

    /// `<root>/<cluster id>`: everything of this cluster.
    pub fn cluster_path(&self) -> String {
        format!("{}/{}", self.root, self.cluster_id)
    }
    pub fn latch_path(&self) -> String {
        format!("{}/latch", self.cluster_path())
    }
    pub fn connection_info_path(&self) -> String {
        format!("{}/leader/connection_info", self.cluster_path())
    }
    pub fn job_graphs_path(&self) -> String {
        format!("{}/jobgraphs", self.cluster_path())
    }
    pub fn stopped_path(&self) -> String {
        format!("{}/stopped", self.cluster_path())
    }

    pub fn to_env(&self) -> Vec<(String, String)> {
        vec![
            (ENV_HA_ZOOKEEPER.into(), self.url()),
            (ENV_HA_CLUSTER_ID.into(), self.cluster_id.clone()),
            (ENV_HA_SESSION_TIMEOUT_MS.into(), self.session_timeout.as_millis().to_string()),
        ]
    }

    /// `None` when the process was not started for an HA cluster.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, LocatorError> {
        let Some(url) = get(ENV_HA_ZOOKEEPER) else { return Ok(None) };
        let cluster_id = get(ENV_HA_CLUSTER_ID).unwrap_or_else(|| "default".into());
        let timeout = match get(ENV_HA_SESSION_TIMEOUT_MS) {
            Some(ms) => Duration::from_millis(ms.parse().map_err(|e: std::num::ParseIntError| LocatorError::Env {
                name: ENV_HA_SESSION_TIMEOUT_MS,
                detail: e.to_string(),
            })?),
            None => DEFAULT_SESSION_TIMEOUT,
        };
        Self::parse(&url, &cluster_id, timeout).map(Some)
    }
}

/// What the leader publishes: its session id (the fencing token) and where it listens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// The leader session id; the ResourceManager's id for as long as it leads.
    pub session_id: uuid::Uuid,
    /// The ResourceManager's and JobMasters' gRPC endpoint.
    pub rpc_address: String,
    /// The REST API (and web UI), when it serves one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest_address: Option<String>,
}

impl LeaderInfo {
    /// A malformed node is no leader: a TaskExecutor keeps waiting for a good one.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_parse_flink_style_urls_and_name_the_fix() {
        let l = HaLocator::parse("zookeeper://127.0.0.1:2181,zk2:2182/flink/", "s1", DEFAULT_SESSION_TIMEOUT).unwrap();
        assert_eq!(l.quorum, "127.0.0.1:2181,zk2:2182");
        assert_eq!(l.root, "/flink");
        assert_eq!(l.connection_info_path(), "/flink/s1/leader/connection_info");
        assert_eq!(l.latch_path(), "/flink/s1/latch");
        let env: std::collections::HashMap<_, _> = l.to_env().into_iter().collect();
        assert_eq!(HaLocator::from_env(|k| env.get(k).cloned()).unwrap(), Some(l));
        assert_eq!(HaLocator::from_env(|_| None).unwrap(), None);
        let bare = HaLocator::parse("zookeeper://zk:2181", "default", DEFAULT_SESSION_TIMEOUT).unwrap();
        assert_eq!(bare.root, "/yarn-flink");
        for bad in
            ["http://zk:2181/x", "zookeeper:///x", "zookeeper://zk/x", "zookeeper://zk:99999/x", "zookeeper://zk:1/"]
        {
            let e = HaLocator::parse(bad, "c", DEFAULT_SESSION_TIMEOUT).unwrap_err();
            assert!(e.to_string().contains("zookeeper://host:port"), "{bad}: {e}");
        }
        assert!(matches!(
            HaLocator::parse("zookeeper://zk:1/r", "a/b", DEFAULT_SESSION_TIMEOUT),
            Err(LocatorError::ClusterId(_))
        ));
        assert!(matches!(
            HaLocator::parse("zookeeper://zk:1/r", "..", DEFAULT_SESSION_TIMEOUT),
            Err(LocatorError::ClusterId(_))
        ));
    }

    #[test]
    fn leader_info_is_json_and_garbage_is_no_leader() {
        let i =
            LeaderInfo { session_id: uuid::Uuid::from_u128(7), rpc_address: "127.0.0.1:1".into(), rest_address: None };
        assert_eq!(LeaderInfo::decode(&serde_json::to_vec(&i).unwrap()), Some(i));
        assert_eq!(LeaderInfo::decode(b"\x00\xff{"), None);
    }
}
