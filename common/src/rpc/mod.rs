//! The control-plane RPC: gRPC (tonic) services generated from
//! `proto/control.proto`, the conversions between their messages and the
//! domain types of [`crate::protocol`], a shared-secret check on every call,
//! and a deadline on every call.
//!
//! Only this module knows the wire: components talk domain types.

pub mod auth;
pub mod convert;
pub mod gateway;
pub mod listen;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use auth::{AppSecret, AuthInterceptor, ClientAuth};
pub use convert::ConvertError;
pub use gateway::{JobMasterGateway, ResourceManagerGateway, TaskExecutorGateway, TaskExecutorNotice};
pub use listen::{serve_http1, ListenerLimits};

/// The generated protobuf messages and service stubs.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("yarnflink.control.v1");
}

pub type TaskExecutorClient = pb::task_executor_gateway_client::TaskExecutorGatewayClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientAuth>,
>;
pub type ResourceManagerClient = pb::resource_manager_gateway_client::ResourceManagerGatewayClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientAuth>,
>;
pub type JobMasterClient = pb::job_master_gateway_client::JobMasterGatewayClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientAuth>,
>;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("`{address}` is not a usable RPC address: {detail}")]
    BadAddress { address: String, detail: String },
    #[error("{peer} did not answer within {deadline:?}")]
    DeadlineExceeded { peer: String, deadline: Duration },
    #[error("{peer} refused the call: {status}")]
    Status { peer: String, status: Box<tonic::Status> },
    #[error("{peer} sent a malformed message: {source}")]
    Malformed { peer: String, source: ConvertError },
}

impl RpcError {
    /// Authentication failures are not worth retrying: the secret will not change.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, RpcError::Status { status, .. } if status.code() == tonic::Code::Unauthenticated)
    }
}

/// Timeouts for connecting and for each call. Every call gets a deadline:
/// a peer that hangs must not hang us.
#[derive(Clone, Copy, Debug)]
pub struct RpcTimeouts {
    pub connect: Duration,
    pub call: Duration,
    /// What our own listeners allow a peer before it has authenticated.
    pub listener: ListenerLimits,
}

impl Default for RpcTimeouts {
    fn default() -> Self {
        Self { connect: Duration::from_secs(5), call: Duration::from_secs(10), listener: ListenerLimits::default() }
    }
}

type AuthChannel = tonic::service::interceptor::InterceptedService<tonic::transport::Channel, ClientAuth>;

/// A lazily connected channel to `address` (host:port) with the call deadline.
fn lazy_channel(address: &str, timeouts: RpcTimeouts) -> Result<tonic::transport::Channel, RpcError> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| RpcError::BadAddress { address: address.to_owned(), detail: e.to_string() })?
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.call)
        .tcp_nodelay(true);
    Ok(endpoint.connect_lazy())
}

/// A channel of its own to `address` (tests and one-off callers; components
/// share [`Channels`]), whose every request carries the application secret.
pub fn channel(address: &str, secret: &AppSecret, timeouts: RpcTimeouts) -> Result<AuthChannel, RpcError> {
    Ok(tonic::service::interceptor::InterceptedService::new(lazy_channel(address, timeouts)?, ClientAuth::new(secret)))
}

pub fn task_executor_client(address: &str, secret: &AppSecret, t: RpcTimeouts) -> Result<TaskExecutorClient, RpcError> {
    Ok(pb::task_executor_gateway_client::TaskExecutorGatewayClient::new(channel(address, secret, t)?))
}

pub fn resource_manager_client(
    address: &str,
    secret: &AppSecret,
    t: RpcTimeouts,
) -> Result<ResourceManagerClient, RpcError> {
    Ok(pb::resource_manager_gateway_client::ResourceManagerGatewayClient::new(channel(address, secret, t)?))
}

pub fn job_master_client(address: &str, secret: &AppSecret, t: RpcTimeouts) -> Result<JobMasterClient, RpcError> {
    Ok(pb::job_master_gateway_client::JobMasterGatewayClient::new(channel(address, secret, t)?))
}

/// One lazily connected channel per peer address, shared by every call to
/// that peer: one TCP and HTTP/2 connection, not one per heartbeat. tonic's
/// channel connects again by itself after a failure. Clones share the cache.
#[derive(Clone)]
pub struct Channels {
    secret: AppSecret,
    timeouts: RpcTimeouts,
    by_address: Arc<Mutex<HashMap<String, tonic::transport::Channel>>>,
}

impl std::fmt::Debug for Channels {
    // Never the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels").field("peers", &self.len()).field("timeouts", &self.timeouts).finish()
    }
}

impl Channels {
    pub fn new(secret: AppSecret, timeouts: RpcTimeouts) -> Self {
        Channels { secret, timeouts, by_address: Arc::default() }
    }

    pub fn timeouts(&self) -> RpcTimeouts {
        self.timeouts
    }

    fn channel(&self, address: &str) -> Result<AuthChannel, RpcError> {
        let mut map = self.by_address.lock().unwrap_or_else(|e| e.into_inner());
        let channel = match map.get(address) {
            Some(c) => c.clone(),
            None => {
                let c = lazy_channel(address, self.timeouts)?;
                map.insert(address.to_owned(), c.clone());
                c
            }
        };
        Ok(tonic::service::interceptor::InterceptedService::new(channel, ClientAuth::new(&self.secret)))
    }

    pub fn task_executor(&self, address: &str) -> Result<TaskExecutorClient, RpcError> {
        Ok(pb::task_executor_gateway_client::TaskExecutorGatewayClient::new(self.channel(address)?))
    }

    pub fn resource_manager(&self, address: &str) -> Result<ResourceManagerClient, RpcError> {
        Ok(pb::resource_manager_gateway_client::ResourceManagerGatewayClient::new(self.channel(address)?))
    }

    pub fn job_master(&self, address: &str) -> Result<JobMasterClient, RpcError> {
        Ok(pb::job_master_gateway_client::JobMasterGatewayClient::new(self.channel(address)?))
    }

    /// Drops the channel of a peer that is gone (its connection closes once
    /// no call uses it).
    pub fn forget(&self, address: &str) {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner()).remove(address);
    }

    /// How many peers have a channel.
    pub fn len(&self) -> usize {
        self.by_address.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Runs one call under `deadline`, mapping transport failures to [`RpcError`].
/// The channel has its own timeout too; this one also bounds connecting.
pub async fn call<T>(
    peer: &str,
    deadline: Duration,
    fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, RpcError> {
    match tokio::time::timeout(deadline, fut).await {
        Err(_) => Err(RpcError::DeadlineExceeded { peer: peer.to_owned(), deadline }),
        Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
            Err(RpcError::DeadlineExceeded { peer: peer.to_owned(), deadline })
        }
        Ok(Err(status)) => Err(RpcError::Status { peer: peer.to_owned(), status: Box::new(status) }),
        Ok(Ok(resp)) => Ok(resp.into_inner()),
    }
}
