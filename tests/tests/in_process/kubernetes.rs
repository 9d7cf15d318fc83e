//! The Kubernetes driver on the kube-apiserver and kubelet doubles: one node,
//! a Secret holding the application secret, and a stand-in TaskManager image
//! that runs only if the pod gave it the secret file and its pod IP.

use std::collections::HashMap;
use std::time::Duration;

use am::drivers::kubernetes::pod::{PodTemplate, SECRET_KEY};
use am::drivers::kubernetes::{KubernetesDriver, KubernetesDriverConfig};
use am::resource_manager::driver::DriverEvent;
use common::ids::ResourceId;
use integration_tests::kube_double::kubelet::{Kubelet, KubeletConfig};
use integration_tests::kube_double::{KubeDouble, Node};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::PostParams;
use tokio::sync::mpsc;

pub const NAMESPACE: &str = "default";
pub const IMAGE: &str = "yarn-flink:test";

pub struct Setup {
    pub api: KubeDouble,
    pub kubelet: Kubelet,
    pub driver: KubernetesDriver,
    pub events: mpsc::UnboundedReceiver<DriverEvent>,
    pub dir: tempfile::TempDir,
    /// The driver's pod template, to make pods as it (or an earlier attempt) would.
    pub template: PodTemplate,
}

/// A cluster of one node of `cpu_millis` and `memory_bytes`; pods stuck for
/// `pending_timeout` are given up.
pub async fn setup(cpu_millis: u64, memory_bytes: u64, pending_timeout: Duration) -> Setup {
    setup_with(cpu_millis, memory_bytes, pending_timeout, |_| {}).await
}

/// [`setup`] with the driver's configuration changed by `tweak`.
pub async fn setup_with(
    cpu_millis: u64,
    memory_bytes: u64,
    pending_timeout: Duration,
    tweak: impl FnOnce(&mut KubernetesDriverConfig),
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("taskmanager.sh");
    integration_tests::files::write_executable(
        &script,
        "#!/bin/sh\n[ -r \"$YF_SECRET_FILE\" ] && [ -n \"$YF_TM_HOST\" ] || { echo no secret or host >&2; exit 3; }\necho \"taskmanager on $YF_TM_HOST\" >&2\nexec sleep 600\n",
    );
    let api = KubeDouble::start(vec![Node { name: "node-1".into(), cpu_millis, memory_bytes }]).await;
    let kubelet = Kubelet::start(
        api.shared.clone(),
        KubeletConfig {
            node: "node-1".into(),
            root: dir.path().join("kubelet"),
            images: HashMap::from([(IMAGE.to_owned(), script)]),
            kubeconfig: None,
        },
    );
    let client = api.client();
    let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), NAMESPACE);
    let secret = Secret {
        metadata: kube::api::ObjectMeta { name: Some("yf-test-secret".into()), ..Default::default() },
        data: Some([(SECRET_KEY.to_owned(), ByteString(b"00".to_vec()))].into()),
        ..Default::default()
    };
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    let config = KubernetesDriverConfig {
        namespace: NAMESPACE.into(),
        template: PodTemplate {
            cluster_id: "test".into(),
            image: IMAGE.into(),
            image_pull_policy: None,
            service_account: None,
            owner: None,
            secret_name: "yf-test-secret".into(),
            rm_address: "127.0.0.1:1".into(),
            gpu_resource: "nvidia.com/gpu".into(),
            env: Vec::new(),
            host_paths: Vec::new(),
        },
        attempt: 1,
        pending_timeout,
        stop_grace: Duration::from_secs(10),
    };
    let mut config = config;
    tweak(&mut config);
    let (tx, events) = mpsc::unbounded_channel();
    let template = config.template.clone();
    let driver = KubernetesDriver::new(client, config, tx);
    Setup { api, kubelet, driver, events, dir, template }
}

pub async fn next(events: &mut mpsc::UnboundedReceiver<DriverEvent>) -> DriverEvent {
    tokio::time::timeout(Duration::from_secs(15), events.recv()).await.expect("an event in time").unwrap()
}

impl Setup {
    /// The pod runs and its process is alive.
    pub fn running(&self, id: &ResourceId) -> bool {
        let phase = self.api.pod(NAMESPACE, id.as_str()).and_then(|p| p.status?.phase);
        let alive = self.kubelet.pid(NAMESPACE, id.as_str()).is_some_and(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        });
        phase.as_deref() == Some("Running") && alive
    }
}
