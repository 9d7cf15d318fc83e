//! The `process` driver, the embedded default: every TaskManager is a child
//! process (`yarn-flink taskmanager`) on this machine.
//!
//! Children die with us: each gets `PR_SET_PDEATHSIG`, so even a `kill -9` of
//! the ResourceManager leaves no TaskManager behind; and a TaskManager that
//! cannot reach its ResourceManager exits after its registration timeout.
//! Except in an HA session (`detach`): there TaskManagers outlive their
//! leader, find the next one through ZooKeeper, and are stopped by it.

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
    /// Worker ids are `<id_prefix><n>`: unique per leader in an HA session,
    /// where a new leader adopts its predecessors' TaskManagers.
    pub id_prefix: String,
    /// HA: TaskManagers in their own session, without `PR_SET_PDEATHSIG`, so
    /// they outlive this process.
    pub detach: bool,
}

pub struct ProcessDriver {
    config: ProcessDriverConfig,
    events: mpsc::UnboundedSender<DriverEvent>,
    next_id: u64,
    /// How to stop each worker: its wait task owns the child, so a signal only
    /// ever reaches a process that task has not reaped (no pid reuse). A worker
    /// leaves the map when its process has been reaped.
    workers: HashMap<ResourceId, mpsc::UnboundedSender<Stop>>,
    reaped: mpsc::UnboundedReceiver<ResourceId>,
    reaped_tx: mpsc::UnboundedSender<ResourceId>,
    /// The wait tasks still running (finished ones are dropped as we go).
    exits: Vec<tokio::task::JoinHandle<()>>,
}

/// What a worker's wait task is told.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// SIGTERM, then SIGKILL after the grace period.
    Graceful,
    /// SIGKILL now.
    Now,
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
        self.exits.retain(|t| !t.is_finished());
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
        let detach = self.config.detach;
        // SAFETY: prctl and setsid are async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if detach {
                    libc::setsid();
                } else if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.spawn()
    }
}

/// Waits for the child, and stops it when told: SIGTERM through its pid while
/// this task still owns it unreaped, SIGKILL through the handle.
async fn watch(mut child: Child, mut stops: mpsc::UnboundedReceiver<Stop>, grace: Duration) -> String {
    let pid = child.id().unwrap_or(0);
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let kill_at = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = child.wait() => {
                return match status {
                    Ok(status) => format!("TaskManager process {pid} exited: {status}"),
                    Err(e) => format!("waiting for TaskManager process {pid} failed: {e}"),
                };
            }
            stop = stops.recv() => match stop {
                Some(Stop::Graceful) => {
                    if let Some(id) = child.id().and_then(|p| i32::try_from(p).ok()) {
                        // SAFETY: kill(2) on our own child, which this task has not reaped.
                        unsafe { libc::kill(id, libc::SIGTERM) };
                    }
                    deadline.get_or_insert(tokio::time::Instant::now() + grace);
                }
                Some(Stop::Now) => {
                    let _ = child.start_kill();
                }
                // The driver is gone: PR_SET_PDEATHSIG covers the child.
                None => stops = mpsc::unbounded_channel().1,
            },
            _ = kill_at => {
                let _ = child.start_kill();
                deadline = None;
            }
        }
    }
}

impl ResourceManagerDriver for ProcessDriver {
    fn name(&self) -> &'static str {
        "process"
    }

    fn request_worker(&mut self, spec: &WorkerSpec) {
        self.collect_reaped();
        let resource_id = ResourceId::new(format!("{}{}", self.config.id_prefix, self.next_id));
        self.next_id += 1;
        match self.spawn(&resource_id, spec) {
            Ok(child) => {
                let pid = child.id().unwrap_or(0);
                info!(%resource_id, pid, total = %spec.total, slots = spec.num_slots, "started TaskManager process");
                let (stop_tx, stops) = mpsc::unbounded_channel();
                self.workers.insert(resource_id.clone(), stop_tx);
                let _ = self
                    .events
                    .send(DriverEvent::WorkerStarted { resource_id: resource_id.clone(), spec: spec.clone() });
                let (events, reaped, grace) = (self.events.clone(), self.reaped_tx.clone(), self.config.stop_grace);
                self.exits.push(tokio::spawn(async move {
                    let diagnostics = watch(child, stops, grace).await;
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

    fn worker_details(&self, resource_id: &ResourceId) -> crate::resource_manager::driver::WorkerDetails {
        crate::resource_manager::driver::WorkerDetails {
            container: None,
            log: Some(crate::resource_manager::driver::LogLocation::File(
                self.config.work_dir.join(format!("{resource_id}.log")),
            )),
        }
    }

    fn release_worker(&mut self, resource_id: &ResourceId) {
        self.collect_reaped();
        if let Some(stop) = self.workers.get(resource_id) {
            info!(%resource_id, "stopping TaskManager process");
            let _ = stop.send(Stop::Graceful);
        }
    }

    fn terminate(&mut self) -> BoxFuture<'static, ()> {
        self.collect_reaped();
        for stop in self.workers.values() {
            let _ = stop.send(Stop::Graceful);
        }
        let stops: Vec<mpsc::UnboundedSender<Stop>> = self.workers.values().cloned().collect();
        let exits = std::mem::take(&mut self.exits);
        let grace = self.config.stop_grace;
        Box::pin(async move {
            let all = futures::future::join_all(exits);
            tokio::pin!(all);
            if tokio::time::timeout(grace, &mut all).await.is_err() {
                for stop in stops {
                    let _ = stop.send(Stop::Now);
                }
                all.await;
            }
        })
    }
}
