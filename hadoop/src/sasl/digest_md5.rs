//! DIGEST-MD5 (RFC 2831) for Hadoop's TOKEN auth: the AMRMToken, NMTokens,
//! delegation tokens.
//!
//! Hadoop's conventions: username = base64(token identifier), password =
//! base64(token password), realm `default`, digest-uri `protocol/serverId`
//! (`/default` for tokens: the protocol is empty), qop `auth` only (no
//! wrapping after SUCCESS), algorithm `md5-sess`. The server's NEGOTIATE
//! already carries the challenge, so INITIATE holds our response and SUCCESS
//! carries `rspauth`, which we verify: a server that does not know the token's
//! password cannot produce it.
//!
//! The digest helpers are public so the test server can compute the same
//! values from its side.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::{Digest, Md5};

use super::{SaslAuth, SaslError, SaslMechanism};
use crate::credentials::Token;

/// Client-side DIGEST-MD5 over one token.
pub struct DigestMd5 {
    username: String,
    password: String,
    cnonce: Option<String>,
    /// Set once our response is sent: what `rspauth` must equal.
    expected_rspauth: Option<String>,
    verified: bool,
}

impl DigestMd5 {
    pub fn new(token: &Token) -> Self {
        Self {
            username: BASE64.encode(&token.identifier),
            password: BASE64.encode(&token.password),
            cnonce: None,
            expected_rspauth: None,
            verified: false,
        }
    }

    /// Fix the client nonce (reproducing recorded handshakes); normally it is random.
    pub fn with_cnonce(mut self, cnonce: impl Into<String>) -> Self {
        self.cnonce = Some(cnonce.into());
        self
    }

    fn respond(&mut self, challenge: &[u8], digest_uri: &str) -> Result<Vec<u8>, SaslError> {
        let text = std::str::from_utf8(challenge)
            .map_err(|_| SaslError::Malformed { what: "DIGEST-MD5 challenge", detail: "not UTF-8".into() })?;
        let directives = parse_directives(text)?;
        let get = |k: &str| directives.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
        let nonce = get("nonce")
            .ok_or_else(|| SaslError::Malformed { what: "DIGEST-MD5 challenge", detail: "no nonce".into() })?;
        match get("algorithm") {
            Some(a) if a.eq_ignore_ascii_case("md5-sess") => {}
            other => {
                return Err(SaslError::Malformed {
                    what: "DIGEST-MD5 challenge",
                    detail: format!("algorithm must be md5-sess, got {other:?}"),
                })
            }
        }
        let qops = get("qop").unwrap_or("auth");
        if !qops.split(',').any(|q| q.trim() == "auth") {
            return Err(SaslError::Unsupported {
                what: format!("DIGEST-MD5 quality of protection {qops:?}"),
                fix: "set hadoop.rpc.protection=authentication on the server; integrity and privacy wrapping are \
                      not implemented"
                    .into(),
            });
        }
        let realm = get("realm").unwrap_or("");
        let utf8 = get("charset").is_some_and(|c| c.eq_ignore_ascii_case("utf-8"));
        let cnonce = self.cnonce.clone().unwrap_or_else(random_cnonce);
        let nc = "00000001";
        let params = DigestParams {
            username: &self.username,
            realm,
            password: &self.password,
            nonce,
            cnonce: &cnonce,
            nc,
            qop: "auth",
            digest_uri,
        };
        let response = params.response(true);
        self.expected_rspauth = Some(params.response(false));
        let mut out = String::new();
        if utf8 {
            out.push_str("charset=utf-8,");
        }
        out.push_str(&format!("username=\"{}\",", quote(&self.username)));
        if get("realm").is_some() {
            out.push_str(&format!("realm=\"{}\",", quote(realm)));
        }
        out.push_str(&format!(
            "nonce=\"{}\",nc={nc},cnonce=\"{}\",digest-uri=\"{}\",maxbuf=65536,response={response},qop=auth",
            quote(nonce),
            quote(&cnonce),
            quote(digest_uri)
        ));
        Ok(out.into_bytes())
    }

    fn verify(&mut self, token: &[u8]) -> Result<(), SaslError> {
        let text = std::str::from_utf8(token)
            .map_err(|_| SaslError::Malformed { what: "DIGEST-MD5 rspauth", detail: "not UTF-8".into() })?;
        let directives = parse_directives(text)?;
        let got = directives
            .iter()
            .find(|(k, _)| k == "rspauth")
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| SaslError::Malformed { what: "DIGEST-MD5 rspauth", detail: format!("{text:?}") })?;
        match &self.expected_rspauth {
            Some(expected) if constant_time_eq(expected.as_bytes(), got.as_bytes()) => {
                self.verified = true;
                Ok(())
            }
            _ => Err(SaslError::ServerNotAuthenticated),
        }
    }
}

// Constant time: the proof is a secret-derived value.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl SaslMechanism for DigestMd5 {
    fn mechanism(&self) -> &'static str {
        "DIGEST-MD5"
    }

    fn accepts(&self, auth: &SaslAuth) -> bool {
        auth.method == "TOKEN" && auth.mechanism == "DIGEST-MD5"
    }

    fn initial_response(&mut self, auth: &SaslAuth) -> Result<Vec<u8>, SaslError> {
        let digest_uri = format!("{}/{}", auth.protocol, auth.server_id);
        match &auth.challenge {
            Some(challenge) => self.respond(challenge, &digest_uri),
            // No piggy-backed challenge: an empty INITIATE asks for one.
            None => Ok(Vec::new()),
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        if self.expected_rspauth.is_none() {
            // Servers that did not send the challenge with NEGOTIATE send it now;
            // Hadoop's digest-uri for tokens is always "/default".
            return self.respond(challenge, "/default");
        }
        // Some servers send rspauth as a last challenge and expect an empty answer.
        self.verify(challenge)?;
        Ok(Vec::new())
    }

    fn finish(&mut self, last: Option<&[u8]>) -> Result<(), SaslError> {
        match last {
            Some(token) if !token.is_empty() => self.verify(token),
            _ if self.verified => Ok(()),
            _ => Err(SaslError::ServerNotAuthenticated),
        }
    }
}

fn random_cnonce() -> String {
    let bytes: [u8; 30] = rand::random();
    BASE64.encode(bytes)
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Inputs of the RFC 2831 digest (md5-sess, no authzid).
#[derive(Clone, Copy, Debug)]
pub struct DigestParams<'a> {
    pub username: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: &'a str,
    pub qop: &'a str,
    pub digest_uri: &'a str,
}

impl DigestParams<'_> {
    /// `response` (client proof, `authenticate = true`) or `rspauth` (server
    /// proof, `false`) as 32 lowercase hex digits.
    pub fn response(&self, authenticate: bool) -> String {
        let inner = Md5::digest(format!("{}:{}:{}", self.username, self.realm, self.password).as_bytes());
        let mut a1 = inner.to_vec();
        a1.extend_from_slice(format!(":{}:{}", self.nonce, self.cnonce).as_bytes());
        let ha1 = hex::encode(Md5::digest(&a1));
        let a2 =
            if authenticate { format!("AUTHENTICATE:{}", self.digest_uri) } else { format!(":{}", self.digest_uri) };
        let ha2 = hex::encode(Md5::digest(a2.as_bytes()));
        hex::encode(Md5::digest(
            format!("{ha1}:{}:{}:{}:{}:{ha2}", self.nonce, self.nc, self.cnonce, self.qop).as_bytes(),
        ))
    }
}

/// Parse `key=value, key="quoted \" value"` directives (RFC 2831 section 7.1).
pub fn parse_directives(text: &str) -> Result<Vec<(String, String)>, SaslError> {
    let malformed = |detail: String| SaslError::Malformed { what: "DIGEST-MD5 directives", detail };
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(malformed(format!("directive {key:?} has no value")));
        }
        let key = key.trim().to_ascii_lowercase();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(malformed(format!("unterminated quoted value of {key}"))),
                    },
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => return Err(malformed(format!("unterminated quoted value of {key}"))),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests;
