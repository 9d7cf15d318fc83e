//! [`super::delegation_tokens`] on a Kerberized cluster made of doubles: a
//! real MIT KDC, a NameNode (IPC, GSSAPI as `nn/localhost`) answering
//! getDelegationToken, and an RM web service that replays the captured RM
//! delegation token answer after checking the SPNEGO header.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hadoop::proto::common as pc;
use integration_tests::gssapi_acceptor::{gssapi_server, GssapiAcceptor};
use integration_tests::hadoop_ipc_server::{self as server, CallContext, CallHandler, HandlerFuture, ServerConfig};
use integration_tests::kdc::TestKdc;
use prost::Message;

use super::*;
use crate::yarn::test_fixtures::{replay, wire_dir};

/// Issues a token naming the caller and the renewer.
struct NameNode(Arc<Mutex<Vec<(Option<String>, String)>>>);

impl CallHandler for NameNode {
    fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
        let reply = match pc::GetDelegationTokenRequestProto::decode(payload.as_slice()) {
            Ok(req) if method == "getDelegationToken" => {
                self.0.lock().unwrap().push((ctx.user.clone(), req.renewer.clone()));
                let token = pc::TokenProto {
                    identifier: b"id".to_vec(),
                    password: b"pw".to_vec(),
                    kind: "HDFS_DELEGATION_TOKEN".into(),
                    service: String::new(),
                };
                Ok(pc::GetDelegationTokenResponseProto { token: Some(token) }.encode_to_vec())
            }
            _ => Err(hadoop::RemoteException { class: "java.io.IOException".into(), message: method, fatal: false }),
        };
        Box::pin(async move { reply })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_submit_gets_hdfs_and_rm_delegation_tokens() {
    let kdc = TestKdc::start().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let nn = server::start(
        ServerConfig::default()
            .with_sasl(gssapi_server(&kdc.keytab("nn"), "nn", "localhost"))
            .with_handler(hadoop::hdfs::delegation::PROTOCOL, Arc::new(NameNode(calls.clone()))),
    )
    .await
    .unwrap();
    let body = std::fs::read_to_string(wire_dir().join("kerberos/rest/rm-delegation-token.response.json")).unwrap();
    let resp =
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (web, req) = replay(resp.into_bytes()).await;
    let web = web.replace("http://127.0.0.1", "localhost");

    let mut conf = HadoopConf::new();
    conf.set("hadoop.security.authentication", "kerberos");
    conf.set("fs.defaultFS", &format!("hdfs://localhost:{}", nn.addr().port()));
    conf.set("dfs.namenode.kerberos.principal", "nn/_HOST@YARNFLINK.TEST");
    conf.set("yarn.resourcemanager.address", "localhost:8032");
    conf.set("yarn.resourcemanager.webapp.address", &web);
    conf.set("yarn.resourcemanager.principal", "rm/_HOST@YARNFLINK.TEST");
    let login = KerberosLogin::from_keytab(&kdc.keytab("alice"), "alice").unwrap();
    let rm = RmRestClient::from_conf(&conf, RestAuth::Kerberos { login: login.clone() }).unwrap();

    let tokens = delegation_tokens(&conf, &login, &rm).await.unwrap();
    let kinds: Vec<(&str, &str)> = tokens.iter().map(|(alias, t)| (alias.as_str(), t.kind.as_str())).collect();
    let nn_service = format!("localhost:{}", nn.addr().port());
    assert_eq!(kinds, vec![(nn_service.as_str(), "HDFS_DELEGATION_TOKEN"), ("localhost:8032", "RM_DELEGATION_TOKEN")]);
    // The NameNode saw alice over Kerberos, asking for the RM as renewer.
    assert_eq!(calls.lock().unwrap().clone(), vec![(Some("alice@YARNFLINK.TEST".to_string()), "rm".to_string())]);
    // The RM request carried a SPNEGO token the HTTP service accepts as alice.
    let head = req.await.unwrap();
    assert!(head.starts_with("POST /ws/v1/cluster/delegation-token HTTP/1.1"), "{head}");
    let header = head.lines().find_map(|l| l.strip_prefix("authorization: Negotiate ")).unwrap();
    let token = base64::engine::general_purpose::STANDARD.decode(header).unwrap();
    let mut http = GssapiAcceptor::new(&kdc.keytab("HTTP")).unwrap();
    http.respond(&token).unwrap();
    assert_eq!(http.client_principal(), Some("alice@YARNFLINK.TEST"));
}
