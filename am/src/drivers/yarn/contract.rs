//! The AM container contract: what `yarn-flink submit` (client) hands the
//! ApplicationMaster (`yarn-flink appmaster`) through YARN, in one place that
//! both sides use.
//!
//! - A localized file [`CONTRACT_LINK`] (JSON of [`AmContract`]): the mode, the
//!   bundle's link name, the staging dir, the local resources TaskManager
//!   containers reuse, and the cluster's shape. Structured data goes in a file,
//!   as Flink ships its configuration, because the NodeManager writes
//!   environment values into bash without escaping them
//!   (`shared/wire/hadoop-3.3.6/nm/`: JSON arrived as `{bundle:{url:...`).
//! - A few plain environment values ([`am_environment`]), each checked by
//!   [`hadoop::yarn::launch_env::check`].
//! - Credentials: the application secret under [`SECRET_ALIAS`], and the
//!   delegation tokens on secure clusters.
//! - The command [`am_command`].

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::jobspec::BundleLimits;
use common::resources::{parse_cpu, parse_memory, ResourceProfile};
use common::rpc::RpcTimeouts;
use hadoop::yarn::launch_env::{self, UnsafeEnvValue};
use hadoop::yarn::{LocalResource, LocalResourceType, LocalResourceVisibility};
use serde::{Deserialize, Serialize};

use super::resources::{parse_url, url_string};
use crate::resource_manager::slot_manager::{SlotManagerConfig, WorkerSizing};
use crate::resource_manager::worker::WorkerSpec;
use crate::resource_manager::ResourceManagerConfig;

/// Link names in every container's working directory. The binary is an
/// ARCHIVE: the NodeManager unpacks it into a directory of the link's name.
pub const BINARY_LINK: &str = "yarn-flink";
/// The executable inside that directory.
pub const BINARY_PATH: &str = "yarn-flink/yarn-flink";
pub const BUNDLE_LINK: &str = "bundle";
pub const CONTRACT_LINK: &str = "yarn-flink-am.json";
/// The alias of the application secret (hex) in the app's credentials.
pub const SECRET_ALIAS: &str = common::launch::YARN_SECRET_ALIAS;
/// The contract's format; an AM refuses a newer one rather than misread it.
pub const CONTRACT_VERSION: u32 = 1;

/// `application` (per-job) or `session`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Run the bundle's one job and finish with its result.
    Application,
    /// Take jobs over REST until `DELETE /cluster`.
    Session,
}

/// What the client tells the AM (the file [`CONTRACT_LINK`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AmContract {
    pub version: u32,
    pub mode: Mode,
    /// The bundle's link name (application mode).
    pub bundle: Option<String>,
    /// This application's staging dir (URL); the AM removes it when done.
    pub staging_dir: Option<String>,
    /// Localized into every TaskManager container (the binary, the bundle).
    pub local_resources: BTreeMap<String, LocalResourceEntry>,
    pub cluster: ClusterShape,
    /// `submit --keytab`: the AM logs in from this keytab (a link in its
    /// working dir, localized for the AM alone) and obtains fresh delegation
    /// tokens before the submitted ones expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keytab_login: Option<KeytabLogin>,
    /// `submit --max-attempts`: above 1, a later AM attempt takes over the
    /// containers of the one before (see docs/high-availability.md).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub max_attempts: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Where the AM finds its keytab, and as whom it logs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeytabLogin {
    pub principal: String,
    /// The keytab's link name ([`KEYTAB_LINK`]).
    pub keytab: String,
}

/// The keytab's link name in the AM container. The file itself is never
/// named in an environment value or a command line.
pub const KEYTAB_LINK: &str = "krb5.keytab";

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error(
        "cannot read the AM contract {path}: {source}; `yarn-flink appmaster` runs inside a YARN AM container \
         started by `yarn-flink submit`, which localizes that file"
    )]
    Read { path: String, source: std::io::Error },
    #[error("the AM contract {path} is malformed: {detail}; submit again with the same yarn-flink version")]
    Malformed { path: String, detail: String },
}

impl AmContract {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn from_json(path: &str, json: &str) -> Result<Self, ContractError> {
        let bad = |detail: String| ContractError::Malformed { path: path.to_owned(), detail };
        let c: AmContract = serde_json::from_str(json).map_err(|e| bad(e.to_string()))?;
        if c.version > CONTRACT_VERSION {
            return Err(bad(format!(
                "version {} is newer than this AM's {CONTRACT_VERSION}: the binary shipped is older than the client",
                c.version
            )));
        }
        if !c.local_resources.contains_key(BINARY_LINK) {
            return Err(bad(format!(
                "it has no {BINARY_LINK:?} local resource: TaskManager containers need the binary"
            )));
        }
        if c.mode == Mode::Application && c.bundle.is_none() {
            return Err(bad("application mode needs a bundle".into()));
        }
        c.local_resources().map_err(|e| bad(e.to_string()))?;
        Ok(c)
    }

    pub fn read(path: &Path) -> Result<Self, ContractError> {
        let shown = path.display().to_string();
        let json =
            std::fs::read_to_string(path).map_err(|source| ContractError::Read { path: shown.clone(), source })?;
        Self::from_json(&shown, &json)
    }

    /// The local resources as YARN records.
    pub fn local_resources(&self) -> Result<BTreeMap<String, LocalResource>, LocalResourceError> {
        self.local_resources.iter().map(|(name, e)| Ok((name.clone(), e.to_yarn(name)?))).collect()
    }
}

/// One local resource: `{"url": "hdfs://nn:8020/user/u/.yarn-flink/cache/<sha>/yarn-flink.tar.gz",
/// "size": 123, "timestamp": 1700000000000, "type": "ARCHIVE", "visibility": "APPLICATION"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalResourceEntry {
    pub url: String,
    pub size: i64,
    pub timestamp: i64,
    /// `FILE`, `ARCHIVE` (unpacked by the NodeManager) or `PATTERN`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `APPLICATION`, `PRIVATE` or `PUBLIC`.
    pub visibility: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("local resource {name}: {detail}")]
pub struct LocalResourceError {
    pub name: String,
    pub detail: String,
}

impl LocalResourceEntry {
    pub fn to_yarn(&self, name: &str) -> Result<LocalResource, LocalResourceError> {
        let bad = |detail: String| LocalResourceError { name: name.to_owned(), detail };
        let kind = match self.kind.to_ascii_uppercase().as_str() {
            "FILE" => LocalResourceType::File,
            "ARCHIVE" => LocalResourceType::Archive,
            "PATTERN" => LocalResourceType::Pattern,
            other => return Err(bad(format!("type {other:?} is not FILE, ARCHIVE or PATTERN"))),
        };
        let visibility = match self.visibility.to_ascii_uppercase().as_str() {
            "APPLICATION" => LocalResourceVisibility::Application,
            "PRIVATE" => LocalResourceVisibility::Private,
            "PUBLIC" => LocalResourceVisibility::Public,
            other => return Err(bad(format!("visibility {other:?} is not APPLICATION, PRIVATE or PUBLIC"))),
        };
        let url = parse_url(&self.url).map_err(bad)?;
        Ok(LocalResource { url, size: self.size, timestamp: self.timestamp, kind, visibility, pattern: None })
    }

    pub fn from_yarn(r: &LocalResource) -> Self {
        let kind = match r.kind {
            LocalResourceType::File => "FILE",
            LocalResourceType::Archive => "ARCHIVE",
            LocalResourceType::Pattern => "PATTERN",
        };
        let visibility = match r.visibility {
            LocalResourceVisibility::Application => "APPLICATION",
            LocalResourceVisibility::Private => "PRIVATE",
            LocalResourceVisibility::Public => "PUBLIC",
        };
        Self {
            url: url_string(&r.url),
            size: r.size,
            timestamp: r.timestamp,
            kind: kind.into(),
            visibility: visibility.into(),
        }
    }
}

/// The cluster's shape: the same knobs as the CLI's cluster flags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterShape {
    /// `fit` (TaskManagers shaped to the vertices' resources) or `fixed`.
    pub sizing: String,
    pub tm_slots: u32,
    pub slot_cpu: String,
    pub slot_memory: String,
    #[serde(with = "duration_text")]
    pub idle_timeout: Duration,
    #[serde(with = "duration_text")]
    pub heartbeat_interval: Duration,
    #[serde(with = "duration_text")]
    pub heartbeat_timeout: Duration,
    /// What a bundle may unpack to: a session's uploads, and its TaskManagers' copies.
    #[serde(default)]
    pub bundle_limits: BundleLimits,
}

impl Default for ClusterShape {
    fn default() -> Self {
        Self {
            sizing: "fit".into(),
            tm_slots: 4,
            slot_cpu: "1".into(),
            slot_memory: "512m".into(),
            idle_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
            bundle_limits: BundleLimits::default(),
        }
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        common::jobspec::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl ClusterShape {
    /// The ResourceManager's configuration; TaskManagers are never shaped
    /// beyond `max_worker` (the scheduler's largest container).
    pub fn resource_manager_config(
        &self,
        max_worker: Option<ResourceProfile>,
    ) -> Result<ResourceManagerConfig, String> {
        let cpu = parse_cpu(&self.slot_cpu).map_err(|e| format!("slot_cpu: {e}"))?;
        let mem = parse_memory(&self.slot_memory).map_err(|e| format!("slot_memory: {e}"))?;
        let sizing = match self.sizing.as_str() {
            "fit" => WorkerSizing::FitToRequirement { slots_per_worker: self.tm_slots },
            "fixed" => WorkerSizing::Fixed,
            other => return Err(format!("sizing {other:?} is neither \"fit\" nor \"fixed\"")),
        };
        let slot_manager = SlotManagerConfig {
            idle_timeout: self.idle_timeout,
            sizing,
            default_worker: WorkerSpec::uniform(ResourceProfile::new(cpu, mem), self.tm_slots),
            max_worker,
            max_total: None,
            max_failed_worker_requests: 5,
            max_slot: None,
            limit_words: crate::resource_manager::slot_manager::LimitWords {
                what: "the largest container YARN hands out".into(),
                raise: "ask the cluster's operator to raise yarn.scheduler.maximum-allocation-mb / -vcores".into(),
            },
        };
        slot_manager.validate().map_err(|e| e.to_string())?;
        Ok(ResourceManagerConfig {
            slot_manager,
            heartbeat_interval: self.heartbeat_interval,
            heartbeat_timeout: self.heartbeat_timeout,
            rpc: RpcTimeouts::default(),
        })
    }
}

/// The AM's command: our binary, logs where YARN collects them.
pub fn am_command() -> String {
    container_command("appmaster")
}

/// `./yarn-flink/yarn-flink <role>`, after a check that the node runs the
/// binary's architecture: YARN's node reports do not say what a node is, and
/// on another one the loader's "Exec format error" would be all there is. The
/// check's one line goes to the program's `.err` file and to the launch
/// script's stderr (`prelaunch.err`, whose tail the NodeManager quotes in the
/// container's diagnostics, so the AM hears the reason). No `$` or quotes:
/// the NodeManager puts the command inside `bash -c "..."` (`launch_env`).
pub fn container_command(role: &str) -> String {
    let arch = std::env::consts::ARCH;
    format!(
        "uname -m | grep -qx {arch} || {{ {{ printf 'yarn-flink: the shipped binary is built for {arch} Linux, but this \
         node is '; uname -m; }} | tee -a <LOG_DIR>/{role}.err 1>&2; exit 1; }}; \
         ./{BINARY_PATH} {role} 1><LOG_DIR>/{role}.out 2><LOG_DIR>/{role}.err"
    )
}

/// The AM container's environment: `HADOOP_USER_NAME` on simple-auth clusters
/// (containers run as the NodeManager's user there; this makes the AM's HDFS
/// and YARN calls act as the submitter), and the log filter. Every value is
/// checked against the NodeManager's rules.
pub fn am_environment(
    hadoop_user: Option<&str>,
    rust_log: Option<&str>,
) -> Result<BTreeMap<String, String>, UnsafeEnvValue> {
    let mut env = BTreeMap::new();
    if let Some(u) = hadoop_user {
        env.insert("HADOOP_USER_NAME".to_string(), u.to_string());
    }
    if let Some(f) = rust_log {
        env.insert("RUST_LOG".to_string(), f.to_string());
    }
    launch_env::check_all(&env)?;
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> AmContract {
        let entry = |url: &str, kind: &str| LocalResourceEntry {
            url: url.into(),
            size: 10,
            timestamp: 1_700_000_000_000,
            kind: kind.into(),
            visibility: "APPLICATION".into(),
        };
        AmContract {
            version: CONTRACT_VERSION,
            mode: Mode::Application,
            bundle: Some(BUNDLE_LINK.into()),
            staging_dir: Some("hdfs://127.0.0.1:9000/user/alice/.yarn-flink/application_1_0001".into()),
            local_resources: BTreeMap::from([
                (BINARY_LINK.into(), entry("hdfs://127.0.0.1:9000/c/ab/yarn-flink.tar.gz", "ARCHIVE")),
                (BUNDLE_LINK.into(), entry("hdfs://127.0.0.1:9000/c/cd/bundle.tar.gz", "ARCHIVE")),
            ]),
            cluster: ClusterShape { tm_slots: 2, ..ClusterShape::default() },
            keytab_login: None,
            max_attempts: 1,
        }
    }

    #[test]
    fn the_contract_round_trips_and_names_what_is_wrong() {
        let c = contract();
        assert_eq!(AmContract::from_json("f", &c.to_json()).unwrap(), c);
        let yarn = c.local_resources().unwrap();
        assert_eq!(yarn[BINARY_LINK].kind, LocalResourceType::Archive);
        assert_eq!(yarn[BINARY_LINK].url.port, Some(9000));
        assert_eq!(LocalResourceEntry::from_yarn(&yarn[BUNDLE_LINK]), c.local_resources[BUNDLE_LINK]);

        let mut no_binary = c.clone();
        no_binary.local_resources.remove(BINARY_LINK);
        let err = AmContract::from_json("f", &no_binary.to_json()).unwrap_err().to_string();
        assert!(err.contains("yarn-flink") && err.contains("TaskManager"), "{err}");
        let mut newer = c.clone();
        newer.version = CONTRACT_VERSION + 1;
        assert!(AmContract::from_json("f", &newer.to_json()).unwrap_err().to_string().contains("newer"));
        let mut bad_url = c;
        bad_url.local_resources.get_mut(BUNDLE_LINK).unwrap().url = "nope".into();
        let err = AmContract::from_json("f", &bad_url.to_json()).unwrap_err().to_string();
        assert!(err.contains("local resource bundle"), "{err}");
        let err = AmContract::read(Path::new("/nonexistent/yarn-flink-am.json")).unwrap_err().to_string();
        assert!(err.contains("yarn-flink submit"), "{err}");
    }

    #[test]
    fn cluster_shape_becomes_a_resource_manager_config() {
        let shape = ClusterShape { sizing: "fixed".into(), tm_slots: 3, ..ClusterShape::default() };
        let rm = shape.resource_manager_config(Some(ResourceProfile::new(4000, 4096 << 20))).unwrap();
        assert_eq!(rm.slot_manager.sizing, WorkerSizing::Fixed);
        assert_eq!(rm.slot_manager.default_worker.num_slots, 3);
        assert_eq!(rm.slot_manager.max_worker, Some(ResourceProfile::new(4000, 4096 << 20)));
        let bad = ClusterShape { sizing: "huge".into(), ..ClusterShape::default() };
        assert!(bad.resource_manager_config(None).unwrap_err().contains("huge"));
    }

    #[test]
    fn the_environment_holds_only_values_the_node_manager_keeps() {
        let env = am_environment(Some("alice"), Some("info,am=debug")).unwrap();
        assert_eq!(env["HADOOP_USER_NAME"], "alice");
        let err = am_environment(None, Some("info,\"x\"")).unwrap_err();
        assert_eq!(err.name, "RUST_LOG");
        assert!(launch_env::check("c", &am_command()).is_ok());
    }
}
