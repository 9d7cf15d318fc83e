//! One error type for the IPC client and the protocols on top of it.
//!
//! What the *server* said (a Java exception class and its message) stays apart
//! from what went wrong on our side of the socket (I/O, framing, SASL), because
//! callers react differently: a `StandbyException` means "try the other
//! ResourceManager", a broken frame means "this connection is gone".

use std::fmt;

use crate::ipc::frame::FrameError;
use crate::sasl::SaslError;

/// The Java exception a Hadoop server sent back for one call (or for the whole
/// connection when `fatal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteException {
    /// e.g. `org.apache.hadoop.ipc.StandbyException`.
    pub class: String,
    /// The server's message; Hadoop often appends a Java stack trace.
    pub message: String,
    /// FATAL status: the server closed the connection after sending this.
    pub fatal: bool,
}

impl RemoteException {
    /// The class name without its package (`StandbyException`).
    pub fn simple_class(&self) -> &str {
        self.class.rsplit('.').next().unwrap_or(&self.class)
    }

    /// The message without the stack trace Hadoop appends after a newline + tab.
    pub fn first_line(&self) -> &str {
        self.message.lines().next().unwrap_or("").trim_end()
    }

    pub fn is_standby(&self) -> bool {
        self.class == "org.apache.hadoop.ipc.StandbyException"
    }
}

impl fmt::Display for RemoteException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.first_line())
    }
}

/// A Java exception's text as a person wants it: the exception and message
/// lines, without the stack trace Hadoop servers append (`\tat pkg.Class.method(File.java:12)`,
/// `\t... 12 more`). `Caused by:` lines stay: they are often the real reason.
/// Callers log the full text at debug level (`-v`).
pub fn without_java_trace(text: &str) -> String {
    let is_trace = |line: &str| {
        let t = line.trim_start();
        let indented = t.len() < line.len();
        (indented && t.starts_with("at ") && t.ends_with(')')) || (t.starts_with("... ") && t.ends_with(" more"))
    };
    let kept: Vec<&str> = text.lines().filter(|l| !is_trace(l)).collect();
    kept.join("\n").trim_end().to_owned()
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server ran the call and threw.
    #[error("the server refused the call: {0}")]
    Remote(RemoteException),

    /// `InvalidResourceRequestException`, made readable: YARN refuses asks above
    /// its maximum allocation.
    #[error(
        "YARN refused a container request: {summary}; ask for at most the maximum allocation \
         (yarn.scheduler.maximum-allocation-mb / -vcores and the largest NodeManager bound it)"
    )]
    InvalidResourceRequest {
        /// "requested <memory:9000, vCores:1>, maximum allowed allocation <memory:8192, vCores:8>"
        /// when the server's message names both, else its first line.
        summary: String,
        remote: RemoteException,
    },

    #[error("cannot connect to {addr}: {source}; check that the server runs and the address is right")]
    Connect { addr: String, source: std::io::Error },

    #[error("I/O error on the connection to {addr}: {source}")]
    Io { addr: String, source: std::io::Error },

    #[error("timed out after {after:?} {what} {addr}; check that the server runs and is reachable")]
    Timeout { what: &'static str, addr: String, after: std::time::Duration },

    /// Bytes that are not Hadoop IPC (or not the messages we expect).
    #[error("malformed Hadoop IPC data from {addr}: {source}")]
    Frame { addr: String, source: FrameError },

    /// Well-formed frames in an order or shape the protocol does not allow.
    #[error("Hadoop IPC protocol violation by {addr}: {detail}")]
    Protocol { addr: String, detail: String },

    /// Authentication failed on our side (no usable mechanism, bad proof) or
    /// the server refused it (its error arrives as `Remote` during SASL).
    #[error("SASL authentication with {addr} failed: {source}")]
    Sasl { addr: String, source: SaslError },

    /// The server refused our authentication (e.g. a wrong or expired token).
    #[error(
        "{addr} refused our authentication: {remote}; check that the token is current \
         (a rolled AMRMToken, an NMToken from this attempt)"
    )]
    AuthenticationRefused { addr: String, remote: RemoteException },

    /// The connection is gone (closed by the server, a fatal error, or a
    /// broken frame); calls in flight get this. Reconnect to continue.
    #[error("the connection to {addr} is closed: {reason}")]
    ConnectionClosed { addr: String, reason: String },

    /// Every address of a failover proxy failed.
    #[error("no server among [{addrs}] answered as active: {last}")]
    NoActiveServer { addrs: String, last: Box<Error> },

    /// A response that decodes but lacks a field the protocol requires.
    #[error("unexpected response to {method}: {detail}")]
    BadResponse { method: &'static str, detail: String },

    /// The client configuration does not say what a call needs (boxed: it is large).
    #[error(transparent)]
    Conf(Box<crate::conf::ConfError>),
}

impl From<crate::conf::ConfError> for Error {
    fn from(e: crate::conf::ConfError) -> Self {
        Error::Conf(Box::new(e))
    }
}

impl Error {
    /// Turn a server exception into the most helpful error variant.
    pub fn from_remote(remote: RemoteException) -> Self {
        if remote.simple_class() == "InvalidResourceRequestException" {
            let summary = summarize_resource_limit(&remote.message).unwrap_or_else(|| remote.first_line().to_string());
            return Error::InvalidResourceRequest { summary, remote };
        }
        Error::Remote(remote)
    }

    /// The server's exception, if this error carries one.
    pub fn remote(&self) -> Option<&RemoteException> {
        match self {
            Error::Remote(r) | Error::InvalidResourceRequest { remote: r, .. } => Some(r),
            Error::AuthenticationRefused { remote, .. } => Some(remote),
            Error::NoActiveServer { last, .. } => last.remote(),
            _ => None,
        }
    }

    /// Whether another server (HA peer) or a fresh connection may succeed
    /// where this failed: connection-level failures and `StandbyException`.
    pub fn is_failover_candidate(&self) -> bool {
        match self {
            Error::Remote(r) => r.is_standby(),
            Error::Connect { .. } | Error::Io { .. } | Error::Timeout { .. } | Error::ConnectionClosed { .. } => true,
            _ => false,
        }
    }
}

/// Pull "Requested resource=<...>" and "maximum allowed allocation=<...>" out
/// of the scheduler's message, so the error names the limit.
fn summarize_resource_limit(message: &str) -> Option<String> {
    fn angle_after<'a>(s: &'a str, key: &str) -> Option<&'a str> {
        let start = s.find(key)? + key.len();
        let rest = &s[start..];
        let open = rest.find('<')?;
        let close = rest[open..].find('>')? + open;
        Some(&rest[open..=close])
    }
    let max = angle_after(message, "maximum allowed allocation=")?;
    match angle_after(message, "Requested resource=") {
        Some(req) => Some(format!("requested {req}, maximum allowed allocation {max}")),
        None => Some(format!("maximum allowed allocation {max}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_stack_traces_are_cut_and_causes_kept() {
        // The shape of a NameNode's AccessControlException as hdfs-native reports it.
        let text = "org.apache.hadoop.security.AccessControlException: Permission denied: user=root, \
                    access=WRITE, inode=\"/user\":hdfs:supergroup:drwxr-xr-x\n\
                    \tat org.apache.hadoop.hdfs.server.namenode.FSPermissionChecker.check(FSPermissionChecker.java:506)\n\
                    \tat org.apache.hadoop.ipc.Server$Handler.run(Server.java:3048)\n\
                    Caused by: java.io.IOException: quota\n\
                    \t... 14 more\n";
        let short = without_java_trace(text);
        assert_eq!(short.lines().count(), 2, "{short}");
        assert!(short.starts_with("org.apache.hadoop.security.AccessControlException: Permission denied"));
        assert!(short.ends_with("Caused by: java.io.IOException: quota"));
        assert_eq!(without_java_trace("no trace here"), "no trace here");
        // An ordinary sentence that starts with "at" is not a frame.
        assert_eq!(without_java_trace("failed\n  at the second attempt"), "failed\n  at the second attempt");
    }

    #[test]
    fn invalid_resource_request_names_the_limit() {
        let remote = RemoteException {
            class: "org.apache.hadoop.yarn.exceptions.InvalidResourceRequestException".into(),
            message: "Invalid resource request! Cannot allocate containers as requested resource is greater than \
                      maximum allowed allocation. Requested resource type=[memory-mb], Requested resource=<memory:9000, \
                      vCores:1>, maximum allowed allocation=<memory:8192, vCores:8>, please note that maximum allowed \
                      allocation is calculated by scheduler\n\tat org.apache.Foo"
                .into(),
            fatal: false,
        };
        let err = Error::from_remote(remote);
        let text = err.to_string();
        assert!(matches!(err, Error::InvalidResourceRequest { .. }));
        assert!(text.contains("requested <memory:9000, vCores:1>"), "{text}");
        assert!(text.contains("maximum allowed allocation <memory:8192, vCores:8>"), "{text}");
        assert!(text.contains("yarn.scheduler.maximum-allocation-mb"), "{text}");
    }

    #[test]
    fn other_exceptions_stay_remote_and_standby_is_a_failover_candidate() {
        let standby = Error::from_remote(RemoteException {
            class: "org.apache.hadoop.ipc.StandbyException".into(),
            message: "Operation category READ is not supported in state standby".into(),
            fatal: false,
        });
        assert!(standby.is_failover_candidate());
        assert_eq!(standby.remote().map(|r| r.simple_class()), Some("StandbyException"));
        let other = Error::from_remote(RemoteException {
            class: "org.apache.hadoop.security.AccessControlException".into(),
            message: "no".into(),
            fatal: false,
        });
        assert!(!other.is_failover_candidate());
    }
}
