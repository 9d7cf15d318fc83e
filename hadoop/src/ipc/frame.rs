//! Hadoop IPC framing: bytes <-> typed frames, both directions, no I/O policy.
//!
//! A client opens with the 7-byte connection header (`hrpc`, version 9,
//! service class, auth protocol: 0 = none / SIMPLE, 0xDF = SASL). After that,
//! every frame in either direction is a 4-byte big-endian length followed by
//! varint-delimited protobufs: `RpcRequestHeaderProto` then (for calls)
//! `RequestHeaderProto` and the request; `RpcResponseHeaderProto` then the
//! response. Call id -33 carries SASL, -3 the connection context.
//!
//! Decoding never panics and never allocates more than the frame it was given
//! (lengths are checked against what is there and against a maximum first).
//! Both the client ([`super::connection`]) and the test server use this module.

use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::RemoteException;
use crate::proto::common::{
    rpc_response_header_proto::RpcStatusProto, IpcConnectionContextProto, RequestHeaderProto, RpcKindProto,
    RpcRequestHeaderProto, RpcResponseHeaderProto, RpcSaslProto,
};

pub const MAGIC: [u8; 4] = *b"hrpc";
/// The IPC version Hadoop 2.x and 3.x speak.
pub const IPC_VERSION: u8 = 9;
pub const SASL_CALL_ID: i32 = -33;
pub const CONNECTION_CONTEXT_CALL_ID: i32 = -3;
/// Hadoop's `ipc.maximum.data.length` default (64 MiB): no real frame is larger.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 << 20;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FrameError {
    #[error("truncated {what}: needs {needed} bytes, only {available} there")]
    Truncated { what: &'static str, needed: usize, available: usize },
    #[error("not a Hadoop IPC connection: magic {found:02x?} instead of \"hrpc\"")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported IPC version {version} (Hadoop 2.x/3.x speak {IPC_VERSION})")]
    UnsupportedVersion { version: u8 },
    #[error("unknown auth protocol {value:#04x} in the connection header (0 = none, 0xdf = SASL)")]
    UnknownAuthProtocol { value: u8 },
    #[error("absurd {what} length {length} (maximum {max}); the peer is not speaking Hadoop IPC or is broken")]
    AbsurdLength { what: &'static str, length: u64, max: usize },
    #[error("cannot decode {what}: {detail}")]
    Protobuf { what: &'static str, detail: String },
    #[error("{extra} unexpected bytes after the {what}")]
    Trailing { what: &'static str, extra: usize },
}

/// Auth protocol byte of the connection header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthProtocol {
    /// No SASL: SIMPLE auth, the user travels in the connection context.
    None,
    /// SASL negotiation on call id -33 before anything else.
    Sasl,
}

impl AuthProtocol {
    pub fn byte(self) -> u8 {
        match self {
            AuthProtocol::None => 0,
            AuthProtocol::Sasl => 0xDF,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionHeader {
    pub version: u8,
    pub service_class: u8,
    pub auth: AuthProtocol,
}

impl ConnectionHeader {
    pub const LEN: usize = 7;

    pub fn new(auth: AuthProtocol) -> Self {
        Self { version: IPC_VERSION, service_class: 0, auth }
    }

    pub fn encode(&self) -> [u8; Self::LEN] {
        [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], self.version, self.service_class, self.auth.byte()]
    }

    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        let Some(bytes) = buf.get(..Self::LEN) else {
            return Err(FrameError::Truncated { what: "connection header", needed: Self::LEN, available: buf.len() });
        };
        let found = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if found != MAGIC {
            return Err(FrameError::BadMagic { found });
        }
        if bytes[4] != IPC_VERSION {
            return Err(FrameError::UnsupportedVersion { version: bytes[4] });
        }
        let auth = match bytes[6] {
            0 => AuthProtocol::None,
            0xDF => AuthProtocol::Sasl,
            value => return Err(FrameError::UnknownAuthProtocol { value }),
        };
        Ok(Self { version: bytes[4], service_class: bytes[5], auth })
    }
}

/// Split one length-prefixed frame off the front of `buf`.
///
/// `Ok(None)` means "need more bytes"; `Ok(Some((frame, consumed)))` gives the
/// frame body (without its length) and how many bytes of `buf` it used.
pub fn split_frame(buf: &[u8], max_len: usize) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(len_bytes) = buf.get(..4) else { return Ok(None) };
    let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
    check_frame_len(len, max_len)?;
    Ok(buf.get(4..4 + len).map(|frame| (frame, 4 + len)))
}

fn check_frame_len(len: usize, max_len: usize) -> Result<(), FrameError> {
    if len > max_len {
        return Err(FrameError::AbsurdLength { what: "frame", length: len as u64, max: max_len });
    }
    Ok(())
}

/// Read one frame from `r`. `Ok(None)` on a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max_len: usize) -> Result<Option<Vec<u8>>, ReadError> {
    let mut len_bytes = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut len_bytes[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated { what: "frame length", needed: 4, available: got }.into());
        }
        got += n;
    }
    let len = u32::from_be_bytes(len_bytes) as usize;
    check_frame_len(len, max_len)?;
    // The length is bounded above, so this allocation is too.
    let mut frame = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        let n = r.read(&mut frame[filled..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated { what: "frame", needed: len, available: filled }.into());
        }
        filled += n;
    }
    Ok(Some(frame))
}

/// Read and check the 7-byte connection header (server side).
pub async fn read_connection_header<R: AsyncRead + Unpin>(r: &mut R) -> Result<ConnectionHeader, ReadError> {
    let mut buf = [0u8; ConnectionHeader::LEN];
    let mut got = 0;
    while got < buf.len() {
        let n = r.read(&mut buf[got..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                what: "connection header",
                needed: ConnectionHeader::LEN,
                available: got,
            }
            .into());
        }
        got += n;
    }
    Ok(ConnectionHeader::decode(&buf)?)
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Decode one varint-delimited message from the front of `buf`, advancing it.
fn take_delimited<'a>(buf: &mut &'a [u8], what: &'static str) -> Result<&'a [u8], FrameError> {
    let len = prost::encoding::decode_varint(buf)
        .map_err(|e| FrameError::Protobuf { what, detail: format!("bad length prefix: {e}") })?;
    if len > buf.len() as u64 {
        return Err(FrameError::Truncated {
            what,
            needed: usize::try_from(len).unwrap_or(usize::MAX),
            available: buf.len(),
        });
    }
    let (msg, rest) = buf.split_at(len as usize);
    *buf = rest;
    Ok(msg)
}

fn decode_part<M: Message + Default>(buf: &mut &[u8], what: &'static str) -> Result<M, FrameError> {
    let bytes = take_delimited(buf, what)?;
    M::decode(bytes).map_err(|e| FrameError::Protobuf { what, detail: e.to_string() })
}

fn no_trailing(buf: &[u8], what: &'static str) -> Result<(), FrameError> {
    if buf.is_empty() {
        Ok(())
    } else {
        Err(FrameError::Trailing { what, extra: buf.len() })
    }
}

/// What follows an `RpcRequestHeaderProto`, by call id.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestBody {
    Sasl(RpcSaslProto),
    ConnectionContext(IpcConnectionContextProto),
    Call {
        header: RequestHeaderProto,
        /// The request message's bytes (length prefix removed).
        payload: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct RequestFrame {
    pub header: RpcRequestHeaderProto,
    pub body: RequestBody,
}

impl RequestFrame {
    pub fn call_id(&self) -> i32 {
        self.header.call_id
    }
}

/// Decode a client-to-server frame (without its 4-byte length).
pub fn decode_request(frame: &[u8]) -> Result<RequestFrame, FrameError> {
    let mut buf = frame;
    let header: RpcRequestHeaderProto = decode_part(&mut buf, "RpcRequestHeaderProto")?;
    let body = match header.call_id {
        SASL_CALL_ID => RequestBody::Sasl(decode_part(&mut buf, "RpcSaslProto")?),
        CONNECTION_CONTEXT_CALL_ID => {
            RequestBody::ConnectionContext(decode_part(&mut buf, "IpcConnectionContextProto")?)
        }
        _ => {
            let header = decode_part(&mut buf, "RequestHeaderProto")?;
            let payload = if buf.is_empty() { Vec::new() } else { take_delimited(&mut buf, "request")?.to_vec() };
            RequestBody::Call { header, payload }
        }
    };
    no_trailing(buf, "request frame")?;
    Ok(RequestFrame { header, body })
}

/// What follows an `RpcResponseHeaderProto`.
#[derive(Clone, Debug, PartialEq)]
pub enum ResponseBody {
    Sasl(RpcSaslProto),
    /// The response message's bytes (length prefix removed).
    Success(Vec<u8>),
    /// Status ERROR or FATAL: the exception from the header.
    Failure(RemoteException),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResponseFrame {
    pub header: RpcResponseHeaderProto,
    pub body: ResponseBody,
}

impl ResponseFrame {
    /// The call id as the client sent it (signed; -33 for SASL).
    pub fn call_id(&self) -> i32 {
        self.header.call_id as i32
    }
}

/// Decode a server-to-client frame (without its 4-byte length).
pub fn decode_response(frame: &[u8]) -> Result<ResponseFrame, FrameError> {
    let mut buf = frame;
    let header: RpcResponseHeaderProto = decode_part(&mut buf, "RpcResponseHeaderProto")?;
    let status = RpcStatusProto::try_from(header.status).map_err(|_| FrameError::Protobuf {
        what: "RpcResponseHeaderProto",
        detail: format!("unknown status {}", header.status),
    })?;
    let body = match status {
        RpcStatusProto::Success if header.call_id as i32 == SASL_CALL_ID => {
            ResponseBody::Sasl(decode_part(&mut buf, "RpcSaslProto")?)
        }
        RpcStatusProto::Success => {
            let payload = if buf.is_empty() { Vec::new() } else { take_delimited(&mut buf, "response")?.to_vec() };
            ResponseBody::Success(payload)
        }
        RpcStatusProto::Error | RpcStatusProto::Fatal => ResponseBody::Failure(RemoteException {
            class: header.exception_class_name.clone().unwrap_or_default(),
            message: header.error_msg.clone().unwrap_or_default(),
            fatal: status == RpcStatusProto::Fatal,
        }),
    };
    if matches!(body, ResponseBody::Failure(_)) {
        // Nothing is meant to follow an error header; tolerate it rather than
        // hide the server's exception behind a framing complaint.
        return Ok(ResponseFrame { header, body });
    }
    no_trailing(buf, "response frame")?;
    Ok(ResponseFrame { header, body })
}

/// Builds one frame: length prefix + varint-delimited parts.
pub struct FrameBuilder {
    buf: Vec<u8>,
}

impl Default for FrameBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameBuilder {
    pub fn new() -> Self {
        Self { buf: vec![0; 4] }
    }

    pub fn message<M: Message>(mut self, m: &M) -> Self {
        // Encoding into a Vec cannot run out of space.
        let _ = m.encode_length_delimited(&mut self.buf);
        self
    }

    /// An already-encoded message (without length prefix).
    pub fn raw(mut self, bytes: &[u8]) -> Self {
        prost::encoding::encode_varint(bytes.len() as u64, &mut self.buf);
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn finish(mut self) -> Vec<u8> {
        let len = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

/// The `RpcRequestHeaderProto` Hadoop's Java client sends.
pub fn request_header(call_id: i32, client_id: &[u8], retry_count: i32) -> RpcRequestHeaderProto {
    RpcRequestHeaderProto {
        rpc_kind: Some(RpcKindProto::RpcProtocolBuffer as i32),
        rpc_op: Some(0),
        call_id,
        client_id: client_id.to_vec(),
        retry_count: Some(retry_count),
    }
}

/// A successful `RpcResponseHeaderProto` for `call_id` (server side).
pub fn success_header(call_id: i32, client_id: &[u8]) -> RpcResponseHeaderProto {
    RpcResponseHeaderProto {
        call_id: call_id as u32,
        status: RpcStatusProto::Success as i32,
        server_ipc_version_num: Some(IPC_VERSION as u32),
        exception_class_name: None,
        error_msg: None,
        error_detail: None,
        client_id: Some(client_id.to_vec()),
        retry_count: Some(-1),
    }
}

/// An ERROR/FATAL `RpcResponseHeaderProto` carrying an exception (server side).
pub fn failure_header(call_id: i32, client_id: &[u8], exception: &RemoteException) -> RpcResponseHeaderProto {
    use crate::proto::common::rpc_response_header_proto::RpcErrorCodeProto;
    let (status, detail) = if exception.fatal {
        (RpcStatusProto::Fatal, RpcErrorCodeProto::FatalUnauthorized)
    } else {
        (RpcStatusProto::Error, RpcErrorCodeProto::ErrorApplication)
    };
    RpcResponseHeaderProto {
        status: status as i32,
        exception_class_name: Some(exception.class.clone()),
        error_msg: Some(exception.message.clone()),
        error_detail: Some(detail as i32),
        ..success_header(call_id, client_id)
    }
}

#[cfg(test)]
pub(crate) mod tests;
