//! Submitting to YARN from an edge node.
//!
//! Layout:
//! - [`rest`]: the ResourceManager REST API (new-application, submit, report,
//!   kill, list), HA order, typed errors.
//! - [`staging`]: the staging file system (`file://` or HDFS) behind one trait,
//!   with a content-keyed cache so a repeat submit uploads nothing new, and the
//!   deterministic packing of a bundle directory.
//! - [`submit`]: the AM container contract (environment, local resources,
//!   credentials, command) and the follow loop.
//!
//! Architecture invariant: nothing here runs inside the cluster; the AM side
//! reads what [`submit`] writes through the `YF_*` environment only.

pub mod rest;
pub mod staging;
pub mod submit;

#[cfg(test)]
pub(crate) mod test_fixtures;
