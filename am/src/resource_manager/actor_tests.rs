//! The ResourceManager actor under a paused clock (`tokio::time::pause`):
//! heartbeat timeouts and idle releases happen in virtual time, with no
//! real waiting and no polling. The decisions themselves are the
//! SlotManager's (transcripts in `slot_manager/tests.rs`); these check that
//! the actor feeds it time, heartbeats and registrations, and carries out
//! what it decides.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ids::{InstanceId, ResourceId};
use common::protocol::{RegisterTaskExecutor, SlotReport};
use common::resources::{ResourceProfile, MIB};
use common::rpc::{AppSecret, Channels, RpcTimeouts};
use tokio::sync::{mpsc, oneshot};

use super::actor::{spawn, ResourceManagerHandle, RmMsg};
use super::driver::{DriverEvent, ResourceManagerDriver};
use super::slot_manager::SlotManagerConfig;
use super::worker::WorkerSpec;
use super::ResourceManagerConfig;

/// Records what the ResourceManager asks of it.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn log(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ResourceManagerDriver for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn request_worker(&mut self, spec: &WorkerSpec) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(format!("request {}", spec.total));
    }
    fn cancel_request(&mut self, spec: &WorkerSpec) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(format!("cancel {}", spec.total));
    }
    fn release_worker(&mut self, id: &ResourceId) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(format!("release {id}"));
    }
    fn terminate(&mut self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);
const IDLE: Duration = Duration::from_secs(30);

fn start() -> (ResourceManagerHandle, Recorder, mpsc::UnboundedSender<DriverEvent>) {
    let config = ResourceManagerConfig {
        slot_manager: SlotManagerConfig { idle_timeout: IDLE, ..SlotManagerConfig::default() },
        heartbeat_interval: INTERVAL,
        heartbeat_timeout: TIMEOUT,
        rpc: RpcTimeouts::default(),
    };
    let recorder = Recorder::default();
    let (events_tx, events) = mpsc::unbounded_channel();
    let channels = Channels::new(AppSecret::generate(), RpcTimeouts::default());
    let (handle, _join) = spawn(config, common::ids::ResourceManagerId::random(), channels, recorder.clone(), events);
    (handle, recorder, events_tx)
}

async fn register(rm: &ResourceManagerHandle, name: &str) -> InstanceId {
    let reg = RegisterTaskExecutor {
        resource_id: ResourceId::new(name),
        address: "127.0.0.1:1".into(),
        data_address: "127.0.0.1:2".into(),
        metrics_address: None,
        total_resources: ResourceProfile::new(1000, 512 * MIB),
        default_slot_profile: ResourceProfile::new(1000, 512 * MIB),
        num_slots: 1,
    };
    let (reply, rx) = oneshot::channel();
    let _ = rm.sender().send(RmMsg::Register(reg, SlotReport::default(), reply));
    rx.await.expect("the ResourceManager answers a registration").1
}

async fn heartbeat(rm: &ResourceManagerHandle, name: &str, instance_id: InstanceId) -> bool {
    let (reply, rx) = oneshot::channel();
    let _ = rm.sender().send(RmMsg::Heartbeat {
        resource_id: ResourceId::new(name),
        instance_id,
        report: SlotReport::default(),
        report_version: 0,
        reply,
    });
    rx.await.expect("the ResourceManager answers a heartbeat")
}

async fn registered(rm: &ResourceManagerHandle) -> usize {
    rm.overview().await.map(|o| o.slots.task_managers.len()).unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn a_silent_task_executor_is_lost_at_the_heartbeat_timeout_and_its_worker_released() {
    let (rm, driver, _events) = start();
    let id = register(&rm, "tm-1").await;
    // Heartbeating: kept, for longer than the timeout.
    for _ in 0..15 {
        assert!(heartbeat(&rm, "tm-1", id).await);
        tokio::time::sleep(INTERVAL).await;
    }
    assert_eq!(registered(&rm).await, 1);
    // Silent: still there just before the timeout, gone after it.
    tokio::time::sleep(TIMEOUT - INTERVAL * 2).await;
    assert_eq!(registered(&rm).await, 1, "lost before its timeout");
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(registered(&rm).await, 0);
    assert_eq!(driver.log(), ["release tm-1"]);
    // Counted for /metrics (yarn_flink_heartbeat_misses): once.
    let o = rm.overview().await.unwrap();
    assert_eq!(o.heartbeat_misses, 1);
    assert!(crate::metrics::render(&o, &[]).contains("yarn_flink_heartbeat_misses_total 1"));
    // Its next heartbeat is refused, so it registers again.
    assert!(!heartbeat(&rm, "tm-1", id).await);
}

#[tokio::test(start_paused = true)]
async fn an_idle_task_executor_is_released_after_the_idle_timeout_not_before() {
    let (rm, driver, _events) = start();
    let id = register(&rm, "tm-1").await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < IDLE - INTERVAL * 2 {
        assert!(heartbeat(&rm, "tm-1", id).await);
        tokio::time::sleep(INTERVAL).await;
    }
    assert!(driver.log().is_empty(), "released before the idle timeout: {:?}", driver.log());
    while started.elapsed() < IDLE + INTERVAL * 3 {
        heartbeat(&rm, "tm-1", id).await;
        tokio::time::sleep(INTERVAL).await;
    }
    assert_eq!(driver.log(), ["release tm-1"]);
    assert_eq!(registered(&rm).await, 0);
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_dies_before_registering_is_asked_for_again_while_the_job_needs_it() {
    let (rm, driver, events) = start();
    let job = common::ids::JobId::random();
    let (notices, _notices_rx) = mpsc::unbounded_channel();
    rm.register_job_master(job, common::ids::JobMasterId::random(), "127.0.0.1:3".into(), notices);
    let need = common::protocol::ResourceRequirement {
        profile: common::resources::RequestedProfile::Exact(ResourceProfile::new(1000, 512 * MIB)),
        count: 1,
    };
    rm.declare(job, vec![need]);
    tokio::time::sleep(INTERVAL).await;
    let asked = driver.log();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let spec = rm.overview().await.and_then(|o| o.slots.pending_workers.first().map(|(s, _)| s.clone()));
    let spec = spec.expect("one worker pending");
    let _ = events.send(DriverEvent::WorkerRequestFailed { spec, reason: "the container exited at once".into() });
    tokio::time::sleep(INTERVAL).await;
    let log = driver.log();
    assert_eq!(log.len(), 2, "asked again: {log:?}");
    assert_eq!(log[0], log[1]);
    let o = rm.overview().await.unwrap();
    assert_eq!(o.failed_worker_requests, 1, "counted for yarn_flink_worker_requests_failed");
    assert!(crate::metrics::render(&o, &[]).contains("yarn_flink_workers_pending 1"), "asked again: pending");
}

/// A worker its cluster manager started (a Mesos task RUNNING) whose
/// TaskExecutor never registers is released and counted as a failed request.
#[tokio::test(start_paused = true)]
async fn a_started_worker_that_never_registers_is_released_as_a_failed_request() {
    let (rm, recorder, events) = start();
    let spec = WorkerSpec::uniform(ResourceProfile::new(1000, 512 * MIB), 1);
    events.send(DriverEvent::WorkerStarted { resource_id: ResourceId::new("w1"), spec }).unwrap();
    tokio::time::sleep(super::actor::WORKER_REGISTRATION_TIMEOUT - Duration::from_secs(5)).await;
    assert!(!recorder.log().contains(&"release w1".to_string()), "{:?}", recorder.log());
    assert_eq!(rm.overview().await.map(|o| o.failed_worker_requests), Some(0));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(recorder.log().contains(&"release w1".to_string()), "{:?}", recorder.log());
    assert_eq!(rm.overview().await.map(|o| o.failed_worker_requests), Some(1));
}
