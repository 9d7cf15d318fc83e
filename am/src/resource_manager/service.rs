//! The ResourceManager's gRPC endpoint for TaskExecutors.

use common::protocol::RegistrationAccepted;
use common::rpc::{convert, pb};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use super::actor::RmMsg;

pub struct ResourceManagerService {
    pub(crate) tx: mpsc::UnboundedSender<RmMsg>,
}

fn gone<T>(_: T) -> Status {
    Status::unavailable("the ResourceManager is shutting down")
}

impl ResourceManagerService {
    async fn heartbeat_inner(&self, hb: pb::TaskExecutorHeartbeat) -> Result<Response<pb::HeartbeatReply>, Status> {
        let hb = convert::to_te_heartbeat(hb).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(RmMsg::Heartbeat {
                resource_id: hb.resource_id,
                instance_id: hb.instance_id,
                report: hb.slot_report,
                report_version: hb.report_version,
                reply,
            })
            .map_err(gone)?;
        let known = rx.await.map_err(gone)?;
        Ok(Response::new(pb::HeartbeatReply { known }))
    }
}

#[tonic::async_trait]
impl pb::resource_manager_gateway_server::ResourceManagerGateway for ResourceManagerService {
    async fn register_task_executor(
        &self,
        req: Request<pb::RegisterTaskExecutorRequest>,
    ) -> Result<Response<pb::RegisterTaskExecutorResponse>, Status> {
        let (reg, report) =
            convert::to_register(req.into_inner()).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (reply, rx) = oneshot::channel();
        self.tx.send(RmMsg::Register(reg, report, reply)).map_err(gone)?;
        let (rm_id, instance_id, heartbeat_interval, heartbeat_timeout) = rx.await.map_err(gone)?;
        let accepted = RegistrationAccepted { rm_id, instance_id, heartbeat_interval, heartbeat_timeout };
        Ok(Response::new(convert::registration_accepted(&accepted)))
    }

    async fn heartbeat(&self, req: Request<pb::TaskExecutorHeartbeat>) -> Result<Response<pb::HeartbeatReply>, Status> {
        self.heartbeat_inner(req.into_inner()).await
    }

    async fn slot_report_update(
        &self,
        req: Request<pb::TaskExecutorHeartbeat>,
    ) -> Result<Response<pb::HeartbeatReply>, Status> {
        self.heartbeat_inner(req.into_inner()).await
    }
}
