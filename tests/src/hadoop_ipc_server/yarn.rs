//! A small YARN ResourceManager scheduler (ApplicationMasterProtocol) and
//! NodeManager (ContainerManagementProtocol) for the test IPC server, shaped
//! like the Hadoop 3.3.6 captures: asks are absolute totals, containers are
//! normalised up to the minimum allocation, a few containers per allocate,
//! NMTokens once per node, response_id counting up, finish needing a second
//! call before it reports `isUnregistered = true`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use hadoop::proto::common::TokenProto;
use hadoop::proto::yarn as pb;
use hadoop::yarn::{ApplicationAttemptId, ContainerId, ContainerLaunchContext, NodeId, Resource};
use hadoop::RemoteException;
use prost::Message;

use super::capacity::Capacity;
use super::launcher::ContainerLauncher;
use super::sasl::SecretManager;
use super::{CallContext, CallHandler, HandlerFuture};

#[derive(Clone, Debug)]
pub struct RmConfig {
    pub attempt: ApplicationAttemptId,
    pub minimum_allocation: Resource,
    pub maximum_allocation: Resource,
    /// NodeManagers containers are placed on, round robin.
    pub nodes: Vec<NodeId>,
    /// Each node's web address (`host:port`), as its NodeManager registered it,
    /// in `nodes`' order; a node without one is given `<host>:8042` (the default port).
    pub node_http_addresses: Vec<String>,
    pub containers_per_allocate: usize,
    /// finishApplicationMaster answers `isUnregistered = false` this many times first.
    pub finish_pending_calls: u32,
    /// The cluster's room, shared with other applications; `None` = unlimited.
    pub capacity: Option<Arc<Capacity>>,
}

#[derive(Debug, Default)]
pub struct RmState {
    pub registered: bool,
    pub unregistered: bool,
    pub finish_calls: u32,
    pub response_id: i32,
    /// Outstanding asks: (priority, allocation request id, normalised capability) -> count.
    pub outstanding: BTreeMap<(i32, i64, Resource), i32>,
    pub live: BTreeMap<ContainerId, NodeId>,
    /// The live containers as they were handed out, for a later attempt to get back.
    issued: BTreeMap<ContainerId, pb::ContainerProto>,
    /// Containers of earlier attempts this attempt's AM gets at registration
    /// (keep-containers-across-application-attempts).
    pub kept: Vec<ContainerId>,
    pub released: Vec<ContainerId>,
    pub pending_completed: Vec<pb::ContainerStatusProto>,
    pub nm_tokens_sent: HashSet<NodeId>,
    next_container: i64,
    next_node: usize,
    pub final_status: Option<i32>,
    /// Sent with the next allocate (see [`ResourceManager::roll_amrm_token`]).
    pub rolled_amrm_token: Option<hadoop::credentials::Token>,
    /// Every authenticated user that called, in order (base64 token identifiers).
    pub callers: Vec<Option<String>>,
    /// Every ask received, in order: (priority, allocation request id, capability as asked, total).
    pub asks_seen: Vec<(i32, i64, Resource, i32)>,
    /// Every container handed out: (id, allocation request id, normalised capability).
    pub allocated_seen: Vec<(ContainerId, i64, Resource)>,
    /// The progress reported with the last allocate.
    pub last_progress: Option<f32>,
    /// Diagnostics of the last finishApplicationMaster.
    pub final_diagnostics: Option<String>,
    /// The host, RPC port and tracking URL the AM registered with.
    pub registered_as: Option<(String, i32, String)>,
}

pub struct ResourceManager {
    pub config: RmConfig,
    pub secrets: SecretManager,
    pub state: Arc<Mutex<RmState>>,
}

fn remote(class: &str, message: String) -> RemoteException {
    RemoteException { class: class.into(), message, fatal: false }
}

/// A capability rounded up to the minimum allocation, as the scheduler hands it out.
pub fn normalise(r: &Resource, min: &Resource) -> Resource {
    let round = |v: i64, step: i64| if step <= 0 { v } else { ((v + step - 1) / step).max(1) * step };
    let mut out = r.clone();
    out.memory_mb = round(r.memory_mb, min.memory_mb);
    out.vcores = round(i64::from(r.vcores), i64::from(min.vcores)) as i32;
    out
}

fn token_proto(t: &hadoop::credentials::Token) -> TokenProto {
    TokenProto {
        identifier: t.identifier.clone(),
        password: t.password.clone(),
        kind: t.kind.clone(),
        service: t.service.clone(),
    }
}

impl ResourceManager {
    pub fn new(config: RmConfig, secrets: SecretManager) -> Arc<Self> {
        Arc::new(Self { config, secrets, state: Arc::new(Mutex::new(RmState::default())) })
    }

    /// The AMRMToken an AM of this attempt authenticates with.
    pub fn amrm_token(&self) -> hadoop::credentials::Token {
        let id = pb::ApplicationAttemptIdProto::from(&self.config.attempt).encode_to_vec();
        self.secrets.issue(id, "YARN_AM_RM_TOKEN", "")
    }

    /// Roll the AMRMToken: the next allocate response carries a new one.
    pub fn roll_amrm_token(&self) -> hadoop::credentials::Token {
        let mut id = pb::ApplicationAttemptIdProto::from(&self.config.attempt).encode_to_vec();
        id.extend_from_slice(b"rolled");
        let token = self.secrets.issue(id, "YARN_AM_RM_TOKEN", "");
        self.state.lock().unwrap().rolled_amrm_token = Some(token.clone());
        token
    }

    /// A new attempt of the same application that keeps `previous`'s live
    /// containers (work-preserving AM restart, keep-containers-across-application-attempts):
    /// they stay running, their completions are reported to the new attempt,
    /// and its AM gets them, with NMTokens for their nodes, when it registers.
    /// No capture shows a second attempt: modelled from Hadoop's
    /// ApplicationMasterProtocol documentation (unverified).
    pub fn next_attempt(previous: &ResourceManager, config: RmConfig) -> Arc<Self> {
        let old = previous.state.lock().unwrap();
        let state = RmState {
            live: old.live.clone(),
            issued: old.issued.clone(),
            kept: old.live.keys().copied().collect(),
            ..RmState::default()
        };
        Arc::new(Self { config, secrets: previous.secrets.clone(), state: Arc::new(Mutex::new(state)) })
    }

    /// This attempt's NMToken for `node` (sent once per node).
    fn nm_token(&self, node: &NodeId) -> pb::NmTokenProto {
        let mut id = pb::ApplicationAttemptIdProto::from(&self.config.attempt).encode_to_vec();
        id.extend_from_slice(node.to_string().as_bytes());
        let token = self.secrets.issue(id, "NMToken", &node.to_string());
        pb::NmTokenProto { node_id: Some(node.into()), token: Some(token_proto(&token)) }
    }

    /// Forget the AM's registration, as a restarted RM does.
    pub fn forget_registration(&self) {
        let mut s = self.state.lock().unwrap();
        s.registered = false;
        s.response_id = 0;
        s.outstanding.clear();
    }

    /// A container finished on its node (reported with the next allocate).
    /// Only containers this RM handed out and has not seen complete or
    /// released are reported, as a real RM does (an AM never hears of its own
    /// container, nor twice of one).
    pub fn complete(&self, id: ContainerId, exit_status: i32, diagnostics: &str) {
        let mut s = self.state.lock().unwrap();
        if let Some(c) = &self.config.capacity {
            c.give_back(&id);
        }
        if s.live.remove(&id).is_none() {
            return;
        }
        s.issued.remove(&id);
        s.pending_completed.push(pb::ContainerStatusProto {
            container_id: Some((&id).into()),
            state: Some(pb::ContainerStateProto::CComplete as i32),
            diagnostics: Some(diagnostics.into()),
            exit_status: Some(exit_status),
            capability: None,
            execution_type: None,
        });
    }

    fn handle(&self, method: &str, payload: &[u8]) -> Result<Vec<u8>, RemoteException> {
        let bad = |e: prost::DecodeError| remote("java.io.IOException", format!("cannot parse {method}: {e}"));
        let mut s = self.state.lock().unwrap();
        match method {
            "registerApplicationMaster" => {
                let req = pb::RegisterApplicationMasterRequestProto::decode(payload).map_err(bad)?;
                s.registered_as = Some((req.host().to_string(), req.rpc_port(), req.tracking_url().to_string()));
                s.registered = true;
                s.response_id = 0;
                // An earlier attempt's containers that still run, and NMTokens for their nodes.
                let kept: Vec<pb::ContainerProto> =
                    s.kept.iter().filter_map(|c| s.issued.get(c).filter(|_| s.live.contains_key(c)).cloned()).collect();
                let mut nm_tokens = Vec::new();
                for c in &kept {
                    let Some(node) = c.node_id.as_ref().map(NodeId::from) else { continue };
                    if s.nm_tokens_sent.insert(node.clone()) {
                        nm_tokens.push(self.nm_token(&node));
                    }
                }
                Ok(pb::RegisterApplicationMasterResponseProto {
                    containers_from_previous_attempts: kept,
                    nm_tokens_from_previous_attempts: nm_tokens,
                    maximum_capability: Some((&self.config.maximum_allocation).into()),
                    queue: Some("default".into()),
                    resource_types: vec![
                        pb::ResourceTypeInfoProto {
                            name: "memory-mb".into(),
                            units: Some("Mi".into()),
                            r#type: Some(0),
                        },
                        pb::ResourceTypeInfoProto {
                            name: "vcores".into(),
                            units: Some(String::new()),
                            r#type: Some(0),
                        },
                    ],
                    ..Default::default()
                }
                .encode_to_vec())
            }
            "allocate" => {
                let req = pb::AllocateRequestProto::decode(payload).map_err(bad)?;
                if !s.registered {
                    return Err(remote(
                        "org.apache.hadoop.yarn.exceptions.ApplicationMasterNotRegisteredException",
                        "AM is not registered for known application attempt".into(),
                    ));
                }
                if req.response_id() != s.response_id {
                    return Err(remote(
                        "org.apache.hadoop.yarn.exceptions.InvalidApplicationMasterRequestException",
                        format!(
                            "Invalid responseId in AllocateRequest: expected {}, got {}",
                            s.response_id,
                            req.response_id()
                        ),
                    ));
                }
                s.last_progress = req.progress;
                for ask in &req.ask {
                    let cap = ask.capability.as_ref().map(Resource::from).unwrap_or_default();
                    let priority = ask.priority.as_ref().map(|p| p.priority()).unwrap_or(0);
                    s.asks_seen.push((priority, ask.allocation_request_id(), cap.clone(), ask.num_containers()));
                    let max = &self.config.maximum_allocation;
                    if cap.memory_mb > max.memory_mb || cap.vcores > max.vcores {
                        return Err(remote(
                            "org.apache.hadoop.yarn.exceptions.InvalidResourceRequestException",
                            format!(
                                "Invalid resource request! Cannot allocate containers as requested resource is greater \
                                 than maximum allowed allocation. Requested resource type=[memory-mb], Requested \
                                 resource=<memory:{}, vCores:{}>, maximum allowed allocation=<memory:{}, vCores:{}>",
                                cap.memory_mb, cap.vcores, max.memory_mb, max.vcores
                            ),
                        ));
                    }
                    let key = (
                        ask.priority.as_ref().map(|p| p.priority()).unwrap_or(0),
                        ask.allocation_request_id(),
                        normalise(&cap, &self.config.minimum_allocation),
                    );
                    s.outstanding.insert(key, ask.num_containers());
                }
                for r in &req.release {
                    let id = ContainerId::from(r);
                    if let Some(c) = &self.config.capacity {
                        c.give_back(&id);
                    }
                    if s.live.remove(&id).is_some() {
                        s.issued.remove(&id);
                        s.released.push(id);
                        s.pending_completed.push(pb::ContainerStatusProto {
                            container_id: Some(*r),
                            state: Some(pb::ContainerStateProto::CComplete as i32),
                            diagnostics: Some("Container released by application".into()),
                            exit_status: Some(-100),
                            capability: None,
                            execution_type: None,
                        });
                    }
                }
                let mut allocated = Vec::new();
                let mut nm_tokens = Vec::new();
                for _ in 0..self.config.containers_per_allocate {
                    // The first outstanding ask that fits on some node (all of them without a capacity).
                    let id = ContainerId { attempt: self.config.attempt, id: s.next_container + 2 };
                    let start = s.next_node;
                    let mut placed = None;
                    for (key, count) in s.outstanding.iter().filter(|(_, c)| **c > 0) {
                        let node = match &self.config.capacity {
                            None => Some(self.config.nodes[start % self.config.nodes.len()].clone()),
                            Some(c) => c.take(id, &key.2, start),
                        };
                        if let Some(node) = node {
                            placed = Some((key.clone(), *count, node));
                            break;
                        }
                    }
                    let Some((key, _, node)) = placed else { break };
                    if let Some(count) = s.outstanding.get_mut(&key) {
                        *count -= 1;
                    }
                    let (priority, allocation_request_id, capability) = key.clone();
                    s.next_container += 1;
                    s.next_node += 1;
                    let container_token = self.secrets.issue(
                        pb::ContainerIdProto::from(&id).encode_to_vec(),
                        "ContainerToken",
                        &node.to_string(),
                    );
                    let proto = pb::ContainerProto {
                        id: Some((&id).into()),
                        node_id: Some((&node).into()),
                        node_http_address: Some(
                            self.config
                                .nodes
                                .iter()
                                .position(|n| *n == node)
                                .and_then(|i| self.config.node_http_addresses.get(i).cloned())
                                .unwrap_or_else(|| format!("{}:8042", node.host)),
                        ),
                        resource: Some((&capability).into()),
                        priority: Some(pb::PriorityProto { priority: Some(priority) }),
                        container_token: Some(token_proto(&container_token)),
                        execution_type: Some(pb::ExecutionTypeProto::Guaranteed as i32),
                        allocation_request_id: Some(allocation_request_id),
                        version: Some(0),
                    };
                    s.issued.insert(id, proto.clone());
                    allocated.push(proto);
                    if s.nm_tokens_sent.insert(node.clone()) {
                        nm_tokens.push(self.nm_token(&node));
                    }
                    s.allocated_seen.push((id, allocation_request_id, capability.clone()));
                    s.live.insert(id, node);
                }
                s.response_id += 1;
                let completed = std::mem::take(&mut s.pending_completed);
                Ok(pb::AllocateResponseProto {
                    response_id: Some(s.response_id),
                    allocated_containers: allocated,
                    completed_container_statuses: completed,
                    limit: Some((&self.config.maximum_allocation).into()),
                    num_cluster_nodes: Some(self.config.nodes.len() as i32),
                    nm_tokens,
                    application_priority: Some(pb::PriorityProto { priority: Some(0) }),
                    am_rm_token: s.rolled_amrm_token.take().as_ref().map(token_proto),
                    ..Default::default()
                }
                .encode_to_vec())
            }
            "finishApplicationMaster" => {
                let req = pb::FinishApplicationMasterRequestProto::decode(payload).map_err(bad)?;
                s.final_status = req.final_application_status;
                s.final_diagnostics = req.diagnostics.clone();
                s.finish_calls += 1;
                s.unregistered = s.finish_calls > self.config.finish_pending_calls;
                Ok(pb::FinishApplicationMasterResponseProto { is_unregistered: Some(s.unregistered) }.encode_to_vec())
            }
            other => Err(remote(
                "org.apache.hadoop.ipc.RpcNoSuchMethodException",
                format!("Unknown method {other} called on ApplicationMasterProtocol"),
            )),
        }
    }
}

impl CallHandler for ResourceManager {
    fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
        self.state.lock().unwrap().callers.push(ctx.user);
        let result = self.handle(&method, &payload);
        Box::pin(async move { result })
    }
}

/// A NodeManager: starts, stops and reports containers whose container token
/// the RM issued (its identifier is the container id). With a launcher
/// attached ([`NodeManager::attach`]) it really runs them as local processes
/// (see [`super::launcher`]); otherwise it only keeps the books.
#[derive(Default)]
pub struct NodeManager {
    pub containers: Mutex<HashMap<ContainerId, (ContainerLaunchContext, pb::ContainerStateProto)>>,
    launcher: OnceLock<Arc<ContainerLauncher>>,
    /// Fault to inject: the next startContainers request fails with this
    /// YarnException message, as a NodeManager refuses one (in
    /// `failed_requests`, the call itself succeeding).
    refuse_next: Mutex<Option<String>>,
}

impl NodeManager {
    /// From now on start containers through `launcher`, and report their
    /// exits to `rm` as completed containers. (Attached after the server
    /// started, since the launcher needs the node's address.) Once only.
    pub fn attach(self: &Arc<Self>, launcher: Arc<ContainerLauncher>, rm: Option<Arc<ResourceManager>>) {
        let weak = Arc::downgrade(self);
        launcher.on_exit(move |exit| {
            if let Some(nm) = weak.upgrade() {
                if let Some(c) = nm.containers.lock().unwrap().get_mut(&exit.id) {
                    c.1 = pb::ContainerStateProto::CComplete;
                }
            }
            if let Some(rm) = &rm {
                rm.complete(exit.id, exit.exit_status, &exit.diagnostics);
            }
        });
        let _ = self.launcher.set(launcher);
    }

    /// The next container start is refused with `message`.
    pub fn refuse_next_start(&self, message: &str) {
        *self.refuse_next.lock().unwrap() = Some(message.to_owned());
    }

    pub fn launcher(&self) -> Option<&Arc<ContainerLauncher>> {
        self.launcher.get()
    }

    fn handle(&self, method: &str, payload: &[u8]) -> Result<Vec<u8>, RemoteException> {
        let bad = |e: prost::DecodeError| remote("java.io.IOException", format!("cannot parse {method}: {e}"));
        let mut containers = self.containers.lock().unwrap();
        let not_here = |id: &pb::ContainerIdProto| pb::ContainerExceptionMapProto {
            container_id: Some(*id),
            exception: Some(pb::SerializedExceptionProto {
                message: Some(format!("Container {} is not handled by this NodeManager", ContainerId::from(id))),
                trace: None,
                class_name: Some("org.apache.hadoop.yarn.exceptions.YarnException".into()),
                cause: None,
            }),
        };
        match method {
            "startContainers" => {
                let req = pb::StartContainersRequestProto::decode(payload).map_err(bad)?;
                let mut resp = pb::StartContainersResponseProto::default();
                for start in req.start_container_request {
                    let token = start.container_token.unwrap_or_default();
                    let Ok(id) = pb::ContainerIdProto::decode(token.identifier.as_slice()) else { continue };
                    let launch =
                        start.container_launch_context.as_ref().map(ContainerLaunchContext::from).unwrap_or_default();
                    let cid = ContainerId::from(&id);
                    if let Some(message) = self.refuse_next.lock().unwrap().take() {
                        resp.failed_requests.push(pb::ContainerExceptionMapProto {
                            container_id: Some(id),
                            exception: Some(pb::SerializedExceptionProto {
                                message: Some(message),
                                trace: None,
                                class_name: Some("org.apache.hadoop.yarn.exceptions.YarnException".into()),
                                cause: None,
                            }),
                        });
                        continue;
                    }
                    if containers.get(&cid).is_some_and(|c| c.1 == pb::ContainerStateProto::CRunning) {
                        resp.failed_requests.push(pb::ContainerExceptionMapProto {
                            container_id: Some(id),
                            exception: Some(pb::SerializedExceptionProto {
                                message: Some(format!("Container {cid} already is running on this node!!")),
                                trace: None,
                                class_name: Some("org.apache.hadoop.yarn.exceptions.YarnException".into()),
                                cause: None,
                            }),
                        });
                        continue;
                    }
                    containers.insert(cid, (launch.clone(), pb::ContainerStateProto::CRunning));
                    resp.succeeded_requests.push(id);
                    if let Some(launcher) = self.launcher.get() {
                        // Like a NodeManager, accept first; a failed localization completes the container.
                        if let Err(e) = launcher.launch(cid, &launch) {
                            tracing::warn!(container = %cid, error = %e, "container failed to start");
                            let launcher = launcher.clone();
                            // Outside our lock: the exit listener takes it too.
                            tokio::spawn(async move { launcher.report_failed_start(cid, &e) });
                        }
                    }
                }
                Ok(resp.encode_to_vec())
            }
            "stopContainers" => {
                let req = pb::StopContainersRequestProto::decode(payload).map_err(bad)?;
                let mut resp = pb::StopContainersResponseProto::default();
                for id in req.container_id {
                    match containers.get_mut(&ContainerId::from(&id)) {
                        Some(c) => {
                            match self.launcher.get() {
                                // The state turns COMPLETE when the process has exited.
                                Some(l) => {
                                    l.stop(&ContainerId::from(&id));
                                }
                                None => c.1 = pb::ContainerStateProto::CComplete,
                            }
                            resp.succeeded_requests.push(id);
                        }
                        None => resp.failed_requests.push(not_here(&id)),
                    }
                }
                Ok(resp.encode_to_vec())
            }
            "getContainerStatuses" => {
                let req = pb::GetContainerStatusesRequestProto::decode(payload).map_err(bad)?;
                let mut resp = pb::GetContainerStatusesResponseProto::default();
                for id in req.container_id {
                    match containers.get(&ContainerId::from(&id)) {
                        Some((_, state)) => resp.status.push(pb::ContainerStatusProto {
                            container_id: Some(id),
                            state: Some(*state as i32),
                            diagnostics: Some(String::new()),
                            exit_status: Some(if *state == pb::ContainerStateProto::CComplete { -105 } else { -1000 }),
                            capability: None,
                            execution_type: None,
                        }),
                        None => resp.failed_requests.push(not_here(&id)),
                    }
                }
                Ok(resp.encode_to_vec())
            }
            other => Err(remote("org.apache.hadoop.ipc.RpcNoSuchMethodException", format!("Unknown method {other}"))),
        }
    }
}

impl CallHandler for NodeManager {
    fn call(&self, _ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
        let result = self.handle(&method, &payload);
        Box::pin(async move { result })
    }
}
