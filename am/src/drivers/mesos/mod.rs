//! The `mesos` driver: the session's ResourceManager as a Mesos framework
//! over the v1 scheduler HTTP API (JSON, `POST /api/v1/scheduler`), running
//! each TaskManager as a Mesos task sized to its `WorkerSpec`.
//!
//! One task owns the subscription: it keeps the SUBSCRIBE stream open (RecordIO
//! events), feeds offers and status updates to the pure [`book::OfferBook`],
//! and carries out its decisions as calls with the `Mesos-Stream-Id` the
//! master gave. When the stream breaks, the master goes quiet past five
//! heartbeats, or the master fails over, it subscribes again with its
//! framework id (running tasks are kept for `failover_timeout`) and
//! reconciles the tasks it knows. No Mesos type leaves this module.
//! See docs/mesos.md (the API shapes are *unverified*: no capture exists).

pub mod api;
pub mod book;
pub mod recordio;

use std::time::Duration;

use common::ids::ResourceId;
use common::launch::SecretSource;
use futures::future::BoxFuture;
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use self::api::{call, Event, Id};
use self::book::{Decision, OfferBook};
use crate::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use crate::resource_manager::worker::WorkerSpec;

/// The header every call after SUBSCRIBE must carry.
pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";
/// A record longer than this ends the stream as malformed.
const MAX_EVENT_BYTES: usize = 16 << 20;

#[derive(Clone, Debug)]
pub struct MesosDriverConfig {
    /// `http://host:5050`.
    pub master: String,
    pub role: String,
    /// HTTP basic authentication of the framework (`--principal`, `--secret-file`).
    pub principal: Option<String>,
    pub secret: Option<String>,
    pub framework_name: String,
    pub user: String,
    /// How long the master keeps our tasks while we are away.
    pub failover_timeout: Duration,
    /// How long a declined offer stays away.
    pub refuse_seconds: f64,
    /// The TaskManager command on the agents (normally this binary's path).
    pub binary: String,
    pub rm_address: String,
    pub secret_file: std::path::PathBuf,
    /// Extra environment for TaskManagers (e.g. RUST_LOG).
    pub env: Vec<(String, String)>,
    /// Task ids are `<prefix><n>`.
    pub task_prefix: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MesosError {
    #[error("cannot reach the Mesos master at {master}: {detail}; check --master (http://host:5050) and that the master is up")]
    Unreachable { master: String, detail: String },
    #[error(
        "the Mesos master at {master} refused the framework ({status}): {body}; check --role, --principal and \
         --secret-file against the master's ACLs"
    )]
    Refused { master: String, status: u16, body: String },
    #[error("{master} does not answer as a Mesos master ({detail}); --master must name a master's HTTP endpoint, e.g. http://host:5050")]
    NotAMaster { master: String, detail: String },
}

enum Cmd {
    Request(WorkerSpec),
    Cancel(WorkerSpec),
    Release(ResourceId),
    Terminate(oneshot::Sender<()>),
}

pub struct MesosDriver {
    cmds: mpsc::UnboundedSender<Cmd>,
}

impl MesosDriver {
    /// Subscribes (the first time, waiting for SUBSCRIBED so that a wrong
    /// master or role is an error here) and starts the driver's task.
    pub async fn start(
        config: MesosDriverConfig,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) -> Result<MesosDriver, MesosError> {
        let unreachable = |detail: String| MesosError::Unreachable { master: config.master.clone(), detail };
        let http = common::http::client_builder()
            .map_err(|e| unreachable(e.to_string()))?
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let (calls, calls_rx) = mpsc::unbounded_channel();
        tokio::spawn(send_calls(calls_rx));
        let mut framework = Framework {
            calls,
            book: OfferBook::new(&config.role, &config.task_prefix),
            framework_id: None,
            stream_id: String::new(),
            hosts: Default::default(),
            http,
            config,
            events,
        };
        let stream = framework.subscribe().await?;
        let (cmds, rx) = mpsc::unbounded_channel();
        tokio::spawn(framework.run(stream, rx));
        Ok(MesosDriver { cmds })
    }
}

impl ResourceManagerDriver for MesosDriver {
    fn name(&self) -> &'static str {
        "mesos"
    }

    fn request_worker(&mut self, spec: &WorkerSpec) {
        let _ = self.cmds.send(Cmd::Request(spec.clone()));
    }

    fn cancel_request(&mut self, spec: &WorkerSpec) {
        let _ = self.cmds.send(Cmd::Cancel(spec.clone()));
    }

    fn release_worker(&mut self, resource_id: &ResourceId) {
        let _ = self.cmds.send(Cmd::Release(resource_id.clone()));
    }

    fn terminate(&mut self) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.cmds.send(Cmd::Terminate(tx)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = tokio::time::timeout(Duration::from_secs(10), rx).await;
            }
        })
    }
}

type EventStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, reqwest::Error>>;

struct Framework {
    config: MesosDriverConfig,
    http: reqwest::Client,
    book: OfferBook,
    framework_id: Option<Id>,
    stream_id: String,
    /// The host each task runs on (its agent's hostname).
    hosts: std::collections::HashMap<Id, String>,
    events: mpsc::UnboundedSender<DriverEvent>,
    /// Calls, sent one after the other by [`send_calls`].
    calls: mpsc::UnboundedSender<(String, reqwest::RequestBuilder)>,
}

async fn send_calls(mut calls: mpsc::UnboundedReceiver<(String, reqwest::RequestBuilder)>) {
    while let Some((kind, req)) = calls.recv().await {
        match req.send().await {
            Ok(r) if r.status().as_u16() == 202 => {}
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                warn!(call = %kind, %status, body = %text.chars().take(300).collect::<String>(), "the Mesos master refused a call");
            }
            Err(e) => warn!(call = %kind, error = %e, "a call to the Mesos master failed"),
        }
    }
}

impl Framework {
    fn url(&self) -> String {
        format!("{}/api/v1/scheduler", self.config.master.trim_end_matches('/'))
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self.http.post(self.url()).header("Content-Type", "application/json").json(body);
        if let (Some(p), Some(s)) = (&self.config.principal, &self.config.secret) {
            r = r.basic_auth(p, Some(s));
        }
        r
    }

    /// SUBSCRIBE, and the stream up to and including SUBSCRIBED.
    async fn subscribe(&mut self) -> Result<(EventStream, recordio::Decoder), MesosError> {
        let master = self.config.master.clone();
        let info = api::framework_info(
            &self.config.framework_name,
            &self.config.user,
            &self.config.role,
            self.config.principal.as_deref(),
            self.config.failover_timeout.as_secs_f64(),
        );
        let body = call::subscribe(&info, self.framework_id.as_ref());
        let resp = self
            .post(&body)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| MesosError::Unreachable { master: master.clone(), detail: e.to_string() })?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 || status == 400 {
            let body = resp.text().await.unwrap_or_default();
            return Err(MesosError::Refused { master, status, body: body.chars().take(500).collect() });
        }
        let stream_id = resp.headers().get(STREAM_ID_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (200, Some(stream_id)) = (status, stream_id) else {
            return Err(MesosError::NotAMaster {
                master,
                detail: format!("SUBSCRIBE answered {status} without a {STREAM_ID_HEADER} header"),
            });
        };
        self.stream_id = stream_id;
        let mut stream: EventStream = resp.bytes_stream().boxed();
        let mut decoder = recordio::Decoder::new(MAX_EVENT_BYTES);
        // The first event must be SUBSCRIBED.
        let first =
            tokio::time::timeout(Duration::from_secs(30), next_event(&mut stream, &mut decoder)).await.map_err(
                |_| MesosError::NotAMaster { master: master.clone(), detail: "no SUBSCRIBED event within 30 s".into() },
            )?;
        match first {
            Ok(Some(e)) if e.kind == "SUBSCRIBED" => {
                if let Some(s) = e.subscribed {
                    info!(framework_id = %s.framework_id.value, master = %self.config.master, "subscribed to the Mesos master");
                    self.framework_id = Some(s.framework_id);
                }
            }
            Ok(Some(e)) if e.kind == "ERROR" => {
                let body = e.error.map(|x| x.message).unwrap_or_default();
                return Err(MesosError::Refused { master, status: 200, body });
            }
            Ok(other) => {
                return Err(MesosError::NotAMaster {
                    master,
                    detail: format!("the first event was {other:?}, not SUBSCRIBED"),
                })
            }
            Err(detail) => return Err(MesosError::NotAMaster { master, detail }),
        }
        let decisions = self.book.subscribed();
        self.execute(decisions);
        let known = self.book.known_tasks();
        if !known.is_empty() {
            if let Some(f) = &self.framework_id {
                let tasks: Vec<(Id, Option<Id>)> = known.into_iter().map(|(t, a)| (t, Some(a))).collect();
                self.send(call::reconcile(f, &tasks));
            }
        }
        Ok((stream, decoder))
    }

    async fn run(mut self, first: (EventStream, recordio::Decoder), mut cmds: mpsc::UnboundedReceiver<Cmd>) {
        let (mut stream, mut decoder) = first;
        let quiet = Duration::from_secs(75); // five of the master's default 15 s heartbeats
        loop {
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(Cmd::Request(spec)) => { let d = self.book.request(&spec); self.execute(d); }
                    Some(Cmd::Cancel(spec)) => { let d = self.book.cancel(&spec); self.execute(d); }
                    Some(Cmd::Release(id)) => { let d = self.book.release(&id); self.execute(d); }
                    Some(Cmd::Terminate(done)) => {
                        // TEARDOWN: the master kills every task and forgets the framework.
                        if let Some(f) = self.framework_id.clone() {
                            let _ = self.post(&call::teardown(&f)).header(STREAM_ID_HEADER, &self.stream_id).send().await;
                        }
                        let _ = done.send(());
                        return;
                    }
                },
                event = tokio::time::timeout(quiet, next_event(&mut stream, &mut decoder)) => {
                    match event {
                        Ok(Ok(Some(e))) => { self.on_event(e); continue; }
                        Ok(Ok(None)) => warn!("the Mesos event stream ended; subscribing again"),
                        Ok(Err(e)) => warn!(error = %e, "the Mesos event stream broke; subscribing again"),
                        Err(_) => warn!(?quiet, "no event from the Mesos master; subscribing again"),
                    }
                    let mut delay = Duration::from_millis(100);
                    loop {
                        match self.subscribe().await {
                            Ok((s, d)) => { stream = s; decoder = d; break; }
                            Err(e) => {
                                warn!(error = %e, "resubscribing failed; retrying");
                                tokio::time::sleep(delay).await;
                                delay = (delay * 2).min(Duration::from_secs(10));
                            }
                        }
                    }
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e.kind.as_str() {
            "OFFERS" => {
                let offers = e.offers.map(|o| o.offers).unwrap_or_default();
                for o in &offers {
                    self.hosts.insert(o.agent_id.clone(), o.hostname.clone());
                }
                let d = self.book.offers(&offers);
                self.execute(d);
            }
            "UPDATE" => {
                if let Some(u) = e.update {
                    debug!(task = %u.status.task_id.value, state = %u.status.state, "task status");
                    let d = self.book.update(&u.status);
                    self.execute(d);
                }
            }
            "ERROR" => {
                let m = e.error.map(|x| x.message).unwrap_or_default();
                let _ = self.events.send(DriverEvent::Fatal(format!("the Mesos master ended the framework: {m}")));
            }
            "HEARTBEAT" | "RESCIND" | "SUBSCRIBED" => {}
            other => debug!(event = other, "Mesos event ignored"),
        }
    }

    fn execute(&mut self, decisions: Vec<Decision>) {
        let Some(f) = self.framework_id.clone() else { return };
        for d in decisions {
            match d {
                Decision::Event(e) => {
                    let _ = self.events.send(e);
                }
                Decision::Launch { offer, agent, tasks } => {
                    let host = self.hosts.get(&agent).cloned().unwrap_or_else(|| "127.0.0.1".into());
                    let infos: Vec<Value> =
                        tasks.iter().map(|(id, spec, need)| self.task_info(id, spec, need, &agent, &host)).collect();
                    info!(offer = %offer.value, agent = %agent.value, tasks = infos.len(), "launching TaskManager tasks");
                    self.send(call::accept(&f, &[offer], infos, self.config.refuse_seconds));
                }
                Decision::Decline(offers) => self.send(call::decline(&f, &offers, self.config.refuse_seconds)),
                Decision::Suppress => self.send(call::suppress(&f)),
                Decision::Revive => self.send(call::revive(&f)),
                Decision::Acknowledge { agent, task, uuid } => self.send(call::acknowledge(&f, &agent, &task, &uuid)),
                Decision::Kill { task, agent } => {
                    info!(task = %task.value, "killing a TaskManager task");
                    self.send(call::kill(&f, &task, agent.as_ref()));
                }
            }
        }
    }

    fn task_info(&self, id: &ResourceId, spec: &WorkerSpec, need: &book::Need, agent: &Id, host: &str) -> Value {
        let secret = SecretSource::File(self.config.secret_file.clone());
        // The task's sandbox is its working directory.
        let launch = spec.launch(&self.config.rm_address, id, secret, "tm-work".into(), host);
        let variables: Vec<Value> = launch
            .to_env()
            .into_iter()
            .chain(self.config.env.iter().cloned())
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        json!({
            "name": format!("yarn-flink TaskManager {id}"),
            "task_id": {"value": id.as_str()},
            "agent_id": agent,
            "resources": need.resources(&self.config.role),
            "command": {
                "shell": false,
                "value": self.config.binary,
                "arguments": [self.config.binary, "taskmanager"],
                "environment": {"variables": variables},
            },
        })
    }

    /// A call off the loop, in order with the others (a REVIVE must not
    /// overtake the SUPPRESS before it); its answer matters only when refused.
    fn send(&self, body: Value) {
        let req = self.post(&body).header(STREAM_ID_HEADER, &self.stream_id);
        let kind = body["type"].as_str().unwrap_or("?").to_owned();
        let _ = self.calls.send((kind, req));
    }
}

/// The next event of the stream: `Ok(None)` when it ended.
async fn next_event(stream: &mut EventStream, decoder: &mut recordio::Decoder) -> Result<Option<Event>, String> {
    loop {
        if let Some(record) = decoder.next_record().map_err(|e| e.to_string())? {
            return serde_json::from_slice(&record).map(Some).map_err(|e| format!("a malformed event: {e}"));
        }
        match stream.next().await {
            Some(Ok(chunk)) => decoder.feed(&chunk),
            Some(Err(e)) => return Err(e.to_string()),
            None => return Ok(None),
        }
    }
}
