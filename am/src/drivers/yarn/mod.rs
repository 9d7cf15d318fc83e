//! The `yarn` driver: TaskManagers in YARN containers, asked of the RM
//! scheduler (ApplicationMasterProtocol) and started on NodeManagers
//! (ContainerManagementProtocol) through `hadoop::yarn`.
//!
//! How worker specs map onto YARN (what Flink's YarnResourceManagerDriver
//! and Spark's YarnAllocator do):
//! - every distinct [`WorkerSpec`] gets its own `allocation_request_id` and
//!   priority, since YARN will not mix capabilities within one priority;
//!   allocated containers are matched back by that id, never by size (the RM
//!   rounds sizes up);
//! - asks are absolute totals per key, re-sent whenever they change;
//! - a spec larger than the scheduler's maximum allocation is refused at once
//!   (`WorkerRequestFailed` naming the ask, the limit and the fix) instead of
//!   waiting for containers that never come;
//! - containers beyond what is outstanding are released at once;
//! - a completed container is a terminated worker, with YARN's diagnostics.
//!
//! All YARN state lives on one task (the allocate loop); the trait methods
//! only send it commands, so they never block. No YARN type leaves this module:
//! the ResourceManager sees container ids only as [`ResourceId`]s.

pub mod application_master;
pub mod contract;
pub mod delegation_tokens;
pub mod resources;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ids::ResourceId;
use common::launch::{SecretSource, YARN_SECRET_ALIAS};
use futures::future::BoxFuture;
use hadoop::yarn::amrm::{AllocateAnswer, AmCommand, AmRmClient, AskKey};
use hadoop::yarn::nm::NmClient;
use hadoop::yarn::{
    Container, ContainerId, ContainerLaunchContext, ContainerStatus, FinalStatus, LocalResource, Resource,
};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::resource_manager::driver::{DriverEvent, LogLocation, ResourceManagerDriver, WorkerDetails};
use crate::resource_manager::worker::WorkerSpec;

pub use contract::BINARY_LINK;

#[derive(Clone, Debug)]
pub struct YarnDriverConfig {
    /// Where TaskManagers find our ResourceManager (host:port of the AM's RPC server).
    pub rm_address: String,
    /// Localized into every TaskManager container (the binary, the bundle), by link name.
    pub local_resources: BTreeMap<String, LocalResource>,
    /// The token storage file (`HDTS`) every TaskManager container gets:
    /// the AM's credentials minus the AMRMToken (the secret key included).
    /// The newest at each launch: an AM with a keytab replaces its HDFS tokens.
    pub tokens: tokio::sync::watch::Receiver<std::sync::Arc<Vec<u8>>>,
    /// Extra environment for TaskManagers (e.g. RUST_LOG).
    pub env: BTreeMap<String, String>,
    /// For TaskManagers' log links: the application's user and the
    /// NodeManagers' web scheme (`https` with `yarn.http.policy=HTTPS_ONLY`).
    pub user: String,
    pub nm_web_scheme: &'static str,
    /// The scheduler's largest container (from the registration).
    pub maximum_capability: Resource,
    /// Allocate interval while asks are outstanding, and otherwise.
    pub fast_heartbeat: Duration,
    pub slow_heartbeat: Duration,
    /// Consecutive failed allocate calls before the driver gives up (Fatal).
    pub max_allocate_failures: u32,
    /// Containers of an earlier attempt, from the registration: their
    /// TaskManagers still run and re-register with this attempt's AM.
    pub adopt: Vec<Container>,
}

impl YarnDriverConfig {
    pub fn new(rm_address: String, maximum_capability: Resource) -> Self {
        Self {
            rm_address,
            local_resources: BTreeMap::new(),
            tokens: tokio::sync::watch::channel(std::sync::Arc::new(Vec::new())).1,
            env: BTreeMap::new(),
            user: String::new(),
            nm_web_scheme: "http",
            maximum_capability,
            fast_heartbeat: Duration::from_millis(150),
            slow_heartbeat: Duration::from_secs(1),
            max_allocate_failures: 10,
            adopt: Vec::new(),
        }
    }
}

/// The application's progress (0..=1), reported on every allocate heartbeat.
#[derive(Clone, Debug, Default)]
pub struct Progress(Arc<AtomicU32>);

impl Progress {
    pub fn set(&self, value: f32) {
        self.0.store(value.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum YarnAmError {
    #[error("the allocate loop ended without handing the scheduler connection back; the AM cannot unregister")]
    LoopGone,
    #[error("finishApplicationMaster failed: {0}")]
    Finish(#[source] hadoop::Error),
}

enum Cmd {
    Request(WorkerSpec),
    Cancel(WorkerSpec),
    Release(ResourceId),
    Terminate(oneshot::Sender<()>),
}

/// The driver half the ResourceManager owns.
pub struct YarnDriver {
    cmds: mpsc::UnboundedSender<Cmd>,
    events: mpsc::UnboundedSender<DriverEvent>,
    maximum_capability: Resource,
    /// Where each worker runs, kept by the allocate loop: for `/taskmanagers`.
    placed: Placed,
}

/// Resource id -> its container and the container's log page on its NodeManager.
type Placed = Arc<Mutex<HashMap<ResourceId, (ContainerId, String)>>>;

/// The half the ApplicationMaster keeps: progress, the "RM gave up on us"
/// signal, and the scheduler connection back for finishApplicationMaster.
pub struct YarnAm {
    pub progress: Progress,
    lost: CancellationToken,
    lost_reason: Arc<Mutex<Option<String>>>,
    client: oneshot::Receiver<AmRmClient>,
}

impl YarnAm {
    /// Resolves when the RM told us to shut down or stopped answering; the
    /// reason is in [`YarnAm::lost_reason`].
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    pub fn lost_reason(&self) -> Option<String> {
        self.lost_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Unregisters (finishApplicationMaster, repeated until the RM confirms).
    /// Call after the driver terminated (the cluster shut down): the
    /// allocate loop hands its connection back when it ends.
    pub async fn finish(
        self,
        status: FinalStatus,
        diagnostics: &str,
        tracking_url: Option<&str>,
    ) -> Result<(), YarnAmError> {
        let mut client = self.client.await.map_err(|_| YarnAmError::LoopGone)?;
        client.finish(status, diagnostics, tracking_url).await.map_err(YarnAmError::Finish)
    }
}

/// Starts the allocate loop on a registered `client`.
pub fn start(
    client: AmRmClient,
    nm: NmClient,
    mut config: YarnDriverConfig,
    events: mpsc::UnboundedSender<DriverEvent>,
) -> (YarnDriver, YarnAm) {
    let (cmds_tx, cmds) = mpsc::unbounded_channel();
    let (client_tx, client_rx) = oneshot::channel();
    let progress = Progress::default();
    let lost = CancellationToken::new();
    let lost_reason = Arc::new(Mutex::new(None));
    let placed = Placed::default();
    let driver = YarnDriver {
        cmds: cmds_tx,
        events: events.clone(),
        maximum_capability: config.maximum_capability.clone(),
        placed: placed.clone(),
    };
    let (launched_tx, launched) = mpsc::unbounded_channel();
    let adopt = std::mem::take(&mut config.adopt);
    let mut state = Allocator {
        client,
        nm,
        config,
        events,
        progress: progress.clone(),
        keys: BTreeMap::new(),
        spec_of: HashMap::new(),
        outstanding: BTreeMap::new(),
        containers: HashMap::new(),
        by_resource: HashMap::new(),
        placed,
        launched_tx,
        failures: 0,
        lost: lost.clone(),
        lost_reason: lost_reason.clone(),
    };
    for container in adopt {
        state.adopt(container);
    }
    tokio::spawn(state.run(cmds, launched, client_tx));
    (driver, YarnAm { progress, lost, lost_reason, client: client_rx })
}

impl ResourceManagerDriver for YarnDriver {
    fn name(&self) -> &'static str {
        "yarn"
    }

    fn request_worker(&mut self, spec: &WorkerSpec) {
        let ask = resources::capability(spec);
        if let Some(reason) = resources::exceeds(&ask, &self.maximum_capability) {
            warn!(%reason, "refusing a TaskManager request up front");
            let _ = self.events.send(DriverEvent::WorkerRequestFailed { spec: spec.clone(), reason });
            return;
        }
        if self.cmds.send(Cmd::Request(spec.clone())).is_err() {
            let reason = "the YARN allocate loop has stopped; no more containers can be had".to_string();
            let _ = self.events.send(DriverEvent::WorkerRequestFailed { spec: spec.clone(), reason });
        }
    }

    fn cancel_request(&mut self, spec: &WorkerSpec) {
        let _ = self.cmds.send(Cmd::Cancel(spec.clone()));
    }

    fn release_worker(&mut self, resource_id: &ResourceId) {
        let _ = self.cmds.send(Cmd::Release(resource_id.clone()));
    }

    fn worker_details(&self, resource_id: &ResourceId) -> WorkerDetails {
        let placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        match placed.get(resource_id) {
            Some((container, log)) => {
                WorkerDetails { container: Some(container.to_string()), log: Some(LogLocation::Url(log.clone())) }
            }
            None => WorkerDetails::default(),
        }
    }

    fn terminate(&mut self) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.cmds.send(Cmd::Terminate(tx)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = rx.await;
            }
        })
    }
}

struct Worker {
    resource_id: ResourceId,
    container: Container,
    spec: WorkerSpec,
}

/// How a launch on a NodeManager went.
struct Launched {
    container: ContainerId,
    error: Option<String>,
}

/// The allocate loop's state: the only owner of the scheduler connection.
struct Allocator {
    client: AmRmClient,
    nm: NmClient,
    config: YarnDriverConfig,
    events: mpsc::UnboundedSender<DriverEvent>,
    progress: Progress,
    /// One ask key (own priority and allocation request id) per spec.
    keys: BTreeMap<WorkerSpec, AskKey>,
    spec_of: HashMap<i64, WorkerSpec>,
    /// Containers wanted and not yet allocated, per allocation request id.
    outstanding: BTreeMap<i64, i32>,
    containers: HashMap<ContainerId, Worker>,
    by_resource: HashMap<ResourceId, ContainerId>,
    placed: Placed,
    launched_tx: mpsc::UnboundedSender<Launched>,
    failures: u32,
    lost: CancellationToken,
    lost_reason: Arc<Mutex<Option<String>>>,
}

impl Allocator {
    fn place(&mut self, resource_id: &ResourceId, container: &Container) {
        self.by_resource.insert(resource_id.clone(), container.id);
        // The NodeManager's own log page of the container (its web UI, as YARN links it).
        let log = format!(
            "{}://{}/node/containerlogs/{}/{}",
            self.config.nm_web_scheme, container.node_http_address, container.id, self.config.user
        );
        self.placed.lock().unwrap_or_else(|e| e.into_inner()).insert(resource_id.clone(), (container.id, log));
    }

    fn unplace(&mut self, resource_id: &ResourceId) -> Option<ContainerId> {
        self.placed.lock().unwrap_or_else(|e| e.into_inner()).remove(resource_id);
        self.by_resource.remove(resource_id)
    }

    async fn run(
        mut self,
        mut cmds: mpsc::UnboundedReceiver<Cmd>,
        mut launched: mpsc::UnboundedReceiver<Launched>,
        client_back: oneshot::Sender<AmRmClient>,
    ) {
        let mut next_beat = tokio::time::Instant::now();
        // The allocate in flight: it runs on its own task (the RM's failover and
        // retries can take minutes) while this loop goes on taking commands.
        let mut in_flight: Option<tokio::task::JoinHandle<AllocateAnswer>> = None;
        let terminated = loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(Cmd::Request(spec)) => {
                        self.request(spec);
                        // Ask soon rather than at the next slow beat; a short pause batches
                        // the requests of one SlotManager decision into one allocate.
                        next_beat = next_beat.min(tokio::time::Instant::now() + Duration::from_millis(20));
                    }
                    Some(Cmd::Cancel(spec)) => self.cancel(&spec),
                    Some(Cmd::Release(id)) => self.release(&id),
                    Some(Cmd::Terminate(done)) => break Some(done),
                    None => break None,
                },
                Some(l) = launched.recv() => self.on_launched(l),
                Some(answer) = futures::future::OptionFuture::from(in_flight.as_mut()), if in_flight.is_some() => {
                    in_flight = None;
                    let again_at_once = match answer {
                        Ok(answer) => self.on_allocate_answer(answer).await,
                        Err(e) => {
                            self.on_allocate_failed(&format!("the allocate task failed: {e}"));
                            false
                        }
                    };
                    if self.lost.is_cancelled() {
                        break None;
                    }
                    let now = tokio::time::Instant::now();
                    next_beat = if again_at_once { now } else { now + self.interval() };
                }
                _ = tokio::time::sleep_until(next_beat), if in_flight.is_none() => {
                    self.client.set_progress(self.progress.get());
                    in_flight = Some(tokio::spawn(self.client.start_allocate().send()));
                }
            }
        };
        // Its asks and releases are the client's again once it has answered.
        if let Some(call) = in_flight {
            match tokio::time::timeout(Duration::from_secs(10), call).await {
                Ok(Ok(answer)) => {
                    let _ = self.client.finish_allocate(answer).await;
                }
                _ => warn!("the last allocate did not answer in time; shutting down without it"),
            }
        }
        self.shutdown().await;
        let _ = client_back.send(self.client);
        if let Some(done) = terminated {
            let _ = done.send(());
        }
    }

    /// Fast while containers are outstanding, slow otherwise.
    fn interval(&self) -> Duration {
        if self.outstanding.values().any(|n| *n > 0) {
            self.config.fast_heartbeat
        } else {
            self.config.slow_heartbeat
        }
    }

    fn key_for(&mut self, spec: &WorkerSpec) -> AskKey {
        if let Some(k) = self.keys.get(spec) {
            return k.clone();
        }
        // Ids from 1: -1/0 mean "no id" to older clients and the RM's defaults.
        let id = self.keys.len() as i64 + 1;
        let key = AskKey::anywhere(id as i32, id, resources::capability(spec));
        info!(allocation_request_id = id, capability = %key.capability, total = %spec.total, slots = spec.num_slots,
            "new TaskManager shape: asking YARN under its own priority");
        self.keys.insert(spec.clone(), key.clone());
        self.spec_of.insert(id, spec.clone());
        key
    }

    fn set_outstanding(&mut self, key: &AskKey, n: i32) {
        self.outstanding.insert(key.allocation_request_id, n.max(0));
        self.client.set_ask(key.clone(), n.max(0));
    }

    fn request(&mut self, spec: WorkerSpec) {
        let key = self.key_for(&spec);
        let n = self.outstanding.get(&key.allocation_request_id).copied().unwrap_or(0) + 1;
        debug!(allocation_request_id = key.allocation_request_id, outstanding = n, "asking for a container");
        self.set_outstanding(&key, n);
    }

    /// Asks are absolute: one fewer outstanding container for the spec's key
    /// (the next allocate tells the RM). A container already allocated for it
    /// is not taken back here.
    fn cancel(&mut self, spec: &WorkerSpec) {
        let Some(key) = self.keys.get(spec).cloned() else { return };
        let n = self.outstanding.get(&key.allocation_request_id).copied().unwrap_or(0);
        if n > 0 {
            debug!(allocation_request_id = key.allocation_request_id, outstanding = n - 1, "withdrawing an ask");
            self.set_outstanding(&key, n - 1);
        }
    }

    fn release(&mut self, resource_id: &ResourceId) {
        let Some(id) = self.unplace(resource_id) else { return };
        let Some(worker) = self.containers.remove(&id) else { return };
        info!(container = %id, node = %worker.container.node, "releasing the container");
        self.client.release(id);
        self.stop_on_node(&worker.container);
    }

    /// stopContainers in the background: the RM's release kills it too, this is just sooner.
    fn stop_on_node(&self, container: &Container) -> Option<tokio::task::JoinHandle<()>> {
        let token = self.client.nm_token(&container.node)?.clone();
        let (nm, node, id) = (self.nm.clone(), container.node.clone(), container.id);
        Some(tokio::spawn(async move {
            if let Err(e) = nm.stop_containers(&node, &token, &[id]).await {
                debug!(container = %id, error = %e, "stopContainers failed (the RM releases it anyway)");
            }
        }))
    }

    /// Takes an allocate's answer; true when the next one should go at once
    /// (the RM had lost our registration and every ask must be sent again).
    async fn on_allocate_answer(&mut self, answer: AllocateAnswer) -> bool {
        match self.client.finish_allocate(answer).await {
            Ok(None) => {
                self.failures = 0;
                true
            }
            Ok(Some(allocation)) => {
                self.failures = 0;
                if allocation.amrm_token_rolled {
                    info!("the AMRMToken was rolled; the scheduler connection uses the new one");
                }
                match allocation.command {
                    Some(AmCommand::Shutdown) => {
                        self.give_up("the ResourceManager told this ApplicationMaster to shut down (AM_SHUTDOWN)")
                    }
                    Some(AmCommand::Resync) => {
                        warn!("the ResourceManager asked for a resync; re-sending every outstanding ask");
                        self.client.resend_all_asks();
                    }
                    None => {}
                }
                for status in allocation.completed {
                    self.on_completed(status);
                }
                for container in allocation.allocated {
                    self.on_allocated(container);
                }
                false
            }
            Err(hadoop::Error::Remote(r)) if r.simple_class() == "InvalidResourceRequestException" => {
                // Our own check should have caught it; fail the asks rather than resend them forever.
                let reason = format!(
                    "YARN refused a container request: {}; lower the vertex's resources or ask the cluster's \
                     operator to raise the scheduler's maximum allocation",
                    r.message
                );
                warn!(%reason);
                let pending: Vec<(AskKey, i32)> = self
                    .keys
                    .values()
                    .map(|k| (k.clone(), self.outstanding.get(&k.allocation_request_id).copied().unwrap_or(0)))
                    .filter(|(_, n)| *n > 0)
                    .collect();
                for (key, n) in pending {
                    self.set_outstanding(&key, 0);
                    if let Some(spec) = self.spec_of.get(&key.allocation_request_id).cloned() {
                        for _ in 0..n {
                            let _ = self
                                .events
                                .send(DriverEvent::WorkerRequestFailed { spec: spec.clone(), reason: reason.clone() });
                        }
                    }
                }
                false
            }
            Err(e) => {
                self.on_allocate_failed(&e.to_string());
                false
            }
        }
    }

    fn on_allocate_failed(&mut self, e: &str) {
        self.failures += 1;
        warn!(error = %e, failures = self.failures, "allocate heartbeat failed");
        if self.failures >= self.config.max_allocate_failures.max(1) {
            self.give_up(&format!(
                "{} allocate heartbeats to the ResourceManager failed in a row (last: {e}); check the \
                 ResourceManager's health and yarn.resourcemanager.scheduler.address",
                self.failures
            ));
        }
    }

    fn give_up(&mut self, reason: &str) {
        warn!(%reason, "the YARN driver stops");
        if let Ok(mut r) = self.lost_reason.lock() {
            *r = Some(reason.to_string());
        }
        let _ = self.events.send(DriverEvent::Fatal(reason.to_string()));
        self.lost.cancel();
    }

    /// Tracks a container an earlier attempt started: released, stopped and
    /// reported like ours. Its TaskManager registers with us on its own.
    fn adopt(&mut self, container: Container) {
        let resource_id = ResourceId::new(container.id.to_string());
        info!(container = %container.id, node = %container.node, "taking over a container of an earlier attempt");
        // What it was asked as is not known here; its size is.
        let spec = WorkerSpec::uniform(resources::max_worker_profile(&container.resource), 1);
        self.place(&resource_id, &container);
        self.containers.insert(container.id, Worker { resource_id, container, spec });
    }

    fn on_allocated(&mut self, container: Container) {
        let id = container.allocation_request_id;
        let wanted = self.outstanding.get(&id).copied().unwrap_or(0);
        let spec = self.spec_of.get(&id).cloned();
        let (Some(spec), true) = (spec, wanted > 0) else {
            info!(container = %container.id, resource = %container.resource, allocation_request_id = id,
                "surplus container; giving it back");
            self.client.release(container.id);
            return;
        };
        if let Some(key) = self.keys.get(&spec).cloned() {
            // The RM lowered its copy of the ask; lower ours so a later change does not re-send the old total.
            self.set_outstanding(&key, wanted - 1);
        }
        let resource_id = ResourceId::new(container.id.to_string());
        let Some(nm_token) = self.client.nm_token(&container.node).cloned() else {
            let reason =
                format!("no NMToken arrived for node {}; cannot start container {}", container.node, container.id);
            warn!(%reason);
            self.client.release(container.id);
            let _ = self.events.send(DriverEvent::WorkerRequestFailed { spec, reason });
            return;
        };
        let launch = match self.launch_context(&resource_id, &container, &spec) {
            Ok(l) => l,
            Err(e) => {
                let reason = format!("cannot launch a TaskManager in {}: {e}", container.id);
                warn!(%reason);
                self.client.release(container.id);
                let _ = self.events.send(DriverEvent::WorkerRequestFailed { spec, reason });
                return;
            }
        };
        info!(container = %container.id, node = %container.node, resource = %container.resource,
            "launching a TaskManager");
        self.place(&resource_id, &container);
        self.containers.insert(container.id, Worker { resource_id, container: container.clone(), spec });
        let (nm, done) = (self.nm.clone(), self.launched_tx.clone());
        tokio::spawn(async move {
            let error = nm.start_container(&nm_token, &container, &launch).await.err().map(|e| e.to_string());
            let _ = done.send(Launched { container: container.id, error });
        });
    }

    fn on_launched(&mut self, launched: Launched) {
        let Some(worker) = self.containers.get(&launched.container) else { return };
        match launched.error {
            None => {
                let _ = self.events.send(DriverEvent::WorkerStarted {
                    resource_id: worker.resource_id.clone(),
                    spec: worker.spec.clone(),
                });
            }
            Some(e) => {
                let reason = format!(
                    "the NodeManager {} refused to start container {}: {e}",
                    worker.container.node, launched.container
                );
                warn!(%reason);
                let spec = worker.spec.clone();
                let resource_id = worker.resource_id.clone();
                self.unplace(&resource_id);
                self.containers.remove(&launched.container);
                self.client.release(launched.container);
                let _ = self.events.send(DriverEvent::WorkerRequestFailed { spec, reason });
            }
        }
    }

    fn on_completed(&mut self, status: ContainerStatus) {
        let Some(worker) = self.containers.remove(&status.id) else {
            debug!(container = %status.id, "completion of a container we no longer track");
            return;
        };
        self.unplace(&worker.resource_id);
        let diagnostics = format!(
            "YARN container {} on {} completed with exit status {}{}",
            status.id,
            worker.container.node,
            status.exit_status,
            if status.diagnostics.trim().is_empty() {
                String::new()
            } else {
                format!(": {}", status.diagnostics.trim())
            }
        );
        info!(%diagnostics, "TaskManager container completed");
        let _ = self.events.send(DriverEvent::WorkerTerminated { resource_id: worker.resource_id, diagnostics });
    }

    fn launch_context(
        &self,
        resource_id: &ResourceId,
        container: &Container,
        spec: &WorkerSpec,
    ) -> Result<ContainerLaunchContext, hadoop::yarn::launch_env::UnsafeEnvValue> {
        let secret = SecretSource::HadoopCredentials { alias: YARN_SECRET_ALIAS.into() };
        // Relative work dir: inside the container's working directory, which YARN cleans up.
        let launch = spec.launch(&self.config.rm_address, resource_id, secret, "tm-work".into(), &container.node.host);
        let mut environment = self.config.env.clone();
        environment.extend(launch.to_env());
        // The NodeManager writes these into bash unescaped: refuse what it would mangle.
        hadoop::yarn::launch_env::check_all(&environment)?;
        Ok(ContainerLaunchContext {
            local_resources: self.config.local_resources.clone(),
            environment,
            commands: vec![task_manager_command()],
            tokens: self.config.tokens.borrow().to_vec(),
        })
    }

    /// Releases every container and cancels every ask, with one last allocate.
    async fn shutdown(&mut self) {
        let keys: Vec<AskKey> = self.keys.values().cloned().collect();
        for key in keys {
            self.set_outstanding(&key, 0);
        }
        let ids: Vec<ResourceId> = self.by_resource.keys().cloned().collect();
        let mut stops = Vec::new();
        for id in ids {
            if let Some(cid) = self.unplace(&id) {
                if let Some(w) = self.containers.remove(&cid) {
                    self.client.release(cid);
                    stops.extend(self.stop_on_node(&w.container));
                }
            }
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(stops)).await;
        if !self.lost.is_cancelled() {
            self.client.set_progress(self.progress.get());
            if let Err(e) = self.client.allocate().await {
                warn!(error = %e, "the last allocate (releasing every container) failed");
            }
        }
    }
}

/// The TaskManager container's command: our binary (after the node's
/// architecture is checked), logs where YARN collects them.
pub fn task_manager_command() -> String {
    contract::container_command("taskmanager")
}
