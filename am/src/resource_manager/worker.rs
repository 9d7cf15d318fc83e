//! What the ResourceManager asks a driver to start.

use common::resources::ResourceProfile;
use serde::{Deserialize, Serialize};

/// The shape of one TaskManager to start (Flink's `WorkerResourceSpec` +
/// `TaskExecutorProcessSpec`): its total resources and how they are sliced
/// into default slots. Drivers turn it into a container ask, a pod or a process.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerSpec {
    pub total: ResourceProfile,
    pub default_slot: ResourceProfile,
    pub num_slots: u32,
}

impl WorkerSpec {
    /// `num_slots` default slots of `slot` each.
    pub fn uniform(slot: ResourceProfile, num_slots: u32) -> Self {
        Self { total: slot.multiply(u64::from(num_slots)), default_slot: slot, num_slots }
    }
}
