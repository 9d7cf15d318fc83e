//! The data plane of a TaskExecutor: runs subtask attempts and moves their
//! records along the JobGraph's edges.
//!
//! Layout:
//! - `partition`: produced result partitions, one bounded queue per
//!   subpartition, registered until a consumer takes it; the buffered-bytes gauge.
//! - `writer`: the partitioners (forward, hash, rebalance, broadcast).
//! - `input`: input gates, the union of local and remote input channels.
//! - `net`: the TCP exchange between TaskExecutors: secret-proving handshake,
//!   length-prefixed buffers, credit-based flow control.
//! - `process`: a subtask as a child process (stdin/stdout records).
//! - [`source`] / `sink`: the built-in text source and sink.
//! - [`diagnostics`]: measuring the exchange alone (benchmarks).
//!
//! Architecture invariants: the data plane knows nothing of the control plane
//! (a [`TaskDeploymentDescriptor`] in, `Ok`/[`TaskError`] out); records are
//! newline-terminated lines and every buffer holds whole records; memory is
//! bounded whatever the speed of producers and consumers: per subpartition the
//! producer side holds at most `credits_per_channel + 2` buffers (the queue,
//! one waiting to enter it, one being handed out), and per input channel the
//! consumer side at most `credits_per_channel + 1`. A buffer is
//! `buffer_size` plus at most one partial record. [`DataPlane::buffered_bytes`]
//! shows the total.
//!
//! Every subtask process is started with a cleared environment (see
//! `docs/task-contract.md`), so the application secret never reaches it.

pub mod diagnostics;
pub mod hdfs_io;
mod input;
pub mod metrics;
mod net;
mod partition;
mod process;
mod sink;
pub mod source;
mod writer;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::ids::JobId;
use common::jobspec::{BuiltinSink, BuiltinSource, Program};
use common::protocol::TaskDeploymentDescriptor;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

pub use writer::{hash_target, key_hash, record_key};

use partition::{Gauge, Registry};
use writer::{PartitionWriter, RecordWriter};

/// Tuning of the exchange. `Default` suits most jobs.
#[derive(Clone, Debug)]
pub struct DataPlaneConfig {
    /// Target size of one network buffer (and of one pipe read).
    pub buffer_size: usize,
    /// Buffers a consumer can take ahead, per channel; also the depth of each
    /// subpartition queue on the producer side.
    pub credits_per_channel: u32,
    /// The longest record accepted; longer lines fail the task.
    pub max_record_bytes: usize,
    /// A producer process that stays quiet this long gets its partly filled
    /// hash/rebalance buffers sent.
    pub flush_interval: Duration,
    /// How long a consumer retries a partition its producer has not registered.
    pub partition_request_timeout: Duration,
    pub handshake_timeout: Duration,
    /// The address consumers are told to use (`producer_data_address`) when it
    /// differs from the listener's; channels to it are served in memory.
    pub advertised_address: Option<String>,
}

impl Default for DataPlaneConfig {
    fn default() -> Self {
        Self {
            buffer_size: 32 * 1024,
            credits_per_channel: 8,
            max_record_bytes: 64 << 20,
            flush_interval: Duration::from_millis(100),
            partition_request_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            advertised_address: None,
        }
    }
}

/// How a subtask attempt ended, other than FINISHED.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    #[error("the task was canceled")]
    Canceled,
    /// FAILED; the message names the subtask, the cause and (for a process)
    /// the last lines of its stderr.
    #[error("{0}")]
    Failed(String),
}

/// Variables passed through from the TaskExecutor's own environment; the
/// child gets nothing else of it (the application secret stays with us).
const PASSTHROUGH_ENV: &[&str] =
    &["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYENV_ROOT"];

pub(crate) struct Shared {
    pub(crate) config: DataPlaneConfig,
    pub(crate) secret: Arc<[u8]>,
    pub(crate) registry: Registry,
    pub(crate) gauge: Arc<Gauge>,
    local_addr: SocketAddr,
}

impl Shared {
    /// Whether `addr` (a `producer_data_address`) is this plane: then the
    /// channel is served in memory instead of over TCP.
    pub(crate) fn is_local(&self, addr: &str) -> bool {
        if self.config.advertised_address.as_deref() == Some(addr) {
            return true;
        }
        let Some((host, port)) = addr.rsplit_once(':') else { return false };
        if port.parse::<u16>().ok() != Some(self.local_addr.port()) {
            return false;
        }
        let ours = self.local_addr.ip();
        let loopback_ok = ours.is_loopback() || ours.is_unspecified();
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => ip == ours || (ip.is_loopback() && loopback_ok),
            Err(_) => host == "localhost" && loopback_ok,
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One per TaskExecutor process; cheap to clone.
#[derive(Clone)]
pub struct DataPlane {
    inner: Arc<Inner>,
}

impl DataPlane {
    /// Serves subpartition requests from consumers on `listener` (bound by
    /// the caller). Peers must prove they know `secret` before data flows.
    pub async fn start(listener: TcpListener, secret: Arc<[u8]>, config: DataPlaneConfig) -> std::io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let shared =
            Arc::new(Shared { config, secret, registry: Registry::default(), gauge: Arc::default(), local_addr });
        let server = tokio::spawn(net::serve(listener, shared.clone()));
        info!(%local_addr, "data plane listening");
        Ok(Self { inner: Arc::new(Inner { shared, server }) })
    }

    pub fn local_address(&self) -> SocketAddr {
        self.inner.shared.local_addr
    }

    /// Bytes now held in this TaskExecutor's exchange queues (produced and
    /// not yet sent or consumed, plus received and not yet consumed).
    pub fn buffered_bytes(&self) -> usize {
        self.inner.shared.gauge.current()
    }

    /// The highest `buffered_bytes` seen since start.
    pub fn peak_buffered_bytes(&self) -> usize {
        self.inner.shared.gauge.peak()
    }

    /// Partitions registered and not yet fully taken by consumers or released.
    pub fn registered_partitions(&self) -> usize {
        self.inner.shared.registry.len()
    }

    /// Forgets every partition of `job_id` this TaskExecutor still holds;
    /// consumers that had not connected yet fail.
    pub fn release_job(&self, job_id: JobId) {
        let n = self.inner.shared.registry.release_job(job_id);
        debug!(%job_id, partitions = n, "released partitions");
    }

    /// Runs one subtask attempt to its end. `Ok` = FINISHED. Cancellation
    /// kills the process group and fails the attempt's partitions.
    pub async fn run_task(
        &self,
        tdd: TaskDeploymentDescriptor,
        work_dir: PathBuf,
        env: Vec<(String, String)>,
        cancel: CancellationToken,
    ) -> Result<(), TaskError> {
        self.run_task_counted(tdd, work_dir, env, cancel, Arc::default()).await
    }

    /// [`DataPlane::run_task`], counting what the attempt moves into `io`.
    pub async fn run_task_counted(
        &self,
        tdd: TaskDeploymentDescriptor,
        work_dir: PathBuf,
        env: Vec<(String, String)>,
        cancel: CancellationToken,
        io: Arc<metrics::TaskIoCounters>,
    ) -> Result<(), TaskError> {
        let shared = &self.inner.shared;
        let label =
            format!("{} {}/{} (attempt {})", tdd.vertex_name, tdd.subtask_index, tdd.parallelism, tdd.attempt_number);
        // Register outputs first, so that consumers deployed with us find them.
        let mut partitions = Vec::with_capacity(tdd.outputs.len());
        let mut writers = Vec::with_capacity(tdd.outputs.len());
        for out in &tdd.outputs {
            let (partition, senders) = shared.registry.register(
                tdd.job_id,
                out.partition_id,
                out.num_subpartitions,
                shared.config.credits_per_channel as usize,
                &shared.gauge,
            );
            partitions.push(partition.clone());
            writers.push(PartitionWriter::new(
                out.partitioning,
                partition,
                senders,
                shared.config.buffer_size,
                io.clone(),
            ));
        }
        let writer = RecordWriter::new(writers, io.clone());
        let result = self.run_program(&tdd, &label, work_dir, env, writer, &cancel).await;
        match &result {
            Ok(()) => info!(task = %label, "finished"),
            Err(e) => {
                info!(task = %label, "ended: {e}");
                let why = format!(
                    "producer {label} {}",
                    if *e == TaskError::Canceled { "was canceled".into() } else { format!("failed: {e}") }
                );
                for p in &partitions {
                    p.fail(&why);
                }
            }
        }
        result
    }

    async fn run_program(
        &self,
        tdd: &TaskDeploymentDescriptor,
        label: &str,
        work_dir: PathBuf,
        env: Vec<(String, String)>,
        writer: RecordWriter,
        cancel: &CancellationToken,
    ) -> Result<(), TaskError> {
        // Inputs count into the same counters as the writer's outputs.
        let io = &writer.io().clone();
        let shared = &self.inner.shared;
        let has_inputs = tdd.inputs.iter().any(|g| !g.channels.is_empty());
        match &tdd.program {
            Program::Command { .. } | Program::Shell { .. } => {
                std::fs::create_dir_all(&work_dir).map_err(|e| {
                    TaskError::Failed(format!("{label}: creating its work directory {work_dir:?} failed: {e}"))
                })?;
                let cmd = command(tdd, label, &work_dir, env)?;
                let spawned = process::spawn(cmd, label.to_string(), has_inputs)?;
                let inputs = input::open(shared, &tdd.inputs, io);
                // Handles cancellation itself, so that it can reap the child.
                process::run(spawned, inputs, writer, &shared.config, cancel).await
            }
            Program::Source(BuiltinSource::TextFiles { path }) => {
                let path = resolve(&tdd.bundle_dir, path);
                tokio::select! {
                    r = run_source(path, tdd, writer, &shared.config, label) => r,
                    _ = cancel.cancelled() => Err(TaskError::Canceled),
                }
            }
            Program::Sink(BuiltinSink::TextFiles { path }) => {
                let dir = resolve(&tdd.bundle_dir, path);
                let staging = common::output::staging_file(&dir, tdd.job_id, tdd.subtask_index, tdd.attempt_number);
                // HDFS: write locally with the same code, then upload to the staging path.
                let on_hdfs = common::hdfs::is_hdfs(path);
                let local = if on_hdfs { hdfs_io::local_staging(&work_dir, &staging) } else { staging.clone() };
                let channels = input::open_channels(shared, &tdd.inputs, io);
                tokio::select! {
                    r = async {
                        sink::run(&local, channels, label).await?;
                        if on_hdfs {
                            hdfs_io::upload_staged(&local, &staging)
                                .await
                                .map_err(|e| TaskError::Failed(format!("{label}: {e}")))?;
                        }
                        Ok(())
                    } => r,
                    _ = cancel.cancelled() => Err(TaskError::Canceled),
                }?;
                // A sink has no outgoing edges; should it be given some, they end empty.
                writer.finish().await.map_err(|_| TaskError::Failed(format!("{label}: a consumer went away")))
            }
        }
    }
}

/// Relative paths are relative to the bundle directory.
fn resolve(bundle_dir: &Path, path: &str) -> PathBuf {
    if path.starts_with("hdfs://") {
        return PathBuf::from(path);
    }
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle_dir.join(p)
    }
}

fn command(
    tdd: &TaskDeploymentDescriptor,
    label: &str,
    work_dir: &Path,
    env: Vec<(String, String)>,
) -> Result<tokio::process::Command, TaskError> {
    let mut cmd = match &tdd.program {
        Program::Command { argv } => {
            let Some(program) = argv.first() else {
                return Err(TaskError::Failed(format!("{label}: its command is empty; give at least the program")));
            };
            // `./x` and `bin/x` are in the bundle; a bare name is the bundle's if it has one, else the PATH's.
            let in_bundle = tdd.bundle_dir.join(program);
            let program = if Path::new(program).is_absolute() {
                PathBuf::from(program)
            } else if program.contains('/') || in_bundle.is_file() {
                in_bundle
            } else {
                PathBuf::from(program)
            };
            let mut cmd = tokio::process::Command::new(program);
            cmd.args(&argv[1..]);
            cmd
        }
        Program::Shell { script } => {
            let mut cmd = tokio::process::Command::new("/bin/sh");
            cmd.arg("-c").arg(script);
            cmd
        }
        Program::Source(_) | Program::Sink(_) => unreachable!("built-ins run without a process"),
    };
    cmd.current_dir(&tdd.bundle_dir).env_clear();
    for key in PASSTHROUGH_ENV {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(env)
        .env("YF_JOB_ID", tdd.job_id.to_string())
        .env("YF_JOB_NAME", &tdd.job_name)
        .env("YF_VERTEX", &tdd.vertex_name)
        .env("YF_VERTEX_INDEX", tdd.vertex_index.to_string())
        .env("YF_SUBTASK_INDEX", tdd.subtask_index.to_string())
        .env("YF_PARALLELISM", tdd.parallelism.to_string())
        .env("YF_ATTEMPT", tdd.attempt_number.to_string())
        .env("YF_WORK_DIR", work_dir);
    Ok(cmd)
}

async fn run_source(
    path: PathBuf,
    tdd: &TaskDeploymentDescriptor,
    mut writer: RecordWriter,
    config: &DataPlaneConfig,
    label: &str,
) -> Result<(), TaskError> {
    let failed = |e: source::SourceError| TaskError::Failed(format!("{label}: {e}"));
    let gone = |_| TaskError::Failed(format!("{label}: a consumer of its output went away"));
    let url = path.to_string_lossy().into_owned();
    let (client, files) = if common::hdfs::is_hdfs(&url) {
        let (client, files) = hdfs_io::list_input_files(&url).await.map_err(failed)?;
        (Some(client), files)
    } else {
        let listing = path.clone();
        let files = tokio::task::spawn_blocking(move || source::list_input_files(&listing))
            .await
            .map_err(|e| TaskError::Failed(format!("{label}: listing the input panicked: {e}")))?
            .map_err(failed)?;
        (None, files)
    };
    let total = files.iter().map(|(_, len)| len).sum();
    let (start, end) = source::split_range(total, tdd.parallelism, tdd.subtask_index);
    let (tx, mut rx) = mpsc::channel::<Bytes>(4);
    let (chunk, max_line) = (config.buffer_size.max(4096), config.max_record_bytes);
    let handle = tokio::runtime::Handle::current();
    // Blocking reads on a thread of their own; the channel bounds read-ahead.
    let reader = tokio::task::spawn_blocking(move || {
        let mut emit = |c| tx.blocking_send(c).is_ok();
        match &client {
            Some(client) => hdfs_io::read_split(&handle, client, &files, start, end, chunk, max_line, &mut emit),
            None => source::read_split(&files, start, end, chunk, max_line, &mut emit),
        }
    });
    while let Some(chunk) = rx.recv().await {
        writer.write(&chunk).await.map_err(gone)?;
    }
    reader
        .await
        .map_err(|e| TaskError::Failed(format!("{label}: reading the input panicked: {e}")))?
        .map_err(failed)?;
    writer.finish().await.map_err(gone)
}
