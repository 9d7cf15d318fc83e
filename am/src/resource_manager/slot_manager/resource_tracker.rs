//! Per job: what it declared (FLIP-138, absolute) and what it holds, and from
//! the two what is still missing. State only; no decisions.

use std::collections::{BTreeMap, BTreeSet};

use common::ids::JobId;
use common::protocol::ResourceRequirement;
use common::resources::{RequestedProfile, ResourceProfile};

/// `count` more slots of `requested` for `job_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Missing {
    pub job_id: JobId,
    pub requested: RequestedProfile,
    pub count: u32,
    /// Already reported unfulfillable: served by existing resources only.
    pub given_up: bool,
}

#[derive(Clone, Debug, Default)]
struct JobResources {
    declared: BTreeMap<RequestedProfile, u32>,
    /// Slots the job holds (pending or confirmed), by their actual profile.
    acquired: BTreeMap<ResourceProfile, u32>,
    /// Requirements already reported unfulfillable: no new workers are started
    /// for them until the job stops declaring them (or is cleared).
    given_up: BTreeSet<RequestedProfile>,
}

impl JobResources {
    fn is_empty(&self) -> bool {
        self.declared.is_empty() && self.acquired.is_empty()
    }

    /// Declared minus acquired. A slot matches an `Exact` requirement of its
    /// own profile first; whatever is left over serves `Unknown` ("any slot").
    fn missing(&self) -> Vec<(RequestedProfile, u32)> {
        let mut left = self.acquired.clone();
        let mut out = Vec::new();
        let mut unknown = 0;
        for (req, &declared) in &self.declared {
            match req {
                RequestedProfile::Unknown => unknown = declared,
                RequestedProfile::Exact(p) => {
                    let have = left.get_mut(p).map(|n| {
                        let used = (*n).min(declared);
                        *n -= used;
                        used
                    });
                    let missing = declared - have.unwrap_or(0);
                    if missing > 0 {
                        out.push((req.clone(), missing));
                    }
                }
            }
        }
        let spare: u64 = left.values().map(|&n| u64::from(n)).sum();
        if u64::from(unknown) > spare {
            out.push((RequestedProfile::Unknown, unknown - spare as u32));
        }
        out
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ResourceTracker {
    jobs: BTreeMap<JobId, JobResources>,
}

impl ResourceTracker {
    /// Replaces the job's declaration. Counts of one profile are summed, zero
    /// counts dropped, and an all-zero `Exact` profile means "any slot".
    pub fn declare(&mut self, job_id: JobId, reqs: &[ResourceRequirement]) {
        let mut declared = BTreeMap::new();
        for r in reqs {
            let profile = match &r.profile {
                RequestedProfile::Exact(p) if p.is_zero() => RequestedProfile::Unknown,
                p => p.clone(),
            };
            if r.count > 0 {
                let n: &mut u32 = declared.entry(profile).or_default();
                *n = n.saturating_add(r.count);
            }
        }
        let job = self.jobs.entry(job_id).or_default();
        job.given_up.retain(|p| declared.contains_key(p));
        job.declared = declared;
        if job.is_empty() {
            self.jobs.remove(&job_id);
        }
    }

    /// Forgets the job's declaration; its slots are removed by the caller.
    pub fn clear(&mut self, job_id: JobId) {
        self.jobs.remove(&job_id);
    }

    pub fn add_slots(&mut self, job_id: JobId, profile: &ResourceProfile, n: u32) {
        let job = self.jobs.entry(job_id).or_default();
        *job.acquired.entry(profile.clone()).or_default() += n;
    }

    pub fn remove_slot(&mut self, job_id: JobId, profile: &ResourceProfile) {
        let Some(job) = self.jobs.get_mut(&job_id) else { return };
        if let Some(n) = job.acquired.get_mut(profile) {
            *n -= 1;
            if *n == 0 {
                job.acquired.remove(profile);
            }
        }
        if job.is_empty() {
            self.jobs.remove(&job_id);
        }
    }

    pub fn give_up(&mut self, job_id: JobId, requested: RequestedProfile) {
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.given_up.insert(requested);
        }
    }

    /// Everything missing, by job id then profile.
    pub fn missing(&self) -> Vec<Missing> {
        let mut out = Vec::new();
        for (&job_id, job) in &self.jobs {
            for (requested, count) in job.missing() {
                let given_up = job.given_up.contains(&requested);
                out.push(Missing { job_id, requested, count, given_up });
            }
        }
        out
    }

    pub fn job_ids(&self) -> impl Iterator<Item = JobId> + '_ {
        self.jobs.keys().copied()
    }

    pub fn declared(&self, job_id: JobId) -> Vec<ResourceRequirement> {
        self.jobs.get(&job_id).map_or_else(Vec::new, |j| {
            j.declared.iter().map(|(p, &count)| ResourceRequirement { profile: p.clone(), count }).collect()
        })
    }

    pub fn acquired(&self, job_id: JobId) -> Vec<(ResourceProfile, u32)> {
        self.jobs.get(&job_id).map_or_else(Vec::new, |j| j.acquired.iter().map(|(p, &n)| (p.clone(), n)).collect())
    }

    pub fn missing_of(&self, job_id: JobId) -> Vec<ResourceRequirement> {
        self.jobs.get(&job_id).map_or_else(Vec::new, |j| {
            j.missing().into_iter().map(|(profile, count)| ResourceRequirement { profile, count }).collect()
        })
    }

    pub fn given_up_of(&self, job_id: JobId) -> Vec<RequestedProfile> {
        self.jobs.get(&job_id).map_or_else(Vec::new, |j| j.given_up.iter().cloned().collect())
    }
}
