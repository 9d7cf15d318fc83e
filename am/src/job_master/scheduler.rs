//! The JobMaster's pure core: every input (start, slot offers, task state
//! updates, TaskManager loss, cancel, timer) goes in as a method call with
//! the current `Instant`, and what to do comes out as [`JobMasterAction`]s
//! for the async actor to carry out. No I/O, no clock reads, no async.
//!
//! Choices (Flink's, unless said otherwise):
//! - Requirements are declared absolute (FLIP-138): the profiles of every
//!   shared slot the job still needs, held or not. A slot whose subtasks have
//!   all finished is freed and leaves the declaration.
//! - A region is deployed only once every slot its subtasks need is held, so
//!   every consumer's TDD names its producers' data addresses.
//! - A failure (one subtask, or all subtasks of a lost TaskManager or slot)
//!   uses up one restart. With restarts left, the failed regions' other
//!   attempts are cancelled; once they are all terminal *and* the delay has
//!   passed, the regions get new attempts. Slots that are still alive are
//!   kept across the restart (lost ones are re-declared and re-offered).
//!   The job shows RESTARTING while some region waits to restart.
//! - With no restart left the job goes FAILING, cancels everything, and ends
//!   FAILED with the root cause once every attempt is terminal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Instant;

use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use common::jobspec::{JobSpec, Partitioning};
use common::protocol::{
    ExecutionState, InputChannelDescriptor, InputGateDescriptor, ResourceRequirement, ResultPartitionDescriptor,
    ResultPartitionId, SlotOffer, TaskDeploymentDescriptor, TaskExecutionState,
};
use common::resources::RequestedProfile;
use serde::Serialize;

use super::execution_graph::{ExecutionGraph, JobStatus, RegionPhase};
use super::restart::{RestartDecision, RestartTracker};
use super::slot_pool::{satisfies, SlotPool, TaskManagerLocation};

/// What goes into every TaskDeploymentDescriptor besides the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentContext {
    pub job_master_id: JobMasterId,
    /// Where the JobMaster listens for task state updates.
    pub job_master_address: String,
    /// Where TaskExecutors find the bundle's files.
    pub bundle_dir: PathBuf,
}

/// What the JobMaster actor must do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum JobMasterAction {
    /// Send `DeclareResourceRequirements` to the ResourceManager: the whole
    /// of what the job needs now (an empty list withdraws its needs).
    DeclareRequirements(Vec<ResourceRequirement>),
    /// Submit a task to a TaskExecutor.
    Deploy { task_manager: TaskManagerLocation, tdd: Box<TaskDeploymentDescriptor> },
    /// Ask a TaskExecutor to cancel an attempt; it answers with a CANCELED
    /// (or FAILED/FINISHED) state update.
    CancelTask { task_manager: TaskManagerLocation, attempt_id: ExecutionAttemptId },
    /// Give a slot back to its TaskExecutor (and so to the ResourceManager).
    FreeSlot { task_manager: TaskManagerLocation, allocation_id: AllocationId, cause: String },
    /// The job reached a globally terminal status; always the last action.
    JobFinished { status: JobStatus, error: Option<String> },
}

/// The answer to a slot offer.
#[derive(Clone, Debug, PartialEq)]
pub struct OfferResult {
    /// The offers the job keeps; the TaskExecutor frees the rest.
    pub accepted: Vec<SlotOffer>,
    pub actions: Vec<JobMasterAction>,
}

/// How many subtasks of a vertex are in each state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct StateCounts {
    pub created: u32,
    pub scheduled: u32,
    pub deploying: u32,
    pub running: u32,
    pub finished: u32,
    pub canceling: u32,
    pub canceled: u32,
    pub failed: u32,
}

impl StateCounts {
    fn add(&mut self, state: ExecutionState) {
        let slot = match state {
            ExecutionState::Created => &mut self.created,
            ExecutionState::Scheduled => &mut self.scheduled,
            ExecutionState::Deploying => &mut self.deploying,
            ExecutionState::Running => &mut self.running,
            ExecutionState::Finished => &mut self.finished,
            ExecutionState::Canceling => &mut self.canceling,
            ExecutionState::Canceled => &mut self.canceled,
            ExecutionState::Failed => &mut self.failed,
        };
        *slot += 1;
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VertexSnapshot {
    pub name: String,
    pub parallelism: u32,
    pub states: StateCounts,
    /// Each subtask's current attempt, in subtask order.
    pub subtasks: Vec<SubtaskSnapshot>,
}

/// One subtask's current attempt: where and how it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubtaskSnapshot {
    pub subtask: u32,
    pub attempt_id: ExecutionAttemptId,
    /// 0 for the first attempt.
    pub attempt: u32,
    pub state: ExecutionState,
    /// The TaskManager it was deployed to, once it was.
    pub task_manager: Option<ResourceId>,
    /// That TaskManager's host.
    pub host: Option<String>,
}

/// The job as the REST API shows it. Times are the `now`s passed in.
#[derive(Clone, Debug, PartialEq)]
pub struct JobSnapshot {
    pub job_id: JobId,
    pub name: String,
    pub status: JobStatus,
    pub start_time: Option<Instant>,
    pub end_time: Option<Instant>,
    pub restarts: u32,
    /// Why the job failed (FAILED), else the latest subtask failure, if any.
    pub failure: Option<String>,
    pub vertices: Vec<VertexSnapshot>,
    /// Each restart: when, and the failure that caused it.
    pub restart_history: Vec<(Instant, String)>,
}

pub struct Scheduler {
    graph: ExecutionGraph,
    pool: SlotPool,
    restart: RestartTracker,
    ctx: DeploymentContext,
    /// What was last declared to the ResourceManager.
    declared: Option<Vec<ResourceRequirement>>,
    /// The root cause when the job fails.
    failure_cause: Option<String>,
    last_failure: Option<String>,
    /// Each restart: when, and the failure that caused it.
    restart_history: Vec<(Instant, String)>,
    start_time: Option<Instant>,
    end_time: Option<Instant>,
    /// Per TaskExecutor, its slot-table version with our newest accepted
    /// offer in it: a heartbeat taken before that may not list the slot yet.
    min_report_version: BTreeMap<ResourceId, u64>,
}

impl Scheduler {
    pub fn new(job_id: JobId, spec: &JobSpec, ctx: DeploymentContext) -> Scheduler {
        Scheduler {
            graph: ExecutionGraph::new(job_id, spec),
            pool: SlotPool::default(),
            restart: RestartTracker::new(spec.restart.clone()),
            ctx,
            declared: None,
            failure_cause: None,
            last_failure: None,
            restart_history: Vec::new(),
            start_time: None,
            end_time: None,
            min_report_version: BTreeMap::new(),
        }
    }

    pub fn graph(&self) -> &ExecutionGraph {
        &self.graph
    }

    pub fn pool(&self) -> &SlotPool {
        &self.pool
    }

    pub fn status(&self) -> JobStatus {
        self.graph.status
    }

    /// CREATED -> RUNNING: declares what the job needs.
    pub fn start(&mut self, now: Instant) -> Vec<JobMasterAction> {
        if self.graph.status != JobStatus::Created {
            return Vec::new();
        }
        tracing::info!(job = %self.graph.job_id, name = %self.graph.spec.name, "job RUNNING");
        self.graph.status = JobStatus::Running;
        self.start_time = Some(now);
        for region in &mut self.graph.regions {
            region.phase = RegionPhase::WaitingForSlots;
        }
        for e in &mut self.graph.executions {
            e.attempt.state = ExecutionState::Scheduled;
        }
        let mut actions = Vec::new();
        self.settle(now, &mut actions);
        actions
    }

    /// The whole of what the job needs (FLIP-138, absolute): one entry per
    /// profile, counting every shared slot some unfinished subtask needs.
    /// Empty unless the job is RUNNING or RESTARTING.
    pub fn requirements(&self) -> Vec<ResourceRequirement> {
        if !self.graph.status.is_active() {
            return Vec::new();
        }
        let needed = self.graph.needed_requests();
        self.graph.aggregate((0..needed.len()).filter(|&r| needed[r]))
    }

    /// The part of [`Self::requirements`] no slot is held for yet.
    pub fn missing_requirements(&self) -> Vec<ResourceRequirement> {
        if !self.graph.status.is_active() {
            return Vec::new();
        }
        let needed = self.graph.needed_requests();
        self.graph.aggregate((0..needed.len()).filter(|&r| needed[r] && !self.pool.is_assigned(r)))
    }

    /// A TaskExecutor offers slots. Each offer goes to the first pending slot
    /// request (lowest region first, so regions fill one at a time) whose
    /// profile it satisfies; offers nothing needs are rejected.
    /// `report_version`: the TaskExecutor's slot-table version with the offered slots in it.
    pub fn offer_slots(
        &mut self,
        task_manager: TaskManagerLocation,
        offers: Vec<SlotOffer>,
        report_version: u64,
        now: Instant,
    ) -> OfferResult {
        let mut accepted = Vec::new();
        let mut actions = Vec::new();
        if !self.graph.status.is_active() {
            return OfferResult { accepted, actions };
        }
        let v = self.min_report_version.entry(task_manager.resource_id.clone()).or_default();
        *v = (*v).max(report_version);
        let needed = self.graph.needed_requests();
        let mut pending: Vec<usize> =
            (0..self.graph.slot_requests.len()).filter(|&r| !self.pool.is_assigned(r) && needed[r]).collect();
        pending.sort_by_key(|&r| (self.graph.slot_requests[r].first_region, r));
        for offer in offers {
            if let Some(held) = self.pool.slot(&offer.allocation_id) {
                // A repeated offer (the TaskExecutor retried): keep the answer.
                if held.location.resource_id == task_manager.resource_id {
                    accepted.push(offer);
                }
                continue;
            }
            // An exact request first: an unknown one can take any slot later.
            let exact = RequestedProfile::Exact(offer.profile.clone());
            let fit = pending.iter().position(|&r| self.graph.slot_requests[r].profile == exact).or_else(|| {
                pending.iter().position(|&r| satisfies(&offer.profile, &self.graph.slot_requests[r].profile))
            });
            if let Some(i) = fit {
                let request = pending.remove(i);
                tracing::debug!(allocation = %offer.allocation_id, tm = %task_manager.resource_id, request, "slot accepted");
                self.pool.assign(&task_manager, &offer, request);
                accepted.push(offer);
            }
        }
        self.settle(now, &mut actions);
        OfferResult { accepted, actions }
    }

    /// A TaskExecutor reports an attempt's state. Updates of attempts that
    /// are not current (an earlier attempt, another job) are ignored.
    pub fn update_task_state(&mut self, update: &TaskExecutionState, now: Instant) -> Vec<JobMasterAction> {
        let mut actions = Vec::new();
        if update.job_id != self.graph.job_id {
            tracing::debug!(job = %update.job_id, "state update for another job ignored");
            return actions;
        }
        let Some(x) = self.graph.current_attempt(&update.attempt_id) else {
            tracing::debug!(attempt = %update.attempt_id, state = ?update.state, "state update of a stale attempt ignored");
            return actions;
        };
        let attempt = &mut self.graph.executions[x].attempt;
        let current = attempt.state;
        if !matches!(current, ExecutionState::Deploying | ExecutionState::Running | ExecutionState::Canceling) {
            return actions;
        }
        let mut failed = Vec::new();
        match update.state {
            ExecutionState::Running if current == ExecutionState::Deploying => attempt.state = ExecutionState::Running,
            ExecutionState::Finished => attempt.state = ExecutionState::Finished,
            ExecutionState::Canceled | ExecutionState::Failed if current == ExecutionState::Canceling => {
                attempt.state = update.state;
                attempt.error = update.error.clone();
            }
            ExecutionState::Failed | ExecutionState::Canceled => {
                attempt.state = ExecutionState::Failed;
                attempt.error = Some(match (&update.error, update.state) {
                    (Some(e), _) => e.clone(),
                    (None, ExecutionState::Canceled) => "canceled by its TaskExecutor".to_owned(),
                    (None, _) => "failed without a message".to_owned(),
                });
                failed.push(x);
            }
            _ => {}
        }
        self.handle_failures(&failed, now, &mut actions);
        self.settle(now, &mut actions);
        actions
    }

    /// A TaskExecutor is gone (heartbeat timeout, disconnect): its slots
    /// leave the pool and the attempts running there fail.
    pub fn release_task_manager(
        &mut self,
        resource_id: &ResourceId,
        cause: &str,
        now: Instant,
    ) -> Vec<JobMasterAction> {
        let mut actions = Vec::new();
        let lost = self.pool.remove_task_manager(resource_id);
        tracing::info!(tm = %resource_id, slots = lost.len(), cause, "TaskManager released");
        let error = format!("its TaskManager {resource_id} was lost: {cause}");
        let failed = self.mark_lost(|loc, _| &loc.resource_id == resource_id, &error);
        self.handle_failures(&failed, now, &mut actions);
        self.settle(now, &mut actions);
        actions
    }

    /// A TaskExecutor took back one slot (e.g. it freed it on its own): the
    /// attempts in it fail.
    /// A TaskExecutor's heartbeat: the allocations of this job it still
    /// holds, at its slot-table version `report_version`. Slots we hold there
    /// that it no longer lists are lost (their tasks fail over), unless the
    /// heartbeat predates an offer we accepted from it.
    pub fn task_manager_heartbeat(
        &mut self,
        resource_id: &ResourceId,
        allocations: &[AllocationId],
        report_version: u64,
        now: Instant,
    ) -> Vec<JobMasterAction> {
        if report_version < self.min_report_version.get(resource_id).copied().unwrap_or(0) {
            return Vec::new();
        }
        let gone: Vec<AllocationId> = self
            .pool
            .slots()
            .filter(|s| s.location.resource_id == *resource_id && !allocations.contains(&s.allocation_id))
            .map(|s| s.allocation_id)
            .collect();
        let mut actions = Vec::new();
        for a in gone {
            actions.extend(self.release_slot(&a, "the TaskExecutor no longer holds the slot", now));
        }
        actions
    }

    pub fn release_slot(&mut self, allocation_id: &AllocationId, cause: &str, now: Instant) -> Vec<JobMasterAction> {
        let mut actions = Vec::new();
        if self.pool.remove(allocation_id).is_none() {
            return actions;
        }
        let error = format!("its slot {allocation_id} was taken back: {cause}");
        let failed = self.mark_lost(|_, alloc| alloc == Some(allocation_id), &error);
        self.handle_failures(&failed, now, &mut actions);
        self.settle(now, &mut actions);
        actions
    }

    /// Cancels the job: CANCELLING, then CANCELED once every attempt is terminal.
    pub fn cancel(&mut self, now: Instant) -> Vec<JobMasterAction> {
        let mut actions = Vec::new();
        if self.graph.status.is_globally_terminal() || self.graph.status == JobStatus::Cancelling {
            return actions;
        }
        tracing::info!(job = %self.graph.job_id, "job CANCELLING");
        self.graph.status = JobStatus::Cancelling;
        for x in 0..self.graph.executions.len() {
            self.cancel_attempt(x, &mut actions);
        }
        self.settle(now, &mut actions);
        actions
    }

    /// Fails the whole job without asking the restart strategy (e.g. its
    /// resources cannot be had): FAILING, then FAILED with `reason` once
    /// every attempt is terminal.
    pub fn fail(&mut self, reason: &str, now: Instant) -> Vec<JobMasterAction> {
        let mut actions = Vec::new();
        if self.graph.status.is_globally_terminal()
            || matches!(self.graph.status, JobStatus::Failing | JobStatus::Cancelling)
        {
            return actions;
        }
        tracing::warn!(job = %self.graph.job_id, reason, "job FAILING");
        self.failure_cause = Some(reason.to_owned());
        self.graph.status = JobStatus::Failing;
        for x in 0..self.graph.executions.len() {
            self.cancel_attempt(x, &mut actions);
        }
        self.settle(now, &mut actions);
        actions
    }

    /// The timer fired (or any time): restarts whose delay has passed happen now.
    pub fn tick(&mut self, now: Instant) -> Vec<JobMasterAction> {
        let mut actions = Vec::new();
        self.settle(now, &mut actions);
        actions
    }

    /// When to call [`Self::tick`] next: the earliest pending restart that
    /// waits only for its delay (not for cancellations, which arrive as updates).
    pub fn next_wakeup(&self) -> Option<Instant> {
        if !self.graph.status.is_active() {
            return None;
        }
        self.graph
            .regions
            .iter()
            .filter_map(|r| match r.phase {
                RegionPhase::Restarting { at } if self.region_terminal(r.members.iter().copied()) => Some(at),
                _ => None,
            })
            .min()
    }

    pub fn snapshot(&self) -> JobSnapshot {
        let mut vertices: Vec<VertexSnapshot> = self
            .graph
            .spec
            .vertices
            .iter()
            .map(|v| VertexSnapshot {
                name: v.name.clone(),
                parallelism: v.parallelism,
                states: StateCounts::default(),
                subtasks: Vec::new(),
            })
            .collect();
        for e in &self.graph.executions {
            let v = &mut vertices[e.vertex];
            v.states.add(e.attempt.state);
            let location = e.attempt.location.as_ref();
            v.subtasks.push(SubtaskSnapshot {
                subtask: e.subtask,
                attempt_id: e.attempt.id,
                attempt: e.attempt.number,
                state: e.attempt.state,
                task_manager: location.map(|l| l.resource_id.clone()),
                host: location.map(|l| l.address.rsplit_once(':').map_or(l.address.as_str(), |(h, _)| h).to_owned()),
            });
        }
        for v in &mut vertices {
            v.subtasks.sort_by_key(|s| s.subtask);
        }
        JobSnapshot {
            job_id: self.graph.job_id,
            name: self.graph.spec.name.clone(),
            status: self.graph.status,
            start_time: self.start_time,
            end_time: self.end_time,
            restarts: self.restart.restarts(),
            failure: self.failure_cause.clone().or_else(|| self.last_failure.clone()),
            vertices,
            restart_history: self.restart_history.clone(),
        }
    }

    // ---- internals ----

    fn region_terminal(&self, mut members: impl Iterator<Item = usize>) -> bool {
        members.all(|m| self.graph.executions[m].attempt.state.is_terminal())
    }

    /// Ends the attempts placed where `lost` says: cancelling ones count as
    /// canceled, deployed ones fail with `error`. Returns the failed ones.
    fn mark_lost(
        &mut self,
        lost: impl Fn(&TaskManagerLocation, Option<&AllocationId>) -> bool,
        error: &str,
    ) -> Vec<usize> {
        let mut failed = Vec::new();
        for (x, e) in self.graph.executions.iter_mut().enumerate() {
            let a = &mut e.attempt;
            let here = a.location.as_ref().is_some_and(|loc| lost(loc, a.allocation_id.as_ref()));
            if !here || a.state.is_terminal() {
                continue;
            }
            if a.state == ExecutionState::Canceling {
                a.state = ExecutionState::Canceled;
            } else {
                a.state = ExecutionState::Failed;
                a.error = Some(error.to_owned());
                failed.push(x);
            }
        }
        failed
    }

    fn cancel_attempt(&mut self, x: usize, actions: &mut Vec<JobMasterAction>) {
        let a = &mut self.graph.executions[x].attempt;
        match a.state {
            ExecutionState::Deploying | ExecutionState::Running => match &a.location {
                Some(loc) => {
                    a.state = ExecutionState::Canceling;
                    actions.push(JobMasterAction::CancelTask { task_manager: loc.clone(), attempt_id: a.id });
                }
                None => a.state = ExecutionState::Canceled,
            },
            ExecutionState::Created | ExecutionState::Scheduled => a.state = ExecutionState::Canceled,
            _ => {}
        }
    }

    /// One failure event: restart the regions of `failed`, or fail the job.
    fn handle_failures(&mut self, failed: &[usize], now: Instant, actions: &mut Vec<JobMasterAction>) {
        let Some(&first) = failed.first() else { return };
        let describe = |x: usize| {
            let error = self.graph.executions[x].attempt.error.as_deref().unwrap_or("unknown error");
            format!("{} failed: {error}", self.graph.describe(x))
        };
        let cause = describe(first);
        for &x in failed {
            tracing::warn!(job = %self.graph.job_id, "{}", describe(x));
        }
        self.last_failure = Some(cause.clone());
        if !self.graph.status.is_active() {
            return;
        }
        match self.restart.on_failure(now) {
            RestartDecision::RestartAt(at) => {
                self.restart_history.push((now, cause.clone()));
                let regions: BTreeSet<usize> = failed.iter().map(|&x| self.graph.executions[x].region).collect();
                for r in regions {
                    tracing::info!(job = %self.graph.job_id, region = r, restart = self.restart.restarts(), "restarting region");
                    for m in self.graph.regions[r].members.clone() {
                        self.cancel_attempt(m, actions);
                    }
                    self.graph.regions[r].phase = RegionPhase::Restarting { at };
                }
            }
            RestartDecision::GiveUp { reason } => {
                let cause = format!("{cause}; not restarting: {reason}");
                tracing::warn!(job = %self.graph.job_id, "job FAILING: {cause}");
                self.failure_cause = Some(cause);
                self.graph.status = JobStatus::Failing;
                for x in 0..self.graph.executions.len() {
                    self.cancel_attempt(x, actions);
                }
            }
        }
    }

    /// Brings everything up to date after an input: due restarts, ready
    /// regions deployed, the job's status, unneeded slots freed, the
    /// declaration refreshed, and the job finished when it is.
    fn settle(&mut self, now: Instant, actions: &mut Vec<JobMasterAction>) {
        let mut finished: Option<(JobStatus, Option<String>)> = None;
        if self.graph.status.is_active() {
            for r in 0..self.graph.regions.len() {
                let region = &self.graph.regions[r];
                if let RegionPhase::Restarting { at } = region.phase {
                    if at <= now && self.region_terminal(region.members.iter().copied()) {
                        for m in region.members.clone() {
                            self.graph.new_attempt(m);
                        }
                        self.graph.regions[r].phase = RegionPhase::WaitingForSlots;
                    }
                }
            }
            for r in 0..self.graph.regions.len() {
                let region = &self.graph.regions[r];
                if region.phase == RegionPhase::WaitingForSlots
                    && region.slot_requests.iter().all(|&s| self.pool.is_assigned(s))
                {
                    self.deploy_region(r, actions);
                }
            }
            if self.graph.executions.iter().all(|e| e.attempt.state == ExecutionState::Finished) {
                finished = Some((JobStatus::Finished, None));
            } else if self.graph.regions.iter().any(|r| matches!(r.phase, RegionPhase::Restarting { .. })) {
                self.graph.status = JobStatus::Restarting;
            } else {
                self.graph.status = JobStatus::Running;
            }
        } else if matches!(self.graph.status, JobStatus::Failing | JobStatus::Cancelling)
            && self.region_terminal(0..self.graph.executions.len())
        {
            finished = Some(match self.graph.status {
                JobStatus::Failing => (JobStatus::Failed, self.failure_cause.clone()),
                _ => (JobStatus::Canceled, None),
            });
        }
        if let Some((status, _)) = &finished {
            tracing::info!(job = %self.graph.job_id, %status, "job done");
            self.graph.status = *status;
            self.end_time = Some(now);
        }

        // Free what is no longer needed.
        let status = self.graph.status;
        let needed = self.graph.needed_requests();
        let to_free: Vec<AllocationId> = self
            .pool
            .slots()
            .filter(|s| match status {
                _ if status.is_globally_terminal() => true,
                _ if status.is_active() => !needed[s.request],
                _ => self.graph.request_idle(s.request),
            })
            .map(|s| s.allocation_id)
            .collect();
        for allocation_id in to_free {
            if let Some(slot) = self.pool.remove(&allocation_id) {
                let cause = if status.is_globally_terminal() {
                    format!("job {} is {status}", self.graph.job_id)
                } else {
                    "its subtasks are done".to_owned()
                };
                actions.push(JobMasterAction::FreeSlot { task_manager: slot.location, allocation_id, cause });
            }
        }

        let requirements = self.requirements();
        let changed = match &self.declared {
            None => !requirements.is_empty(),
            Some(d) => d != &requirements,
        };
        if changed {
            self.declared = Some(requirements.clone());
            actions.push(JobMasterAction::DeclareRequirements(requirements));
        }
        if let Some((status, error)) = finished {
            actions.push(JobMasterAction::JobFinished { status, error });
        }
    }

    fn deploy_region(&mut self, r: usize, actions: &mut Vec<JobMasterAction>) {
        let members = self.graph.regions[r].members.clone();
        let mut deployments = Vec::with_capacity(members.len());
        for &x in &members {
            match self.build_tdd(x) {
                Some(d) => deployments.push((x, d)),
                // Cannot happen while every slot of the region is held; wait for slots rather than deploy half.
                None => return,
            }
        }
        for (x, (task_manager, tdd)) in deployments {
            let a = &mut self.graph.executions[x].attempt;
            a.state = ExecutionState::Deploying;
            a.location = Some(task_manager.clone());
            a.allocation_id = Some(tdd.allocation_id);
            actions.push(JobMasterAction::Deploy { task_manager, tdd: Box::new(tdd) });
        }
        self.graph.regions[r].phase = RegionPhase::Deployed;
    }

    /// The TDD of execution `x`'s current attempt, with its slot's location.
    fn build_tdd(&self, x: usize) -> Option<(TaskManagerLocation, TaskDeploymentDescriptor)> {
        let g = &self.graph;
        let e = &g.executions[x];
        let vertex = &g.spec.vertices[e.vertex];
        let slot = self.pool.slot_for(e.slot_request)?;
        let mut inputs = Vec::new();
        let mut outputs = Vec::new();
        for (edge_index, edge) in g.spec.edges.iter().enumerate() {
            let edge_index = edge_index as u32;
            if edge.from == e.vertex {
                let consumers = g.spec.vertices[edge.to].parallelism;
                outputs.push(ResultPartitionDescriptor {
                    partition_id: ResultPartitionId {
                        edge_index,
                        producer_subtask: e.subtask,
                        producer_attempt: e.attempt.id,
                    },
                    partitioning: edge.partitioning,
                    num_subpartitions: if edge.partitioning == Partitioning::Forward { 1 } else { consumers },
                });
            }
            if edge.to == e.vertex {
                let (producers, subpartition) = if edge.partitioning == Partitioning::Forward {
                    (e.subtask..e.subtask + 1, 0)
                } else {
                    (0..g.spec.vertices[edge.from].parallelism, e.subtask)
                };
                let mut channels = Vec::with_capacity(producers.len());
                for p in producers {
                    let producer = &g.executions[g.execution_index(edge.from, p)?];
                    let location = &self.pool.slot_for(producer.slot_request)?.location;
                    channels.push(InputChannelDescriptor {
                        partition_id: ResultPartitionId {
                            edge_index,
                            producer_subtask: p,
                            producer_attempt: producer.attempt.id,
                        },
                        subpartition,
                        producer_data_address: location.data_address.clone(),
                        producer_resource_id: location.resource_id.clone(),
                    });
                }
                inputs.push(InputGateDescriptor { edge_index, partitioning: edge.partitioning, channels });
            }
        }
        let tdd = TaskDeploymentDescriptor {
            job_id: g.job_id,
            job_master_id: self.ctx.job_master_id,
            job_master_address: self.ctx.job_master_address.clone(),
            job_name: g.spec.name.clone(),
            attempt_id: e.attempt.id,
            allocation_id: slot.allocation_id,
            vertex_name: vertex.name.clone(),
            vertex_index: e.vertex as u32,
            subtask_index: e.subtask,
            parallelism: vertex.parallelism,
            attempt_number: e.attempt.number,
            program: vertex.program.clone(),
            bundle_dir: self.ctx.bundle_dir.clone(),
            bundle_blob: None,
            inputs,
            outputs,
        };
        Some((slot.location.clone(), tdd))
    }
}
