//! The Kubernetes driver's bookkeeping, pure and deterministic: which pods
//! this driver asked for, what each is doing, and what to do about it. The
//! driver's task feeds it API answers and watch events; it answers with
//! [`Decision`]s. Tested as transcripts (`book/tests.rs`).
//!
//! Invariants:
//! - every pod it names gets at most one `WorkerStarted` and one
//!   `WorkerTerminated`, whatever the watch replays or drops;
//! - a pod absent from a relist that began after the pod was created is gone
//!   (its DELETED event was lost with the watch);
//! - a pod of an earlier JobManager attempt is deleted once, never reported;
//! - a pod pending or stuck longer than `pending_timeout` is deleted and
//!   reported with the scheduler's or kubelet's message, so an ask no node can
//!   fit fails instead of waiting forever.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::ids::ResourceId;

use super::pod::{pod_name, Observed};
use crate::resource_manager::driver::DriverEvent;
use crate::resource_manager::worker::WorkerSpec;

#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Create { name: String, spec: WorkerSpec },
    Delete { name: String },
    Emit(DriverEvent),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// The POST is in flight.
    Creating { cancelled: bool },
    /// Created; `waiting` is why it has not started, since when.
    Waiting { waiting: Option<(String, Instant)> },
    /// Reported terminated; kept until its DELETED event so a replay
    /// reports nothing twice.
    Gone,
}

#[derive(Clone, Debug)]
struct Tracked {
    spec: WorkerSpec,
    state: State,
    /// Which relist generation was under way when it was created.
    created_in: u64,
    /// What the watch said while the POST was in flight (it can beat the
    /// 201), replayed once the worker is reported started.
    early: Option<Early>,
}

#[derive(Clone, Debug)]
enum Early {
    Seen(Instant, Observed),
    Deleted,
}

#[derive(Debug)]
pub struct PodBook {
    cluster_id: String,
    attempt: u32,
    next_n: u64,
    pending_timeout: Duration,
    pods: BTreeMap<String, Tracked>,
    /// Bumped at every relist start (the watcher's `Init`).
    generation: u64,
    /// Pods seen in the relist under way.
    listed: Vec<String>,
    /// An earlier attempt's pods this book has asked to delete.
    stale: std::collections::BTreeSet<String>,
}

impl PodBook {
    pub fn new(cluster_id: &str, attempt: u32, pending_timeout: Duration) -> Self {
        PodBook {
            cluster_id: cluster_id.to_owned(),
            attempt,
            next_n: 1,
            pending_timeout,
            pods: BTreeMap::new(),
            generation: 0,
            listed: Vec::new(),
            stale: std::collections::BTreeSet::new(),
        }
    }

    /// Pods this driver still has to see gone.
    pub fn live(&self) -> usize {
        self.pods.len()
    }

    pub fn spec_of(&self, name: &str) -> Option<&WorkerSpec> {
        self.pods.get(name).map(|t| &t.spec)
    }

    pub fn request(&mut self, spec: &WorkerSpec) -> Decision {
        let name = pod_name(&self.cluster_id, self.attempt, self.next_n);
        self.next_n += 1;
        self.pods.insert(
            name.clone(),
            Tracked {
                spec: spec.clone(),
                state: State::Creating { cancelled: false },
                created_in: self.generation,
                early: None,
            },
        );
        Decision::Create { name, spec: spec.clone() }
    }

    /// The apiserver answered 201.
    pub fn created(&mut self, name: &str) -> Vec<Decision> {
        let Some(t) = self.pods.get_mut(name) else { return Vec::new() };
        match t.state {
            State::Creating { cancelled: true } => {
                t.state = State::Gone;
                vec![Decision::Delete { name: name.to_owned() }]
            }
            State::Creating { cancelled: false } => {
                t.state = State::Waiting { waiting: None };
                t.created_in = self.generation;
                let early = t.early.take();
                let mut out = vec![Decision::Emit(DriverEvent::WorkerStarted {
                    resource_id: ResourceId::new(name),
                    spec: t.spec.clone(),
                })];
                match early {
                    Some(Early::Seen(at, what)) => out.extend(self.observed(at, name, what)),
                    Some(Early::Deleted) => out.extend(self.deleted(name)),
                    None => {}
                }
                out
            }
            // The watch saw it first.
            _ => Vec::new(),
        }
    }

    /// The apiserver refused the pod. A name taken (409 AlreadyExists: a pod
    /// of an earlier attempt) is retried under the next name; anything else
    /// fails the request with the apiserver's reason.
    pub fn create_failed(&mut self, name: &str, already_exists: bool, reason: String) -> Vec<Decision> {
        let Some(t) = self.pods.remove(name) else { return Vec::new() };
        if let State::Creating { cancelled: true } = t.state {
            return Vec::new();
        }
        if already_exists {
            return vec![self.request(&t.spec)];
        }
        vec![Decision::Emit(DriverEvent::WorkerRequestFailed { spec: t.spec, reason })]
    }

    /// Withdraws a request whose POST is still in flight. A created pod is
    /// left alone: the ResourceManager already counts it as starting.
    pub fn cancel(&mut self, spec: &WorkerSpec) {
        if let Some(t) =
            self.pods.values_mut().rev().find(|t| t.spec == *spec && t.state == State::Creating { cancelled: false })
        {
            t.state = State::Creating { cancelled: true };
        }
    }

    /// The ResourceManager lets the worker go: delete its pod. Its
    /// `WorkerTerminated` comes when the pod is seen ending, as for any pod.
    pub fn release(&mut self, id: &ResourceId) -> Vec<Decision> {
        match self.pods.get(id.as_str()) {
            Some(t) if !matches!(t.state, State::Creating { .. }) => {
                vec![Decision::Delete { name: id.as_str().to_owned() }]
            }
            _ => Vec::new(),
        }
    }

    /// Deletes every pod; the driver waits for [`PodBook::live`] to reach 0.
    pub fn terminate(&mut self) -> Vec<Decision> {
        let mut out = Vec::new();
        for (name, t) in &mut self.pods {
            if let State::Creating { .. } = t.state {
                t.state = State::Creating { cancelled: true };
            } else {
                out.push(Decision::Delete { name: name.clone() });
            }
        }
        out
    }

    /// A watch event (ADDED or MODIFIED) or a listed pod.
    pub fn observed(&mut self, now: Instant, name: &str, what: Observed) -> Vec<Decision> {
        let Some(t) = self.pods.get_mut(name) else {
            return self.predecessors(name);
        };
        if t.state == State::Gone {
            return Vec::new();
        }
        if t.state == (State::Creating { cancelled: false }) {
            // Keep the first sighting's time: the timeout runs from then.
            let at = match &t.early {
                Some(Early::Seen(at, _)) => *at,
                _ => now,
            };
            t.early = Some(Early::Seen(at, what));
            return Vec::new();
        }
        match what {
            Observed::Ended(why) => Self::gone(name, t, why, true),
            Observed::Deleting => Self::gone(name, t, format!("pod {name} was deleted (it is terminating)"), false),
            Observed::Pending { waiting } | Observed::Bound { waiting } => {
                if let State::Creating { .. } = t.state {
                    // The watch is ahead of the POST's answer: `created` decides.
                    return Vec::new();
                }
                if let State::Waiting { waiting: ref mut w } = t.state {
                    *w = match (w.take(), waiting) {
                        (Some((_, since)), Some(new)) => Some((new, since)),
                        (None, Some(new)) => Some((new, now)),
                        (_, None) => None,
                    };
                }
                Vec::new()
            }
        }
    }

    fn gone(name: &str, t: &mut Tracked, diagnostics: String, delete: bool) -> Vec<Decision> {
        let mut out = Vec::new();
        if let State::Creating { cancelled: true } = t.state {
            t.state = State::Gone;
            return out;
        }
        t.state = State::Gone;
        out.push(Decision::Emit(DriverEvent::WorkerTerminated { resource_id: ResourceId::new(name), diagnostics }));
        if delete {
            // restartPolicy Never: an ended pod stays until deleted.
            out.push(Decision::Delete { name: name.to_owned() });
        }
        out
    }

    /// A DELETED event: the pod object is gone.
    /// A pod of this cluster from an earlier JobManager attempt (the
    /// Deployment restarted its pod): it can never register with this one,
    /// so it is deleted, once, rather than left to exit at its registration
    /// timeout and linger until the Deployment goes.
    fn predecessors(&mut self, name: &str) -> Vec<Decision> {
        let own_prefix = format!("yf-{}-taskmanager-{}-", self.cluster_id, self.attempt);
        let cluster_prefix = format!("yf-{}-taskmanager-", self.cluster_id);
        if name.starts_with(&cluster_prefix) && !name.starts_with(&own_prefix) && self.stale.insert(name.to_owned()) {
            return vec![Decision::Delete { name: name.to_owned() }];
        }
        Vec::new()
    }

    pub fn deleted(&mut self, name: &str) -> Vec<Decision> {
        self.stale.remove(name);
        if let Some(t) = self.pods.get_mut(name) {
            if t.state == (State::Creating { cancelled: false }) {
                t.early = Some(Early::Deleted);
                return Vec::new();
            }
        }
        let Some(mut t) = self.pods.remove(name) else { return Vec::new() };
        if t.state == State::Gone {
            return Vec::new();
        }
        Self::gone(name, &mut t, format!("pod {name} was deleted"), false)
    }

    /// The watcher starts a relist (its `Init`).
    pub fn relist_started(&mut self) {
        self.generation += 1;
        self.listed.clear();
    }

    /// A pod of the relist under way (`InitApply`).
    pub fn listed(&mut self, now: Instant, name: &str, what: Observed) -> Vec<Decision> {
        self.listed.push(name.to_owned());
        self.observed(now, name, what)
    }

    /// The relist is complete (`InitDone`): a pod created before it began
    /// and not listed is gone.
    pub fn relist_done(&mut self) -> Vec<Decision> {
        let listed = std::mem::take(&mut self.listed);
        let missing: Vec<String> = self
            .pods
            .iter()
            .filter(|(name, t)| {
                !matches!(t.state, State::Creating { .. })
                    && t.created_in < self.generation
                    && !listed.iter().any(|l| l == *name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        missing.iter().flat_map(|name| self.deleted(name)).collect()
    }

    /// Pods waiting longer than the timeout are given up on.
    pub fn tick(&mut self, now: Instant) -> Vec<Decision> {
        let timeout = self.pending_timeout;
        let mut out = Vec::new();
        for (name, t) in &mut self.pods {
            let State::Waiting { waiting: Some((why, since)) } = &t.state else { continue };
            if now.saturating_duration_since(*since) >= timeout {
                let secs = timeout.as_secs_f64();
                // Worded as the other backends' "larger than the cluster" refusals: the ask, the limit, the fix.
                let diagnostics = if why.starts_with("Unschedulable") {
                    format!(
                        "a TaskManager pod of {} (pod {name}) fits on no node: not scheduled within {secs:.0} s: \
                         {why}; lower the vertex's resources, or add nodes with that much room (if the \
                         cluster is only busy, raise --pending-timeout)",
                        t.spec.total
                    )
                } else {
                    format!("pod {name} did not start within {secs:.0} s: {why}")
                };
                out.extend(Self::gone(name, t, diagnostics, true));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
