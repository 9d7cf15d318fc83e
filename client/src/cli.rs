//! The command line, as clap sees it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use common::jobspec::BundleLimits;

#[derive(Parser, Debug)]
#[command(
    name = "yarn-flink",
    version,
    about = "Run Flink-style dataflow jobs on YARN, Kubernetes, Mesos or local processes"
)]
pub struct Cli {
    /// Log at debug level (RUST_LOG overrides).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a job bundle: on a new local cluster (the default), or on a running session (-m).
    Run(RunArgs),
    /// Start or stop a session cluster that takes many jobs.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Submit a bundle to YARN or Kubernetes (application mode), or start a session there (--session).
    Submit(Box<SubmitArgs>),
    /// List the yarn-flink applications on YARN, the clusters on Kubernetes, or the jobs of a session (-m).
    List(ListArgs),
    /// Show a YARN application (`application_...`), a Kubernetes cluster, or a job of a session (-m).
    Status {
        #[command(flatten)]
        target: ListArgs,
        /// `application_<cluster>_<n>` (YARN), a cluster id (Kubernetes), or a job id (with -m).
        id: String,
    },
    /// Kill a YARN application (ends KILLED; stops a YARN session too), or a Kubernetes cluster.
    Kill {
        #[arg(long, value_enum, default_value = "yarn")]
        target: ClusterTarget,
        #[command(flatten)]
        yarn: YarnArgs,
        /// Kubernetes: the namespace (default: the kubeconfig context's).
        #[arg(long)]
        namespace: Option<String>,
        /// `application_<cluster>_<n>` (YARN) or the cluster id `submit` printed (Kubernetes).
        application_id: String,
    },
    /// Cancel a job of a session.
    Cancel {
        #[command(flatten)]
        session: SessionAddr,
        job_id: String,
    },
    /// Check this edge node's Hadoop setup: configuration, login, reachability.
    Doctor(DoctorArgs),
    /// When the Kerberos ticket and each Hadoop delegation token expire, with the fix for each.
    Credentials(CredentialsArgs),
    /// The staging dir on the cluster's file system: list it, or clean what ended applications left.
    #[command(subcommand)]
    Staging(StagingCommand),
    /// The logs of a YARN application's containers (running, or aggregated once ended).
    Logs(LogsArgs),
    /// Internal: the TaskManager entry point, started by a driver.
    #[command(hide = true)]
    Taskmanager,
    /// Internal: the YARN ApplicationMaster entry point, started in the AM container.
    #[command(hide = true)]
    Appmaster,
    /// Internal: the JobManager entry point, in the pod `submit --target kubernetes` creates.
    #[command(hide = true)]
    KubernetesJobmanager,
}

/// The cluster managers `submit` and `kill` reach.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClusterTarget {
    Yarn,
    Kubernetes,
}

/// Kubernetes: where and as what the cluster runs (`submit --target kubernetes`).
#[derive(Args, Debug, Clone)]
pub struct KubernetesArgs {
    /// The namespace (default: the kubeconfig context's, or the pod's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// The image of the JobManager and TaskManager pods: it needs only the
    /// `yarn-flink` binary on its PATH (docs/kubernetes.md).
    #[arg(long, default_value = "yarn-flink:latest")]
    pub image: String,
    #[arg(long)]
    pub image_pull_policy: Option<String>,
    /// The service account of the JobManager pod (deploy/kubernetes/rbac.yaml).
    #[arg(long)]
    pub service_account: Option<String>,
    /// The cluster's id, part of every object's name (default: 8 random hex digits).
    #[arg(long)]
    pub cluster_id: Option<String>,
    /// The extended resource a vertex's `gpu` is.
    #[arg(long, default_value = "nvidia.com/gpu")]
    pub gpu_resource: String,
    /// A pod Unschedulable or stuck (ImagePullBackOff) this long is a failed worker request.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, env = "YF_K8S_PENDING_TIMEOUT")]
    pub pending_timeout: Duration,
    /// The JobManager's RPC and REST ports (0 = any free port).
    #[arg(long, default_value_t = 6123, env = "YF_K8S_RPC_PORT")]
    pub rpc_port: u16,
    #[arg(long, default_value_t = 8081, env = "YF_K8S_REST_PORT")]
    pub rest_port: u16,
    /// A node directory every pod of the cluster mounts at the same path
    /// (a hostPath volume; repeatable): for sources and sinks on a mount
    /// every node shares.
    #[arg(long = "mount-host-path", value_name = "PATH")]
    pub host_paths: Vec<String>,
}

/// Where YARN is: the Hadoop configuration.
#[derive(Args, Debug, Clone)]
pub struct YarnArgs {
    /// The Hadoop configuration directory (default: HADOOP_CONF_DIR, then $HADOOP_HOME/etc/hadoop).
    #[arg(long)]
    pub conf_dir: Option<PathBuf>,
}

/// `list` / `status`: a session (-m) or, without it, YARN.
#[derive(Args, Debug, Clone)]
pub struct ListArgs {
    /// Where to look, without -m.
    #[arg(long, value_enum, default_value = "yarn")]
    pub target: ClusterTarget,
    /// Kubernetes: the namespace (default: the kubeconfig context's).
    #[arg(long)]
    pub namespace: Option<String>,
    /// A session's REST address (host:port); without it, ask YARN (or Kubernetes, with --target).
    #[arg(short = 'm', long = "jobmanager", env = "YARN_FLINK_SESSION")]
    pub jobmanager: Option<String>,
    /// The session's application secret (default: the one `session start` / `submit --session` saved).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    #[command(flatten)]
    pub yarn: YarnArgs,
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    /// Where the cluster runs.
    #[arg(long, value_enum, default_value = "yarn")]
    pub target: ClusterTarget,
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    /// The YARN queue.
    #[arg(long, default_value = "default")]
    pub queue: String,
    /// The application name (default: the bundle's directory name).
    #[arg(long)]
    pub name: Option<String>,
    /// Return once the application is RUNNING.
    #[arg(long)]
    pub detached: bool,
    /// Start a session: the AM stays up and takes jobs (`yarn-flink run -m`); no bundle.
    #[arg(long, conflicts_with = "bundle")]
    pub session: bool,
    /// Log in from this keytab (with --principal) instead of the ticket cache.
    #[arg(long, requires = "principal")]
    pub keytab: Option<PathBuf>,
    #[arg(long, requires = "keytab")]
    pub principal: Option<String>,
    /// Memory of the ApplicationMaster's container or JobManager pod (e.g. 1g,
    /// 768m). Its own RSS is about 15 MB; YARN rounds up to its minimum allocation.
    #[arg(long, default_value = "256m")]
    pub am_memory: String,
    #[arg(long, default_value_t = 1)]
    pub am_vcores: u32,
    /// AM attempts YARN makes before the application fails. Above 1, a new
    /// attempt keeps the TaskManager containers of the one before, and the job
    /// (or a session's jobs) runs again unless it had ended or committed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// Application tags (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// How often the client polls the RM while following.
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, env = "YF_POLL_INTERVAL")]
    pub poll_interval: Duration,
    #[command(flatten)]
    pub yarn: YarnArgs,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// A bundle: a directory with job.toml, a job.toml, or a .tar.gz of one. On
    /// Kubernetes also `local:///path` inside the image or `hdfs://.../b.tar.gz`
    /// (a local one goes in a ConfigMap: at most 1 MiB packed).
    #[arg(required_unless_present = "session")]
    pub bundle: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The Hadoop configuration directory (default: HADOOP_CONF_DIR, then $HADOOP_HOME/etc/hadoop).
    #[arg(long)]
    pub conf_dir: Option<PathBuf>,
    /// Log in from this keytab (with --principal) instead of the ticket cache.
    #[arg(long, requires = "principal")]
    pub keytab: Option<PathBuf>,
    #[arg(long)]
    pub principal: Option<String>,
    /// A Hadoop token file to list (default: HADOOP_TOKEN_FILE_LOCATION).
    #[arg(long, env = "HADOOP_TOKEN_FILE_LOCATION")]
    pub token_file: Option<PathBuf>,
    /// Check configuration and login only; no network checks.
    #[arg(long)]
    pub offline: bool,
    /// Time limit for each network check.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
}

#[derive(Args, Debug)]
pub struct CredentialsArgs {
    /// A Hadoop token file (default: HADOOP_TOKEN_FILE_LOCATION, as inside a YARN container).
    #[arg(long, env = "HADOOP_TOKEN_FILE_LOCATION")]
    pub token_file: Option<PathBuf>,
    /// Anything expiring within this many hours is a warning.
    #[arg(long, default_value_t = 24)]
    pub hours: u64,
    /// The ticket cache (e.g. FILE:/tmp/krb5cc_1000; default: KRB5CCNAME, then krb5.conf's
    /// default_ccache_name); `none` checks no ticket.
    #[arg(long)]
    pub ccache: Option<String>,
    /// One JSON object per line instead of tab-separated lines.
    #[arg(long)]
    pub json: bool,
}

/// How the operations commands reach the cluster: its configuration and, on a
/// Kerberized one, the login.
#[derive(Args, Debug, Clone)]
pub struct ClusterLogin {
    #[command(flatten)]
    pub yarn: YarnArgs,
    /// Log in from this keytab (with --principal) instead of the ticket cache.
    #[arg(long, requires = "principal")]
    pub keytab: Option<PathBuf>,
    #[arg(long, requires = "keytab")]
    pub principal: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum StagingCommand {
    /// List the per-application staging dirs with their application's state.
    List(StagingArgs),
    /// Delete the staging dirs of ended or unknown applications (and old cache entries).
    Clean(StagingCleanArgs),
}

#[derive(Args, Debug)]
pub struct StagingArgs {
    #[command(flatten)]
    pub login: ClusterLogin,
    /// Dirs modified more recently are kept whatever the RM says (a submit may be in progress).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub older_than: Duration,
    /// One JSON object per line instead of tab-separated lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct StagingCleanArgs {
    #[command(flatten)]
    pub staging: StagingArgs,
    /// Also delete content-cache entries uploaded more than DAYS ago that no live application uses.
    #[arg(long, value_name = "DAYS")]
    pub prune_cache: Option<u64>,
    /// Say what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    #[command(flatten)]
    pub login: ClusterLogin,
    /// Only this container's logs (with -m: this TaskManager's).
    #[arg(long)]
    pub container: Option<String>,
    /// Only list the containers and their log files.
    #[arg(long)]
    pub list: bool,
    /// A session's REST address (host:port): its TaskManagers' logs, as the session serves them.
    #[arg(short = 'm', long = "jobmanager", conflicts_with = "application_id")]
    pub jobmanager: Option<String>,
    /// The session's application secret (default: the one `session start` saved).
    #[arg(long, requires = "jobmanager")]
    pub secret_file: Option<PathBuf>,
    /// `application_<cluster>_<n>`.
    #[arg(required_unless_present = "jobmanager")]
    pub application_id: Option<String>,
}

impl Command {
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Taskmanager | Command::Appmaster => "info",
            Command::Session(SessionCommand::Serve(_)) => "info",
            _ => "warn",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// TaskManagers are local processes (no cluster needed).
    Local,
    /// A session whose ResourceManager is a Mesos framework (`session start` only).
    Mesos,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Where to run: a new local cluster.
    #[arg(long, value_enum, default_value = "local")]
    pub target: Target,
    /// Submit to a running session at this REST address (host:port) instead.
    #[arg(short = 'm', long = "jobmanager")]
    pub jobmanager: Option<String>,
    /// The application secret of that session (default: the one `session start` saved).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
    /// Return once the job is submitted (sessions only).
    #[arg(long)]
    pub detached: bool,
    /// Send the bundle itself to the session (the default unless the session runs on this
    /// machine's processes, which read it in place).
    #[arg(long)]
    pub upload: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// A bundle: a directory with job.toml, a job.toml, or a .tar.gz of one.
    pub bundle: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// Start a session cluster in the background and print its REST address.
    Start(SessionStartArgs),
    /// Stop a session cluster.
    Stop(SessionAddr),
    /// Internal: run a session cluster in the foreground.
    #[command(hide = true)]
    Serve(SessionStartArgs),
}

#[derive(Args, Debug, Clone)]
pub struct SessionStartArgs {
    #[arg(long, value_enum, default_value = "local")]
    pub target: Target,
    /// REST port (0 = any free port). With --ha, whichever process leads serves it.
    #[arg(long, default_value_t = 0, env = "YF_SESSION_PORT")]
    pub port: u16,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub ha: HaArgs,
    #[command(flatten)]
    pub mesos: MesosArgs,
}

/// A session on Mesos: its ResourceManager subscribes as a framework.
#[derive(Args, Debug, Clone)]
pub struct MesosArgs {
    /// The Mesos master's HTTP endpoint, e.g. http://host:5050 (with --target mesos).
    #[arg(long, env = "YF_MESOS_MASTER")]
    pub master: Option<String>,
    /// The role the framework subscribes with (its offers and quota).
    #[arg(long, default_value = "*")]
    pub role: String,
    /// The framework's principal, for HTTP authentication with the master.
    #[arg(long, requires = "secret_file")]
    pub principal: Option<String>,
    /// A file holding the principal's secret.
    #[arg(long, requires = "principal")]
    pub secret_file: Option<PathBuf>,
}

/// ZooKeeper high availability for a session (Flink's `high-availability.*`).
#[derive(Args, Debug, Clone)]
pub struct HaArgs {
    /// Elect the session's leader through ZooKeeper: zookeeper://host:port[,host:port]/root.
    #[arg(long = "ha", value_name = "URL")]
    pub url: Option<String>,
    /// Standby processes besides the leader; one takes over when the leader dies.
    #[arg(long, default_value_t = 0, requires = "url")]
    pub standby: u32,
    /// Where submitted jobs, uploaded bundles and results are kept for the next
    /// leader (Flink's high-availability.storage-dir): a directory every session
    /// process can write, or hdfs://namenode:port/path [default: ~/.yarn-flink/ha].
    #[arg(long, requires = "url", value_name = "DIR|URL")]
    pub ha_storage_dir: Option<String>,
    /// The cluster's name under the ZooKeeper root (Flink's high-availability.cluster-id).
    #[arg(long, default_value = "default", requires = "url")]
    pub ha_cluster_id: String,
    /// The ZooKeeper session timeout: how long a dead leader holds its leadership.
    /// The server bounds it (2 to 20 ticks by default).
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration, requires = "url")]
    pub ha_session_timeout: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct SessionAddr {
    /// The session's REST address (host:port), as `session start` printed it.
    #[arg(short = 'm', long = "jobmanager", env = "YARN_FLINK_SESSION")]
    pub jobmanager: String,
    /// The session's application secret (default: the one `session start` saved).
    #[arg(long)]
    pub secret_file: Option<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Sizing {
    /// Every TaskManager has the default shape (`--tm-slots` x `--slot-cpu`/`--slot-memory`).
    Fixed,
    /// TaskManagers are shaped to what the job's vertices ask (heterogeneous).
    Fit,
}

/// How the local cluster is shaped; flags or YF_* environment variables.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// How new TaskManagers are shaped.
    #[arg(long, value_enum, default_value = "fit", env = "YF_SIZING")]
    pub sizing: Sizing,
    /// Slots per TaskManager.
    #[arg(long, default_value_t = 4, env = "YF_TM_SLOTS")]
    pub tm_slots: u32,
    /// CPU of a default slot (cores, fractional).
    #[arg(long, default_value = "1", env = "YF_SLOT_CPU")]
    pub slot_cpu: String,
    /// Memory of a default slot (e.g. 512m, 1g).
    #[arg(long, default_value = "512m", env = "YF_SLOT_MEMORY")]
    pub slot_memory: String,
    /// Release TaskManagers idle this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration, env = "YF_IDLE_TIMEOUT")]
    pub idle_timeout: Duration,
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, env = "YF_HEARTBEAT_INTERVAL")]
    pub heartbeat_interval: Duration,
    /// A peer silent this long is dead.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, env = "YF_HEARTBEAT_TIMEOUT")]
    pub heartbeat_timeout: Duration,
    /// Where the cluster keeps TaskManager work dirs and logs (default: a temp dir, removed at the end).
    #[arg(long, env = "YF_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// Local clusters: run TaskManagers larger than this machine (its cores and memory) on purpose.
    #[arg(long)]
    pub oversubscribe: bool,
    /// The most a bundle may unpack to (and a session take as an upload), e.g. 2g.
    #[arg(long, default_value = "2g", value_parser = parse_size, env = "YF_BUNDLE_MAX_SIZE")]
    pub bundle_max_size: u64,
    /// The most files, directories and links a bundle may hold.
    #[arg(long, default_value_t = BundleLimits::DEFAULT_MAX_ENTRIES, value_parser = clap::value_parser!(u64).range(1..), env = "YF_BUNDLE_MAX_ENTRIES")]
    pub bundle_max_entries: u64,
}

impl ClusterArgs {
    pub fn bundle_limits(&self) -> BundleLimits {
        BundleLimits { max_bytes: self.bundle_max_size, max_entries: self.bundle_max_entries }
    }
}

fn parse_size(s: &str) -> Result<u64, String> {
    match common::resources::parse_memory(s)? {
        0 => Err("must be more than zero (e.g. 512m or 2g)".into()),
        n => Ok(n),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    common::jobspec::parse_duration(s).map_err(|e| e.to_string())
}

/// Intervals and timeouts: zero would spin (or panic in a timer), so it is refused here, where
/// clap names the flag.
pub(crate) fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be more than zero (e.g. 100ms or 1s)".into());
    }
    Ok(d)
}

pub fn parse() -> Cli {
    Cli::parse()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::Cli;

    /// Issue 9: `--heartbeat-interval 0ms` panicked inside a spawned task.
    #[test]
    fn zero_intervals_are_refused_naming_the_flag() {
        for flag in ["--heartbeat-interval", "--heartbeat-timeout"] {
            let err =
                Cli::try_parse_from(["yarn-flink", "run", flag, "0ms", "examples/hello"]).unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains("more than zero"), "{err}");
        }
        assert!(Cli::try_parse_from(["yarn-flink", "run", "--heartbeat-interval", "100ms", "b"]).is_ok());
    }
}
