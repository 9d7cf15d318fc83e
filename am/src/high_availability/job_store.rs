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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::ha::{HaError, Leadership};
use common::ids::JobId;
use serde::{Deserialize, Serialize};

use crate::dispatcher::JobDetails;

#[derive(Debug, thiserror::Error)]
pub enum JobStoreError {
    #[error(
        "the HA storage dir: {action} {path}: {source}; check that --ha-storage-dir is writable by every JobManager"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the HA storage dir: {path} is not a job record: {detail}")]
    Malformed { path: PathBuf, detail: String },
    #[error(transparent)]
    ZooKeeper(#[from] HaError),
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> JobStoreError + 'a {
    move |source| JobStoreError::Io { action, path: path.to_owned(), source }
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
    dir: PathBuf,
}

impl CommitLog {
    /// Blocks (call it where the commit runs, off the async workers).
    pub fn record(&self, job_id: JobId, sinks: &[(PathBuf, Vec<(u32, u32)>)]) -> Result<(), JobStoreError> {
        let record = CommitRecord { sinks: sinks.to_vec() };
        write_json(&self.dir.join(format!("{job_id}.json")), &record)
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), JobStoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let bytes = serde_json::to_vec_pretty(value).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, &bytes).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, path).map_err(io("rename", &tmp))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, JobStoreError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| JobStoreError::Malformed { path: path.to_owned(), detail: e.to_string() }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, JobStoreError> + Send + 'static,
) -> Result<T, JobStoreError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(JobStoreError::Io { action: "run", path: PathBuf::new(), source: std::io::Error::other(e.to_string()) })
    })
}

/// The stores of one cluster, written by its current leader.
#[derive(Clone)]
pub struct JobStore {
    dir: PathBuf,
    leadership: Arc<Leadership>,
}

impl JobStore {
    /// `storage_dir` is `high-availability.storage-dir`; the cluster's files go
    /// under `<storage_dir>/<cluster id>`.
    pub fn new(storage_dir: &Path, leadership: Arc<Leadership>) -> Self {
        let dir = storage_dir.join(&leadership.zookeeper().locator().cluster_id);
        Self { dir, leadership }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn record_path(&self, job_id: JobId) -> PathBuf {
        self.dir.join("jobgraphs").join(format!("{job_id}.json"))
    }
    fn result_path(&self, job_id: JobId) -> PathBuf {
        self.dir.join("job-result-store").join(format!("{job_id}.json"))
    }
    fn commit_path(&self, job_id: JobId) -> PathBuf {
        self.dir.join("commits").join(format!("{job_id}.json"))
    }
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.dir.join("blobs").join(format!("{sha256}.tar.gz"))
    }
    fn pointer(&self, job_id: JobId) -> String {
        format!("{}/{job_id}", self.leadership.zookeeper().locator().job_graphs_path())
    }

    pub fn commit_log(&self) -> CommitLog {
        CommitLog { dir: self.dir.join("commits") }
    }

    /// Keeps a submitted job: its uploaded bundle (if any) and record, then the
    /// pointer in ZooKeeper. Only then is the job accepted.
    pub async fn put_job_graph(&self, record: &JobGraphRecord, upload: Option<PathBuf>) -> Result<(), JobStoreError> {
        let (path, rec) = (self.record_path(record.job_id), record.clone());
        let blob = match &record.source {
            BundleSource::Blob { sha256 } => upload.map(|u| (u, self.blob_path(sha256))),
            BundleSource::Path(_) => None,
        };
        blocking(move || {
            if let Some((from, to)) = blob {
                if !to.is_file() {
                    let dir = to.parent().unwrap_or(Path::new("."));
                    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
                    let tmp = to.with_extension("tmp");
                    std::fs::copy(&from, &tmp).map_err(io("copy", &from))?;
                    std::fs::rename(&tmp, &to).map_err(io("rename", &tmp))?;
                }
            }
            write_json(&path, &rec)
        })
        .await?;
        let path = self.record_path(record.job_id);
        self.leadership.put(&self.pointer(record.job_id), path.to_string_lossy().as_bytes()).await?;
        Ok(())
    }

    /// Every submitted job whose pointer is in ZooKeeper.
    pub async fn job_graphs(&self) -> Result<Vec<JobGraphRecord>, JobStoreError> {
        let zk = self.leadership.zookeeper();
        let mut records = Vec::new();
        for child in zk.children(&zk.locator().job_graphs_path()).await? {
            let node = format!("{}/{child}", zk.locator().job_graphs_path());
            let Some(data) = zk.data(&node).await? else { continue };
            let path = PathBuf::from(String::from_utf8_lossy(&data).into_owned());
            match blocking(move || read_json::<JobGraphRecord>(&path)).await? {
                Some(r) => records.push(r),
                None => tracing::warn!(%node, "a job pointer without its record; the job cannot be recovered"),
            }
        }
        records.sort_by_key(|r| r.submitted);
        Ok(records)
    }

    /// The final details of an ended job, when the store has them.
    pub async fn result(&self, job_id: JobId) -> Result<Option<JobDetails>, JobStoreError> {
        let path = self.result_path(job_id);
        blocking(move || read_json(&path)).await
    }

    /// The commit a leader began for the job, if any.
    pub async fn commit(&self, job_id: JobId) -> Result<Option<CommitRecord>, JobStoreError> {
        let path = self.commit_path(job_id);
        blocking(move || read_json(&path)).await
    }

    /// The job ended: its result is kept first (so it is never run again),
    /// then its pointer, record and commit record go.
    pub async fn job_ended(&self, details: &JobDetails, job_id: JobId) -> Result<(), JobStoreError> {
        let (result, d) = (self.result_path(job_id), details.clone());
        blocking(move || write_json(&result, &d)).await?;
        self.leadership.remove(&self.pointer(job_id)).await?;
        let (record, commit) = (self.record_path(job_id), self.commit_path(job_id));
        blocking(move || {
            for p in [record, commit] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io("remove", &p)(e)),
                }
            }
            Ok(())
        })
        .await
    }

    /// The cluster was stopped for good: its files go (the ZooKeeper nodes
    /// stay until the cluster's path is reused or removed by hand).
    pub async fn remove_all(&self) -> Result<(), JobStoreError> {
        for job in self.job_graphs().await? {
            self.leadership.remove(&self.pointer(job.job_id)).await?;
        }
        let dir = self.dir.clone();
        blocking(move || match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("remove", &dir)(e)),
        })
        .await
    }

    /// The bytes the store holds (for the docs' "bytes written per job").
    pub fn bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            match std::fs::read_dir(p) {
                Ok(entries) => entries
                    .flatten()
                    .map(|e| match e.file_type() {
                        Ok(t) if t.is_dir() => walk(&e.path()),
                        _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                    })
                    .sum(),
                Err(_) => 0,
            }
        }
        walk(&self.dir)
    }
}
