//! The ResourceManager with a driver whose workers die before they register:
//! each death counts as a failed request, the worker is asked for again, and
//! after `max_failed_worker_requests` the job fails with a clear cause instead
//! of waiting forever. In-process, with a fake driver.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use am::cluster::{Cluster, ClusterConfig};
use am::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use am::resource_manager::slot_manager::SlotManagerConfig;
use am::resource_manager::worker::WorkerSpec;
use am::resource_manager::ResourceManagerConfig;
use common::ids::ResourceId;
use common::jobspec::Bundle;
use common::rpc::{AppSecret, RpcTimeouts};
use tokio::sync::mpsc;

/// Every worker it starts dies at once, before registering.
struct DyingWorkers {
    events: mpsc::UnboundedSender<DriverEvent>,
    requests: Arc<Mutex<u32>>,
}

impl ResourceManagerDriver for DyingWorkers {
    fn name(&self) -> &'static str {
        "dying"
    }
    fn request_worker(&mut self, spec: &WorkerSpec) {
        let n = {
            let mut r = self.requests.lock().unwrap();
            *r += 1;
            *r
        };
        let resource_id = ResourceId::new(format!("w-{n}"));
        let _ = self.events.send(DriverEvent::WorkerStarted { resource_id: resource_id.clone(), spec: spec.clone() });
        let diagnostics = "exit code 127: localization failed".to_owned();
        let _ = self.events.send(DriverEvent::WorkerTerminated { resource_id, diagnostics });
    }
    fn cancel_request(&mut self, _: &WorkerSpec) {}
    fn release_worker(&mut self, _: &ResourceId) {}
    fn terminate(&mut self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_dying_before_registration_fail_the_job_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("job.toml"), "[[vertex]]\nname = \"a\"\nshell = \"true\"\n").unwrap();
    let bundle = Bundle::load(tmp.path(), tmp.path().join("unpacked"), &Default::default()).unwrap();
    let config = ClusterConfig {
        resource_manager: ResourceManagerConfig {
            slot_manager: SlotManagerConfig { max_failed_worker_requests: 3, ..SlotManagerConfig::default() },
            heartbeat_interval: Duration::from_millis(100),
            heartbeat_timeout: Duration::from_secs(2),
            rpc: RpcTimeouts::default(),
        },
        secret: AppSecret::generate(),
        rpc: RpcTimeouts::default(),
        work_dir: tmp.path().to_owned(),
        bundle_limits: Default::default(),
        web_proxies: Vec::new(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let requests = Arc::new(Mutex::new(0));
    let driver = DyingWorkers { events: tx, requests: requests.clone() };
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cluster = Cluster::start(config, rpc, None, driver, rx).await.unwrap();
    let job = cluster.dispatcher.submit(bundle).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(20), cluster.dispatcher.wait(job))
        .await
        .expect("the job must fail, not wait forever")
        .unwrap();
    assert_eq!(end.state, "FAILED");
    let cause = end.error.unwrap_or_default();
    assert!(cause.contains("fail"), "the cause should say the workers failed: {cause}");
    assert_eq!(*requests.lock().unwrap(), 3, "one request per allowed failure");
    cluster.shutdown().await;
}
