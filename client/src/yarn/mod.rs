//! Submitting to YARN from an edge node.
//!
//! Layout:
//! - [`cluster_binary`]: the binary shipped to containers, packed as an ARCHIVE.
//! - [`rest`]: the ResourceManager REST API (new-application, submit, report,
//!   kill, list), HA order, typed errors.
//! - [`staging`]: the staging file system (`file://` or HDFS) behind one trait,
//!   with a content-keyed cache so a repeat submit uploads nothing new, and the
//!   deterministic packing of a bundle directory.
//! - [`submit`]: fills in the AM container contract
//!   (`am::drivers::yarn::contract`: a localized file, a checked environment,
//!   credentials, the command) and follows the application.
//!
//! Architecture invariant: nothing here runs inside the cluster; the AM side
//! reads only what the contract module defines.

pub mod cleanup;
pub mod cluster_binary;
pub mod logs;
pub mod rest;
pub mod staging;
pub mod submit;

#[cfg(test)]
pub(crate) mod test_fixtures;
