//! The embedded default: a whole cluster on this machine. The Dispatcher,
//! JobMaster and ResourceManager run in this process; TaskManagers are child
//! processes started by the `process` driver.

use std::path::PathBuf;
use std::process::ExitCode;

use am::cluster::{Cluster, ClusterConfig};
use am::drivers::process::{ProcessDriver, ProcessDriverConfig};
use am::resource_manager::slot_manager::{LimitWords, SlotManagerConfig, WorkerSizing};
use am::resource_manager::worker::WorkerSpec;
use am::resource_manager::ResourceManagerConfig;
use anyhow::{Context, Result};
use common::jobspec::Bundle;
use common::resources::{parse_cpu, parse_memory, ResourceProfile};
use common::rpc::{AppSecret, RpcTimeouts};
use tokio::net::TcpListener;

use super::progress::{self, Progress};
use crate::cli::{ClusterArgs, RunArgs, Sizing};

/// A work dir we made (removed at the end) or one the user named (kept).
pub struct WorkDir {
    pub path: PathBuf,
    temp: Option<tempfile::TempDir>,
}

impl WorkDir {
    pub fn new(named: Option<&PathBuf>) -> Result<Self> {
        match named {
            Some(p) => {
                std::fs::create_dir_all(p).with_context(|| format!("cannot create the work dir {}", p.display()))?;
                // Absolute: TaskManagers get paths under it.
                let path = std::fs::canonicalize(p).with_context(|| format!("cannot resolve {}", p.display()))?;
                Ok(Self { path, temp: None })
            }
            None => {
                let t = tempfile::Builder::new().prefix("yarn-flink-").tempdir().context("cannot create a temp dir")?;
                Ok(Self { path: t.path().to_owned(), temp: Some(t) })
            }
        }
    }

    /// Keeps the directory (for its logs) after a failure.
    pub fn keep(mut self) -> PathBuf {
        if let Some(t) = self.temp.take() {
            return t.keep();
        }
        self.path
    }
}

/// This machine's cores and memory, within its cgroup's limits.
fn machine_capacity() -> ResourceProfile {
    let cores = std::thread::available_parallelism().map(|n| n.get() as u64).unwrap_or(1);
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map(|kib| kib * 1024)
        .unwrap_or(u64::MAX);
    // cgroup v2: "max" or a byte count.
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok().and_then(|v| v.trim().parse::<u64>().ok());
    let memory = cgroup.map_or(mem_total, |c| c.min(mem_total));
    ResourceProfile::new(cores * 1000, memory)
}

pub fn cluster_config(args: &ClusterArgs, secret: AppSecret, work_dir: PathBuf) -> Result<ClusterConfig> {
    let cpu = parse_cpu(&args.slot_cpu).map_err(anyhow::Error::msg).context("--slot-cpu")?;
    let mem = parse_memory(&args.slot_memory).map_err(anyhow::Error::msg).context("--slot-memory")?;
    let slot = ResourceProfile::new(cpu, mem);
    let slot_manager = SlotManagerConfig {
        idle_timeout: args.idle_timeout,
        sizing: match args.sizing {
            Sizing::Fixed => WorkerSizing::Fixed,
            Sizing::Fit => WorkerSizing::FitToRequirement { slots_per_worker: args.tm_slots },
        },
        default_worker: WorkerSpec::uniform(slot, args.tm_slots),
        max_worker: None,
        max_total: None,
        max_failed_worker_requests: 5,
        // TaskManagers are processes on this machine: no slot larger than the machine,
        // unless asked to oversubscribe it on purpose.
        max_slot: (!args.oversubscribe).then(machine_capacity),
        limit_words: LimitWords {
            what: "what this machine has (its cores and memory)".into(),
            raise: "pass --oversubscribe to run it on this machine anyway".into(),
        },
    };
    slot_manager.validate().context("the local cluster's TaskManager shape is invalid")?;
    Ok(ClusterConfig {
        resource_manager: ResourceManagerConfig {
            slot_manager,
            heartbeat_interval: args.heartbeat_interval,
            heartbeat_timeout: args.heartbeat_timeout,
            rpc: RpcTimeouts::default(),
        },
        secret,
        rpc: RpcTimeouts::default(),
        work_dir,
        bundle_limits: args.bundle_limits(),
        web_proxies: Vec::new(),
    })
}

/// Starts a local cluster in this process. The secret is written to
/// `<work_dir>/secret` (0600) for the TaskManagers to read.
pub async fn start_cluster(
    args: &ClusterArgs,
    work_dir: &std::path::Path,
    rest: Option<TcpListener>,
) -> Result<Cluster> {
    let secret = AppSecret::generate();
    let secret_file = work_dir.join("secret");
    secret.write_to(&secret_file)?;
    let rpc = TcpListener::bind("127.0.0.1:0").await.context("cannot listen on 127.0.0.1")?;
    start_cluster_as(args, work_dir, rpc, rest, (secret, secret_file), None).await
}

/// An HA session's leader: how its TaskManagers find the leader, and what it was elected with.
pub struct AsLeader {
    pub locator: common::ha::HaLocator,
    pub services: am::cluster::LeaderServices,
}

/// [`start_cluster`] with a given RPC listener and secret, and optionally as an
/// HA session's leader: TaskManagers then outlive this process and follow the
/// leader through ZooKeeper.
pub async fn start_cluster_as(
    args: &ClusterArgs,
    work_dir: &std::path::Path,
    rpc: TcpListener,
    rest: Option<TcpListener>,
    (secret, secret_file): (AppSecret, PathBuf),
    leader: Option<AsLeader>,
) -> Result<Cluster> {
    let config = cluster_config(args, secret, work_dir.to_owned())?;
    let rm_address = rpc.local_addr()?.to_string();
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let binary = std::env::current_exe().context("cannot find our own executable to start TaskManagers")?;
    let mut env = Vec::new();
    for var in ["RUST_LOG", super::taskmanager::ENV_REGISTRATION_TIMEOUT] {
        if let Ok(v) = std::env::var(var) {
            env.push((var.to_owned(), v));
        }
    }
    let (id_prefix, detach) = match &leader {
        // Unique across leaders: a new one adopts its predecessors' TaskManagers.
        Some(l) => {
            env.extend(l.locator.to_env());
            (format!("tm-{}-", &l.services.rm_id.0.simple().to_string()[..8]), true)
        }
        None => ("tm-".to_owned(), false),
    };
    let driver = ProcessDriver::new(
        ProcessDriverConfig {
            binary,
            rm_address,
            secret_file,
            work_dir: work_dir.join("taskmanagers"),
            host: "127.0.0.1".into(),
            env,
            stop_grace: std::time::Duration::from_secs(5),
            id_prefix,
            detach,
        },
        events_tx,
    );
    Ok(Cluster::start_as(config, rpc, rest, driver, events, leader.map(|l| l.services)).await?)
}

/// A session whose ResourceManager is a Mesos framework: TaskManagers are
/// Mesos tasks on the agents whose offers fit them. The agents run this same
/// binary at the same path and read the secret from the same path (a shared
/// work dir), see docs/mesos.md.
pub async fn start_mesos_cluster(
    args: &ClusterArgs,
    mesos: &crate::cli::MesosArgs,
    work_dir: &std::path::Path,
    rest: Option<TcpListener>,
) -> Result<Cluster> {
    use am::drivers::mesos::{MesosDriver, MesosDriverConfig};
    let Some(master) = mesos.master.clone() else {
        anyhow::bail!("--target mesos needs --master http://<mesos master>:5050 (or YF_MESOS_MASTER)");
    };
    let secret = AppSecret::generate();
    let secret_file = work_dir.join("secret");
    secret.write_to(&secret_file)?;
    let mut config = cluster_config(args, secret, work_dir.to_owned())?;
    // The agents' size bounds a TaskManager, not this machine's: the driver refuses what no agent fits.
    config.resource_manager.slot_manager.max_slot = None;
    let rpc = TcpListener::bind("0.0.0.0:0").await.context("cannot listen for TaskManagers")?;
    let host = std::env::var("YF_MESOS_ADVERTISED_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let rm_address = format!("{host}:{}", rpc.local_addr()?.port());
    let principal_secret = match &mesos.secret_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read --secret-file {}", f.display()))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let mut env = Vec::new();
    for var in ["RUST_LOG", super::taskmanager::ENV_REGISTRATION_TIMEOUT] {
        if let Ok(v) = std::env::var(var) {
            env.push((var.to_owned(), v));
        }
    }
    let driver_config = MesosDriverConfig {
        master: master.clone(),
        role: mesos.role.clone(),
        principal: mesos.principal.clone(),
        secret: principal_secret,
        framework_name: "yarn-flink".into(),
        user: std::env::var("USER").unwrap_or_else(|_| "root".into()),
        failover_timeout: std::time::Duration::from_secs(7 * 24 * 3600),
        refuse_seconds: 5.0,
        binary: std::env::current_exe().context("cannot find our own executable")?.display().to_string(),
        rm_address,
        secret_file,
        env,
        task_prefix: "tm-".into(),
    };
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let driver = MesosDriver::start(driver_config, events_tx).await?;
    Ok(Cluster::start(config, rpc, rest, driver, events).await?)
}

pub async fn run(args: RunArgs) -> Result<ExitCode> {
    if args.target == crate::cli::Target::Mesos {
        anyhow::bail!(
            "a job runs on Mesos through a session: `yarn-flink session start --target mesos --master <url>`, \
             then `yarn-flink run -m <address> <bundle>`"
        );
    }
    let work = WorkDir::new(args.cluster.work_dir.as_ref())?;
    // Check the bundle before anything starts: a bad spec leaves nothing behind.
    let bundle = Bundle::load(&args.bundle, work.path.join("bundle"), &args.cluster.bundle_limits())?;
    let cluster = start_cluster(&args.cluster, &work.path, None).await?;
    let job_id = cluster.dispatcher.submit(bundle)?;
    eprintln!("Submitted job {job_id}");
    let mut details = cluster.dispatcher.watch(job_id)?;
    let mut progress = Progress::new();
    let interrupted = loop {
        let d = details.borrow_and_update().clone();
        progress.show(&d);
        if d.is_terminal() {
            break false;
        }
        tokio::select! {
            r = details.changed() => if r.is_err() { break false },
            _ = tokio::signal::ctrl_c() => break true,
        }
    };
    if interrupted {
        eprintln!("interrupted: cancelling the job");
        let _ = cluster.dispatcher.cancel(job_id);
    }
    let last = cluster.dispatcher.wait(job_id).await?;
    cluster.shutdown().await;
    drop(progress);
    let code = progress::finish(&last);
    if last.state != "FINISHED" {
        let kept = work.keep();
        eprintln!("logs: {}", kept.join("taskmanagers").display());
    }
    Ok(code)
}
