//! The ResourceManager REST API (`/ws/v1/cluster/...`), shaped exactly as the
//! Hadoop 3.3.6 captures in `shared/wire/hadoop-3.3.6/rest/`.
//!
//! [`RmRestClient`] tries the RM web apps in configuration order (RM HA ids)
//! and sticks to the first that answers as active: a standby answers with a
//! redirect or 503. Simple-auth clusters need `user.name` on every call (the
//! 401 capture), Kerberized ones SPNEGO or an RM delegation token.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `application-type` of every yarn-flink application (`list` filters on it).
pub const APPLICATION_TYPE: &str = "yarn-flink";

/// `{"memory":MB,"vCores":N}` (the capture also carries `resourceInformations`; we ignore it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestResource {
    pub memory: u64,
    #[serde(rename = "vCores")]
    pub vcores: u32,
}

impl std::fmt::Display for RestResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} MB / {} vcores", self.memory, self.vcores)
    }
}

/// The answer of `POST /apps/new-application`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NewApplication {
    #[serde(rename = "application-id")]
    pub application_id: String,
    #[serde(rename = "maximum-resource-capability")]
    pub maximum_resource_capability: RestResource,
}

/// `{"entry":[{"key":..,"value":..}]}`: how the REST API spells a map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entries<T> {
    pub entry: Vec<Entry<T>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry<T> {
    pub key: String,
    pub value: T,
}

impl<T> FromIterator<(String, T)> for Entries<T> {
    fn from_iter<I: IntoIterator<Item = (String, T)>>(iter: I) -> Self {
        Entries { entry: iter.into_iter().map(|(key, value)| Entry { key, value }).collect() }
    }
}

/// One local resource as the submission names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestLocalResource {
    /// A URL of the default file system (`hdfs://nn:8020/...`, `file:///...`).
    pub resource: String,
    /// `FILE`, `ARCHIVE` (unpacked by the NodeManager) or `PATTERN`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `PUBLIC`, `PRIVATE` or `APPLICATION`.
    pub visibility: String,
    /// Bytes; the NodeManager refuses a file whose size changed.
    pub size: u64,
    /// Modification time (ms); the NodeManager refuses a file that changed since.
    pub timestamp: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Commands {
    pub command: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmContainerSpec {
    #[serde(rename = "local-resources")]
    pub local_resources: Entries<RestLocalResource>,
    pub environment: Entries<String>,
    pub commands: Commands,
    /// [`hadoop::credentials::Credentials::to_rest_json`].
    pub credentials: serde_json::Value,
}

/// The body of `POST /apps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubmissionContext {
    #[serde(rename = "application-id")]
    pub application_id: String,
    #[serde(rename = "application-name")]
    pub application_name: String,
    #[serde(rename = "application-type")]
    pub application_type: String,
    #[serde(rename = "application-tags")]
    pub application_tags: Vec<String>,
    pub queue: String,
    pub priority: i32,
    #[serde(rename = "max-app-attempts")]
    pub max_app_attempts: u32,
    #[serde(rename = "keep-containers-across-application-attempts")]
    pub keep_containers_across_application_attempts: bool,
    #[serde(rename = "unmanaged-AM")]
    pub unmanaged_am: bool,
    pub resource: RestResource,
    #[serde(rename = "am-container-spec")]
    pub am_container_spec: AmContainerSpec,
}

/// The parts of `GET /apps/{id}` (and of each `/apps` element) we use.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppReport {
    pub id: String,
    pub user: String,
    pub name: String,
    pub queue: String,
    /// NEW, NEW_SAVING, SUBMITTED, ACCEPTED, RUNNING, FINISHED, FAILED, KILLED.
    pub state: String,
    /// UNDEFINED, SUCCEEDED, FAILED, KILLED.
    pub final_status: String,
    pub progress: f64,
    pub tracking_url: Option<String>,
    pub diagnostics: String,
    pub application_type: String,
    pub started_time: i64,
    pub finished_time: i64,
    pub am_container_logs: Option<String>,
    /// `host:rpc_port` the AM registered (absent until it has).
    #[serde(rename = "amRPCAddress")]
    pub am_rpc_address: Option<String>,
}

/// YARN's final application states (`YarnApplicationState`).
pub fn is_terminal_state(state: &str) -> bool {
    matches!(state, "FINISHED" | "FAILED" | "KILLED")
}

impl AppReport {
    pub fn is_terminal(&self) -> bool {
        is_terminal_state(&self.state)
    }

    /// The job's result as the process exit code promises it: success only
    /// when the application finished and said SUCCEEDED.
    pub fn succeeded(&self) -> bool {
        self.state == "FINISHED" && self.final_status == "SUCCEEDED"
    }
}

/// One element of `GET /apps/{id}/appattempts`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppAttempt {
    pub id: i64,
    /// `appattempt_<cluster>_<app>_<n>`.
    pub app_attempt_id: String,
    /// The AM's container.
    pub container_id: String,
    /// `host:port` of the NodeManager's web server.
    pub node_http_address: String,
}

/// One element of `GET /apps/{id}/appattempts/{attempt}/containers`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerReport {
    pub container_id: String,
    pub node_http_address: String,
    pub container_state: String,
}

#[derive(Deserialize)]
struct AppWrapper {
    app: AppReport,
}

#[derive(Deserialize)]
struct AppsWrapper {
    /// `null` when there is no application.
    apps: Option<AppList>,
}

#[derive(Deserialize)]
struct AppList {
    #[serde(default)]
    app: Vec<AppReport>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    pub state: String,
}

/// `{"RemoteException":{"exception","message","javaClassName"}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestRemoteException {
    pub exception: String,
    pub message: String,
    pub java_class_name: String,
}

#[derive(Deserialize)]
struct RemoteWrapper {
    #[serde(rename = "RemoteException")]
    remote: RestRemoteException,
}

impl RestRemoteException {
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice::<RemoteWrapper>(body).ok().map(|w| w.remote)
    }

    /// The message without Hadoop's `java.lang.Exception: ` prefix and
    /// without a Java stack trace.
    pub fn short_message(&self) -> String {
        hadoop::error::without_java_trace(self.message.strip_prefix("java.lang.Exception: ").unwrap_or(&self.message))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RmError {
    #[error(
        "cannot reach the YARN ResourceManager at {tried}: {cause}; check that it runs and that \
         yarn.resourcemanager.webapp.address (or its HA variants) in yarn-site.xml of HADOOP_CONF_DIR names it"
    )]
    Unreachable { tried: String, cause: String },
    #[error(
        "no ResourceManager at {tried} answered as active (each redirected or answered 503: standby); \
         wait for the failover to finish, or check yarn.resourcemanager.ha.rm-ids"
    )]
    NoActive { tried: String },
    #[error(
        "the ResourceManager refused an unauthenticated request ({detail}); on a simple-auth cluster the \
         client sends user.name (set HADOOP_USER_NAME); on a Kerberized one run kinit or pass --keytab/--principal"
    )]
    Unauthorized { detail: String },
    #[error(
        "the ResourceManager at {base} wants Kerberos (it answered 401 with WWW-Authenticate: Negotiate), but the \
         client configuration says hadoop.security.authentication=simple; point HADOOP_CONF_DIR at the cluster's own \
         configuration (or set hadoop.security.authentication=kerberos in core-site.xml) and run kinit"
    )]
    NeedsKerberos { base: String },
    #[error(
        "the application master asks {asked} but the cluster's largest container is {max} \
         (yarn.scheduler.maximum-allocation-mb / -vcores); lower --am-memory / --am-vcores or ask the cluster's \
         administrators to raise the maximum"
    )]
    OverMaximum { asked: RestResource, max: RestResource },
    #[error("the ResourceManager refused the request: {message} ({exception}); {fix}")]
    Refused { exception: String, message: String, fix: &'static str },
    #[error("application {0} is not known to the ResourceManager; check the id with `yarn-flink list`")]
    NotFound(String),
    #[error("the ResourceManager answered {status} to {what}: {detail}")]
    Status { status: u16, what: String, detail: String },
    #[error("the ResourceManager's answer to {what} is not what Hadoop 3 sends: {detail}")]
    BadResponse { what: String, detail: String },
    #[error(
        "cannot authenticate to the ResourceManager web service as {service} (SPNEGO): {detail}; run kinit \
         (or pass --keytab and --principal) and check that {service} exists in the KDC"
    )]
    Spnego { service: String, detail: String },
}

/// How REST calls authenticate.
#[derive(Clone)]
pub enum RestAuth {
    /// `?user.name=<user>` (hadoop.security.authentication=simple).
    Simple { user: String },
    /// Kerberized: SPNEGO (`Authorization: Negotiate <token>` for `HTTP/<rm host>`).
    Kerberos { login: hadoop::kerberos::KerberosLogin },
}

/// The `Authorization` header of a SPNEGO request to `base` (`http://host:port`):
/// a Kerberos AP-REQ for `HTTP/<host>`, base64. Hadoop's web authentication
/// filter accepts a raw krb5 token as well as a SPNEGO-wrapped one.
pub fn spnego_header(login: &hadoop::kerberos::KerberosLogin, base: &str) -> Result<String, RmError> {
    use base64::Engine as _;
    use hadoop::gss::{ClientCtx, Name, NameType};
    let parsed = url::Url::parse(base).ok();
    let host = parsed.as_ref().and_then(|u| u.host_str()).unwrap_or(base);
    let service = format!("HTTP/{}", host.to_ascii_lowercase());
    let fail = |detail: String| RmError::Spnego { service: service.clone(), detail };
    let name = Name::new(&service, NameType::KerberosPrincipal).map_err(|e| fail(e.to_string()))?;
    let mut ctx = ClientCtx::new(Some(login.credential()), name, 0);
    match ctx.step(None) {
        Ok(Some(token)) => Ok(format!("Negotiate {}", base64::engine::general_purpose::STANDARD.encode(&token))),
        Ok(None) => Err(fail("GSSAPI produced no token".into())),
        Err(e) => Err(fail(e.to_string())),
    }
}

pub struct RmRestClient {
    /// Base URLs (`http://host:8088`), HA order.
    bases: Vec<String>,
    /// The one that answered as active last.
    active: AtomicUsize,
    auth: RestAuth,
    http: reqwest::Client,
}

enum Attempt {
    /// A standby (`standby: true`) or an unreachable RM: try the next.
    Next {
        why: String,
        standby: bool,
    },
    Done(reqwest::StatusCode, Vec<u8>),
}

impl RmRestClient {
    pub fn new(bases: Vec<String>, auth: RestAuth) -> Result<Self, RmError> {
        if bases.is_empty() {
            return Err(RmError::Unreachable { tried: "(none)".into(), cause: "no RM web address configured".into() });
        }
        let unreachable = |cause: String| RmError::Unreachable { tried: bases.join(", "), cause };
        let http = common::http::client_builder()
            .map_err(|e| unreachable(e.to_string()))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            // A standby RM redirects to the active one: we go through the list ourselves.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Self {
            bases: bases.into_iter().map(|b| b.trim_end_matches('/').to_owned()).collect(),
            active: 0.into(),
            auth,
            http,
        })
    }

    /// From the Hadoop configuration: the RM web apps (HA ids in order); `auth`
    /// per the security mode (see [`RestAuth`]).
    pub fn from_conf(conf: &hadoop::conf::HadoopConf, auth: RestAuth) -> anyhow::Result<Self> {
        let bases = conf.rm_webapp_urls()?.into_iter().map(|e| e.address).collect();
        Ok(Self::new(bases, auth)?)
    }

    async fn attempt(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<Attempt, RmError> {
        let mut pairs: Vec<(&str, &str)> = query.to_vec();
        let mut authorization = None;
        match &self.auth {
            RestAuth::Simple { user } => pairs.push(("user.name", user.as_str())),
            RestAuth::Kerberos { login } => authorization = Some(spnego_header(login, base)?),
        }
        let qs: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        let url = if qs.is_empty() {
            format!("{base}/ws/v1/cluster{path}")
        } else {
            format!("{base}/ws/v1/cluster{path}?{}", qs.join("&"))
        };
        let mut req = self.http.request(method, url).header("Accept", "application/json");
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Next { why: format!("{base}: {}", error_chain(&e)), standby: false }),
        };
        let status = resp.status();
        let negotiate = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.trim().eq_ignore_ascii_case("negotiate")));
        if status == reqwest::StatusCode::UNAUTHORIZED && negotiate && matches!(self.auth, RestAuth::Simple { .. }) {
            return Err(RmError::NeedsKerberos { base: base.to_owned() });
        }
        if status.is_redirection() || status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Ok(Attempt::Next { why: format!("{base}: standby ({status})"), standby: true });
        }
        let bytes = resp.bytes().await.map_err(|e| RmError::BadResponse {
            what: path.to_owned(),
            detail: format!("cannot read the body: {}", error_chain(&e)),
        })?;
        Ok(Attempt::Done(status, bytes.to_vec()))
    }

    /// One call, through the RMs in HA order starting at the last active one.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), RmError> {
        let start = self.active.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        let mut all_standby = true;
        for i in 0..self.bases.len() {
            let idx = (start + i) % self.bases.len();
            match self.attempt(&self.bases[idx], method.clone(), path, query, body).await? {
                Attempt::Done(status, bytes) => {
                    self.active.store(idx, Ordering::Relaxed);
                    return Ok((status, bytes));
                }
                Attempt::Next { why, standby } => {
                    tracing::debug!(%why, "trying the next ResourceManager");
                    all_standby &= standby;
                    failures.push(why);
                }
            }
        }
        let tried = self.bases.join(", ");
        if all_standby {
            Err(RmError::NoActive { tried })
        } else {
            Err(RmError::Unreachable { tried, cause: failures.join("; ") })
        }
    }

    /// Maps an error answer to a typed error.
    fn error(status: reqwest::StatusCode, body: &[u8], what: &str) -> RmError {
        let remote = RestRemoteException::parse(body);
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let detail = remote.map(|r| r.message).unwrap_or_else(|| "401 Unauthorized".into());
            return RmError::Unauthorized { detail };
        }
        match remote {
            Some(r) if status == reqwest::StatusCode::NOT_FOUND && r.exception == "NotFoundException" => {
                // "app with id: X not found"
                let message = r.short_message();
                let id = message.split_whitespace().find(|w| w.starts_with("application_"));
                RmError::NotFound(id.unwrap_or(what).to_owned())
            }
            Some(r) => {
                let fix = if r.message.contains("than configured max") {
                    "ask for less than yarn.scheduler.maximum-allocation-mb / -vcores (lower --am-memory / --am-vcores)"
                } else if r.exception.contains("Authorization") || r.exception.contains("AccessControl") {
                    "check the queue's ACLs (yarn.scheduler.capacity.<queue>.acl_submit_applications) and --queue"
                } else {
                    "see the ResourceManager's log for details"
                };
                RmError::Refused { exception: r.exception.clone(), message: r.short_message().to_owned(), fix }
            }
            None => RmError::Status {
                status: status.as_u16(),
                what: what.to_owned(),
                detail: String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned(),
            },
        }
    }

    fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, RmError> {
        serde_json::from_slice(body).map_err(|e| RmError::BadResponse { what: what.to_owned(), detail: e.to_string() })
    }

    /// `POST /apps/new-application`.
    pub async fn new_application(&self) -> Result<NewApplication, RmError> {
        let what = "new-application";
        let (status, body) = self.call(reqwest::Method::POST, "/apps/new-application", &[], None).await?;
        if !status.is_success() {
            return Err(Self::error(status, &body, what));
        }
        answers::new_application(&body)
    }

    /// `POST /apps` (202 Accepted, empty body). A memory ask over the maximum
    /// comes back as [`RmError::OverMaximum`] when `max` is known.
    pub async fn submit(&self, ctx: &SubmissionContext, max: Option<RestResource>) -> Result<(), RmError> {
        let what = "the application submission";
        let body =
            serde_json::to_value(ctx).map_err(|e| RmError::BadResponse { what: what.into(), detail: e.to_string() })?;
        let (status, resp) = self.call(reqwest::Method::POST, "/apps", &[], Some(&body)).await?;
        if status.is_success() {
            return Ok(());
        }
        match (Self::error(status, &resp, what), max) {
            (RmError::Refused { message, .. }, Some(max)) if message.contains("than configured max") => {
                Err(RmError::OverMaximum { asked: ctx.resource, max })
            }
            (e, _) => Err(e),
        }
    }

    /// `GET /apps/{id}`.
    pub async fn app(&self, id: &str) -> Result<AppReport, RmError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/apps/{id}"), &[], None).await?;
        if !status.is_success() {
            return Err(Self::error(status, &body, id));
        }
        answers::app(&body, id)
    }

    /// `GET /apps/{id}/state` (the light poll; `submit` follows with the full report).
    #[allow(dead_code)]
    pub async fn app_state(&self, id: &str) -> Result<String, RmError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/apps/{id}/state"), &[], None).await?;
        if !status.is_success() {
            return Err(Self::error(status, &body, id));
        }
        answers::state(&body, &format!("GET /apps/{id}/state"))
    }

    /// `PUT /apps/{id}/state {"state":"KILLED"}`; returns the state the RM
    /// answered (`KILLING`, or the final state of an app that already ended).
    pub async fn kill(&self, id: &str) -> Result<String, RmError> {
        let body = serde_json::json!({"state": "KILLED"});
        let (status, resp) = self.call(reqwest::Method::PUT, &format!("/apps/{id}/state"), &[], Some(&body)).await?;
        if !status.is_success() {
            return Err(Self::error(status, &resp, id));
        }
        answers::state(&resp, &format!("PUT /apps/{id}/state"))
    }

    /// `POST /delegation-token {"renewer":..}` (Kerberized clusters only): an
    /// RM_DELEGATION_TOKEN for the AM, renewable by `renewer`.
    pub async fn delegation_token(&self, renewer: &str) -> Result<hadoop::credentials::Token, RmError> {
        let what = "the RM delegation token request";
        let body = serde_json::json!({ "renewer": renewer });
        let (status, resp) = self.call(reqwest::Method::POST, "/delegation-token", &[], Some(&body)).await?;
        if !status.is_success() {
            return Err(Self::error(status, &resp, what));
        }
        answers::delegation_token(&resp)
    }

    /// `GET /apps/{id}/appattempts` (shape: `rest/10-GET-..._appattempts.response`).
    pub async fn app_attempts(&self, id: &str) -> Result<Vec<AppAttempt>, RmError> {
        let (status, body) = self.call(reqwest::Method::GET, &format!("/apps/{id}/appattempts"), &[], None).await?;
        if !status.is_success() {
            return Err(Self::error(status, &body, id));
        }
        answers::app_attempts(&body)
    }

    /// `GET /apps/{id}/appattempts/{attempt}/containers`: the attempt's live
    /// containers (no capture holds this answer: its shape is from Hadoop's
    /// `ContainersInfo`/`ContainerInfo` DAOs, unverified).
    pub async fn attempt_containers(&self, id: &str, attempt: &str) -> Result<Vec<ContainerReport>, RmError> {
        let path = format!("/apps/{id}/appattempts/{attempt}/containers");
        let (status, body) = self.call(reqwest::Method::GET, &path, &[], None).await?;
        if !status.is_success() {
            return Err(Self::error(status, &body, id));
        }
        answers::containers(&body)
    }

    /// How this client authenticates, for the NodeManagers' web services.
    pub fn auth(&self) -> &RestAuth {
        &self.auth
    }

    /// `GET /apps?applicationTypes=yarn-flink`.
    pub async fn list(&self) -> Result<Vec<AppReport>, RmError> {
        let (status, body) =
            self.call(reqwest::Method::GET, "/apps", &[("applicationTypes", APPLICATION_TYPE)], None).await?;
        if !status.is_success() {
            return Err(Self::error(status, &body, "the application list"));
        }
        answers::apps(&body)
    }
}

/// How the client reads each answer of the RM, one function per shape (the
/// fuzz targets in `fuzz/` call these too).
pub mod answers {
    use super::*;

    /// An answer with an error status.
    pub fn error(status: u16, body: &[u8], what: &str) -> RmError {
        let status = reqwest::StatusCode::from_u16(status).unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
        RmRestClient::error(status, body, what)
    }

    pub fn new_application(body: &[u8]) -> Result<NewApplication, RmError> {
        RmRestClient::parse(body, "new-application")
    }

    pub fn app(body: &[u8], id: &str) -> Result<AppReport, RmError> {
        Ok(RmRestClient::parse::<AppWrapper>(body, &format!("GET /apps/{id}"))?.app)
    }

    pub fn apps(body: &[u8]) -> Result<Vec<AppReport>, RmError> {
        Ok(RmRestClient::parse::<AppsWrapper>(body, "GET /apps")?.apps.map(|a| a.app).unwrap_or_default())
    }

    pub fn state(body: &[u8], what: &str) -> Result<String, RmError> {
        Ok(RmRestClient::parse::<AppState>(body, what)?.state)
    }

    pub fn app_attempts(body: &[u8]) -> Result<Vec<AppAttempt>, RmError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wrapper {
            app_attempts: Option<List>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct List {
            #[serde(default)]
            app_attempt: Vec<AppAttempt>,
        }
        let w: Wrapper = RmRestClient::parse(body, "GET /apps/{id}/appattempts")?;
        Ok(w.app_attempts.map(|l| l.app_attempt).unwrap_or_default())
    }

    pub fn containers(body: &[u8]) -> Result<Vec<ContainerReport>, RmError> {
        #[derive(Deserialize)]
        struct Wrapper {
            containers: Option<List>,
        }
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            container: Vec<ContainerReport>,
        }
        let w: Wrapper = RmRestClient::parse(body, "GET /apps/{id}/appattempts/{attempt}/containers")?;
        Ok(w.containers.map(|l| l.container).unwrap_or_default())
    }

    pub fn delegation_token(body: &[u8]) -> Result<hadoop::credentials::Token, RmError> {
        let what = "the RM delegation token request";
        let v: serde_json::Value = RmRestClient::parse(body, what)?;
        let encoded = v["token"]
            .as_str()
            .ok_or_else(|| RmError::BadResponse { what: what.into(), detail: "no \"token\" field".into() })?;
        hadoop::credentials::Token::decode_base64(encoded, "the RM delegation token")
            .map_err(|e| RmError::BadResponse { what: what.into(), detail: e.to_string() })
    }
}

/// Percent-encoding of a query component (RFC 3986 unreserved kept).
fn encode(s: &str) -> String {
    const COMPONENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests;
