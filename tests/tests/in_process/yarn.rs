//! The `yarn` driver against the IPC ResourceManager and NodeManager doubles
//! (book-keeping only: no process is started), shared by `yarn_driver.rs`
//! and `driver_suite.rs`.
#![allow(dead_code)] // each test binary uses its part

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use am::drivers::yarn::{self, YarnDriverConfig};
use am::resource_manager::driver::DriverEvent;
use am::resource_manager::worker::WorkerSpec;
use common::ids::ResourceId;
use common::resources::{ResourceProfile, MIB};
use hadoop::ipc::RetryPolicy;
use hadoop::yarn::amrm::{AmRmClient, AmRmConfig};
use hadoop::yarn::nm::NmClient;
use hadoop::yarn::{
    ApplicationAttemptId, ApplicationId, ContainerId, LocalResource, LocalResourceType, LocalResourceVisibility,
    NodeId, Resource, YarnUrl,
};
use integration_tests::hadoop_ipc_server::capacity::Capacity;
use integration_tests::hadoop_ipc_server::sasl::SecretManager;
use integration_tests::hadoop_ipc_server::yarn::{NodeManager, ResourceManager, RmConfig};
use integration_tests::hadoop_ipc_server::{self as server, ServerConfig, ServerHandle};
use tokio::sync::mpsc;

pub fn attempt() -> ApplicationAttemptId {
    ApplicationAttemptId { application: ApplicationId { cluster_timestamp: 1795750141222, id: 1 }, attempt: 1 }
}

pub struct Setup {
    pub rm: Arc<ResourceManager>,
    pub nm: Arc<NodeManager>,
    pub driver: yarn::YarnDriver,
    pub am: yarn::YarnAm,
    pub events: mpsc::UnboundedReceiver<DriverEvent>,
    pub config: YarnDriverConfig,
    pub _servers: (ServerHandle, ServerHandle),
}

pub async fn setup() -> Setup {
    setup_with(None).await
}

/// `room`: the node's (memory MB, vcores) when the cluster is bounded.
pub async fn setup_with(room: Option<(i64, i32)>) -> Setup {
    let fast =
        RetryPolicy { max_retries: 2, min_delay: Duration::from_millis(5), max_delay: Duration::from_millis(20) };
    setup_retrying(room, fast).await
}

/// `retry`: how the AM's scheduler client retries a failing call.
pub async fn setup_retrying(room: Option<(i64, i32)>, retry: RetryPolicy) -> Setup {
    let secrets = SecretManager::random();
    let nm = Arc::new(NodeManager::default());
    let nm_server = server::start(
        ServerConfig::default().with_sasl(secrets.digest_md5()).with_handler(hadoop::yarn::nm::PROTOCOL, nm.clone()),
    )
    .await
    .unwrap();
    let node = NodeId { host: "127.0.0.1".into(), port: i32::from(nm_server.addr().port()) };
    let rm = ResourceManager::new(
        RmConfig {
            attempt: attempt(),
            minimum_allocation: Resource::new(128, 1),
            maximum_allocation: Resource::new(4096, 4),
            nodes: vec![node.clone()],
            node_http_addresses: Vec::new(),
            containers_per_allocate: 8,
            finish_pending_calls: 1,
            capacity: room.map(|r| Arc::new(Capacity::new(&[node], r))),
        },
        secrets.clone(),
    );
    let rm_server = server::start(
        ServerConfig::default().with_sasl(secrets.digest_md5()).with_handler(hadoop::yarn::amrm::PROTOCOL, rm.clone()),
    )
    .await
    .unwrap();
    let mut amrm = AmRmConfig::new(vec![rm_server.addr().to_string()]);
    amrm.retry = retry;
    amrm.finish_poll_interval = Duration::from_millis(1);
    let mut client = AmRmClient::new(amrm, rm.amrm_token());
    let reg = client.register("127.0.0.1", 4242, "http://127.0.0.1:1/").await.unwrap();
    let mut config = YarnDriverConfig::new("127.0.0.1:4242".into(), reg.maximum_capability);
    config.max_allocate_failures = 3;
    config.fast_heartbeat = Duration::from_millis(10);
    config.slow_heartbeat = Duration::from_millis(40);
    config.tokens = tokio::sync::watch::channel(std::sync::Arc::new(b"HDTS\0\0\0".to_vec())).1;
    config.env = BTreeMap::from([("RUST_LOG".to_string(), "debug".to_string())]);
    config.local_resources = BTreeMap::from([(
        "yarn-flink".to_string(),
        LocalResource {
            url: YarnUrl {
                scheme: "hdfs".into(),
                host: "nn".into(),
                port: Some(8020),
                file: "/s/yarn-flink".into(),
                user_info: None,
            },
            size: 10,
            timestamp: 20,
            kind: LocalResourceType::File,
            visibility: LocalResourceVisibility::Application,
            pattern: None,
        },
    )]);
    let (tx, events) = mpsc::unbounded_channel();
    let (driver, am) = yarn::start(client, NmClient::default(), config.clone(), tx);
    Setup { rm, nm, driver, am, events, config, _servers: (nm_server, rm_server) }
}

pub async fn next(events: &mut mpsc::UnboundedReceiver<DriverEvent>) -> DriverEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv()).await.expect("a driver event in time").unwrap()
}

pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn spec(cpu_millis: u64, mem_mb: u64) -> WorkerSpec {
    WorkerSpec::uniform(ResourceProfile::new(cpu_millis, mem_mb * MIB), 1)
}

pub fn container_of(id: &ResourceId) -> ContainerId {
    id.as_str().parse().unwrap()
}
