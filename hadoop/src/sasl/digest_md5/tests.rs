//! The two captured DIGEST-MD5 handshakes, reproduced byte for byte.

use super::*;
use crate::proto::common::{rpc_sasl_proto, RpcSaslProto};
use crate::sasl::{SaslNegotiation, SaslStep};

fn vectors() -> Vec<serde_json::Value> {
    let path = crate::ipc::frame::tests::fixtures_dir().join("digest-md5-vectors.json");
    serde_json::from_slice(&std::fs::read(path).expect("vectors")).expect("json")
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn token_of(v: &serde_json::Value) -> Token {
    Token {
        identifier: unhex(v["token_identifier_hex"].as_str().unwrap()),
        password: unhex(v["token_password_hex"].as_str().unwrap()),
        kind: "YARN_AM_RM_TOKEN".into(),
        service: String::new(),
    }
}

fn challenge_of(v: &serde_json::Value) -> String {
    let c = &v["server_challenge"];
    format!(
        "realm=\"{}\",nonce=\"{}\",qop=\"{}\",charset={},algorithm={}",
        c["realm"].as_str().unwrap(),
        c["nonce"].as_str().unwrap(),
        c["qop"].as_str().unwrap(),
        c["charset"].as_str().unwrap(),
        c["algorithm"].as_str().unwrap()
    )
}

fn expected_response(v: &serde_json::Value) -> String {
    let r = &v["client_response"];
    let s = |k: &str| r[k].as_str().unwrap().to_string();
    format!(
        "charset={},username=\"{}\",realm=\"{}\",nonce=\"{}\",nc={},cnonce=\"{}\",digest-uri=\"{}\",maxbuf={},response={},qop={}",
        s("charset"), s("username"), s("realm"), s("nonce"), s("nc"), s("cnonce"), s("digest-uri"), s("maxbuf"),
        s("response"), s("qop")
    )
}

fn offer(v: &serde_json::Value) -> SaslAuth {
    SaslAuth {
        method: "TOKEN".into(),
        mechanism: "DIGEST-MD5".into(),
        protocol: String::new(),
        server_id: "default".into(),
        challenge: Some(challenge_of(v).into_bytes()),
    }
}

#[test]
fn both_captured_handshakes_reproduce_byte_for_byte() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        let token = token_of(v);
        let cnonce = v["client_response"]["cnonce"].as_str().unwrap();
        let mut mech = DigestMd5::new(&token).with_cnonce(cnonce);
        assert_eq!(mech.username, v["sasl_username"].as_str().unwrap());
        assert_eq!(mech.password, v["sasl_password"].as_str().unwrap());
        let response = mech.initial_response(&offer(v)).unwrap();
        assert_eq!(String::from_utf8(response).unwrap(), expected_response(v));
        let rspauth = format!("rspauth={}", v["server_rspauth"].as_str().unwrap());
        mech.finish(Some(rspauth.as_bytes())).expect("rspauth verifies");
    }
}

#[test]
fn the_captured_initiate_token_is_what_we_send() {
    // The INITIATE frame of the AM -> RM capture, compared with ours.
    let dir = crate::ipc::frame::tests::fixtures_dir();
    let c2s = std::fs::read(dir.join("ipc/dshell-amrm.c2s.bin")).unwrap();
    let (_, frames) = crate::ipc::frame::tests::split_all(&c2s);
    let crate::ipc::frame::RequestBody::Sasl(captured) = crate::ipc::frame::decode_request(&frames[1]).unwrap().body
    else {
        panic!("frame 1 is SASL");
    };
    let v = &vectors()[0];
    let token = token_of(v);
    let cnonce = v["client_response"]["cnonce"].as_str().unwrap().to_string();
    let mut negotiation = SaslNegotiation::new(vec![Box::new(DigestMd5::new(&token).with_cnonce(cnonce))]);
    let _ = negotiation.start();
    let server_negotiate = RpcSaslProto {
        version: None,
        state: rpc_sasl_proto::SaslState::Negotiate as i32,
        token: None,
        auths: vec![(&offer(v)).into()],
    };
    let SaslStep::Send(initiate) = negotiation.handle(server_negotiate).unwrap() else { panic!("expected INITIATE") };
    assert_eq!(initiate, captured);
    let success = RpcSaslProto {
        version: None,
        state: rpc_sasl_proto::SaslState::Success as i32,
        token: Some(format!("rspauth={}", v["server_rspauth"].as_str().unwrap()).into_bytes()),
        auths: vec![],
    };
    assert!(matches!(negotiation.handle(success), Ok(SaslStep::Done { auth: Some(_) })));
}

#[test]
fn a_wrong_rspauth_is_refused() {
    let v = &vectors()[1];
    let mut mech = DigestMd5::new(&token_of(v));
    mech.initial_response(&offer(v)).unwrap();
    assert!(matches!(
        mech.finish(Some(b"rspauth=00000000000000000000000000000000")),
        Err(SaslError::ServerNotAuthenticated)
    ));
    let mut silent = DigestMd5::new(&token_of(v));
    silent.initial_response(&offer(v)).unwrap();
    assert!(matches!(silent.finish(None), Err(SaslError::ServerNotAuthenticated)));
}

#[test]
fn unsupported_qop_and_garbage_challenges_are_typed_errors() {
    let token = Token { identifier: vec![1], password: vec![2], kind: "K".into(), service: String::new() };
    let mut mech = DigestMd5::new(&token);
    let mut auth = SaslAuth {
        method: "TOKEN".into(),
        mechanism: "DIGEST-MD5".into(),
        protocol: String::new(),
        server_id: "default".into(),
        challenge: Some(b"realm=\"default\",nonce=\"n\",qop=\"auth-conf\",algorithm=md5-sess".to_vec()),
    };
    assert!(matches!(mech.initial_response(&auth), Err(SaslError::Unsupported { .. })));
    auth.challenge = Some(b"realm=\"unterminated".to_vec());
    assert!(matches!(mech.initial_response(&auth), Err(SaslError::Malformed { .. })));
    auth.challenge = Some(vec![0xff, 0xfe]);
    assert!(matches!(mech.initial_response(&auth), Err(SaslError::Malformed { .. })));
    auth.challenge = Some(b"realm=\"default\",qop=\"auth\",algorithm=md5-sess".to_vec());
    assert!(matches!(mech.initial_response(&auth), Err(SaslError::Malformed { .. })));
}

#[test]
fn negotiation_without_a_usable_mechanism_names_the_offers() {
    let token = Token { identifier: vec![1], password: vec![2], kind: "K".into(), service: String::new() };
    let mut n = SaslNegotiation::new(vec![Box::new(DigestMd5::new(&token))]);
    let _ = n.start();
    let offer = RpcSaslProto {
        version: None,
        state: rpc_sasl_proto::SaslState::Negotiate as i32,
        token: None,
        auths: vec![rpc_sasl_proto::SaslAuth {
            method: "KERBEROS".into(),
            mechanism: "GSSAPI".into(),
            protocol: Some("nn".into()),
            server_id: Some("localhost".into()),
            challenge: None,
        }],
    };
    let err = n.handle(offer).unwrap_err();
    assert!(err.to_string().contains("KERBEROS/GSSAPI"), "{err}");
}

#[test]
fn simple_success_to_negotiate_ends_without_a_mechanism() {
    let mut n = SaslNegotiation::new(vec![]);
    let _ = n.start();
    let success =
        RpcSaslProto { version: None, state: rpc_sasl_proto::SaslState::Success as i32, token: None, auths: vec![] };
    assert!(matches!(n.handle(success), Ok(SaslStep::Done { auth: None })));
}

proptest::proptest! {
    #[test]
    fn directive_parser_never_panics(s in ".{0,200}") {
        let _ = parse_directives(&s);
    }
}
