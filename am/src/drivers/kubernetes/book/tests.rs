//! Transcripts: what the apiserver and the watch said, and what the book
//! decided.

use super::*;
use common::resources::{ResourceProfile, MIB};

fn spec(cpu: u64) -> WorkerSpec {
    WorkerSpec::uniform(ResourceProfile::new(cpu, 512 * MIB), 1)
}

fn book() -> PodBook {
    PodBook::new("demo", 1, Duration::from_secs(30))
}

fn name_of(d: &Decision) -> String {
    match d {
        Decision::Create { name, .. } | Decision::Delete { name } => name.clone(),
        Decision::Emit(e) => format!("{e:?}"),
    }
}

fn terminated(ds: &[Decision]) -> Vec<(String, String)> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Emit(DriverEvent::WorkerTerminated { resource_id, diagnostics }) => {
                Some((resource_id.as_str().to_owned(), diagnostics.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_created_pod_is_a_started_worker_once() {
    let mut b = book();
    let create = b.request(&spec(1000));
    assert_eq!(name_of(&create), "yf-demo-taskmanager-1-1");
    let started = b.created("yf-demo-taskmanager-1-1");
    assert!(
        matches!(&started[..], [Decision::Emit(DriverEvent::WorkerStarted { resource_id, .. })] if resource_id.as_str() == "yf-demo-taskmanager-1-1")
    );
    // The watch reports the same pod many times: nothing more happens.
    let now = Instant::now();
    assert!(b.observed(now, "yf-demo-taskmanager-1-1", Observed::Pending { waiting: None }).is_empty());
    assert!(b.observed(now, "yf-demo-taskmanager-1-1", Observed::Bound { waiting: None }).is_empty());
    assert!(b.created("yf-demo-taskmanager-1-1").is_empty());
}

#[test]
fn a_name_taken_by_an_earlier_attempt_is_retried_under_the_next() {
    let mut b = book();
    b.request(&spec(1000));
    let again = b.create_failed("yf-demo-taskmanager-1-1", true, "AlreadyExists".into());
    assert!(matches!(&again[..], [Decision::Create { name, .. }] if name == "yf-demo-taskmanager-1-2"));
}

#[test]
fn a_refused_pod_fails_the_request_with_the_apiservers_words() {
    let mut b = book();
    b.request(&spec(1000));
    let out = b.create_failed("yf-demo-taskmanager-1-1", false, "pods is forbidden".into());
    assert!(
        matches!(&out[..], [Decision::Emit(DriverEvent::WorkerRequestFailed { reason, .. })] if reason == "pods is forbidden")
    );
    assert_eq!(b.live(), 0);
}

#[test]
fn an_ended_pod_is_terminated_once_and_deleted() {
    let mut b = book();
    b.request(&spec(1000));
    b.created("yf-demo-taskmanager-1-1");
    let now = Instant::now();
    let why = "pod yf-demo-taskmanager-1-1 failed: container taskmanager terminated: OOMKilled (exit code 137)";
    let out = b.observed(now, "yf-demo-taskmanager-1-1", Observed::Ended(why.into()));
    assert_eq!(terminated(&out), vec![("yf-demo-taskmanager-1-1".into(), why.into())]);
    assert!(out.contains(&Decision::Delete { name: "yf-demo-taskmanager-1-1".into() }));
    // Our delete shows as Deleting, then DELETED: already reported.
    assert!(b.observed(now, "yf-demo-taskmanager-1-1", Observed::Deleting).is_empty());
    assert!(b.deleted("yf-demo-taskmanager-1-1").is_empty());
    assert_eq!(b.live(), 0);
}

#[test]
fn a_pod_deleted_by_someone_else_is_terminated_when_it_starts_terminating() {
    let mut b = book();
    b.request(&spec(1000));
    b.created("yf-demo-taskmanager-1-1");
    let out = b.observed(Instant::now(), "yf-demo-taskmanager-1-1", Observed::Deleting);
    assert_eq!(terminated(&out).len(), 1);
    assert!(!out.iter().any(|d| matches!(d, Decision::Delete { .. })), "already being deleted");
    assert!(b.deleted("yf-demo-taskmanager-1-1").is_empty());
}

#[test]
fn an_unschedulable_pod_is_given_up_after_the_timeout_with_the_schedulers_message() {
    let mut b = book();
    b.request(&spec(64_000));
    b.created("yf-demo-taskmanager-1-1");
    let t0 = Instant::now();
    let msg = "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.";
    b.observed(t0, "yf-demo-taskmanager-1-1", Observed::Pending { waiting: Some(msg.into()) });
    assert!(b.tick(t0 + Duration::from_secs(29)).is_empty());
    // A newer message does not restart the clock.
    b.observed(
        t0 + Duration::from_secs(20),
        "yf-demo-taskmanager-1-1",
        Observed::Pending { waiting: Some(msg.into()) },
    );
    let out = b.tick(t0 + Duration::from_secs(30));
    let t = terminated(&out);
    assert_eq!(t.len(), 1);
    let why = &t[0].1;
    assert!(why.contains("fits on no node: not scheduled within 30 s") && why.contains("Insufficient cpu"), "{why}");
    assert!(why.contains("lower the vertex's resources"), "the fix, as the other backends word it: {why}");
    assert!(out.contains(&Decision::Delete { name: "yf-demo-taskmanager-1-1".into() }));
    assert!(b.tick(t0 + Duration::from_secs(60)).is_empty(), "once");
}

#[test]
fn a_pod_that_gets_scheduled_in_time_is_not_given_up() {
    let mut b = book();
    b.request(&spec(1000));
    b.created("yf-demo-taskmanager-1-1");
    let t0 = Instant::now();
    b.observed(t0, "yf-demo-taskmanager-1-1", Observed::Pending { waiting: Some("Unschedulable: no nodes".into()) });
    b.observed(t0 + Duration::from_secs(5), "yf-demo-taskmanager-1-1", Observed::Bound { waiting: None });
    assert!(b.tick(t0 + Duration::from_secs(300)).is_empty());
}

#[test]
fn a_relist_finds_a_pod_whose_deleted_event_was_lost() {
    let mut b = book();
    let now = Instant::now();
    for _ in 0..2 {
        b.request(&spec(1000));
    }
    b.created("yf-demo-taskmanager-1-1");
    b.created("yf-demo-taskmanager-1-2");
    // The watch breaks; the pod 1-1 went away meanwhile.
    b.relist_started();
    b.listed(now, "yf-demo-taskmanager-1-2", Observed::Bound { waiting: None });
    let out = b.relist_done();
    assert_eq!(terminated(&out).iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), vec!["yf-demo-taskmanager-1-1"]);
    // A second relist that lists 1-2 again changes nothing: not doubled.
    b.relist_started();
    b.listed(now, "yf-demo-taskmanager-1-2", Observed::Bound { waiting: None });
    assert!(b.relist_done().is_empty());
    assert_eq!(b.live(), 1);
}

#[test]
fn a_pod_created_while_a_relist_runs_is_not_taken_for_gone() {
    let mut b = book();
    b.relist_started();
    b.request(&spec(1000));
    // The list was taken before the pod existed; its 201 comes first.
    b.created("yf-demo-taskmanager-1-1");
    assert!(b.relist_done().is_empty());
    // The next relist must see it.
    b.relist_started();
    assert_eq!(terminated(&b.relist_done()).len(), 1);
}

#[test]
fn a_request_cancelled_in_flight_is_deleted_on_creation_without_a_start() {
    let mut b = book();
    b.request(&spec(1000));
    b.cancel(&spec(1000));
    assert_eq!(b.created("yf-demo-taskmanager-1-1"), vec![Decision::Delete { name: "yf-demo-taskmanager-1-1".into() }]);
    assert!(b.deleted("yf-demo-taskmanager-1-1").is_empty());
}

#[test]
fn terminate_deletes_every_pod_and_waits_for_each() {
    let mut b = book();
    for _ in 0..3 {
        b.request(&spec(1000));
    }
    b.created("yf-demo-taskmanager-1-1");
    b.created("yf-demo-taskmanager-1-2");
    let out = b.terminate();
    assert_eq!(out.len(), 2, "the one still being created is deleted when its 201 comes");
    assert_eq!(b.created("yf-demo-taskmanager-1-3"), vec![Decision::Delete { name: "yf-demo-taskmanager-1-3".into() }]);
    for n in 1..=3 {
        b.deleted(&format!("yf-demo-taskmanager-1-{n}"));
    }
    assert_eq!(b.live(), 0);
}

/// The watch can beat the POST's 201: the scheduler's verdict arrives while the
/// pod is still "creating" to the book. It must still count toward the timeout
/// (seen with the kube-apiserver double: the fourth of five Unschedulable pods
/// waited forever, and so did the job).
#[test]
fn a_verdict_seen_before_the_201_still_times_out() {
    let mut b = book();
    b.request(&spec(16000));
    let t0 = Instant::now();
    let why = "Unschedulable: 0/1 nodes are available: 1 Insufficient cpu.";
    assert!(b.observed(t0, "yf-demo-taskmanager-1-1", Observed::Pending { waiting: Some(why.into()) }).is_empty());
    assert_eq!(b.created("yf-demo-taskmanager-1-1").len(), 1, "WorkerStarted");
    // No further event comes: the scheduler said it once.
    let out = b.tick(t0 + Duration::from_secs(31));
    let t = terminated(&out);
    assert_eq!(t.len(), 1, "{out:?}");
    assert!(t[0].1.contains(why), "{}", t[0].1);
}

/// A pod that ended, or was deleted, before the 201 was read: the worker is
/// reported started, then terminated, never the other way round, so the
/// ResourceManager does not keep waiting for it.
#[test]
fn an_end_seen_before_the_201_comes_after_the_start() {
    for deleted in [false, true] {
        let mut b = book();
        b.request(&spec(1000));
        let name = "yf-demo-taskmanager-1-1";
        let early = if deleted {
            b.deleted(name)
        } else {
            b.observed(Instant::now(), name, Observed::Ended("pod failed: Error (exit code 1)".into()))
        };
        assert!(early.is_empty(), "nothing before the 201: {early:?}");
        let out = b.created(name);
        assert!(matches!(out.first(), Some(Decision::Emit(DriverEvent::WorkerStarted { .. }))), "{out:?}");
        assert_eq!(terminated(&out).len(), 1, "{out:?}");
        assert!(b.deleted(name).is_empty(), "reported once");
    }
}

/// A restarted JobManager (a new attempt) finds its predecessor's TaskManager
/// pods in the first list: they can never register with it, so they go, once.
#[test]
fn a_predecessors_pods_are_deleted_once() {
    let mut b = book(); // attempt 1
    let now = Instant::now();
    b.relist_started();
    let old = "yf-demo-taskmanager-0-3";
    let out = b.listed(now, old, Observed::Bound { waiting: None });
    assert_eq!(out, vec![Decision::Delete { name: old.into() }]);
    assert!(b.observed(now, old, Observed::Deleting).is_empty(), "deleted once");
    assert!(b.relist_done().is_empty(), "not a worker of ours: nothing to report");
    assert!(b.deleted(old).is_empty());
    // Another cluster's pods, or an unknown pod of our own attempt, are left alone.
    assert!(b.observed(now, "yf-other-taskmanager-0-1", Observed::Bound { waiting: None }).is_empty());
    assert!(b.observed(now, "yf-demo-taskmanager-1-99", Observed::Bound { waiting: None }).is_empty());
}
