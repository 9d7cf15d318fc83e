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
//! SIGKILL after the grace period, then confirms the delete. A container of
//! a restartPolicy Always pod that exits waits in `CrashLoopBackOff` (10 s,
//! doubling to 5 min) with the exit in `lastState`, and restarts in place;
//! `terminationMessagePolicy: FallbackToLogsOnError` puts the log's tail
//! (80 lines, 2048 bytes at most) in the terminated state's message.

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
    /// Given to every pod as `KUBECONFIG`, in place of a mounted
    /// service-account token (the double serves plain HTTP).
    pub kubeconfig: Option<PathBuf>,
}

struct Running {
    child: std::process::Child,
    /// Set when the pod is being deleted: when SIGKILL is due.
    kill_at: Option<Instant>,
    /// Killed by the test as the OOM killer would.
    oom: bool,
    /// Evicted by the test as node-pressure eviction would: the pod's message.
    evicted: Option<String>,
    started: Time,
}

#[derive(Default)]
struct KubeletState {
    running: HashMap<(String, String), Running>,
    /// Pods whose process ended: never started again (restartPolicy Never).
    done: std::collections::HashSet<(String, String)>,
    /// restartPolicy Always pods in CrashLoopBackOff: restarts so far, and when the next is due.
    crashed: HashMap<(String, String), (i32, Instant)>,
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

    /// Node-pressure eviction (*unverified*, from the docs: the kubelet kills
    /// the pod and marks it Failed with reason `Evicted` and a message naming
    /// the resource).
    pub fn evict(&self, namespace: &str, pod: &str, message: &str) {
        if let Some(r) = self.state.lock().unwrap().running.get_mut(&(namespace.to_owned(), pod.to_owned())) {
            r.evicted = Some(message.to_owned());
            let _ = r.child.kill();
        }
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
                let Some(r) = st.running.remove(&k) else { continue };
                let always =
                    pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always") == "Always";
                if deleting {
                    st.done.insert(k.clone());
                    shared.confirm_deleted(&k.0, &k.1);
                } else if let Some(message) = r.evicted.clone() {
                    st.done.insert(k.clone());
                    let state = terminated(config, pod, exit, false, r.started);
                    // One status update, as the kubelet makes it: phase, reason and message together.
                    report_exit(shared, pod, state, Some(("Evicted".into(), message)));
                } else if always {
                    let restarts = st.crashed.get(&k).map_or(0, |c| c.0) + 1;
                    let backoff = Duration::from_secs(10 << (restarts - 1).min(5)).min(Duration::from_secs(300));
                    let last = terminated(config, pod, exit, r.oom, r.started);
                    report_crash_loop(shared, pod, last, restarts, backoff);
                    st.crashed.insert(k, (restarts, Instant::now() + backoff));
                } else {
                    st.done.insert(k.clone());
                    let state = terminated(config, pod, exit, r.oom, r.started);
                    report_exit(shared, pod, state, None);
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
        if let Some(&(restarts, due)) = st.crashed.get(&k) {
            if Instant::now() >= due {
                if let Ok(child) = start(shared, config, pod) {
                    let started = Time(Utc::now());
                    report_running(shared, pod, started.clone(), restarts);
                    st.running.insert(k, Running { child, kill_at: None, oom: false, evicted: None, started });
                }
            }
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        if phase != "Pending" {
            continue;
        }
        match start(shared, config, pod) {
            Ok(child) => {
                let started = Time(Utc::now());
                report_running(shared, pod, started.clone(), 0);
                st.running.insert(k, Running { child, kill_at: None, oom: false, evicted: None, started });
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
        let (files, mode): (BTreeMap<String, Vec<u8>>, i32) = if let Some(secret) = &volume.secret {
            let secret_name = secret.secret_name.clone().unwrap_or_default();
            let data = shared.state.lock().unwrap().secrets.get(&(ns.clone(), secret_name.clone())).cloned();
            // A missing volume source keeps the pod in ContainerCreating; the kubelet retries.
            let Some(data) = data else {
                return Err(Waiting {
                    reason: "ContainerCreating".into(),
                    message: format!(
                        "MountVolume.SetUp failed for volume \"{}\": secret \"{secret_name}\" not found",
                        volume.name
                    ),
                });
            };
            let mut files: BTreeMap<String, Vec<u8>> =
                data.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)).collect();
            for (k, v) in data.string_data.unwrap_or_default() {
                files.insert(k, v.into_bytes());
            }
            (files, secret.default_mode.unwrap_or(0o644))
        } else if let Some(cm) = &volume.config_map {
            let key = ("configmaps".to_owned(), ns.clone(), cm.name.clone());
            let data = shared.state.lock().unwrap().objects.get(&key).cloned();
            let Some(data) = data else {
                return Err(Waiting {
                    reason: "ContainerCreating".into(),
                    message: format!(
                        "MountVolume.SetUp failed for volume \"{}\": configmap \"{}\" not found",
                        volume.name, cm.name
                    ),
                });
            };
            let files = data["data"]
                .as_object()
                .map(|m| {
                    m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().as_bytes().to_vec())).collect()
                })
                .unwrap_or_default();
            (files, cm.default_mode.unwrap_or(0o644))
        } else if let Some(host) = &volume.host_path {
            // The node's own directory, seen at the mount path.
            rewrites.push((mount.mount_path.clone(), PathBuf::from(&host.path)));
            continue;
        } else {
            continue;
        };
        let vdir = dir.join("volumes").join(&volume.name);
        std::fs::create_dir_all(&vdir).map_err(io_waiting)?;
        for (k, v) in files {
            write_mode(&vdir.join(&k), &v, mode).map_err(io_waiting)?;
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
    if let Some(k) = &config.kubeconfig {
        cmd.env("KUBECONFIG", k);
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
    let log_path = dir.join(format!("{}.log", container.name));
    let log = std::fs::File::create(&log_path).map_err(io_waiting)?;
    shared.state.lock().unwrap().logs.insert((ns.clone(), name.clone()), log_path);
    cmd.stdout(log.try_clone().map_err(io_waiting)?).stderr(log);
    cmd.spawn().map_err(|e| Waiting { reason: "RunContainerError".into(), message: e.to_string() })
}

fn rewrite(value: &str, rewrites: &[(String, PathBuf)]) -> String {
    for (mount, dir) in rewrites {
        // Whole path components only: /etc/yarn-flink is not a prefix of /etc/yarn-flink-config.
        if let Some(rest) = value.strip_prefix(mount.trim_end_matches('/')) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{}{rest}", dir.display());
            }
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
fn report_running(shared: &Shared, pod: &Pod, started: Time, restarts: i32) {
    let (ns, name) = key(pod);
    let (cname, image) = (container_name(pod), image(pod));
    shared.patch_status(&ns, &name, |s| {
        s.phase = Some("Running".into());
        s.pod_ip = Some("127.0.0.1".into());
        s.host_ip = Some("127.0.0.1".into());
        s.start_time.get_or_insert(started.clone());
        set_condition(s, "Ready", "True", None);
        let last = s.container_statuses.as_ref().and_then(|cs| cs.first()?.last_state.clone());
        s.container_statuses = Some(vec![ContainerStatus {
            name: cname,
            image,
            image_id: String::new(),
            ready: true,
            restart_count: restarts,
            started: Some(true),
            last_state: last,
            state: Some(ContainerState {
                running: Some(ContainerStateRunning { started_at: Some(started) }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
    });
}

/// The `terminated` state of a container that exited; with
/// FallbackToLogsOnError and a failure, the log's tail is its message.
fn terminated(
    config: &KubeletConfig,
    pod: &Pod,
    exit: std::process::ExitStatus,
    oom: bool,
    started: Time,
) -> ContainerStateTerminated {
    use std::os::unix::process::ExitStatusExt;
    let code = exit.code().unwrap_or_else(|| 128 + exit.signal().unwrap_or(9));
    let reason = if oom {
        "OOMKilled"
    } else if code == 0 {
        "Completed"
    } else {
        "Error"
    };
    let fallback = pod.spec.as_ref().and_then(|s| s.containers.first()?.termination_message_policy.as_deref())
        == Some("FallbackToLogsOnError");
    let message = (fallback && code != 0).then(|| {
        let (ns, name) = key(pod);
        let log = config.root.join(ns).join(name).join(format!("{}.log", container_name(pod)));
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().rev().take(80).collect();
        let tail = lines.into_iter().rev().collect::<Vec<_>>().join("\n");
        let cut = tail.len().saturating_sub(2048);
        let cut = (cut..=tail.len()).find(|&i| tail.is_char_boundary(i)).unwrap_or(tail.len());
        tail[cut..].to_owned()
    });
    ContainerStateTerminated {
        exit_code: code,
        reason: Some(reason.into()),
        message,
        started_at: Some(started),
        finished_at: now(),
        ..Default::default()
    }
}

/// Capture 14's patch: Failed (or Succeeded) with a terminated containerStatus.
fn report_exit(shared: &Shared, pod: &Pod, t: ContainerStateTerminated, why: Option<(String, String)>) {
    let (ns, name) = key(pod);
    let (cname, image) = (container_name(pod), image(pod));
    let failed = t.exit_code != 0;
    shared.patch_status(&ns, &name, |s| {
        s.phase = Some(if failed { "Failed" } else { "Succeeded" }.into());
        if let Some((reason, message)) = why {
            s.reason = Some(reason);
            s.message = Some(message);
        }
        set_condition(s, "Ready", "False", Some(if failed { "PodFailed" } else { "PodCompleted" }));
        s.container_statuses = Some(vec![ContainerStatus {
            name: cname,
            image,
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(ContainerState { terminated: Some(t), ..Default::default() }),
            ..Default::default()
        }]);
    });
}

/// The kubelet's words for a container it will restart later.
fn report_crash_loop(shared: &Shared, pod: &Pod, last: ContainerStateTerminated, restarts: i32, backoff: Duration) {
    let (ns, name) = key(pod);
    let (cname, image) = (container_name(pod), image(pod));
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    shared.patch_status(&ns, &name, |s| {
        set_condition(s, "Ready", "False", Some("ContainersNotReady"));
        s.container_statuses = Some(vec![ContainerStatus {
            name: cname.clone(),
            image,
            image_id: String::new(),
            ready: false,
            restart_count: restarts,
            started: Some(false),
            last_state: Some(ContainerState { terminated: Some(last), ..Default::default() }),
            state: Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some("CrashLoopBackOff".into()),
                    message: Some(format!(
                        "back-off {}s restarting failed container={cname} pod={name}_{ns}({uid})",
                        backoff.as_secs()
                    )),
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
