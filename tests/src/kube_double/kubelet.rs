//! A kubelet double: runs the pods bound to its node as local processes and
//! reports their status as the captured status patches do (13: Running with
//! a `running` containerStatus; 14: Failed with `terminated`, OOMKilled 137).
//!
//! *Unverified* (no kubelet was captured; modelled from the Kubernetes docs):
//! the image is looked up in a map to a local executable (an unknown image
//! waits in `ErrImagePull`, then `ImagePullBackOff`); a Secret volume is
//! written to a per-pod dir and every env value naming the mount path is
//! rewritten to it (the double only: pods here share one filesystem);
//! `status.podIP` is 127.0.0.1; a graceful delete sends SIGTERM, then
//! SIGKILL after the grace period, then confirms the delete.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus, Pod,
    PodCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::chrono::Utc;

use super::Shared;

pub struct KubeletConfig {
    pub node: String,
    /// Pod dirs: `<root>/<namespace>/<pod>/`.
    pub root: PathBuf,
    /// Image name → the executable it runs.
    pub images: HashMap<String, PathBuf>,
}

struct Running {
    child: std::process::Child,
    /// Set when the pod is being deleted: when SIGKILL is due.
    kill_at: Option<Instant>,
    /// Killed by the test as the OOM killer would.
    oom: bool,
    started: Time,
}

#[derive(Default)]
struct KubeletState {
    running: HashMap<(String, String), Running>,
    /// Pods whose process ended: never started again (restartPolicy Never).
    done: std::collections::HashSet<(String, String)>,
}

pub struct Kubelet {
    state: Arc<Mutex<KubeletState>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        let mut st = self.state.lock().unwrap();
        for r in st.running.values_mut() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
    }
}

impl Kubelet {
    pub fn start(shared: Arc<Shared>, config: KubeletConfig) -> Kubelet {
        let state = Arc::new(Mutex::new(KubeletState::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                sync(&shared, &config, &st);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        Kubelet { state, task }
    }

    /// The pid of the pod's process, while it runs.
    pub fn pid(&self, namespace: &str, pod: &str) -> Option<u32> {
        self.state.lock().unwrap().running.get(&(namespace.to_owned(), pod.to_owned())).map(|r| r.child.id())
    }

    /// The kernel's OOM killer takes the pod's process.
    pub fn oom_kill(&self, namespace: &str, pod: &str) {
        if let Some(r) = self.state.lock().unwrap().running.get_mut(&(namespace.to_owned(), pod.to_owned())) {
            r.oom = true;
            let _ = r.child.kill();
        }
    }
}

fn now() -> Option<Time> {
    Some(Time(Utc::now()))
}

/// One pass of the kubelet's sync loop.
fn sync(shared: &Shared, config: &KubeletConfig, state: &Mutex<KubeletState>) {
    let pods: Vec<Pod> = shared
        .state
        .lock()
        .unwrap()
        .pods
        .values()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(config.node.as_str()))
        .cloned()
        .collect();
    let mut st = state.lock().unwrap();
    let present: std::collections::HashSet<(String, String)> = pods.iter().map(key).collect();
    // Force-deleted pods: their processes go.
    st.running.retain(|k, r| {
        if present.contains(k) {
            return true;
        }
        let _ = r.child.kill();
        let _ = r.child.wait();
        false
    });
    for pod in &pods {
        let k = key(pod);
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if let Some(r) = st.running.get_mut(&k) {
            if deleting && r.kill_at.is_none() {
                let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(30).max(0);
                r.kill_at = Some(Instant::now() + Duration::from_secs(grace as u64));
                // SAFETY: kill(2) on our own child, not yet reaped.
                unsafe { libc::kill(r.child.id() as i32, libc::SIGTERM) };
            }
            if r.kill_at.is_some_and(|t| Instant::now() >= t) {
                let _ = r.child.kill();
            }
            if let Ok(Some(exit)) = r.child.try_wait() {
                let r = st.running.remove(&k).unwrap();
                st.done.insert(k.clone());
                if deleting {
                    shared.confirm_deleted(&k.0, &k.1);
                } else {
                    report_exit(shared, pod, exit, r.oom, r.started);
                }
            }
            continue;
        }
        if deleting {
            // Never started, or already ended: nothing to stop.
            shared.confirm_deleted(&k.0, &k.1);
            continue;
        }
        if st.done.contains(&k) {
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if phase != "Pending" {
            continue;
        }
        match start(shared, config, pod) {
            Ok(child) => {
                let started = Time(Utc::now());
                report_running(shared, pod, started.clone());
                st.running.insert(k, Running { child, kill_at: None, oom: false, started });
            }
            Err(Waiting { reason, message }) => {
                let already = pod
                    .status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.first()?.state.as_ref()?.waiting.as_ref()?.reason.clone());
                if already.as_deref() != Some(reason.as_str()) {
                    report_waiting(shared, pod, &reason, &message);
                }
            }
        }
    }
}

fn key(p: &Pod) -> (String, String) {
    (p.metadata.namespace.clone().unwrap_or_default(), p.metadata.name.clone().unwrap_or_default())
}

struct Waiting {
    reason: String,
    message: String,
}

fn start(shared: &Shared, config: &KubeletConfig, pod: &Pod) -> Result<std::process::Child, Waiting> {
    let (ns, name) = key(pod);
    let spec = pod.spec.as_ref().ok_or(Waiting { reason: "CreateContainerError".into(), message: "no spec".into() })?;
    let container = spec
        .containers
        .first()
        .ok_or(Waiting { reason: "CreateContainerError".into(), message: "no container".into() })?;
    let image = container.image.clone().unwrap_or_default();
    let Some(binary) = config.images.get(&image) else {
        return Err(Waiting {
            reason: "ImagePullBackOff".into(),
            message: format!("Back-off pulling image \"{image}\""),
        });
    };
    let dir = config.root.join(&ns).join(&name);
    std::fs::create_dir_all(&dir).map_err(io_waiting)?;
    // Secret volumes: files in the pod dir; paths under the mount rewritten.
    let mut rewrites: Vec<(String, PathBuf)> = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let Some(volume) = spec.volumes.iter().flatten().find(|v| v.name == mount.name) else { continue };
        let Some(secret) = &volume.secret else { continue };
        let secret_name = secret.secret_name.clone().unwrap_or_default();
        let data = shared.state.lock().unwrap().secrets.get(&(ns.clone(), secret_name.clone())).cloned();
        let Some(data) = data else {
            return Err(Waiting {
                reason: "CreateContainerConfigError".into(),
                message: format!("secret \"{secret_name}\" not found"),
            });
        };
        let vdir = dir.join("volumes").join(&volume.name);
        std::fs::create_dir_all(&vdir).map_err(io_waiting)?;
        let mut files: BTreeMap<String, Vec<u8>> =
            data.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
        for (k, v) in data.string_data.unwrap_or_default() {
            files.insert(k, v.into_bytes());
        }
        for (k, v) in files {
            write_mode(&vdir.join(&k), &v, secret.default_mode.unwrap_or(0o644)).map_err(io_waiting)?;
        }
        rewrites.push((mount.mount_path.clone(), vdir));
    }
    let mut cmd = std::process::Command::new(binary);
    cmd.args(container.args.iter().flatten()).current_dir(&dir).env_clear().stdin(Stdio::null());
    for var in ["PATH", "RUST_LOG", "HOME"] {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    for e in container.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) => rewrite(v, &rewrites),
            (None, Some(from)) => match from.field_ref.as_ref().map(|f| f.field_path.as_str()) {
                Some("status.podIP" | "status.hostIP") => "127.0.0.1".into(),
                Some("metadata.name") => name.clone(),
                Some("metadata.namespace") => ns.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        cmd.env(&e.name, value);
    }
    let log = std::fs::File::create(dir.join(format!("{}.log", container.name))).map_err(io_waiting)?;
    cmd.stdout(log.try_clone().map_err(io_waiting)?).stderr(log);
    cmd.spawn().map_err(|e| Waiting { reason: "RunContainerError".into(), message: e.to_string() })
}

fn rewrite(value: &str, rewrites: &[(String, PathBuf)]) -> String {
    for (mount, dir) in rewrites {
        if let Some(rest) = value.strip_prefix(mount.as_str()) {
            return format!("{}{rest}", dir.display());
        }
    }
    value.to_owned()
}

fn write_mode(path: &Path, data: &[u8], mode: i32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, data)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode as u32 | 0o400))
}

fn io_waiting(e: std::io::Error) -> Waiting {
    Waiting { reason: "CreateContainerError".into(), message: e.to_string() }
}

fn container_name(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone()).unwrap_or_default()
}

fn image(pod: &Pod) -> String {
    pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone()).unwrap_or_default()
}

/// Capture 13's patch: Running, Ready, a running containerStatus.
fn report_running(shared: &Shared, pod: &Pod, started: Time) {
    let (ns, name) = key(pod);
    let (cname, image) = (container_name(pod), image(pod));
    shared.patch_status(&ns, &name, |s| {
        s.phase = Some("Running".into());
        s.pod_ip = Some("127.0.0.1".into());
        s.host_ip = Some("127.0.0.1".into());
        s.start_time = Some(started.clone());
        set_condition(s, "Ready", "True", None);
        s.container_statuses = Some(vec![ContainerStatus {
            name: cname,
            image,
            image_id: String::new(),
            ready: true,
            restart_count: 0,
            started: Some(true),
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(started) }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    });
}

/// Capture 14's patch: Failed (or Succeeded) with a terminated containerStatus.
fn report_exit(shared: &Shared, pod: &Pod, exit: std::process::ExitStatus, oom: bool, started: Time) {
    use std::os::unix::process::ExitStatusExt;
    let (ns, name) = key(pod);
    let (cname, image) = (container_name(pod), image(pod));
    let code = exit.code().unwrap_or_else(|| 128 + exit.signal().unwrap_or(9));
    let reason = if oom {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    shared.patch_status(&ns, &name, |s| {
        s.phase = Some(if code == 0 && !oom { "Succeeded" } else { "Failed" }.into());
        set_condition(s, "Ready", "False", Some(if code == 0 { "PodCompleted" } else { "PodFailed" }));
        s.container_statuses = Some(vec![ContainerStatus {
            name: cname,
            image,
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    reason: Some(reason.into()),
                    started_at: Some(started),
                    finished_at: now(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    });
}

fn report_waiting(shared: &Shared, pod: &Pod, reason: &str, message: &str) {
    let (ns, name) = key(pod);
    let (cname, image) = (container_name(pod), image(pod));
    shared.patch_status(&ns, &name, |s| {
        s.container_statuses = Some(vec![ContainerStatus {
            name: cname,
            image,
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message: Some(message.into()) }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    });
}

fn set_condition(s: &mut k8s_openapi::api::core::v1::PodStatus, type_: &str, status: &str, reason: Option<&str>) {
    let conditions = s.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != type_);
    conditions.push(PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(Into::into),
        last_transition_time: now(),
        ..Default::default()
    });
}

/// Base64 of a secret value, as a Secret's `data` holds it on the wire.
pub fn secret_data(value: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}
