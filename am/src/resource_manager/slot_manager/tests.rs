//! Scenario tests: each test is a transcript. Lines at the base indentation
//! are commands fed to the SlotManager; the indented lines under each command
//! are the decisions it must answer with, rendered as text. [`check`] is the
//! only caller of the SlotManager API; on a mismatch it prints the actual
//! transcript, ready to paste after review.
//!
//! Commands (profiles are `(1cpu,1g)`, `(0.5cpu,256m,gpu=1)` or `unknown`;
//! `4x(1cpu,1g)` is a TaskManager / worker of 4 such slots):
//! - `config key=value..`: `sizing=fixed|fit:<slots>`, `default=4x(1cpu,1g)`,
//!   `idle=30s`, `max_worker=(..)`, `max_slot=(..)`, `max_total=(..)`, `max_failures=3`. First line only.
//! - `register tm1 4x(1cpu,1g) [total=(..)] [0:a1:job1:(1cpu,1g)..]`: registration
//!   with a slot report; `total=` overrides the total (default slot stays).
//! - `unregister tm1`, `report tm1 [@version] [0:a1:job1:(1cpu,1g)..]` (the
//!   TaskExecutor's slot-table version; 0 if not given)
//! - `declare job1 [2x(1cpu,1g)..]`, `clear job1`
//! - `failed a1`, `confirm a1 [@version]`, `worker-failed 4x(1cpu,1g) [reason..]`
//! - `advance 30s`, `tick`, `overview`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::ids::{AllocationId, InstanceId, JobId, ResourceId, SlotId};
use common::protocol::{ResourceRequirement, SlotReport, SlotStatus};
use common::resources::{format_cpu, parse_cpu, parse_memory, RequestedProfile, ResourceProfile, MIB};

use super::*;

const GIB: u64 = 1024 * MIB;

#[test]
fn matches_on_registered_task_managers_best_fit_first() {
    check(
        "
        register tm1 4x(1cpu,1g)
        register tm2 4x(1cpu,1g) total=(2cpu,2g)
        # the fuller TaskManager first, lowest free index first
        declare job1 3x(1cpu,1g)
          allocate tm2/0 a1 job1 (1cpu,1g)
          allocate tm2/1 a2 job1 (1cpu,1g)
          allocate tm1/0 a3 job1 (1cpu,1g)
        # absolute: declaring the same again changes nothing
        declare job1 3x(1cpu,1g)
        # fine-grained: slots carved out of what remains
        declare job1 3x(1cpu,1g) 2x(0.5cpu,512m)
          allocate tm1/1 a4 job1 (0.5cpu,512m)
          allocate tm1/2 a5 job1 (0.5cpu,512m)
        overview
          tm tm1 free=(2cpu,2g) slots=[0:a3:job1:(1cpu,1g) 1:a4:job1:(0.5cpu,512m) 2:a5:job1:(0.5cpu,512m)]
          tm tm2 free=(0cpu,0m) slots=[0:a1:job1:(1cpu,1g) 1:a2:job1:(1cpu,1g)]
          job job1 declared=[2x(0.5cpu,512m) 3x(1cpu,1g)] allocated=[2x(0.5cpu,512m) 3x(1cpu,1g)] missing=[]
        ",
    );
}

#[test]
fn fixed_sizing_starts_default_workers_and_does_not_over_request() {
    check(
        "
        config default=4x(1cpu,1g)
        declare job1 6x(1cpu,1g)
          start-worker 4x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        # two pending workers hold 8 slots: 7 needs nothing new, 9 needs one more
        declare job1 7x(1cpu,1g)
        declare job1 9x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        overview
          pending 4x(1cpu,1g) x3
          job job1 declared=[9x(1cpu,1g)] allocated=[] missing=[9x(1cpu,1g)]
        register tm1 4x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
          allocate tm1/2 a3 job1 (1cpu,1g)
          allocate tm1/3 a4 job1 (1cpu,1g)
        overview
          tm tm1 free=(0cpu,0m) slots=[0:a1:job1:(1cpu,1g) 1:a2:job1:(1cpu,1g) 2:a3:job1:(1cpu,1g) 3:a4:job1:(1cpu,1g)] why='asked for job job1: 4 slot(s) of 1 cpu, 1024 MB; fixed sizing (4 slots of 1 cpu, 1024 MB)'
          pending 4x(1cpu,1g) x2
          job job1 declared=[9x(1cpu,1g)] allocated=[4x(1cpu,1g)] missing=[5x(1cpu,1g)]
        ",
    );
}

#[test]
fn fit_to_requirement_starts_workers_of_two_sizes() {
    check(
        "
        config sizing=fit:4 default=4x(1cpu,1g)
        declare job1 8x(0.5cpu,256m) 4x(2cpu,2g)
          start-worker 4x(2cpu,2g)
          start-worker 4x(0.5cpu,256m)
          start-worker 4x(0.5cpu,256m)
        register tm1 4x(0.5cpu,256m)
          allocate tm1/0 a1 job1 (0.5cpu,256m)
          allocate tm1/1 a2 job1 (0.5cpu,256m)
          allocate tm1/2 a3 job1 (0.5cpu,256m)
          allocate tm1/3 a4 job1 (0.5cpu,256m)
        register tm2 4x(2cpu,2g)
          allocate tm2/0 a5 job1 (2cpu,2g)
          allocate tm2/1 a6 job1 (2cpu,2g)
          allocate tm2/2 a7 job1 (2cpu,2g)
          allocate tm2/3 a8 job1 (2cpu,2g)
        overview
          tm tm1 free=(0cpu,0m) slots=[0:a1:job1:(0.5cpu,256m) 1:a2:job1:(0.5cpu,256m) 2:a3:job1:(0.5cpu,256m) 3:a4:job1:(0.5cpu,256m)] why='asked for job job1: 4 slot(s) of 0.5 cpu, 256 MB; shaped to fit (at most 4 slots per TaskManager)'
          tm tm2 free=(0cpu,0m) slots=[0:a5:job1:(2cpu,2g) 1:a6:job1:(2cpu,2g) 2:a7:job1:(2cpu,2g) 3:a8:job1:(2cpu,2g)] why='asked for job job1: 4 slot(s) of 2 cpu, 2048 MB; shaped to fit (at most 4 slots per TaskManager)'
          pending 4x(0.5cpu,256m) x1
          job job1 declared=[8x(0.5cpu,256m) 4x(2cpu,2g)] allocated=[4x(0.5cpu,256m) 4x(2cpu,2g)] missing=[4x(0.5cpu,256m)]
        ",
    );
}

#[test]
fn fit_to_requirement_caps_slots_per_worker_at_max_worker_and_refuses_larger_asks_up_front() {
    check(
        "
        config sizing=fit:4 max_worker=(4cpu,8g)
        # two slots fit the largest TaskManager; the third gets one of its own size,
        # so the TaskManagers add up to what the job declares
        declare job1 3x(2cpu,2g)
          start-worker 2x(2cpu,2g)
          start-worker 1x(2cpu,2g)
        declare job2 1x(6cpu,1g)
          unfulfillable job2 (6cpu,1g): a slot of 6 cpu, 1024 MB is larger than the largest TaskManager the cluster can start (4 cpu, 8192 MB); lower the vertex's resources to at most that, or raise the cluster manager's maximum container size
        # reported once while the job keeps declaring it
        declare job2 1x(6cpu,1g)
        ",
    );
}

/// Issue 14: a slot larger than the machine (the local backend's `max_slot`)
/// is refused up front; TaskManagers of several smaller slots may still
/// exceed the machine together.
#[test]
fn a_slot_larger_than_the_machine_is_refused_up_front() {
    check(
        "
        config sizing=fit:4 max_slot=(2cpu,24g)
        declare job1 1x(500cpu,900g)
          unfulfillable job1 (500cpu,900g): a slot of 500 cpu, 921600 MB is larger than the largest TaskManager the cluster can start (2 cpu, 24576 MB); lower the vertex's resources to at most that, or raise the cluster manager's maximum container size
        declare job2 4x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        ",
    );
}

/// Real-cluster report, point 4: one sink subtask of (2cpu,1g) was given a
/// TaskManager of four such slots (8 vcores, 4 GB), which a bounded queue may
/// never grant. New TaskManagers add up to what is missing.
#[test]
fn fit_sizing_starts_task_managers_that_add_up_to_the_declaration() {
    check(
        "
        config sizing=fit:4
        declare job1 1x(2cpu,1g) 2x(0.5cpu,256m)
          start-worker 1x(2cpu,1g)
          start-worker 2x(0.5cpu,256m)
        # more than one TaskManager holds: full ones first, the rest in a smaller one
        declare job2 6x(1cpu,1g)
          start-worker 4x(1cpu,1g)
          start-worker 2x(1cpu,1g)
        ",
    );
}

/// Real-cluster report, point 3: a session job declared while the previous
/// job's slots were still held asks for a worker; once those slots are free,
/// the requirement takes them (the driver never delivers the worker here),
/// and the worker nobody needs any more is cancelled.
#[test]
fn slots_freed_after_a_declaration_serve_it_though_a_worker_was_asked_for() {
    check(
        "
        config sizing=fit:2
        declare job1 2x(1cpu,1g)
          start-worker 2x(1cpu,1g)
        register tm1 2x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
        report tm1 0:a1:job1:(1cpu,1g) 1:a2:job1:(1cpu,1g)
        declare job2 2x(1cpu,1g)
          start-worker 2x(1cpu,1g)
        clear job1
          free-slot tm1/0 a1 job1
          free-slot tm1/1 a2 job1
          allocate tm1/0 a3 job2 (1cpu,1g)
          allocate tm1/1 a4 job2 (1cpu,1g)
          cancel-worker 2x(1cpu,1g)
        # the worker nobody needs is withdrawn (on YARN: the ask goes down)
        overview
          tm tm1 free=(0cpu,0m) slots=[0:a3:job2:(1cpu,1g) 1:a4:job2:(1cpu,1g)] why='asked for job job1: 2 slot(s) of 1 cpu, 1024 MB; shaped to fit (at most 2 slots per TaskManager)'
          job job2 declared=[2x(1cpu,1g)] allocated=[2x(1cpu,1g)] missing=[]
        ",
    );
}

#[test]
fn unknown_profile_is_served_by_the_default_slot() {
    check(
        "
        register tm1 2x(1cpu,2g)
        declare job1 3xunknown
          allocate tm1/0 a1 job1 (1cpu,2g)
          allocate tm1/1 a2 job1 (1cpu,2g)
          start-worker 4x(1cpu,1g)
        # a slot of any profile counts for an unknown requirement
        declare job1 1x(1cpu,2g) 2xunknown
        ",
    );
}

#[test]
fn extended_resources_are_matched_and_kept_for_those_who_need_them() {
    check(
        "
        register tm1 4x(1cpu,1g)
        register tm2 4x(1cpu,1g) total=(4cpu,4g,gpu=2)
        # without gpu: the TaskManager without gpus, although both fit
        declare job1 1x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
        declare job2 2x(1cpu,1g,gpu=1)
          allocate tm2/0 a2 job2 (1cpu,1g,gpu=1)
          allocate tm2/1 a3 job2 (1cpu,1g,gpu=1)
        # a third gpu slot waits for tm2 (the default TaskManager has no gpu); four gpus fit nowhere
        declare job2 3x(1cpu,1g,gpu=1)
        declare job3 1x(1cpu,1g,gpu=4)
          unfulfillable job3 (1cpu,1g,gpu=4): a slot of 1 cpu, 1024 MB, gpu=4 does not fit in a TaskManager of the configured size (4 cpu, 4096 MB) and no registered TaskManager is large enough; lower the vertex's resources, configure larger TaskManagers, or size TaskManagers to the requirements
        ",
    );
}

#[test]
fn gpu_workers_are_started_when_sized_to_the_requirement() {
    check(
        "
        config sizing=fit:2 max_worker=(16cpu,64g,gpu=2)
        declare job1 3x(1cpu,1g,gpu=1)
          start-worker 2x(1cpu,1g,gpu=1)
          start-worker 1x(1cpu,1g,gpu=1)
        declare job2 1x(1cpu,1g,gpu=4)
          unfulfillable job2 (1cpu,1g,gpu=4): a slot of 1 cpu, 1024 MB, gpu=4 is larger than the largest TaskManager the cluster can start (16 cpu, 65536 MB, gpu=2); lower the vertex's resources to at most that, or raise the cluster manager's maximum container size
        ",
    );
}

/// Issue 9: the guard was the RM actor's, out of the transcripts' reach. A
/// TaskExecutor's report taken before it carved a slot (an older slot-table
/// version than the one it confirmed the slot with) must not free that slot.
#[test]
fn a_report_older_than_a_confirmed_allocation_does_not_free_it() {
    check(
        "
        register tm1 2x(1cpu,1g)
        declare job1 1x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
        confirm a1 @3
        # in flight before the allocation: without a1, but stale
        report tm1 @2
        report tm1 @3 0:a1:job1:(1cpu,1g)
        # the job's slot goes: the next report says so, and the still-declared need is served again
        report tm1 @4
          allocate tm1/0 a2 job1 (1cpu,1g)
        ",
    );
}

#[test]
fn idle_task_managers_are_released_after_the_timeout_and_not_before() {
    check(
        "
        config idle=30s
        register tm1 4x(1cpu,1g)
        register tm2 4x(1cpu,1g)
        declare job1 1x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
        advance 29s
        tick
        advance 1s
        tick
          release tm2: idle for 30.0 s (the idle timeout is 30.0 s)
        # tm1 is idle from the moment its slot goes (freed: not in its report)
        confirm a1
        report tm1
          allocate tm1/0 a2 job1 (1cpu,1g)
        declare job1
        confirm a2
        report tm1
        advance 29s
        tick
        advance 1s
        tick
          release tm1: idle for 30.0 s (the idle timeout is 30.0 s)
        overview
        ",
    );
}

#[test]
fn an_idle_task_manager_a_requirement_could_use_is_kept() {
    check(
        "
        config idle=30s
        register tm1 4x(1cpu,1g)
        declare job1 1x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
        # refused: tm1 takes no allocation until it reports, but it is still wanted
        failed a1
        advance 60s
        tick
        report tm1
          allocate tm1/0 a2 job1 (1cpu,1g)
        ",
    );
}

#[test]
fn a_lost_task_manager_s_slots_are_allocated_again_or_a_worker_is_started() {
    check(
        "
        register tm1 2x(1cpu,1g)
        register tm2 2x(1cpu,1g)
        declare job1 3x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
          allocate tm2/0 a3 job1 (1cpu,1g)
        unregister tm1
          allocate tm2/1 a4 job1 (1cpu,1g)
          start-worker 4x(1cpu,1g)
        overview
          tm tm2 free=(0cpu,0m) slots=[0:a3:job1:(1cpu,1g) 1:a4:job1:(1cpu,1g)]
          pending 4x(1cpu,1g) x1
          job job1 declared=[3x(1cpu,1g)] allocated=[2x(1cpu,1g)] missing=[1x(1cpu,1g)]
        # unknown or already forgotten: nothing happens
        unregister tm1
        ",
    );
}

#[test]
fn clear_job_frees_its_slots_for_other_jobs() {
    check(
        "
        register tm1 2x(1cpu,1g)
        declare job1 2x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
        declare job2 1x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        clear job1
          free-slot tm1/0 a1 job1
          free-slot tm1/1 a2 job1
          allocate tm1/0 a3 job2 (1cpu,1g)
          cancel-worker 4x(1cpu,1g)
        overview
          tm tm1 free=(1cpu,1g) slots=[0:a3:job2:(1cpu,1g)]
          job job2 declared=[1x(1cpu,1g)] allocated=[1x(1cpu,1g)] missing=[]
        ",
    );
}

#[test]
fn failed_worker_requests_are_retried_then_reported_unfulfillable() {
    check(
        "
        config max_failures=2
        declare job1 2x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        worker-failed 4x(1cpu,1g) localization failed
          start-worker 4x(1cpu,1g)
        # the job's failure carries the last reason (a NodeManager's diagnostics, say)
        worker-failed 4x(1cpu,1g) yarn-flink: the shipped binary is built for x86_64 Linux, but this node is aarch64
          unfulfillable job1 (1cpu,1g): 2 consecutive requests for a TaskManager of 4 cpu, 4096 MB (4 slots of 1 cpu, 1024 MB) failed, the last with: yarn-flink: the shipped binary is built for x86_64 Linux, but this node is aarch64; check the cluster manager's diagnostics (queue capacity, node resources, image or launch errors) and submit the job again
        # no more requests for it; a new job gets a fresh budget
        declare job1 2x(1cpu,1g)
        declare job2 1x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        ",
    );
}

#[test]
fn a_registering_worker_resets_the_failure_count() {
    check(
        "
        config max_failures=2
        declare job1 5x(1cpu,1g)
          start-worker 4x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        worker-failed 4x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        register tm1 4x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
          allocate tm1/2 a3 job1 (1cpu,1g)
          allocate tm1/3 a4 job1 (1cpu,1g)
        worker-failed 4x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        ",
    );
}

#[test]
fn slot_reports_reconcile_the_books() {
    check(
        "
        register tm1 4x(1cpu,1g)
        declare job1 2x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
        # a2's RequestSlot may still be in flight: a report without it keeps it
        report tm1 0:a1:job1:(1cpu,1g)
        confirm a2
        declare job1 1x(1cpu,1g)
        # the TaskExecutor says slot 1 is free: it is, and nothing needs it
        report tm1 0:a1:job1:(1cpu,1g)
        overview
          tm tm1 free=(3cpu,3g) slots=[0:a1:job1:(1cpu,1g)]
          job job1 declared=[1x(1cpu,1g)] allocated=[1x(1cpu,1g)] missing=[]
        # a slot the books do not know is adopted (e.g. after a ResourceManager failover)
        report tm1 0:a1:job1:(1cpu,1g) 2:x1:job2:(2cpu,2g)
        overview
          tm tm1 free=(1cpu,1g) slots=[0:a1:job1:(1cpu,1g) 2:x1:job2:(2cpu,2g)]
          job job1 declared=[1x(1cpu,1g)] allocated=[1x(1cpu,1g)] missing=[]
          job job2 declared=[] allocated=[1x(2cpu,2g)] missing=[]
        # a job that still needs a slot the TaskExecutor freed gets a new one
        report tm1 2:x1:job2:(2cpu,2g)
          allocate tm1/0 a3 job1 (1cpu,1g)
        ",
    );
}

#[test]
fn registration_adopts_reported_slots() {
    check(
        "
        declare job1 2x(1cpu,1g)
          start-worker 4x(1cpu,1g)
        register tm1 4x(1cpu,1g) 3:x1:job1:(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
        overview
          tm tm1 free=(2cpu,2g) slots=[0:a1:job1:(1cpu,1g) 3:x1:job1:(1cpu,1g)] why='asked for job job1: 2 slot(s) of 1 cpu, 1024 MB; fixed sizing (4 slots of 1 cpu, 1024 MB)'
          job job1 declared=[2x(1cpu,1g)] allocated=[2x(1cpu,1g)] missing=[]
        ",
    );
}

#[test]
fn a_refused_allocation_goes_elsewhere_and_pauses_the_task_manager() {
    check(
        "
        register tm1 4x(1cpu,1g)
        register tm2 4x(1cpu,1g)
        declare job1 1x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
        failed a1
          allocate tm2/0 a2 job1 (1cpu,1g)
        failed a2
        # both paused: their resources still count, so no new worker
        report tm1
          allocate tm1/0 a3 job1 (1cpu,1g)
        ",
    );
}

#[test]
fn max_total_bounds_new_workers_and_lets_jobs_wait() {
    check(
        "
        config max_total=(8cpu,8g)
        register tm1 4x(1cpu,1g)
        declare job1 12x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
          allocate tm1/2 a3 job1 (1cpu,1g)
          allocate tm1/3 a4 job1 (1cpu,1g)
          start-worker 4x(1cpu,1g)
        declare job2 1x(9cpu,1g)
          unfulfillable job2 (9cpu,1g): a slot of 9 cpu, 1024 MB does not fit in a TaskManager of the configured size (4 cpu, 4096 MB) and no registered TaskManager is large enough; lower the vertex's resources, configure larger TaskManagers, or size TaskManagers to the requirements
        ",
    );
}

#[test]
fn config_validation_names_the_problem_and_the_fix() {
    let mut config = SlotManagerConfig::default();
    assert_eq!(config.validate(), Ok(()));
    config.max_worker = Some(ResourceProfile::new(2000, 8 * GIB));
    assert_eq!(
        config.validate().map_err(|e| e.to_string()),
        Err("the default TaskManager (4 cpu, 4096 MB) is larger than the largest TaskManager the cluster can \
             start (2 cpu, 8192 MB); configure a smaller TaskManager or raise the cluster manager's maximum \
             container size"
            .to_owned())
    );
    config.max_worker = None;
    config.default_worker.total = ResourceProfile::new(1000, GIB);
    assert!(matches!(config.validate(), Err(SlotManagerConfigError::SlotsExceedTotal { num_slots: 4, .. })));
    config.default_worker.num_slots = 0;
    assert_eq!(config.validate(), Err(SlotManagerConfigError::NoSlots));
}

#[test]
fn zero_profiles_mean_any_slot_and_a_second_registration_replaces_the_first() {
    check(
        "
        register tm1 4x(1cpu,1g)
        declare job1 1x(0cpu,0m) 1x(1cpu,1g)
          allocate tm1/0 a1 job1 (1cpu,1g)
          allocate tm1/1 a2 job1 (1cpu,1g)
        overview
          tm tm1 free=(2cpu,2g) slots=[0:a1:job1:(1cpu,1g) 1:a2:job1:(1cpu,1g)]
          job job1 declared=[1xunknown 1x(1cpu,1g)] allocated=[2x(1cpu,1g)] missing=[]
        # the TaskExecutor reconnects holding only a1: its report is the truth
        register tm1 4x(1cpu,1g) 0:a1:job1:(1cpu,1g)
          allocate tm1/1 a3 job1 (1cpu,1g)
        ",
    );
}

#[test]
fn max_total_refuses_a_worker_that_alone_exceeds_it() {
    check(
        "
        config sizing=fit:4 max_total=(6cpu,64g)
        declare job1 1x(8cpu,2g)
          unfulfillable job1 (8cpu,2g): a single TaskManager of 8 cpu, 2048 MB for slots of 8 cpu, 2048 MB already exceeds the limit on all TaskManagers together (6 cpu, 65536 MB); raise that limit or lower the job's resources
        declare job2 2x(1cpu,1g)
          start-worker 2x(1cpu,1g)
        ",
    );
}

/// Random event sequences (a fixed-seed generator, so failures reproduce)
/// must keep the books consistent after every event, leave no missing
/// requirement that an open TaskManager could serve, and give the same
/// decisions when replayed.
#[test]
fn random_event_sequences_keep_the_books_consistent() {
    for seed in 1..=150u64 {
        let first = random_run(seed);
        assert_eq!(first, random_run(seed), "seed {seed}: replaying the same events gave other decisions");
    }
}

/// xorshift64*: deterministic, good enough to pick events.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n.max(1)
    }
}

fn random_run(seed: u64) -> Vec<Action> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let config = SlotManagerConfig {
        sizing: if seed.is_multiple_of(2) {
            WorkerSizing::Fixed
        } else {
            WorkerSizing::FitToRequirement { slots_per_worker: 3 }
        },
        max_worker: Some(profile("(8cpu,8g,gpu=2)")),
        max_total: seed.is_multiple_of(3).then(|| profile("(24cpu,24g)")),
        max_failed_worker_requests: 2,
        ..SlotManagerConfig::default()
    };
    let mut sm = SlotManager::with_allocation_id_prefix(config, seed);
    let shapes = [spec("4x(1cpu,1g)"), spec("2x(2cpu,2g)"), spec("4x(1cpu,1g,gpu=1)")];
    let profiles = ["unknown", "(1cpu,1g)", "(0.5cpu,512m)", "(2cpu,2g)", "(1cpu,1g,gpu=1)", "(9cpu,1g)"];
    let mut now = Instant::now();
    let mut log = Vec::new();
    let mut next_tm = 0;
    for _ in 0..120 {
        let o = sm.overview();
        let tms: Vec<&TaskManagerOverview> = o.task_managers.iter().collect();
        let slots: Vec<&SlotOverview> = tms.iter().flat_map(|tm| &tm.slots).collect();
        let job = JobId::from_u128(rng.below(3) as u128 + 1);
        let actions = match rng.below(11) {
            0 | 1 => {
                // A TaskManager registers: usually a requested worker, sometimes one of its own shape.
                let s = match o.pending_workers.get(rng.below(o.pending_workers.len() + 1)) {
                    Some((s, _)) => s.clone(),
                    None => shapes[rng.below(shapes.len())].clone(),
                };
                next_tm += 1;
                let reg = TaskManagerRegistration {
                    resource_id: ResourceId::new(format!("tm{next_tm:03}")),
                    instance_id: InstanceId::from_u128(next_tm),
                    total: s.total,
                    default_slot: s.default_slot,
                    num_slots: s.num_slots,
                    slot_report: SlotReport::default(),
                };
                sm.register_task_manager(now, reg)
            }
            2 if !tms.is_empty() => sm.unregister_task_manager(now, &tms[rng.below(tms.len())].resource_id.clone()),
            3 | 4 => {
                let reqs: Vec<ResourceRequirement> = (0..rng.below(3))
                    .map(|_| {
                        let p = profiles[rng.below(profiles.len())];
                        ResourceRequirement { profile: requested(p), count: rng.below(7) as u32 }
                    })
                    .collect();
                sm.declare_requirements(now, job, &reqs)
            }
            5 => sm.clear_job(now, job),
            7 if !slots.is_empty() => sm.slot_allocation_failed(now, slots[rng.below(slots.len())].allocation_id),
            8 if !tms.is_empty() => {
                // The TaskExecutor confirms some slots and has dropped others.
                let tm = tms[rng.below(tms.len())];
                let kept = tm.slots.iter().filter(|_| rng.below(4) > 0);
                let report = SlotReport {
                    slots: kept
                        .map(|s| SlotStatus {
                            slot_id: s.slot_id.clone(),
                            profile: s.profile.clone(),
                            allocation: Some((s.allocation_id, s.job_id)),
                        })
                        .collect(),
                };
                sm.report_slot_status(now, &tm.resource_id.clone(), &report, 0)
            }
            9 if !o.pending_workers.is_empty() => {
                let s = o.pending_workers[rng.below(o.pending_workers.len())].0.clone();
                sm.worker_request_failed(now, &s, "random failure")
            }
            _ => {
                now += Duration::from_secs(rng.below(40) as u64);
                sm.tick(now)
            }
        };
        check_invariants(seed, &sm);
        log.extend(actions);
    }
    log
}

fn check_invariants(seed: u64, sm: &SlotManager) {
    let o = sm.overview();
    let mut held: BTreeMap<JobId, BTreeMap<ResourceProfile, u32>> = BTreeMap::new();
    for tm in &o.task_managers {
        let used = tm.slots.iter().fold(ResourceProfile::ZERO, |acc, s| acc.add(&s.profile));
        assert!(
            used.fits_in(&tm.total),
            "seed {seed}: {} holds {used:?}, more than its total {:?}",
            tm.resource_id,
            tm.total
        );
        assert_eq!(used.add(&tm.free), tm.total, "seed {seed}: {} free resources out of step", tm.resource_id);
        assert_eq!(tm.idle_since.is_some(), tm.slots.is_empty(), "seed {seed}: {} idle flag", tm.resource_id);
        for s in &tm.slots {
            *held.entry(s.job_id).or_default().entry(s.profile.clone()).or_default() += 1;
        }
    }
    for job in &o.jobs {
        let allocated: BTreeMap<ResourceProfile, u32> = job.allocated.iter().cloned().collect();
        assert_eq!(held.remove(&job.job_id).unwrap_or_default(), allocated, "seed {seed}: {:?} books", job.job_id);
        for m in &job.missing {
            for tm in o.task_managers.iter().filter(|tm| tm.accepting_allocations) {
                assert!(
                    !m.profile.resolve(&tm.default_slot).fits_in(&tm.free),
                    "seed {seed}: {:?} misses {:?} that {} could serve",
                    job.job_id,
                    m.profile,
                    tm.resource_id
                );
            }
        }
    }
    assert!(held.is_empty(), "seed {seed}: slots of jobs the books do not know: {held:?}");
}

// ---------------------------------------------------------------------------
/// `@7 rest..` -> (7, rest); no `@` -> (0, all).
fn versioned<'a, 'b>(args: &'a [&'b str]) -> (u64, &'a [&'b str]) {
    match args.first().and_then(|a| a.strip_prefix('@')) {
        Some(v) => (v.parse().unwrap_or_else(|_| panic!("`@{v}` is not a version")), &args[1..]),
        None => (0, args),
    }
}

// The scenario driver.

/// Runs the commands of `scenario` and compares the transcript with it.
#[track_caller]
fn check(scenario: &str) {
    let lines: Vec<&str> = scenario.lines().collect();
    let base = lines.iter().filter(|l| !l.trim().is_empty()).map(|l| indent(l)).min().unwrap_or(0);
    let expected = normalize(lines.iter().map(|l| l.get(base..).unwrap_or("").trim_end()));
    let mut driver = Driver::new();
    let mut actual = Vec::new();
    for (i, line) in expected.iter().enumerate() {
        if line.starts_with(' ') {
            continue;
        }
        actual.push(line.clone());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let config_ok = i == expected.iter().position(|l| !l.is_empty() && !l.starts_with('#')).unwrap_or(0);
        for out in driver.run(line, config_ok) {
            actual.push(format!("  {out}"));
        }
    }
    let actual = normalize(actual.iter().map(String::as_str));
    if actual != expected {
        let pad = " ".repeat(base);
        let shown: Vec<String> = actual.iter().map(|l| format!("{pad}{l}")).collect();
        panic!("the scenario's decisions differ; actual transcript:\n{}\n", shown.join("\n"));
    }
}

fn indent(l: &str) -> usize {
    l.len() - l.trim_start().len()
}

fn normalize<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = lines.map(|l| l.trim_end().to_owned()).collect();
    while v.first().is_some_and(|l| l.is_empty()) {
        v.remove(0);
    }
    while v.last().is_some_and(|l| l.is_empty()) {
        v.pop();
    }
    v
}

struct Driver {
    sm: SlotManager,
    now: Instant,
    jobs: BTreeMap<String, JobId>,
    allocations: BTreeMap<String, AllocationId>,
    next_instance: u128,
}

impl Driver {
    fn new() -> Self {
        Self {
            sm: SlotManager::with_allocation_id_prefix(Self::config(""), 7),
            // Only the driver reads the clock, once, as the scenario's origin.
            now: Instant::now(),
            jobs: BTreeMap::new(),
            allocations: BTreeMap::new(),
            next_instance: 1,
        }
    }

    fn config(args: &str) -> SlotManagerConfig {
        let mut c = SlotManagerConfig { max_failed_worker_requests: 3, ..SlotManagerConfig::default() };
        for kv in args.split_whitespace() {
            let (k, v) = kv.split_once('=').unwrap_or_else(|| panic!("config wants key=value, got `{kv}`"));
            match k {
                "sizing" if v == "fixed" => c.sizing = WorkerSizing::Fixed,
                "sizing" => {
                    let n = v.strip_prefix("fit:").and_then(|n| n.parse().ok()).expect("sizing=fixed or fit:<n>");
                    c.sizing = WorkerSizing::FitToRequirement { slots_per_worker: n };
                }
                "default" => c.default_worker = spec(v),
                "idle" => c.idle_timeout = duration(v),
                "max_worker" => c.max_worker = Some(profile(v)),
                "max_slot" => c.max_slot = Some(profile(v)),
                "max_total" => c.max_total = Some(profile(v)),
                "max_failures" => c.max_failed_worker_requests = v.parse().expect("max_failures=<n>"),
                _ => panic!("unknown config key `{k}`"),
            }
        }
        c.validate().expect("scenario config");
        c
    }

    fn job(&mut self, name: &str) -> JobId {
        let n = self.jobs.len() as u128 + 1;
        *self.jobs.entry(name.to_owned()).or_insert(JobId::from_u128(n))
    }

    /// An allocation named in the scenario; unknown names get a fresh id
    /// (slots a TaskExecutor reports that the books never saw).
    fn allocation(&mut self, name: &str) -> AllocationId {
        let n = self.allocations.len() as u128 + 1;
        *self.allocations.entry(name.to_owned()).or_insert(AllocationId::from_u128(u128::MAX - n))
    }

    fn run(&mut self, line: &str, config_ok: bool) -> Vec<String> {
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let args: Vec<&str> = rest.split_whitespace().collect();
        let now = self.now;
        let actions = match cmd {
            "config" => {
                assert!(config_ok, "`config` must be the first command");
                self.sm = SlotManager::with_allocation_id_prefix(Self::config(rest), 7);
                vec![]
            }
            "register" => {
                let s = spec(args[1]);
                let mut total = s.total.clone();
                let mut slots = Vec::new();
                for a in &args[2..] {
                    match a.strip_prefix("total=") {
                        Some(t) => total = profile(t),
                        None => slots.push(*a),
                    }
                }
                let reg = TaskManagerRegistration {
                    resource_id: ResourceId::new(args[0]),
                    instance_id: InstanceId::from_u128(self.next_instance),
                    total,
                    default_slot: s.default_slot,
                    num_slots: s.num_slots,
                    slot_report: self.report(args[0], &slots),
                };
                self.next_instance += 1;
                self.sm.register_task_manager(now, reg)
            }
            "unregister" => self.sm.unregister_task_manager(now, &ResourceId::new(args[0])),
            // `report tm1 [@version] [slots..]`
            "report" => {
                let (version, slots) = versioned(&args[1..]);
                let report = self.report(args[0], slots);
                self.sm.report_slot_status(now, &ResourceId::new(args[0]), &report, version)
            }
            "declare" => {
                let job = self.job(args[0]);
                let reqs: Vec<ResourceRequirement> = args[1..].iter().map(|r| requirement(r)).collect();
                self.sm.declare_requirements(now, job, &reqs)
            }
            "clear" => {
                let job = self.job(args[0]);
                self.sm.clear_job(now, job)
            }
            "failed" => {
                let a = self.allocation(args[0]);
                self.sm.slot_allocation_failed(now, a)
            }
            // `confirm a1 [@version]`
            "confirm" => {
                let a = self.allocation(args[0]);
                self.sm.slot_allocation_confirmed(a, versioned(&args[1..]).0);
                vec![]
            }
            // `worker-failed 4x(1cpu,1g) [reason words..]`
            "worker-failed" => {
                let reason = if args.len() > 1 { args[1..].join(" ") } else { "no reason given".into() };
                self.sm.worker_request_failed(now, &spec(args[0]), &reason)
            }
            "advance" => {
                self.now += duration(args[0]);
                vec![]
            }
            "tick" => self.sm.tick(now),
            "overview" => return self.render_overview(),
            _ => panic!("unknown scenario command `{cmd}`"),
        };
        actions.iter().map(|a| self.render(a)).collect()
    }

    /// `index:allocation:job:(profile)` entries.
    fn report(&mut self, tm: &str, entries: &[&str]) -> SlotReport {
        let slots = entries
            .iter()
            .map(|e| {
                let mut parts = e.splitn(4, ':');
                let mut next = || parts.next().unwrap_or_else(|| panic!("slot `{e}` wants index:alloc:job:(profile)"));
                let index: u32 = next().parse().expect("slot index");
                let allocation = self.allocation(next());
                let job = self.job(next());
                SlotStatus {
                    slot_id: SlotId { resource_id: ResourceId::new(tm), index },
                    profile: profile(next()),
                    allocation: Some((allocation, job)),
                }
            })
            .collect();
        SlotReport { slots }
    }

    fn name_of_job(&self, id: JobId) -> String {
        self.jobs.iter().find(|(_, v)| **v == id).map_or_else(|| id.to_string(), |(k, _)| k.clone())
    }

    /// Allocation ids the SlotManager made are named a1, a2.. as they appear.
    fn name_of_allocation(&mut self, id: AllocationId) -> String {
        if let Some((k, _)) = self.allocations.iter().find(|(_, v)| **v == id) {
            return k.clone();
        }
        let n = self.allocations.keys().filter(|k| k.starts_with('a')).count() + 1;
        let name = format!("a{n}");
        self.allocations.insert(name.clone(), id);
        name
    }

    fn render(&mut self, a: &Action) -> String {
        match a {
            Action::AllocateSlot { slot_id, allocation_id, job_id, profile } => {
                let alloc = self.name_of_allocation(*allocation_id);
                format!("allocate {slot_id} {alloc} {} {}", self.name_of_job(*job_id), render_profile(profile))
            }
            Action::FreeSlot { slot_id, allocation_id, job_id } => {
                let alloc = self.name_of_allocation(*allocation_id);
                format!("free-slot {slot_id} {alloc} {}", self.name_of_job(*job_id))
            }
            Action::StartWorker(spec) => format!("start-worker {}", render_spec(spec)),
            Action::CancelWorker(spec) => format!("cancel-worker {}", render_spec(spec)),
            Action::ReleaseWorker { resource_id, reason } => format!("release {resource_id}: {reason}"),
            Action::Unfulfillable { job_id, profile, reason } => {
                format!("unfulfillable {} {}: {reason}", self.name_of_job(*job_id), render_requested(profile))
            }
        }
    }

    fn render_overview(&mut self) -> Vec<String> {
        let o = self.sm.overview();
        let mut out = Vec::new();
        for tm in &o.task_managers {
            let mut line = format!("tm {} free={} slots=[", tm.resource_id, render_profile(&tm.free));
            for (i, s) in tm.slots.iter().enumerate() {
                let alloc = self.name_of_allocation(s.allocation_id);
                let sep = if i == 0 { "" } else { " " };
                let _ = write!(
                    line,
                    "{sep}{}:{alloc}:{}:{}",
                    s.slot_id.index,
                    self.name_of_job(s.job_id),
                    render_profile(&s.profile)
                );
            }
            line.push(']');
            if !tm.accepting_allocations {
                line.push_str(" paused");
            }
            if let Some(why) = &tm.why {
                let why = self.jobs.iter().fold(why.clone(), |w, (name, id)| w.replace(&id.to_string(), name));
                let _ = write!(line, " why='{why}'");
            }
            out.push(line);
        }
        for (spec, n) in &o.pending_workers {
            out.push(format!("pending {} x{n}", render_spec(spec)));
        }
        for j in &o.jobs {
            let reqs = |v: &[ResourceRequirement]| {
                v.iter().map(|r| format!("{}x{}", r.count, render_requested(&r.profile))).collect::<Vec<_>>().join(" ")
            };
            let allocated: Vec<String> =
                j.allocated.iter().map(|(p, n)| format!("{n}x{}", render_profile(p))).collect();
            let mut line = format!(
                "job {} declared=[{}] allocated=[{}] missing=[{}]",
                self.name_of_job(j.job_id),
                reqs(&j.declared),
                allocated.join(" "),
                reqs(&j.missing)
            );
            if !j.unfulfillable.is_empty() {
                let u: Vec<String> = j.unfulfillable.iter().map(render_requested).collect();
                let _ = write!(line, " unfulfillable=[{}]", u.join(" "));
            }
            out.push(line);
        }
        out
    }
}

fn duration(s: &str) -> Duration {
    if let Some(ms) = s.strip_suffix("ms") {
        Duration::from_millis(ms.parse().expect("duration"))
    } else if let Some(secs) = s.strip_suffix('s') {
        Duration::from_secs(secs.parse().expect("duration"))
    } else {
        panic!("duration like 30s or 500ms, got `{s}`")
    }
}

/// `(1cpu,1g)`, `(0.5cpu,256m,gpu=1)`; memory goes to task heap.
fn profile(s: &str) -> ResourceProfile {
    let inner = s.strip_prefix('(').and_then(|s| s.strip_suffix(')')).unwrap_or_else(|| panic!("profile `{s}`"));
    let mut p = ResourceProfile::ZERO;
    for part in inner.split(',') {
        if let Some(cpu) = part.strip_suffix("cpu") {
            p.cpu_millis = parse_cpu(cpu).expect("cpu");
        } else if let Some((k, v)) = part.split_once('=') {
            p = p.with_extended(k, v.parse().expect("extended resource amount"));
        } else {
            p.task_heap_bytes = parse_memory(part).expect("memory");
        }
    }
    p
}

fn requested(s: &str) -> RequestedProfile {
    if s == "unknown" {
        RequestedProfile::Unknown
    } else {
        RequestedProfile::Exact(profile(s))
    }
}

/// `3x(1cpu,1g)` or `2xunknown`.
fn requirement(s: &str) -> ResourceRequirement {
    let (n, p) = s.split_once('x').unwrap_or_else(|| panic!("requirement like 2x(1cpu,1g), got `{s}`"));
    ResourceRequirement { profile: requested(p), count: n.parse().expect("count") }
}

/// `4x(1cpu,1g)`: 4 slots of (1cpu,1g), total 4 times that.
fn spec(s: &str) -> WorkerSpec {
    let (n, p) = s.split_once('x').unwrap_or_else(|| panic!("worker like 4x(1cpu,1g), got `{s}`"));
    WorkerSpec::uniform(profile(p), n.parse().expect("slots"))
}

fn render_profile(p: &ResourceProfile) -> String {
    let mem = p.total_memory_bytes();
    let mem = if mem.is_multiple_of(GIB) && mem > 0 { format!("{}g", mem / GIB) } else { format!("{}m", mem / MIB) };
    let mut s = format!("({}cpu,{mem}", format_cpu(p.cpu_millis));
    for (k, v) in &p.extended {
        let _ = write!(s, ",{k}={v}");
    }
    s.push(')');
    s
}

fn render_requested(p: &RequestedProfile) -> String {
    match p {
        RequestedProfile::Unknown => "unknown".to_owned(),
        RequestedProfile::Exact(p) => render_profile(p),
    }
}

fn render_spec(s: &WorkerSpec) -> String {
    let uniform = WorkerSpec::uniform(s.default_slot.clone(), s.num_slots);
    if uniform == *s {
        format!("{}x{}", s.num_slots, render_profile(&s.default_slot))
    } else {
        format!("{}x{} total={}", s.num_slots, render_profile(&s.default_slot), render_profile(&s.total))
    }
}
