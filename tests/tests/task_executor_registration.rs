//! Issue 9: a malformed registration answer made the TaskExecutor retry in a
//! hot loop, with no backoff and no end. Against a ResourceManager endpoint
//! that answers every registration without ids, the TaskExecutor must back off
//! and give up at its registration timeout, naming the malformed answer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ids::ResourceId;
use common::resources::ResourceProfile;
use common::rpc::{pb, AppSecret, AuthInterceptor, RpcTimeouts};
use taskmanager::data_plane::DataPlaneConfig;
use taskmanager::task_executor::{self, TaskExecutorConfig, TaskExecutorError};
use tonic::{Request, Response, Status};

/// Serves `rm` as the ResourceManager endpoint on loopback: its address and the server's task.
async fn serve_rm<S: pb::resource_manager_gateway_server::ResourceManagerGateway>(
    rm: S,
    secret: &AppSecret,
) -> (String, tokio::task::JoinHandle<Result<(), tonic::transport::Error>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let service = pb::resource_manager_gateway_server::ResourceManagerGatewayServer::with_interceptor(
        rm,
        AuthInterceptor::new(secret.clone()),
    );
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (address, server)
}

/// A one-slot TaskExecutor `name` working in `work`.
fn te_config(
    name: &str,
    rm_address: String,
    secret: AppSecret,
    work: &std::path::Path,
    registration_timeout: Duration,
) -> TaskExecutorConfig {
    TaskExecutorConfig {
        resource_id: ResourceId::new(name),
        rm_address,
        total: ResourceProfile::new(1000, 64 << 20),
        default_slot: ResourceProfile::new(1000, 64 << 20),
        num_slots: 1,
        advertised_host: "127.0.0.1".into(),
        work_dir: work.to_owned(),
        secret,
        rpc: RpcTimeouts::default(),
        registration_timeout,
        data_plane: DataPlaneConfig::default(),
        serve_metrics: false,
        leader: None,
    }
}

struct MalformedRm(Arc<AtomicU32>);

#[tonic::async_trait]
impl pb::resource_manager_gateway_server::ResourceManagerGateway for MalformedRm {
    async fn register_task_executor(
        &self,
        _: Request<pb::RegisterTaskExecutorRequest>,
    ) -> Result<Response<pb::RegisterTaskExecutorResponse>, Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        // No rm_id, no instance_id.
        Ok(Response::new(pb::RegisterTaskExecutorResponse::default()))
    }

    async fn heartbeat(&self, _: Request<pb::TaskExecutorHeartbeat>) -> Result<Response<pb::HeartbeatReply>, Status> {
        Err(Status::unimplemented("not registered"))
    }

    async fn slot_report_update(
        &self,
        _: Request<pb::TaskExecutorHeartbeat>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        Err(Status::unimplemented("not registered"))
    }
}

#[tokio::test]
async fn a_malformed_registration_answer_is_retried_with_backoff_until_the_timeout() {
    let secret = AppSecret::generate();
    let calls = Arc::new(AtomicU32::new(0));
    let (rm_address, server) = serve_rm(MalformedRm(calls.clone()), &secret).await;
    let work = tempfile::tempdir().unwrap();
    let config = te_config("tm-malformed", rm_address, secret, work.path(), Duration::from_secs(2));
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = task_executor::run(config, rpc, data, std::future::pending());
    let result = tokio::time::timeout(Duration::from_secs(20), run).await.expect("the TaskExecutor gives up in time");
    match result {
        Err(TaskExecutorError::RegistrationTimeout { last_error, .. }) => {
            assert!(last_error.contains("malformed"), "{last_error}");
        }
        other => panic!("expected a registration timeout, got {other:?}"),
    }
    // Backoff from 20 ms doubling to 2 s: about 8 calls in 2 s; the hot loop made thousands.
    let n = calls.load(Ordering::SeqCst);
    assert!((2..=20).contains(&n), "{n} registration calls in 2 s");
    server.abort();
}

/// A ResourceManager that accepts the first registration, then forgets the
/// TaskExecutor after `known_beats` heartbeats, then refuses it.
struct ForgetfulRm {
    registrations: Arc<AtomicU32>,
    beats: Arc<AtomicU32>,
    known_beats: u32,
}

#[tonic::async_trait]
impl pb::resource_manager_gateway_server::ResourceManagerGateway for ForgetfulRm {
    async fn register_task_executor(
        &self,
        _: Request<pb::RegisterTaskExecutorRequest>,
    ) -> Result<Response<pb::RegisterTaskExecutorResponse>, Status> {
        if self.registrations.fetch_add(1, Ordering::SeqCst) > 0 {
            return Err(Status::unavailable("this ResourceManager takes no more TaskExecutors"));
        }
        Ok(Response::new(pb::RegisterTaskExecutorResponse {
            rm_id: Some(pb::Uuid { hi: 1, lo: 2 }),
            instance_id: Some(pb::Uuid { hi: 3, lo: 4 }),
            heartbeat_interval_ms: 1000,
            heartbeat_timeout_ms: 10_000,
        }))
    }

    async fn heartbeat(&self, _: Request<pb::TaskExecutorHeartbeat>) -> Result<Response<pb::HeartbeatReply>, Status> {
        let n = self.beats.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(Response::new(pb::HeartbeatReply { known: n <= self.known_beats }))
    }

    async fn slot_report_update(
        &self,
        _: Request<pb::TaskExecutorHeartbeat>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        Ok(Response::new(pb::HeartbeatReply { known: true }))
    }
}

/// The TaskExecutor actor under a paused clock (issue 9): it heartbeats at the
/// interval its ResourceManager gave, registers again once forgotten, and exits
/// when no ResourceManager has taken it for its registration timeout, all in
/// virtual time (a minute of it passes in milliseconds).
#[tokio::test(start_paused = true)]
async fn a_forgotten_task_executor_registers_again_and_exits_at_its_registration_timeout() {
    let secret = AppSecret::generate();
    let (registrations, beats) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let rm = ForgetfulRm { registrations: registrations.clone(), beats: beats.clone(), known_beats: 5 };
    let (rm_address, server) = serve_rm(rm, &secret).await;
    let work = tempfile::tempdir().unwrap();
    let config = te_config("tm-forgotten", rm_address, secret, work.path(), Duration::from_secs(60));
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let started = tokio::time::Instant::now();
    let result = task_executor::run(config, rpc, data, std::future::pending()).await;
    let took = started.elapsed();
    assert!(matches!(result, Err(TaskExecutorError::RegistrationTimeout { .. })), "{result:?}");
    // Forgotten after its 6th heartbeat (about 6 s at the 1 s interval), then 60 s
    // of refused registrations.
    assert!(beats.load(Ordering::SeqCst) >= 6, "{} heartbeats", beats.load(Ordering::SeqCst));
    assert!(registrations.load(Ordering::SeqCst) >= 2);
    assert!(took >= Duration::from_secs(60) && took < Duration::from_secs(75), "exited after {took:?} (virtual)");
    server.abort();
}

/// A ResourceManager (id 1/2) that accepts every registration and heartbeat.
struct AcceptingRm;

#[tonic::async_trait]
impl pb::resource_manager_gateway_server::ResourceManagerGateway for AcceptingRm {
    async fn register_task_executor(
        &self,
        _: Request<pb::RegisterTaskExecutorRequest>,
    ) -> Result<Response<pb::RegisterTaskExecutorResponse>, Status> {
        Ok(Response::new(pb::RegisterTaskExecutorResponse {
            rm_id: Some(pb::Uuid { hi: 1, lo: 2 }),
            instance_id: Some(pb::Uuid { hi: 3, lo: 4 }),
            heartbeat_interval_ms: 1000,
            heartbeat_timeout_ms: 10_000,
        }))
    }

    async fn heartbeat(&self, _: Request<pb::TaskExecutorHeartbeat>) -> Result<Response<pb::HeartbeatReply>, Status> {
        Ok(Response::new(pb::HeartbeatReply { known: true }))
    }

    async fn slot_report_update(
        &self,
        _: Request<pb::TaskExecutorHeartbeat>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        Ok(Response::new(pb::HeartbeatReply { known: true }))
    }
}

/// Issue 11: every leader-scoped command carries its fencing token. RequestSlot
/// and Shutdown name the ResourceManager (the leader session id); FreeSlot and
/// CancelTask name the JobMaster holding the slot. A TaskExecutor takes none
/// with a token other than its current one.
#[tokio::test]
async fn commands_with_a_stale_fencing_token_are_refused() {
    use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceManagerId, SlotId};
    use common::protocol::RequestSlot;
    use common::rpc::{Channels, TaskExecutorNotice};

    let secret = AppSecret::generate();
    let (rm_address, server) = serve_rm(AcceptingRm, &secret).await;
    // A JobMaster that never answers: offered slots stay allocated meanwhile.
    let silent_jm = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let work = tempfile::tempdir().unwrap();
    let config = te_config("tm-fenced", rm_address, secret.clone(), work.path(), Duration::from_secs(30));
    let rpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let te_address = rpc.local_addr().unwrap().to_string();
    let data = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let te = tokio::spawn(task_executor::run(config, rpc, data, std::future::pending()));
    let channels = Channels::new(secret, RpcTimeouts::default());
    let leader = ResourceManagerId(uuid::Uuid::from_u64_pair(1, 2));
    let (job_master, other) = (JobMasterId::random(), JobMasterId::random());
    let request = |rm_id, allocation_id| RequestSlot {
        rm_id,
        slot_id: SlotId { resource_id: ResourceId::new("tm-fenced"), index: 0 },
        allocation_id,
        job_id: JobId::from_u128(9),
        profile: ResourceProfile::new(1000, 64 << 20),
        job_master_address: silent_jm.local_addr().unwrap().to_string(),
        job_master_id: job_master,
    };
    let allocation = AllocationId::random();
    // Registration answers may lag: retry until the leader's request is taken.
    let mut taken = false;
    for _ in 0..100 {
        let mut gateway = channels.task_executor_gateway(&te_address).unwrap();
        if gateway.request_slot(&request(leader, allocation)).await.is_ok() {
            taken = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(taken, "the leader's RequestSlot is taken");
    let mut gateway = channels.task_executor_gateway(&te_address).unwrap();

    let stale = ResourceManagerId::random();
    let err = gateway.request_slot(&request(stale, AllocationId::random())).await.expect_err("stale leader");
    assert!(err.to_string().contains("not registered with this ResourceManager leader"), "{err}");
    let free =
        |job_master_id| TaskExecutorNotice::FreeSlot { allocation_id: allocation, cause: "test".into(), job_master_id };
    let err = gateway.notify(free(other)).await.expect_err("another JobMaster's FreeSlot");
    assert!(err.to_string().contains("stale JobMaster"), "{err}");
    let cancel = TaskExecutorNotice::CancelTask { attempt_id: ExecutionAttemptId::random(), job_master_id: other };
    gateway.notify(cancel).await.expect("cancelling an attempt the TaskExecutor does not run is a no-op");
    gateway.notify(TaskExecutorNotice::Shutdown { rm_id: stale, reason: "stale".into() }).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!te.is_finished(), "a stale leader's Shutdown is ignored");
    // The slot is still held: the same request is answered as already allocated.
    gateway.request_slot(&request(leader, allocation)).await.expect("still allocated to the job");
    gateway.notify(free(job_master)).await.expect("its own JobMaster's FreeSlot is taken");
    gateway.notify(TaskExecutorNotice::Shutdown { rm_id: leader, reason: "done".into() }).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), te).await.expect("the leader's Shutdown is obeyed").unwrap().unwrap();
    server.abort();
}
