//! Typed clients of the three gateways. Components call these with domain
//! types ([`crate::protocol`]); `convert` translates, [`Channels`] carries,
//! and every call has its deadline. Nothing outside `rpc` and the gRPC
//! services builds or reads a protobuf message.

use std::time::Duration;

use super::{call, convert, pb, Channels, JobMasterClient, ResourceManagerClient, RpcError, TaskExecutorClient};
use crate::ids::{AllocationId, ExecutionAttemptId, JobMasterId, ResourceManagerId};
use crate::protocol::{
    JobMasterHeartbeat, OfferSlots, RegisterTaskExecutor, RegistrationAccepted, RequestSlot, SlotReport,
    TaskDeploymentDescriptor, TaskExecutionState, TaskExecutorHeartbeat,
};

/// What a JobMaster or the ResourceManager tells a TaskExecutor without
/// waiting for the answer: the heartbeats make up for a lost one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskExecutorNotice {
    /// Fenced by the JobMaster holding the task's slot.
    CancelTask {
        attempt_id: ExecutionAttemptId,
        job_master_id: JobMasterId,
    },
    /// Fenced by the JobMaster holding the slot (the ResourceManager names it too).
    FreeSlot {
        allocation_id: AllocationId,
        cause: String,
        job_master_id: JobMasterId,
    },
    Shutdown {
        rm_id: ResourceManagerId,
        reason: String,
    },
    /// A Hadoop token storage file whose HDFS delegation tokens replace the TaskExecutor's.
    UpdateDelegationTokens {
        rm_id: ResourceManagerId,
        token_file: std::sync::Arc<Vec<u8>>,
    },
}

impl TaskExecutorNotice {
    fn what(&self) -> &'static str {
        match self {
            TaskExecutorNotice::CancelTask { .. } => "cancel task",
            TaskExecutorNotice::FreeSlot { .. } => "free slot",
            TaskExecutorNotice::Shutdown { .. } => "shutdown",
            TaskExecutorNotice::UpdateDelegationTokens { .. } => "update delegation tokens",
        }
    }
}

#[derive(Clone)]
pub struct TaskExecutorGateway {
    address: String,
    client: TaskExecutorClient,
    deadline: Duration,
}

#[derive(Clone)]
pub struct JobMasterGateway {
    address: String,
    client: JobMasterClient,
    deadline: Duration,
}

#[derive(Clone)]
pub struct ResourceManagerGateway {
    address: String,
    client: ResourceManagerClient,
    deadline: Duration,
}

fn malformed(peer: &str) -> impl FnOnce(convert::ConvertError) -> RpcError + '_ {
    move |source| RpcError::Malformed { peer: peer.to_owned(), source }
}

impl Channels {
    pub fn task_executor_gateway(&self, address: &str) -> Result<TaskExecutorGateway, RpcError> {
        let client = self.task_executor(address)?;
        Ok(TaskExecutorGateway { address: address.to_owned(), client, deadline: self.timeouts().call })
    }

    pub fn job_master_gateway(&self, address: &str) -> Result<JobMasterGateway, RpcError> {
        let client = self.job_master(address)?;
        Ok(JobMasterGateway { address: address.to_owned(), client, deadline: self.timeouts().call })
    }

    pub fn resource_manager_gateway(&self, address: &str) -> Result<ResourceManagerGateway, RpcError> {
        let client = self.resource_manager(address)?;
        Ok(ResourceManagerGateway { address: address.to_owned(), client, deadline: self.timeouts().call })
    }

    /// Sends `notice` in the background; a failure is logged at debug level.
    pub fn notify(&self, address: String, notice: TaskExecutorNotice) {
        let gateway = self.task_executor_gateway(&address);
        tokio::spawn(async move {
            let what = notice.what();
            let r = match gateway {
                Ok(mut g) => g.notify(notice).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::debug!(%address, error = %e, "{what} failed");
            }
        });
    }
}

impl TaskExecutorGateway {
    /// Returns the TaskExecutor's slot-table version after the allocation.
    pub async fn request_slot(&mut self, req: &RequestSlot) -> Result<u64, RpcError> {
        let r = call(&self.address, self.deadline, self.client.request_slot(convert::request_slot(req))).await?;
        Ok(r.report_version)
    }

    pub async fn submit_task(&mut self, tdd: &TaskDeploymentDescriptor) -> Result<(), RpcError> {
        call(&self.address, self.deadline, self.client.submit_task(convert::tdd(tdd))).await.map(|_| ())
    }

    pub async fn notify(&mut self, notice: TaskExecutorNotice) -> Result<(), RpcError> {
        let (address, deadline) = (&self.address, self.deadline);
        match notice {
            TaskExecutorNotice::CancelTask { attempt_id, job_master_id } => {
                let req = pb::CancelTaskRequest {
                    attempt_id: convert::attempt_id(attempt_id),
                    job_master_id: convert::job_master_id(job_master_id),
                };
                call(address, deadline, self.client.cancel_task(req)).await.map(|_| ())
            }
            TaskExecutorNotice::FreeSlot { allocation_id, cause, job_master_id } => {
                let req = pb::FreeSlotRequest {
                    allocation_id: convert::allocation_id(allocation_id),
                    cause,
                    job_master_id: convert::job_master_id(job_master_id),
                };
                call(address, deadline, self.client.free_slot(req)).await.map(|_| ())
            }
            TaskExecutorNotice::Shutdown { rm_id, reason } => {
                let req = pb::ShutdownRequest { rm_id: convert::rm_id(rm_id), reason };
                call(address, deadline, self.client.shutdown(req)).await.map(|_| ())
            }
            TaskExecutorNotice::UpdateDelegationTokens { rm_id, token_file } => {
                let req = pb::DelegationTokens { rm_id: convert::rm_id(rm_id), token_file: token_file.to_vec() };
                call(address, deadline, self.client.update_delegation_tokens(req)).await.map(|_| ())
            }
        }
    }
}

impl JobMasterGateway {
    /// The allocations the JobMaster accepted.
    pub async fn offer_slots(&mut self, offer: &OfferSlots) -> Result<Vec<AllocationId>, RpcError> {
        let r = call(&self.address, self.deadline, self.client.offer_slots(convert::offer_slots(offer))).await?;
        convert::to_accepted_offers(r).map_err(malformed(&self.address))
    }

    pub async fn update_task_state(&mut self, state: &TaskExecutionState) -> Result<(), RpcError> {
        let req = convert::task_state(state);
        call(&self.address, self.deadline, self.client.update_task_execution_state(req)).await.map(|_| ())
    }

    /// Whether the JobMaster still knows this TaskExecutor's slots.
    pub async fn heartbeat(&mut self, hb: &JobMasterHeartbeat, deadline: Duration) -> Result<bool, RpcError> {
        let r = call(&self.address, deadline, self.client.heartbeat(convert::jm_heartbeat(hb))).await?;
        Ok(r.known)
    }
}

impl ResourceManagerGateway {
    pub async fn register(
        &mut self,
        registration: &RegisterTaskExecutor,
        report: &SlotReport,
    ) -> Result<RegistrationAccepted, RpcError> {
        let req = convert::register(registration, report);
        let r = call(&self.address, self.deadline, self.client.register_task_executor(req)).await?;
        convert::to_registration_accepted(r).map_err(malformed(&self.address))
    }

    /// Whether the ResourceManager still knows this TaskExecutor.
    pub async fn heartbeat(&mut self, hb: &TaskExecutorHeartbeat, deadline: Duration) -> Result<bool, RpcError> {
        let r = call(&self.address, deadline, self.client.heartbeat(convert::te_heartbeat(hb))).await?;
        Ok(r.known)
    }

    /// The slot report at once, between heartbeats.
    pub async fn slot_report_update(&mut self, hb: &TaskExecutorHeartbeat) -> Result<(), RpcError> {
        call(&self.address, self.deadline, self.client.slot_report_update(convert::te_heartbeat(hb))).await.map(|_| ())
    }
}
