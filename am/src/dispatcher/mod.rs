//! The Dispatcher: accepts jobs, starts one JobMaster per job, and keeps what
//! the REST API shows about running and finished jobs.
//!
//! In application mode it runs the bundle's one job and reports when it ends;
//! in session mode it stays and takes jobs over REST until stopped.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use common::ids::{JobId, JobMasterId};
use common::jobspec::Bundle;
use common::protocol::BundleBlob;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::high_availability::{BundleSource, JobGraphRecord, JobStore};
use crate::job_master::{self, JobMasterConfig, JobMasterRegistry};
use crate::resource_manager::ResourceManagerHandle;

/// What the REST API and the CLI show about one job (Flink's job details, trimmed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct JobDetails {
    pub jid: String,
    pub name: String,
    /// Flink's JobStatus names: CREATED, RUNNING, RESTARTING, FAILING, FINISHED, FAILED, CANCELLING, CANCELED.
    pub state: String,
    #[serde(rename = "start-time")]
    pub start_time: u64,
    #[serde(rename = "end-time")]
    pub end_time: i64,
    pub duration: u64,
    pub restarts: u32,
    pub vertices: Vec<VertexDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each restart: when (ms since the epoch) and the failure that caused it.
    #[serde(rename = "restart-history", default)]
    pub restart_history: Vec<RestartEvent>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct RestartEvent {
    pub time: u64,
    pub cause: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct VertexDetails {
    pub name: String,
    pub parallelism: u32,
    /// Subtasks by execution state (CREATED, DEPLOYING, RUNNING, FINISHED, ...).
    pub tasks: BTreeMap<String, u32>,
    /// Each subtask's current attempt (Flink's `/jobs/:jid/vertices/:vid` subtasks).
    #[serde(default)]
    pub subtasks: Vec<SubtaskDetails>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SubtaskDetails {
    pub subtask: u32,
    pub attempt: u32,
    pub status: String,
    #[serde(rename = "taskmanager-id", default, skip_serializing_if = "Option::is_none")]
    pub taskmanager_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// What it has moved, as its TaskManager last reported (Flink's subtask metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<SubtaskMetrics>,
}

/// Flink's names: `read-records`, `write-bytes`, ...
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct SubtaskMetrics {
    pub read_records: u64,
    pub read_bytes: u64,
    pub write_records: u64,
    pub write_bytes: u64,
    /// Back-pressured time since the attempt started.
    pub backpressured_ms: u64,
    /// Back-pressured milliseconds per second, between the last two reports.
    pub backpressured_ms_per_second: u64,
}

impl JobDetails {
    pub fn is_terminal(&self) -> bool {
        matches!(self.state.as_str(), "FINISHED" | "FAILED" | "CANCELED")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    #[error("job {0} is unknown to this cluster; `yarn-flink list` shows the jobs it knows")]
    UnknownJob(JobId),
    #[error("the cluster is shutting down and takes no more jobs")]
    ShuttingDown,
    #[error("the job could not be kept for high availability, so it was not accepted: {0}")]
    Store(String),
}

struct JobEntry {
    details: watch::Receiver<JobDetails>,
    cancel: tokio_util::sync::CancellationToken,
}

/// Ended jobs a session remembers for REST and `list` (as Flink's
/// `jobstore.max-capacity` bounds its store): the oldest go first.
pub const MAX_FINISHED_JOBS: usize = 1000;

/// The ended jobs beyond the newest `keep` (by end time), to forget. `jobs`:
/// (id, ended, end time).
fn finished_to_forget(jobs: &[(JobId, bool, i64)], keep: usize) -> Vec<JobId> {
    let mut ended: Vec<(i64, JobId)> =
        jobs.iter().filter(|(_, ended, _)| *ended).map(|(id, _, end)| (*end, *id)).collect();
    ended.sort();
    let excess = ended.len().saturating_sub(keep);
    ended.into_iter().take(excess).map(|(_, id)| id).collect()
}

/// Cheap to clone; all clones see the same jobs.
#[derive(Clone)]
pub struct Dispatcher {
    jobs: Arc<Mutex<BTreeMap<JobId, JobEntry>>>,
    rm: ResourceManagerHandle,
    registry: JobMasterRegistry,
    config: JobMasterConfig,
    closed: Arc<std::sync::atomic::AtomicBool>,
    /// With HA: submitted jobs and results are kept here for the next leader.
    store: Option<JobStore>,
}

impl Dispatcher {
    pub fn new(rm: ResourceManagerHandle, registry: JobMasterRegistry, config: JobMasterConfig) -> Self {
        Self { jobs: Arc::default(), rm, registry, config, closed: Arc::default(), store: None }
    }

    /// Keeps every job in `store`, and records commits there (HA).
    pub fn with_store(mut self, store: JobStore) -> Self {
        self.config.commit_log = Some(store.commit_log());
        self.store = Some(store);
        self
    }

    pub fn store(&self) -> Option<&JobStore> {
        self.store.as_ref()
    }

    /// Like [`Dispatcher::submit_uploaded`]; with HA, the job is kept in the
    /// store before it is accepted (`upload` is the uploaded `.tar.gz`).
    pub async fn submit_durable(
        &self,
        bundle: Bundle,
        blob: Option<BundleBlob>,
        source: BundleSource,
        upload: Option<std::path::PathBuf>,
    ) -> Result<JobId, DispatcherError> {
        let Some(store) = &self.store else { return self.submit_uploaded(bundle, blob) };
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DispatcherError::ShuttingDown);
        }
        let job_id = JobId::random();
        let submitted = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let record = JobGraphRecord { job_id, name: bundle.spec.name.clone(), source, submitted };
        store.put_job_graph(&record, upload).await.map_err(|e| DispatcherError::Store(e.to_string()))?;
        self.start(job_id, bundle, blob)?;
        Ok(job_id)
    }

    /// Runs a job the previous leader accepted, under its id (HA recovery).
    pub fn resume(&self, job_id: JobId, bundle: Bundle, blob: Option<BundleBlob>) -> Result<(), DispatcherError> {
        self.start(job_id, bundle, blob)
    }

    /// Shows a job that ended under an earlier leader.
    pub fn insert_ended(&self, job_id: JobId, details: JobDetails) {
        if let Ok(mut jobs) = self.jobs.lock() {
            let (tx, rx) = watch::channel(details);
            drop(tx);
            jobs.insert(job_id, JobEntry { details: rx, cancel: tokio_util::sync::CancellationToken::new() });
        }
    }

    /// Starts a JobMaster for the bundle's job.
    pub fn submit(&self, bundle: Bundle) -> Result<JobId, DispatcherError> {
        self.submit_uploaded(bundle, None)
    }

    /// Like [`Dispatcher::submit`], for a bundle uploaded to the blob store:
    /// TaskExecutors fetch it from there.
    pub fn submit_uploaded(&self, bundle: Bundle, blob: Option<BundleBlob>) -> Result<JobId, DispatcherError> {
        let job_id = JobId::random();
        self.start(job_id, bundle, blob)?;
        Ok(job_id)
    }

    fn start(&self, job_id: JobId, bundle: Bundle, blob: Option<BundleBlob>) -> Result<(), DispatcherError> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(DispatcherError::ShuttingDown);
        }
        let cancel = tokio_util::sync::CancellationToken::new();
        let job = job_master::JobToRun { job_id, job_master_id: JobMasterId::random(), bundle, bundle_blob: blob };
        let details =
            job_master::spawn(job, self.config.clone(), self.rm.clone(), self.registry.clone(), cancel.clone());
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.insert(job_id, JobEntry { details, cancel });
            let ended: Vec<(JobId, bool, i64)> = jobs
                .iter()
                .map(|(id, e)| {
                    let d = e.details.borrow();
                    (*id, d.is_terminal(), d.end_time)
                })
                .collect();
            for id in finished_to_forget(&ended, MAX_FINISHED_JOBS) {
                jobs.remove(&id);
            }
        }
        if let Some(store) = self.store.clone() {
            // The result is kept before the job's pointer goes: it is never run twice.
            let this = self.clone();
            tokio::spawn(async move {
                // A JobMaster gone without an end (its leader stopped) leaves the job to the next.
                let Ok(last) =
                    this.wait(job_id).await.map_err(drop).and_then(|d| if d.is_terminal() { Ok(d) } else { Err(()) })
                else {
                    return;
                };
                if let Err(e) = store.job_ended(&last, job_id).await {
                    tracing::warn!(%job_id, error = %e, "cannot record the job's end in the HA store");
                }
            });
        }
        Ok(())
    }

    pub fn details(&self, job_id: JobId) -> Result<JobDetails, DispatcherError> {
        let jobs = self.jobs.lock().map_err(|_| DispatcherError::ShuttingDown)?;
        jobs.get(&job_id).map(|e| e.details.borrow().clone()).ok_or(DispatcherError::UnknownJob(job_id))
    }

    /// Resolves with the job's details once it is FINISHED, FAILED or CANCELED.
    pub async fn wait(&self, job_id: JobId) -> Result<JobDetails, DispatcherError> {
        let mut rx = {
            let jobs = self.jobs.lock().map_err(|_| DispatcherError::ShuttingDown)?;
            jobs.get(&job_id).map(|e| e.details.clone()).ok_or(DispatcherError::UnknownJob(job_id))?
        };
        loop {
            let d = rx.borrow_and_update().clone();
            if d.is_terminal() {
                return Ok(d);
            }
            if rx.changed().await.is_err() {
                return Ok(rx.borrow().clone());
            }
        }
    }

    /// A receiver that sees every change of the job's details.
    pub fn watch(&self, job_id: JobId) -> Result<watch::Receiver<JobDetails>, DispatcherError> {
        let jobs = self.jobs.lock().map_err(|_| DispatcherError::ShuttingDown)?;
        jobs.get(&job_id).map(|e| e.details.clone()).ok_or(DispatcherError::UnknownJob(job_id))
    }

    pub fn cancel(&self, job_id: JobId) -> Result<(), DispatcherError> {
        let jobs = self.jobs.lock().map_err(|_| DispatcherError::ShuttingDown)?;
        let e = jobs.get(&job_id).ok_or(DispatcherError::UnknownJob(job_id))?;
        e.cancel.cancel();
        Ok(())
    }

    pub fn list(&self) -> Vec<JobDetails> {
        match self.jobs.lock() {
            Ok(jobs) => jobs.values().map(|e| e.details.borrow().clone()).collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn resource_manager(&self) -> &ResourceManagerHandle {
        &self.rm
    }

    /// Takes no more jobs, cancels running ones and waits for them to end.
    pub async fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let ids: Vec<JobId> =
            self.list().iter().filter(|d| !d.is_terminal()).filter_map(|d| d.jid.parse().ok()).collect();
        for id in &ids {
            let _ = self.cancel(*id);
        }
        for id in ids {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.wait(id)).await;
        }
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;

    #[test]
    fn only_the_newest_ended_jobs_are_kept_and_running_ones_never_go() {
        let job = |n: u128, state: &str, end: i64| {
            let d = JobDetails { state: state.into(), end_time: end, ..JobDetails::default() };
            (JobId::from_u128(n), d.is_terminal(), d.end_time)
        };
        let jobs = vec![
            job(1, "FINISHED", 10),
            job(2, "RUNNING", -1),
            job(3, "FAILED", 30),
            job(4, "CANCELED", 20),
            job(5, "FINISHED", 40),
        ];
        assert_eq!(finished_to_forget(&jobs, 2), vec![JobId::from_u128(1), JobId::from_u128(4)]);
        assert!(finished_to_forget(&jobs, 4).is_empty());
        assert_eq!(finished_to_forget(&jobs, 0).len(), 4, "a running job is never forgotten");
    }
}
