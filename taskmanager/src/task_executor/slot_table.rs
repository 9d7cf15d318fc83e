//! The TaskExecutor's book of slots (Flink's `TaskSlotTable`): which slots are
//! carved out of the total resources, for which job and JobMaster, and which
//! task attempts run in them. Pure bookkeeping, no I/O.

use std::collections::BTreeMap;

use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId, SlotId};
use common::protocol::{SlotReport, SlotStatus};
use common::resources::ResourceProfile;

#[derive(Clone, Debug)]
pub struct Slot {
    pub index: u32,
    pub allocation_id: AllocationId,
    pub job_id: JobId,
    pub profile: ResourceProfile,
    pub job_master_address: String,
    pub job_master_id: JobMasterId,
    /// Whether the JobMaster accepted our offer of this slot.
    pub active: bool,
    pub tasks: Vec<ExecutionAttemptId>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotTableError {
    #[error("slot index {0} is already taken by another allocation")]
    IndexTaken(u32),
    #[error("not enough free resources for {wanted}: {free} left")]
    NoResources { wanted: Box<ResourceProfile>, free: Box<ResourceProfile> },
    #[error("allocation {0} is unknown to this TaskExecutor")]
    UnknownAllocation(AllocationId),
    #[error("allocation {0} belongs to another job")]
    WrongJob(AllocationId),
}

pub struct SlotTable {
    resource_id: ResourceId,
    total: ResourceProfile,
    slots: BTreeMap<AllocationId, Slot>,
    /// Counts changes of the set of slots. Reports carry it so a receiver can
    /// tell a report taken before an allocation it already saw (stale) from
    /// one taken after it.
    version: u64,
}

impl SlotTable {
    pub fn new(resource_id: ResourceId, total: ResourceProfile) -> Self {
        Self { resource_id, total, slots: BTreeMap::new(), version: 0 }
    }

    pub fn free_resources(&self) -> ResourceProfile {
        self.slots.values().fold(self.total.clone(), |left, s| left.checked_sub(&s.profile).unwrap_or_default())
    }

    /// Carves a slot. Idempotent for a repeated request of the same allocation
    /// (the ResourceManager retries after a lost answer).
    pub fn allocate(
        &mut self,
        index: u32,
        allocation_id: AllocationId,
        job_id: JobId,
        profile: ResourceProfile,
        job_master_address: String,
        job_master_id: JobMasterId,
    ) -> Result<bool, SlotTableError> {
        if let Some(s) = self.slots.get(&allocation_id) {
            return if s.job_id == job_id { Ok(false) } else { Err(SlotTableError::WrongJob(allocation_id)) };
        }
        if self.slots.values().any(|s| s.index == index) {
            return Err(SlotTableError::IndexTaken(index));
        }
        let free = self.free_resources();
        if !profile.fits_in(&free) {
            return Err(SlotTableError::NoResources { wanted: Box::new(profile), free: Box::new(free) });
        }
        self.slots.insert(
            allocation_id,
            Slot {
                index,
                allocation_id,
                job_id,
                profile,
                job_master_address,
                job_master_id,
                active: false,
                tasks: vec![],
            },
        );
        self.version += 1;
        Ok(true)
    }

    pub fn free(&mut self, allocation_id: &AllocationId) -> Option<Slot> {
        let slot = self.slots.remove(allocation_id);
        if slot.is_some() {
            self.version += 1;
        }
        slot
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn get(&self, allocation_id: &AllocationId) -> Option<&Slot> {
        self.slots.get(allocation_id)
    }

    pub fn get_mut(&mut self, allocation_id: &AllocationId) -> Option<&mut Slot> {
        self.slots.get_mut(allocation_id)
    }

    /// Checks that a task may run in `allocation_id` for `job_id` and records it.
    pub fn add_task(
        &mut self,
        allocation_id: AllocationId,
        job_id: JobId,
        attempt: ExecutionAttemptId,
    ) -> Result<(), SlotTableError> {
        let slot = self.slots.get_mut(&allocation_id).ok_or(SlotTableError::UnknownAllocation(allocation_id))?;
        if slot.job_id != job_id {
            return Err(SlotTableError::WrongJob(allocation_id));
        }
        slot.active = true;
        slot.tasks.push(attempt);
        Ok(())
    }

    /// The JobMaster holding the slot `attempt` runs in: the fencing token of its commands.
    pub fn job_master_of_task(&self, attempt: &ExecutionAttemptId) -> Option<JobMasterId> {
        self.slots.values().find(|s| s.tasks.contains(attempt)).map(|s| s.job_master_id)
    }

    pub fn remove_task(&mut self, attempt: &ExecutionAttemptId) {
        for s in self.slots.values_mut() {
            s.tasks.retain(|t| t != attempt);
        }
    }

    pub fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.slots.values()
    }

    pub fn jobs(&self) -> Vec<(JobId, String, JobMasterId)> {
        let mut v: Vec<_> =
            self.slots.values().map(|s| (s.job_id, s.job_master_address.clone(), s.job_master_id)).collect();
        v.sort_by_key(|(j, _, _)| *j);
        v.dedup_by_key(|(j, _, _)| *j);
        v
    }

    pub fn allocations_of(&self, job_id: JobId) -> Vec<AllocationId> {
        self.slots.values().filter(|s| s.job_id == job_id).map(|s| s.allocation_id).collect()
    }

    pub fn report(&self) -> SlotReport {
        SlotReport {
            slots: self
                .slots
                .values()
                .map(|s| SlotStatus {
                    slot_id: SlotId { resource_id: self.resource_id.clone(), index: s.index },
                    profile: s.profile.clone(),
                    allocation: Some((s.allocation_id, s.job_id)),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::resources::MIB;

    #[test]
    fn carves_slots_out_of_the_total_and_refuses_overcommit() {
        let mut t = SlotTable::new(ResourceId::new("tm"), ResourceProfile::new(2000, 1024 * MIB));
        let (j, jm) = (JobId::random(), JobMasterId::random());
        let a = AllocationId::random();
        assert_eq!(t.allocate(0, a, j, ResourceProfile::new(1500, 512 * MIB), "x".into(), jm), Ok(true));
        assert_eq!(t.allocate(0, a, j, ResourceProfile::new(1500, 512 * MIB), "x".into(), jm), Ok(false));
        assert_eq!(
            t.allocate(0, AllocationId::random(), j, ResourceProfile::new(100, MIB), "x".into(), jm),
            Err(SlotTableError::IndexTaken(0))
        );
        assert!(matches!(
            t.allocate(1, AllocationId::random(), j, ResourceProfile::new(1000, MIB), "x".into(), jm),
            Err(SlotTableError::NoResources { .. })
        ));
        assert_eq!(t.add_task(a, JobId::random(), ExecutionAttemptId::random()), Err(SlotTableError::WrongJob(a)));
        assert_eq!(t.report().slots.len(), 1);
        t.free(&a);
        assert_eq!(t.free_resources(), ResourceProfile::new(2000, 1024 * MIB));
    }
}
