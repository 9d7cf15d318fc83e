//! Every frame of every captured Hadoop 3.3.6 connection decodes and matches
//! `index.json`; malformed input gives typed errors; fuzzing never panics.

use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use crate::proto::common::rpc_sasl_proto::SaslState;

/// The captures (see `crate::test_fixtures`).
pub(crate) fn fixtures_dir() -> PathBuf {
    crate::test_fixtures::wire_dir()
}

/// Split a whole captured direction into frames (after the connection header, if any).
pub(crate) fn split_all(mut bytes: &[u8]) -> (Option<ConnectionHeader>, Vec<Vec<u8>>) {
    let header = if bytes.starts_with(&MAGIC) {
        let h = ConnectionHeader::decode(bytes).expect("connection header");
        bytes = &bytes[ConnectionHeader::LEN..];
        Some(h)
    } else {
        None
    };
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (frame, used) = split_frame(bytes, DEFAULT_MAX_FRAME_LEN).expect("frame").expect("complete frame");
        frames.push(frame.to_vec());
        bytes = &bytes[used..];
    }
    (header, frames)
}

fn check_capture_dir(dir: &str) -> usize {
    let base = fixtures_dir().join(dir);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.join("index.json")).expect("index.json")).expect("json");
    let mut checked = 0;
    let index = index.as_object().expect("object");
    for file in std::fs::read_dir(&base).expect("fixture dir") {
        let file = file.expect("dir entry").file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".c2s.bin").or_else(|| file.strip_suffix(".s2c.bin")) {
            assert!(index.contains_key(name), "{dir}/{file} is not in index.json");
        }
    }
    for (name, entries) in index {
        let entries = entries.as_array().expect("array");
        let c2s = std::fs::read(base.join(format!("{name}.c2s.bin"))).expect("c2s");
        let s2c = std::fs::read(base.join(format!("{name}.s2c.bin"))).expect("s2c");
        let (header, c2s_frames) = split_all(&c2s);
        let (no_header, s2c_frames) = split_all(&s2c);
        assert!(no_header.is_none(), "{name}: servers send no connection header");

        let mut c2s_iter = c2s_frames.iter();
        let mut s2c_iter = s2c_frames.iter();
        for entry in entries {
            let dir = entry["dir"].as_str().expect("dir");
            let kind = entry["kind"].as_str();
            if kind == Some("connection-header") {
                let h = header.expect("c2s starts with a connection header");
                assert_eq!(u64::from(h.version), entry["version"].as_u64().unwrap(), "{name}");
                assert_eq!(u64::from(h.service_class), entry["service_class"].as_u64().unwrap(), "{name}");
                assert_eq!(u64::from(h.auth.byte()), entry["auth"].as_u64().unwrap(), "{name}");
                checked += 1;
                continue;
            }
            let call_id = entry["call_id"].as_i64().expect("call_id");
            if let Some(len) = entry["len"].as_u64() {
                let frame = if dir == "c2s" { c2s_iter.clone().next() } else { s2c_iter.clone().next() };
                assert_eq!(frame.map(|f| f.len() as u64), Some(len), "{name}: frame length of call {call_id}");
            }
            if dir == "c2s" {
                let frame = decode_request(c2s_iter.next().expect("another c2s frame")).expect("request decodes");
                assert_eq!(i64::from(frame.call_id()), call_id, "{name}");
                match (kind, &frame.body) {
                    (Some("sasl"), RequestBody::Sasl(sasl)) => {
                        assert_eq!(i64::from(sasl.state), entry["sasl_state"].as_i64().unwrap(), "{name}")
                    }
                    (Some("connection-context"), RequestBody::ConnectionContext(ctx)) => {
                        assert!(ctx.protocol.is_some(), "{name}: the context names the protocol")
                    }
                    (Some("request"), RequestBody::Call { header, .. }) => {
                        assert_eq!(header.method_name, entry["method"].as_str().unwrap(), "{name}");
                        assert_eq!(header.declaring_class_protocol_name, entry["protocol"].as_str().unwrap(), "{name}");
                        assert_eq!(header.client_protocol_version, entry["protocol_version"].as_u64().unwrap());
                    }
                    other => panic!("{name}: call {call_id}: index says {kind:?}, decoded {other:?}"),
                }
            } else {
                let frame = decode_response(s2c_iter.next().expect("another s2c frame")).expect("response decodes");
                assert_eq!(i64::from(frame.call_id()), call_id, "{name}");
                assert_eq!(i64::from(frame.header.status), entry["status"].as_i64().unwrap(), "{name}");
                match &frame.body {
                    ResponseBody::Failure(remote) => {
                        assert_eq!(remote.class, entry["exception"].as_str().unwrap(), "{name}");
                        let prefix = entry["error_msg"].as_str().unwrap();
                        assert!(remote.message.starts_with(prefix), "{name}: {}", remote.message);
                    }
                    ResponseBody::Sasl(_) => assert_eq!(call_id, -33, "{name}"),
                    ResponseBody::Success(_) => assert!(call_id >= 0, "{name}"),
                }
            }
            checked += 1;
        }
        assert!(c2s_iter.next().is_none(), "{name}: c2s frames not in the index");
        assert!(s2c_iter.next().is_none(), "{name}: s2c frames not in the index");
    }
    checked
}

#[test]
fn every_captured_frame_matches_the_index() {
    assert!(check_capture_dir("ipc") > 100);
}

#[test]
fn every_captured_kerberos_frame_matches_the_index() {
    assert!(check_capture_dir("kerberos/ipc") > 50);
}

#[test]
fn the_server_negotiate_carries_the_digest_challenge() {
    let s2c = std::fs::read(fixtures_dir().join("ipc/dshell-amrm.s2c.bin")).unwrap();
    let (_, frames) = split_all(&s2c);
    let ResponseBody::Sasl(negotiate) = decode_response(&frames[0]).unwrap().body else { panic!("not SASL") };
    assert_eq!(negotiate.state, SaslState::Negotiate as i32);
    let auth = &negotiate.auths[0];
    assert_eq!((auth.method.as_str(), auth.mechanism.as_str()), ("TOKEN", "DIGEST-MD5"));
    assert_eq!((auth.protocol(), auth.server_id()), ("", "default"));
    assert!(auth.challenge().starts_with(b"realm=\"default\",nonce="));
}

#[test]
fn our_encoding_of_a_captured_request_is_byte_identical() {
    let c2s = std::fs::read(fixtures_dir().join("ipc/dshell-amrm.c2s.bin")).unwrap();
    let (_, frames) = split_all(&c2s);
    for frame in &frames {
        let decoded = decode_request(frame).unwrap();
        let mut b = FrameBuilder::new().message(&decoded.header);
        b = match &decoded.body {
            RequestBody::Sasl(m) => b.message(m),
            RequestBody::ConnectionContext(m) => b.message(m),
            RequestBody::Call { header, payload } => b.message(header).raw(payload),
        };
        assert_eq!(&b.finish()[4..], frame.as_slice());
    }
}

#[test]
fn connection_header_errors_are_typed() {
    assert_eq!(
        ConnectionHeader::decode(b"hrp"),
        Err(FrameError::Truncated { what: "connection header", needed: 7, available: 3 })
    );
    assert_eq!(ConnectionHeader::decode(b"GET / H"), Err(FrameError::BadMagic { found: *b"GET " }));
    assert_eq!(ConnectionHeader::decode(b"hrpc\x08\x00\xdf"), Err(FrameError::UnsupportedVersion { version: 8 }));
    assert_eq!(ConnectionHeader::decode(b"hrpc\x09\x00\x51"), Err(FrameError::UnknownAuthProtocol { value: 0x51 }));
    let ok = ConnectionHeader::new(AuthProtocol::Sasl);
    assert_eq!(ConnectionHeader::decode(&ok.encode()), Ok(ok));
}

#[test]
fn frame_errors_are_typed() {
    // Incomplete input asks for more rather than failing.
    assert_eq!(split_frame(&[0, 0], 100), Ok(None));
    assert_eq!(split_frame(&[0, 0, 0, 5, 1, 2], 100), Ok(None));
    // An absurd length fails before anything is allocated.
    assert_eq!(
        split_frame(&[0xff, 0xff, 0xff, 0xff], 1 << 20),
        Err(FrameError::AbsurdLength { what: "frame", length: 0xffff_ffff, max: 1 << 20 })
    );
    // A delimited part claiming more than the frame holds.
    assert!(matches!(decode_request(&[0x7f, 1, 2]), Err(FrameError::Truncated { needed: 127, available: 2, .. })));
    // Garbage protobuf (wire type 7 does not exist).
    assert!(matches!(decode_response(&[2, 0x0f, 0x0f]), Err(FrameError::Protobuf { .. })));
    // An empty frame has no header at all.
    assert!(matches!(decode_request(&[]), Err(FrameError::Protobuf { .. })));
    // Bytes after the last message.
    let mut frame = FrameBuilder::new()
        .message(&request_header(SASL_CALL_ID, &[], -1))
        .message(&RpcSaslProto { version: None, state: 1, token: None, auths: vec![] })
        .finish();
    frame.push(0);
    assert_eq!(decode_request(&frame[4..]), Err(FrameError::Trailing { what: "request frame", extra: 1 }));
}

#[tokio::test]
async fn read_frame_reports_truncation_and_absurd_lengths() {
    let mut truncated: &[u8] = &[0, 0, 0, 9, 1, 2];
    assert!(matches!(
        read_frame(&mut truncated, 100).await,
        Err(ReadError::Frame(FrameError::Truncated { what: "frame", needed: 9, available: 2 }))
    ));
    let mut absurd: &[u8] = &[0x40, 0, 0, 0];
    assert!(matches!(read_frame(&mut absurd, 100).await, Err(ReadError::Frame(FrameError::AbsurdLength { .. }))));
    let mut empty: &[u8] = &[];
    assert!(matches!(read_frame(&mut empty, 100).await, Ok(None)));
    let mut half_length: &[u8] = &[0, 0];
    assert!(matches!(read_frame(&mut half_length, 100).await, Err(ReadError::Frame(FrameError::Truncated { .. }))));
}

proptest! {
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ConnectionHeader::decode(&bytes);
        let _ = split_frame(&bytes, 1024);
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
    }

    #[test]
    fn decoders_never_panic_on_mutated_real_frames(
        which in 0usize..40,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let c2s = std::fs::read(fixtures_dir().join("ipc/flink-amrm.c2s.bin")).unwrap();
        let s2c = std::fs::read(fixtures_dir().join("ipc/flink-amrm.s2c.bin")).unwrap();
        let (_, mut frames) = split_all(&c2s);
        frames.extend(split_all(&s2c).1);
        let mut frame = frames[which % frames.len()].clone();
        for (pos, byte) in flips {
            let i = pos % frame.len();
            frame[i] ^= byte;
        }
        frame.truncate(cut % (frame.len() + 1));
        let _ = decode_request(&frame);
        let _ = decode_response(&frame);
        let mut framed = (frame.len() as u32).to_be_bytes().to_vec();
        framed.extend_from_slice(&frame);
        let _ = split_frame(&framed, DEFAULT_MAX_FRAME_LEN);
    }

    #[test]
    fn request_frames_round_trip(call_id in any::<i32>(), method in "[a-zA-Z]{1,20}", payload in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(call_id != SASL_CALL_ID && call_id != CONNECTION_CONTEXT_CALL_ID);
        let header = RequestHeaderProto { method_name: method, declaring_class_protocol_name: "p".into(), client_protocol_version: 1 };
        let frame = FrameBuilder::new().message(&request_header(call_id, &[7; 16], 0)).message(&header).raw(&payload).finish();
        let (body, used) = split_frame(&frame, 1 << 20).unwrap().unwrap();
        prop_assert_eq!(used, frame.len());
        let decoded = decode_request(body).unwrap();
        prop_assert_eq!(decoded.call_id(), call_id);
        prop_assert_eq!(decoded.body, RequestBody::Call { header, payload });
    }
}
