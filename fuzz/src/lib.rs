//! One function per decoder of bytes from outside: what each fuzz target
//! (`fuzz_targets/`, run by `scripts/fuzz`) feeds, and what the replay tests
//! (`tests/replay.rs`) run every seed, corpus entry and past crash through.
//! A target must never panic, hang or allocate without bound, whatever the
//! bytes; where a decoder has an encoder, what it decoded must survive a round trip.

pub mod seeds;

use std::path::Path;

use hadoop::credentials::{Credentials, Token};
use hadoop::ipc::frame;
use hadoop::proto::common::RpcSaslProto;
use hadoop::sasl::digest_md5::DigestMd5;
use hadoop::sasl::{SaslNegotiation, SaslStep};
use prost::Message;

/// The largest frame the IPC client accepts (`ipc.maximum.response.length`'s default).
const MAX_FRAME: usize = 128 << 20;

/// Hadoop IPC: the connection header, then length-prefixed frames, each
/// decoded as a request (the doubles' side) and as a response (ours).
pub fn ipc_frame(data: &[u8]) {
    // A client's stream opens with the connection header; a server's does not.
    let mut rest = match frame::ConnectionHeader::decode(data) {
        Ok(_) => &data[frame::ConnectionHeader::LEN..],
        Err(_) => data,
    };
    while let Ok(Some((body, used))) = frame::split_frame(rest, MAX_FRAME) {
        let _ = frame::decode_request(body);
        let _ = frame::decode_response(body);
        if used == 0 || used > rest.len() {
            panic!("split_frame consumed {used} of {} bytes", rest.len());
        }
        rest = &rest[used..];
    }
}

/// A SASL exchange as a server could drive it: messages with a 2-byte length
/// prefix, fed to the client's negotiation (DIGEST-MD5 with a token) in
/// order. Also the DIGEST-MD5 directive parser on the raw text.
pub fn sasl(data: &[u8]) {
    let _ = hadoop::sasl::digest_md5::parse_directives(&String::from_utf8_lossy(data));
    let token = Token {
        identifier: b"fuzz-identifier".to_vec(),
        password: b"fuzz-password".to_vec(),
        kind: "HDFS_DELEGATION_TOKEN".into(),
        service: "127.0.0.1:8020".into(),
    };
    let mechanism = DigestMd5::new(&token).with_cnonce("fuzzcnonce");
    let mut negotiation = SaslNegotiation::new(vec![Box::new(mechanism)]);
    let _ = negotiation.start();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let Ok(msg) = RpcSaslProto::decode(&rest[2..2 + len]) else { return };
        rest = &rest[2 + len..];
        match negotiation.handle(msg) {
            Ok(SaslStep::Send(_)) => {}
            Ok(SaslStep::Done { .. }) | Err(_) => return,
        }
    }
}

/// A Hadoop token file (`Credentials` in Writable or protobuf form) and a
/// lone Writable token; each token's identifier decoded by its kind.
pub fn token_file(data: &[u8]) {
    if let Ok(creds) = Credentials::from_bytes(data) {
        for (_, token) in &creds.tokens {
            let _ = token.decode_identifier();
        }
        let again = Credentials::from_bytes(&creds.to_bytes()).expect("what we wrote must read back");
        assert!(again == creds, "a token file changed in a round trip");
    }
    if let Ok(token) = Token::from_writable_bytes(data) {
        let again = Token::from_writable_bytes(&token.to_writable_bytes()).expect("a token must read back");
        assert!(again == token, "a token changed in a round trip");
    }
    // A Kerberos ticket cache is the other credentials file `yarn-flink credentials` reads.
    let _ = hadoop::ccache::parse(data);
}

/// A `*-site.xml`, then every key read back (with `${var}` expansion).
pub fn site_xml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut conf = hadoop::conf::HadoopConf::new();
    if conf.add_xml_str(text, "fuzz-site.xml").is_err() {
        return;
    }
    // Every key the file names (a rough scan is enough: unknown keys read as unset).
    for piece in text.split("<name>").skip(1) {
        if let Some((key, _)) = piece.split_once("</name>") {
            let _ = conf.get(key.trim());
        }
    }
    let _ = conf.security();
    let _ = conf.rpc_protection();
    let _ = conf.default_fs();
    let _ = conf.auth_to_local();
}

/// `job.toml`, parsed and validated against a bundle dir that does not exist.
pub fn job_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = Path::new("/nonexistent-fuzz-bundle");
    if let Ok(spec) = common::jobspec::parse_job_spec(text, &dir.join("job.toml"), dir) {
        let _ = spec.relative_sinks();
    }
}

/// A control-plane message: the first byte picks which, the rest is its
/// protobuf; decoded, then converted to the domain type as the services do.
pub fn control_proto(data: &[u8]) {
    use common::rpc::{convert, pb};
    let Some((&kind, bytes)) = data.split_first() else { return };
    match kind % 6 {
        0 => {
            if let Ok(m) = pb::TaskDeploymentDescriptor::decode(bytes) {
                if let Ok(tdd) = convert::to_tdd(m) {
                    // The domain type round-trips through its wire form.
                    let again = convert::to_tdd(convert::tdd(&tdd)).expect("a converted TDD converts back");
                    assert_eq!(again, tdd);
                }
            }
        }
        1 => {
            if let Ok(m) = pb::RegisterTaskExecutorRequest::decode(bytes) {
                let _ = convert::to_register(m);
            }
        }
        2 => {
            if let Ok(m) = pb::OfferSlotsRequest::decode(bytes) {
                let _ = convert::to_offer_slots(m);
            }
        }
        3 => {
            if let Ok(m) = pb::RequestSlotRequest::decode(bytes) {
                let _ = convert::to_request_slot(m);
            }
        }
        4 => {
            if let Ok(m) = pb::TaskExecutionState::decode(bytes) {
                let _ = convert::to_task_state(m);
            }
        }
        _ => {
            if let Ok(m) = pb::SlotReport::decode(bytes) {
                let _ = convert::to_slot_report(Some(m));
            }
        }
    }
}

/// A JSON body: the ResourceManager's answers as the client reads them, the
/// credentials of an AM container spec, the AM contract, and a Mesos master's
/// event stream (RecordIO of JSON events, fed to the offer book).
pub fn rest_json(data: &[u8]) {
    use client::yarn::rest::answers;
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 13 {
        0 => {
            let _ = answers::error(400 + u16::from(kind % 4), body, "fuzz").to_string();
        }
        1 => {
            let _ = answers::new_application(body);
        }
        2 => {
            let _ = answers::app(body, "application_1_0001");
        }
        3 => {
            let _ = answers::apps(body);
        }
        4 => {
            let _ = answers::state(body, "fuzz");
        }
        5 => {
            let _ = answers::delegation_token(body);
        }
        6 => {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
                let _ = Credentials::from_rest_json(&v);
            }
        }
        8 => {
            let _ = answers::app_attempts(body);
        }
        9 => {
            let _ = answers::containers(body);
        }
        10 => {
            let _ = client::yarn::logs::answers::node_app(body);
        }
        11 => {
            let _ = client::yarn::logs::answers::log_files(body);
        }
        12 => mesos_events(body),
        _ => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = am::drivers::yarn::contract::AmContract::from_json("fuzz.json", text);
            }
        }
    }
}

fn mesos_events(body: &[u8]) {
    use am::drivers::mesos::{api::Event, book::OfferBook, recordio::Decoder};
    let mut decoder = Decoder::new(1 << 20);
    let mut book = OfferBook::new("*", "tm-");
    let spec =
        am::resource_manager::worker::WorkerSpec::uniform(common::resources::ResourceProfile::new(1000, 512 << 20), 1);
    let _ = book.request(&spec);
    // Fed in two pieces, as a stream arrives.
    let (a, b) = body.split_at(body.len() / 2);
    for piece in [a, b] {
        decoder.feed(piece);
        while let Ok(Some(record)) = decoder.next_record() {
            let Ok(event) = serde_json::from_slice::<Event>(&record) else { continue };
            if let Some(o) = &event.offers {
                let _ = book.offers(&o.offers);
            }
            if let Some(u) = &event.update {
                let _ = book.update(&u.status);
            }
        }
    }
}

/// An aggregated YARN log file (TFile of `AggregatedLogFormat`): decoded, and
/// what decodes is written again and must read back the same.
pub fn aggregated_logs(data: &[u8]) {
    use hadoop::yarn::aggregated_logs::{parse, write};
    let _ = hadoop::yarn::aggregated_logs::tfile_records(data);
    if let Ok(logs) = parse(data) {
        let again =
            parse(&write(logs.owner.as_deref().unwrap_or(""), &logs.containers)).expect("what we wrote must read back");
        assert!(again.containers == logs.containers, "aggregated logs changed in a round trip");
    }
}
