//! `hadoop.security.auth_to_local`: how Hadoop turns a Kerberos principal
//! into the short user name that HDFS paths, owners and token renewers use
//! (Hadoop's `KerberosName`, mechanism `hadoop`, the default). A secure
//! cluster's user is *not* the Unix login: `alice@REALM` is `alice`, and a
//! rule like `RULE:[2:$1/$2@$0](rm/.*@REALM)s/.*/yarn/` makes `rm/host@REALM`
//! `yarn`.
//!
//! Rules, one per line or space-separated, tried in order:
//! - `DEFAULT`: a principal of the default realm becomes its first component;
//! - `RULE:[n:format](regex)s/pattern/replacement/[g][/L]`: for a principal of
//!   `n` components, `format` builds a string (`$0` the realm, `$1`, `$2` the
//!   components); if `regex` matches the whole string, the sed-style
//!   substitution gives the name (`g` every match, `/L` lower case).
//!
//! No rule applies → an error, as in Hadoop.

use regex::Regex;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthToLocalError {
    #[error("hadoop.security.auth_to_local: cannot parse the rule {rule:?}: {why}")]
    BadRule { rule: String, why: String },
    #[error(
        "no hadoop.security.auth_to_local rule applies to the principal {0}; add a rule for it (or DEFAULT) in \
         core-site.xml, as the cluster's own core-site.xml has it"
    )]
    NoRuleApplies(String),
}

#[derive(Clone, Debug)]
enum Rule {
    Default,
    Map { components: usize, format: String, filter: Option<Regex>, from: Regex, to: String, global: bool, lower: bool },
}

/// Parsed rules (see the module documentation).
#[derive(Clone, Debug)]
pub struct AuthToLocal {
    rules: Vec<Rule>,
}

impl AuthToLocal {
    pub fn parse(text: &str) -> Result<Self, AuthToLocalError> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = r.trim_start();
                continue;
            }
            let Some(r) = rest.strip_prefix("RULE:") else {
                let bad = rest.split_whitespace().next().unwrap_or(rest);
                return Err(AuthToLocalError::BadRule { rule: bad.into(), why: "expected DEFAULT or RULE:".into() });
            };
            let (rule, after) = parse_rule(r)?;
            rules.push(rule);
            rest = after.trim_start();
        }
        Ok(Self { rules })
    }

    /// The short name of `principal`; `default_realm` is krb5.conf's (or, when
    /// that is unknown, the caller's own realm).
    pub fn short_name(&self, principal: &str, default_realm: Option<&str>) -> Result<String, AuthToLocalError> {
        let (name, realm) = match principal.rsplit_once('@') {
            Some((n, r)) => (n, Some(r)),
            None => (principal, None),
        };
        let components: Vec<&str> = name.split('/').collect();
        // Hadoop: a name without a realm is already short.
        let Some(realm) = realm else { return Ok(name.to_owned()) };
        for rule in &self.rules {
            match rule {
                Rule::Default => {
                    if default_realm == Some(realm) {
                        return Ok(components[0].to_owned());
                    }
                }
                Rule::Map { components: n, format, filter, from, to, global, lower } => {
                    if *n != components.len() {
                        continue;
                    }
                    let formatted = apply_format(format, realm, &components);
                    if filter.as_ref().is_some_and(|f| !full_match(f, &formatted)) {
                        continue;
                    }
                    let out = if *global {
                        from.replace_all(&formatted, to.as_str())
                    } else {
                        from.replace(&formatted, to.as_str())
                    };
                    let out = if *lower { out.to_lowercase() } else { out.into_owned() };
                    // Hadoop refuses a result that still looks like a principal.
                    if out.contains(['/', '@']) {
                        return Err(AuthToLocalError::NoRuleApplies(principal.to_owned()));
                    }
                    return Ok(out);
                }
            }
        }
        Err(AuthToLocalError::NoRuleApplies(principal.to_owned()))
    }
}

fn full_match(re: &Regex, s: &str) -> bool {
    re.find(s).is_some_and(|m| m.start() == 0 && m.end() == s.len())
}

fn apply_format(format: &str, realm: &str, components: &[&str]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                chars.next();
                let d = d as usize;
                out.push_str(if d == 0 { realm } else { components.get(d - 1).copied().unwrap_or("") });
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Java regex syntax → Rust regex: `$1` in replacements stays `$1` (the regex
/// crate's syntax too), written `${1}` so a following letter is not read as
/// part of the group name.
fn replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut n = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    n.push(*d);
                    chars.next();
                }
                out.push_str(&format!("${{{n}}}"));
            }
            '$' => out.push_str("$$"),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `[n:format](regex)s/from/to/g/L` and what follows it.
fn parse_rule(text: &str) -> Result<(Rule, &str), AuthToLocalError> {
    let whole = text.split_whitespace().next().unwrap_or(text).to_owned();
    let bad = |why: &str| AuthToLocalError::BadRule { rule: format!("RULE:{whole}"), why: why.into() };
    let r = text.strip_prefix('[').ok_or_else(|| bad("expected [n:format]"))?;
    let close = r.find(']').ok_or_else(|| bad("missing ]"))?;
    let (n, format) = r[..close].split_once(':').ok_or_else(|| bad("expected [n:format]"))?;
    let components: usize = n.parse().map_err(|_| bad("the component count is not a number"))?;
    let mut r = &r[close + 1..];
    let mut filter = None;
    if let Some(inner) = r.strip_prefix('(') {
        // The filter regex ends at the ')' that closes the first '('.
        let mut depth = 1usize;
        let mut end = None;
        let mut escaped = false;
        for (i, c) in inner.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or_else(|| bad("unbalanced ( in the filter"))?;
        filter = Some(Regex::new(&inner[..end]).map_err(|e| bad(&e.to_string()))?);
        r = &inner[end + 1..];
    }
    let (from, to, global, lower, rest) = match r.strip_prefix("s/") {
        Some(sed) => {
            let mut parts = Vec::new();
            let mut cur = String::new();
            let mut chars = sed.char_indices();
            let mut consumed = sed.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        cur.push('\\');
                        if let Some((_, n)) = chars.next() {
                            cur.push(n);
                        }
                    }
                    '/' if parts.len() < 2 => {
                        parts.push(std::mem::take(&mut cur));
                        if parts.len() == 2 {
                            consumed = i + 1;
                            break;
                        }
                    }
                    _ => cur.push(c),
                }
            }
            if parts.len() < 2 {
                return Err(bad("expected s/pattern/replacement/"));
            }
            let mut rest = &sed[consumed..];
            let global = if let Some(x) = rest.strip_prefix('g') {
                rest = x;
                true
            } else {
                false
            };
            let lower = if let Some(x) = rest.strip_prefix("/L") {
                rest = x;
                true
            } else {
                false
            };
            (parts[0].clone(), replacement(&parts[1]), global, lower, rest)
        }
        None => {
            // No substitution: the formatted string is the name (optionally /L).
            let (lower, rest) = match r.strip_prefix("/L") {
                Some(x) => (true, x),
                None => (false, r),
            };
            ("^.*$".to_owned(), "$0".to_owned(), false, lower, rest)
        }
    };
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return Err(bad("unexpected text after the rule"));
    }
    let from = Regex::new(&from).map_err(|e| bad(&e.to_string()))?;
    Ok((Rule::Map { components, format: format.to_owned(), filter, from, to, global, lower }, rest))
}

/// The default realm of krb5.conf (`KRB5_CONFIG`, else `/etc/krb5.conf`):
/// `default_realm` in `[libdefaults]`.
pub fn default_realm() -> Option<String> {
    let path = std::env::var_os("KRB5_CONFIG").unwrap_or_else(|| "/etc/krb5.conf".into());
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_libdefaults = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_libdefaults = line == "[libdefaults]";
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if in_libdefaults && k.trim() == "default_realm" {
                return Some(v.trim().to_owned());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const REALM: &str = "YARNFLINK.TEST";

    #[test]
    fn default_maps_the_default_realm_to_the_first_component() {
        let r = AuthToLocal::parse("DEFAULT").unwrap();
        assert_eq!(r.short_name("alice@YARNFLINK.TEST", Some(REALM)).unwrap(), "alice");
        assert_eq!(r.short_name("nn/host.example.com@YARNFLINK.TEST", Some(REALM)).unwrap(), "nn");
        assert_eq!(r.short_name("alice", Some(REALM)).unwrap(), "alice");
        let err = r.short_name("bob@OTHER.REALM", Some(REALM)).unwrap_err().to_string();
        assert!(err.contains("bob@OTHER.REALM") && err.contains("auth_to_local"), "{err}");
    }

    #[test]
    fn rules_as_real_clusters_write_them() {
        // The shape of Ambari/Cloudera defaults: service principals to their Unix users.
        let rules = "RULE:[2:$1/$2@$0](rm/.*@YARNFLINK.TEST)s/.*/yarn/
                     RULE:[2:$1/$2@$0](nn/.*@YARNFLINK.TEST)s/.*/hdfs/
                     RULE:[1:$1@$0](.*@CORP.EXAMPLE)s/@.*///L
                     DEFAULT";
        let r = AuthToLocal::parse(rules).unwrap();
        assert_eq!(r.short_name("rm/localhost@YARNFLINK.TEST", Some(REALM)).unwrap(), "yarn");
        assert_eq!(r.short_name("nn/nn1.example.com@YARNFLINK.TEST", Some(REALM)).unwrap(), "hdfs");
        assert_eq!(r.short_name("Alice.Smith@CORP.EXAMPLE", Some(REALM)).unwrap(), "alice.smith");
        assert_eq!(r.short_name("alice@YARNFLINK.TEST", Some(REALM)).unwrap(), "alice");
        assert_eq!(r.short_name("HTTP/localhost@YARNFLINK.TEST", Some(REALM)).unwrap(), "HTTP");
    }

    #[test]
    fn groups_and_global_substitution() {
        let r = AuthToLocal::parse("RULE:[2:$2-$1](.*)s/(.*)-(.*)/$2_on_$1/g").unwrap();
        assert_eq!(r.short_name("svc/h1@R", None).unwrap(), "svc_on_h1");
        let r = AuthToLocal::parse("RULE:[1:$1]s/a/o/g").unwrap();
        assert_eq!(r.short_name("banana@R", None).unwrap(), "bonono");
    }

    #[test]
    fn malformed_rules_are_named() {
        for bad in ["RULE:[x:$1]", "RULE:[1:$1](unclosed", "RULE:[1:$1]s/only-one", "NONSENSE"] {
            let err = AuthToLocal::parse(bad).unwrap_err().to_string();
            assert!(err.contains("auth_to_local"), "{bad}: {err}");
        }
    }
}
