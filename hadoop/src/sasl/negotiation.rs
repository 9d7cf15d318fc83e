//! The client side of Hadoop's SASL exchange (`SaslRpcClient`), as a state
//! machine over `RpcSaslProto` messages.
//!
//! Client NEGOTIATE -> server NEGOTIATE listing its auths (or SUCCESS right
//! away when it accepts SIMPLE) -> client INITIATE with the chosen auth and the
//! mechanism's first token -> CHALLENGE / RESPONSE as long as the mechanism
//! needs -> server SUCCESS, possibly with a last token (DIGEST-MD5's rspauth).

use super::{SaslAuth, SaslError, SaslMechanism};
use crate::proto::common::{rpc_sasl_proto, RpcSaslProto};

/// What the connection should do next.
#[derive(Debug)]
pub enum SaslStep {
    /// Send this message on call id -33 and feed the answer to `handle`.
    Send(RpcSaslProto),
    /// Authenticated. `auth` is the offer we used (`None`: the server let us
    /// in with SIMPLE).
    Done { auth: Option<SaslAuth> },
}

enum State {
    Start,
    Negotiating,
    Exchanging { mechanism: usize, auth: SaslAuth },
    Done,
}

pub struct SaslNegotiation {
    mechanisms: Vec<Box<dyn SaslMechanism>>,
    state: State,
}

fn state_name(state: i32) -> String {
    rpc_sasl_proto::SaslState::try_from(state)
        .map(|s| s.as_str_name().to_string())
        .unwrap_or_else(|_| format!("state {state}"))
}

impl SaslNegotiation {
    /// `mechanisms` in order of preference; the server's order of offers wins
    /// among those we have (that is what Hadoop's client does).
    pub fn new(mechanisms: Vec<Box<dyn SaslMechanism>>) -> Self {
        Self { mechanisms, state: State::Start }
    }

    /// The opening NEGOTIATE.
    pub fn start(&mut self) -> RpcSaslProto {
        self.state = State::Negotiating;
        message(rpc_sasl_proto::SaslState::Negotiate, None, Vec::new())
    }

    /// Feed one message from the server.
    pub fn handle(&mut self, msg: RpcSaslProto) -> Result<SaslStep, SaslError> {
        use rpc_sasl_proto::SaslState as S;
        let state = S::try_from(msg.state)
            .map_err(|_| SaslError::Malformed { what: "message", detail: format!("unknown state {}", msg.state) })?;
        match (std::mem::replace(&mut self.state, State::Done), state) {
            (State::Negotiating, S::Success) => Ok(SaslStep::Done { auth: None }),
            (State::Negotiating, S::Negotiate) => {
                let offers: Vec<SaslAuth> = msg.auths.into_iter().map(SaslAuth::from).collect();
                let pick = offers.iter().find_map(|offer| {
                    self.mechanisms.iter().position(|m| m.accepts(offer)).map(|i| (i, offer.clone()))
                });
                let Some((index, auth)) = pick else {
                    let offered =
                        offers.iter().map(|a| format!("{}/{}", a.method, a.mechanism)).collect::<Vec<_>>().join(", ");
                    let ours = self.mechanisms.iter().map(|m| m.mechanism()).collect::<Vec<_>>().join(", ");
                    return Err(SaslError::NoUsableMechanism {
                        offered,
                        fix: format!(
                            "we could use [{ours}]: give the client a token for this server, or a Kerberos login \
                             for a KERBEROS offer"
                        ),
                    });
                };
                let token = self.mechanisms[index].initial_response(&auth)?;
                // INITIATE echoes the chosen offer without its challenge.
                let chosen = rpc_sasl_proto::SaslAuth {
                    method: auth.method.clone(),
                    mechanism: auth.mechanism.clone(),
                    protocol: Some(auth.protocol.clone()),
                    server_id: Some(auth.server_id.clone()),
                    challenge: None,
                };
                self.state = State::Exchanging { mechanism: index, auth };
                Ok(SaslStep::Send(message(S::Initiate, Some(token), vec![chosen])))
            }
            (State::Exchanging { mechanism, auth }, S::Challenge) => {
                let token = self.mechanisms[mechanism].step(msg.token.as_deref().unwrap_or_default())?;
                self.state = State::Exchanging { mechanism, auth };
                Ok(SaslStep::Send(message(S::Response, Some(token), Vec::new())))
            }
            (State::Exchanging { mechanism, auth }, S::Success) => {
                self.mechanisms[mechanism].finish(msg.token.as_deref())?;
                Ok(SaslStep::Done { auth: Some(auth) })
            }
            (State::Start, _) => {
                Err(SaslError::UnexpectedState { state: state_name(msg.state), when: "before our NEGOTIATE" })
            }
            (State::Negotiating, _) => {
                Err(SaslError::UnexpectedState { state: state_name(msg.state), when: "in answer to NEGOTIATE" })
            }
            (State::Exchanging { .. }, _) => {
                Err(SaslError::UnexpectedState { state: state_name(msg.state), when: "during the exchange" })
            }
            (State::Done, _) => {
                Err(SaslError::UnexpectedState { state: state_name(msg.state), when: "after authentication" })
            }
        }
    }
}

fn message(
    state: rpc_sasl_proto::SaslState,
    token: Option<Vec<u8>>,
    auths: Vec<rpc_sasl_proto::SaslAuth>,
) -> RpcSaslProto {
    RpcSaslProto { version: None, state: state as i32, token, auths }
}

impl From<rpc_sasl_proto::SaslAuth> for SaslAuth {
    fn from(a: rpc_sasl_proto::SaslAuth) -> Self {
        SaslAuth {
            method: a.method,
            mechanism: a.mechanism,
            protocol: a.protocol.unwrap_or_default(),
            server_id: a.server_id.unwrap_or_default(),
            challenge: a.challenge,
        }
    }
}

impl From<&SaslAuth> for rpc_sasl_proto::SaslAuth {
    fn from(a: &SaslAuth) -> Self {
        rpc_sasl_proto::SaslAuth {
            method: a.method.clone(),
            mechanism: a.mechanism.clone(),
            protocol: Some(a.protocol.clone()),
            server_id: Some(a.server_id.clone()),
            challenge: a.challenge.clone(),
        }
    }
}
