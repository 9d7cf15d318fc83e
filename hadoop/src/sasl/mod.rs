//! SASL for Hadoop IPC (RpcSaslProto exchanges on call id -33).
//!
//! One [`SaslMechanism`] per mechanism: DIGEST-MD5 for TOKEN auth, GSSAPI for
//! KERBEROS. SIMPLE needs no mechanism (the server answers SUCCESS to NEGOTIATE).
//! [`SaslNegotiation`] is the client-side state machine that drives one of
//! them through NEGOTIATE -> INITIATE -> CHALLENGE/RESPONSE ... -> SUCCESS; it
//! does no I/O, so the IPC connection and unit tests both drive it.

pub mod digest_md5;
pub mod gssapi;
mod negotiation;

pub use negotiation::{SaslNegotiation, SaslStep};

/// The auth the server offered in its NEGOTIATE (RpcSaslProto.SaslAuth).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaslAuth {
    /// Hadoop's auth method: `TOKEN`, `KERBEROS`, `SIMPLE`.
    pub method: String,
    /// SASL mechanism: `DIGEST-MD5`, `GSSAPI`.
    pub mechanism: String,
    /// For KERBEROS: the service part of the principal (`nn`, `rm`).
    pub protocol: String,
    /// `default` for tokens; the host part of the principal for KERBEROS.
    pub server_id: String,
    /// A challenge piggy-backed on NEGOTIATE (DIGEST-MD5 does this).
    pub challenge: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SaslError {
    #[error("the server offered no SASL mechanism we can use (it offered: {offered}); {fix}")]
    NoUsableMechanism { offered: String, fix: String },
    #[error("malformed SASL {what} from the server: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("the server's SASL proof did not verify: it does not know our token's password (wrong or rolled token?)")]
    ServerNotAuthenticated,
    #[error("GSSAPI: {0}")]
    Gssapi(String),
    /// Kerberos login or context failures, typed (no ticket, expired, wrong keytab, unknown principal).
    #[error(transparent)]
    Kerberos(#[from] crate::kerberos::KerberosError),
    #[error("the server asked for {what}, which we do not support; {fix}")]
    Unsupported { what: String, fix: String },
    #[error("unexpected SASL {state} from the server {when}")]
    UnexpectedState { state: String, when: &'static str },
}

/// A client-side SASL mechanism, driven by the IPC connection's negotiation.
pub trait SaslMechanism: Send {
    /// The SASL mechanism name (`DIGEST-MD5`, `GSSAPI`).
    fn mechanism(&self) -> &'static str;
    /// Whether this mechanism can answer the server's offer `auth`.
    fn accepts(&self, auth: &SaslAuth) -> bool;
    /// The token sent in INITIATE, given the offer chosen.
    fn initial_response(&mut self, auth: &SaslAuth) -> Result<Vec<u8>, SaslError>;
    /// The answer to a CHALLENGE.
    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError>;
    /// SUCCESS arrived, possibly with a last token (DIGEST-MD5's `rspauth`);
    /// verify it.
    fn finish(&mut self, last: Option<&[u8]>) -> Result<(), SaslError>;
}
