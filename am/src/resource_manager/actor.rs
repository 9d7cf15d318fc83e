//! The ResourceManager as one task: it owns the SlotManager, the registry of
//! TaskExecutors and the driver, loops over [`RmMsg`], and carries out the
//! SlotManager's [`Action`]s. RPCs to TaskExecutors are spawned; their answers
//! come back as messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::ids::{AllocationId, InstanceId, JobId, JobMasterId, ResourceId, ResourceManagerId};
use common::protocol::{RegisterTaskExecutor, RequestSlot, ResourceRequirement, SlotReport};
use common::rpc::{Channels, RpcTimeouts, TaskExecutorNotice};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::driver::{DriverEvent, ResourceManagerDriver};
use super::slot_manager::{Action, SlotManager, SlotManagerConfig, SlotManagerOverview, TaskManagerRegistration};

/// How long a started worker may take to register before it counts as a failed
/// request (Flink's `resourcemanager.taskmanager-registration.timeout`, 5 min).
pub const WORKER_REGISTRATION_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Clone, Debug)]
pub struct ResourceManagerConfig {
    pub slot_manager: SlotManagerConfig,
    pub heartbeat_interval: Duration,
    pub heartbeat_timeout: Duration,
    pub rpc: RpcTimeouts,
}

/// What the ResourceManager tells a JobMaster.
#[derive(Clone, Debug, PartialEq)]
pub enum JobMasterNotice {
    /// A requirement can never be met; fail the job with this reason.
    Unfulfillable(String),
    /// A TaskManager that held the job's slots is gone.
    TaskManagerLost { resource_id: ResourceId, cause: String },
}

pub(crate) enum RmMsg {
    Register(RegisterTaskExecutor, SlotReport, oneshot::Sender<(ResourceManagerId, InstanceId, Duration, Duration)>),
    Heartbeat {
        resource_id: ResourceId,
        instance_id: InstanceId,
        report: SlotReport,
        report_version: u64,
        reply: oneshot::Sender<bool>,
    },
    RegisterJobMaster {
        job_id: JobId,
        job_master_id: JobMasterId,
        address: String,
        notices: mpsc::UnboundedSender<JobMasterNotice>,
    },
    Declare {
        job_id: JobId,
        requirements: Vec<ResourceRequirement>,
    },
    JobEnded(JobId),
    /// Ok carries the TaskExecutor's slot-table version after the allocation.
    AllocationAnswered {
        allocation_id: AllocationId,
        result: Result<u64, String>,
    },
    Driver(DriverEvent),
    /// Fresh HDFS delegation tokens (a token storage file) for every TaskExecutor.
    DelegationTokens(Arc<Vec<u8>>),
    Overview(oneshot::Sender<ResourceManagerOverview>),
    /// The end of a worker's log, from the driver.
    WorkerLog {
        resource_id: ResourceId,
        limit: u64,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to the ResourceManager task.
#[derive(Clone)]
pub struct ResourceManagerHandle {
    tx: mpsc::UnboundedSender<RmMsg>,
}

/// Where a registered TaskExecutor serves what.
#[derive(Clone, Debug, Default)]
pub struct TaskExecutorAddresses {
    pub rpc: String,
    pub data: String,
    pub metrics: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ResourceManagerOverview {
    pub rm_id: ResourceManagerId,
    pub driver: &'static str,
    pub slots: SlotManagerOverview,
    pub addresses: HashMap<ResourceId, TaskExecutorAddresses>,
    /// What the cluster manager calls each registered worker, and where its log is.
    pub workers: HashMap<ResourceId, super::driver::WorkerDetails>,
    /// Worker requests the cluster manager could not serve, since start.
    pub failed_worker_requests: u64,
    /// TaskExecutors that missed their heartbeats past the timeout, since start.
    pub heartbeat_misses: u64,
}

impl ResourceManagerHandle {
    pub fn register_job_master(
        &self,
        job_id: JobId,
        job_master_id: JobMasterId,
        address: String,
        notices: mpsc::UnboundedSender<JobMasterNotice>,
    ) {
        let _ = self.tx.send(RmMsg::RegisterJobMaster { job_id, job_master_id, address, notices });
    }

    /// Hands fresh HDFS delegation tokens to every TaskExecutor, now and as
    /// each one registers (Flink's DelegationTokenManager → TaskExecutors).
    pub fn update_delegation_tokens(&self, token_file: Vec<u8>) {
        let _ = self.tx.send(RmMsg::DelegationTokens(Arc::new(token_file)));
    }

    /// Declares the job's whole current need (absolute, FLIP-138).
    pub fn declare(&self, job_id: JobId, requirements: Vec<ResourceRequirement>) {
        let _ = self.tx.send(RmMsg::Declare { job_id, requirements });
    }

    /// The job is over (or its JobMaster is gone): drop its requirements and slots.
    pub fn job_ended(&self, job_id: JobId) {
        let _ = self.tx.send(RmMsg::JobEnded(job_id));
    }

    pub async fn overview(&self) -> Option<ResourceManagerOverview> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(RmMsg::Overview(tx)).ok()?;
        rx.await.ok()
    }

    /// The end (at most `limit` bytes) of a worker's log, as its driver fetches it.
    pub async fn worker_log(&self, resource_id: ResourceId, limit: u64) -> Result<Vec<u8>, String> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(RmMsg::WorkerLog { resource_id, limit, reply }).map_err(|_| "the ResourceManager is gone")?;
        rx.await.map_err(|_| "the ResourceManager is gone".to_owned())?
    }

    /// Stops every worker through the driver and ends the ResourceManager.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(RmMsg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<RmMsg> {
        self.tx.clone()
    }
}

struct TaskExecutorEntry {
    instance_id: InstanceId,
    addresses: TaskExecutorAddresses,
    last_heartbeat: Instant,
}

struct JobMasterEntry {
    job_master_id: JobMasterId,
    address: String,
    notices: mpsc::UnboundedSender<JobMasterNotice>,
}

pub struct ResourceManager<D: ResourceManagerDriver> {
    rm_id: ResourceManagerId,
    config: ResourceManagerConfig,
    /// One channel per TaskExecutor, shared with the JobMasters.
    channels: Channels,
    slot_manager: SlotManager,
    driver: D,
    task_executors: HashMap<ResourceId, TaskExecutorEntry>,
    /// Workers the driver started whose TaskExecutor has not registered yet.
    /// (Since when: one that does not register within [`WORKER_REGISTRATION_TIMEOUT`] is released.)
    starting_workers: HashMap<ResourceId, (super::worker::WorkerSpec, Instant)>,
    job_masters: HashMap<JobId, JobMasterEntry>,
    /// The newest delegation tokens handed out, for TaskExecutors that register later.
    delegation_tokens: Option<Arc<Vec<u8>>>,
    failed_worker_requests: u64,
    heartbeat_misses: u64,
    tx: mpsc::UnboundedSender<RmMsg>,
}

/// Starts the ResourceManager task. `driver_events` is the receiving end of
/// the channel the driver was built with.
pub fn spawn<D: ResourceManagerDriver>(
    config: ResourceManagerConfig,
    rm_id: ResourceManagerId,
    channels: Channels,
    driver: D,
    driver_events: mpsc::UnboundedReceiver<DriverEvent>,
) -> (ResourceManagerHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let rm = ResourceManager {
        rm_id,
        slot_manager: SlotManager::new(config.slot_manager.clone()),
        config,
        channels,
        driver,
        task_executors: HashMap::new(),
        starting_workers: HashMap::new(),
        job_masters: HashMap::new(),
        delegation_tokens: None,
        failed_worker_requests: 0,
        heartbeat_misses: 0,
        tx: tx.clone(),
    };
    let join = tokio::spawn(rm.run(rx, driver_events));
    (ResourceManagerHandle { tx }, join)
}

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

impl<D: ResourceManagerDriver> ResourceManager<D> {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<RmMsg>,
        mut driver_events: mpsc::UnboundedReceiver<DriverEvent>,
    ) {
        info!(rm_id = %self.rm_id, driver = self.driver.name(), "ResourceManager started");
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                m = rx.recv() => match m { Some(m) => m, None => break },
                Some(e) = driver_events.recv() => RmMsg::Driver(e),
                _ = tick.tick() => { self.check_heartbeats(); continue; }
            };
            if let RmMsg::Shutdown(done) = msg {
                info!("ResourceManager stopping all workers");
                self.tell_task_executors_to_stop().await;
                self.driver.terminate().await;
                let _ = done.send(());
                return;
            }
            self.handle(msg);
        }
        self.driver.terminate().await;
    }

    fn handle(&mut self, msg: RmMsg) {
        match msg {
            RmMsg::Register(reg, report, reply) => {
                let instance_id = InstanceId::random();
                self.starting_workers.remove(&reg.resource_id);
                info!(resource_id = %reg.resource_id, address = %reg.address, total = %reg.total_resources, "TaskExecutor registered");
                self.task_executors.insert(
                    reg.resource_id.clone(),
                    TaskExecutorEntry {
                        instance_id,
                        addresses: TaskExecutorAddresses {
                            rpc: reg.address.clone(),
                            data: reg.data_address.clone(),
                            metrics: reg.metrics_address.clone(),
                        },
                        last_heartbeat: Instant::now(),
                    },
                );
                let actions = self.slot_manager.register_task_manager(
                    now(),
                    TaskManagerRegistration {
                        resource_id: reg.resource_id,
                        instance_id,
                        total: reg.total_resources,
                        default_slot: reg.default_slot_profile,
                        num_slots: reg.num_slots,
                        slot_report: report,
                    },
                );
                let _ = reply.send((
                    self.rm_id,
                    instance_id,
                    self.config.heartbeat_interval,
                    self.config.heartbeat_timeout,
                ));
                // Started before the newest tokens: it gets them now.
                if let Some(token_file) = &self.delegation_tokens {
                    let notice = TaskExecutorNotice::UpdateDelegationTokens {
                        rm_id: self.rm_id,
                        token_file: token_file.clone(),
                    };
                    self.channels.notify(reg.address.clone(), notice);
                }
                self.execute(actions);
            }
            RmMsg::DelegationTokens(token_file) => {
                info!(task_executors = self.task_executors.len(), "handing out fresh delegation tokens");
                for te in self.task_executors.values() {
                    let notice = TaskExecutorNotice::UpdateDelegationTokens {
                        rm_id: self.rm_id,
                        token_file: token_file.clone(),
                    };
                    self.channels.notify(te.addresses.rpc.clone(), notice);
                }
                self.delegation_tokens = Some(token_file);
            }
            RmMsg::Heartbeat { resource_id, instance_id, report, report_version, reply } => {
                let known = match self.task_executors.get_mut(&resource_id) {
                    Some(te) if te.instance_id == instance_id => {
                        te.last_heartbeat = Instant::now();
                        true
                    }
                    _ => false,
                };
                let _ = reply.send(known);
                if known {
                    let actions = self.slot_manager.report_slot_status(now(), &resource_id, &report, report_version);
                    self.execute(actions);
                }
            }
            RmMsg::RegisterJobMaster { job_id, job_master_id, address, notices } => {
                self.job_masters.insert(job_id, JobMasterEntry { job_master_id, address, notices });
            }
            RmMsg::Declare { job_id, requirements } => {
                let actions = self.slot_manager.declare_requirements(now(), job_id, &requirements);
                self.execute(actions);
            }
            RmMsg::JobEnded(job_id) => {
                self.job_masters.remove(&job_id);
                let actions = self.slot_manager.clear_job(now(), job_id);
                self.execute(actions);
            }
            RmMsg::AllocationAnswered { allocation_id, result } => match result {
                Ok(version) => self.slot_manager.slot_allocation_confirmed(allocation_id, version),
                Err(e) => {
                    warn!(%allocation_id, error = %e, "slot allocation failed");
                    let actions = self.slot_manager.slot_allocation_failed(now(), allocation_id);
                    self.execute(actions);
                }
            },
            RmMsg::Driver(event) => self.on_driver_event(event),
            RmMsg::WorkerLog { resource_id, limit, reply } => {
                // Fetched off the loop: the answer may take a round trip to the cluster manager.
                let fetch = self.driver.worker_log(&resource_id, limit);
                tokio::spawn(async move {
                    let _ = reply.send(fetch.await);
                });
            }
            RmMsg::Overview(reply) => {
                let _ = reply.send(ResourceManagerOverview {
                    rm_id: self.rm_id,
                    driver: self.driver.name(),
                    slots: self.slot_manager.overview(),
                    addresses: self.task_executors.iter().map(|(id, te)| (id.clone(), te.addresses.clone())).collect(),
                    workers: self
                        .task_executors
                        .keys()
                        .map(|id| (id.clone(), self.driver.worker_details(id)))
                        .collect(),
                    failed_worker_requests: self.failed_worker_requests,
                    heartbeat_misses: self.heartbeat_misses,
                });
            }
            RmMsg::Shutdown(_) => {}
        }
    }

    fn on_driver_event(&mut self, event: DriverEvent) {
        match event {
            DriverEvent::WorkerStarted { resource_id, spec } => {
                debug!(%resource_id, total = %spec.total, "worker started; waiting for it to register");
                self.starting_workers.insert(resource_id, (spec, Instant::now()));
            }
            DriverEvent::WorkerRequestFailed { spec, reason } => {
                warn!(total = %spec.total, %reason, "worker request failed");
                self.failed_worker_requests += 1;
                let actions = self.slot_manager.worker_request_failed(now(), &spec, &reason);
                self.execute(actions);
            }
            DriverEvent::WorkerTerminated { resource_id, diagnostics } => {
                if let Some((spec, _)) = self.starting_workers.remove(&resource_id) {
                    // It died before registering (e.g. a failed start or
                    // localization): to the SlotManager that is a failed request.
                    warn!(%resource_id, %diagnostics, "TaskManager ended before it registered");
                    let actions = self.slot_manager.worker_request_failed(now(), &spec, &diagnostics);
                    self.execute(actions);
                    return;
                }
                if self.task_executors.contains_key(&resource_id) {
                    warn!(%resource_id, %diagnostics, "TaskManager terminated");
                }
                self.lose_task_executor(&resource_id, &diagnostics);
            }
            DriverEvent::Fatal(reason) => {
                warn!(%reason, "driver failed");
                for jm in self.job_masters.values() {
                    let _ = jm.notices.send(JobMasterNotice::Unfulfillable(reason.clone()));
                }
            }
        }
    }

    /// Tells every registered TaskExecutor to stop, and waits (briefly) until
    /// each has been told: some were not started by this driver (after a
    /// leader change, a new leader adopts its predecessor's TaskManagers).
    async fn tell_task_executors_to_stop(&mut self) {
        let mut told = Vec::new();
        for te in self.task_executors.values() {
            let notice = TaskExecutorNotice::Shutdown { rm_id: self.rm_id, reason: "the cluster is stopping".into() };
            if let Ok(mut gateway) = self.channels.task_executor_gateway(&te.addresses.rpc) {
                told.push(async move { gateway.notify(notice).await });
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), futures::future::join_all(told)).await;
    }

    fn lose_task_executor(&mut self, resource_id: &ResourceId, cause: &str) {
        if let Some(te) = self.task_executors.remove(resource_id) {
            self.channels.forget(&te.addresses.rpc);
        }
        for jm in self.job_masters.values() {
            let _ = jm
                .notices
                .send(JobMasterNotice::TaskManagerLost { resource_id: resource_id.clone(), cause: cause.to_owned() });
        }
        let actions = self.slot_manager.unregister_task_manager(now(), resource_id);
        self.execute(actions);
    }

    fn check_heartbeats(&mut self) {
        // A worker the cluster manager runs whose TaskExecutor never registers (a
        // Mesos task RUNNING, a pod Ready, and no TaskManager) is a failed request.
        let stuck: Vec<ResourceId> = self
            .starting_workers
            .iter()
            .filter(|(_, (_, since))| since.elapsed() > WORKER_REGISTRATION_TIMEOUT)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stuck {
            let Some((spec, _)) = self.starting_workers.remove(&id) else { continue };
            let reason = format!(
                "TaskManager {id} started but did not register within {WORKER_REGISTRATION_TIMEOUT:?}; see its log"
            );
            warn!(resource_id = %id, %reason, "releasing a worker that never registered");
            self.failed_worker_requests += 1;
            self.driver.release_worker(&id);
            let actions = self.slot_manager.worker_request_failed(now(), &spec, &reason);
            self.execute(actions);
        }
        let timeout = self.config.heartbeat_timeout;
        let dead: Vec<ResourceId> = self
            .task_executors
            .iter()
            .filter(|(_, te)| te.last_heartbeat.elapsed() > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            warn!(resource_id = %id, ?timeout, "TaskExecutor heartbeat timed out");
            self.heartbeat_misses += 1;
            self.lose_task_executor(&id, &format!("no heartbeat for {timeout:?}"));
            self.driver.release_worker(&id);
        }
        let actions = self.slot_manager.tick(now());
        self.execute(actions);
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::AllocateSlot { slot_id, allocation_id, job_id, profile } => {
                    let (Some(te), Some(jm)) =
                        (self.task_executors.get(&slot_id.resource_id), self.job_masters.get(&job_id))
                    else {
                        let _ = self.tx.send(RmMsg::AllocationAnswered {
                            allocation_id,
                            result: Err("the TaskExecutor or the JobMaster is gone".into()),
                        });
                        continue;
                    };
                    let req = RequestSlot {
                        rm_id: self.rm_id,
                        slot_id,
                        allocation_id,
                        job_id,
                        profile,
                        job_master_address: jm.address.clone(),
                        job_master_id: jm.job_master_id,
                    };
                    let (gateway, tx) = (self.channels.task_executor_gateway(&te.addresses.rpc), self.tx.clone());
                    tokio::spawn(async move {
                        let result = async { gateway?.request_slot(&req).await }.await.map_err(|e| e.to_string());
                        let _ = tx.send(RmMsg::AllocationAnswered { allocation_id, result });
                    });
                }
                Action::FreeSlot { slot_id, allocation_id, job_id } => {
                    debug!(%slot_id, %allocation_id, %job_id, "freeing slot of an ended job");
                    // Fenced by the job's JobMaster; one already gone has had its slots freed by
                    // the TaskExecutor's JobMaster heartbeat timeout.
                    if let (Some(te), Some(jm)) =
                        (self.task_executors.get(&slot_id.resource_id), self.job_masters.get(&job_id))
                    {
                        let (cause, job_master_id) = ("job ended".to_owned(), jm.job_master_id);
                        let notice = TaskExecutorNotice::FreeSlot { allocation_id, cause, job_master_id };
                        self.channels.notify(te.addresses.rpc.clone(), notice);
                    }
                }
                Action::StartWorker(spec) => {
                    info!(total = %spec.total, slots = spec.num_slots, "requesting a new TaskManager");
                    self.driver.request_worker(&spec);
                }
                Action::CancelWorker(spec) => {
                    info!(total = %spec.total, slots = spec.num_slots, "withdrawing a TaskManager request");
                    self.driver.cancel_request(&spec);
                }
                Action::ReleaseWorker { resource_id, reason } => {
                    info!(%resource_id, %reason, "releasing TaskManager");
                    if let Some(te) = self.task_executors.remove(&resource_id) {
                        let notice = TaskExecutorNotice::Shutdown { rm_id: self.rm_id, reason };
                        self.channels.notify(te.addresses.rpc.clone(), notice);
                        self.channels.forget(&te.addresses.rpc);
                    }
                    self.driver.release_worker(&resource_id);
                }
                Action::Unfulfillable { job_id, profile, reason } => {
                    warn!(%job_id, ?profile, %reason, "requirement cannot be fulfilled");
                    if let Some(jm) = self.job_masters.get(&job_id) {
                        let _ = jm.notices.send(JobMasterNotice::Unfulfillable(reason));
                    }
                }
            }
        }
    }
}
