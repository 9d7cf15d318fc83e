//! A double of the kube-apiserver 1.28, for the Kubernetes driver, held to
//! the captures in `../shared/wire/kubernetes-1.28/` (see docs/kubernetes.md
//! for which file checks which behaviour):
//!
//! - pods and secrets in namespaces, stored as k8s-openapi objects with the
//!   defaults the apiserver fills (uid, resourceVersion, creationTimestamp,
//!   serviceAccountName, terminationMessagePath, ...);
//! - `201`, `409 AlreadyExists`, `422 Invalid` with `details.causes`,
//!   `403 Forbidden` for a verb its RBAC denies, `404 NotFound`, as `Status`;
//! - lists with a label selector and `resourceVersion`; `410 Expired` for an
//!   exact list at a compacted version;
//! - watches: one JSON `WatchEvent` per line, replayed from the history
//!   after the given resourceVersion, then live; `BOOKMARK` at the end of
//!   `timeoutSeconds`; `ERROR 410` for a version older than the history, or
//!   when a test breaks every watch;
//! - a scheduler: a pod is bound to a node with room for its requests, or
//!   gets `PodScheduled False Unschedulable` with the scheduler's message;
//! - deleting a pod bound to a node sets `deletionTimestamp` (MODIFIED); it
//!   is removed (DELETED) only when the kubelet confirms (capture 21);
//! - Deployments, Services and ConfigMaps as JSON (create, get, list, PUT,
//!   delete); a Deployment controller that keeps one pod per Deployment; the
//!   garbage collector (Background deletes, captures 20-21; and dependents
//!   whose owners are gone, *unverified*); ConfigMaps over 1 MiB refused
//!   (*unverified*); `pods/log` from the kubelet's files (*unverified*).
//!
//! The kubelet is [`kubelet::Kubelet`]: it runs bound pods as processes.

pub mod kubelet;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// A node the scheduler may bind pods to.
#[derive(Clone, Debug)]
pub struct Node {
    pub name: String,
    pub cpu_millis: u64,
    pub memory_bytes: u64,
}

#[derive(Clone, Debug)]
pub struct Change {
    pub rv: u64,
    pub kind: &'static str,
    pub pod: Pod,
}

#[derive(Default)]
pub struct ApiState {
    rv: u64,
    uid: u64,
    pub pods: BTreeMap<(String, String), Pod>,
    pub secrets: BTreeMap<(String, String), Secret>,
    /// Deployments, Services and ConfigMaps as JSON, by (resource, namespace, name).
    pub objects: BTreeMap<(String, String, String), Value>,
    /// Every pod change since the last compaction, for watches from a version.
    history: Vec<Change>,
    /// Versions at or below this were compacted away.
    compacted: u64,
    /// (verb, resource) pairs the service account may not use.
    denied: BTreeSet<(String, String)>,
    pub nodes: Vec<Node>,
    /// Counted API calls by "VERB resource", for the reports.
    pub calls: BTreeMap<String, u64>,
    /// Where the kubelet writes each pod's container log, for `pods/log`.
    pub logs: BTreeMap<(String, String), std::path::PathBuf>,
}

pub struct Shared {
    pub state: Mutex<ApiState>,
    changes: broadcast::Sender<Change>,
    /// Bumped to end every open watch with an ERROR event.
    breaks: tokio::sync::watch::Sender<u64>,
}

pub struct KubeDouble {
    pub url: String,
    pub shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KubeDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The user the driver's calls run as, in Forbidden messages.
pub const SERVICE_ACCOUNT_USER: &str = "system:serviceaccount:default:yarn-flink-jobmanager";

impl KubeDouble {
    pub async fn start(nodes: Vec<Node>) -> KubeDouble {
        let (changes, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            // etcd's first revision is 1: a list's version is never 0, which means "any".
            state: Mutex::new(ApiState { nodes, rv: 1, ..ApiState::default() }),
            changes,
            breaks: tokio::sync::watch::channel(0).0,
        });
        let app = Router::new()
            .route("/version", get(version))
            .route("/api/v1/namespaces/{ns}/pods", get(list_pods).post(create_pod))
            .route("/api/v1/namespaces/{ns}/pods/{name}", get(get_pod).delete(delete_pod))
            .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
            .route("/api/v1/namespaces/{ns}/secrets", axum::routing::post(create_secret))
            .route("/api/v1/namespaces/{ns}/secrets/{name}", get(get_secret).delete(delete_secret))
            .route("/apis/apps/v1/namespaces/{ns}/deployments", get(list_objects).post(create_object))
            .route("/apis/apps/v1/namespaces/{ns}/deployments/{name}", get(get_object).delete(delete_object))
            .route("/api/v1/namespaces/{ns}/{resource}", get(list_objects).post(create_object))
            .route(
                "/api/v1/namespaces/{ns}/{resource}/{name}",
                get(get_object).put(replace_object).delete(delete_object),
            )
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        KubeDouble { url, shared, server }
    }

    /// A kube client for the double (plain HTTP, no credentials).
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url.parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// RBAC: the service account may not `verb` `resource` until [`KubeDouble::allow`].
    pub fn deny(&self, verb: &str, resource: &str) {
        self.shared.state.lock().unwrap().denied.insert((verb.into(), resource.into()));
    }

    pub fn allow(&self, verb: &str, resource: &str) {
        self.shared.state.lock().unwrap().denied.remove(&(verb.to_owned(), resource.to_owned()));
    }

    /// etcd compaction: versions up to now can no longer be listed or watched from.
    pub fn compact(&self) {
        let mut st = self.shared.state.lock().unwrap();
        st.compacted = st.rv;
        st.history.clear();
    }

    /// Ends every open watch with `ERROR 410 Expired`, as an apiserver does
    /// when a watcher falls behind its watch cache.
    pub fn break_watches(&self) {
        self.compact();
        self.shared.breaks.send_modify(|g| *g += 1);
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.shared.state.lock().unwrap().pods.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    pub fn pod_names(&self, namespace: &str) -> Vec<String> {
        self.shared
            .state
            .lock()
            .unwrap()
            .pods
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// `kubectl delete pod` by someone else (graceful: the kubelet confirms).
    pub fn delete_pod(&self, namespace: &str, name: &str) {
        let mut st = self.shared.state.lock().unwrap();
        st.delete_pod(&self.shared.changes, namespace, name, None);
    }

    /// A kubeconfig naming the double (plain HTTP, no credentials): what
    /// `KUBECONFIG` points the client at, and what the kubelet double gives
    /// pods instead of a mounted service-account token.
    pub fn write_kubeconfig(&self, path: &std::path::Path) {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\n\
             contexts:\n- name: double\n  context:\n    cluster: double\n    user: double\n    namespace: default\n\
             current-context: double\nusers:\n- name: double\n  user: {{}}\n",
            self.url
        );
        std::fs::write(path, text).unwrap();
    }

    /// Objects of `resource` (deployments, services, configmaps) in `namespace`.
    pub fn object_names(&self, resource: &str, namespace: &str) -> Vec<String> {
        self.shared
            .state
            .lock()
            .unwrap()
            .objects
            .keys()
            .filter(|(r, ns, _)| r == resource && ns == namespace)
            .map(|(_, _, n)| n.clone())
            .collect()
    }

    /// One stored object (deployments, services, configmaps) as JSON.
    pub fn object(&self, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        self.shared
            .state
            .lock()
            .unwrap()
            .objects
            .get(&(resource.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    pub fn secret_names(&self, namespace: &str) -> Vec<String> {
        self.shared
            .state
            .lock()
            .unwrap()
            .secrets
            .keys()
            .filter(|(ns, _)| ns == namespace)
            .map(|(_, n)| n.clone())
            .collect()
    }

    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.shared.state.lock().unwrap().calls.clone()
    }
}

impl Shared {
    /// A status change, as the kubelet's PATCH of `pods/<name>/status` makes it.
    pub fn patch_status(&self, namespace: &str, name: &str, f: impl FnOnce(&mut PodStatus)) {
        let mut st = self.state.lock().unwrap();
        let key = (namespace.to_owned(), name.to_owned());
        let Some(mut pod) = st.pods.get(&key).cloned() else { return };
        f(pod.status.get_or_insert_with(Default::default));
        st.store(&self.changes, "MODIFIED", pod);
    }

    /// The kubelet confirms a graceful delete: the pod object goes.
    pub fn confirm_deleted(&self, namespace: &str, name: &str) {
        let mut st = self.state.lock().unwrap();
        if let Some(pod) = st.pods.remove(&(namespace.to_owned(), name.to_owned())) {
            st.emit(&self.changes, "DELETED", pod);
            st.reconcile(&self.changes);
            st.schedule(&self.changes);
        }
    }
}

impl ApiState {
    fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn emit(&mut self, changes: &broadcast::Sender<Change>, kind: &'static str, mut pod: Pod) {
        let rv = self.next_rv();
        pod.metadata.resource_version = Some(rv.to_string());
        let change = Change { rv, kind, pod };
        self.history.push(change.clone());
        let _ = changes.send(change);
    }

    /// Stores a changed pod under a new resourceVersion and tells watchers.
    fn store(&mut self, changes: &broadcast::Sender<Change>, kind: &'static str, mut pod: Pod) {
        let rv = self.next_rv();
        pod.metadata.resource_version = Some(rv.to_string());
        let key = (pod.metadata.namespace.clone().unwrap_or_default(), pod.metadata.name.clone().unwrap_or_default());
        self.pods.insert(key, pod.clone());
        let change = Change { rv, kind, pod };
        self.history.push(change.clone());
        let _ = changes.send(change);
    }

    fn forbidden(&self, verb: &str, resource: &str, namespace: &str) -> Option<Response> {
        self.denied.contains(&(verb.to_owned(), resource.to_owned())).then(|| {
            status(
                403,
                "Forbidden",
                &format!(
                    "{resource} is forbidden: User \"{SERVICE_ACCOUNT_USER}\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"{namespace}\""
                ),
                Some(json!({"kind": resource})),
            )
        })
    }

    fn count(&mut self, call: &str) {
        *self.calls.entry(call.to_owned()).or_default() += 1;
    }

    /// Binds every unbound pod that fits a node; tells the others why not,
    /// in the scheduler's words (capture 16).
    fn schedule(&mut self, changes: &broadcast::Sender<Change>) {
        let pending: Vec<(String, String)> = self
            .pods
            .iter()
            .filter(|(_, p)| {
                p.metadata.deletion_timestamp.is_none()
                    && p.spec.as_ref().is_some_and(|s| s.node_name.is_none())
                    && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in pending {
            let Some(mut pod) = self.pods.get(&key).cloned() else { continue };
            let (cpu, mem) = requests(&pod);
            let mut short_cpu = 0;
            let mut short_mem = 0;
            let mut chosen = None;
            for node in &self.nodes {
                let (used_cpu, used_mem) = self
                    .pods
                    .values()
                    .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.name.as_str()))
                    .filter(|p| {
                        !matches!(p.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed" | "Succeeded"))
                    })
                    .map(requests)
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
                let cpu_ok = used_cpu + cpu <= node.cpu_millis;
                let mem_ok = used_mem + mem <= node.memory_bytes;
                short_cpu += u64::from(!cpu_ok);
                short_mem += u64::from(!mem_ok);
                if cpu_ok && mem_ok {
                    chosen = Some(node.name.clone());
                    break;
                }
            }
            let now = Some(Time(Utc::now()));
            let status = pod.status.get_or_insert_with(Default::default);
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            conditions.retain(|c| c.type_ != "PodScheduled");
            match chosen {
                Some(node) => {
                    conditions.push(PodCondition {
                        type_: "PodScheduled".into(),
                        status: "True".into(),
                        last_transition_time: now,
                        ..Default::default()
                    });
                    if let Some(spec) = pod.spec.as_mut() {
                        spec.node_name = Some(node);
                    }
                    self.store(changes, "MODIFIED", pod);
                }
                None => {
                    let n = self.nodes.len();
                    let message = if n == 0 {
                        "no nodes available to schedule pods".to_owned()
                    } else {
                        let mut reasons = Vec::new();
                        if short_cpu > 0 {
                            reasons.push(format!("{short_cpu} Insufficient cpu"));
                        }
                        if short_mem > 0 {
                            reasons.push(format!("{short_mem} Insufficient memory"));
                        }
                        format!(
                            "0/{n} nodes are available: {}. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod..",
                            reasons.join(", ")
                        )
                    };
                    let old = self.pods.get(&key).and_then(|p| {
                        p.status
                            .as_ref()?
                            .conditions
                            .as_ref()?
                            .iter()
                            .find(|c| c.type_ == "PodScheduled")?
                            .message
                            .clone()
                    });
                    if old.as_deref() == Some(message.as_str()) {
                        continue;
                    }
                    conditions.push(PodCondition {
                        type_: "PodScheduled".into(),
                        status: "False".into(),
                        reason: Some("Unschedulable".into()),
                        message: Some(message),
                        last_transition_time: now,
                        last_probe_time: None,
                    });
                    self.store(changes, "MODIFIED", pod);
                }
            }
        }
    }

    fn delete_pod(
        &mut self,
        changes: &broadcast::Sender<Change>,
        namespace: &str,
        name: &str,
        grace: Option<i64>,
    ) -> Option<Pod> {
        let key = (namespace.to_owned(), name.to_owned());
        let mut pod = self.pods.get(&key).cloned()?;
        let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        let ended = matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed" | "Succeeded"));
        if !bound || ended || grace == Some(0) {
            self.pods.remove(&key);
            self.emit(changes, "DELETED", pod.clone());
            self.reconcile(changes);
            self.schedule(changes);
            return Some(pod);
        }
        if pod.metadata.deletion_timestamp.is_none() {
            let grace = grace.or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds).unwrap_or(30);
            pod.metadata.deletion_timestamp = Some(Time(Utc::now() + k8s_openapi::chrono::Duration::seconds(grace)));
            pod.metadata.deletion_grace_period_seconds = Some(grace);
            self.store(changes, "MODIFIED", pod.clone());
        }
        Some(pod)
    }
}

impl ApiState {
    fn fill_meta(&mut self, object: &mut Value, namespace: &str) {
        self.uid += 1;
        let rv = self.next_rv();
        let meta = &mut object["metadata"];
        meta["namespace"] = json!(namespace);
        meta["uid"] = json!(format!("00000000-0000-4000-8000-{:012x}", self.uid));
        meta["resourceVersion"] = json!(rv.to_string());
        meta["creationTimestamp"] = json!(Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }

    /// The Deployment controller, in one step: every Deployment has one live
    /// pod from its template. *Unverified shortcut*: the real controller goes
    /// through a ReplicaSet (capture 22 shows the JobManager pod owned by
    /// one); here the pod is owned by the Deployment itself, which the garbage
    /// collector treats the same way.
    fn reconcile(&mut self, changes: &broadcast::Sender<Change>) {
        let deployments: Vec<(String, String, Value)> = self
            .objects
            .iter()
            .filter(|((r, _, _), _)| r == "deployments")
            .map(|((_, ns, n), v)| (ns.clone(), n.clone(), v.clone()))
            .collect();
        for (ns, name, d) in deployments {
            let uid = d["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
            let owned = self.pods.values().any(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.metadata.owner_references.iter().flatten().any(|o| o.uid == uid)
            });
            if owned {
                continue;
            }
            let template = &d["spec"]["template"];
            let Ok(spec) = serde_json::from_value::<k8s_openapi::api::core::v1::PodSpec>(template["spec"].clone())
            else {
                continue;
            };
            let hash = format!("{:x}", uid.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))));
            self.uid += 1;
            let pod_name = format!("{name}-{hash}-{:05x}", self.uid & 0xfffff);
            let mut labels: BTreeMap<String, String> =
                serde_json::from_value(template["metadata"]["labels"].clone()).unwrap_or_default();
            labels.insert("pod-template-hash".into(), hash);
            let mut pod = Pod {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(pod_name),
                    generate_name: Some(format!("{name}-")),
                    namespace: Some(ns.clone()),
                    uid: Some(format!("00000000-0000-4000-8000-{:012x}", self.uid)),
                    creation_timestamp: Some(Time(Utc::now())),
                    labels: Some(labels),
                    owner_references: Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                        api_version: "apps/v1".into(),
                        kind: "Deployment".into(),
                        name: name.clone(),
                        uid,
                        controller: Some(true),
                        block_owner_deletion: Some(true),
                    }]),
                    ..Default::default()
                },
                spec: Some(spec),
                status: None,
            };
            if let Some(spec) = pod.spec.as_mut() {
                spec.restart_policy.get_or_insert_with(|| "Always".into());
                spec.service_account_name.get_or_insert_with(|| "default".into());
                spec.termination_grace_period_seconds.get_or_insert(30);
            }
            pod.status =
                Some(PodStatus { phase: Some("Pending".into()), qos_class: Some(qos(&pod)), ..Default::default() });
            self.store(changes, "ADDED", pod);
        }
        self.schedule(changes);
    }

    /// The garbage collector: every object owned by `uid` goes (pods
    /// gracefully: a bound pod stays Terminating until its kubelet confirms,
    /// capture 21), and what they owned after them.
    /// Whether any object, secret or pod has this uid.
    fn uid_exists(&self, uid: &str) -> bool {
        self.objects.values().any(|v| v["metadata"]["uid"] == uid)
            || self.secrets.values().any(|s| s.metadata.uid.as_deref() == Some(uid))
            || self.pods.values().any(|p| p.metadata.uid.as_deref() == Some(uid))
    }

    /// The garbage collector's other half (docs, "Owners and dependents":
    /// a dependent whose owners are all absent is deleted; *unverified*, no
    /// capture): an object created owned by what is already gone does not stay.
    fn collect_orphans(&mut self, changes: &broadcast::Sender<Change>) {
        let orphan = |refs: Vec<String>, st: &Self| !refs.is_empty() && !refs.iter().any(|u| st.uid_exists(u));
        let objects: Vec<(String, String, String)> = self
            .objects
            .iter()
            .filter(|(_, v)| {
                let refs = v["metadata"]["ownerReferences"].as_array().cloned().unwrap_or_default();
                orphan(refs.iter().filter_map(|r| r["uid"].as_str().map(str::to_owned)).collect(), self)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in objects {
            if let Some(v) = self.objects.remove(&key) {
                let uid = v["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
                self.collect_garbage(changes, &uid);
            }
        }
        let owners =
            |refs: &Option<Vec<OwnerReference>>| refs.iter().flatten().map(|r| r.uid.clone()).collect::<Vec<_>>();
        let secrets: Vec<(String, String)> = self
            .secrets
            .iter()
            .filter(|(_, s)| orphan(owners(&s.metadata.owner_references), self))
            .map(|(k, _)| k.clone())
            .collect();
        for key in secrets {
            self.secrets.remove(&key);
        }
        let pods: Vec<(String, String)> = self
            .pods
            .iter()
            .filter(|(_, p)| orphan(owners(&p.metadata.owner_references), self))
            .map(|(k, _)| k.clone())
            .collect();
        for (ns, name) in pods {
            self.delete_pod(changes, &ns, &name, None);
        }
    }

    fn collect_garbage(&mut self, changes: &broadcast::Sender<Change>, uid: &str) {
        let owned_by =
            |meta: &Value| meta["ownerReferences"].as_array().is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid));
        let objects: Vec<((String, String, String), String)> = self
            .objects
            .iter()
            .filter(|(_, v)| owned_by(&v["metadata"]))
            .map(|(k, v)| (k.clone(), v["metadata"]["uid"].as_str().unwrap_or_default().to_owned()))
            .collect();
        for (key, child) in objects {
            self.objects.remove(&key);
            self.collect_garbage(changes, &child);
        }
        self.secrets.retain(|_, s| !s.metadata.owner_references.iter().flatten().any(|r| r.uid == uid));
        let pods: Vec<(String, String)> = self
            .pods
            .iter()
            .filter(|(_, p)| p.metadata.owner_references.iter().flatten().any(|r| r.uid == uid))
            .map(|(k, _)| k.clone())
            .collect();
        for (ns, name) in pods {
            self.delete_pod(changes, &ns, &name, None);
        }
    }
}

/// (namespace, resource, name) of an object's path.
fn object_key(params: &BTreeMap<String, String>) -> (String, String, String) {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    (get("ns"), resource_of(params), get("name"))
}

fn not_found(resource: &str, name: &str) -> Response {
    status(404, "NotFound", &format!("{resource} \"{name}\" not found"), Some(json!({"name": name, "kind": resource})))
}

fn resource_of(params: &BTreeMap<String, String>) -> String {
    params.get("resource").cloned().unwrap_or_else(|| "deployments".into())
}

async fn create_object(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<BTreeMap<String, String>>,
    body: String,
) -> Response {
    let (ns, resource) = (params.get("ns").cloned().unwrap_or_default(), resource_of(&params));
    if !matches!(resource.as_str(), "deployments" | "services" | "configmaps") {
        return status(404, "NotFound", "the server could not find the requested resource", None);
    }
    let mut st = shared.state.lock().unwrap();
    st.count(&format!("POST {resource}"));
    if let Some(r) = st.forbidden("create", &resource, &ns) {
        return r;
    }
    let mut object: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return status(400, "BadRequest", &format!("the object provided is unrecognized: {e}"), None),
    };
    let name = object["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    if !valid_name(&name) {
        let kind = object["kind"].as_str().unwrap_or("Object").to_owned();
        let message = format!("Invalid value: \"{name}\": {NAME_RULE}");
        let details = json!({"name": name, "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": "metadata.name"}]});
        return status(
            422,
            "Invalid",
            &format!("{kind} \"{name}\" is invalid: [metadata.name: {message}]"),
            Some(details),
        );
    }
    // *Unverified* (no capture; the docs and the apiserver's ConfigMap
    // validation): keys and values together, binaryData decoded, at most 1 MiB.
    if resource == "configmaps" {
        let text = |m: &Value| {
            m.as_object().map_or(0, |o| o.iter().map(|(k, v)| k.len() + v.as_str().map_or(0, str::len)).sum::<usize>())
        };
        let binary = object["binaryData"].as_object().map_or(0, |o| {
            o.iter()
                .map(|(k, v)| {
                    let b64 = v.as_str().unwrap_or_default();
                    k.len() + base64::engine::general_purpose::STANDARD.decode(b64).map_or(b64.len(), |b| b.len())
                })
                .sum::<usize>()
        });
        if text(&object["data"]) + binary > 1 << 20 {
            let message = "Too long: must have at most 1048576 bytes";
            let details = json!({"name": name, "kind": "ConfigMap",
                "causes": [{"reason": "FieldValueTooLong", "message": message, "field": "[]"}]});
            return status(422, "Invalid", &format!("ConfigMap \"{name}\" is invalid: []: {message}"), Some(details));
        }
    }
    let key = (resource.clone(), ns.clone(), name.clone());
    if st.objects.contains_key(&key) {
        let group = if resource == "deployments" { ".apps" } else { "" };
        return status(
            409,
            "AlreadyExists",
            &format!("{resource}{group} \"{name}\" already exists"),
            Some(json!({"name": name, "group": group.trim_start_matches('.'), "kind": resource})),
        );
    }
    st.fill_meta(&mut object, &ns);
    if resource == "services" {
        let n = st.uid;
        object["spec"]["clusterIP"] = json!(format!("10.96.{}.{}", (n >> 8) & 0xff, n & 0xff));
        object["spec"]["type"] = json!("ClusterIP");
    }
    st.objects.insert(key, object.clone());
    if resource == "deployments" {
        st.reconcile(&shared.changes);
    }
    st.collect_orphans(&shared.changes);
    (StatusCode::CREATED, Json(object)).into_response()
}

async fn get_object(State(shared): State<Arc<Shared>>, Path(params): Path<BTreeMap<String, String>>) -> Response {
    let (ns, resource, name) = object_key(&params);
    let mut st = shared.state.lock().unwrap();
    st.count(&format!("GET {resource}"));
    if let Some(r) = st.forbidden("get", &resource, &ns) {
        return r;
    }
    match st.objects.get(&(resource.clone(), ns, name.clone())) {
        Some(v) => Json(v.clone()).into_response(),
        None => not_found(&resource, &name),
    }
}

async fn list_objects(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<BTreeMap<String, String>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let (ns, resource) = (params.get("ns").cloned().unwrap_or_default(), resource_of(&params));
    let mut st = shared.state.lock().unwrap();
    st.count(&format!("LIST {resource}"));
    if let Some(r) = st.forbidden("list", &resource, &ns) {
        return r;
    }
    let selector = q.get("labelSelector");
    let items: Vec<Value> = st
        .objects
        .iter()
        .filter(|((r, n, _), v)| {
            *r == resource && *n == ns && {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(v["metadata"]["labels"].clone()).unwrap_or_default();
                let pod = Pod {
                    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                matches(selector, &pod)
            }
        })
        .map(|(_, v)| v.clone())
        .collect();
    let kind = match resource.as_str() {
        "deployments" => "DeploymentList",
        "services" => "ServiceList",
        _ => "ConfigMapList",
    };
    Json(json!({"kind": kind, "apiVersion": if resource == "deployments" { "apps/v1" } else { "v1" },
        "metadata": {"resourceVersion": st.rv.to_string()}, "items": items}))
    .into_response()
}

async fn replace_object(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<BTreeMap<String, String>>,
    body: String,
) -> Response {
    let (ns, resource, name) = object_key(&params);
    let mut st = shared.state.lock().unwrap();
    st.count(&format!("PUT {resource}"));
    if let Some(r) = st.forbidden("update", &resource, &ns) {
        return r;
    }
    let mut object: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => return status(400, "BadRequest", &format!("the object provided is unrecognized: {e}"), None),
    };
    let key = (resource.clone(), ns.clone(), name.clone());
    let Some(old) = st.objects.get(&key).cloned() else {
        return not_found(&resource, &name);
    };
    // A PUT with a resourceVersion is conditional: a stale one conflicts.
    if let Some(rv) = object["metadata"]["resourceVersion"].as_str() {
        if Some(rv) != old["metadata"]["resourceVersion"].as_str() {
            return status(
                409,
                "Conflict",
                &format!("Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
                Some(json!({"name": name, "kind": resource})),
            );
        }
    }
    let rv = st.next_rv();
    for field in ["uid", "creationTimestamp", "namespace"] {
        object["metadata"][field] = old["metadata"][field].clone();
    }
    if object["metadata"]["ownerReferences"].is_null() {
        object["metadata"]["ownerReferences"] = old["metadata"]["ownerReferences"].clone();
    }
    object["metadata"]["resourceVersion"] = json!(rv.to_string());
    st.objects.insert(key, object.clone());
    Json(object).into_response()
}

async fn delete_object(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<BTreeMap<String, String>>,
    body: String,
) -> Response {
    let (ns, resource, name) = object_key(&params);
    let mut st = shared.state.lock().unwrap();
    st.count(&format!("DELETE {resource}"));
    if let Some(r) = st.forbidden("delete", &resource, &ns) {
        return r;
    }
    let Some(object) = st.objects.remove(&(resource.clone(), ns, name.clone())) else {
        return not_found(&resource, &name);
    };
    let policy =
        serde_json::from_str::<Value>(&body).ok().and_then(|b| b["propagationPolicy"].as_str().map(str::to_owned));
    if policy.as_deref() != Some("Orphan") {
        let uid = object["metadata"]["uid"].as_str().unwrap_or_default().to_owned();
        st.collect_garbage(&shared.changes, &uid);
    }
    // Capture 20: a Status naming what went, with the group for apps objects.
    let mut details = json!({"name": name, "kind": resource, "uid": object["metadata"]["uid"]});
    if resource == "deployments" {
        details["group"] = json!("apps");
    }
    Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}))
        .into_response()
}

async fn get_secret(State(shared): State<Arc<Shared>>, Path((ns, name)): Path<(String, String)>) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.count("GET secrets");
    if let Some(r) = st.forbidden("get", "secrets", &ns) {
        return r;
    }
    match st.secrets.get(&(ns, name.clone())) {
        Some(s) => Json(s.clone()).into_response(),
        None => status(
            404,
            "NotFound",
            &format!("secrets \"{name}\" not found"),
            Some(json!({"name": name, "kind": "secrets"})),
        ),
    }
}

/// The pod's summed container requests: (millicores, bytes).
pub fn requests(pod: &Pod) -> (u64, u64) {
    let mut out = (0, 0);
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let r = c.resources.as_ref().and_then(|r| r.requests.as_ref().or(r.limits.as_ref()));
        if let Some(r) = r {
            out.0 += r.get("cpu").and_then(|q| cpu_millis(&q.0)).unwrap_or(0);
            out.1 += r.get("memory").and_then(|q| bytes(&q.0)).unwrap_or(0);
        }
    }
    out
}

pub fn cpu_millis(q: &str) -> Option<u64> {
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q.parse::<f64>().ok().map(|c| (c * 1000.0).round() as u64),
    }
}

pub fn bytes(q: &str) -> Option<u64> {
    const SUFFIXES: &[(&str, u64)] = &[
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (s, m) in SUFFIXES {
        if let Some(n) = q.strip_suffix(s) {
            return n.parse::<u64>().ok().map(|n| n * m);
        }
    }
    q.parse().ok()
}

fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    (StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

async fn version() -> Json<Value> {
    Json(json!({
        "major": "1", "minor": "28", "gitVersion": "v1.28.0",
        "gitCommit": "855e7c48de7388eb330da0f8d9d2394ee818fb8d", "gitTreeState": "clean",
        "buildDate": "2023-08-15T10:15:54Z", "goVersion": "go1.20.7", "compiler": "gc", "platform": "linux/amd64"
    }))
}

/// RFC 1123 subdomain, as the apiserver checks `metadata.name`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

const NAME_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// The causes a 1.28 apiserver gives for the pod mistakes a driver can make (capture 08).
fn validate(pod: &Pod) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    let name = pod.metadata.name.clone().unwrap_or_default();
    if !valid_name(&name) {
        causes.push(("metadata.name".to_owned(), format!("Invalid value: \"{name}\": {NAME_RULE}")));
    }
    for (i, c) in pod.spec.iter().flat_map(|s| s.containers.iter()).enumerate() {
        let Some(r) = &c.resources else { continue };
        let (Some(req), Some(lim)) = (&r.requests, &r.limits) else { continue };
        if let (Some(q), Some(l)) = (req.get("cpu"), lim.get("cpu")) {
            if cpu_millis(&q.0) > cpu_millis(&l.0) {
                causes.push((
                    format!("spec.containers[{i}].resources.requests"),
                    format!("Invalid value: \"{}\": must be less than or equal to cpu limit of {}", q.0, l.0),
                ));
            }
        }
        if let (Some(q), Some(l)) = (req.get("memory"), lim.get("memory")) {
            if bytes(&q.0) > bytes(&l.0) {
                causes.push((
                    format!("spec.containers[{i}].resources.requests"),
                    format!("Invalid value: \"{}\": must be less than or equal to memory limit of {}", q.0, l.0),
                ));
            }
        }
    }
    if pod.spec.as_ref().is_none_or(|s| s.containers.is_empty()) {
        causes.push(("spec.containers".to_owned(), "Required value".to_owned()));
    }
    causes
}

async fn create_pod(State(shared): State<Arc<Shared>>, Path(ns): Path<String>, body: String) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.count("POST pods");
    if let Some(r) = st.forbidden("create", "pods", &ns) {
        return r;
    }
    let mut pod: Pod = match serde_json::from_str(&body) {
        Ok(p) => p,
        Err(e) => return status(400, "BadRequest", &format!("the object provided is unrecognized: {e}"), None),
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let causes = validate(&pod);
    if !causes.is_empty() {
        let summary: Vec<String> = causes.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        let details = json!({
            "name": name, "kind": "Pod",
            "causes": causes.iter().map(|(f, m)| json!({"reason": "FieldValueInvalid", "message": m, "field": f})).collect::<Vec<_>>(),
        });
        return status(422, "Invalid", &format!("Pod \"{name}\" is invalid: [{}]", summary.join(", ")), Some(details));
    }
    if st.pods.contains_key(&(ns.clone(), name.clone())) {
        return status(
            409,
            "AlreadyExists",
            &format!("pods \"{name}\" already exists"),
            Some(json!({"name": name, "kind": "pods"})),
        );
    }
    // The defaults a 1.28 apiserver fills in (capture 06's answer).
    st.uid += 1;
    pod.metadata.namespace = Some(ns.clone());
    pod.metadata.uid = Some(format!("00000000-0000-4000-8000-{:012x}", st.uid));
    pod.metadata.creation_timestamp = Some(Time(Utc::now()));
    if let Some(spec) = pod.spec.as_mut() {
        spec.service_account_name.get_or_insert_with(|| "default".into());
        spec.termination_grace_period_seconds.get_or_insert(30);
        spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
        spec.scheduler_name.get_or_insert_with(|| "default-scheduler".into());
        for c in &mut spec.containers {
            c.termination_message_path.get_or_insert_with(|| "/dev/termination-log".into());
            c.termination_message_policy.get_or_insert_with(|| "File".into());
            c.image_pull_policy.get_or_insert_with(|| "IfNotPresent".into());
        }
    }
    pod.status = Some(PodStatus { phase: Some("Pending".into()), qos_class: Some(qos(&pod)), ..Default::default() });
    st.store(&shared.changes, "ADDED", pod.clone());
    let stored = st.pods.get(&(ns.clone(), name.clone())).cloned().unwrap_or(pod);
    st.schedule(&shared.changes);
    st.collect_orphans(&shared.changes);
    (StatusCode::CREATED, Json(stored)).into_response()
}

fn qos(pod: &Pod) -> String {
    let guaranteed = pod.spec.iter().flat_map(|s| &s.containers).all(|c| {
        c.resources.as_ref().is_some_and(|r| r.limits.is_some() && (r.requests.is_none() || r.requests == r.limits))
    });
    if guaranteed { "Guaranteed" } else { "Burstable" }.into()
}

async fn get_pod(State(shared): State<Arc<Shared>>, Path((ns, name)): Path<(String, String)>) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.count("GET pod");
    if let Some(r) = st.forbidden("get", "pods", &ns) {
        return r;
    }
    match st.pods.get(&(ns, name.clone())) {
        Some(p) => Json(p.clone()).into_response(),
        None => not_found("pods", &name),
    }
}

/// `pods/log` (*unverified*: no capture; the API reference): the container's
/// log as text, `tailLines` from its end, `limitBytes` from its start; 400
/// while the container has not started.
async fn pod_log(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let path = {
        let mut st = shared.state.lock().unwrap();
        st.count("GET pods/log");
        if let Some(r) = st.forbidden("get", "pods/log", &ns) {
            return r;
        }
        if !st.pods.contains_key(&(ns.clone(), name.clone())) {
            return not_found("pods", &name);
        }
        st.logs.get(&(ns, name.clone())).cloned()
    };
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        let message = format!("container in pod \"{name}\" is waiting to start: ContainerCreating");
        return status(400, "BadRequest", &message, None);
    };
    let mut text = match q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("{l}\n")).collect()
        }
        None => text,
    };
    if let Some(n) = q.get("limitBytes").and_then(|n| n.parse::<usize>().ok()) {
        let mut cut = n.min(text.len());
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain")], text).into_response()
}

async fn delete_pod(
    State(shared): State<Arc<Shared>>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<BTreeMap<String, String>>,
    body: String,
) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.count("DELETE pod");
    if let Some(r) = st.forbidden("delete", "pods", &ns) {
        return r;
    }
    let grace = q
        .get("gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| serde_json::from_str::<Value>(&body).ok()?.get("gracePeriodSeconds")?.as_i64());
    match st.delete_pod(&shared.changes, &ns, &name, grace) {
        Some(pod) => Json(pod).into_response(),
        None => not_found("pods", &name),
    }
}

/// Equality-based label selectors (`a=b,c=d`), the only kind the driver uses.
fn matches(selector: Option<&String>, pod: &Pod) -> bool {
    let Some(sel) = selector.filter(|s| !s.is_empty()) else { return true };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    sel.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => labels.get(k.trim_end_matches('=')).map(String::as_str) == Some(v.trim_start_matches('=')),
        None => labels.contains_key(term),
    })
}

async fn list_pods(
    State(shared): State<Arc<Shared>>,
    Path(ns): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let watching = q.get("watch").is_some_and(|w| w == "1" || w == "true");
    let selector = q.get("labelSelector");
    let rv: Option<u64> = q.get("resourceVersion").and_then(|v| v.parse().ok());
    let mut st = shared.state.lock().unwrap();
    st.count(if watching { "WATCH pods" } else { "LIST pods" });
    if let Some(r) = st.forbidden(if watching { "watch" } else { "list" }, "pods", &ns) {
        return r;
    }
    if !watching {
        let exact = q.get("resourceVersionMatch").is_some_and(|m| m == "Exact");
        if exact && rv.is_some_and(|v| v != 0 && v <= st.compacted) {
            return status(410, "Expired", "The resourceVersion for the provided list is too old.", None);
        }
        let items: Vec<&Pod> =
            st.pods.iter().filter(|((n, _), p)| *n == ns && matches(selector, p)).map(|(_, p)| p).collect();
        return Json(json!({
            "kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": st.rv.to_string()},
            "items": items,
        }))
        .into_response();
    }
    // A watch: replay, then live, until timeoutSeconds.
    let mut live = shared.changes.subscribe();
    let mut breaks = shared.breaks.subscribe();
    breaks.borrow_and_update();
    let bookmarks = q.get("allowWatchBookmarks").is_some_and(|b| b == "true" || b == "1");
    let timeout = Duration::from_secs(q.get("timeoutSeconds").and_then(|t| t.parse().ok()).unwrap_or(1800));
    let mut first: Vec<String> = Vec::new();
    let mut last = st.rv;
    match rv {
        Some(v) if v != 0 && v < st.compacted => {
            first.push(error_line(v, st.rv));
            last = u64::MAX;
        }
        Some(v) if v != 0 => {
            for c in st.history.iter().filter(|c| c.rv > v && pod_ns(&c.pod) == ns && matches(selector, &c.pod)) {
                first.push(event_line(c.kind, &c.pod));
            }
        }
        // No version, or 0: the current state as ADDED events.
        _ => {
            for ((n, _), p) in &st.pods {
                if *n == ns && matches(selector, p) {
                    first.push(event_line("ADDED", p));
                }
            }
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(64);
    let (ns2, selector) = (ns.clone(), selector.cloned());
    let shared2 = shared.clone();
    drop(st);
    tokio::spawn(async move {
        for line in first {
            if tx.send(Ok(line)).await.is_err() {
                return;
            }
        }
        if last == u64::MAX {
            return;
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                change = live.recv() => match change {
                    Ok(c) if c.rv > last && pod_ns(&c.pod) == ns2 && matches(selector.as_ref(), &c.pod) => {
                        last = c.rv;
                        if tx.send(Ok(event_line(c.kind, &c.pod))).await.is_err() { return; }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) | Err(broadcast::error::RecvError::Closed) => {
                        let now = shared2.state.lock().unwrap().rv;
                        let _ = tx.send(Ok(error_line(last, now))).await;
                        return;
                    }
                },
                _ = breaks.changed() => {
                    let now = shared2.state.lock().unwrap().rv;
                    let _ = tx.send(Ok(error_line(last, now))).await;
                    return;
                }
                _ = &mut deadline => {
                    if bookmarks {
                        let rv = shared2.state.lock().unwrap().rv;
                        let _ = tx.send(Ok(bookmark_line(rv))).await;
                    }
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn pod_ns(p: &Pod) -> &str {
    p.metadata.namespace.as_deref().unwrap_or("")
}

fn event_line(kind: &str, pod: &Pod) -> String {
    let mut object = serde_json::to_value(pod).unwrap_or(Value::Null);
    object["kind"] = json!("Pod");
    object["apiVersion"] = json!("v1");
    format!("{}\n", json!({"type": kind, "object": object}))
}

/// The BOOKMARK a 1.28 apiserver sends at the end of timeoutSeconds (the stream capture's last line).
fn bookmark_line(rv: u64) -> String {
    format!(
        "{}\n",
        json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null},
            "spec": {"containers": null}, "status": {}}})
    )
}

fn error_line(from: u64, now: u64) -> String {
    format!(
        "{}\n",
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": format!("too old resource version: {from} ({now})"),
            "reason": "Expired", "code": 410}})
    )
}

async fn create_secret(State(shared): State<Arc<Shared>>, Path(ns): Path<String>, body: String) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.count("POST secrets");
    if let Some(r) = st.forbidden("create", "secrets", &ns) {
        return r;
    }
    let mut secret: Secret = match serde_json::from_str(&body) {
        Ok(s) => s,
        Err(e) => return status(400, "BadRequest", &format!("the object provided is unrecognized: {e}"), None),
    };
    let name = secret.metadata.name.clone().unwrap_or_default();
    if st.secrets.contains_key(&(ns.clone(), name.clone())) {
        return status(
            409,
            "AlreadyExists",
            &format!("secrets \"{name}\" already exists"),
            Some(json!({"name": name, "kind": "secrets"})),
        );
    }
    let rv = st.next_rv();
    st.uid += 1;
    secret.metadata.uid = Some(format!("00000000-0000-4000-8000-{:012x}", st.uid));
    secret.metadata.namespace = Some(ns.clone());
    secret.metadata.resource_version = Some(rv.to_string());
    secret.metadata.creation_timestamp = Some(Time(Utc::now()));
    secret.type_.get_or_insert_with(|| "Opaque".into());
    st.secrets.insert((ns, name), secret.clone());
    st.collect_orphans(&shared.changes);
    (StatusCode::CREATED, Json(secret)).into_response()
}

async fn delete_secret(State(shared): State<Arc<Shared>>, Path((ns, name)): Path<(String, String)>) -> Response {
    let mut st = shared.state.lock().unwrap();
    st.count("DELETE secrets");
    match st.secrets.remove(&(ns, name.clone())) {
        // Capture 25: a Status, not the object.
        Some(s) => Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": "secrets", "uid": s.metadata.uid}}))
        .into_response(),
        None => status(
            404,
            "NotFound",
            &format!("secrets \"{name}\" not found"),
            Some(json!({"name": name, "kind": "secrets"})),
        ),
    }
}

#[cfg(test)]
mod tests;
