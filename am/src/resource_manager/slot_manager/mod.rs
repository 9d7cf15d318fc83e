//! The SlotManager: a synchronous, deterministic state machine that keeps the
//! books on TaskManagers, slots and the jobs' declared requirements, and
//! answers every event with the decisions it implies as a list of [`Action`]s.
//!
//! - Declarative (FLIP-138): a job declares the whole multiset of profiles it
//!   needs; the SlotManager allocates the difference to what the job holds.
//!   Over-allocation is not reclaimed (the JobMaster frees what it does not use).
//! - Fine-grained: a slot is carved out of a TaskManager's *remaining* total;
//!   [`RequestedProfile::Unknown`] takes the TaskManager's default slot.
//! - Registered TaskManagers first (best fit, ties by id), then workers that
//!   are already requested, then new workers shaped by [`WorkerSizing`].
//!
//! Architecture invariant: no async, no clock (every call takes `now`), no
//! I/O, no cluster-manager types. The ResourceManager actor feeds events in
//! and carries the actions out (RPCs to TaskExecutors, driver requests,
//! messages to JobMasters).
//!
//! Layout: `allocation_strategy` decides (pure function over an aggregated
//! view); `task_manager_tracker` and `resource_tracker` hold state; this file
//! glues them together.

mod allocation_strategy;
mod resource_tracker;
mod task_manager_tracker;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ids::{AllocationId, InstanceId, JobId, ResourceId, SlotId};
use common::protocol::{ResourceRequirement, SlotReport};
use common::resources::{RequestedProfile, ResourceProfile, MIB};

use self::allocation_strategy::{fits_times, within_limit};
use self::resource_tracker::ResourceTracker;
use self::task_manager_tracker::{Slot, TaskManagerTracker};
use crate::resource_manager::worker::WorkerSpec;

/// How the SlotManager behaves. Check it with [`SlotManagerConfig::validate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotManagerConfig {
    /// TaskManagers that hold no slot longer than this are released.
    pub idle_timeout: Duration,
    /// How new TaskManagers are shaped.
    pub sizing: WorkerSizing,
    /// The TaskManager started for `Fixed` sizing and for "any slot" requests.
    pub default_worker: WorkerSpec,
    /// The largest TaskManager the cluster can start (`None` = unlimited).
    /// Bounds cpu, total memory and the extended resources it names.
    pub max_worker: Option<ResourceProfile>,
    /// A cap on all TaskManagers together, registered and requested
    /// (`None` = unlimited). Same dimensions as `max_worker`.
    pub max_total: Option<ResourceProfile>,
    /// After this many consecutive failed requests for one worker spec, the
    /// requirements waiting for it are reported unfulfillable. 0 = retry forever.
    pub max_failed_worker_requests: u32,
    /// The largest single slot (`None` = unlimited): on the local backend, the
    /// machine itself. TaskManagers of several slots may still oversubscribe it.
    pub max_slot: Option<ResourceProfile>,
    /// How `max_worker` / `max_slot` are named in messages, so they read alike on every backend.
    pub limit_words: LimitWords,
}

/// "a slot of X is larger than {what} (LIMIT); lower the vertex's resources to at most that, or {raise}".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitWords {
    pub what: String,
    pub raise: String,
}

impl Default for LimitWords {
    fn default() -> Self {
        Self {
            what: "the largest TaskManager the cluster can start".into(),
            raise: "raise the cluster manager's maximum container size".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerSizing {
    /// Every new TaskManager is `default_worker` (Flink's default).
    Fixed,
    /// Heterogeneous: a new TaskManager holds `slots_per_worker` slots of
    /// exactly the missing profile (fewer if `max_worker` is smaller), so a job
    /// asking 0.5 cpu/256 MB and 2 cpu/2 GB gets TaskManagers of two sizes.
    /// "Any slot" requests still get `default_worker`.
    FitToRequirement { slots_per_worker: u32 },
}

impl Default for SlotManagerConfig {
    /// Flink's defaults: 30 s idle timeout, fixed-size TaskManagers
    /// (here 4 slots of 1 cpu / 1 GB), no limits.
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(30),
            sizing: WorkerSizing::Fixed,
            default_worker: WorkerSpec::uniform(ResourceProfile::new(1000, 1024 * MIB), 4),
            max_worker: None,
            max_total: None,
            max_failed_worker_requests: 5,
            max_slot: None,
            limit_words: LimitWords::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotManagerConfigError {
    #[error("the default TaskManager has no slots; give it at least one slot (e.g. 4)")]
    NoSlots,
    #[error(
        "the default TaskManager's {num_slots} slots of {slot} do not fit in its total resources ({total}); \
         raise the TaskManager's resources or give it fewer or smaller slots"
    )]
    SlotsExceedTotal { num_slots: u32, slot: ResourceProfile, total: ResourceProfile },
    #[error(
        "the default TaskManager ({total}) is larger than the largest TaskManager the cluster can start ({max}); \
         configure a smaller TaskManager or raise the cluster manager's maximum container size"
    )]
    LargerThanMaxWorker { total: ResourceProfile, max: ResourceProfile },
    #[error("fit-to-requirement sizing needs at least one slot per TaskManager; set slots per worker to 1 or more")]
    NoSlotsPerWorker,
}

impl SlotManagerConfig {
    // Checked once at start-up; the profiles in the error are worth their size.
    #[allow(clippy::result_large_err)]
    pub fn validate(&self) -> Result<(), SlotManagerConfigError> {
        let w = &self.default_worker;
        if w.num_slots == 0 {
            return Err(SlotManagerConfigError::NoSlots);
        }
        if !w.default_slot.multiply(u64::from(w.num_slots)).fits_in(&w.total) {
            return Err(SlotManagerConfigError::SlotsExceedTotal {
                num_slots: w.num_slots,
                slot: w.default_slot.clone(),
                total: w.total.clone(),
            });
        }
        if let Some(max) = &self.max_worker {
            if !within_limit(&w.total, max) {
                return Err(SlotManagerConfigError::LargerThanMaxWorker { total: w.total.clone(), max: max.clone() });
            }
        }
        if self.sizing == (WorkerSizing::FitToRequirement { slots_per_worker: 0 }) {
            return Err(SlotManagerConfigError::NoSlotsPerWorker);
        }
        Ok(())
    }
}

/// A TaskExecutor registering (or registering again after a reconnect).
#[derive(Clone, Debug, PartialEq)]
pub struct TaskManagerRegistration {
    pub resource_id: ResourceId,
    pub instance_id: InstanceId,
    pub total: ResourceProfile,
    pub default_slot: ResourceProfile,
    pub num_slots: u32,
    /// Slots it already holds (after a ResourceManager failover, or a reconnect).
    pub slot_report: SlotReport,
}

/// A decision for the ResourceManager actor to carry out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send RequestSlot to the TaskExecutor `slot_id.resource_id`. Answer with
    /// [`SlotManager::slot_allocation_confirmed`] or
    /// [`SlotManager::slot_allocation_failed`].
    AllocateSlot { slot_id: SlotId, allocation_id: AllocationId, job_id: JobId, profile: ResourceProfile },
    /// Tell the TaskExecutor to free the slot (its job is gone).
    FreeSlot { slot_id: SlotId, allocation_id: AllocationId, job_id: JobId },
    /// Ask the driver for one more TaskManager of this shape. It counts as
    /// pending until a TaskManager of that total registers or
    /// [`SlotManager::worker_request_failed`] is called.
    StartWorker(WorkerSpec),
    /// Ask the driver to stop this TaskManager; the SlotManager has already
    /// forgotten it.
    ReleaseWorker { resource_id: ResourceId, reason: String },
    /// One requested worker of this shape is needed by nobody any more (its
    /// job found other slots, or ended): the driver withdraws the request if
    /// it still can (YARN: the outstanding ask goes down). The SlotManager no
    /// longer counts it as pending; if it registers anyway it is an idle
    /// TaskManager like any other.
    CancelWorker(WorkerSpec),
    /// A requirement that cannot be met; the JobMaster should fail the job
    /// with `reason` (it names the profile, the limit and the fix). Reported
    /// once per job and profile while the job keeps declaring it.
    Unfulfillable { job_id: JobId, profile: RequestedProfile, reason: String },
}

/// What the REST API shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SlotManagerOverview {
    pub task_managers: Vec<TaskManagerOverview>,
    /// Requested workers not registered yet, by spec.
    pub pending_workers: Vec<(WorkerSpec, u32)>,
    pub jobs: Vec<JobResourcesOverview>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskManagerOverview {
    pub resource_id: ResourceId,
    pub instance_id: InstanceId,
    pub total: ResourceProfile,
    pub free: ResourceProfile,
    pub default_slot: ResourceProfile,
    pub num_slots: u32,
    pub slots: Vec<SlotOverview>,
    /// Since when it holds no slot (`None` while it holds any).
    pub idle_since: Option<Instant>,
    /// False after a refused allocation, until its next slot report.
    pub accepting_allocations: bool,
    /// Why it has its shape: the requirement it was started for (`None` for a
    /// TaskManager that was not started by this ResourceManager, e.g. after a failover).
    pub why: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotOverview {
    pub slot_id: SlotId,
    pub allocation_id: AllocationId,
    pub job_id: JobId,
    pub profile: ResourceProfile,
    /// Confirmed by the TaskExecutor (RPC answer or slot report).
    pub confirmed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobResourcesOverview {
    pub job_id: JobId,
    pub declared: Vec<ResourceRequirement>,
    /// Slots held, by actual profile.
    pub allocated: Vec<(ResourceProfile, u32)>,
    pub missing: Vec<ResourceRequirement>,
    /// Profiles reported unfulfillable.
    pub unfulfillable: Vec<RequestedProfile>,
}

/// See the module documentation.
#[derive(Clone, Debug)]
pub struct SlotManager {
    config: SlotManagerConfig,
    task_managers: TaskManagerTracker,
    jobs: ResourceTracker,
    /// Consecutive failed requests per spec; reset when one registers.
    worker_failures: BTreeMap<WorkerSpec, (u32, String)>,
    /// Why each pending worker was asked for, oldest first, per shape.
    pending_why: BTreeMap<WorkerSpec, std::collections::VecDeque<String>>,
    /// Why each registered TaskManager has its shape.
    why: BTreeMap<ResourceId, String>,
    id_prefix: u64,
    next_id: u64,
}

impl SlotManager {
    /// Allocation ids are a random 64-bit prefix (so they stay unique across
    /// ResourceManager restarts) and a counter.
    pub fn new(config: SlotManagerConfig) -> Self {
        let prefix = (AllocationId::random().0.as_u128() >> 64) as u64;
        Self::with_allocation_id_prefix(config, prefix)
    }

    /// Fully deterministic: allocation ids are `prefix << 64 | counter`.
    pub fn with_allocation_id_prefix(config: SlotManagerConfig, prefix: u64) -> Self {
        Self {
            config,
            task_managers: TaskManagerTracker::default(),
            jobs: ResourceTracker::default(),
            worker_failures: BTreeMap::new(),
            pending_why: BTreeMap::new(),
            why: BTreeMap::new(),
            id_prefix: prefix,
            next_id: 1,
        }
    }

    pub fn config(&self) -> &SlotManagerConfig {
        &self.config
    }

    /// A TaskExecutor registered. If it was a requested worker (same total),
    /// that request is no longer pending. A second registration of the same
    /// resource id replaces the first: its slot report is the truth.
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn register_task_manager(&mut self, now: Instant, reg: TaskManagerRegistration) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.task_managers.get(&reg.resource_id).is_some() {
            self.drop_task_manager(&reg.resource_id);
        } else if let Some(spec) = self.task_managers.take_pending_for(&reg.total, &reg.default_slot) {
            self.worker_failures.remove(&spec);
            if let Some(why) = self.take_why(&spec, false) {
                self.why.insert(reg.resource_id.clone(), why);
            }
        }
        self.task_managers.register(
            now,
            reg.resource_id.clone(),
            reg.instance_id,
            reg.total,
            reg.default_slot,
            reg.num_slots,
        );
        for status in &reg.slot_report.slots {
            if let Some((allocation_id, job_id)) = status.allocation {
                let slot_id = SlotId { resource_id: reg.resource_id.clone(), index: status.slot_id.index };
                let slot = Slot { allocation_id, job_id, profile: status.profile.clone(), confirmed: true };
                self.put_reported(now, &slot_id, slot);
            }
        }
        self.check_requirements(now, &mut actions);
        actions
    }

    /// The TaskManager is gone (lost, terminated, unregistered). Its slots are
    /// gone with it; what its jobs still declare is allocated elsewhere.
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn unregister_task_manager(&mut self, now: Instant, id: &ResourceId) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.drop_task_manager(id) {
            self.check_requirements(now, &mut actions);
        }
        actions
    }

    /// Reconciles the books with a TaskExecutor's slot report (the TaskExecutor
    /// is right): unknown allocations are adopted, confirmed slots it no
    /// longer holds are freed, slots whose RequestSlot may still be in flight
    /// are kept. Also lifts the pause after a refused allocation. A report
    /// older (by `version`, the TaskExecutor's slot-table version) than the
    /// newest allocation it confirmed is ignored: it was taken before that
    /// slot existed, and would free it.
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn report_slot_status(
        &mut self,
        now: Instant,
        id: &ResourceId,
        report: &SlotReport,
        version: u64,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(tm) = self.task_managers.get(id) else {
            tracing::debug!(resource_id = %id, "slot report from an unregistered TaskManager, ignored");
            return actions;
        };
        if version < tm.min_report_version {
            tracing::debug!(resource_id = %id, version, newer = tm.min_report_version, "stale slot report, ignored");
            return actions;
        }
        let mut changed = !tm.accepting;
        let reported: BTreeMap<AllocationId, (u32, JobId, &ResourceProfile)> = report
            .slots
            .iter()
            .filter_map(|s| s.allocation.map(|(aid, job)| (aid, (s.slot_id.index, job, &s.profile))))
            .collect();
        let gone: Vec<AllocationId> = tm
            .slots
            .values()
            .filter(|s| s.confirmed && !reported.contains_key(&s.allocation_id))
            .map(|s| s.allocation_id)
            .collect();
        let adopt: Vec<(u32, Slot)> = reported
            .iter()
            .filter(|(aid, (index, job, profile))| {
                let known = tm.slots.get(index);
                !known.is_some_and(|s| s.allocation_id == **aid && s.job_id == *job && s.profile == **profile)
            })
            .map(|(&allocation_id, &(index, job_id, profile))| {
                (index, Slot { allocation_id, job_id, profile: profile.clone(), confirmed: true })
            })
            .collect();
        for aid in reported.keys() {
            self.task_managers.confirm(aid, None);
        }
        self.task_managers.set_accepting(now, id, true);
        for aid in gone {
            changed = true;
            if let Some((_, slot)) = self.task_managers.remove_slot(now, &aid) {
                self.jobs.remove_slot(slot.job_id, &slot.profile);
            }
        }
        for (index, slot) in adopt {
            changed = true;
            self.put_reported(now, &SlotId { resource_id: id.clone(), index }, slot);
        }
        if changed {
            self.check_requirements(now, &mut actions);
        }
        actions
    }

    /// The job's requirements, absolute (FLIP-138). An empty list withdraws them.
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn declare_requirements(&mut self, now: Instant, job_id: JobId, reqs: &[ResourceRequirement]) -> Vec<Action> {
        let mut actions = Vec::new();
        self.jobs.declare(job_id, reqs);
        self.check_requirements(now, &mut actions);
        actions
    }

    /// The JobMaster disconnected or the job ended: its requirements go and
    /// its slots are freed (and the TaskExecutors told so).
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn clear_job(&mut self, now: Instant, job_id: JobId) -> Vec<Action> {
        let mut actions = Vec::new();
        self.jobs.clear(job_id);
        for (slot_id, allocation_id) in self.task_managers.slots_of_job(job_id) {
            self.task_managers.remove_slot(now, &allocation_id);
            actions.push(Action::FreeSlot { slot_id, allocation_id, job_id });
        }
        self.check_requirements(now, &mut actions);
        actions
    }

    /// The TaskExecutor accepted the RequestSlot; `report_version` is its
    /// slot table's version with the slot in it. (A slot the JobMaster frees
    /// comes back through the TaskExecutor's next slot report, as in Flink.)
    pub fn slot_allocation_confirmed(&mut self, allocation_id: AllocationId, report_version: u64) {
        self.task_managers.confirm(&allocation_id, Some(report_version));
    }

    /// The TaskExecutor refused the RequestSlot or could not be reached. The
    /// slot is forgotten and the TaskManager gets no new allocation until its
    /// next slot report (its resources still count as coming, so no worker is
    /// started for them).
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn slot_allocation_failed(&mut self, now: Instant, allocation_id: AllocationId) -> Vec<Action> {
        let mut actions = Vec::new();
        if let Some((slot_id, slot)) = self.task_managers.remove_slot(now, &allocation_id) {
            self.jobs.remove_slot(slot.job_id, &slot.profile);
            self.task_managers.set_accepting(now, &slot_id.resource_id, false);
            self.check_requirements(now, &mut actions);
        }
        actions
    }

    /// A requested worker could not be started (the driver said so, or it
    /// ended before registering). Retried while requirements still need it,
    /// up to `max_failed_worker_requests` consecutive failures of this spec.
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn worker_request_failed(&mut self, now: Instant, spec: &WorkerSpec, reason: &str) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.task_managers.remove_pending(spec) {
            self.take_why(spec, false);
        }
        let entry = self.worker_failures.entry(spec.clone()).or_default();
        entry.0 += 1;
        entry.1 = reason.to_owned();
        self.check_requirements(now, &mut actions);
        actions
    }

    /// Releases TaskManagers idle for at least `idle_timeout`, unless a
    /// missing requirement could still use them.
    #[must_use = "the actions are the decisions; carry them out"]
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let missing = self.jobs.missing();
        let expired: Vec<(ResourceId, Duration)> = self
            .task_managers
            .iter()
            .filter_map(|(id, tm)| {
                let idle = now.saturating_duration_since(tm.idle_since?);
                let wanted = missing.iter().any(|m| fits_times(m.requested.resolve(&tm.default_slot), &tm.total) > 0);
                (idle >= self.config.idle_timeout && !wanted).then(|| (id.clone(), idle))
            })
            .collect();
        for (resource_id, idle) in &expired {
            self.task_managers.remove(resource_id);
            self.why.remove(resource_id);
            let reason = format!(
                "idle for {:.1} s (the idle timeout is {:.1} s)",
                idle.as_secs_f64(),
                self.config.idle_timeout.as_secs_f64()
            );
            tracing::info!(%resource_id, %reason, "releasing TaskManager");
            actions.push(Action::ReleaseWorker { resource_id: resource_id.clone(), reason });
        }
        if !expired.is_empty() {
            // Room under max_total may let a waiting requirement start a worker.
            self.check_requirements(now, &mut actions);
        }
        actions
    }

    pub fn overview(&self) -> SlotManagerOverview {
        let task_managers = self
            .task_managers
            .iter()
            .map(|(id, tm)| TaskManagerOverview {
                resource_id: id.clone(),
                instance_id: tm.instance_id,
                total: tm.total.clone(),
                free: tm.remaining.clone(),
                default_slot: tm.default_slot.clone(),
                num_slots: tm.num_slots,
                slots: tm
                    .slots
                    .iter()
                    .map(|(&index, s)| SlotOverview {
                        slot_id: SlotId { resource_id: id.clone(), index },
                        allocation_id: s.allocation_id,
                        job_id: s.job_id,
                        profile: s.profile.clone(),
                        confirmed: s.confirmed,
                    })
                    .collect(),
                idle_since: tm.idle_since,
                accepting_allocations: tm.accepting,
                why: self.why.get(id).cloned(),
            })
            .collect();
        let pending_workers = self.task_managers.pending().map(|(s, n)| (s.clone(), n)).collect();
        let jobs = self
            .jobs
            .job_ids()
            .map(|job_id| JobResourcesOverview {
                job_id,
                declared: self.jobs.declared(job_id),
                allocated: self.jobs.acquired(job_id),
                missing: self.jobs.missing_of(job_id),
                unfulfillable: self.jobs.given_up_of(job_id),
            })
            .collect();
        SlotManagerOverview { task_managers, pending_workers, jobs }
    }

    /// The reason of one pending worker of `spec`: the oldest (it registers
    /// first), or the newest (the one a cancel withdraws).
    fn take_why(&mut self, spec: &WorkerSpec, newest: bool) -> Option<String> {
        let q = self.pending_why.get_mut(spec)?;
        let why = if newest { q.pop_back() } else { q.pop_front() };
        if q.is_empty() {
            self.pending_why.remove(spec);
        }
        why
    }

    fn drop_task_manager(&mut self, id: &ResourceId) -> bool {
        self.why.remove(id);
        let Some(tm) = self.task_managers.remove(id) else { return false };
        for slot in tm.slots.values() {
            self.jobs.remove_slot(slot.job_id, &slot.profile);
        }
        true
    }

    fn put_reported(&mut self, now: Instant, slot_id: &SlotId, slot: Slot) {
        let (job_id, profile) = (slot.job_id, slot.profile.clone());
        for (_, old) in self.task_managers.put_reported(now, slot_id, slot) {
            self.jobs.remove_slot(old.job_id, &old.profile);
        }
        self.jobs.add_slots(job_id, &profile, 1);
    }

    /// Serves what is missing: asks the strategy for a plan and applies it,
    /// then withdraws the requested workers nobody needs any more.
    fn check_requirements(&mut self, now: Instant, actions: &mut Vec<Action>) {
        self.serve_missing(now, actions);
        self.cancel_unneeded_workers(actions);
    }

    /// A pending worker is unneeded when, without it, the strategy would start
    /// no new worker: what is missing fits in what is registered or still on
    /// its way. One check per distinct pending shape (not per worker), each a
    /// pure plan over aggregated groups.
    fn cancel_unneeded_workers(&mut self, actions: &mut Vec<Action>) {
        let shapes: Vec<WorkerSpec> = self.task_managers.pending().map(|(s, _)| s.clone()).collect();
        for spec in shapes.into_iter().rev() {
            while self.task_managers.pending().any(|(s, _)| *s == spec) && !self.needed_with_one_fewer(&spec) {
                self.task_managers.remove_pending(&spec);
                self.take_why(&spec, true);
                tracing::info!(total = %spec.total, slots = spec.num_slots, "cancelling a requested TaskManager nobody needs");
                actions.push(Action::CancelWorker(spec.clone()));
            }
        }
    }

    fn needed_with_one_fewer(&self, spec: &WorkerSpec) -> bool {
        let missing: Vec<_> = self.jobs.missing().into_iter().filter(|m| !m.given_up).collect();
        if missing.is_empty() {
            return false;
        }
        let key =
            allocation_strategy::GroupKey { remaining: spec.total.clone(), default_slot: spec.default_slot.clone() };
        let mut reserved = self.task_managers.reserved_groups();
        if let Some(entry) = reserved.iter_mut().find(|(k, n)| *k == key && *n > 0) {
            entry.1 -= 1;
        }
        let plan = allocation_strategy::plan(allocation_strategy::Input {
            config: &self.config,
            missing,
            registered: self.task_managers.registered_groups(),
            reserved,
            totals: self.task_managers.totals(),
            provisioned: allocation_strategy::saturating_sub(self.task_managers.provisioned(), &spec.total),
            worker_failures: &self.worker_failures,
        });
        !plan.new_workers.is_empty()
    }

    fn serve_missing(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let missing = self.jobs.missing();
        if missing.is_empty() {
            return;
        }
        let plan = allocation_strategy::plan(allocation_strategy::Input {
            config: &self.config,
            missing,
            registered: self.task_managers.registered_groups(),
            reserved: self.task_managers.reserved_groups(),
            totals: self.task_managers.totals(),
            provisioned: self.task_managers.provisioned().clone(),
            worker_failures: &self.worker_failures,
        });
        let (prefix, next_id) = (self.id_prefix, &mut self.next_id);
        let mut new_id = || {
            let id = AllocationId::from_u128((u128::from(prefix) << 64) | u128::from(*next_id));
            *next_id += 1;
            id
        };
        for step in plan.allocations {
            for _ in 0..step.task_managers {
                let Some(resource_id) = self.task_managers.first_in_group(&step.group) else {
                    tracing::error!(group = ?step.group, "allocation plan names a group with too few TaskManagers");
                    break;
                };
                let carved = self.task_managers.carve(
                    now,
                    &resource_id,
                    step.job_id,
                    &step.profile,
                    step.slots_each,
                    &mut new_id,
                );
                self.jobs.add_slots(step.job_id, &step.profile, carved.len() as u32);
                for (index, allocation_id) in carved {
                    actions.push(Action::AllocateSlot {
                        slot_id: SlotId { resource_id: resource_id.clone(), index },
                        allocation_id,
                        job_id: step.job_id,
                        profile: step.profile.clone(),
                    });
                }
            }
        }
        for (spec, why) in plan.new_workers {
            self.task_managers.add_pending(spec.clone());
            self.pending_why.entry(spec.clone()).or_default().push_back(why);
            actions.push(Action::StartWorker(spec));
        }
        for u in plan.unfulfillable {
            tracing::warn!(job_id = %u.job_id, profile = ?u.requested, reason = %u.reason, "requirement unfulfillable");
            self.jobs.give_up(u.job_id, u.requested.clone());
            if let Some(spec) = u.failed_spec {
                // Later declarations get a fresh budget of attempts.
                self.worker_failures.remove(&spec);
            }
            actions.push(Action::Unfulfillable { job_id: u.job_id, profile: u.requested, reason: u.reason });
        }
    }
}
