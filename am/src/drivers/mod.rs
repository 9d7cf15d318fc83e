//! Cluster-manager drivers: each implements
//! [`ResourceManagerDriver`](crate::resource_manager::driver::ResourceManagerDriver)
//! and nothing outside this module knows which one runs.

pub mod kubernetes;
pub mod mesos;
pub mod process;
pub mod yarn;
