//! SASL GSSAPI (RFC 4752) for Hadoop IPC's KERBEROS auth method.
//!
//! The exchange as Hadoop 3.3.6 runs it (see the wire README): INITIATE
//! carries the AP-REQ; the server's CHALLENGE carries the AP-REP, which we
//! answer with an empty RESPONSE once our context is complete; the server then
//! sends a wrapped 4-byte security-layer offer (layer bitmask + max buffer
//! size) and we answer with our wrapped choice: no security layer (QOP
//! `auth`), max size 0, no authorization id. Four client messages; the
//! last one is the part that is easy to miss.
//!
//! Integrity and privacy layers would wrap every later IPC frame; the
//! connection does not do that, so an offer without "no layer" is refused
//! with a message naming `hadoop.rpc.protection`.

use crate::gss::{self, ClientCtx, Name, NameType};

use super::{SaslAuth, SaslError, SaslMechanism};
use crate::conf::resolve_host_principal;
use crate::kerberos::{classify, service_principal, Context, KerberosError, KerberosLogin};

/// Security-layer bits of RFC 4752's offer/choice byte.
pub const LAYER_NONE: u8 = 1;
pub const LAYER_INTEGRITY: u8 = 2;
pub const LAYER_PRIVACY: u8 = 4;

enum State {
    Start,
    /// Context establishment under way.
    Establishing(ClientCtx),
    /// Context complete; waiting for the wrapped security-layer offer.
    AwaitingOffer(ClientCtx),
    /// Our choice is sent; SUCCESS is next.
    Chosen,
    Failed,
}

/// The client side of SASL GSSAPI with a Kerberos login.
pub struct Gssapi {
    login: KerberosLogin,
    /// A configured server principal (`rm/_HOST@REALM`); `_HOST` becomes the
    /// server id of the offer. When `None`, the offer's `protocol/serverId` is used.
    configured_principal: Option<String>,
    service: String,
    state: State,
}

impl Gssapi {
    pub fn new(login: KerberosLogin) -> Self {
        Gssapi { login, configured_principal: None, service: String::new(), state: State::Start }
    }

    /// Authenticate to this server principal (e.g. `yarn.resourcemanager.principal`,
    /// `_HOST` allowed) instead of trusting the server's NEGOTIATE alone. A
    /// mismatch with the offer is an error, as in Hadoop's `SaslRpcClient`.
    pub fn with_server_principal(mut self, principal: impl Into<String>) -> Self {
        self.configured_principal = Some(principal.into());
        self
    }

    fn kerberos(&self, e: gss::Error) -> SaslError {
        SaslError::Kerberos(classify(
            e,
            &Context::Connect { service: &self.service, principal: self.login.principal() },
        ))
    }

    fn target(&mut self, auth: &SaslAuth) -> Result<Name, SaslError> {
        if auth.protocol.is_empty() || auth.server_id.is_empty() {
            return Err(SaslError::Malformed {
                what: "KERBEROS offer",
                detail: "it names no protocol/serverId for the service principal".into(),
            });
        }
        let offered = service_principal(&auth.protocol, &auth.server_id);
        match &self.configured_principal {
            Some(pattern) => {
                let resolved = resolve_host_principal(pattern, &auth.server_id);
                let without_realm = resolved.split('@').next().unwrap_or(&resolved);
                if !without_realm.eq_ignore_ascii_case(&offered) {
                    return Err(SaslError::Kerberos(KerberosError::ServerPrincipalMismatch {
                        offered,
                        configured: resolved,
                    }));
                }
                self.service = resolved.clone();
                Name::new(&resolved, NameType::KerberosPrincipal).map_err(|e| self.kerberos(e))
            }
            None => {
                self.service = offered;
                let hostbased = format!("{}@{}", auth.protocol, auth.server_id);
                Name::new(&hostbased, NameType::HostBasedService).map_err(|e| self.kerberos(e))
            }
        }
    }
}

impl SaslMechanism for Gssapi {
    fn mechanism(&self) -> &'static str {
        "GSSAPI"
    }

    fn accepts(&self, auth: &SaslAuth) -> bool {
        auth.method == "KERBEROS" && auth.mechanism == "GSSAPI"
    }

    fn initial_response(&mut self, auth: &SaslAuth) -> Result<Vec<u8>, SaslError> {
        let target = self.target(auth)?;
        let mut ctx = ClientCtx::new(Some(self.login.credential()), target, gss::MUTUAL | gss::INTEG | gss::CONF);
        match ctx.step(None) {
            Ok(Some(out)) => {
                self.state = if ctx.is_complete() { State::AwaitingOffer(ctx) } else { State::Establishing(ctx) };
                Ok(out)
            }
            Ok(None) => {
                self.state = State::Failed;
                Err(SaslError::Gssapi("GSSAPI produced no initial token".into()))
            }
            Err(e) => {
                self.state = State::Failed;
                Err(self.kerberos(e))
            }
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Establishing(mut ctx) => {
                let out = ctx.step(Some(challenge)).map_err(|e| self.kerberos(e))?.unwrap_or_default();
                self.state = if ctx.is_complete() { State::AwaitingOffer(ctx) } else { State::Establishing(ctx) };
                // Complete: an empty RESPONSE asks for the security-layer offer.
                Ok(out)
            }
            State::AwaitingOffer(mut ctx) => {
                let offer = ctx
                    .unwrap(challenge)
                    .map_err(|e| SaslError::Gssapi(format!("cannot unwrap the server's security-layer offer: {e}")))?;
                if offer.len() != 4 {
                    return Err(SaslError::Malformed {
                        what: "GSSAPI security-layer offer",
                        detail: format!("{} bytes, expected 4", offer.len()),
                    });
                }
                if offer[0] & LAYER_NONE == 0 {
                    return Err(SaslError::Unsupported {
                        what: format!("a SASL security layer (offer bits {:#x}: integrity/privacy only)", offer[0]),
                        fix: "this client speaks hadoop.rpc.protection=authentication only; ask the cluster \
                              admins to include `authentication` in hadoop.rpc.protection"
                            .into(),
                    });
                }
                // No layer, max buffer 0, no authorization id (Hadoop sends none).
                let choice = [LAYER_NONE, 0, 0, 0];
                let wrapped = ctx.wrap(false, &choice).map_err(|e| self.kerberos(e))?;
                self.state = State::Chosen;
                Ok(wrapped)
            }
            State::Start | State::Chosen | State::Failed => {
                Err(SaslError::UnexpectedState { state: "CHALLENGE".into(), when: "after the GSSAPI exchange ended" })
            }
        }
    }

    fn finish(&mut self, last: Option<&[u8]>) -> Result<(), SaslError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::Chosen if last.is_none_or(|t| t.is_empty()) => Ok(()),
            State::Chosen => {
                Err(SaslError::Malformed { what: "GSSAPI SUCCESS", detail: "it carries an unexpected token".into() })
            }
            _ => Err(SaslError::UnexpectedState {
                state: "SUCCESS".into(),
                when: "before the GSSAPI security layer was agreed",
            }),
        }
    }
}
