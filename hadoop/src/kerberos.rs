//! Kerberos login through GSSAPI (MIT krb5, loaded at run time: [`crate::gss`]).
//!
//! Two ways in, as Hadoop's `UserGroupInformation` has:
//! - the ticket cache (`kinit` beforehand; `KRB5CCNAME` or an explicit cache);
//! - a keytab and a principal: credentials come from the keytab into a
//!   private in-memory cache of ours (`gss_acquire_cred_from` with
//!   `client_keytab`), so the user's own cache is never touched and no process
//!   environment is changed.
//!
//! Failures are classified into what an operator can act on (no ticket,
//! expired ticket, wrong keytab, unknown service principal, KDC unreachable),
//! each saying what to run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::gss::{self, Cred, CredUsage, Error as GssError};

#[derive(Debug, thiserror::Error)]
pub enum KerberosError {
    #[error("no Kerberos ticket{}: run `kinit <principal>` first, or log in with --keytab and --principal ({detail})", in_cache(.ccache))]
    NoTicket { ccache: Option<String>, detail: String },
    /// `who`: `of alice@REALM` or `in FILE:/tmp/krb5cc_1000`.
    #[error("the Kerberos ticket {who} has expired: run `kinit` again (or `kinit -R` while renewable), or log in with --keytab and --principal")]
    TicketExpired { who: String },
    #[error("cannot log in as {principal} with keytab {keytab}: {detail}; check the keytab with `klist -kte {keytab}` (a password change or re-export makes old keytabs stale) and that --principal matches an entry")]
    Keytab { keytab: PathBuf, principal: String, detail: String },
    #[error("the KDC does not know the service principal {service}: {detail}; check the server's principal in the configuration (e.g. yarn.resourcemanager.principal, dfs.namenode.kerberos.principal, with _HOST resolved to the server's host name) and the host name used to reach it")]
    UnknownServer { service: String, detail: String },
    #[error("cannot reach a KDC: {detail}; check the realm's kdc entries in krb5.conf (KRB5_CONFIG) and the network")]
    KdcUnreachable { detail: String },
    #[error("the server's principal {offered} does not match the configured {configured}; check the configured principal or the address used")]
    ServerPrincipalMismatch { offered: String, configured: String },
    #[error("Kerberos failure while {during}: {detail}")]
    Other { during: String, detail: String },
    /// MIT Kerberos' GSSAPI library is not installed on this machine.
    #[error("{0}")]
    Unavailable(String),
}

fn in_cache(ccache: &Option<String>) -> String {
    match ccache {
        Some(c) => format!(" in the credentials cache {c}"),
        None => String::new(),
    }
}

/// How a [`KerberosLogin`] got its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginSource {
    /// `None`: the default cache (`KRB5CCNAME`, else the system default).
    TicketCache {
        ccache: Option<String>,
    },
    Keytab {
        keytab: PathBuf,
        principal: String,
    },
}

/// A logged-in Kerberos client identity: initiator credentials plus what
/// doctor and error messages need to know about them.
#[derive(Clone)]
pub struct KerberosLogin {
    cred: Cred,
    principal: String,
    source: LoginSource,
    acquired_at: SystemTime,
    lifetime: Duration,
}

impl std::fmt::Debug for KerberosLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosLogin")
            .field("principal", &self.principal)
            .field("source", &self.source)
            .field("expires_at", &self.expires_at())
            .finish()
    }
}

static PRIVATE_CACHE_SEQ: AtomicU64 = AtomicU64::new(0);

impl KerberosLogin {
    /// Uses the tickets in `ccache` (e.g. `FILE:/tmp/krb5cc_1000`), or in the
    /// default cache when `None`.
    pub fn from_ticket_cache(ccache: Option<&str>) -> Result<Self, KerberosError> {
        let source = LoginSource::TicketCache { ccache: ccache.map(str::to_owned) };
        let cred = match ccache {
            Some(c) => Cred::acquire_from(None, CredUsage::Initiate, &[("ccache", c)]),
            None => Cred::acquire_default(CredUsage::Initiate),
        }
        .map_err(|e| classify(e, &Context::Login(&source)))?;
        Self::finish(cred, source)
    }

    /// Gets a ticket for `principal` from `keytab` into a private in-memory
    /// cache (the user's own cache is left alone).
    pub fn from_keytab(keytab: &Path, principal: &str) -> Result<Self, KerberosError> {
        let source = LoginSource::Keytab { keytab: keytab.to_owned(), principal: principal.to_owned() };
        if !keytab.is_file() {
            return Err(KerberosError::Keytab {
                keytab: keytab.to_owned(),
                principal: principal.to_owned(),
                detail: "the file does not exist".into(),
            });
        }
        let cache =
            format!("MEMORY:yarn-flink-{}-{}", std::process::id(), PRIVATE_CACHE_SEQ.fetch_add(1, Ordering::Relaxed));
        let kt = format!("FILE:{}", keytab.display());
        let cred =
            Cred::acquire_from(Some(principal), CredUsage::Initiate, &[("ccache", &cache), ("client_keytab", &kt)])
                .map_err(|e| classify(e, &Context::Login(&source)))?;
        Self::finish(cred, source)
    }

    fn finish(cred: Cred, source: LoginSource) -> Result<Self, KerberosError> {
        // Asking for the lifetime makes MIT fetch the keytab's initial ticket
        // now, so a stale keytab fails here rather than at the first call.
        let (principal, lifetime) = cred.inquire().map_err(|e| classify(e, &Context::Login(&source)))?;
        if lifetime.is_zero() {
            return Err(KerberosError::TicketExpired { who: format!("of {principal}") });
        }
        tracing::debug!(%principal, lifetime_s = lifetime.as_secs(), "Kerberos login");
        Ok(KerberosLogin { cred, principal, source, acquired_at: SystemTime::now(), lifetime })
    }

    /// e.g. `alice@EXAMPLE.COM`.
    pub fn principal(&self) -> &str {
        &self.principal
    }

    pub fn source(&self) -> &LoginSource {
        &self.source
    }

    /// When the ticket expires (as of login).
    pub fn expires_at(&self) -> SystemTime {
        self.acquired_at + self.lifetime
    }

    /// The GSSAPI initiator credential, for [`crate::sasl::gssapi::Gssapi`].
    pub fn credential(&self) -> Cred {
        self.cred.clone()
    }
}

/// The GSSAPI host-based service name for a Hadoop server:
/// `protocol@host` (what Java's SASL client builds from NEGOTIATE's
/// protocol and serverId), shown as the principal `protocol/host`.
pub fn service_principal(protocol: &str, server_id: &str) -> String {
    format!("{protocol}/{server_id}")
}

/// What was going on when a GSSAPI call failed, for classification.
pub(crate) enum Context<'a> {
    Login(&'a LoginSource),
    /// Establishing a context with this service principal.
    Connect {
        service: &'a str,
        principal: &'a str,
    },
}

/// Turns a GSSAPI error into the failure an operator can act on.
pub(crate) fn classify(e: GssError, ctx: &Context<'_>) -> KerberosError {
    if let GssError::Unavailable(_) = e {
        return KerberosError::Unavailable(e.to_string());
    }
    let detail = e.to_string();
    let routine = e.routine();
    let text = detail.to_ascii_lowercase();
    let has = |s: &str| text.contains(s);
    if has("cannot contact any kdc") || has("cannot find kdc") || has("cannot resolve network address for kdc") {
        return KerberosError::KdcUnreachable { detail };
    }
    match ctx {
        Context::Login(LoginSource::Keytab { keytab, principal }) => {
            KerberosError::Keytab { keytab: keytab.clone(), principal: principal.clone(), detail }
        }
        Context::Login(LoginSource::TicketCache { ccache }) => {
            if routine == gss::CREDENTIALS_EXPIRED || has("expired") {
                let cache = ccache.clone().unwrap_or_else(|| "the default cache".into());
                KerberosError::TicketExpired { who: format!("in {cache}") }
            } else if routine == gss::NO_CRED
                || has("no credentials")
                || has("not found")
                || has("no kerberos credentials")
            {
                KerberosError::NoTicket { ccache: ccache.clone(), detail }
            } else {
                KerberosError::Other { during: "reading the ticket cache".into(), detail }
            }
        }
        Context::Connect { service, principal } => {
            // MIT says "Server <principal> not found in Kerberos database".
            if (has("server ") && has("not found in kerberos database")) || has("server principal unknown") {
                KerberosError::UnknownServer { service: (*service).to_owned(), detail }
            } else if routine == gss::CREDENTIALS_EXPIRED || has("ticket expired") {
                KerberosError::TicketExpired { who: format!("of {principal}") }
            } else if routine == gss::NO_CRED {
                KerberosError::NoTicket { ccache: None, detail }
            } else {
                KerberosError::Other { during: format!("authenticating to {service}"), detail }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_keytab_is_named_with_the_fix() {
        let err = KerberosLogin::from_keytab(Path::new("/nonexistent/x.keytab"), "alice@X").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/x.keytab") && err.contains("klist -kte"), "{err}");
    }

    #[test]
    fn an_empty_ticket_cache_says_to_run_kinit() {
        let dir = tempfile::tempdir().unwrap();
        let cache = format!("FILE:{}", dir.path().join("nothing").display());
        let err = KerberosLogin::from_ticket_cache(Some(&cache)).unwrap_err();
        assert!(matches!(err, KerberosError::NoTicket { .. }), "{err:?}");
        assert!(err.to_string().contains("kinit"), "{err}");
    }

    #[test]
    fn service_principal_is_protocol_slash_host() {
        assert_eq!(service_principal("nn", "localhost"), "nn/localhost");
    }
}
