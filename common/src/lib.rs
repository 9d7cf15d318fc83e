//! Shared by every yarn-flink role and every backend.
//!
//! Layout:
//! - [`ids`]: job, allocation, attempt, fencing and worker ids.
//! - [`resources`]: resource profiles and their arithmetic.
//! - [`jobspec`]: the JobGraph a bundle's `job.toml` describes; parsing and validation.
//! - [`launch`]: the environment contract between a driver and the TaskManager it starts.
//! - [`protocol`]: the slot protocol as plain domain types.
//! - [`output`]: committing and aborting the part files of built-in text sinks.
//! - [`rpc`]: its gRPC wire form, authentication and deadlines.
//! - [`ha`]: ZooKeeper leader election and retrieval, and HA names.

pub mod ha;
pub mod hdfs;
pub mod http;
pub mod ids;
pub mod jobspec;
pub mod launch;
pub mod output;
pub mod protocol;
pub mod resources;
pub mod rpc;
