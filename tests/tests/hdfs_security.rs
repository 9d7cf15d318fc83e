//! The HDFS double with security on, used as YARN containers use HDFS:
//! hdfs-native finds its delegation token through `HADOOP_TOKEN_FILE_LOCATION`
//! (read again at every new connection), the NameNode refuses a token past its
//! expiry, and a token file replaced in place is used by the next connection.
//! This is what an AM that obtains fresh tokens relies on (issue 13).
//!
//! Its own test binary: the token file is named by a process-wide variable.

use std::collections::HashMap;
use std::time::Duration;

use hadoop::credentials::{Credentials, Token};
use hadoop::kerberos::KerberosLogin;
use integration_tests::hdfs_double::tokens::TokenLifetimes;
use integration_tests::hdfs_double::{HdfsDouble, HdfsDoubleConfig, HdfsSecurity};
use integration_tests::kdc::TestKdc;

fn kerberos_auth(login: &KerberosLogin) -> hadoop::ipc::Auth {
    let l = login.clone();
    hadoop::ipc::Auth::sasl(
        move || {
            let g = hadoop::sasl::gssapi::Gssapi::new(l.clone()).with_server_principal("nn/localhost@YARNFLINK.TEST");
            vec![Box::new(g) as Box<dyn hadoop::sasl::SaslMechanism>]
        },
        Some(login.principal().to_owned()),
    )
}

async fn token_for(nn: &hadoop::hdfs::delegation::NameNodeClient, port: u16) -> Token {
    let mut t = nn.get_delegation_token("alice@YARNFLINK.TEST").await.unwrap();
    // Filed by IP, as hadoop.security.token.service.use_ip makes a real client do.
    t.service = format!("127.0.0.1:{port}");
    t
}

fn write_tokens(path: &std::path::Path, token: &Token) {
    let mut creds = Credentials::default();
    creds.tokens.push((token.service.clone(), token.clone()));
    // Replaced in one rename: a connection never reads half a file.
    let tmp = path.with_extension("tmp");
    creds.write_file(&tmp).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

async fn write(url: &str, path: &str) -> Result<(), String> {
    let mut config = HashMap::new();
    config.insert("hadoop.security.authentication".to_owned(), "kerberos".to_owned());
    let client =
        hdfs_native::ClientBuilder::new().with_url(url).with_config(config).build().map_err(|e| e.to_string())?;
    let mut f = client.create(path, hdfs_native::WriteOptions::default()).await.map_err(|e| e.to_string())?;
    f.write_bytes(bytes::Bytes::from_static(b"x\n")).await.map_err(|e| e.to_string())?;
    f.close().await.map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_and_a_token_file_replaced_in_place_is_used() {
    let kdc = TestKdc::start().unwrap();
    // hdfs-native 0.14.8 skips a token within 60 s of its maximum date
    // (`User::get_token`): the maximum lifetime is kept well above that.
    let lifetimes = TokenLifetimes { renew_interval: Duration::from_secs(2), max_lifetime: Duration::from_secs(600) };
    let security = HdfsSecurity { nn_keytab: kdc.keytab("nn"), lifetimes };
    let hdfs =
        HdfsDouble::start_with(HdfsDoubleConfig { security: Some(security), ..Default::default() }).await.unwrap();
    let port = hdfs.namenode_addr().port();
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let nn = hadoop::hdfs::delegation::NameNodeClient::new(vec![format!("localhost:{port}")], kerberos_auth(&login));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("container_tokens");
    let first = token_for(&nn, port).await;
    write_tokens(&file, &first);
    std::env::set_var("HADOOP_TOKEN_FILE_LOCATION", &file);
    write(&hdfs.url(), "/a").await.expect("a fresh token is accepted");

    // Past the renew interval, unrenewed: refused as a real NameNode refuses it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = write(&hdfs.url(), "/b").await.expect_err("an expired token must be refused");
    assert!(refused.contains("is expired"), "{refused}");

    // A token obtained anew and put in the same file: the next connection uses it.
    let second = token_for(&nn, port).await;
    write_tokens(&file, &second);
    write(&hdfs.url(), "/c").await.expect("the replaced token is used");
    // Renewal by its renewer keeps it valid past the interval.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        nn.renew_delegation_token(&second).await.expect("alice renews her own token");
    }
    write(&hdfs.url(), "/d").await.expect("a renewed token is accepted past its first expiry");
    let paths = hdfs.paths();
    for p in ["/a", "/c", "/d"] {
        assert!(paths.iter().any(|x| x == p), "{p} in {paths:?}");
    }
    assert!(!paths.iter().any(|x| x == "/b"));
    std::env::remove_var("HADOOP_TOKEN_FILE_LOCATION");
}
