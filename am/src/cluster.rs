//! Puts the AM side together: one gRPC server (the ResourceManager's and the
//! JobMasters' endpoints), the ResourceManager task with its driver, the
//! Dispatcher, and optionally the REST API. Used by the local `run` and
//! `session` commands and by the YARN ApplicationMaster alike.

use std::net::SocketAddr;
use std::path::PathBuf;

use common::jobspec::BundleLimits;
use common::rpc::{pb, AppSecret, AuthInterceptor, Channels, RpcTimeouts};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use common::ids::ResourceManagerId;

use crate::dispatcher::Dispatcher;
use crate::high_availability::{recover_jobs, JobStore, RecoveryContext};
use crate::job_master::{JobMasterConfig, JobMasterRegistry, JobMasterService};
use crate::resource_manager::driver::{DriverEvent, ResourceManagerDriver};
use crate::resource_manager::service::ResourceManagerService;
use crate::resource_manager::{self, ResourceManagerConfig, ResourceManagerHandle};

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub resource_manager: ResourceManagerConfig,
    pub secret: AppSecret,
    pub rpc: RpcTimeouts,
    /// Scratch space: unpacked bundles, job work dirs.
    pub work_dir: PathBuf,
    /// What a bundle submitted over REST may unpack to (and be uploaded as).
    pub bundle_limits: BundleLimits,
    /// Hosts whose requests may read the REST API without a token: YARN's
    /// web proxy (see `rest::RestConfig::web_proxies`). Empty elsewhere.
    pub web_proxies: Vec<std::net::IpAddr>,
}

/// What a cluster gets from being elected (HA).
pub struct LeaderServices {
    /// The leader session id: the ResourceManager's fencing token.
    pub rm_id: ResourceManagerId,
    /// Where jobs are kept for the next leader (none: they are not).
    pub store: Option<JobStore>,
}

pub struct Cluster {
    pub rpc_address: SocketAddr,
    pub rest_address: Option<SocketAddr>,
    pub dispatcher: Dispatcher,
    rm: ResourceManagerHandle,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot read the address of the listener: {0}")]
    Io(#[from] std::io::Error),
}

impl Cluster {
    /// The ResourceManager, e.g. to hand fresh delegation tokens to every
    /// TaskExecutor (`drivers::yarn::delegation_tokens`).
    pub fn resource_manager(&self) -> &ResourceManagerHandle {
        &self.rm
    }

    /// `rpc_listener` must be bound before the driver is built, since the
    /// driver tells workers where the ResourceManager listens.
    pub async fn start<D: ResourceManagerDriver>(
        config: ClusterConfig,
        rpc_listener: TcpListener,
        rest_listener: Option<TcpListener>,
        driver: D,
        driver_events: mpsc::UnboundedReceiver<DriverEvent>,
    ) -> Result<Cluster, ClusterError> {
        Self::start_as(config, rpc_listener, rest_listener, driver, driver_events, None).await
    }

    /// Like [`Cluster::start`], as the elected leader of an HA cluster: the
    /// ResourceManager's id is the leader session id, every job is kept in the
    /// store, and the jobs earlier leaders accepted are recovered.
    pub async fn start_as<D: ResourceManagerDriver>(
        config: ClusterConfig,
        rpc_listener: TcpListener,
        rest_listener: Option<TcpListener>,
        driver: D,
        driver_events: mpsc::UnboundedReceiver<DriverEvent>,
        leader: Option<LeaderServices>,
    ) -> Result<Cluster, ClusterError> {
        let rpc_address = rpc_listener.local_addr()?;
        let rest_address = match &rest_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let stop = CancellationToken::new();
        // One channel per TaskExecutor for the whole AM.
        let channels = Channels::new(config.secret.clone(), config.rpc);
        let rm_id = leader.as_ref().map_or_else(ResourceManagerId::random, |l| l.rm_id);
        let (rm, rm_task) =
            resource_manager::spawn(config.resource_manager.clone(), rm_id, channels.clone(), driver, driver_events);
        let registry = JobMasterRegistry::default();
        let jm_config = JobMasterConfig {
            address: rpc_address.to_string(),
            channels,
            heartbeat_interval: config.resource_manager.heartbeat_interval,
            heartbeat_timeout: config.resource_manager.heartbeat_timeout,
            commit_log: None,
        };
        let mut dispatcher = Dispatcher::new(rm.clone(), registry.clone(), jm_config);
        if let Some(store) = leader.as_ref().and_then(|l| l.store.clone()) {
            dispatcher = dispatcher.with_store(store);
        }

        let interceptor = AuthInterceptor::new(config.secret.clone());
        let rm_svc = pb::resource_manager_gateway_server::ResourceManagerGatewayServer::with_interceptor(
            ResourceManagerService { tx: rm.sender() },
            interceptor.clone(),
        );
        let jm_svc = pb::job_master_gateway_server::JobMasterGatewayServer::with_interceptor(
            JobMasterService { registry },
            interceptor,
        );
        let grpc_stop = stop.clone();
        let limits = config.rpc.listener;
        let grpc = tokio::spawn(async move {
            let incoming = limits.grpc_incoming(rpc_listener);
            let r = limits
                .grpc_server()
                .add_service(rm_svc)
                .add_service(jm_svc)
                .serve_with_incoming_shutdown(incoming, async move { grpc_stop.cancelled().await })
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "the RPC server failed");
            }
        });
        let mut tasks = vec![grpc, rm_task];
        if let Some(l) = rest_listener {
            let (d, st) = (dispatcher.clone(), stop.clone());
            let rest = crate::rest::RestConfig {
                secret: config.secret.clone(),
                work_dir: config.work_dir.clone(),
                bundle_limits: config.bundle_limits,
                listener_limits: config.rpc.listener,
                web_proxies: config.web_proxies.clone(),
            };
            tasks.push(tokio::spawn(async move {
                if let Err(e) = crate::rest::serve(l, d, rest, st).await {
                    tracing::error!(error = %e, "the REST server failed");
                }
            }));
        }
        if dispatcher.store().is_some() {
            let base_url = rest_address.map(|a| format!("http://{a}"));
            let blobs = crate::blob_store::BlobStore::in_work_dir(&config.work_dir);
            let ctx = RecoveryContext {
                blobs: &blobs,
                base_url: base_url.as_deref(),
                work_dir: &config.work_dir,
                limits: config.bundle_limits,
            };
            match recover_jobs(&dispatcher, ctx).await {
                Ok(n) => info!(jobs = n, "recovered the jobs of earlier leaders"),
                Err(e) => tracing::error!(error = %e, "cannot recover the jobs of earlier leaders"),
            }
        }
        info!(%rpc_address, rest = ?rest_address, "cluster up");
        Ok(Cluster { rpc_address, rest_address, dispatcher, rm, stop, tasks })
    }

    /// Resolves when someone asked the cluster to stop (`DELETE /cluster`).
    pub async fn stopped(&self) {
        self.stop.cancelled().await
    }

    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Cancels running jobs, stops every worker, and ends all tasks.
    pub async fn shutdown(self) {
        self.dispatcher.close().await;
        self.rm.shutdown().await;
        self.stop.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        info!("cluster stopped");
    }
}
