//! One Hadoop IPC connection over TCP: connection header, SASL, connection
//! context, then concurrent calls.
//!
//! After the handshake the socket is split: one writer task owns the write
//! half and sends frames in the order calls were made; one reader task owns
//! the read half and routes each response to its caller by call id (a map of
//! call id -> oneshot). Any number of calls can be in flight at once. When the
//! connection breaks (EOF, I/O error, a FATAL status, a malformed frame) every
//! call in flight fails with [`Error::ConnectionClosed`] and later calls fail
//! at once; reconnecting is [`super::failover`]'s job.
//!
//! The protocol name (e.g. `org.apache.hadoop.yarn.api.ApplicationMasterProtocolPB`)
//! comes from the [`ConnectionConfig`], never from this module.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::frame::{
    self, AuthProtocol, ConnectionHeader, FrameBuilder, ReadError, ResponseBody, CONNECTION_CONTEXT_CALL_ID,
    SASL_CALL_ID,
};
use crate::credentials::Token;
use crate::error::{Error, RemoteException};
use crate::proto::common::{IpcConnectionContextProto, RequestHeaderProto, UserInformationProto};
use crate::sasl::digest_md5::DigestMd5;
use crate::sasl::{SaslMechanism, SaslNegotiation, SaslStep};

/// Makes fresh SASL mechanisms for each connection attempt (mechanisms are
/// stateful and a reconnect starts over).
pub type MechanismFactory = Arc<dyn Fn() -> Vec<Box<dyn SaslMechanism>> + Send + Sync>;

/// How a connection authenticates.
#[derive(Clone)]
pub enum Auth {
    /// No SASL (auth protocol byte 0): the user name travels in the
    /// connection context. Only for servers with security off, and never for
    /// the RM scheduler port or NodeManagers, which insist on tokens.
    Simple { user: String },
    /// SASL with these mechanisms, in order of preference.
    Sasl {
        mechanisms: MechanismFactory,
        /// The connection context's effective user: `None` on token
        /// connections (the user comes from the token), the principal for
        /// Kerberos.
        effective_user: Option<String>,
    },
}

impl Auth {
    /// SASL TOKEN / DIGEST-MD5 with `token` (AMRMToken, NMToken, delegation token).
    pub fn token(token: Token) -> Self {
        let token = Arc::new(token);
        Auth::Sasl {
            mechanisms: Arc::new(move || vec![Box::new(DigestMd5::new(&token)) as Box<dyn SaslMechanism>]),
            effective_user: None,
        }
    }

    /// SASL with mechanisms from `factory` (e.g. GSSAPI for Kerberos).
    pub fn sasl(
        factory: impl Fn() -> Vec<Box<dyn SaslMechanism>> + Send + Sync + 'static,
        effective_user: Option<String>,
    ) -> Self {
        Auth::Sasl { mechanisms: Arc::new(factory), effective_user }
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Simple { user } => f.debug_struct("Simple").field("user", user).finish(),
            Auth::Sasl { effective_user, .. } => {
                f.debug_struct("Sasl").field("effective_user", effective_user).finish_non_exhaustive()
            }
        }
    }
}

/// Everything a connection needs besides the address.
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    /// The protocol named in the connection context and every request header.
    pub protocol: String,
    /// `clientProtocolVersion` of the request header (1 for every protobuf protocol).
    pub protocol_version: u64,
    pub auth: Auth,
    /// Covers TCP connect plus the whole SASL handshake.
    pub connect_timeout: Duration,
    /// Deadline of one call once sent.
    pub call_timeout: Duration,
    pub max_frame_len: usize,
    /// Hadoop's retry cache key; random per client.
    pub client_id: [u8; 16],
}

impl ConnectionConfig {
    pub fn new(protocol: impl Into<String>, auth: Auth) -> Self {
        Self {
            protocol: protocol.into(),
            protocol_version: 1,
            auth,
            connect_timeout: Duration::from_secs(20),
            call_timeout: Duration::from_secs(60),
            max_frame_len: frame::DEFAULT_MAX_FRAME_LEN,
            client_id: rand::random(),
        }
    }
}

type Reply = Result<Vec<u8>, Error>;

enum Pending {
    Open(HashMap<i32, oneshot::Sender<Reply>>),
    Closed(String),
}

struct Shared {
    addr: String,
    pending: Mutex<Pending>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        // A poisoned lock only means another task panicked mid-update of a map
        // of senders; the map itself is still usable.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fail everything in flight and refuse new calls.
    fn close(&self, reason: String) {
        let old = std::mem::replace(&mut *self.lock(), Pending::Closed(reason.clone()));
        if let Pending::Open(calls) = old {
            if !calls.is_empty() {
                tracing::debug!(addr = %self.addr, %reason, in_flight = calls.len(), "IPC connection closed");
            }
            for (_, tx) in calls {
                let _ = tx.send(Err(Error::ConnectionClosed { addr: self.addr.clone(), reason: reason.clone() }));
            }
        }
    }
}

/// An authenticated Hadoop IPC connection. Cheap to share behind an `Arc`;
/// dropping it closes the socket.
pub struct Connection {
    shared: Arc<Shared>,
    out: mpsc::UnboundedSender<Vec<u8>>,
    next_call_id: AtomicI32,
    protocol: String,
    protocol_version: u64,
    client_id: [u8; 16],
    call_timeout: Duration,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("addr", &self.shared.addr).field("protocol", &self.protocol).finish()
    }
}

impl Connection {
    /// Connect to `addr` (`host:port`), authenticate and send the connection context.
    pub async fn connect(addr: &str, config: &ConnectionConfig) -> Result<Self, Error> {
        match tokio::time::timeout(config.connect_timeout, Self::connect_inner(addr, config)).await {
            Ok(result) => result,
            Err(_) => {
                Err(Error::Timeout { what: "connecting to", addr: addr.to_string(), after: config.connect_timeout })
            }
        }
    }

    async fn connect_inner(addr: &str, config: &ConnectionConfig) -> Result<Self, Error> {
        let io_err = |source| Error::Io { addr: addr.to_string(), source };
        let mut stream =
            TcpStream::connect(addr).await.map_err(|source| Error::Connect { addr: addr.to_string(), source })?;
        let _ = stream.set_nodelay(true);

        let (auth_protocol, user_info) = match &config.auth {
            Auth::Simple { user } => {
                (AuthProtocol::None, UserInformationProto { effective_user: Some(user.clone()), real_user: None })
            }
            Auth::Sasl { effective_user, .. } => {
                (AuthProtocol::Sasl, UserInformationProto { effective_user: effective_user.clone(), real_user: None })
            }
        };
        stream.write_all(&ConnectionHeader::new(auth_protocol).encode()).await.map_err(io_err)?;

        if let Auth::Sasl { mechanisms, .. } = &config.auth {
            negotiate_sasl(&mut stream, addr, SaslNegotiation::new(mechanisms()), config.max_frame_len).await?;
        }

        let context = IpcConnectionContextProto { user_info: Some(user_info), protocol: Some(config.protocol.clone()) };
        let frame = FrameBuilder::new()
            .message(&frame::request_header(CONNECTION_CONTEXT_CALL_ID, &config.client_id, -1))
            .message(&context)
            .finish();
        stream.write_all(&frame).await.map_err(io_err)?;

        let (read_half, write_half) = stream.into_split();
        let shared = Arc::new(Shared { addr: addr.to_string(), pending: Mutex::new(Pending::Open(HashMap::new())) });
        let (out, out_rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(write_half, out_rx, shared.clone()));
        let reader = tokio::spawn(read_loop(read_half, shared.clone(), config.max_frame_len));
        tracing::debug!(%addr, protocol = %config.protocol, "IPC connection established");
        Ok(Self {
            shared,
            out,
            next_call_id: AtomicI32::new(0),
            protocol: config.protocol.clone(),
            protocol_version: config.protocol_version,
            client_id: config.client_id,
            call_timeout: config.call_timeout,
            tasks: [writer, reader],
        })
    }

    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Whether the connection broke (calls would fail at once).
    pub fn is_closed(&self) -> bool {
        matches!(*self.shared.lock(), Pending::Closed(_))
    }

    /// Call `method` with a protobuf request and decode the protobuf response.
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, Error> {
        let bytes = self.call_raw(method, &request.encode_to_vec()).await?;
        Resp::decode(bytes.as_slice()).map_err(|e| Error::Frame {
            addr: self.shared.addr.clone(),
            source: frame::FrameError::Protobuf { what: "response message", detail: format!("{method}: {e}") },
        })
    }

    /// Call `method` with an encoded request; returns the encoded response.
    pub async fn call_raw(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, Error> {
        // Hadoop keeps call ids non-negative; negative ones are reserved.
        let call_id = self.next_call_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let (tx, rx) = oneshot::channel();
        match &mut *self.shared.lock() {
            Pending::Open(calls) => {
                calls.insert(call_id, tx);
            }
            Pending::Closed(reason) => {
                return Err(Error::ConnectionClosed { addr: self.shared.addr.clone(), reason: reason.clone() })
            }
        }
        let frame = FrameBuilder::new()
            .message(&frame::request_header(call_id, &self.client_id, 0))
            .message(&RequestHeaderProto {
                method_name: method.to_string(),
                declaring_class_protocol_name: self.protocol.clone(),
                client_protocol_version: self.protocol_version,
            })
            .raw(request)
            .finish();
        if self.out.send(frame).is_err() {
            self.shared.close("the writer task stopped".into());
        }
        match tokio::time::timeout(self.call_timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(Error::ConnectionClosed {
                addr: self.shared.addr.clone(),
                reason: "the reader task stopped".into(),
            }),
            Err(_) => {
                if let Pending::Open(calls) = &mut *self.shared.lock() {
                    calls.remove(&call_id);
                }
                Err(Error::Timeout {
                    what: "waiting for an answer to a call from",
                    addr: self.shared.addr.clone(),
                    after: self.call_timeout,
                })
            }
        }
    }
}

async fn negotiate_sasl(
    stream: &mut TcpStream,
    addr: &str,
    mut negotiation: SaslNegotiation,
    max_frame_len: usize,
) -> Result<(), Error> {
    let io_err = |source| Error::Io { addr: addr.to_string(), source };
    let sasl_err = |source| Error::Sasl { addr: addr.to_string(), source };
    let mut outgoing = negotiation.start();
    loop {
        // SASL frames carry an empty client id and retry count -1, as Java's do.
        let frame =
            FrameBuilder::new().message(&frame::request_header(SASL_CALL_ID, &[], -1)).message(&outgoing).finish();
        stream.write_all(&frame).await.map_err(io_err)?;
        let reply = match frame::read_frame(stream, max_frame_len).await {
            Ok(Some(reply)) => reply,
            Ok(None) => {
                return Err(Error::ConnectionClosed {
                    addr: addr.to_string(),
                    reason: "the server closed the connection during SASL negotiation".into(),
                })
            }
            Err(ReadError::Io(source)) => return Err(io_err(source)),
            Err(ReadError::Frame(source)) => return Err(Error::Frame { addr: addr.to_string(), source }),
        };
        let response =
            frame::decode_response(&reply).map_err(|source| Error::Frame { addr: addr.to_string(), source })?;
        if response.call_id() != SASL_CALL_ID {
            return Err(Error::Protocol {
                addr: addr.to_string(),
                detail: format!("expected a SASL answer (call id -33), got call id {}", response.call_id()),
            });
        }
        let msg = match response.body {
            ResponseBody::Sasl(msg) => msg,
            ResponseBody::Failure(remote) => {
                return Err(Error::AuthenticationRefused { addr: addr.to_string(), remote })
            }
            ResponseBody::Success(_) => {
                return Err(Error::Protocol { addr: addr.to_string(), detail: "SASL answer without a message".into() })
            }
        };
        match negotiation.handle(msg).map_err(sasl_err)? {
            SaslStep::Send(next) => outgoing = next,
            SaslStep::Done { auth } => {
                tracing::debug!(%addr, mechanism = ?auth.as_ref().map(|a| a.mechanism.clone()), "SASL done");
                return Ok(());
            }
        }
    }
}

async fn write_loop(
    mut write_half: tokio::net::tcp::OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = frames.recv().await {
        if let Err(e) = write_half.write_all(&frame).await {
            shared.close(format!("write failed: {e}"));
            return;
        }
    }
    let _ = write_half.shutdown().await;
}

async fn read_loop(mut read_half: tokio::net::tcp::OwnedReadHalf, shared: Arc<Shared>, max_frame_len: usize) {
    let reason = loop {
        let frame = match frame::read_frame(&mut read_half, max_frame_len).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "the server closed the connection".to_string(),
            Err(e) => break format!("read failed: {e}"),
        };
        let response = match frame::decode_response(&frame) {
            Ok(r) => r,
            Err(e) => break format!("malformed frame: {e}"),
        };
        let call_id = response.call_id();
        let (reply, fatal): (Reply, Option<RemoteException>) = match response.body {
            ResponseBody::Success(payload) => (Ok(payload), None),
            ResponseBody::Failure(remote) => {
                let fatal = remote.fatal.then(|| remote.clone());
                (Err(Error::from_remote(remote)), fatal)
            }
            ResponseBody::Sasl(_) => {
                tracing::warn!(addr = %shared.addr, "ignoring a SASL message after authentication");
                continue;
            }
        };
        let waiter = match &mut *shared.lock() {
            Pending::Open(calls) => calls.remove(&call_id),
            Pending::Closed(_) => None,
        };
        match waiter {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None if fatal.is_none() => {
                tracing::warn!(addr = %shared.addr, call_id, "response to a call nobody waits for (timed out?)")
            }
            None => {}
        }
        if let Some(remote) = fatal {
            break format!("fatal error from the server: {remote}");
        }
    };
    shared.close(reason);
}
