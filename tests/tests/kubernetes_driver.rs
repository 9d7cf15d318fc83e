//! The Kubernetes driver's own failure modes, on the kube-apiserver and
//! kubelet doubles (what every driver does is in driver_suite.rs): an ask no
//! node fits, an image that cannot be pulled, a pod deleted or evicted,
//! a watch that breaks while a pod goes, an invalid pod, and nothing left
//! behind after terminate.

mod in_process;

use std::time::Duration;

use am::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use am::resource_manager::worker::WorkerSpec;
use common::ids::ResourceId;
use common::resources::{ResourceProfile, MIB};
use in_process::kubernetes::{next, setup, setup_with, Setup, NAMESPACE};

fn spec(cpu_millis: u64, mem_mb: u64) -> WorkerSpec {
    WorkerSpec::uniform(ResourceProfile::new(cpu_millis, mem_mb * MIB), 1)
}

async fn started(s: &mut Setup) -> ResourceId {
    match next(&mut s.events).await {
        DriverEvent::WorkerStarted { resource_id, .. } => resource_id,
        other => panic!("expected a started worker, got {other:?}"),
    }
}

async fn terminated(s: &mut Setup) -> (ResourceId, String) {
    match next(&mut s.events).await {
        DriverEvent::WorkerTerminated { resource_id, diagnostics } => (resource_id, diagnostics),
        other => panic!("expected a terminated worker, got {other:?}"),
    }
}

async fn until(s: &Setup, what: &str, f: impl Fn(&Setup) -> bool) {
    for _ in 0..1000 {
        if f(s) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// No other event comes within `d`.
async fn quiet(s: &mut Setup, d: Duration) {
    if let Ok(Some(e)) = tokio::time::timeout(d, s.events.recv()).await {
        panic!("unexpected event: {e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_no_node_fits_fails_with_the_schedulers_message_and_leaves_no_pod() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(2)).await;
    s.driver.request_worker(&spec(64_000, 768));
    let id = started(&mut s).await;
    let (gone, why) = terminated(&mut s).await;
    assert_eq!(gone, id);
    assert!(why.contains("fits on no node: not scheduled within 2 s"), "{why}");
    assert!(why.contains("0/1 nodes are available: 1 Insufficient cpu."), "the scheduler's words: {why}");
    until(&s, "the pod to be deleted", |s| s.api.pod_names(NAMESPACE).is_empty()).await;
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_fails_with_the_kubelets_message() {
    let mut s =
        setup_with(4000, 8 << 30, Duration::from_secs(2), |c| c.template.image = "no-such-image:1".into()).await;
    s.driver.request_worker(&spec(1000, 512));
    started(&mut s).await;
    let (_, why) = terminated(&mut s).await;
    assert!(why.contains("ImagePullBackOff: Back-off pulling image \"no-such-image:1\""), "{why}");
    s.driver.terminate().await;
    assert!(s.api.pod_names(NAMESPACE).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_deleted_by_someone_else_is_a_terminated_worker() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(30)).await;
    s.driver.request_worker(&spec(1000, 512));
    let id = started(&mut s).await;
    until(&s, "the pod to run", |s| s.running(&id)).await;
    s.api.delete_pod(NAMESPACE, id.as_str());
    let (gone, why) = terminated(&mut s).await;
    assert_eq!(gone, id);
    assert!(why.contains("was deleted"), "{why}");
    until(&s, "the kubelet to stop it", |s| !s.running(&id) && s.api.pod(NAMESPACE, id.as_str()).is_none()).await;
    quiet(&mut s, Duration::from_millis(500)).await;
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_pod_is_a_terminated_worker_with_the_kubelets_reason() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(30)).await;
    s.driver.request_worker(&spec(1000, 512));
    let id = started(&mut s).await;
    until(&s, "the pod to run", |s| s.running(&id)).await;
    s.kubelet.evict(NAMESPACE, id.as_str(), "The node was low on resource: memory. ");
    let (gone, why) = terminated(&mut s).await;
    assert_eq!(gone, id);
    assert!(why.contains("Evicted: The node was low on resource: memory."), "{why}");
    // A failed pod is deleted by the driver: nothing stays in the namespace.
    until(&s, "the pod to be deleted", |s| s.api.pod(NAMESPACE, id.as_str()).is_none()).await;
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_managers_log_is_read_through_the_apiserver_and_a_403_names_the_fix() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(30)).await;
    s.driver.request_worker(&spec(1000, 512));
    let id = started(&mut s).await;
    until(&s, "the pod to run", |s| s.running(&id)).await;
    let mut log = Vec::new();
    for _ in 0..200 {
        log = s.driver.worker_log(&id, 1 << 20).await.expect("the log");
        if !log.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(String::from_utf8_lossy(&log), "taskmanager on 127.0.0.1\n");
    assert_eq!(s.driver.worker_log(&id, 10).await.unwrap(), b"127.0.0.1\n", "its end, at most the limit");
    s.api.deny("get", "pods/log");
    let refused = s.driver.worker_log(&id, 1 << 20).await.unwrap_err();
    assert!(refused.contains("403") && refused.contains("rbac.yaml"), "{refused}");
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_job_managers_predecessor_pods_are_deleted_without_a_report() {
    // The pod an earlier JobManager attempt (0) made, as the new one (attempt 1) finds it.
    let mut s = setup_with(4000, 8 << 30, Duration::from_secs(30), |c| c.attempt = 1).await;
    let old =
        am::drivers::kubernetes::pod::taskmanager_pod(&s.template, "yf-test-taskmanager-0-7", &spec(1000, 512), "s");
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(s.api.client(), NAMESPACE);
    pods.create(&kube::api::PostParams::default(), &old).await.unwrap();
    until(&s, "the predecessor's pod to go", |s| s.api.pod(NAMESPACE, "yf-test-taskmanager-0-7").is_none()).await;
    // Not a worker of this attempt: nothing is reported for it.
    quiet(&mut s, Duration::from_millis(500)).await;
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_goes_while_the_watch_is_broken_is_found_by_the_relist_once() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(30)).await;
    s.driver.request_worker(&spec(1000, 512));
    s.driver.request_worker(&spec(1000, 512));
    let (a, b) = (started(&mut s).await, started(&mut s).await);
    until(&s, "both pods to run", |s| s.running(&a) && s.running(&b)).await;
    // The watch ends with 410 and cannot be reopened for a while; meanwhile
    // pod a is force-deleted, so its DELETED event reaches no watch.
    s.api.deny("watch", "pods");
    s.api.deny("list", "pods");
    s.api.break_watches();
    let pod_a = a.as_str().to_owned();
    {
        let st = &s.api.shared;
        let mut state = st.state.lock().unwrap();
        state.pods.remove(&(NAMESPACE.to_owned(), pod_a.clone()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.api.allow("watch", "pods");
    s.api.allow("list", "pods");
    let (gone, why) = terminated(&mut s).await;
    assert_eq!(gone, a, "only the pod that went: {why}");
    assert!(why.contains("was deleted"), "{why}");
    // b was listed again: not reported, not doubled.
    quiet(&mut s, Duration::from_secs(2)).await;
    assert!(s.running(&b));
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_pod_fails_the_request_with_each_field_and_the_fix() {
    let mut s =
        setup_with(4000, 8 << 30, Duration::from_secs(30), |c| c.template.cluster_id = "Bad_Cluster".into()).await;
    s.driver.request_worker(&spec(1000, 512));
    match next(&mut s.events).await {
        DriverEvent::WorkerRequestFailed { reason, .. } => {
            assert!(reason.contains("422 Invalid"), "{reason}");
            assert!(reason.contains("metadata.name: Invalid value: \"yf-Bad_Cluster-taskmanager-1-1\""), "{reason}");
            assert!(reason.contains("check --image, the cluster id"), "names the fix: {reason}");
        }
        other => panic!("{other:?}"),
    }
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_create_names_the_verb_the_resource_and_the_role_to_apply() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(30)).await;
    s.api.deny("create", "pods");
    s.driver.request_worker(&spec(1000, 512));
    match next(&mut s.events).await {
        DriverEvent::WorkerRequestFailed { reason, .. } => {
            assert!(reason.contains("cannot create resource \"pods\""), "{reason}");
            assert!(reason.contains("rbac.yaml"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    s.driver.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_leaves_no_pod_and_no_process() {
    let mut s = setup(4000, 8 << 30, Duration::from_secs(30)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        s.driver.request_worker(&spec(1000, 512));
        ids.push(started(&mut s).await);
    }
    until(&s, "the pods to run", |s| ids.iter().all(|id| s.running(id))).await;
    tokio::time::timeout(Duration::from_secs(20), s.driver.terminate()).await.expect("terminate ends");
    assert!(s.api.pod_names(NAMESPACE).is_empty(), "{:?}", s.api.pod_names(NAMESPACE));
    assert!(ids.iter().all(|id| s.kubelet.pid(NAMESPACE, id.as_str()).is_none()));
}
