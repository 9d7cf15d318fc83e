//! The `yarn` ResourceManagerDriver against the IPC ResourceManager and
//! NodeManager doubles (book-keeping only: no process is started): one
//! priority and allocation request id per worker spec, launch contexts,
//! up-front refusal of oversized asks, surplus containers, completions,
//! releases, progress, a rolled AMRMToken and terminate.

use std::collections::BTreeMap;
use std::time::Duration;

use am::drivers::yarn::task_manager_command;
use am::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use common::ids::ResourceId;
use hadoop::ipc::RetryPolicy;
use hadoop::yarn::{FinalStatus, Resource};
use integration_tests::hadoop_ipc_server::yarn::ResourceManager;

mod in_process;
use in_process::yarn::*;

#[tokio::test]
async fn each_worker_spec_gets_its_own_priority_and_containers_of_its_size() {
    let mut s = setup().await;
    let (small, big) = (spec(500, 256), spec(2000, 2048));
    s.driver.request_worker(&small);
    s.driver.request_worker(&big);
    s.driver.request_worker(&small);
    let mut started = BTreeMap::new();
    for _ in 0..3 {
        match next(&mut s.events).await {
            DriverEvent::WorkerStarted { resource_id, spec } => started.insert(resource_id, spec),
            other => panic!("{other:?}"),
        };
    }
    assert_eq!(started.values().filter(|w| **w == small).count(), 2);
    assert_eq!(started.values().filter(|w| **w == big).count(), 1);

    let state = s.rm.state.lock().unwrap();
    let asks: Vec<_> = state.asks_seen.iter().filter(|a| a.3 > 0).cloned().collect();
    let small_ask = asks.iter().find(|a| a.2 == Resource::new(256, 1)).expect("a small ask");
    let big_ask = asks.iter().find(|a| a.2 == Resource::new(2048, 2)).expect("a big ask");
    assert_ne!((small_ask.0, small_ask.1), (big_ask.0, big_ask.1), "one priority/request id per spec");
    assert_eq!(asks.iter().filter(|a| a.1 == small_ask.1).map(|a| a.3).max(), Some(2), "asks are totals");
    for (container, request_id, size) in &state.allocated_seen {
        let resource_id = ResourceId::new(container.to_string());
        let expected = if *request_id == small_ask.1 { &small } else { &big };
        assert_eq!(started.get(&resource_id), Some(expected), "{container} answers ask {request_id} ({size})");
    }
    drop(state);

    // The launch context: binary localized, TaskManager env, YARN's log dir, our tokens.
    let containers = s.nm.containers.lock().unwrap();
    let (ctx, _) = containers.get(&container_of(started.keys().next().unwrap())).unwrap();
    assert_eq!(ctx.commands, vec![task_manager_command()]);
    assert!(ctx.commands[0].contains("1><LOG_DIR>/taskmanager.out 2><LOG_DIR>/taskmanager.err"));
    assert_eq!(ctx.local_resources, s.config.local_resources);
    assert_eq!(ctx.tokens, **s.config.tokens.borrow());
    assert_eq!(ctx.environment.get("YF_RESOURCE_ID"), Some(&started.keys().next().unwrap().to_string()));
    assert_eq!(ctx.environment.get("YF_SECRET_CREDENTIALS_ALIAS").map(String::as_str), Some("yarn-flink.secret"));
    assert_eq!(ctx.environment.get("YF_RM_ADDRESS").map(String::as_str), Some("127.0.0.1:4242"));
    assert_eq!(ctx.environment.get("YF_TM_HOST").map(String::as_str), Some("127.0.0.1"));
    assert_eq!(ctx.environment.get("RUST_LOG").map(String::as_str), Some("debug"));
    assert!(!ctx.environment.contains_key("YF_SECRET_FILE"));
}

#[tokio::test]
async fn an_ask_above_the_maximum_is_refused_up_front() {
    let mut s = setup().await;
    s.driver.request_worker(&spec(8000, 1024));
    match next(&mut s.events).await {
        DriverEvent::WorkerRequestFailed { reason, .. } => {
            assert!(reason.contains("<memory:1024, vCores:8>"), "{reason}");
            assert!(reason.contains("<memory:4096, vCores:4>"), "{reason}");
            assert!(reason.contains("maximum-allocation-vcores"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.rm.state.lock().unwrap().asks_seen.is_empty(), "nothing was asked of YARN");
}

#[tokio::test]
async fn completions_releases_surplus_progress_and_terminate() {
    let mut s = setup().await;
    s.driver.request_worker(&spec(1000, 512));
    s.driver.request_worker(&spec(1000, 512));
    let mut ids = Vec::new();
    for _ in 0..2 {
        match next(&mut s.events).await {
            DriverEvent::WorkerStarted { resource_id, .. } => ids.push(resource_id),
            other => panic!("{other:?}"),
        }
    }

    // A container that completes is a terminated worker, with YARN's exit status and diagnostics.
    s.rm.complete(container_of(&ids[0]), 137, "Container killed on request. Exit code is 137");
    match next(&mut s.events).await {
        DriverEvent::WorkerTerminated { resource_id, diagnostics } => {
            assert_eq!(resource_id, ids[0]);
            assert!(
                diagnostics.contains("exit status 137") && diagnostics.contains("Exit code is 137"),
                "{diagnostics}"
            );
        }
        other => panic!("{other:?}"),
    }

    // A container nobody asked for goes straight back.
    s.rm.state.lock().unwrap().outstanding.insert((77, 77, Resource::new(128, 1)), 1);
    let rm = s.rm.clone();
    eventually("the surplus container to be released", || {
        let st = rm.state.lock().unwrap();
        st.allocated_seen.iter().any(|(id, req, _)| *req == 77 && st.released.contains(id))
    })
    .await;

    // Progress travels with the heartbeats; a rolled AMRMToken is taken up.
    s.am.progress.set(0.5);
    eventually("progress 0.5", || rm.state.lock().unwrap().last_progress == Some(0.5)).await;
    s.rm.roll_amrm_token();
    let calls = s.rm.state.lock().unwrap().callers.len();
    eventually("heartbeats after the roll", || rm.state.lock().unwrap().callers.len() > calls + 2).await;

    // Release: given back to the RM and stopped on its node.
    s.driver.release_worker(&ids[1]);
    let released = container_of(&ids[1]);
    eventually("the release", || rm.state.lock().unwrap().released.contains(&released)).await;
    let nm = s.nm.clone();
    eventually("stopContainers", || {
        nm.containers
            .lock()
            .unwrap()
            .get(&released)
            .is_some_and(|c| c.1 != hadoop::proto::yarn::ContainerStateProto::CRunning)
    })
    .await;

    // Terminate gives everything back, then the AM can unregister.
    s.driver.request_worker(&spec(1000, 512));
    let last = match next(&mut s.events).await {
        DriverEvent::WorkerStarted { resource_id, .. } => container_of(&resource_id),
        other => panic!("{other:?}"),
    };
    tokio::time::timeout(Duration::from_secs(10), s.driver.terminate()).await.unwrap();
    assert!(s.rm.state.lock().unwrap().released.contains(&last));
    assert!(s.rm.state.lock().unwrap().live.is_empty());
    s.am.finish(FinalStatus::Succeeded, "done", None).await.unwrap();
    let st = s.rm.state.lock().unwrap();
    assert!(st.unregistered);
    assert_eq!(st.final_diagnostics.as_deref(), Some("done"));
}

#[tokio::test]
async fn a_resource_manager_that_stops_answering_is_fatal_and_the_am_hears_of_it() {
    let mut s = setup().await;
    s._servers.1.set_standby(true);
    match next(&mut s.events).await {
        DriverEvent::Fatal(reason) => {
            assert!(reason.contains("allocate heartbeats") && reason.contains("scheduler.address"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    tokio::time::timeout(Duration::from_secs(5), s.am.lost()).await.expect("the AM hears the driver gave up");
    assert!(s.am.lost_reason().is_some_and(|r| r.contains("allocate heartbeats")));
    // The allocate loop has ended: terminate does not hang.
    tokio::time::timeout(Duration::from_secs(5), s.driver.terminate()).await.unwrap();
}

/// Real-cluster report, point 3: an ask nobody needs any more stayed
/// outstanding on a full queue. A cancelled request lowers the absolute ask,
/// never below zero.
#[tokio::test]
async fn a_cancelled_request_lowers_the_outstanding_ask() {
    let mut s = setup_with(Some((0, 0))).await;
    let w = spec(1000, 1024);
    let asked = |rm: &ResourceManager| rm.state.lock().unwrap().asks_seen.last().map(|a| a.3);
    s.driver.request_worker(&w);
    s.driver.request_worker(&w);
    eventually("an ask for 2", || asked(&s.rm) == Some(2)).await;
    s.driver.cancel_request(&w);
    eventually("the ask down to 1", || asked(&s.rm) == Some(1)).await;
    s.driver.cancel_request(&w);
    s.driver.cancel_request(&w);
    eventually("the ask down to 0", || asked(&s.rm) == Some(0)).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(s.rm.state.lock().unwrap().asks_seen.iter().all(|a| a.3 >= 0));
    assert!(s.rm.state.lock().unwrap().allocated_seen.is_empty(), "a full queue grants nothing");
    assert!(s.events.try_recv().is_err(), "no worker started or failed");
}

/// Issue 9: the allocator awaited allocate() in its loop, so while the RM
/// failed over (retries that can take minutes) no command was carried out.
/// Now the allocate runs on its own task: a release during a stuck allocate
/// stops the container on its node at once, and goes to the RM with the next
/// allocate that gets through.
#[tokio::test]
async fn a_release_during_a_stuck_allocate_is_carried_out_at_once() {
    // A standby RM keeps each allocate retrying for about 4 s.
    let slow =
        RetryPolicy { max_retries: 40, min_delay: Duration::from_millis(100), max_delay: Duration::from_millis(100) };
    let mut s = setup_retrying(None, slow).await;
    s.driver.request_worker(&spec(1000, 512));
    let id = match next(&mut s.events).await {
        DriverEvent::WorkerStarted { resource_id, .. } => resource_id,
        other => panic!("{other:?}"),
    };
    let container = container_of(&id);
    s._servers.1.set_standby(true);
    // Let the next heartbeat start and get stuck.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    s.driver.release_worker(&id);
    let nm = s.nm.clone();
    let stopped = || {
        nm.containers
            .lock()
            .unwrap()
            .get(&container)
            .is_some_and(|c| c.1 != hadoop::proto::yarn::ContainerStateProto::CRunning)
    };
    while !stopped() {
        assert!(started.elapsed() < Duration::from_secs(2), "the release waited for the stuck allocate");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!s.rm.state.lock().unwrap().released.contains(&container), "the RM is standby: nothing got through");
    s._servers.1.set_standby(false);
    let rm = s.rm.clone();
    eventually("the release to reach the RM", || rm.state.lock().unwrap().released.contains(&container)).await;
    tokio::time::timeout(Duration::from_secs(15), s.driver.terminate()).await.unwrap();
}
