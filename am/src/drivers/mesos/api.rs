//! The few shapes of the Mesos v1 scheduler HTTP API (JSON) the driver uses,
//! named as in `mesos/v1/mesos.proto` and `mesos/v1/scheduler/scheduler.proto`.
//! No capture of a real master exists: these follow the API documentation
//! and the protobuf definitions (see docs/mesos.md, *unverified*). Unknown
//! fields are ignored and unknown event types kept as their name, so a newer
//! master does not break an older framework.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `{"value": "..."}`: every Mesos id (FrameworkID, OfferID, AgentID, TaskID).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Id {
    pub value: String,
}

impl Id {
    pub fn new(v: impl Into<String>) -> Self {
        Self { value: v.into() }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scalar {
    pub value: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AllocationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    /// SCALAR, RANGES, SET.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalar: Option<Scalar>,
    /// The pre-1.9 way of saying whose the resource is (`*` = unreserved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The role the resource was offered to (MULTI_ROLE frameworks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocation_info: Option<AllocationInfo>,
}

impl Resource {
    pub fn scalar(name: &str, value: f64, role: &str) -> Self {
        Resource {
            name: name.into(),
            kind: "SCALAR".into(),
            scalar: Some(Scalar { value }),
            role: None,
            allocation_info: Some(AllocationInfo { role: Some(role.into()) }),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    pub id: Id,
    #[serde(default)]
    pub framework_id: Option<Id>,
    pub agent_id: Id,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub resources: Vec<Resource>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: Id,
    /// TASK_STAGING, TASK_STARTING, TASK_RUNNING, TASK_FINISHED, TASK_FAILED,
    /// TASK_KILLED, TASK_LOST, TASK_ERROR, TASK_DROPPED, TASK_GONE, ...
    pub state: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub agent_id: Option<Id>,
    /// Base64; present when the update must be acknowledged.
    #[serde(default)]
    pub uuid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Subscribed {
    pub framework_id: Id,
    #[serde(default)]
    pub heartbeat_interval_seconds: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Offers {
    #[serde(default)]
    pub offers: Vec<Offer>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Rescind {
    pub offer_id: Id,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Update {
    pub status: TaskStatus,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ErrorEvent {
    #[serde(default)]
    pub message: String,
}

/// One scheduler event (`scheduler.proto`'s Event): a type and its body.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub subscribed: Option<Subscribed>,
    #[serde(default)]
    pub offers: Option<Offers>,
    #[serde(default)]
    pub rescind: Option<Rescind>,
    #[serde(default)]
    pub update: Option<Update>,
    #[serde(default)]
    pub error: Option<ErrorEvent>,
}

/// The scheduler calls, as JSON bodies of `POST /api/v1/scheduler`.
pub mod call {
    use super::*;

    pub fn subscribe(framework: &Value, framework_id: Option<&Id>) -> Value {
        let mut c = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework}});
        if let Some(id) = framework_id {
            c["framework_id"] = json!(id);
            c["subscribe"]["framework_info"]["id"] = json!(id);
        }
        c
    }

    fn with_id(framework_id: &Id, kind: &str, key: &str, body: Value) -> Value {
        let mut c = json!({"framework_id": framework_id, "type": kind});
        if !key.is_empty() {
            c[key] = body;
        }
        c
    }

    pub fn accept(framework_id: &Id, offers: &[Id], tasks: Vec<Value>, refuse_seconds: f64) -> Value {
        with_id(
            framework_id,
            "ACCEPT",
            "accept",
            json!({
                "offer_ids": offers,
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
                "filters": {"refuse_seconds": refuse_seconds},
            }),
        )
    }

    pub fn decline(framework_id: &Id, offers: &[Id], refuse_seconds: f64) -> Value {
        with_id(
            framework_id,
            "DECLINE",
            "decline",
            json!({"offer_ids": offers, "filters": {"refuse_seconds": refuse_seconds}}),
        )
    }

    pub fn kill(framework_id: &Id, task: &Id, agent: Option<&Id>) -> Value {
        let mut k = json!({"task_id": task});
        if let Some(a) = agent {
            k["agent_id"] = json!(a);
        }
        with_id(framework_id, "KILL", "kill", k)
    }

    pub fn acknowledge(framework_id: &Id, agent: &Id, task: &Id, uuid: &str) -> Value {
        with_id(framework_id, "ACKNOWLEDGE", "acknowledge", json!({"agent_id": agent, "task_id": task, "uuid": uuid}))
    }

    /// Explicit reconciliation of the tasks we know (an empty list asks for all).
    pub fn reconcile(framework_id: &Id, tasks: &[(Id, Option<Id>)]) -> Value {
        let tasks: Vec<Value> = tasks
            .iter()
            .map(|(t, a)| match a {
                Some(a) => json!({"task_id": t, "agent_id": a}),
                None => json!({"task_id": t}),
            })
            .collect();
        with_id(framework_id, "RECONCILE", "reconcile", json!({"tasks": tasks}))
    }

    pub fn suppress(framework_id: &Id) -> Value {
        with_id(framework_id, "SUPPRESS", "", Value::Null)
    }

    pub fn revive(framework_id: &Id) -> Value {
        with_id(framework_id, "REVIVE", "", Value::Null)
    }

    pub fn teardown(framework_id: &Id) -> Value {
        with_id(framework_id, "TEARDOWN", "", Value::Null)
    }
}

/// The FrameworkInfo a session subscribes with.
pub fn framework_info(name: &str, user: &str, role: &str, principal: Option<&str>, failover_timeout: f64) -> Value {
    let mut f = json!({
        "user": user,
        "name": name,
        "roles": [role],
        "capabilities": [{"type": "MULTI_ROLE"}, {"type": "GPU_RESOURCES"}],
        "failover_timeout": failover_timeout,
    });
    if let Some(p) = principal {
        f["principal"] = json!(p);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_parse_as_the_v1_json_and_unknown_ones_are_kept_by_name() {
        let offers = r#"{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o1"},"framework_id":{"value":"f"},
            "agent_id":{"value":"a1"},"hostname":"h","resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":4.0},
            "role":"*","allocation_info":{"role":"*"}},{"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":32000}]}}]}]}}"#;
        let e: Event = serde_json::from_str(offers).unwrap();
        let o = &e.offers.unwrap().offers[0];
        assert_eq!((o.id.value.as_str(), o.resources.len()), ("o1", 2));
        assert_eq!(o.resources[0].scalar.as_ref().map(|s| s.value), Some(4.0));
        let e: Event = serde_json::from_str(r#"{"type":"INVERSE_OFFERS","inverse_offers":{}}"#).unwrap();
        assert_eq!(e.kind, "INVERSE_OFFERS");
        let up = r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"tm-1"},"state":"TASK_FAILED",
            "message":"Command exited with status 1","source":"SOURCE_EXECUTOR","reason":"REASON_COMMAND_EXECUTOR_FAILED",
            "agent_id":{"value":"a1"},"uuid":"AAEC"}}}"#;
        let s = serde_json::from_str::<Event>(up).unwrap().update.unwrap().status;
        assert_eq!((s.state.as_str(), s.uuid.as_deref()), ("TASK_FAILED", Some("AAEC")));
    }

    #[test]
    fn calls_carry_the_framework_id_and_their_body_under_the_lowercase_type() {
        let f = Id::new("fw-1");
        let c = call::decline(&f, &[Id::new("o1")], 5.0);
        assert_eq!(c["type"], "DECLINE");
        assert_eq!(c["framework_id"]["value"], "fw-1");
        assert_eq!(c["decline"]["filters"]["refuse_seconds"], 5.0);
        let s = call::subscribe(&framework_info("yarn-flink", "u", "*", None, 604800.0), Some(&f));
        assert_eq!(s["subscribe"]["framework_info"]["id"]["value"], "fw-1");
        assert_eq!(call::suppress(&f).get("suppress"), None);
    }
}
