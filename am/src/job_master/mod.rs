//! One JobMaster per job.
//!
//! Layout:
//! - `execution_graph`: subtasks, their attempts, pipelined regions and shared slot requests.
//! - `slot_pool`: the slots the job holds, each bound to one slot request.
//! - `restart`: the restart strategy at run time.
//! - `scheduler`: the pure core: inputs in (with `now`), [`JobMasterAction`]s out.
//!
//! Architecture invariant: everything here but the async actor does no I/O,
//! reads no clock and knows no transport; time comes in as `Instant`s.

#[cfg(test)]
mod actor_tests;
mod execution_graph;
mod restart;
mod scheduler;
mod slot_pool;
#[cfg(test)]
mod tests;

pub use execution_graph::{Attempt, Execution, ExecutionGraph, JobStatus, Region, RegionPhase, SlotRequest};
pub use restart::{RestartDecision, RestartTracker};
pub use scheduler::{
    DeploymentContext, JobMasterAction, JobSnapshot, OfferResult, Scheduler, StateCounts, VertexSnapshot,
};
pub use slot_pool::{satisfies, PooledSlot, SlotPool, TaskManagerLocation};

// The async shell around the pure core (owned by the control-plane actor code).
mod actor;
mod service;

pub use actor::{spawn, JobMasterConfig, JobMasterRegistry, JobToRun};
pub use service::JobMasterService;
