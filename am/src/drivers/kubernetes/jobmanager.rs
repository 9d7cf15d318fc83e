//! The JobManager pod: what `yarn-flink kubernetes-jobmanager` runs. It reads
//! the [contract](super::contract) mounted from the cluster's ConfigMap and
//! the secret mounted from its Secret, starts the cluster with the
//! [`kubernetes`](super) driver (TaskManager pods owned by its Deployment),
//! runs the bundle's job (application mode) or takes jobs over REST
//! (session mode), and reports in the status ConfigMap. When an
//! application's job has ended and the client has read the result (or the
//! linger time is over), it deletes its own Deployment: the garbage
//! collector takes every other object of the cluster.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::jobspec::{Bundle, BundleLimits};
use common::protocol::BundleBlob;
use common::rpc::{AppSecret, RpcTimeouts};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ObjectMeta, PostParams, PropagationPolicy};
use kube::Api;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::contract::{self, JobStatus, KubeContract, CONTRACT_VERSION};
use super::pod::{PodTemplate, SECRET_KEY, SECRET_MOUNT_DIR};
use super::{KubernetesDriver, KubernetesDriverConfig};
use crate::blob_store::BlobStore;
use crate::cluster::{Cluster, ClusterConfig};
use crate::drivers::yarn::contract::Mode;

#[derive(Debug, thiserror::Error)]
pub enum JobManagerError {
    #[error("environment variable {0} is not set; `yarn-flink kubernetes-jobmanager` runs in the JobManager pod that `yarn-flink submit --target kubernetes` creates, which sets it")]
    MissingEnv(&'static str),
    #[error("cannot read the contract {path}: {detail}")]
    Contract { path: String, detail: String },
    #[error("the contract's version is {0}, newer than this binary's {CONTRACT_VERSION}: run the same yarn-flink image as the client")]
    Version(u32),
    #[error("cannot read the application secret: {0}")]
    Secret(#[from] common::rpc::auth::SecretError),
    #[error("the cluster shape in the contract is unusable: {0}")]
    Shape(String),
    #[error("no Kubernetes client: {0}; in a pod this is the service account (automountServiceAccountToken), elsewhere KUBECONFIG")]
    Client(String),
    #[error("cannot read the JobManager's own Deployment {name} (its uid owns every TaskManager pod): {detail}; grant the service account `get` on deployments (deploy/kubernetes/rbac.yaml)")]
    Owner { name: String, detail: String },
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: std::io::Error },
    #[error("cannot start the cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("cannot create the work dir {path}: {source}")]
    WorkDir { path: String, source: std::io::Error },
}

/// What the pod's environment says.
#[derive(Clone, Debug)]
pub struct JobManagerEnv {
    pub cluster_id: String,
    pub namespace: String,
    pub pod_ip: String,
    pub contract: PathBuf,
    pub secret_file: PathBuf,
}

impl JobManagerEnv {
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Self, JobManagerError> {
        let need = |k: &'static str| get(k).filter(|v| !v.is_empty()).ok_or(JobManagerError::MissingEnv(k));
        Ok(JobManagerEnv {
            cluster_id: need(contract::ENV_CLUSTER_ID)?,
            namespace: need(contract::ENV_NAMESPACE)?,
            pod_ip: need(contract::ENV_POD_IP)?,
            contract: get(contract::ENV_CONTRACT)
                .map_or_else(|| Path::new(contract::CONFIG_MOUNT_DIR).join(contract::CONTRACT_KEY), PathBuf::from),
            secret_file: get(common::launch::ENV_SECRET_FILE)
                .map_or_else(|| Path::new(SECRET_MOUNT_DIR).join(SECRET_KEY), PathBuf::from),
        })
    }
}

pub fn read_contract(path: &Path) -> Result<KubeContract, JobManagerError> {
    let bad = |detail: String| JobManagerError::Contract { path: path.display().to_string(), detail };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let version = serde_json::from_str::<serde_json::Value>(&text).map_err(|e| bad(e.to_string()))?["version"]
        .as_u64()
        .unwrap_or(0);
    if version > u64::from(CONTRACT_VERSION) {
        return Err(JobManagerError::Version(u32::try_from(version).unwrap_or(u32::MAX)));
    }
    serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
}

/// Writes the status ConfigMap, owned by the Deployment.
#[derive(Clone)]
struct StatusWriter {
    api: Api<ConfigMap>,
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    owner: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
}

impl StatusWriter {
    async fn write(&self, status: &JobStatus) {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(self.labels.clone()),
                owner_references: Some(self.owner.clone()),
                ..Default::default()
            },
            data: Some(status.to_data()),
            ..Default::default()
        };
        let result = match self.api.replace(&self.name, &PostParams::default(), &cm).await {
            Err(kube::Error::Api(e)) if e.code == 404 => self.api.create(&PostParams::default(), &cm).await,
            other => other,
        };
        if let Err(e) = result {
            warn!(configmap = %self.name, "cannot write the job status: {e}");
        }
    }

    async fn read(&self) -> Option<std::collections::BTreeMap<String, String>> {
        self.api.get(&self.name).await.ok()?.data
    }
}

/// Runs the JobManager until its job ends and is collected (application),
/// the session is stopped, or `stop` is cancelled (SIGTERM: the Deployment
/// was deleted).
pub async fn run(env: JobManagerEnv, stop: CancellationToken) -> Result<(), JobManagerError> {
    let started = std::time::Instant::now();
    let contract = read_contract(&env.contract)?;
    let secret = AppSecret::read_from(&env.secret_file)?;
    let client = kube::Client::try_default().await.map_err(|e| JobManagerError::Client(e.to_string()))?;
    let deployment_name = contract::deployment_name(&env.cluster_id);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &env.namespace);
    let own = deployments
        .get(&deployment_name)
        .await
        .map_err(|e| JobManagerError::Owner { name: deployment_name.clone(), detail: e.to_string() })?;
    let uid = own.metadata.uid.clone().unwrap_or_default();
    let owner = vec![super::pod::owned_by_deployment(&deployment_name, &uid)];
    let status = StatusWriter {
        api: Api::namespaced(client.clone(), &env.namespace),
        name: contract::status_name(&env.cluster_id),
        labels: contract::labels(&env.cluster_id, "jobmanager"),
        owner,
    };

    let listen = |port: u16| {
        let address = format!("{}:{port}", env.pod_ip);
        async move { TcpListener::bind(&address).await.map_err(|source| JobManagerError::Listen { address, source }) }
    };
    let rpc = listen(contract.rpc_port).await?;
    let rest = listen(contract.rest_port).await?;
    let rpc_address = rpc.local_addr().map_err(|e| JobManagerError::Cluster(e.into()))?;
    let rest_address = rest.local_addr().map_err(|e| JobManagerError::Cluster(e.into()))?;
    let work_dir = std::env::temp_dir().join(format!("yarn-flink-jm-{}", env.cluster_id));
    std::fs::create_dir_all(&work_dir)
        .map_err(|source| JobManagerError::WorkDir { path: work_dir.display().to_string(), source })?;
    let rm_config = contract.cluster.resource_manager_config(None).map_err(JobManagerError::Shape)?;
    let config = ClusterConfig {
        resource_manager: rm_config,
        secret,
        rpc: RpcTimeouts::default(),
        work_dir: work_dir.clone(),
        bundle_limits: contract.cluster.bundle_limits,
        web_proxies: Vec::new(),
    };
    let driver_config = KubernetesDriverConfig {
        namespace: env.namespace.clone(),
        template: PodTemplate {
            cluster_id: env.cluster_id.clone(),
            image: contract.image.clone(),
            image_pull_policy: contract.image_pull_policy.clone(),
            service_account: contract.service_account.clone(),
            owner: Some((deployment_name.clone(), uid)),
            secret_name: contract::secret_name(&env.cluster_id),
            rm_address: rpc_address.to_string(),
            gpu_resource: contract.gpu_resource.clone(),
            env: contract.task_manager_env.clone().into_iter().collect(),
            host_paths: contract.host_paths.clone(),
        },
        // A restarted JobManager pod must not collide with its predecessor's pods.
        attempt: attempt(),
        pending_timeout: contract.pending_timeout,
        stop_grace: Duration::from_secs(30),
    };
    let (events_tx, events) = tokio::sync::mpsc::unbounded_channel();
    let driver = KubernetesDriver::new(client.clone(), driver_config, events_tx);
    let cluster = Cluster::start(config, rpc, Some(rest), driver, events).await?;
    let rest_text = rest_address.to_string();
    info!(elapsed_ms = started.elapsed().as_millis() as u64, mode = ?contract.mode, rpc = %rpc_address,
        rest = %rest_text, "JobManager up");

    let mut shutdown = Box::pin(stop.clone().cancelled_owned());
    match contract.mode {
        Mode::Application => {
            let bundle = contract.bundle.clone().unwrap_or_default();
            let limits = contract.cluster.bundle_limits;
            let uploads =
                Uploads { api: Api::namespaced(client.clone(), &env.namespace), cluster_id: env.cluster_id.clone() };
            let source =
                BundleSource { path: &bundle, work_dir: &work_dir, limits, rest: &rest_text, uploads: &uploads };
            let ended = run_application(&cluster, &source, &status, &mut shutdown).await;
            if ended {
                // The client reads the result and deletes the Deployment; a
                // detached submit has no client waiting, so after the linger
                // time the JobManager deletes it itself.
                let collected = async {
                    let deadline = tokio::time::Instant::now() + contract.linger;
                    while tokio::time::Instant::now() < deadline {
                        if status.read().await.is_some_and(|d| d.contains_key("collected")) {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                };
                tokio::select! {
                    _ = collected => {}
                    _ = &mut shutdown => {}
                }
            }
        }
        Mode::Session => {
            status
                .write(&JobStatus { state: "SESSION".into(), rest: Some(rest_text.clone()), ..Default::default() })
                .await;
            tokio::select! {
                _ = cluster.stopped() => {}
                _ = &mut shutdown => {}
            }
        }
    }
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(&work_dir);
    // Deleting our own Deployment ends this pod too (SIGTERM), and the
    // garbage collector takes the Secret, ConfigMaps, Service and any pod left.
    let background = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    match deployments.delete(&deployment_name, &background).await {
        Ok(_) => info!(deployment = %deployment_name, "deleted the cluster's Deployment"),
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => warn!(deployment = %deployment_name, "cannot delete the cluster's Deployment: {e}"),
    }
    // A Deployment's pod that exits is restarted: wait for the garbage
    // collector's SIGTERM instead.
    let _ = tokio::time::timeout(Duration::from_secs(30), stop.cancelled()).await;
    Ok(())
}

/// A number that differs between JobManager pods of one Deployment: the
/// seconds since the epoch at start, which only grow.
fn attempt() -> u32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    u32::try_from(secs % 1_000_000).unwrap_or(1)
}

/// The application's bundle, loaded. A directory in the image is submitted
/// as it is: the TaskManagers run the same image and read the same path. An
/// archive (a `.tar.gz` in the image, or any `hdfs://` bundle) goes into
/// the blob store, and the TaskManagers fetch it from this JobManager, as
/// they fetch a session's uploads.
async fn prepare_bundle(src: &BundleSource<'_>) -> Result<(Bundle, Option<BundleBlob>), String> {
    let BundleSource { path: source, work_dir, limits, rest, uploads } = *src;
    let cannot =
        |e: &dyn std::fmt::Display| format!("the job bundle {source:?} cannot be loaded in the JobManager pod: {e}");
    let unpack_to = work_dir.join("bundle");
    let uploaded = source.strip_prefix(contract::UPLOADED_PREFIX);
    let archive =
        uploaded.is_some() || common::hdfs::is_hdfs(source) || source.ends_with(".tar.gz") || source.ends_with(".tgz");
    if !archive {
        let path = PathBuf::from(source);
        let bundle = tokio::task::spawn_blocking(move || Bundle::load(&path, &unpack_to, &limits))
            .await
            .map_err(|e| cannot(&e))?
            .map_err(|e| format!("{}; a local:// bundle is a path inside the image", cannot(&e)))?;
        return Ok((bundle, None));
    }
    let blobs = BlobStore::in_work_dir(work_dir);
    std::fs::create_dir_all(blobs.dir()).map_err(|e| cannot(&e))?;
    let tmp = tempfile::Builder::new().prefix(".bundle-").tempfile_in(blobs.dir()).map_err(|e| cannot(&e))?;
    // No bundle within the limits compresses to more than its unpacked limit.
    let max = limits.max_bytes;
    let sha256 = if let Some(expected) = uploaded {
        uploads.fetch(expected, tmp.path()).await.map_err(|e| cannot(&e))?
    } else if common::hdfs::is_hdfs(source) {
        download(source, tmp.path(), max).await.map_err(|e| cannot(&e))?
    } else {
        let (from, to) = (PathBuf::from(source), tmp.path().to_owned());
        tokio::task::spawn_blocking(move || copy_hashed(&from, &to, max))
            .await
            .map_err(|e| cannot(&e))?
            .map_err(|e| format!("{}; a local:// bundle is a path inside the image", cannot(&e)))?
    };
    let path = blobs.adopt(tmp, &sha256).map_err(|e| cannot(&e))?;
    let bundle = tokio::task::spawn_blocking(move || Bundle::load(&path, &unpack_to, &limits))
        .await
        .map_err(|e| cannot(&e))?
        .map_err(|e| cannot(&e))?;
    let url = format!("http://{rest}/blobs/{sha256}");
    Ok((bundle, Some(BundleBlob { sha256, url, limits })))
}

/// Where the application's bundle comes from, and what it may be.
#[derive(Clone, Copy)]
struct BundleSource<'a> {
    path: &'a str,
    work_dir: &'a Path,
    limits: BundleLimits,
    /// This JobManager's REST address, where TaskManagers fetch blobs.
    rest: &'a str,
    uploads: &'a Uploads,
}

/// The bundle ConfigMap the client wrote.
struct Uploads {
    api: Api<ConfigMap>,
    cluster_id: String,
}

impl Uploads {
    /// Writes the uploaded archive to `to` if its SHA-256 is `expected` (the
    /// contract's, which the client wrote): the bytes are the ones it packed.
    async fn fetch(&self, expected: &str, to: &Path) -> Result<String, String> {
        use sha2::Digest;
        let name = contract::bundle_name(&self.cluster_id);
        let cm = self.api.get(&name).await.map_err(|e| format!("cannot read the ConfigMap {name}: {e}"))?;
        let bytes = cm
            .binary_data
            .and_then(|mut d| d.remove(contract::BUNDLE_KEY))
            .ok_or_else(|| format!("the ConfigMap {name} has no binaryData {:?}", contract::BUNDLE_KEY))?
            .0;
        let actual = hex::encode(sha2::Sha256::digest(&bytes));
        if actual != expected {
            return Err(format!(
                "the ConfigMap {name} holds an archive whose SHA-256 is {actual}, not the {expected} submitted"
            ));
        }
        std::fs::write(to, &bytes).map_err(|e| format!("{}: {e}", to.display()))?;
        Ok(actual)
    }
}

/// Copies a file, at most `max` bytes, and returns its SHA-256.
fn copy_hashed(from: &Path, to: &Path, max: u64) -> Result<String, String> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut src = std::fs::File::open(from).map_err(|e| format!("{}: {e}", from.display()))?;
    let mut dst = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let (mut hash, mut total, mut buf) = (sha2::Sha256::new(), 0u64, vec![0u8; 1 << 16]);
    loop {
        let n = src.read(&mut buf).map_err(|e| format!("{}: {e}", from.display()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max {
            return Err(format!("the archive is larger than the bundle limit of {max} bytes (--bundle-max-size)"));
        }
        hash.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(hex::encode(hash.finalize()))
}

/// Downloads an `hdfs://` archive, at most `max` bytes, and returns its SHA-256.
async fn download(url: &str, to: &Path, max: u64) -> Result<String, String> {
    use sha2::Digest;
    use std::io::Write;
    let (client, path) = common::hdfs::connect_async(url).await.map_err(|e| e.to_string())?;
    let size = match common::hdfs::list(&client, &path, None).await.map_err(|e| e.to_string())?.as_slice() {
        [(p, size)] if *p == path || p.ends_with(&path) => *size,
        [] => return Err(format!("{url} does not exist")),
        _ => return Err(format!("{url} is a directory; give a .tar.gz of the bundle")),
    };
    if size > max {
        return Err(format!("{url} is {size} bytes, more than the bundle limit of {max} (--bundle-max-size)"));
    }
    let mut dst = std::fs::File::create(to).map_err(|e| format!("{}: {e}", to.display()))?;
    let (mut hash, mut offset) = (sha2::Sha256::new(), 0u64);
    while offset < size {
        let chunk = common::hdfs::read_range(&client, &path, offset, 4 << 20).await.map_err(|e| e.to_string())?;
        if chunk.is_empty() {
            break;
        }
        hash.update(&chunk);
        dst.write_all(&chunk).map_err(|e| format!("{}: {e}", to.display()))?;
        offset += chunk.len() as u64;
    }
    Ok(hex::encode(hash.finalize()))
}

/// Runs the job and reports its states; true once it ended (and the final
/// state was written), false when stopped first.
async fn run_application(
    cluster: &Cluster,
    source: &BundleSource<'_>,
    status: &StatusWriter,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> bool {
    let rest = source.rest;
    let report = |state: &str, job: Option<String>, error: Option<String>| JobStatus {
        state: state.into(),
        job_id: job,
        error,
        rest: Some(rest.to_owned()),
    };
    status.write(&report("STARTING", None, None)).await;
    let prepared = match prepare_bundle(source).await {
        Ok(p) => p,
        Err(error) => {
            status.write(&report("FAILED", None, Some(error))).await;
            return true;
        }
    };
    let (bundle, blob) = prepared;
    let job_id = match cluster.dispatcher.submit_uploaded(bundle, blob) {
        Ok(id) => id,
        Err(e) => {
            status.write(&report("FAILED", None, Some(format!("the job could not be submitted: {e}")))).await;
            return true;
        }
    };
    info!(%job_id, "job submitted");
    let Ok(mut details) = cluster.dispatcher.watch(job_id) else {
        status.write(&report("FAILED", Some(job_id.to_string()), Some("the job vanished".into()))).await;
        return true;
    };
    let mut last_state = String::new();
    loop {
        let d = details.borrow_and_update().clone();
        if d.state != last_state || d.is_terminal() {
            last_state = d.state.clone();
            status.write(&report(&d.state, Some(d.jid.clone()), d.error.clone())).await;
        }
        if d.is_terminal() {
            info!(%job_id, state = %d.state, "job ended");
            return true;
        }
        tokio::select! {
            r = details.changed() => if r.is_err() { return true },
            _ = &mut *shutdown => {
                let _ = cluster.dispatcher.cancel(job_id);
                return false;
            }
        }
    }
}
