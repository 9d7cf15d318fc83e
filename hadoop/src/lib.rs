//! Talking to Hadoop 3.x in Rust, with no Java and no Hadoop install.
//!
//! Layout:
//! - [`conf`]: `HADOOP_CONF_DIR` site files, defaults, substitution, HA addresses.
//! - [`credentials`]: tokens, secret keys and the token storage file.
//! - [`kerberos`]: Kerberos login (ticket cache or keytab) through GSSAPI; [`ccache`]: what a
//!   `FILE:` ticket cache holds (end and renewable-until times, as klist shows).
//! - [`doctor`]: the checks an operator runs first on an edge node.
//! - [`sasl`]: SASL mechanisms for Hadoop IPC (DIGEST-MD5 for tokens, GSSAPI for Kerberos)
//!   and the negotiation driver that runs them on call id -33.
//! - [`ipc`]: the Hadoop IPC client: `frame` (bytes <-> typed frames, no I/O),
//!   `connection` (one TCP connection, concurrent calls), `failover` (several
//!   addresses, e.g. ResourceManager HA ids).
//! - [`proto`]: prost types generated from our own minimal `.proto` files
//!   (Hadoop 3.3.6 wire names and numbers); only `ipc`, `yarn` and `hdfs` use them.
//! - [`yarn`]: typed ApplicationMasterProtocol ([`yarn::amrm`]) and
//!   ContainerManagementProtocol ([`yarn::nm`]) clients over plain domain types.
//! - [`hdfs`]: ClientNamenodeProtocol delegation tokens (get / renew / cancel).
//! - [`error`]: one error type for all of the above, keeping the server's
//!   exceptions apart from I/O, framing and SASL failures.

pub mod auth_to_local;
pub mod ccache;
pub mod conf;
pub mod credentials;
pub mod doctor;
pub mod error;
pub mod gss;
pub mod hdfs;
pub mod ipc;
pub mod kerberos;
pub mod proto;
pub mod sasl;
pub mod yarn;

pub use error::{Error, RemoteException};

#[cfg(test)]
mod test_fixtures;
