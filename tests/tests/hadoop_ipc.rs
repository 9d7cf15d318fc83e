//! The Hadoop IPC client against the wire-level test server: SASL
//! DIGEST-MD5 with real token passwords, the YARN AM and NM protocols,
//! concurrent calls on one connection, failover between two addresses.

use std::sync::Arc;
use std::time::Duration;

use hadoop::credentials::Token;
use hadoop::ipc::{Auth, Connection, ConnectionConfig, FailoverProxy, RetryPolicy};
use hadoop::yarn::amrm::{AmRmClient, AmRmConfig, AskKey};
use hadoop::yarn::nm::NmClient;
use hadoop::yarn::{
    ApplicationAttemptId, ApplicationId, ContainerLaunchContext, ContainerState, FinalStatus, NodeId, Resource,
};
use hadoop::Error;
use integration_tests::hadoop_ipc_server::sasl::SecretManager;
use integration_tests::hadoop_ipc_server::yarn::{NodeManager, ResourceManager, RmConfig};
use integration_tests::hadoop_ipc_server::{
    self as server, CallContext, CallHandler, HandlerFuture, ServerConfig, ServerHandle,
};

const AMRM: &str = hadoop::yarn::amrm::PROTOCOL;
const CM: &str = hadoop::yarn::nm::PROTOCOL;

fn attempt() -> ApplicationAttemptId {
    ApplicationAttemptId { application: ApplicationId { cluster_timestamp: 1795750141222, id: 1 }, attempt: 1 }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy { max_retries: 4, min_delay: Duration::from_millis(10), max_delay: Duration::from_millis(50) }
}

async fn rm_server(secrets: &SecretManager, nodes: Vec<NodeId>) -> (Arc<ResourceManager>, ServerHandle) {
    let rm = ResourceManager::new(
        RmConfig {
            attempt: attempt(),
            minimum_allocation: Resource::new(128, 1),
            maximum_allocation: Resource::new(8192, 8),
            nodes,
            node_http_addresses: Vec::new(),
            containers_per_allocate: 1,
            finish_pending_calls: 1,
            capacity: None,
        },
        secrets.clone(),
    );
    let handle = server::start(ServerConfig::default().with_sasl(secrets.digest_md5()).with_handler(AMRM, rm.clone()))
        .await
        .unwrap();
    (rm, handle)
}

fn amrm_client(addrs: Vec<String>, token: Token) -> AmRmClient {
    let mut config = AmRmConfig::new(addrs);
    config.retry = fast_retry();
    config.finish_poll_interval = Duration::from_millis(1);
    AmRmClient::new(config, token)
}

#[tokio::test]
async fn am_registers_allocates_launches_and_finishes() {
    let secrets = SecretManager::random();
    let nm = Arc::new(NodeManager::default());
    let nm_server = server::start(ServerConfig::default().with_sasl(secrets.digest_md5()).with_handler(CM, nm.clone()))
        .await
        .unwrap();
    let node = NodeId { host: "127.0.0.1".into(), port: i32::from(nm_server.addr().port()) };
    let (rm, rm_server) = rm_server(&secrets, vec![node.clone()]).await;

    let mut am = amrm_client(vec![rm_server.addr().to_string()], rm.amrm_token());
    let reg = am.register("am-host", -1, "").await.unwrap();
    assert_eq!(reg.maximum_capability, Resource::new(8192, 8));
    assert_eq!(reg.resource_types, ["memory-mb", "vcores"]);

    // Ask for 2 containers of 10 MB: the RM rounds them up to 128 MB, one per allocate.
    let key = AskKey::anywhere(0, 7, Resource::new(10, 1));
    am.set_ask(key.clone(), 2);
    let first = am.allocate().await.unwrap();
    assert_eq!(first.response_id, 1);
    assert_eq!(first.allocated.len(), 1);
    let c1 = first.allocated[0].clone();
    assert_eq!(c1.resource, Resource::new(128, 1));
    assert_eq!(c1.allocation_request_id, 7);
    assert_eq!(first.new_nm_tokens, std::slice::from_ref(&node));
    am.set_ask(key.clone(), 1);
    let second = am.allocate().await.unwrap();
    assert_eq!(second.response_id, 2);
    assert_eq!(second.allocated.len(), 1);
    assert!(second.new_nm_tokens.is_empty(), "one NMToken per node");
    am.set_ask(key.clone(), 0);
    let c2 = second.allocated[0].clone();
    assert_eq!(rm.state.lock().unwrap().outstanding.values().copied().collect::<Vec<_>>(), [0]);

    // Launch on the NodeManager with the cached NMToken.
    let nm_token = am.nm_token(&node).expect("NMToken cached").clone();
    let launch = ContainerLaunchContext {
        commands: vec!["echo hello".into()],
        environment: [("A".to_string(), "1".to_string())].into(),
        ..Default::default()
    };
    let nmc = NmClient::default();
    nmc.start_container(&nm_token, &c1, &launch).await.unwrap();
    assert_eq!(nm.containers.lock().unwrap().get(&c1.id).map(|c| c.0.clone()), Some(launch.clone()));
    let (statuses, failed) = nmc.get_container_statuses(&node, &nm_token, &[c1.id, c2.id]).await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].state, ContainerState::Running);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].container, c2.id);
    let stopped = nmc.stop_containers(&node, &nm_token, &[c1.id]).await.unwrap();
    assert_eq!(stopped.succeeded, [c1.id]);

    // Release one, hear about the other finishing.
    am.release(c2.id);
    rm.complete(c1.id, 0, "done");
    let third = am.allocate().await.unwrap();
    assert_eq!(third.response_id, 3);
    let mut completed: Vec<_> = third.completed.iter().map(|s| (s.id, s.exit_status)).collect();
    completed.sort();
    assert_eq!(completed, [(c1.id, 0), (c2.id, -100)]);

    am.finish(FinalStatus::Succeeded, "", None).await.unwrap();
    let state = rm.state.lock().unwrap();
    assert_eq!(state.finish_calls, 2, "finish is repeated until isUnregistered");
    assert!(state.unregistered);
}

#[tokio::test]
async fn asks_above_the_maximum_name_the_limit() {
    let secrets = SecretManager::random();
    let (rm, rm_server) = rm_server(&secrets, vec![NodeId { host: "n".into(), port: 1 }]).await;
    let mut am = amrm_client(vec![rm_server.addr().to_string()], rm.amrm_token());
    am.register("h", -1, "").await.unwrap();
    am.set_ask(AskKey::anywhere(1, 1, Resource::new(9000, 1)), 1);
    let err = am.allocate().await.unwrap_err();
    assert!(matches!(err, Error::InvalidResourceRequest { .. }), "{err:?}");
    assert!(err.to_string().contains("maximum allowed allocation <memory:8192, vCores:8>"), "{err}");
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_a_typed_error() {
    let secrets = SecretManager::random();
    let (rm, rm_server) = rm_server(&secrets, vec![NodeId { host: "n".into(), port: 1 }]).await;
    let mut forged = rm.amrm_token();
    forged.password = vec![0; 16];
    let config = ConnectionConfig::new(AMRM, Auth::token(forged));
    let err = Connection::connect(&rm_server.addr().to_string(), &config).await.unwrap_err();
    match &err {
        Error::AuthenticationRefused { remote, .. } => {
            assert_eq!(remote.class, "javax.security.sasl.SaslException");
            assert!(remote.message.contains("Mismatched response"), "{}", remote.message);
        }
        other => panic!("expected AuthenticationRefused, got {other:?}"),
    }
    // A token from another secret manager fails the same way through the AM client,
    // without failing over (another try would not help).
    let mut am = amrm_client(vec![rm_server.addr().to_string()], SecretManager::random().issue(vec![1], "K", ""));
    assert!(matches!(am.register("h", -1, "").await, Err(Error::AuthenticationRefused { .. })));
}

/// Answers `wait` only once `n` calls are in flight, proving they share one
/// connection concurrently; echoes the payload.
struct Gate(Arc<tokio::sync::Barrier>);

impl CallHandler for Gate {
    fn call(&self, ctx: CallContext, _method: String, payload: Vec<u8>) -> HandlerFuture {
        let barrier = self.0.clone();
        Box::pin(async move {
            assert_eq!(ctx.mechanism.as_deref(), Some("DIGEST-MD5"));
            barrier.wait().await;
            Ok(payload)
        })
    }
}

#[tokio::test]
async fn concurrent_calls_share_one_connection() {
    let secrets = SecretManager::random();
    let handle = server::start(
        ServerConfig::default()
            .with_sasl(secrets.digest_md5())
            .with_handler("test.Gate", Arc::new(Gate(Arc::new(tokio::sync::Barrier::new(8))))),
    )
    .await
    .unwrap();
    let mut config = ConnectionConfig::new("test.Gate", Auth::token(secrets.issue(vec![9], "K", "")));
    config.call_timeout = Duration::from_secs(10);
    let conn = Arc::new(Connection::connect(&handle.addr().to_string(), &config).await.unwrap());
    let calls: Vec<_> = (0u8..8)
        .map(|i| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.call_raw("wait", &[i; 3]).await })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), vec![i as u8; 3]);
    }
}

#[tokio::test]
async fn failover_skips_a_dead_address_and_a_standby() {
    let secrets = SecretManager::random();
    let (rm, active) = rm_server(&secrets, vec![NodeId { host: "n".into(), port: 1 }]).await;
    let (_, standby) = rm_server(&secrets, vec![NodeId { host: "n".into(), port: 1 }]).await;
    standby.set_standby(true);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let addrs = vec![dead, standby.addr().to_string(), active.addr().to_string()];
    let mut am = amrm_client(addrs.clone(), rm.amrm_token());
    am.register("h", -1, "").await.unwrap();
    assert!(rm.state.lock().unwrap().registered);

    // The proxy stays on the active one; when it turns standby and the other
    // becomes active, calls follow.
    let proxy = FailoverProxy::new(addrs, ConnectionConfig::new(AMRM, Auth::token(rm.amrm_token())))
        .with_retry_policy(fast_retry());
    let req = hadoop::proto::yarn::RegisterApplicationMasterRequestProto::default();
    let _: hadoop::proto::yarn::RegisterApplicationMasterResponseProto =
        proxy.call("registerApplicationMaster", &req).await.unwrap();
    assert_eq!(proxy.current_addr().await, Some(active.addr().to_string()));
    active.set_standby(true);
    standby.set_standby(false);
    let _: hadoop::proto::yarn::RegisterApplicationMasterResponseProto =
        proxy.call("registerApplicationMaster", &req).await.unwrap();
    assert_eq!(proxy.current_addr().await, Some(standby.addr().to_string()));

    // All standby: the error says so after the retries.
    standby.set_standby(true);
    let err = proxy
        .call::<_, hadoop::proto::yarn::RegisterApplicationMasterResponseProto>("registerApplicationMaster", &req)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::NoActiveServer { .. }), "{err:?}");
    assert_eq!(err.remote().map(|r| r.simple_class()), Some("StandbyException"));
}

#[tokio::test]
async fn simple_auth_and_a_closed_connection() {
    struct Echo;
    impl CallHandler for Echo {
        fn call(&self, ctx: CallContext, _m: String, payload: Vec<u8>) -> HandlerFuture {
            Box::pin(async move {
                assert_eq!(ctx.user.as_deref(), Some("alice"));
                Ok(payload)
            })
        }
    }
    let mut config = ServerConfig::default().with_handler("test.Echo", Arc::new(Echo));
    config.allow_simple = true;
    let handle = server::start(config).await.unwrap();
    let conn = Connection::connect(
        &handle.addr().to_string(),
        &ConnectionConfig::new("test.Echo", Auth::Simple { user: "alice".into() }),
    )
    .await
    .unwrap();
    assert_eq!(conn.call_raw("echo", b"x").await.unwrap(), b"x");
    let err = conn.call_raw("echo", &[]).await;
    assert_eq!(err.unwrap(), b"");
    // An unknown protocol is the server's error, not ours.
    let other = Connection::connect(
        &handle.addr().to_string(),
        &ConnectionConfig::new("test.Nope", Auth::Simple { user: "alice".into() }),
    )
    .await
    .unwrap();
    let err = other.call_raw("x", &[]).await.unwrap_err();
    assert_eq!(err.remote().map(|r| r.simple_class()), Some("RpcNoSuchProtocolException"));
    drop(handle);
}

#[tokio::test]
async fn a_rolled_amrm_token_replaces_the_old_one_and_a_lost_registration_is_redone() {
    let secrets = SecretManager::random();
    let (rm, rm_server) = rm_server(&secrets, vec![NodeId { host: "n".into(), port: 1 }]).await;
    let old = rm.amrm_token();
    let mut am = amrm_client(vec![rm_server.addr().to_string()], old.clone());
    am.register("h", -1, "").await.unwrap();
    let new = rm.roll_amrm_token();
    let allocation = am.allocate().await.unwrap();
    assert!(allocation.amrm_token_rolled);
    assert_eq!(am.amrm_token().identifier, new.identifier);
    // Restart the server on the same address: the client reconnects with the new token.
    let addr = rm_server.addr();
    rm_server.stop().await;
    let mut config = ServerConfig::default().with_sasl(secrets.digest_md5()).with_handler(AMRM, rm.clone());
    config.bind = Some(addr);
    let handle = server::start(config).await.unwrap();
    am.allocate().await.unwrap();
    let callers = rm.state.lock().unwrap().callers.clone();
    use base64::Engine;
    let b64 = |t: &Token| Some(base64::engine::general_purpose::STANDARD.encode(&t.identifier));
    assert_eq!(callers.first(), Some(&b64(&old)));
    assert_eq!(callers.last(), Some(&b64(&new)));

    // A restarted RM forgets the registration: allocate re-registers and re-sends asks.
    let mut am = amrm_client(vec![handle.addr().to_string()], new);
    am.register("h", -1, "").await.unwrap();
    am.set_ask(AskKey::anywhere(0, 1, Resource::new(256, 1)), 3);
    let first = am.allocate().await.unwrap();
    assert_eq!(first.allocated.len(), 1);
    rm.forget_registration();
    let again = am.allocate().await.unwrap();
    assert_eq!(again.response_id, 1, "the response ids start over after re-registering");
    assert_eq!(again.allocated.len(), 1);
    assert_eq!(rm.state.lock().unwrap().outstanding.values().copied().collect::<Vec<_>>(), [2]);
}

#[tokio::test]
async fn a_server_speaking_something_else_gives_a_typed_frame_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await.unwrap();
    });
    let config = ConnectionConfig::new(AMRM, Auth::token(SecretManager::random().issue(vec![1], "K", "")));
    let err = Connection::connect(&addr, &config).await.unwrap_err();
    assert!(
        matches!(&err, Error::Frame { source: hadoop::ipc::frame::FrameError::AbsurdLength { .. }, .. }),
        "{err:?}"
    );
    server.await.unwrap();
}

#[tokio::test]
async fn namenode_delegation_tokens_over_the_same_client() {
    use hadoop::hdfs::delegation::{NameNodeClient, PROTOCOL};
    use hadoop::proto::common as pc;
    use prost::Message;
    struct Nn(SecretManager);
    impl CallHandler for Nn {
        fn call(&self, ctx: CallContext, method: String, payload: Vec<u8>) -> HandlerFuture {
            let reply = match method.as_str() {
                "getDelegationToken" => {
                    let req = pc::GetDelegationTokenRequestProto::decode(payload.as_slice()).unwrap();
                    let id = format!("owner={:?},renewer={}", ctx.user, req.renewer).into_bytes();
                    let t = self.0.issue(id, "HDFS_DELEGATION_TOKEN", "");
                    let token = pc::TokenProto {
                        identifier: t.identifier,
                        password: t.password,
                        kind: t.kind,
                        service: t.service,
                    };
                    Ok(pc::GetDelegationTokenResponseProto { token: Some(token) }.encode_to_vec())
                }
                "renewDelegationToken" => {
                    let req = pc::RenewDelegationTokenRequestProto::decode(payload.as_slice()).unwrap();
                    assert_eq!(self.0.password(&req.token.identifier), req.token.password);
                    Ok(pc::RenewDelegationTokenResponseProto { new_expiry_time: 1_795_838_332_428 }.encode_to_vec())
                }
                "cancelDelegationToken" => Err(hadoop::RemoteException {
                    class: "org.apache.hadoop.security.token.SecretManager$InvalidToken".into(),
                    message: "Token not found".into(),
                    fatal: false,
                }),
                _ => unreachable!("no other method is called"),
            };
            Box::pin(async move { reply })
        }
    }
    let mut config = ServerConfig::default().with_handler(PROTOCOL, Arc::new(Nn(SecretManager::random())));
    config.allow_simple = true;
    let handle = server::start(config).await.unwrap();
    let addr = handle.addr().to_string();
    let nn = NameNodeClient::new(vec![addr.clone()], Auth::Simple { user: "alice".into() });
    let token = nn.get_delegation_token("yarn").await.unwrap();
    assert_eq!(token.kind, "HDFS_DELEGATION_TOKEN");
    assert_eq!(token.service, addr, "the service is the NameNode that issued it");
    assert_eq!(String::from_utf8_lossy(&token.identifier), "owner=Some(\"alice\"),renewer=yarn");
    assert_eq!(nn.renew_delegation_token(&token).await.unwrap(), 1_795_838_332_428);
    let err = nn.cancel_delegation_token(&token).await.unwrap_err();
    assert_eq!(err.remote().map(|r| r.simple_class()), Some("SecretManager$InvalidToken"));
}

#[tokio::test]
async fn a_fatal_answer_closes_the_connection_for_every_call() {
    struct Fatal;
    impl CallHandler for Fatal {
        fn call(&self, _ctx: CallContext, method: String, _payload: Vec<u8>) -> HandlerFuture {
            Box::pin(async move {
                Err(hadoop::RemoteException {
                    class: "org.apache.hadoop.ipc.RpcServerException".into(),
                    message: format!("{method}: cannot go on"),
                    fatal: true,
                })
            })
        }
    }
    let secrets = SecretManager::random();
    let handle = server::start(
        ServerConfig::default().with_sasl(secrets.digest_md5()).with_handler("test.Fatal", Arc::new(Fatal)),
    )
    .await
    .unwrap();
    let conn = Connection::connect(
        &handle.addr().to_string(),
        &ConnectionConfig::new("test.Fatal", Auth::token(secrets.issue(vec![3], "K", ""))),
    )
    .await
    .unwrap();
    let err = conn.call_raw("boom", &[]).await.unwrap_err();
    let remote = err.remote().expect("the server's exception");
    assert!(remote.fatal);
    assert_eq!(remote.first_line(), "boom: cannot go on");
    let later = conn.call_raw("again", &[]).await.unwrap_err();
    assert!(matches!(later, Error::ConnectionClosed { .. }), "{later:?}");
    assert!(conn.is_closed());
}
