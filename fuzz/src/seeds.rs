//! Seeds for each target, from the real Hadoop 3.3.6 captures under
//! `shared/wire/` and from the repository's own fixtures (example bundles,
//! the docker-compose site files). Shaped as each target reads its bytes.

use std::path::{Path, PathBuf};

use hadoop::ipc::frame::{self, ResponseBody};
use prost::Message;

/// Every target, by name (the names of `fuzz_targets/*.rs`).
pub const TARGETS: &[&str] =
    &["ipc_frame", "sasl", "token_file", "site_xml", "job_toml", "control_proto", "rest_json", "aggregated_logs"];

/// Where the checkouts are: `repo` (this repository) and `wire`
/// (`shared/wire/hadoop-3.3.6`).
pub struct Sources {
    pub repo: PathBuf,
    pub wire: PathBuf,
}

impl Sources {
    /// `HADOOP_WIRE_FIXTURES` or `../shared/wire/hadoop-3.3.6` beside the repository.
    pub fn beside(repo: &Path) -> Sources {
        let wire = std::env::var_os("HADOOP_WIRE_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("../shared/wire/hadoop-3.3.6"));
        Sources { repo: repo.to_owned(), wire }
    }
}

/// The seeds of `target`; empty for an unknown target.
pub fn seeds(target: &str, src: &Sources) -> Vec<Vec<u8>> {
    let w = &src.wire;
    match target {
        "ipc_frame" => files(&[w.join("ipc"), w.join("kerberos/ipc")], ".bin"),
        "sasl" => files(&[w.join("ipc"), w.join("kerberos/ipc")], ".s2c.bin")
            .iter()
            .filter_map(|c| sasl_exchange(c))
            .collect(),
        "token_file" => files(&[w.join("tokens"), w.join("kerberos/tokens")], ".tokens"),
        "site_xml" => files(
            &[
                src.repo.join("docker-compose/hadoop/conf/client"),
                src.repo.join("docker-compose/hadoop/conf/cluster"),
                src.repo.join("docker-compose/hadoop-kerberos/conf/client"),
                src.repo.join("docker-compose/hadoop-kerberos/conf/cluster"),
            ],
            ".xml",
        ),
        "job_toml" => {
            let examples = std::fs::read_dir(src.repo.join("examples")).into_iter().flatten().flatten();
            let dirs: Vec<PathBuf> = examples.map(|e| e.path()).collect();
            files(&dirs, "job.toml")
        }
        "control_proto" => control_messages(),
        "rest_json" => {
            let mut bodies: Vec<Vec<u8>> =
                files(&[w.join("rest"), w.join("kerberos/rest")], ".response").iter().map(|r| http_body(r)).collect();
            bodies.extend(files(&[w.join("rest"), w.join("kerberos/rest")], ".json"));
            // Each body under every kind byte: which reader gets it is the first byte.
            let mut seeds: Vec<Vec<u8>> =
                bodies.iter().flat_map(|b| (0u8..12).map(move |k| [&[k][..], b].concat())).collect();
            // A Mesos event stream (kind 12), in the shapes of the v1 scheduler API documentation.
            let events = [
                r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"f-1"},"heartbeat_interval_seconds":15}}"#,
                r#"{"type":"OFFERS","offers":{"offers":[{"id":{"value":"o1"},"agent_id":{"value":"a1"},"hostname":"h","resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":4}},{"name":"mem","type":"SCALAR","scalar":{"value":4096}}]}]}}"#,
                r#"{"type":"UPDATE","update":{"status":{"task_id":{"value":"tm-1"},"state":"TASK_FAILED","agent_id":{"value":"a1"},"uuid":"AAE="}}}"#,
                r#"{"type":"HEARTBEAT"}"#,
            ];
            let stream: Vec<u8> = events
                .iter()
                .flat_map(|e| [format!("{}\n", e.len()).into_bytes(), e.as_bytes().to_vec()].concat())
                .collect();
            seeds.push([&[12u8][..], &stream].concat());
            seeds
        }
        // No capture of an aggregated log file exists: what the writer (the
        // YARN double's NodeManager) produces.
        "aggregated_logs" => {
            use hadoop::yarn::aggregated_logs::{write, ContainerLogs};
            let c = |id: &str, files: &[(&str, &[u8])]| ContainerLogs {
                container: id.into(),
                files: files.iter().map(|(n, b)| (n.to_string(), b.to_vec())).collect(),
            };
            vec![
                write("alice", &[]),
                write(
                    "alice",
                    &[c("container_1_0001_01_000001", &[("appmaster.err", b"started\n"), ("prelaunch.out", b"")])],
                ),
                write("bob", &[c("container_1_0001_01_000002", &[("taskmanager.err", &[b'x'; 300])]), c("c2", &[])]),
            ]
        }
        _ => Vec::new(),
    }
}

fn files(dirs: &[PathBuf], suffix: &str) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten().map(|e| e.path()))
        .filter(|p| p.is_file() && p.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// The server's SASL messages of a captured connection, as `sasl` reads them.
fn sasl_exchange(s2c: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = s2c;
    while let Ok(Some((body, used))) = frame::split_frame(rest, 1 << 24) {
        if let Ok(f) = frame::decode_response(body) {
            if let ResponseBody::Sasl(m) = f.body {
                let bytes = m.encode_to_vec();
                out.extend_from_slice(&u16::try_from(bytes.len()).ok()?.to_be_bytes());
                out.extend_from_slice(&bytes);
            }
        }
        rest = &rest[used..];
    }
    (!out.is_empty()).then_some(out)
}

/// The body of a raw HTTP/1.1 response, chunked or not.
fn http_body(raw: &[u8]) -> Vec<u8> {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return Vec::new() };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut rest = &raw[split + 4..];
    if !head.contains("transfer-encoding: chunked") {
        return rest.to_vec();
    }
    let mut out = Vec::new();
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..eol]).ok().and_then(|s| usize::from_str_radix(s.trim(), 16).ok());
        match size {
            Some(n) if n > 0 && rest.len() >= eol + 2 + n => {
                out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
                rest = &rest[(eol + 4 + n).min(rest.len())..];
            }
            _ => break,
        }
    }
    out
}

/// One well-formed message of each kind `control_proto` reads.
fn control_messages() -> Vec<Vec<u8>> {
    use common::rpc::pb;
    let uuid = || Some(pb::Uuid { hi: 0x0123_4567_89ab_cdef, lo: 42 });
    let profile = || Some(pb::ResourceProfile { cpu_millis: 1000, task_heap_bytes: 256 << 20, ..Default::default() });
    let tdd = pb::TaskDeploymentDescriptor {
        job_id: uuid(),
        job_master_id: uuid(),
        job_name: "wordcount".into(),
        attempt_id: uuid(),
        allocation_id: uuid(),
        vertex_name: "tokenize".into(),
        parallelism: 2,
        program: Some(pb::Program {
            kind: Some(pb::program::Kind::Command(pb::CommandProgram { argv: vec!["awk".into(), "-f".into()] })),
        }),
        bundle_dir: "/tmp/b".into(),
        job_master_address: "127.0.0.1:1".into(),
        ..Default::default()
    };
    let register = pb::RegisterTaskExecutorRequest {
        resource_id: "tm-1".into(),
        address: "127.0.0.1:2".into(),
        data_address: "127.0.0.1:3".into(),
        total_resources: profile(),
        default_slot_profile: profile(),
        num_slots: 2,
        ..Default::default()
    };
    let state = pb::TaskExecutionState { attempt_id: uuid(), state: 2, ..Default::default() };
    let report = pb::SlotReport {
        slots: vec![pb::SlotStatus {
            slot_id: Some(pb::SlotId { resource_id: "tm-1".into(), index: 0 }),
            profile: profile(),
            ..Default::default()
        }],
    };
    vec![
        [&[0u8][..], &tdd.encode_to_vec()].concat(),
        [&[1u8][..], &register.encode_to_vec()].concat(),
        [&[2u8][..], &pb::OfferSlotsRequest::default().encode_to_vec()].concat(),
        [&[3u8][..], &pb::RequestSlotRequest::default().encode_to_vec()].concat(),
        [&[4u8][..], &state.encode_to_vec()].concat(),
        [&[5u8][..], &report.encode_to_vec()].concat(),
    ]
}
