//! What `yarn-flink submit --target kubernetes` hands the JobManager pod, in
//! one place both sides use: the objects' names, the contract (JSON in the
//! cluster's ConfigMap, mounted as a file), and the status the JobManager
//! reports back in a ConfigMap the client reads through the apiserver.
//!
//! Objects of cluster `<id>` (every one but the Deployment owned by it, so
//! deleting the Deployment garbage-collects the rest):
//! - Deployment `yf-<id>-jobmanager` (1 replica): the JobManager;
//! - Secret `yf-<id>-secret`: the application secret, mounted as a file;
//! - ConfigMap `yf-<id>-config`: [`KubeContract`], mounted as a file;
//! - ConfigMap `yf-<id>-status`: [`JobStatus`], written by the JobManager;
//! - ConfigMap `yf-<id>-bundle`: a bundle from the client's disk, as
//!   `binaryData` (at most [`MAX_UPLOADED_BUNDLE`] packed);
//! - Service `yf-<id>-jobmanager`: its RPC and REST ports, for in-cluster
//!   clients and `kubectl port-forward`;
//! - pods `yf-<id>-taskmanager-<attempt>-<n>`: the TaskManagers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::drivers::yarn::contract::{ClusterShape, Mode};

pub const CONTRACT_VERSION: u32 = 1;
/// Where the JobManager pod mounts the cluster's ConfigMap.
pub const CONFIG_MOUNT_DIR: &str = "/etc/yarn-flink-config";
pub const CONTRACT_KEY: &str = "contract.json";
pub const ENV_CLUSTER_ID: &str = "YF_K8S_CLUSTER_ID";
pub const ENV_NAMESPACE: &str = "YF_K8S_NAMESPACE";
pub const ENV_POD_IP: &str = "YF_K8S_POD_IP";
pub const ENV_CONTRACT: &str = "YF_K8S_CONTRACT";
/// The JobManager's RPC port (TaskManagers reach it by the pod's IP).
pub const DEFAULT_RPC_PORT: u16 = 6123;
pub const DEFAULT_REST_PORT: u16 = 8081;

pub fn deployment_name(cluster_id: &str) -> String {
    format!("yf-{cluster_id}-jobmanager")
}
pub fn service_name(cluster_id: &str) -> String {
    format!("yf-{cluster_id}-jobmanager")
}
pub fn secret_name(cluster_id: &str) -> String {
    format!("yf-{cluster_id}-secret")
}
pub fn config_name(cluster_id: &str) -> String {
    format!("yf-{cluster_id}-config")
}
pub fn status_name(cluster_id: &str) -> String {
    format!("yf-{cluster_id}-status")
}
pub fn bundle_name(cluster_id: &str) -> String {
    format!("yf-{cluster_id}-bundle")
}

/// `bundle` in the contract for an archive the client put in the bundle
/// ConfigMap: `uploaded:sha256:<hex>`. The hash is what the JobManager
/// checks the ConfigMap's bytes against.
pub const UPLOADED_PREFIX: &str = "uploaded:sha256:";
/// The bundle ConfigMap's one `binaryData` key.
pub const BUNDLE_KEY: &str = "bundle.tar.gz";
/// What the apiserver stores in one ConfigMap (data and binaryData
/// together), less room for its metadata: larger bundles go in the image or
/// on HDFS.
pub const MAX_UPLOADED_BUNDLE: usize = 1024 * 1024 - 16 * 1024;

/// Labels of every object of a cluster (`kubectl get all -l yarn-flink/cluster=<id>`).
pub fn labels(cluster_id: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (super::pod::LABEL_APP.to_owned(), "yarn-flink".to_owned()),
        (super::pod::LABEL_CLUSTER.to_owned(), cluster_id.to_owned()),
        (super::pod::LABEL_COMPONENT.to_owned(), component.to_owned()),
    ])
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubeContract {
    pub version: u32,
    pub mode: Mode,
    /// Application mode: the bundle's path inside the image (`local://`
    /// stripped), an `hdfs://` URL, or [`UPLOADED_PREFIX`] and the SHA-256 of
    /// the archive in the bundle ConfigMap.
    pub bundle: Option<String>,
    pub cluster: ClusterShape,
    /// The TaskManagers' image (the JobManager's own, normally).
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub service_account: Option<String>,
    /// Our `gpu` as the cluster's extended resource.
    pub gpu_resource: String,
    /// A TaskManager pod Unschedulable or stuck this long is a failed request.
    #[serde(with = "millis")]
    pub pending_timeout: Duration,
    /// After an application's job ends, how long the JobManager waits for the
    /// client to read the result before it deletes its own Deployment.
    #[serde(with = "millis")]
    pub linger: Duration,
    /// 0 = any free port (tests, where pods share one loopback). TaskManagers
    /// are told the bound RPC port; the Service names the configured ones.
    pub rpc_port: u16,
    pub rest_port: u16,
    /// Passed on to TaskManagers (RUST_LOG).
    #[serde(default)]
    pub task_manager_env: BTreeMap<String, String>,
    /// Node directories every pod mounts at the same path (`--mount-host-path`).
    #[serde(default)]
    pub host_paths: Vec<String>,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// What the JobManager reports in `yf-<id>-status` (string values: a
/// ConfigMap's data is a map of strings).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStatus {
    /// `STARTING`, then the job's state (`RUNNING`, `FINISHED`, `FAILED`, ...);
    /// for a session `SESSION`.
    pub state: String,
    pub job_id: Option<String>,
    pub error: Option<String>,
    /// The JobManager's REST address (pod IP and port).
    pub rest: Option<String>,
}

impl JobStatus {
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut m = BTreeMap::from([("state".to_owned(), self.state.clone())]);
        for (k, v) in [("job", &self.job_id), ("error", &self.error), ("rest", &self.rest)] {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.clone());
            }
        }
        m
    }

    pub fn from_data(data: &BTreeMap<String, String>) -> JobStatus {
        JobStatus {
            state: data.get("state").cloned().unwrap_or_default(),
            job_id: data.get("job").cloned(),
            error: data.get("error").cloned(),
            rest: data.get("rest").cloned(),
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "FINISHED" | "FAILED" | "CANCELED")
    }
}
