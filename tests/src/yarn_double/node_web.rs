//! The NodeManager's web services, as far as `yarn-flink logs` reads them:
//! an application's containers on this node, a container's log files, and a
//! log file's text, served from the container launcher's log dirs
//! ([`crate::hadoop_ipc_server::launcher`]: `<root>/logs/<app>/<container>/`, where a real NodeManager keeps them
//! until the application ends).
//!
//! It also serves the web UI's container log pages, where a container's
//! `logsLink` points (`/node/containerlogs/<container>/<user>`, the form the
//! captured app reports give): a list of the log files, each linked to its
//! text, as Hadoop's `ContainerLogsPage` renders them, in bare HTML.
//!
//! No capture holds a NodeManager's web answers. The shapes follow the
//! NodeManager REST documentation (`/ws/v1/node/apps/{appid}`) and Hadoop
//! 3.3's DAOs (`ContainerLogsInfo`, `ContainerLogFileInfo`, written by
//! Jackson, so a list is a JSON array): unverified (docs/yarn.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub struct NodeWeb {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

struct Node {
    logs: PathBuf,
    node_id: String,
}

fn not_found(message: String) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"RemoteException": {"exception": "NotFoundException",
            "message": format!("java.lang.Exception: {message}"),
            "javaClassName": "org.apache.hadoop.yarn.webapp.NotFoundException"}})),
    )
        .into_response()
}

/// Ids are names of dirs: nothing with a path in it reaches the file system.
fn plain(s: &str) -> bool {
    !s.is_empty() && !s.contains('/') && s != "." && s != ".."
}

fn app_of(container: &str) -> Option<String> {
    // container_<ts>_<app>_<attempt>_<n> -> application_<ts>_<app>
    let mut parts = container.strip_prefix("container_")?.split('_');
    // container_e<epoch>_<ts>_... carries an epoch first.
    let mut ts = parts.next()?;
    if ts.starts_with('e') {
        ts = parts.next()?;
    }
    Some(format!("application_{ts}_{}", parts.next()?))
}

impl NodeWeb {
    /// Serves the logs a [`ContainerLauncher`] with this `root` writes, for `node_id`.
    pub async fn start(root: &std::path::Path, node_id: String) -> std::io::Result<NodeWeb> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router(root, node_id);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(NodeWeb { addr, task })
    }

    /// The same over HTTPS only (`yarn.http.policy=HTTPS_ONLY`), with a
    /// certificate for `localhost` and `127.0.0.1` from a CA of its own,
    /// returned as PEM for the client's trust (`YF_TLS_CA_FILE`).
    pub async fn start_https(root: &std::path::Path, node_id: String) -> std::io::Result<(NodeWeb, String)> {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::service::TowerToHyperService;
        let err = |e: rcgen::Error| std::io::Error::other(e.to_string());
        let ca_key = rcgen::KeyPair::generate().map_err(err)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).map_err(err)?;
        let key = rcgen::KeyPair::generate().map_err(err)?;
        let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).map_err(err)?;
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(err)?;
        #[allow(deprecated)] // ring's provider: see common::http
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(std::io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = router(root, node_id);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A plain-HTTP client fails the handshake, as at a real HTTPS-only NodeManager.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                        .await;
                });
            }
        });
        Ok((NodeWeb { addr, task }, ca.pem()))
    }

    /// `host:port`, as the RM reports a node's `nodeHttpAddress`.
    pub fn http_address(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for NodeWeb {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(root: &std::path::Path, node_id: String) -> Router {
    let node = Arc::new(Node { logs: root.join("logs"), node_id });
    Router::new()
        .route("/ws/v1/node/apps/{app}", get(app_info))
        .route("/ws/v1/node/containers/{container}/logs", get(log_files))
        .route("/ws/v1/node/containerlogs/{container}/{file}", get(log_file))
        // The web UI's pages, where an application's `logsLink` points.
        .route("/node/containerlogs/{container}/{user}", get(log_page))
        .route("/node/containerlogs/{container}/{user}/", get(log_page))
        .route("/node/containerlogs/{container}/{user}/{file}", get(log_file_page))
        .route("/node/containerlogs/{container}/{user}/{file}/", get(log_file_page))
        .with_state(node)
}

async fn app_info(State(node): State<Arc<Node>>, UrlPath(app): UrlPath<String>) -> Response {
    let Some(entries) = plain(&app).then(|| std::fs::read_dir(node.logs.join(&app)).ok()).flatten() else {
        return not_found(format!("app with id {app} not found"));
    };
    let mut ids: Vec<String> =
        entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    ids.sort();
    Json(json!({"app": {"id": app, "state": "RUNNING", "user": "", "containerids": ids}})).into_response()
}

fn container_dir(node: &Node, container: &str) -> Option<PathBuf> {
    let dir = node.logs.join(app_of(container)?).join(container);
    (plain(container) && dir.is_dir()).then_some(dir)
}

async fn log_files(State(node): State<Arc<Node>>, UrlPath(container): UrlPath<String>) -> Response {
    let Some(dir) = container_dir(&node, &container) else {
        return not_found(format!("container with id, {container}, not found"));
    };
    let mut files = Vec::new();
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_file() {
            files.push(json!({"fileName": e.file_name().to_string_lossy(), "fileSize": meta.len().to_string(),
                "lastModifiedTime": "Mon Dec 07 00:00:00 +0000 2026"}));
        }
    }
    files.sort_by(|a, b| a["fileName"].as_str().cmp(&b["fileName"].as_str()));
    Json(json!([{"containerLogInfo": files, "logAggregationType": "LOCAL", "containerId": container,
        "nodeId": node.node_id}]))
    .into_response()
}

async fn log_file(State(node): State<Arc<Node>>, UrlPath((container, file)): UrlPath<(String, String)>) -> Response {
    let found = container_dir(&node, &container).filter(|_| plain(&file)).map(|d| d.join(&file));
    match found.map(std::fs::read) {
        Some(Ok(bytes)) => ([("content-type", "text/plain; charset=utf-8")], bytes).into_response(),
        _ => not_found(format!("Cannot find this log on the local disk: {file}")),
    }
}

fn html(title: &str, body: String) -> Response {
    let page = format!("<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n{body}</body></html>\n");
    ([("content-type", "text/html; charset=utf-8")], page).into_response()
}

/// Hadoop answers an unknown container with 200 and this sentence in the page.
const UNKNOWN_CONTAINER: &str = "Unknown container. Container either has not started or has already completed or \
                                 doesn't belong to this node at all.";

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

async fn log_page(State(node): State<Arc<Node>>, UrlPath((container, user)): UrlPath<(String, String)>) -> Response {
    let title = format!("Logs for {container}");
    let Some(dir) = container_dir(&node, &container) else {
        return html(&title, format!("<h1>{UNKNOWN_CONTAINER}</h1>\n"));
    };
    let mut files: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            Some((e.file_name().to_string_lossy().into_owned(), e.metadata().ok().filter(|m| m.is_file())?.len()))
        })
        .collect();
    files.sort();
    let mut body = String::new();
    for (name, len) in files {
        body.push_str(&format!(
            "<p><a href=\"/node/containerlogs/{c}/{u}/{n}/?start=-4096\">{n} : Total file length is {len} bytes.</a></p>\n",
            c = escape(&container),
            u = escape(&user),
            n = escape(&name)
        ));
    }
    html(&title, body)
}

async fn log_file_page(
    State(node): State<Arc<Node>>,
    UrlPath((container, _user, file)): UrlPath<(String, String, String)>,
) -> Response {
    let title = format!("Logs for {container}");
    let found = container_dir(&node, &container).filter(|_| plain(&file)).map(|d| d.join(&file));
    match found.map(std::fs::read) {
        Some(Ok(bytes)) => html(&title, format!("<pre>{}</pre>\n", escape(&String::from_utf8_lossy(&bytes)))),
        Some(Err(_)) => html(&title, format!("<h1>Cannot find this log on the local disk: {}</h1>\n", escape(&file))),
        None => html(&title, format!("<h1>{UNKNOWN_CONTAINER}</h1>\n")),
    }
}
