//! The output of the operations commands (`credentials`, `staging`, `logs`):
//! one line per item that a script can split on tabs, or one JSON object per
//! line with `--json`, and an exit code that says whether everything was done.
//!
//! A line is `STATUS<TAB>KIND<TAB>NAME<TAB>WHEN<TAB>NOTE`; WHEN is an RFC 3339
//! UTC time or `-`; NOTE is free text (the fix, for anything not `ok`).

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How bad an item is; the worst one picks the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    /// Needs attention soon (e.g. a ticket expiring within the horizon).
    Warn,
    /// Could not be checked or done, or already expired.
    Fail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// What happened to the item, e.g. `ok`, `expiring`, `deleted`, `kept`.
    pub status: String,
    #[serde(skip)]
    pub severity: Severity,
    /// e.g. `ticket`, `token`, `app-dir`, `cache-entry`.
    pub kind: &'static str,
    pub name: String,
    /// RFC 3339 UTC, when the item has a time (expiry, last modification).
    pub when: Option<String>,
    pub note: String,
}

impl Item {
    pub fn new(status: &str, severity: Severity, kind: &'static str, name: impl Into<String>) -> Self {
        Item { status: status.into(), severity, kind, name: name.into(), when: None, note: String::new() }
    }
    pub fn at(mut self, t: SystemTime) -> Self {
        self.when = Some(rfc3339(t));
        self
    }
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// Seconds-precision UTC, e.g. `2026-12-07T10:00:00Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    match jiff::Timestamp::from_second(secs) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("@{secs}"),
    }
}

#[derive(Default)]
pub struct Report {
    pub items: Vec<Item>,
}

impl Report {
    pub fn push(&mut self, item: Item) {
        self.items.push(item);
    }

    pub fn worst(&self) -> Severity {
        self.items.iter().map(|i| i.severity).max().unwrap_or(Severity::Ok)
    }

    /// The lines as printed (tab-separated, or JSON lines).
    pub fn render(&self, json: bool) -> String {
        let mut out = String::new();
        for i in &self.items {
            if json {
                out.push_str(&serde_json::to_string(i).unwrap_or_default());
            } else {
                let clean = |s: &str| s.replace(['\t', '\n'], " ");
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}",
                    i.status,
                    i.kind,
                    clean(&i.name),
                    i.when.as_deref().unwrap_or("-"),
                    clean(&i.note)
                ));
            }
            out.push('\n');
        }
        out
    }

    pub fn print(&self, json: bool) {
        print!("{}", self.render(json));
    }

    /// 0 when every item is fine, 1 when one needs attention, 2 when one
    /// could not be checked or done (or has expired): the monitoring-plugin
    /// convention, so the same exit code serves cron, systemd and Nagios.
    pub fn exit_code(&self) -> ExitCode {
        match self.worst() {
            Severity::Ok => ExitCode::SUCCESS,
            Severity::Warn => ExitCode::from(1),
            Severity::Fail => ExitCode::from(2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_tabs_into_five_fields_even_when_a_note_has_tabs() {
        let mut r = Report::default();
        r.push(Item::new("expiring", Severity::Warn, "ticket", "alice@R").at(UNIX_EPOCH).note("run\tkinit -R"));
        let text = r.render(false);
        let fields: Vec<&str> = text.trim_end().split('\t').collect();
        assert_eq!(fields, ["expiring", "ticket", "alice@R", "1970-01-01T00:00:00Z", "run kinit -R"]);
        let json: serde_json::Value = serde_json::from_str(r.render(true).trim_end()).unwrap();
        assert_eq!(json["status"], "expiring");
        assert_eq!(json["when"], "1970-01-01T00:00:00Z");
        assert_eq!(r.worst(), Severity::Warn);
    }
}
