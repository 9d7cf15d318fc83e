//! A Mesos master's v1 scheduler API (`POST /api/v1/scheduler`, JSON) and
//! agents that run tasks as local processes, for the Mesos driver's tests.
//!
//! No Mesos master can run here and no capture exists: every shape and rule
//! below follows the v1 scheduler HTTP API documentation and
//! `mesos/v1/scheduler/scheduler.proto`, and is *unverified* (docs/mesos.md):
//! - SUBSCRIBE answers 200 with a `Mesos-Stream-Id` header and a RecordIO
//!   stream of JSON events, SUBSCRIBED first; a framework that subscribes
//!   again with its id (failover) gets a new stream id and keeps its tasks;
//! - every other call must carry the current stream id and framework id,
//!   else 400; a role the master was told to refuse gets 403; calls answer 202;
//! - offers: each agent's free cpus/mem/gpus, one outstanding offer per agent,
//!   none while the framework is suppressed or the agent refused by a DECLINE
//!   filter; ACCEPT with LAUNCH starts the tasks (resources checked against
//!   the offer), the rest of the offer goes back;
//! - status updates carry a uuid and wait for ACKNOWLEDGE; RECONCILE answers
//!   with the current state, without a uuid; KILL gives TASK_KILLED; TEARDOWN
//!   kills every task.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;

pub const STREAM_ID_HEADER: &str = "Mesos-Stream-Id";

#[derive(Clone, Debug)]
pub struct AgentSpec {
    pub id: String,
    pub cpus: f64,
    pub mem_mb: f64,
    pub gpus: f64,
}

#[derive(Clone, Debug)]
pub struct MasterConfig {
    pub agents: Vec<AgentSpec>,
    /// Where agents make task sandboxes.
    pub work_root: PathBuf,
    /// Roles whose frameworks are refused (403).
    pub refused_roles: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Res {
    cpus: f64,
    mem: f64,
    gpus: f64,
}

impl Res {
    fn of(resources: &Value) -> Res {
        let mut r = Res::default();
        for x in resources.as_array().into_iter().flatten() {
            let v = x["scalar"]["value"].as_f64().unwrap_or(0.0);
            match x["name"].as_str() {
                Some("cpus") => r.cpus += v,
                Some("mem") => r.mem += v,
                Some("gpus") => r.gpus += v,
                _ => {}
            }
        }
        r
    }
    fn le(&self, o: &Res) -> bool {
        self.cpus <= o.cpus + 1e-9 && self.mem <= o.mem + 1e-9 && self.gpus <= o.gpus + 1e-9
    }
    fn add(&mut self, o: &Res, sign: f64) {
        self.cpus += sign * o.cpus;
        self.mem += sign * o.mem;
        self.gpus += sign * o.gpus;
    }
    fn json(&self, role: &str) -> Value {
        let mut v = vec![
            json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": self.cpus}, "role": "*", "allocation_info": {"role": role}}),
            json!({"name": "mem", "type": "SCALAR", "scalar": {"value": self.mem}, "role": "*", "allocation_info": {"role": role}}),
        ];
        if self.gpus > 0.0 {
            v.push(json!({"name": "gpus", "type": "SCALAR", "scalar": {"value": self.gpus}, "role": "*", "allocation_info": {"role": role}}));
        }
        Value::Array(v)
    }
}

impl TaskRecord {
    pub fn res_cpus(&self) -> f64 {
        self.res.cpus
    }
    pub fn res_mem(&self) -> f64 {
        self.res.mem
    }
}

pub struct TaskRecord {
    pub agent: String,
    pub state: String,
    pub pid: Option<u32>,
    res: Res,
    killed: bool,
}

#[derive(Default)]
struct Framework {
    id: String,
    role: String,
    stream_id: String,
    events: Option<mpsc::UnboundedSender<Result<Bytes, std::io::Error>>>,
    suppressed: bool,
}

#[derive(Default)]
pub struct MasterState {
    framework: Option<Framework>,
    /// offer id -> (agent index, resources offered).
    offers: HashMap<String, (usize, Res)>,
    refused_until: HashMap<usize, Instant>,
    used: Vec<Res>,
    pub tasks: BTreeMap<String, TaskRecord>,
    /// Updates sent and not acknowledged yet (uuid -> task id).
    pub unacknowledged: HashMap<String, String>,
    /// Every call's type, in order.
    pub calls: Vec<String>,
    next: u64,
}

struct Inner {
    config: MasterConfig,
    state: Mutex<MasterState>,
}

pub struct MesosMaster {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl MesosMaster {
    pub async fn start(config: MasterConfig) -> std::io::Result<MesosMaster> {
        let used = vec![Res::default(); config.agents.len()];
        let inner = Arc::new(Inner { config, state: Mutex::new(MasterState { used, ..Default::default() }) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/api/v1/scheduler", post(scheduler)).with_state(inner.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let offers = tokio::spawn(offer_loop(inner.clone()));
        Ok(MesosMaster { addr, inner, tasks: vec![server, offers] })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Looks at the master's state.
    pub fn state<T>(&self, f: impl FnOnce(&MasterState) -> T) -> T {
        f(&self.inner.state.lock().unwrap())
    }

    /// Fault injection: the event stream breaks, as when the master fails over.
    pub fn drop_stream(&self) {
        if let Some(f) = self.inner.state.lock().unwrap().framework.as_mut() {
            f.events = None;
        }
    }

    /// Kills every task process and stops serving.
    pub fn shutdown(self) {
        let pids: Vec<u32> = self.state(|s| s.tasks.values().filter_map(|t| t.pid).collect());
        for pid in pids {
            // SAFETY: kill(2) on the process group of a task this double started.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        for t in self.tasks {
            t.abort();
        }
    }
}

fn uuid_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn send_event(s: &mut MasterState, event: Value) {
    let Some(f) = s.framework.as_mut() else { return };
    let Some(tx) = &f.events else { return };
    let bytes = serde_json::to_vec(&event).unwrap_or_default();
    let mut framed = format!("{}\n", bytes.len()).into_bytes();
    framed.extend_from_slice(&bytes);
    if tx.send(Ok(Bytes::from(framed))).is_err() {
        f.events = None;
    }
}

fn status_update(s: &mut MasterState, task: &str, state: &str, message: &str, reason: Option<&str>) {
    let Some(t) = s.tasks.get_mut(task) else { return };
    t.state = state.into();
    let agent = t.agent.clone();
    let uuid = uuid_b64();
    // Without a subscribed framework (after TEARDOWN) no one can acknowledge it.
    if s.framework.as_ref().is_some_and(|f| f.events.is_some()) {
        s.unacknowledged.insert(uuid.clone(), task.into());
    }
    let mut status = json!({"task_id": {"value": task}, "state": state, "source": "SOURCE_EXECUTOR",
        "agent_id": {"value": agent}, "uuid": uuid, "message": message, "timestamp": 0.0});
    if let Some(r) = reason {
        status["reason"] = json!(r);
    }
    send_event(s, json!({"type": "UPDATE", "update": {"status": status}}));
}

fn terminal(state: &str) -> bool {
    matches!(
        state,
        "TASK_FINISHED" | "TASK_FAILED" | "TASK_KILLED" | "TASK_LOST" | "TASK_ERROR" | "TASK_DROPPED" | "TASK_GONE"
    )
}

fn error(status: StatusCode, text: impl Into<String>) -> Response {
    (status, text.into()).into_response()
}

async fn scheduler(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let Ok(call) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Failed to parse body into Call: not JSON");
    };
    let kind = call["type"].as_str().unwrap_or("").to_owned();
    inner.state.lock().unwrap().calls.push(kind.clone());
    if kind == "SUBSCRIBE" {
        return subscribe(&inner, &call);
    }
    let mut s = inner.state.lock().unwrap();
    let Some(f) = s.framework.as_ref() else {
        return error(StatusCode::BAD_REQUEST, "Framework is not subscribed");
    };
    let stream = headers.get(STREAM_ID_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if stream != f.stream_id {
        return error(
            StatusCode::BAD_REQUEST,
            format!("The stream ID '{stream}' included in this request didn't match the stream ID currently associated with framework ID {}", f.id),
        );
    }
    if call["framework_id"]["value"].as_str() != Some(f.id.as_str()) {
        return error(StatusCode::BAD_REQUEST, "Call must contain the framework's id");
    }
    match kind.as_str() {
        "ACCEPT" => {
            let offer_ids: Vec<String> = call["accept"]["offer_ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["value"].as_str().map(str::to_owned))
                .collect();
            let mut room = Res::default();
            let mut agent = None;
            for id in &offer_ids {
                if let Some((a, r)) = s.offers.remove(id) {
                    room.add(&r, 1.0);
                    agent = Some(a);
                }
            }
            let tasks: Vec<Value> = call["accept"]["operations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|op| op["type"] == "LAUNCH")
                .flat_map(|op| op["launch"]["task_infos"].as_array().cloned().unwrap_or_default())
                .collect();
            for task in tasks {
                let id = task["task_id"]["value"].as_str().unwrap_or("").to_owned();
                let res = Res::of(&task["resources"]);
                let Some(a) = agent.filter(|_| res.le(&room)) else {
                    // An unknown offer, or more than it holds: the task is dropped, as a master does.
                    s.tasks.insert(
                        id.clone(),
                        TaskRecord {
                            agent: String::new(),
                            state: "TASK_STAGING".into(),
                            pid: None,
                            res: Res::default(),
                            killed: false,
                        },
                    );
                    status_update(
                        &mut s,
                        &id,
                        "TASK_DROPPED",
                        "Task uses more resources than offered",
                        Some("REASON_TASK_INVALID"),
                    );
                    continue;
                };
                room.add(&res, -1.0);
                s.used[a].add(&res, 1.0);
                let agent_id = inner.config.agents[a].id.clone();
                s.tasks.insert(
                    id.clone(),
                    TaskRecord { agent: agent_id.clone(), state: "TASK_STAGING".into(), pid: None, res, killed: false },
                );
                match launch(&inner, &agent_id, &id, &task) {
                    Ok(child) => {
                        if let Some(t) = s.tasks.get_mut(&id) {
                            t.pid = child.id();
                        }
                        status_update(&mut s, &id, "TASK_STARTING", "", None);
                        status_update(&mut s, &id, "TASK_RUNNING", "", None);
                        tokio::spawn(watch_task(inner.clone(), id, child));
                    }
                    Err(e) => {
                        s.used[a].add(&res, -1.0);
                        status_update(
                            &mut s,
                            &id,
                            "TASK_FAILED",
                            &format!("Failed to launch: {e}"),
                            Some("REASON_EXECUTOR_TERMINATED"),
                        );
                    }
                }
            }
            if let Some(f) = call["accept"]["filters"]["refuse_seconds"].as_f64() {
                if let Some(a) = agent {
                    s.refused_until.insert(a, Instant::now() + Duration::from_secs_f64(f.min(0.5)));
                }
            }
        }
        "DECLINE" => {
            let refuse = call["decline"]["filters"]["refuse_seconds"].as_f64().unwrap_or(5.0);
            for o in call["decline"]["offer_ids"].as_array().into_iter().flatten() {
                if let Some((a, _)) = o["value"].as_str().and_then(|id| s.offers.remove(id)) {
                    // Filters are honoured, shortened so tests move on.
                    s.refused_until.insert(a, Instant::now() + Duration::from_secs_f64(refuse.min(0.5)));
                }
            }
        }
        "KILL" => {
            let id = call["kill"]["task_id"]["value"].as_str().unwrap_or("").to_owned();
            match s.tasks.get_mut(&id) {
                Some(t) if !terminal(&t.state) => {
                    t.killed = true;
                    if let Some(pid) = t.pid {
                        // SAFETY: kill(2) on a task process group this double started.
                        unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
                    }
                }
                // Unknown or ended: the master answers with TASK_LOST (reconciliation semantics).
                _ => {
                    s.tasks.entry(id.clone()).or_insert(TaskRecord {
                        agent: String::new(),
                        state: "TASK_LOST".into(),
                        pid: None,
                        res: Res::default(),
                        killed: true,
                    });
                    status_update(
                        &mut s,
                        &id,
                        "TASK_LOST",
                        "Attempted to kill an unknown task",
                        Some("REASON_RECONCILIATION"),
                    );
                }
            }
        }
        "ACKNOWLEDGE" => {
            if let Some(u) = call["acknowledge"]["uuid"].as_str() {
                s.unacknowledged.remove(u);
            }
        }
        "RECONCILE" => {
            let wanted: Vec<String> = call["reconcile"]["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["task_id"]["value"].as_str().map(str::to_owned))
                .collect();
            for id in wanted {
                let state = s.tasks.get(&id).map_or("TASK_LOST".to_owned(), |t| t.state.clone());
                let status = json!({"task_id": {"value": id}, "state": state, "source": "SOURCE_MASTER", "reason": "REASON_RECONCILIATION"});
                send_event(&mut s, json!({"type": "UPDATE", "update": {"status": status}}));
            }
        }
        "SUPPRESS" => {
            if let Some(f) = s.framework.as_mut() {
                f.suppressed = true;
            }
        }
        "REVIVE" => {
            if let Some(f) = s.framework.as_mut() {
                f.suppressed = false;
            }
            s.refused_until.clear();
        }
        "TEARDOWN" => {
            for t in s.tasks.values_mut() {
                if let (false, Some(pid)) = (terminal(&t.state), t.pid) {
                    t.killed = true;
                    // SAFETY: as above.
                    unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
                }
            }
            s.framework = None;
            s.offers.clear();
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Failed to validate scheduler::Call: unknown type {other:?}"),
            )
        }
    }
    StatusCode::ACCEPTED.into_response()
}

fn subscribe(inner: &Arc<Inner>, call: &Value) -> Response {
    let info = &call["subscribe"]["framework_info"];
    let role = info["roles"][0].as_str().or(info["role"].as_str()).unwrap_or("*").to_owned();
    if inner.config.refused_roles.contains(&role) {
        return error(StatusCode::FORBIDDEN, format!("Not authorized to subscribe with role '{role}'"));
    }
    if info["user"].as_str().is_none() || info["name"].as_str().is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "Failed to validate scheduler::Call: FrameworkInfo needs 'user' and 'name'",
        );
    }
    let mut s = inner.state.lock().unwrap();
    let asked = call["framework_id"]["value"].as_str().map(str::to_owned);
    let id = match (&s.framework, asked) {
        (Some(f), Some(a)) if f.id == a => a,
        (_, Some(a)) => a,
        (_, None) => format!("{}-0000", uuid::Uuid::new_v4()),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let stream_id = uuid::Uuid::new_v4().to_string();
    // Offers outstanding to an earlier stream are rescinded.
    s.offers.clear();
    s.framework =
        Some(Framework { id: id.clone(), role, stream_id: stream_id.clone(), events: Some(tx), suppressed: false });
    send_event(
        &mut s,
        json!({"type": "SUBSCRIBED", "subscribed": {"framework_id": {"value": id}, "heartbeat_interval_seconds": 15.0}}),
    );
    let body = Body::from_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(rx));
    Response::builder()
        .status(StatusCode::OK)
        .header("Content-Type", "application/json")
        .header(STREAM_ID_HEADER, stream_id)
        .body(body)
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// The agent: runs the task's command in a sandbox, its own process group.
fn launch(inner: &Inner, agent: &str, task: &str, info: &Value) -> std::io::Result<tokio::process::Child> {
    let sandbox = inner.config.work_root.join(agent).join(task);
    std::fs::create_dir_all(&sandbox)?;
    let cmd = &info["command"];
    let value = cmd["value"].as_str().unwrap_or("");
    let mut c = if cmd["shell"].as_bool().unwrap_or(true) {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(value);
        c
    } else {
        let mut c = tokio::process::Command::new(value);
        let args: Vec<String> =
            cmd["arguments"].as_array().into_iter().flatten().filter_map(|a| a.as_str().map(str::to_owned)).collect();
        c.args(args.iter().skip(1));
        c
    };
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("MESOS_SANDBOX", &sandbox)
        .env("MESOS_TASK_ID", task)
        .env("MESOS_AGENT_ENDPOINT", "127.0.0.1:5051");
    for v in cmd["environment"]["variables"].as_array().into_iter().flatten() {
        if let (Some(n), Some(val)) = (v["name"].as_str(), v["value"].as_str()) {
            c.env(n, val);
        }
    }
    c.current_dir(&sandbox)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(sandbox.join("stdout"))?)
        .stderr(std::fs::File::create(sandbox.join("stderr"))?)
        .process_group(0)
        .kill_on_drop(false);
    c.spawn()
}

async fn watch_task(inner: Arc<Inner>, id: String, mut child: tokio::process::Child) {
    let status = child.wait().await;
    let mut s = inner.state.lock().unwrap();
    let killed = s.tasks.get(&id).is_some_and(|t| t.killed);
    let (state, message, reason) = match status {
        _ if killed => ("TASK_KILLED", "Command terminated with signal Terminated".to_owned(), None),
        Ok(st) if st.success() => ("TASK_FINISHED", "Command exited with status 0".to_owned(), None),
        Ok(st) => match st.code() {
            Some(c) => {
                ("TASK_FAILED", format!("Command exited with status {c}"), Some("REASON_COMMAND_EXECUTOR_FAILED"))
            }
            None => {
                ("TASK_FAILED", "Command terminated with signal".to_owned(), Some("REASON_COMMAND_EXECUTOR_FAILED"))
            }
        },
        Err(e) => ("TASK_LOST", e.to_string(), Some("REASON_EXECUTOR_TERMINATED")),
    };
    if let Some(t) = s.tasks.get(&id) {
        let (agent, res) = (t.agent.clone(), t.res);
        if let Some(a) = inner.config.agents.iter().position(|x| x.id == agent) {
            s.used[a].add(&res, -1.0);
        }
    }
    status_update(&mut s, &id, state, &message, reason);
}

async fn offer_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut beats = 0u32;
    loop {
        tick.tick().await;
        let mut s = inner.state.lock().unwrap();
        beats += 1;
        if beats.is_multiple_of(50) {
            send_event(&mut s, json!({"type": "HEARTBEAT"}));
        }
        let Some(f) = s.framework.as_ref().filter(|f| !f.suppressed && f.events.is_some()) else { continue };
        let (fid, role) = (f.id.clone(), f.role.clone());
        let now = Instant::now();
        let mut offers = Vec::new();
        for (i, a) in inner.config.agents.iter().enumerate() {
            if s.offers.values().any(|(x, _)| *x == i) || s.refused_until.get(&i).is_some_and(|t| *t > now) {
                continue;
            }
            let mut free = Res { cpus: a.cpus, mem: a.mem_mb, gpus: a.gpus };
            free.add(&s.used[i], -1.0);
            if free.cpus < 0.01 || free.mem < 1.0 {
                continue;
            }
            s.next += 1;
            let id = format!("offer-{}", s.next);
            s.offers.insert(id.clone(), (i, free));
            offers.push(json!({"id": {"value": id}, "framework_id": {"value": fid}, "agent_id": {"value": a.id},
                "hostname": "127.0.0.1", "resources": free.json(&role)}));
        }
        if !offers.is_empty() {
            send_event(&mut s, json!({"type": "OFFERS", "offers": {"offers": offers}}));
        }
    }
}
