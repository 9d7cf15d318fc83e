//! The pure offer book: which TaskManagers are wanted, which offers take
//! them, and what each task's status means. Offers, status updates and the
//! ResourceManager's asks come in; [`Decision`]s come out. No I/O, no clock.
//!
//! Rules (the issue's, and what a Mesos framework owes the master):
//! - a pending [`WorkerSpec`] takes an offer whose cpus, mem and gpus for our
//!   role cover its total; one offer may take several; the rest is declined
//!   with a refuse timeout, so no offer is held;
//! - offers are suppressed when nothing is pending, revived when something is;
//! - every status update that carries a uuid is acknowledged;
//! - TASK_FAILED, TASK_LOST, TASK_KILLED, TASK_GONE (and the other terminal
//!   states) end the worker with the master's words;
//! - a spec that fits no agent whose whole capacity was offered (no task of
//!   ours on it) is refused at once, naming the ask and the largest offer.

use std::collections::{BTreeMap, VecDeque};

use common::ids::ResourceId;
use common::resources::ResourceProfile;

use super::api::{Id, Offer, Resource, TaskStatus};
use crate::resource_manager::driver::DriverEvent;
use crate::resource_manager::worker::WorkerSpec;

const MIB: u64 = 1 << 20;

/// What an ask needs from an offer, in Mesos' units.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Need {
    pub cpus: f64,
    pub mem_mb: f64,
    pub gpus: f64,
}

impl Need {
    pub fn of(spec: &WorkerSpec) -> Self {
        Self::of_profile(&spec.total)
    }

    fn of_profile(p: &ResourceProfile) -> Self {
        Need {
            cpus: p.cpu_millis as f64 / 1000.0,
            mem_mb: p.total_memory_bytes().div_ceil(MIB) as f64,
            gpus: p.extended.get("gpu").copied().unwrap_or(0) as f64,
        }
    }

    fn fits(&self, room: &Need) -> bool {
        self.cpus <= room.cpus + 1e-9 && self.mem_mb <= room.mem_mb + 1e-9 && self.gpus <= room.gpus + 1e-9
    }

    fn minus(&self, other: &Need) -> Need {
        Need { cpus: self.cpus - other.cpus, mem_mb: self.mem_mb - other.mem_mb, gpus: self.gpus - other.gpus }
    }

    /// The offer's scalar resources for `role` (or unreserved).
    pub fn offered(resources: &[Resource], role: &str) -> Need {
        let mut n = Need::default();
        for r in resources {
            let whose = r.allocation_info.as_ref().and_then(|a| a.role.as_deref()).or(r.role.as_deref()).unwrap_or("*");
            if whose != role && whose != "*" {
                continue;
            }
            let v = r.scalar.as_ref().map_or(0.0, |s| s.value);
            match r.name.as_str() {
                "cpus" => n.cpus += v,
                "mem" => n.mem_mb += v,
                "gpus" => n.gpus += v,
                _ => {}
            }
        }
        n
    }

    /// The TaskInfo resources for this need, allocated to `role`.
    pub fn resources(&self, role: &str) -> Vec<Resource> {
        let mut r = vec![Resource::scalar("cpus", self.cpus, role), Resource::scalar("mem", self.mem_mb, role)];
        if self.gpus > 0.0 {
            r.push(Resource::scalar("gpus", self.gpus, role));
        }
        r
    }
}

impl std::fmt::Display for Need {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cpus {}, mem {} MB", self.cpus, self.mem_mb)?;
        if self.gpus > 0.0 {
            write!(f, ", gpus {}", self.gpus)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// ACCEPT `offer` with a LAUNCH of these tasks (resource id = task id).
    Launch {
        offer: Id,
        agent: Id,
        tasks: Vec<(ResourceId, WorkerSpec, Need)>,
    },
    Decline(Vec<Id>),
    Suppress,
    Revive,
    Acknowledge {
        agent: Id,
        task: Id,
        uuid: String,
    },
    Kill {
        task: Id,
        agent: Option<Id>,
    },
    /// For the ResourceManager.
    Event(DriverEvent),
}

struct Task {
    spec: WorkerSpec,
    agent: Id,
}

pub struct OfferBook {
    role: String,
    /// Task ids are `<prefix><n>`.
    prefix: String,
    next: u64,
    pending: VecDeque<WorkerSpec>,
    tasks: BTreeMap<ResourceId, Task>,
    suppressed: bool,
}

impl OfferBook {
    pub fn new(role: &str, prefix: &str) -> Self {
        Self {
            role: role.into(),
            prefix: prefix.into(),
            next: 1,
            pending: VecDeque::new(),
            tasks: BTreeMap::new(),
            suppressed: false,
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The tasks we believe run, with their agents (for RECONCILE after a resubscribe).
    pub fn known_tasks(&self) -> Vec<(Id, Id)> {
        self.tasks.iter().map(|(r, t)| (Id::new(r.as_str()), t.agent.clone())).collect()
    }

    pub fn request(&mut self, spec: &WorkerSpec) -> Vec<Decision> {
        self.pending.push_back(spec.clone());
        if self.suppressed {
            self.suppressed = false;
            return vec![Decision::Revive];
        }
        Vec::new()
    }

    pub fn cancel(&mut self, spec: &WorkerSpec) -> Vec<Decision> {
        if let Some(i) = self.pending.iter().position(|s| s == spec) {
            self.pending.remove(i);
        }
        self.suppress_if_idle()
    }

    fn suppress_if_idle(&mut self) -> Vec<Decision> {
        if self.pending.is_empty() && !self.suppressed {
            self.suppressed = true;
            return vec![Decision::Suppress];
        }
        Vec::new()
    }

    /// After a (re)subscription the master knows nothing of our suppression.
    pub fn subscribed(&mut self) -> Vec<Decision> {
        self.suppressed = false;
        self.suppress_if_idle()
    }

    pub fn offers(&mut self, offers: &[Offer]) -> Vec<Decision> {
        let mut out = Vec::new();
        let mut declined = Vec::new();
        let mut largest_whole: Option<Need> = None;
        for offer in offers {
            let mut room = Need::offered(&offer.resources, &self.role);
            let whole = !self.tasks.values().any(|t| t.agent == offer.agent_id);
            if whole && largest_whole.is_none_or(|l| room.cpus * room.mem_mb > l.cpus * l.mem_mb) {
                largest_whole = Some(room);
            }
            let mut launch = Vec::new();
            let mut i = 0;
            while i < self.pending.len() {
                let need = Need::of(&self.pending[i]);
                if need.fits(&room) {
                    let Some(spec) = self.pending.remove(i) else { break };
                    room = room.minus(&need);
                    let id = ResourceId::new(format!("{}{}", self.prefix, self.next));
                    self.next += 1;
                    self.tasks.insert(id.clone(), Task { spec: spec.clone(), agent: offer.agent_id.clone() });
                    out.push(Decision::Event(DriverEvent::WorkerStarted {
                        resource_id: id.clone(),
                        spec: spec.clone(),
                    }));
                    launch.push((id, spec, need));
                } else {
                    i += 1;
                }
            }
            if launch.is_empty() {
                declined.push(offer.id.clone());
            } else {
                out.push(Decision::Launch { offer: offer.id.clone(), agent: offer.agent_id.clone(), tasks: launch });
            }
        }
        // What no whole agent can hold will never be offered: refuse it now.
        if let Some(largest) = largest_whole {
            let mut kept = VecDeque::new();
            for spec in self.pending.drain(..) {
                let need = Need::of(&spec);
                let fits_somewhere = offers.iter().any(|o| need.fits(&Need::offered(&o.resources, &self.role)));
                if !fits_somewhere && !need.fits(&largest) && self.tasks.is_empty() {
                    let reason = format!(
                        "the TaskManager asks {need} (for role {}); the largest Mesos agent offers {largest}: lower the \
                         vertex's resources, or add agents with that much room",
                        self.role
                    );
                    out.push(Decision::Event(DriverEvent::WorkerRequestFailed { spec, reason }));
                } else {
                    kept.push_back(spec);
                }
            }
            self.pending = kept;
        }
        if !declined.is_empty() {
            out.push(Decision::Decline(declined));
        }
        out.extend(self.suppress_if_idle());
        out
    }

    pub fn update(&mut self, status: &TaskStatus) -> Vec<Decision> {
        let mut out = Vec::new();
        if let (Some(uuid), Some(agent)) = (&status.uuid, &status.agent_id) {
            out.push(Decision::Acknowledge { agent: agent.clone(), task: status.task_id.clone(), uuid: uuid.clone() });
        }
        let terminal = matches!(
            status.state.as_str(),
            "TASK_FINISHED"
                | "TASK_FAILED"
                | "TASK_KILLED"
                | "TASK_LOST"
                | "TASK_ERROR"
                | "TASK_DROPPED"
                | "TASK_GONE"
                | "TASK_GONE_BY_OPERATOR"
                | "TASK_UNKNOWN"
        );
        let id = ResourceId::new(status.task_id.value.clone());
        if terminal && self.tasks.remove(&id).is_some() {
            let mut diagnostics = format!("Mesos task {} is {}", status.task_id.value, status.state);
            if let Some(m) = status.message.as_deref().filter(|m| !m.is_empty()) {
                diagnostics.push_str(&format!(": {m}"));
            }
            if let Some(r) = &status.reason {
                diagnostics.push_str(&format!(" ({r})"));
            }
            out.push(Decision::Event(DriverEvent::WorkerTerminated { resource_id: id, diagnostics }));
        }
        out
    }

    pub fn release(&mut self, resource_id: &ResourceId) -> Vec<Decision> {
        match self.tasks.get(resource_id) {
            Some(t) => vec![Decision::Kill { task: Id::new(resource_id.as_str()), agent: Some(t.agent.clone()) }],
            None => Vec::new(),
        }
    }

    /// The spec a running task was launched for.
    pub fn spec_of(&self, resource_id: &ResourceId) -> Option<&WorkerSpec> {
        self.tasks.get(resource_id).map(|t| &t.spec)
    }
}

#[cfg(test)]
mod tests;
