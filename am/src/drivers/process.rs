//! The `process` driver, the embedded default: every TaskManager is a child
//! process (`yarn-flink taskmanager`) on this machine.
//!
//! Children die with us: each gets `PR_SET_PDEATHSIG`, so even a `kill -9` of
//! the ResourceManager leaves no TaskManager behind; and a TaskManager that
//! cannot reach its ResourceManager exits after its registration timeout.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::ids::ResourceId;
use common::launch::SecretSource;
use futures::future::BoxFuture;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use crate::resource_manager::worker::WorkerSpec;

#[derive(Clone, Debug)]
pub struct ProcessDriverConfig {
    /// The `yarn-flink` binary to start (normally our own executable).
    pub binary: PathBuf,
    pub rm_address: String,
    pub secret_file: PathBuf,
    /// Each TaskManager works in `<work_dir>/<resource id>` and logs to
    /// `<work_dir>/<resource id>.log`.
    pub work_dir: PathBuf,
    pub host: String,
    /// Extra environment for TaskManagers (e.g. RUST_LOG).
    pub env: Vec<(String, String)>,
    /// How long a released TaskManager gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

pub struct ProcessDriver {
    config: ProcessDriverConfig,
    events: mpsc::UnboundedSender<DriverEvent>,
    next_id: u64,
    /// pid by worker; a worker leaves the map when its process has been reaped.
    workers: HashMap<ResourceId, u32>,
    reaped: mpsc::UnboundedReceiver<ResourceId>,
    reaped_tx: mpsc::UnboundedSender<ResourceId>,
    exits: Vec<tokio::task::JoinHandle<()>>,
}

impl ProcessDriver {
    pub fn new(config: ProcessDriverConfig, events: mpsc::UnboundedSender<DriverEvent>) -> Self {
        let (reaped_tx, reaped) = mpsc::unbounded_channel();
        Self { config, events, next_id: 1, workers: HashMap::new(), reaped, reaped_tx, exits: Vec::new() }
    }

    fn collect_reaped(&mut self) {
        while let Ok(id) = self.reaped.try_recv() {
            self.workers.remove(&id);
        }
    }

    fn spawn(&mut self, resource_id: &ResourceId, spec: &WorkerSpec) -> std::io::Result<Child> {
        let work_dir = self.config.work_dir.join(resource_id.as_str());
        std::fs::create_dir_all(&work_dir)?;
        let log = std::fs::File::create(self.config.work_dir.join(format!("{resource_id}.log")))?;
        let secret = SecretSource::File(self.config.secret_file.clone());
        let launch = spec.launch(&self.config.rm_address, resource_id, secret, work_dir, &self.config.host);
        let mut cmd = Command::new(&self.config.binary);
        cmd.arg("taskmanager")
            .envs(launch.to_env())
            .envs(self.config.env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(false);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn()
    }
}

fn signal(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: plain kill(2) on a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

impl ResourceManagerDriver for ProcessDriver {
    fn name(&self) -> &'static str {
        "process"
    }

    fn request_worker(&mut self, spec: &WorkerSpec) {
        self.collect_reaped();
        let resource_id = ResourceId::new(format!("tm-{}", self.next_id));
        self.next_id += 1;
        match self.spawn(&resource_id, spec) {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                info!(%resource_id, pid, total = %spec.total, slots = spec.num_slots, "started TaskManager process");
                self.workers.insert(resource_id.clone(), pid);
                let _ = self
                    .events
                    .send(DriverEvent::WorkerStarted { resource_id: resource_id.clone(), spec: spec.clone() });
                let (events, reaped) = (self.events.clone(), self.reaped_tx.clone());
                self.exits.push(tokio::spawn(async move {
                    let diagnostics = match child.wait().await {
                        Ok(status) => format!("TaskManager process {pid} exited: {status}"),
                        Err(e) => format!("waiting for TaskManager process {pid} failed: {e}"),
                    };
                    let _ = reaped.send(resource_id.clone());
                    let _ = events.send(DriverEvent::WorkerTerminated { resource_id, diagnostics });
                }));
            }
            Err(e) => {
                let reason = format!("cannot start `{} taskmanager`: {e}", self.config.binary.display());
                warn!(%reason);
                let _ = self.events.send(DriverEvent::WorkerRequestFailed { spec: spec.clone(), reason });
            }
        }
    }

    fn cancel_request(&mut self, _spec: &WorkerSpec) {
        // A local process starts at once: there is no request left to withdraw.
    }

    fn release_worker(&mut self, resource_id: &ResourceId) {
        self.collect_reaped();
        if let Some(&pid) = self.workers.get(resource_id) {
            info!(%resource_id, pid, "stopping TaskManager process");
            signal(pid, libc::SIGTERM);
            let grace = self.config.stop_grace;
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                // Still there after the grace period: the pid cannot have been
                // reused while our child is unreaped, and the wait task reaps it.
                if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                    signal(pid, libc::SIGKILL);
                }
            });
        }
    }

    fn terminate(&mut self) -> BoxFuture<'static, ()> {
        self.collect_reaped();
        for &pid in self.workers.values() {
            signal(pid, libc::SIGTERM);
        }
        let pids: Vec<u32> = self.workers.values().copied().collect();
        let exits = std::mem::take(&mut self.exits);
        let grace = self.config.stop_grace;
        Box::pin(async move {
            let all = futures::future::join_all(exits);
            tokio::pin!(all);
            if tokio::time::timeout(grace, &mut all).await.is_err() {
                for pid in pids {
                    signal(pid, libc::SIGKILL);
                }
                all.await;
            }
        })
    }
}
