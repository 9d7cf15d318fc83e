use serde::{Deserialize, Serialize};

use crate::ids::{AllocationId, InstanceId, JobId, JobMasterId, ResourceId, ResourceManagerId, SlotId};
use crate::resources::{RequestedProfile, ResourceProfile};

/// TaskExecutor -> ResourceManager, once per connection to a leader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegisterTaskExecutor {
    pub resource_id: ResourceId,
    /// Where the TaskExecutor's RPC endpoint listens (host:port).
    pub address: String,
    /// Where its data plane (record exchange) listens (host:port).
    pub data_address: String,
    /// Where its `/metrics` page is served (host:port), if anywhere.
    pub metrics_address: Option<String>,
    pub total_resources: ResourceProfile,
    pub default_slot_profile: ResourceProfile,
    /// How many default slots it advertises (fine-grained slots are carved
    /// out of `total_resources`, so this is a hint for coarse matching).
    pub num_slots: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub rm_id: ResourceManagerId,
    pub instance_id: InstanceId,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SlotReport {
    pub slots: Vec<SlotStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotStatus {
    pub slot_id: SlotId,
    pub profile: ResourceProfile,
    pub allocation: Option<(AllocationId, JobId)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceRequirement {
    pub profile: RequestedProfile,
    pub count: u32,
}

/// ResourceManager -> TaskExecutor: carve a slot and give it to a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestSlot {
    pub rm_id: ResourceManagerId,
    pub slot_id: SlotId,
    pub allocation_id: AllocationId,
    pub job_id: JobId,
    pub profile: ResourceProfile,
    pub job_master_address: String,
    pub job_master_id: JobMasterId,
}

/// TaskExecutor -> JobMaster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotOffer {
    pub allocation_id: AllocationId,
    pub slot_index: u32,
    pub profile: ResourceProfile,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfferSlots {
    pub resource_id: ResourceId,
    pub job_id: JobId,
    pub job_master_id: JobMasterId,
    /// The offering TaskExecutor's RPC and data addresses, so the JobMaster
    /// can deploy to it and tell consumers where to fetch records.
    pub address: String,
    pub data_address: String,
    pub offers: Vec<SlotOffer>,
    /// The TaskExecutor's slot-table version once these slots were allocated.
    pub report_version: u64,
}

/// The ResourceManager's heartbeat payload from a TaskExecutor (also sent
/// at once when its slots change).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskExecutorHeartbeat {
    pub resource_id: ResourceId,
    pub instance_id: InstanceId,
    pub slot_report: SlotReport,
    /// The slot table's version the report was taken at.
    pub report_version: u64,
}

/// ResourceManager -> TaskExecutor: registered, and how to heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationAccepted {
    pub rm_id: ResourceManagerId,
    pub instance_id: InstanceId,
    pub heartbeat_interval: std::time::Duration,
    pub heartbeat_timeout: std::time::Duration,
}

/// TaskExecutor -> JobMaster: alive, and holding these of the job's allocations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMasterHeartbeat {
    pub resource_id: ResourceId,
    pub job_id: JobId,
    pub job_master_id: JobMasterId,
    /// The JobMaster fails attempts whose slot vanished.
    pub allocations: Vec<AllocationId>,
    pub report_version: u64,
    /// The running attempts' counts so far.
    pub io: Vec<(crate::ids::ExecutionAttemptId, super::TaskIo)>,
}
