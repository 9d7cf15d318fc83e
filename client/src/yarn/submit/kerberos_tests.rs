//! [`super::delegation_tokens`] on a Kerberized cluster made of doubles: a
//! real MIT KDC, a NameNode (IPC, GSSAPI as `nn/localhost`) answering
//! getDelegationToken and renewDelegationToken as a real one does, and an RM
//! web service that replays the captured RM delegation token answer after
//! checking the SPNEGO header.
//!
//! The NameNode double stores the renewer as Hadoop's
//! `AbstractDelegationTokenIdentifier.setRenewer` does: the short name under
//! the NameNode's own `auth_to_local` rules (here `rm/*` → `yarn`, as real
//! clusters commonly map it), and `renewDelegationToken` accepts only a caller
//! whose short name is that renewer ("Client yarn tries to renew a token with
//! non-matching renewer rm", the real cluster's refusal).

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hadoop::proto::common as pc;
use integration_tests::gssapi_acceptor::{gssapi_server, GssapiAcceptor};
use integration_tests::hadoop_ipc_server::{self as server, CallContext, CallHandler, HandlerFuture, ServerConfig};
use integration_tests::kdc::TestKdc;
use prost::Message;

use super::*;
use crate::yarn::test_fixtures::{replay, wire_dir};

/// The NameNode's `hadoop.security.auth_to_local`.
const NN_RULES: &str = "RULE:[2:$1/$2@$0](rm/.*@YARNFLINK.TEST)s/.*/yarn/ DEFAULT";

/// One issued token: (caller, renewer as asked, renewer as stored).
type Issued = (Option<String>, String, String);

/// Issues tokens and renews them.
struct NameNode(Arc<Mutex<Vec<Issued>>>);

fn short(principal: &str) -> String {
    let rules = hadoop::auth_to_local::AuthToLocal::parse(NN_RULES).unwrap();
    rules.short_name(principal, Some("YARNFLINK.TEST")).unwrap_or_else(|_| principal.to_owned())
}

impl CallHandler for NameNode {
    fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
        let remote =
            |class: &str, message: String| hadoop::RemoteException { class: class.into(), message, fatal: false };
        let reply = match method.as_str() {
            "getDelegationToken" => match pc::GetDelegationTokenRequestProto::decode(payload.as_slice()) {
                Ok(req) => {
                    let stored = short(&req.renewer);
                    let mut issued = self.0.lock().unwrap();
                    issued.push((ctx.user.clone(), req.renewer.clone(), stored));
                    let token = pc::TokenProto {
                        identifier: format!("id{}", issued.len()).into_bytes(),
                        password: b"pw".to_vec(),
                        kind: "HDFS_DELEGATION_TOKEN".into(),
                        // A real NameNode leaves the service to the client.
                        service: String::new(),
                    };
                    Ok(pc::GetDelegationTokenResponseProto { token: Some(token) }.encode_to_vec())
                }
                Err(e) => Err(remote("java.io.IOException", e.to_string())),
            },
            "renewDelegationToken" => match pc::RenewDelegationTokenRequestProto::decode(payload.as_slice()) {
                Ok(req) => {
                    let n: usize =
                        String::from_utf8_lossy(&req.token.identifier).trim_start_matches("id").parse().unwrap_or(0);
                    let issued = self.0.lock().unwrap();
                    let caller = short(ctx.user.as_deref().unwrap_or(""));
                    match issued.get(n.wrapping_sub(1)) {
                        Some((_, _, renewer)) if *renewer == caller => {
                            Ok(pc::RenewDelegationTokenResponseProto { new_expiry_time: 1 }.encode_to_vec())
                        }
                        Some((_, _, renewer)) => Err(remote(
                            "org.apache.hadoop.security.AccessControlException",
                            format!("Client {caller} tries to renew a token with non-matching renewer {renewer}"),
                        )),
                        None => Err(remote(
                            "org.apache.hadoop.security.token.SecretManager$InvalidToken",
                            "unknown token".into(),
                        )),
                    }
                }
                Err(e) => Err(remote("java.io.IOException", e.to_string())),
            },
            _ => Err(remote("java.io.IOException", method)),
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
    // Point 10: services by IP (hadoop.security.token.service.use_ip defaults to true),
    // as the captured kerberos/tokens/alice-hdfs-delegation.tokens has it.
    let nn_service = format!("127.0.0.1:{}", nn.addr().port());
    assert_eq!(kinds, vec![(nn_service.as_str(), "HDFS_DELEGATION_TOKEN"), ("127.0.0.1:8032", "RM_DELEGATION_TOKEN")]);
    // Point 9: the NameNode saw alice over Kerberos, naming the RM's full principal,
    // and stored the renewer its rules give: yarn.
    assert_eq!(
        calls.lock().unwrap().clone(),
        vec![(Some("alice@YARNFLINK.TEST".to_string()), "rm/localhost@YARNFLINK.TEST".to_string(), "yarn".to_string())]
    );
    // What the RM does at submission: renew the HDFS token as itself. Only the renewer may.
    let renew_as = |who: &str| {
        let keytab = if who.starts_with("rm/") { kdc.keytab("rm") } else { kdc.keytab("alice") };
        let l = KerberosLogin::from_keytab(&keytab, who).unwrap();
        let auth = hadoop::ipc::Auth::sasl(
            move || {
                let g =
                    hadoop::sasl::gssapi::Gssapi::new(l.clone()).with_server_principal("nn/localhost@YARNFLINK.TEST");
                vec![Box::new(g) as Box<dyn hadoop::sasl::SaslMechanism>]
            },
            None,
        );
        hadoop::hdfs::delegation::NameNodeClient::new(vec![format!("localhost:{}", nn.addr().port())], auth)
    };
    let hdfs_token = &tokens[0].1;
    renew_as("rm/localhost").renew_delegation_token(hdfs_token).await.expect("the RM renews the token");
    let refused = renew_as("alice").renew_delegation_token(hdfs_token).await.unwrap_err().to_string();
    assert!(refused.contains("non-matching renewer yarn"), "{refused}");
    // The RM request carried a SPNEGO token the HTTP service accepts as alice.
    let head = req.await.unwrap();
    assert!(head.starts_with("POST /ws/v1/cluster/delegation-token HTTP/1.1"), "{head}");
    let header = head.lines().find_map(|l| l.strip_prefix("authorization: Negotiate ")).unwrap();
    let token = base64::engine::general_purpose::STANDARD.decode(header).unwrap();
    let mut http = GssapiAcceptor::new(&kdc.keytab("HTTP")).unwrap();
    http.respond(&token).unwrap();
    assert_eq!(http.client_principal(), Some("alice@YARNFLINK.TEST"));
}
