//! What a leader keeps so that the next one can carry on (issue 11): the
//! submitted jobs, the results of ended ones, and the sinks' commits, under
//! `high-availability.storage-dir`, with pointers in ZooKeeper as Flink keeps
//! them. Election and retrieval themselves are `common::ha`'s.
//!
//! See `docs/high-availability.md` for the layout and the failover sequence.

mod job_store;
mod recovery;

pub use job_store::{BundleSource, CommitLog, JobGraphRecord, JobStore, JobStoreError};
pub use recovery::{finish_commit, recover_jobs, RecoveryContext};
