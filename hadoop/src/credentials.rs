//! Hadoop credentials: tokens and secret keys, and the token storage file
//! (`HADOOP_TOKEN_FILE_LOCATION`) they travel in.
//!
//! Formats handled, all as Hadoop 3.3 writes them:
//! - the token storage file: `HDTS`, a version byte, then either the Writable
//!   form (version 0: vint counts, `Text` = vint length + UTF-8 bytes) or a
//!   length-delimited `CredentialsProto` (version 1);
//! - a single Writable token as base64 (the RM REST API's `credentials`, and
//!   `Token.encodeToUrlString`'s URL-safe unpadded form);
//! - the common token identifiers (delegation tokens, the AMRMToken), decoded
//!   for `doctor` and operators, never needed to authenticate.
//!
//! Decoding never panics and never allocates more than the input holds: every
//! length is checked against the bytes left before anything is sliced.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// One delegation/security token (Hadoop's `Token<?>`): what SASL TOKEN
/// authenticates with (identifier as username, password as password).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// The kind's raw bytes as Hadoop's Writable identifier encodes them.
    pub identifier: Vec<u8>,
    pub password: Vec<u8>,
    /// e.g. `YARN_AM_RM_TOKEN`, `NMToken`, `HDFS_DELEGATION_TOKEN`.
    pub kind: String,
    /// Which server it is for, e.g. `127.0.0.1:8030`; empty for the AMRMToken
    /// as the NodeManager writes it (the AM fills it in).
    pub service: String,
}

impl std::fmt::Debug for Token {
    // Passwords never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("kind", &self.kind)
            .field("service", &self.service)
            .field("identifier_len", &self.identifier.len())
            .finish_non_exhaustive()
    }
}

/// The magic at the start of every token storage file.
pub const TOKEN_FILE_MAGIC: &[u8; 4] = b"HDTS";
/// Token files are small (a few tokens); anything bigger is not one.
pub const MAX_TOKEN_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Which serialization a token storage file uses (the byte after `HDTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TokenFileFormat {
    /// Version 0: Hadoop Writables (what Hadoop 3.3 writes by default).
    #[default]
    Writable,
    /// Version 1: a length-delimited `CredentialsProto`.
    Protobuf,
}

/// Tokens and secret keys, in file order (kept so a file we read is written
/// back byte for byte).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// (alias, token). The alias is often the service, or empty.
    pub tokens: Vec<(String, Token)>,
    /// (alias, secret bytes).
    pub secrets: Vec<(String, Vec<u8>)>,
    /// The format this was read from; [`Credentials::to_bytes`] writes it back.
    pub format: TokenFileFormat,
}

impl fmt::Debug for Credentials {
    // Secret values never reach a log; their aliases may.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("tokens", &self.tokens)
            .field("secrets", &self.secrets.iter().map(|(alias, _)| alias).collect::<Vec<_>>())
            .field("format", &self.format)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read token file {path}: {source}; check HADOOP_TOKEN_FILE_LOCATION and the file's permissions")]
    Read { path: String, source: std::io::Error },
    #[error("cannot write token file {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("token file {path} is {size} bytes, more than the {max} a token file can be; is it really a token file?")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error(
        "{origin} is corrupt at byte {offset}: {detail}; regenerate it (re-fetch the tokens) instead of editing it"
    )]
    Corrupt { origin: String, offset: usize, detail: String },
    #[error("{origin} is not valid base64: {detail}")]
    Base64 { origin: String, detail: String },
    #[error("{origin}: {detail}")]
    BadJson { origin: String, detail: String },
}

/// A decoding failure before we know which file it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub detail: String,
}

impl DecodeError {
    pub fn at(self, origin: &str) -> CredentialsError {
        CredentialsError::Corrupt { origin: origin.to_owned(), offset: self.offset, detail: self.detail }
    }
}

// ---------------------------------------------------------------------------
// Writable primitives (org.apache.hadoop.io.WritableUtils / Text)

/// A cursor over bytes that reads Hadoop Writables and reports offsets.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn err(&self, detail: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.pos, detail: detail.into() }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.err("unexpected end of data"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(format!("{what} claims {n} bytes but only {} are left", self.remaining())));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// `WritableUtils.readVLong`.
    pub(crate) fn vlong(&mut self) -> Result<i64, DecodeError> {
        let first = self.u8()? as i8;
        let len = vint_size(first);
        if len == 1 {
            return Ok(first as i64);
        }
        let mut value: i64 = 0;
        for _ in 0..len - 1 {
            value = (value << 8) | self.u8()? as i64;
        }
        Ok(if first < -120 || (-112..0).contains(&first) { value ^ -1 } else { value })
    }

    /// `WritableUtils.readVInt`.
    pub(crate) fn vint(&mut self) -> Result<i32, DecodeError> {
        let start = self.pos;
        let v = self.vlong()?;
        i32::try_from(v).map_err(|_| DecodeError { offset: start, detail: format!("vint {v} does not fit 32 bits") })
    }

    /// A non-negative vint length, checked against the bytes left.
    fn length(&mut self, what: &str) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.vint()?;
        let n = usize::try_from(n)
            .map_err(|_| DecodeError { offset: start, detail: format!("{what} has negative length {n}") })?;
        if n > self.remaining() {
            return Err(DecodeError {
                offset: start,
                detail: format!("{what} claims {n} bytes but only {} are left", self.remaining()),
            });
        }
        Ok(n)
    }

    /// A vint-length-prefixed byte string.
    pub(crate) fn vbytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.length(what)?;
        self.bytes(n, what)
    }

    /// `Text`: vint length + UTF-8.
    pub(crate) fn text(&mut self, what: &str) -> Result<String, DecodeError> {
        let start = self.pos;
        let raw = self.vbytes(what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| DecodeError { offset: start, detail: format!("{what} is not valid UTF-8") })
    }
}

fn vint_size(first: i8) -> usize {
    if first >= -112 {
        1
    } else if first < -120 {
        (-119 - first as i32) as usize
    } else {
        (-111 - first as i32) as usize
    }
}

/// `WritableUtils.writeVLong`.
pub(crate) fn write_vlong(out: &mut Vec<u8>, mut i: i64) {
    if (-112..=127).contains(&i) {
        out.push(i as u8);
        return;
    }
    let mut len: i32 = -112;
    if i < 0 {
        i ^= -1;
        len = -120;
    }
    let mut tmp = i;
    while tmp != 0 {
        tmp >>= 8;
        len -= 1;
    }
    out.push(len as i8 as u8);
    let len = if len < -120 { -(len + 120) } else { -(len + 112) };
    for idx in (1..=len).rev() {
        out.push((i >> ((idx - 1) * 8)) as u8);
    }
}

pub(crate) fn write_vbytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_vlong(out, bytes.len() as i64);
    out.extend_from_slice(bytes);
}

// ---------------------------------------------------------------------------
// Token (Writable)

impl Token {
    /// `Token.readFields`: identifier, password, kind, service.
    pub(crate) fn read_writable(r: &mut Reader<'_>) -> Result<Token, DecodeError> {
        let identifier = r.vbytes("token identifier")?.to_vec();
        let password = r.vbytes("token password")?.to_vec();
        let kind = r.text("token kind")?;
        let service = r.text("token service")?;
        Ok(Token { identifier, password, kind, service })
    }

    /// `Token.write`.
    pub fn write_writable(&self, out: &mut Vec<u8>) {
        write_vbytes(out, &self.identifier);
        write_vbytes(out, &self.password);
        write_vbytes(out, self.kind.as_bytes());
        write_vbytes(out, self.service.as_bytes());
    }

    /// The token as one Writable, e.g. for base64 encoding.
    pub fn to_writable_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_writable(&mut out);
        out
    }

    /// Decodes exactly one Writable token (no trailing bytes).
    pub fn from_writable_bytes(bytes: &[u8]) -> Result<Token, DecodeError> {
        let mut r = Reader::new(bytes);
        let token = Token::read_writable(&mut r)?;
        if r.remaining() != 0 {
            return Err(r.err(format!("{} unexpected bytes after the token", r.remaining())));
        }
        Ok(token)
    }

    /// `Token.encodeToUrlString`: URL-safe base64 without padding, the form
    /// the RM REST API returns and takes.
    pub fn encode_url_safe(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(self.to_writable_bytes())
    }

    /// `Token.decodeFromUrlString`, lenient like Hadoop's decoder: standard or
    /// URL-safe alphabet, with or without padding. `origin` names the source
    /// in errors (e.g. `the RM's delegation-token response`).
    pub fn decode_base64(s: &str, origin: &str) -> Result<Token, CredentialsError> {
        let bytes = decode_base64_lenient(s, origin)?;
        Token::from_writable_bytes(&bytes).map_err(|e| e.at(origin))
    }

    /// The identifier decoded by kind, for display.
    pub fn decode_identifier(&self) -> TokenIdentifier {
        TokenIdentifier::decode(&self.kind, &self.identifier)
    }
}

fn decode_base64_lenient(s: &str, origin: &str) -> Result<Vec<u8>, CredentialsError> {
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let s = s.trim();
    let engine = if s.contains(['-', '_']) {
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT)
    } else {
        GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT)
    };
    engine.decode(s).map_err(|e| CredentialsError::Base64 { origin: origin.to_owned(), detail: e.to_string() })
}

// ---------------------------------------------------------------------------
// The token storage file

/// Protobuf form of the credentials (Hadoop's `Security.proto`), for version 1 files.
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TokenProto {
        #[prost(bytes = "vec", tag = "1")]
        pub identifier: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub password: Vec<u8>,
        #[prost(string, tag = "3")]
        pub kind: String,
        #[prost(string, tag = "4")]
        pub service: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CredentialsKvProto {
        #[prost(string, tag = "1")]
        pub alias: String,
        #[prost(message, optional, tag = "2")]
        pub token: Option<TokenProto>,
        #[prost(bytes = "vec", optional, tag = "3")]
        pub secret: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CredentialsProto {
        #[prost(message, repeated, tag = "1")]
        pub tokens: Vec<CredentialsKvProto>,
        #[prost(message, repeated, tag = "2")]
        pub secrets: Vec<CredentialsKvProto>,
    }
}

/// The service a token for `address` (`host:port`) is filed under, as Hadoop's
/// `SecurityUtil.buildTokenService`: with `use_ip` (the default) the IP address
/// the host resolves to (`127.0.0.1:9000` for `localhost:9000`), else the host
/// as written. An address that does not resolve stays as written.
pub fn token_service(address: &str, use_ip: bool) -> String {
    use std::net::ToSocketAddrs;
    if !use_ip {
        return address.to_owned();
    }
    let resolved = address.to_socket_addrs().ok().and_then(|mut addrs| {
        let all: Vec<std::net::SocketAddr> = addrs.by_ref().collect();
        // Java prefers IPv4 (java.net.preferIPv4Stack is set by Hadoop's scripts).
        all.iter().find(|a| a.is_ipv4()).or(all.first()).copied()
    });
    match resolved {
        Some(std::net::SocketAddr::V4(a)) => format!("{}:{}", a.ip(), a.port()),
        Some(std::net::SocketAddr::V6(a)) => format!("[{}]:{}", a.ip(), a.port()),
        None => address.to_owned(),
    }
}

/// The kind of an HDFS delegation token.
pub const HDFS_DELEGATION_TOKEN: &str = "HDFS_DELEGATION_TOKEN";

impl Credentials {
    /// Makes an HDFS delegation token findable as `wanted` (what an HDFS
    /// client looks for: the `host:port` of the URL as written, or
    /// `ha-hdfs:<nameservice>`): when no token has that service but one has a
    /// service in `same_as` (the forms Hadoop files the same NameNode under,
    /// e.g. its `ip:port`), a copy is added under `wanted`. Returns whether
    /// anything was added.
    pub fn alias_hdfs_token(&mut self, wanted: &str, same_as: &[String]) -> bool {
        let has =
            |service: &str| self.tokens.iter().any(|(_, t)| t.kind == HDFS_DELEGATION_TOKEN && t.service == service);
        if has(wanted) {
            return false;
        }
        let Some(token) = self
            .tokens
            .iter()
            .map(|(_, t)| t)
            .find(|t| t.kind == HDFS_DELEGATION_TOKEN && same_as.contains(&t.service))
            .cloned()
        else {
            return false;
        };
        let alias = Token { service: wanted.to_owned(), ..token };
        self.tokens.push((wanted.to_owned(), alias));
        true
    }

    /// [`Credentials::alias_hdfs_token`] on a token file in place (write to a
    /// temp file beside it, then rename: a reader never sees half a file).
    pub fn alias_hdfs_token_in_file(path: &Path, wanted: &str, same_as: &[String]) -> Result<bool, CredentialsError> {
        let mut creds = Credentials::read_file(path)?;
        if !creds.alias_hdfs_token(wanted, same_as) {
            return Ok(false);
        }
        let tmp = path.with_extension(format!("alias.{}", std::process::id()));
        creds.write_file(&tmp)?;
        std::fs::rename(&tmp, path)
            .map_err(|source| CredentialsError::Write { path: path.display().to_string(), source })?;
        Ok(true)
    }

    /// Replaces every HDFS delegation token (aliases included: a later
    /// [`Credentials::alias_hdfs_token`] files the new ones under those names
    /// again) with `fresh`'s; other tokens and the secrets stay. Returns how
    /// many HDFS tokens there are now.
    pub fn replace_hdfs_tokens(&mut self, fresh: &Credentials) -> usize {
        self.tokens.retain(|(_, t)| t.kind != HDFS_DELEGATION_TOKEN);
        let new: Vec<(String, Token)> =
            fresh.tokens.iter().filter(|(_, t)| t.kind == HDFS_DELEGATION_TOKEN).cloned().collect();
        let n = new.len();
        self.tokens.extend(new);
        n
    }

    /// [`Credentials::replace_hdfs_tokens`] on a token file in place (temp
    /// file and rename, as [`Credentials::alias_hdfs_token_in_file`]).
    pub fn replace_hdfs_tokens_in_file(path: &Path, fresh: &Credentials) -> Result<usize, CredentialsError> {
        let mut creds = Credentials::read_file(path)?;
        let n = creds.replace_hdfs_tokens(fresh);
        let tmp = path.with_extension(format!("fresh.{}", std::process::id()));
        creds.write_file(&tmp)?;
        std::fs::rename(&tmp, path)
            .map_err(|source| CredentialsError::Write { path: path.display().to_string(), source })?;
        Ok(n)
    }

    /// Reads a token storage file. Errors name the file (and the offset when
    /// it is corrupt).
    pub fn read_file(path: &Path) -> Result<Credentials, CredentialsError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| CredentialsError::Read { path: shown.clone(), source })?;
        if meta.len() > MAX_TOKEN_FILE_BYTES {
            return Err(CredentialsError::TooLarge { path: shown, size: meta.len(), max: MAX_TOKEN_FILE_BYTES });
        }
        let bytes = std::fs::read(path).map_err(|source| CredentialsError::Read { path: shown.clone(), source })?;
        Credentials::from_bytes(&bytes).map_err(|e| e.at(&format!("token file {shown}")))
    }

    /// Writes the token storage file in [`Credentials::format`].
    pub fn write_file(&self, path: &Path) -> Result<(), CredentialsError> {
        std::fs::write(path, self.to_bytes())
            .map_err(|source| CredentialsError::Write { path: path.display().to_string(), source })
    }

    /// Decodes a whole token storage file (`HDTS`, version, body).
    pub fn from_bytes(bytes: &[u8]) -> Result<Credentials, DecodeError> {
        let mut r = Reader::new(bytes);
        let magic = r.bytes(4, "magic")?;
        if magic != TOKEN_FILE_MAGIC {
            return Err(DecodeError { offset: 0, detail: "does not start with HDTS: not a Hadoop token file".into() });
        }
        let version_at = r.pos;
        match r.u8()? {
            0 => Credentials::read_writable_body(&mut r),
            1 => Credentials::read_proto_body(&mut r),
            v => Err(DecodeError {
                offset: version_at,
                detail: format!("unknown token file version {v} (this reads 0 and 1, as Hadoop 3 writes)"),
            }),
        }
    }

    fn read_writable_body(r: &mut Reader<'_>) -> Result<Credentials, DecodeError> {
        let mut creds = Credentials { format: TokenFileFormat::Writable, ..Default::default() };
        let count_at = r.pos;
        let n = r.vint()?;
        // Each entry takes bytes, so a count beyond what is left is a lie:
        // fail at the count rather than somewhere inside the loop.
        if n < 0 || n as usize > r.remaining() {
            return Err(DecodeError { offset: count_at, detail: format!("token count {n} is impossible here") });
        }
        for _ in 0..n {
            let alias = r.text("token alias")?;
            let token = Token::read_writable(r)?;
            creds.tokens.push((alias, token));
        }
        let count_at = r.pos;
        let n = r.vint()?;
        if n < 0 || n as usize > r.remaining() {
            return Err(DecodeError { offset: count_at, detail: format!("secret count {n} is impossible here") });
        }
        for _ in 0..n {
            let alias = r.text("secret alias")?;
            let secret = r.vbytes("secret value")?.to_vec();
            creds.secrets.push((alias, secret));
        }
        if r.remaining() != 0 {
            return Err(r.err(format!("{} unexpected bytes after the secret keys", r.remaining())));
        }
        Ok(creds)
    }

    fn read_proto_body(r: &mut Reader<'_>) -> Result<Credentials, DecodeError> {
        use prost::Message as _;
        let start = r.pos;
        let rest = r.bytes(r.remaining(), "body")?;
        let msg = proto::CredentialsProto::decode_length_delimited(rest)
            .map_err(|e| DecodeError { offset: start, detail: format!("bad CredentialsProto: {e}") })?;
        let mut creds = Credentials { format: TokenFileFormat::Protobuf, ..Default::default() };
        for kv in msg.tokens {
            let t = kv.token.unwrap_or_default();
            creds.tokens.push((
                kv.alias,
                Token { identifier: t.identifier, password: t.password, kind: t.kind, service: t.service },
            ));
        }
        for kv in msg.secrets {
            creds.secrets.push((kv.alias, kv.secret.unwrap_or_default()));
        }
        Ok(creds)
    }

    /// Encodes the whole token storage file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = TOKEN_FILE_MAGIC.to_vec();
        match self.format {
            TokenFileFormat::Writable => {
                out.push(0);
                write_vlong(&mut out, self.tokens.len() as i64);
                for (alias, token) in &self.tokens {
                    write_vbytes(&mut out, alias.as_bytes());
                    token.write_writable(&mut out);
                }
                write_vlong(&mut out, self.secrets.len() as i64);
                for (alias, secret) in &self.secrets {
                    write_vbytes(&mut out, alias.as_bytes());
                    write_vbytes(&mut out, secret);
                }
            }
            TokenFileFormat::Protobuf => {
                use prost::Message as _;
                out.push(1);
                let msg = proto::CredentialsProto {
                    tokens: self
                        .tokens
                        .iter()
                        .map(|(alias, t)| proto::CredentialsKvProto {
                            alias: alias.clone(),
                            token: Some(proto::TokenProto {
                                identifier: t.identifier.clone(),
                                password: t.password.clone(),
                                kind: t.kind.clone(),
                                service: t.service.clone(),
                            }),
                            secret: None,
                        })
                        .collect(),
                    secrets: self
                        .secrets
                        .iter()
                        .map(|(alias, s)| proto::CredentialsKvProto {
                            alias: alias.clone(),
                            token: None,
                            secret: Some(s.clone()),
                        })
                        .collect(),
                };
                out.extend_from_slice(&msg.encode_length_delimited_to_vec());
            }
        }
        out
    }

    /// The first token of `kind` (e.g. `YARN_AM_RM_TOKEN`).
    pub fn token_of_kind(&self, kind: &str) -> Option<&Token> {
        self.tokens.iter().map(|(_, t)| t).find(|t| t.kind == kind)
    }

    /// The `credentials` object of the RM REST API's application submission:
    /// `{"tokens":{"entry":[{"key","value"}]},"secrets":{"entry":[..]}}`, tokens
    /// as URL-safe base64 of the Writable token, secrets as base64 of the raw bytes.
    pub fn to_rest_json(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let tokens: Vec<_> = self
            .tokens
            .iter()
            .map(|(alias, t)| serde_json::json!({"key": alias, "value": t.encode_url_safe()}))
            .collect();
        let secrets: Vec<_> =
            self.secrets.iter().map(|(alias, s)| serde_json::json!({"key": alias, "value": b64.encode(s)})).collect();
        serde_json::json!({"tokens": {"entry": tokens}, "secrets": {"entry": secrets}})
    }

    /// Parses the REST API's `credentials` object (see [`Credentials::to_rest_json`]).
    pub fn from_rest_json(value: &serde_json::Value) -> Result<Credentials, CredentialsError> {
        let origin = "the REST credentials";
        let entries = |section: &str| -> Result<Vec<(String, String)>, CredentialsError> {
            let Some(list) = value.get(section).and_then(|s| s.get("entry")) else {
                return Ok(Vec::new());
            };
            let list = list.as_array().ok_or_else(|| CredentialsError::BadJson {
                origin: origin.into(),
                detail: format!("{section}.entry is not an array"),
            })?;
            list.iter()
                .map(|e| {
                    let key = e.get("key").and_then(|k| k.as_str());
                    let val = e.get("value").and_then(|v| v.as_str());
                    match (key, val) {
                        (Some(k), Some(v)) => Ok((k.to_owned(), v.to_owned())),
                        _ => Err(CredentialsError::BadJson {
                            origin: origin.into(),
                            detail: format!("an entry of {section} lacks a string key or value"),
                        }),
                    }
                })
                .collect()
        };
        let mut creds = Credentials::default();
        for (alias, v) in entries("tokens")? {
            let token = Token::decode_base64(&v, &format!("REST credentials token {alias:?}"))?;
            creds.tokens.push((alias, token));
        }
        for (alias, v) in entries("secrets")? {
            let secret = decode_base64_lenient(&v, &format!("REST credentials secret {alias:?}"))?;
            creds.secrets.push((alias, secret));
        }
        Ok(creds)
    }
}

// ---------------------------------------------------------------------------
// Identifiers

/// A delegation token identifier (`AbstractDelegationTokenIdentifier`, or the
/// protobuf `YARNDelegationTokenIdentifierProto` the RM uses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationTokenIdentifier {
    pub owner: String,
    pub renewer: String,
    pub real_user: String,
    /// Milliseconds since the epoch.
    pub issue_date_ms: i64,
    /// Milliseconds since the epoch: the token cannot be renewed past this.
    pub max_date_ms: i64,
    pub sequence_number: i32,
    pub master_key_id: i32,
}

/// `AMRMTokenIdentifier`: which application attempt the token is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmRmTokenIdentifier {
    pub cluster_timestamp: i64,
    pub application_id: i32,
    pub attempt_id: i32,
    pub key_id: i32,
}

impl AmRmTokenIdentifier {
    /// `appattempt_<cluster timestamp>_<app, 4 digits>_<attempt, 6 digits>`.
    pub fn attempt_id_string(&self) -> String {
        format!("appattempt_{}_{:04}_{:06}", self.cluster_timestamp, self.application_id, self.attempt_id)
    }
}

/// A token identifier decoded by kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenIdentifier {
    Delegation(DelegationTokenIdentifier),
    AmRm(AmRmTokenIdentifier),
    /// A kind we do not decode, or bytes that did not decode as the kind says.
    Opaque,
}

impl TokenIdentifier {
    /// One line for operators: who, until when (no secrets).
    pub fn summary(&self) -> String {
        match self {
            TokenIdentifier::Delegation(d) => format!(
                "owner {}, renewer {}{}, issued {}, renewable until {}, sequence {}",
                d.owner,
                d.renewer,
                if d.real_user.is_empty() { String::new() } else { format!(", real user {}", d.real_user) },
                format_utc_secs(d.issue_date_ms / 1000),
                format_utc_secs(d.max_date_ms / 1000),
                d.sequence_number
            ),
            TokenIdentifier::AmRm(a) => format!("{} (key {})", a.attempt_id_string(), a.key_id),
            TokenIdentifier::Opaque => "identifier not decoded".into(),
        }
    }

    pub fn decode(kind: &str, bytes: &[u8]) -> TokenIdentifier {
        match kind {
            "YARN_AM_RM_TOKEN" => decode_amrm(bytes).map(TokenIdentifier::AmRm).unwrap_or(TokenIdentifier::Opaque),
            // YARN's delegation tokens are protobuf since Hadoop 2.5; older
            // ones (and HDFS/MR/KMS ones) are Writables.
            "RM_DELEGATION_TOKEN" | "TIMELINE_DELEGATION_TOKEN" => decode_yarn_delegation(bytes)
                .or_else(|| decode_writable_delegation(bytes))
                .map(TokenIdentifier::Delegation)
                .unwrap_or(TokenIdentifier::Opaque),
            k if k.contains("DELEGATION")
                || k == "kms-dt"
                || k == "WEBHDFS delegation"
                || k == "SWEBHDFS delegation" =>
            {
                decode_writable_delegation(bytes).map(TokenIdentifier::Delegation).unwrap_or(TokenIdentifier::Opaque)
            }
            _ => TokenIdentifier::Opaque,
        }
    }
}

impl DelegationTokenIdentifier {
    /// The Writable form HDFS (and MapReduce, KMS) tokens carry: version 0,
    /// owner, renewer, real user (Text), issue and max dates (vlong),
    /// sequence number and master key id (vint).
    pub fn to_writable_bytes(&self) -> Vec<u8> {
        let mut out = vec![0];
        for text in [&self.owner, &self.renewer, &self.real_user] {
            write_vbytes(&mut out, text.as_bytes());
        }
        write_vlong(&mut out, self.issue_date_ms);
        write_vlong(&mut out, self.max_date_ms);
        write_vlong(&mut out, i64::from(self.sequence_number));
        write_vlong(&mut out, i64::from(self.master_key_id));
        out
    }
}

fn decode_writable_delegation(bytes: &[u8]) -> Option<DelegationTokenIdentifier> {
    let mut r = Reader::new(bytes);
    if r.u8().ok()? != 0 {
        return None; // the only identifier version Hadoop has written
    }
    let id = DelegationTokenIdentifier {
        owner: r.text("owner").ok()?,
        renewer: r.text("renewer").ok()?,
        real_user: r.text("real user").ok()?,
        issue_date_ms: r.vlong().ok()?,
        max_date_ms: r.vlong().ok()?,
        sequence_number: r.vint().ok()?,
        master_key_id: r.vint().ok()?,
    };
    (r.remaining() == 0).then_some(id)
}

mod id_proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct YarnDelegationTokenIdentifierProto {
        #[prost(string, optional, tag = "1")]
        pub owner: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub renewer: Option<String>,
        #[prost(string, optional, tag = "3")]
        pub real_user: Option<String>,
        #[prost(int64, optional, tag = "4")]
        pub issue_date: Option<i64>,
        #[prost(int64, optional, tag = "5")]
        pub max_date: Option<i64>,
        #[prost(int32, optional, tag = "6")]
        pub sequence_number: Option<i32>,
        #[prost(int32, optional, tag = "7")]
        pub master_key_id: Option<i32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ApplicationIdProto {
        #[prost(int32, optional, tag = "1")]
        pub id: Option<i32>,
        #[prost(int64, optional, tag = "2")]
        pub cluster_timestamp: Option<i64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ApplicationAttemptIdProto {
        #[prost(message, optional, tag = "1")]
        pub application_id: Option<ApplicationIdProto>,
        #[prost(int32, optional, tag = "2")]
        pub attempt_id: Option<i32>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AmrmTokenIdentifierProto {
        #[prost(message, optional, tag = "1")]
        pub app_attempt_id: Option<ApplicationAttemptIdProto>,
        #[prost(int32, optional, tag = "2")]
        pub key_id: Option<i32>,
    }
}

fn decode_yarn_delegation(bytes: &[u8]) -> Option<DelegationTokenIdentifier> {
    use prost::Message as _;
    let p = id_proto::YarnDelegationTokenIdentifierProto::decode(bytes).ok()?;
    Some(DelegationTokenIdentifier {
        owner: p.owner?,
        renewer: p.renewer.unwrap_or_default(),
        real_user: p.real_user.unwrap_or_default(),
        issue_date_ms: p.issue_date?,
        max_date_ms: p.max_date?,
        sequence_number: p.sequence_number.unwrap_or_default(),
        master_key_id: p.master_key_id.unwrap_or_default(),
    })
}

fn decode_amrm(bytes: &[u8]) -> Option<AmRmTokenIdentifier> {
    use prost::Message as _;
    let p = id_proto::AmrmTokenIdentifierProto::decode(bytes).ok()?;
    let attempt = p.app_attempt_id?;
    let app = attempt.application_id?;
    Some(AmRmTokenIdentifier {
        cluster_timestamp: app.cluster_timestamp?,
        application_id: app.id?,
        attempt_id: attempt.attempt_id?,
        key_id: p.key_id.unwrap_or_default(),
    })
}

/// Seconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_utc_secs(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        // Outside jiff's range (years -9999..=9999): a token file with garbage dates.
        Err(_) => format!("{secs} s after the epoch"),
    }
}

#[cfg(test)]
mod tests;
