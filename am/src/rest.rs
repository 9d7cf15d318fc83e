//! The Dispatcher's REST API. Paths and JSON shapes follow Flink's REST API
//! where they overlap (`/overview`, `/jobs`, `/jobs/overview`, `/jobs/<id>`,
//! `PATCH /jobs/<id>?mode=cancel`, `/taskmanagers`, `DELETE /cluster`);
//! `POST /jobs` submits a bundle: `{"bundle": "<path>"}` for a path the cluster can read,
//! or the bundle itself as an `application/gzip` body (a `.tar.gz`), kept in the blob store
//! and served to TaskExecutors at `GET /blobs/<sha256>`.
//!
//! Every request must carry `Authorization: Bearer <application secret>`, or, to
//! read, the web UI's read-only token, or come from a configured web proxy
//! host (YARN's RM proxy, which drops `Authorization`), which may read too.
//! The UI itself (`/`, `/ui/*`) is static and open: it holds no data and asks
//! the API with the token from the URL's fragment, which browsers never send
//! to a server.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use common::ids::JobId;
use common::jobspec::{Bundle, BundleLimits};
use common::protocol::BundleBlob;
use common::resources::MIB;
use common::rpc::{AppSecret, ListenerLimits};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::blob_store::BlobStore;
use crate::dispatcher::{Dispatcher, DispatcherError};
use crate::high_availability::BundleSource;
use crate::resource_manager::driver::LogLocation;

#[derive(Clone)]
struct Ctx {
    dispatcher: Dispatcher,
    secret: AppSecret,
    shutdown: CancellationToken,
    /// Where submitted `.tar.gz` bundles are unpacked.
    work_dir: std::path::PathBuf,
    blobs: BlobStore,
    /// `http://<our address>`, for the blob URLs TaskExecutors fetch.
    base_url: String,
    /// Unpacking limits; an upload may be no larger than `max_bytes` either.
    limits: BundleLimits,
    /// Peers trusted to read without a token: the web proxy's hosts.
    web_proxies: std::sync::Arc<[IpAddr]>,
}

/// What the REST server needs besides its listener and the Dispatcher.
pub struct RestConfig {
    pub secret: AppSecret,
    /// Where submitted `.tar.gz` bundles are unpacked.
    pub work_dir: std::path::PathBuf,
    pub bundle_limits: BundleLimits,
    pub listener_limits: ListenerLimits,
    /// The web proxy's addresses (Hadoop's `AmIpFilter` idea): a request
    /// from one of them may read without a token, as the proxy strips
    /// `Authorization` (and on a secure cluster has authenticated the user).
    pub web_proxies: Vec<IpAddr>,
}

/// The peer of a connection, put in each request's extensions.
#[derive(Clone, Copy)]
struct Peer(Option<IpAddr>);

/// The web UI, built into the binary: no CDN, nothing fetched at run time.
const UI_INDEX: &str = include_str!("ui/index.html");
const UI_JS: &str = include_str!("ui/app.js");
const UI_CSS: &str = include_str!("ui/app.css");

/// The largest JSON body a request may send (`{"bundle": "<path>"}`).
const MAX_JSON: usize = 64 << 10;

/// Serves until `shutdown` is cancelled. `DELETE /cluster` cancels it too.
pub async fn serve(
    listener: TcpListener,
    dispatcher: Dispatcher,
    rest: RestConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let base_url = format!("http://{}", listener.local_addr()?);
    let RestConfig { secret, work_dir, bundle_limits: limits, listener_limits, web_proxies } = rest;
    let blobs = BlobStore::in_work_dir(&work_dir);
    let web_proxies = web_proxies.into();
    let ctx = Ctx { dispatcher, secret, shutdown: shutdown.clone(), work_dir, blobs, base_url, limits, web_proxies };
    let app = Router::new()
        .route("/overview", get(overview))
        .route("/jobs", get(jobs).post(submit))
        .route("/blobs/{key}", get(blob))
        .route("/jobs/overview", get(jobs_overview))
        .route("/jobs/{id}", get(job).patch(cancel_job))
        .route("/taskmanagers", get(taskmanagers))
        .route("/taskmanagers/{id}/log", get(taskmanager_log))
        .route("/cluster", axum::routing::delete(stop_cluster))
        .route("/config", get(config))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), authenticate))
        // The UI's page and assets hold no data: served to anyone.
        .route("/", get(|| async { axum::response::Html(UI_INDEX) }))
        .route("/ui/app.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], UI_JS) }))
        .route("/ui/app.css", get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], UI_CSS) }))
        .with_state(ctx);
    // Each request carries its peer's address, for the web proxy check.
    let handle = move |mut req: axum::http::Request<hyper::body::Incoming>, peer: Option<IpAddr>| {
        req.extensions_mut().insert(Peer(peer));
        let app = app.clone();
        async move {
            match tower::ServiceExt::oneshot(app, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    };
    common::rpc::serve_http1(listener, listener_limits, shutdown, handle).await;
    Ok(())
}

pub fn local_addr(l: &TcpListener) -> Option<SocketAddr> {
    l.local_addr().ok()
}

fn error(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    // Flink's error shape.
    (status, Json(json!({ "errors": [msg.to_string()] }))).into_response()
}

/// Who may do what:
/// - the application secret: everything;
/// - the web UI's read-only token: reading (GET, HEAD), but not the bundle
///   blobs, which may hold credentials-bearing job code;
/// - a request from a web proxy host without the secret: reading, as with
///   the token (the proxy forwards GET and PUT, never `Authorization`);
/// - anything else: refused. Nothing that changes state is reachable without
///   the secret.
async fn authenticate(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if ctx.secret.matches(presented.as_bytes()) {
        return next.run(req).await;
    }
    let from_proxy = req.extensions().get::<Peer>().and_then(|p| p.0).is_some_and(|ip| ctx.web_proxies.contains(&ip));
    if from_proxy || ctx.secret.matches_read_only(presented.as_bytes()) {
        let reading = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD)
            && !req.uri().path().starts_with("/blobs/");
        if reading {
            return next.run(req).await;
        }
        let who = if from_proxy { "through the web proxy, the web UI" } else { "the web UI's token" };
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "{who} only reads: changing the cluster needs the application secret, sent to the AM's own address"
            ),
        );
    }
    error(StatusCode::UNAUTHORIZED, "missing or wrong application secret (Authorization: Bearer <secret>)")
}

fn dispatcher_error(e: DispatcherError) -> Response {
    match e {
        DispatcherError::UnknownJob(_) => error(StatusCode::NOT_FOUND, e),
        DispatcherError::ShuttingDown | DispatcherError::Store(_) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

fn parse_job(id: &str) -> Result<JobId, Box<Response>> {
    id.parse().map_err(|_| Box::new(error(StatusCode::BAD_REQUEST, format!("`{id}` is not a job id (32 hex digits)"))))
}

async fn overview(State(ctx): State<Ctx>) -> Response {
    let jobs = ctx.dispatcher.list();
    let count = |s: &str| jobs.iter().filter(|j| j.state == s).count();
    let running = jobs.iter().filter(|j| !j.is_terminal()).count();
    let rm = ctx.dispatcher.resource_manager().overview().await;
    let (tms, slots_total, slots_free) = rm
        .map(|o| {
            let tms = o.slots.task_managers.len();
            let total: usize = o.slots.task_managers.iter().map(|t| t.num_slots as usize).sum();
            let used: usize = o.slots.task_managers.iter().map(|t| t.slots.len()).sum();
            (tms, total, total.saturating_sub(used))
        })
        .unwrap_or_default();
    Json(json!({
        "taskmanagers": tms,
        "slots-total": slots_total,
        "slots-available": slots_free,
        "jobs-running": running,
        "jobs-finished": count("FINISHED"),
        "jobs-cancelled": count("CANCELED"),
        "jobs-failed": count("FAILED"),
        "flink-version": concat!("yarn-flink ", env!("CARGO_PKG_VERSION")),
    }))
    .into_response()
}

async fn jobs(State(ctx): State<Ctx>) -> Response {
    let jobs: Vec<_> = ctx.dispatcher.list().into_iter().map(|j| json!({ "id": j.jid, "status": j.state })).collect();
    Json(json!({ "jobs": jobs })).into_response()
}

async fn jobs_overview(State(ctx): State<Ctx>) -> Response {
    Json(json!({ "jobs": ctx.dispatcher.list() })).into_response()
}

async fn job(State(ctx): State<Ctx>, Path(id): Path<String>) -> Response {
    let id = match parse_job(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    match ctx.dispatcher.details(id) {
        Ok(d) => Json(d).into_response(),
        Err(e) => dispatcher_error(e),
    }
}

#[derive(Deserialize)]
struct CancelQuery {
    mode: Option<String>,
}

async fn cancel_job(State(ctx): State<Ctx>, Path(id): Path<String>, Query(q): Query<CancelQuery>) -> Response {
    let id = match parse_job(&id) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    if q.mode.as_deref().unwrap_or("cancel") != "cancel" {
        return error(StatusCode::BAD_REQUEST, "only mode=cancel is supported");
    }
    match ctx.dispatcher.cancel(id) {
        Ok(()) => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Err(e) => dispatcher_error(e),
    }
}

#[derive(Deserialize)]
struct SubmitRequest {
    /// A bundle directory, a job.toml, or a .tar.gz the cluster can read.
    bundle: String,
}

async fn submit(State(ctx): State<Ctx>, headers: HeaderMap, body: axum::body::Body) -> Response {
    let content_type = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let work = ctx.work_dir.join(format!("bundle-{}", uuid::Uuid::new_v4().simple()));
    // Where the bundle comes from: a path the cluster can read, or the body itself.
    let (path, blob): (std::path::PathBuf, Option<BundleBlob>) = if content_type.starts_with("application/json") {
        let body = match axum::body::to_bytes(body, MAX_JSON).await {
            Ok(b) => b,
            Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, format!("a JSON body is at most {MAX_JSON} bytes")),
        };
        match serde_json::from_slice::<SubmitRequest>(&body) {
            Ok(req) => (std::path::PathBuf::from(req.bundle), None),
            Err(e) => {
                return error(StatusCode::BAD_REQUEST, format!("the body must be {{\"bundle\": \"<path>\"}}: {e}"))
            }
        }
    } else if content_type.starts_with("application/gzip") || content_type.starts_with("application/x-gzip") {
        match receive_upload(&ctx, &headers, body).await {
            Ok((sha256, path)) => {
                let url = format!("{}/blobs/{sha256}", ctx.base_url);
                (path, Some(BundleBlob { sha256, url, limits: ctx.limits }))
            }
            Err(r) => return *r,
        }
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the bundle as application/gzip (a .tar.gz), or application/json {\"bundle\": \"<path>\"}",
        );
    };
    // What a new leader runs again after a failover (HA).
    let source = match &blob {
        Some(b) => BundleSource::Blob { sha256: b.sha256.clone() },
        None => BundleSource::Path(std::path::absolute(&path).unwrap_or_else(|_| path.clone())),
    };
    let upload = blob.as_ref().map(|_| path.clone());
    // Unpacking the bundle is file work: off the async workers.
    let limits = ctx.limits;
    let uploaded = blob.is_some();
    let prepared = tokio::task::spawn_blocking(move || -> Result<Bundle, (StatusCode, String)> {
        Bundle::load(&path, &work, &limits).map_err(|e| {
            // A refused upload is not kept: the same bytes would be refused again.
            if uploaded {
                let _ = std::fs::remove_file(&path);
            }
            (StatusCode::BAD_REQUEST, e.to_string())
        })
    })
    .await
    .map(|r| r.map(|bundle| (bundle, blob)));
    let (bundle, blob) = match prepared {
        Ok(Ok(b)) => b,
        Ok(Err((status, msg))) => return error(status, msg),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("the bundle could not be prepared: {e}")),
    };
    match ctx.dispatcher.submit_durable(bundle, blob, source, upload).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({ "jobid": id.to_string() }))).into_response(),
        Err(e) => dispatcher_error(e),
    }
}

/// Streams an uploaded `.tar.gz` into the blob store, refusing it (and
/// keeping nothing) once it is larger than the unpacked-size limit: no
/// bundle within the limits compresses to more than that.
async fn receive_upload(
    ctx: &Ctx,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<(String, std::path::PathBuf), Box<Response>> {
    use futures::StreamExt as _;
    use sha2::Digest as _;
    use tokio::io::AsyncWriteExt as _;

    let limit = ctx.limits.max_bytes;
    let too_large = || {
        Box::new(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the bundle is larger than this session's limit of {} (--bundle-max-size); leave data out of the \
                 bundle (read it from HDFS or a shared path), or start the session with a larger --bundle-max-size",
                common::resources::format_size(limit)
            ),
        ))
    };
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let internal = |e: &dyn std::fmt::Display| Box::new(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
    let dir = ctx.blobs.dir().to_owned();
    tokio::fs::create_dir_all(&dir).await.map_err(|e| internal(&e))?;
    // Written aside under a temporary name (removed on drop), renamed once whole.
    let tmp = tempfile::Builder::new().prefix(".upload-").tempfile_in(&dir).map_err(|e| internal(&e))?;
    let mut file = tokio::fs::File::from_std(tmp.reopen().map_err(|e| internal(&e))?);
    let (mut hash, mut size) = (sha2::Sha256::new(), 0u64);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("the upload broke off: {e}"))))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
        hash.update(&chunk);
        file.write_all(&chunk).await.map_err(|e| internal(&e))?;
    }
    file.flush().await.map_err(|e| internal(&e))?;
    drop(file);
    let key = hex::encode(hash.finalize());
    let blobs = ctx.blobs.clone();
    let stored = tokio::task::spawn_blocking(move || blobs.adopt(tmp, &key).map(|p| (key, p)))
        .await
        .map_err(|e| internal(&e))?;
    stored.map_err(|e| internal(&e))
}

async fn blob(State(ctx): State<Ctx>, Path(key): Path<String>) -> Response {
    let Some(path) = ctx.blobs.path(&key) else {
        return error(StatusCode::NOT_FOUND, format!("no blob `{key}`"));
    };
    match tokio::fs::read(&path).await {
        Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "application/gzip")], bytes).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read {}: {e}", path.display())),
    }
}

async fn taskmanagers(State(ctx): State<Ctx>) -> Response {
    let Some(o) = ctx.dispatcher.resource_manager().overview().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the ResourceManager is gone");
    };
    let res = |p: &common::resources::ResourceProfile| {
        json!({
            "cpuCores": p.cpu_millis as f64 / 1000.0,
            "taskHeapMemory": p.task_heap_bytes / MIB,
            "taskOffHeapMemory": p.task_off_heap_bytes / MIB,
            "managedMemory": p.managed_bytes / MIB,
            "networkMemory": p.network_bytes / MIB,
            "extendedResources": p.extended,
        })
    };
    let tms: Vec<_> = o
        .slots
        .task_managers
        .iter()
        .map(|t| {
            let at = o.addresses.get(&t.resource_id).cloned().unwrap_or_default();
            json!({
                "id": t.resource_id.to_string(),
                "path": at.rpc,
                "dataAddress": at.data,
                // Its own Prometheus page (yarn-flink's field).
                "metricsAddress": at.metrics,
                "slotsNumber": t.num_slots,
                "allocatedSlots": t.slots.len(),
                "totalResource": res(&t.total),
                "freeResource": res(&t.free),
                // Why it has its shape (yarn-flink's own field).
                "why": t.why,
                // What the cluster manager calls it, and its log: through this API where the
                // AM can read it (local processes), else where the cluster manager serves it.
                "container": o.workers.get(&t.resource_id).and_then(|w| w.container.clone()),
                "log": match o.workers.get(&t.resource_id).and_then(|w| w.log.clone()) {
                    Some(LogLocation::File(_) | LogLocation::Driver) => Some(format!("/taskmanagers/{}/log", t.resource_id)),
                    Some(LogLocation::Url(u)) => Some(u),
                    None => None,
                },
            })
        })
        .collect();
    Json(json!({ "taskmanagers": tms, "pendingWorkers": o.slots.pending_workers.iter().map(|(s, n)| json!({"total": res(&s.total), "slots": s.num_slots, "count": n})).collect::<Vec<_>>() })).into_response()
}

/// Prometheus' scrape target (OpenMetrics text), with the application secret
/// as a bearer token (`authorization` in the scrape config).
async fn metrics(State(ctx): State<Ctx>) -> Response {
    let Some(o) = ctx.dispatcher.resource_manager().overview().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the ResourceManager is gone");
    };
    let page = crate::metrics::render(&o, &ctx.dispatcher.list());
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], page).into_response()
}

/// The most of a TaskManager log one request returns: its end.
const LOG_TAIL: u64 = 16 << 20;

/// A TaskManager's log (Flink's `/taskmanagers/:id/log`), its last 16 MiB,
/// as text.
async fn taskmanager_log(State(ctx): State<Ctx>, axum::extract::Path(id): axum::extract::Path<String>) -> Response {
    let Some(o) = ctx.dispatcher.resource_manager().overview().await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the ResourceManager is gone");
    };
    let log = o.workers.get(&common::ids::ResourceId::new(&id)).and_then(|w| w.log.clone());
    if let Some(LogLocation::Driver) = log {
        return match ctx.dispatcher.resource_manager().worker_log(common::ids::ResourceId::new(&id), LOG_TAIL).await {
            Ok(bytes) => ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response(),
            Err(e) => error(StatusCode::BAD_GATEWAY, format!("cannot fetch the log of TaskManager {id}: {e}")),
        };
    }
    let Some(LogLocation::File(path)) = log else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no log of TaskManager {id} here: it is not registered, or its cluster manager keeps its logs (on YARN: yarn-flink logs <application id>)"),
        );
    };
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(&path)?;
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)))?;
        let mut out = Vec::new();
        f.take(LOG_TAIL).read_to_end(&mut out)?;
        Ok(out)
    })
    .await;
    match read {
        Ok(Ok(bytes)) => ([(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, format!("cannot read the log of TaskManager {id}: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn config(State(ctx): State<Ctx>) -> Response {
    let rm = ctx.dispatcher.resource_manager().overview().await;
    Json(json!({
        "driver": rm.map(|o| o.driver),
        "version": env!("CARGO_PKG_VERSION"),
        // So a client can refuse a bundle too large before sending it.
        "bundleMaxSize": ctx.limits.max_bytes,
    }))
    .into_response()
}

async fn stop_cluster(State(ctx): State<Ctx>) -> Response {
    ctx.shutdown.cancel();
    (StatusCode::ACCEPTED, Json(json!({}))).into_response()
}
