//! The job stores on the HA storage dir, one directory per cluster:
//!
//! ```text
//! <storage-dir>/<cluster id>/
//!   jobgraphs/<job id>.json         a submitted job: where its bundle is (JobGraphRecord)
//!   blobs/<sha256>.tar.gz           bundles uploaded to the session
//!   commits/<job id>.json           the sinks' parts, written before their commit starts
//!   job-result-store/<job id>.json  an ended job's final details (Flink's JobResultStore)
//! ```
//!
//! ZooKeeper holds `<root>/<cluster id>/jobgraphs/<job id>`, whose data is the
//! record's path: a job is submitted once that node exists, and only the leader
//! can write it (the write is fenced by its latch). Files are written aside and
//! renamed, so a reader never sees half of one.

use std::path::PathBuf;
use std::sync::Arc;

use common::ha::{HaError, Leadership};
use common::ids::JobId;
use serde::{Deserialize, Serialize};

use crate::dispatcher::JobDetails;
use common::ha::storage::{self, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    #[error("the HA storage dir: {0}; check that it is writable by every JobManager")]
    Storage(#[from] StorageError),
    #[error("the HA storage dir: {path} is not a job record: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error(transparent)]
    ZooKeeper(#[from] HaError),
    #[error("a recovered job cannot run again: {0}")]
    Resume(String),
}

/// Where a job's bundle comes from when it must run again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleSource {
    /// A path every JobManager can read (`{"bundle": "<path>"}`, `run -m` without `--upload`).
    Path(PathBuf),
    /// An uploaded `.tar.gz`, kept as `blobs/<sha256>.tar.gz`.
    Blob { sha256: String },
}

/// A submitted job, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobGraphRecord {
    pub job_id: JobId,
    pub name: String,
    pub source: BundleSource,
    /// Milliseconds since the epoch.
    pub submitted: u64,
}

/// The sinks of one job and the attempts whose parts make their output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub sinks: Vec<(PathBuf, Vec<(u32, u32)>)>,
}

/// Writes a job's commit record before the commit starts, so a new leader
/// finishes a commit the old one began instead of running the job again.
#[derive(Clone, Debug)]
pub struct CommitLog {
    dir: String,
}

impl CommitLog {
    /// Blocks (call it where the commit runs, off the async workers).
    pub fn record(&self, job_id: JobId, sinks: &[(PathBuf, Vec<(u32, u32)>)]) -> Result<(), JobStoreError> {
        let record = CommitRecord { sinks: sinks.to_vec() };
        Ok(storage::write_blocking(&storage::join(&self.dir, &format!("{job_id}.json")), to_json(&record))?)
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap_or_default()
}

async fn read_json<T: for<'de> Deserialize<'de>>(location: &str) -> Result<Option<T>, JobStoreError> {
    match storage::read(location).await? {
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| JobStoreError::Malformed { path: PathBuf::from(location), detail: e.to_string() }),
        None => Ok(None),
    }
}

/// The stores of one cluster, written by its current leader.
#[derive(Clone)]
pub struct JobStore {
    /// `<storage dir>/<cluster id>`: a local path or an `hdfs://` URL.
    dir: String,
    /// Pointers in ZooKeeper, written under the leader's latch. `None` on YARN
    /// without ZooKeeper, where the RM's attempt order fences: a new attempt
    /// starts only once the previous AM container has exited.
    leadership: Option<Arc<Leadership>>,
}

impl JobStore {
    /// `storage_dir` is `high-availability.storage-dir` (a path, or `hdfs://…`);
    /// the cluster's files go under `<storage_dir>/<cluster id>`.
    pub fn new(storage_dir: &str, leadership: Arc<Leadership>) -> Self {
        let dir = storage::join(storage_dir, &leadership.zookeeper().locator().cluster_id);
        Self { dir, leadership: Some(leadership) }
    }

    /// A store in `dir` itself, without ZooKeeper pointers (a YARN application's
    /// own job across its attempts: its result and commit record).
    pub fn unfenced(dir: &str) -> Self {
        Self { dir: dir.trim_end_matches('/').to_owned(), leadership: None }
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn record_path(&self, job_id: JobId) -> String {
        storage::join(&self.dir, &format!("jobgraphs/{job_id}.json"))
    }
    fn result_path(&self, job_id: JobId) -> String {
        storage::join(&self.dir, &format!("job-result-store/{job_id}.json"))
    }
    fn commit_path(&self, job_id: JobId) -> String {
        storage::join(&self.dir, &format!("commits/{job_id}.json"))
    }
    fn blob_path(&self, sha256: &str) -> String {
        storage::join(&self.dir, &format!("blobs/{sha256}.tar.gz"))
    }
    fn pointer(&self, job_id: JobId) -> Option<(&Leadership, String)> {
        let l = self.leadership.as_deref()?;
        Some((l, format!("{}/{job_id}", l.zookeeper().locator().job_graphs_path())))
    }

    pub fn commit_log(&self) -> CommitLog {
        CommitLog { dir: storage::join(&self.dir, "commits") }
    }

    /// Keeps a submitted job: its uploaded bundle (if any) and record, then the
    /// pointer in ZooKeeper. Only then is the job accepted.
    pub async fn put_job_graph(&self, record: &JobGraphRecord, upload: Option<PathBuf>) -> Result<(), JobStoreError> {
        if let (BundleSource::Blob { sha256 }, Some(local)) = (&record.source, upload) {
            storage::put_file(&local, &self.blob_path(sha256)).await?;
        }
        let path = self.record_path(record.job_id);
        storage::write(&path, to_json(record)).await?;
        if let Some((l, node)) = self.pointer(record.job_id) {
            l.put(&node, path.as_bytes()).await?;
        }
        Ok(())
    }

    /// Copies an uploaded bundle kept by [`JobStore::put_job_graph`] to `local`.
    pub async fn fetch_blob(&self, sha256: &str, local: &std::path::Path) -> Result<(), JobStoreError> {
        Ok(storage::get_file(&self.blob_path(sha256), local).await?)
    }

    /// Every submitted job (whose pointer is in ZooKeeper, or, without
    /// ZooKeeper, whose record is in `jobgraphs/`), oldest first.
    pub async fn job_graphs(&self) -> Result<Vec<JobGraphRecord>, JobStoreError> {
        let Some(l) = &self.leadership else {
            let mut records = Vec::new();
            for location in storage::list(&storage::join(&self.dir, "jobgraphs")).await? {
                if !location.ends_with(".json") {
                    continue;
                }
                if let Some(r) = read_json::<JobGraphRecord>(&location).await? {
                    records.push(r);
                }
            }
            records.sort_by_key(|r| r.submitted);
            return Ok(records);
        };
        let zk = l.zookeeper();
        let mut records = Vec::new();
        for child in zk.children(&zk.locator().job_graphs_path()).await? {
            let node = format!("{}/{child}", zk.locator().job_graphs_path());
            let Some(data) = zk.data(&node).await? else { continue };
            let location = String::from_utf8_lossy(&data).into_owned();
            match read_json::<JobGraphRecord>(&location).await? {
                Some(r) => records.push(r),
                None => {
                    tracing::warn!(%node, %location, "a job pointer without its record; the job cannot be recovered")
                }
            }
        }
        records.sort_by_key(|r| r.submitted);
        Ok(records)
    }

    /// The final details of an ended job, when the store has them.
    pub async fn result(&self, job_id: JobId) -> Result<Option<JobDetails>, JobStoreError> {
        read_json(&self.result_path(job_id)).await
    }

    /// The commit a leader began for the job, if any.
    pub async fn commit(&self, job_id: JobId) -> Result<Option<CommitRecord>, JobStoreError> {
        read_json(&self.commit_path(job_id)).await
    }

    /// The job ended: its result is kept first (so it is never run again),
    /// then its pointer, record and commit record go.
    pub async fn job_ended(&self, details: &JobDetails, job_id: JobId) -> Result<(), JobStoreError> {
        storage::write(&self.result_path(job_id), to_json(details)).await?;
        if let Some((l, node)) = self.pointer(job_id) {
            l.remove(&node).await?;
        }
        storage::remove(&self.record_path(job_id)).await?;
        Ok(storage::remove(&self.commit_path(job_id)).await?)
    }

    /// The cluster was stopped for good: its pointers and files go (the
    /// `stopped` node stays, so standbys exit).
    pub async fn remove_all(&self) -> Result<(), JobStoreError> {
        for job in self.job_graphs().await? {
            if let Some((l, node)) = self.pointer(job.job_id) {
                l.remove(&node).await?;
            }
        }
        Ok(storage::remove(&self.dir).await?)
    }
}
