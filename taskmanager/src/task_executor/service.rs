//! The TaskExecutor's gRPC endpoint: authenticates, decodes, and forwards to
//! the TaskExecutor's loop.

use common::ids::ExecutionAttemptId;
use common::rpc::{convert, pb, AppSecret, AuthInterceptor, ListenerLimits};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::Msg;

struct Service {
    tx: mpsc::UnboundedSender<Msg>,
}

pub(super) async fn serve(
    listener: TcpListener,
    tx: mpsc::UnboundedSender<Msg>,
    secret: AppSecret,
    limits: ListenerLimits,
    stop: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let svc = pb::task_executor_gateway_server::TaskExecutorGatewayServer::with_interceptor(
        Service { tx },
        AuthInterceptor::new(secret),
    );
    let incoming = limits.grpc_incoming(listener);
    limits
        .grpc_server()
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
        .await
}

fn bad(e: convert::ConvertError) -> Status {
    Status::invalid_argument(e.to_string())
}

impl Service {
    fn send(&self, msg: Msg) -> Result<(), Status> {
        self.tx.send(msg).map_err(|_| Status::unavailable("the TaskExecutor is shutting down"))
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), Status>>) -> Msg,
    ) -> Result<Response<pb::Ack>, Status> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx))?;
        rx.await.map_err(|_| Status::unavailable("the TaskExecutor is shutting down"))??;
        Ok(Response::new(pb::Ack {}))
    }
}

#[tonic::async_trait]
impl pb::task_executor_gateway_server::TaskExecutorGateway for Service {
    async fn request_slot(
        &self,
        req: Request<pb::RequestSlotRequest>,
    ) -> Result<Response<pb::RequestSlotResponse>, Status> {
        let r = convert::to_request_slot(req.into_inner()).map_err(bad)?;
        let (tx, rx) = oneshot::channel();
        self.send(Msg::RequestSlot(r, tx))?;
        let report_version = rx.await.map_err(|_| Status::unavailable("the TaskExecutor is shutting down"))??;
        Ok(Response::new(pb::RequestSlotResponse { report_version }))
    }

    async fn free_slot(&self, req: Request<pb::FreeSlotRequest>) -> Result<Response<pb::Ack>, Status> {
        let r = req.into_inner();
        let a = convert::to_allocation_id(r.allocation_id, "allocation_id").map_err(bad)?;
        let jm = convert::to_job_master_id(r.job_master_id, "job_master_id").map_err(bad)?;
        self.ask(|tx| Msg::FreeSlot(a, jm, r.cause, tx)).await
    }

    async fn submit_task(&self, req: Request<pb::TaskDeploymentDescriptor>) -> Result<Response<pb::Ack>, Status> {
        let tdd = convert::to_tdd(req.into_inner()).map_err(bad)?;
        self.ask(|tx| Msg::SubmitTask(Box::new(tdd), tx)).await
    }

    async fn cancel_task(&self, req: Request<pb::CancelTaskRequest>) -> Result<Response<pb::Ack>, Status> {
        let r = req.into_inner();
        let a: ExecutionAttemptId = convert::to_attempt_id(r.attempt_id, "attempt_id").map_err(bad)?;
        let jm = convert::to_job_master_id(r.job_master_id, "job_master_id").map_err(bad)?;
        self.ask(|tx| Msg::CancelTask(a, jm, tx)).await
    }

    async fn shutdown(&self, req: Request<pb::ShutdownRequest>) -> Result<Response<pb::Ack>, Status> {
        let r = req.into_inner();
        let rm_id = convert::to_rm_id(r.rm_id, "rm_id").map_err(bad)?;
        self.send(Msg::Shutdown(rm_id, r.reason))?;
        Ok(Response::new(pb::Ack {}))
    }

    async fn update_delegation_tokens(&self, req: Request<pb::DelegationTokens>) -> Result<Response<pb::Ack>, Status> {
        let r = req.into_inner();
        let rm_id = convert::to_rm_id(r.rm_id, "rm_id").map_err(bad)?;
        self.send(Msg::UpdateDelegationTokens(rm_id, r.token_file))?;
        Ok(Response::new(pb::Ack {}))
    }
}
