//! A YARN ResourceManager's REST API (`/ws/v1/cluster/...`) for tests, in the
//! JSON shapes of the Hadoop 3.3.6 captures (`shared/wire/hadoop-3.3.6/rest/`).
//!
//! Each submitted application gets what a real RM gives it: an attempt with
//! its own scheduler (the IPC [`ResourceManager`](crate::hadoop_ipc_server::yarn::ResourceManager)
//! double, on its own port), an AMRMToken added to the submitted credentials,
//! and an AM container started as a local process through the NodeManager
//! double's [`ContainerLauncher`] with a `HADOOP_CONF_DIR` that points at that
//! scheduler. Container exits are routed to the owning application's
//! scheduler ([`RestRm::exit_router`]); an application that ends has its
//! remaining containers stopped, as YARN does.
//!
//! States: NEW → ACCEPTED (submitted, AM container launching) → RUNNING (the
//! AM registered with the scheduler) → FINISHED (the AM unregistered, then
//! exited; final status as it said) | FAILED (the AM exited without
//! unregistering, or its container could not start) | KILLED (PUT state).
//! While RUNNING, the report's `trackingUrl` is the RM's web proxy
//! (`http://<rm>/proxy/<app>/`, as a real RM reports it) and `amRPCAddress`
//! the host and RPC port the AM registered; the proxy itself is served here
//! by [`super::proxy`]'s rules.
//! Refusals as the captures show them: 401 without `user.name` on calls that
//! change state, 400 "Requested more memory than configured max", 404 for an
//! unknown application.
//! Attempts: an AM container that exits without unregistering starts the next
//! attempt while `max-app-attempts` allows (the application goes back to
//! ACCEPTED, a new AM container `..._0N_000001` starts against a new scheduler
//! and AMRMToken); with `keep-containers-across-application-attempts` the
//! earlier attempt's containers keep running and the new AM gets them at
//! registration (see `ResourceManager::next_attempt`). No capture shows a
//! second attempt: this follows Hadoop's documentation (unverified).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hadoop::credentials::Credentials;
use hadoop::proto::yarn as pb;
use hadoop::yarn::{
    ApplicationAttemptId, ApplicationId, ContainerId, ContainerLaunchContext, LocalResource, LocalResourceType,
    LocalResourceVisibility, NodeId, Resource, YarnUrl,
};
use prost::Message;
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::mini::site_xml;
use crate::hadoop_ipc_server::capacity::Capacity;
use crate::hadoop_ipc_server::launcher::{ContainerExit, ContainerLauncher};
use crate::hadoop_ipc_server::sasl::SecretManager;
use crate::hadoop_ipc_server::yarn::{ResourceManager, RmConfig};
use crate::hadoop_ipc_server::{self as ipc, CallContext, CallHandler, HandlerFuture, ServerConfig};

#[derive(Clone)]
pub struct RestRmConfig {
    pub cluster_timestamp: i64,
    /// (memory MB, vcores): `yarn.scheduler.minimum-allocation-*`.
    pub min_allocation: (u64, u32),
    /// (memory MB, vcores): `yarn.scheduler.maximum-allocation-*`.
    pub max_allocation: (u64, u32),
    /// Where the per-application configuration dirs go.
    pub work_root: PathBuf,
    /// Shared with the NodeManager doubles: container tokens and NMTokens verify there.
    pub secrets: SecretManager,
    /// The NodeManagers: (node id, its launcher). AM containers start on the
    /// first; the scheduler places TaskManager containers round robin.
    pub nodes: Vec<(NodeId, Arc<ContainerLauncher>)>,
    /// `fs.defaultFS` written into the AM's core-site.xml.
    pub default_fs: String,
    /// Each node's web address (`host:port`, its `nodeHttpAddress`), in `nodes`' order.
    pub node_http_addresses: Vec<String>,
    /// Log aggregation on: where each node writes an ended application's logs
    /// (`yarn.nodemanager.remote-app-log-dir`, a local dir here).
    pub remote_app_log_dir: Option<PathBuf>,
    pub containers_per_allocate: usize,
    /// Each NodeManager's (memory MB, vcores), shared by every application's
    /// containers, AMs included; `None` = unlimited.
    pub node_capacity: Option<(u64, u32)>,
    /// `yarn.web-proxy.address` set: the web proxy runs on its own, on
    /// another host (127.0.0.2 here, so an AM can tell its requests from a
    /// test's), and the RM web app serves no `/proxy/`. Off: the RM embeds it.
    pub standalone_web_proxy: bool,
}

/// The standalone web proxy's host: another loopback address.
pub const WEB_PROXY_HOST: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 0, 2);

impl RestRmConfig {
    pub fn new(
        work_root: PathBuf,
        default_fs: &str,
        secrets: SecretManager,
        nodes: Vec<(NodeId, Arc<ContainerLauncher>)>,
    ) -> Self {
        Self {
            cluster_timestamp: 1_795_750_141_222,
            min_allocation: (128, 1),
            max_allocation: (8192, 8),
            work_root,
            secrets,
            nodes,
            default_fs: default_fs.to_owned(),
            node_http_addresses: Vec::new(),
            remote_app_log_dir: None,
            containers_per_allocate: 4,
            node_capacity: None,
            standalone_web_proxy: false,
        }
    }
}

/// What the AM told its scheduler.
#[derive(Clone, Debug, Default)]
pub struct AmSeen {
    pub registered: Option<(String, i32, String)>,
    pub finished: Option<(pb::FinalApplicationStatusProto, String)>,
}

/// The IPC scheduler double, with the calls the REST side needs observed.
struct Observed {
    rm: Arc<ResourceManager>,
    seen: Arc<Mutex<AmSeen>>,
}

impl CallHandler for Observed {
    fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
        match method.as_str() {
            "registerApplicationMaster" => {
                if let Ok(r) = pb::RegisterApplicationMasterRequestProto::decode(payload.as_slice()) {
                    self.seen.lock().unwrap().registered = Some((
                        r.host.unwrap_or_default(),
                        r.rpc_port.unwrap_or(-1),
                        r.tracking_url.unwrap_or_default(),
                    ));
                }
            }
            "finishApplicationMaster" => {
                if let Ok(r) = pb::FinishApplicationMasterRequestProto::decode(payload.as_slice()) {
                    let status =
                        r.final_application_status.and_then(|s| pb::FinalApplicationStatusProto::try_from(s).ok());
                    self.seen.lock().unwrap().finished = Some((
                        status.unwrap_or(pb::FinalApplicationStatusProto::AppUndefined),
                        r.diagnostics.unwrap_or_default(),
                    ));
                }
            }
            _ => {}
        }
        self.rm.call(ctx, method, payload)
    }
}

/// One application's record.
#[derive(Clone, Debug)]
pub struct AppRecord {
    pub id: ApplicationId,
    pub user: String,
    pub name: String,
    pub queue: String,
    pub application_type: String,
    pub tags: Vec<String>,
    pub state: String,
    pub final_status: String,
    pub diagnostics: String,
    pub started_ms: i64,
    pub launched_ms: i64,
    pub finished_ms: i64,
    /// The tracking URL the AM registered (the proxy forwards there).
    pub tracking_url: Option<String>,
    pub am_rpc_address: Option<String>,
    pub am_resource: (u64, u32),
    pub max_app_attempts: u64,
    /// The current attempt (1 until an AM container fails).
    pub attempt: u32,
    pub am_log_dir: Option<PathBuf>,
    pub am_pid: Option<u32>,
    /// The raw submission body, for tests that check what the client sent.
    pub submission: Value,
}

struct AppSlot {
    record: AppRecord,
    kill: Arc<Notify>,
    /// The attempt's scheduler, once started.
    scheduler: Option<Arc<ResourceManager>>,
}

struct Inner {
    config: RestRmConfig,
    capacity: Option<Arc<Capacity>>,
    /// Fault injection: this many `GET /apps/<id>` answer 503, as a standby RM does.
    failing_reports: std::sync::atomic::AtomicU32,
    addr: SocketAddr,
    /// The standalone web proxy's address, if it runs on its own.
    web_proxy: Option<SocketAddr>,
    /// Issued ids (new-application) -> submitted app (None until POST /apps).
    apps: Mutex<BTreeMap<i32, Option<AppSlot>>>,
}

impl Inner {
    fn proxy_addr(&self) -> SocketAddr {
        self.web_proxy.unwrap_or(self.addr)
    }
}

/// A running RM REST double; dropping it stops the server (AM processes are
/// killed by [`RestRm::shutdown`]).
pub struct RestRm {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `{"RemoteException":{...}}` as Hadoop's web services write it.
fn remote(status: StatusCode, exception: &str, message: &str, class: &str) -> Response {
    (status, Json(json!({"RemoteException": {"exception": exception, "message": message, "javaClassName": class}})))
        .into_response()
}

fn unauthorized() -> Response {
    remote(
        StatusCode::UNAUTHORIZED,
        "AuthorizationException",
        "Unable to obtain user name, user not authenticated",
        "org.apache.hadoop.security.authorize.AuthorizationException",
    )
}

fn bad_request(message: &str) -> Response {
    remote(
        StatusCode::BAD_REQUEST,
        "BadRequestException",
        &format!("java.lang.Exception: {message}"),
        "org.apache.hadoop.yarn.webapp.BadRequestException",
    )
}

fn not_found(id: &str) -> Response {
    remote(
        StatusCode::NOT_FOUND,
        "NotFoundException",
        &format!("java.lang.Exception: app with id: {id} not found"),
        "org.apache.hadoop.yarn.webapp.NotFoundException",
    )
}

fn resource_json(mb: u64, vcores: u32) -> Value {
    json!({"memory": mb, "vCores": vcores, "resourceInformations": {"resourceInformation": [
        {"attributes": {}, "maximumAllocation": i64::MAX, "minimumAllocation": 0, "name": "memory-mb",
         "resourceType": "COUNTABLE", "units": "Mi", "value": mb},
        {"attributes": {}, "maximumAllocation": i64::MAX, "minimumAllocation": 0, "name": "vcores",
         "resourceType": "COUNTABLE", "units": "", "value": vcores}]}})
}

impl RestRm {
    pub async fn start(config: RestRmConfig) -> std::io::Result<RestRm> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let proxy_listener = match config.standalone_web_proxy {
            true => Some(tokio::net::TcpListener::bind((WEB_PROXY_HOST, 0)).await?),
            false => None,
        };
        let web_proxy = proxy_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let capacity = config.node_capacity.map(|(mb, vc)| {
            let nodes: Vec<NodeId> = config.nodes.iter().map(|(n, _)| n.clone()).collect();
            Arc::new(Capacity::new(&nodes, (mb as i64, vc as i32)))
        });
        let inner = Arc::new(Inner {
            config,
            capacity,
            failing_reports: 0.into(),
            addr,
            web_proxy,
            apps: Mutex::new(BTreeMap::new()),
        });
        let proxy_routes = || {
            Router::new()
                .route("/proxy/{id}", axum::routing::any(proxy))
                .route("/proxy/{id}/", axum::routing::any(proxy))
                .route("/proxy/{id}/{*rest}", axum::routing::any(proxy))
        };
        let mut app = Router::new()
            .route("/ws/v1/cluster/info", get(info))
            .route("/ws/v1/cluster/apps/new-application", post(new_application))
            .route("/ws/v1/cluster/apps", post(submit).get(list))
            .route("/ws/v1/cluster/apps/{id}", get(app_report))
            .route("/ws/v1/cluster/apps/{id}/state", get(app_state).put(put_state))
            .route("/ws/v1/cluster/apps/{id}/appattempts", get(app_attempts))
            .route("/ws/v1/cluster/apps/{id}/appattempts/{attempt}/containers", get(attempt_containers));
        let proxy_task = match proxy_listener {
            Some(l) => {
                let proxy_app = proxy_routes().with_state(inner.clone());
                Some(tokio::spawn(async move {
                    let _ = axum::serve(l, proxy_app).await;
                }))
            }
            None => {
                app = app.merge(proxy_routes());
                None
            }
        };
        let app = app.with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
            if let Some(p) = proxy_task {
                p.abort();
            }
        });
        Ok(RestRm { inner, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Where `/proxy/<app>/` is served: the standalone web proxy, or the RM.
    pub fn web_proxy_url(&self) -> String {
        format!("http://{}", self.inner.proxy_addr())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn app(&self, id: &str) -> Option<AppRecord> {
        let n = parse_app_id(id, self.inner.config.cluster_timestamp)?;
        self.inner.apps.lock().unwrap().get(&n).and_then(|s| s.as_ref().map(|s| s.record.clone()))
    }

    pub fn apps(&self) -> Vec<AppRecord> {
        self.inner.apps.lock().unwrap().values().flatten().map(|s| s.record.clone()).collect()
    }

    /// Routes a NodeManager's container exits to the owning application's
    /// scheduler (which reports them to its AM): pass to [`ContainerLauncher::on_exit`].
    pub fn exit_router(&self) -> impl Fn(&ContainerExit) + Send + Sync + 'static {
        let inner = Arc::downgrade(&self.inner);
        move |exit| {
            let Some(inner) = inner.upgrade() else { return };
            if let Some(c) = &inner.capacity {
                c.give_back(&exit.id);
            }
            let scheduler = inner
                .apps
                .lock()
                .unwrap()
                .get(&exit.id.attempt.application.id)
                .and_then(|s| s.as_ref().and_then(|s| s.scheduler.clone()));
            if let Some(rm) = scheduler {
                rm.complete(exit.id, exit.exit_status, &exit.diagnostics);
            }
        }
    }

    /// The next `n` application reports answer 503 (an RM failing over).
    pub fn fail_next_reports(&self, n: u32) {
        self.inner.failing_reports.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// The cluster's room (with `node_capacity`): what each container holds now.
    pub fn capacity(&self) -> Option<Arc<Capacity>> {
        self.inner.capacity.clone()
    }

    /// The scheduler double of an application (after its submission).
    pub fn scheduler(&self, id: &str) -> Option<Arc<ResourceManager>> {
        let n = parse_app_id(id, self.inner.config.cluster_timestamp)?;
        self.inner.apps.lock().unwrap().get(&n).and_then(|s| s.as_ref().and_then(|s| s.scheduler.clone()))
    }

    /// Stops serving and SIGKILLs every container still running.
    pub fn shutdown(self) {
        for (_, l) in &self.inner.config.nodes {
            l.shutdown();
        }
        self.task.abort();
    }
}

impl Drop for RestRm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_terminal(state: &str) -> bool {
    matches!(state, "FINISHED" | "FAILED" | "KILLED")
}

fn parse_app_id(id: &str, ts: i64) -> Option<i32> {
    let rest = id.strip_prefix("application_")?;
    let (t, n) = rest.split_once('_')?;
    (t.parse::<i64>().ok()? == ts).then_some(())?;
    n.parse().ok()
}

fn user(q: &HashMap<String, String>) -> Option<String> {
    q.get("user.name").filter(|u| !u.is_empty()).cloned()
}

async fn info(State(inner): State<Arc<Inner>>) -> Response {
    let ts = inner.config.cluster_timestamp;
    Json(json!({"clusterInfo": {"id": ts, "startedOn": ts, "state": "STARTED", "haState": "ACTIVE",
        "resourceManagerVersion": "3.3.6", "hadoopVersion": "3.3.6"}}))
    .into_response()
}

async fn new_application(State(inner): State<Arc<Inner>>, Query(q): Query<HashMap<String, String>>) -> Response {
    if user(&q).is_none() {
        return unauthorized();
    }
    let mut apps = inner.apps.lock().unwrap();
    let n = apps.keys().next_back().copied().unwrap_or(0) + 1;
    apps.insert(n, None);
    let id = ApplicationId { cluster_timestamp: inner.config.cluster_timestamp, id: n };
    let (mb, vc) = inner.config.max_allocation;
    Json(json!({"application-id": id.to_string(), "maximum-resource-capability": resource_json(mb, vc)}))
        .into_response()
}

async fn submit(State(inner): State<Arc<Inner>>, Query(q): Query<HashMap<String, String>>, body: Bytes) -> Response {
    let Some(user) = user(&q) else { return unauthorized() };
    let Ok(v) = serde_json::from_slice::<Value>(&body) else { return bad_request("cannot parse the submission") };
    let id_text = v["application-id"].as_str().unwrap_or_default().to_owned();
    let Some(n) = parse_app_id(&id_text, inner.config.cluster_timestamp) else {
        return bad_request(&format!("Invalid ApplicationId: {id_text}"));
    };
    let mb = v["resource"]["memory"].as_u64().unwrap_or(0);
    let vc = v["resource"]["vCores"].as_u64().unwrap_or(1) as u32;
    let (max_mb, max_vc) = inner.config.max_allocation;
    if mb > max_mb {
        return bad_request("Requested more memory than configured max");
    }
    if vc > max_vc {
        return bad_request("Requested more cores than configured max");
    }
    let spec = &v["am-container-spec"];
    let credentials = match spec.get("credentials") {
        Some(c) => match Credentials::from_rest_json(c) {
            Ok(c) => c,
            Err(e) => return bad_request(&e.to_string()),
        },
        None => Credentials::default(),
    };
    let mut local_resources = BTreeMap::new();
    for e in spec["local-resources"]["entry"].as_array().cloned().unwrap_or_default() {
        let r = &e["value"];
        let kind = match r["type"].as_str() {
            Some("ARCHIVE") => LocalResourceType::Archive,
            Some("PATTERN") => LocalResourceType::Pattern,
            _ => LocalResourceType::File,
        };
        let visibility = match r["visibility"].as_str() {
            Some("PUBLIC") => LocalResourceVisibility::Public,
            Some("PRIVATE") => LocalResourceVisibility::Private,
            _ => LocalResourceVisibility::Application,
        };
        local_resources.insert(
            e["key"].as_str().unwrap_or_default().to_owned(),
            LocalResource {
                url: yarn_url(r["resource"].as_str().unwrap_or_default()),
                size: r["size"].as_i64().unwrap_or(0),
                timestamp: r["timestamp"].as_i64().unwrap_or(0),
                kind,
                visibility,
                pattern: None,
            },
        );
    }
    let environment: BTreeMap<String, String> = spec["environment"]["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| (e["key"].as_str().unwrap_or_default().to_owned(), e["value"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let command = spec["commands"]["command"].as_str().unwrap_or_default().to_owned();
    let record = AppRecord {
        id: ApplicationId { cluster_timestamp: inner.config.cluster_timestamp, id: n },
        user,
        name: v["application-name"].as_str().unwrap_or("N/A").to_owned(),
        queue: v["queue"].as_str().unwrap_or("default").to_owned(),
        application_type: v["application-type"].as_str().unwrap_or("YARN").to_owned(),
        tags: v["application-tags"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        state: "ACCEPTED".into(),
        final_status: "UNDEFINED".into(),
        diagnostics: "AM container is launched, waiting for AM container to Register with RM".into(),
        started_ms: now_ms(),
        launched_ms: 0,
        finished_ms: 0,
        tracking_url: None,
        am_rpc_address: None,
        am_resource: (mb, vc),
        max_app_attempts: v["max-app-attempts"].as_u64().unwrap_or(2),
        attempt: 1,
        am_log_dir: None,
        am_pid: None,
        submission: v.clone(),
    };
    let kill = Arc::new(Notify::new());
    {
        let mut apps = inner.apps.lock().unwrap();
        match apps.get(&n) {
            Some(None) => {}
            Some(Some(_)) => return bad_request(&format!("Application {id_text} already submitted")),
            None => return bad_request(&format!("Application {id_text} was not issued by new-application")),
        }
        apps.insert(n, Some(AppSlot { record: record.clone(), kill: kill.clone(), scheduler: None }));
    }
    let spec = ContainerLaunchContext { local_resources, environment, commands: vec![command], tokens: Vec::new() };
    tokio::spawn(run_app(inner.clone(), record.id, spec, credentials, kill));
    let mut headers = HeaderMap::new();
    if let Ok(loc) = format!("http://{}/ws/v1/cluster/apps/{id_text}", inner.addr).parse() {
        headers.insert("Location", loc);
    }
    (StatusCode::ACCEPTED, headers).into_response()
}

/// `scheme://host:port/path` as YARN's `URL` record.
fn yarn_url(s: &str) -> YarnUrl {
    let Some((scheme, rest)) = s.split_once("://").or_else(|| s.split_once(':')) else {
        return YarnUrl { file: s.to_owned(), ..Default::default() };
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()),
        None => (authority, None),
    };
    YarnUrl { scheme: scheme.to_owned(), host: host.to_owned(), port, file: path.to_owned(), user_info: None }
}

fn update(inner: &Inner, id: ApplicationId, f: impl FnOnce(&mut AppRecord)) {
    if let Some(Some(slot)) = inner.apps.lock().unwrap().get_mut(&id.id) {
        f(&mut slot.record);
    }
}

fn end(inner: &Inner, id: ApplicationId, state: &str, final_status: &str, diagnostics: String) {
    update(inner, id, |r| {
        r.state = state.into();
        r.final_status = final_status.into();
        r.diagnostics = diagnostics;
        r.finished_ms = now_ms();
    });
    // YARN stops what is left of an ended application.
    for (_, l) in &inner.config.nodes {
        for c in l.running() {
            if c.attempt.application == id {
                stop_container(l, &c);
            }
        }
    }
    if let Some(remote) = inner.config.remote_app_log_dir.clone() {
        let user = inner.apps.lock().unwrap().get(&id.id).and_then(|s| s.as_ref()).map(|s| s.record.user.clone());
        let nodes = inner.config.nodes.clone();
        tokio::spawn(aggregate_logs(remote, user.unwrap_or_default(), id, nodes));
    }
}

/// What each NodeManager does once an application's containers on it are
/// gone, with log aggregation on: one TFile per node of every container's log
/// files (`AggregatedLogFormat`, uncompressed, the default compression-type
/// `none`), at `<remote>/<user>/bucket-logs-tfile/<nnnn>/<app>/<host>_<port>`,
/// then the local logs are deleted. *Unverified*: modelled on Hadoop 3.3's
/// `AppLogAggregatorImpl`, `LogAggregationTFileController` and
/// `LogAggregationUtils` (docs/yarn.md); the file is written complete under a
/// temporary name, then renamed, as the NodeManager does.
async fn aggregate_logs(
    remote: PathBuf,
    user: String,
    id: ApplicationId,
    nodes: Vec<(NodeId, Arc<ContainerLauncher>)>,
) {
    use hadoop::yarn::aggregated_logs::{write, ContainerLogs};
    for _ in 0..1500 {
        if nodes.iter().all(|(_, l)| l.running().iter().all(|c| c.attempt.application != id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = id.to_string();
    let dir = remote.join(&user).join("bucket-logs-tfile").join(format!("{:04}", id.id % 10000)).join(&app);
    for (node, launcher) in nodes {
        let local = launcher.config().root.join("logs").join(&app);
        let Ok(entries) = std::fs::read_dir(&local) else { continue };
        let mut containers = Vec::new();
        let mut ids: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        ids.sort();
        for c in ids {
            let mut files: Vec<_> = std::fs::read_dir(&c).into_iter().flatten().flatten().map(|e| e.path()).collect();
            files.sort();
            let files = files
                .into_iter()
                .filter(|f| f.is_file())
                .map(|f| {
                    (
                        f.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                        std::fs::read(&f).unwrap_or_default(),
                    )
                })
                .collect();
            containers.push(ContainerLogs {
                container: c.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                files,
            });
        }
        let _ = std::fs::create_dir_all(&dir);
        let target = dir.join(format!("{}_{}", node.host, node.port));
        let tmp = dir.join(format!(".{}_{}.tmp", node.host, node.port));
        if std::fs::write(&tmp, write(&user, &containers)).and_then(|()| std::fs::rename(&tmp, &target)).is_ok() {
            let _ = std::fs::remove_dir_all(&local);
        }
    }
}

/// The NodeManager's way of stopping a container: SIGTERM to its process
/// group, then SIGKILL to the *group* after `sleep-delay-before-sigkill`, even
/// when the group's leader (the `bash -c` wrapper) is already gone, so a
/// child that lingers after SIGTERM (an AM still trying to unregister) dies too.
fn stop_container(launcher: &Arc<ContainerLauncher>, id: &ContainerId) {
    let pid = launcher.pid(id);
    launcher.stop(id);
    let grace = launcher.config().stop_grace;
    if let Some(pgid) = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0) {
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            // SAFETY: kill(2) on the process group of a container this double
            // started; pids are not reused within the grace period in tests.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        });
    }
}

/// How one attempt ended.
enum AttemptEnd {
    /// The application ended (finished, killed, or could not start): `end` was called.
    Over,
    /// The AM container exited without unregistering, with these diagnostics.
    AmFailed(String),
}

/// One application's life: its attempts, each with a scheduler and an AM container.
async fn run_app(
    inner: Arc<Inner>,
    id: ApplicationId,
    spec: ContainerLaunchContext,
    submitted: Credentials,
    kill: Arc<Notify>,
) {
    let c = &inner.config;
    if c.nodes.is_empty() {
        return end(&inner, id, "FAILED", "FAILED", "the RM double has no NodeManager to run the AM on".into());
    }
    // Every NodeManager runs the application's containers as its submitter.
    let user = inner.apps.lock().unwrap().get(&id.id).and_then(|s| s.as_ref().map(|s| s.record.user.clone()));
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        for (_, l) in &c.nodes {
            l.set_app_user(&id.to_string(), &user);
        }
    }
    let (max_attempts, keep) = inner
        .apps
        .lock()
        .unwrap()
        .get(&id.id)
        .and_then(|s| s.as_ref())
        .map(|s| {
            let keep = s.record.submission["keep-containers-across-application-attempts"].as_bool().unwrap_or(false);
            (s.record.max_app_attempts.max(1), keep)
        })
        .unwrap_or((1, false));
    let mut previous: Option<Arc<ResourceManager>> = None;
    for n in 1..=max_attempts {
        let attempt = ApplicationAttemptId { application: id, attempt: n as i32 };
        let config = RmConfig {
            attempt,
            minimum_allocation: Resource::new(c.min_allocation.0 as i64, c.min_allocation.1 as i32),
            maximum_allocation: Resource::new(c.max_allocation.0 as i64, c.max_allocation.1 as i32),
            nodes: c.nodes.iter().map(|(n, _)| n.clone()).collect(),
            node_http_addresses: c.node_http_addresses.clone(),
            containers_per_allocate: c.containers_per_allocate,
            finish_pending_calls: 1,
            capacity: inner.capacity.clone(),
        };
        let rm = match previous.take() {
            Some(prev) if keep => ResourceManager::next_attempt(&prev, config),
            Some(prev) => {
                // Without keep-containers, YARN stops the failed attempt's containers.
                let live: Vec<(ContainerId, NodeId)> =
                    prev.state.lock().unwrap().live.iter().map(|(c, n)| (*c, n.clone())).collect();
                for (cid, node) in live {
                    if let Some((_, l)) = c.nodes.iter().find(|(n, _)| *n == node) {
                        stop_container(l, &cid);
                    }
                }
                ResourceManager::new(config, c.secrets.clone())
            }
            None => ResourceManager::new(config, c.secrets.clone()),
        };
        update(&inner, id, |r| r.attempt = n as u32);
        match run_attempt(&inner, id, attempt, rm.clone(), spec.clone(), submitted.clone(), &kill).await {
            AttemptEnd::Over => return,
            AttemptEnd::AmFailed(diag) if n < max_attempts => {
                update(&inner, id, |r| {
                    r.state = "ACCEPTED".into();
                    r.tracking_url = None;
                    r.am_rpc_address = None;
                    r.diagnostics = format!("{diag}. Failing this attempt. A new attempt follows.");
                });
                previous = Some(rm);
            }
            AttemptEnd::AmFailed(diag) => {
                return end(&inner, id, "FAILED", "FAILED", format!("Application {id} failed {n} times due to {diag}"));
            }
        }
    }
}

/// One attempt: its scheduler on its own port, the AM's configuration and
/// AMRMToken, the AM container, and the state transitions it drives.
async fn run_attempt(
    inner: &Arc<Inner>,
    id: ApplicationId,
    attempt: ApplicationAttemptId,
    rm: Arc<ResourceManager>,
    spec: ContainerLaunchContext,
    submitted: Credentials,
    kill: &Notify,
) -> AttemptEnd {
    let c = &inner.config;
    let am_node = c.nodes[0].1.clone();
    let ended = |state: &str, fs: &str, diag: String| {
        end(inner, id, state, fs, diag);
        AttemptEnd::Over
    };
    if let Some(Some(slot)) = inner.apps.lock().unwrap().get_mut(&id.id) {
        slot.scheduler = Some(rm.clone());
    }
    let seen = Arc::new(Mutex::new(AmSeen::default()));
    let handler = Arc::new(Observed { rm: rm.clone(), seen: seen.clone() });
    let server = ipc::start(
        ServerConfig::default().with_sasl(c.secrets.digest_md5()).with_handler(hadoop::yarn::amrm::PROTOCOL, handler),
    )
    .await;
    let server = match server {
        Ok(s) => s,
        Err(e) => return ended("FAILED", "FAILED", format!("cannot start the scheduler double: {e}")),
    };
    // The AM container's view of the cluster, as the NodeManager's HADOOP_CONF_DIR gives it.
    let conf_dir = c.work_root.join(format!("{id}.conf"));
    let write_conf = || -> std::io::Result<()> {
        std::fs::create_dir_all(&conf_dir)?;
        std::fs::write(
            conf_dir.join("core-site.xml"),
            site_xml(&[("fs.defaultFS", c.default_fs.clone()), ("hadoop.security.authentication", "simple".into())]),
        )?;
        std::fs::write(
            conf_dir.join("yarn-site.xml"),
            site_xml(
                &[
                    ("yarn.resourcemanager.scheduler.address", server.addr().to_string()),
                    ("yarn.resourcemanager.webapp.address", inner.addr.to_string()),
                    ("yarn.scheduler.minimum-allocation-mb", c.min_allocation.0.to_string()),
                    ("yarn.scheduler.minimum-allocation-vcores", c.min_allocation.1.to_string()),
                    ("yarn.scheduler.maximum-allocation-mb", c.max_allocation.0.to_string()),
                    ("yarn.scheduler.maximum-allocation-vcores", c.max_allocation.1.to_string()),
                ]
                .into_iter()
                .chain(inner.web_proxy.map(|p| ("yarn.web-proxy.address", p.to_string())))
                .collect::<Vec<_>>(),
            ),
        )
    };
    if let Err(e) = write_conf() {
        return ended("FAILED", "FAILED", format!("cannot write the AM's configuration: {e}"));
    }
    // The submitted credentials plus the AMRMToken, as the RM hands them to the NodeManager.
    let mut creds = submitted;
    creds.tokens.insert(0, (String::new(), rm.amrm_token()));
    let mut spec = spec;
    spec.tokens = creds.to_bytes();
    spec.environment.insert("HADOOP_CONF_DIR".into(), conf_dir.display().to_string());
    spec.environment.insert("APP_SUBMIT_TIME_ENV".into(), now_ms().to_string());
    let container_id = ContainerId { attempt, id: 1 };
    if let Some(capacity) = &inner.capacity {
        // The AM container waits in ACCEPTED until its node has room, as on a full queue.
        let (mb, vcores) = record_am(inner, id);
        let min = Resource::new(c.min_allocation.0 as i64, c.min_allocation.1 as i32);
        let am = crate::hadoop_ipc_server::yarn::normalise(&Resource::new(mb as i64, vcores as i32), &min);
        let am_node_id = c.nodes[0].0.clone();
        loop {
            if capacity.take_on(container_id, &am, &am_node_id) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = kill.notified() => {
                    let user = inner.apps.lock().unwrap().get(&id.id).and_then(|s| s.as_ref().map(|s| s.record.user.clone())).unwrap_or_default();
                    return ended("KILLED", "KILLED", format!("Application {id} was killed by user {user}"));
                }
            }
        }
    }
    let mut launched = match am_node.launch(container_id, &spec) {
        Ok(l) => l,
        Err(diag) => return ended("FAILED", "FAILED", format!("AM container {container_id} failed to launch: {diag}")),
    };
    update(inner, id, |r| {
        r.launched_ms = now_ms();
        r.am_log_dir = Some(launched.log_dir.clone());
        r.am_pid = Some(launched.pid);
    });
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            exit = launched.wait() => {
                let finished = seen.lock().unwrap().finished.clone();
                match finished {
                    Some((status, diag)) => {
                        let fs = match status {
                            pb::FinalApplicationStatusProto::AppSucceeded => "SUCCEEDED",
                            pb::FinalApplicationStatusProto::AppFailed => "FAILED",
                            pb::FinalApplicationStatusProto::AppKilled => "KILLED",
                            _ => "UNDEFINED",
                        };
                        end(inner, id, "FINISHED", fs, diag);
                    }
                    None => {
                        drop(server);
                        return AttemptEnd::AmFailed(format!(
                            "AM Container for {attempt} exited with exitCode: {}. Diagnostics: {}. Logs: {}",
                            exit.exit_status, exit.diagnostics, launched.log_dir.display()
                        ));
                    }
                }
                drop(server);
                return AttemptEnd::Over;
            }
            _ = kill.notified() => {
                stop_container(&am_node, &container_id);
                let _ = launched.wait().await;
                let user = inner.apps.lock().unwrap().get(&id.id).and_then(|s| s.as_ref().map(|s| s.record.user.clone())).unwrap_or_default();
                end(inner, id, "KILLED", "KILLED", format!("Application {id} was killed by user {user}"));
                drop(server);
                return AttemptEnd::Over;
            }
            _ = tick.tick() => {
                let registered = seen.lock().unwrap().registered.clone();
                if let Some((host, port, tracking)) = registered {
                    update(inner, id, |r| {
                        if r.state == "ACCEPTED" {
                            r.state = "RUNNING".into();
                            r.diagnostics.clear();
                            r.tracking_url = (!tracking.is_empty()).then_some(tracking.clone());
                            r.am_rpc_address = Some(format!("{host}:{port}"));
                        }
                    });
                }
            }
        }
    }
}

/// The AM's (memory MB, vcores) as submitted.
fn record_am(inner: &Inner, id: ApplicationId) -> (u64, u32) {
    inner.apps.lock().unwrap().get(&id.id).and_then(|s| s.as_ref().map(|s| s.record.am_resource)).unwrap_or((0, 1))
}

fn app_json(r: &AppRecord, rm: SocketAddr, proxy: SocketAddr) -> Value {
    let running = r.state == "RUNNING";
    let elapsed = if r.finished_ms > 0 { r.finished_ms - r.started_ms } else { now_ms() - r.started_ms };
    let mut v = json!({
        "id": r.id.to_string(), "user": r.user, "name": r.name, "queue": r.queue, "state": r.state,
        "finalStatus": r.final_status, "progress": if is_terminal(&r.state) { 100.0 } else { 0.0 },
        "trackingUI": if is_terminal(&r.state) { "History" } else if running { "ApplicationMaster" } else { "UNASSIGNED" },
        // A real RM reports its web proxy while the AM runs, never the AM's own URL.
        "trackingUrl": if running && r.tracking_url.is_some() { format!("http://{proxy}/proxy/{}/", r.id) } else { format!("http://{rm}/cluster/app/{}", r.id) },
        "diagnostics": r.diagnostics, "clusterId": r.id.cluster_timestamp, "applicationType": r.application_type,
        "applicationTags": r.tags.join(","), "priority": 0, "startedTime": r.started_ms, "launchTime": r.launched_ms,
        "finishedTime": r.finished_ms, "elapsedTime": elapsed,
        "amContainerLogs": r.am_log_dir.as_ref().map(|d| format!("file://{}", d.display())).unwrap_or_default(),
        "amHostHttpAddress": "127.0.0.1:0", "masterNodeId": "127.0.0.1:0",
        "allocatedMB": if running { r.am_resource.0 as i64 } else { -1 },
        "allocatedVCores": if running { r.am_resource.1 as i64 } else { -1 },
        "runningContainers": if running { 1 } else { -1 },
        "unmanagedApplication": false, "logAggregationStatus": "DISABLED",
        "amNodeLabelExpression": "", "appNodeLabelExpression": "",
    });
    if let Some(a) = &r.am_rpc_address {
        v["amRPCAddress"] = json!(a);
    }
    v
}

async fn app_report(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>) -> Response {
    use std::sync::atomic::Ordering::SeqCst;
    if inner.failing_reports.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok() {
        return (StatusCode::SERVICE_UNAVAILABLE, "This is standby RM. The redirect url is: ").into_response();
    }
    let apps = inner.apps.lock().unwrap();
    match find(&inner, &apps, &id) {
        Some(s) => Json(json!({"app": app_json(&s.record, inner.addr, inner.proxy_addr())})).into_response(),
        None => not_found(&id),
    }
}

async fn proxy(
    State(inner): State<Arc<Inner>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    UrlPath(params): UrlPath<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let id = params.get("id").cloned().unwrap_or_default();
    let rest = params.get("rest").cloned().unwrap_or_default();
    let target = {
        let apps = inner.apps.lock().unwrap();
        find(&inner, &apps, &id).filter(|s| s.record.state == "RUNNING").and_then(|s| s.record.tracking_url.clone())
    };
    // The proxy's requests leave from its own host.
    let from = inner.proxy_addr().ip();
    super::proxy::forward(from, method, uri.path(), target.as_deref(), &rest, &headers, body).await
}

/// The submitted application `id` names, in the (locked) table.
fn find<'a>(inner: &Inner, apps: &'a BTreeMap<i32, Option<AppSlot>>, id: &str) -> Option<&'a AppSlot> {
    parse_app_id(id, inner.config.cluster_timestamp).and_then(|n| apps.get(&n)).and_then(|s| s.as_ref())
}

/// `node id -> nodeHttpAddress` as the RM reports it.
fn node_http(inner: &Inner, node: &NodeId) -> String {
    let i = inner.config.nodes.iter().position(|(n, _)| n == node);
    i.and_then(|i| inner.config.node_http_addresses.get(i)).cloned().unwrap_or_else(|| format!("{}:0", node.host))
}

/// The captured shape (`rest/10-GET-..._appattempts.response`): every attempt
/// so far (the capture has one; more are unverified), AM containers on the first node.
async fn app_attempts(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>) -> Response {
    let apps = inner.apps.lock().unwrap();
    let Some(s) = find(&inner, &apps, &id) else {
        return not_found(&id);
    };
    let r = &s.record;
    let node = &inner.config.nodes[0].0;
    let http = node_http(&inner, node);
    let attempts: Vec<Value> = (1..=r.attempt.max(1))
        .map(|n| {
            let attempt = ApplicationAttemptId { application: r.id, attempt: n as i32 };
            let container = ContainerId { attempt, id: 1 };
            json!({
                "id": n, "startTime": r.started_ms, "finishedTime": r.finished_ms, "containerId": container.to_string(),
                "nodeHttpAddress": http, "nodeId": node.to_string(),
                "logsLink": format!("http://{http}/node/containerlogs/{container}/{}", r.user),
                "blacklistedNodes": "", "nodesBlacklistedBySystem": "", "appAttemptId": attempt.to_string(),
                "exportPorts": "null",
            })
        })
        .collect();
    Json(json!({"appAttempts": {"appAttempt": attempts}})).into_response()
}

/// The attempt's live containers, AM included. No capture holds this answer:
/// the shape is Hadoop's `ContainersInfo` of `ContainerInfo` (unverified).
async fn attempt_containers(
    State(inner): State<Arc<Inner>>,
    UrlPath((id, attempt)): UrlPath<(String, String)>,
) -> Response {
    let apps = inner.apps.lock().unwrap();
    let Some(s) = find(&inner, &apps, &id) else {
        return not_found(&id);
    };
    let am_attempt = ApplicationAttemptId { application: s.record.id, attempt: s.record.attempt.max(1) as i32 };
    if attempt != am_attempt.to_string() {
        return remote(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &format!("java.lang.Exception: appAttempt with id: {attempt} not found"),
            "org.apache.hadoop.yarn.webapp.NotFoundException",
        );
    }
    let mut live: Vec<(ContainerId, NodeId)> = vec![];
    if s.record.state == "RUNNING" {
        live.push((ContainerId { attempt: am_attempt, id: 1 }, inner.config.nodes[0].0.clone()));
    }
    if let Some(rm) = &s.scheduler {
        live.extend(rm.state.lock().unwrap().live.iter().map(|(c, n)| (*c, n.clone())));
    }
    let containers: Vec<Value> = live
        .iter()
        .map(|(c, n)| {
            json!({"containerId": c.to_string(), "containerState": "RUNNING", "nodeId": n.to_string(),
                "nodeHttpAddress": format!("http://{}", node_http(&inner, n)), "priority": 0, "containerExitStatus": 0})
        })
        .collect();
    Json(json!({"containers": {"container": containers}})).into_response()
}

async fn app_state(State(inner): State<Arc<Inner>>, UrlPath(id): UrlPath<String>) -> Response {
    let apps = inner.apps.lock().unwrap();
    match find(&inner, &apps, &id) {
        Some(s) => Json(json!({"state": s.record.state})).into_response(),
        None => not_found(&id),
    }
}

async fn put_state(
    State(inner): State<Arc<Inner>>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if user(&q).is_none() {
        return unauthorized();
    }
    let target = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["state"].as_str().map(str::to_owned));
    if target.as_deref() != Some("KILLED") {
        return bad_request("Only 'KILLED' is allowed as a target state.");
    }
    let apps = inner.apps.lock().unwrap();
    let Some(slot) = find(&inner, &apps, &id) else {
        return not_found(&id);
    };
    if is_terminal(&slot.record.state) {
        return Json(json!({"state": slot.record.state})).into_response();
    }
    slot.kill.notify_one();
    (StatusCode::ACCEPTED, Json(json!({"state": "KILLING"}))).into_response()
}

async fn list(State(inner): State<Arc<Inner>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let types: Vec<String> = q
        .get("applicationTypes")
        .map(|t| t.split(',').map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let apps = inner.apps.lock().unwrap();
    let list: Vec<Value> = apps
        .values()
        .flatten()
        .filter(|s| types.is_empty() || types.contains(&s.record.application_type.to_ascii_lowercase()))
        .map(|s| app_json(&s.record, inner.addr, inner.proxy_addr()))
        .collect();
    if list.is_empty() {
        return Json(json!({"apps": null})).into_response();
    }
    Json(json!({"apps": {"app": list}})).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::hadoop_ipc_server::launcher::LauncherConfig;

    fn wire(rel: &str) -> Vec<u8> {
        let dir = std::env::var_os("HADOOP_WIRE_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire/hadoop-3.3.6"));
        std::fs::read(dir.join(rel)).unwrap()
    }

    /// The JSON body of a captured response (chunked).
    fn body(rel: &str) -> Value {
        let raw = String::from_utf8(wire(rel)).unwrap();
        let json = raw.lines().find(|l| l.starts_with('{')).unwrap();
        serde_json::from_str(json).unwrap()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }

    async fn call(rm: &RestRm, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = common::http::client_builder()
            .unwrap()
            .build()
            .unwrap()
            .request(method, format!("{}/ws/v1/cluster{path}", rm.url()));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn answers_in_the_captured_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let node = NodeId { host: "127.0.0.1".into(), port: 1 };
        let launcher = ContainerLauncher::new(LauncherConfig::new(dir.path().join("nm"), node.clone()));
        let config =
            RestRmConfig::new(dir.path().to_owned(), "file:///", SecretManager::random(), vec![(node, launcher)]);
        let rm = RestRm::start(config).await.unwrap();
        use reqwest::Method as M;
        // 401 without user.name, word for word.
        let (s, v) = call(&rm, M::POST, "/apps/new-application", None).await;
        assert_eq!((s, v), (401, body("rest/05-POST-apps_new-application.response")));
        let (s, v) = call(&rm, M::POST, "/apps/new-application?user.name=root", None).await;
        let captured = body("rest/06-POST-apps_new-application.response");
        assert_eq!(s, 200);
        assert_eq!(keys(&v), keys(&captured));
        assert_eq!(v["maximum-resource-capability"], captured["maximum-resource-capability"]);
        let id = v["application-id"].as_str().unwrap().to_owned();
        // Over the maximum: the capture's 400, and no application.
        let mut sub: Value = serde_json::from_slice(&wire("rest/07-POST-apps.body.json")).unwrap();
        sub["application-id"] = json!(id);
        sub["resource"]["memory"] = json!(99999);
        let (s, v) = call(&rm, M::POST, "/apps?user.name=root", Some(sub.clone())).await;
        assert_eq!((s, v), (400, body("rest/14-POST-apps.response")));
        assert!(rm.apps().is_empty());
        // The capture's own submission: accepted; its hdfs:// resource cannot be
        // localized here, so the AM container fails to launch and the app FAILS.
        sub["resource"]["memory"] = json!(256);
        let (s, _) = call(&rm, M::POST, "/apps?user.name=root", Some(sub)).await;
        assert_eq!(s, 202);
        let report = loop {
            let (s, v) = call(&rm, M::GET, &format!("/apps/{id}"), None).await;
            assert_eq!(s, 200);
            if v["app"]["state"] == "FAILED" {
                break v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let captured = body("rest/12-GET-apps_application_1795750141222_0003.response");
        let ours = keys(&report["app"]);
        let theirs = keys(&captured["app"]);
        let missing: Vec<_> = ours.difference(&theirs).filter(|k| *k != "amRPCAddress").collect();
        assert!(missing.is_empty(), "keys the real RM does not send: {missing:?}");
        assert!(report["app"]["diagnostics"].as_str().unwrap().contains("file:// URLs only"), "{report}");
        let (s, v) = call(&rm, M::GET, "/apps/application_1_0001", None).await;
        assert_eq!((s, v), (404, body("rest/04-GET-apps_application_1_0001.response")));
        let (s, v) = call(&rm, M::GET, "/apps?applicationTypes=yarn-flink", None).await;
        assert_eq!((s, v["apps"]["app"].as_array().unwrap().len()), (200, 1));
        let (s, v) = call(&rm, M::GET, "/apps?applicationTypes=mapreduce", None).await;
        assert_eq!((s, v), (200, json!({"apps": null})));
        // Killing an ended app answers its final state.
        let (s, v) =
            call(&rm, M::PUT, &format!("/apps/{id}/state?user.name=root"), Some(json!({"state":"KILLED"}))).await;
        assert_eq!((s, v), (200, json!({"state": "FAILED"})));
        rm.shutdown();
    }
}
