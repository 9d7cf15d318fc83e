//! The network half of the exchange: a consumer on another TaskExecutor reads
//! one subpartition over one TCP connection.
//!
//! Handshake (mutual proof of the per-application secret, HMAC-SHA256):
//! 1. server -> client: `MAGIC` (8 bytes), server nonce (32).
//! 2. client -> server: `MAGIC`, client nonce (32), request (28: edge index u32,
//!    producer subtask u32, producer attempt 16-byte UUID, subpartition u32),
//!    `HMAC(secret, "yf-dp-client" | nonces | request)` (32).
//! 3. server -> client: status (1), `HMAC(secret, "yf-dp-server" | nonces | status)` (32).
//!    A peer whose MAC is wrong gets `AUTH_FAILED` and the connection closes;
//!    `NOT_FOUND` tells the consumer to retry later (the producer is not registered yet).
//!
//! Then frames: server -> client `tag u8 | len u32 LE | payload` with tags
//! DATA, END, ERROR (payload: UTF-8 message); client -> server `CREDIT | n u32 LE`.
//! The server sends a DATA frame only against a credit; the consumer grants one
//! credit per free slot of its bounded input queue. So at most
//! `credits_per_channel` buffers are in flight per channel, whatever the speed.
//! Integers are little endian.

use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;

use backon::Retryable as _;
use bytes::{Buf, Bytes, BytesMut};
use common::ids::ExecutionAttemptId;
use common::protocol::ResultPartitionId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::partition::{Gauge, Lookup, SubpartitionReader};
use super::Shared;

const MAGIC: &[u8; 8] = b"YFDATA01";
const NONCE: usize = 32;
const MAC: usize = 32;
const REQUEST: usize = 28;

const STATUS_OK: u8 = 0;
const STATUS_NOT_FOUND: u8 = 1;
const STATUS_AUTH_FAILED: u8 = 2;
const STATUS_ALREADY_CONSUMED: u8 = 3;
const STATUS_NO_SUCH_SUBPARTITION: u8 = 4;

const TAG_DATA: u8 = 1;
const TAG_END: u8 = 2;
const TAG_ERROR: u8 = 3;
const TAG_CREDIT: u8 = 4;

/// At most this many frames go into one vectored write.
const MAX_BATCH: usize = 64;

fn encode_request(id: &ResultPartitionId, subpartition: u32) -> [u8; REQUEST] {
    let mut r = [0u8; REQUEST];
    r[0..4].copy_from_slice(&id.edge_index.to_le_bytes());
    r[4..8].copy_from_slice(&id.producer_subtask.to_le_bytes());
    r[8..24].copy_from_slice(&id.producer_attempt.0.as_u128().to_le_bytes());
    r[24..28].copy_from_slice(&subpartition.to_le_bytes());
    r
}

fn decode_request(r: &[u8; REQUEST]) -> (ResultPartitionId, u32) {
    let u32_at = |i: usize| u32::from_le_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
    let mut attempt = [0u8; 16];
    attempt.copy_from_slice(&r[8..24]);
    let id = ResultPartitionId {
        edge_index: u32_at(0),
        producer_subtask: u32_at(4),
        producer_attempt: ExecutionAttemptId::from_u128(u128::from_le_bytes(attempt)),
    };
    (id, u32_at(24))
}

fn mac(secret: &[u8], label: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; the error case cannot happen.
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    m.update(label);
    for p in parts {
        m.update(p);
    }
    m
}

fn nonce() -> [u8; NONCE] {
    let mut n = [0u8; NONCE];
    rand::RngExt::fill(&mut rand::rng(), &mut n[..]);
    n
}

/// Accepts consumer connections until the listener fails or the task is aborted.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_connection(stream, &shared).await {
                        debug!(%peer, "data connection ended: {e}");
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                warn!("accepting a data connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_connection(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let server_nonce = nonce();
    let handshake = async {
        let mut hello = [0u8; 8 + NONCE];
        hello[..8].copy_from_slice(MAGIC);
        hello[8..].copy_from_slice(&server_nonce);
        stream.write_all(&hello).await?;
        let mut msg = [0u8; 8 + NONCE + REQUEST + MAC];
        stream.read_exact(&mut msg).await?;
        io::Result::Ok(msg)
    };
    let msg = tokio::time::timeout(shared.config.handshake_timeout, handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??;
    let (magic, rest) = msg.split_at(8);
    let (client_nonce, rest) = rest.split_at(NONCE);
    let (request, client_mac) = rest.split_at(REQUEST);
    let authentic = magic == MAGIC
        && mac(&shared.secret, b"yf-dp-client", &[&server_nonce, client_nonce, request])
            .verify_slice(client_mac)
            .is_ok();
    if !authentic {
        warn!(peer = ?stream.peer_addr().ok(), "refused a data connection: it did not prove the application secret");
        stream.write_all(&[STATUS_AUTH_FAILED; 1 + MAC]).await?;
        return Ok(());
    }
    let request: &[u8; REQUEST] = request.try_into().map_err(|_| io::ErrorKind::InvalidData)?;
    let (id, subpartition) = decode_request(request);
    let (status, reader) = match shared.registry.take(&id, subpartition, &shared.gauge) {
        Lookup::Found(r) => (STATUS_OK, Some(r)),
        Lookup::NotFound => (STATUS_NOT_FOUND, None),
        Lookup::AlreadyConsumed => (STATUS_ALREADY_CONSUMED, None),
        Lookup::NoSuchSubpartition => (STATUS_NO_SUCH_SUBPARTITION, None),
    };
    let mut reply = [0u8; 1 + MAC];
    reply[0] = status;
    let server_mac = mac(&shared.secret, b"yf-dp-server", &[&server_nonce, client_nonce, &[status]]).finalize();
    reply[1..].copy_from_slice(&server_mac.into_bytes());
    stream.write_all(&reply).await?;
    match reader {
        Some(reader) => stream_subpartition(stream, reader).await,
        None => Ok(()),
    }
}

/// Sends the queue's buffers against the consumer's credits, then END or ERROR.
async fn stream_subpartition(stream: TcpStream, mut reader: SubpartitionReader) -> io::Result<()> {
    let (mut rd, mut wr) = stream.into_split();
    let mut credit: u64 = 0;
    let mut credit_buf = BytesMut::with_capacity(64);
    let mut batch: Vec<Bytes> = Vec::with_capacity(MAX_BATCH);
    let end = loop {
        if credit == 0 {
            credit += read_credits(&mut rd, &mut credit_buf).await?;
            continue;
        }
        tokio::select! {
            biased;
            granted = read_credits(&mut rd, &mut credit_buf) => credit += granted?,
            next = reader.next() => match next {
                Ok(Some(buf)) => {
                    batch.push(buf);
                    while (batch.len() as u64) < credit.min(MAX_BATCH as u64) {
                        match reader.try_next() {
                            Some(buf) => batch.push(buf),
                            None => break,
                        }
                    }
                    credit -= batch.len() as u64;
                    write_frames(&mut wr, &batch).await?;
                    batch.clear();
                }
                Ok(None) => break Ok(()),
                Err(why) => break Err(why),
            },
        }
    };
    match end {
        Ok(()) => wr.write_all(&[TAG_END, 0, 0, 0, 0]).await?,
        Err(why) => {
            let mut frame = vec![TAG_ERROR];
            frame.extend_from_slice(&(why.len() as u32).to_le_bytes());
            frame.extend_from_slice(why.as_bytes());
            wr.write_all(&frame).await?;
        }
    }
    wr.shutdown().await?;
    // Wait (a while) for the consumer to close, so END is not lost to a reset.
    let mut sink = [0u8; 64];
    let drained = async {
        while rd.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), drained).await;
    Ok(())
}

/// Reads at least one CREDIT frame. Cancel safe: partial frames stay in `buf`.
async fn read_credits(rd: &mut (impl AsyncRead + Unpin), buf: &mut BytesMut) -> io::Result<u64> {
    loop {
        let mut granted = 0u64;
        while buf.len() >= 5 {
            if buf[0] != TAG_CREDIT {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected frame from a consumer"));
            }
            granted += u64::from(u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]));
            buf.advance(5);
        }
        if granted > 0 {
            return Ok(granted);
        }
        buf.reserve(64);
        if rd.read_buf(buf).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the consumer closed the connection"));
        }
    }
}

async fn write_frames(wr: &mut (impl AsyncWrite + Unpin), bufs: &[Bytes]) -> io::Result<()> {
    let headers: Vec<[u8; 5]> = bufs
        .iter()
        .map(|b| {
            let l = (b.len() as u32).to_le_bytes();
            [TAG_DATA, l[0], l[1], l[2], l[3]]
        })
        .collect();
    let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(bufs.len() * 2);
    for (h, b) in headers.iter().zip(bufs) {
        slices.push(IoSlice::new(h));
        slices.push(IoSlice::new(b));
    }
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = wr.write_vectored(slices).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    Ok(())
}

/// What a remote input channel delivers to its consumer.
pub(crate) enum RemoteItem {
    Data(Bytes),
    End,
    Error(String),
}

/// Why a remote channel could not be opened or broke.
fn channel_error(id: &ResultPartitionId, sub: u32, addr: &str, what: impl std::fmt::Display) -> String {
    format!(
        "input from producer subtask {} (edge {}, attempt {}) subpartition {sub} at {addr}: {what}",
        id.producer_subtask, id.edge_index, id.producer_attempt
    )
}

pub(crate) struct RemoteRequest {
    pub(crate) addr: String,
    pub(crate) id: ResultPartitionId,
    pub(crate) subpartition: u32,
    pub(crate) secret: Arc<[u8]>,
    pub(crate) max_frame: usize,
    pub(crate) deadline: Duration,
    pub(crate) gauge: Arc<Gauge>,
}

/// Reads one remote subpartition into `tx` (capacity = credits), retrying
/// while the producer has not registered it, until the deadline.
pub(crate) async fn read_remote(req: RemoteRequest, tx: mpsc::Sender<RemoteItem>) {
    let fail = |what: String| RemoteItem::Error(channel_error(&req.id, req.subpartition, &req.addr, what));
    // Retried (doubling, to 500 ms) while the producer has not registered it or
    // cannot be reached, until the deadline; a refusal is final.
    enum Retry {
        Again(String),
        Final(String),
    }
    let attempt = || async {
        match connect(&req).await {
            Ok(Connected::Ready(stream)) => Ok(stream),
            Ok(Connected::NotFound) => Err(Retry::Again("the producer has not registered it".to_string())),
            Ok(Connected::Refused(why)) => Err(Retry::Final(why)),
            Err(e) => Err(Retry::Again(format!("cannot connect: {e}"))),
        }
    };
    let policy = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(500))
        .with_total_delay(Some(req.deadline))
        .without_max_times();
    let stream = match attempt.retry(policy).when(|e| matches!(e, Retry::Again(_))).await {
        Ok(stream) => stream,
        Err(Retry::Final(why)) => {
            let _ = tx.send(fail(why)).await;
            return;
        }
        Err(Retry::Again(retry_why)) => {
            let why = format!(
                "{retry_why}, still after {:?}; check that the producer's TaskExecutor is running and reachable",
                req.deadline
            );
            let _ = tx.send(fail(why)).await;
            return;
        }
    };
    let outcome = receive(stream, &req, &tx).await;
    match outcome {
        Ok(()) => {
            let _ = tx.send(RemoteItem::End).await;
        }
        Err(e) => {
            let _ = tx.send(fail(e)).await;
        }
    }
}

enum Connected {
    Ready(TcpStream),
    NotFound,
    Refused(String),
}

async fn connect(req: &RemoteRequest) -> io::Result<Connected> {
    let mut stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&req.addr))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    let handshake = async {
        let mut hello = [0u8; 8 + NONCE];
        stream.read_exact(&mut hello).await?;
        if &hello[..8] != MAGIC {
            return io::Result::Ok(Err("the peer is not a yarn-flink data plane (bad greeting)".to_string()));
        }
        let server_nonce = &hello[8..];
        let client_nonce = nonce();
        let request = encode_request(&req.id, req.subpartition);
        let tag = mac(&req.secret, b"yf-dp-client", &[server_nonce, &client_nonce, &request]).finalize();
        let mut msg = Vec::with_capacity(8 + NONCE + REQUEST + MAC);
        msg.extend_from_slice(MAGIC);
        msg.extend_from_slice(&client_nonce);
        msg.extend_from_slice(&request);
        msg.extend_from_slice(&tag.into_bytes());
        stream.write_all(&msg).await?;
        let mut reply = [0u8; 1 + MAC];
        stream.read_exact(&mut reply).await?;
        let status = reply[0];
        if status == STATUS_AUTH_FAILED {
            return Ok(Err("the producer refused our proof of the application secret; the two TaskExecutors \
                           must belong to the same application"
                .to_string()));
        }
        let expected = mac(&req.secret, b"yf-dp-server", &[server_nonce, &client_nonce, &[status]]);
        if expected.verify_slice(&reply[1..]).is_err() {
            return Ok(Err("the producer could not prove the application secret; refusing its data".to_string()));
        }
        Ok(Ok(status))
    };
    let status = match tokio::time::timeout(Duration::from_secs(10), handshake)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??
    {
        Ok(status) => status,
        Err(why) => return Ok(Connected::Refused(why)),
    };
    Ok(match status {
        STATUS_OK => Connected::Ready(stream),
        STATUS_NOT_FOUND => Connected::NotFound,
        STATUS_ALREADY_CONSUMED => Connected::Refused("the subpartition was already consumed".into()),
        STATUS_NO_SUCH_SUBPARTITION => Connected::Refused("the partition has no such subpartition".into()),
        other => Connected::Refused(format!("unknown handshake status {other}")),
    })
}

async fn receive(stream: TcpStream, req: &RemoteRequest, tx: &mpsc::Sender<RemoteItem>) -> Result<(), String> {
    let (mut rd, mut wr) = stream.into_split();
    let mut permits: Vec<mpsc::OwnedPermit<RemoteItem>> = Vec::new();
    let mut buf = BytesMut::with_capacity(256 * 1024);
    loop {
        // Parse every complete frame already read.
        while buf.len() >= 5 {
            let tag = buf[0];
            let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if len > req.max_frame {
                return Err(format!("the producer sent a {len}-byte frame, above the {} limit", req.max_frame));
            }
            if buf.len() < 5 + len {
                buf.reserve(5 + len - buf.len());
                break;
            }
            buf.advance(5);
            let payload = buf.split_to(len).freeze();
            match tag {
                TAG_DATA => {
                    let Some(permit) = permits.pop() else {
                        return Err("the producer sent data without credit".into());
                    };
                    req.gauge.add(payload.len());
                    permit.send(RemoteItem::Data(payload));
                }
                TAG_END => return Ok(()),
                TAG_ERROR => return Err(format!("the producer failed: {}", String::from_utf8_lossy(&payload))),
                other => return Err(format!("unknown frame tag {other} from the producer")),
            }
        }
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        tokio::select! {
            read = rd.read_buf(&mut buf) => match read {
                Ok(0) => return Err("the producer closed the connection before the end of the partition".into()),
                Ok(_) => {}
                Err(e) => return Err(format!("reading from the producer failed: {e}")),
            },
            permit = tx.clone().reserve_owned() => {
                // The consumer dropped its input: stop quietly.
                let Ok(permit) = permit else { return Ok(()) };
                permits.push(permit);
                let mut granted: u32 = 1;
                while let Ok(p) = tx.clone().try_reserve_owned() {
                    permits.push(p);
                    granted += 1;
                }
                let mut frame = [TAG_CREDIT, 0, 0, 0, 0];
                frame[1..].copy_from_slice(&granted.to_le_bytes());
                wr.write_all(&frame).await.map_err(|e| format!("granting credit failed: {e}"))?;
            }
        }
    }
}
