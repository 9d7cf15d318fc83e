//! The JobMaster actor under a paused clock (`tokio::time::pause`): a
//! TaskExecutor (a fake endpoint on loopback that takes deployments) holds the
//! job's slot and heartbeats, then falls silent. The JobMaster keeps its task
//! while it heartbeats, and restarts the region at the heartbeat timeout, not
//! before: in virtual time, with no real waiting. The decisions are the
//! Scheduler's (transcripts in `tests.rs`); this checks that the actor feeds
//! it heartbeats and time, and carries out the deployment over RPC.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ids::{AllocationId, JobId, JobMasterId, ResourceId};
use common::jobspec::{Bundle, BundleLimits};
use common::protocol::{OfferSlots, SlotOffer};
use common::resources::{ResourceProfile, MIB};
use common::rpc::{pb, AppSecret, AuthInterceptor, Channels, RpcTimeouts};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::actor::{spawn, JmMsg, JobMasterConfig, JobMasterRegistry, JobToRun};
use crate::resource_manager::driver::ResourceManagerDriver;
use crate::resource_manager::slot_manager::SlotManagerConfig;
use crate::resource_manager::worker::WorkerSpec;
use crate::resource_manager::ResourceManagerConfig;

/// A TaskExecutor endpoint that takes every call and records deployments.
#[derive(Clone, Default)]
struct FakeTaskExecutor(Arc<Mutex<Vec<String>>>);

impl FakeTaskExecutor {
    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
    fn record(&self, call: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(call.to_owned());
    }
}

#[tonic::async_trait]
impl pb::task_executor_gateway_server::TaskExecutorGateway for FakeTaskExecutor {
    async fn request_slot(
        &self,
        _: Request<pb::RequestSlotRequest>,
    ) -> Result<Response<pb::RequestSlotResponse>, Status> {
        Ok(Response::new(pb::RequestSlotResponse { report_version: 1 }))
    }
    async fn free_slot(&self, _: Request<pb::FreeSlotRequest>) -> Result<Response<pb::Ack>, Status> {
        self.record("free slot");
        Ok(Response::new(pb::Ack {}))
    }
    async fn submit_task(&self, _: Request<pb::TaskDeploymentDescriptor>) -> Result<Response<pb::Ack>, Status> {
        self.record("submit task");
        Ok(Response::new(pb::Ack {}))
    }
    async fn cancel_task(&self, _: Request<pb::CancelTaskRequest>) -> Result<Response<pb::Ack>, Status> {
        self.record("cancel task");
        Ok(Response::new(pb::Ack {}))
    }
    async fn shutdown(&self, _: Request<pb::ShutdownRequest>) -> Result<Response<pb::Ack>, Status> {
        Ok(Response::new(pb::Ack {}))
    }
    async fn update_delegation_tokens(&self, _: Request<pb::DelegationTokens>) -> Result<Response<pb::Ack>, Status> {
        Ok(Response::new(pb::Ack {}))
    }
}

/// A driver that starts nothing: the test plays the TaskExecutor.
struct Idle;

impl ResourceManagerDriver for Idle {
    fn name(&self) -> &'static str {
        "idle"
    }
    fn request_worker(&mut self, _: &WorkerSpec) {}
    fn cancel_request(&mut self, _: &WorkerSpec) {}
    fn release_worker(&mut self, _: &ResourceId) {}
    fn terminate(&mut self) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn a_silent_task_executor_loses_its_task_at_the_heartbeat_timeout_not_before() {
    let secret = AppSecret::generate();
    let fake = FakeTaskExecutor::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let te_address = listener.local_addr().unwrap().to_string();
    let service = pb::task_executor_gateway_server::TaskExecutorGatewayServer::with_interceptor(
        fake.clone(),
        AuthInterceptor::new(secret.clone()),
    );
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let channels = Channels::new(secret, RpcTimeouts::default());
    let rm_config = ResourceManagerConfig {
        slot_manager: SlotManagerConfig::default(),
        heartbeat_interval: INTERVAL,
        heartbeat_timeout: TIMEOUT,
        rpc: RpcTimeouts::default(),
    };
    let (_events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let (rm, _join) = crate::resource_manager::spawn(
        rm_config,
        common::ids::ResourceManagerId::random(),
        channels.clone(),
        Idle,
        events,
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("job.toml"), "[[vertex]]\nname = \"a\"\nshell = \"sleep 600\"\n").unwrap();
    let bundle = Bundle::load(dir.path(), dir.path().join("work"), &BundleLimits::default()).unwrap();
    let (job_id, job_master_id) = (JobId::random(), JobMasterId::random());
    let job = JobToRun { job_id, job_master_id, bundle, bundle_blob: None };
    let config = JobMasterConfig {
        commit_log: None,
        address: "127.0.0.1:1".into(),
        channels,
        heartbeat_interval: INTERVAL,
        heartbeat_timeout: TIMEOUT,
    };
    let registry = JobMasterRegistry::default();
    let details = spawn(job, config, rm, registry.clone(), tokio_util::sync::CancellationToken::new());
    tokio::time::sleep(INTERVAL).await;
    let jm = registry.get(&job_id).expect("the JobMaster is registered");

    // The TaskExecutor offers its slot: the JobMaster takes it and deploys the task to it.
    let resource_id = ResourceId::new("tm-1");
    let allocation_id = AllocationId::random();
    let offer = OfferSlots {
        resource_id: resource_id.clone(),
        job_id,
        job_master_id,
        address: te_address,
        data_address: "127.0.0.1:2".into(),
        offers: vec![SlotOffer { allocation_id, slot_index: 0, profile: ResourceProfile::new(1000, 512 * MIB) }],
        report_version: 1,
    };
    let (reply, accepted) = oneshot::channel();
    let _ = jm.send(JmMsg::Offer(offer, reply));
    assert_eq!(accepted.await.unwrap(), vec![allocation_id]);
    let heartbeat = || {
        let (reply, known) = oneshot::channel();
        let _ = jm.send(JmMsg::Heartbeat {
            resource_id: resource_id.clone(),
            job_master_id,
            allocations: vec![allocation_id],
            report_version: 1,
            io: vec![],
            reply,
        });
        known
    };
    // Heartbeating for twice the timeout: the task stays where it is.
    for _ in 0..20 {
        assert!(heartbeat().await.unwrap());
        tokio::time::sleep(INTERVAL).await;
    }
    assert_eq!(fake.calls(), ["submit task"], "deployed once, and never moved");
    assert_eq!(details.borrow().restarts, 0);

    // Silent: still held just before the timeout, lost after it, and the
    // region restarts (its task goes back to be scheduled).
    tokio::time::sleep(TIMEOUT - INTERVAL * 2).await;
    assert_eq!(details.borrow().restarts, 0, "lost before its heartbeat timeout");
    tokio::time::sleep(INTERVAL * 4).await;
    assert_eq!(details.borrow().restarts, 1, "{:?}", details.borrow());
    // The REST restart history says when, and why: the missed heartbeats.
    let history = details.borrow().restart_history.clone();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0].cause.contains("no heartbeat from tm-1"), "{history:?}");
    assert!(history[0].time >= details.borrow().start_time, "{history:?}");
    server.abort();
}
