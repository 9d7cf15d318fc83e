//! A proxy over several addresses of one service (ResourceManager HA ids, a
//! NameNode pair): calls go to the current server; when it cannot be reached,
//! drops the connection, or answers `org.apache.hadoop.ipc.StandbyException`,
//! the proxy moves to the next address and retries with exponential backoff
//! (the `backon` crate). Other errors (the server threw, SASL refused) return
//! at once: another attempt would not change them.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use prost::Message;
use tokio::sync::Mutex;

use super::connection::{Auth, Connection, ConnectionConfig};
use crate::error::Error;

/// How hard to try before giving up.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts after the first (each moves on to the next address).
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Roughly what Hadoop's failover proxy does for the RM: a few rounds
        // over the HA ids, backing off to several seconds.
        Self { max_retries: 10, min_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }
}

struct State {
    index: usize,
    conn: Option<Arc<Connection>>,
    config: ConnectionConfig,
}

pub struct FailoverProxy {
    addrs: Vec<String>,
    policy: RetryPolicy,
    state: Mutex<State>,
}

impl std::fmt::Debug for FailoverProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverProxy").field("addrs", &self.addrs).finish_non_exhaustive()
    }
}

impl FailoverProxy {
    /// `addrs` (`host:port`) in the order to try; must not be empty.
    pub fn new(addrs: Vec<String>, config: ConnectionConfig) -> Self {
        Self { addrs, policy: RetryPolicy::default(), state: Mutex::new(State { index: 0, conn: None, config }) }
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// The address calls currently go to.
    pub async fn current_addr(&self) -> Option<String> {
        let state = self.state.lock().await;
        self.addrs.get(state.index).cloned()
    }

    /// Use `auth` for connections made from now on (e.g. a rolled AMRMToken).
    /// The open connection stays: it is already authenticated.
    pub async fn set_auth(&self, auth: Auth) {
        self.state.lock().await.config.auth = auth;
    }

    /// Call `method`, failing over as described in the module docs.
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        method: &str,
        request: &Req,
    ) -> Result<Resp, Error> {
        let bytes = request.encode_to_vec();
        let reply = self.call_raw(method, &bytes).await?;
        Resp::decode(reply.as_slice()).map_err(|e| Error::Frame {
            addr: self.addrs.join(","),
            source: super::frame::FrameError::Protobuf { what: "response message", detail: format!("{method}: {e}") },
        })
    }

    pub async fn call_raw(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, Error> {
        if self.addrs.is_empty() {
            return Err(Error::NoActiveServer {
                addrs: String::new(),
                last: Box::new(Error::Protocol { addr: String::new(), detail: "no address configured".into() }),
            });
        }
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.policy.min_delay)
            .with_max_delay(self.policy.max_delay)
            .with_max_times(self.policy.max_retries)
            .with_jitter();
        let result = (|| self.attempt(method, request))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(Error::is_failover_candidate)
            .notify(|e, delay| tracing::info!(error = %e, ?delay, "Hadoop IPC call failed; failing over"))
            .await;
        match result {
            Err(e) if e.is_failover_candidate() => {
                Err(Error::NoActiveServer { addrs: self.addrs.join(", "), last: Box::new(e) })
            }
            other => other,
        }
    }

    async fn attempt(&self, method: &str, request: &[u8]) -> Result<Vec<u8>, Error> {
        let conn = {
            let mut state = self.state.lock().await;
            match &state.conn {
                Some(c) if !c.is_closed() => c.clone(),
                _ => {
                    let addr = self.addrs[state.index].clone();
                    match Connection::connect(&addr, &state.config).await {
                        Ok(c) => {
                            let c = Arc::new(c);
                            state.conn = Some(c.clone());
                            c
                        }
                        Err(e) => {
                            if e.is_failover_candidate() {
                                state.index = (state.index + 1) % self.addrs.len();
                            }
                            return Err(e);
                        }
                    }
                }
            }
        };
        let result = conn.call_raw(method, request).await;
        if let Err(e) = &result {
            if e.is_failover_candidate() {
                let mut state = self.state.lock().await;
                // Only move on if no other caller already did.
                if state.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, &conn)) {
                    state.conn = None;
                    state.index = (state.index + 1) % self.addrs.len();
                }
            }
        }
        result
    }
}
