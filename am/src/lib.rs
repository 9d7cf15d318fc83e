//! The ApplicationMaster side of FLIP-6: Dispatcher, JobMasters, and the
//! ResourceManager with its SlotManager and cluster-manager drivers.

pub mod drivers;
pub mod job_master;
pub mod resource_manager;
