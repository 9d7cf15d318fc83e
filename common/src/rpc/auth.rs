//! Every control-plane endpoint is authenticated by the per-application
//! secret: the AM makes it, hands it to TaskManagers through the cluster
//! manager's secret channel (YARN credentials, a Kubernetes secret, a 0600
//! file for local processes) and never puts it on a command line or in a log.
//!
//! Each request carries it in the `x-yarn-flink-secret` metadata entry; the
//! server compares in constant time. (Channel encryption is the transport's
//! job: TLS is the next step for untrusted networks.)

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::AsciiMetadataValue;
use tonic::{Request, Status};

const HEADER: &str = "x-yarn-flink-secret";

/// The per-application secret. Debug and Display never show it.
#[derive(Clone)]
pub struct AppSecret {
    bytes: Arc<[u8]>,
    /// The form every request carries; kept so no call formats it anew.
    hex: Arc<str>,
    /// The web UI's read-only token, derived once.
    read_only: Arc<str>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the application secret from {path}: {source}; the file is written by the process that started this one (AM or driver) — was it removed?")]
    Read { path: String, source: std::io::Error },
    #[error("the application secret in {path} is empty or not hex; it must be the file the AM wrote, unchanged")]
    Malformed { path: String },
    #[error("cannot write the application secret to {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

impl AppSecret {
    /// 32 random bytes.
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        // Two v4 UUIDs = 244 random bits from the OS generator.
        b[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        b[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self::from_bytes(&b)
    }

    pub fn from_bytes(b: &[u8]) -> Self {
        let hex = hex::encode(b);
        let read_only = Arc::from(read_only_token_of(&hex));
        Self { bytes: Arc::from(b), hex: Arc::from(hex), read_only }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn to_hex(&self) -> String {
        self.hex.to_string()
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        hex::decode(s).ok().map(|b| Self::from_bytes(&b))
    }

    /// Writes the secret (hex) to `path`, readable by the owner only.
    pub fn write_to(&self, path: &Path) -> Result<(), SecretError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| SecretError::Write { path: path.display().to_string(), source };
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(err)?;
        f.write_all(self.to_hex().as_bytes()).map_err(err)
    }

    pub fn read_from(path: &Path) -> Result<Self, SecretError> {
        let s = std::fs::read_to_string(path)
            .map_err(|source| SecretError::Read { path: path.display().to_string(), source })?;
        Self::from_hex(&s).ok_or_else(|| SecretError::Malformed { path: path.display().to_string() })
    }

    /// Constant-time check of a presented hex secret.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.hex.as_bytes().ct_eq(presented).into()
    }

    /// A token that grants reading the REST API and nothing else (the web UI
    /// in a browser): derived, so it reveals nothing of the secret.
    pub fn read_only_token(&self) -> &str {
        &self.read_only
    }

    /// Constant-time check of a presented read-only token.
    pub fn matches_read_only(&self, presented: &[u8]) -> bool {
        self.read_only.as_bytes().ct_eq(presented).into()
    }
}

fn read_only_token_of(secret_hex: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret_hex.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"yarn-flink web ui: read only");
    hex::encode(mac.finalize().into_bytes())
}

impl fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AppSecret(..)")
    }
}

/// Client side: adds the secret to every request.
#[derive(Clone)]
pub struct ClientAuth(AsciiMetadataValue);

impl ClientAuth {
    pub fn new(secret: &AppSecret) -> Self {
        // Hex is always valid ASCII metadata.
        let v = AsciiMetadataValue::try_from(secret.to_hex()).unwrap_or_else(|_| AsciiMetadataValue::from_static(""));
        Self(v)
    }
}

impl tonic::service::Interceptor for ClientAuth {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert(HEADER, self.0.clone());
        Ok(req)
    }
}

/// Server side: refuses any request without the right secret.
#[derive(Clone)]
pub struct AuthInterceptor(AppSecret);

impl AuthInterceptor {
    pub fn new(secret: AppSecret) -> Self {
        Self(secret)
    }
}

impl tonic::service::Interceptor for AuthInterceptor {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        match req.metadata().get(HEADER) {
            Some(v) if self.0.matches(v.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong application secret")),
            None => Err(Status::unauthenticated("no application secret presented")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_read_only_token_is_derived_from_the_secret_and_is_not_it() {
        let a = AppSecret::generate();
        let again = AppSecret::from_hex(&a.to_hex()).unwrap();
        assert_eq!(a.read_only_token(), again.read_only_token(), "a session's token survives a restart of the client");
        assert_ne!(a.read_only_token(), AppSecret::generate().read_only_token());
        assert!(a.matches_read_only(a.read_only_token().as_bytes()));
        assert!(!a.matches_read_only(a.to_hex().as_bytes()), "the secret is not a read-only token");
        assert!(!a.matches(a.read_only_token().as_bytes()), "nor the token the secret");
    }

    #[test]
    fn hex_round_trip_and_no_leak_in_debug() {
        let s = AppSecret::generate();
        let back = AppSecret::from_hex(&s.to_hex()).unwrap();
        assert_eq!(s.as_bytes(), back.as_bytes());
        assert_eq!(format!("{s:?}"), "AppSecret(..)");
        assert!(AppSecret::from_hex("xyz").is_none());
        assert!(AppSecret::from_hex("").is_none());
    }

    #[test]
    fn interceptor_refuses_missing_and_wrong_secrets() {
        use tonic::service::Interceptor;
        let s = AppSecret::generate();
        let mut server = AuthInterceptor::new(s.clone());
        assert_eq!(server.call(Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
        let wrong = ClientAuth::new(&AppSecret::generate()).call(Request::new(())).unwrap();
        assert_eq!(server.call(wrong).unwrap_err().code(), tonic::Code::Unauthenticated);
        let right = ClientAuth::new(&s).call(Request::new(())).unwrap();
        assert!(server.call(right).is_ok());
    }
}
