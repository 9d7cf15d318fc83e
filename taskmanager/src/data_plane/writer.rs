//! Routing records into result partitions (the partitioners).
//!
//! Input is a chunk of whole newline-terminated records, straight from a pipe
//! read or a file read. Forward and broadcast (and any partition with one
//! subpartition) pass the chunk on as it is: no copy, no per-record work.
//! Hash and rebalance look at each record and copy it into a per-subpartition
//! buffer that is sent once it reaches `buffer_size`: one allocation per
//! buffer, none per record.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::jobspec::Partitioning;

use super::metrics::TaskIoCounters;
use super::partition::{Partition, SubpartitionSender};

/// The stable key hash the hash partitioner routes by: FNV-1a (64 bit) over
/// the key bytes, then MurmurHash3's 64-bit finalizer so that the high bits,
/// which pick the subpartition, are well mixed. Fixed forever: the same key
/// goes to the same subpartition on every run and every machine.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in key {
        h = fnv_step(h, b);
    }
    finalize(h)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

#[inline(always)]
fn fnv_step(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
}

#[inline(always)]
fn finalize(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The key of a record: the text before the first TAB, or the whole record.
pub fn record_key(record: &[u8]) -> &[u8] {
    match memchr::memchr(b'\t', record) {
        Some(i) => &record[..i],
        None => record,
    }
}

/// Which of `n` subpartitions a record (without its newline) goes to under
/// hash partitioning: `key_hash(record_key(record))` onto `0..n`. One pass:
/// the key's end (TAB) is found while hashing, so a short record costs no
/// separate search.
pub fn hash_target(record: &[u8], n: usize) -> usize {
    let mut h = FNV_OFFSET;
    for &b in record {
        if b == b'\t' {
            break;
        }
        h = fnv_step(h, b);
    }
    ((u128::from(finalize(h)) * n as u128) >> 64) as usize
}

/// The consumer of a subpartition went away (it failed or was canceled).
#[derive(Debug)]
pub(crate) struct ConsumerGone;

/// Writes into one result partition.
pub(crate) struct PartitionWriter {
    partitioning: Partitioning,
    partition: Arc<Partition>,
    subs: Vec<SubpartitionSender>,
    builders: Vec<BytesMut>,
    next: usize,
    buffer_size: usize,
    /// Where the time spent waiting for credits is counted.
    io: Arc<TaskIoCounters>,
}

impl PartitionWriter {
    pub(crate) fn new(
        partitioning: Partitioning,
        partition: Arc<Partition>,
        subs: Vec<SubpartitionSender>,
        buffer_size: usize,
        io: Arc<TaskIoCounters>,
    ) -> Self {
        let builders = subs.iter().map(|_| BytesMut::new()).collect();
        Self { partitioning, partition, subs, builders, next: 0, buffer_size: buffer_size.max(1), io }
    }

    /// `chunk`: whole records, each ending in `\n`.
    pub(crate) async fn write(&mut self, chunk: &Bytes) -> Result<(), ConsumerGone> {
        let n = self.subs.len();
        if n == 0 || chunk.is_empty() {
            return Ok(());
        }
        match self.partitioning {
            _ if n == 1 => self.subs[0].send(chunk.clone(), &self.io).await.map_err(|()| ConsumerGone),
            Partitioning::Broadcast => {
                for sub in &self.subs {
                    sub.send(chunk.clone(), &self.io).await.map_err(|()| ConsumerGone)?;
                }
                Ok(())
            }
            // Forward has one subpartition; should a descriptor say otherwise,
            // spread whole chunks rather than drop records.
            Partitioning::Forward => {
                let i = self.next % n;
                self.next = self.next.wrapping_add(1);
                self.subs[i].send(chunk.clone(), &self.io).await.map_err(|()| ConsumerGone)
            }
            Partitioning::Hash | Partitioning::Rebalance => self.route_records(chunk).await,
        }
    }

    async fn route_records(&mut self, chunk: &Bytes) -> Result<(), ConsumerGone> {
        let n = self.subs.len();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', chunk) {
            let record = &chunk[start..=end];
            start = end + 1;
            let target = if self.partitioning == Partitioning::Hash {
                hash_target(&record[..record.len() - 1], n)
            } else {
                let t = self.next % n;
                self.next = self.next.wrapping_add(1);
                t
            };
            let builder = &mut self.builders[target];
            if !builder.is_empty() && builder.len() + record.len() > self.buffer_size {
                let full = builder.split().freeze();
                self.subs[target].send(full, &self.io).await.map_err(|()| ConsumerGone)?;
            }
            let builder = &mut self.builders[target];
            if builder.capacity() - builder.len() < record.len() {
                builder.reserve(self.buffer_size.max(record.len()));
            }
            builder.extend_from_slice(record);
        }
        Ok(())
    }

    /// Sends every partly filled buffer.
    pub(crate) async fn flush(&mut self) -> Result<(), ConsumerGone> {
        for (builder, sub) in self.builders.iter_mut().zip(&self.subs) {
            if !builder.is_empty() {
                sub.send(builder.split().freeze(), &self.io).await.map_err(|()| ConsumerGone)?;
            }
        }
        Ok(())
    }

    fn has_pending(&self) -> bool {
        self.builders.iter().any(|b| !b.is_empty())
    }
}

/// Writes every record to all outgoing edges of a subtask.
pub(crate) struct RecordWriter {
    partitions: Vec<PartitionWriter>,
    io: Arc<TaskIoCounters>,
}

impl RecordWriter {
    pub(crate) fn new(partitions: Vec<PartitionWriter>, io: Arc<TaskIoCounters>) -> Self {
        Self { partitions, io }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.partitions.is_empty()
    }

    /// The attempt's counters.
    pub(crate) fn io(&self) -> &Arc<TaskIoCounters> {
        &self.io
    }

    pub(crate) async fn write(&mut self, chunk: &Bytes) -> Result<(), ConsumerGone> {
        if !self.partitions.is_empty() {
            self.io.wrote(chunk);
        }
        for p in &mut self.partitions {
            p.write(chunk).await?;
        }
        Ok(())
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.partitions.iter().any(PartitionWriter::has_pending)
    }

    pub(crate) async fn flush(&mut self) -> Result<(), ConsumerGone> {
        for p in &mut self.partitions {
            p.flush().await?;
        }
        Ok(())
    }

    /// Flushes, then marks every partition finished (consumers see the end).
    pub(crate) async fn finish(mut self) -> Result<(), ConsumerGone> {
        self.flush().await?;
        for p in &self.partitions {
            p.partition.finish();
        }
        Ok(())
    }
}
