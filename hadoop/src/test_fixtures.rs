//! Where the real Hadoop 3.3.6 captures are: `shared/wire/hadoop-3.3.6`
//! beside the checkout (`../shared`), or wherever `HADOOP_WIRE_FIXTURES` says.

use std::path::PathBuf;

pub(crate) fn wire_dir() -> PathBuf {
    std::env::var_os("HADOOP_WIRE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/wire/hadoop-3.3.6"))
}

pub(crate) fn wire(rel: &str) -> PathBuf {
    wire_dir().join(rel)
}
