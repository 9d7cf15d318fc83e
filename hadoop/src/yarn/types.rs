//! YARN's records as plain Rust types, with the conversions to and from the
//! prost wire types (which stay inside `crate::yarn`).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::credentials::Token;
use crate::proto::common::TokenProto;
use crate::proto::yarn as pb;

/// `application_<cluster timestamp>_<id>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationId {
    pub cluster_timestamp: i64,
    pub id: i32,
}

/// `appattempt_<cluster timestamp>_<app id>_<attempt>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplicationAttemptId {
    pub application: ApplicationId,
    pub attempt: i32,
}

/// A container: its attempt and a 64-bit id whose high bits (above 40) are
/// the RM epoch (`container_e17_...` after an RM restart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId {
    pub attempt: ApplicationAttemptId,
    pub id: i64,
}

const SEQUENCE_BITS: u32 = 40;

impl ContainerId {
    pub fn epoch(&self) -> i64 {
        self.id >> SEQUENCE_BITS
    }
    pub fn sequence(&self) -> i64 {
        self.id & ((1 << SEQUENCE_BITS) - 1)
    }
}

impl fmt::Display for ApplicationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "application_{}_{:04}", self.cluster_timestamp, self.id)
    }
}

impl fmt::Display for ApplicationAttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "appattempt_{}_{:04}_{:06}", self.application.cluster_timestamp, self.application.id, self.attempt)
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("container_")?;
        if self.epoch() > 0 {
            write!(f, "e{:02}_", self.epoch())?;
        }
        let app = self.attempt.application;
        write!(f, "{}_{:04}_{:02}_{:06}", app.cluster_timestamp, app.id, self.attempt.attempt, self.sequence())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?} is not a YARN container id (expected container_[eNN_]<timestamp>_<app>_<attempt>_<seq>, as in CONTAINER_ID)")]
pub struct ParseIdError {
    pub input: String,
}

impl FromStr for ContainerId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseIdError { input: s.to_string() };
        let rest = s.strip_prefix("container_").ok_or_else(err)?;
        let mut parts: Vec<&str> = rest.split('_').collect();
        let epoch = match parts.first() {
            Some(p) if p.starts_with('e') => {
                let e: i64 = p[1..].parse().map_err(|_| err())?;
                parts.remove(0);
                e
            }
            _ => 0,
        };
        let [ts, app, attempt, seq] = parts.as_slice() else { return Err(err()) };
        let seq: i64 = seq.parse().map_err(|_| err())?;
        Ok(ContainerId {
            attempt: ApplicationAttemptId {
                application: ApplicationId {
                    cluster_timestamp: ts.parse().map_err(|_| err())?,
                    id: app.parse().map_err(|_| err())?,
                },
                attempt: attempt.parse().map_err(|_| err())?,
            },
            id: (epoch << SEQUENCE_BITS) | seq,
        })
    }
}

/// A NodeManager's id: `host:port` of its IPC server (what the AM connects to).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub host: String,
    pub port: i32,
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A YARN resource vector. `extended` holds resource types besides memory and
/// vcores (e.g. `yarn.io/gpu`), by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    pub memory_mb: i64,
    pub vcores: i32,
    pub extended: BTreeMap<String, i64>,
}

impl Resource {
    pub fn new(memory_mb: i64, vcores: i32) -> Self {
        Self { memory_mb, vcores, extended: BTreeMap::new() }
    }
    pub fn with_extended(mut self, name: impl Into<String>, value: i64) -> Self {
        self.extended.insert(name.into(), value);
        self
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<memory:{}, vCores:{}", self.memory_mb, self.vcores)?;
        for (k, v) in &self.extended {
            write!(f, ", {k}: {v}")?;
        }
        f.write_str(">")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ExecutionType {
    #[default]
    Guaranteed,
    Opportunistic,
}

/// A container the RM handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: ContainerId,
    pub node: NodeId,
    pub node_http_address: String,
    pub resource: Resource,
    pub priority: i32,
    /// The ask it answers (`-1` when the ask had none). Match on this and
    /// priority, never on the size: the RM rounds sizes up.
    pub allocation_request_id: i64,
    /// Goes back to the NodeManager in startContainers.
    pub container_token: Option<Token>,
    pub execution_type: ExecutionType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContainerState {
    New,
    Running,
    Complete,
    Scheduled,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: ContainerId,
    pub state: ContainerState,
    /// YARN's exit status: the process's code, or negative for YARN's own
    /// reasons (-100 aborted/released, -102 preempted, -104 over memory...).
    /// -1000 while unknown.
    pub exit_status: i32,
    pub diagnostics: String,
    pub capability: Option<Resource>,
}

/// The application's final status for finishApplicationMaster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FinalStatus {
    Undefined,
    Succeeded,
    Failed,
    Killed,
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalResourceType {
    Archive,
    File,
    Pattern,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalResourceVisibility {
    Public,
    Private,
    Application,
}

/// A URL as YARN spells it (`hdfs://127.0.0.1:9000/user/x/app.jar`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct YarnUrl {
    pub scheme: String,
    pub host: String,
    /// `None` when the URL has no port.
    pub port: Option<i32>,
    pub file: String,
    pub user_info: Option<String>,
}

/// A file the NodeManager downloads before starting the container. Size and
/// timestamp must match the file's (HDFS modification time, ms).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalResource {
    pub url: YarnUrl,
    pub size: i64,
    pub timestamp: i64,
    pub kind: LocalResourceType,
    pub visibility: LocalResourceVisibility,
    pub pattern: Option<String>,
}

/// What the NodeManager needs to start a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerLaunchContext {
    /// Link name in the container's working directory -> resource.
    pub local_resources: BTreeMap<String, LocalResource>,
    pub environment: BTreeMap<String, String>,
    /// Shell commands, joined by the NodeManager with spaces.
    pub commands: Vec<String>,
    /// A token storage file (`HDTS`) written to the container as
    /// `HADOOP_TOKEN_FILE_LOCATION`; empty for none.
    pub tokens: Vec<u8>,
}

// ---------------------------------------------------------------- conversions

pub(crate) fn token_from_proto(t: TokenProto) -> Token {
    Token { identifier: t.identifier, password: t.password, kind: t.kind, service: t.service }
}

pub(crate) fn token_to_proto(t: &Token) -> TokenProto {
    TokenProto {
        identifier: t.identifier.clone(),
        password: t.password.clone(),
        kind: t.kind.clone(),
        service: t.service.clone(),
    }
}

impl From<&ApplicationId> for pb::ApplicationIdProto {
    fn from(a: &ApplicationId) -> Self {
        pb::ApplicationIdProto { id: Some(a.id), cluster_timestamp: Some(a.cluster_timestamp) }
    }
}

impl From<&pb::ApplicationIdProto> for ApplicationId {
    fn from(a: &pb::ApplicationIdProto) -> Self {
        ApplicationId { cluster_timestamp: a.cluster_timestamp(), id: a.id() }
    }
}

impl From<&ApplicationAttemptId> for pb::ApplicationAttemptIdProto {
    fn from(a: &ApplicationAttemptId) -> Self {
        pb::ApplicationAttemptIdProto { application_id: Some((&a.application).into()), attempt_id: Some(a.attempt) }
    }
}

impl From<&pb::ApplicationAttemptIdProto> for ApplicationAttemptId {
    fn from(a: &pb::ApplicationAttemptIdProto) -> Self {
        ApplicationAttemptId {
            application: a
                .application_id
                .as_ref()
                .map(ApplicationId::from)
                .unwrap_or(ApplicationId { cluster_timestamp: 0, id: 0 }),
            attempt: a.attempt_id(),
        }
    }
}

impl From<&ContainerId> for pb::ContainerIdProto {
    fn from(c: &ContainerId) -> Self {
        pb::ContainerIdProto {
            // Hadoop fills both; the app id is the attempt's.
            app_id: Some((&c.attempt.application).into()),
            app_attempt_id: Some((&c.attempt).into()),
            id: Some(c.id),
        }
    }
}

impl From<&pb::ContainerIdProto> for ContainerId {
    fn from(c: &pb::ContainerIdProto) -> Self {
        let mut attempt = c
            .app_attempt_id
            .as_ref()
            .map(ApplicationAttemptId::from)
            .unwrap_or(ApplicationAttemptId { application: ApplicationId { cluster_timestamp: 0, id: 0 }, attempt: 0 });
        if attempt.application.cluster_timestamp == 0 {
            if let Some(app) = &c.app_id {
                attempt.application = app.into();
            }
        }
        ContainerId { attempt, id: c.id() }
    }
}

impl From<&pb::NodeIdProto> for NodeId {
    fn from(n: &pb::NodeIdProto) -> Self {
        NodeId { host: n.host().to_string(), port: n.port() }
    }
}

impl From<&NodeId> for pb::NodeIdProto {
    fn from(n: &NodeId) -> Self {
        pb::NodeIdProto { host: Some(n.host.clone()), port: Some(n.port) }
    }
}

const MEMORY_MB: &str = "memory-mb";
const VCORES: &str = "vcores";

impl From<&pb::ResourceProto> for Resource {
    fn from(r: &pb::ResourceProto) -> Self {
        let mut res = Resource::new(r.memory(), r.virtual_cores());
        for info in &r.resource_value_map {
            match info.key.as_str() {
                MEMORY_MB | VCORES => {}
                other => {
                    res.extended.insert(other.to_string(), info.value());
                }
            }
        }
        res
    }
}

impl From<&Resource> for pb::ResourceProto {
    fn from(r: &Resource) -> Self {
        // Hadoop 3 clients send the map too, memory and vcores included.
        let mut map = vec![
            pb::ResourceInformationProto {
                key: MEMORY_MB.into(),
                value: Some(r.memory_mb),
                units: Some("Mi".into()),
                r#type: Some(pb::ResourceTypesProto::Countable as i32),
                tags: vec![],
                attributes: vec![],
            },
            pb::ResourceInformationProto {
                key: VCORES.into(),
                value: Some(i64::from(r.vcores)),
                units: Some(String::new()),
                r#type: Some(pb::ResourceTypesProto::Countable as i32),
                tags: vec![],
                attributes: vec![],
            },
        ];
        for (k, v) in &r.extended {
            map.push(pb::ResourceInformationProto {
                key: k.clone(),
                value: Some(*v),
                units: Some(String::new()),
                r#type: Some(pb::ResourceTypesProto::Countable as i32),
                tags: vec![],
                attributes: vec![],
            });
        }
        pb::ResourceProto { memory: Some(r.memory_mb), virtual_cores: Some(r.vcores), resource_value_map: map }
    }
}

impl From<pb::ContainerProto> for Container {
    fn from(c: pb::ContainerProto) -> Self {
        Container {
            id: c.id.as_ref().map(ContainerId::from).unwrap_or(ContainerId {
                attempt: ApplicationAttemptId {
                    application: ApplicationId { cluster_timestamp: 0, id: 0 },
                    attempt: 0,
                },
                id: 0,
            }),
            node: c.node_id.as_ref().map(NodeId::from).unwrap_or(NodeId { host: String::new(), port: 0 }),
            node_http_address: c.node_http_address.clone().unwrap_or_default(),
            resource: c.resource.as_ref().map(Resource::from).unwrap_or_default(),
            priority: c.priority.as_ref().map(|p| p.priority()).unwrap_or(0),
            allocation_request_id: c.allocation_request_id(),
            execution_type: match c.execution_type() {
                pb::ExecutionTypeProto::Opportunistic => ExecutionType::Opportunistic,
                pb::ExecutionTypeProto::Guaranteed => ExecutionType::Guaranteed,
            },
            container_token: c.container_token.map(token_from_proto),
        }
    }
}

impl From<&Container> for pb::ContainerProto {
    fn from(c: &Container) -> Self {
        pb::ContainerProto {
            id: Some((&c.id).into()),
            node_id: Some((&c.node).into()),
            node_http_address: Some(c.node_http_address.clone()),
            resource: Some((&c.resource).into()),
            priority: Some(pb::PriorityProto { priority: Some(c.priority) }),
            container_token: c.container_token.as_ref().map(token_to_proto),
            execution_type: Some(match c.execution_type {
                ExecutionType::Guaranteed => pb::ExecutionTypeProto::Guaranteed as i32,
                ExecutionType::Opportunistic => pb::ExecutionTypeProto::Opportunistic as i32,
            }),
            allocation_request_id: Some(c.allocation_request_id),
            version: Some(0),
        }
    }
}

impl From<&pb::ContainerStatusProto> for ContainerStatus {
    fn from(s: &pb::ContainerStatusProto) -> Self {
        ContainerStatus {
            id: s.container_id.as_ref().map(ContainerId::from).unwrap_or(ContainerId {
                attempt: ApplicationAttemptId {
                    application: ApplicationId { cluster_timestamp: 0, id: 0 },
                    attempt: 0,
                },
                id: 0,
            }),
            state: match s.state() {
                pb::ContainerStateProto::CNew => ContainerState::New,
                pb::ContainerStateProto::CRunning => ContainerState::Running,
                pb::ContainerStateProto::CComplete => ContainerState::Complete,
                pb::ContainerStateProto::CScheduled => ContainerState::Scheduled,
            },
            exit_status: s.exit_status(),
            diagnostics: s.diagnostics().to_string(),
            capability: s.capability.as_ref().map(Resource::from),
        }
    }
}

impl From<&ContainerStatus> for pb::ContainerStatusProto {
    fn from(s: &ContainerStatus) -> Self {
        pb::ContainerStatusProto {
            container_id: Some((&s.id).into()),
            state: Some(match s.state {
                ContainerState::New => pb::ContainerStateProto::CNew,
                ContainerState::Running => pb::ContainerStateProto::CRunning,
                ContainerState::Complete => pb::ContainerStateProto::CComplete,
                ContainerState::Scheduled => pb::ContainerStateProto::CScheduled,
            } as i32),
            diagnostics: Some(s.diagnostics.clone()),
            exit_status: Some(s.exit_status),
            capability: s.capability.as_ref().map(Into::into),
            execution_type: None,
        }
    }
}

impl From<FinalStatus> for pb::FinalApplicationStatusProto {
    fn from(s: FinalStatus) -> Self {
        match s {
            FinalStatus::Undefined => Self::AppUndefined,
            FinalStatus::Succeeded => Self::AppSucceeded,
            FinalStatus::Failed => Self::AppFailed,
            FinalStatus::Killed => Self::AppKilled,
            FinalStatus::Ended => Self::AppEnded,
        }
    }
}

impl From<&LocalResource> for pb::LocalResourceProto {
    fn from(r: &LocalResource) -> Self {
        pb::LocalResourceProto {
            resource: Some(pb::UrlProto {
                scheme: Some(r.url.scheme.clone()),
                host: Some(r.url.host.clone()),
                port: r.url.port,
                file: Some(r.url.file.clone()),
                user_info: r.url.user_info.clone(),
            }),
            size: Some(r.size),
            timestamp: Some(r.timestamp),
            r#type: Some(match r.kind {
                LocalResourceType::Archive => pb::LocalResourceTypeProto::Archive,
                LocalResourceType::File => pb::LocalResourceTypeProto::File,
                LocalResourceType::Pattern => pb::LocalResourceTypeProto::Pattern,
            } as i32),
            visibility: Some(match r.visibility {
                LocalResourceVisibility::Public => pb::LocalResourceVisibilityProto::Public,
                LocalResourceVisibility::Private => pb::LocalResourceVisibilityProto::Private,
                LocalResourceVisibility::Application => pb::LocalResourceVisibilityProto::Application,
            } as i32),
            pattern: r.pattern.clone(),
            should_be_uploaded_to_shared_cache: None,
        }
    }
}

impl From<&pb::LocalResourceProto> for LocalResource {
    fn from(r: &pb::LocalResourceProto) -> Self {
        let url = r.resource.clone().unwrap_or_default();
        LocalResource {
            url: YarnUrl {
                scheme: url.scheme().to_string(),
                host: url.host().to_string(),
                port: url.port,
                file: url.file().to_string(),
                user_info: url.user_info.clone(),
            },
            size: r.size(),
            timestamp: r.timestamp(),
            kind: match r.r#type() {
                pb::LocalResourceTypeProto::Archive => LocalResourceType::Archive,
                pb::LocalResourceTypeProto::File => LocalResourceType::File,
                pb::LocalResourceTypeProto::Pattern => LocalResourceType::Pattern,
            },
            visibility: match r.visibility() {
                pb::LocalResourceVisibilityProto::Public => LocalResourceVisibility::Public,
                pb::LocalResourceVisibilityProto::Private => LocalResourceVisibility::Private,
                pb::LocalResourceVisibilityProto::Application => LocalResourceVisibility::Application,
            },
            pattern: r.pattern.clone(),
        }
    }
}

impl From<&ContainerLaunchContext> for pb::ContainerLaunchContextProto {
    fn from(c: &ContainerLaunchContext) -> Self {
        pb::ContainerLaunchContextProto {
            local_resources: c
                .local_resources
                .iter()
                .map(|(k, v)| pb::StringLocalResourceMapProto { key: Some(k.clone()), value: Some(v.into()) })
                .collect(),
            tokens: (!c.tokens.is_empty()).then(|| c.tokens.clone()),
            service_data: vec![],
            environment: c
                .environment
                .iter()
                .map(|(k, v)| pb::StringStringMapProto { key: Some(k.clone()), value: Some(v.clone()) })
                .collect(),
            command: c.commands.clone(),
        }
    }
}

impl From<&pb::ContainerLaunchContextProto> for ContainerLaunchContext {
    fn from(c: &pb::ContainerLaunchContextProto) -> Self {
        ContainerLaunchContext {
            local_resources: c
                .local_resources
                .iter()
                .filter_map(|e| Some((e.key.clone()?, LocalResource::from(e.value.as_ref()?))))
                .collect(),
            environment: c.environment.iter().map(|e| (e.key().to_string(), e.value().to_string())).collect(),
            commands: c.command.clone(),
            tokens: c.tokens.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_print_and_parse_like_yarn() {
        let plain: ContainerId = "container_1795750141222_0001_01_000002".parse().unwrap();
        assert_eq!(plain.attempt.application, ApplicationId { cluster_timestamp: 1795750141222, id: 1 });
        assert_eq!(plain.attempt.attempt, 1);
        assert_eq!(plain.id, 2);
        assert_eq!(plain.to_string(), "container_1795750141222_0001_01_000002");
        let with_epoch: ContainerId = "container_e17_1795750141222_0001_01_000002".parse().unwrap();
        assert_eq!(with_epoch.epoch(), 17);
        assert_eq!(with_epoch.sequence(), 2);
        assert_eq!(with_epoch.to_string(), "container_e17_1795750141222_0001_01_000002");
        assert!("container_x".parse::<ContainerId>().is_err());
        assert!("application_1_0001".parse::<ContainerId>().is_err());
        assert_eq!(plain.attempt.to_string(), "appattempt_1795750141222_0001_000001");
    }

    #[test]
    fn resources_round_trip_through_the_wire_map() {
        let r = Resource::new(2048, 2).with_extended("yarn.io/gpu", 1);
        let wire = pb::ResourceProto::from(&r);
        assert_eq!(wire.resource_value_map.len(), 3);
        assert_eq!(Resource::from(&wire), r);
        assert_eq!(r.to_string(), "<memory:2048, vCores:2, yarn.io/gpu: 1>");
    }
}
