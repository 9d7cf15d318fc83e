//! A TaskManager's own `/metrics` page (Prometheus text, `prometheus-client`):
//! its slots and resources, and each running subtask's records and bytes in
//! and out and back-pressure, under Flink's names and labels, so the same
//! queries read it and the AM's aggregate. The page is rendered by the
//! TaskExecutor from its own state, asked through its mailbox.
//!
//! Reading it needs the application secret or the web UI's read-only token,
//! as the AM's REST API does; the listener has the same bounds.

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use common::rpc::AppSecret;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use super::Msg;

/// What a scraper is told the body is (as the AM's page).
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Task {
    job_id: String,
    task_name: String,
    subtask_index: u32,
}

/// One running subtask, as the page shows it.
pub(crate) struct TaskSample {
    pub job_id: String,
    pub task_name: String,
    pub subtask_index: u32,
    pub io: common::protocol::TaskIo,
    /// Back-pressured milliseconds per second since the previous scrape
    /// (or since the subtask started).
    pub backpressured_ms_per_second: u64,
}

/// The TaskManager's state at a scrape.
pub(crate) struct Sample {
    pub slots_total: u64,
    pub slots_allocated: u64,
    pub cpu_millis_total: u64,
    pub cpu_millis_free: u64,
    pub memory_bytes_total: u64,
    pub memory_bytes_free: u64,
    pub tasks: Vec<TaskSample>,
}

/// Where a subtask's back-pressure rate was last read from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RateMark {
    pub at: Instant,
    pub backpressured_ms: u64,
}

impl RateMark {
    pub fn new() -> Self {
        RateMark { at: Instant::now(), backpressured_ms: 0 }
    }

    /// Milliseconds per second since the mark, and the new mark.
    pub fn advance(self, backpressured_ms: u64) -> (u64, RateMark) {
        let now = Instant::now();
        let elapsed_ms = now.duration_since(self.at).as_millis() as u64;
        let waited = backpressured_ms.saturating_sub(self.backpressured_ms);
        let rate = waited.saturating_mul(1000).checked_div(elapsed_ms).unwrap_or(0).min(1000);
        (rate, RateMark { at: now, backpressured_ms })
    }
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge<u64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

pub(crate) fn render(s: &Sample) -> String {
    let mut r = Registry::default();
    gauge(
        &mut r,
        "yarn_flink_taskmanager_slots_total",
        "Slots this TaskManager offers (its default slots, or more when fine-grained ones are allocated)",
        s.slots_total,
    );
    gauge(&mut r, "yarn_flink_taskmanager_slots_allocated", "Slots allocated to jobs", s.slots_allocated);
    gauge(
        &mut r,
        "yarn_flink_taskmanager_cpu_millis_total",
        "CPU of this TaskManager, in thousandths of a core",
        s.cpu_millis_total,
    );
    gauge(&mut r, "yarn_flink_taskmanager_cpu_millis_free", "CPU not allocated to a slot", s.cpu_millis_free);
    gauge(&mut r, "yarn_flink_taskmanager_memory_bytes_total", "Memory of this TaskManager", s.memory_bytes_total);
    gauge(&mut r, "yarn_flink_taskmanager_memory_bytes_free", "Memory not allocated to a slot", s.memory_bytes_free);
    gauge(&mut r, "flink_taskmanager_numRunningTasks", "Subtasks running here", s.tasks.len() as u64);
    type Read = fn(&TaskSample) -> u64;
    let families: [(&str, &str, Read); 5] = [
        ("flink_taskmanager_job_task_numRecordsIn", "Records read by each subtask", |t| t.io.records_in),
        ("flink_taskmanager_job_task_numRecordsOut", "Records written by each subtask", |t| t.io.records_out),
        ("flink_taskmanager_job_task_numBytesIn", "Bytes read by each subtask", |t| t.io.bytes_in),
        ("flink_taskmanager_job_task_numBytesOut", "Bytes written by each subtask", |t| t.io.bytes_out),
        (
            "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
            "Milliseconds per second each subtask's output waited for credits",
            |t| t.backpressured_ms_per_second,
        ),
    ];
    for (name, help, read) in families {
        let family: Family<Task, Gauge<u64, AtomicU64>> = Family::default();
        for t in &s.tasks {
            let labels =
                Task { job_id: t.job_id.clone(), task_name: t.task_name.clone(), subtask_index: t.subtask_index };
            family.get_or_create(&labels).set(read(t));
        }
        r.register(name, help, family);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

/// Serves `GET /metrics` until `stop`; the TaskExecutor renders each page.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    secret: AppSecret,
    limits: common::rpc::ListenerLimits,
    mailbox: mpsc::UnboundedSender<Msg>,
    stop: tokio_util::sync::CancellationToken,
) {
    let handle = move |req: hyper::Request<hyper::body::Incoming>, _peer: Option<IpAddr>| {
        let (secret, mailbox) = (secret.clone(), mailbox.clone());
        async move { answer(&req, &secret, &mailbox).await }
    };
    common::rpc::serve_http1(listener, limits, stop, handle).await;
}

fn reply(status: u16, content_type: &str, body: String) -> hyper::Response<String> {
    let mut r = hyper::Response::new(body);
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn answer<B>(
    req: &hyper::Request<B>,
    secret: &AppSecret,
    mailbox: &mpsc::UnboundedSender<Msg>,
) -> hyper::Response<String> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.uri().path() != "/metrics" {
        return reply(404, TEXT, "this TaskManager serves only /metrics\n".into());
    }
    if !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD) {
        return reply(405, TEXT, "/metrics is read with GET\n".into());
    }
    let presented = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !secret.matches(presented.as_bytes()) && !secret.matches_read_only(presented.as_bytes()) {
        return reply(
            401,
            TEXT,
            "missing or wrong token: send Authorization: Bearer <the application secret or the web UI's read-only token>\n"
                .into(),
        );
    }
    let (tx, rx) = oneshot::channel();
    if mailbox.send(Msg::Metrics(tx)).is_err() {
        return reply(503, TEXT, "the TaskExecutor is stopping\n".into());
    }
    match rx.await {
        Ok(page) => reply(200, CONTENT_TYPE, page),
        Err(_) => reply(503, TEXT, "the TaskExecutor is stopping\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_subtasks_as_flink_does_and_back_pressure_is_a_rate() {
        let (rate, mark) =
            RateMark { at: Instant::now() - std::time::Duration::from_secs(2), backpressured_ms: 100 }.advance(1100);
        assert!((490..=500).contains(&rate), "1000 ms waited over 2 s: {rate}");
        assert_eq!(mark.backpressured_ms, 1100);
        let io = common::protocol::TaskIo {
            records_in: 3,
            bytes_in: 30,
            records_out: 7,
            bytes_out: 70,
            backpressured_ms: 1100,
        };
        let page = render(&Sample {
            slots_total: 2,
            slots_allocated: 1,
            cpu_millis_total: 2000,
            cpu_millis_free: 1000,
            memory_bytes_total: 1 << 30,
            memory_bytes_free: 1 << 29,
            tasks: vec![TaskSample {
                job_id: "j1".into(),
                task_name: "tokenize".into(),
                subtask_index: 1,
                io,
                backpressured_ms_per_second: rate,
            }],
        });
        assert!(
            page.contains(
                r#"flink_taskmanager_job_task_numRecordsOut{job_id="j1",task_name="tokenize",subtask_index="1"} 7"#
            ),
            "{page}"
        );
        assert!(page.contains("yarn_flink_taskmanager_slots_allocated 1"), "{page}");
        assert!(page.ends_with("# EOF\n"), "{page}");
    }
}
