//! Server-side DIGEST-MD5 with real token passwords, and the secret manager
//! that issues them. Hadoop derives a token's password as a keyed MAC of its
//! identifier (HmacSHA1 under the master key); this double uses HMAC-MD5 under
//! its own key, which is just as unforgeable for a test and needs no new crate.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hadoop::credentials::Token;
use hadoop::proto::common::rpc_sasl_proto;
use hadoop::sasl::digest_md5::{parse_directives, DigestParams};
use hmac::{Hmac, KeyInit, Mac};

use super::{ServerSaslFactory, ServerSaslMechanism, ServerSaslReply};

/// Whether a token identifier may still be used (an issuer's expiry check);
/// `Err` is the `InvalidToken` message.
pub type TokenCheck = Arc<dyn Fn(&[u8]) -> Result<(), String> + Send + Sync>;

/// The class Hadoop refuses an expired or unknown token with.
pub const INVALID_TOKEN: &str = "org.apache.hadoop.security.token.SecretManager$InvalidToken";

/// Issues tokens and recomputes their passwords from the identifier.
#[derive(Clone)]
pub struct SecretManager {
    key: Vec<u8>,
    check: Option<TokenCheck>,
}

impl SecretManager {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec(), check: None }
    }

    /// Tokens are also checked by `check` before their password is computed,
    /// as Hadoop's `AbstractDelegationTokenSecretManager.retrievePassword` does.
    pub fn with_check(mut self, check: TokenCheck) -> Self {
        self.check = Some(check);
        self
    }

    pub fn random() -> Self {
        Self::new(&rand::random::<[u8; 32]>())
    }

    pub fn password(&self, identifier: &[u8]) -> Vec<u8> {
        let mut mac = <Hmac<md5::Md5> as KeyInit>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(identifier);
        mac.finalize().into_bytes().to_vec()
    }

    pub fn issue(&self, identifier: Vec<u8>, kind: &str, service: &str) -> Token {
        Token { password: self.password(&identifier), identifier, kind: kind.into(), service: service.into() }
    }

    /// A DIGEST-MD5 acceptor for tokens issued by this manager.
    pub fn digest_md5(&self) -> ServerSaslFactory {
        let secrets = self.clone();
        Arc::new(move || Box::new(DigestMd5Server::new(secrets.clone())) as Box<dyn ServerSaslMechanism>)
    }
}

pub struct DigestMd5Server {
    secrets: SecretManager,
    nonce: String,
    user: Option<String>,
    invalid_token: bool,
}

impl DigestMd5Server {
    pub fn new(secrets: SecretManager) -> Self {
        Self { secrets, nonce: BASE64.encode(rand::random::<[u8; 30]>()), user: None, invalid_token: false }
    }
}

impl ServerSaslMechanism for DigestMd5Server {
    fn offer(&mut self) -> rpc_sasl_proto::SaslAuth {
        rpc_sasl_proto::SaslAuth {
            method: "TOKEN".into(),
            mechanism: "DIGEST-MD5".into(),
            protocol: Some(String::new()),
            server_id: Some("default".into()),
            challenge: Some(
                format!("realm=\"default\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess", self.nonce)
                    .into_bytes(),
            ),
        }
    }

    fn step(&mut self, token: &[u8]) -> Result<ServerSaslReply, String> {
        let text = std::str::from_utf8(token).map_err(|_| "DIGEST-MD5: response is not UTF-8".to_string())?;
        let d = parse_directives(text).map_err(|e| e.to_string())?;
        let get = |k: &str| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).unwrap_or("");
        if get("nonce") != self.nonce {
            return Err("DIGEST-MD5: digest response format violation. Mismatched nonce.".into());
        }
        let identifier = BASE64.decode(get("username")).map_err(|_| "DIGEST-MD5: bad username".to_string())?;
        if let Some(check) = &self.secrets.check {
            check(&identifier).inspect_err(|_| self.invalid_token = true)?;
        }
        let password = BASE64.encode(self.secrets.password(&identifier));
        let params = DigestParams {
            username: get("username"),
            realm: get("realm"),
            password: &password,
            nonce: &self.nonce,
            cnonce: get("cnonce"),
            nc: get("nc"),
            qop: get("qop"),
            digest_uri: get("digest-uri"),
        };
        if params.response(true) != get("response") {
            return Err("DIGEST-MD5: digest response format violation. Mismatched response.".into());
        }
        self.user = Some(get("username").to_string());
        Ok(ServerSaslReply::Success(Some(format!("rspauth={}", params.response(false)).into_bytes())))
    }

    fn user(&self) -> Option<String> {
        self.user.clone()
    }

    fn error_class(&self) -> &'static str {
        if self.invalid_token {
            INVALID_TOKEN
        } else {
            "javax.security.sasl.SaslException"
        }
    }
}
