//! Identifiers of the FLIP-6 world. Random ids are UUIDs (printed as 32 hex
//! digits, like Flink's `AbstractID`); ids that a person reads in logs and on
//! the command line (`JobId`) stay short enough to type.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn random() -> Self {
                Self(Uuid::new_v4())
            }
            /// Deterministic ids for tests and for replaying recorded state.
            pub const fn from_u128(v: u128) -> Self {
                Self(Uuid::from_u128(v))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.simple())
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// One job, for its whole life (across restarts and JobMaster failovers).
    JobId
);
uuid_id!(
    /// One allocation of one slot to one job. A TaskExecutor refuses tasks for
    /// an allocation it does not hold, so a stale deployment cannot land.
    AllocationId
);
uuid_id!(
    /// One attempt of one subtask. A restarted subtask gets a new one, so late
    /// state updates from an old attempt are recognised and dropped.
    ExecutionAttemptId
);
uuid_id!(
    /// Fencing token of the ResourceManager leader (its leader session id).
    ResourceManagerId
);
uuid_id!(
    /// Fencing token of a JobMaster leader.
    JobMasterId
);
uuid_id!(
    /// Given by the ResourceManager to each registration of a TaskExecutor;
    /// a TaskExecutor that registers again gets a new one.
    InstanceId
);

/// The cluster manager's name for a worker (a TaskManager): a YARN container
/// id, a pod name, a Mesos task id, or `tm-<n>` for local processes. Opaque
/// to everything but the driver that made it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceId(pub String);

impl ResourceId {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResourceId({})", self.0)
    }
}

/// A slot on a TaskExecutor: the TaskExecutor and the slot's index there.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct SlotId {
    pub resource_id: ResourceId,
    pub index: u32,
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.resource_id, self.index)
    }
}
