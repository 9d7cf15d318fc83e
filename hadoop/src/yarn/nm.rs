//! ContainerManagementProtocol: start, stop and query containers on one
//! NodeManager. Like Hadoop's own AM, every call opens a fresh connection to
//! the node, authenticated by that node's NMToken (from
//! [`super::amrm::AmRmClient::nm_token`]), and closes it afterwards.

use std::time::Duration;

use crate::credentials::Token;
use crate::error::Error;
use crate::ipc::{Auth, Connection, ConnectionConfig};
use crate::proto::yarn as pb;

use super::types::{token_to_proto, Container, ContainerId, ContainerLaunchContext, ContainerStatus, NodeId};

/// The protocol name on the wire.
pub const PROTOCOL: &str = "org.apache.hadoop.yarn.api.ContainerManagementProtocolPB";

/// A container the NodeManager refused (its exception, per container).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerFailure {
    pub container: ContainerId,
    pub class: String,
    pub message: String,
}

/// Per-container outcome of a bulk call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub succeeded: Vec<ContainerId>,
    pub failed: Vec<ContainerFailure>,
}

#[derive(Clone, Debug)]
pub struct NmClient {
    pub connect_timeout: Duration,
    pub call_timeout: Duration,
}

impl Default for NmClient {
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(20), call_timeout: Duration::from_secs(60) }
    }
}

impl NmClient {
    async fn connect(&self, node: &NodeId, nm_token: &Token) -> Result<Connection, Error> {
        let mut config = ConnectionConfig::new(PROTOCOL, Auth::token(nm_token.clone()));
        config.connect_timeout = self.connect_timeout;
        config.call_timeout = self.call_timeout;
        Connection::connect(&node.to_string(), &config).await
    }

    /// startContainers for containers of one node.
    pub async fn start_containers(
        &self,
        node: &NodeId,
        nm_token: &Token,
        containers: &[(&Container, &ContainerLaunchContext)],
    ) -> Result<BatchOutcome, Error> {
        let request = pb::StartContainersRequestProto {
            start_container_request: containers
                .iter()
                .map(|(container, launch)| pb::StartContainerRequestProto {
                    container_launch_context: Some((*launch).into()),
                    container_token: container.container_token.as_ref().map(token_to_proto),
                })
                .collect(),
        };
        let conn = self.connect(node, nm_token).await?;
        let response: pb::StartContainersResponseProto = conn.call("startContainers", &request).await?;
        Ok(BatchOutcome {
            succeeded: response.succeeded_requests.iter().map(ContainerId::from).collect(),
            failed: failures(&response.failed_requests),
        })
    }

    /// Start one container; its refusal becomes an error.
    pub async fn start_container(
        &self,
        nm_token: &Token,
        container: &Container,
        launch: &ContainerLaunchContext,
    ) -> Result<(), Error> {
        let outcome = self.start_containers(&container.node, nm_token, &[(container, launch)]).await?;
        single(outcome, "startContainers")
    }

    /// stopContainers on one node.
    pub async fn stop_containers(
        &self,
        node: &NodeId,
        nm_token: &Token,
        ids: &[ContainerId],
    ) -> Result<BatchOutcome, Error> {
        let request = pb::StopContainersRequestProto { container_id: ids.iter().map(Into::into).collect() };
        let conn = self.connect(node, nm_token).await?;
        let response: pb::StopContainersResponseProto = conn.call("stopContainers", &request).await?;
        Ok(BatchOutcome {
            succeeded: response.succeeded_requests.iter().map(ContainerId::from).collect(),
            failed: failures(&response.failed_requests),
        })
    }

    /// getContainerStatuses on one node: statuses of the known containers,
    /// failures for the others.
    pub async fn get_container_statuses(
        &self,
        node: &NodeId,
        nm_token: &Token,
        ids: &[ContainerId],
    ) -> Result<(Vec<ContainerStatus>, Vec<ContainerFailure>), Error> {
        let request = pb::GetContainerStatusesRequestProto { container_id: ids.iter().map(Into::into).collect() };
        let conn = self.connect(node, nm_token).await?;
        let response: pb::GetContainerStatusesResponseProto = conn.call("getContainerStatuses", &request).await?;
        Ok((response.status.iter().map(ContainerStatus::from).collect(), failures(&response.failed_requests)))
    }
}

fn single(outcome: BatchOutcome, method: &'static str) -> Result<(), Error> {
    if let Some(f) = outcome.failed.into_iter().next() {
        return Err(Error::Remote(crate::error::RemoteException { class: f.class, message: f.message, fatal: false }));
    }
    if outcome.succeeded.is_empty() {
        return Err(Error::BadResponse {
            method,
            detail: "the NodeManager reported neither success nor failure".into(),
        });
    }
    Ok(())
}

fn failures(list: &[pb::ContainerExceptionMapProto]) -> Vec<ContainerFailure> {
    list.iter()
        .filter_map(|f| {
            let exception = f.exception.clone().unwrap_or_default();
            Some(ContainerFailure {
                container: ContainerId::from(f.container_id.as_ref()?),
                class: exception.class_name().to_string(),
                message: exception.message().to_string(),
            })
        })
        .collect()
}
