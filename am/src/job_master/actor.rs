//! The JobMaster as one task: it owns the [`Scheduler`] (the pure core),
//! loops over its inputs (slot offers and task states from TaskExecutors,
//! heartbeats, notices from the ResourceManager, cancel, the restart timer),
//! and carries out the [`JobMasterAction`]s. RPCs are spawned, never awaited
//! in the loop.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use common::jobspec::{BuiltinSink, Bundle, Program};
use common::protocol::{BundleBlob, OfferSlots, TaskExecutionState, TaskIo};
use common::rpc::{Channels, TaskExecutorNotice};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{DeploymentContext, JobMasterAction, JobSnapshot, JobStatus, Scheduler, TaskManagerLocation};
use crate::dispatcher::{JobDetails, RestartEvent, SubtaskDetails, SubtaskMetrics, VertexDetails};
use crate::resource_manager::{JobMasterNotice, ResourceManagerHandle};

#[derive(Clone, Debug)]
pub struct JobMasterConfig {
    /// Where the JobMaster endpoint listens (the AM's RPC address).
    pub address: String,
    /// One channel per TaskExecutor, shared by every JobMaster and the ResourceManager.
    pub channels: Channels,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    /// With HA: where the sinks' parts are recorded before their commit starts.
    pub commit_log: Option<crate::high_availability::CommitLog>,
}

pub(crate) enum JmMsg {
    Offer(OfferSlots, oneshot::Sender<Vec<AllocationId>>),
    TaskState(TaskExecutionState),
    Heartbeat {
        resource_id: ResourceId,
        job_master_id: JobMasterId,
        allocations: Vec<AllocationId>,
        report_version: u64,
        /// The running attempts' counts so far.
        io: Vec<(ExecutionAttemptId, TaskIo)>,
        reply: oneshot::Sender<bool>,
    },
    /// The sinks' commit (or abort) ended, with the job's final error.
    OutputFinalized(Option<String>),
}

/// Routes TaskExecutors' calls to the JobMaster of their job.
#[derive(Clone, Default)]
pub struct JobMasterRegistry(Arc<RwLock<HashMap<JobId, mpsc::UnboundedSender<JmMsg>>>>);

impl JobMasterRegistry {
    pub(crate) fn get(&self, job_id: &JobId) -> Option<mpsc::UnboundedSender<JmMsg>> {
        self.0.read().ok()?.get(job_id).cloned()
    }
    fn insert(&self, job_id: JobId, tx: mpsc::UnboundedSender<JmMsg>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(job_id, tx);
        }
    }
    fn remove(&self, job_id: &JobId) {
        if let Ok(mut m) = self.0.write() {
            m.remove(job_id);
        }
    }
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What the Dispatcher hands a new JobMaster.
pub struct JobToRun {
    pub job_id: JobId,
    pub job_master_id: JobMasterId,
    pub bundle: Bundle,
    /// Where TaskExecutors fetch the bundle when it was uploaded to a session.
    pub bundle_blob: Option<BundleBlob>,
}

/// Starts the JobMaster of one job; the receiver sees its details change.
pub fn spawn(
    job: JobToRun,
    config: JobMasterConfig,
    rm: ResourceManagerHandle,
    registry: JobMasterRegistry,
    cancel: CancellationToken,
) -> watch::Receiver<JobDetails> {
    let JobToRun { job_id, job_master_id, bundle, bundle_blob } = job;
    let ctx =
        DeploymentContext { job_master_id, job_master_address: config.address.clone(), bundle_dir: bundle.dir.clone() };
    let scheduler = Scheduler::new(job_id, &bundle.spec, ctx);
    let started = SystemTime::now();
    let jm = JobMaster {
        job_id,
        job_master_id,
        bundle,
        bundle_blob,
        config,
        rm,
        registry,
        scheduler,
        started,
        started_at: Instant::now(),
        last_heartbeat: BTreeMap::new(),
        // `publish` below fills in the real details.
        details: watch::channel(JobDetails::default()).0,
        finalizing: false,
        ended: false,
        io: HashMap::new(),
    };
    let rx = jm.details.subscribe();
    jm.publish();
    tokio::spawn(jm.run(cancel));
    rx
}

struct JobMaster {
    job_id: JobId,
    job_master_id: JobMasterId,
    bundle: Bundle,
    /// Where TaskExecutors fetch an uploaded bundle.
    bundle_blob: Option<BundleBlob>,
    config: JobMasterConfig,
    rm: ResourceManagerHandle,
    registry: JobMasterRegistry,
    scheduler: Scheduler,
    started: SystemTime,
    started_at: Instant,
    /// When each TaskExecutor holding our slots last heartbeated.
    last_heartbeat: BTreeMap<ResourceId, Instant>,
    details: watch::Sender<JobDetails>,
    /// The job ended and its output is being committed: nothing is published
    /// until that is done (no one sees FINISHED before the output is there).
    finalizing: bool,
    /// The final details are published: the loop ends.
    ended: bool,
    /// What each attempt has moved, as last reported, with when and the
    /// back-pressure rate since the report before.
    io: HashMap<ExecutionAttemptId, IoSample>,
}

#[derive(Clone, Copy, Debug)]
struct IoSample {
    io: TaskIo,
    at: Instant,
    /// Back-pressured milliseconds per second since the previous report.
    backpressured_ms_per_s: u64,
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl JobMaster {
    async fn run(mut self, cancel: CancellationToken) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (notices_tx, mut notices) = mpsc::unbounded_channel();
        self.registry.insert(self.job_id, tx);
        self.rm.register_job_master(self.job_id, self.job_master_id, self.config.address.clone(), notices_tx);
        info!(job_id = %self.job_id, name = %self.bundle.spec.name, "JobMaster started");
        let actions = self.scheduler.start(now());
        self.execute(actions);
        let mut check = tokio::time::interval(self.config.heartbeat_interval);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cancel_seen = false;
        while !self.ended {
            let wakeup = self.scheduler.next_wakeup().map(Instant::from_std);
            let actions = tokio::select! {
                m = rx.recv() => match m {
                    Some(m) => self.handle(m),
                    None => break,
                },
                Some(n) = notices.recv() => match n {
                    JobMasterNotice::Unfulfillable(reason) => {
                        warn!(job_id = %self.job_id, %reason, "failing the job: its resources cannot be had");
                        self.scheduler.fail(&reason, now())
                    }
                    JobMasterNotice::TaskManagerLost { resource_id, cause } => {
                        self.last_heartbeat.remove(&resource_id);
                        self.scheduler.release_task_manager(&resource_id, &format!("TaskManager {resource_id} lost: {cause}"), now())
                    }
                },
                _ = cancel.cancelled(), if !cancel_seen => {
                    cancel_seen = true;
                    info!(job_id = %self.job_id, "cancelling");
                    self.scheduler.cancel(now())
                }
                _ = sleep_until(wakeup) => self.scheduler.tick(now()),
                _ = check.tick() => self.check_heartbeats(),
            };
            self.execute(actions);
        }
        self.registry.remove(&self.job_id);
        self.rm.job_ended(self.job_id);
    }

    fn handle(&mut self, msg: JmMsg) -> Vec<JobMasterAction> {
        match msg {
            JmMsg::Offer(offer, reply) => {
                if offer.job_master_id != self.job_master_id {
                    let _ = reply.send(vec![]);
                    return vec![];
                }
                let location = TaskManagerLocation {
                    resource_id: offer.resource_id.clone(),
                    address: offer.address.clone(),
                    data_address: offer.data_address.clone(),
                };
                self.last_heartbeat.entry(offer.resource_id.clone()).or_insert_with(Instant::now);
                let result = self.scheduler.offer_slots(location, offer.offers, offer.report_version, now());
                let _ = reply.send(result.accepted.iter().map(|o| o.allocation_id).collect());
                result.actions
            }
            JmMsg::TaskState(state) => {
                if let Some(io) = state.io {
                    self.record_io(state.attempt_id, io);
                }
                self.scheduler.update_task_state(&state, now())
            }
            JmMsg::OutputFinalized(error) => {
                self.publish_final(error);
                self.ended = true;
                vec![]
            }
            JmMsg::Heartbeat { resource_id, job_master_id, allocations, report_version, io, reply } => {
                let known = job_master_id == self.job_master_id;
                let _ = reply.send(known);
                if !known {
                    return vec![];
                }
                for (attempt, io) in io {
                    self.record_io(attempt, io);
                }
                self.last_heartbeat.insert(resource_id.clone(), Instant::now());
                self.scheduler.task_manager_heartbeat(&resource_id, &allocations, report_version, now())
            }
        }
    }

    fn record_io(&mut self, attempt: ExecutionAttemptId, io: TaskIo) {
        let at = Instant::now();
        let rate = match self.io.get(&attempt) {
            Some(prev) if at > prev.at => {
                let waited = io.backpressured_ms.saturating_sub(prev.io.backpressured_ms);
                (waited * 1000 / (at - prev.at).as_millis().max(1) as u64).min(1000)
            }
            Some(prev) => prev.backpressured_ms_per_s,
            None => 0,
        };
        self.io.insert(attempt, IoSample { io, at, backpressured_ms_per_s: rate });
    }

    fn check_heartbeats(&mut self) -> Vec<JobMasterAction> {
        let timeout = self.config.heartbeat_timeout;
        let holding: std::collections::BTreeSet<ResourceId> =
            self.scheduler.pool().slots().map(|s| s.location.resource_id.clone()).collect();
        self.last_heartbeat.retain(|id, _| holding.contains(id));
        let dead: Vec<ResourceId> =
            self.last_heartbeat.iter().filter(|(_, t)| t.elapsed() > timeout).map(|(id, _)| id.clone()).collect();
        let mut actions = Vec::new();
        for id in dead {
            warn!(job_id = %self.job_id, resource_id = %id, "TaskExecutor heartbeat timed out");
            self.last_heartbeat.remove(&id);
            actions.extend(self.scheduler.release_task_manager(
                &id,
                &format!("no heartbeat from {id} for {timeout:?}"),
                now(),
            ));
        }
        actions
    }

    /// Carries the actions out, then publishes the job's details.
    fn execute(&mut self, actions: Vec<JobMasterAction>) {
        for action in actions {
            match action {
                JobMasterAction::DeclareRequirements(reqs) => self.rm.declare(self.job_id, reqs),
                JobMasterAction::Deploy { task_manager, mut tdd } => {
                    tdd.bundle_blob = self.bundle_blob.clone();
                    let (gateway, job_tx) = (
                        self.config.channels.task_executor_gateway(&task_manager.address),
                        self.registry.get(&self.job_id),
                    );
                    tokio::spawn(async move {
                        let attempt_id = tdd.attempt_id;
                        let job_id = tdd.job_id;
                        let r = async { gateway?.submit_task(&tdd).await }.await;
                        if let Err(e) = r {
                            // The deployment failed: that attempt failed.
                            if let Some(tx) = job_tx {
                                let _ = tx.send(JmMsg::TaskState(TaskExecutionState {
                                    job_id,
                                    attempt_id,
                                    state: common::protocol::ExecutionState::Failed,
                                    error: Some(format!("deploying to {} failed: {e}", task_manager.resource_id)),
                                    io: None,
                                }));
                            }
                        }
                    });
                }
                JobMasterAction::CancelTask { task_manager, attempt_id } => {
                    let notice = TaskExecutorNotice::CancelTask { attempt_id, job_master_id: self.job_master_id };
                    self.config.channels.notify(task_manager.address, notice);
                }
                JobMasterAction::FreeSlot { task_manager, allocation_id, cause } => {
                    let notice =
                        TaskExecutorNotice::FreeSlot { allocation_id, cause, job_master_id: self.job_master_id };
                    self.config.channels.notify(task_manager.address, notice);
                }
                JobMasterAction::JobFinished { status, error } => {
                    self.finalizing = true;
                    self.finalize_output(status, error);
                }
            }
        }
        if !self.finalizing {
            self.publish();
        }
    }

    /// Commits the built-in sinks' part files when the job succeeded, removes
    /// them otherwise, off the loop (HDFS renames can take a while); a failed
    /// commit fails the job. Answers with [`JmMsg::OutputFinalized`].
    fn finalize_output(&self, status: JobStatus, error: Option<String>) {
        let graph = self.scheduler.graph();
        let mut sinks: Vec<(PathBuf, Vec<(u32, u32)>)> = Vec::new();
        for (v, vertex) in graph.spec.vertices.iter().enumerate() {
            if let Program::Sink(BuiltinSink::TextFiles { path }) = &vertex.program {
                let parts = (0..vertex.parallelism)
                    .filter_map(|i| graph.execution(v, i).map(|e| (i, e.attempt.number)))
                    .collect();
                sinks.push((resolve(&self.bundle.dir, path), parts));
            }
        }
        let job_id = self.job_id;
        let ok = status == JobStatus::Finished;
        let Some(tx) = self.registry.get(&job_id) else { return };
        let commit_log = self.config.commit_log.clone();
        tokio::spawn(async move {
            let result = tokio::task::spawn_blocking(move || -> Result<(), String> {
                // A new leader finishes this commit instead of running the job again.
                if let (true, Some(log)) = (ok, &commit_log) {
                    log.record(job_id, &sinks).map_err(|e| e.to_string())?;
                }
                for (dir, parts) in sinks {
                    if ok {
                        common::output::commit(&dir, job_id, &parts).map_err(|e| e.to_string())?;
                    } else {
                        common::output::abort(&dir, job_id).map_err(|e| e.to_string())?;
                    }
                }
                Ok(())
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
            let error = match result {
                Ok(()) => error,
                Err(e) => {
                    Some(error.map_or_else(|| format!("committing the output failed: {e}"), |x| format!("{x}; {e}")))
                }
            };
            let _ = tx.send(JmMsg::OutputFinalized(error));
        });
    }

    fn details(&self, snap: &JobSnapshot) -> JobDetails {
        let elapsed = self.started_at.elapsed().as_millis() as u64;
        let vertices = snap
            .vertices
            .iter()
            .map(|v| {
                let s = v.states;
                let tasks = [
                    ("CREATED", s.created),
                    ("SCHEDULED", s.scheduled),
                    ("DEPLOYING", s.deploying),
                    ("RUNNING", s.running),
                    ("FINISHED", s.finished),
                    ("CANCELING", s.canceling),
                    ("CANCELED", s.canceled),
                    ("FAILED", s.failed),
                ]
                .into_iter()
                .map(|(k, n)| (k.to_owned(), n))
                .collect();
                let subtasks = v
                    .subtasks
                    .iter()
                    .map(|t| SubtaskDetails {
                        subtask: t.subtask,
                        attempt: t.attempt,
                        status: t.state.as_str().to_owned(),
                        taskmanager_id: t.task_manager.as_ref().map(ToString::to_string),
                        host: t.host.clone(),
                        metrics: self.io.get(&t.attempt_id).map(|s| SubtaskMetrics {
                            read_records: s.io.records_in,
                            read_bytes: s.io.bytes_in,
                            write_records: s.io.records_out,
                            write_bytes: s.io.bytes_out,
                            backpressured_ms: s.io.backpressured_ms,
                            backpressured_ms_per_second: s.backpressured_ms_per_s,
                        }),
                    })
                    .collect();
                VertexDetails { name: v.name.clone(), parallelism: v.parallelism, tasks, subtasks }
            })
            .collect();
        JobDetails {
            jid: self.job_id.to_string(),
            name: snap.name.clone(),
            state: snap.status.as_str().to_owned(),
            start_time: epoch_ms(self.started),
            end_time: -1,
            duration: elapsed,
            restarts: snap.restarts,
            vertices,
            error: snap.failure.clone(),
            restart_history: snap
                .restart_history
                .iter()
                .map(|(at, cause)| {
                    // Instants are the shell's clock: counted from when this JobMaster started.
                    let since = at.saturating_duration_since(self.started_at.into_std()).as_millis() as u64;
                    RestartEvent { time: epoch_ms(self.started) + since, cause: cause.clone() }
                })
                .collect(),
        }
    }

    fn publish(&self) {
        let d = self.details(&self.scheduler.snapshot());
        self.details.send_if_modified(|old| {
            let changed = old.state != d.state
                || old.vertices != d.vertices
                || old.error != d.error
                || old.restart_history != d.restart_history;
            *old = d;
            changed
        });
    }

    fn publish_final(&self, error: Option<String>) {
        let snap = self.scheduler.snapshot();
        let mut d = self.details(&snap);
        if error.is_some() && snap.status == JobStatus::Finished {
            d.state = JobStatus::Failed.as_str().into();
        }
        if error.is_some() {
            d.error = error;
        }
        d.end_time = epoch_ms(SystemTime::now()) as i64;
        info!(job_id = %self.job_id, state = %d.state, "job ended");
        self.details.send_replace(d);
    }
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    // `hdfs://` URLs are absolute too; `common::output` commits them on HDFS.
    if p.is_absolute() || common::hdfs::is_hdfs(path) {
        p.to_owned()
    } else {
        base.join(p)
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
