//! Input gates: the union of a subtask's input channels as one stream of
//! buffers. A channel reads a subpartition of this TaskExecutor straight from
//! its queue, or one of another TaskExecutor over TCP (`net`). Channels are
//! read concurrently, so a slow or late producer never stalls the others.

use std::pin::Pin;
use std::sync::Arc;

use super::metrics::TaskIoCounters;
use std::time::Duration;

use backon::Retryable as _;
use bytes::Bytes;
use common::protocol::{InputChannelDescriptor, InputGateDescriptor};
use futures::stream::{self, Stream};
use tokio::sync::mpsc;

use super::net::{self, RemoteItem, RemoteRequest};
use super::partition::{Lookup, SubpartitionReader};
use super::Shared;

/// Buffers of all input gates, in arrival order; `Err` ends the stream.
pub(crate) type InputStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

enum Channel {
    Local(SubpartitionReader),
    Remote { rx: mpsc::Receiver<RemoteItem>, task: tokio::task::JoinHandle<()>, shared: Arc<Shared> },
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Channel::Remote { rx, task, shared } = self {
            task.abort();
            rx.close();
            while let Ok(item) = rx.try_recv() {
                if let RemoteItem::Data(buf) = item {
                    shared.gauge.sub(buf.len());
                }
            }
        }
    }
}

impl Channel {
    async fn open(shared: Arc<Shared>, desc: InputChannelDescriptor) -> Result<Channel, String> {
        if !shared.is_local(&desc.producer_data_address) {
            let req = RemoteRequest {
                addr: desc.producer_data_address.clone(),
                id: desc.partition_id,
                subpartition: desc.subpartition,
                secret: shared.secret.clone(),
                max_frame: shared.config.max_record_bytes.saturating_add(shared.config.buffer_size),
                deadline: shared.config.partition_request_timeout,
                gauge: shared.gauge.clone(),
            };
            let (tx, rx) = mpsc::channel(shared.config.credits_per_channel.max(1) as usize);
            let task = tokio::spawn(net::read_remote(req, tx));
            return Ok(Channel::Remote { rx, task, shared });
        }
        // A local producer registers its partition when deployed: wait for it
        // (doubling, to 200 ms) until the partition request timeout.
        enum Missing {
            NotYet,
            Consumed,
            NoSuchSubpartition,
        }
        let take = || async {
            match shared.registry.take(&desc.partition_id, desc.subpartition, &shared.gauge) {
                Lookup::Found(reader) => Ok(reader),
                Lookup::NotFound => Err(Missing::NotYet),
                Lookup::AlreadyConsumed => Err(Missing::Consumed),
                Lookup::NoSuchSubpartition => Err(Missing::NoSuchSubpartition),
            }
        };
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(2))
            .with_max_delay(Duration::from_millis(200))
            .with_total_delay(Some(shared.config.partition_request_timeout))
            .without_max_times();
        let what = match take.retry(policy).when(|m| matches!(m, Missing::NotYet)).await {
            Ok(reader) => return Ok(Channel::Local(reader)),
            Err(Missing::NotYet) => format!(
                "was not registered within {:?}; check that the producer was deployed",
                shared.config.partition_request_timeout
            ),
            Err(Missing::Consumed) => "was already consumed".to_string(),
            Err(Missing::NoSuchSubpartition) => "has no such subpartition".to_string(),
        };
        let id = desc.partition_id;
        Err(format!(
            "input from producer subtask {} (edge {}, attempt {}) subpartition {} {what}",
            id.producer_subtask, id.edge_index, id.producer_attempt, desc.subpartition
        ))
    }

    async fn next(&mut self) -> Result<Option<Bytes>, String> {
        match self {
            Channel::Local(reader) => reader.next().await,
            Channel::Remote { rx, shared, .. } => match rx.recv().await {
                Some(RemoteItem::Data(buf)) => {
                    shared.gauge.sub(buf.len());
                    Ok(Some(buf))
                }
                Some(RemoteItem::End) => Ok(None),
                Some(RemoteItem::Error(why)) => Err(why),
                None => Err("the input channel's reader stopped".to_string()),
            },
        }
    }
}

/// Opens every channel of every gate and merges them.
pub(crate) fn open(shared: &Arc<Shared>, gates: &[InputGateDescriptor], io: &Arc<TaskIoCounters>) -> InputStream {
    Box::pin(stream::select_all(open_channels(shared, gates, io)))
}

/// Every channel of every gate as a stream of its own, in gate and channel
/// order (for consumers that keep channels apart, like the sink).
pub(crate) fn open_channels(
    shared: &Arc<Shared>,
    gates: &[InputGateDescriptor],
    io: &Arc<TaskIoCounters>,
) -> Vec<InputStream> {
    gates
        .iter()
        .flat_map(|g| g.channels.iter().cloned())
        .map(|desc| {
            enum State {
                Pending(Arc<Shared>, InputChannelDescriptor),
                Open(Channel),
                Done,
            }
            let channel = stream::unfold(State::Pending(shared.clone(), desc), |state| async move {
                let mut channel = match state {
                    State::Pending(shared, desc) => match Channel::open(shared, desc).await {
                        Ok(c) => c,
                        Err(why) => return Some((Err(why), State::Done)),
                    },
                    State::Open(c) => c,
                    State::Done => return None,
                };
                match channel.next().await {
                    Ok(Some(buf)) => Some((Ok(buf), State::Open(channel))),
                    Ok(None) => None,
                    Err(why) => Some((Err(why), State::Done)),
                }
            });
            let io = io.clone();
            let channel = futures::StreamExt::inspect(channel, move |r| {
                if let Ok(buf) = r {
                    io.read(buf);
                }
            });
            Box::pin(channel) as InputStream
        })
        .collect()
}
