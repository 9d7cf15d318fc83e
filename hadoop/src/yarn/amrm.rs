//! ApplicationMasterProtocol: the AM's conversation with the ResourceManager
//! scheduler port, authenticated by the AMRMToken over SASL TOKEN.
//!
//! The client keeps the protocol's bookkeeping so the driver above does not:
//! - asks are absolute totals per key (priority, allocation request id,
//!   resource name, capability); [`AmRmClient::set_ask`] records the wanted
//!   total and the next allocate re-sends every key whose total changed
//!   (0 cancels);
//! - releases are sent once, with the next allocate;
//! - `response_id` is echoed back, as the RM demands;
//! - NMTokens arrive once per node: they are cached by node;
//! - a rolled AMRMToken replaces the old one for future connections;
//! - finishApplicationMaster is repeated until the RM says it unregistered.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::Token;
use crate::error::Error;
use crate::ipc::{Auth, ConnectionConfig, FailoverProxy, RetryPolicy};
use crate::proto::yarn as pb;

use super::types::{token_from_proto, Container, ContainerId, ContainerStatus, FinalStatus, NodeId, Resource};

/// The protocol name on the wire.
pub const PROTOCOL: &str = "org.apache.hadoop.yarn.api.ApplicationMasterProtocolPB";

/// One ask key with its wanted total. `resource_name` is `*` for "anywhere".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AskKey {
    pub priority: i32,
    pub allocation_request_id: i64,
    pub resource_name: String,
    pub capability: Resource,
}

impl AskKey {
    /// An ask for containers of `capability` anywhere in the cluster.
    pub fn anywhere(priority: i32, allocation_request_id: i64, capability: Resource) -> Self {
        Self { priority, allocation_request_id, resource_name: "*".into(), capability }
    }
}

/// What registerApplicationMaster returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The largest container the scheduler will hand out.
    pub maximum_capability: Resource,
    pub queue: String,
    /// Containers kept from earlier attempts (work-preserving AM restart).
    pub containers_from_previous_attempts: Vec<Container>,
    /// Resource types the RM knows (`memory-mb`, `vcores`, `yarn.io/gpu`...).
    pub resource_types: Vec<String>,
}

/// What one allocate returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    pub response_id: i32,
    pub allocated: Vec<Container>,
    pub completed: Vec<ContainerStatus>,
    /// Nodes whose NMToken arrived with this response (now cached).
    pub new_nm_tokens: Vec<NodeId>,
    /// Headroom the scheduler reports for this application.
    pub available: Option<Resource>,
    pub num_cluster_nodes: i32,
    /// The RM asks for a resync (re-register) or a shutdown.
    pub command: Option<AmCommand>,
    /// A new AMRMToken arrived and replaced the old one.
    pub amrm_token_rolled: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmCommand {
    Resync,
    Shutdown,
}

/// Knobs of [`AmRmClient`].
#[derive(Clone, Debug)]
pub struct AmRmConfig {
    /// Scheduler addresses (`yarn.resourcemanager.scheduler.address`, one per HA id).
    pub addrs: Vec<String>,
    pub retry: RetryPolicy,
    /// Pause between finishApplicationMaster calls while the RM is unregistering.
    pub finish_poll_interval: Duration,
    pub finish_max_attempts: usize,
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
}

impl AmRmConfig {
    pub fn new(addrs: Vec<String>) -> Self {
        Self {
            addrs,
            retry: RetryPolicy::default(),
            finish_poll_interval: Duration::from_millis(100),
            finish_max_attempts: 600,
            connect_timeout: Duration::from_secs(20),
            call_timeout: Duration::from_secs(60),
        }
    }
}

/// An allocate heartbeat detached from its [`AmRmClient`] ([`AmRmClient::start_allocate`]).
pub struct AllocateCall {
    proxy: Arc<FailoverProxy>,
    request: pb::AllocateRequestProto,
    registered_as: Option<pb::RegisterApplicationMasterRequestProto>,
    sent_asks: BTreeMap<AskKey, i32>,
    sent_releases: usize,
}

/// What came of an [`AllocateCall`]; give it to [`AmRmClient::finish_allocate`].
pub struct AllocateAnswer {
    outcome: AllocateOutcome,
    sent_asks: BTreeMap<AskKey, i32>,
    sent_releases: usize,
}

enum AllocateOutcome {
    Answered(pb::AllocateResponseProto),
    /// The RM had lost our registration (a restart); we registered again.
    Reregistered,
    Failed(Error),
}

impl AllocateCall {
    /// Sends it (with the proxy's failover and retries). If the RM forgot
    /// us (`ApplicationMasterNotRegisteredException`), registers again.
    pub async fn send(self) -> AllocateAnswer {
        let outcome = match self.proxy.call::<_, pb::AllocateResponseProto>("allocate", &self.request).await {
            Ok(r) => AllocateOutcome::Answered(r),
            Err(Error::Remote(r)) if r.simple_class() == "ApplicationMasterNotRegisteredException" => {
                match &self.registered_as {
                    None => AllocateOutcome::Failed(Error::Remote(r)),
                    Some(request) => {
                        tracing::warn!("the ResourceManager lost our registration (restart?); registering again");
                        match self
                            .proxy
                            .call::<_, pb::RegisterApplicationMasterResponseProto>("registerApplicationMaster", request)
                            .await
                        {
                            Ok(_) => AllocateOutcome::Reregistered,
                            Err(e) => AllocateOutcome::Failed(e),
                        }
                    }
                }
            }
            Err(e) => AllocateOutcome::Failed(e),
        };
        AllocateAnswer { outcome, sent_asks: self.sent_asks, sent_releases: self.sent_releases }
    }
}

pub struct AmRmClient {
    /// Shared with an [`AllocateCall`] in flight.
    proxy: Arc<FailoverProxy>,
    config: AmRmConfig,
    amrm_token: Token,
    response_id: i32,
    /// Wanted totals, and which changed since the last allocate.
    asks: BTreeMap<AskKey, i32>,
    dirty: BTreeMap<AskKey, i32>,
    releases: Vec<ContainerId>,
    nm_tokens: HashMap<NodeId, Token>,
    progress: f32,
    /// What we registered with, to re-register after an RM restart.
    registered_as: Option<pb::RegisterApplicationMasterRequestProto>,
}

impl AmRmClient {
    /// A client authenticating with `amrm_token` (from the AM's token file).
    pub fn new(config: AmRmConfig, amrm_token: Token) -> Self {
        let mut conn = ConnectionConfig::new(PROTOCOL, Auth::token(amrm_token.clone()));
        conn.connect_timeout = config.connect_timeout;
        conn.call_timeout = config.call_timeout;
        let proxy = Arc::new(FailoverProxy::new(config.addrs.clone(), conn).with_retry_policy(config.retry));
        Self {
            proxy,
            config,
            amrm_token,
            response_id: 0,
            asks: BTreeMap::new(),
            dirty: BTreeMap::new(),
            releases: Vec::new(),
            nm_tokens: HashMap::new(),
            progress: 0.0,
            registered_as: None,
        }
    }

    /// registerApplicationMaster. `rpc_port` -1 and an empty tracking URL are fine.
    pub async fn register(&mut self, host: &str, rpc_port: i32, tracking_url: &str) -> Result<Registration, Error> {
        let request = pb::RegisterApplicationMasterRequestProto {
            host: Some(host.to_string()),
            rpc_port: Some(rpc_port),
            tracking_url: Some(tracking_url.to_string()),
        };
        let response: pb::RegisterApplicationMasterResponseProto =
            self.proxy.call("registerApplicationMaster", &request).await?;
        self.registered_as = Some(request);
        for nm in response.nm_tokens_from_previous_attempts.iter().cloned() {
            self.cache_nm_token(nm);
        }
        Ok(Registration {
            maximum_capability: response.maximum_capability.as_ref().map(Resource::from).unwrap_or_default(),
            queue: response.queue.clone().unwrap_or_default(),
            containers_from_previous_attempts: response
                .containers_from_previous_attempts
                .into_iter()
                .map(Container::from)
                .collect(),
            resource_types: response.resource_types.into_iter().map(|t| t.name).collect(),
        })
    }

    /// Want `total` outstanding containers for `key` (absolute, not a delta;
    /// 0 cancels). Sent with the next allocate if it changed.
    ///
    /// The RM lowers its own copy as it hands containers out; lower the total
    /// here too as containers for `key` arrive (match them by priority and
    /// `allocation_request_id`, never by size), or the next change re-sends
    /// the old, larger number.
    pub fn set_ask(&mut self, key: AskKey, total: i32) {
        let total = total.max(0);
        let old = self.asks.get(&key).copied().unwrap_or(0);
        if old == total && !self.dirty.contains_key(&key) {
            return;
        }
        if total == 0 {
            self.asks.remove(&key);
        } else {
            self.asks.insert(key.clone(), total);
        }
        self.dirty.insert(key, total);
    }

    /// The total last set for `key`.
    pub fn ask(&self, key: &AskKey) -> i32 {
        self.asks.get(key).copied().unwrap_or(0)
    }

    /// Give a container back; sent with the next allocate.
    pub fn release(&mut self, container: ContainerId) {
        self.releases.push(container);
    }

    /// Progress (0..=1) reported with every allocate.
    pub fn set_progress(&mut self, progress: f32) {
        self.progress = progress.clamp(0.0, 1.0);
    }

    /// The NMToken for `node`, once one arrived.
    pub fn nm_token(&self, node: &NodeId) -> Option<&Token> {
        self.nm_tokens.get(node)
    }

    /// The current AMRMToken (rolled ones included).
    pub fn amrm_token(&self) -> &Token {
        &self.amrm_token
    }

    /// The next response id to echo.
    pub fn response_id(&self) -> i32 {
        self.response_id
    }

    fn cache_nm_token(&mut self, nm: pb::NmTokenProto) {
        if let (Some(node), Some(token)) = (nm.node_id.as_ref(), nm.token) {
            self.nm_tokens.insert(NodeId::from(node), token_from_proto(token));
        }
    }

    /// One heartbeat: send changed asks and pending releases, get containers.
    ///
    /// If the RM forgot us (it restarted: `ApplicationMasterNotRegisteredException`),
    /// this re-registers, re-sends every outstanding ask and tries once more,
    /// as Hadoop's AMRMClient does.
    pub async fn allocate(&mut self) -> Result<Allocation, Error> {
        match self.finish_allocate(self.start_allocate().send().await).await? {
            Some(allocation) => Ok(allocation),
            None => {
                let answer = self.start_allocate().send().await;
                self.finish_allocate(answer).await?.ok_or_else(|| Error::BadResponse {
                    method: "allocate",
                    detail: "the ResourceManager forgot the registration again right after it".into(),
                })
            }
        }
    }

    /// The next heartbeat as a call that runs without the client (so its
    /// owner's loop goes on while the RM answers, retries included). The asks
    /// and releases it carries stay pending here until [`Self::finish_allocate`]
    /// takes its answer; asks changed meanwhile are sent by the next one.
    pub fn start_allocate(&self) -> AllocateCall {
        let ask: Vec<pb::ResourceRequestProto> = self
            .dirty
            .iter()
            .map(|(key, total)| pb::ResourceRequestProto {
                priority: Some(pb::PriorityProto { priority: Some(key.priority) }),
                resource_name: Some(key.resource_name.clone()),
                capability: Some((&key.capability).into()),
                num_containers: Some(*total),
                relax_locality: Some(true),
                node_label_expression: None,
                execution_type_request: Some(pb::ExecutionTypeRequestProto {
                    execution_type: Some(pb::ExecutionTypeProto::Guaranteed as i32),
                    enforce_execution_type: Some(false),
                }),
                allocation_request_id: Some(key.allocation_request_id),
            })
            .collect();
        let request = pb::AllocateRequestProto {
            ask,
            release: self.releases.iter().map(Into::into).collect(),
            blacklist_request: Some(pb::ResourceBlacklistRequestProto::default()),
            response_id: Some(self.response_id),
            progress: Some(self.progress),
        };
        AllocateCall {
            proxy: self.proxy.clone(),
            request,
            registered_as: self.registered_as.clone(),
            sent_asks: self.dirty.clone(),
            sent_releases: self.releases.len(),
        }
    }

    /// Takes the answer of a call from [`Self::start_allocate`]. `Ok(None)`:
    /// the RM had forgotten us and we registered again; every ask goes with
    /// the next call, which should be made at once.
    pub async fn finish_allocate(&mut self, answer: AllocateAnswer) -> Result<Option<Allocation>, Error> {
        let response = match answer.outcome {
            AllocateOutcome::Answered(r) => r,
            AllocateOutcome::Reregistered => {
                // As Hadoop's AMRMClient: a new registration starts the response ids over.
                self.response_id = 0;
                self.resend_all_asks();
                return Ok(None);
            }
            // On failure the asks and releases stay pending for the next try.
            AllocateOutcome::Failed(e) => return Err(e),
        };
        // What was sent is done with; what changed since stays pending.
        for (key, total) in answer.sent_asks {
            if self.dirty.get(&key) == Some(&total) {
                self.dirty.remove(&key);
            }
        }
        self.releases.drain(..answer.sent_releases.min(self.releases.len()));
        self.response_id = response.response_id();

        let mut new_nm_tokens = Vec::new();
        for nm in response.nm_tokens.iter().cloned() {
            if let Some(node) = nm.node_id.as_ref() {
                new_nm_tokens.push(NodeId::from(node));
            }
            self.cache_nm_token(nm);
        }
        let mut amrm_token_rolled = false;
        if let Some(token) = response.am_rm_token.clone() {
            let mut token = token_from_proto(token);
            if token.service.is_empty() {
                // The RM leaves the service blank; keep the one we had.
                token.service = self.amrm_token.service.clone();
            }
            if token != self.amrm_token {
                tracing::info!("the ResourceManager rolled the AMRMToken; using the new one from now on");
                self.proxy.set_auth(Auth::token(token.clone())).await;
                self.amrm_token = token;
                amrm_token_rolled = true;
            }
        }
        let command = match response.a_m_command.and_then(|c| pb::AmCommandProto::try_from(c).ok()) {
            Some(pb::AmCommandProto::AmResync) => Some(AmCommand::Resync),
            Some(pb::AmCommandProto::AmShutdown) => Some(AmCommand::Shutdown),
            None => None,
        };
        Ok(Some(Allocation {
            response_id: self.response_id,
            allocated: response.allocated_containers.into_iter().map(Container::from).collect(),
            completed: response.completed_container_statuses.iter().map(ContainerStatus::from).collect(),
            new_nm_tokens,
            available: response.limit.as_ref().map(Resource::from),
            num_cluster_nodes: response.num_cluster_nodes.unwrap_or(0),
            command,
            amrm_token_rolled,
        }))
    }

    /// Make the next allocate re-send every outstanding ask (after a resync).
    pub fn resend_all_asks(&mut self) {
        for (k, v) in &self.asks {
            self.dirty.insert(k.clone(), *v);
        }
        self.response_id = 0;
    }

    /// finishApplicationMaster, repeated until the RM reports the
    /// application unregistered.
    pub async fn finish(
        &mut self,
        status: FinalStatus,
        diagnostics: &str,
        tracking_url: Option<&str>,
    ) -> Result<(), Error> {
        let request = pb::FinishApplicationMasterRequestProto {
            diagnostics: Some(diagnostics.to_string()),
            tracking_url: tracking_url.map(str::to_string),
            final_application_status: Some(pb::FinalApplicationStatusProto::from(status) as i32),
        };
        // Hadoop's AMRMClient polls the same way: the RM confirms the unregistration
        // once its state store has it. Call errors are the proxy's to retry.
        use backon::Retryable as _;
        enum Finish {
            Pending,
            Failed(Error),
        }
        let proxy = &self.proxy;
        let poll = || async {
            match proxy.call::<_, pb::FinishApplicationMasterResponseProto>("finishApplicationMaster", &request).await {
                Ok(r) if r.is_unregistered() => Ok(()),
                Ok(_) => Err(Finish::Pending),
                Err(e) => Err(Finish::Failed(e)),
            }
        };
        let policy = backon::ConstantBuilder::default()
            .with_delay(self.config.finish_poll_interval)
            .with_max_times(self.config.finish_max_attempts.max(1) - 1);
        let polled = poll
            .retry(policy)
            .when(|f| matches!(f, Finish::Pending))
            .notify(|_, _| tracing::debug!("the ResourceManager is still unregistering the application"))
            .await;
        match polled {
            Ok(()) => Ok(()),
            Err(Finish::Failed(e)) => Err(e),
            Err(Finish::Pending) => Err(Error::BadResponse {
                method: "finishApplicationMaster",
                detail: format!(
                    "the ResourceManager did not confirm the unregistration after {} calls",
                    self.config.finish_max_attempts
                ),
            }),
        }
    }
}
