//! `yarn-flink logs <appId>`: the containers' logs of a running application,
//! read from the NodeManagers' web services, with no Hadoop install.
//!
//! Which containers: the AM of each attempt (`/appattempts`, captured), the
//! attempt's live containers (`/appattempts/<a>/containers`), and every
//! container each of those NodeManagers still keeps for the application
//! (`/ws/v1/node/apps/<app>`: finished TaskManagers whose logs wait for
//! aggregation). Then per container `/ws/v1/node/containers/<c>/logs` lists
//! the files and `/ws/v1/node/containerlogs/<c>/<file>` gives each one.
//! No capture holds a NodeManager's web answers: their shapes follow
//! Hadoop's NodeManager REST documentation and DAOs, and the reader accepts
//! both forms Jersey gives a one-element list (docs/yarn.md: unverified).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::rest::{spnego_header, RestAuth, RmError, RmRestClient};

/// A log file's bytes are capped: a runaway container log is cut, not loaded whole.
pub const MAX_LOG_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogsError {
    #[error(transparent)]
    Rm(#[from] RmError),
    #[error("cannot reach the NodeManager at {node}: {cause}; check yarn.nodemanager.webapp.address and that it runs")]
    Unreachable { node: String, cause: String },
    #[error("the NodeManager at {node} answered {status} to {what}{detail}")]
    Status { node: String, status: u16, what: String, detail: String },
    #[error("the NodeManager at {node} answered {what} with something else than Hadoop 3 sends: {detail}")]
    BadAnswer { node: String, what: String, detail: String },
}

/// A log file a NodeManager lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogFile {
    pub name: String,
    pub size: Option<u64>,
}

/// Reads container logs from NodeManagers' web services.
pub struct NodeLogs {
    http: reqwest::Client,
    auth: RestAuth,
    /// `yarn.http.policy=HTTPS_ONLY`: a bare `host:port` is an HTTPS address.
    https: bool,
}

impl NodeLogs {
    pub fn new(auth: RestAuth, https: bool) -> Result<Self, LogsError> {
        let builder = common::http::client_builder()
            .map_err(|e| LogsError::Unreachable { node: "(every NodeManager)".into(), cause: e.to_string() })?;
        Self::with(builder, auth, https)
    }

    /// Over a client builder of the caller's (e.g. trusting a given CA).
    pub fn with(builder: reqwest::ClientBuilder, auth: RestAuth, https: bool) -> Result<Self, LogsError> {
        let setup = |cause: String| LogsError::Unreachable { node: "(every NodeManager)".into(), cause };
        let http = builder
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|e| setup(e.to_string()))?;
        Ok(Self { http, auth, https })
    }

    async fn get(&self, node: &str, path: &str, what: &str) -> Result<Vec<u8>, LogsError> {
        let base = if node.contains("://") {
            node.to_owned()
        } else {
            format!("{}://{node}", if self.https { "https" } else { "http" })
        };
        let mut url = url::Url::parse(&format!("{base}{path}"))
            .map_err(|e| LogsError::Unreachable { node: node.into(), cause: format!("not a URL: {e}") })?;
        let mut authorization = None;
        match &self.auth {
            RestAuth::Simple { user } => {
                url.query_pairs_mut().append_pair("user.name", user);
            }
            RestAuth::Kerberos { login } => authorization = Some(spnego_header(login, &base)?),
        }
        let mut req = self.http.get(url).header("Accept", "application/json");
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let unreachable = |e: reqwest::Error| LogsError::Unreachable { node: node.into(), cause: e.to_string() };
        let mut resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
            let room = MAX_LOG_BYTES.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room < chunk.len() {
                break;
            }
        }
        if !status.is_success() {
            let detail = match super::rest::RestRemoteException::parse(&body) {
                Some(r) => format!(": {} ({})", r.short_message(), r.exception),
                None => {
                    let text = String::from_utf8_lossy(&body[..body.len().min(400)]).trim().to_owned();
                    if text.is_empty() {
                        text
                    } else {
                        format!(": {}", hadoop::error::without_java_trace(&text))
                    }
                }
            };
            return Err(LogsError::Status { node: node.into(), status: status.as_u16(), what: what.into(), detail });
        }
        Ok(body)
    }

    /// The containers this NodeManager keeps for `app` (running or finished).
    pub async fn app_containers(&self, node: &str, app: &str) -> Result<Vec<String>, LogsError> {
        let what = format!("GET /ws/v1/node/apps/{app}");
        let body = self.get(node, &format!("/ws/v1/node/apps/{app}"), &what).await?;
        answers::node_app(&body).map_err(|detail| LogsError::BadAnswer { node: node.into(), what, detail })
    }

    pub async fn log_files(&self, node: &str, container: &str) -> Result<Vec<LogFile>, LogsError> {
        let what = format!("GET /ws/v1/node/containers/{container}/logs");
        let body = self.get(node, &format!("/ws/v1/node/containers/{container}/logs"), &what).await?;
        answers::log_files(&body).map_err(|detail| LogsError::BadAnswer { node: node.into(), what, detail })
    }

    pub async fn log(&self, node: &str, container: &str, file: &str) -> Result<Vec<u8>, LogsError> {
        let path = format!("/ws/v1/node/containerlogs/{container}/{file}");
        self.get(node, &path, &format!("GET {path}")).await
    }
}

/// The containers of `app` that may have logs, each with its NodeManager's
/// web address, AM containers first.
pub async fn containers(rm: &RmRestClient, nodes: &NodeLogs, app: &str) -> Result<BTreeMap<String, String>, LogsError> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    let attempts = rm.app_attempts(app).await?;
    for a in &attempts {
        if !a.container_id.is_empty() && !a.node_http_address.is_empty() {
            found.insert(a.container_id.clone(), a.node_http_address.clone());
        }
    }
    if let Some(last) = attempts.iter().max_by_key(|a| a.id) {
        match rm.attempt_containers(app, &last.app_attempt_id).await {
            Ok(cs) => {
                for c in cs.into_iter().filter(|c| !c.node_http_address.is_empty()) {
                    found.entry(c.container_id).or_insert(c.node_http_address);
                }
            }
            // Older RMs lack this call; the NodeManagers below still list what they hold.
            Err(e) => tracing::debug!(error = %e, "the RM did not list the attempt's containers"),
        }
    }
    let mut nodes_seen: Vec<String> = found.values().cloned().collect();
    nodes_seen.sort();
    nodes_seen.dedup();
    for node in nodes_seen {
        match nodes.app_containers(&node, app).await {
            Ok(ids) => {
                for id in ids {
                    found.entry(id).or_insert_with(|| node.clone());
                }
            }
            Err(e) => tracing::debug!(%node, error = %e, "the NodeManager did not list the application's containers"),
        }
    }
    Ok(found)
}

/// The most of one node's aggregated file read at once.
const MAX_AGGREGATED_BYTES: u64 = 512 << 20;

/// An ended application's logs, as its NodeManagers aggregated them (one
/// TFile per node, `hadoop::yarn::aggregated_logs`), read through the same
/// HDFS client and login as `submit`: (node file name, its containers' logs).
/// `Ok(None)` when no aggregated file is there (yet).
pub async fn aggregated(
    conf: &hadoop::conf::HadoopConf,
    owner: &str,
    app: &str,
    kerberos: Option<(&str, Option<&std::path::Path>)>,
) -> anyhow::Result<Option<(String, Vec<(String, hadoop::yarn::aggregated_logs::AggregatedLogs)>)>> {
    use super::staging::Staging;
    let default_fs = conf.default_fs()?;
    for dir in hadoop::yarn::aggregated_logs::app_log_dirs(conf, owner, app) {
        let fs = super::staging::open_dir(&default_fs, &dir, owner, conf.conf_dir.as_deref(), kerberos)?;
        let mut files: Vec<_> = fs.list("").await?.into_iter().filter(|e| !e.is_dir).collect();
        if files.is_empty() {
            continue;
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        let mut nodes = Vec::new();
        for f in files {
            let Some(bytes) = fs.read(&f.name, MAX_AGGREGATED_BYTES).await? else { continue };
            let logs = tokio::task::spawn_blocking(move || hadoop::yarn::aggregated_logs::parse(&bytes)).await?;
            nodes.push((f.name.clone(), logs.map_err(|e| anyhow::anyhow!("{dir}/{}: {e}", f.name))?));
        }
        return Ok(Some((dir, nodes)));
    }
    Ok(None)
}

/// How the client reads each NodeManager answer (the fuzz targets call these too).
pub mod answers {
    use super::*;

    /// Jersey writes a one-element list either as a list or as the element.
    fn list(v: &Value) -> Vec<&Value> {
        match v {
            Value::Array(a) => a.iter().collect(),
            Value::Null => vec![],
            other => vec![other],
        }
    }

    /// `{"app":{"id":..,"containerids":[..]}}` (NodeManager REST docs).
    pub fn node_app(body: &[u8]) -> Result<Vec<String>, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let app = v.get("app").ok_or("no \"app\" object")?;
        Ok(list(app.get("containerids").unwrap_or(&Value::Null))
            .into_iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect())
    }

    /// `containerLogsInfo` entries (a list, or wrapped in an object of that
    /// name), each with `containerLogInfo` file entries; only the node's own
    /// (`LOCAL`) files, not aggregated ones it may also name.
    pub fn log_files(body: &[u8]) -> Result<Vec<LogFile>, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
        let infos = match v.get("containerLogsInfo") {
            Some(inner) => list(inner),
            None if v.is_array() => list(&v),
            None => return Err("no \"containerLogsInfo\"".into()),
        };
        let mut out = Vec::new();
        for info in infos {
            if info.get("logAggregationType").and_then(Value::as_str).is_some_and(|t| t != "LOCAL") {
                continue;
            }
            for f in list(info.get("containerLogInfo").unwrap_or(&Value::Null)) {
                let Some(name) = f.get("fileName").and_then(Value::as_str) else { continue };
                // A name with a path in it is not a log file name: never put it in a URL.
                if name.is_empty() || name.contains('/') || name == ".." {
                    continue;
                }
                let size = match f.get("fileSize") {
                    Some(Value::String(s)) => s.parse().ok(),
                    Some(Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                out.push(LogFile { name: name.to_owned(), size });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::answers::*;
    use super::{LogFile, NodeLogs, RestAuth};

    /// `yarn.http.policy=HTTPS_ONLY`: the NodeManager answers TLS only, with a
    /// certificate of the cluster's own CA. Trusting that CA (what
    /// `YF_TLS_CA_FILE` names) reads the logs; without it, or over plain HTTP,
    /// the read fails naming the node.
    #[tokio::test]
    async fn an_https_only_node_manager_is_read_over_tls_when_its_ca_is_trusted() {
        let tmp = tempfile::tempdir().unwrap();
        let container = "container_1795750141222_0001_01_000002";
        let dir = tmp.path().join("logs/application_1795750141222_0001").join(container);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("taskmanager.err"), b"over TLS\n").unwrap();
        let (web, ca) =
            integration_tests::yarn_double::node_web::NodeWeb::start_https(tmp.path(), "127.0.0.1:1".into())
                .await
                .unwrap();
        let node = web.http_address();
        let ca_file = tmp.path().join("cluster-ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let auth = RestAuth::Simple { user: "alice".into() };

        let trusted = common::http::client_builder_with(Some(&ca_file)).unwrap();
        let nodes = NodeLogs::with(trusted, auth.clone(), true).unwrap();
        let files = nodes.log_files(&node, container).await.unwrap();
        assert_eq!(files, [LogFile { name: "taskmanager.err".into(), size: Some(9) }]);
        assert_eq!(nodes.log(&node, container, "taskmanager.err").await.unwrap(), b"over TLS\n");

        let untrusted = NodeLogs::with(common::http::client_builder_with(None).unwrap(), auth.clone(), true).unwrap();
        let err = untrusted.log_files(&node, container).await.unwrap_err().to_string();
        assert!(err.contains(&node), "{err}");
        let plain = NodeLogs::with(common::http::client_builder_with(Some(&ca_file)).unwrap(), auth, false).unwrap();
        assert!(plain.log_files(&node, container).await.is_err(), "plain HTTP to an HTTPS-only NodeManager");
    }

    #[test]
    fn a_node_app_lists_its_containers_in_either_list_form() {
        let many = br#"{"app":{"id":"application_1_0001","state":"RUNNING","user":"alice","containerids":["container_1_0001_01_000001","container_1_0001_01_000002"]}}"#;
        assert_eq!(node_app(many).unwrap().len(), 2);
        let one = br#"{"app":{"id":"application_1_0001","containerids":"container_1_0001_01_000001"}}"#;
        assert_eq!(node_app(one).unwrap(), ["container_1_0001_01_000001"]);
        let none = br#"{"app":{"id":"application_1_0001","state":"INITING"}}"#;
        assert!(node_app(none).unwrap().is_empty());
        assert!(node_app(b"<html>").is_err());
    }

    #[test]
    fn log_files_are_the_local_ones_and_names_with_paths_are_dropped() {
        let body = br#"{"containerLogsInfo":[
            {"containerLogInfo":[{"fileName":"stderr","fileSize":"12","lastModifiedTime":"x"},{"fileName":"../etc/passwd","fileSize":"1"}],
             "logAggregationType":"LOCAL","containerId":"c","nodeId":"n"},
            {"containerLogInfo":{"fileName":"old","fileSize":"3"},"logAggregationType":"AGGREGATED"}]}"#;
        assert_eq!(log_files(body).unwrap(), [LogFile { name: "stderr".into(), size: Some(12) }]);
        let bare = br#"[{"containerLogInfo":{"fileName":"taskmanager.log","fileSize":7}}]"#;
        assert_eq!(log_files(bare).unwrap(), [LogFile { name: "taskmanager.log".into(), size: Some(7) }]);
    }
}
