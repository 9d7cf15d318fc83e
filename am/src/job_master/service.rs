//! The JobMasters' gRPC endpoint: one server for all jobs, routed by job id.

use common::rpc::{convert, pb};
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::actor::{JmMsg, JobMasterRegistry};

pub struct JobMasterService {
    pub registry: JobMasterRegistry,
}

fn bad(e: convert::ConvertError) -> Status {
    Status::invalid_argument(e.to_string())
}

impl JobMasterService {
    fn route(&self, job: Option<pb::Uuid>) -> Result<tokio::sync::mpsc::UnboundedSender<JmMsg>, Status> {
        let job_id = convert::to_job_id(job, "job_id").map_err(bad)?;
        self.registry.get(&job_id).ok_or_else(|| Status::not_found(format!("no JobMaster for job {job_id}")))
    }
}

fn gone<T>(_: T) -> Status {
    Status::unavailable("the JobMaster has ended")
}

#[tonic::async_trait]
impl pb::job_master_gateway_server::JobMasterGateway for JobMasterService {
    async fn offer_slots(
        &self,
        req: Request<pb::OfferSlotsRequest>,
    ) -> Result<Response<pb::OfferSlotsResponse>, Status> {
        let req = req.into_inner();
        let tx = self.route(req.job_id)?;
        let offer = convert::to_offer_slots(req).map_err(bad)?;
        let (reply, rx) = oneshot::channel();
        tx.send(JmMsg::Offer(offer, reply)).map_err(gone)?;
        let accepted = rx.await.map_err(gone)?;
        Ok(Response::new(convert::accepted_offers(&accepted)))
    }

    async fn update_task_execution_state(
        &self,
        req: Request<pb::TaskExecutionState>,
    ) -> Result<Response<pb::Ack>, Status> {
        let req = req.into_inner();
        let tx = self.route(req.job_id)?;
        let state = convert::to_task_state(req).map_err(bad)?;
        tx.send(JmMsg::TaskState(state)).map_err(gone)?;
        Ok(Response::new(pb::Ack {}))
    }

    async fn heartbeat(&self, req: Request<pb::JobMasterHeartbeat>) -> Result<Response<pb::HeartbeatReply>, Status> {
        let req = req.into_inner();
        let Ok(tx) = self.route(req.job_id) else {
            return Ok(Response::new(pb::HeartbeatReply { known: false }));
        };
        let hb = convert::to_jm_heartbeat(req).map_err(bad)?;
        let (reply, rx) = oneshot::channel();
        tx.send(JmMsg::Heartbeat {
            resource_id: hb.resource_id,
            job_master_id: hb.job_master_id,
            allocations: hb.allocations,
            report_version: hb.report_version,
            io: hb.io,
            reply,
        })
        .map_err(gone)?;
        Ok(Response::new(pb::HeartbeatReply { known: rx.await.map_err(gone)? }))
    }
}
