//! The TaskExecutor: registers with the ResourceManager, keeps its slots,
//! offers them to JobMasters, runs subtasks (through the data plane) and
//! heartbeats both.
//!
//! One task owns all state and loops over [`Msg`]; the gRPC service, the
//! heartbeat timers, RPC completions and finished tasks all arrive as messages.
//! Nothing in the loop awaits a remote peer: calls are spawned and their
//! results come back as messages, so a slow JobMaster cannot stall the rest.

mod bundles;
mod metrics;
mod service;
pub mod slot_table;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use common::ids::{AllocationId, ExecutionAttemptId, InstanceId, JobId, JobMasterId, ResourceId, ResourceManagerId};
use common::protocol::{
    ExecutionState, JobMasterHeartbeat, OfferSlots, RegisterTaskExecutor, RegistrationAccepted, RequestSlot, SlotOffer,
    SlotReport, TaskDeploymentDescriptor, TaskExecutionState, TaskExecutorHeartbeat,
};
use common::resources::ResourceProfile;
use common::rpc::{self, AppSecret, Channels, RpcTimeouts};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::data_plane::{DataPlane, DataPlaneConfig};
use slot_table::SlotTable;

#[derive(Clone, Debug)]
pub struct TaskExecutorConfig {
    pub resource_id: ResourceId,
    pub rm_address: String,
    pub total: ResourceProfile,
    pub default_slot: ResourceProfile,
    pub num_slots: u32,
    /// Host name peers use to reach this TaskExecutor.
    pub advertised_host: String,
    pub work_dir: PathBuf,
    pub secret: AppSecret,
    pub rpc: RpcTimeouts,
    /// Give up and exit when no ResourceManager accepted us for this long
    /// (so an orphaned TaskManager never lingers).
    pub registration_timeout: Duration,
    pub data_plane: DataPlaneConfig,
    /// Serve `/metrics` (Prometheus) on a port of its own, next to the RPC one.
    pub serve_metrics: bool,
    /// Find the ResourceManager as the cluster's leader (through ZooKeeper, or
    /// a leader file) instead of at `rm_address`; see `common::ha`.
    pub leader: Option<common::ha::LeaderSource>,
}

#[derive(Debug, thiserror::Error)]
pub enum TaskExecutorError {
    #[error("could not register with the ResourceManager at {address} within {timeout:?}: {last_error}")]
    RegistrationTimeout { address: String, timeout: Duration, last_error: String },
    #[error("the ResourceManager at {address} refused our credentials: {detail}; the TaskManager must be started with the application's secret file")]
    Unauthenticated { address: String, detail: String },
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs a TaskExecutor on the given listeners until `shutdown` resolves, the
/// ResourceManager tells it to stop, or it loses the ResourceManager for good.
pub async fn run(
    config: TaskExecutorConfig,
    rpc_listener: TcpListener,
    data_listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), TaskExecutorError> {
    let rpc_addr = rpc_listener.local_addr()?;
    let data_plane =
        DataPlane::start(data_listener, config.secret.as_bytes().into(), config.data_plane.clone()).await?;
    let address = format!("{}:{}", config.advertised_host, rpc_addr.port());
    let data_address = format!("{}:{}", config.advertised_host, data_plane.local_address().port());
    info!(resource_id = %config.resource_id, %address, %data_address, total = %config.total, "TaskExecutor starting");

    let (tx, rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let server = service::serve(rpc_listener, tx.clone(), config.secret.clone(), config.rpc.listener, stop.clone());
    let server = tokio::spawn(server);
    let metrics_address = if config.serve_metrics {
        let listener = TcpListener::bind((rpc_addr.ip(), 0)).await?;
        let port = listener.local_addr()?.port();
        let (secret, limits) = (config.secret.clone(), config.rpc.listener);
        tokio::spawn(metrics::serve(listener, secret, limits, tx.clone(), stop.clone()));
        Some(format!("{}:{port}", config.advertised_host))
    } else {
        None
    };
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.cancel();
        });
    }
    let (report_tx, report_rx) = watch::channel((SlotReport::default(), 0));
    let registration = RegisterTaskExecutor {
        resource_id: config.resource_id.clone(),
        address: address.clone(),
        data_address: data_address.clone(),
        metrics_address,
        total_resources: config.total.clone(),
        default_slot_profile: config.default_slot.clone(),
        num_slots: config.num_slots,
    };
    // One channel per peer: the ResourceManager, and the JobMasters (in practice the AM's one address).
    let channels = Channels::new(config.secret.clone(), config.rpc);
    let rm_link = tokio::spawn(rm_connection(
        config.clone(),
        channels.clone(),
        registration,
        report_rx,
        tx.clone(),
        stop.clone(),
    ));

    let mut te = TaskExecutor {
        slots: SlotTable::new(config.resource_id.clone(), config.total.clone()),
        tasks: HashMap::new(),
        rm: None,
        job_masters: HashMap::new(),
        address,
        data_address,
        report_tx,
        tx,
        data_plane,
        config,
        heartbeat_interval: Duration::from_secs(1),
        heartbeat_timeout: Duration::from_secs(10),
        early_slot_requests: Vec::new(),
        bundles: bundles::BundleCache::default(),
        channels,
        leader_lost: None,
        leaderless: false,
    };
    let mut rx = rx;
    let result = te.main_loop(&mut rx, stop.clone()).await;
    stop.cancel();
    te.cancel_all_tasks();
    // Let cancelled tasks kill their processes before we exit.
    let _ = tokio::time::timeout(Duration::from_secs(5), te.drain_tasks(&mut rx)).await;
    let _ = server.await;
    let link = rm_link.await.unwrap_or(Ok(()));
    result.and(link)
}

pub(crate) enum Msg {
    RequestSlot(RequestSlot, oneshot::Sender<Result<u64, tonic::Status>>),
    /// Fenced by the JobMaster holding the slot: refused (FAILED_PRECONDITION) otherwise.
    FreeSlot(AllocationId, JobMasterId, String, oneshot::Sender<Result<(), tonic::Status>>),
    SubmitTask(Box<TaskDeploymentDescriptor>, oneshot::Sender<Result<(), tonic::Status>>),
    /// Fenced like `FreeSlot`, by the JobMaster holding the task's slot.
    CancelTask(ExecutionAttemptId, JobMasterId, oneshot::Sender<Result<(), tonic::Status>>),
    Shutdown(ResourceManagerId, String),
    /// A token storage file whose HDFS delegation tokens replace ours.
    UpdateDelegationTokens(ResourceManagerId, Vec<u8>),
    Registered {
        rm_id: ResourceManagerId,
        instance_id: InstanceId,
        interval: Duration,
        timeout: Duration,
    },
    OfferAnswered {
        allocation_id: AllocationId,
        accepted: bool,
    },
    TaskEnded {
        attempt: ExecutionAttemptId,
        state: ExecutionState,
        error: Option<String>,
    },
    JobMasterHeartbeat {
        job_id: JobId,
        ok: bool,
    },
    /// A scrape of `/metrics`: the page, rendered from our state.
    Metrics(oneshot::Sender<String>),
    /// The leader we served is gone (HA): end everything it started, then
    /// answer `done`, so no task of the old leader runs beside the new one's.
    LeaderLost {
        done: oneshot::Sender<()>,
    },
}

struct RunningTask {
    job_id: JobId,
    job_master_address: String,
    cancel: CancellationToken,
    /// What it has moved so far (reported with JobMaster heartbeats and its end).
    io: Arc<crate::data_plane::metrics::TaskIoCounters>,
    task_name: String,
    subtask_index: u32,
    /// Where `/metrics` last read its back-pressure from.
    back_pressure_mark: metrics::RateMark,
}

struct JobMasterLink {
    last_ok: Instant,
}

struct TaskExecutor {
    config: TaskExecutorConfig,
    slots: SlotTable,
    tasks: HashMap<ExecutionAttemptId, RunningTask>,
    rm: Option<(ResourceManagerId, InstanceId)>,
    job_masters: HashMap<JobId, JobMasterLink>,
    address: String,
    data_address: String,
    report_tx: watch::Sender<(SlotReport, u64)>,
    tx: mpsc::UnboundedSender<Msg>,
    data_plane: DataPlane,
    heartbeat_interval: Duration,
    heartbeat_timeout: Duration,
    early_slot_requests: Vec<(RequestSlot, oneshot::Sender<Result<u64, tonic::Status>>)>,
    bundles: bundles::BundleCache,
    channels: Channels,
    /// Answered once the tasks of a lost leader have all ended.
    leader_lost: Option<oneshot::Sender<()>>,
    /// Since a leader was lost, until a new one accepts us: nothing is taken.
    leaderless: bool,
}

impl TaskExecutor {
    async fn main_loop(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Msg>,
        stop: CancellationToken,
    ) -> Result<(), TaskExecutorError> {
        let mut tick = tokio::time::interval(self.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tick.tick() => self.heartbeat_job_masters(),
                msg = rx.recv() => match msg {
                    None => return Ok(()),
                    Some(Msg::Shutdown(rm_id, reason)) => {
                        if self.rm.map(|(id, _)| id) == Some(rm_id) {
                            info!(%reason, "ResourceManager asked us to shut down");
                            return Ok(());
                        }
                        warn!("ignoring a shutdown request from a ResourceManager that is not our leader");
                    }
                    Some(Msg::Registered { rm_id, instance_id, interval, timeout }) => {
                        self.rm = Some((rm_id, instance_id));
                        self.leaderless = false;
                        if interval != self.heartbeat_interval {
                            self.heartbeat_interval = interval;
                            tick = tokio::time::interval(interval);
                            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        }
                        self.heartbeat_timeout = timeout;
                        for (req, reply) in std::mem::take(&mut self.early_slot_requests) {
                            let _ = reply.send(self.request_slot(req));
                        }
                    }
                    Some(msg) => self.handle(msg),
                }
            }
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::RequestSlot(req, reply) => {
                if self.leaderless {
                    let _ = reply.send(Err(tonic::Status::failed_precondition("the ResourceManager leader is gone")));
                } else if self.rm.is_none() {
                    // The ResourceManager's first RequestSlot can overtake its
                    // answer to our registration: hold it until that arrives.
                    self.early_slot_requests.push((req, reply));
                } else {
                    let _ = reply.send(self.request_slot(req));
                }
            }
            Msg::FreeSlot(allocation_id, job_master_id, cause, reply) => {
                // Unknown slots are freed already: only a live slot of another JobMaster is refused.
                let answer = match self.slots.get(&allocation_id) {
                    Some(slot) if slot.job_master_id != job_master_id => Err(stale_job_master()),
                    _ => {
                        self.free_slot(allocation_id, &cause);
                        Ok(())
                    }
                };
                let _ = reply.send(answer);
            }
            Msg::SubmitTask(tdd, reply) => {
                let _ = reply.send(self.submit_task(*tdd));
            }
            Msg::CancelTask(attempt, job_master_id, reply) => {
                let answer = match self.tasks.get(&attempt) {
                    Some(_) if self.slots.job_master_of_task(&attempt) != Some(job_master_id) => {
                        Err(stale_job_master())
                    }
                    Some(t) => {
                        t.cancel.cancel();
                        Ok(())
                    }
                    None => Ok(()),
                };
                let _ = reply.send(answer);
            }
            Msg::OfferAnswered { allocation_id, accepted } => {
                if accepted {
                    if let Some(s) = self.slots.get_mut(&allocation_id) {
                        s.active = true;
                    }
                } else {
                    self.free_slot(allocation_id, "the JobMaster declined the slot");
                }
            }
            Msg::TaskEnded { attempt, state, error } => {
                self.slots.remove_task(&attempt);
                if let Some(task) = self.tasks.remove(&attempt) {
                    // A lost leader's JobMaster is not told (it is gone, or fenced off).
                    if !self.leaderless {
                        let io = Some(task.io.snapshot());
                        self.report_task_state(
                            task.job_master_address,
                            TaskExecutionState { job_id: task.job_id, attempt_id: attempt, state, error, io },
                        );
                    }
                }
                self.answer_leader_lost();
            }
            Msg::Metrics(reply) => {
                let _ = reply.send(metrics::render(&self.metrics_sample()));
            }
            Msg::LeaderLost { done } => {
                // From here on, nothing the old leader or its JobMasters send is
                // taken: RequestSlot is refused until a new leader accepts us, other
                // commands find no slot.
                warn!(tasks = self.tasks.len(), "the leader is gone: cancelling its tasks and freeing its slots");
                self.rm = None;
                self.leaderless = true;
                for (_, reply) in std::mem::take(&mut self.early_slot_requests) {
                    let _ = reply.send(Err(tonic::Status::failed_precondition("the ResourceManager leader changed")));
                }
                let allocations: Vec<AllocationId> = self.slots.slots().map(|s| s.allocation_id).collect();
                for a in allocations {
                    self.free_slot(a, "the leader is gone");
                }
                self.leader_lost = Some(done);
                self.answer_leader_lost();
            }
            Msg::JobMasterHeartbeat { job_id, ok } => {
                let now = Instant::now();
                let link = self.job_masters.entry(job_id).or_insert(JobMasterLink { last_ok: now });
                if ok {
                    link.last_ok = now;
                } else if now.duration_since(link.last_ok) > self.heartbeat_timeout {
                    warn!(%job_id, "JobMaster heartbeat timed out; releasing the job's slots");
                    self.job_masters.remove(&job_id);
                    for a in self.slots.allocations_of(job_id) {
                        self.free_slot(a, "the JobMaster is gone");
                    }
                }
            }
            Msg::UpdateDelegationTokens(rm_id, token_file) => {
                // Sent right after our registration, they may overtake its answer:
                // before we know our leader, any authenticated ResourceManager's are taken.
                if self.rm.is_some_and(|(id, _)| id != rm_id) {
                    warn!("ignoring delegation tokens from a ResourceManager that is not our leader");
                    return;
                }
                // The next HDFS connection of any subtask reads the file again (hdfs-native).
                tokio::task::spawn_blocking(move || match common::hdfs::replace_container_tokens(&token_file) {
                    Ok(Some(n)) => info!(tokens = n, "HDFS delegation tokens replaced"),
                    Ok(None) => {
                        warn!("delegation tokens arrived, but this container has no HADOOP_TOKEN_FILE_LOCATION")
                    }
                    Err(e) => warn!(error = %e, "cannot replace the HDFS delegation tokens"),
                });
            }
            Msg::Shutdown(..) | Msg::Registered { .. } => {}
        }
    }

    fn answer_leader_lost(&mut self) {
        if self.tasks.is_empty() {
            if let Some(done) = self.leader_lost.take() {
                let _ = done.send(());
            }
        }
    }

    /// Answers with the slot-table version after the allocation.
    fn request_slot(&mut self, req: RequestSlot) -> Result<u64, tonic::Status> {
        // Fencing: only the leader we registered with may hand out our slots.
        match self.rm {
            Some((rm_id, _)) if rm_id == req.rm_id => {}
            _ => return Err(tonic::Status::failed_precondition("not registered with this ResourceManager leader")),
        }
        let fresh = self
            .slots
            .allocate(
                req.slot_id.index,
                req.allocation_id,
                req.job_id,
                req.profile.clone(),
                req.job_master_address.clone(),
                req.job_master_id,
            )
            .map_err(|e| tonic::Status::resource_exhausted(e.to_string()))?;
        if !fresh {
            return Ok(self.slots.version());
        }
        debug!(allocation = %req.allocation_id, job = %req.job_id, profile = %req.profile, "slot allocated");
        self.publish_report();
        self.job_masters.entry(req.job_id).or_insert(JobMasterLink { last_ok: Instant::now() });
        self.offer_slot(req);
        Ok(self.slots.version())
    }

    fn offer_slot(&self, req: RequestSlot) {
        let offer = OfferSlots {
            resource_id: self.config.resource_id.clone(),
            job_id: req.job_id,
            job_master_id: req.job_master_id,
            address: self.address.clone(),
            data_address: self.data_address.clone(),
            offers: vec![SlotOffer {
                allocation_id: req.allocation_id,
                slot_index: req.slot_id.index,
                profile: req.profile,
            }],
            report_version: self.slots.version(),
        };
        let (gateway, tx) = (self.channels.job_master_gateway(&req.job_master_address), self.tx.clone());
        tokio::spawn(async move {
            let accepted = match async { gateway?.offer_slots(&offer).await }.await {
                Ok(accepted) => accepted.contains(&req.allocation_id),
                Err(e) => {
                    warn!(error = %e, "offering a slot to the JobMaster failed");
                    false
                }
            };
            let _ = tx.send(Msg::OfferAnswered { allocation_id: req.allocation_id, accepted });
        });
    }

    fn free_slot(&mut self, allocation_id: AllocationId, cause: &str) {
        if let Some(slot) = self.slots.free(&allocation_id) {
            debug!(allocation = %allocation_id, %cause, "slot freed");
            for t in &slot.tasks {
                if let Some(task) = self.tasks.get(t) {
                    task.cancel.cancel();
                }
            }
            if self.slots.allocations_of(slot.job_id).is_empty() {
                self.job_masters.remove(&slot.job_id);
                self.data_plane.release_job(slot.job_id);
            }
            self.publish_report();
            self.send_slot_report_now();
        }
    }

    fn metrics_sample(&mut self) -> metrics::Sample {
        let free = self.slots.free_resources();
        let allocated = self.slots.slots().count() as u64;
        let mut tasks = Vec::with_capacity(self.tasks.len());
        for t in self.tasks.values_mut() {
            let io = t.io.snapshot();
            let (rate, mark) = t.back_pressure_mark.advance(io.backpressured_ms);
            t.back_pressure_mark = mark;
            tasks.push(metrics::TaskSample {
                job_id: t.job_id.to_string(),
                task_name: t.task_name.clone(),
                subtask_index: t.subtask_index,
                io,
                backpressured_ms_per_second: rate,
            });
        }
        metrics::Sample {
            slots_total: u64::from(self.config.num_slots).max(allocated),
            slots_allocated: allocated,
            cpu_millis_total: self.config.total.cpu_millis,
            cpu_millis_free: free.cpu_millis,
            memory_bytes_total: self.config.total.total_memory_bytes(),
            memory_bytes_free: free.total_memory_bytes(),
            tasks,
        }
    }

    fn submit_task(&mut self, tdd: TaskDeploymentDescriptor) -> Result<(), tonic::Status> {
        if let Some(slot) = self.slots.get(&tdd.allocation_id) {
            if slot.job_master_id != tdd.job_master_id {
                return Err(stale_job_master());
            }
        }
        self.slots
            .add_task(tdd.allocation_id, tdd.job_id, tdd.attempt_id)
            .map_err(|e| tonic::Status::failed_precondition(e.to_string()))?;
        let cancel = CancellationToken::new();
        let io = Arc::new(crate::data_plane::metrics::TaskIoCounters::default());
        self.tasks.insert(
            tdd.attempt_id,
            RunningTask {
                job_id: tdd.job_id,
                job_master_address: tdd.job_master_address.clone(),
                cancel: cancel.clone(),
                io: io.clone(),
                task_name: tdd.vertex_name.clone(),
                subtask_index: tdd.subtask_index,
                back_pressure_mark: metrics::RateMark::new(),
            },
        );
        info!(vertex = %tdd.vertex_name, subtask = tdd.subtask_index, attempt = tdd.attempt_number, "deploying task");
        self.report_task_state(
            tdd.job_master_address.clone(),
            TaskExecutionState {
                job_id: tdd.job_id,
                attempt_id: tdd.attempt_id,
                state: ExecutionState::Running,
                error: None,
                io: None,
            },
        );
        let work_dir =
            self.config.work_dir.join(format!("{}-{}-{}", tdd.vertex_name, tdd.subtask_index, tdd.attempt_number));
        let (dp, tx) = (self.data_plane.clone(), self.tx.clone());
        let (bundles, tm_dir, secret) =
            (self.bundles.clone(), self.config.work_dir.clone(), self.config.secret.clone());
        tokio::spawn(async move {
            let mut tdd = tdd;
            let attempt = tdd.attempt_id;
            let result = async {
                if let Some(blob) = &tdd.bundle_blob {
                    tdd.bundle_dir = bundles.get(blob, &tm_dir, &secret).await?;
                }
                tokio::fs::create_dir_all(&work_dir)
                    .await
                    .map_err(|e| format!("cannot create the task's work dir {}: {e}", work_dir.display()))?;
                dp.run_task_counted(tdd, work_dir, Vec::new(), cancel.clone(), io).await.map_err(|e| e.to_string())
            }
            .await;
            let (state, error) = match result {
                Ok(()) => (ExecutionState::Finished, None),
                Err(_) if cancel.is_cancelled() => (ExecutionState::Canceled, None),
                Err(e) => (ExecutionState::Failed, Some(e)),
            };
            let _ = tx.send(Msg::TaskEnded { attempt, state, error });
        });
        Ok(())
    }

    fn report_task_state(&self, address: String, state: TaskExecutionState) {
        let channels = self.channels.clone();
        tokio::spawn(async move {
            // A lost final state would leave the JobMaster waiting for a heartbeat
            // timeout: retry a few times.
            let attempt = || async { channels.job_master_gateway(&address)?.update_task_state(&state).await };
            let policy = backon::ExponentialBuilder::default().with_max_times(5);
            if let Err(e) = attempt.retry(policy).when(|e: &rpc::RpcError| !e.is_unauthenticated()).await {
                warn!(error = %e, "could not report a task state to the JobMaster");
            }
        });
    }

    fn heartbeat_job_masters(&mut self) {
        for (job_id, address, jm_id) in self.slots.jobs() {
            let allocations = self.slots.allocations_of(job_id);
            let io = self
                .tasks
                .iter()
                .filter(|(_, t)| t.job_id == job_id)
                .map(|(attempt, t)| (*attempt, t.io.snapshot()))
                .collect();
            let hb = JobMasterHeartbeat {
                resource_id: self.config.resource_id.clone(),
                job_id,
                job_master_id: jm_id,
                allocations,
                report_version: self.slots.version(),
                io,
            };
            let (gateway, tx) = (self.channels.job_master_gateway(&address), self.tx.clone());
            let deadline = self.heartbeat_interval.max(Duration::from_millis(100)) * 2;
            tokio::spawn(async move {
                let ok = matches!(async { gateway?.heartbeat(&hb, deadline).await }.await, Ok(true));
                let _ = tx.send(Msg::JobMasterHeartbeat { job_id, ok });
            });
        }
    }

    fn publish_report(&self) {
        self.report_tx.send_replace((self.slots.report(), self.slots.version()));
    }

    fn send_slot_report_now(&self) {
        let Some((_, instance_id)) = self.rm else { return };
        let hb = TaskExecutorHeartbeat {
            resource_id: self.config.resource_id.clone(),
            instance_id,
            slot_report: self.slots.report(),
            report_version: self.slots.version(),
        };
        let gateway = self.channels.resource_manager_gateway(&self.config.rm_address);
        tokio::spawn(async move {
            if let Err(e) = async { gateway?.slot_report_update(&hb).await }.await {
                debug!(error = %e, "slot report update failed; the next heartbeat carries it");
            }
        });
    }

    /// Waits until every task has ended (after `cancel_all_tasks`).
    async fn drain_tasks(&mut self, rx: &mut mpsc::UnboundedReceiver<Msg>) {
        while !self.tasks.is_empty() {
            match rx.recv().await {
                Some(Msg::TaskEnded { attempt, .. }) => {
                    self.tasks.remove(&attempt);
                }
                Some(_) => {}
                None => return,
            }
        }
    }

    fn cancel_all_tasks(&mut self) {
        for t in self.tasks.values() {
            t.cancel.cancel();
        }
    }
}

/// Registers with the ResourceManager, then heartbeats it; registers again when
/// it forgets us. With HA, the ResourceManager is whoever leads in ZooKeeper:
/// when that changes, the old leader's work is ended first (`Msg::LeaderLost`).
/// Ends the TaskExecutor (cancels `stop`) when no ResourceManager has accepted
/// us for `registration_timeout`.
async fn rm_connection(
    config: TaskExecutorConfig,
    channels: Channels,
    registration: RegisterTaskExecutor,
    report: watch::Receiver<(SlotReport, u64)>,
    tx: mpsc::UnboundedSender<Msg>,
    stop: CancellationToken,
) -> Result<(), TaskExecutorError> {
    let followed = async {
        let mut last_accepted = Instant::now();
        let retrieval = config.leader.clone().map(common::ha::LeaderRetrieval::follow);
        let mut served: Option<uuid::Uuid> = None;
        loop {
            let link =
                RmLink { config: &config, channels: &channels, registration: &registration, report: &report, tx: &tx };
            let Some(retrieval) = &retrieval else {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    r = link.serve(config.rm_address.clone(), None, &mut last_accepted) => r?,
                }
                continue;
            };
            let mut current = retrieval.current.clone();
            let remaining = config.registration_timeout.saturating_sub(last_accepted.elapsed());
            let wait = async { current.wait_for(Option::is_some).await.ok().and_then(|l| l.clone()) };
            let leader = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                l = tokio::time::timeout(remaining, wait) => l.ok().flatten(),
            };
            let Some(leader) = leader else {
                return Err(TaskExecutorError::RegistrationTimeout {
                    address: format!("the leader published at {:?}", config.leader),
                    timeout: config.registration_timeout,
                    last_error: "no leader".into(),
                });
            };
            if served.is_some_and(|s| s != leader.session_id) {
                lose_leader(&tx).await;
            }
            served = Some(leader.session_id);
            let expected = ResourceManagerId(leader.session_id);
            let gone = async {
                let _ = current.wait_for(|c| c.as_ref().map(|l| l.session_id) != Some(leader.session_id)).await.is_ok();
            };
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = link.serve(leader.rpc_address.clone(), Some(expected), &mut last_accepted) => r?,
                _ = gone => {
                    info!(session_id = %leader.session_id, "our leader is no longer published");
                    lose_leader(&tx).await;
                    served = None;
                }
            }
        }
    };
    let r: Result<(), TaskExecutorError> = followed.await;
    if r.is_err() {
        stop.cancel();
    }
    r
}

/// Tells the loop the leader is gone and waits until its tasks have ended.
async fn lose_leader(tx: &mpsc::UnboundedSender<Msg>) {
    let (done, ended) = oneshot::channel();
    if tx.send(Msg::LeaderLost { done }).is_ok() {
        let _ = ended.await;
    }
}

struct RmLink<'a> {
    config: &'a TaskExecutorConfig,
    channels: &'a Channels,
    registration: &'a RegisterTaskExecutor,
    report: &'a watch::Receiver<(SlotReport, u64)>,
    tx: &'a mpsc::UnboundedSender<Msg>,
}

impl RmLink<'_> {
    /// Registers with the ResourceManager at `address` (whose id must be
    /// `expected`, the leader session id, when known), then heartbeats it.
    /// Returns when it forgets us or stays silent past the heartbeat timeout.
    async fn serve(
        &self,
        address: String,
        expected: Option<ResourceManagerId>,
        last_accepted: &mut Instant,
    ) -> Result<(), TaskExecutorError> {
        let config = self.config;
        let fail = |e: String| TaskExecutorError::RegistrationTimeout {
            address: address.clone(),
            timeout: config.registration_timeout,
            last_error: e,
        };
        let gateway = self.channels.resource_manager_gateway(&address).map_err(|e| fail(e.to_string()))?;
        // Register, retrying (doubling from 20 ms to 2 s) until the registration timeout
        // since the ResourceManager last accepted us. A malformed answer is retried like
        // a failed call; a refused secret is final.
        let attempt = || {
            let (mut gateway, registration, slots) =
                (gateway.clone(), self.registration.clone(), self.report.borrow().0.clone());
            async move { gateway.register(&registration, &slots).await }
        };
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(20))
            .with_max_delay(Duration::from_secs(2))
            .with_total_delay(Some(config.registration_timeout.saturating_sub(last_accepted.elapsed())))
            .without_max_times();
        let answer = attempt
            .retry(policy)
            .when(|e: &rpc::RpcError| !e.is_unauthenticated())
            .notify(|e, _| {
                if matches!(e, rpc::RpcError::Malformed { .. }) {
                    warn!(error = %e, "malformed registration answer from the ResourceManager");
                } else {
                    debug!(error = %e, "registration failed; retrying");
                }
            })
            .await;
        let (instance_id, interval, timeout) = match answer {
            // A deposed leader still serving at that address: ask ZooKeeper again.
            Ok(accepted) if expected.is_some_and(|e| e != accepted.rm_id) => {
                warn!(rm_id = %accepted.rm_id, %address, "the ResourceManager there is not the leader; looking again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                return Ok(());
            }
            Ok(accepted) => {
                let RegistrationAccepted {
                    rm_id,
                    instance_id,
                    heartbeat_interval: interval,
                    heartbeat_timeout: timeout,
                } = accepted;
                info!(%rm_id, %instance_id, %address, "registered with the ResourceManager");
                let _ = self.tx.send(Msg::Registered { rm_id, instance_id, interval, timeout });
                *last_accepted = Instant::now();
                (instance_id, interval, timeout)
            }
            Err(e) if e.is_unauthenticated() => {
                return Err(TaskExecutorError::Unauthenticated { address, detail: e.to_string() });
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        // Heartbeat until the ResourceManager forgets us or stays silent too long.
        let mut gateway = gateway;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let hb = {
                let r = self.report.borrow();
                TaskExecutorHeartbeat {
                    resource_id: self.registration.resource_id.clone(),
                    instance_id,
                    slot_report: r.0.clone(),
                    report_version: r.1,
                }
            };
            match gateway.heartbeat(&hb, interval.max(Duration::from_millis(100)) * 2).await {
                Ok(true) => *last_accepted = Instant::now(),
                Ok(false) => {
                    info!("the ResourceManager no longer knows us; registering again");
                    return Ok(());
                }
                Err(e) if last_accepted.elapsed() > timeout => {
                    warn!(error = %e, "ResourceManager heartbeat timed out; registering again");
                    return Ok(());
                }
                Err(e) => debug!(error = %e, "heartbeat to the ResourceManager failed"),
            }
        }
    }
}

fn stale_job_master() -> tonic::Status {
    tonic::Status::failed_precondition("stale JobMaster: fencing token does not match")
}

/// Binds the RPC and data listeners on `host` (port 0 = any free port).
pub async fn bind(host: &str) -> std::io::Result<(TcpListener, TcpListener, SocketAddr)> {
    let rpc = TcpListener::bind((host, 0)).await?;
    let data = TcpListener::bind((host, 0)).await?;
    let addr = rpc.local_addr()?;
    Ok((rpc, data, addr))
}
