//! Spec and bundle tests. Most are data: a spec and the substrings its error
//! must contain; one `check_err` helper is the only caller of the parser there.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::resources::{RequestedProfile, ResourceProfile, MIB};

/// A bundle dir with an executable `count`, a non-executable `notexec` and `tokenize.awk`.
fn bundle_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_program(dir.path(), "count", 0o755);
    write_program(dir.path(), "notexec", 0o644);
    write_program(dir.path(), "tokenize.awk", 0o644);
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
    write_program(&dir.path().join("bin"), "run", 0o755);
    dir
}

fn write_program(dir: &Path, name: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, "#!/bin/sh\ncat\n").expect("write");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn parse(toml: &str, dir: &Path) -> Result<JobSpec, SpecError> {
    parse_job_spec(toml, &dir.join("job.toml"), dir)
}

fn ok(toml: &str) -> JobSpec {
    let dir = bundle_dir();
    match parse(toml, dir.path()) {
        Ok(spec) => spec,
        Err(e) => panic!("expected a valid spec, got: {e}"),
    }
}

/// Every substring must occur in the error message.
fn check_err(toml: &str, expected: &[&str]) {
    let dir = bundle_dir();
    let err = match parse(toml, dir.path()) {
        Ok(spec) => panic!("expected an error containing {expected:?}, got a spec: {spec:?}\n--- spec:\n{toml}"),
        Err(e) => e.to_string(),
    };
    for want in expected {
        assert!(err.contains(want), "error {err:?}\nlacks {want:?}\n--- spec:\n{toml}");
    }
    assert!(err.contains(&dir.path().join("job.toml").display().to_string()), "error {err:?} does not name the file");
}

const TWO: &str = r#"
[[vertex]]
name = "a"
parallelism = 2
source = { type = "text", path = "in" }

[[vertex]]
name = "b"
parallelism = 2
sink = { type = "text", path = "out" }
"#;

#[test]
fn bad_specs_name_the_problem_the_place_and_the_fix() {
    let cases: &[(&str, &[&str])] = &[
        // Unknown fields, with a suggestion or the allowed list.
        (
            "[[vertex]]\nname = \"a\"\nsource = { type = \"text\", path = \"in\" }\n\n[[vertex]]\nname = \"tokenize\"\nparalelism = 2\ncommand = [\"cat\"]\n",
            &[
                "unknown field `paralelism` in [[vertex]] #2 (name = \"tokenize\") of",
                "(line 7, column 1)",
                "did you mean `parallelism`?",
            ],
        ),
        ("[[vertices]]\nname = \"a\"\n", &["unknown field `vertices`", "did you mean `vertex`?"]),
        (
            "[job]\nnmae = \"x\"\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["unknown field `nmae` in [job]", "did you mean `name`?"],
        ),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = { cpus = 1 }\n",
            &["unknown field `cpus` in [[vertex]] #1 (name = \"a\")", "did you mean `cpu`?"],
        ),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nzzzzzz = 1\n",
            &["unknown field `zzzzzz`", "allowed here: `name`, `parallelism`"],
        ),
        // Syntax and types.
        ("[[vertex]\nname = \"a\"\n", &["(line 1, column", "fix the TOML syntax"]),
        (
            "[[vertex]]\nname = \"a\"\nparallelism = \"2\"\ncommand = [\"cat\"]\n",
            &["`parallelism` has the wrong type", "(line 3, column 15)"],
        ),
        ("[[vertex]]\ncommand = [\"cat\"]\n", &["missing field `name`", "[[vertex]] #1", "add `name = ...`"]),
        ("[job]\nname = \"x\"\n", &["the job has no vertices", "add at least one [[vertex]]"]),
        (
            "[[vertex]]\nname = \"a\"\nname = \"b\"\ncommand = [\"cat\"]\n",
            &["`name` is given twice", "(line 3, column 1)", "keep one of them"],
        ),
        (
            "[job]\nrestart = \"none\"\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["`restart` has the wrong type", "expected a table", "in [job]"],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = \"cat\"\n", &["`command` has the wrong type", "expected an array"]),
        // Vertex fields.
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["vertex name `a` is already used by [[vertex]] #1 (line 2)", "(line 5", "different name"],
        ),
        ("[[vertex]]\nname = \"\"\ncommand = [\"cat\"]\n", &["vertex name \"\" is not usable", "non-empty name"]),
        ("[[vertex]]\nname = \"a/b\"\ncommand = [\"cat\"]\n", &["not usable", "without `/`"]),
        (
            "[[vertex]]\nname = \"a\"\nparallelism = 0\ncommand = [\"cat\"]\n",
            &["`parallelism = 0` is out of range", "from 1 to 10000"],
        ),
        ("[[vertex]]\nname = \"a\"\nparallelism = 10001\ncommand = [\"cat\"]\n", &["out of range"]),
        ("[[vertex]]\nname = \"a\"\nparallelism = -1\ncommand = [\"cat\"]\n", &["out of range"]),
        ("[[vertex]]\nname = \"a\"\n", &["says nothing to run", "exactly one of `source`, `sink`, `command` or `shell`"]),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nshell = \"cat\"\n",
            &["has `command` and `shell`, but may have only one", "(line 4"],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = []\n", &["`command` is empty", "command = ["]),
        ("[[vertex]]\nname = \"a\"\nshell = \"  \"\n", &["`shell` is empty"]),
        ("[[vertex]]\nname = \"a\"\nsource = { type = \"txt\", path = \"in\" }\n", &["unknown value `txt` for `source.type`", "did you mean `text`?"]),
        ("[[vertex]]\nname = \"a\"\nsink = { type = \"text\", path = \"\" }\n", &["`sink.path` is empty"]),
        ("[[vertex]]\nname = \"a\"\nsource = { path = \"in\" }\n", &["missing field `type`"]),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nslot_sharing_group = \"\"\n",
            &["`slot_sharing_group` is empty"],
        ),
        // Programs in the bundle.
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"./missing\"]\n",
            &["program `./missing` is not in the bundle", "add it to the bundle directory"],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"bin/nope\"]\n", &["program `bin/nope` is not in the bundle"]),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"./notexec\"]\n", &["is not executable", "run `chmod +x ", "notexec`"]),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"notexec\", \"x\"]\n", &["`notexec`", "chmod +x"]),
        ("[[vertex]]\nname = \"a\"\nshell = \"./notexec | sort\"\n", &["chmod +x"]),
        ("[[vertex]]\nname = \"a\"\nshell = \"./gone | sort\"\n", &["program `./gone` is not in the bundle", "`shell`"]),
        // Resources.
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = { cpu = \"lots\" }\n",
            &["bad `resources.cpu`", "not a cpu amount", "e.g. cpu = 0.5"],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = { cpu = 0.0001 }\n", &["bad `resources.cpu`"]),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = { memory = \"2 parsecs\" }\n",
            &["bad `resources.memory`", "not a memory size", "memory = \"256m\""],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = { managed = -5 }\n", &["bad `resources.managed`"]),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = {}\n", &["`resources` asks for nothing"]),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\nresources = { extended = { gpu = -1 } }\n",
            &["`resources.extended.gpu = -1` is negative"],
        ),
        // Edges.
        (
            "[[vertex]]\nname = \"tokenize\"\ncommand = [\"cat\"]\n[[vertex]]\nname = \"b\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"tokenise\"\nto = \"b\"\n",
            &["`from` names no vertex: `tokenise`", "[[edge]] #1 (from = \"tokenise\", to = \"b\")", "did you mean `tokenize`?"],
        ),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"a\"\nto = \"b\"\n",
            &["`to` names no vertex", "name one of the vertices: `a`"],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"a\"\nto = \"a\"\n", &["joins vertex `a` to itself"]),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[vertex]]\nname = \"b\"\ncommand = [\"cat\"]\n[[vertex]]\nname = \"c\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"a\"\nto = \"b\"\n[[edge]]\nfrom = \"b\"\nto = \"c\"\n[[edge]]\nfrom = \"c\"\nto = \"b\"\n",
            &["the edges form a cycle: b -> c -> b", "acyclic"],
        ),
        (
            "[[vertex]]\nname = \"a\"\nparallelism = 2\ncommand = [\"cat\"]\n[[vertex]]\nname = \"b\"\nparallelism = 3\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"a\"\nto = \"b\"\npartitioning = \"forward\"\n",
            &["forward edge needs equal parallelism, but `a` has 2 and `b` has 3", "partitioning = \"rebalance\""],
        ),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[vertex]]\nname = \"b\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"a\"\nto = \"b\"\npartitioning = \"hsah\"\n",
            &["unknown value `hsah` for `partitioning`", "did you mean `hash`?"],
        ),
        (
            "[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[vertex]]\nname = \"s\"\nsource = { type = \"text\", path = \"in\" }\n[[edge]]\nfrom = \"a\"\nto = \"s\"\n",
            &["vertex `s` is a built-in source and cannot have inputs"],
        ),
        (
            "[[vertex]]\nname = \"k\"\nsink = { type = \"text\", path = \"out\" }\n[[vertex]]\nname = \"b\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"k\"\nto = \"b\"\n",
            &["vertex `k` is a built-in sink and cannot have outputs"],
        ),
        ("[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n[[edge]]\nfrom = \"a\"\n", &["missing field `to`", "[[edge]] #1"]),
        // Restart strategy.
        (
            "[job]\nrestart = { strategy = \"fixed-dealy\" }\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["unknown value `fixed-dealy` for `strategy`", "[job] restart", "did you mean `fixed-delay`?"],
        ),
        (
            "[job]\nrestart = { strategy = \"none\", attempts = 3 }\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["`attempts` has no meaning with strategy = \"none\"", "remove `attempts`"],
        ),
        (
            "[job]\nrestart = { strategy = \"fixed-delay\", attempts = -1 }\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["`attempts = -1` is out of range"],
        ),
        (
            "[job]\nrestart = { strategy = \"fixed-delay\", delay = \"5\" }\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["bad `delay`", "with a unit"],
        ),
        (
            "[job]\nrestart = { attempts = 2 }\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n",
            &["missing field `strategy`"],
        ),
        ("[job]\nname = \" \"\n[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n", &["`name` is empty", "[job]"]),
    ];
    for (toml, expected) in cases {
        check_err(toml, expected);
    }
}

#[test]
fn the_documented_example_parses_into_topological_order() {
    // Declared out of order: the sink first, then the edges out of order too.
    let spec = ok(r#"
[job]
name = "wordcount"
restart = { strategy = "fixed-delay", attempts = 5, delay = "250ms" }

[[vertex]]
name = "sink"
sink = { type = "text", path = "out" }

[[vertex]]
name = "count"
shell = "./count | sort"

[[vertex]]
name = "tokenize"
parallelism = 2
command = ["awk", "-f", "tokenize.awk"]
slot_sharing_group = "default"
resources = { cpu = 1.5, memory = "256m", off_heap = 1048576, managed = "1g", network = "64m", extended = { gpu = 1 } }

[[vertex]]
name = "source"
parallelism = 2
source = { type = "text", path = "input" }
resources = { cpu = 0.5, memory = "256m" }

[[edge]]
from = "count"
to = "sink"

[[edge]]
from = "source"
to = "tokenize"
partitioning = "forward"

[[edge]]
from = "tokenize"
to = "count"
partitioning = "hash"
"#);
    let names: Vec<&str> = spec.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["source", "tokenize", "count", "sink"]);
    let edges: Vec<(usize, usize, Partitioning)> = spec.edges.iter().map(|e| (e.from, e.to, e.partitioning)).collect();
    assert_eq!(
        edges,
        [(2, 3, Partitioning::Forward), (0, 1, Partitioning::Forward), (1, 2, Partitioning::Hash)],
        "edges keep their declared order, re-indexed; an unset partitioning between equal parallelisms is forward"
    );
    assert_eq!(spec.name, "wordcount");
    assert_eq!(spec.restart, RestartStrategy::FixedDelay { attempts: 5, delay: Duration::from_millis(250) });
    let tokenize = &spec.vertices[1];
    assert_eq!(tokenize.parallelism, 2);
    assert_eq!(tokenize.slot_sharing_group.as_deref(), Some("default"));
    assert_eq!(tokenize.program, Program::Command { argv: vec!["awk".into(), "-f".into(), "tokenize.awk".into()] });
    let mut want = ResourceProfile::new(1500, 256 * MIB).with_extended("gpu", 1);
    want.task_off_heap_bytes = MIB;
    want.managed_bytes = 1024 * MIB;
    want.network_bytes = 64 * MIB;
    assert_eq!(tokenize.resources, RequestedProfile::Exact(want));
    assert_eq!(spec.vertices[0].resources, RequestedProfile::Exact(ResourceProfile::new(500, 256 * MIB)));
    assert_eq!(spec.vertices[0].program, Program::Source(BuiltinSource::TextFiles { path: "input".into() }));
    assert_eq!(spec.vertices[2].resources, RequestedProfile::Unknown);
    assert_eq!(spec.vertices[2].parallelism, 1);
    assert_eq!(spec.vertices[2].program, Program::Shell { script: "./count | sort".into() });
    assert_eq!(spec.vertices[3].program, Program::Sink(BuiltinSink::TextFiles { path: "out".into() }));
}

#[test]
fn defaults_and_program_resolution() {
    let dir = bundle_dir();
    let spec = parse(
        "[[vertex]]\nname = \"gen\"\ncommand = [\"count\", \"--n\", \"3\"]\n[[vertex]]\nname = \"b\"\nparallelism = 3\ncommand = [\"bin/run\"]\n[[vertex]]\nname = \"c\"\ncommand = [\"/usr/bin/env\"]\n[[edge]]\nfrom = \"gen\"\nto = \"b\"\n[[edge]]\nfrom = \"b\"\nto = \"c\"\nresources = 1\n",
        dir.path(),
    );
    // `resources` is not an edge field: the error names the edge.
    let err = spec.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("unknown field `resources` in [[edge]] #2 (from = \"b\", to = \"c\")"), "{err}");

    let spec = parse(
        "[[vertex]]\nname = \"gen\"\ncommand = [\"count\", \"--n\", \"3\"]\n[[vertex]]\nname = \"b\"\nparallelism = 3\ncommand = [\"bin/run\"]\n[[vertex]]\nname = \"c\"\ncommand = [\"/usr/bin/env\"]\n[[edge]]\nfrom = \"gen\"\nto = \"b\"\n[[edge]]\nfrom = \"b\"\nto = \"c\"\n",
        dir.path(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dir_name = dir.path().file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert_eq!(spec.name, dir_name, "the job is named after the bundle directory");
    assert_eq!(spec.restart, DEFAULT_RESTART);
    // A bare name of a bundle file is made explicit so no PATH search finds another program.
    assert_eq!(spec.vertices[0].program, Program::Command { argv: vec!["./count".into(), "--n".into(), "3".into()] });
    assert_eq!(spec.vertices[1].program, Program::Command { argv: vec!["bin/run".into()] });
    // Unequal parallelism and no partitioning: rebalance, as Flink does.
    assert_eq!(spec.edges[0].partitioning, Partitioning::Rebalance);
    assert_eq!(spec.edges[1].partitioning, Partitioning::Rebalance);
    // A command vertex without inputs is a source with an empty stdin.
    assert!(ok("[[vertex]]\nname = \"gen\"\ncommand = [\"seq\", \"10\"]\n").edges.is_empty());
    assert_eq!(
        ok("[job]\nrestart = { strategy = \"none\" }\n[[vertex]]\nname = \"a\"\nshell = \"true\"\n").restart,
        RestartStrategy::None
    );
    let two = ok(TWO);
    assert_eq!(two.vertices.len(), 2);
}

#[test]
fn durations_need_a_unit() {
    assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2 min"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("1").is_err());
    assert!(parse_duration("1.5s").is_err());
    assert!(parse_duration("s").is_err());
}

fn write_spec(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join(JOB_SPEC_FILE);
    std::fs::write(&p, text).expect("write spec");
    p
}

fn tgz(archive: &Path, entries: &[(&str, &[u8], u32)]) {
    let file = std::fs::File::create(archive).expect("create archive");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    for (path, data, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(*mode);
        header.set_entry_type(tar::EntryType::Regular);
        // Write the name bytes directly: `set_path` refuses `..`, and the test needs such entries.
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_cksum();
        builder.append(&header, *data).expect("append");
    }
    builder.into_inner().and_then(|gz| gz.finish()).expect("finish archive");
}

#[test]
fn bundles_load_from_dirs_spec_files_and_archives() {
    let dir = bundle_dir();
    let work = tempfile::tempdir().expect("work dir");
    let spec_path = write_spec(dir.path(), "[[vertex]]\nname = \"a\"\nshell = \"./count\"\n");

    let b = Bundle::load(dir.path(), work.path().join("unused"), &BundleLimits::default())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.dir, dir.path());
    assert_eq!(b.spec_path, spec_path);
    assert!(!work.path().join("unused").exists(), "a directory bundle extracts nothing");

    let b = Bundle::load(&spec_path, work.path(), &BundleLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.dir, dir.path());
    assert_eq!(b.spec.vertices[0].name, "a");

    // An archive with its files under one top-level directory, keeping the executable bit.
    let archive = work.path().join("wordcount.tgz");
    let spec = b"[[vertex]]\nname = \"a\"\nshell = \"./count\"\n";
    tgz(&archive, &[("wc/job.toml", spec, 0o644), ("wc/count", b"#!/bin/sh\ncat\n", 0o4777)]);
    let into = work.path().join("extracted");
    let b = Bundle::load(&archive, &into, &BundleLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.dir, into.join("wc"));
    assert_eq!(b.spec.name, "wc");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(into.join("wc/count")).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0);
        assert_eq!(mode, 0o775, "executable kept; setuid and world-writable dropped");
    }

    // An archive with the spec at its root.
    let archive = work.path().join("flat.tar.gz");
    tgz(&archive, &[("job.toml", b"[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n", 0o644)]);
    let b =
        Bundle::load(&archive, work.path().join("flat"), &BundleLimits::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.dir, work.path().join("flat"));
}

#[test]
fn bad_bundles_name_the_path_and_the_fix() {
    let dir = bundle_dir();
    let work = tempfile::tempdir().expect("work dir");
    let err = |path: &Path, into: &Path| match Bundle::load(path, into, &BundleLimits::default()) {
        Ok(b) => panic!("expected an error for {}, got {b:?}", path.display()),
        Err(e) => e.to_string(),
    };

    let missing = dir.path().join("nope");
    let e = err(&missing, work.path());
    assert!(e.contains(&missing.display().to_string()) && e.contains("does not exist"), "{e}");

    let e = err(dir.path(), work.path());
    assert!(e.contains("has no job.toml") && e.contains("add a job.toml"), "{e}");

    let e = err(&dir.path().join("count"), work.path());
    assert!(e.contains("neither a directory") && e.contains("count"), "{e}");

    write_spec(dir.path(), "[[vertex]]\nname = \"a\"\nparalelism = 1\n");
    let e = err(dir.path(), work.path());
    assert!(e.contains("did you mean `parallelism`?") && e.contains("job.toml"), "{e}");

    for (name, entry) in [("up.tgz", "../evil"), ("abs.tgz", "/tmp/evil")] {
        let archive = work.path().join(name);
        tgz(&archive, &[("job.toml", b"", 0o644), (entry, b"x", 0o644)]);
        let e = err(&archive, &work.path().join(format!("x-{name}")));
        assert!(e.contains(&format!("holds the entry `{entry}`")) && e.contains("relative paths"), "{e}");
    }

    // A link pointing out of the bundle.
    let archive = work.path().join("link.tgz");
    {
        let file = std::fs::File::create(&archive).expect("create archive");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, "data", "../../etc").expect("append link");
        builder.into_inner().and_then(|gz| gz.finish()).expect("finish archive");
    }
    let e = err(&archive, &work.path().join("link"));
    assert!(e.contains("holds the entry `data`"), "{e}");

    let archive = work.path().join("garbage.tgz");
    std::fs::write(&archive, b"not gzip at all").expect("write");
    let e = err(&archive, &work.path().join("g"));
    assert!(e.contains("cannot extract bundle archive") && e.contains("garbage.tgz"), "{e}");

    let archive = work.path().join("ok.tgz");
    tgz(&archive, &[("job.toml", b"[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n", 0o644)]);
    let e = err(&archive, dir.path());
    assert!(e.contains("is not empty"), "{e}");

    let archive = work.path().join("nospec.tgz");
    tgz(&archive, &[("README", b"hi", 0o644)]);
    let e = err(&archive, &work.path().join("ns"));
    assert!(e.contains("has no job.toml"), "{e}");
}

/// An archive of `job.toml` and, per `(name, size)`, a file of that many zeros
/// (gzip makes a gigabyte of them a few megabytes: the bomb of issue 14).
fn zeros_tgz(archive: &Path, files: &[(&str, u64)]) {
    let file = std::fs::File::create(archive).expect("create archive");
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
    let spec = ZEROS_SPEC;
    let mut header = tar::Header::new_gnu();
    header.set_size(spec.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, JOB_SPEC_FILE, spec).expect("append spec");
    for (name, size) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(*size);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, std::io::repeat(0).take(*size)).expect("append zeros");
    }
    builder.into_inner().and_then(|gz| gz.finish()).expect("finish archive");
}

const ZEROS_SPEC: &[u8] = b"[[vertex]]\nname = \"a\"\ncommand = [\"cat\"]\n";

fn load_err(archive: &Path, into: &Path, limits: &BundleLimits) -> BundleError {
    match Bundle::load(archive, into, limits) {
        Ok(b) => panic!("expected {} to be refused, got {b:?}", archive.display()),
        Err(e) => e,
    }
}

#[test]
fn an_archive_larger_than_the_limit_unpacked_is_refused_and_nothing_is_kept() {
    let work = tempfile::tempdir().expect("work dir");
    let limits = BundleLimits { max_bytes: 1 << 20, max_entries: 100 };
    // 8 MiB of zeros after a first file that fits: the refusal comes before the big one is written.
    let archive = work.path().join("bomb.tgz");
    zeros_tgz(&archive, &[("small", 512 << 10), ("zeros", 8 << 20)]);
    assert!(std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0) < 1 << 20, "the bomb is smaller than the limit");
    let into = work.path().join("unpacked");
    let e = load_err(&archive, &into, &limits);
    assert!(matches!(e, BundleError::TooLarge { what: LimitKind::Bytes, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("bomb.tgz") && msg.contains("more than 1 MiB") && msg.contains("--bundle-max-size"), "{msg}");
    assert!(!into.exists(), "the half-unpacked bundle is removed");

    // Exactly at the limit is fine (the spec's bytes count too).
    let spec_len = ZEROS_SPEC.len() as u64;
    let archive = work.path().join("fits.tgz");
    zeros_tgz(&archive, &[("data", (1 << 20) - spec_len)]);
    let b = Bundle::load(&archive, work.path().join("fits"), &limits).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(std::fs::metadata(b.dir.join("data")).map(|m| m.len()).ok(), Some((1 << 20) - spec_len));
}

#[test]
fn an_archive_with_more_entries_than_the_limit_is_refused() {
    let work = tempfile::tempdir().expect("work dir");
    let archive = work.path().join("many.tgz");
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    let files: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    zeros_tgz(&archive, &files);
    let into = work.path().join("many");
    let e = load_err(&archive, &into, &BundleLimits { max_bytes: 1 << 20, max_entries: 10 });
    assert!(matches!(e, BundleError::TooLarge { what: LimitKind::Entries, .. }), "{e:?}");
    assert!(e.to_string().contains("more than 10 entries") && e.to_string().contains("--bundle-max-entries"), "{e}");
    assert!(!into.exists());
    assert!(
        Bundle::load(&archive, work.path().join("ok"), &BundleLimits { max_bytes: 1 << 20, max_entries: 21 }).is_ok()
    );
}

/// tar reads a pax record into memory whole, sized by its header: a 64 MiB
/// record of zeros is a 64 KiB download. The stream bound stops it.
#[test]
fn a_pax_record_larger_than_the_limits_is_refused_without_reading_it_whole() {
    let work = tempfile::tempdir().expect("work dir");
    let archive = work.path().join("pax.tgz");
    {
        let file = std::fs::File::create(&archive).expect("create archive");
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::fast()));
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_size(64 << 20);
        header.set_mode(0o644);
        builder.append_data(&mut header, "PaxHeader", std::io::repeat(b'a').take(64 << 20)).expect("append pax");
        builder.into_inner().and_then(|gz| gz.finish()).expect("finish archive");
    }
    let e = load_err(&archive, &work.path().join("pax"), &BundleLimits { max_bytes: 1 << 20, max_entries: 10 });
    assert!(matches!(e, BundleError::TooLarge { what: LimitKind::Bytes, .. }), "{e:?}");
}

#[test]
fn the_messages_in_the_docs_are_exact() {
    let dir = bundle_dir();
    let d = dir.path().display().to_string();
    let spec = "[[vertex]]\nname = \"source\"\nsource = { type = \"text\", path = \"input\" }\n\n[[vertex]]\nname = \"tokenize\"\nparallelism = 2\ncommand = [\"awk\"]\n\n[[vertex]]\nname = \"count\"\nshell = \"./notexec | sort\"\n";
    let err = parse(&spec.replace("parallelism", "paralelism"), dir.path()).err().map(|e| e.to_string());
    assert_eq!(
        err.unwrap_or_default(),
        format!("unknown field `paralelism` in [[vertex]] #2 (name = \"tokenize\") of {d}/job.toml (line 7, column 1); did you mean `parallelism`?")
    );
    let err = parse(spec, dir.path()).err().map(|e| e.to_string());
    assert_eq!(
        err.unwrap_or_default(),
        format!("program `./notexec` ({d}/notexec) is not executable in [[vertex]] #3 (name = \"count\") of {d}/job.toml (line 12, column 9); run `chmod +x {d}/notexec`")
    );
}
