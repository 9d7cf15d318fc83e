//! Leader election and retrieval (`common::ha`) against a real ZooKeeper
//! server: who leads, who takes over, and that a leader cut off from
//! ZooKeeper knows it has lost its leadership before anyone else can gain it.

use std::time::{Duration, Instant};

use common::ha::{Election, HaLocator, LeaderInfo, LeaderRetrieval, ZooKeeper};
use integration_tests::zookeeper::{TcpProxy, TestZooKeeper};

fn info(rpc: &str) -> LeaderInfo {
    LeaderInfo { session_id: uuid::Uuid::new_v4(), rpc_address: rpc.into(), rest_address: None }
}

fn locator(quorum: &str, timeout_ms: u64) -> HaLocator {
    HaLocator::parse(&format!("zookeeper://{quorum}/election-test"), "c1", Duration::from_millis(timeout_ms)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_leader_steps_down_before_the_standby_is_elected() {
    let zk = TestZooKeeper::start().unwrap();
    let direct = format!("127.0.0.1:{}", zk.port);
    let proxy = TcpProxy::start(direct.parse().unwrap()).await.unwrap();
    let a_zk = ZooKeeper::connect(&locator(&proxy.address.to_string(), 1500)).await.unwrap();
    let a = Election::contend(&a_zk, info("a:1")).await.unwrap();
    let mut retrieval = LeaderRetrieval::start(locator(&direct, 1500));
    assert_eq!(retrieval.leader(Duration::from_secs(10)).await.map(|l| l.rpc_address), Some("a:1".into()));

    let b_zk = ZooKeeper::connect(&locator(&direct, 1500)).await.unwrap();
    let b = tokio::spawn(async move { Election::contend(&b_zk, info("b:1")).await.map(|l| (l, Instant::now())) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!b.is_finished(), "the standby waits while the leader's session lives");

    proxy.cut();
    let a_lost = a.lost();
    let reason = tokio::time::timeout(Duration::from_secs(10), a_lost).await.expect("the leader notices the cut");
    let stepped_down = Instant::now();
    assert!(reason.contains("Disconnected") || reason.contains("Expired"), "{reason}");
    let (b_leads, elected) = tokio::time::timeout(Duration::from_secs(15), b).await.unwrap().unwrap().unwrap();
    assert!(stepped_down < elected, "the old leader stepped down before the new one was elected");
    let mut current = retrieval.current.clone();
    let now = tokio::time::timeout(
        Duration::from_secs(10),
        current.wait_for(|l| l.as_ref().is_some_and(|l| l.rpc_address == "b:1")),
    )
    .await
    .expect("retrieval follows the new leader")
    .unwrap()
    .clone()
    .unwrap();
    assert_eq!(now.session_id, b_leads.info.session_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_leaders_writes_are_refused() {
    let zk = TestZooKeeper::start().unwrap();
    let l = locator(&format!("127.0.0.1:{}", zk.port), 5000);
    let leader_zk = ZooKeeper::connect(&l).await.unwrap();
    let leader = Election::contend(&leader_zk, info("a:1")).await.unwrap();
    let node = format!("{}/job-1", l.job_graphs_path());
    leader.put(&node, b"first").await.unwrap();
    assert_eq!(leader_zk.data(&node).await.unwrap().as_deref(), Some(&b"first"[..]));

    // Its latch goes (as when its session expires): it no longer leads.
    let other = ZooKeeper::connect(&l).await.unwrap();
    other.client().delete(leader.latch(), None).await.unwrap();
    let err = leader.put(&node, b"second").await.expect_err("a write without the latch is refused");
    assert!(err.to_string().contains(&node), "{err}");
    assert!(leader.remove(&node).await.is_err());
    assert_eq!(other.data(&node).await.unwrap().as_deref(), Some(&b"first"[..]), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_cluster_is_not_taken_over_and_retrieval_survives_a_zookeeper_restart() {
    let mut zk = TestZooKeeper::start().unwrap();
    let l = locator(&format!("127.0.0.1:{}", zk.port), 4000);
    let a_zk = ZooKeeper::connect(&l).await.unwrap();
    let a = Election::contend(&a_zk, info("a:1")).await.unwrap();
    let mut retrieval = LeaderRetrieval::start(l.clone());
    assert!(retrieval.leader(Duration::from_secs(10)).await.is_some());

    zk.restart().unwrap();
    // The leader's session survives a quick restart; retrieval sees the same leader again.
    let mut current = retrieval.current.clone();
    let again = tokio::time::timeout(Duration::from_secs(20), current.wait_for(|x| x.is_some()))
        .await
        .expect("retrieval reconnects")
        .unwrap()
        .clone()
        .unwrap();
    assert_eq!(again.session_id, a.info.session_id);

    let b_zk = ZooKeeper::connect(&l).await.unwrap();
    let b = tokio::spawn(async move { Election::contend(&b_zk, info("b:1")).await.map(|_| ()) });
    // A leader that may or may not have lost its connection in the restart: mark
    // the cluster stopped through a fresh session if needed.
    if a.mark_stopped().await.is_err() {
        let c = ZooKeeper::connect(&l).await.unwrap();
        c.ensure_path(&l.stopped_path()).await.unwrap();
    }
    let r = tokio::time::timeout(Duration::from_secs(20), b).await.expect("the standby gives up").unwrap();
    assert!(matches!(r, Err(common::ha::HaError::Stopped(_))), "{r:?}");
}
