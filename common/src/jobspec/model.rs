//! The JobGraph as the job spec (`job.toml`) describes it, after parsing and
//! validation. Everything downstream (JobMaster, TaskExecutor, data plane)
//! takes these types, never raw TOML.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::resources::RequestedProfile;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    pub name: String,
    pub restart: RestartStrategy,
    /// In topological order: every edge goes from a lower to a higher index.
    pub vertices: Vec<VertexSpec>,
    pub edges: Vec<EdgeSpec>,
}

impl JobSpec {
    /// Sinks whose path is relative (no scheme, no leading `/`), as (vertex, path).
    /// Locally they resolve against the bundle directory; in a YARN container
    /// that directory is the NodeManager's localized copy, deleted with the
    /// application, so a cluster submission refuses them.
    pub fn relative_sinks(&self) -> Vec<(&str, &str)> {
        self.vertices
            .iter()
            .filter_map(|v| match &v.program {
                Program::Sink(BuiltinSink::TextFiles { path }) if !path.contains("://") && !path.starts_with('/') => {
                    Some((v.name.as_str(), path.as_str()))
                }
                _ => None,
            })
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VertexSpec {
    pub name: String,
    pub parallelism: u32,
    pub resources: RequestedProfile,
    /// Subtasks of vertices in one group with the same index share one slot
    /// (Flink's slot sharing). `None`: the vertex is a group of its own.
    pub slot_sharing_group: Option<String>,
    pub program: Program,
}

/// What one subtask runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Program {
    /// A program from the bundle (or the PATH), run without a shell.
    /// Records: newline-delimited on stdin and stdout.
    Command { argv: Vec<String> },
    /// A line run by `/bin/sh -c` in the bundle directory.
    Shell { script: String },
    /// A built-in source; no process is started.
    Source(BuiltinSource),
    /// A built-in sink; no process is started.
    Sink(BuiltinSink),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuiltinSource {
    /// Text files (a file, a directory, or a glob in the last path component),
    /// split across the source's subtasks by byte ranges cut on line boundaries.
    /// `hdfs://` paths read from HDFS; anything else from the local file system.
    TextFiles { path: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BuiltinSink {
    /// One part file per subtask under `path`, committed only when the job succeeds.
    TextFiles { path: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Partitioning {
    /// Producer subtask i feeds consumer subtask i (equal parallelism).
    Forward,
    /// By key, the text before the first TAB (the whole line without one).
    Hash,
    /// Round robin over all consumers.
    Rebalance,
    /// Every record to every consumer.
    Broadcast,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSpec {
    /// Index into `JobSpec::vertices`.
    pub from: usize,
    pub to: usize,
    pub partitioning: Partitioning,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartStrategy {
    None,
    FixedDelay { attempts: u32, delay: Duration },
}

/// A loaded bundle: the spec and the directory its programs and relative paths
/// are resolved against.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec_path: PathBuf,
    pub spec: JobSpec,
}
