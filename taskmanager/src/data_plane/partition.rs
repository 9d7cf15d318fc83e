//! Result partitions produced on this TaskExecutor: one bounded queue of
//! buffers per subpartition, registered under its `ResultPartitionId` until a
//! consumer (local or remote) takes it.
//!
//! Each queue holds at most `credits_per_channel` buffers, so a producer whose
//! consumers are slow waits on `send` instead of buffering: this is the
//! producer half of the credit-based backpressure (the consumer half is in
//! `net`). Every queued byte is counted in the DataPlane's [`Gauge`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use common::ids::JobId;
use common::protocol::ResultPartitionId;
use tokio::sync::mpsc;

use super::metrics::TaskIoCounters;

/// Bytes held in exchange queues of one DataPlane, and their high-water mark.
#[derive(Debug, Default)]
pub(crate) struct Gauge {
    current: AtomicUsize,
    peak: AtomicUsize,
}

impl Gauge {
    pub(crate) fn add(&self, n: usize) {
        let now = self.current.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }
    pub(crate) fn sub(&self, n: usize) {
        self.current.fetch_sub(n, Ordering::Relaxed);
    }
    pub(crate) fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Running,
    Finished,
    Failed(String),
}

/// One produced partition: its status and the not-yet-consumed queues.
pub(crate) struct Partition {
    job_id: JobId,
    status: Mutex<Status>,
    readers: Mutex<Vec<Option<mpsc::Receiver<Bytes>>>>,
}

impl Partition {
    /// Called once every buffer has been queued, before the senders drop.
    pub(crate) fn finish(&self) {
        let mut s = lock(&self.status);
        if *s == Status::Running {
            *s = Status::Finished;
        }
    }
    /// Consumers that read this partition (now or later) fail with `why`.
    pub(crate) fn fail(&self, why: &str) {
        let mut s = lock(&self.status);
        if *s == Status::Running {
            *s = Status::Failed(why.to_string());
        }
    }
    /// What a consumer learns once the queue is closed.
    fn end(&self) -> Result<(), String> {
        match &*lock(&self.status) {
            Status::Finished => Ok(()),
            Status::Failed(why) => Err(why.clone()),
            Status::Running => Err("the producer ended without finishing its output (canceled or crashed)".into()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave the data inconsistent
    // (single assignments), so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The producer's handle to one subpartition queue.
pub(crate) struct SubpartitionSender {
    tx: mpsc::Sender<Bytes>,
    gauge: Arc<Gauge>,
}

impl SubpartitionSender {
    /// Waits for room in the queue (the time waited is back-pressure, counted
    /// into `io`). Err: the consumer went away.
    pub(crate) async fn send(&self, buf: Bytes, io: &TaskIoCounters) -> Result<(), ()> {
        let n = buf.len();
        self.gauge.add(n);
        let buf = match self.tx.try_send(buf) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(buf)) => buf,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.gauge.sub(n);
                return Err(());
            }
        };
        let started = std::time::Instant::now();
        let sent = self.tx.send(buf).await;
        io.blocked(started.elapsed());
        if sent.is_err() {
            self.gauge.sub(n);
            return Err(());
        }
        Ok(())
    }
}

/// The consumer's handle to one subpartition queue.
pub(crate) struct SubpartitionReader {
    rx: mpsc::Receiver<Bytes>,
    partition: Arc<Partition>,
    gauge: Arc<Gauge>,
}

impl SubpartitionReader {
    /// `Ok(None)` at the end of the partition; `Err` when the producer failed.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, String> {
        match self.rx.recv().await {
            Some(buf) => {
                self.gauge.sub(buf.len());
                Ok(Some(buf))
            }
            None => self.partition.end().map(|()| None),
        }
    }
    /// Like `next` but never waits: `Ok(None)` = nothing queued right now.
    pub(crate) fn try_next(&mut self) -> Option<Bytes> {
        let buf = self.rx.try_recv().ok()?;
        self.gauge.sub(buf.len());
        Some(buf)
    }
}

impl Drop for SubpartitionReader {
    fn drop(&mut self) {
        // Buffers still queued are freed with the receiver; uncount them.
        self.rx.close();
        while let Ok(buf) = self.rx.try_recv() {
            self.gauge.sub(buf.len());
        }
    }
}

pub(crate) enum Lookup {
    Found(SubpartitionReader),
    /// Not registered (yet): the consumer retries with backoff.
    NotFound,
    AlreadyConsumed,
    NoSuchSubpartition,
}

#[derive(Default)]
pub(crate) struct Registry {
    partitions: Mutex<HashMap<ResultPartitionId, Arc<Partition>>>,
}

impl Registry {
    /// Registers a partition of `n` subpartitions; returns the producer side.
    pub(crate) fn register(
        &self,
        job_id: JobId,
        id: ResultPartitionId,
        n: u32,
        capacity: usize,
        gauge: &Arc<Gauge>,
    ) -> (Arc<Partition>, Vec<SubpartitionSender>) {
        let mut senders = Vec::with_capacity(n as usize);
        let mut readers = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(capacity.max(1));
            senders.push(SubpartitionSender { tx, gauge: gauge.clone() });
            readers.push(Some(rx));
        }
        let partition =
            Arc::new(Partition { job_id, status: Mutex::new(Status::Running), readers: Mutex::new(readers) });
        lock(&self.partitions).insert(id, partition.clone());
        (partition, senders)
    }

    pub(crate) fn take(&self, id: &ResultPartitionId, subpartition: u32, gauge: &Arc<Gauge>) -> Lookup {
        let mut map = lock(&self.partitions);
        let Some(partition) = map.get(id).cloned() else { return Lookup::NotFound };
        let mut readers = lock(&partition.readers);
        let Some(slot) = readers.get_mut(subpartition as usize) else { return Lookup::NoSuchSubpartition };
        let Some(rx) = slot.take() else { return Lookup::AlreadyConsumed };
        if readers.iter().all(Option::is_none) {
            // Every consumer has its queue; the readers keep the partition alive.
            map.remove(id);
        }
        drop(readers);
        Lookup::Found(SubpartitionReader { rx, partition, gauge: gauge.clone() })
    }

    pub(crate) fn release_job(&self, job_id: JobId) -> usize {
        let mut map = lock(&self.partitions);
        let before = map.len();
        map.retain(|_, p| {
            if p.job_id == job_id {
                p.fail("the job's partitions were released");
            }
            p.job_id != job_id
        });
        before - map.len()
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.partitions).len()
    }
}
