//! Data-plane benchmark (a plain binary, not a timed test).
//!
//! 1. Exchange: one DataPlane sends to another over loopback TCP (handshake,
//!    credits, framing; no processes), printed in GB/s.
//! 2. Word count through two DataPlanes with real processes: built-in source
//!    -> `tokenize.awk` -> hash -> `count.py` -> built-in sink, over a
//!    generated Zipf-like corpus, printed in MB/s and records/s.
//!
//! `cargo bench -p taskmanager --bench exchange -- [--size-mb N] [--exchange-mb N]
//!  [--channels N] [--parallelism N] [--buffer-kib N] [--credits N] [--only exchange,plumbing,wordcount,corpus] [--corpus PATH]`
//! (`scripts/bench-wordcount` runs it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use common::jobspec::{BuiltinSink, BuiltinSource, Partitioning, Program};
use common::protocol::{
    InputChannelDescriptor, InputGateDescriptor, ResultPartitionDescriptor, ResultPartitionId, TaskDeploymentDescriptor,
};
use taskmanager::data_plane::{diagnostics, DataPlane, DataPlaneConfig};
use tokio_util::sync::CancellationToken;

struct Args {
    size_mb: u64,
    exchange_mb: u64,
    channels: u32,
    parallelism: u32,
    buffer_kib: usize,
    credits: u32,
    only: Option<String>,
    /// Use this corpus file (generate it there first if it does not exist).
    corpus: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut a = Args {
        size_mb: 200,
        exchange_mb: 4000,
        channels: 1,
        parallelism: 2,
        buffer_kib: 32,
        credits: 8,
        only: None,
        corpus: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        let num = || value.parse::<u64>().unwrap_or_else(|_| panic!("{} needs a number, got {value:?}", argv[i]));
        match argv[i].as_str() {
            "--size-mb" => a.size_mb = num(),
            "--exchange-mb" => a.exchange_mb = num(),
            "--channels" => a.channels = num() as u32,
            "--parallelism" => a.parallelism = num() as u32,
            "--buffer-kib" => a.buffer_kib = num() as usize,
            "--credits" => a.credits = num() as u32,
            "--only" => a.only = Some(value.clone()),
            "--corpus" => a.corpus = Some(PathBuf::from(&value)),
            // `cargo bench` adds `--bench`; anything else unknown is ignored too.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

async fn plane(config: &DataPlaneConfig) -> DataPlane {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding loopback");
    DataPlane::start(listener, Arc::from(&b"bench-secret"[..]), config.clone()).await.expect("starting a data plane")
}

/// Words of a made-up language, frequent ones short; rank r drawn with
/// probability ~ 1/r (Zipf, s = 1) by r = V^u.
fn corpus(path: &Path, bytes: u64, words_per_line: usize) -> u64 {
    const VOCABULARY: f64 = 100_000.0;
    let syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "si", "po", "de", "fu", "gra", "the", "an", "ve", "zo", "qui"];
    let word = |mut r: u64| {
        let mut w = String::new();
        loop {
            w.push_str(syllables[(r % 16) as usize]);
            r /= 16;
            if r == 0 {
                return w;
            }
        }
    };
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("creating the corpus"));
    let (mut written, mut words) = (0u64, 0u64);
    let mut line = String::new();
    while written < bytes {
        line.clear();
        for i in 0..words_per_line {
            if i > 0 {
                line.push(' ');
            }
            let rank = VOCABULARY.powf(next()) as u64;
            line.push_str(&word(rank));
            words += 1;
        }
        line.push('\n');
        out.write_all(line.as_bytes()).expect("writing the corpus");
        written += line.len() as u64;
    }
    out.flush().expect("writing the corpus");
    words
}

/// Words as the tokenizers count them, a line at a time (words never span lines).
fn count_words(path: &Path) -> u64 {
    let mut reader = std::io::BufReader::new(std::fs::File::open(path).expect("reading the corpus"));
    let (mut line, mut words) = (Vec::new(), 0u64);
    while std::io::BufRead::read_until(&mut reader, b'\n', &mut line).expect("reading the corpus") > 0 {
        words += line.split(|b| !(b.is_ascii_alphanumeric() || *b == b'\'')).filter(|w| !w.is_empty()).count() as u64;
        line.clear();
    }
    words
}

struct Stage {
    name: &'static str,
    program: Program,
    plane: DataPlane,
}

fn attempt(v: usize, s: u32) -> ExecutionAttemptId {
    ExecutionAttemptId::from_u128(((v as u128) << 32) | u128::from(s) | (1 << 100))
}

/// Descriptors of a linear job, every stage `p` wide.
fn deploy(
    job: JobId,
    stages: &[Stage],
    edges: &[Partitioning],
    p: u32,
    bundle: &Path,
) -> Vec<(DataPlane, TaskDeploymentDescriptor)> {
    let mut out = Vec::new();
    for (v, stage) in stages.iter().enumerate() {
        for s in 0..p {
            let outputs = edges
                .get(v)
                .map(|&e| ResultPartitionDescriptor {
                    partition_id: ResultPartitionId {
                        edge_index: v as u32,
                        producer_subtask: s,
                        producer_attempt: attempt(v, s),
                    },
                    partitioning: e,
                    num_subpartitions: if e == Partitioning::Forward { 1 } else { p },
                })
                .into_iter()
                .collect();
            let inputs = v
                .checked_sub(1)
                .map(|u| {
                    let e = edges[u];
                    let producers: Vec<u32> = if e == Partitioning::Forward { vec![s] } else { (0..p).collect() };
                    InputGateDescriptor {
                        edge_index: u as u32,
                        partitioning: e,
                        channels: producers
                            .into_iter()
                            .map(|ps| InputChannelDescriptor {
                                partition_id: ResultPartitionId {
                                    edge_index: u as u32,
                                    producer_subtask: ps,
                                    producer_attempt: attempt(u, ps),
                                },
                                subpartition: if e == Partitioning::Forward { 0 } else { s },
                                producer_data_address: stages[u].plane.local_address().to_string(),
                                producer_resource_id: ResourceId::new("bench"),
                            })
                            .collect(),
                    }
                })
                .into_iter()
                .collect();
            let tdd = TaskDeploymentDescriptor {
                job_id: job,
                job_master_id: JobMasterId::from_u128(1),
                job_master_address: String::new(),
                job_name: "bench-wordcount".into(),
                attempt_id: attempt(v, s),
                allocation_id: AllocationId::from_u128(1),
                vertex_name: stage.name.into(),
                vertex_index: v as u32,
                subtask_index: s,
                parallelism: p,
                attempt_number: 0,
                program: stage.program.clone(),
                bundle_dir: bundle.to_path_buf(),
                bundle_blob: None,
                inputs,
                outputs,
            };
            out.push((stage.plane.clone(), tdd));
        }
    }
    out
}

/// `plumbing`: one word per line and `cat` for both programs, so the figure
/// is the data plane's own cost per record (hash partitioning every word).
async fn wordcount(args: &Args, config: &DataPlaneConfig, plumbing: bool) {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(bundle.join("input")).expect("creating the bundle");
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/wordcount");
    for f in ["tokenize.awk", "count.py"] {
        std::fs::copy(example.join(f), bundle.join(f)).expect("copying the example");
    }
    let t = Instant::now();
    let input = bundle.join("input/corpus.txt");
    let words = match &args.corpus {
        Some(shared) if !plumbing => {
            if !shared.exists() {
                corpus(shared, args.size_mb << 20, 12);
            }
            std::os::unix::fs::symlink(shared, &input).expect("linking the corpus");
            count_words(shared)
        }
        _ => corpus(&input, args.size_mb << 20, if plumbing { 1 } else { 12 }),
    };
    let size = std::fs::metadata(&input).map(|m| m.len()).unwrap_or(0);
    println!("corpus: {:.1} MB, {words} words, ready in {:.1?}", size as f64 / 1e6, t.elapsed());

    let (a, b) = (plane(config).await, plane(config).await);
    let cmd = |argv: &[&str]| Program::Command { argv: argv.iter().map(|s| s.to_string()).collect() };
    let stages = [
        Stage {
            name: "read",
            program: Program::Source(BuiltinSource::TextFiles { path: "input".into() }),
            plane: a.clone(),
        },
        Stage {
            name: "tokenize",
            program: if plumbing { cmd(&["cat"]) } else { cmd(&["awk", "-f", "tokenize.awk"]) },
            plane: a.clone(),
        },
        Stage {
            name: "count",
            program: if plumbing { cmd(&["cat"]) } else { cmd(&["python3", "count.py"]) },
            plane: b.clone(),
        },
        Stage {
            name: "write",
            program: Program::Sink(BuiltinSink::TextFiles { path: "out".into() }),
            plane: b.clone(),
        },
    ];
    let job = JobId::random();
    let edges = [Partitioning::Forward, Partitioning::Hash, Partitioning::Forward];
    let tasks = deploy(job, &stages, &edges, args.parallelism, &bundle);
    let t = Instant::now();
    let handles: Vec<_> = tasks
        .into_iter()
        .enumerate()
        .map(|(i, (plane, tdd))| {
            let work = tmp.path().join(format!("work/{i}"));
            tokio::spawn(async move { plane.run_task(tdd, work, vec![], CancellationToken::new()).await })
        })
        .collect();
    for h in handles {
        if let Err(e) = h.await.expect("a task panicked") {
            eprintln!("word count failed: {e}");
            std::process::exit(1);
        }
    }
    let elapsed = t.elapsed();
    let out = bundle.join("out");
    let parts: Vec<(u32, u32)> = (0..args.parallelism).map(|s| (s, 0)).collect();
    common::output::commit(&out, job, &parts).expect("committing the output");
    let mut counted = 0u64;
    let mut distinct = 0u64;
    for s in 0..args.parallelism {
        let text = std::fs::read_to_string(common::output::part_file(&out, s)).expect("reading the output");
        for line in text.lines() {
            distinct += 1;
            counted +=
                if plumbing { 1 } else { line.rsplit('\t').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0) };
        }
    }
    assert_eq!(counted, words, "the word count lost or duplicated words");
    let secs = elapsed.as_secs_f64();
    let what = if plumbing {
        "plumbing: source -> cat -> hash -> cat -> sink, 1 word/line"
    } else {
        "wordcount: awk tokenizer + python3 counter"
    };
    println!(
        "{what} (parallelism {}, 2 data planes): {:.2?}, {:.1} MB/s, {:.2} M records/s, {distinct} output lines",
        args.parallelism,
        elapsed,
        size as f64 / 1e6 / secs,
        words as f64 / 1e6 / secs
    );
    println!(
        "  peak buffered bytes: producer-side plane {} KiB, consumer-side plane {} KiB",
        a.peak_buffered_bytes() / 1024,
        b.peak_buffered_bytes() / 1024
    );
}

async fn exchange(args: &Args, config: &DataPlaneConfig) {
    let (a, b) = (plane(config).await, plane(config).await);
    // Warm up (connections, allocator), then measure.
    diagnostics::exchange_benchmark(&a, &b, 64 << 20, args.channels).await.expect("warm-up exchange");
    let report = diagnostics::exchange_benchmark(&a, &b, args.exchange_mb << 20, args.channels)
        .await
        .expect("exchange benchmark");
    println!(
        "exchange over loopback ({} channel(s), {} KiB buffers, {} credits): {:.1} MB in {:.2?} = {:.2} GB/s; peak buffered: producer {} KiB, consumer {} KiB",
        args.channels,
        args.buffer_kib,
        args.credits,
        report.bytes as f64 / 1e6,
        report.elapsed,
        report.gigabytes_per_second(),
        report.producer_peak_buffered / 1024,
        report.consumer_peak_buffered / 1024,
    );
}

/// This process's peak resident set (both data planes and the runtime; the
/// subtask processes are children and not included), from `/proc`.
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn main() {
    let args = parse_args();
    let config = DataPlaneConfig {
        buffer_size: args.buffer_kib << 10,
        credits_per_channel: args.credits,
        ..DataPlaneConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    // `--only a,b`: the named parts; none = all but `corpus`.
    let wants = |part: &str| match &args.only {
        None => part != "corpus",
        Some(list) => list.split(',').any(|p| p.trim() == part),
    };
    if wants("corpus") {
        let Some(path) = &args.corpus else {
            eprintln!("--only corpus needs --corpus PATH");
            std::process::exit(2);
        };
        let t = Instant::now();
        let words = if path.exists() { count_words(path) } else { corpus(path, args.size_mb << 20, 12) };
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!("corpus: {} bytes, {words} words, at {}, ready in {:.1?}", size, path.display(), t.elapsed());
    }
    runtime.block_on(async {
        if wants("exchange") {
            exchange(&args, &config).await;
        }
        if wants("plumbing") {
            wordcount(&args, &config, true).await;
        }
        if wants("wordcount") {
            wordcount(&args, &config, false).await;
        }
    });
    if let Some(mib) = peak_rss_mib() {
        println!("peak RSS of the benchmark process (two data planes, no subtask processes): {mib} MiB");
    }
}
