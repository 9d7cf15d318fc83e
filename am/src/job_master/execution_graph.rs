//! The ExecutionGraph: the job's vertices expanded into subtasks, each with
//! its current attempt; the pipelined regions they fail over in; and the
//! shared slots they run in. Pure state with no I/O and no clock: the
//! [`Scheduler`](super::Scheduler) changes it and turns changes into actions.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use common::ids::{AllocationId, ExecutionAttemptId, JobId};
use common::jobspec::{JobSpec, Partitioning};
use common::protocol::{ExecutionState, ResourceRequirement};
use common::resources::{RequestedProfile, ResourceProfile};
use serde::{Deserialize, Serialize};

use super::slot_pool::TaskManagerLocation;

/// A job's status, with Flink's `JobStatus` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Created,
    Running,
    /// A subtask failed and the restart strategy gave up: cancelling the rest.
    Failing,
    /// Some region failed and waits out the restart delay (or its cancellations).
    Restarting,
    Finished,
    Failed,
    Cancelling,
    Canceled,
}

impl JobStatus {
    /// Flink's spelling, as the REST API shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Created => "CREATED",
            JobStatus::Running => "RUNNING",
            JobStatus::Failing => "FAILING",
            JobStatus::Restarting => "RESTARTING",
            JobStatus::Finished => "FINISHED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelling => "CANCELLING",
            JobStatus::Canceled => "CANCELED",
        }
    }

    /// FINISHED, FAILED or CANCELED: nothing will change any more.
    pub fn is_globally_terminal(self) -> bool {
        matches!(self, JobStatus::Finished | JobStatus::Failed | JobStatus::Canceled)
    }

    /// RUNNING or RESTARTING: the job wants slots and deploys into them.
    pub fn is_active(self) -> bool {
        matches!(self, JobStatus::Running | JobStatus::Restarting)
    }
}

impl std::fmt::Display for JobStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One attempt of one subtask.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub id: ExecutionAttemptId,
    /// 0 for the first attempt.
    pub number: u32,
    pub state: ExecutionState,
    /// Where it was deployed; `None` until then.
    pub location: Option<TaskManagerLocation>,
    pub allocation_id: Option<AllocationId>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One subtask of one vertex.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Index into `JobSpec::vertices` (topological order).
    pub vertex: usize,
    pub subtask: u32,
    /// Index into [`ExecutionGraph::regions`].
    pub region: usize,
    /// Index into [`ExecutionGraph::slot_requests`].
    pub slot_request: usize,
    pub attempt: Attempt,
}

/// Where a region is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionPhase {
    /// Not yet started (job CREATED).
    Created,
    /// Waiting for every slot its members need, then deployed all at once.
    WaitingForSlots,
    Deployed,
    /// Failed: waits until `at` and until all its attempts are terminal,
    /// then gets new attempts.
    Restarting {
        at: Instant,
    },
}

/// A pipelined region: subtasks joined by (pipelined) edges, deployed together
/// and restarted together.
#[derive(Clone, Debug)]
pub struct Region {
    /// Indices into [`ExecutionGraph::executions`], ascending (topological).
    pub members: Vec<usize>,
    /// Indices into [`ExecutionGraph::slot_requests`], ascending.
    pub slot_requests: Vec<usize>,
    pub phase: RegionPhase,
}

/// What an undeclared subtask adds to a slot it shares with declared ones:
/// small, as most are built-in sources and sinks or light filters.
pub const UNDECLARED_IN_SHARED_SLOT: (u64, u64) = (100, 64 * 1024 * 1024);

/// A shared slot's profile from its members': their sum, each undeclared one
/// counting [`UNDECLARED_IN_SHARED_SLOT`]; `Unknown` when none is declared.
fn shared_profile<'a>(members: impl Iterator<Item = &'a RequestedProfile>) -> RequestedProfile {
    let small = ResourceProfile::new(UNDECLARED_IN_SHARED_SLOT.0, UNDECLARED_IN_SHARED_SLOT.1);
    let (mut sum, mut declared) = (ResourceProfile::ZERO, false);
    for m in members {
        match m {
            RequestedProfile::Exact(p) => {
                sum = sum.add(p);
                declared = true;
            }
            RequestedProfile::Unknown => sum = sum.add(&small),
        }
    }
    if declared {
        RequestedProfile::Exact(sum)
    } else {
        RequestedProfile::Unknown
    }
}

/// One shared slot: the subtasks with one index of the vertices of one slot
/// sharing group.
#[derive(Clone, Debug)]
pub struct SlotRequest {
    /// The slot sharing group, or `vertex:<name>` for a vertex without one.
    pub group: String,
    pub subtask: u32,
    /// Indices into [`ExecutionGraph::executions`].
    pub members: Vec<usize>,
    /// The members' profiles added up; `Unknown` if any member's is.
    pub profile: RequestedProfile,
    /// The lowest region of a member: offers fill one region before the next.
    pub first_region: usize,
}

#[derive(Clone, Debug)]
pub struct ExecutionGraph {
    pub job_id: JobId,
    pub spec: JobSpec,
    pub status: JobStatus,
    /// Where each vertex's subtasks start in `executions`.
    vertex_offsets: Vec<usize>,
    pub executions: Vec<Execution>,
    pub regions: Vec<Region>,
    pub slot_requests: Vec<SlotRequest>,
    by_attempt: HashMap<ExecutionAttemptId, usize>,
}

impl ExecutionGraph {
    pub fn new(job_id: JobId, spec: &JobSpec) -> ExecutionGraph {
        let mut vertex_offsets = Vec::with_capacity(spec.vertices.len());
        let mut executions = Vec::new();
        for (v, vertex) in spec.vertices.iter().enumerate() {
            vertex_offsets.push(executions.len());
            for subtask in 0..vertex.parallelism {
                executions.push(Execution {
                    vertex: v,
                    subtask,
                    region: 0,
                    slot_request: 0,
                    attempt: Attempt {
                        id: ExecutionAttemptId::random(),
                        number: 0,
                        state: ExecutionState::Created,
                        location: None,
                        allocation_id: None,
                        error: None,
                    },
                });
            }
        }
        let mut graph = ExecutionGraph {
            job_id,
            spec: spec.clone(),
            status: JobStatus::Created,
            vertex_offsets,
            by_attempt: executions.iter().enumerate().map(|(i, e)| (e.attempt.id, i)).collect(),
            executions,
            regions: Vec::new(),
            slot_requests: Vec::new(),
        };
        graph.build_regions();
        graph.build_slot_requests();
        graph
    }

    /// The index in `executions` of a vertex's subtask.
    pub fn execution_index(&self, vertex: usize, subtask: u32) -> Option<usize> {
        let p = self.spec.vertices.get(vertex)?.parallelism;
        (subtask < p).then(|| self.vertex_offsets[vertex] + subtask as usize)
    }

    pub fn execution(&self, vertex: usize, subtask: u32) -> Option<&Execution> {
        self.execution_index(vertex, subtask).map(|i| &self.executions[i])
    }

    /// The execution whose *current* attempt is `id`; `None` for stale or unknown attempts.
    pub fn current_attempt(&self, id: &ExecutionAttemptId) -> Option<usize> {
        self.by_attempt.get(id).copied()
    }

    /// `vertex `name` subtask i (attempt n)`, for messages.
    pub fn describe(&self, execution: usize) -> String {
        let e = &self.executions[execution];
        format!("vertex `{}` subtask {} (attempt {})", self.spec.vertices[e.vertex].name, e.subtask, e.attempt.number)
    }

    /// Gives `execution` a fresh attempt (number + 1), waiting for its slot.
    pub(crate) fn new_attempt(&mut self, execution: usize) {
        let e = &mut self.executions[execution];
        self.by_attempt.remove(&e.attempt.id);
        e.attempt = Attempt {
            id: ExecutionAttemptId::random(),
            number: e.attempt.number + 1,
            state: ExecutionState::Scheduled,
            location: None,
            allocation_id: None,
            error: None,
        };
        self.by_attempt.insert(e.attempt.id, execution);
    }

    /// True when every subtask of region `r` has finished.
    pub fn region_finished(&self, r: usize) -> bool {
        self.regions[r].members.iter().all(|&m| self.executions[m].attempt.state == ExecutionState::Finished)
    }

    /// For each slot request: does it still have work to host, i.e. has some
    /// region of its members not finished? (Not "some member": a finished
    /// producer's slot stays until its region's consumers are done with its
    /// data, and a region that restarts needs all its slots again.) One pass
    /// over the graph, so callers ask once per event rather than per request.
    pub fn needed_requests(&self) -> Vec<bool> {
        let finished: Vec<bool> = (0..self.regions.len()).map(|r| self.region_finished(r)).collect();
        self.slot_requests.iter().map(|q| q.members.iter().any(|&m| !finished[self.executions[m].region])).collect()
    }

    /// True when every member of the request is terminal.
    pub fn request_idle(&self, request: usize) -> bool {
        self.slot_requests[request].members.iter().all(|&m| self.executions[m].attempt.state.is_terminal())
    }

    /// Aggregates the profiles of `requests` into (profile, count) pairs, sorted by profile.
    pub fn aggregate(&self, requests: impl Iterator<Item = usize>) -> Vec<ResourceRequirement> {
        let mut counts: BTreeMap<RequestedProfile, u32> = BTreeMap::new();
        for r in requests {
            *counts.entry(self.slot_requests[r].profile.clone()).or_insert(0) += 1;
        }
        counts.into_iter().map(|(profile, count)| ResourceRequirement { profile, count }).collect()
    }

    /// Connected components of the subtask graph: forward edges join subtask i
    /// to subtask i, every other partitioning joins all producers to all consumers.
    fn build_regions(&mut self) {
        let n = self.executions.len();
        let mut parent: Vec<usize> = (0..n).collect();
        fn find(parent: &mut [usize], mut x: usize) -> usize {
            while parent[x] != x {
                parent[x] = parent[parent[x]];
                x = parent[x];
            }
            x
        }
        let union = |parent: &mut Vec<usize>, a: usize, b: usize| {
            let (ra, rb) = (find(parent, a), find(parent, b));
            if ra != rb {
                // The lower index is the root, so roots are the first members.
                parent[ra.max(rb)] = ra.min(rb);
            }
        };
        for edge in &self.spec.edges {
            let (from, to) = (self.vertex_offsets[edge.from], self.vertex_offsets[edge.to]);
            let (pf, pt) = (self.spec.vertices[edge.from].parallelism, self.spec.vertices[edge.to].parallelism);
            if edge.partitioning == Partitioning::Forward {
                for i in 0..pf.min(pt) as usize {
                    union(&mut parent, from + i, to + i);
                }
            } else {
                for i in 0..pf as usize {
                    union(&mut parent, from, from + i);
                }
                for j in 0..pt as usize {
                    union(&mut parent, from, to + j);
                }
            }
        }
        let mut region_of_root: HashMap<usize, usize> = HashMap::new();
        for x in 0..n {
            let root = find(&mut parent, x);
            let next = self.regions.len();
            let r = *region_of_root.entry(root).or_insert(next);
            if r == next {
                self.regions.push(Region {
                    members: Vec::new(),
                    slot_requests: Vec::new(),
                    phase: RegionPhase::Created,
                });
            }
            self.regions[r].members.push(x);
            self.executions[x].region = r;
        }
    }

    fn build_slot_requests(&mut self) {
        // A slot of undeclared members only stays Unknown (the TaskManager's default slot).
        // Where declared and undeclared members share a slot, each undeclared one adds
        // UNDECLARED_IN_SHARED_SLOT instead of making the whole slot Unknown (which would
        // drop what the declared ones asked for).
        // Keyed by the group's name, or by the vertex index for a vertex without a group.
        let mut by_key: HashMap<(Result<String, usize>, u32), usize> = HashMap::new();
        for x in 0..self.executions.len() {
            let (v, subtask, region) =
                (self.executions[x].vertex, self.executions[x].subtask, self.executions[x].region);
            let vertex = &self.spec.vertices[v];
            let key = vertex.slot_sharing_group.clone().ok_or(v);
            let group = vertex.slot_sharing_group.clone().unwrap_or_else(|| format!("vertex:{}", vertex.name));
            let next = self.slot_requests.len();
            let r = *by_key.entry((key, subtask)).or_insert(next);
            if r == next {
                self.slot_requests.push(SlotRequest {
                    group,
                    subtask,
                    members: Vec::new(),
                    profile: RequestedProfile::Exact(ResourceProfile::ZERO),
                    first_region: region,
                });
            }
            let request = &mut self.slot_requests[r];
            request.members.push(x);
            request.first_region = request.first_region.min(region);
            self.executions[x].slot_request = r;
            let region = &mut self.regions[region];
            if !region.slot_requests.contains(&r) {
                region.slot_requests.push(r);
            }
        }
        for r in 0..self.slot_requests.len() {
            let profiles =
                self.slot_requests[r].members.iter().map(|&x| &self.spec.vertices[self.executions[x].vertex].resources);
            let profile = shared_profile(profiles);
            self.slot_requests[r].profile = profile;
        }
        for region in &mut self.regions {
            region.slot_requests.sort_unstable();
        }
    }
}
