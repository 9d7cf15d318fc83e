//! The YARN ApplicationMaster: what `yarn-flink appmaster` runs inside the
//! AM container. It reads the NodeManager's environment, the
//! [contract](super::contract) the client localized and the credentials,
//! registers with the RM scheduler, starts the cluster with the
//! [`yarn`](super) driver, runs the bundle's job (application mode) or takes
//! jobs over REST (session mode), and unregisters with the final status.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::jobspec::{Bundle, BundleLimits};
use common::launch::ENV_HADOOP_TOKEN_FILE;
use common::rpc::{AppSecret, RpcTimeouts};
use hadoop::conf::HadoopConf;
use hadoop::credentials::{Credentials, Token};
use hadoop::yarn::amrm::{AmRmClient, AmRmConfig};
use hadoop::yarn::nm::NmClient;
use hadoop::yarn::{ContainerId, FinalStatus, LocalResource};
use tokio::net::TcpListener;
use tracing::{info, warn};

use super::contract::{AmContract, ClusterShape, ContractError, KeytabLogin, Mode, SECRET_ALIAS};
use super::{self as driver, delegation_tokens, resources, YarnDriverConfig};
use crate::cluster::{Cluster, ClusterConfig, LeaderServices};
use crate::dispatcher::JobDetails;
use crate::high_availability::JobStore;
use common::ids::{JobId, ResourceManagerId};

/// The AMRMToken's kind in the AM's credentials.
pub const AMRM_TOKEN_KIND: &str = "YARN_AM_RM_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum AmError {
    #[error("environment variable {0} is not set; `yarn-flink appmaster` runs inside a YARN AM container started by `yarn-flink submit`, which sets it")]
    MissingEnv(&'static str),
    #[error("environment variable {name} is malformed: {detail}")]
    Env { name: &'static str, detail: String },
    #[error(transparent)]
    Contract(#[from] ContractError),
    #[error("the cluster shape in the AM contract is unusable: {0}")]
    Shape(String),
    #[error(transparent)]
    Credentials(#[from] hadoop::credentials::CredentialsError),
    #[error("the credentials file {path} holds no {what}; {fix}")]
    MissingCredential { path: String, what: String, fix: &'static str },
    #[error("the Hadoop configuration is unusable: {0}; check HADOOP_CONF_DIR")]
    Conf(#[from] hadoop::conf::ConfError),
    #[error("cannot listen on {host}: {source}")]
    Listen { host: String, source: std::io::Error },
    #[error("registering with the ResourceManager scheduler at {addrs} failed: {source}; check yarn.resourcemanager.scheduler.address in HADOOP_CONF_DIR and the AMRMToken in the credentials")]
    Register { addrs: String, source: hadoop::Error },
    #[error("cannot start the cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("unregistering from the ResourceManager failed: {0}")]
    Finish(#[from] driver::YarnAmError),
    #[error("cannot create the work dir {path}: {source}")]
    WorkDir { path: String, source: std::io::Error },
}

/// What YARN's NodeManager put in the AM container's environment, and the
/// contract our client localized beside it.
#[derive(Clone, Debug)]
pub struct AmEnv {
    pub container_id: ContainerId,
    pub nm_host: String,
    pub nm_port: u16,
    pub nm_http_port: Option<u16>,
    pub local_dirs: Vec<PathBuf>,
    pub log_dirs: Vec<PathBuf>,
    pub token_file: PathBuf,
    /// When the client submitted (ms since the epoch), if the RM said.
    pub submit_time_ms: Option<i64>,
    pub mode: Mode,
    /// The bundle's link name (application mode).
    pub bundle: Option<String>,
    pub staging_dir: Option<String>,
    pub local_resources: BTreeMap<String, LocalResource>,
    pub cluster: ClusterShape,
    /// Passed on to TaskManagers (RUST_LOG).
    pub task_manager_env: BTreeMap<String, String>,
    /// `submit --keytab`: obtain fresh delegation tokens from this login.
    pub keytab_login: Option<KeytabLogin>,
    /// The application's user (`USER`, which the NodeManager sets).
    pub user: String,
    /// `submit --max-attempts`.
    pub max_attempts: u32,
}

impl AmEnv {
    /// `get` reads the environment; `contract` is the localized contract file
    /// (normally `./yarn-flink-am.json` in the container's working directory).
    pub fn from_env(get: impl Fn(&str) -> Option<String>, contract: &Path) -> Result<Self, AmError> {
        let var = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(AmError::MissingEnv(name));
        let bad = |name: &'static str, detail: String| AmError::Env { name, detail };
        let container_id: ContainerId =
            var("CONTAINER_ID")?.parse().map_err(|e: hadoop::yarn::ParseIdError| bad("CONTAINER_ID", e.to_string()))?;
        let port = |name: &'static str, v: String| v.parse::<u16>().map_err(|e| bad(name, format!("{v:?}: {e}")));
        let dirs = |name: &str| -> Vec<PathBuf> {
            get(name).map(|v| v.split(',').filter(|d| !d.is_empty()).map(PathBuf::from).collect()).unwrap_or_default()
        };
        let contract_path = contract;
        let contract = AmContract::read(contract_path)?;
        // Validated by `read`; the error path only keeps this total.
        let local_resources = contract.local_resources().map_err(|e| {
            AmError::Contract(ContractError::Malformed {
                path: contract_path.display().to_string(),
                detail: e.to_string(),
            })
        })?;
        let mut task_manager_env = BTreeMap::new();
        for name in ["RUST_LOG", "RUST_BACKTRACE"] {
            if let Some(v) = get(name) {
                task_manager_env.insert(name.to_string(), v);
            }
        }
        Ok(Self {
            container_id,
            nm_host: var("NM_HOST")?,
            nm_port: port("NM_PORT", var("NM_PORT")?)?,
            nm_http_port: match get("NM_HTTP_PORT") {
                Some(v) => Some(port("NM_HTTP_PORT", v)?),
                None => None,
            },
            local_dirs: dirs("LOCAL_DIRS"),
            log_dirs: dirs("LOG_DIRS"),
            token_file: PathBuf::from(var(ENV_HADOOP_TOKEN_FILE)?),
            submit_time_ms: get("APP_SUBMIT_TIME_ENV").and_then(|v| v.parse().ok()),
            mode: contract.mode,
            bundle: contract.bundle,
            staging_dir: contract.staging_dir,
            local_resources,
            cluster: contract.cluster,
            task_manager_env,
            keytab_login: contract.keytab_login,
            max_attempts: contract.max_attempts,
            user: get("USER").unwrap_or_default(),
        })
    }
}

/// What the AM takes from its credentials file.
pub struct AmCredentials {
    pub secret: AppSecret,
    pub amrm_token: Token,
    /// The token file TaskManager containers get: everything but the AMRMToken.
    pub for_containers: Vec<u8>,
}

pub fn read_credentials(path: &Path) -> Result<AmCredentials, AmError> {
    let creds = Credentials::read_file(path)?;
    let shown = path.display().to_string();
    let amrm_token = creds.token_of_kind(AMRM_TOKEN_KIND).cloned().ok_or_else(|| AmError::MissingCredential {
        path: shown.clone(),
        what: format!("{AMRM_TOKEN_KIND} token"),
        fix: "the ResourceManager adds it to every AM container; is this process running in one?",
    })?;
    let secret = secret_from(&creds, SECRET_ALIAS, &shown)?;
    let mut for_containers = creds.clone();
    for_containers.tokens.retain(|(_, t)| t.kind != AMRM_TOKEN_KIND);
    Ok(AmCredentials { secret, amrm_token, for_containers: for_containers.to_bytes() })
}

/// The application secret (hex) stored under `alias` in a Hadoop token file.
pub fn secret_from_token_file(path: &Path, alias: &str) -> Result<AppSecret, AmError> {
    let creds = Credentials::read_file(path)?;
    secret_from(&creds, alias, &path.display().to_string())
}

fn secret_from(creds: &Credentials, alias: &str, shown: &str) -> Result<AppSecret, AmError> {
    let missing = |what: String| AmError::MissingCredential {
        path: shown.to_string(),
        what,
        fix: "the submitting client puts the application secret there (yarn-flink submit does); submit again",
    };
    let (_, value) =
        creds.secrets.iter().find(|(a, _)| a == alias).ok_or_else(|| missing(format!("secret key {alias}")))?;
    std::str::from_utf8(value)
        .ok()
        .and_then(AppSecret::from_hex)
        .ok_or_else(|| missing(format!("usable secret key {alias} (it must be the hex application secret)")))
}

/// How the application ended, for YARN and for our exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmOutcome {
    pub final_status: FinalStatus,
    pub diagnostics: String,
    /// Whether we told the RM the application is over (false when the RM was
    /// lost: another attempt may still need the staged files).
    pub unregistered: bool,
}

/// Runs the ApplicationMaster until its job ends (application mode), the
/// session is stopped, `shutdown` resolves (SIGTERM), or the RM gives up on us.
/// The addresses of the web proxy in front of our tracking URL, as Hadoop's
/// `AmFilterInitializer` finds them in the AM's own configuration (the
/// node's). A wildcard RM host means a single-node cluster: this host. A host
/// that does not resolve is left out with a warning: the UI through the proxy
/// then answers 401, and the AM's own address still works with a token.
async fn web_proxies(conf: &HadoopConf, own_host: &str) -> Vec<std::net::IpAddr> {
    let hosts = match conf.web_proxy_hosts() {
        Ok(h) => h,
        Err(e) => {
            warn!("the web proxy's hosts are unknown, so the UI through it will answer 401: {e}");
            return Vec::new();
        }
    };
    let mut ips = Vec::new();
    for host in hosts {
        let host = if host == "0.0.0.0" || host == "::" { own_host.to_owned() } else { host };
        let found = tokio::net::lookup_host((host.as_str(), 0)).await;
        match found {
            Ok(found) => ips.extend(found.map(|a| a.ip().to_canonical())),
            Err(e) => warn!(%host, "cannot resolve a web proxy host; requests from it need a token: {e}"),
        }
    }
    ips.sort();
    ips.dedup();
    info!(?ips, "the web UI reads without a token from the web proxy");
    ips
}

pub async fn run(env: AmEnv, conf: &HadoopConf, shutdown: impl Future<Output = ()>) -> Result<AmOutcome, AmError> {
    let started = std::time::Instant::now();
    let creds = read_credentials(&env.token_file)?;
    let addrs: Vec<String> = conf.scheduler_addresses()?.into_iter().map(|e| e.address).collect();
    let listen = |host: String| async move {
        TcpListener::bind((host.as_str(), 0)).await.map_err(|source| AmError::Listen { host, source })
    };
    let rpc = listen(env.nm_host.clone()).await?;
    let rest = listen(env.nm_host.clone()).await?;
    let rpc_port = rpc.local_addr().map_err(|source| AmError::Listen { host: env.nm_host.clone(), source })?.port();
    let rest_port = rest.local_addr().map_err(|source| AmError::Listen { host: env.nm_host.clone(), source })?.port();
    let tracking_url = format!("http://{}:{rest_port}/", env.nm_host);

    let mut client = AmRmClient::new(AmRmConfig::new(addrs.clone()), creds.amrm_token.clone());
    let registration = client
        // The REST port as the "RPC port", as Flink's AM does: clients find the
        // API in the application report's amRPCAddress, directly, not through
        // the RM's web proxy (which drops Authorization and refuses POST).
        .register(&env.nm_host, i32::from(rest_port), &tracking_url)
        .await
        .map_err(|source| AmError::Register { addrs: addrs.join(","), source })?;
    info!(container = %env.container_id, queue = %registration.queue, max = %registration.maximum_capability,
        %tracking_url, "registered with the ResourceManager");

    let work_dir =
        std::env::current_dir().map_err(|source| AmError::WorkDir { path: ".".into(), source })?.join("am-work");
    std::fs::create_dir_all(&work_dir)
        .map_err(|source| AmError::WorkDir { path: work_dir.display().to_string(), source })?;
    let rm_config = env
        .cluster
        .resource_manager_config(Some(resources::max_worker_profile(&registration.maximum_capability)))
        .map_err(AmError::Shape)?;
    let config = ClusterConfig {
        resource_manager: rm_config,
        secret: creds.secret.clone(),
        rpc: RpcTimeouts::default(),
        work_dir: work_dir.clone(),
        bundle_limits: env.cluster.bundle_limits,
        web_proxies: web_proxies(conf, &env.nm_host).await,
    };
    let mut driver_config =
        YarnDriverConfig::new(format!("{}:{rpc_port}", env.nm_host), registration.maximum_capability.clone());
    driver_config.local_resources = env.local_resources.clone();
    let (launch_tokens, tokens_rx) = tokio::sync::watch::channel(Arc::new(creds.for_containers.clone()));
    driver_config.tokens = tokens_rx;
    driver_config.env = env.task_manager_env.clone();
    driver_config.user = env.user.clone();
    if conf.http_policy().is_ok_and(|p| p == hadoop::conf::HttpPolicy::HttpsOnly) {
        driver_config.nm_web_scheme = "https";
    }
    // More than one attempt: this attempt's TaskManagers, and the earlier
    // attempts' it takes over, follow the AM through a leader file in the
    // staging dir; the job's result and commit are kept beside it.
    let rm_id = ResourceManagerId::random();
    let ha_dir = env.staging_dir.clone().filter(|_| env.max_attempts > 1);
    let leader_file = ha_dir.as_deref().map(common::ha::leader_file::location);
    if let Some(lf) = &leader_file {
        driver_config.env.insert(common::ha::ENV_LEADER_FILE.into(), lf.clone());
    }
    driver_config.adopt = registration.containers_from_previous_attempts.clone();
    let adopted: Vec<common::ids::ResourceId> =
        driver_config.adopt.iter().map(|c| common::ids::ResourceId::new(c.id.to_string())).collect();
    let attempt = env.container_id.attempt.attempt;
    if !driver_config.adopt.is_empty() {
        info!(attempt, containers = driver_config.adopt.len(), "taking over the containers of the earlier attempt");
    }
    let store = ha_dir.as_deref().map(|d| JobStore::unfenced(&format!("{}/ha", d.trim_end_matches('/'))));
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let (yarn_driver, yarn) = driver::start(client, NmClient::default(), driver_config, events_tx);
    let leader = LeaderServices { rm_id, store };
    let cluster = Cluster::start_as(config, rpc, Some(rest), yarn_driver, events, Some(leader)).await?;
    if let Some(lf) = &leader_file {
        let info = common::ha::LeaderInfo {
            session_id: rm_id.0,
            rpc_address: format!("{}:{rpc_port}", env.nm_host),
            rest_address: Some(format!("{}:{rest_port}", env.nm_host)),
        };
        match common::ha::leader_file::write(lf, &info).await {
            Ok(()) => info!(attempt, leader_file = %lf, "published this attempt as the TaskManagers' leader"),
            Err(e) => {
                warn!(error = %e, "cannot write the leader file; TaskManagers of an earlier attempt cannot follow")
            }
        }
    }
    if !adopted.is_empty() {
        // Flink's resourcemanager.previous-worker.recovery.timeout: the job waits
        // for the TaskManagers it takes over, or asks for new ones meanwhile.
        wait_for_task_managers(&cluster, &adopted, PREVIOUS_WORKER_RECOVERY_TIMEOUT).await;
    }
    info!(elapsed_ms = started.elapsed().as_millis() as u64, mode = ?env.mode, "ApplicationMaster up");
    let renewing = tokio_util::sync::CancellationToken::new();
    if let Some(k) = &env.keytab_login {
        info!(principal = %k.principal, "obtaining fresh delegation tokens from the shipped keytab");
        let renewal = delegation_tokens::Renewal {
            principal: k.principal.clone(),
            keytab: PathBuf::from(&k.keytab),
            conf: conf.clone(),
            token_file: env.token_file.clone(),
            ratio: delegation_tokens::RATIO,
        };
        let rm = cluster.resource_manager().clone();
        let hand_out = move |tokens: Vec<u8>| rm.update_delegation_tokens(tokens);
        tokio::spawn(delegation_tokens::run(renewal, launch_tokens, hand_out, renewing.clone()));
    }

    tokio::pin!(shutdown);
    let outcome = match env.mode {
        Mode::Application => {
            let link = env.bundle.clone().unwrap_or_default();
            // The same id in every attempt: a later attempt finds the job's result or commit.
            let app = env.container_id.attempt.application;
            let job_id = JobId::from_u128(((app.cluster_timestamp as u128) << 32) | app.id as u32 as u128);
            run_application(&cluster, &yarn, &link, &work_dir, job_id, &mut shutdown).await
        }
        Mode::Session => {
            tokio::select! {
                _ = cluster.stopped() => AmOutcome { final_status: FinalStatus::Succeeded, diagnostics: "the session was stopped (DELETE /cluster)".into(), unregistered: false },
                _ = yarn.lost() => lost(&yarn),
                _ = &mut shutdown => killed(),
            }
        }
    };
    renewing.cancel();
    cluster.shutdown().await;
    let mut outcome = outcome;
    if yarn.lost_reason().is_none() {
        yarn.finish(outcome.final_status, &outcome.diagnostics, Some(&tracking_url)).await?;
        info!(status = ?outcome.final_status, "unregistered from the ResourceManager");
        outcome.unregistered = true;
    }
    Ok(outcome)
}

/// How long a later attempt waits for the TaskManagers it took over to register.
const PREVIOUS_WORKER_RECOVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

async fn wait_for_task_managers(cluster: &Cluster, ids: &[common::ids::ResourceId], timeout: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let registered = cluster.resource_manager().overview().await.map(|o| o.addresses).unwrap_or_default();
        let missing = ids.iter().filter(|id| !registered.contains_key(*id)).count();
        if missing == 0 {
            info!(task_managers = ids.len(), "the earlier attempt's TaskManagers registered");
            return;
        }
        if tokio::time::Instant::now() > deadline {
            warn!(missing, ?timeout, "not every TaskManager of the earlier attempt registered; going on without");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn lost(yarn: &driver::YarnAm) -> AmOutcome {
    AmOutcome {
        final_status: FinalStatus::Failed,
        diagnostics: yarn.lost_reason().unwrap_or_default(),
        unregistered: false,
    }
}

fn killed() -> AmOutcome {
    AmOutcome {
        final_status: FinalStatus::Killed,
        diagnostics: "the ApplicationMaster was stopped (SIGTERM)".into(),
        unregistered: false,
    }
}

async fn run_application(
    cluster: &Cluster,
    yarn: &driver::YarnAm,
    link: &str,
    work_dir: &Path,
    job_id: JobId,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> AmOutcome {
    let failed =
        |diagnostics: String| AmOutcome { final_status: FinalStatus::Failed, diagnostics, unregistered: false };
    // A directory: the NodeManager unpacked the ARCHIVE, which the client had
    // checked within the limits before uploading it. Nothing is unpacked here.
    let bundle = match Bundle::load(Path::new(link), work_dir.join("bundle"), &BundleLimits::default()) {
        Ok(b) => b,
        Err(e) => return failed(format!("the job bundle {link:?} cannot be loaded: {e}")),
    };
    // A later attempt: an ended job is not run again, a begun commit is finished.
    if let Some(store) = cluster.dispatcher.store() {
        match store.result(job_id).await {
            Ok(Some(d)) => {
                info!(%job_id, state = %d.state, "the job ended in an earlier attempt");
                return outcome(&d);
            }
            Ok(None) => {}
            Err(e) => return failed(format!("cannot read the job's result from the staging dir: {e}")),
        }
        match store.commit(job_id).await {
            Ok(Some(commit)) => {
                info!(%job_id, "finishing the commit an earlier attempt began");
                return match crate::high_availability::finish_commit(job_id, commit.sinks).await {
                    Ok(()) => AmOutcome {
                        final_status: FinalStatus::Succeeded,
                        diagnostics: format!("job {job_id} finished (its commit completed by a later attempt)"),
                        unregistered: false,
                    },
                    Err(e) => failed(format!("committing the output failed: {e}")),
                };
            }
            Ok(None) => {}
            Err(e) => return failed(format!("cannot read the job's commit record from the staging dir: {e}")),
        }
    }
    if let Err(e) = cluster.dispatcher.resume(job_id, bundle, None) {
        return failed(format!("the job could not be submitted: {e}"));
    }
    info!(%job_id, "job submitted");
    let mut details = match cluster.dispatcher.watch(job_id) {
        Ok(d) => d,
        Err(e) => return failed(e.to_string()),
    };
    let last = loop {
        let d = details.borrow_and_update().clone();
        yarn.progress.set(progress(&d));
        if d.is_terminal() {
            break d;
        }
        tokio::select! {
            r = details.changed() => if r.is_err() { break details.borrow().clone() },
            _ = yarn.lost() => {
                let _ = cluster.dispatcher.cancel(job_id);
                return lost(yarn);
            }
            _ = &mut *shutdown => {
                let _ = cluster.dispatcher.cancel(job_id);
                return killed();
            }
        }
    };
    info!(%job_id, state = %last.state, "job ended");
    outcome(&last)
}

/// What the AM tells YARN about a job that ended.
fn outcome(last: &JobDetails) -> AmOutcome {
    let failed =
        |diagnostics: String| AmOutcome { final_status: FinalStatus::Failed, diagnostics, unregistered: false };
    match last.state.as_str() {
        "FINISHED" => AmOutcome {
            final_status: FinalStatus::Succeeded,
            diagnostics: format!("job {} ({}) finished", last.jid, last.name),
            unregistered: false,
        },
        "CANCELED" => AmOutcome {
            final_status: FinalStatus::Killed,
            diagnostics: format!("job {} was cancelled", last.jid),
            unregistered: false,
        },
        state => {
            let error = last.error.clone().unwrap_or_else(|| "no error was recorded".into());
            warn!(%state, %error, "job did not finish");
            failed(format!("job {} ({}) {state}: {error}", last.jid, last.name))
        }
    }
}

/// Finished subtasks over all subtasks.
fn progress(d: &JobDetails) -> f32 {
    let total: u32 = d.vertices.iter().map(|v| v.parallelism).sum();
    let finished: u32 = d.vertices.iter().map(|v| v.tasks.get("FINISHED").copied().unwrap_or(0)).sum();
    if d.is_terminal() {
        1.0
    } else if total == 0 {
        0.0
    } else {
        finished as f32 / total as f32
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn base_env() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("CONTAINER_ID", "container_1795750141222_0001_01_000001".to_string()),
            ("NM_HOST", "127.0.0.1".into()),
            ("NM_PORT", "45454".into()),
            ("HADOOP_TOKEN_FILE_LOCATION", "/tmp/container_tokens".into()),
        ])
    }

    fn write_contract(dir: &Path, mode: Mode) -> PathBuf {
        let contract = AmContract {
            version: super::super::contract::CONTRACT_VERSION,
            mode,
            bundle: (mode == Mode::Application).then(|| "bundle".to_string()),
            staging_dir: None,
            local_resources: BTreeMap::from([(
                "yarn-flink".to_string(),
                super::super::contract::LocalResourceEntry {
                    url: "file:///tmp/yf".into(),
                    size: 1,
                    timestamp: 2,
                    kind: "FILE".into(),
                    visibility: "APPLICATION".into(),
                },
            )]),
            cluster: ClusterShape { tm_slots: 2, idle_timeout: Duration::from_secs(5), ..ClusterShape::default() },
            keytab_login: None,
            max_attempts: 1,
        };
        let path = dir.join("yarn-flink-am.json");
        std::fs::write(&path, contract.to_json()).unwrap();
        path
    }

    #[test]
    fn the_environment_and_contract_are_read_and_missing_pieces_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let contract = write_contract(dir.path(), Mode::Application);
        let env = base_env();
        let am = AmEnv::from_env(|k| env.get(k).cloned(), &contract).unwrap();
        assert_eq!(am.container_id.to_string(), "container_1795750141222_0001_01_000001");
        assert_eq!(am.mode, Mode::Application);
        assert_eq!(am.bundle.as_deref(), Some("bundle"));
        assert_eq!(am.cluster.tm_slots, 2);
        assert_eq!(am.cluster.idle_timeout, Duration::from_secs(5));
        assert_eq!(am.cluster.slot_memory, "512m");
        assert!(am.local_resources.contains_key("yarn-flink"));
        for name in ["CONTAINER_ID", "NM_HOST", "HADOOP_TOKEN_FILE_LOCATION"] {
            let mut e = base_env();
            e.remove(name);
            let err = AmEnv::from_env(|k| e.get(k).cloned(), &contract).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        std::fs::create_dir_all(dir.path().join("s")).unwrap();
        let session = write_contract(&dir.path().join("s"), Mode::Session);
        assert_eq!(AmEnv::from_env(|k| env.get(k).cloned(), &session).unwrap().mode, Mode::Session);
        let err = AmEnv::from_env(|k| env.get(k).cloned(), &dir.path().join("absent")).unwrap_err().to_string();
        assert!(err.contains("absent") && err.contains("yarn-flink submit"), "{err}");
    }

    #[test]
    fn credentials_give_the_secret_and_lose_the_amrm_token_for_containers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        let secret = AppSecret::generate();
        let amrm =
            Token { identifier: vec![1], password: vec![2], kind: AMRM_TOKEN_KIND.into(), service: String::new() };
        let hdfs = Token {
            identifier: vec![3],
            password: vec![4],
            kind: "HDFS_DELEGATION_TOKEN".into(),
            service: "nn".into(),
        };
        let creds = Credentials {
            tokens: vec![(String::new(), amrm.clone()), ("nn".into(), hdfs.clone())],
            secrets: vec![(SECRET_ALIAS.into(), secret.to_hex().into_bytes())],
            ..Default::default()
        };
        creds.write_file(&path).unwrap();
        let read = read_credentials(&path).unwrap();
        assert_eq!(read.amrm_token, amrm);
        assert_eq!(read.secret.to_hex(), secret.to_hex());
        let for_tms = Credentials::from_bytes(&read.for_containers).unwrap();
        assert_eq!(for_tms.tokens, vec![("nn".to_string(), hdfs)]);
        assert_eq!(secret_from_token_file(&path, SECRET_ALIAS).unwrap().to_hex(), secret.to_hex());

        let no_secret = Credentials { tokens: vec![(String::new(), amrm)], ..Default::default() };
        no_secret.write_file(&path).unwrap();
        let err = read_credentials(&path).err().unwrap().to_string();
        assert!(err.contains(SECRET_ALIAS) && err.contains("yarn-flink submit"), "{err}");
        let err = read_credentials(&dir.path().join("absent")).err().unwrap().to_string();
        assert!(err.contains("absent"), "{err}");
    }
}
