//! Kerberos end to end against a real MIT KDC (`scripts/test-kdc`): logins
//! from a ticket cache and from a keytab, the SASL GSSAPI exchange through
//! our `SaslMechanism` against a real GSSAPI acceptor, and the typed errors
//! for the ways it goes wrong.

use hadoop::kerberos::{KerberosError, KerberosLogin};
use hadoop::proto::common::{rpc_sasl_proto, RpcSaslProto};
use hadoop::sasl::gssapi::Gssapi;
use hadoop::sasl::{SaslAuth, SaslError, SaslMechanism, SaslNegotiation, SaslStep};
use integration_tests::gssapi_acceptor::{AcceptorReply, GssapiAcceptor, LAYER_NONE, LAYER_PRIVACY};
use integration_tests::kdc::TestKdc;

fn kerberos_offer(protocol: &str) -> SaslAuth {
    SaslAuth {
        method: "KERBEROS".into(),
        mechanism: "GSSAPI".into(),
        protocol: protocol.into(),
        server_id: "localhost".into(),
        challenge: None,
    }
}

/// Runs the mechanism against the acceptor; returns the client's messages.
fn handshake(
    client: &mut dyn SaslMechanism,
    server: &mut GssapiAcceptor,
    offer: &SaslAuth,
) -> Result<Vec<Vec<u8>>, String> {
    let mut sent = vec![client.initial_response(offer).map_err(|e| e.to_string())?];
    loop {
        let last = sent.last().cloned().unwrap_or_default();
        match server.respond(&last)? {
            AcceptorReply::Challenge(c) => sent.push(client.step(&c).map_err(|e| e.to_string())?),
            AcceptorReply::Success => {
                client.finish(None).map_err(|e| e.to_string())?;
                return Ok(sent);
            }
        }
        if sent.len() > 10 {
            return Err("the exchange does not end".into());
        }
    }
}

#[test]
fn ticket_cache_login_runs_the_four_message_gssapi_exchange() {
    let kdc = TestKdc::start().unwrap();
    let cache = kdc.kinit("alice", &kdc.keytab("alice"), None).unwrap();
    let login = KerberosLogin::from_ticket_cache(Some(&cache)).unwrap();
    assert_eq!(login.principal(), "alice@YARNFLINK.TEST");
    assert!(login.expires_at() > std::time::SystemTime::now() + std::time::Duration::from_secs(3600));

    let mut server = GssapiAcceptor::new(&kdc.keytab("services")).unwrap();
    let mut client = Gssapi::new(login);
    let sent = handshake(&mut client, &mut server, &kerberos_offer("nn")).unwrap();
    // AP-REQ, empty, then the wrapped choice: 32 bytes with AES, as captured from Hadoop.
    assert_eq!(sent.len(), 3, "INITIATE + 2 RESPONSEs after NEGOTIATE");
    assert!(sent[1].is_empty());
    assert_eq!(sent[2].len(), 32);
    assert_eq!(server.chosen_layer, Some(LAYER_NONE));
    assert_eq!(server.client_principal(), Some("alice@YARNFLINK.TEST"));

    // The default cache is KRB5CCNAME's (the fixture holds the environment lock).
    std::env::set_var("KRB5CCNAME", &cache);
    let login = KerberosLogin::from_ticket_cache(None);
    std::env::remove_var("KRB5CCNAME");
    assert_eq!(login.unwrap().principal(), "alice@YARNFLINK.TEST");
}

#[test]
fn keytab_login_authenticates_to_a_configured_principal_with_host() {
    let kdc = TestKdc::start().unwrap();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), &TestKdc::principal("alice")).unwrap();
    assert_eq!(login.principal(), "alice@YARNFLINK.TEST");
    let mut server = GssapiAcceptor::new(&kdc.keytab("rm")).unwrap();
    let mut client = Gssapi::new(login).with_server_principal("rm/_HOST@YARNFLINK.TEST");
    handshake(&mut client, &mut server, &kerberos_offer("rm")).unwrap();
    assert_eq!(server.client_principal(), Some("alice@YARNFLINK.TEST"));
}

#[test]
fn the_ipc_sasl_negotiation_picks_kerberos_and_completes() {
    use rpc_sasl_proto::SaslState as S;
    let kdc = TestKdc::start().unwrap();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let mut server = GssapiAcceptor::new(&kdc.keytab("services")).unwrap();
    let mut negotiation = SaslNegotiation::new(vec![Box::new(Gssapi::new(login))]);
    let first = negotiation.start();
    assert_eq!(first.state, S::Negotiate as i32);
    // What a secure NameNode offers (see kerberos/ipc in the wire captures).
    let auth = |method: &str, mech: &str, protocol: &str, server_id: &str| rpc_sasl_proto::SaslAuth {
        method: method.into(),
        mechanism: mech.into(),
        protocol: Some(protocol.into()),
        server_id: Some(server_id.into()),
        challenge: None,
    };
    let mut from_server = RpcSaslProto {
        version: None,
        state: S::Negotiate as i32,
        token: None,
        auths: vec![auth("TOKEN", "DIGEST-MD5", "", "default"), auth("KERBEROS", "GSSAPI", "nn", "localhost")],
    };
    let mut client_messages = 1;
    loop {
        match negotiation.handle(from_server).unwrap() {
            SaslStep::Done { auth } => {
                assert_eq!(auth.unwrap().method, "KERBEROS");
                break;
            }
            SaslStep::Send(msg) => {
                client_messages += 1;
                if client_messages == 2 {
                    assert_eq!(msg.state, S::Initiate as i32);
                    assert_eq!(msg.auths[0].mechanism, "GSSAPI");
                } else {
                    assert_eq!(msg.state, S::Response as i32);
                }
                from_server = match server.respond(msg.token.as_deref().unwrap_or_default()).unwrap() {
                    AcceptorReply::Challenge(t) => {
                        RpcSaslProto { version: None, state: S::Challenge as i32, token: Some(t), auths: vec![] }
                    }
                    AcceptorReply::Success => {
                        RpcSaslProto { version: None, state: S::Success as i32, token: None, auths: vec![] }
                    }
                };
            }
        }
    }
    assert_eq!(client_messages, 4, "NEGOTIATE, INITIATE, empty RESPONSE, security-layer RESPONSE");
}

#[test]
fn an_empty_cache_says_to_kinit() {
    let kdc = TestKdc::start().unwrap();
    let cache = format!("FILE:{}", kdc.dir.path().join("empty-cache").display());
    let err = KerberosLogin::from_ticket_cache(Some(&cache)).unwrap_err();
    assert!(matches!(err, KerberosError::NoTicket { .. }), "{err:?}");
    assert!(err.to_string().contains("kinit"), "{err}");
}

#[test]
fn an_expired_ticket_is_reported_as_expired() {
    let kdc = TestKdc::start().unwrap();
    let cache = kdc.kinit("shortlived", &kdc.keytab("shortlived"), Some("1s")).unwrap();
    // Wait for the ticket to expire (the thing under test), polling klist.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while kdc.cache_valid(&cache) {
        assert!(std::time::Instant::now() < deadline, "a 1s ticket is still valid after 10s");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let err = KerberosLogin::from_ticket_cache(Some(&cache)).unwrap_err();
    assert!(matches!(err, KerberosError::TicketExpired { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&cache) && text.contains("kinit"), "{text}");
}

#[test]
fn a_stale_keytab_is_a_keytab_error_naming_the_file() {
    let kdc = TestKdc::start().unwrap();
    let keytab = kdc.keytab("alice-stale");
    let err = KerberosLogin::from_keytab(&keytab, "alice").unwrap_err();
    assert!(matches!(err, KerberosError::Keytab { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&keytab.display().to_string()) && text.contains("klist -kte"), "{text}");
}

#[test]
fn a_keytab_without_the_principal_is_a_keytab_error() {
    let kdc = TestKdc::start().unwrap();
    let err = KerberosLogin::from_keytab(&kdc.keytab("alice"), "bob").unwrap_err();
    assert!(matches!(err, KerberosError::Keytab { .. }), "{err:?}");
}

#[test]
fn an_unknown_service_principal_says_to_check_the_principal() {
    let kdc = TestKdc::start().unwrap();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let mut client = Gssapi::new(login);
    let err = client.initial_response(&kerberos_offer("nosuch")).unwrap_err();
    let SaslError::Kerberos(KerberosError::UnknownServer { service, .. }) = &err else { panic!("{err:?}") };
    assert_eq!(service, "nosuch/localhost");
    assert!(err.to_string().contains("principal"), "{err}");
}

#[test]
fn a_configured_principal_that_differs_from_the_offer_is_refused() {
    let kdc = TestKdc::start().unwrap();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let mut client = Gssapi::new(login).with_server_principal("rm/_HOST@YARNFLINK.TEST");
    let err = client.initial_response(&kerberos_offer("nn")).unwrap_err();
    assert!(matches!(err, SaslError::Kerberos(KerberosError::ServerPrincipalMismatch { .. })), "{err:?}");
}

#[test]
fn a_privacy_only_server_is_refused_with_the_setting_to_change() {
    let kdc = TestKdc::start().unwrap();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let mut server = GssapiAcceptor::new(&kdc.keytab("services")).unwrap().with_offer(LAYER_PRIVACY);
    let mut client = Gssapi::new(login);
    let err = handshake(&mut client, &mut server, &kerberos_offer("nn")).unwrap_err();
    assert!(err.contains("hadoop.rpc.protection"), "{err}");
}

#[tokio::test]
async fn doctor_reports_the_kerberos_login_and_its_expiry() {
    use hadoop::doctor::{run, DoctorOptions, Verdict};
    let kdc = TestKdc::start().unwrap();
    let mut conf = hadoop::conf::HadoopConf::new();
    conf.set("hadoop.security.authentication", "kerberos");
    conf.set("yarn.resourcemanager.principal", "rm/_HOST@YARNFLINK.TEST");
    conf.set("yarn.resourcemanager.hostname", "RM.example");
    let opts = DoctorOptions {
        keytab: Some(kdc.keytab("alice")),
        principal: Some("alice".into()),
        offline: true,
        ..Default::default()
    };
    let report = run(&conf, &opts).await;
    let login = report.check("kerberos login").unwrap();
    assert_eq!(login.verdict, Verdict::Ok, "{report}");
    assert!(login.detail.starts_with("alice@YARNFLINK.TEST until "), "{report}");
    assert_eq!(report.check("auth").unwrap().detail, "kerberos");
    let rm_principal = report.check("yarn.resourcemanager.principal").unwrap();
    assert_eq!(rm_principal.detail, "rm/_HOST@YARNFLINK.TEST -> rm/rm.example@YARNFLINK.TEST", "{report}");

    let cache = format!("FILE:{}", kdc.dir.path().join("none").display());
    let report = run(&conf, &DoctorOptions { ccache: Some(cache), offline: true, ..Default::default() }).await;
    assert_eq!(report.check("kerberos login").unwrap().verdict, Verdict::Fail, "{report}");
}

/// The whole thing over TCP: our IPC client with GSSAPI against the test IPC
/// server offering TOKEN/DIGEST-MD5 and KERBEROS/GSSAPI, then a call that
/// sees alice as the authenticated user.
#[tokio::test]
async fn an_ipc_connection_authenticates_with_kerberos() {
    use hadoop::ipc::connection::{Auth, Connection, ConnectionConfig};
    use integration_tests::gssapi_acceptor::gssapi_server;
    use integration_tests::hadoop_ipc_server::sasl::SecretManager;
    use integration_tests::hadoop_ipc_server::{self as server, CallContext, CallHandler, HandlerFuture, ServerConfig};
    use std::sync::Arc;

    struct WhoAmI;
    impl CallHandler for WhoAmI {
        fn call(&self, ctx: CallContext, _m: String, _payload: Vec<u8>) -> HandlerFuture {
            Box::pin(async move { Ok(format!("{:?} {:?}", ctx.mechanism, ctx.user).into_bytes()) })
        }
    }
    let kdc = TestKdc::start().unwrap();
    let handle = server::start(
        ServerConfig::default()
            .with_sasl(SecretManager::random().digest_md5())
            .with_sasl(gssapi_server(&kdc.keytab("nn"), "nn", "localhost"))
            .with_handler("test.WhoAmI", Arc::new(WhoAmI)),
    )
    .await
    .unwrap();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let principal = login.principal().to_owned();
    let auth =
        Auth::sasl(move || vec![Box::new(Gssapi::new(login.clone())) as Box<dyn SaslMechanism>], Some(principal));
    let conn =
        Connection::connect(&handle.addr().to_string(), &ConnectionConfig::new("test.WhoAmI", auth)).await.unwrap();
    let answer = conn.call_raw("whoami", &[]).await.unwrap();
    assert_eq!(String::from_utf8(answer).unwrap(), "Some(\"GSSAPI\") Some(\"alice@YARNFLINK.TEST\")");
}

/// The ticket cache as MIT's own tools write and read it: `hadoop::ccache`
/// must give the principal and the times `klist` prints for the same cache,
/// for a renewable ticket and for one that is not.
#[test]
fn the_ticket_cache_reads_as_klist_shows_it() {
    let kdc = TestKdc::start().unwrap();
    let alice = TestKdc::principal("alice");
    for (renewable, cache_name) in [(true, "cc-renewable"), (false, "cc-plain")] {
        let cache = format!("FILE:{}", kdc.dir.path().join(cache_name).display());
        let mut kinit = std::process::Command::new("kinit");
        kinit.args(["-c", &cache, "-k", "-t"]).arg(kdc.keytab("alice"));
        kinit.args(["-l", "1h"]);
        if renewable {
            kinit.args(["-r", "2h"]);
        }
        let out = kinit.arg(&alice).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let c = hadoop::ccache::read(&cache).unwrap();
        assert_eq!(c.principal, alice);
        let tgt = c.tgt().expect("a TGT");
        // klist in the C locale and UTC: "MM/DD/YY HH:MM:SS  MM/DD/YY HH:MM:SS  krbtgt/..." then "renew until ...".
        let klist = std::process::Command::new("klist")
            .arg("-c")
            .arg(&cache)
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&klist.stdout).into_owned();
        let parse = |s: &str| {
            let t = jiff::civil::DateTime::strptime("%m/%d/%y %H:%M:%S", s.trim()).unwrap();
            t.to_zoned(jiff::tz::TimeZone::UTC).unwrap().timestamp().as_second()
        };
        let secs = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let line = text.lines().find(|l| l.contains("krbtgt/")).unwrap_or_else(|| panic!("{text}"));
        assert_eq!(parse(&line[19..36]), secs(tgt.end), "expiry differs from klist:\n{text}");
        let renew = text.lines().find_map(|l| l.trim().strip_prefix("renew until "));
        match (renewable, renew, tgt.renew_till) {
            (true, Some(r), Some(ours)) => assert_eq!(parse(r), secs(ours), "{text}"),
            (false, None, None) => {}
            other => panic!("renewable {renewable}: klist and ccache disagree: {other:?}\n{text}"),
        }
    }
}
