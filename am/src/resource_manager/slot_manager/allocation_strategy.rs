//! The allocation strategy: a pure function from "what is missing" and a
//! read-only, aggregated view of the cluster to a [`Plan`] (slots to carve on
//! registered TaskManagers, workers to start, requirements that can never be
//! met). No clock, no I/O, no mutation of the trackers.
//!
//! It works on *groups* of TaskManagers that are interchangeable (same
//! remaining resources, same default slot), never on single TaskManagers, so a
//! plan costs O(groups x distinct requirements), not O(TaskManagers x slots).
//! A step says "carve `slots_each` slots on `task_managers` TaskManagers of
//! group G"; the SlotManager applies steps in order, taking the TaskManagers
//! of a group by id, so the result is deterministic.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;
use std::ops::Bound;

use common::ids::JobId;
use common::resources::{RequestedProfile, ResourceProfile};

use super::resource_tracker::Missing;
use super::{SlotManagerConfig, WorkerSizing};
use crate::resource_manager::worker::WorkerSpec;

/// Interchangeable TaskManagers: same remaining resources, same default slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct GroupKey {
    pub remaining: ResourceProfile,
    pub default_slot: ResourceProfile,
}

impl GroupKey {
    /// Best fit = smallest first: TaskManagers without extended resources
    /// before those with (so gpus stay free for the requests that need them),
    /// then by cpu, then by memory.
    fn fit_order(&self) -> (u64, u64, u64) {
        let r = &self.remaining;
        (r.extended.values().sum(), r.cpu_millis, r.total_memory_bytes())
    }
}

impl Ord for GroupKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.fit_order()
            .cmp(&other.fit_order())
            .then_with(|| self.remaining.cmp(&other.remaining))
            .then_with(|| self.default_slot.cmp(&other.default_slot))
    }
}

impl PartialOrd for GroupKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// What the strategy sees. Everything is aggregated.
pub(crate) struct Input<'a> {
    pub config: &'a SlotManagerConfig,
    pub missing: Vec<Missing>,
    /// Registered TaskManagers open for allocations, by group.
    pub registered: Vec<(GroupKey, u32)>,
    /// Resources that will be available without asking for more: requested
    /// workers not registered yet, and registered TaskManagers that are not
    /// taking allocations right now.
    pub reserved: Vec<(GroupKey, u32)>,
    /// Totals of every registered or pending TaskManager: a requirement that
    /// fits one of them waits instead of being unfulfillable.
    pub totals: Vec<&'a ResourceProfile>,
    /// Registered plus pending totals, for `max_total`.
    pub provisioned: ResourceProfile,
    /// Consecutive failed requests per worker spec.
    /// Consecutive failed requests per worker spec, with the last one's reason.
    pub worker_failures: &'a BTreeMap<WorkerSpec, (u32, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlannedAllocation {
    pub job_id: JobId,
    pub profile: ResourceProfile,
    pub group: GroupKey,
    pub task_managers: u32,
    pub slots_each: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unfulfillable {
    pub job_id: JobId,
    pub requested: RequestedProfile,
    pub reason: String,
    /// Set when the reason is repeated worker failures of this spec.
    pub failed_spec: Option<WorkerSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    pub allocations: Vec<PlannedAllocation>,
    /// Workers to start, each with why it has its shape (for `/taskmanagers` and `status`).
    pub new_workers: Vec<(WorkerSpec, String)>,
    pub unfulfillable: Vec<Unfulfillable>,
}

/// Decides how to serve `input.missing`: registered TaskManagers first (best
/// fit), then the resources already on their way, then new workers shaped by
/// the configured sizing, within `max_worker` and `max_total`.
pub(crate) fn plan(input: Input<'_>) -> Plan {
    let config = input.config;
    let mut missing = input.missing;
    // Large exact profiles first (they are the hardest to place), "any slot" last.
    missing.sort_by(|a, b| {
        let key = |m: &Missing| match &m.requested {
            RequestedProfile::Exact(p) => (false, Reverse(p.clone()), m.job_id),
            RequestedProfile::Unknown => (true, Reverse(ResourceProfile::ZERO), m.job_id),
        };
        key(a).cmp(&key(b))
    });
    let mut registered: BTreeMap<GroupKey, u32> = BTreeMap::new();
    for (k, n) in input.registered {
        *registered.entry(k).or_default() += n;
    }
    let mut coming: BTreeMap<GroupKey, u32> = BTreeMap::new();
    for (k, n) in input.reserved {
        *coming.entry(k).or_default() += n;
    }
    let mut provisioned = input.provisioned;
    let mut out = Plan::default();

    for m in missing {
        let mut n = place(&mut registered, &m.requested, m.count, |group, profile, task_managers, slots_each| {
            out.allocations.push(PlannedAllocation {
                job_id: m.job_id,
                profile: profile.clone(),
                group: group.clone(),
                task_managers,
                slots_each,
            })
        });
        if n > 0 {
            n = place(&mut coming, &m.requested, n, |_, _, _, _| {});
        }
        if n == 0 || m.given_up {
            continue;
        }
        let give_up = |reason: String, failed_spec: Option<WorkerSpec>| Unfulfillable {
            job_id: m.job_id,
            requested: m.requested.clone(),
            reason,
            failed_spec,
        };
        let spec = match worker_spec_for(config, &m.requested) {
            Ok(spec) => spec,
            Err(reason) => {
                // A TaskManager that could hold it exists or is coming: wait for it to free up.
                if !fits_any(&m.requested, &input.totals) {
                    out.unfulfillable.push(give_up(reason, None));
                }
                continue;
            }
        };
        let profile = m.requested.resolve(&spec.default_slot).clone();
        let per_worker = fits_times(&profile, &spec.total).min(u64::from(n)) as u32;
        if per_worker == 0 {
            // worker_spec_for checked that the profile fits; keep the loop finite regardless.
            continue;
        }
        // Fit sizing shapes a new TaskManager to what is still missing (at most
        // `slots_per_worker` slots): the TaskManagers add up to what the job
        // declares, and a bounded queue is not asked for room nobody will use.
        // "Any slot" requests get that many default slots.
        let shaped = |take: u32| match &config.sizing {
            WorkerSizing::FitToRequirement { .. } => WorkerSpec::uniform(profile.clone(), take),
            WorkerSizing::Fixed => spec.clone(),
        };
        let first = shaped(per_worker.min(n));
        let (failures, last) = input.worker_failures.get(&first).map(|(n, r)| (*n, r.as_str())).unwrap_or((0, ""));
        if config.max_failed_worker_requests > 0 && failures >= config.max_failed_worker_requests {
            let reason = format!(
                "{failures} consecutive requests for a TaskManager of {} ({} slot{} of {}) failed, the last with: \
                 {last}; check the cluster manager's diagnostics (queue capacity, node resources, image or \
                 launch errors) and submit the job again",
                first.total,
                first.num_slots,
                if first.num_slots == 1 { "" } else { "s" },
                first.default_slot
            );
            out.unfulfillable.push(give_up(reason, Some(first)));
            continue;
        }
        while n > 0 {
            let take = per_worker.min(n);
            let worker = shaped(take);
            let after = provisioned.add(&worker.total);
            if let Some(max_total) = &config.max_total {
                if !within_limit(&after, max_total) {
                    if !within_limit(&worker.total, max_total) {
                        let reason = format!(
                            "a single TaskManager of {} for slots of {} already exceeds the limit on all \
                             TaskManagers together ({max_total}); raise that limit or lower the job's resources",
                            worker.total, profile
                        );
                        out.unfulfillable.push(give_up(reason, None));
                    }
                    // Otherwise the job waits until other TaskManagers are released.
                    break;
                }
            }
            provisioned = after;
            n -= take;
            let left = saturating_sub(&worker.total, &profile.multiply(u64::from(take)));
            *coming.entry(GroupKey { remaining: left, default_slot: worker.default_slot.clone() }).or_default() += 1;
            let why = match (&config.sizing, &m.requested) {
                (WorkerSizing::FitToRequirement { slots_per_worker }, RequestedProfile::Exact(_)) => format!(
                    "asked for job {}: {take} slot(s) of {profile}; shaped to fit (at most {slots_per_worker} slots per \
                     TaskManager)",
                    m.job_id
                ),
                (WorkerSizing::FitToRequirement { .. }, RequestedProfile::Unknown) => format!(
                    "asked for job {}: {take} slot(s) of any size; default slots of {} (--slot-cpu, --slot-memory)",
                    m.job_id, worker.default_slot
                ),
                (WorkerSizing::Fixed, _) => format!(
                    "asked for job {}: {take} slot(s) of {profile}; fixed sizing ({} slots of {})",
                    m.job_id, worker.num_slots, worker.default_slot
                ),
            };
            out.new_workers.push((worker, why));
        }
    }
    out
}

/// Places up to `n` slots of `requested` on `groups`, best fit first, packing
/// each TaskManager as full as the requirement allows. Calls `step` for every
/// (group, profile, TaskManagers, slots each) it uses and returns how many
/// slots it could not place.
fn place(
    groups: &mut BTreeMap<GroupKey, u32>,
    requested: &RequestedProfile,
    mut n: u32,
    mut step: impl FnMut(&GroupKey, &ResourceProfile, u32, u32),
) -> u32 {
    // Carving strictly shrinks a group's fit order (or leaves it unchanged for
    // an all-zero slot), so walking forward from a cursor never revisits a
    // group that was just produced.
    let mut cursor: Option<GroupKey> = None;
    while n > 0 {
        let next = match &cursor {
            None => groups.iter().next(),
            Some(c) => groups.range((Bound::Excluded(c), Bound::Unbounded)).next(),
        };
        let Some((key, &count)) = next else { break };
        let key = key.clone();
        cursor = Some(key.clone());
        let profile = requested.resolve(&key.default_slot).clone();
        let per_tm = fits_times(&profile, &key.remaining).min(u64::from(n)) as u32;
        if per_tm == 0 || count == 0 {
            continue;
        }
        let full = (n / per_tm).min(count);
        let mut uses = Vec::with_capacity(2);
        if full > 0 {
            uses.push((full, per_tm));
            n -= full * per_tm;
        }
        if n > 0 && n < per_tm && count > full {
            uses.push((1, n));
            n = 0;
        }
        for (tms, each) in uses {
            step(&key, &profile, tms, each);
            take_from_group(groups, &key, tms);
            let left = saturating_sub(&key.remaining, &profile.multiply(u64::from(each)));
            *groups.entry(GroupKey { remaining: left, default_slot: key.default_slot.clone() }).or_default() += tms;
        }
    }
    n
}

fn take_from_group(groups: &mut BTreeMap<GroupKey, u32>, key: &GroupKey, n: u32) {
    if let Some(c) = groups.get_mut(key) {
        *c = c.saturating_sub(n);
        if *c == 0 {
            groups.remove(key);
        }
    }
}

/// The shape of a new TaskManager for `requested` under the configured
/// sizing, or why none can hold it.
pub(crate) fn worker_spec_for(config: &SlotManagerConfig, requested: &RequestedProfile) -> Result<WorkerSpec, String> {
    if let (Some(max), RequestedProfile::Exact(p)) = (&config.max_slot, requested) {
        if !within_limit(p, max) {
            let words = &config.limit_words;
            return Err(format!(
                "a slot of {p} is larger than {} ({max}); lower the vertex's resources to at most that, or {}",
                words.what, words.raise
            ));
        }
    }
    let fixed = |config: &SlotManagerConfig| -> Result<WorkerSpec, String> {
        let spec = &config.default_worker;
        if let Some(max) = &config.max_worker {
            if !within_limit(&spec.total, max) {
                return Err(format!(
                    "the configured TaskManager size ({}) is larger than the largest TaskManager the cluster \
                     can start ({max}); configure smaller TaskManagers or raise the cluster manager's \
                     maximum container size",
                    spec.total
                ));
            }
        }
        let profile = requested.resolve(&spec.default_slot);
        if fits_times(profile, &spec.total) == 0 {
            return Err(format!(
                "a slot of {profile} does not fit in a TaskManager of the configured size ({}) and no \
                 registered TaskManager is large enough; lower the vertex's resources, configure larger \
                 TaskManagers, or size TaskManagers to the requirements",
                spec.total
            ));
        }
        Ok(spec.clone())
    };
    match (&config.sizing, requested) {
        (WorkerSizing::Fixed, _) | (WorkerSizing::FitToRequirement { .. }, RequestedProfile::Unknown) => fixed(config),
        (WorkerSizing::FitToRequirement { slots_per_worker }, RequestedProfile::Exact(p)) => {
            let mut slots = u64::from((*slots_per_worker).max(1));
            if let Some(max) = &config.max_worker {
                slots = slots.min(times_within_limit(p, max));
                if slots == 0 {
                    let words = &config.limit_words;
                    return Err(format!(
                        "a slot of {p} is larger than {} ({max}); lower the vertex's resources to at most that, or {}",
                        words.what, words.raise
                    ));
                }
            }
            Ok(WorkerSpec::uniform(p.clone(), slots as u32))
        }
    }
}

fn fits_any(requested: &RequestedProfile, totals: &[&ResourceProfile]) -> bool {
    match requested {
        RequestedProfile::Unknown => !totals.is_empty(),
        RequestedProfile::Exact(p) => totals.iter().any(|t| p.fits_in(t)),
    }
}

/// How many slots of `p` fit in `remaining` (every component counts). An
/// all-zero profile fits without limit.
pub(crate) fn fits_times(p: &ResourceProfile, remaining: &ResourceProfile) -> u64 {
    let mut k = u64::MAX;
    let pairs = [
        (p.cpu_millis, remaining.cpu_millis),
        (p.task_heap_bytes, remaining.task_heap_bytes),
        (p.task_off_heap_bytes, remaining.task_off_heap_bytes),
        (p.managed_bytes, remaining.managed_bytes),
        (p.network_bytes, remaining.network_bytes),
    ];
    // `checked_div` is `None` for a zero need: that component does not limit.
    for (need, have) in pairs {
        if let Some(q) = have.checked_div(need) {
            k = k.min(q);
        }
    }
    for (name, &need) in &p.extended {
        if let Some(q) = remaining.extended.get(name).copied().unwrap_or(0).checked_div(need) {
            k = k.min(q);
        }
    }
    k
}

/// Cluster limits (`max_worker`, `max_total`) bound cpu, memory as a whole
/// (what a container is given) and the extended resources they name; an
/// extended resource a limit does not name is not limited by it.
pub(crate) fn within_limit(p: &ResourceProfile, limit: &ResourceProfile) -> bool {
    p.cpu_millis <= limit.cpu_millis
        && p.total_memory_bytes() <= limit.total_memory_bytes()
        && limit.extended.iter().all(|(k, l)| p.extended.get(k).copied().unwrap_or(0) <= *l)
}

/// How many copies of `p` stay within `limit` (see [`within_limit`]).
fn times_within_limit(p: &ResourceProfile, limit: &ResourceProfile) -> u64 {
    let mut k = u64::MAX;
    let pairs = [(p.cpu_millis, limit.cpu_millis), (p.total_memory_bytes(), limit.total_memory_bytes())];
    let extended = limit.extended.iter().map(|(name, &l)| (p.extended.get(name).copied().unwrap_or(0), l));
    for (need, have) in pairs.into_iter().chain(extended) {
        if let Some(q) = have.checked_div(need) {
            k = k.min(q);
        }
    }
    k
}

/// Component-wise `a - b`, stopping at zero.
pub(crate) fn saturating_sub(a: &ResourceProfile, b: &ResourceProfile) -> ResourceProfile {
    let mut extended = a.extended.clone();
    for (k, v) in &b.extended {
        if let Some(e) = extended.get_mut(k) {
            *e = e.saturating_sub(*v);
        }
    }
    extended.retain(|_, v| *v > 0);
    ResourceProfile {
        cpu_millis: a.cpu_millis.saturating_sub(b.cpu_millis),
        task_heap_bytes: a.task_heap_bytes.saturating_sub(b.task_heap_bytes),
        task_off_heap_bytes: a.task_off_heap_bytes.saturating_sub(b.task_off_heap_bytes),
        managed_bytes: a.managed_bytes.saturating_sub(b.managed_bytes),
        network_bytes: a.network_bytes.saturating_sub(b.network_bytes),
        extended,
    }
}
