use super::*;
use tokio::net::TcpListener;

/// A port that nothing listens on (bound, then released).
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Serves one canned HTTP response to every connection.
async fn http_server(response: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(response.as_bytes()).await;
        }
    });
    port
}

fn conf_with(props: &[(&str, String)]) -> (tempfile::TempDir, HadoopConf) {
    let dir = tempfile::tempdir().unwrap();
    let mut xml = String::from("<configuration>\n");
    for (k, v) in props {
        xml.push_str(&format!("<property><name>{k}</name><value>{v}</value></property>\n"));
    }
    xml.push_str("</configuration>\n");
    std::fs::write(dir.path().join("yarn-site.xml"), &xml).unwrap();
    std::fs::write(dir.path().join("core-site.xml"), "<configuration/>").unwrap();
    let conf = HadoopConf::load_dir(dir.path()).unwrap();
    (dir, conf)
}

const INFO: &str = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n\
{\"clusterInfo\":{\"state\":\"STARTED\",\"haState\":\"ACTIVE\",\"hadoopVersion\":\"3.3.6\"}}";

#[tokio::test]
async fn reachable_rm_and_web_app_are_ok_closed_namenode_fails() {
    let web = http_server(INFO).await;
    let rm = http_server("").await; // any listener will do for the TCP check
    let nn = closed_port().await;
    let (_dir, mut conf) = conf_with(&[
        ("yarn.resourcemanager.address", format!("127.0.0.1:{rm}")),
        ("yarn.resourcemanager.scheduler.address", "127.0.0.1:1".into()),
        ("yarn.resourcemanager.webapp.address", format!("127.0.0.1:{web}")),
    ]);
    conf.set("fs.defaultFS", &format!("hdfs://127.0.0.1:{nn}"));
    let report = run(&conf, &DoctorOptions { timeout: Duration::from_secs(5), ..Default::default() }).await;
    let text = report.to_string();
    println!("{text}"); // shown with --nocapture: what an operator sees
    assert_eq!(report.check("rm tcp").unwrap().verdict, Verdict::Ok, "{text}");
    let nn_check = report.check("namenode tcp").unwrap();
    assert_eq!(nn_check.verdict, Verdict::Fail, "{text}");
    assert!(nn_check.fix.is_some());
    let http = report.check("rm http").unwrap();
    assert_eq!(http.verdict, Verdict::Ok, "{text}");
    assert!(http.detail.contains("ACTIVE") && http.detail.contains("3.3.6"), "{text}");
    assert_eq!(report.check("auth").unwrap().detail.split(' ').next(), Some("simple"));
    assert_eq!(report.worst(), Verdict::Fail);
    assert!(text.contains("fix:") && text.contains("checks: 1 failed"), "{text}");
}

#[tokio::test]
async fn closed_rm_ports_fail_and_a_404_web_app_fails() {
    let rm = closed_port().await;
    let web = http_server("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n").await;
    let (_dir, conf) = conf_with(&[
        ("yarn.resourcemanager.ha.enabled", "true".into()),
        ("yarn.resourcemanager.ha.rm-ids", "rm1".into()),
        ("yarn.resourcemanager.address.rm1", format!("127.0.0.1:{rm}")),
        ("yarn.resourcemanager.hostname.rm1", "127.0.0.1".into()),
        ("yarn.resourcemanager.webapp.address.rm1", format!("127.0.0.1:{web}")),
    ]);
    let report = run(&conf, &DoctorOptions::default()).await;
    let text = report.to_string();
    let rm_check = report.check("rm tcp").unwrap();
    assert_eq!((rm_check.verdict, rm_check.name.as_str()), (Verdict::Fail, &*format!("rm tcp rm1=127.0.0.1:{rm}")));
    assert_eq!(report.check("rm http").unwrap().verdict, Verdict::Fail, "{text}");
    assert_eq!(report.check("namenode address").unwrap().verdict, Verdict::Warn, "{text}");
}

#[tokio::test]
async fn no_conf_dir_and_wildcard_addresses_warn_offline() {
    let report = run(&HadoopConf::new(), &DoctorOptions { offline: true, ..Default::default() }).await;
    let text = report.to_string();
    assert_eq!(report.check("config dir").unwrap().verdict, Verdict::Warn, "{text}");
    assert!(report.check("config dir").unwrap().fix.as_deref().unwrap().contains("HADOOP_CONF_DIR"));
    assert_eq!(report.check("rm address").unwrap().verdict, Verdict::Warn, "{text}");
    assert!(report.check("rm tcp").is_none());
}

#[tokio::test]
async fn secure_mode_without_a_ticket_fails_the_login_with_kinit_advice() {
    let (_dir, mut conf) = conf_with(&[]);
    conf.set("hadoop.security.authentication", "kerberos");
    let dir = tempfile::tempdir().unwrap();
    let ccache = format!("FILE:{}", dir.path().join("none").display());
    let report = run(&conf, &DoctorOptions { offline: true, ccache: Some(ccache), ..Default::default() }).await;
    let login = report.check("kerberos login").unwrap();
    assert_eq!(login.verdict, Verdict::Fail);
    assert!(login.detail.contains("kinit"), "{}", login.detail);
}

#[test]
fn utc_formatting() {
    assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01 00:00:00 UTC");
    assert_eq!(format_utc(UNIX_EPOCH + Duration::from_secs(1_795_838_340)), "2026-11-28 03:59:00 UTC");
}

#[tokio::test]
async fn a_token_file_is_listed_and_an_expired_delegation_token_warns() {
    use crate::credentials::{Credentials, Token};
    let fixture = crate::test_fixtures::wire("kerberos/tokens/alice-hdfs-delegation.tokens");
    let mut creds = Credentials::read_file(&fixture).unwrap();
    // The same identifier with dates in 1970: long past its maximum lifetime.
    let mut id = vec![0u8];
    for text in ["bob@R", "yarn", ""] {
        id.push(text.len() as u8);
        id.extend_from_slice(text.as_bytes());
    }
    id.extend_from_slice(&[10, 20, 3, 4]);
    let old =
        Token { identifier: id, password: vec![1], kind: "HDFS_DELEGATION_TOKEN".into(), service: "nn:8020".into() };
    creds.tokens.push(("nn:8020".into(), old));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.tokens");
    creds.write_file(&path).unwrap();
    let opts = DoctorOptions { offline: true, token_file: Some(path), ..Default::default() };
    let report = run(&HadoopConf::new(), &opts).await;
    let text = report.to_string();
    assert!(report.check("token file").unwrap().detail.ends_with("2 token(s), 0 secret(s)"), "{text}");
    let alice = report.check("token HDFS_DELEGATION_TOKEN 127.0.0.1:9000").unwrap();
    assert!(alice.detail.starts_with("owner alice@ORACLE.TEST, renewer alice, issued 20"), "{text}");
    let bob = report.check("token HDFS_DELEGATION_TOKEN nn:8020").unwrap();
    assert_eq!(bob.verdict, Verdict::Warn, "{text}");
    assert!(bob.detail.contains("renewable until 1970-01-01 00:00:00 UTC"), "{text}");

    std::fs::write(dir.path().join("bad.tokens"), b"HDTS\x00\x05").unwrap();
    let opts = DoctorOptions { offline: true, token_file: Some(dir.path().join("bad.tokens")), ..Default::default() };
    let report = run(&HadoopConf::new(), &opts).await;
    let check = report.check("token file").unwrap();
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(check.detail.contains("bad.tokens"), "{}", check.detail);
}
