//! The ApplicationMaster side of FLIP-6: Dispatcher, JobMasters, and the
//! ResourceManager with its SlotManager and cluster-manager drivers.
//!
//! Layout:
//! - [`blob_store`]: bundles uploaded to a session, by content, for TaskExecutors to fetch.
//! - [`cluster`]: wires everything below into one running cluster.
//! - [`dispatcher`]: accepts jobs, one JobMaster each; what REST shows.
//! - [`job_master`]: one job's scheduling, deployment, failover (pure core + actor).
//! - [`resource_manager`]: TaskExecutor registry, SlotManager, driver seam.
//! - [`drivers`]: cluster-manager drivers (`process`, `yarn`, ...).
//! - [`high_availability`]: the job stores a new leader recovers from (ZooKeeper HA).
//! - [`rest`]: the Dispatcher's REST API.

pub mod blob_store;
pub mod cluster;
pub mod dispatcher;
pub mod drivers;
pub mod high_availability;
pub mod job_master;
pub mod metrics;
pub mod resource_manager;
pub mod rest;
