//! What one subtask attempt moves: records and bytes in and out, and how long
//! its output waited for the consumers' credits (back-pressure). Counted by
//! the data plane as chunks pass (records by their newlines, with memchr),
//! read by the TaskExecutor for its JobMaster heartbeats and the final state.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use common::protocol::TaskIo;

#[derive(Debug, Default)]
pub struct TaskIoCounters {
    records_in: AtomicU64,
    bytes_in: AtomicU64,
    records_out: AtomicU64,
    bytes_out: AtomicU64,
    backpressured_ns: AtomicU64,
}

/// Records in a chunk of whole, newline-terminated records.
fn records(chunk: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', chunk).count() as u64
}

impl TaskIoCounters {
    pub(crate) fn read(&self, chunk: &[u8]) {
        self.records_in.fetch_add(records(chunk), Relaxed);
        self.bytes_in.fetch_add(chunk.len() as u64, Relaxed);
    }

    pub(crate) fn wrote(&self, chunk: &[u8]) {
        self.records_out.fetch_add(records(chunk), Relaxed);
        self.bytes_out.fetch_add(chunk.len() as u64, Relaxed);
    }

    pub(crate) fn blocked(&self, d: std::time::Duration) {
        self.backpressured_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    pub fn snapshot(&self) -> TaskIo {
        TaskIo {
            records_in: self.records_in.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            backpressured_ms: self.backpressured_ns.load(Relaxed) / 1_000_000,
        }
    }
}
