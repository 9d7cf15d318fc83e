//! MIT Kerberos `FILE:` credential caches, read without the library: what
//! `klist` shows (the principal, each ticket's end and renewable-until times),
//! which GSSAPI cannot tell (it knows a remaining lifetime, not whether the
//! ticket can be renewed, nor until when).
//!
//! The format is MIT's "ccache file format" (versions 0x0503 and 0x0504, big
//! endian; 0x0501/0x0502 are native-endian relics no current kinit writes and
//! are refused). Configuration entries (`X-CACHECONF:` server realms) are
//! skipped. Every length is checked against what is left, so a truncated or
//! hostile file is a [`CcacheError`], never a large allocation.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The ticket flag for "renewable" (RFC 4120, bit 8 counted from the left).
const TKT_FLG_RENEWABLE: u32 = 0x0080_0000;
/// The realm MIT gives configuration entries.
const CONF_REALM: &[u8] = b"X-CACHECONF:";

#[derive(Debug, thiserror::Error)]
pub enum CcacheError {
    #[error("cannot read the credentials cache {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0} is not a FILE: credentials cache (KEYRING:, KCM: and others are read through GSSAPI, which cannot tell renewable lifetimes)")]
    NotAFile(String),
    #[error("the credentials cache {path} is malformed: {detail}; run `kinit` again to write a new one")]
    Malformed { path: String, detail: String },
}

/// One ticket: who for, valid until when, renewable until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub server: String,
    pub end: SystemTime,
    /// `None`: not renewable.
    pub renew_till: Option<SystemTime>,
}

/// What a cache holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ccache {
    pub principal: String,
    pub tickets: Vec<Ticket>,
}

impl Ccache {
    /// The ticket-granting ticket of the principal's realm, if any: the one
    /// whose expiry ends the login.
    pub fn tgt(&self) -> Option<&Ticket> {
        let realm = self.principal.rsplit_once('@').map_or("", |(_, r)| r);
        self.tickets.iter().find(|t| t.server == format!("krbtgt/{realm}@{realm}"))
    }
}

/// The path of a cache name: `FILE:/tmp/krb5cc_0` or a bare path. Other
/// types are refused with [`CcacheError::NotAFile`].
pub fn file_path(name: &str) -> Result<PathBuf, CcacheError> {
    match name.split_once(':') {
        Some(("FILE", p)) => Ok(PathBuf::from(p)),
        Some((kind, _)) if !kind.contains('/') => Err(CcacheError::NotAFile(name.to_owned())),
        _ => Ok(PathBuf::from(name)),
    }
}

/// The default cache's name as MIT resolves it for this process: `KRB5CCNAME`,
/// else `default_ccache_name` from krb5.conf (`KRB5_CONFIG`), else
/// `FILE:/tmp/krb5cc_<uid>`.
pub fn default_name() -> String {
    if let Some(n) = std::env::var("KRB5CCNAME").ok().filter(|n| !n.is_empty()) {
        return n;
    }
    let conf = std::env::var("KRB5_CONFIG").unwrap_or_else(|_| "/etc/krb5.conf".into());
    let uid = real_uid();
    if let Ok(text) = std::fs::read_to_string(conf.split(':').next().unwrap_or_default()) {
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                if k.trim() == "default_ccache_name" {
                    return v.trim().replace("%{uid}", &uid.to_string());
                }
            }
        }
    }
    format!("FILE:/tmp/krb5cc_{uid}")
}

/// The real uid, from `/proc` (no libc call needed for a number).
fn real_uid() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Uid:").map(|r| r.split_whitespace().next()?.parse().ok())))
        .flatten()
        .unwrap_or(0)
}

/// Reads the cache named `name` (see [`file_path`]).
pub fn read(name: &str) -> Result<Ccache, CcacheError> {
    let path = file_path(name)?;
    let bytes = std::fs::read(&path).map_err(|source| CcacheError::Io { path: path.clone(), source })?;
    parse(&bytes).map_err(|detail| CcacheError::Malformed { path: path.display().to_string(), detail })
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.b.len() < n {
            return Err(format!("{what} needs {n} bytes, {} left", self.b.len()));
        }
        let (head, rest) = self.b.split_at(n);
        self.b = rest;
        Ok(head)
    }
    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A counted octet string (32-bit length).
    fn data(&mut self, what: &str) -> Result<&'a [u8], String> {
        let n = self.u32(what)? as usize;
        self.take(n, what)
    }
    /// name type, component count, realm, components.
    fn principal(&mut self) -> Result<(Vec<u8>, String), String> {
        let _name_type = self.u32("name type")?;
        let count = self.u32("component count")? as usize;
        // Each component costs at least its 4-byte length: a count the rest
        // of the file cannot hold is refused before anything is allocated.
        if count > self.b.len() / 4 {
            return Err(format!("{count} name components cannot fit in {} bytes", self.b.len()));
        }
        let realm = self.data("realm")?.to_vec();
        let mut parts = Vec::with_capacity(count);
        for _ in 0..count {
            parts.push(String::from_utf8_lossy(self.data("name component")?).into_owned());
        }
        let name = format!("{}@{}", parts.join("/"), String::from_utf8_lossy(&realm));
        Ok((realm, name))
    }
    /// Skips `count` entries of (16-bit type, data).
    fn typed_list(&mut self, what: &str) -> Result<(), String> {
        let count = self.u32(what)?;
        for _ in 0..count {
            self.u16(what)?;
            self.data(what)?;
        }
        Ok(())
    }
}

fn time(secs: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::from(secs))
}

/// Decodes a cache file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Ccache, String> {
    let mut r = Reader { b: bytes };
    let version = r.u16("the file format version")?;
    match version {
        0x0504 => {
            let len = r.u16("the header length")? as usize;
            r.take(len, "the header")?;
        }
        0x0503 => {}
        0x0501 | 0x0502 => return Err(format!("format version {version:#06x} (native byte order) is not supported")),
        _ => return Err(format!("unknown format version {version:#06x} (not a MIT credentials cache)")),
    }
    let (_, principal) = r.principal()?;
    let mut tickets = Vec::new();
    while !r.b.is_empty() {
        let _client = r.principal()?;
        let (server_realm, server) = r.principal()?;
        let _enctype = r.u16("key type")?;
        if version == 0x0503 {
            r.u16("key type")?;
        }
        r.data("key")?;
        let _authtime = r.u32("auth time")?;
        let _starttime = r.u32("start time")?;
        let end = r.u32("end time")?;
        let renew_till = r.u32("renew-till time")?;
        let _is_skey = r.u8("is_skey")?;
        let flags = r.u32("ticket flags")?;
        r.typed_list("addresses")?;
        r.typed_list("authorization data")?;
        r.data("ticket")?;
        r.data("second ticket")?;
        if server_realm == CONF_REALM {
            continue;
        }
        // As klist: the flag decides; renew-till may equal the end (nothing left to renew).
        let renewable = flags & TKT_FLG_RENEWABLE != 0;
        tickets.push(Ticket { server, end: time(end), renew_till: renewable.then(|| time(renew_till)) });
    }
    Ok(Ccache { principal, tickets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(out: &mut Vec<u8>, realm: &str, parts: &[&str]) {
        out.extend(1u32.to_be_bytes());
        out.extend((parts.len() as u32).to_be_bytes());
        out.extend((realm.len() as u32).to_be_bytes());
        out.extend(realm.as_bytes());
        for p in parts {
            out.extend((p.len() as u32).to_be_bytes());
            out.extend(p.as_bytes());
        }
    }

    fn cred(out: &mut Vec<u8>, server_realm: &str, server: &[&str], end: u32, renew: u32, flags: u32) {
        principal(out, "R.TEST", &["alice"]);
        principal(out, server_realm, server);
        out.extend(18u16.to_be_bytes());
        out.extend(2u32.to_be_bytes());
        out.extend([7, 7]);
        for t in [100u32, 100, end, renew] {
            out.extend(t.to_be_bytes());
        }
        out.push(0);
        out.extend(flags.to_be_bytes());
        out.extend(0u32.to_be_bytes()); // addresses
        out.extend(0u32.to_be_bytes()); // authdata
        out.extend(3u32.to_be_bytes());
        out.extend(b"tkt");
        out.extend(0u32.to_be_bytes());
    }

    fn v4_cache() -> Vec<u8> {
        let mut out = vec![0x05, 0x04];
        // One header tag: the KDC time offset (tag 1, 8 bytes).
        out.extend(12u16.to_be_bytes());
        out.extend(1u16.to_be_bytes());
        out.extend(8u16.to_be_bytes());
        out.extend([0; 8]);
        principal(&mut out, "R.TEST", &["alice"]);
        cred(&mut out, "X-CACHECONF:", &["krb5_ccache_conf_data", "fast_avail"], 0, 0, 0);
        cred(&mut out, "R.TEST", &["krbtgt", "R.TEST"], 5000, 9000, TKT_FLG_RENEWABLE | 0x4000_0000);
        cred(&mut out, "R.TEST", &["nn", "host"], 4000, 0, 0);
        out
    }

    #[test]
    fn a_v4_cache_gives_the_principal_and_each_ticket_with_its_renewable_end() {
        let c = parse(&v4_cache()).unwrap();
        assert_eq!(c.principal, "alice@R.TEST");
        assert_eq!(c.tickets.len(), 2, "the configuration entry is not a ticket: {c:?}");
        let tgt = c.tgt().unwrap();
        assert_eq!(tgt.end, time(5000));
        assert_eq!(tgt.renew_till, Some(time(9000)));
        assert_eq!(c.tickets[1].renew_till, None);
    }

    #[test]
    fn every_truncation_is_an_error_and_never_a_panic() {
        let full = v4_cache();
        for n in 0..full.len() {
            let r = parse(&full[..n]);
            // A cut exactly between two entries is a whole (shorter) cache.
            if let Ok(c) = r {
                assert!(c.tickets.len() < 2 || n == full.len());
            }
        }
    }

    #[test]
    fn a_huge_count_is_refused_before_allocating() {
        let mut b = vec![0x05, 0x03];
        b.extend(1u32.to_be_bytes());
        b.extend(u32::MAX.to_be_bytes());
        assert!(parse(&b).unwrap_err().contains("cannot fit"));
    }

    #[test]
    fn other_cache_types_are_named() {
        assert!(matches!(file_path("KEYRING:persistent:0"), Err(CcacheError::NotAFile(_))));
        assert_eq!(file_path("FILE:/tmp/x").unwrap(), PathBuf::from("/tmp/x"));
        assert_eq!(file_path("/tmp/y").unwrap(), PathBuf::from("/tmp/y"));
    }
}
