//! The double against the kube-apiserver 1.28 captures: the same requests
//! sent to both must get the same status and the same Status bodies, and the
//! scheduler's and the watch's words must be the real ones.

use std::path::PathBuf;

use serde_json::Value;

use super::*;

fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KUBE_WIRE_FIXTURES") {
        return PathBuf::from(d);
    }
    let hadoop = std::env::var_os("HADOOP_WIRE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire/hadoop-3.3.6"));
    hadoop.join("../kubernetes-1.28")
}

fn read(file: &str) -> String {
    // Captured with HTTP's CRLF line ends.
    std::fs::read_to_string(dir().join(file)).unwrap_or_else(|e| panic!("capture {file}: {e}")).replace("\r\n", "\n")
}

/// (method, path and query, JSON body) of a captured request.
fn request(file: &str) -> (String, String, String) {
    let raw = read(file);
    let mut first = raw.lines().next().unwrap().split(' ');
    let (method, path) = (first.next().unwrap().to_owned(), first.next().unwrap().to_owned());
    let body = raw.split_once("\n\n").map(|(_, b)| b.trim().to_owned()).unwrap_or_default();
    (method, path, body)
}

/// (status, JSON body) of a captured response.
fn response(file: &str) -> (u16, Value) {
    let raw = read(file);
    let code = raw.lines().next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\n\n").map(|(_, b)| b.trim()).unwrap_or("null");
    (code, serde_json::from_str(body).unwrap())
}

async fn send(double: &KubeDouble, file: &str) -> (u16, Value) {
    let (method, path, mut body) = request(file);
    // The captured pods are owned by capture 03's Deployment: it must exist
    // here too, or the garbage collector takes them (their owner is absent).
    if path.ends_with("/pods") && body.contains("ownerReferences") {
        let uid = match double.object("deployments", "default", "yf-demo-jobmanager") {
            Some(d) => d["metadata"]["uid"].clone(),
            None => Box::pin(send(double, "03-POST-deployment.request")).await.1["metadata"]["uid"].clone(),
        };
        let mut pod: Value = serde_json::from_str(&body).unwrap();
        pod["metadata"]["ownerReferences"][0]["uid"] = uid;
        body = pod.to_string();
    }
    let resp = http()
        .request(method.parse().unwrap(), format!("{}{path}", double.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let code = resp.status().as_u16();
    (code, resp.json().await.unwrap())
}

fn http() -> reqwest::Client {
    common::http::client_builder().unwrap().build().unwrap()
}

fn capture_node() -> Node {
    // Captures 10–11: one node of 4 cpu and 8Gi.
    Node { name: "node-1".into(), cpu_millis: 4000, memory_bytes: 8 << 30 }
}

#[tokio::test]
async fn a_pod_is_stored_with_the_apiservers_defaults() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    let (code, got) = send(&double, "06-POST-pod.request").await;
    let (want_code, want) = response("06-POST-pod.response");
    assert_eq!(code, want_code);
    for field in ["uid", "resourceVersion", "creationTimestamp", "namespace"] {
        assert!(got["metadata"][field].is_string(), "metadata.{field} filled, as in capture 06");
    }
    for path in [
        "/spec/serviceAccountName",
        "/spec/terminationGracePeriodSeconds",
        "/spec/dnsPolicy",
        "/spec/schedulerName",
        "/spec/containers/0/terminationMessagePath",
        "/spec/containers/0/imagePullPolicy",
        "/status/phase",
        "/status/qosClass",
    ] {
        assert_eq!(got.pointer(path), want.pointer(path), "{path}");
    }
    // The owner as sent, but for the uid: ours, not the capture's.
    let mut want_owner = want["metadata"]["ownerReferences"].clone();
    want_owner[0]["uid"] = got["metadata"]["ownerReferences"][0]["uid"].clone();
    assert_eq!(got["metadata"]["ownerReferences"], want_owner);
}

#[tokio::test]
async fn the_same_pod_again_is_409_already_exists() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    send(&double, "06-POST-pod.request").await;
    assert_eq!(send(&double, "07-POST-pod-again.request").await, response("07-POST-pod-again.response"));
}

#[tokio::test]
async fn an_invalid_pod_is_422_with_one_cause_per_field() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    assert_eq!(send(&double, "08-POST-pod-invalid.request").await, response("08-POST-pod-invalid.response"));
}

#[tokio::test]
async fn a_create_rbac_denies_is_403_naming_verb_resource_and_namespace() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    double.deny("create", "pods");
    let (code, got) = send(&double, "09-POST-pod-forbidden.request").await;
    let (want_code, mut want) = response("09-POST-pod-forbidden.response");
    assert_eq!(code, want_code);
    // The capture's user was a test user; the double's is the JobManager's service account.
    want["message"] = Value::String(want["message"].as_str().unwrap().replace("oracle-user", SERVICE_ACCOUNT_USER));
    assert_eq!(got, want);
}

#[tokio::test]
async fn a_pod_no_node_can_fit_is_created_then_unschedulable_in_the_schedulers_words() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    let (code, _) = send(&double, "15-POST-pod-too-big.request").await;
    assert_eq!(code, 201, "Unschedulable is not an error at create");
    let got = serde_json::to_value(double.pod("default", "yf-demo-taskmanager-2-1").unwrap()).unwrap();
    let (_, want) = response("16-GET-pod-unschedulable.response");
    let cond = |v: &Value| {
        v["status"]["conditions"].as_array().unwrap().iter().find(|c| c["type"] == "PodScheduled").cloned().unwrap()
    };
    let (g, w) = (cond(&got), cond(&want));
    for f in ["status", "reason", "message"] {
        assert_eq!(g[f], w[f], "{f}");
    }
}

#[tokio::test]
async fn a_pod_that_fits_is_bound_to_the_node() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    send(&double, "06-POST-pod.request").await;
    let got = serde_json::to_value(double.pod("default", "yf-demo-taskmanager-1-1").unwrap()).unwrap();
    let (_, want) = response("12-GET-pod-scheduled.response");
    assert_eq!(got["spec"]["nodeName"], want["spec"]["nodeName"]);
    let scheduled = |v: &Value| {
        v["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "PodScheduled" && c["status"] == "True")
    };
    assert!(scheduled(&got) && scheduled(&want));
}

#[tokio::test]
async fn a_list_at_a_compacted_version_is_410_expired() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    send(&double, "06-POST-pod.request").await;
    double.compact();
    send(&double, "18-DELETE-pod-delete.request").await;
    assert_eq!(send(&double, "23-GET-list-too-old.request").await, response("23-GET-list-too-old.response"));
}

#[tokio::test]
async fn a_watch_streams_events_and_ends_with_the_captured_bookmark() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    let (_, list_path, _) = request("05-GET-list-pods-empty.request");
    let list: Value = http().get(format!("{}{list_path}", double.url)).send().await.unwrap().json().await.unwrap();
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_owned();
    send(&double, "06-POST-pod.request").await;
    send(&double, "18-DELETE-pod-delete.request").await;
    let url =
        format!("{}{list_path}&watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1", double.url);
    let text = http().get(url).send().await.unwrap().text().await.unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    // Created, bound by the scheduler, deleted with grace 0: as the capture's first pod, then a bookmark.
    assert_eq!(kinds, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]);
    let versions: Vec<u64> =
        events.iter().map(|e| e["object"]["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap()).collect();
    assert!(versions[..3].windows(2).all(|w| w[0] < w[1]), "every change has a newer version: {versions:?}");
    assert!(versions[3] >= versions[2], "a bookmark is at the newest version: {versions:?}");
    let captured: Value = serde_json::from_str(read("watch-pods-from-list.stream").lines().last().unwrap()).unwrap();
    let mut ours = events[3].clone();
    ours["object"]["metadata"]["resourceVersion"] = captured["object"]["metadata"]["resourceVersion"].clone();
    assert_eq!(ours, captured, "the bookmark's shape");
    for e in &events[..3] {
        assert_eq!(e["object"]["kind"], "Pod");
        assert_eq!(e["object"]["apiVersion"], "v1");
    }
}

#[tokio::test]
async fn deleting_a_bound_pod_waits_for_the_kubelet() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    send(&double, "06-POST-pod.request").await;
    // Not grace 0: the pod stays, Terminating, as capture 21 shows for a bound pod.
    let resp = http()
        .delete(format!("{}/api/v1/namespaces/default/pods/yf-demo-taskmanager-1-1", double.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let pod = double.pod("default", "yf-demo-taskmanager-1-1").expect("still there");
    assert!(pod.metadata.deletion_timestamp.is_some());
    let (_, after_owner_deleted) = response("21-GET-pods-after-owner-deleted.response");
    assert!(after_owner_deleted.to_string().contains("deletionTimestamp"), "the capture shows the same");
    double.shared.confirm_deleted("default", "yf-demo-taskmanager-1-1");
    assert!(double.pod("default", "yf-demo-taskmanager-1-1").is_none());
}

#[test]
fn quantities_parse_as_the_apiserver_writes_them() {
    assert_eq!(cpu_millis("1500m"), Some(1500));
    assert_eq!(cpu_millis("64"), Some(64_000));
    assert_eq!(cpu_millis("0.5"), Some(500));
    assert_eq!(bytes("768Mi"), Some(768 << 20));
    assert_eq!(bytes("8Gi"), Some(8 << 30));
    assert_eq!(bytes("1000"), Some(1000));
}

#[tokio::test]
async fn deleting_the_deployment_collects_what_it_owns_as_captures_20_and_21_show() {
    let double = KubeDouble::start(vec![capture_node()]).await;
    let (code, deployment) = send(&double, "03-POST-deployment.request").await;
    let (want_code, _) = response("03-POST-deployment.response");
    assert_eq!(code, want_code);
    let uid = deployment["metadata"]["uid"].as_str().expect("a uid, as in capture 03").to_owned();
    // Capture 06's TaskManager pod, owned by this Deployment (`send` puts our uid in).
    assert_eq!(send(&double, "06-POST-pod.request").await.0, 201);
    let (code, status) = send(&double, "20-DELETE-deployment-delete.request").await;
    let (want_code, mut want) = response("20-DELETE-deployment-delete.response");
    assert_eq!(code, want_code);
    want["details"]["uid"] = Value::String(uid);
    assert_eq!(status, want, "capture 20's Status, our uid");
    assert!(double.object_names("deployments", "default").is_empty());
    // Background propagation: owned pods bound to a node stay Terminating until their kubelet confirms (21).
    let tm = double.pod("default", "yf-demo-taskmanager-1-1").expect("Terminating, not gone");
    assert!(tm.metadata.deletion_timestamp.is_some());
    for name in double.pod_names("default") {
        assert!(
            double.pod("default", &name).unwrap().metadata.deletion_timestamp.is_some(),
            "{name} marked for deletion"
        );
    }
}

#[tokio::test]
async fn a_config_map_over_one_mebibyte_is_422_too_long() {
    // *Unverified*: no capture; the documented limit and the apiserver's message form.
    let double = KubeDouble::start(vec![capture_node()]).await;
    let big = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, vec![7u8; (1 << 20) + 1]);
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "yf-demo-bundle"}, "binaryData": {"bundle.tar.gz": big}});
    let resp =
        http().post(format!("{}/api/v1/namespaces/default/configmaps", double.url)).json(&cm).send().await.unwrap();
    assert_eq!(resp.status(), 422);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "Invalid");
    assert!(body["message"].as_str().unwrap().contains("Too long: must have at most 1048576 bytes"), "{body}");
    assert!(double.object_names("configmaps", "default").is_empty());
}
