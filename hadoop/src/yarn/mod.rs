//! The YARN protocols an ApplicationMaster speaks: [`amrm`]
//! (ApplicationMasterProtocol, to the RM scheduler port) and [`nm`]
//! (ContainerManagementProtocol, to each NodeManager), over the plain domain
//! types of [`types`]. The prost types stay inside this module.

pub mod aggregated_logs;
pub mod amrm;
pub mod launch_env;
pub mod nm;
pub mod types;

pub use types::*;

#[cfg(test)]
mod fixture_tests;
