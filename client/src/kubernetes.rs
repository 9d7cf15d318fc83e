//! `submit --target kubernetes`, `kill --target kubernetes`, and the
//! JobManager pod's entry point. The objects and their names are in
//! `am::drivers::kubernetes::contract`; the cluster is found as kube finds it
//! (KUBECONFIG, then the in-cluster service account).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use am::drivers::kubernetes::contract::{self, JobStatus, KubeContract, CONTRACT_VERSION};
use am::drivers::kubernetes::pod::{self, SECRET_KEY, SECRET_MOUNT_DIR};
use am::drivers::yarn::contract::Mode;
use anyhow::{bail, Context, Result};
use common::resources::parse_memory;
use common::rpc::AppSecret;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector, Pod,
    PodSpec, PodTemplateSpec, ResourceRequirements, Secret, SecretVolumeSource, Service, ServicePort, ServiceSpec,
    Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::ByteString;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams, PropagationPolicy};
use kube::Api;

use crate::cli::SubmitArgs;

/// The JobManager pod's entry point.
pub async fn jobmanager() -> Result<ExitCode> {
    use am::drivers::kubernetes::jobmanager::{run, JobManagerEnv};
    let env = JobManagerEnv::from_env(|k| std::env::var(k).ok())?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let on_term = stop.clone();
    tokio::spawn(async move {
        term.recv().await;
        on_term.cancel();
    });
    run(env, stop).await?;
    Ok(ExitCode::SUCCESS)
}

async fn client() -> Result<kube::Client> {
    kube::Client::try_default().await.context(
        "cannot reach a Kubernetes cluster: set KUBECONFIG (or ~/.kube/config) to one, or run where a \
         service account is mounted",
    )
}

/// An apiserver refusal in a user's words: its message, and the fix.
fn refused(what: &str, e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(s) => {
            let fix = match s.code {
                403 => "; your Kubernetes user needs create/get/delete on deployments, services, secrets and configmaps in this namespace",
                409 => "; pick another --cluster-id, or remove that cluster with `yarn-flink kill --target kubernetes <id>`",
                422 => "; check --image, --cluster-id and the resources",
                _ => "",
            };
            anyhow::anyhow!("the kube-apiserver refused to {what}: {} {}: {}{fix}", s.code, s.reason, s.message)
        }
        other => anyhow::anyhow!("cannot {what}: {other}; is the kube-apiserver reachable?"),
    }
}

/// Lowercase letters, digits and `-`, starting with a letter: it is part of
/// every object's name and label.
fn check_cluster_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 40
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        bail!(
            "--cluster-id {id:?} cannot name Kubernetes objects: use up to 40 lowercase letters, digits and '-', \
             starting with a letter"
        );
    }
    Ok(())
}

pub async fn submit(args: SubmitArgs) -> Result<ExitCode> {
    let k = &args.kubernetes;
    let mode = if args.session { Mode::Session } else { Mode::Application };
    // The bundle: a path in the image, a URL on HDFS, or this machine's
    // files packed into the bundle ConfigMap (checked by their SHA-256).
    let mut upload: Option<Vec<u8>> = None;
    let bundle = match (&args.bundle, mode) {
        (Some(b), Mode::Application) => {
            let text = b.display().to_string();
            match text.strip_prefix("local://") {
                Some(path) if path.starts_with('/') => Some(path.to_owned()),
                Some(_) => bail!(
                    "a local:// bundle is an absolute path inside the image, as `local:///opt/jobs/wc` (got {text:?})"
                ),
                None if common::hdfs::is_hdfs(&text) => Some(text),
                None => {
                    let path = std::path::Path::new(text.strip_prefix("file://").unwrap_or(&text));
                    check_bundle(path, &args.cluster)?;
                    let bytes = crate::rest_client::pack_bundle(path)?;
                    if bytes.len() > contract::MAX_UPLOADED_BUNDLE {
                        bail!(
                            "the bundle {} is {} KiB packed, more than the {} KiB a ConfigMap can carry to the \
                             JobManager: put it in the image (local:///path) or on HDFS (hdfs://...); see docs/kubernetes.md",
                            path.display(),
                            bytes.len() / 1024,
                            contract::MAX_UPLOADED_BUNDLE / 1024
                        );
                    }
                    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                    upload = Some(bytes);
                    Some(format!("{}{sha}", contract::UPLOADED_PREFIX))
                }
            }
        }
        _ => None,
    };
    if let Some(p) = k.host_paths.iter().find(|p| !p.starts_with('/')) {
        bail!("--mount-host-path {p:?}: give an absolute path, mounted at the same path in every pod");
    }
    let cluster = crate::commands::cluster_shape(&args.cluster)?;
    let id = k.cluster_id.clone().unwrap_or_else(|| format!("c{}", &uuid::Uuid::new_v4().simple().to_string()[..7]));
    check_cluster_id(&id)?;
    let jm_memory = parse_memory(&args.am_memory).map_err(|e| anyhow::anyhow!("--am-memory: {e}"))?;
    let client = client().await?;
    let namespace = k.namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let mut task_manager_env = BTreeMap::new();
    if let Ok(v) = std::env::var("RUST_LOG") {
        task_manager_env.insert("RUST_LOG".to_owned(), v);
    }
    let kube_contract = KubeContract {
        version: CONTRACT_VERSION,
        mode,
        bundle,
        cluster,
        image: k.image.clone(),
        image_pull_policy: k.image_pull_policy.clone(),
        service_account: k.service_account.clone(),
        gpu_resource: k.gpu_resource.clone(),
        pending_timeout: k.pending_timeout,
        linger: Duration::from_secs(300),
        rpc_port: k.rpc_port,
        rest_port: k.rest_port,
        task_manager_env: task_manager_env.clone(),
        host_paths: k.host_paths.clone(),
    };
    let secret = AppSecret::generate();
    let started = Instant::now();

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = jobmanager_deployment(&id, k, &args, jm_memory, &task_manager_env);
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .map_err(|e| refused(&format!("create the Deployment {}", contract::deployment_name(&id)), e))?;
    let owner = vec![pod::owned_by_deployment(
        &contract::deployment_name(&id),
        created.metadata.uid.as_deref().unwrap_or_default(),
    )];
    let meta = |name: String, component: &str| ObjectMeta {
        name: Some(name),
        labels: Some(contract::labels(&id, component)),
        owner_references: Some(owner.clone()),
        ..Default::default()
    };
    let rest_of_it = async {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        let s = Secret {
            metadata: meta(contract::secret_name(&id), "secret"),
            data: Some(BTreeMap::from([(SECRET_KEY.to_owned(), ByteString(secret.to_hex().into_bytes()))])),
            ..Default::default()
        };
        secrets.create(&PostParams::default(), &s).await.map_err(|e| refused("create the Secret", e))?;
        let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        // Before the contract: the JobManager cannot start without that, so
        // the bundle is there when it looks.
        if let Some(bytes) = upload.take() {
            let b = ConfigMap {
                metadata: meta(contract::bundle_name(&id), "bundle"),
                binary_data: Some(BTreeMap::from([(contract::BUNDLE_KEY.to_owned(), ByteString(bytes))])),
                ..Default::default()
            };
            configs.create(&PostParams::default(), &b).await.map_err(|e| refused("create the bundle ConfigMap", e))?;
        }
        let c = ConfigMap {
            metadata: meta(contract::config_name(&id), "config"),
            data: Some(BTreeMap::from([(contract::CONTRACT_KEY.to_owned(), serde_json::to_string(&kube_contract)?)])),
            ..Default::default()
        };
        configs.create(&PostParams::default(), &c).await.map_err(|e| refused("create the ConfigMap", e))?;
        let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
        let svc = jobmanager_service(&id, meta(contract::service_name(&id), "jobmanager"), k);
        services.create(&PostParams::default(), &svc).await.map_err(|e| refused("create the Service", e))?;
        anyhow::Ok(())
    };
    if let Err(e) = rest_of_it.await {
        // Nothing half-made stays behind.
        let _ = delete_cluster(&deployments, &id).await;
        return Err(e);
    }
    println!("{id}");
    eprintln!("Cluster {id} in namespace {namespace}: JobManager Deployment {}", contract::deployment_name(&id));
    if args.detached && mode == Mode::Application {
        eprintln!("Detached: follow with `yarn-flink status --target kubernetes {id}`; stop with `yarn-flink kill --target kubernetes {id}`");
        return Ok(ExitCode::SUCCESS);
    }
    follow(&client, &namespace, &id, mode, &secret, &args, started).await
}

/// Reads the status ConfigMap until the job ends (application) or the
/// session is up, printing each state once; watches the JobManager pod for a
/// start that cannot happen.
async fn follow(
    client: &kube::Client,
    namespace: &str,
    id: &str,
    mode: Mode,
    secret: &AppSecret,
    args: &SubmitArgs,
    started: Instant,
) -> Result<ExitCode> {
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let status_name = contract::status_name(id);
    let selector = format!("{}={id},{}=jobmanager", pod::LABEL_CLUSTER, pod::LABEL_COMPONENT);
    let mut last = String::new();
    let mut stuck_since: Option<(String, Instant)> = None;
    loop {
        let read = configs.get(&status_name).await;
        if let Ok(cm) = &read {
            let status = JobStatus::from_data(&cm.data.clone().unwrap_or_default());
            if status.state != last {
                eprintln!(
                    "{:>6.1}s  {}{}",
                    started.elapsed().as_secs_f64(),
                    status.state,
                    status.job_id.as_deref().map(|j| format!(" (job {j})")).unwrap_or_default()
                );
                last = status.state.clone();
            }
            if mode == Mode::Session && status.state == "SESSION" {
                let rest = status.rest.clone().unwrap_or_default();
                let dir = crate::rest_client::session_dir(&rest);
                std::fs::create_dir_all(&dir)?;
                secret.write_to(&dir.join("secret"))?;
                println!("{rest}");
                eprintln!("Session {id} up; submit with: yarn-flink run -m {rest} <bundle>");
                eprintln!("Stop it with: yarn-flink kill --target kubernetes {id}");
                return Ok(ExitCode::SUCCESS);
            }
            if status.is_terminal() {
                // Tell the JobManager the result is read, then take the cluster down.
                let mut data = cm.data.clone().unwrap_or_default();
                data.insert("collected".into(), "true".into());
                let mut collected = ConfigMap { data: Some(data), ..Default::default() };
                collected.metadata.name = Some(status_name.clone());
                let _ = configs.replace(&status_name, &PostParams::default(), &collected).await;
                let _ = delete_cluster(&deployments, id).await;
                if let Some(e) = &status.error {
                    eprintln!("error: {e}");
                }
                return Ok(if status.state == "FINISHED" { ExitCode::SUCCESS } else { ExitCode::from(1) });
            }
        }
        // A JobManager pod that cannot start says why in its status.
        if let Ok(list) = pods.list(&ListParams::default().labels(&selector)).await {
            let why = list.items.iter().find_map(|p| match pod::observe(p) {
                pod::Observed::Pending { waiting } | pod::Observed::Bound { waiting } => waiting,
                pod::Observed::Ended(why) => Some(why),
                pod::Observed::Deleting => None,
            });
            match (why, &mut stuck_since) {
                (Some(w), Some((_, since))) if since.elapsed() >= args.kubernetes.pending_timeout => {
                    let _ = delete_cluster(&deployments, id).await;
                    bail!(
                        "the JobManager pod of cluster {id} did not start within {:.0} s: {w}; the cluster was removed",
                        args.kubernetes.pending_timeout.as_secs_f64()
                    );
                }
                (Some(w), None) => {
                    eprintln!("waiting for the JobManager pod: {w}");
                    stuck_since = Some((w, Instant::now()));
                }
                (None, _) => stuck_since = None,
                _ => {}
            }
        }
        // The status ConfigMap goes with the Deployment (garbage-collected): only
        // while it cannot be read is the Deployment worth a call of its own.
        if read.is_err() && deployments.get_opt(&contract::deployment_name(id)).await.ok().flatten().is_none() {
            bail!("the cluster {id} is gone (its Deployment was deleted) before its job ended");
        }
        tokio::time::sleep(args.poll_interval).await;
    }
}

async fn delete_cluster(deployments: &Api<Deployment>, id: &str) -> Result<(), kube::Error> {
    let background = DeleteParams { propagation_policy: Some(PropagationPolicy::Background), ..Default::default() };
    deployments.delete(&contract::deployment_name(id), &background).await.map(|_| ())
}

pub async fn kill(namespace: Option<&str>, id: &str) -> Result<ExitCode> {
    check_cluster_id(id)?;
    let client = client().await?;
    let namespace = namespace.map_or_else(|| client.default_namespace().to_owned(), str::to_owned);
    let deployments: Api<Deployment> = Api::namespaced(client, &namespace);
    match delete_cluster(&deployments, id).await {
        Ok(()) => {
            println!("cluster {id} in namespace {namespace} is being deleted (its pods, Secret, ConfigMaps and Service with it)");
            Ok(ExitCode::SUCCESS)
        }
        Err(kube::Error::Api(s)) if s.code == 404 => {
            bail!("no cluster {id} in namespace {namespace}: `kubectl get deployments -l app=yarn-flink` lists them")
        }
        Err(e) => Err(refused(&format!("delete the Deployment of cluster {id}"), e)),
    }
}

/// Loads a bundle from this machine's disk and refuses what cannot work in
/// pods, before anything is created.
fn check_bundle(path: &std::path::Path, cluster: &crate::cli::ClusterArgs) -> Result<()> {
    let limits = crate::commands::cluster_shape(cluster)?.bundle_limits;
    let tmp = tempfile::Builder::new().prefix("yarn-flink-check-").tempdir()?;
    let loaded = common::jobspec::Bundle::load(path, tmp.path().join("b"), &limits)?;
    if let Some((vertex, sink)) = loaded.spec.relative_sinks().first() {
        bail!(
            "{}: the sink of vertex {vertex:?} writes to the relative path {sink:?}; on Kubernetes that lands in the \
             TaskManager pod's copy of the bundle, which goes with the pod. Write to HDFS instead, e.g. \
             path = \"hdfs://namenode:8020/user/<you>/{sink}\" (or to a volume every pod mounts)",
            loaded.spec_path.display()
        );
    }
    Ok(())
}

/// `list --target kubernetes`: one line per cluster in the namespace (two
/// API calls: the Deployments and the status ConfigMaps, by label).
pub async fn list(namespace: Option<&str>) -> Result<ExitCode> {
    let client = client().await?;
    let namespace = namespace.map_or_else(|| client.default_namespace().to_owned(), str::to_owned);
    let app = ListParams::default().labels(&format!("{}=yarn-flink", pod::LABEL_APP));
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let configs: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let ds = deployments.list(&app).await.map_err(|e| refused(&format!("list deployments in {namespace}"), e))?;
    let cms = configs.list(&app).await.map_err(|e| refused(&format!("list configmaps in {namespace}"), e))?;
    let mut statuses = BTreeMap::new();
    for cm in cms.items {
        if let Some(id) = cm.metadata.name.as_deref().and_then(|n| n.strip_prefix("yf-")?.strip_suffix("-status")) {
            statuses.insert(id.to_owned(), JobStatus::from_data(&cm.data.unwrap_or_default()));
        }
    }
    println!("{:<12} {:<10} {:<34} {:<22} CREATED", "CLUSTER", "STATE", "JOB", "REST");
    for d in ds.items {
        let Some(id) = d.metadata.labels.as_ref().and_then(|l| l.get(pod::LABEL_CLUSTER)).cloned() else { continue };
        let st = statuses.remove(&id).unwrap_or_default();
        let state = if st.state.is_empty() { "STARTING" } else { st.state.as_str() };
        let created = d.metadata.creation_timestamp.map(|t| t.0.to_rfc3339()).unwrap_or_default();
        println!(
            "{id:<12} {state:<10} {:<34} {:<22} {created}",
            st.job_id.as_deref().unwrap_or("-"),
            st.rest.as_deref().unwrap_or("-")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `status --target kubernetes <id>`: the job's state and every pod of the
/// cluster with what it is doing (or waiting for).
pub async fn status(namespace: Option<&str>, id: &str) -> Result<ExitCode> {
    check_cluster_id(id)?;
    let client = client().await?;
    let namespace = namespace.map_or_else(|| client.default_namespace().to_owned(), str::to_owned);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let configs: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let name = contract::deployment_name(id);
    if deployments.get_opt(&name).await.map_err(|e| refused(&format!("get deployment {name}"), e))?.is_none() {
        bail!("no cluster {id} in namespace {namespace}: `yarn-flink list --target kubernetes` lists them");
    }
    let st = match configs.get_opt(&contract::status_name(id)).await {
        Ok(Some(cm)) => JobStatus::from_data(&cm.data.unwrap_or_default()),
        _ => JobStatus::default(),
    };
    println!("cluster:   {id} (namespace {namespace}, Deployment {name})");
    println!("state:     {}", if st.state.is_empty() { "STARTING" } else { &st.state });
    if let Some(j) = &st.job_id {
        println!("job:       {j}");
    }
    if let Some(r) = &st.rest {
        println!("rest:      {r}");
    }
    if let Some(e) = &st.error {
        println!("error:     {e}");
    }
    let selector = format!("{}={id}", pod::LABEL_CLUSTER);
    let list = pods.list(&ListParams::default().labels(&selector)).await.map_err(|e| refused("list pods", e))?;
    println!("pods:");
    for p in &list.items {
        let component =
            p.metadata.labels.as_ref().and_then(|l| l.get(pod::LABEL_COMPONENT)).cloned().unwrap_or_default();
        let phase = p.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into());
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "-".into());
        let detail = match pod::observe(p) {
            pod::Observed::Pending { waiting: Some(w) } | pod::Observed::Bound { waiting: Some(w) } => w,
            pod::Observed::Ended(why) => why,
            pod::Observed::Deleting => "terminating".into(),
            _ => String::new(),
        };
        println!("  {:<44} {component:<12} {phase:<10} {node:<16} {detail}", p.metadata.name.as_deref().unwrap_or("?"));
    }
    Ok(ExitCode::SUCCESS)
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), value_from: None }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), api_version: None }),
            ..Default::default()
        }),
    }
}

fn jobmanager_deployment(
    id: &str,
    k: &crate::cli::KubernetesArgs,
    args: &SubmitArgs,
    memory: u64,
    extra_env: &BTreeMap<String, String>,
) -> Deployment {
    let labels = contract::labels(id, "jobmanager");
    let (host_volumes, host_mounts) = pod::host_path_volumes(&k.host_paths);
    let quantities = BTreeMap::from([
        ("cpu".to_owned(), pod::cpu_quantity(u64::from(args.am_vcores.max(1)) * 1000)),
        ("memory".to_owned(), pod::memory_quantity(memory)),
    ]);
    let mut env_vars = vec![
        env(contract::ENV_CLUSTER_ID, id),
        field_env(contract::ENV_NAMESPACE, "metadata.namespace"),
        field_env(contract::ENV_POD_IP, "status.podIP"),
        env(contract::ENV_CONTRACT, &format!("{}/{}", contract::CONFIG_MOUNT_DIR, contract::CONTRACT_KEY)),
        env(common::launch::ENV_SECRET_FILE, &format!("{SECRET_MOUNT_DIR}/{SECRET_KEY}")),
    ];
    env_vars.extend(extra_env.iter().map(|(k, v)| env(k, v)));
    Deployment {
        metadata: ObjectMeta {
            name: Some(contract::deployment_name(id)),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector { match_labels: Some(labels.clone()), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels), ..Default::default() }),
                spec: Some(PodSpec {
                    service_account_name: k.service_account.clone(),
                    containers: vec![Container {
                        name: "jobmanager".into(),
                        image: Some(k.image.clone()),
                        image_pull_policy: k.image_pull_policy.clone(),
                        args: Some(vec!["kubernetes-jobmanager".into()]),
                        // A JobManager that cannot start says why in its pod status (CrashLoopBackOff's lastState).
                        termination_message_policy: Some("FallbackToLogsOnError".into()),
                        env: Some(env_vars),
                        // 0 (any free port) is for tests, where pods share one loopback.
                        ports: Some(
                            [("rpc", k.rpc_port), ("rest", k.rest_port)]
                                .into_iter()
                                .filter(|(_, p)| *p != 0)
                                .map(|(name, p)| ContainerPort {
                                    name: Some(name.into()),
                                    container_port: i32::from(p),
                                    ..Default::default()
                                })
                                .collect(),
                        ),
                        resources: Some(ResourceRequirements {
                            requests: Some(quantities.clone()),
                            limits: Some(quantities),
                            ..Default::default()
                        }),
                        volume_mounts: Some(
                            vec![
                                VolumeMount {
                                    name: "secret".into(),
                                    mount_path: SECRET_MOUNT_DIR.into(),
                                    read_only: Some(true),
                                    ..Default::default()
                                },
                                VolumeMount {
                                    name: "config".into(),
                                    mount_path: contract::CONFIG_MOUNT_DIR.into(),
                                    read_only: Some(true),
                                    ..Default::default()
                                },
                            ]
                            .into_iter()
                            .chain(host_mounts)
                            .collect(),
                        ),
                        ..Default::default()
                    }],
                    volumes: Some(
                        vec![
                            Volume {
                                name: "secret".into(),
                                secret: Some(SecretVolumeSource {
                                    secret_name: Some(contract::secret_name(id)),
                                    default_mode: Some(0o400),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                            Volume {
                                name: "config".into(),
                                config_map: Some(ConfigMapVolumeSource {
                                    name: contract::config_name(id),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                        ]
                        .into_iter()
                        .chain(host_volumes)
                        .collect(),
                    ),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

fn jobmanager_service(id: &str, metadata: ObjectMeta, k: &crate::cli::KubernetesArgs) -> Service {
    let port = |name: &str, p: u16, default: u16| ServicePort {
        name: Some(name.into()),
        port: i32::from(if p == 0 { default } else { p }),
        target_port: Some(IntOrString::String(name.into())),
        ..Default::default()
    };
    Service {
        metadata,
        spec: Some(ServiceSpec {
            selector: Some(contract::labels(id, "jobmanager")),
            ports: Some(vec![
                port("rpc", k.rpc_port, contract::DEFAULT_RPC_PORT),
                port("rest", k.rest_port, contract::DEFAULT_REST_PORT),
            ]),
            ..Default::default()
        }),
        status: None,
    }
}
