//! The books on TaskManagers: registered ones with their carved slots and
//! remaining resources, and requested workers that have not registered yet.
//! State only; the decisions are in `allocation_strategy`.
//!
//! Registered TaskManagers open for allocations are also indexed by
//! [`GroupKey`] (remaining resources + default slot), which is the aggregated
//! view the strategy plans on.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use common::ids::{AllocationId, InstanceId, JobId, ResourceId, SlotId};
use common::resources::ResourceProfile;

use super::allocation_strategy::{saturating_sub, GroupKey};
use crate::resource_manager::worker::WorkerSpec;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub allocation_id: AllocationId,
    pub job_id: JobId,
    pub profile: ResourceProfile,
    /// False while the RequestSlot may still be in flight: a slot report that
    /// does not show it yet must not free it.
    pub confirmed: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct TaskManager {
    pub instance_id: InstanceId,
    pub total: ResourceProfile,
    pub default_slot: ResourceProfile,
    pub num_slots: u32,
    pub remaining: ResourceProfile,
    /// By slot index.
    pub slots: BTreeMap<u32, Slot>,
    /// Since when it holds no slot.
    pub idle_since: Option<Instant>,
    /// False after it refused an allocation, until its next slot report, so a
    /// broken TaskExecutor is not asked again and again.
    pub accepting: bool,
    /// Its slot table's version when it confirmed our newest allocation: a
    /// report older than that was taken before the slot existed.
    pub min_report_version: u64,
}

impl TaskManager {
    fn group_key(&self) -> Option<GroupKey> {
        self.accepting.then(|| GroupKey { remaining: self.remaining.clone(), default_slot: self.default_slot.clone() })
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct TaskManagerTracker {
    tms: BTreeMap<ResourceId, TaskManager>,
    groups: BTreeMap<GroupKey, BTreeSet<ResourceId>>,
    /// Registered TaskManagers not taking allocations (the rest are in `groups`).
    paused: BTreeSet<ResourceId>,
    allocations: HashMap<AllocationId, SlotId>,
    /// Registered totals, counted.
    totals: BTreeMap<ResourceProfile, u32>,
    pending: BTreeMap<WorkerSpec, u32>,
    /// Totals of registered and pending workers together.
    provisioned: ResourceProfile,
}

impl TaskManagerTracker {
    pub fn get(&self, id: &ResourceId) -> Option<&TaskManager> {
        self.tms.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ResourceId, &TaskManager)> {
        self.tms.iter()
    }

    pub fn register(
        &mut self,
        now: Instant,
        id: ResourceId,
        instance_id: InstanceId,
        total: ResourceProfile,
        default_slot: ResourceProfile,
        num_slots: u32,
    ) {
        *self.totals.entry(total.clone()).or_default() += 1;
        self.provisioned = self.provisioned.add(&total);
        let tm = TaskManager {
            instance_id,
            remaining: total.clone(),
            total,
            default_slot,
            num_slots,
            slots: BTreeMap::new(),
            idle_since: Some(now),
            accepting: true,
            min_report_version: 0,
        };
        if let Some(key) = tm.group_key() {
            self.groups.entry(key).or_default().insert(id.clone());
        }
        self.tms.insert(id, tm);
    }

    /// Forgets a TaskManager and its slots; returns it so the caller can
    /// settle the jobs' books.
    pub fn remove(&mut self, id: &ResourceId) -> Option<TaskManager> {
        let tm = self.tms.remove(id)?;
        if let Some(key) = tm.group_key() {
            ungroup(&mut self.groups, &key, id);
        }
        self.paused.remove(id);
        for slot in tm.slots.values() {
            self.allocations.remove(&slot.allocation_id);
        }
        if let Some(n) = self.totals.get_mut(&tm.total) {
            *n -= 1;
            if *n == 0 {
                self.totals.remove(&tm.total);
            }
        }
        self.provisioned = saturating_sub(&self.provisioned, &tm.total);
        Some(tm)
    }

    /// Changes one TaskManager and keeps its remaining resources, idle time
    /// and group in step.
    fn update<R>(&mut self, now: Instant, id: &ResourceId, f: impl FnOnce(&mut TaskManager) -> R) -> Option<R> {
        let tm = self.tms.get_mut(id)?;
        let old_key = tm.group_key();
        let r = f(tm);
        let used = tm.slots.values().fold(ResourceProfile::ZERO, |acc, s| acc.add(&s.profile));
        tm.remaining = saturating_sub(&tm.total, &used);
        tm.idle_since = match (tm.slots.is_empty(), tm.idle_since) {
            (false, _) => None,
            (true, None) => Some(now),
            (true, since) => since,
        };
        let new_key = tm.group_key();
        if tm.accepting {
            self.paused.remove(id);
        } else {
            self.paused.insert(id.clone());
        }
        if old_key != new_key {
            if let Some(k) = old_key {
                ungroup(&mut self.groups, &k, id);
            }
            if let Some(k) = new_key {
                self.groups.entry(k).or_default().insert(id.clone());
            }
        }
        Some(r)
    }

    /// Carves `count` slots of `profile` for `job_id` at the lowest free
    /// indexes. Returns (index, allocation id) per slot.
    pub fn carve(
        &mut self,
        now: Instant,
        id: &ResourceId,
        job_id: JobId,
        profile: &ResourceProfile,
        count: u32,
        mut next_id: impl FnMut() -> AllocationId,
    ) -> Vec<(u32, AllocationId)> {
        let carved = self
            .update(now, id, |tm| {
                let mut out = Vec::with_capacity(count as usize);
                let mut index = 0u32;
                while out.len() < count as usize {
                    if let Entry::Vacant(free) = tm.slots.entry(index) {
                        let allocation_id = next_id();
                        free.insert(Slot { allocation_id, job_id, profile: profile.clone(), confirmed: false });
                        out.push((index, allocation_id));
                    }
                    index += 1;
                }
                out
            })
            .unwrap_or_default();
        for (index, allocation_id) in &carved {
            self.allocations.insert(*allocation_id, SlotId { resource_id: id.clone(), index: *index });
        }
        carved
    }

    /// Records a slot a TaskExecutor reports. Whatever held that index or
    /// that allocation id before (even the same slot) is replaced and returned.
    pub fn put_reported(&mut self, now: Instant, slot_id: &SlotId, slot: Slot) -> Vec<(SlotId, Slot)> {
        let mut displaced = Vec::new();
        if let Some(old) = self.allocations.get(&slot.allocation_id).cloned() {
            if old != *slot_id {
                displaced.extend(self.remove_slot(now, &slot.allocation_id));
            }
        }
        let allocation_id = slot.allocation_id;
        let previous = self.update(now, &slot_id.resource_id, |tm| tm.slots.insert(slot_id.index, slot)).flatten();
        if let Some(prev) = previous {
            if prev.allocation_id != allocation_id {
                self.allocations.remove(&prev.allocation_id);
            }
            displaced.push((slot_id.clone(), prev));
        }
        self.allocations.insert(allocation_id, slot_id.clone());
        displaced
    }

    pub fn remove_slot(&mut self, now: Instant, allocation_id: &AllocationId) -> Option<(SlotId, Slot)> {
        let slot_id = self.allocations.remove(allocation_id)?;
        let slot = self.update(now, &slot_id.resource_id, |tm| tm.slots.remove(&slot_id.index)).flatten()?;
        Some((slot_id, slot))
    }

    /// All slots of one job, in slot id order.
    pub fn slots_of_job(&self, job_id: JobId) -> Vec<(SlotId, AllocationId)> {
        let mut out: Vec<_> = self
            .allocations
            .iter()
            .filter(|(aid, sid)| {
                self.tms
                    .get(&sid.resource_id)
                    .and_then(|tm| tm.slots.get(&sid.index))
                    .is_some_and(|s| s.job_id == job_id && s.allocation_id == **aid)
            })
            .map(|(aid, sid)| (sid.clone(), *aid))
            .collect();
        out.sort();
        out
    }

    /// The slot is the TaskExecutor's (it said so); `version`, its slot
    /// table's version then, if it told.
    pub fn confirm(&mut self, allocation_id: &AllocationId, version: Option<u64>) {
        let Some(sid) = self.allocations.get(allocation_id) else { return };
        if let Some(tm) = self.tms.get_mut(&sid.resource_id) {
            if let Some(v) = version {
                tm.min_report_version = tm.min_report_version.max(v);
            }
            if let Some(slot) = tm.slots.get_mut(&sid.index) {
                slot.confirmed = true;
            }
        }
    }

    pub fn set_accepting(&mut self, now: Instant, id: &ResourceId, accepting: bool) {
        self.update(now, id, |tm| tm.accepting = accepting);
    }

    /// The first TaskManager (by id) of a group.
    pub fn first_in_group(&self, key: &GroupKey) -> Option<ResourceId> {
        self.groups.get(key).and_then(|s| s.iter().next()).cloned()
    }

    /// Registered TaskManagers open for allocations, by group.
    pub fn registered_groups(&self) -> Vec<(GroupKey, u32)> {
        self.groups.iter().map(|(k, s)| (k.clone(), s.len() as u32)).collect()
    }

    /// Resources on their way without asking: pending workers, and registered
    /// TaskManagers that take no allocations until their next slot report.
    pub fn reserved_groups(&self) -> Vec<(GroupKey, u32)> {
        let pending = self
            .pending
            .iter()
            .map(|(spec, &n)| (GroupKey { remaining: spec.total.clone(), default_slot: spec.default_slot.clone() }, n));
        let closed = self
            .paused
            .iter()
            .filter_map(|id| self.tms.get(id))
            .map(|tm| (GroupKey { remaining: tm.remaining.clone(), default_slot: tm.default_slot.clone() }, 1));
        pending.chain(closed).collect()
    }

    /// Totals of every registered TaskManager and pending worker.
    pub fn totals(&self) -> Vec<&ResourceProfile> {
        self.totals.keys().chain(self.pending.keys().map(|s| &s.total)).collect()
    }

    pub fn provisioned(&self) -> &ResourceProfile {
        &self.provisioned
    }

    pub fn add_pending(&mut self, spec: WorkerSpec) {
        self.provisioned = self.provisioned.add(&spec.total);
        *self.pending.entry(spec).or_default() += 1;
    }

    /// Forgets one pending worker of `spec`; false if there was none.
    pub fn remove_pending(&mut self, spec: &WorkerSpec) -> bool {
        let Some(n) = self.pending.get_mut(spec) else { return false };
        *n -= 1;
        if *n == 0 {
            self.pending.remove(spec);
        }
        self.provisioned = saturating_sub(&self.provisioned, &spec.total);
        true
    }

    /// The pending worker a registering TaskManager most likely is: same
    /// total and default slot, else same total. Removes and returns its spec.
    pub fn take_pending_for(&mut self, total: &ResourceProfile, default_slot: &ResourceProfile) -> Option<WorkerSpec> {
        let spec = self
            .pending
            .keys()
            .find(|s| s.total == *total && s.default_slot == *default_slot)
            .or_else(|| self.pending.keys().find(|s| s.total == *total))
            .cloned()?;
        self.remove_pending(&spec);
        Some(spec)
    }

    pub fn pending(&self) -> impl Iterator<Item = (&WorkerSpec, u32)> {
        self.pending.iter().map(|(s, &n)| (s, n))
    }
}

fn ungroup(groups: &mut BTreeMap<GroupKey, BTreeSet<ResourceId>>, key: &GroupKey, id: &ResourceId) {
    if let Some(set) = groups.get_mut(key) {
        set.remove(id);
        if set.is_empty() {
            groups.remove(key);
        }
    }
}
