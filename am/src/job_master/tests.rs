//! Scenario tests of the JobMaster's pure core. A [`Harness`] drives the
//! [`Scheduler`] with a fake clock and renders every action as one line
//! ("deploy src[0]#0 on tm-a"), so each test reads as inputs and the
//! decisions they must produce.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use common::jobspec::{parse_job_spec, JobSpec, Partitioning};
use common::protocol::{ExecutionState, SlotOffer, TaskDeploymentDescriptor, TaskExecutionState};
use common::resources::{RequestedProfile, ResourceProfile, MIB};

use super::*;

const JOB: JobId = JobId::from_u128(7);

fn spec(toml: &str) -> JobSpec {
    parse_job_spec(toml, Path::new("/bundle/job.toml"), Path::new("/nonexistent-bundle"))
        .unwrap_or_else(|e| panic!("test spec is invalid: {e}"))
}

fn tm(name: &str) -> TaskManagerLocation {
    TaskManagerLocation {
        resource_id: ResourceId::new(name),
        address: format!("{name}:6122"),
        data_address: format!("{name}:6121"),
    }
}

fn profile(cpu_millis: u64, mem_mib: u64) -> ResourceProfile {
    ResourceProfile::new(cpu_millis, mem_mib * MIB)
}

struct Harness {
    s: Scheduler,
    now: Instant,
    next_allocation: u128,
    /// Allocation -> "slotN", for readable lines.
    slot_names: HashMap<AllocationId, String>,
    /// Every attempt ever seen -> "vertex[subtask]#attempt".
    attempt_names: HashMap<ExecutionAttemptId, String>,
    /// The TDDs of the latest deployments, by "vertex[subtask]".
    tdds: HashMap<String, TaskDeploymentDescriptor>,
    /// The slot-table version offers are made at.
    report_version: u64,
}

impl Harness {
    fn new(toml: &str) -> Harness {
        let ctx = DeploymentContext {
            job_master_id: JobMasterId::from_u128(1),
            job_master_address: "am:6123".to_owned(),
            bundle_dir: PathBuf::from("/work/bundle"),
        };
        let mut h = Harness {
            s: Scheduler::new(JOB, &spec(toml), ctx),
            now: Instant::now(),
            next_allocation: 0,
            slot_names: HashMap::new(),
            attempt_names: HashMap::new(),
            tdds: HashMap::new(),
            report_version: 0,
        };
        h.learn_attempts();
        h
    }

    fn learn_attempts(&mut self) {
        let g = self.s.graph();
        for e in &g.executions {
            let name = format!("{}[{}]#{}", g.spec.vertices[e.vertex].name, e.subtask, e.attempt.number);
            self.attempt_names.insert(e.attempt.id, name);
        }
    }

    fn render(&mut self, actions: Vec<JobMasterAction>) -> Vec<String> {
        self.learn_attempts();
        actions
            .into_iter()
            .map(|a| match a {
                JobMasterAction::DeclareRequirements(reqs) => {
                    let parts: Vec<String> = reqs
                        .iter()
                        .map(|r| match &r.profile {
                            RequestedProfile::Unknown => format!("{} x any", r.count),
                            RequestedProfile::Exact(p) => format!("{} x ({p})", r.count),
                        })
                        .collect();
                    format!("declare [{}]", parts.join(", "))
                }
                JobMasterAction::Deploy { task_manager, tdd } => {
                    let line = format!(
                        "deploy {}[{}]#{} on {}",
                        tdd.vertex_name, tdd.subtask_index, tdd.attempt_number, task_manager.resource_id
                    );
                    self.tdds.insert(format!("{}[{}]", tdd.vertex_name, tdd.subtask_index), *tdd);
                    line
                }
                JobMasterAction::CancelTask { task_manager, attempt_id } => {
                    format!("cancel {} on {}", self.attempt_names[&attempt_id], task_manager.resource_id)
                }
                JobMasterAction::FreeSlot { task_manager, allocation_id, .. } => {
                    format!("free {} on {}", self.slot_names[&allocation_id], task_manager.resource_id)
                }
                JobMasterAction::JobFinished { status, error: None } => format!("job {status}"),
                JobMasterAction::JobFinished { status, error: Some(e) } => format!("job {status}: {e}"),
            })
            .collect()
    }

    fn start(&mut self) -> Vec<String> {
        let a = self.s.start(self.now);
        self.render(a)
    }

    /// Offers slots of the given profiles from `tm`; returns (accepted count, lines).
    fn offer(&mut self, tm_name: &str, profiles: &[ResourceProfile]) -> (usize, Vec<String>) {
        let offers: Vec<SlotOffer> = profiles
            .iter()
            .enumerate()
            .map(|(i, p)| {
                self.next_allocation += 1;
                let allocation_id = AllocationId::from_u128(self.next_allocation);
                self.slot_names.insert(allocation_id, format!("slot{}", self.next_allocation));
                SlotOffer { allocation_id, slot_index: i as u32, profile: p.clone() }
            })
            .collect();
        let result = self.s.offer_slots(tm(tm_name), offers, self.report_version, self.now);
        let n = result.accepted.len();
        (n, self.render(result.actions))
    }

    /// A heartbeat from `tm` listing the named slots, taken at `version`.
    fn heartbeat(&mut self, tm_name: &str, slots: &[&str], version: u64) -> Vec<String> {
        let allocations: Vec<AllocationId> =
            self.slot_names.iter().filter(|(_, name)| slots.contains(&name.as_str())).map(|(id, _)| *id).collect();
        let a = self.s.task_manager_heartbeat(&ResourceId::new(tm_name), &allocations, version, self.now);
        self.render(a)
    }

    fn attempt(&self, vertex: &str, subtask: u32) -> ExecutionAttemptId {
        let g = self.s.graph();
        let v = g.spec.vertices.iter().position(|v| v.name == vertex).unwrap_or_else(|| panic!("no vertex {vertex}"));
        g.execution(v, subtask).map(|e| e.attempt.id).unwrap_or_else(|| panic!("no subtask {vertex}[{subtask}]"))
    }

    fn state(&self, vertex: &str, subtask: u32) -> ExecutionState {
        let id = self.attempt(vertex, subtask);
        let g = self.s.graph();
        g.current_attempt(&id).map(|x| g.executions[x].attempt.state).unwrap_or(ExecutionState::Created)
    }

    fn report_attempt(
        &mut self,
        attempt_id: ExecutionAttemptId,
        state: ExecutionState,
        error: Option<&str>,
    ) -> Vec<String> {
        let update = TaskExecutionState { job_id: JOB, attempt_id, state, error: error.map(str::to_owned), io: None };
        let a = self.s.update_task_state(&update, self.now);
        self.render(a)
    }

    fn report(&mut self, vertex: &str, subtask: u32, state: ExecutionState, error: Option<&str>) -> Vec<String> {
        self.report_attempt(self.attempt(vertex, subtask), state, error)
    }

    /// Reports `state` for every subtask of every vertex; returns all lines.
    fn report_all(&mut self, state: ExecutionState) -> Vec<String> {
        let subtasks: Vec<(String, u32)> = {
            let g = self.s.graph();
            g.executions.iter().map(|e| (g.spec.vertices[e.vertex].name.clone(), e.subtask)).collect()
        };
        subtasks.into_iter().flat_map(|(v, i)| self.report(&v, i, state, None)).collect()
    }

    fn advance(&mut self, d: Duration) -> Vec<String> {
        self.now += d;
        let a = self.s.tick(self.now);
        self.render(a)
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Each vertex in a group of its own: these transcripts follow one slot per subtask.
const HASH_JOB: &str = r#"
[job]
name = "two"
[[vertex]]
name = "src"
parallelism = 2
command = ["gen"]
slot_sharing_group = "src"
resources = { cpu = 0.5, memory = "256m" }
[[vertex]]
name = "sum"
parallelism = 2
command = ["sum"]
slot_sharing_group = "sum"
resources = { cpu = 0.5, memory = "256m" }
[[edge]]
from = "src"
to = "sum"
partitioning = "hash"
"#;

#[test]
fn a_hash_job_deploys_only_when_every_slot_is_there_and_wires_all_to_all() {
    let mut h = Harness::new(HASH_JOB);
    assert_eq!(h.start(), lines(&["declare [4 x (0.5 cpu, 256 MB)]"]));
    assert_eq!(h.s.status(), JobStatus::Running);

    // Not the requested profile (too small, or larger): rejected. Matching slots: kept, but no deployment yet.
    assert_eq!(h.offer("tm-a", &[profile(250, 256)]), (0, vec![]));
    assert_eq!(h.offer("tm-a", &[profile(500, 256), profile(500, 256), profile(1000, 1024)]), (2, vec![]));
    assert_eq!(h.s.missing_requirements().iter().map(|r| r.count).sum::<u32>(), 2);
    assert_eq!(h.offer("tm-a", &[profile(500, 256)]), (1, vec![]));
    // The fourth slot completes the region: all four deploy at once, producers first.
    let (n, out) = h.offer("tm-b", &[profile(500, 256), profile(500, 256)]);
    assert_eq!(n, 1, "only what is needed is accepted");
    assert_eq!(
        out,
        lines(&[
            "deploy src[0]#0 on tm-a",
            "deploy src[1]#0 on tm-a",
            "deploy sum[0]#0 on tm-a",
            "deploy sum[1]#0 on tm-b"
        ])
    );

    // The snapshot (REST /jobs/<id>) says where each subtask went.
    let snap = h.s.snapshot();
    let sum: Vec<(u32, Option<String>, Option<String>)> = snap.vertices[1]
        .subtasks
        .iter()
        .map(|t| (t.subtask, t.task_manager.as_ref().map(ToString::to_string), t.host.clone()))
        .collect();
    assert_eq!(
        sum,
        [(0, Some("tm-a".into()), Some("tm-a".into())), (1, Some("tm-b".into()), Some("tm-b".into()))],
        "{:?}",
        snap.vertices[1]
    );
    assert!(snap.vertices[0].subtasks.iter().all(|t| t.attempt == 0 && t.state == ExecutionState::Deploying));

    let src0 = &h.tdds["src[0]"];
    assert_eq!(src0.outputs.len(), 1);
    assert_eq!(src0.outputs[0].num_subpartitions, 2);
    assert_eq!(src0.outputs[0].partitioning, Partitioning::Hash);
    assert_eq!(src0.outputs[0].partition_id.producer_attempt, h.attempt("src", 0));
    assert!(src0.inputs.is_empty());
    assert_eq!(src0.bundle_dir, PathBuf::from("/work/bundle"));
    assert_eq!(src0.job_master_address, "am:6123");
    assert_eq!(src0.job_name, "two");
    assert_eq!((src0.vertex_index, src0.parallelism, src0.attempt_number), (0, 2, 0));

    let sum1 = &h.tdds["sum[1]"];
    assert!(sum1.outputs.is_empty());
    assert_eq!(sum1.inputs.len(), 1);
    let gate = &sum1.inputs[0];
    assert_eq!((gate.edge_index, gate.partitioning), (0, Partitioning::Hash));
    let channels: Vec<(u32, u32, &str)> = gate
        .channels
        .iter()
        .map(|c| (c.partition_id.producer_subtask, c.subpartition, c.producer_data_address.as_str()))
        .collect();
    assert_eq!(
        channels,
        [(0, 1, "tm-a:6121"), (1, 1, "tm-a:6121")],
        "consumer j reads subpartition j of each producer"
    );
    assert_eq!(gate.channels[1].partition_id.producer_attempt, h.attempt("src", 1));
    assert_eq!(gate.channels[1].producer_resource_id, ResourceId::new("tm-a"));
    assert_eq!(sum1.allocation_id, AllocationId::from_u128(6));

    assert!(h.report("src", 0, ExecutionState::Running, None).is_empty());
    assert_eq!(h.state("src", 0), ExecutionState::Running);
    let out = h.report_all(ExecutionState::Finished);
    assert_eq!(
        out,
        lines(&[
            "free slot2 on tm-a",
            "free slot3 on tm-a",
            "free slot5 on tm-a",
            "free slot6 on tm-b",
            "declare []",
            "job FINISHED"
        ])
    );
    let snap = h.s.snapshot();
    assert_eq!(snap.status, JobStatus::Finished);
    assert_eq!(snap.end_time, Some(h.now));
    assert_eq!(snap.vertices[1].states.finished, 2);
    assert!(h.s.pool().is_empty());
}

#[test]
fn slot_sharing_groups_share_one_slot_per_index_and_sum_their_profiles() {
    let mut h = Harness::new(
        r#"
[[vertex]]
name = "a"
parallelism = 2
command = ["a"]
slot_sharing_group = "g"
resources = { cpu = 0.5, memory = "256m" }
[[vertex]]
name = "b"
parallelism = 3
command = ["b"]
slot_sharing_group = "g"
resources = { cpu = 1, memory = "512m" }
[[vertex]]
name = "c"
command = ["c"]
[[edge]]
from = "a"
to = "b"
partitioning = "rebalance"
[[edge]]
from = "b"
to = "c"
"#,
    );
    assert_eq!(h.start(), lines(&["declare [1 x any, 1 x (1 cpu, 512 MB), 2 x (1.5 cpu, 768 MB)]"]));
    // Two big slots and a small one: the small one cannot hold a[i]+b[i].
    assert_eq!(h.offer("tm-a", &[profile(1000, 512), profile(1500, 768), profile(1500, 768)]).0, 3);
    let (n, out) = h.offer("tm-b", &[profile(100, 64)]);
    assert_eq!(n, 1, "an unknown profile takes any slot");
    assert_eq!(
        out,
        lines(&[
            "deploy a[0]#0 on tm-a",
            "deploy a[1]#0 on tm-a",
            "deploy b[0]#0 on tm-a",
            "deploy b[1]#0 on tm-a",
            "deploy b[2]#0 on tm-a",
            "deploy c[0]#0 on tm-b"
        ])
    );
    // a[i] and b[i] share a slot; b[2] has one of its own.
    let alloc = |k: &str| h.tdds[k].allocation_id;
    assert_eq!(alloc("a[0]"), alloc("b[0]"));
    assert_eq!(alloc("a[1]"), alloc("b[1]"));
    assert_eq!(alloc("b[2]"), AllocationId::from_u128(1), "the 1 cpu slot went to the 1 cpu request");
    assert_ne!(alloc("b[2]"), alloc("b[0]"));

    // An undeclared member adds a small default to a declared slot (real-cluster report,
    // point 4: it used to make the whole slot "any", dropping what the others declared).
    let h = Harness::new(
        "[[vertex]]\nname = \"a\"\ncommand = [\"a\"]\nslot_sharing_group = \"g\"\nresources = { cpu = 1 }\n[[vertex]]\nname = \"b\"\ncommand = [\"b\"]\nslot_sharing_group = \"g\"\n",
    );
    assert_eq!(h.s.graph().slot_requests.len(), 1);
    assert_eq!(h.s.graph().slot_requests[0].profile, RequestedProfile::Exact(profile(1100, 64)));
}

/// Real-cluster report, point 4: as in Flink, vertices that name no group
/// share the "default" group's slots, so the word count's four vertices of
/// parallelism 2 hold 2 slots, not 8; a slot of undeclared vertices only
/// stays "any slot".
#[test]
fn vertices_without_a_group_share_the_default_group() {
    let h = Harness::new(
        r#"
[[vertex]]
name = "read"
parallelism = 2
source = { type = "text", path = "in" }
[[vertex]]
name = "tokenize"
parallelism = 2
command = ["t"]
resources = { cpu = 0.5, memory = "256m" }
[[vertex]]
name = "count"
parallelism = 2
command = ["c"]
resources = { cpu = 1, memory = "1g" }
[[vertex]]
name = "write"
parallelism = 2
sink = { type = "text", path = "hdfs:///out" }
[[edge]]
from = "read"
to = "tokenize"
[[edge]]
from = "tokenize"
to = "count"
partitioning = "hash"
[[edge]]
from = "count"
to = "write"
"#,
    );
    let requests = &h.s.graph().slot_requests;
    assert_eq!(requests.len(), 2);
    for r in requests {
        assert_eq!(r.group, "default");
        assert_eq!(r.members.len(), 4);
        assert_eq!(r.profile, RequestedProfile::Exact(profile(1700, 256 + 1024 + 2 * 64)));
    }
    let nothing_declared = Harness::new("[[vertex]]\nname = \"a\"\nparallelism = 2\ncommand = [\"a\"]\n[[vertex]]\nname = \"b\"\nparallelism = 2\ncommand = [\"b\"]\n[[edge]]\nfrom = \"a\"\nto = \"b\"\n");
    let requests = &nothing_declared.s.graph().slot_requests;
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.profile == RequestedProfile::Unknown));
}

/// Each vertex in a group of its own, so a region's slots are its own.
const FORWARD_JOB: &str = r#"
[job]
restart = { strategy = "fixed-delay", attempts = 2, delay = "1s" }
[[vertex]]
name = "a"
parallelism = 2
command = ["a"]
slot_sharing_group = "a"
[[vertex]]
name = "b"
parallelism = 2
command = ["b"]
slot_sharing_group = "b"
[[edge]]
from = "a"
to = "b"
"#;

/// Starts FORWARD_JOB with a[i] and b[i] on tm-a and tm-b: subtask 0 on tm-a, 1 on tm-b.
fn running_forward_job() -> Harness {
    let mut h = Harness::new(FORWARD_JOB);
    assert_eq!(h.start(), lines(&["declare [4 x any]"]));
    assert_eq!(
        h.offer("tm-a", &[profile(1000, 1024), profile(1000, 1024)]).1,
        lines(&["deploy a[0]#0 on tm-a", "deploy b[0]#0 on tm-a"]),
        "forward edges make one region per subtask index"
    );
    assert_eq!(
        h.offer("tm-b", &[profile(1000, 1024), profile(1000, 1024)]).1,
        lines(&["deploy a[1]#0 on tm-b", "deploy b[1]#0 on tm-b"])
    );
    h.report_all(ExecutionState::Running);
    h
}

#[test]
fn a_failure_restarts_only_its_region_after_the_delay_with_new_attempts() {
    let mut h = running_forward_job();
    let old_a0 = h.attempt("a", 0);
    assert_eq!(h.report("b", 0, ExecutionState::Failed, Some("exit code 3")), lines(&["cancel a[0]#0 on tm-a"]));
    assert_eq!(h.s.status(), JobStatus::Restarting);
    assert_eq!(h.state("a", 1), ExecutionState::Running, "the other region runs on");
    assert_eq!(h.s.next_wakeup(), None, "the restart waits for the cancellation first");
    assert!(h.report("a", 0, ExecutionState::Canceled, None).is_empty());
    assert_eq!(h.s.next_wakeup(), Some(h.now + Duration::from_secs(1)));

    assert!(h.advance(Duration::from_millis(999)).is_empty());
    // The slots were kept, so the new attempts deploy at once, into them.
    assert_eq!(h.advance(Duration::from_millis(1)), lines(&["deploy a[0]#1 on tm-a", "deploy b[0]#1 on tm-a"]));
    assert_eq!(h.s.status(), JobStatus::Running);
    assert_ne!(h.attempt("a", 0), old_a0);
    let b0 = &h.tdds["b[0]"];
    assert_eq!(b0.attempt_number, 1);
    assert_eq!(b0.inputs[0].channels[0].partition_id.producer_attempt, h.attempt("a", 0), "wired to the new producer");

    // A late update of the old attempt changes nothing.
    assert!(h.report_attempt(old_a0, ExecutionState::Finished, None).is_empty());
    assert_eq!(h.state("a", 0), ExecutionState::Deploying);

    let out = h.report_all(ExecutionState::Finished);
    assert_eq!(out.last().map(String::as_str), Some("job FINISHED"));
    let snap = h.s.snapshot();
    assert_eq!(snap.restarts, 1);
    // The restart history (REST): one entry, with the failure that caused it.
    assert_eq!(snap.restart_history.len(), 1);
    assert!(snap.restart_history[0].1.contains("failed"), "{:?}", snap.restart_history);
}

#[test]
fn when_restarts_run_out_the_job_fails_with_the_root_cause() {
    let mut h = running_forward_job();
    for round in 0..2 {
        h.report("b", 1, ExecutionState::Failed, Some("disk full"));
        h.report("a", 1, ExecutionState::Canceled, None);
        assert_eq!(h.advance(Duration::from_secs(1)).len(), 2, "round {round} redeploys region 1");
        h.report("a", 1, ExecutionState::Running, None);
        h.report("b", 1, ExecutionState::Running, None);
    }
    assert_eq!(
        h.report("b", 1, ExecutionState::Failed, Some("disk full")),
        lines(&[
            "cancel a[0]#0 on tm-a",
            "cancel a[1]#2 on tm-b",
            "cancel b[0]#0 on tm-a",
            "free slot4 on tm-b",
            "declare []"
        ]),
        "everything is cancelled; the failed subtask's slot is free at once"
    );
    assert_eq!(h.s.status(), JobStatus::Failing);
    let mut out = h.report("a", 0, ExecutionState::Canceled, None);
    out.extend(h.report("b", 0, ExecutionState::Canceled, None));
    out.extend(h.report("a", 1, ExecutionState::Failed, Some("broken pipe")));
    let cause = "vertex `b` subtask 1 (attempt 2) failed: disk full; not restarting: all 2 restart attempts of the fixed-delay strategy are used up";
    assert_eq!(
        out,
        vec![
            "free slot1 on tm-a".to_owned(),
            "free slot2 on tm-a".to_owned(),
            "free slot3 on tm-b".to_owned(),
            format!("job FAILED: {cause}"),
        ]
    );
    assert_eq!(h.s.snapshot().failure.as_deref(), Some(cause));
    assert!(h.s.tick(h.now).is_empty(), "nothing happens after the end");
}

#[test]
fn losing_a_task_manager_fails_its_tasks_and_the_region_moves_to_new_slots() {
    let mut h = running_forward_job();
    let old_b1 = h.attempt("b", 1);
    let out = h.s.release_task_manager(&ResourceId::new("tm-b"), "heartbeat timed out", h.now);
    assert!(h.render(out).is_empty(), "nothing to cancel: both of region 1's tasks were on tm-b");
    assert_eq!(h.state("b", 1), ExecutionState::Failed);
    assert_eq!(h.s.missing_requirements().iter().map(|r| r.count).sum::<u32>(), 2);
    assert!(h.s.snapshot().failure.unwrap_or_default().contains("its TaskManager tm-b was lost: heartbeat timed out"));

    // Slots arriving during the delay are kept; the region deploys when it is due.
    assert!(h.offer("tm-c", &[profile(1000, 1024), profile(1000, 1024)]).1.is_empty());
    assert_eq!(h.advance(Duration::from_secs(1)), lines(&["deploy a[1]#1 on tm-c", "deploy b[1]#1 on tm-c"]));
    assert_eq!(h.tdds["b[1]"].inputs[0].channels[0].producer_data_address, "tm-c:6121");
    // Late news from the lost TaskManager is stale.
    assert!(h.report_attempt(old_b1, ExecutionState::Failed, Some("late")).is_empty());
    assert_eq!(h.state("b", 1), ExecutionState::Deploying);
    let out = h.report_all(ExecutionState::Finished);
    assert_eq!(out.last().map(String::as_str), Some("job FINISHED"));
}

#[test]
fn a_slot_taken_back_fails_what_runs_in_it() {
    let mut h = running_forward_job();
    let out = h.s.release_slot(&AllocationId::from_u128(2), "slot timeout", h.now);
    assert_eq!(h.render(out), lines(&["cancel a[0]#0 on tm-a"]));
    assert_eq!(h.state("b", 0), ExecutionState::Failed);
}

#[test]
fn cancel_cancels_every_running_attempt_then_ends_canceled() {
    let mut h = running_forward_job();
    let out = h.s.cancel(h.now);
    assert_eq!(
        h.render(out),
        lines(&[
            "cancel a[0]#0 on tm-a",
            "cancel a[1]#0 on tm-b",
            "cancel b[0]#0 on tm-a",
            "cancel b[1]#0 on tm-b",
            "declare []"
        ])
    );
    assert_eq!(h.s.status(), JobStatus::Cancelling);
    assert_eq!(h.offer("tm-c", &[profile(1000, 1024)]).0, 0, "a cancelling job takes no slots");
    // Each slot is given back as soon as what runs in it has stopped, however it stopped.
    assert_eq!(h.report("a", 0, ExecutionState::Canceled, None), lines(&["free slot1 on tm-a"]));
    assert_eq!(h.report("b", 0, ExecutionState::Failed, Some("killed")), lines(&["free slot2 on tm-a"]));
    assert_eq!(h.report("a", 1, ExecutionState::Finished, None), lines(&["free slot3 on tm-b"]));
    let out = h.s.release_task_manager(&ResourceId::new("tm-b"), "gone", h.now);
    assert_eq!(h.render(out), lines(&["job CANCELED"]), "tm-b's last slot is gone with it; nothing to free");

    // Before start, a cancel ends the job at once.
    let mut h = Harness::new(FORWARD_JOB);
    let out = h.s.cancel(h.now);
    assert_eq!(h.render(out), lines(&["job CANCELED"]));
    assert!(h.start().is_empty());
}

#[test]
fn fail_ends_the_job_without_restarts() {
    let mut h = Harness::new(FORWARD_JOB);
    h.start();
    let out = h.s.fail("no TaskManager can offer 64 cpu", h.now);
    assert_eq!(h.render(out), lines(&["declare []", "job FAILED: no TaskManager can offer 64 cpu"]));
}

#[test]
fn forward_and_broadcast_edges_wire_their_channels() {
    let mut h = Harness::new(
        r#"
[[vertex]]
name = "a"
parallelism = 2
command = ["a"]
slot_sharing_group = "a"
[[vertex]]
name = "b"
parallelism = 2
command = ["b"]
slot_sharing_group = "b"
[[vertex]]
name = "c"
parallelism = 3
command = ["c"]
slot_sharing_group = "c"
[[edge]]
from = "a"
to = "b"
partitioning = "forward"
[[edge]]
from = "b"
to = "c"
partitioning = "broadcast"
"#,
    );
    h.start();
    assert_eq!(h.offer("tm-a", &vec![profile(1000, 1024); 7]).1.len(), 7);
    let b1 = &h.tdds["b[1]"];
    assert_eq!(b1.inputs.len(), 1);
    let ch = &b1.inputs[0].channels;
    assert_eq!(ch.len(), 1, "forward: one channel, from the same index");
    assert_eq!((ch[0].partition_id.edge_index, ch[0].partition_id.producer_subtask, ch[0].subpartition), (0, 1, 0));
    assert_eq!(h.tdds["a[1]"].outputs[0].num_subpartitions, 1);
    assert_eq!(b1.outputs[0].num_subpartitions, 3);
    assert_eq!(b1.outputs[0].partitioning, Partitioning::Broadcast);
    let c2 = &h.tdds["c[2]"];
    let wiring: Vec<(u32, u32, u32)> = c2.inputs[0]
        .channels
        .iter()
        .map(|c| (c.partition_id.edge_index, c.partition_id.producer_subtask, c.subpartition))
        .collect();
    assert_eq!(wiring, [(1, 0, 2), (1, 1, 2)]);
}

/// Issue 9: the guard was the JobMaster actor's. A TaskExecutor's heartbeat
/// taken before it offered a slot does not list that slot: it must not fail
/// the slot's tasks. A newer heartbeat without the slot does.
#[test]
fn a_heartbeat_older_than_an_accepted_offer_does_not_lose_its_slot() {
    let mut h = Harness::new(FORWARD_JOB);
    h.start();
    h.report_version = 5;
    h.offer("tm-a", &[profile(1000, 1024), profile(1000, 1024)]);
    h.report_all(ExecutionState::Running);
    assert!(h.heartbeat("tm-a", &[], 4).is_empty(), "taken before the offer");
    assert!(h.heartbeat("tm-a", &["slot1", "slot2"], 5).is_empty(), "both held");
    assert_eq!(
        h.heartbeat("tm-a", &["slot2"], 6),
        lines(&["cancel b[0]#0 on tm-a"]),
        "slot1 (a[0]) is gone: its region fails over"
    );
}

#[test]
fn a_finished_region_frees_its_slots_and_leaves_the_declaration() {
    let mut h = running_forward_job();
    assert!(h.report("a", 0, ExecutionState::Finished, None).is_empty(), "b[0] may still read a[0]'s data");
    assert_eq!(
        h.report("b", 0, ExecutionState::Finished, None),
        lines(&["free slot1 on tm-a", "free slot2 on tm-a", "declare [2 x any]"])
    );
    assert_eq!(h.s.status(), JobStatus::Running);
}

#[test]
fn repeated_offers_and_foreign_updates_are_harmless() {
    let mut h = Harness::new(HASH_JOB);
    h.start();
    let offer = SlotOffer { allocation_id: AllocationId::from_u128(99), slot_index: 0, profile: profile(500, 256) };
    h.slot_names.insert(offer.allocation_id, "slot99".into());
    assert_eq!(h.s.offer_slots(tm("tm-a"), vec![offer.clone()], 0, h.now).accepted.len(), 1);
    assert_eq!(h.s.offer_slots(tm("tm-a"), vec![offer.clone()], 0, h.now).accepted.len(), 1, "same answer again");
    assert!(h.s.offer_slots(tm("tm-x"), vec![offer], 0, h.now).accepted.is_empty(), "not from another TaskManager");
    assert_eq!(h.s.pool().len(), 1);

    let foreign = TaskExecutionState {
        job_id: JobId::from_u128(8),
        attempt_id: h.attempt("src", 0),
        state: ExecutionState::Failed,
        error: None,
        io: None,
    };
    assert!(h.s.update_task_state(&foreign, h.now).is_empty());
    let unknown = TaskExecutionState {
        job_id: JOB,
        attempt_id: ExecutionAttemptId::from_u128(5),
        state: ExecutionState::Failed,
        error: None,
        io: None,
    };
    assert!(h.s.update_task_state(&unknown, h.now).is_empty());
    assert_eq!(h.s.status(), JobStatus::Running);
}

#[test]
fn a_restarted_region_without_slots_waits_for_new_ones() {
    let mut h = running_forward_job();
    let out = h.s.release_task_manager(&ResourceId::new("tm-b"), "container killed", h.now);
    assert!(h.render(out).is_empty());
    assert!(h.advance(Duration::from_secs(1)).is_empty(), "due, but no slots: new attempts wait");
    assert_eq!(h.state("a", 1), ExecutionState::Scheduled);
    assert_eq!(h.s.status(), JobStatus::Running);
    assert_eq!(h.s.next_wakeup(), None);
    // Half the region's slots are not enough.
    assert!(h.offer("tm-c", &[profile(1000, 1024)]).1.is_empty());
    assert_eq!(h.offer("tm-d", &[profile(1000, 1024)]).1, lines(&["deploy a[1]#1 on tm-c", "deploy b[1]#1 on tm-d"]));
    assert_eq!(h.tdds["b[1]"].inputs[0].channels[0].producer_data_address, "tm-c:6121");
}
