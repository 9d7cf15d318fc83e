//! `yarn-flink credentials`: when the Kerberos ticket and each Hadoop
//! delegation token expire, with the fix for anything that needs one.
//! Offline: it reads the ticket cache and the token file, and asks no server
//! (a token's current expiry, normally 24 h after its last renewal, is known
//! only to its issuer; its identifier carries the maximum date).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use hadoop::ccache::{self, Ccache, CcacheError};
use hadoop::credentials::{Credentials, CredentialsError, TokenIdentifier};

use super::report::{rfc3339, Item, Report, Severity};
use crate::cli::CredentialsArgs;

pub fn run(args: &CredentialsArgs) -> Result<ExitCode> {
    let horizon = Duration::from_secs(args.hours * 3600);
    let cache = match args.ccache.as_deref() {
        Some("none") => None,
        Some(name) => Some((name.to_owned(), ccache::read(name))),
        None => {
            let name = ccache::default_name();
            Some((name.clone(), ccache::read(&name)))
        }
    };
    let tokens = args.token_file.as_ref().map(|p| (p.clone(), Credentials::read_file(p)));
    let report = check(cache, tokens, SystemTime::now(), horizon);
    report.print(args.json);
    Ok(report.exit_code())
}

/// The verdicts, from what was read and the time: pure, so tests pick the clock.
pub fn check(
    cache: Option<(String, Result<Ccache, CcacheError>)>,
    tokens: Option<(PathBuf, Result<Credentials, CredentialsError>)>,
    now: SystemTime,
    horizon: Duration,
) -> Report {
    let mut r = Report::default();
    let hours = horizon.as_secs() / 3600;
    if let Some((name, cache)) = cache {
        match cache {
            Err(CcacheError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => r.push(
                Item::new("missing", Severity::Fail, "ticket", name)
                    .note("no ticket cache: run `kinit <principal>` (or scripts/kinit-renew with a keytab); on a cluster without Kerberos pass --ccache none"),
            ),
            Err(e) => r.push(Item::new("unreadable", Severity::Fail, "ticket", name).note(e.to_string())),
            Ok(c) => ticket(&mut r, &c, now, horizon),
        }
    }
    if let Some((path, creds)) = tokens {
        match creds {
            Err(e) => r.push(
                Item::new("unreadable", Severity::Fail, "token-file", path.display().to_string())
                    .note(format!("{e}; point --token-file (HADOOP_TOKEN_FILE_LOCATION) at a valid token file")),
            ),
            Ok(creds) => {
                for (alias, token) in &creds.tokens {
                    let name = format!(
                        "{} {}",
                        token.kind,
                        if token.service.is_empty() { alias.as_str() } else { token.service.as_str() }
                    );
                    let id = token.decode_identifier();
                    let TokenIdentifier::Delegation(d) = &id else {
                        r.push(Item::new("ok", Severity::Ok, "token", name).note(id.summary()));
                        continue;
                    };
                    let max = UNIX_EPOCH + Duration::from_millis(d.max_date_ms.max(0) as u64);
                    let item = if max <= now {
                        Item::new("expired", Severity::Fail, "token", name).note(format!(
                            "past its maximum lifetime ({}): it can no longer be used or renewed; submit again for new tokens, or give the AM --keytab so it replaces its own",
                            id.summary()
                        ))
                    } else if max <= now + horizon {
                        Item::new("expiring", Severity::Warn, "token", name).note(format!(
                            "reaches its maximum lifetime within {hours} h ({}); nothing renews it past that: an application that must outlive it needs --keytab (see docs/operations.md)",
                            id.summary()
                        ))
                    } else {
                        Item::new("ok", Severity::Ok, "token", name).note(id.summary())
                    };
                    r.push(item.at(max));
                }
            }
        }
    }
    r
}

fn ticket(r: &mut Report, c: &Ccache, now: SystemTime, horizon: Duration) {
    let hours = horizon.as_secs() / 3600;
    let Some(tgt) = c.tgt() else {
        r.push(
            Item::new("missing", Severity::Fail, "ticket", &c.principal)
                .note("the cache holds no ticket-granting ticket: run `kinit` again"),
        );
        return;
    };
    let item = if tgt.end <= now {
        Item::new("expired", Severity::Fail, "ticket", &c.principal)
            .note("expired: run `kinit` again (an expired ticket cannot be renewed), or keep it fresh with scripts/kinit-renew and a keytab")
    } else if tgt.end <= now + horizon {
        let fix = match tgt.renew_till {
            Some(till) if till > tgt.end => {
                format!("expires within {hours} h: run `kinit -R` (renewable until {})", rfc3339(till))
            }
            _ => format!(
                "expires within {hours} h and is not renewable: run `kinit` again, or keep it fresh with scripts/kinit-renew and a keytab"
            ),
        };
        Item::new("expiring", Severity::Warn, "ticket", &c.principal).note(fix)
    } else {
        let note = match tgt.renew_till {
            Some(till) => format!("renewable until {}", rfc3339(till)),
            None => "not renewable".into(),
        };
        Item::new("ok", Severity::Ok, "ticket", &c.principal).note(note)
    };
    r.push(item.at(tgt.end));
    // Renewal ends too: past it, only a new login (kinit, a keytab) helps.
    if let Some(till) = tgt.renew_till {
        if tgt.end > now && till <= now + horizon {
            r.push(
                Item::new("renewal-ending", Severity::Warn, "ticket-renewal", &c.principal)
                    .at(till)
                    .note(format!("can be renewed only until then (within {hours} h): log in again with `kinit` or from a keytab before then")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hadoop::ccache::Ticket;

    const H: Duration = Duration::from_secs(3600);

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn cache(end: u64, renew: Option<u64>) -> Ccache {
        Ccache {
            principal: "alice@R.TEST".into(),
            tickets: vec![Ticket { server: "krbtgt/R.TEST@R.TEST".into(), end: at(end), renew_till: renew.map(at) }],
        }
    }

    fn statuses(r: &Report) -> Vec<(String, Severity)> {
        r.items.iter().map(|i| (i.status.clone(), i.severity)).collect()
    }

    #[test]
    fn a_ticket_is_ok_expiring_or_expired_against_the_horizon_and_names_its_fix() {
        let now = at(100_000);
        let check1 = |c: Ccache| check(Some(("FILE:/x".into(), Ok(c))), None, now, 24 * H);
        let ok = check1(cache(100_000 + 48 * 3600, Some(100_000 + 7 * 86400)));
        assert_eq!(statuses(&ok), [("ok".into(), Severity::Ok)]);
        let renewable = check1(cache(100_000 + 3600, Some(100_000 + 7 * 86400)));
        assert_eq!(statuses(&renewable), [("expiring".into(), Severity::Warn)]);
        assert!(renewable.items[0].note.contains("kinit -R"), "{:?}", renewable.items);
        let not_renewable = check1(cache(100_000 + 3600, None));
        assert!(not_renewable.items[0].note.contains("not renewable"));
        let expired = check1(cache(99_000, Some(200_000)));
        assert_eq!(statuses(&expired), [("expired".into(), Severity::Fail)]);
        assert_eq!(expired.worst(), Severity::Fail);
        // Valid for two days, but renewable only for another hour.
        let ending = check1(cache(100_000 + 48 * 3600, Some(100_000 + 3600)));
        assert_eq!(ending.items.len(), 2);
        assert_eq!(ending.items[1].status, "renewal-ending");
    }

    #[test]
    fn a_missing_cache_fails_naming_kinit() {
        let missing = Err(CcacheError::Io { path: "/nope".into(), source: std::io::ErrorKind::NotFound.into() });
        let r = check(Some(("FILE:/nope".into(), missing)), None, at(0), H);
        assert_eq!(statuses(&r), [("missing".into(), Severity::Fail)]);
        assert!(r.items[0].note.contains("kinit"));
    }

    #[test]
    fn delegation_tokens_are_judged_by_their_maximum_date() {
        // The captured token file of a real NameNode (alice's HDFS delegation token).
        let Some(wire) = std::env::var_os("HADOOP_WIRE_FIXTURES").map(PathBuf::from) else {
            panic!("HADOOP_WIRE_FIXTURES is unset: scripts/test sets it to ../shared/wire/hadoop-3.3.6");
        };
        let path = wire.join("kerberos/tokens/alice-hdfs-delegation.tokens");
        let creds = Credentials::read_file(&path).unwrap();
        let (_, token) = creds.tokens.first().unwrap();
        let TokenIdentifier::Delegation(d) = token.decode_identifier() else { panic!("a delegation token") };
        let max = UNIX_EPOCH + Duration::from_millis(d.max_date_ms as u64);
        let run = |now: SystemTime| check(None, Some((path.clone(), Credentials::read_file(&path))), now, 24 * H);
        assert_eq!(statuses(&run(max - 48 * H)), [("ok".into(), Severity::Ok)]);
        assert_eq!(statuses(&run(max - H)), [("expiring".into(), Severity::Warn)]);
        let past = run(max + H);
        assert_eq!(statuses(&past), [("expired".into(), Severity::Fail)]);
        assert_eq!(past.items[0].name, format!("HDFS_DELEGATION_TOKEN {}", token.service));
        assert_eq!(past.items[0].when.as_deref(), Some(rfc3339(max).as_str()));
    }

    #[test]
    fn an_unreadable_token_file_fails() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens");
        std::fs::write(&p, b"not a token file").unwrap();
        let r = check(None, Some((p.clone(), Credentials::read_file(&p))), at(0), H);
        assert_eq!(statuses(&r), [("unreadable".into(), Severity::Fail)]);
    }
}
