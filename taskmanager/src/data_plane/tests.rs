//! Data-plane tests on loopback, with task deployment descriptors built by
//! hand (no control plane).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ids::{AllocationId, ExecutionAttemptId, JobId, JobMasterId, ResourceId};
use common::jobspec::{BuiltinSink, BuiltinSource, Partitioning, Program};
use common::protocol::{
    InputChannelDescriptor, InputGateDescriptor, ResultPartitionDescriptor, ResultPartitionId, TaskDeploymentDescriptor,
};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::partition::{Gauge, Lookup, Registry};
use super::source::{read_split, split_range};
use super::writer::{hash_target, PartitionWriter};
use super::*;

const JOB: JobId = JobId::from_u128(42);

fn test_config() -> DataPlaneConfig {
    DataPlaneConfig {
        buffer_size: 4096,
        credits_per_channel: 4,
        partition_request_timeout: Duration::from_secs(20),
        ..DataPlaneConfig::default()
    }
}

async fn plane(secret: &[u8], config: DataPlaneConfig) -> DataPlane {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    DataPlane::start(listener, Arc::from(secret), config).await.unwrap()
}

/// One vertex of a hand-built linear job: what it runs, where, how wide.
struct Stage {
    name: &'static str,
    parallelism: u32,
    program: Program,
    plane: DataPlane,
}

fn attempt(vertex: usize, subtask: u32) -> ExecutionAttemptId {
    ExecutionAttemptId::from_u128(((vertex as u128) << 32) | u128::from(subtask) | (1 << 100))
}

/// Descriptors of a linear job `stages[0] -> stages[1] -> ...`, edge `i`
/// going from stage `i` to `i+1` with `partitioning[i]`.
fn deploy(
    stages: &[Stage],
    partitioning: &[Partitioning],
    bundle: &Path,
) -> Vec<(DataPlane, TaskDeploymentDescriptor)> {
    let mut out = Vec::new();
    for (v, stage) in stages.iter().enumerate() {
        for s in 0..stage.parallelism {
            let outputs = match partitioning.get(v) {
                Some(&p) => vec![ResultPartitionDescriptor {
                    partition_id: ResultPartitionId {
                        edge_index: v as u32,
                        producer_subtask: s,
                        producer_attempt: attempt(v, s),
                    },
                    partitioning: p,
                    num_subpartitions: if p == Partitioning::Forward { 1 } else { stages[v + 1].parallelism },
                }],
                None => vec![],
            };
            let inputs = match v.checked_sub(1) {
                Some(u) => {
                    let p = partitioning[u];
                    let producers: Vec<u32> =
                        if p == Partitioning::Forward { vec![s] } else { (0..stages[u].parallelism).collect() };
                    let channels = producers
                        .into_iter()
                        .map(|ps| InputChannelDescriptor {
                            partition_id: ResultPartitionId {
                                edge_index: u as u32,
                                producer_subtask: ps,
                                producer_attempt: attempt(u, ps),
                            },
                            subpartition: if p == Partitioning::Forward { 0 } else { s },
                            producer_data_address: stages[u].plane.local_address().to_string(),
                            producer_resource_id: ResourceId::new(format!("tm-{u}")),
                        })
                        .collect();
                    vec![InputGateDescriptor { edge_index: u as u32, partitioning: p, channels }]
                }
                None => vec![],
            };
            let tdd = TaskDeploymentDescriptor {
                job_id: JOB,
                job_master_id: JobMasterId::from_u128(1),
                job_master_address: "127.0.0.1:1".into(),
                job_name: "test".into(),
                attempt_id: attempt(v, s),
                allocation_id: AllocationId::from_u128(2),
                vertex_name: stage.name.into(),
                vertex_index: v as u32,
                subtask_index: s,
                parallelism: stage.parallelism,
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

/// Runs every task concurrently; results in deployment order.
async fn run_all(tasks: Vec<(DataPlane, TaskDeploymentDescriptor)>, work: &Path) -> Vec<Result<(), TaskError>> {
    let handles: Vec<_> = tasks
        .into_iter()
        .enumerate()
        .map(|(i, (plane, tdd))| {
            let dir = work.join(format!("t{i}"));
            tokio::spawn(async move { plane.run_task(tdd, dir, vec![], CancellationToken::new()).await })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        results.push(tokio::time::timeout(Duration::from_secs(120), h).await.expect("task hung").unwrap());
    }
    results
}

fn shell(script: &str) -> Program {
    Program::Shell { script: script.into() }
}

fn lines_of(text: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in text.lines() {
        *m.entry(l.to_string()).or_insert(0) += 1;
    }
    m
}

// ---- partitioners ----

async fn route(partitioning: Partitioning, n: u32, input: &str) -> Vec<String> {
    let registry = Registry::default();
    let gauge = Arc::new(Gauge::default());
    let id = ResultPartitionId { edge_index: 0, producer_subtask: 0, producer_attempt: attempt(0, 0) };
    let (partition, senders) = registry.register(JOB, id, n, 1024, &gauge);
    let mut w = PartitionWriter::new(partitioning, partition.clone(), senders, 8, Arc::default());
    w.write(&Bytes::from(input.to_string())).await.unwrap();
    w.flush().await.unwrap();
    partition.finish();
    drop(w);
    let mut out = Vec::new();
    for sub in 0..n {
        let Lookup::Found(mut r) = registry.take(&id, sub, &gauge) else { panic!("subpartition {sub} missing") };
        let mut text = String::new();
        while let Some(buf) = r.next().await.unwrap() {
            assert!(buf.ends_with(b"\n"), "a buffer split a record: {buf:?}");
            text.push_str(std::str::from_utf8(&buf).unwrap());
        }
        out.push(text);
    }
    assert_eq!(gauge.current(), 0);
    out
}

#[tokio::test]
async fn forward_passes_everything_to_its_one_consumer() {
    assert_eq!(route(Partitioning::Forward, 1, "a\nb\n").await, vec!["a\nb\n"]);
}

#[tokio::test]
async fn broadcast_copies_every_record_to_every_consumer() {
    assert_eq!(route(Partitioning::Broadcast, 3, "a\nb\n").await, vec!["a\nb\n"; 3]);
}

#[tokio::test]
async fn rebalance_deals_records_round_robin() {
    let out = route(Partitioning::Rebalance, 3, "r0\nr1\nr2\nr3\nr4\nr5\nr6\n").await;
    assert_eq!(out, vec!["r0\nr3\nr6\n", "r1\nr4\n", "r2\nr5\n"]);
}

#[tokio::test]
async fn hash_routes_by_the_key_before_the_first_tab() {
    let mut input = String::new();
    for i in 0..200 {
        input.push_str(&format!("key{}\t{i}\textra\n", i % 37));
        input.push_str(&format!("word{}\n", i % 23));
    }
    let out = route(Partitioning::Hash, 4, &input).await;
    let mut seen = 0;
    for (sub, text) in out.iter().enumerate() {
        for line in text.lines() {
            let key = line.split('\t').next().unwrap();
            assert_eq!(hash_target(key.as_bytes(), 4), sub, "{line:?} went to {sub}");
            seen += 1;
        }
        assert!(!text.is_empty(), "subpartition {sub} got nothing");
    }
    assert_eq!(seen, 400);
}

#[test]
fn the_one_pass_hash_target_equals_hashing_the_key() {
    for record in [&b""[..], b"a", b"\t", b"key\tvalue", b"k\tv\tw", b"no tab at all", b"\tleading", b"trailing\t"] {
        for n in [1usize, 2, 3, 8, 1000] {
            let key_hash_target = ((u128::from(key_hash(record_key(record))) * n as u128) >> 64) as usize;
            assert_eq!(hash_target(record, n), key_hash_target, "{record:?} onto {n}");
        }
    }
}

#[test]
fn the_key_hash_is_fixed_across_runs_and_builds() {
    // Changing these values changes which subtask gets which key, so output
    // files of existing jobs would change: keep them.
    assert_eq!(key_hash(b"the"), 0xcb3f_f435_b889_fb31);
    assert_eq!(key_hash(b"yarn"), 0x378b_8fdf_6b1d_c768);
    let targets: Vec<usize> = ["the", "a", "flink", "yarn", "x"].iter().map(|k| hash_target(k.as_bytes(), 8)).collect();
    assert_eq!(targets, vec![6, 4, 4, 1, 0]);
    assert_eq!(record_key(b"k\tv\tw"), b"k");
    assert_eq!(record_key(b"whole line"), b"whole line");
}

// ---- pipelines across two data planes ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_hash_cat_sink_across_two_planes_outputs_exactly_the_input() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(bundle.join("input")).unwrap();
    let mut expected = String::new();
    for f in 0..3 {
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&format!("w{}\tfile{f} line {i}\n", (i * 7 + f) % 101));
        }
        expected.push_str(&text);
        std::fs::write(bundle.join("input").join(format!("part-{f}.txt")), text).unwrap();
    }
    let (a, b) = (plane(b"s3cret", test_config()).await, plane(b"s3cret", test_config()).await);
    let stages = [
        Stage {
            name: "source",
            parallelism: 3,
            program: Program::Source(BuiltinSource::TextFiles { path: "input/*.txt".into() }),
            plane: a.clone(),
        },
        Stage { name: "cat", parallelism: 2, program: Program::Command { argv: vec!["cat".into()] }, plane: b.clone() },
        Stage { name: "awk", parallelism: 2, program: shell("awk '{ print }'"), plane: b.clone() },
        Stage {
            name: "sink",
            parallelism: 2,
            program: Program::Sink(BuiltinSink::TextFiles { path: "out".into() }),
            plane: a.clone(),
        },
    ];
    let tasks = deploy(&stages, &[Partitioning::Hash, Partitioning::Forward, Partitioning::Forward], &bundle);
    for r in run_all(tasks, &tmp.path().join("work")).await {
        r.unwrap();
    }
    let out = bundle.join("out");
    common::output::commit(&out, JOB, &[(0, 0), (1, 0)]).unwrap();
    let mut got = String::new();
    for sub in 0..2 {
        let part = std::fs::read_to_string(common::output::part_file(&out, sub)).unwrap();
        for line in part.lines() {
            assert_eq!(hash_target(record_key(line.as_bytes()), 2), sub as usize, "{line:?} in part {sub}");
        }
        got.push_str(&part);
    }
    assert_eq!(lines_of(&got), lines_of(&expected));
    assert_eq!((a.buffered_bytes(), b.buffered_bytes()), (0, 0));
    assert_eq!((a.registered_partitions(), b.registered_partitions()), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_bounds_the_producers_buffered_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config();
    let (a, b) = (plane(b"k", config.clone()).await, plane(b"k", config.clone()).await);
    const TOTAL: u64 = 200_000_000;
    let stages = [
        // 64-byte lines.
        Stage {
            name: "push",
            parallelism: 1,
            program: shell(&format!(
                "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c {TOTAL}"
            )),
            plane: a.clone(),
        },
        // Reads nothing for a while, then slowly in small pieces.
        Stage {
            name: "slow",
            parallelism: 1,
            program: shell("sleep 1; dd bs=4096 status=none | wc -c > \"$YF_WORK_DIR/count\""),
            plane: b.clone(),
        },
    ];
    let tasks = deploy(&stages, &[Partitioning::Forward], tmp.path());
    for r in run_all(tasks, &tmp.path().join("work")).await {
        r.unwrap();
    }
    let count = std::fs::read_to_string(tmp.path().join("work/t1/count")).unwrap();
    assert_eq!(count.trim().parse::<u64>().unwrap(), TOTAL);
    // One subpartition: its queue of `credits` buffers, the one waiting to
    // enter it and the one just taken out (counted until the taker uncounts
    // it); a buffer is at most one pipe read plus a partial line.
    let per_buffer = config.buffer_size + 64;
    let bound = (config.credits_per_channel as usize + 2) * per_buffer;
    assert!(a.peak_buffered_bytes() <= bound, "producer buffered {} > {bound}", a.peak_buffered_bytes());
    assert!(b.peak_buffered_bytes() <= bound, "consumer buffered {} > {bound}", b.peak_buffered_bytes());
    assert!(a.peak_buffered_bytes() > 0);
}

/// Issue 15: what each attempt moved, counted as chunks pass: records and
/// bytes out of the producer and into the consumer, and the producer's time
/// blocked on the consumer's credits (it reads nothing for a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_attempt_counts_its_records_bytes_and_back_pressure() {
    let tmp = tempfile::tempdir().unwrap();
    let config = test_config();
    let (a, b) = (plane(b"k", config.clone()).await, plane(b"k", config.clone()).await);
    const TOTAL: u64 = 16 << 20;
    let stages = [
        Stage {
            name: "push",
            parallelism: 1,
            program: shell(&format!(
                "yes 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde | head -c {TOTAL}"
            )),
            plane: a.clone(),
        },
        Stage { name: "slow", parallelism: 1, program: shell("sleep 1; cat > /dev/null"), plane: b.clone() },
    ];
    let tasks = deploy(&stages, &[Partitioning::Forward], tmp.path());
    let counters: Vec<Arc<super::metrics::TaskIoCounters>> = tasks.iter().map(|_| Arc::default()).collect();
    let handles: Vec<_> = tasks
        .into_iter()
        .zip(counters.clone())
        .enumerate()
        .map(|(i, ((plane, tdd), io))| {
            let dir = tmp.path().join(format!("w{i}"));
            tokio::spawn(async move { plane.run_task_counted(tdd, dir, vec![], CancellationToken::new(), io).await })
        })
        .collect();
    for h in handles {
        tokio::time::timeout(Duration::from_secs(60), h).await.expect("task hung").unwrap().unwrap();
    }
    let (push, slow) = (counters[0].snapshot(), counters[1].snapshot());
    assert_eq!((push.records_out, push.bytes_out), (TOTAL / 64, TOTAL), "{push:?}");
    assert_eq!((slow.records_in, slow.bytes_in), (TOTAL / 64, TOTAL), "{slow:?}");
    assert_eq!((push.records_in, slow.records_out), (0, 0), "a source reads no input; the last stage has no output");
    assert!(push.backpressured_ms >= 500, "the producer waited for credits: {push:?}");
}

#[tokio::test]
async fn a_peer_without_the_secret_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (plane(b"right", test_config()).await, plane(b"wrong", test_config()).await);
    let stages = [
        Stage { name: "hello", parallelism: 1, program: shell("echo hello"), plane: a.clone() },
        Stage { name: "cat", parallelism: 1, program: shell("cat"), plane: b.clone() },
    ];
    let results = run_all(deploy(&stages, &[Partitioning::Forward], tmp.path()), tmp.path()).await;
    assert_eq!(results[0], Ok(()));
    let Err(TaskError::Failed(msg)) = &results[1] else { panic!("consumer: {:?}", results[1]) };
    assert!(msg.contains("secret"), "{msg}");
    // Nothing was handed out: the partition is still there, unconsumed.
    assert_eq!(a.registered_partitions(), 1);
    a.release_job(JOB);
    assert_eq!(a.registered_partitions(), 0);

    // A raw peer that answers with a made-up MAC gets AUTH_FAILED and no data.
    let mut s = tokio::net::TcpStream::connect(a.local_address()).await.unwrap();
    let mut hello = [0u8; 40];
    s.read_exact(&mut hello).await.unwrap();
    assert_eq!(&hello[..8], b"YFDATA01");
    let mut msg = b"YFDATA01".to_vec();
    msg.resize(8 + 32 + 28 + 32, 7);
    s.write_all(&msg).await.unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.unwrap();
    assert_eq!(reply[0], 2, "status AUTH_FAILED");
    assert_eq!(reply.len(), 33, "no data after the refusal");
}

fn alive(pid: i32) -> bool {
    // A zombie (state Z) has exited; only its table entry is left.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cancellation_kills_the_process_group_and_fails_the_consumers() {
    let tmp = tempfile::tempdir().unwrap();
    let a = plane(b"k", test_config()).await;
    let stages = [
        Stage {
            name: "sleepy",
            parallelism: 1,
            program: shell(
                "sleep 1000 & echo $! > \"$YF_WORK_DIR/pids\"; echo $$ >> \"$YF_WORK_DIR/pids\"; echo started; wait",
            ),
            plane: a.clone(),
        },
        Stage { name: "cat", parallelism: 1, program: shell("cat"), plane: a.clone() },
    ];
    let mut tasks = deploy(&stages, &[Partitioning::Forward], tmp.path()).into_iter();
    let (p, producer) = tasks.next().unwrap();
    let (c, consumer) = tasks.next().unwrap();
    let cancel = CancellationToken::new();
    let work = tmp.path().join("w0");
    let prod = tokio::spawn({
        let cancel = cancel.clone();
        let work = work.clone();
        async move { p.run_task(producer, work, vec![], cancel).await }
    });
    let cons =
        tokio::spawn(
            async move { c.run_task(consumer, tmp.path().join("w1"), vec![], CancellationToken::new()).await },
        );
    let pids_file = work.join("pids");
    wait_for("the pids", || std::fs::read_to_string(&pids_file).is_ok_and(|s| s.lines().count() == 2)).await;
    let pids: Vec<i32> = std::fs::read_to_string(&pids_file).unwrap().lines().map(|l| l.parse().unwrap()).collect();
    assert!(pids.iter().all(|&p| alive(p)));
    cancel.cancel();
    assert_eq!(prod.await.unwrap(), Err(TaskError::Canceled));
    // The shell was reaped before run_task returned; its background child
    // was killed with the group (reaped by whoever adopted it).
    assert!(!alive(pids[1]), "the shell survived");
    wait_for("the grandchild to die", || !alive(pids[0])).await;
    let Err(TaskError::Failed(msg)) = cons.await.unwrap() else { panic!("the consumer did not fail") };
    assert!(msg.contains("canceled"), "{msg}");
}

#[tokio::test]
async fn a_failing_process_reports_its_exit_code_and_stderr_and_fails_its_consumers() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (plane(b"k", test_config()).await, plane(b"k", test_config()).await);
    let stages = [
        Stage {
            name: "bad",
            parallelism: 1,
            program: shell("echo partial; echo 'first complaint' >&2; echo 'it broke' >&2; exit 3"),
            plane: a.clone(),
        },
        // Across the network: the failure travels as an ERROR frame.
        Stage { name: "cat", parallelism: 1, program: shell("cat"), plane: b.clone() },
    ];
    let results = run_all(deploy(&stages, &[Partitioning::Forward], tmp.path()), tmp.path()).await;
    let Err(TaskError::Failed(msg)) = &results[0] else { panic!("{:?}", results[0]) };
    assert!(msg.contains("exited with code 3"), "{msg}");
    assert!(msg.contains("first complaint\nit broke"), "{msg}");
    let Err(TaskError::Failed(msg)) = &results[1] else { panic!("{:?}", results[1]) };
    assert!(msg.contains("producer bad 0/1") && msg.contains("code 3"), "{msg}");
}

#[tokio::test]
async fn the_child_sees_the_documented_environment_and_not_ours() {
    let tmp = tempfile::tempdir().unwrap();
    std::env::set_var("YF_TEST_SHOULD_NOT_LEAK", "leak");
    let a = plane(b"k", test_config()).await;
    let stages =
        [Stage { name: "env", parallelism: 1, program: shell("env | sort > \"$YF_WORK_DIR/env\""), plane: a.clone() }];
    let (p, tdd) = deploy(&stages, &[], tmp.path()).remove(0);
    let work = tmp.path().join("w");
    p.run_task(tdd, work.clone(), vec![("EXTRA".into(), "1".into())], CancellationToken::new()).await.unwrap();
    let env = std::fs::read_to_string(work.join("env")).unwrap();
    for want in [
        "YF_JOB_ID=",
        "YF_JOB_NAME=test",
        "YF_VERTEX=env",
        "YF_VERTEX_INDEX=0",
        "YF_SUBTASK_INDEX=0",
        "YF_PARALLELISM=1",
        "YF_ATTEMPT=0",
        "YF_WORK_DIR=",
        "EXTRA=1",
        "PATH=",
    ] {
        assert!(env.lines().any(|l| l.starts_with(want)), "{want} missing in\n{env}");
    }
    assert!(!env.contains("YF_TEST_SHOULD_NOT_LEAK"), "{env}");
}

#[tokio::test]
async fn a_missing_program_fails_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let a = plane(b"k", test_config()).await;
    let stages =
        [Stage { name: "ghost", parallelism: 1, program: Program::Command { argv: vec!["./nope".into()] }, plane: a }];
    let (p, tdd) = deploy(&stages, &[], tmp.path()).remove(0);
    let err = p.run_task(tdd, tmp.path().join("w"), vec![], CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("exists in the bundle"), "{err}");
}

#[tokio::test]
async fn a_bad_hdfs_input_url_is_reported_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let a = plane(b"k", test_config()).await;
    let stages = [Stage {
        name: "src",
        parallelism: 1,
        program: Program::Source(BuiltinSource::TextFiles { path: "hdfs://nn:noport/x".into() }),
        plane: a,
    }];
    let (p, tdd) = deploy(&stages, &[], tmp.path()).remove(0);
    let err = p.run_task(tdd, tmp.path().join("w"), vec![], CancellationToken::new()).await.unwrap_err();
    // Named as a bad URL, with the form to write instead (not a failed connection attempt).
    let err = err.to_string();
    assert!(
        err.contains("\"hdfs://nn:noport/x\" is not an HDFS URL") && err.contains("hdfs://<namenode:port>/<path>"),
        "{err}"
    );
}

// ---- source splits ----

fn split_lines(files: &[(std::path::PathBuf, u64)], parallelism: u32, chunk: usize) -> Vec<String> {
    let total = files.iter().map(|f| f.1).sum();
    let mut all = Vec::new();
    for i in 0..parallelism {
        let (s, e) = split_range(total, parallelism, i);
        let mut text = Vec::new();
        read_split(files, s, e, chunk, 1 << 20, &mut |c| {
            assert!(c.ends_with(b"\n"));
            text.extend_from_slice(&c);
            true
        })
        .unwrap();
        all.extend(String::from_utf8(text).unwrap().lines().map(str::to_string));
    }
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]
    #[test]
    fn splits_cover_every_line_exactly_once(
        files in proptest::collection::vec(proptest::collection::vec("[a-c]{0,12}", 0..30), 1..4),
        newline_at_end in proptest::collection::vec(any::<bool>(), 4),
        parallelism in 1u32..9,
        chunk in 1usize..40,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        let mut listed = Vec::new();
        for (i, lines) in files.iter().enumerate() {
            let mut text = lines.join("\n");
            if newline_at_end[i] && !lines.is_empty() { text.push('\n'); }
            // A file's lines as a reader sees them: a final line without
            // newline is still a line; an empty file has none.
            expected.extend(text.lines().map(str::to_string));
            let path = tmp.path().join(format!("f{i}"));
            std::fs::write(&path, &text).unwrap();
            listed.push((path, text.len() as u64));
        }
        prop_assert_eq!(split_lines(&listed, parallelism, chunk), expected);
    }
}

#[test]
fn the_source_lists_directories_and_globs_sorted_without_hidden_files() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["b.txt", "a.txt", "c.log", ".hidden", "_SUCCESS"] {
        std::fs::write(tmp.path().join(name), "x\n").unwrap();
    }
    let names = |p: &Path| -> Vec<String> {
        source::list_input_files(p)
            .unwrap()
            .iter()
            .map(|(f, _)| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(tmp.path()), ["a.txt", "b.txt", "c.log"]);
    assert_eq!(names(&tmp.path().join("*.txt")), ["a.txt", "b.txt"]);
    assert_eq!(names(&tmp.path().join("?.log")), ["c.log"]);
    assert!(source::list_input_files(&tmp.path().join("*.csv")).unwrap_err().to_string().contains("no input"));
}

// ---- the example bundles ----

fn copy_example(name: &str, to: &Path) -> std::path::PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
    let dest = to.join(name);
    let status = std::process::Command::new("cp").arg("-r").arg(&from).arg(&dest).status().unwrap();
    assert!(status.success());
    dest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wordcount_example_counts_every_word_once() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = copy_example("wordcount", tmp.path());
    let (a, b) = (plane(b"k", test_config()).await, plane(b"k", test_config()).await);
    let stages = [
        Stage {
            name: "read",
            parallelism: 2,
            program: Program::Source(BuiltinSource::TextFiles { path: "input".into() }),
            plane: a.clone(),
        },
        Stage {
            name: "tokenize",
            parallelism: 2,
            program: Program::Command { argv: vec!["awk".into(), "-f".into(), "tokenize.awk".into()] },
            plane: b.clone(),
        },
        Stage {
            name: "count",
            parallelism: 2,
            program: Program::Command { argv: vec!["python3".into(), "count.py".into()] },
            plane: a.clone(),
        },
        Stage {
            name: "write",
            parallelism: 2,
            program: Program::Sink(BuiltinSink::TextFiles { path: "out".into() }),
            plane: b.clone(),
        },
    ];
    let tasks = deploy(&stages, &[Partitioning::Forward, Partitioning::Hash, Partitioning::Forward], &bundle);
    for r in run_all(tasks, &tmp.path().join("work")).await {
        r.unwrap();
    }
    let out = bundle.join("out");
    common::output::commit(&out, JOB, &[(0, 0), (1, 0)]).unwrap();
    let mut got = BTreeMap::new();
    for sub in 0..2 {
        for line in std::fs::read_to_string(common::output::part_file(&out, sub)).unwrap().lines() {
            let (word, n) = line.split_once('\t').unwrap();
            assert!(got.insert(word.to_string(), n.parse::<usize>().unwrap()).is_none(), "{word} counted twice");
        }
    }
    let text = std::fs::read_to_string(bundle.join("input/hamlet.txt")).unwrap().to_lowercase();
    let mut want = BTreeMap::new();
    for w in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '\'')).filter(|w| !w.is_empty()) {
        *want.entry(w.to_string()).or_insert(0) += 1;
    }
    assert_eq!(got, want);
}

#[tokio::test]
async fn the_hello_example_deals_its_lines_round_robin() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = copy_example("hello", tmp.path());
    let a = plane(b"k", test_config()).await;
    let stages = [
        Stage {
            name: "greet",
            parallelism: 1,
            program: shell(
                "for who in world yarn flink; do echo \"hello $who (from $YF_VERTEX $YF_SUBTASK_INDEX)\"; done",
            ),
            plane: a.clone(),
        },
        Stage { name: "shout", parallelism: 2, program: shell("tr a-z A-Z > \"$YF_WORK_DIR/out\""), plane: a.clone() },
    ];
    let results = run_all(deploy(&stages, &[Partitioning::Rebalance], &bundle), tmp.path()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let read = |i: usize| std::fs::read_to_string(tmp.path().join(format!("t{i}/out"))).unwrap();
    assert_eq!(read(1), "HELLO WORLD (FROM GREET 0)\nHELLO FLINK (FROM GREET 0)\n");
    assert_eq!(read(2), "HELLO YARN (FROM GREET 0)\n");
}

#[test]
fn every_example_bundle_has_a_valid_job_spec() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("job.toml").is_file() {
            let spec = common::jobspec::read_job_spec(&dir.join("job.toml"), &dir);
            assert!(spec.is_ok(), "{}: {}", dir.display(), spec.unwrap_err());
            checked += 1;
        }
    }
    assert!(checked >= 3, "found only {checked} example bundles");
}

#[tokio::test]
async fn addresses_of_this_plane_are_served_in_memory() {
    let config = DataPlaneConfig { advertised_address: Some("tm-7.example:1".into()), ..test_config() };
    let a = plane(b"k", config).await;
    let port = a.local_address().port();
    let shared = &a.inner.shared;
    for local in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), "tm-7.example:1".to_string()] {
        assert!(shared.is_local(&local), "{local}");
    }
    for remote in [
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        format!("10.0.0.9:{port}"),
        format!("otherhost:{port}"),
        "garbage".into(),
    ] {
        assert!(!shared.is_local(&remote), "{remote}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_waits_for_a_producer_deployed_after_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (plane(b"k", test_config()).await, plane(b"k", test_config()).await);
    let stages = [
        Stage { name: "late", parallelism: 1, program: shell("seq 1 1000"), plane: a.clone() },
        Stage { name: "count", parallelism: 1, program: shell("wc -l > \"$YF_WORK_DIR/n\""), plane: b.clone() },
    ];
    let mut tasks = deploy(&stages, &[Partitioning::Forward], tmp.path());
    let (p, producer) = tasks.remove(0);
    let (c, consumer) = tasks.remove(0);
    let work = tmp.path().join("c");
    let cons = tokio::spawn({
        let work = work.clone();
        async move { c.run_task(consumer, work, vec![], CancellationToken::new()).await }
    });
    // The consumer asks before the partition exists (PartitionNotFound) and retries.
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.run_task(producer, tmp.path().join("p"), vec![], CancellationToken::new()).await.unwrap();
    cons.await.unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(work.join("n")).unwrap().trim(), "1000");
}

#[tokio::test]
async fn a_consumer_gives_up_on_a_producer_that_never_comes() {
    let tmp = tempfile::tempdir().unwrap();
    let config = DataPlaneConfig { partition_request_timeout: Duration::from_millis(300), ..test_config() };
    let (a, b) = (plane(b"k", config.clone()).await, plane(b"k", config).await);
    let stages = [
        Stage { name: "never", parallelism: 1, program: shell("true"), plane: a },
        Stage { name: "cat", parallelism: 1, program: shell("cat"), plane: b },
    ];
    let (c, consumer) = deploy(&stages, &[Partitioning::Forward], tmp.path()).remove(1);
    let err = c.run_task(consumer, tmp.path().join("c"), vec![], CancellationToken::new()).await.unwrap_err();
    assert!(err.to_string().contains("has not registered it"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_output_is_byte_identical_across_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(&bundle).unwrap();
    let text: String = (0..20_000).map(|i| format!("k{}\t{i}\n", i % 53)).collect();
    std::fs::write(bundle.join("input.txt"), &text).unwrap();
    let mut runs = Vec::new();
    for run in 0..2 {
        let (a, b) = (plane(b"k", test_config()).await, plane(b"k", test_config()).await);
        let out = format!("out{run}");
        let stages = [
            Stage {
                name: "read",
                parallelism: 3,
                program: Program::Source(BuiltinSource::TextFiles { path: "input.txt".into() }),
                plane: a.clone(),
            },
            Stage {
                name: "write",
                parallelism: 2,
                program: Program::Sink(BuiltinSink::TextFiles { path: out.clone() }),
                plane: b.clone(),
            },
        ];
        for r in run_all(deploy(&stages, &[Partitioning::Hash], &bundle), &tmp.path().join(format!("w{run}"))).await {
            r.unwrap();
        }
        common::output::commit(&bundle.join(&out), JOB, &[(0, 0), (1, 0)]).unwrap();
        let parts: Vec<String> = (0..2)
            .map(|s| std::fs::read_to_string(common::output::part_file(&bundle.join(&out), s)).unwrap())
            .collect();
        runs.push(parts);
    }
    assert_eq!(runs[0], runs[1]);
    // Within a part: producer 0's records, then 1's, then 2's, each in input order.
    let expected: String =
        text.lines().filter(|l| hash_target(record_key(l.as_bytes()), 2) == 0).map(|l| format!("{l}\n")).collect();
    assert_eq!(runs[0][0], expected);
}
