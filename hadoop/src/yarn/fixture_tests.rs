//! The request and response bodies of the captured YARN and NameNode calls,
//! decoded into our prost types and domain types.

use std::collections::BTreeMap;

use prost::Message;

use super::types::*;
use crate::ipc::frame::tests::{fixtures_dir, split_all};
use crate::ipc::frame::{decode_request, decode_response, RequestBody, ResponseBody};
use crate::proto::common as pc;
use crate::proto::yarn as pb;

/// (method, request payload, response payload) of every call of a capture.
fn calls(name: &str) -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let c2s = std::fs::read(fixtures_dir().join(format!("{name}.c2s.bin"))).unwrap();
    let s2c = std::fs::read(fixtures_dir().join(format!("{name}.s2c.bin"))).unwrap();
    let mut requests = BTreeMap::new();
    for f in split_all(&c2s).1 {
        let r = decode_request(&f).unwrap();
        if let RequestBody::Call { header, payload } = r.body {
            requests.insert(r.header.call_id, (header.method_name, payload));
        }
    }
    let mut out = Vec::new();
    for f in split_all(&s2c).1 {
        let r = decode_response(&f).unwrap();
        let call_id = r.call_id();
        if let ResponseBody::Success(payload) = r.body {
            if let Some((method, request)) = requests.remove(&call_id) {
                out.push((method, request, payload));
            }
        }
    }
    out
}

#[test]
fn distributed_shell_am_conversation() {
    let calls = calls("ipc/dshell-amrm");
    let (method, req, resp) = &calls[0];
    assert_eq!(method, "registerApplicationMaster");
    let req = pb::RegisterApplicationMasterRequestProto::decode(req.as_slice()).unwrap();
    assert_eq!(req.rpc_port(), -1);
    let resp = pb::RegisterApplicationMasterResponseProto::decode(resp.as_slice()).unwrap();
    assert_eq!(Resource::from(resp.maximum_capability.as_ref().unwrap()), Resource::new(8192, 8));
    assert_eq!(resp.queue(), "default");
    let types: Vec<_> = resp.resource_types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(types, ["memory-mb", "vcores"]);

    let mut response_ids = Vec::new();
    let mut outstanding = Vec::new();
    let mut allocated = Vec::new();
    let mut nm_tokens = BTreeMap::new();
    let mut unregistered = Vec::new();
    for (method, req, resp) in &calls[1..] {
        match method.as_str() {
            "allocate" => {
                let req = pb::AllocateRequestProto::decode(req.as_slice()).unwrap();
                for ask in &req.ask {
                    assert_eq!(ask.resource_name(), "*");
                    assert_eq!(Resource::from(ask.capability.as_ref().unwrap()), Resource::new(10, 1));
                    outstanding.push(ask.num_containers());
                }
                let resp = pb::AllocateResponseProto::decode(resp.as_slice()).unwrap();
                assert_eq!(resp.response_id(), req.response_id() + 1, "response_id counts up by one");
                response_ids.push(resp.response_id());
                for c in resp.allocated_containers {
                    let c = Container::from(c);
                    // Asked 10 MB, normalised to the 128 MB minimum allocation.
                    assert_eq!(c.resource, Resource::new(128, 1));
                    assert_eq!(c.container_token.as_ref().unwrap().kind, "ContainerToken");
                    allocated.push(c);
                }
                for t in resp.nm_tokens {
                    let node = NodeId::from(t.node_id.as_ref().unwrap());
                    let token = token_from_proto(t.token.unwrap());
                    assert_eq!(token.kind, "NMToken");
                    assert!(nm_tokens.insert(node, token).is_none(), "NMTokens arrive once per node");
                }
            }
            "finishApplicationMaster" => {
                let req = pb::FinishApplicationMasterRequestProto::decode(req.as_slice()).unwrap();
                assert_eq!(req.final_application_status(), pb::FinalApplicationStatusProto::AppSucceeded);
                let resp = pb::FinishApplicationMasterResponseProto::decode(resp.as_slice()).unwrap();
                unregistered.push(resp.is_unregistered());
            }
            other => panic!("unexpected call {other}"),
        }
    }
    assert_eq!(response_ids, [1, 2, 3, 4, 5]);
    // Asks are absolute: 2 outstanding, then 1, then 0 as containers arrive.
    assert_eq!(outstanding, [2, 1, 0]);
    assert_eq!(allocated.len(), 3);
    assert_eq!(allocated[0].id.to_string(), "container_1795750141222_0001_01_000002");
    assert_eq!(allocated[0].node, NodeId { host: "localhost".into(), port: 8041 });
    assert_eq!(nm_tokens.len(), 1);
    assert_eq!(unregistered, [false, true]);
}

#[test]
fn flink_am_allocates_counting_up() {
    let calls = calls("ipc/flink-amrm");
    let ids: Vec<i32> = calls
        .iter()
        .filter(|(m, _, _)| m == "allocate")
        .map(|(_, _, resp)| pb::AllocateResponseProto::decode(resp.as_slice()).unwrap().response_id())
        .collect();
    assert_eq!(ids.len(), 11);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
}

#[test]
fn node_manager_calls() {
    let start = &calls("ipc/dshell-nm-start")[0];
    assert_eq!(start.0, "startContainers");
    let req = pb::StartContainersRequestProto::decode(start.1.as_slice()).unwrap();
    let one = &req.start_container_request[0];
    let launch = ContainerLaunchContext::from(one.container_launch_context.as_ref().unwrap());
    assert!(launch.tokens.starts_with(b"HDTS"), "the AM hands its token file on");
    assert!(launch.local_resources.contains_key("AppMaster.jar") || !launch.local_resources.is_empty());
    let (_, res) = launch.local_resources.iter().next().unwrap();
    assert_eq!(res.url.scheme, "hdfs");
    assert_eq!(res.url.port, Some(9000));
    assert!(launch.environment.contains_key("CLASSPATH"));
    assert!(!launch.commands.is_empty());
    assert_eq!(one.container_token.as_ref().unwrap().kind, "ContainerToken");
    let resp = pb::StartContainersResponseProto::decode(start.2.as_slice()).unwrap();
    assert_eq!(resp.succeeded_requests.len(), 1);
    assert!(resp.failed_requests.is_empty());
    // The launch context survives our round trip.
    assert_eq!(ContainerLaunchContext::from(&pb::ContainerLaunchContextProto::from(&launch)), launch);

    let status = &calls("ipc/dshell-nm-status")[0];
    assert_eq!(status.0, "getContainerStatuses");
    let resp = pb::GetContainerStatusesResponseProto::decode(status.2.as_slice()).unwrap();
    let s = ContainerStatus::from(&resp.status[0]);
    assert_eq!(s.state, ContainerState::Running);
    assert_eq!(s.exit_status, -1000);
    assert_eq!(s.capability, Some(Resource::new(128, 1)));

    let stop = &calls("ipc/dshell-nm-stop")[0];
    assert_eq!(stop.0, "stopContainers");
    let req = pb::StopContainersRequestProto::decode(stop.1.as_slice()).unwrap();
    let resp = pb::StopContainersResponseProto::decode(stop.2.as_slice()).unwrap();
    assert_eq!(req.container_id, resp.succeeded_requests);
}

#[test]
fn namenode_delegation_token_calls() {
    let get = &calls("kerberos/ipc/nn-get-delegation-token")[0];
    assert_eq!(get.0, "getDelegationToken");
    assert_eq!(pc::GetDelegationTokenRequestProto::decode(get.1.as_slice()).unwrap().renewer, "alice");
    let token = pc::GetDelegationTokenResponseProto::decode(get.2.as_slice()).unwrap().token.unwrap();
    assert_eq!(token.kind, "HDFS_DELEGATION_TOKEN");
    assert_eq!(token.password.len(), 20);

    let renew = &calls("kerberos/ipc/nn-renew-delegation-token")[0];
    let req = pc::RenewDelegationTokenRequestProto::decode(renew.1.as_slice()).unwrap();
    assert_eq!(req.token.kind, "HDFS_DELEGATION_TOKEN");
    let resp = pc::RenewDelegationTokenResponseProto::decode(renew.2.as_slice()).unwrap();
    assert!(resp.new_expiry_time > 1_700_000_000_000);

    let cancel = &calls("kerberos/ipc/nn-cancel-delegation-token")[0];
    assert_eq!(cancel.0, "cancelDelegationToken");
    pc::CancelDelegationTokenRequestProto::decode(cancel.1.as_slice()).unwrap();
    pc::CancelDelegationTokenResponseProto::decode(cancel.2.as_slice()).unwrap();
}
