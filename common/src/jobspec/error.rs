//! Errors of reading a job spec and loading a bundle. Each one names the
//! file, where in it (section, line and column when known), the problem, and
//! the fix, because the person reading it is editing `job.toml` right now.

use std::fmt;
use std::io;
use std::path::PathBuf;

use super::bundle::BundleLimits;
use crate::resources::format_size;

/// A line and column (both 1-based) in the spec file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to its end).
    pub fn of_offset(text: &str, offset: usize) -> Position {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position { line, column: before[line_start..].chars().count() + 1 }
    }
}

/// A job spec that cannot be read, parsed or validated.
#[derive(Debug)]
pub struct SpecError {
    /// The spec file (`job.toml`).
    pub path: PathBuf,
    pub position: Option<Position>,
    /// The section the problem is in, e.g. `[[vertex]] #2 (name = "tokenize")`.
    pub section: Option<String>,
    pub kind: Box<SpecErrorKind>,
}

/// What is wrong. `Display` says the problem; [`SpecErrorKind::fix`] says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpecErrorKind {
    #[error("cannot read the job spec: {0}")]
    Read(#[source] io::Error),
    #[error("{message}")]
    Syntax { message: String },
    #[error("unknown field `{field}`")]
    UnknownField { field: String, allowed: Vec<String>, suggestion: Option<String> },
    #[error("unknown value `{value}` for `{field}`")]
    UnknownValue { field: String, value: String, allowed: Vec<String>, suggestion: Option<String> },
    #[error("missing field `{field}`")]
    MissingField { field: String },
    #[error("{message}")]
    WrongType { message: String },
    #[error("the job has no vertices")]
    NoVertices,
    #[error("{problem}")]
    Invalid { problem: String, fix: String },
}

impl SpecErrorKind {
    pub fn fix(&self) -> String {
        match self {
            SpecErrorKind::Read(_) => "check that the file exists and is readable".to_owned(),
            SpecErrorKind::Syntax { .. } => "fix the TOML syntax (see docs/job-spec.md for an example spec)".to_owned(),
            SpecErrorKind::UnknownField { suggestion: Some(s), .. }
            | SpecErrorKind::UnknownValue { suggestion: Some(s), .. } => format!("did you mean `{s}`?"),
            SpecErrorKind::UnknownField { allowed, .. } => format!("remove it; allowed here: {}", quoted(allowed)),
            SpecErrorKind::UnknownValue { allowed, .. } => format!("use one of {}", quoted(allowed)),
            SpecErrorKind::MissingField { field } => format!("add `{field} = ...` (see docs/job-spec.md)"),
            SpecErrorKind::WrongType { .. } => {
                "give the field a value of the type shown (see docs/job-spec.md)".to_owned()
            }
            SpecErrorKind::NoVertices => {
                "add at least one [[vertex]] with a name and one of source, sink, command or shell".to_owned()
            }
            SpecErrorKind::Invalid { fix, .. } => fix.clone(),
        }
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl SpecError {
    pub(crate) fn invalid(path: &std::path::Path, problem: impl Into<String>, fix: impl Into<String>) -> SpecError {
        SpecError {
            path: path.to_owned(),
            position: None,
            section: None,
            kind: Box::new(SpecErrorKind::Invalid { problem: problem.into(), fix: fix.into() }),
        }
    }

    pub(crate) fn at(mut self, position: Option<Position>) -> SpecError {
        self.position = position;
        self
    }

    pub(crate) fn in_section(mut self, section: Option<String>) -> SpecError {
        self.section = section;
        self
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let SpecErrorKind::Read(e) = &*self.kind {
            return write!(f, "cannot read the job spec {}: {e}; {}", self.path.display(), self.kind.fix());
        }
        write!(f, "{}", self.kind)?;
        if let Some(section) = &self.section {
            write!(f, " in {section}")?;
        }
        write!(f, " of {}", self.path.display())?;
        if let Some(p) = self.position {
            write!(f, " (line {}, column {})", p.line, p.column)?;
        }
        write!(f, "; {}", self.kind.fix())
    }
}

impl std::error::Error for SpecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &*self.kind {
            SpecErrorKind::Read(e) => Some(e),
            _ => None,
        }
    }
}

/// A bundle that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("bundle {} does not exist; give the path of a bundle directory, a .tar.gz of one, or a job.toml", .0.display())]
    NotFound(PathBuf),
    #[error(
        "bundle {} is neither a directory, a .tar.gz/.tgz archive nor a .toml file; give a bundle directory holding job.toml, an archive of one, or the job.toml itself",
        .0.display()
    )]
    UnsupportedKind(PathBuf),
    #[error("bundle directory {} has no job.toml; add a job.toml there (see docs/job-spec.md) or give the path of the spec itself", .0.display())]
    NoJobSpec(PathBuf),
    #[error("cannot read bundle {}: {source}; check that it exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot extract bundle archive {} into {}: {source}; check that it is a valid .tar.gz and that the work dir is writable", archive.display(), into.display())]
    Extract {
        archive: PathBuf,
        into: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("bundle archive {} holds the entry `{entry}`, which would land outside the bundle; rebuild the archive with relative paths (e.g. `tar -czf bundle.tgz -C <bundle-dir> .`)", archive.display())]
    UnsafeEntry { archive: PathBuf, entry: String },
    #[error("bundle archive {} holds `{entry}`, {kind}, which a bundle cannot hold; rebuild the archive without it (plain files, directories and links only)", archive.display())]
    UnsupportedEntry { archive: PathBuf, entry: String, kind: &'static str },
    #[error("{}", too_large(archive, *what, limits))]
    TooLarge { archive: PathBuf, what: LimitKind, limits: BundleLimits },
    #[error("work dir {} for extracting bundle {} is not empty; give an empty or new directory", into.display(), archive.display())]
    WorkDirNotEmpty { archive: PathBuf, into: PathBuf },
    #[error(transparent)]
    Spec(#[from] SpecError),
}

/// Which of [`BundleLimits`] an archive went over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Bytes,
    Entries,
}

fn too_large(archive: &std::path::Path, what: LimitKind, limits: &BundleLimits) -> String {
    let (over, flag) = match what {
        LimitKind::Bytes => (format!("unpacks to more than {}", format_size(limits.max_bytes)), "--bundle-max-size"),
        LimitKind::Entries => (format!("holds more than {} entries", limits.max_entries), "--bundle-max-entries"),
    };
    format!(
        "bundle archive {} {over}, the limit ({flag}); nothing of it was kept. Leave data out of the bundle \
         (read it from HDFS or a shared path), or raise the limit with {flag}",
        archive.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_chars() {
        let text = "ab\ncdé\nf";
        assert_eq!(Position::of_offset(text, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of_offset(text, 3), Position { line: 2, column: 1 });
        assert_eq!(Position::of_offset(text, 7), Position { line: 2, column: 4 });
        assert_eq!(Position::of_offset(text, 100), Position { line: 3, column: 2 });
    }
}
