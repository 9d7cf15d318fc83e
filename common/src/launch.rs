//! How a driver tells a TaskManager process what it is: the environment of a
//! `yarn-flink taskmanager` process, whatever started it (a local process, a
//! YARN container, a pod). The secret travels as a file path or as the alias
//! of a secret key in the Hadoop credentials file the NodeManager wrote
//! (`HADOOP_TOKEN_FILE_LOCATION`), never as a value.
//!
//! Every value is plain text without `"`, `$`, backquotes, `\`, `{{` or `}}`:
//! a YARN NodeManager writes environment values into a bash script without
//! escaping them (`hadoop::yarn::launch_env`), so JSON would arrive mangled.
//! Profiles travel as `cpu_millis=1000,task_heap_bytes=...,ext.gpu=1`.

use std::path::PathBuf;

use crate::ids::ResourceId;
use crate::resources::ResourceProfile;

pub const ENV_RM_ADDRESS: &str = "YF_RM_ADDRESS";
pub const ENV_RESOURCE_ID: &str = "YF_RESOURCE_ID";
pub const ENV_TOTAL: &str = "YF_TM_TOTAL_RESOURCES";
pub const ENV_DEFAULT_SLOT: &str = "YF_TM_DEFAULT_SLOT";
pub const ENV_NUM_SLOTS: &str = "YF_TM_NUM_SLOTS";
pub const ENV_SECRET_FILE: &str = "YF_SECRET_FILE";
/// The alias of the secret key holding the application secret (hex) in the
/// Hadoop credentials file named by `HADOOP_TOKEN_FILE_LOCATION`.
pub const ENV_SECRET_CREDENTIALS_ALIAS: &str = "YF_SECRET_CREDENTIALS_ALIAS";
/// Where YARN's NodeManager puts the container's credentials.
pub const ENV_HADOOP_TOKEN_FILE: &str = "HADOOP_TOKEN_FILE_LOCATION";
/// The alias under which the client stores the application secret in the
/// YARN credentials (AM and TaskManager containers alike).
pub const YARN_SECRET_ALIAS: &str = "yarn-flink.secret";
pub const ENV_WORK_DIR: &str = "YF_TM_WORK_DIR";
pub const ENV_HOST: &str = "YF_TM_HOST";

#[derive(Clone, Debug, PartialEq)]
pub struct TaskManagerLaunch {
    pub rm_address: String,
    pub resource_id: ResourceId,
    pub total: ResourceProfile,
    pub default_slot: ResourceProfile,
    pub num_slots: u32,
    pub secret: SecretSource,
    /// Relative paths are taken from the TaskManager's working directory.
    pub work_dir: PathBuf,
    /// The host name the TaskManager advertises to its peers.
    pub host: String,
}

/// Where a TaskManager finds the application secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretSource {
    /// A 0600 file holding the secret in hex (local processes).
    File(PathBuf),
    /// A secret key of this alias in the Hadoop credentials file at
    /// `HADOOP_TOKEN_FILE_LOCATION` (YARN containers).
    HadoopCredentials { alias: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("environment variable {0} is not set; `yarn-flink taskmanager` is started by a ResourceManager driver, not by hand")]
    Missing(&'static str),
    #[error("environment variable {name} is malformed: {detail}")]
    Malformed { name: &'static str, detail: String },
}

impl TaskManagerLaunch {
    pub fn to_env(&self) -> Vec<(String, String)> {
        vec![
            (ENV_RM_ADDRESS.into(), self.rm_address.clone()),
            (ENV_RESOURCE_ID.into(), self.resource_id.0.clone()),
            (ENV_TOTAL.into(), profile_to_text(&self.total)),
            (ENV_DEFAULT_SLOT.into(), profile_to_text(&self.default_slot)),
            (ENV_NUM_SLOTS.into(), self.num_slots.to_string()),
            match &self.secret {
                SecretSource::File(path) => (ENV_SECRET_FILE.into(), path.display().to_string()),
                SecretSource::HadoopCredentials { alias } => (ENV_SECRET_CREDENTIALS_ALIAS.into(), alias.clone()),
            },
            (ENV_WORK_DIR.into(), self.work_dir.display().to_string()),
            (ENV_HOST.into(), self.host.clone()),
        ]
    }

    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, LaunchError> {
        let var = |name: &'static str| get(name).ok_or(LaunchError::Missing(name));
        let profile = |name: &'static str| -> Result<ResourceProfile, LaunchError> {
            profile_from_text(&var(name)?).map_err(|detail| LaunchError::Malformed { name, detail })
        };
        Ok(Self {
            rm_address: var(ENV_RM_ADDRESS)?,
            resource_id: ResourceId(var(ENV_RESOURCE_ID)?),
            total: profile(ENV_TOTAL)?,
            default_slot: profile(ENV_DEFAULT_SLOT)?,
            num_slots: var(ENV_NUM_SLOTS)?.parse().map_err(|e: std::num::ParseIntError| LaunchError::Malformed {
                name: ENV_NUM_SLOTS,
                detail: e.to_string(),
            })?,
            secret: match (get(ENV_SECRET_FILE), get(ENV_SECRET_CREDENTIALS_ALIAS)) {
                (Some(path), _) => SecretSource::File(PathBuf::from(path)),
                (None, Some(alias)) => SecretSource::HadoopCredentials { alias },
                (None, None) => return Err(LaunchError::Missing(ENV_SECRET_FILE)),
            },
            work_dir: PathBuf::from(var(ENV_WORK_DIR)?),
            host: get(ENV_HOST).unwrap_or_else(|| "127.0.0.1".into()),
        })
    }
}

/// `cpu_millis=1000,task_heap_bytes=536870912,task_off_heap_bytes=0,managed_bytes=0,network_bytes=0,ext.gpu=1`:
/// every field named, so a TaskManager's log shows what it was given.
pub fn profile_to_text(p: &ResourceProfile) -> String {
    let mut s = format!(
        "cpu_millis={},task_heap_bytes={},task_off_heap_bytes={},managed_bytes={},network_bytes={}",
        p.cpu_millis, p.task_heap_bytes, p.task_off_heap_bytes, p.managed_bytes, p.network_bytes
    );
    for (name, amount) in &p.extended {
        s.push_str(&format!(",ext.{name}={amount}"));
    }
    s
}

/// The inverse of [`profile_to_text`]. Unknown keys are errors (a newer AM
/// than TaskManager would otherwise lose resources silently).
pub fn profile_from_text(text: &str) -> Result<ResourceProfile, String> {
    let mut p = ResourceProfile::ZERO;
    for field in text.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = field.split_once('=').ok_or_else(|| format!("{field:?} is not key=value"))?;
        let n: u64 = value.parse().map_err(|_| format!("{key}: {value:?} is not a whole number"))?;
        match key {
            "cpu_millis" => p.cpu_millis = n,
            "task_heap_bytes" => p.task_heap_bytes = n,
            "task_off_heap_bytes" => p.task_off_heap_bytes = n,
            "managed_bytes" => p.managed_bytes = n,
            "network_bytes" => p.network_bytes = n,
            _ => match key.strip_prefix("ext.") {
                Some(name) if !name.is_empty() => p = p.with_extended(name, n),
                _ => {
                    return Err(format!("unknown field {key:?} (expected cpu_millis, task_heap_bytes, ..., ext.NAME)"))
                }
            },
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn profiles_travel_as_text_without_shell_syntax() {
        let p = ResourceProfile::new(4000, 4 << 30).with_extended("gpu", 1).with_extended("yarn.io/fpga", 2);
        let text = profile_to_text(&p);
        assert!(!text.contains(['"', '$', '`', '\\', '{', '}']), "{text}");
        assert_eq!(profile_from_text(&text).unwrap(), p);
        assert!(profile_from_text("cpu_millis=x").unwrap_err().contains("cpu_millis"));
        assert!(profile_from_text("color=3").unwrap_err().contains("color"));
        // The JSON the first round sent, as the NodeManager delivered it (nm/tm-taskmanager.err).
        assert!(profile_from_text("{cpu_millis:4000,task_heap_bytes:4294967296,extended:{").is_err());
    }

    #[test]
    fn env_round_trip_and_missing_vars_are_named() {
        let l = TaskManagerLaunch {
            rm_address: "127.0.0.1:5".into(),
            resource_id: ResourceId::new("tm-1"),
            total: ResourceProfile::new(2000, 1 << 30).with_extended("gpu", 1),
            default_slot: ResourceProfile::new(1000, 1 << 29),
            num_slots: 2,
            secret: SecretSource::File("/tmp/s".into()),
            work_dir: "/tmp/w".into(),
            host: "127.0.0.1".into(),
        };
        let env: HashMap<String, String> = l.to_env().into_iter().collect();
        assert_eq!(TaskManagerLaunch::from_env(|k| env.get(k).cloned()).unwrap(), l);
        let yarn =
            TaskManagerLaunch { secret: SecretSource::HadoopCredentials { alias: YARN_SECRET_ALIAS.into() }, ..l };
        let env: HashMap<String, String> = yarn.to_env().into_iter().collect();
        assert!(!env.contains_key(ENV_SECRET_FILE));
        assert_eq!(TaskManagerLaunch::from_env(|k| env.get(k).cloned()).unwrap(), yarn);
        let err = TaskManagerLaunch::from_env(|_| None).unwrap_err();
        assert!(err.to_string().contains(ENV_RM_ADDRESS));
    }
}
