//! The Hadoop IPC client, in layers: [`frame`] (bytes <-> typed frames, no
//! I/O policy) -> [`connection`] (one authenticated TCP connection with
//! concurrent calls) -> [`failover`] (several addresses, reconnect with backoff).

pub mod connection;
pub mod failover;
pub mod frame;

pub use connection::{Auth, Connection, ConnectionConfig, MechanismFactory};
pub use failover::{FailoverProxy, RetryPolicy};
