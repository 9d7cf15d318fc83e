//! Every capture in `shared/wire/hadoop-3.3.6/rest/` replayed byte for byte by
//! a one-shot server, through the real client; and the request bodies we
//! produce checked against the captured ones (same keys).

use std::collections::BTreeSet;

use tokio::net::TcpListener;

use super::*;
use crate::yarn::test_fixtures::{replay, rest};

fn client(base: &str) -> RmRestClient {
    RmRestClient::new(vec![base.to_owned()], RestAuth::Simple { user: "root".into() }).unwrap()
}

fn keys(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}/{k}");
                out.insert(p.clone());
                keys(v, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for v in a {
                keys(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn key_set(v: &serde_json::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    keys(v, "", &mut out);
    out
}

#[tokio::test]
async fn new_application_parses_the_capture_and_sends_user_name() {
    for name in ["06-POST-apps_new-application", "13-POST-apps_new-application"] {
        let (base, req) = replay(rest(&format!("{name}.response"))).await;
        let app = client(&base).new_application().await.unwrap();
        assert!(app.application_id.starts_with("application_1795750141222_000"), "{app:?}");
        assert_eq!(app.maximum_resource_capability, RestResource { memory: 8192, vcores: 8 });
        let head = req.await.unwrap();
        let captured = String::from_utf8(rest(&format!("{name}.request"))).unwrap();
        let line = |s: &str| s.lines().next().unwrap().split(' ').take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(line(&head), line(&captured));
    }
}

#[tokio::test]
async fn missing_user_name_is_a_typed_401() {
    let (base, _req) = replay(rest("05-POST-apps_new-application.response")).await;
    match client(&base).new_application().await {
        Err(e @ RmError::Unauthorized { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("Unable to obtain user name") && msg.contains("HADOOP_USER_NAME"), "{msg}");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_app_is_not_found() {
    let (base, _req) = replay(rest("04-GET-apps_application_1_0001.response")).await;
    match client(&base).app("application_1_0001").await {
        Err(RmError::NotFound(id)) => assert_eq!(id, "application_1_0001"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn submission_body_has_the_captured_shape_and_202_is_success() {
    let captured: serde_json::Value = serde_json::from_slice(&rest("07-POST-apps.body.json")).unwrap();
    // The capture parses as our type, and what we write back has the same keys.
    let ctx: SubmissionContext = serde_json::from_value(captured.clone()).unwrap();
    let ours = serde_json::to_value(&ctx).unwrap();
    assert_eq!(key_set(&ours), key_set(&captured));
    assert_eq!(ctx.am_container_spec.local_resources.entry[0].value.size, 35);
    let creds = hadoop::credentials::Credentials::from_rest_json(&ctx.am_container_spec.credentials).unwrap();
    assert_eq!(key_set(&creds.to_rest_json()), key_set(&ctx.am_container_spec.credentials));

    let (base, req) = replay(rest("07-POST-apps.response")).await;
    client(&base).submit(&ctx, None).await.unwrap();
    let sent = req.await.unwrap();
    assert!(sent.starts_with("POST /ws/v1/cluster/apps?user.name=root HTTP/1.1"), "{sent}");
    let body = &sent[sent.find("\r\n\r\n").unwrap() + 4..];
    let sent_json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(key_set(&sent_json), key_set(&captured));
}

#[tokio::test]
async fn over_maximum_names_the_ask_and_the_limit() {
    let captured: serde_json::Value = serde_json::from_str(
        String::from_utf8(rest("14-POST-apps.request")).unwrap().split("\r\n\r\n").nth(1).unwrap(),
    )
    .unwrap();
    assert_eq!(captured["resource"]["memory"], 99999);
    let mut ctx: SubmissionContext = serde_json::from_slice(&rest("07-POST-apps.body.json")).unwrap();
    ctx.resource = RestResource { memory: 99999, vcores: 1 };
    let (base, _req) = replay(rest("14-POST-apps.response")).await;
    let max = RestResource { memory: 8192, vcores: 8 };
    let err = client(&base).submit(&ctx, Some(max)).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, RmError::OverMaximum { .. }), "{err:?}");
    assert!(msg.contains("99999 MB") && msg.contains("8192 MB") && msg.contains("maximum-allocation-mb"), "{msg}");
    // Without the maximum the RM's own words still name the cause.
    let (base, _req) = replay(rest("14-POST-apps.response")).await;
    let msg = client(&base).submit(&ctx, None).await.unwrap_err().to_string();
    assert!(msg.contains("Requested more memory than configured max"), "{msg}");
}

#[tokio::test]
async fn state_app_and_kill_parse() {
    let (base, _r) = replay(rest("08-GET-apps_application_1795750141222_0003_state.response")).await;
    assert_eq!(client(&base).app_state("application_1795750141222_0003").await.unwrap(), "ACCEPTED");

    let (base, _r) = replay(rest("09-GET-apps_application_1795750141222_0003.response")).await;
    let app = client(&base).app("application_1795750141222_0003").await.unwrap();
    assert_eq!((app.state.as_str(), app.final_status.as_str()), ("ACCEPTED", "UNDEFINED"));
    assert!(app.am_container_logs.as_deref().unwrap().contains("container_1795750141222_0003_01_000001"));
    assert!(!app.is_terminal());

    let (base, req) = replay(rest("11-PUT-apps_application_1795750141222_0003_state.response")).await;
    assert_eq!(client(&base).kill("application_1795750141222_0003").await.unwrap(), "KILLING");
    let sent = req.await.unwrap();
    let captured = String::from_utf8(rest("11-PUT-apps_application_1795750141222_0003_state.request")).unwrap();
    let body = |s: &str| s.split("\r\n\r\n").nth(1).unwrap().to_owned();
    let a: serde_json::Value = serde_json::from_str(&body(&sent)).unwrap();
    let b: serde_json::Value = serde_json::from_str(&body(&captured)).unwrap();
    assert_eq!(a, b);

    let (base, _r) = replay(rest("12-GET-apps_application_1795750141222_0003.response")).await;
    let app = client(&base).app("application_1795750141222_0003").await.unwrap();
    assert!(app.is_terminal() && !app.succeeded());
    assert_eq!(app.final_status, "KILLED");
    assert!(app.diagnostics.contains("was killed by user root"));
}

#[test]
fn informational_captures_are_json() {
    for name in
        ["01-GET-info", "02-GET-metrics", "03-GET-scheduler", "10-GET-apps_application_1795750141222_0003_appattempts"]
    {
        let body = crate::yarn::test_fixtures::http_body(&rest(&format!("{name}.response")));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(v.is_object(), "{name}");
    }
}

#[tokio::test]
async fn list_parses_empty_and_full() {
    // No capture of /apps: Hadoop writes `{"apps":null}` when empty and
    // `{"apps":{"app":[<the app object of GET /apps/{id}>]}}` otherwise.
    let app = crate::yarn::test_fixtures::http_body(&rest("12-GET-apps_application_1795750141222_0003.response"));
    let app: serde_json::Value = serde_json::from_slice(&app).unwrap();
    let full = serde_json::json!({"apps": {"app": [app["app"]]}}).to_string();
    for (body, n) in [(r#"{"apps":null}"#.to_owned(), 0), (full, 1)] {
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (base, req) = replay(resp.into_bytes()).await;
        assert_eq!(client(&base).list().await.unwrap().len(), n);
        assert!(req.await.unwrap().starts_with("GET /ws/v1/cluster/apps?applicationTypes=yarn-flink&user.name=root"));
    }
}

#[tokio::test]
async fn unreachable_and_standby_rms_are_named() {
    // A port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let c = RmRestClient::new(vec![dead.clone()], RestAuth::Simple { user: "u".into() }).unwrap();
    let msg = c.new_application().await.unwrap_err().to_string();
    assert!(msg.contains(&dead) && msg.contains("yarn.resourcemanager.webapp.address"), "{msg}");

    // rm1 is a standby (307), rm2 answers.
    let standby = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n";
    let (rm1, _r1) = replay(standby.as_bytes().to_vec()).await;
    let (rm2, _r2) = replay(rest("06-POST-apps_new-application.response")).await;
    let c = RmRestClient::new(vec![rm1, rm2], RestAuth::Simple { user: "root".into() }).unwrap();
    assert_eq!(c.new_application().await.unwrap().application_id, "application_1795750141222_0003");
}

/// SPNEGO against a real MIT KDC: the client's `Authorization: Negotiate`
/// header carries an AP-REQ that the `HTTP/localhost` service accepts as alice.
#[tokio::test]
async fn spnego_header_is_accepted_by_the_http_service() {
    use base64::Engine as _;
    use integration_tests::gssapi_acceptor::GssapiAcceptor;
    use integration_tests::kdc::TestKdc;
    let kdc = TestKdc::start().unwrap();
    let alice = TestKdc::principal("alice");
    let cache = kdc.kinit(&alice, &kdc.keytab("alice"), None).unwrap();
    let login = hadoop::kerberos::KerberosLogin::from_ticket_cache(Some(&cache)).unwrap();

    let (base, req) = replay(rest("06-POST-apps_new-application.response")).await;
    let base = base.replace("127.0.0.1", "localhost");
    let c = RmRestClient::new(vec![base], RestAuth::Kerberos { login }).unwrap();
    assert_eq!(c.new_application().await.unwrap().application_id, "application_1795750141222_0003");
    let head = req.await.unwrap();
    assert!(!head.contains("user.name="), "{head}");
    let header = head
        .lines()
        .find_map(|l| l.strip_prefix("authorization: ").or_else(|| l.strip_prefix("Authorization: ")))
        .unwrap_or_else(|| panic!("no Authorization header in {head}"));
    let token = base64::engine::general_purpose::STANDARD.decode(header.strip_prefix("Negotiate ").unwrap()).unwrap();
    let mut acceptor = GssapiAcceptor::new(&kdc.keytab("HTTP")).unwrap();
    acceptor.respond(&token).unwrap();
    assert_eq!(acceptor.client_principal(), Some(alice.as_str()));

    // A principal the KDC does not know is an error naming the service and the fix.
    let err = spnego_header(
        &hadoop::kerberos::KerberosLogin::from_ticket_cache(Some(&cache)).unwrap(),
        "http://nohost.invalid:8088",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("HTTP/nohost.invalid") && err.contains("kinit"), "{err}");
}

#[tokio::test]
async fn rm_delegation_token_parses_the_kerberos_capture() {
    let body = String::from_utf8(
        std::fs::read(crate::yarn::test_fixtures::wire_dir().join("kerberos/rest/rm-delegation-token.response.json"))
            .unwrap(),
    )
    .unwrap();
    let resp =
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (base, req) = replay(resp.into_bytes()).await;
    let token = client(&base).delegation_token("rm").await.unwrap();
    assert_eq!(token.kind, "RM_DELEGATION_TOKEN");
    let sent = req.await.unwrap();
    assert!(sent.starts_with("POST /ws/v1/cluster/delegation-token?"), "{sent}");
    assert!(sent.ends_with(r#"{"renewer":"rm"}"#), "{sent}");
}

/// Real-cluster report, point 7: remote exceptions came with dozens of `at ...` lines.
#[test]
fn a_remote_exception_shows_its_class_and_message_not_its_stack_trace() {
    let body = br#"{"RemoteException":{"exception":"BadRequestException","message":"java.lang.Exception: Invalid resource request, requested memory < 0\n\tat org.apache.hadoop.yarn.server.resourcemanager.webapp.RMWebServices.createAppSubmissionContext(RMWebServices.java:2181)\n\tat sun.reflect.NativeMethodAccessorImpl.invoke0(Native Method)\n\t... 48 more","javaClassName":"org.apache.hadoop.yarn.webapp.BadRequestException"}}"#;
    let r = RestRemoteException::parse(body).unwrap();
    assert_eq!(r.short_message(), "Invalid resource request, requested memory < 0");
}

/// `kerberos/rest/info-without-ticket.response.http`: a Kerberized RM asked
/// without SPNEGO. A client configured for simple auth says what to fix.
#[tokio::test]
async fn a_kerberized_rm_asked_with_simple_auth_names_the_configuration_fix() {
    let raw =
        std::fs::read(crate::yarn::test_fixtures::wire_dir().join("kerberos/rest/info-without-ticket.response.http"))
            .unwrap();
    let (base, _req) = replay(raw).await;
    let err = client(&base).app("application_1_0001").await.unwrap_err();
    assert!(matches!(err, RmError::NeedsKerberos { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("hadoop.security.authentication") && msg.contains("kinit"), "{msg}");
}
