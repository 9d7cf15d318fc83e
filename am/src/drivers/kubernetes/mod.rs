//! The `kubernetes` driver: every TaskManager is a pod the JobManager creates
//! and deletes itself, as Flink's native Kubernetes integration does (no
//! operator).
//!
//! One task owns the [`book::PodBook`] and talks to the kube-apiserver: it
//! creates and deletes pods, and follows them with a watch (kube-runtime's
//! watcher, which relists after a 410 or a broken stream). The book decides;
//! this module only carries decisions out.

mod book;
pub mod contract;
pub mod jobmanager;
pub mod pod;

use std::time::{Duration, Instant};

use common::ids::ResourceId;
use futures::future::BoxFuture;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, PostParams};
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt;
use kube::Api;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use self::book::{Decision, PodBook};
use self::pod::{observe, PodTemplate};
use crate::resource_manager::driver::{DriverEvent, LogLocation, ResourceManagerDriver, WorkerDetails};
use crate::resource_manager::worker::WorkerSpec;

#[derive(Clone, Debug)]
pub struct KubernetesDriverConfig {
    pub namespace: String,
    pub template: PodTemplate,
    /// The JobManager's attempt, part of every pod name.
    pub attempt: u32,
    /// How long a pod may stay Unschedulable or stuck before start
    /// (ImagePullBackOff...) before it counts as a failed request.
    pub pending_timeout: Duration,
    /// How long `terminate` waits for the pods to be gone.
    pub stop_grace: Duration,
}

enum Command {
    Request(WorkerSpec),
    Cancel(WorkerSpec),
    Release(ResourceId),
    Terminate(oneshot::Sender<()>),
}

/// What the API calls the task spawned answer.
enum Answer {
    Created(String),
    CreateFailed { name: String, already_exists: bool, reason: String },
}

pub struct KubernetesDriver {
    commands: mpsc::UnboundedSender<Command>,
    /// For reading logs, which the book has no part in.
    pods: Api<Pod>,
}

impl KubernetesDriver {
    /// Starts the driver's task on `client` (from KUBECONFIG, the in-cluster
    /// service account, or a test's apiserver).
    pub fn new(
        client: kube::Client,
        config: KubernetesDriverConfig,
        events: mpsc::UnboundedSender<DriverEvent>,
    ) -> Self {
        let (commands, rx) = mpsc::unbounded_channel();
        let pods = Api::namespaced(client.clone(), &config.namespace);
        tokio::spawn(run(client, config, rx, events));
        KubernetesDriver { commands, pods }
    }
}

impl ResourceManagerDriver for KubernetesDriver {
    fn name(&self) -> &'static str {
        "kubernetes"
    }

    fn request_worker(&mut self, spec: &WorkerSpec) {
        let _ = self.commands.send(Command::Request(spec.clone()));
    }

    fn cancel_request(&mut self, spec: &WorkerSpec) {
        let _ = self.commands.send(Command::Cancel(spec.clone()));
    }

    fn release_worker(&mut self, resource_id: &ResourceId) {
        let _ = self.commands.send(Command::Release(resource_id.clone()));
    }

    fn terminate(&mut self) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Terminate(tx));
        Box::pin(async move {
            let _ = rx.await;
        })
    }

    fn worker_details(&self, resource_id: &ResourceId) -> WorkerDetails {
        // The kubelet keeps the log; the apiserver serves it (`pods/log`).
        WorkerDetails { container: Some(resource_id.as_str().to_owned()), log: Some(LogLocation::Driver) }
    }

    fn worker_log(&self, resource_id: &ResourceId, limit: u64) -> BoxFuture<'static, Result<Vec<u8>, String>> {
        let (pods, name) = (self.pods.clone(), resource_id.as_str().to_owned());
        Box::pin(async move {
            // limitBytes counts from the start of the log; the end is what is wanted.
            let params = kube::api::LogParams { tail_lines: Some(100_000), ..Default::default() };
            let text = pods.logs(&name, &params).await.map_err(|e| refused("read the log of", &name, &e))?;
            let bytes = text.into_bytes();
            let start = bytes.len().saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(bytes[start..].to_vec())
        })
    }
}

async fn run(
    client: kube::Client,
    config: KubernetesDriverConfig,
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<DriverEvent>,
) {
    let pods: Api<Pod> = Api::namespaced(client, &config.namespace);
    let mut book = PodBook::new(&config.template.cluster_id, config.attempt, config.pending_timeout);
    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Answer>();
    // The most recent list (no resourceVersion): a list served from the watch
    // cache could miss a pod we just created and take it for gone.
    let watch_config = watcher::Config::default()
        .labels(&pod::selector(&config.template.cluster_id))
        .list_semantic(watcher::ListSemantic::MostRecent);
    let mut watch = watcher(pods.clone(), watch_config).default_backoff().boxed();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut terminating: Option<(oneshot::Sender<()>, tokio::time::Instant)> = None;
    let exec = Executor { pods: pods.clone(), template: config.template.clone(), answers: answers_tx, events };
    loop {
        if let Some((_, deadline)) = &terminating {
            if book.live() == 0 || tokio::time::Instant::now() >= *deadline {
                if book.live() > 0 {
                    warn!(pods = book.live(), "TaskManager pods still not gone after the stop grace period");
                }
                if let Some((done, _)) = terminating.take() {
                    let _ = done.send(());
                }
                return;
            }
        }
        let decisions = tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Request(spec)) => vec![book.request(&spec)],
                Some(Command::Cancel(spec)) => { book.cancel(&spec); Vec::new() }
                Some(Command::Release(id)) => book.release(&id),
                Some(Command::Terminate(done)) => {
                    terminating = Some((done, tokio::time::Instant::now() + config.stop_grace));
                    book.terminate()
                }
                // The ResourceManager is gone without terminating us: the
                // Deployment's garbage collection takes the pods.
                None => return,
            },
            Some(answer) = answers.recv() => match answer {
                Answer::Created(name) => book.created(&name),
                Answer::CreateFailed { name, already_exists, reason } => book.create_failed(&name, already_exists, reason),
            },
            event = watch.next() => match event {
                Some(Ok(watcher::Event::Apply(p))) => with_name(&p, |n| book.observed(Instant::now(), n, observe(&p))),
                Some(Ok(watcher::Event::Delete(p))) => with_name(&p, |n| book.deleted(n)),
                Some(Ok(watcher::Event::Init)) => { book.relist_started(); Vec::new() }
                Some(Ok(watcher::Event::InitApply(p))) => with_name(&p, |n| book.listed(Instant::now(), n, observe(&p))),
                Some(Ok(watcher::Event::InitDone)) => book.relist_done(),
                Some(Err(e)) => {
                    // The watcher backs off and relists by itself.
                    warn!(error = %e, "watching TaskManager pods failed; relisting");
                    Vec::new()
                }
                None => Vec::new(),
            },
            _ = tick.tick() => book.tick(Instant::now()),
            _ = tokio::time::sleep(Duration::from_millis(100)), if terminating.is_some() => Vec::new(),
        };
        for d in decisions {
            exec.carry_out(&book, d);
        }
    }
}

fn with_name(pod: &Pod, f: impl FnOnce(&str) -> Vec<Decision>) -> Vec<Decision> {
    pod.metadata.name.as_deref().map(f).unwrap_or_default()
}

struct Executor {
    pods: Api<Pod>,
    template: PodTemplate,
    answers: mpsc::UnboundedSender<Answer>,
    events: mpsc::UnboundedSender<DriverEvent>,
}

impl Executor {
    fn carry_out(&self, book: &PodBook, decision: Decision) {
        match decision {
            Decision::Create { name, spec } => {
                let key = spec_key(&spec);
                let manifest = pod::taskmanager_pod(&self.template, &name, &spec, &key);
                let (pods, answers) = (self.pods.clone(), self.answers.clone());
                info!(pod = %name, total = %spec.total, slots = spec.num_slots, "creating TaskManager pod");
                tokio::spawn(async move {
                    let answer = match pods.create(&PostParams::default(), &manifest).await {
                        Ok(_) => Answer::Created(name),
                        Err(e) => {
                            let already_exists =
                                matches!(&e, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists");
                            Answer::CreateFailed { reason: refused("create", &name, &e), name, already_exists }
                        }
                    };
                    let _ = answers.send(answer);
                });
            }
            Decision::Delete { name } => {
                let pods = self.pods.clone();
                debug!(pod = %name, spec = ?book.spec_of(&name).map(|s| s.total.to_string()), "deleting TaskManager pod");
                tokio::spawn(async move {
                    match pods.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        // Already gone: the watch says so too.
                        Err(kube::Error::Api(s)) if s.code == 404 => {}
                        Err(e) => warn!(pod = %name, "{}", refused("delete", &name, &e)),
                    }
                });
            }
            Decision::Emit(event) => {
                let _ = self.events.send(event);
            }
        }
    }
}

/// A label value naming the shape (`1500m-768Mi-1`), for `kubectl get pods -l`.
fn spec_key(spec: &WorkerSpec) -> String {
    format!(
        "{}-{}-{}",
        pod::cpu_quantity(spec.total.cpu_millis).0,
        pod::memory_quantity(spec.total.total_memory_bytes()).0,
        spec.num_slots
    )
}

/// The apiserver's refusal in words a user can act on: its own message
/// (which names the verb, resource and namespace, or each invalid field),
/// and the fix for the kinds that have one.
fn refused(verb: &str, name: &str, e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => {
            let fix = match s.code {
                403 => {
                    "; the JobManager's service account lacks this permission: apply deploy/kubernetes/rbac.yaml \
                     in the namespace and submit with --service-account yarn-flink (docs/kubernetes.md, RBAC)"
                }
                422 => "; the pod the driver built is invalid: check --image, the cluster id and the vertex resources",
                _ => "",
            };
            format!("the kube-apiserver refused to {verb} pod {name}: {} {}: {}{fix}", s.code, s.reason, s.message)
        }
        other => format!("cannot {verb} pod {name}: {other} (is the kube-apiserver reachable?)"),
    }
}
