use super::*;
use proptest::prelude::*;
use std::path::PathBuf;

fn wire(rel: &str) -> PathBuf {
    crate::test_fixtures::wire(rel)
}

const FIXTURES: &[&str] =
    &["tokens/dshell-am.tokens", "tokens/rest-submitted-am.tokens", "kerberos/tokens/alice-hdfs-delegation.tokens"];

#[test]
fn every_fixture_reads_and_writes_back_byte_identical() {
    for f in FIXTURES {
        let path = wire(f);
        let original = std::fs::read(&path).unwrap();
        let creds = Credentials::read_file(&path).unwrap();
        assert_eq!(creds.to_bytes(), original, "{f}");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.tokens");
        creds.write_file(&out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), original, "{f}");
    }
}

#[test]
fn the_am_token_file_holds_the_amrm_token_for_attempt_1() {
    let creds = Credentials::read_file(&wire("tokens/dshell-am.tokens")).unwrap();
    assert_eq!(creds.tokens.len(), 1);
    let token = creds.token_of_kind("YARN_AM_RM_TOKEN").unwrap();
    assert_eq!(token.service, "");
    assert_eq!(token.password.len(), 20);
    let TokenIdentifier::AmRm(id) = token.decode_identifier() else { panic!("not decoded: {token:?}") };
    assert_eq!(id.application_id, 1);
    assert_eq!(id.attempt_id, 1);
    assert_eq!(id.attempt_id_string(), format!("appattempt_{}_0001_000001", id.cluster_timestamp));
}

#[test]
fn the_rest_submitted_file_has_the_extra_token_and_secret() {
    let creds = Credentials::read_file(&wire("tokens/rest-submitted-am.tokens")).unwrap();
    let (alias, t) = &creds.tokens[1];
    assert_eq!(alias, "test-token");
    assert_eq!((t.identifier.as_slice(), t.password.as_slice()), (&[1u8, 2, 3][..], &b"secret-password"[..]));
    assert_eq!((t.kind.as_str(), t.service.as_str()), ("TEST_TOKEN", "127.0.0.1:1"));
    assert_eq!(creds.secrets, vec![("app.secret".to_owned(), b"secret".to_vec())]);
}

#[test]
fn the_hdfs_delegation_token_identifier_decodes() {
    let creds = Credentials::read_file(&wire("kerberos/tokens/alice-hdfs-delegation.tokens")).unwrap();
    let (alias, token) = &creds.tokens[0];
    assert_eq!(alias, "127.0.0.1:9000");
    assert_eq!(token.kind, "HDFS_DELEGATION_TOKEN");
    let TokenIdentifier::Delegation(id) = token.decode_identifier() else { panic!() };
    assert_eq!((id.owner.as_str(), id.renewer.as_str(), id.real_user.as_str()), ("alice@ORACLE.TEST", "alice", ""));
    assert_eq!((id.sequence_number, id.master_key_id), (7, 10));
    // Seven days of max lifetime, as Hadoop's default says.
    assert_eq!(id.max_date_ms - id.issue_date_ms, 7 * 24 * 3600 * 1000);
    // What a NameNode writes, byte for byte (the HDFS double issues identifiers this way).
    assert_eq!(id.to_writable_bytes(), token.identifier);
}

#[test]
fn the_rest_submission_credentials_decode_and_reencode() {
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wire("rest/07-POST-apps.body.json")).unwrap()).unwrap();
    let json = &body["am-container-spec"]["credentials"];
    let creds = Credentials::from_rest_json(json).unwrap();
    let file = Credentials::read_file(&wire("tokens/rest-submitted-am.tokens")).unwrap();
    // The NodeManager's file is what the RM made of this JSON (plus the AMRMToken).
    assert_eq!(creds.tokens[0], file.tokens[1]);
    assert_eq!(creds.secrets, file.secrets);
    assert_eq!(&creds.to_rest_json(), json);
}

#[test]
fn the_rm_delegation_token_from_rest_decodes() {
    let resp: serde_json::Value =
        serde_json::from_slice(&std::fs::read(wire("kerberos/rest/rm-delegation-token.response.json")).unwrap())
            .unwrap();
    let s = resp["token"].as_str().unwrap();
    let token = Token::decode_base64(s, "test").unwrap();
    assert_eq!(token.kind, "RM_DELEGATION_TOKEN");
    assert_eq!(token.encode_url_safe(), s);
    let TokenIdentifier::Delegation(id) = token.decode_identifier() else { panic!() };
    assert_eq!(id.owner, "alice@ORACLE.TEST");
    assert_eq!(id.renewer, "alice");
    assert_eq!(id.max_date_ms, resp["max-validity"].as_i64().unwrap());
}

#[test]
fn vlongs_round_trip_at_the_edges() {
    for v in [0i64, 1, -1, 127, 128, -112, -113, 255, 256, i32::MAX as i64, i32::MIN as i64, i64::MAX, i64::MIN] {
        let mut out = Vec::new();
        write_vlong(&mut out, v);
        let mut r = Reader::new(&out);
        assert_eq!(r.vlong().unwrap(), v);
        assert_eq!(r.remaining(), 0);
    }
}

#[test]
fn corrupt_files_name_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(wire("tokens/dshell-am.tokens")).unwrap();
    bytes.truncate(30);
    let path = dir.path().join("bad.tokens");
    std::fs::write(&path, &bytes).unwrap();
    let err = Credentials::read_file(&path).unwrap_err().to_string();
    assert!(err.contains("bad.tokens") && err.contains("byte 29"), "{err}");

    std::fs::write(&path, b"NOPE\0\0\0").unwrap();
    let err = Credentials::read_file(&path).unwrap_err().to_string();
    assert!(err.contains("not a Hadoop token file"), "{err}");

    // A huge length is refused before allocating it.
    std::fs::write(&path, [b'H', b'D', b'T', b'S', 0, 1, 0, 0x8c, 0x7f, 0xff, 0xff, 0xff]).unwrap();
    let err = Credentials::read_file(&path).unwrap_err().to_string();
    assert!(err.contains("claims"), "{err}");
}

#[test]
fn protobuf_files_round_trip() {
    let mut creds = Credentials::read_file(&wire("tokens/rest-submitted-am.tokens")).unwrap();
    creds.format = TokenFileFormat::Protobuf;
    let bytes = creds.to_bytes();
    assert_eq!(&bytes[..5], b"HDTS\x01");
    assert_eq!(Credentials::from_bytes(&bytes).unwrap(), creds);
}

proptest! {
    #[test]
    fn the_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Credentials::from_bytes(&bytes);
        let mut framed = b"HDTS\0".to_vec();
        framed.extend_from_slice(&bytes);
        let _ = Credentials::from_bytes(&framed);
        let _ = Token::from_writable_bytes(&bytes);
        for kind in ["YARN_AM_RM_TOKEN", "RM_DELEGATION_TOKEN", "HDFS_DELEGATION_TOKEN"] {
            let _ = TokenIdentifier::decode(kind, &bytes);
        }
    }

    #[test]
    fn writable_credentials_round_trip(
        tokens in proptest::collection::vec(
            ("[a-z:0-9]{0,12}", proptest::collection::vec(any::<u8>(), 0..40),
             proptest::collection::vec(any::<u8>(), 0..30), "[A-Z_]{0,20}", "[0-9.:]{0,20}"), 0..4),
        secrets in proptest::collection::vec(("[a-z.]{0,12}", proptest::collection::vec(any::<u8>(), 0..300)), 0..3),
    ) {
        let creds = Credentials {
            tokens: tokens.into_iter().map(|(a, identifier, password, kind, service)|
                (a, Token { identifier, password, kind, service })).collect(),
            secrets,
            format: TokenFileFormat::Writable,
        };
        prop_assert_eq!(Credentials::from_bytes(&creds.to_bytes()).unwrap(), creds);
    }

    #[test]
    fn any_byte_flip_gives_an_error_or_a_value_never_a_panic(at in 0usize..0x4b, to in any::<u8>()) {
        let mut bytes = std::fs::read(wire("kerberos/tokens/alice-hdfs-delegation.tokens")).unwrap();
        let at = at % bytes.len();
        bytes[at] = to;
        let _ = Credentials::from_bytes(&bytes);
    }
}

/// Real-cluster report, points 10 and 11: token services follow
/// `hadoop.security.token.service.use_ip` (the captured token says
/// `127.0.0.1:9000`), and a job that names `hdfs://localhost:9000` must still
/// find that token: HDFS clients look it up by the address as written.
#[test]
fn token_services_use_the_ip_and_a_token_is_found_under_the_name_a_job_uses() {
    let captured = Credentials::read_file(&wire("kerberos/tokens/alice-hdfs-delegation.tokens")).unwrap();
    let (_, token) = &captured.tokens[0];
    assert_eq!(token.service, "127.0.0.1:9000");
    assert_eq!(token_service("localhost:9000", true), "127.0.0.1:9000");
    assert_eq!(token_service("localhost:9000", false), "localhost:9000");
    assert_eq!(token_service("no-such-host.invalid:9000", true), "no-such-host.invalid:9000");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("container_tokens");
    captured.write_file(&path).unwrap();
    let same_as = vec![token_service("localhost:9000", true)];
    assert!(Credentials::alias_hdfs_token_in_file(&path, "localhost:9000", &same_as).unwrap());
    assert!(!Credentials::alias_hdfs_token_in_file(&path, "localhost:9000", &same_as).unwrap(), "once is enough");
    let after = Credentials::read_file(&path).unwrap();
    let found = after.tokens.iter().find(|(_, t)| t.service == "localhost:9000").map(|(_, t)| t).unwrap();
    assert_eq!((&found.identifier, &found.password), (&token.identifier, &token.password));
    // A token of another NameNode is not handed out under this name.
    assert!(!Credentials::alias_hdfs_token_in_file(&path, "other:9000", &["10.9.9.9:9000".into()]).unwrap());
}

#[test]
fn fresh_hdfs_tokens_replace_the_old_ones_and_their_aliases_and_nothing_else() {
    let hdfs = |id: &[u8], service: &str| Token {
        identifier: id.to_vec(),
        password: b"p".to_vec(),
        kind: HDFS_DELEGATION_TOKEN.into(),
        service: service.into(),
    };
    let amrm = Token {
        identifier: b"a".to_vec(),
        password: b"p".to_vec(),
        kind: "YARN_AM_RM_TOKEN".into(),
        service: String::new(),
    };
    let mut creds = Credentials::default();
    creds.tokens.push((String::new(), amrm.clone()));
    creds.tokens.push(("127.0.0.1:9000".into(), hdfs(b"old", "127.0.0.1:9000")));
    creds.secrets.push(("app.secret".into(), b"s".to_vec()));
    assert!(creds.alias_hdfs_token("localhost:9000", &["127.0.0.1:9000".into()]));
    let mut fresh = Credentials::default();
    fresh.tokens.push(("127.0.0.1:9000".into(), hdfs(b"new", "127.0.0.1:9000")));
    fresh.tokens.push((String::new(), amrm.clone()));
    assert_eq!(creds.replace_hdfs_tokens(&fresh), 1);
    let ids: Vec<&[u8]> = creds.tokens.iter().map(|(_, t)| t.identifier.as_slice()).collect();
    assert_eq!(ids, [&b"a"[..], b"new"], "the AMRMToken stays once; the old token and its alias go");
    assert_eq!(creds.secrets.len(), 1);
    // The alias comes back, now of the new token.
    assert!(creds.alias_hdfs_token("localhost:9000", &["127.0.0.1:9000".into()]));
    assert_eq!(creds.tokens[2].1.identifier, b"new");
}
