//! Measuring the exchange alone, without processes: a producer plane sends
//! the same buffer over and over (no copies, so the figure is the transport's)
//! to a consumer plane over loopback TCP, through the real handshake, credits
//! and framing. Used by `benches/exchange.rs` and `scripts/bench-wordcount`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ids::{ExecutionAttemptId, JobId};
use common::jobspec::Partitioning;
use common::protocol::ResultPartitionId;
use futures::StreamExt;

use super::writer::PartitionWriter;
use super::{input, DataPlane, TaskError};

#[derive(Clone, Debug)]
pub struct ExchangeReport {
    pub bytes: u64,
    pub elapsed: Duration,
    /// The producer plane's highest buffered bytes during the run.
    pub producer_peak_buffered: usize,
    pub consumer_peak_buffered: usize,
}

impl ExchangeReport {
    pub fn gigabytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64() / 1e9
    }
}

/// Sends `total_bytes` from `producer` to `consumer` over `channels` parallel
/// channels (subpartitions), in buffers of the producer's `buffer_size`.
pub async fn exchange_benchmark(
    producer: &DataPlane,
    consumer: &DataPlane,
    total_bytes: u64,
    channels: u32,
) -> Result<ExchangeReport, TaskError> {
    let job = JobId::random();
    let shared = &producer.inner.shared;
    let id = ResultPartitionId { edge_index: 0, producer_subtask: 0, producer_attempt: ExecutionAttemptId::random() };
    let channels = channels.max(1);
    let buffer_size = shared.config.buffer_size.max(2);
    let (partition, senders) =
        shared.registry.register(job, id, channels, shared.config.credits_per_channel as usize, &shared.gauge);
    // Whole records: lines of 63 bytes and a newline.
    let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    let buffer = Bytes::from(
        line.iter().copied().cycle().take(buffer_size / line.len() * line.len().max(1)).collect::<Vec<u8>>(),
    );
    let per_channel = total_bytes / u64::from(channels) / buffer.len() as u64;
    let started = Instant::now();
    let mut writers = Vec::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let buffer = buffer.clone();
        let mut w =
            PartitionWriter::new(Partitioning::Forward, partition.clone(), vec![sender], buffer_size, Arc::default());
        writers.push(tokio::spawn(async move {
            for _ in 0..per_channel {
                if w.write(&buffer).await.is_err() {
                    return Err(format!("channel {i}: the consumer went away"));
                }
            }
            // Hand the writer back: its queue must stay open until the
            // partition is marked finished, or the end looks like a crash.
            Ok(w)
        }));
    }
    let gates = [common::protocol::InputGateDescriptor {
        edge_index: 0,
        partitioning: Partitioning::Forward,
        channels: (0..channels)
            .map(|sub| common::protocol::InputChannelDescriptor {
                partition_id: id,
                subpartition: sub,
                producer_data_address: producer.local_address().to_string(),
                producer_resource_id: common::ids::ResourceId::new("bench-producer"),
            })
            .collect(),
    }];
    // The consumer must see the producer as remote, or this measures memcpy-free channels.
    let mut inputs = input::open(&consumer.inner.shared, &gates, &Arc::default());
    let reader = tokio::spawn(async move {
        let mut bytes = 0u64;
        while let Some(buf) = inputs.next().await {
            bytes += buf?.len() as u64;
        }
        Ok::<u64, String>(bytes)
    });
    let mut done = Vec::new();
    for w in writers {
        done.push(w.await.map_err(|e| TaskError::Failed(e.to_string()))?.map_err(TaskError::Failed)?);
    }
    partition.finish();
    drop((partition, done));
    let bytes = reader.await.map_err(|e| TaskError::Failed(e.to_string()))?.map_err(TaskError::Failed)?;
    let elapsed = started.elapsed();
    producer.release_job(job);
    Ok(ExchangeReport {
        bytes,
        elapsed,
        producer_peak_buffered: producer.peak_buffered_bytes(),
        consumer_peak_buffered: consumer.peak_buffered_bytes(),
    })
}
