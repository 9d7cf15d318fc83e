//! What a control-plane call costs with a channel per call (how every
//! heartbeat, offer, state report and deployment went before issue 9) and
//! with one shared channel per peer (`rpc::Channels`), against real gRPC
//! servers on loopback: a TaskExecutor's heartbeat to a JobMaster (the most
//! frequent call) and to the ResourceManager, and a deployment (a task
//! deployment descriptor, JobMaster -> TaskExecutor; the TaskExecutor answers
//! at once, as it holds no slot for it). Prints microseconds per call and the
//! TCP connections each way opened; asserts nothing.
//!
//! `cargo bench -p am --bench rpc_channels` (or `scripts/bench`).

use std::time::{Duration, Instant};

use am::cluster::{Cluster, ClusterConfig};
use am::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use am::resource_manager::worker::WorkerSpec;
use am::resource_manager::ResourceManagerConfig;
use common::ids::ResourceId;
use common::rpc::{self, pb, AppSecret, Channels, RpcTimeouts};

const CALLS: u32 = 2_000;

struct NoWorkers;

impl ResourceManagerDriver for NoWorkers {
    fn name(&self) -> &'static str {
        "none"
    }
    fn request_worker(&mut self, _: &WorkerSpec) {}
    fn cancel_request(&mut self, _: &WorkerSpec) {}
    fn release_worker(&mut self, _: &ResourceId) {}
    fn terminate(&mut self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// Connections to `port` in TIME_WAIT or ESTABLISHED, from /proc/net/tcp.
fn connections_to(port: u16) -> usize {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = format!(":{port:04X}");
    text.lines().skip(1).filter(|l| l.split_whitespace().nth(2).is_some_and(|remote| remote.ends_with(&port))).count()
}

async fn measure<F, Fut>(what: &str, port: u16, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = connections_to(port);
    let started = Instant::now();
    for _ in 0..CALLS {
        call().await;
    }
    let per_call = started.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS);
    let opened = connections_to(port).saturating_sub(before);
    println!("rpc_channels: {what}: {per_call:.0} us per call, {opened} connections for {CALLS} calls");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let secret = AppSecret::generate();
        let t = RpcTimeouts::default();
        let config = ClusterConfig {
            resource_manager: ResourceManagerConfig {
                heartbeat_interval: Duration::from_secs(1),
                heartbeat_timeout: Duration::from_secs(10),
                rpc: t,
                slot_manager: Default::default(),
            },
            secret: secret.clone(),
            rpc: t,
            work_dir: std::env::temp_dir(),
            bundle_limits: Default::default(),
            web_proxies: Vec::new(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel::<DriverEvent>();
        let cluster = Cluster::start(config, listener, None, NoWorkers, rx).await.expect("cluster");
        let addr = cluster.rpc_address.to_string();
        let port = cluster.rpc_address.port();
        let jm_heartbeat = || pb::JobMasterHeartbeat { resource_id: "tm-bench".into(), ..Default::default() };
        let rm_heartbeat = || pb::TaskExecutorHeartbeat { resource_id: "tm-bench".into(), ..Default::default() };

        measure("TE -> JobMaster heartbeat, a channel per call (before)", port, || async {
            let mut c = rpc::job_master_client(&addr, &secret, t).expect("client");
            let _ = rpc::call(&addr, t.call, c.heartbeat(jm_heartbeat())).await;
        })
        .await;
        let channels = Channels::new(secret.clone(), t);
        measure("TE -> JobMaster heartbeat, one channel per peer (after)", port, || async {
            let mut c = channels.job_master(&addr).expect("client");
            let _ = rpc::call(&addr, t.call, c.heartbeat(jm_heartbeat())).await;
        })
        .await;
        measure("TE -> ResourceManager heartbeat, a channel per call (before)", port, || async {
            let mut c = rpc::resource_manager_client(&addr, &secret, t).expect("client");
            let _ = rpc::call(&addr, t.call, c.heartbeat(rm_heartbeat())).await;
        })
        .await;
        measure("TE -> ResourceManager heartbeat, one channel per peer (after)", port, || async {
            let mut c = channels.resource_manager(&addr).expect("client");
            let _ = rpc::call(&addr, t.call, c.heartbeat(rm_heartbeat())).await;
        })
        .await;

        // A TaskExecutor registered with the AM, to deploy to.
        let (rpc_l, data_l, te_addr) = taskmanager::task_executor::bind("127.0.0.1").await.expect("bind");
        let te_config = taskmanager::TaskExecutorConfig {
            resource_id: ResourceId::new("tm-bench"),
            rm_address: addr.clone(),
            total: common::resources::ResourceProfile::new(1000, 256 << 20),
            default_slot: common::resources::ResourceProfile::new(1000, 256 << 20),
            num_slots: 1,
            advertised_host: "127.0.0.1".into(),
            work_dir: std::env::temp_dir().join("yf-bench-tm"),
            secret: secret.clone(),
            rpc: t,
            registration_timeout: Duration::from_secs(10),
            data_plane: Default::default(),
            serve_metrics: false,
            leader: None,
        };
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        let te = tokio::spawn(taskmanager::run(te_config, rpc_l, data_l, async move { s.cancelled().await }));
        let te_port = te_addr.port();
        let te_addr = te_addr.to_string();
        let tdd = || pb::TaskDeploymentDescriptor {
            job_name: "wordcount".into(),
            vertex_name: "tokenize".into(),
            bundle_dir: "/tmp/bundle".into(),
            job_master_address: addr.clone(),
            ..Default::default()
        };
        measure("JM -> TE deployment, a channel per call (before)", te_port, || async {
            let mut c = rpc::task_executor_client(&te_addr, &secret, t).expect("client");
            let _ = rpc::call(&te_addr, t.call, c.submit_task(tdd())).await;
        })
        .await;
        measure("JM -> TE deployment, one channel per peer (after)", te_port, || async {
            let mut c = channels.task_executor(&te_addr).expect("client");
            let _ = rpc::call(&te_addr, t.call, c.submit_task(tdd())).await;
        })
        .await;
        stop.cancel();
        let _ = te.await;
        cluster.shutdown().await;
    });
}
