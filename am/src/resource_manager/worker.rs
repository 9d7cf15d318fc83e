//! What the ResourceManager asks a driver to start.

use std::path::PathBuf;

use common::ids::ResourceId;
use common::launch::{SecretSource, TaskManagerLaunch};
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

    /// What a TaskManager of this shape is told at start, whatever started it.
    pub fn launch(
        &self,
        rm_address: &str,
        resource_id: &ResourceId,
        secret: SecretSource,
        work_dir: PathBuf,
        host: &str,
    ) -> TaskManagerLaunch {
        TaskManagerLaunch {
            rm_address: rm_address.to_owned(),
            resource_id: resource_id.clone(),
            total: self.total.clone(),
            default_slot: self.default_slot.clone(),
            num_slots: self.num_slots,
            secret,
            work_dir,
            host: host.to_owned(),
        }
    }
}
