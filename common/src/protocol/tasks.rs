use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use crate::jobspec::{Partitioning, Program};

/// Everything a TaskExecutor needs to run one attempt of one subtask
/// (Flink's TaskDeploymentDescriptor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskDeploymentDescriptor {
    pub job_id: JobId,
    pub job_master_id: JobMasterId,
    /// Where the JobMaster listens, for state updates of this attempt.
    pub job_master_address: String,
    pub job_name: String,
    pub attempt_id: ExecutionAttemptId,
    pub allocation_id: AllocationId,
    pub vertex_name: String,
    pub vertex_index: u32,
    pub subtask_index: u32,
    pub parallelism: u32,
    /// 0 for the first attempt, counting up with every restart.
    pub attempt_number: u32,
    pub program: Program,
    /// Where the bundle's files are on the TaskExecutor's machine.
    pub bundle_dir: PathBuf,
    /// Set when the bundle was uploaded to a session: the TaskExecutor fetches
    /// it from the Dispatcher (once per TaskExecutor) and uses its copy
    /// instead of `bundle_dir`.
    pub bundle_blob: Option<BundleBlob>,
    /// One gate per incoming edge, in the spec's edge order.
    pub inputs: Vec<InputGateDescriptor>,
    /// One partition per outgoing edge, in the spec's edge order.
    pub outputs: Vec<ResultPartitionDescriptor>,
}

/// A bundle kept by a session's blob store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleBlob {
    /// SHA-256 of the `.tar.gz`, 64 hex digits; checked after download.
    pub sha256: String,
    /// `http://<dispatcher REST address>/blobs/<sha256>` (bearer-authenticated).
    pub url: String,
    /// The session's limits: the TaskExecutor unpacks the blob within them too.
    pub limits: crate::jobspec::BundleLimits,
}

/// Names one produced result: which edge, which producer subtask, which attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResultPartitionId {
    pub edge_index: u32,
    pub producer_subtask: u32,
    pub producer_attempt: ExecutionAttemptId,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultPartitionDescriptor {
    pub partition_id: ResultPartitionId,
    pub partitioning: Partitioning,
    /// One subpartition per consumer subtask (1 for forward).
    pub num_subpartitions: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputGateDescriptor {
    pub edge_index: u32,
    pub partitioning: Partitioning,
    pub channels: Vec<InputChannelDescriptor>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputChannelDescriptor {
    pub partition_id: ResultPartitionId,
    /// Which subpartition of the producer's partition this consumer reads.
    pub subpartition: u32,
    /// The producer TaskExecutor's data-plane address (host:port).
    pub producer_data_address: String,
    pub producer_resource_id: ResourceId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExecutionState {
    Created,
    Scheduled,
    Deploying,
    Running,
    Finished,
    Canceling,
    Canceled,
    Failed,
}

impl ExecutionState {
    /// Flink's name of the state, as the REST API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionState::Created => "CREATED",
            ExecutionState::Scheduled => "SCHEDULED",
            ExecutionState::Deploying => "DEPLOYING",
            ExecutionState::Running => "RUNNING",
            ExecutionState::Finished => "FINISHED",
            ExecutionState::Canceling => "CANCELING",
            ExecutionState::Canceled => "CANCELED",
            ExecutionState::Failed => "FAILED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, ExecutionState::Finished | ExecutionState::Canceled | ExecutionState::Failed)
    }
}

/// TaskExecutor -> JobMaster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskExecutionState {
    pub job_id: JobId,
    pub attempt_id: ExecutionAttemptId,
    pub state: ExecutionState,
    /// Why it failed, for FAILED; the last lines of its stderr when a process.
    pub error: Option<String>,
    /// What it moved, with a final state.
    pub io: Option<TaskIo>,
}

/// What a subtask attempt moved since it started (Flink's numRecordsIn/Out,
/// numBytesIn/Out, and the time its output was back-pressured).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskIo {
    pub records_in: u64,
    pub bytes_in: u64,
    pub records_out: u64,
    pub bytes_out: u64,
    pub backpressured_ms: u64,
}
