//! Every fuzz target's inputs, replayed as ordinary tests (cheaper than a
//! sanitizer build, and on stable): the seeds from the captures and fixtures,
//! every past crash in `fuzz/regressions/<target>/`, and the corpus that
//! `scripts/fuzz` grew, where this machine has it (`YF_FUZZ_CORPUS`, default
//! `~/.cache/yarn-flink/fuzz/corpus`). A regression that crashes fails here.

use std::path::{Path, PathBuf};

use yarn_flink_fuzz::seeds::{self, Sources, TARGETS};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn corpus_root() -> Option<PathBuf> {
    std::env::var_os("YF_FUZZ_CORPUS")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/yarn-flink/fuzz/corpus")))
}

fn dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_file())
        .filter_map(|e| Some((e.path().display().to_string(), std::fs::read(e.path()).ok()?)))
        .collect();
    out.sort();
    out
}

fn replay(target: &str, run: fn(&[u8])) {
    let seeds = seeds::seeds(target, &Sources::beside(&repo()));
    assert!(!seeds.is_empty(), "{target} has no seeds: are the captures beside the repository?");
    let mut inputs: Vec<(String, Vec<u8>)> =
        seeds.into_iter().enumerate().map(|(i, s)| (format!("{target} seed #{i}"), s)).collect();
    inputs.extend(dir_files(&repo().join("fuzz/regressions").join(target)));
    if let Some(root) = corpus_root() {
        inputs.extend(dir_files(&root.join(target)));
    }
    for (name, bytes) in &inputs {
        // The name is printed only when an input panics.
        let r = std::panic::catch_unwind(|| run(bytes));
        assert!(r.is_ok(), "{target}: {name} crashed the decoder");
    }
}

#[test]
fn ipc_frame() {
    replay("ipc_frame", yarn_flink_fuzz::ipc_frame);
}

#[test]
fn sasl() {
    replay("sasl", yarn_flink_fuzz::sasl);
}

#[test]
fn token_file() {
    replay("token_file", yarn_flink_fuzz::token_file);
}

#[test]
fn site_xml() {
    replay("site_xml", yarn_flink_fuzz::site_xml);
}

#[test]
fn job_toml() {
    replay("job_toml", yarn_flink_fuzz::job_toml);
}

#[test]
fn control_proto() {
    replay("control_proto", yarn_flink_fuzz::control_proto);
}

#[test]
fn rest_json() {
    replay("rest_json", yarn_flink_fuzz::rest_json);
}

#[test]
fn aggregated_logs() {
    replay("aggregated_logs", yarn_flink_fuzz::aggregated_logs);
}

#[test]
fn every_target_is_replayed() {
    let here = include_str!("replay.rs");
    for t in TARGETS {
        assert!(here.contains(&format!("replay(\"{t}\"")), "{t} is not replayed");
        assert!(repo().join(format!("fuzz/fuzz_targets/{t}.rs")).is_file(), "{t} has no fuzz target");
    }
}

/// The seeds are real messages: each decodes as its target expects.
#[test]
fn the_seeds_are_well_formed() {
    let src = Sources::beside(&repo());
    for frame_file in seeds::seeds("ipc_frame", &src) {
        let body = match hadoop::ipc::frame::ConnectionHeader::decode(&frame_file) {
            Ok(_) => &frame_file[7..],
            Err(_) => &frame_file[..],
        };
        assert!(matches!(hadoop::ipc::frame::split_frame(body, 1 << 24), Ok(Some(_))), "a capture without a frame");
    }
    assert!(seeds::seeds("sasl", &src).len() >= 4, "SASL exchanges from the captures");
    for t in seeds::seeds("token_file", &src) {
        assert!(hadoop::credentials::Credentials::from_bytes(&t).is_ok());
    }
    for s in seeds::seeds("job_toml", &src) {
        assert!(std::str::from_utf8(&s).is_ok_and(|t| t.contains("[[vertex]]")));
    }
}
