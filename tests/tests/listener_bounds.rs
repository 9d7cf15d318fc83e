//! Issue 14, point 4: every listener (the AM's RPC and REST, the
//! TaskExecutor's RPC, data exchange and `/metrics`) bounds what it reads before a peer
//! has proved the secret. A peer that sends garbage, a huge length or header,
//! or nothing at all is dropped (at once, or at the handshake timeout), and
//! the component goes on serving everyone else. In-process, on loopback.

mod in_process;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use am::cluster::{Cluster, ClusterConfig};
use am::resource_manager::driver::DriverEvent;
use am::resource_manager::slot_manager::SlotManagerConfig;
use am::resource_manager::ResourceManagerConfig;
use common::ids::ResourceId;
use common::resources::{ResourceProfile, MIB};
use common::rpc::{self, pb, AppSecret, ListenerLimits, RpcTimeouts};
use in_process::NoWorkers;
use taskmanager::data_plane::DataPlaneConfig;
use taskmanager::TaskExecutorConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Short, so the tests are quick; the default is 10 s.
const HANDSHAKE: Duration = Duration::from_millis(500);

struct Endpoints {
    cluster: Cluster,
    secret: AppSecret,
    am_rpc: SocketAddr,
    am_rest: SocketAddr,
    te_rpc: SocketAddr,
    te_data: SocketAddr,
    te_metrics: SocketAddr,
    stop_te: CancellationToken,
    te: tokio::task::JoinHandle<Result<(), taskmanager::TaskExecutorError>>,
}

impl Endpoints {
    async fn start() -> Endpoints {
        let secret = AppSecret::generate();
        let rpc = RpcTimeouts {
            listener: ListenerLimits { handshake: HANDSHAKE, ..Default::default() },
            ..Default::default()
        };
        let config = ClusterConfig {
            resource_manager: ResourceManagerConfig {
                slot_manager: SlotManagerConfig::default(),
                heartbeat_interval: Duration::from_millis(100),
                heartbeat_timeout: Duration::from_secs(5),
                rpc,
            },
            secret: secret.clone(),
            rpc,
            work_dir: tempfile::tempdir().unwrap().keep(),
            bundle_limits: Default::default(),
            web_proxies: Vec::new(),
        };
        let rpc_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (_tx, rx) = tokio::sync::mpsc::unbounded_channel::<DriverEvent>();
        let cluster = Cluster::start(config, rpc_l, Some(rest_l), NoWorkers, rx).await.unwrap();

        let (te_rpc_l, te_data_l, te_rpc) = taskmanager::task_executor::bind("127.0.0.1").await.unwrap();
        let te_data = te_data_l.local_addr().unwrap();
        let te_config = TaskExecutorConfig {
            resource_id: ResourceId::new("tm-bounds"),
            rm_address: cluster.rpc_address.to_string(),
            total: ResourceProfile::new(1000, 256 * MIB),
            default_slot: ResourceProfile::new(1000, 256 * MIB),
            num_slots: 1,
            advertised_host: "127.0.0.1".into(),
            work_dir: tempfile::tempdir().unwrap().keep(),
            secret: secret.clone(),
            rpc,
            registration_timeout: Duration::from_secs(10),
            data_plane: DataPlaneConfig { handshake_timeout: HANDSHAKE, ..DataPlaneConfig::default() },
            serve_metrics: true,
            leader: None,
        };
        let stop_te = CancellationToken::new();
        let s = stop_te.clone();
        let te = tokio::spawn(taskmanager::run(te_config, te_rpc_l, te_data_l, async move { s.cancelled().await }));
        let started = Instant::now();
        let te_metrics = loop {
            let o = cluster.dispatcher.resource_manager().overview().await.unwrap();
            if let Some(a) = o.addresses.values().next() {
                break a.metrics.as_deref().expect("the TaskExecutor registered its /metrics address").parse().unwrap();
            }
            assert!(started.elapsed() < Duration::from_secs(10), "the TaskExecutor did not register");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (am_rpc, am_rest) = (cluster.rpc_address, cluster.rest_address.unwrap());
        Endpoints { cluster, secret, am_rpc, am_rest, te_rpc, te_data, te_metrics, stop_te, te }
    }

    fn all(&self) -> [(&'static str, SocketAddr); 5] {
        [
            ("AM RPC", self.am_rpc),
            ("AM REST", self.am_rest),
            ("TE RPC", self.te_rpc),
            ("TE data", self.te_data),
            ("TE metrics", self.te_metrics),
        ]
    }

    /// Authenticated calls to the AM's REST and RPC and the TaskExecutor's RPC are answered.
    async fn still_serving(&self) {
        let http = common::http::client_builder().unwrap().build().unwrap();
        let metrics = http
            .get(format!("http://{}/metrics", self.te_metrics))
            .bearer_auth(self.secret.to_hex())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the TaskExecutor's /metrics answers");
        assert!(metrics.status().is_success(), "{}", metrics.status());
        let overview = http
            .get(format!("http://{}/overview", self.am_rest))
            .bearer_auth(self.secret.to_hex())
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the REST API answers");
        assert!(overview.status().is_success(), "{}", overview.status());
        let t = RpcTimeouts::default();
        let mut rm = rpc::resource_manager_client(&self.am_rpc.to_string(), &self.secret, t).unwrap();
        let r = rpc::call("rm", t.call, rm.heartbeat(pb::TaskExecutorHeartbeat::default())).await;
        assert!(
            !matches!(&r, Err(e) if e.is_unauthenticated() || matches!(e, rpc::RpcError::DeadlineExceeded { .. })),
            "{r:?}"
        );
        let mut te = rpc::task_executor_client(&self.te_rpc.to_string(), &self.secret, t).unwrap();
        let r =
            rpc::call("te", t.call, te.cancel_task(pb::CancelTaskRequest { attempt_id: None, job_master_id: None }))
                .await;
        assert!(
            !matches!(&r, Err(e) if e.is_unauthenticated() || matches!(e, rpc::RpcError::DeadlineExceeded { .. })),
            "{r:?}"
        );
    }

    async fn stop(self) {
        self.stop_te.cancel();
        let _ = self.te.await;
        self.cluster.shutdown().await;
    }
}

/// Sends `bytes` (as much as the peer takes), then reads until the peer
/// closes. Returns what it answered and when it closed, or panics after `limit`.
async fn send_and_wait_for_close(addr: SocketAddr, bytes: &[u8], limit: Duration) -> (Vec<u8>, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (answer, started.elapsed()),
            Ok(Ok(n)) if answer.len() < 1 << 20 => answer.extend_from_slice(&buf[..n]),
            Ok(Ok(_)) => panic!("{addr} sent more than 1 MiB to a stranger"),
            Err(_) => panic!("{addr} kept the connection open for {limit:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_says_nothing_is_dropped_at_the_handshake_timeout_and_others_are_served() {
    let e = Endpoints::start().await;
    // Many silent peers at once hold no listener up.
    let mut silent = Vec::new();
    for (_, addr) in e.all() {
        for _ in 0..50 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
    }
    e.still_serving().await;
    for (name, addr) in e.all() {
        let (_, closed_after) = send_and_wait_for_close(addr, b"", HANDSHAKE + Duration::from_secs(5)).await;
        assert!(closed_after >= HANDSHAKE - Duration::from_millis(50), "{name}: dropped after {closed_after:?}, early");
        assert!(closed_after < HANDSHAKE + Duration::from_secs(3), "{name}: dropped only after {closed_after:?}");
    }
    // The silent ones were dropped too.
    for mut s in silent {
        let mut b = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(r.is_ok(), "a silent peer is still connected");
    }
    e.still_serving().await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_refused_at_once() {
    let e = Endpoints::start().await;
    // Printable noise, so the HTTP/1 parser sees a bad request line rather than binary.
    let garbage: Vec<u8> = (0..64u32 << 10).map(|i| b'!' + ((i.wrapping_mul(2654435761) >> 24) % 90) as u8).collect();
    for (name, addr) in e.all() {
        let (answer, closed_after) = send_and_wait_for_close(addr, &garbage, Duration::from_secs(5)).await;
        assert!(closed_after < HANDSHAKE, "{name}: garbage was held for {closed_after:?}");
        if name == "AM REST" || name == "TE metrics" {
            assert!(answer.starts_with(b"HTTP/1.1 400"), "{name}: {}", String::from_utf8_lossy(&answer));
        }
    }
    e.still_serving().await;
    e.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_lengths_and_headers_are_refused_without_being_read() {
    let e = Endpoints::start().await;
    // HTTP/2: the preface, then a frame header claiming 16 MiB (the frame limit is 16 KiB).
    let mut h2 = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2.extend_from_slice(&[0xff, 0xff, 0xff, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]);
    for (name, addr) in [("AM RPC", e.am_rpc), ("TE RPC", e.te_rpc)] {
        let (_, closed_after) = send_and_wait_for_close(addr, &h2, Duration::from_secs(5)).await;
        assert!(closed_after < HANDSHAKE, "{name}: a 16 MiB frame header was held for {closed_after:?}");
    }
    // HTTP/2: a header block larger than the header limit, in CONTINUATION-free HEADERS frames is
    // refused the same way by h2; HTTP/1 answers 431 to a head over the limit...
    let big_head = format!("GET /overview HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n", "a".repeat(64 << 10));
    for (name, addr, path) in [("AM REST", e.am_rest, "/jobs"), ("TE metrics", e.te_metrics, "/metrics")] {
        let big_head = big_head.replace("/overview", path);
        let (answer, _) = send_and_wait_for_close(addr, big_head.as_bytes(), Duration::from_secs(5)).await;
        assert!(answer.starts_with(b"HTTP/1.1 431"), "{name}: {}", String::from_utf8_lossy(&answer));
        // ...and 401 to a terabyte body without the secret, reading none of it.
        let huge_body = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/gzip\r\nContent-Length: 1099511627776\r\n\r\n"
        );
        let (answer, closed_after) = send_and_wait_for_close(addr, huge_body.as_bytes(), Duration::from_secs(5)).await;
        let refused: &[u8] = if name == "TE metrics" { b"HTTP/1.1 405" } else { b"HTTP/1.1 401" };
        assert!(answer.starts_with(refused), "{name}: {}", String::from_utf8_lossy(&answer));
        assert!(closed_after < HANDSHAKE + Duration::from_secs(1), "{name}: held for {closed_after:?}");
    }
    // The data plane reads a fixed-size handshake before anything else: no length to lie about.
    e.still_serving().await;
    e.stop().await;
}
