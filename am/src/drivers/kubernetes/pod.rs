//! Translations between our vocabulary and Kubernetes': a [`WorkerSpec`]
//! becomes a TaskManager pod; a pod's status becomes what the driver does
//! next. Pure functions, checked against the kube-apiserver 1.28 captures
//! (`../shared/wire/kubernetes-1.28/`, files 06, 12–16).

use std::collections::BTreeMap;

use common::ids::ResourceId;
use common::launch::SecretSource;
use common::resources::MIB;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, Pod, PodSpec, ResourceRequirements,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::resource_manager::worker::WorkerSpec;

/// Where every pod of a cluster mounts the application secret (a Secret
/// volume: never an env value, never an argument).
pub const SECRET_MOUNT_DIR: &str = "/etc/yarn-flink";
/// The key of the application secret (hex) in the cluster's Secret.
pub const SECRET_KEY: &str = "secret";
pub const LABEL_APP: &str = "app";
pub const LABEL_CLUSTER: &str = "yarn-flink/cluster";
pub const LABEL_COMPONENT: &str = "component";
pub const LABEL_SPEC: &str = "yarn-flink/worker-spec";
pub const CONTAINER_NAME: &str = "taskmanager";

/// What every TaskManager pod of one cluster shares.
#[derive(Clone, Debug)]
pub struct PodTemplate {
    pub cluster_id: String,
    pub image: String,
    pub image_pull_policy: Option<String>,
    pub service_account: Option<String>,
    /// The JobManager Deployment that owns every TaskManager pod, so that
    /// deleting it garbage-collects them: (name, uid).
    pub owner: Option<(String, String)>,
    /// The Secret holding the application secret under [`SECRET_KEY`].
    pub secret_name: String,
    pub rm_address: String,
    /// The extended resource our `gpu` is, e.g. `nvidia.com/gpu`.
    pub gpu_resource: String,
    pub env: Vec<(String, String)>,
    /// Node directories mounted at the same path (`--mount-host-path`).
    pub host_paths: Vec<String>,
}

/// hostPath volumes for `paths`, each mounted at its own path: data every
/// pod of a node reads or writes in place (a shared mount, a kind node's
/// directory). Named `host-<n>`.
pub fn host_path_volumes(paths: &[String]) -> (Vec<Volume>, Vec<VolumeMount>) {
    paths
        .iter()
        .enumerate()
        .map(|(n, path)| {
            let name = format!("host-{n}");
            let volume = Volume {
                name: name.clone(),
                host_path: Some(HostPathVolumeSource { path: path.clone(), type_: Some("Directory".into()) }),
                ..Default::default()
            };
            (volume, VolumeMount { name, mount_path: path.clone(), ..Default::default() })
        })
        .unzip()
}

/// `yf-<cluster>-taskmanager-<attempt>-<n>`: unique per JobManager attempt,
/// and a valid RFC 1123 name when the cluster id is one.
pub fn pod_name(cluster_id: &str, attempt: u32, n: u64) -> String {
    format!("yf-{cluster_id}-taskmanager-{attempt}-{n}")
}

/// CPU in millicores, as the apiserver stores what we send (`1500m`).
pub fn cpu_quantity(millis: u64) -> Quantity {
    Quantity(format!("{millis}m"))
}

/// Memory in `Mi` when whole, else in bytes.
pub fn memory_quantity(bytes: u64) -> Quantity {
    if bytes.is_multiple_of(MIB) {
        Quantity(format!("{}Mi", bytes / MIB))
    } else {
        Quantity(bytes.to_string())
    }
}

/// Requests = limits = the spec's total (QoS Guaranteed: the TaskManager
/// sizes its slots from exactly this, so it must neither be squeezed nor
/// allowed to grow into a neighbour's share).
pub fn resources(spec: &WorkerSpec, gpu_resource: &str) -> BTreeMap<String, Quantity> {
    let mut r = BTreeMap::new();
    r.insert("cpu".to_owned(), cpu_quantity(spec.total.cpu_millis.max(1)));
    r.insert("memory".to_owned(), memory_quantity(spec.total.total_memory_bytes().max(MIB)));
    for (name, amount) in &spec.total.extended {
        if *amount > 0 {
            let k8s_name = if name == "gpu" { gpu_resource } else { name.as_str() };
            r.insert(k8s_name.to_owned(), Quantity(amount.to_string()));
        }
    }
    r
}

/// The label selector of every TaskManager pod of `cluster_id`.
pub fn selector(cluster_id: &str) -> String {
    format!("{LABEL_CLUSTER}={cluster_id},{LABEL_COMPONENT}=taskmanager")
}

/// The TaskManager pod `name` for one worker of `spec` (`spec_key` labels
/// which shape it is, for `kubectl get pods -l`).
pub fn taskmanager_pod(template: &PodTemplate, name: &str, spec: &WorkerSpec, spec_key: &str) -> Pod {
    let secret_file = format!("{SECRET_MOUNT_DIR}/{SECRET_KEY}");
    let (host_volumes, host_mounts) = host_path_volumes(&template.host_paths);
    let launch = spec.launch(
        &template.rm_address,
        &ResourceId::new(name),
        SecretSource::File(secret_file.into()),
        "tm-work".into(),
        "",
    );
    let mut env: Vec<EnvVar> = launch
        .to_env()
        .into_iter()
        .filter(|(k, _)| k != common::launch::ENV_HOST)
        .chain(template.env.iter().cloned())
        .map(|(name, value)| EnvVar { name, value: Some(value), value_from: None })
        .collect();
    // The TaskManager advertises its pod's IP, which only the kubelet knows.
    env.push(EnvVar {
        name: common::launch::ENV_HOST.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: "status.podIP".into(), api_version: None }),
            ..Default::default()
        }),
    });
    let quantities = resources(spec, &template.gpu_resource);
    let labels = BTreeMap::from([
        (LABEL_APP.to_owned(), "yarn-flink".to_owned()),
        (LABEL_CLUSTER.to_owned(), template.cluster_id.clone()),
        (LABEL_COMPONENT.to_owned(), "taskmanager".to_owned()),
        (LABEL_SPEC.to_owned(), spec_key.to_owned()),
    ]);
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(labels),
            owner_references: template.owner.as_ref().map(|(owner, uid)| vec![owned_by_deployment(owner, uid)]),
            ..Default::default()
        },
        spec: Some(PodSpec {
            // A TaskManager that ends is replaced by the ResourceManager, sized
            // for what is missing then, not restarted in place by the kubelet.
            restart_policy: Some("Never".into()),
            service_account_name: template.service_account.clone(),
            containers: vec![Container {
                name: CONTAINER_NAME.into(),
                image: Some(template.image.clone()),
                image_pull_policy: template.image_pull_policy.clone(),
                args: Some(vec!["taskmanager".into()]),
                // A TaskManager that fails says why in its pod status, not only in its log.
                termination_message_policy: Some("FallbackToLogsOnError".into()),
                env: Some(env),
                resources: Some(ResourceRequirements {
                    requests: Some(quantities.clone()),
                    limits: Some(quantities),
                    ..Default::default()
                }),
                volume_mounts: Some(
                    std::iter::once(VolumeMount {
                        name: "secret".into(),
                        mount_path: SECRET_MOUNT_DIR.into(),
                        read_only: Some(true),
                        ..Default::default()
                    })
                    .chain(host_mounts)
                    .collect(),
                ),
                ..Default::default()
            }],
            volumes: Some(
                std::iter::once(Volume {
                    name: "secret".into(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(template.secret_name.clone()),
                        default_mode: Some(0o400),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .chain(host_volumes)
                .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

/// What a pod's state means to the driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    /// Not bound to a node yet. `waiting` is why, when the scheduler said
    /// (`Unschedulable` and its message).
    Pending { waiting: Option<String> },
    /// Bound to a node and not ended; `waiting` is a container stuck before
    /// start (ImagePullBackOff, CreateContainerConfigError) and its message.
    Bound { waiting: Option<String> },
    /// Ended (phase Failed or Succeeded), with why.
    Ended(String),
    /// Being deleted (deletionTimestamp set): its TaskManager is going away.
    Deleting,
}

/// Container waiting reasons that do not fix themselves quickly.
const STUCK_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
];

/// The ownerReference every object of a cluster but its Deployment carries:
/// deleting the Deployment garbage-collects them (captures 20-21).
pub fn owned_by_deployment(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

pub fn observe(pod: &Pod) -> Observed {
    let name = pod.metadata.name.as_deref().unwrap_or("?");
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    if matches!(phase, "Failed" | "Succeeded") {
        return Observed::Ended(ended_because(name, &status));
    }
    if pod.metadata.deletion_timestamp.is_some() {
        return Observed::Deleting;
    }
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    if !bound {
        let waiting = status.conditions.iter().flatten().find_map(|c| {
            (c.type_ == "PodScheduled" && c.status == "False").then(|| {
                format!(
                    "{}: {}",
                    c.reason.as_deref().unwrap_or("not scheduled"),
                    c.message.as_deref().unwrap_or("no message from the scheduler")
                )
            })
        });
        return Observed::Pending { waiting };
    }
    let waiting = status.container_statuses.iter().flatten().find_map(|cs| {
        let w = cs.state.as_ref()?.waiting.as_ref()?;
        let reason = w.reason.as_deref()?;
        STUCK_WAITING.contains(&reason).then(|| {
            let mut s = format!("{reason}: {}", w.message.as_deref().unwrap_or("no message from the kubelet"));
            // CrashLoopBackOff: the exit before it is the reason.
            if let Some(t) = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref()) {
                s.push_str(&format!("; last exit: {} (exit code {})", t.reason.as_deref().unwrap_or("?"), t.exit_code));
                if let Some(m) = t.message.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
                    s.push_str(&format!(": {m}"));
                }
            }
            s
        })
    });
    Observed::Bound { waiting }
}

/// `pod P failed: container taskmanager terminated: OOMKilled (exit code 137)`,
/// or the pod's own reason (`Evicted: The node was low on resource: memory.`).
fn ended_because(name: &str, status: &k8s_openapi::api::core::v1::PodStatus) -> String {
    let phase = status.phase.as_deref().unwrap_or("Failed").to_lowercase();
    let mut why = Vec::new();
    if let Some(reason) = &status.reason {
        why.push(match &status.message {
            Some(m) => format!("{reason}: {m}"),
            None => reason.clone(),
        });
    }
    for cs in status.container_statuses.iter().flatten() {
        if let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref()) {
            let mut s = format!(
                "container {} terminated: {} (exit code {})",
                cs.name,
                t.reason.as_deref().unwrap_or("?"),
                t.exit_code
            );
            if let Some(m) = t.message.as_deref().filter(|m| !m.is_empty()) {
                s.push_str(&format!(": {m}"));
            }
            why.push(s);
        }
    }
    if why.is_empty() {
        why.push(status.message.clone().unwrap_or_else(|| "no reason given".into()));
    }
    format!("pod {name} {phase}: {}", why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::resources::ResourceProfile;

    #[test]
    fn host_paths_are_mounted_where_they_are_on_the_node() {
        let (volumes, mounts) = host_path_volumes(&["/data".into(), "/tmp/x".into()]);
        assert_eq!(volumes.len(), 2);
        for (v, m) in volumes.iter().zip(&mounts) {
            let host = v.host_path.as_ref().expect("a hostPath volume");
            assert_eq!(v.name, m.name);
            assert_eq!(host.path, m.mount_path, "the same path in the pod");
            // A missing directory fails the mount instead of being created empty on the node.
            assert_eq!(host.type_.as_deref(), Some("Directory"));
        }
        assert_ne!(volumes[0].name, volumes[1].name);
    }

    #[test]
    fn quantities_are_what_the_apiserver_stores() {
        assert_eq!(cpu_quantity(1500).0, "1500m");
        assert_eq!(memory_quantity(768 * MIB).0, "768Mi");
        assert_eq!(memory_quantity(768 * MIB + 1).0, (768 * MIB + 1).to_string());
        let mut p = ResourceProfile::new(2000, 1024 * MIB);
        p.extended.insert("gpu".into(), 1);
        let r = resources(&WorkerSpec::uniform(p, 1), "nvidia.com/gpu");
        assert_eq!(r.get("nvidia.com/gpu").map(|q| q.0.as_str()), Some("1"));
        assert!(!r.contains_key("gpu"));
    }
}
