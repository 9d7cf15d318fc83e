//! `job.toml` -> [`JobSpec`]: parsing with serde + `toml` (unknown fields are
//! refused), then validation. The format, in full (also in `docs/job-spec.md`):
//!
//! ```toml
//! [job]
//! name = "wordcount"                 # optional: default = the bundle directory's name
//! restart = { strategy = "fixed-delay", attempts = 3, delay = "1s" }
//! # or { strategy = "none" }; default: fixed-delay, 3 attempts, 1s apart
//!
//! [[vertex]]
//! name = "source"                    # required, unique
//! parallelism = 2                    # default 1; 1..=10000
//! source = { type = "text", path = "input" }   # exactly one of source / sink / command / shell
//! resources = { cpu = 0.5, memory = "256m" }   # optional; absent = any slot will do
//! # resources keys: cpu, memory (task heap), off_heap, managed, network, extended = { gpu = 1 }
//!
//! [[vertex]]
//! name = "tokenize"
//! parallelism = 2
//! command = ["awk", "-f", "tokenize.awk"]      # argv, run in the bundle directory
//! slot_sharing_group = "heavy"       # optional; absent = Flink's "default" group
//!
//! [[vertex]]
//! name = "count"
//! shell = "./count | sort"           # run by /bin/sh -c in the bundle directory
//!
//! [[vertex]]
//! name = "sink"
//! sink = { type = "text", path = "out" }
//!
//! [[edge]]
//! from = "source"
//! to = "tokenize"
//! partitioning = "forward"           # forward | hash | rebalance | broadcast
//! # default: forward when both sides have the same parallelism, else rebalance (as Flink)
//! ```
//!
//! Programs: a `command` whose first word has a `/` and is relative is a file
//! of the bundle, which must exist and be executable. A bare first word names a
//! bundle file when one of that name exists (it must be executable, and argv[0]
//! becomes `./name` so the TaskExecutor does not search the PATH for it), and a
//! program on the PATH otherwise. A `shell` line starting with `./` is checked
//! the same way.
//!
//! Validation: vertex names unique and non-empty; edges name defined vertices,
//! no self-loops, no cycles; forward edges join equal parallelisms; built-in
//! sources have no inputs and built-in sinks no outputs (a command or shell
//! vertex without inputs is a source that reads an empty stdin). The vertices
//! come out in topological order (ties in declaration order) and edges keep
//! their declaration order, re-indexed to the sorted vertices.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Position, SpecError, SpecErrorKind};
/// The group of a vertex that names none (Flink's `default`).
pub const DEFAULT_SLOT_SHARING_GROUP: &str = "default";

use super::model::{BuiltinSink, BuiltinSource, EdgeSpec, JobSpec, Partitioning, Program, RestartStrategy, VertexSpec};
use crate::resources::{parse_cpu, parse_memory, RequestedProfile, ResourceProfile};

/// The largest parallelism a vertex may have.
pub const MAX_PARALLELISM: u32 = 10_000;
/// The most restarts a fixed-delay strategy may allow.
pub const MAX_RESTART_ATTEMPTS: u32 = 1_000_000;
/// Restart strategy when the spec names none: 3 attempts, 1 s apart.
pub const DEFAULT_RESTART: RestartStrategy = RestartStrategy::FixedDelay { attempts: 3, delay: Duration::from_secs(1) };

/// Reads and validates the spec at `spec_path`; relative program paths are
/// checked against `bundle_dir`, whose name is also the default job name.
pub fn read_job_spec(spec_path: &Path, bundle_dir: &Path) -> Result<JobSpec, SpecError> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| SpecError {
        path: spec_path.to_owned(),
        position: None,
        section: None,
        kind: Box::new(SpecErrorKind::Read(e)),
    })?;
    parse_job_spec(&text, spec_path, bundle_dir)
}

/// Parses and validates spec `text`; `spec_path` is only named in errors.
pub fn parse_job_spec(text: &str, spec_path: &Path, bundle_dir: &Path) -> Result<JobSpec, SpecError> {
    let cx = Cx { text, path: spec_path, bundle_dir };
    let raw: RawSpec = toml::from_str(text).map_err(|e| cx.toml_error(&e))?;
    cx.validate(raw)
}

/// Parses a duration such as `500ms`, `1s`, `2m`/`2min` or `1h`. A unit is
/// required, so `1` cannot silently mean a millisecond or an hour.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("`{s}` is not a duration; write a whole number with a unit, e.g. 500ms, 1s, 2m or 1h");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let millis = match unit.trim() {
        "ms" => Some(n),
        "s" | "sec" | "secs" => n.checked_mul(1000),
        "m" | "min" | "mins" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    millis.map(Duration::from_millis).ok_or_else(bad)
}

// ---- raw TOML shapes ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    job: Option<RawJob>,
    #[serde(default)]
    vertex: Vec<RawVertex>,
    #[serde(default)]
    edge: Vec<RawEdge>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    name: Option<Spanned<String>>,
    restart: Option<Spanned<RawRestart>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    strategy: Spanned<String>,
    attempts: Option<Spanned<i64>>,
    delay: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVertex {
    name: Spanned<String>,
    parallelism: Option<Spanned<i64>>,
    source: Option<Spanned<RawBuiltin>>,
    sink: Option<Spanned<RawBuiltin>>,
    command: Option<Spanned<Vec<String>>>,
    shell: Option<Spanned<String>>,
    resources: Option<Spanned<RawResources>>,
    slot_sharing_group: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuiltin {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    path: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResources {
    cpu: Option<Spanned<toml::Value>>,
    memory: Option<Spanned<toml::Value>>,
    off_heap: Option<Spanned<toml::Value>>,
    managed: Option<Spanned<toml::Value>>,
    network: Option<Spanned<toml::Value>>,
    extended: Option<BTreeMap<String, Spanned<i64>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    from: Spanned<String>,
    to: Spanned<String>,
    partitioning: Option<Spanned<String>>,
}

/// A lenient second reading, only to name the section a serde error is in.
#[derive(Deserialize)]
struct Sections {
    job: Option<Spanned<toml::Table>>,
    #[serde(default)]
    vertex: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    edge: Vec<Spanned<toml::Table>>,
}

// ---- validation ----

struct Cx<'a> {
    text: &'a str,
    path: &'a Path,
    bundle_dir: &'a Path,
}

/// A vertex after its own fields are checked, before edges are.
struct Checked {
    spec: VertexSpec,
    line_span: Range<usize>,
    is_builtin_source: bool,
    is_builtin_sink: bool,
}

impl Cx<'_> {
    fn pos(&self, span: &Range<usize>) -> Option<Position> {
        Some(Position::of_offset(self.text, span.start))
    }

    fn invalid(&self, span: &Range<usize>, section: Option<String>, problem: String, fix: String) -> SpecError {
        SpecError::invalid(self.path, problem, fix).at(self.pos(span)).in_section(section)
    }

    fn toml_error(&self, e: &toml::de::Error) -> SpecError {
        let span = e.span();
        let message = e.message().trim().to_owned();
        let kind = if let Some(field) = backticked(&message).first().filter(|_| message.starts_with("unknown field")) {
            let allowed: Vec<String> = backticked(&message).into_iter().skip(1).collect();
            let suggestion = closest(field, allowed.iter().map(String::as_str));
            SpecErrorKind::UnknownField { field: field.clone(), allowed, suggestion }
        } else if let Some(field) = backticked(&message).first().filter(|_| message.starts_with("missing field")) {
            SpecErrorKind::MissingField { field: field.clone() }
        } else if message.starts_with("duplicate key") {
            let key =
                span.as_ref().and_then(|s| self.text.get(s.clone())).map(|k| k.trim().trim_matches('"').to_owned());
            let problem = match key {
                Some(k) if !k.is_empty() && !k.contains('\n') => format!("`{k}` is given twice"),
                _ => "a key is given twice".to_owned(),
            };
            SpecErrorKind::Invalid {
                problem,
                fix: "keep one of them; each [[vertex]] or [[edge]] starts with its own header".to_owned(),
            }
        } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
            let message = plain_types(&message);
            let key = span.as_ref().and_then(|s| self.key_before(s.start));
            let message = match key {
                Some(k) => format!("`{k}` has the wrong type: {message}"),
                None => message,
            };
            SpecErrorKind::WrongType { message }
        } else {
            SpecErrorKind::Syntax { message }
        };
        SpecError {
            path: self.path.to_owned(),
            position: span.as_ref().map(|s| Position::of_offset(self.text, s.start)),
            section: span.and_then(|s| self.section_at(s.start)),
            kind: Box::new(kind),
        }
    }

    /// The key of the `key = value` whose value starts at `offset`.
    fn key_before(&self, offset: usize) -> Option<String> {
        let before = self.text.get(..offset)?;
        let line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
        let eq = line.rfind('=')?;
        let key = line[..eq].trim_end();
        let start =
            key.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '"')).map_or(0, |i| i + 1);
        let key = key[start..].trim_matches('"');
        (!key.is_empty()).then(|| key.to_owned())
    }

    fn section_at(&self, offset: usize) -> Option<String> {
        let sections: Sections = toml::from_str(self.text).ok()?;
        let mut best: Option<(usize, String)> = None;
        let mut consider = |start: usize, name: String| {
            if start <= offset && best.as_ref().is_none_or(|(b, _)| start >= *b) {
                best = Some((start, name));
            }
        };
        if let Some(job) = &sections.job {
            consider(job.span().start, "[job]".to_owned());
        }
        for (i, v) in sections.vertex.iter().enumerate() {
            consider(v.span().start, vertex_section(i, v.get_ref().get("name").and_then(|n| n.as_str())));
        }
        for (i, e) in sections.edge.iter().enumerate() {
            let get = |k: &str| e.get_ref().get(k).and_then(|n| n.as_str().map(str::to_owned));
            consider(e.span().start, edge_section(i, get("from").as_deref(), get("to").as_deref()));
        }
        best.map(|(_, s)| s)
    }

    fn validate(&self, raw: RawSpec) -> Result<JobSpec, SpecError> {
        if raw.vertex.is_empty() {
            return Err(SpecError {
                path: self.path.to_owned(),
                position: None,
                section: None,
                kind: Box::new(SpecErrorKind::NoVertices),
            });
        }
        let (name, restart) = self.job_section(raw.job)?;

        let mut vertices: Vec<Checked> = Vec::with_capacity(raw.vertex.len());
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, rv) in raw.vertex.into_iter().enumerate() {
            let checked = self.vertex(i, rv)?;
            if let Some(&first) = by_name.get(&checked.spec.name) {
                let first_line = Position::of_offset(self.text, vertices[first].line_span.start).line;
                return Err(self.invalid(
                    &checked.line_span,
                    Some(vertex_section(i, Some(&checked.spec.name))),
                    format!(
                        "vertex name `{}` is already used by [[vertex]] #{} (line {first_line})",
                        checked.spec.name,
                        first + 1
                    ),
                    "give every vertex a different name".to_owned(),
                ));
            }
            by_name.insert(checked.spec.name.clone(), i);
            vertices.push(checked);
        }

        let mut edges = Vec::with_capacity(raw.edge.len());
        for (i, re) in raw.edge.into_iter().enumerate() {
            edges.push(self.edge(i, re, &vertices, &by_name)?);
        }
        let order = self.topological_order(&vertices, &edges)?;

        let mut new_index = vec![0usize; vertices.len()];
        for (new, &old) in order.iter().enumerate() {
            new_index[old] = new;
        }
        let mut slots: Vec<Option<VertexSpec>> = vertices.into_iter().map(|c| Some(c.spec)).collect();
        let vertices = order.iter().filter_map(|&old| slots[old].take()).collect();
        let edges = edges
            .into_iter()
            .map(|e| EdgeSpec { from: new_index[e.from], to: new_index[e.to], partitioning: e.partitioning })
            .collect();
        let name = match name {
            Some(n) => n,
            None => default_job_name(self.bundle_dir),
        };
        Ok(JobSpec { name, restart, vertices, edges })
    }

    fn job_section(&self, job: Option<RawJob>) -> Result<(Option<String>, RestartStrategy), SpecError> {
        let Some(job) = job else { return Ok((None, DEFAULT_RESTART)) };
        let section = || Some("[job]".to_owned());
        let name = match job.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(self.invalid(
                    &n.span(),
                    section(),
                    "`name` is empty".to_owned(),
                    "give the job a name, or remove `name` to use the bundle directory's name".to_owned(),
                ))
            }
            Some(n) => Some(n.into_inner()),
            None => None,
        };
        let restart = match job.restart {
            None => DEFAULT_RESTART,
            Some(r) => self.restart(r.into_inner())?,
        };
        Ok((name, restart))
    }

    fn restart(&self, r: RawRestart) -> Result<RestartStrategy, SpecError> {
        let section = || Some("[job] restart".to_owned());
        match r.strategy.get_ref().as_str() {
            "none" => {
                let extra = r
                    .attempts
                    .as_ref()
                    .map(|a| ("attempts", a.span()))
                    .or(r.delay.as_ref().map(|d| ("delay", d.span())));
                if let Some((field, span)) = extra {
                    return Err(self.invalid(
                        &span,
                        section(),
                        format!("`{field}` has no meaning with strategy = \"none\""),
                        format!("remove `{field}`, or use strategy = \"fixed-delay\""),
                    ));
                }
                Ok(RestartStrategy::None)
            }
            "fixed-delay" => {
                let attempts = match r.attempts {
                    None => 3,
                    Some(a) => {
                        u32::try_from(*a.get_ref()).ok().filter(|n| *n <= MAX_RESTART_ATTEMPTS).ok_or_else(|| {
                            self.invalid(
                                &a.span(),
                                section(),
                                format!("`attempts = {}` is out of range", a.get_ref()),
                                format!("give a number of restarts from 0 to {MAX_RESTART_ATTEMPTS}"),
                            )
                        })?
                    }
                };
                let delay = match r.delay {
                    None => Duration::from_secs(1),
                    Some(d) => parse_duration(d.get_ref()).map_err(|m| {
                        self.invalid(
                            &d.span(),
                            section(),
                            format!("bad `delay`: {m}"),
                            "e.g. delay = \"1s\"".to_owned(),
                        )
                    })?,
                };
                Ok(RestartStrategy::FixedDelay { attempts, delay })
            }
            other => {
                let allowed = vec!["fixed-delay".to_owned(), "none".to_owned()];
                let suggestion = closest(other, allowed.iter().map(String::as_str));
                Err(SpecError {
                    path: self.path.to_owned(),
                    position: self.pos(&r.strategy.span()),
                    section: section(),
                    kind: Box::new(SpecErrorKind::UnknownValue {
                        field: "strategy".to_owned(),
                        value: other.to_owned(),
                        allowed,
                        suggestion,
                    }),
                })
            }
        }
    }

    fn vertex(&self, i: usize, rv: RawVertex) -> Result<Checked, SpecError> {
        let name_span = rv.name.span();
        let name = rv.name.into_inner();
        let section = || Some(vertex_section(i, Some(&name)));
        if name.trim().is_empty() || name.contains(['/', '\n', '\0']) {
            return Err(self.invalid(
                &name_span,
                section(),
                format!("vertex name {name:?} is not usable"),
                "give a non-empty name without `/` or line breaks (it names the subtasks' work directories)".to_owned(),
            ));
        }
        let parallelism = match rv.parallelism {
            None => 1,
            Some(p) => {
                u32::try_from(*p.get_ref()).ok().filter(|n| (1..=MAX_PARALLELISM).contains(n)).ok_or_else(|| {
                    self.invalid(
                        &p.span(),
                        section(),
                        format!("`parallelism = {}` is out of range", p.get_ref()),
                        format!("give a parallelism from 1 to {MAX_PARALLELISM}"),
                    )
                })?
            }
        };
        let resources = match rv.resources {
            None => RequestedProfile::Unknown,
            Some(r) => self.resources(r, &section)?,
        };
        let slot_sharing_group = match rv.slot_sharing_group {
            Some(g) if g.get_ref().trim().is_empty() => {
                return Err(self.invalid(
                    &g.span(),
                    section(),
                    "`slot_sharing_group` is empty".to_owned(),
                    "name the group, or remove `slot_sharing_group` to share the \"default\" group's slots".to_owned(),
                ))
            }
            // As in Flink: a vertex that names no group shares slots with the others, so a job
            // holds as many slots as its widest vertex, not one per subtask of every vertex.
            g => Some(g.map(Spanned::into_inner).unwrap_or_else(|| DEFAULT_SLOT_SHARING_GROUP.to_owned())),
        };

        let given: Vec<(&str, Range<usize>)> = [
            rv.source.as_ref().map(|s| ("source", s.span())),
            rv.sink.as_ref().map(|s| ("sink", s.span())),
            rv.command.as_ref().map(|s| ("command", s.span())),
            rv.shell.as_ref().map(|s| ("shell", s.span())),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let problem = if given.is_empty() {
                "the vertex says nothing to run".to_owned()
            } else {
                let names: Vec<String> = given.iter().map(|(n, _)| format!("`{n}`")).collect();
                format!("the vertex has {}, but may have only one", names.join(" and "))
            };
            let span = given.get(1).map_or(name_span.clone(), |(_, s)| s.clone());
            return Err(self.invalid(
                &span,
                section(),
                problem,
                "give exactly one of `source`, `sink`, `command` or `shell`".to_owned(),
            ));
        }
        let (is_builtin_source, is_builtin_sink) = (rv.source.is_some(), rv.sink.is_some());
        let program = if let Some(s) = rv.source {
            Program::Source(BuiltinSource::TextFiles { path: self.builtin(s.into_inner(), "source", &section)? })
        } else if let Some(s) = rv.sink {
            Program::Sink(BuiltinSink::TextFiles { path: self.builtin(s.into_inner(), "sink", &section)? })
        } else if let Some(c) = rv.command {
            self.command(c, &section)?
        } else if let Some(s) = rv.shell {
            self.shell(s, &section)?
        } else {
            // Unreachable: exactly one of the four was checked above.
            return Err(self.invalid(
                &name_span,
                section(),
                "the vertex says nothing to run".to_owned(),
                String::new(),
            ));
        };
        Ok(Checked {
            spec: VertexSpec { name, parallelism, resources, slot_sharing_group, program },
            line_span: name_span,
            is_builtin_source,
            is_builtin_sink,
        })
    }

    fn builtin(&self, b: RawBuiltin, what: &str, section: &dyn Fn() -> Option<String>) -> Result<String, SpecError> {
        if b.kind.get_ref() != "text" {
            let allowed = vec!["text".to_owned()];
            return Err(SpecError {
                path: self.path.to_owned(),
                position: self.pos(&b.kind.span()),
                section: section(),
                kind: Box::new(SpecErrorKind::UnknownValue {
                    field: format!("{what}.type"),
                    value: b.kind.get_ref().clone(),
                    suggestion: closest(b.kind.get_ref(), allowed.iter().map(String::as_str)),
                    allowed,
                }),
            });
        }
        if b.path.get_ref().trim().is_empty() {
            return Err(self.invalid(
                &b.path.span(),
                section(),
                format!("`{what}.path` is empty"),
                format!("give the {what}'s file or directory, e.g. path = \"input\" or \"hdfs:///data/in\""),
            ));
        }
        Ok(b.path.into_inner())
    }

    fn command(&self, c: Spanned<Vec<String>>, section: &dyn Fn() -> Option<String>) -> Result<Program, SpecError> {
        let span = c.span();
        let mut argv = c.into_inner();
        let Some(program) = argv.first().filter(|p| !p.trim().is_empty()).cloned() else {
            return Err(self.invalid(
                &span,
                section(),
                "`command` is empty".to_owned(),
                "give the program and its arguments, e.g. command = [\"./tokenize.py\", \"--lower\"]".to_owned(),
            ));
        };
        let path = Path::new(&program);
        if program.contains('/') {
            if path.is_relative() {
                self.check_program(&program, &span, section, "command")?;
            }
        } else if self.bundle_dir.join(path).is_file() {
            self.check_program(&program, &span, section, "command")?;
            argv[0] = format!("./{program}");
        }
        Ok(Program::Command { argv })
    }

    fn shell(&self, s: Spanned<String>, section: &dyn Fn() -> Option<String>) -> Result<Program, SpecError> {
        let span = s.span();
        let script = s.into_inner();
        let Some(first) = script.split_whitespace().next() else {
            return Err(self.invalid(
                &span,
                section(),
                "`shell` is empty".to_owned(),
                "give a command line, e.g. shell = \"./count | sort\"".to_owned(),
            ));
        };
        if first.starts_with("./") {
            self.check_program(first, &span, section, "shell")?;
        }
        Ok(Program::Shell { script })
    }

    fn check_program(
        &self,
        program: &str,
        span: &Range<usize>,
        section: &dyn Fn() -> Option<String>,
        field: &str,
    ) -> Result<(), SpecError> {
        let file = self.bundle_dir.join(program.trim_start_matches("./"));
        let meta = match std::fs::metadata(&file) {
            Ok(m) if m.is_file() => m,
            _ => {
                return Err(self.invalid(
                    span,
                    section(),
                    format!("program `{program}` is not in the bundle (looked for {})", file.display()),
                    format!(
                        "add it to the bundle directory {} or fix the path in `{field}`",
                        self.bundle_dir.display()
                    ),
                ))
            }
        };
        if !is_executable(&meta) {
            return Err(self.invalid(
                span,
                section(),
                format!("program `{program}` ({}) is not executable", file.display()),
                format!("run `chmod +x {}`", file.display()),
            ));
        }
        Ok(())
    }

    fn resources(
        &self,
        r: Spanned<RawResources>,
        section: &dyn Fn() -> Option<String>,
    ) -> Result<RequestedProfile, SpecError> {
        let span = r.span();
        let r = r.into_inner();
        let mut p = ResourceProfile::ZERO;
        if let Some(cpu) = &r.cpu {
            let text = match cpu.get_ref() {
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            p.cpu_millis = parse_cpu(&text).map_err(|m| {
                self.invalid(&cpu.span(), section(), format!("bad `resources.cpu`: {m}"), "e.g. cpu = 0.5".to_owned())
            })?;
        }
        let memory = |v: &Option<Spanned<toml::Value>>, field: &str| -> Result<u64, SpecError> {
            let Some(v) = v else { return Ok(0) };
            let parsed = match v.get_ref() {
                toml::Value::String(s) => parse_memory(s),
                toml::Value::Integer(n) => u64::try_from(*n).map_err(|_| format!("`{n}` is negative")),
                other => Err(format!("`{other}` is not a memory size")),
            };
            parsed.map_err(|m| {
                self.invalid(
                    &v.span(),
                    section(),
                    format!("bad `resources.{field}`: {m}"),
                    format!("write a size such as {field} = \"256m\" or \"2g\""),
                )
            })
        };
        p.task_heap_bytes = memory(&r.memory, "memory")?;
        p.task_off_heap_bytes = memory(&r.off_heap, "off_heap")?;
        p.managed_bytes = memory(&r.managed, "managed")?;
        p.network_bytes = memory(&r.network, "network")?;
        for (name, amount) in r.extended.into_iter().flatten() {
            let n = u64::try_from(*amount.get_ref()).map_err(|_| {
                self.invalid(
                    &amount.span(),
                    section(),
                    format!("`resources.extended.{name} = {}` is negative", amount.get_ref()),
                    format!("give a whole number of units, e.g. {name} = 1"),
                )
            })?;
            p = p.with_extended(&name, n);
        }
        if p.is_zero() {
            return Err(self.invalid(
                &span,
                section(),
                "`resources` asks for nothing".to_owned(),
                "give cpu and/or memory, or remove `resources` to take any slot".to_owned(),
            ));
        }
        Ok(RequestedProfile::Exact(p))
    }

    fn edge(
        &self,
        i: usize,
        re: RawEdge,
        vertices: &[Checked],
        by_name: &HashMap<String, usize>,
    ) -> Result<EdgeSpec, SpecError> {
        let section = || Some(edge_section(i, Some(re.from.get_ref()), Some(re.to.get_ref())));
        let lookup = |end: &Spanned<String>, field: &str| -> Result<usize, SpecError> {
            by_name.get(end.get_ref()).copied().ok_or_else(|| {
                let fix = match closest(end.get_ref(), vertices.iter().map(|v| v.spec.name.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        let names: Vec<String> = vertices.iter().map(|v| format!("`{}`", v.spec.name)).collect();
                        format!("name one of the vertices: {}", names.join(", "))
                    }
                };
                self.invalid(&end.span(), section(), format!("`{field}` names no vertex: `{}`", end.get_ref()), fix)
            })
        };
        let from = lookup(&re.from, "from")?;
        let to = lookup(&re.to, "to")?;
        let (src, dst) = (&vertices[from], &vertices[to]);
        if from == to {
            return Err(self.invalid(
                &re.to.span(),
                section(),
                format!("the edge joins vertex `{}` to itself", src.spec.name),
                "remove the edge; a vertex cannot consume its own output".to_owned(),
            ));
        }
        if dst.is_builtin_source {
            return Err(self.invalid(
                &re.to.span(),
                section(),
                format!("vertex `{}` is a built-in source and cannot have inputs", dst.spec.name),
                "point the edge at another vertex, or make the vertex a `command`".to_owned(),
            ));
        }
        if src.is_builtin_sink {
            return Err(self.invalid(
                &re.from.span(),
                section(),
                format!("vertex `{}` is a built-in sink and cannot have outputs", src.spec.name),
                "start the edge at another vertex, or make the vertex a `command`".to_owned(),
            ));
        }
        let equal = src.spec.parallelism == dst.spec.parallelism;
        let partitioning = match &re.partitioning {
            None if equal => Partitioning::Forward,
            None => Partitioning::Rebalance,
            Some(p) => match p.get_ref().as_str() {
                "forward" => Partitioning::Forward,
                "hash" => Partitioning::Hash,
                "rebalance" => Partitioning::Rebalance,
                "broadcast" => Partitioning::Broadcast,
                other => {
                    let allowed: Vec<String> =
                        ["forward", "hash", "rebalance", "broadcast"].iter().map(|s| s.to_string()).collect();
                    return Err(SpecError {
                        path: self.path.to_owned(),
                        position: self.pos(&p.span()),
                        section: section(),
                        kind: Box::new(SpecErrorKind::UnknownValue {
                            field: "partitioning".to_owned(),
                            value: other.to_owned(),
                            suggestion: closest(other, allowed.iter().map(String::as_str)),
                            allowed,
                        }),
                    });
                }
            },
        };
        if partitioning == Partitioning::Forward && !equal {
            let span = re.partitioning.as_ref().map_or(re.to.span(), |p| p.span());
            return Err(self.invalid(
                &span,
                section(),
                format!(
                    "a forward edge needs equal parallelism, but `{}` has {} and `{}` has {}",
                    src.spec.name, src.spec.parallelism, dst.spec.name, dst.spec.parallelism
                ),
                "give both vertices the same parallelism, or use partitioning = \"rebalance\" or \"hash\"".to_owned(),
            ));
        }
        Ok(EdgeSpec { from, to, partitioning })
    }

    /// Kahn's algorithm, taking the lowest declared index among the ready
    /// vertices so the order is stable and follows the file where it can.
    fn topological_order(&self, vertices: &[Checked], edges: &[EdgeSpec]) -> Result<Vec<usize>, SpecError> {
        let n = vertices.len();
        let mut indegree = vec![0usize; n];
        let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut inputs: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in edges {
            indegree[e.to] += 1;
            out[e.from].push(e.to);
            inputs[e.to].push(e.from);
        }
        let mut ready: BTreeSet<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(v) = ready.pop_first() {
            order.push(v);
            for &w in &out[v] {
                indegree[w] -= 1;
                if indegree[w] == 0 {
                    ready.insert(w);
                }
            }
        }
        if order.len() == n {
            return Ok(order);
        }
        // Every vertex left has an input from another vertex left, so walking
        // inputs backwards from any of them must come round to a repeat.
        let left = |v: usize| indegree[v] > 0;
        let Some(start) = (0..n).find(|&v| left(v)) else { return Ok(order) };
        let mut walk = vec![start];
        let mut seen_at: HashMap<usize, usize> = HashMap::from([(start, 0)]);
        let cycle = loop {
            let Some(&cur) = walk.last() else { break Vec::new() };
            let Some(&prev) = inputs[cur].iter().find(|&&p| left(p)) else { break Vec::new() };
            if let Some(&at) = seen_at.get(&prev) {
                let mut c: Vec<usize> = walk[at..].to_vec();
                c.reverse();
                // Start at the vertex declared first, so the message is stable.
                let lowest = c.iter().enumerate().min_by_key(|(_, v)| **v).map_or(0, |(i, _)| i);
                c.rotate_left(lowest);
                break c;
            }
            seen_at.insert(prev, walk.len());
            walk.push(prev);
        };
        let mut names: Vec<&str> = cycle.iter().map(|&v| vertices[v].spec.name.as_str()).collect();
        if let Some(first) = names.first().copied() {
            names.push(first);
        }
        let span = cycle.first().map_or(0..0, |&v| vertices[v].line_span.clone());
        Err(self.invalid(
            &span,
            None,
            format!("the edges form a cycle: {}", names.join(" -> ")),
            "remove one of these edges; a job graph must be acyclic".to_owned(),
        ))
    }
}

fn vertex_section(i: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("[[vertex]] #{} (name = {n:?})", i + 1),
        None => format!("[[vertex]] #{}", i + 1),
    }
}

fn edge_section(i: usize, from: Option<&str>, to: Option<&str>) -> String {
    match (from, to) {
        (Some(f), Some(t)) => format!("[[edge]] #{} (from = {f:?}, to = {t:?})", i + 1),
        _ => format!("[[edge]] #{}", i + 1),
    }
}

fn default_job_name(bundle_dir: &Path) -> String {
    let named = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
    named(bundle_dir)
        .or_else(|| std::fs::canonicalize(bundle_dir).ok().as_deref().and_then(named))
        .unwrap_or_else(|| "job".to_owned())
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    true
}

/// Serde's type names in the words of a TOML reader.
fn plain_types(message: &str) -> String {
    let mut out = message
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected an integer")
        .replace("a sequence", "an array")
        .replace("a map", "a table");
    // `expected struct RawRestart` names our private type: say "a table".
    while let Some(i) = out.find("struct Raw") {
        let end = out[i..].find(|c: char| c.is_whitespace() || c == ',').map_or(out.len(), |e| i + e);
        out.replace_range(i..end, "a table");
    }
    out
}

/// The words in backticks in a serde message, in order.
fn backticked(message: &str) -> Vec<String> {
    message.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// The candidate closest to `word` by edit distance, if close enough to be a typo.
pub(crate) fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let len = word.chars().count();
    // Short words are too easily "close" to anything: `b` is one edit from `a`.
    let limit = match len {
        0..=2 => 0,
        3..=4 => 1,
        _ => (len / 3).max(2),
    };
    // A long shared start counts too: `vertices` is meant as `vertex`.
    let shared_start = |c: &str| word.chars().zip(c.chars()).take_while(|(a, b)| a == b).count();
    candidates
        // Optimal string alignment: Levenshtein plus adjacent transpositions (`nmae` is one edit from `name`).
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, c)| *d <= limit || shared_start(c) >= 4)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}
