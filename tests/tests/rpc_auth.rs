//! Every control-plane endpoint demands the application secret: a
//! TaskManager with the wrong one is refused and stops; one with the right
//! one registers. In-process, with a driver that starts nothing.

mod in_process;

use std::time::Duration;

use am::cluster::{Cluster, ClusterConfig};
use am::resource_manager::driver::DriverEvent;
use am::resource_manager::slot_manager::SlotManagerConfig;
use am::resource_manager::ResourceManagerConfig;
use common::ids::ResourceId;
use common::resources::{ResourceProfile, MIB};
use common::rpc::{self, pb, AppSecret, RpcTimeouts};
use in_process::NoWorkers;
use taskmanager::data_plane::DataPlaneConfig;
use taskmanager::{TaskExecutorConfig, TaskExecutorError};

async fn cluster(secret: AppSecret) -> Cluster {
    let work = tempfile::tempdir().unwrap().keep();
    let config = ClusterConfig {
        resource_manager: ResourceManagerConfig {
            slot_manager: SlotManagerConfig::default(),
            heartbeat_interval: Duration::from_millis(100),
            heartbeat_timeout: Duration::from_secs(2),
            rpc: RpcTimeouts::default(),
        },
        secret,
        rpc: RpcTimeouts::default(),
        work_dir: work,
        bundle_limits: Default::default(),
        web_proxies: Vec::new(),
    };
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel::<DriverEvent>();
    Cluster::start(config, rpc, None, NoWorkers, rx).await.unwrap()
}

fn te_config(rm: &str, secret: AppSecret) -> TaskExecutorConfig {
    TaskExecutorConfig {
        resource_id: ResourceId::new("tm-test"),
        rm_address: rm.to_owned(),
        total: ResourceProfile::new(2000, 512 * MIB),
        default_slot: ResourceProfile::new(1000, 256 * MIB),
        num_slots: 2,
        advertised_host: "127.0.0.1".into(),
        work_dir: tempfile::tempdir().unwrap().keep(),
        secret,
        rpc: RpcTimeouts { connect: Duration::from_secs(2), call: Duration::from_secs(2), ..Default::default() },
        registration_timeout: Duration::from_secs(5),
        data_plane: DataPlaneConfig::default(),
        serve_metrics: true,
        leader: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_manager_without_the_secret_is_refused() {
    let c = cluster(AppSecret::generate()).await;
    let (rpc_l, data_l, _) = taskmanager::task_executor::bind("127.0.0.1").await.unwrap();
    let cfg = te_config(&c.rpc_address.to_string(), AppSecret::generate());
    let r = tokio::time::timeout(Duration::from_secs(10), taskmanager::run(cfg, rpc_l, data_l, std::future::pending()))
        .await
        .expect("a refused TaskManager must stop by itself");
    assert!(matches!(r, Err(TaskExecutorError::Unauthenticated { .. })), "{r:?}");
    let o = c.dispatcher.resource_manager().overview().await.unwrap();
    assert!(o.slots.task_managers.is_empty());
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_manager_with_the_secret_registers_and_its_endpoint_refuses_strangers() {
    let secret = AppSecret::generate();
    let c = cluster(secret.clone()).await;
    let (rpc_l, data_l, te_addr) = taskmanager::task_executor::bind("127.0.0.1").await.unwrap();
    let cfg = te_config(&c.rpc_address.to_string(), secret.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let s = stop.clone();
    let te = tokio::spawn(taskmanager::run(cfg, rpc_l, data_l, async move { s.cancelled().await }));
    let mut registered = false;
    for _ in 0..200 {
        let o = c.dispatcher.resource_manager().overview().await.unwrap();
        if o.slots.task_managers.len() == 1 {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(registered, "the TaskManager did not register");

    // A stranger calling the TaskExecutor's endpoint is refused...
    let t = RpcTimeouts::default();
    let mut stranger = rpc::task_executor_client(&te_addr.to_string(), &AppSecret::generate(), t).unwrap();
    let r =
        rpc::call("te", t.call, stranger.cancel_task(pb::CancelTaskRequest { attempt_id: None, job_master_id: None }))
            .await;
    assert!(r.as_ref().is_err_and(|e| e.is_unauthenticated()), "{r:?}");
    // ...and so is one calling the ResourceManager's.
    let mut stranger = rpc::resource_manager_client(&c.rpc_address.to_string(), &AppSecret::generate(), t).unwrap();
    let r = rpc::call("rm", t.call, stranger.heartbeat(pb::TaskExecutorHeartbeat::default())).await;
    assert!(r.as_ref().is_err_and(|e| e.is_unauthenticated()), "{r:?}");

    stop.cancel();
    te.await.unwrap().unwrap();
    c.shutdown().await;
}
