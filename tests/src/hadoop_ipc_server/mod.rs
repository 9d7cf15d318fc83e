//! A Hadoop IPC *server* for tests: the same framing and SASL as Hadoop 3.3.6
//! (connection header, SASL on call id -33 with a pluggable server-side
//! mechanism, connection context on -3, then calls), with per-protocol call
//! handlers. [`yarn`] holds a small ResourceManager scheduler and a
//! NodeManager built on it; [`launcher`] really starts the NodeManager's
//! containers as local processes; [`sasl`] the server side of DIGEST-MD5 with real
//! token passwords.
//!
//! `start(config)` binds 127.0.0.1:0 and returns a [`ServerHandle`] whose
//! `addr()` clients connect to; dropping the handle stops the server.

pub mod capacity;
pub mod launcher;
pub mod sasl;
pub mod yarn;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hadoop::ipc::frame::{
    self, AuthProtocol, FrameBuilder, RequestBody, CONNECTION_CONTEXT_CALL_ID, DEFAULT_MAX_FRAME_LEN, SASL_CALL_ID,
};
use hadoop::proto::common::{rpc_sasl_proto, RpcSaslProto};
use hadoop::RemoteException;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// What the server sends after one client SASL token.
#[derive(Debug, PartialEq, Eq)]
pub enum ServerSaslReply {
    Challenge(Vec<u8>),
    /// Authenticated; the token (e.g. `rspauth=...`) goes with SUCCESS.
    Success(Option<Vec<u8>>),
}

/// The server side of one SASL mechanism, fresh per connection.
pub trait ServerSaslMechanism: Send {
    /// The offer listed in the server's NEGOTIATE (a DIGEST-MD5 offer carries
    /// its challenge).
    fn offer(&mut self) -> rpc_sasl_proto::SaslAuth;
    /// The client's INITIATE / RESPONSE token. `Err` refuses the client with
    /// this message.
    fn step(&mut self, token: &[u8]) -> Result<ServerSaslReply, String>;
    /// Who authenticated (token identifier in base64, or the principal).
    fn user(&self) -> Option<String>;
    /// The Java class a refusal is sent with (Hadoop's server sends the true
    /// cause: `SecretManager$InvalidToken` for an expired token).
    fn error_class(&self) -> &'static str {
        "javax.security.sasl.SaslException"
    }
}

pub type ServerSaslFactory = Arc<dyn Fn() -> Box<dyn ServerSaslMechanism> + Send + Sync>;

/// Who is calling, as the handler sees it.
#[derive(Clone, Debug)]
pub struct CallContext {
    pub peer: SocketAddr,
    /// The protocol from the connection context.
    pub protocol: String,
    /// The SASL-authenticated user, or the SIMPLE user from the context.
    pub user: Option<String>,
    /// The authentication mechanism used (`None` for SIMPLE).
    pub mechanism: Option<String>,
}

pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RemoteException>> + Send>>;

/// Answers the calls of one protocol. Calls run concurrently, each in its
/// own task; responses go out as they finish.
pub trait CallHandler: Send + Sync {
    fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture;
}

#[derive(Clone, Default)]
pub struct ServerConfig {
    /// Mechanisms offered in NEGOTIATE, in order. Empty: SIMPLE only.
    pub sasl: Vec<ServerSaslFactory>,
    /// Whether connections without SASL (auth protocol 0) are accepted.
    pub allow_simple: bool,
    /// protocol name -> handler.
    pub handlers: HashMap<String, Arc<dyn CallHandler>>,
    /// Where to listen; `None` binds 127.0.0.1:0. Set it to a stopped
    /// server's address to simulate a restart.
    pub bind: Option<SocketAddr>,
}

impl ServerConfig {
    pub fn with_handler(mut self, protocol: &str, handler: Arc<dyn CallHandler>) -> Self {
        self.handlers.insert(protocol.to_string(), handler);
        self
    }
    pub fn with_sasl(mut self, factory: ServerSaslFactory) -> Self {
        self.sasl.push(factory);
        self
    }
}

pub struct ServerHandle {
    addr: SocketAddr,
    standby: Arc<AtomicBool>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// While set, every call is answered with `org.apache.hadoop.ipc.StandbyException`,
    /// as a standby ResourceManager or NameNode does.
    pub fn set_standby(&self, standby: bool) {
        self.standby.store(standby, Ordering::SeqCst);
    }
}

impl ServerHandle {
    /// Stop listening and close every connection; returns once the port is free.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Bind 127.0.0.1:0 (or `config.bind`) and serve `config` until the handle
/// is dropped; dropping it also closes every open connection.
pub async fn start(config: ServerConfig) -> std::io::Result<ServerHandle> {
    let bind = config.bind.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;
    let standby = Arc::new(AtomicBool::new(false));
    let config = Arc::new(config);
    let standby2 = standby.clone();
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            let Ok((stream, peer)) = listener.accept().await else { continue };
            let config = config.clone();
            let standby = standby2.clone();
            connections.spawn(async move {
                if let Err(e) = serve_connection(stream, peer, config, standby).await {
                    tracing::debug!(%peer, error = %e, "test IPC server connection ended");
                }
            });
        }
    });
    Ok(ServerHandle { addr, standby, task: Some(task) })
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn read(stream: &mut TcpStream) -> Result<frame::RequestFrame, BoxError> {
    let bytes = frame::read_frame(stream, DEFAULT_MAX_FRAME_LEN).await?.ok_or("client closed the connection")?;
    Ok(frame::decode_request(&bytes)?)
}

fn sasl_frame(msg: &RpcSaslProto) -> Vec<u8> {
    FrameBuilder::new().message(&frame::success_header(SASL_CALL_ID, &[])).message(msg).finish()
}

fn sasl_message(
    state: rpc_sasl_proto::SaslState,
    token: Option<Vec<u8>>,
    auths: Vec<rpc_sasl_proto::SaslAuth>,
) -> RpcSaslProto {
    RpcSaslProto { version: None, state: state as i32, token, auths }
}

async fn refuse(stream: &mut TcpStream, call_id: i32, class: &str, message: String) -> Result<(), BoxError> {
    let exception = RemoteException { class: class.to_string(), message, fatal: true };
    let frame = FrameBuilder::new().message(&frame::failure_header(call_id, &[], &exception)).finish();
    stream.write_all(&frame).await?;
    Ok(())
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    standby: Arc<AtomicBool>,
) -> Result<(), BoxError> {
    use rpc_sasl_proto::SaslState as S;
    let header = frame::read_connection_header(&mut stream).await?;
    let mut user = None;
    let mut mechanism_name = None;
    match header.auth {
        AuthProtocol::None if !config.allow_simple => {
            refuse(
                &mut stream,
                SASL_CALL_ID,
                "org.apache.hadoop.security.AccessControlException",
                "SIMPLE authentication is not enabled.  Available:[TOKEN]".into(),
            )
            .await?;
            return Ok(());
        }
        AuthProtocol::None => {}
        AuthProtocol::Sasl => {
            let negotiate = read(&mut stream).await?;
            if !matches!(&negotiate.body, RequestBody::Sasl(m) if m.state == S::Negotiate as i32) {
                return Err("expected NEGOTIATE".into());
            }
            if config.sasl.is_empty() {
                stream.write_all(&sasl_frame(&sasl_message(S::Success, None, vec![]))).await?;
            } else {
                let mut mechanisms: Vec<Box<dyn ServerSaslMechanism>> = config.sasl.iter().map(|f| f()).collect();
                let offers: Vec<_> = mechanisms.iter_mut().map(|m| m.offer()).collect();
                stream.write_all(&sasl_frame(&sasl_message(S::Negotiate, None, offers.clone()))).await?;
                let initiate = read(&mut stream).await?;
                let RequestBody::Sasl(initiate) = initiate.body else { return Err("expected INITIATE".into()) };
                let chosen = initiate.auths.first().map(|a| a.mechanism.clone()).unwrap_or_default();
                let Some(index) = offers.iter().position(|o| o.mechanism == chosen) else {
                    refuse(
                        &mut stream,
                        SASL_CALL_ID,
                        "javax.security.sasl.SaslException",
                        format!("Client mechanism is malformed or not offered: {chosen}"),
                    )
                    .await?;
                    return Ok(());
                };
                let mechanism = &mut mechanisms[index];
                let mut token = initiate.token.unwrap_or_default();
                loop {
                    match mechanism.step(&token) {
                        Err(message) => {
                            refuse(&mut stream, SASL_CALL_ID, mechanism.error_class(), message).await?;
                            return Ok(());
                        }
                        Ok(ServerSaslReply::Success(last)) => {
                            stream.write_all(&sasl_frame(&sasl_message(S::Success, last, vec![]))).await?;
                            break;
                        }
                        Ok(ServerSaslReply::Challenge(challenge)) => {
                            stream.write_all(&sasl_frame(&sasl_message(S::Challenge, Some(challenge), vec![]))).await?;
                            let next = read(&mut stream).await?;
                            let RequestBody::Sasl(response) = next.body else { return Err("expected RESPONSE".into()) };
                            token = response.token.unwrap_or_default();
                        }
                    }
                }
                user = mechanism.user();
                mechanism_name = Some(chosen);
            }
        }
    }

    let context = read(&mut stream).await?;
    if context.call_id() != CONNECTION_CONTEXT_CALL_ID {
        return Err("expected the connection context".into());
    }
    let RequestBody::ConnectionContext(context) = context.body else { return Err("bad connection context".into()) };
    if user.is_none() {
        user = context.user_info.as_ref().and_then(|u| u.effective_user.clone());
    }
    let ctx =
        CallContext { peer, protocol: context.protocol.clone().unwrap_or_default(), user, mechanism: mechanism_name };

    let (mut read_half, mut write_half) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if write_half.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let result: Result<(), BoxError> = async {
        loop {
            let Some(bytes) = frame::read_frame(&mut read_half, DEFAULT_MAX_FRAME_LEN).await? else { return Ok(()) };
            let request = frame::decode_request(&bytes)?;
            let call_id = request.call_id();
            let client_id = request.header.client_id.clone();
            let RequestBody::Call { header, payload } = request.body else {
                return Err(format!("unexpected message on call id {call_id}").into());
            };
            let tx = tx.clone();
            let reply = move |result: Result<Vec<u8>, RemoteException>| match result {
                Ok(body) => {
                    FrameBuilder::new().message(&frame::success_header(call_id, &client_id)).raw(&body).finish()
                }
                Err(e) => FrameBuilder::new().message(&frame::failure_header(call_id, &client_id, &e)).finish(),
            };
            if standby.load(Ordering::SeqCst) {
                let _ = tx.send(reply(Err(RemoteException {
                    class: "org.apache.hadoop.ipc.StandbyException".into(),
                    message: "Operation category READ is not supported in state standby".into(),
                    fatal: false,
                })));
                continue;
            }
            let Some(handler) = config.handlers.get(&header.declaring_class_protocol_name).cloned() else {
                let _ = tx.send(reply(Err(RemoteException {
                    class: "org.apache.hadoop.ipc.RpcNoSuchProtocolException".into(),
                    message: format!("Unknown protocol: {}", header.declaring_class_protocol_name),
                    fatal: false,
                })));
                continue;
            };
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let result = handler.call(ctx, header.method_name, payload).await;
                let _ = tx.send(reply(result));
            });
        }
    }
    .await;
    drop(tx);
    let _ = writer.await;
    result
}
