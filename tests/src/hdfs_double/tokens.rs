//! The NameNode's delegation tokens, when the double runs with security on:
//! issued to Kerberos callers only, renewed by their renewer, checked at
//! every TOKEN (DIGEST-MD5) connection against their current expiry, as
//! Hadoop's `AbstractDelegationTokenSecretManager` does.
//!
//! Checked against: the identifiers are byte-for-byte what a real NameNode
//! writes (`kerberos/tokens/alice-hdfs-delegation.tokens` round-trips through
//! `DelegationTokenIdentifier::to_writable_bytes`); the call shapes are the
//! captured `kerberos/ipc/nn-*-delegation-token`. The expiry rule (expired
//! once `renewDate` is past; renewal moves it to `min(now + interval, max)`),
//! the refusal texts and "only with kerberos" are Hadoop 3.3's source and
//! docs: *unverified* against a capture.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hadoop::credentials::{DelegationTokenIdentifier, TokenIdentifier};
use hadoop::proto::common as pc;
use hadoop::RemoteException;
use prost::Message;

use crate::hadoop_ipc_server::sasl::{SecretManager, INVALID_TOKEN};
use crate::hadoop_ipc_server::CallContext;

pub const KIND: &str = "HDFS_DELEGATION_TOKEN";

/// How long tokens live (Hadoop: `dfs.namenode.delegation.token.renew-interval`,
/// 24 h, and `.max-lifetime`, 7 days; tests use seconds).
#[derive(Clone, Debug)]
pub struct TokenLifetimes {
    pub renew_interval: Duration,
    pub max_lifetime: Duration,
}

struct Issued {
    id: DelegationTokenIdentifier,
    /// When it stops being accepted unless renewed (ms since the epoch).
    expiry_ms: i64,
}

#[derive(Clone)]
pub(crate) struct TokenStore {
    lifetimes: TokenLifetimes,
    secrets: SecretManager,
    issued: Arc<Mutex<BTreeMap<i32, Issued>>>,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or_default()
}

fn remote(class: &str, message: String) -> RemoteException {
    RemoteException { class: class.into(), message, fatal: false }
}

/// `alice@REALM` and `rm/host@REALM` → `alice`, `rm` (Hadoop's DEFAULT rule).
fn short(principal: &str) -> String {
    principal.split(['/', '@']).next().unwrap_or(principal).to_owned()
}

fn describe(id: &DelegationTokenIdentifier) -> String {
    format!("{KIND} token {} for {}", id.sequence_number, short(&id.owner))
}

fn utc(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_else(|_| ms.to_string())
}

impl TokenStore {
    pub(crate) fn new(lifetimes: TokenLifetimes) -> Self {
        let issued: Arc<Mutex<BTreeMap<i32, Issued>>> = Arc::default();
        let seen = issued.clone();
        let check = Arc::new(move |identifier: &[u8]| -> Result<(), String> {
            let TokenIdentifier::Delegation(id) = TokenIdentifier::decode(KIND, identifier) else {
                return Err("not an HDFS delegation token identifier".into());
            };
            let issued = seen.lock().unwrap();
            match issued.get(&id.sequence_number) {
                None => Err(format!("token ({}) can't be found in cache", describe(&id))),
                Some(t) if now_ms() > t.expiry_ms => Err(format!(
                    "token ({}) is expired, current time: {} expected renewal time: {}",
                    describe(&id),
                    utc(now_ms()),
                    utc(t.expiry_ms)
                )),
                Some(_) => Ok(()),
            }
        });
        Self { lifetimes, secrets: SecretManager::random().with_check(check), issued }
    }

    /// The DIGEST-MD5 side of the NameNode's SASL: it checks each token.
    pub(crate) fn secrets(&self) -> &SecretManager {
        &self.secrets
    }

    /// Answers the delegation token calls; `None` for any other method.
    pub(crate) fn call(
        &self,
        ctx: &CallContext,
        method: &str,
        payload: &[u8],
    ) -> Option<Result<Vec<u8>, RemoteException>> {
        let io = |e: prost::DecodeError| remote("java.io.IOException", e.to_string());
        Some(match method {
            "getDelegationToken" => {
                pc::GetDelegationTokenRequestProto::decode(payload).map_err(io).and_then(|req| self.get(ctx, &req))
            }
            "renewDelegationToken" => {
                pc::RenewDelegationTokenRequestProto::decode(payload).map_err(io).and_then(|req| self.renew(ctx, &req))
            }
            "cancelDelegationToken" => {
                pc::CancelDelegationTokenRequestProto::decode(payload).map_err(io).and_then(|req| self.cancel(&req))
            }
            _ => return None,
        })
    }

    fn get(&self, ctx: &CallContext, req: &pc::GetDelegationTokenRequestProto) -> Result<Vec<u8>, RemoteException> {
        if ctx.mechanism.as_deref() != Some("GSSAPI") {
            return Err(remote(
                "java.io.IOException",
                "Delegation Token can be issued only with kerberos or web authentication".into(),
            ));
        }
        let owner = ctx.user.clone().unwrap_or_default();
        let now = now_ms();
        let mut issued = self.issued.lock().unwrap();
        let sequence_number = issued.keys().next_back().copied().unwrap_or(0) + 1;
        let id = DelegationTokenIdentifier {
            owner,
            renewer: short(&req.renewer),
            real_user: String::new(),
            issue_date_ms: now,
            max_date_ms: now + self.lifetimes.max_lifetime.as_millis() as i64,
            sequence_number,
            master_key_id: 1,
        };
        let identifier = id.to_writable_bytes();
        let expiry_ms = (now + self.lifetimes.renew_interval.as_millis() as i64).min(id.max_date_ms);
        issued.insert(sequence_number, Issued { id, expiry_ms });
        let token = pc::TokenProto {
            password: self.secrets.password(&identifier),
            identifier,
            kind: KIND.into(),
            // A real NameNode leaves the service to the client.
            service: String::new(),
        };
        Ok(pc::GetDelegationTokenResponseProto { token: Some(token) }.encode_to_vec())
    }

    fn lookup<'a>(
        issued: &'a mut BTreeMap<i32, Issued>,
        token: &pc::TokenProto,
    ) -> Result<&'a mut Issued, RemoteException> {
        let TokenIdentifier::Delegation(id) = TokenIdentifier::decode(KIND, &token.identifier) else {
            return Err(remote(INVALID_TOKEN, "not an HDFS delegation token".into()));
        };
        issued
            .get_mut(&id.sequence_number)
            .ok_or_else(|| remote(INVALID_TOKEN, format!("token ({}) can't be found in cache", describe(&id))))
    }

    fn renew(&self, ctx: &CallContext, req: &pc::RenewDelegationTokenRequestProto) -> Result<Vec<u8>, RemoteException> {
        let mut issued = self.issued.lock().unwrap();
        let t = Self::lookup(&mut issued, &req.token)?;
        let caller = short(ctx.user.as_deref().unwrap_or(""));
        if caller != t.id.renewer {
            return Err(remote(
                "org.apache.hadoop.security.AccessControlException",
                format!(
                    "Client {caller} tries to renew a token ({}) with non-matching renewer {}",
                    describe(&t.id),
                    t.id.renewer
                ),
            ));
        }
        let now = now_ms();
        if now > t.id.max_date_ms {
            return Err(remote(
                INVALID_TOKEN,
                format!("{} cannot be renewed beyond its max lifetime: {}", describe(&t.id), utc(t.id.max_date_ms)),
            ));
        }
        t.expiry_ms = (now + self.lifetimes.renew_interval.as_millis() as i64).min(t.id.max_date_ms);
        Ok(pc::RenewDelegationTokenResponseProto { new_expiry_time: t.expiry_ms as u64 }.encode_to_vec())
    }

    fn cancel(&self, req: &pc::CancelDelegationTokenRequestProto) -> Result<Vec<u8>, RemoteException> {
        let mut issued = self.issued.lock().unwrap();
        let seq = Self::lookup(&mut issued, &req.token)?.id.sequence_number;
        issued.remove(&seq);
        Ok(pc::CancelDelegationTokenResponseProto {}.encode_to_vec())
    }
}
