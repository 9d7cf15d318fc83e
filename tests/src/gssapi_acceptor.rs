//! The server side of SASL GSSAPI as Hadoop's IPC server runs it
//! (`GssKrb5Server`), for tests: accept the AP-REQ, answer with the AP-REP,
//! then on the client's empty response send the wrapped 4-byte
//! security-layer offer, then check the client's wrapped choice.
//!
//! Usable by a test IPC server: feed it each client SASL token (INITIATE,
//! then RESPONSEs) and send back what [`AcceptorReply`] says.

use std::path::Path;

use hadoop::gss::{Cred, CredUsage, ServerCtx};

/// RFC 4752 security-layer bits.
pub const LAYER_NONE: u8 = 1;
pub const LAYER_INTEGRITY: u8 = 2;
pub const LAYER_PRIVACY: u8 = 4;

/// What the server sends next.
#[derive(Debug, PartialEq, Eq)]
pub enum AcceptorReply {
    /// A CHALLENGE with this token.
    Challenge(Vec<u8>),
    /// SUCCESS: the client is authenticated.
    Success,
}

enum State {
    Establishing,
    /// Context complete, AP-REP sent: the client's empty response asks for the offer.
    AwaitEmpty,
    AwaitChoice,
    Done,
}

pub struct GssapiAcceptor {
    ctx: ServerCtx,
    state: State,
    offer: u8,
    client: Option<String>,
    /// The client's chosen layer byte, once received.
    pub chosen_layer: Option<u8>,
}

impl GssapiAcceptor {
    /// Accepts for any service principal in `keytab` (e.g. `nn/localhost`).
    pub fn new(keytab: &Path) -> Result<Self, String> {
        let kt = format!("FILE:{}", keytab.display());
        let cred = Cred::acquire_from(None, CredUsage::Accept, &[("keytab", &kt)])
            .map_err(|e| format!("acceptor credentials from {kt}: {e}"))?;
        Ok(GssapiAcceptor {
            ctx: ServerCtx::new(Some(cred)),
            state: State::Establishing,
            offer: LAYER_NONE,
            client: None,
            chosen_layer: None,
        })
    }

    /// Offer these layers (default: none only, `hadoop.rpc.protection=authentication`).
    pub fn with_offer(mut self, layers: u8) -> Self {
        self.offer = layers;
        self
    }

    /// The authenticated client principal, once the context is complete.
    pub fn client_principal(&self) -> Option<&str> {
        self.client.as_deref()
    }

    fn offer_token(&mut self) -> Result<Vec<u8>, String> {
        // Layers, then a 3-byte max buffer size (Hadoop offers 65536 - 1).
        let offer = [self.offer, 0x00, 0xff, 0xff];
        let wrapped = self.ctx.wrap(false, &offer).map_err(|e| format!("wrap offer: {e}"))?;
        self.state = State::AwaitChoice;
        Ok(wrapped)
    }

    /// Handles one client token (INITIATE's, then each RESPONSE's).
    pub fn respond(&mut self, token: &[u8]) -> Result<AcceptorReply, String> {
        match self.state {
            State::Establishing => {
                let out = self.ctx.step(token).map_err(|e| format!("accept_sec_context: {e}"))?;
                if !self.ctx.is_complete() {
                    return Ok(AcceptorReply::Challenge(out.unwrap_or_default()));
                }
                self.client = self.ctx.source_name().map(str::to_owned);
                match out {
                    Some(ap_rep) => {
                        self.state = State::AwaitEmpty;
                        Ok(AcceptorReply::Challenge(ap_rep))
                    }
                    None => Ok(AcceptorReply::Challenge(self.offer_token()?)),
                }
            }
            State::AwaitEmpty => {
                if !token.is_empty() {
                    return Err(format!("expected an empty response after the AP-REP, got {} bytes", token.len()));
                }
                Ok(AcceptorReply::Challenge(self.offer_token()?))
            }
            State::AwaitChoice => {
                let choice = self.ctx.unwrap(token).map_err(|e| format!("unwrap choice: {e}"))?;
                if choice.len() < 4 {
                    return Err(format!("security-layer choice is {} bytes, expected at least 4", choice.len()));
                }
                let layer = choice[0];
                if layer.count_ones() != 1 || layer & self.offer == 0 {
                    return Err(format!("client chose layer {layer:#x}, not one of the offered {:#x}", self.offer));
                }
                self.chosen_layer = Some(layer);
                self.state = State::Done;
                Ok(AcceptorReply::Success)
            }
            State::Done => Err("the exchange is already complete".into()),
        }
    }
}

/// [`GssapiAcceptor`] as a mechanism of the test IPC server
/// ([`crate::hadoop_ipc_server`]): offers KERBEROS/GSSAPI as
/// `protocol/server_id` (e.g. `nn` / `localhost`), as a secure NameNode does.
pub struct GssapiServerMechanism {
    acceptor: Result<GssapiAcceptor, String>,
    protocol: String,
    server_id: String,
}

impl crate::hadoop_ipc_server::ServerSaslMechanism for GssapiServerMechanism {
    fn offer(&mut self) -> hadoop::proto::common::rpc_sasl_proto::SaslAuth {
        hadoop::proto::common::rpc_sasl_proto::SaslAuth {
            method: "KERBEROS".into(),
            mechanism: "GSSAPI".into(),
            protocol: Some(self.protocol.clone()),
            server_id: Some(self.server_id.clone()),
            challenge: None,
        }
    }

    fn step(&mut self, token: &[u8]) -> Result<crate::hadoop_ipc_server::ServerSaslReply, String> {
        use crate::hadoop_ipc_server::ServerSaslReply;
        let acceptor = self.acceptor.as_mut().map_err(|e| e.clone())?;
        match acceptor.respond(token)? {
            AcceptorReply::Challenge(c) => Ok(ServerSaslReply::Challenge(c)),
            AcceptorReply::Success => Ok(ServerSaslReply::Success(None)),
        }
    }

    fn user(&self) -> Option<String> {
        self.acceptor.as_ref().ok().and_then(|a| a.client_principal().map(str::to_owned))
    }
}

/// A server SASL factory accepting Kerberos clients of `protocol/server_id`
/// with the service keys in `keytab`.
pub fn gssapi_server(keytab: &Path, protocol: &str, server_id: &str) -> crate::hadoop_ipc_server::ServerSaslFactory {
    let (keytab, protocol, server_id) = (keytab.to_owned(), protocol.to_owned(), server_id.to_owned());
    std::sync::Arc::new(move || {
        Box::new(GssapiServerMechanism {
            acceptor: GssapiAcceptor::new(&keytab),
            protocol: protocol.clone(),
            server_id: server_id.clone(),
        }) as Box<dyn crate::hadoop_ipc_server::ServerSaslMechanism>
    })
}
