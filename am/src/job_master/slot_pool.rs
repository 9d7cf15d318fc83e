//! The JobMaster's slot pool: the slots TaskExecutors offered and the job
//! accepted, each bound to one slot request of the ExecutionGraph. The pool
//! holds no spare slots: an offer nothing pending fits is rejected at once,
//! so the ResourceManager can give that slot to someone else.

use std::collections::BTreeMap;

use common::ids::{AllocationId, ResourceId};
use common::protocol::SlotOffer;
use common::resources::{RequestedProfile, ResourceProfile};
use serde::{Deserialize, Serialize};

/// Where a TaskExecutor is: its id and its RPC and data-plane addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerLocation {
    pub resource_id: ResourceId,
    /// RPC endpoint (host:port): deploy, cancel, free slot.
    pub address: String,
    /// Data-plane endpoint (host:port): where consumers fetch records.
    pub data_address: String,
}

/// A slot the job holds.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledSlot {
    pub allocation_id: AllocationId,
    pub location: TaskManagerLocation,
    pub slot_index: u32,
    pub profile: ResourceProfile,
    /// The slot request (index into `ExecutionGraph::slot_requests`) it serves.
    pub request: usize,
}

#[derive(Clone, Debug, Default)]
pub struct SlotPool {
    slots: BTreeMap<AllocationId, PooledSlot>,
    /// Slot request index -> the allocation serving it.
    by_request: BTreeMap<usize, AllocationId>,
}

/// True when a slot of profile `offered` can serve a request for `wanted`:
/// an exact request takes only a slot of exactly its profile (as Flink's
/// `ResourceProfile.isMatching`), an unknown one any slot. A larger slot must
/// not serve a smaller request: the ResourceManager books slots by profile,
/// so it would see the smaller profile still missing and allocate again.
pub fn satisfies(offered: &ResourceProfile, wanted: &RequestedProfile) -> bool {
    match wanted {
        RequestedProfile::Unknown => true,
        RequestedProfile::Exact(p) => p == offered,
    }
}

impl SlotPool {
    pub fn slot(&self, allocation_id: &AllocationId) -> Option<&PooledSlot> {
        self.slots.get(allocation_id)
    }

    /// The slot serving slot request `request`.
    pub fn slot_for(&self, request: usize) -> Option<&PooledSlot> {
        self.by_request.get(&request).and_then(|a| self.slots.get(a))
    }

    pub fn is_assigned(&self, request: usize) -> bool {
        self.by_request.contains_key(&request)
    }

    pub fn slots(&self) -> impl Iterator<Item = &PooledSlot> {
        self.slots.values()
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Binds an offered slot to `request`.
    pub fn assign(&mut self, location: &TaskManagerLocation, offer: &SlotOffer, request: usize) {
        self.by_request.insert(request, offer.allocation_id);
        self.slots.insert(
            offer.allocation_id,
            PooledSlot {
                allocation_id: offer.allocation_id,
                location: location.clone(),
                slot_index: offer.slot_index,
                profile: offer.profile.clone(),
                request,
            },
        );
    }

    /// Takes a slot out of the pool (freed by the job or lost).
    pub fn remove(&mut self, allocation_id: &AllocationId) -> Option<PooledSlot> {
        let slot = self.slots.remove(allocation_id)?;
        self.by_request.remove(&slot.request);
        Some(slot)
    }

    /// Takes every slot of one TaskExecutor out of the pool.
    pub fn remove_task_manager(&mut self, resource_id: &ResourceId) -> Vec<PooledSlot> {
        let ids: Vec<AllocationId> =
            self.slots.values().filter(|s| &s.location.resource_id == resource_id).map(|s| s.allocation_id).collect();
        ids.iter().filter_map(|a| self.remove(a)).collect()
    }

    /// Takes every slot out of the pool.
    pub fn drain(&mut self) -> Vec<PooledSlot> {
        self.by_request.clear();
        std::mem::take(&mut self.slots).into_values().collect()
    }
}
