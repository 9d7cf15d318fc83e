//! `/metrics`: the cluster as Prometheus sees it, in the OpenMetrics text
//! format (`prometheus-client`), made at each scrape from the
//! ResourceManager's overview and the Dispatcher's jobs, so nothing is kept
//! twice. Names are Flink's where Flink has the metric (its Prometheus
//! reporter's `flink_jobmanager_*`), so dashboards made for Flink read them;
//! yarn-flink's own are `yarn_flink_*`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::dispatcher::{JobDetails, SubtaskMetrics};
use crate::resource_manager::ResourceManagerOverview;

/// A per-subtask metric: its name, help, and how to read it.
type SubtaskFamily = (&'static str, &'static str, fn(&SubtaskMetrics) -> u64);

/// What a scraper is told the body is.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Shape {
    cpu_millis: u64,
    memory_mb: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Task {
    job_id: String,
    task_name: String,
    subtask_index: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Job {
    job_id: String,
    job_name: String,
}

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g: Gauge<u64, AtomicU64> = Gauge::default();
    g.set(value);
    registry.register(name, help, g);
}

fn counter(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let c: Counter<u64, AtomicU64> = Counter::default();
    c.inc_by(value);
    registry.register(name, help, c);
}

/// The page, from a snapshot of the cluster.
pub fn render(rm: &ResourceManagerOverview, jobs: &[JobDetails]) -> String {
    let mut r = Registry::default();
    let tms = &rm.slots.task_managers;
    let total: u64 = tms.iter().map(|t| u64::from(t.num_slots)).sum();
    let used: u64 = tms.iter().map(|t| t.slots.len() as u64).sum();
    let pending: u64 = rm.slots.pending_workers.iter().map(|(s, n)| u64::from(s.num_slots) * u64::from(*n)).sum();
    let pending_workers: u64 = rm.slots.pending_workers.iter().map(|(_, n)| u64::from(*n)).sum();
    gauge(&mut r, "flink_jobmanager_taskSlotsTotal", "Slots of all registered TaskManagers", total);
    gauge(&mut r, "flink_jobmanager_taskSlotsAvailable", "Slots not allocated to a job", total.saturating_sub(used));
    gauge(&mut r, "flink_jobmanager_numRegisteredTaskManagers", "Registered TaskManagers", tms.len() as u64);
    gauge(&mut r, "yarn_flink_task_slots_pending", "Slots of workers requested but not registered yet", pending);
    gauge(
        &mut r,
        "yarn_flink_workers_pending",
        "Workers requested from the cluster manager and not registered yet (on YARN: outstanding container asks)",
        pending_workers,
    );
    let by_shape: Family<Shape, Gauge<u64, AtomicU64>> = Family::default();
    let mut counts: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    for t in tms {
        *counts.entry((t.total.cpu_millis, t.total.total_memory_bytes() >> 20)).or_default() += 1;
    }
    for ((cpu_millis, memory_mb), n) in counts {
        by_shape.get_or_create(&Shape { cpu_millis, memory_mb }).set(n);
    }
    r.register("yarn_flink_taskmanagers", "Registered TaskManagers by shape", by_shape);
    counter(
        &mut r,
        "yarn_flink_worker_requests_failed",
        "Worker requests the cluster manager could not serve",
        rm.failed_worker_requests,
    );
    counter(
        &mut r,
        "yarn_flink_heartbeat_misses",
        "TaskManagers that missed their heartbeats past the timeout",
        rm.heartbeat_misses,
    );
    let restarts: Family<Job, Gauge<u64, AtomicU64>> = Family::default();
    let running: u64 = jobs.iter().filter(|j| !j.is_terminal()).count() as u64;
    for j in jobs {
        restarts.get_or_create(&Job { job_id: j.jid.clone(), job_name: j.name.clone() }).set(u64::from(j.restarts));
    }
    r.register("flink_jobmanager_job_numRestarts", "Restarts of each job", restarts);
    // Each running job's subtasks, as their TaskManagers last reported them
    // (one scrape target for the whole cluster).
    let families: [SubtaskFamily; 5] = [
        ("flink_taskmanager_job_task_numRecordsIn", "Records read by each subtask", |m| m.read_records),
        ("flink_taskmanager_job_task_numRecordsOut", "Records written by each subtask", |m| m.write_records),
        ("flink_taskmanager_job_task_numBytesIn", "Bytes read by each subtask", |m| m.read_bytes),
        ("flink_taskmanager_job_task_numBytesOut", "Bytes written by each subtask", |m| m.write_bytes),
        (
            "flink_taskmanager_job_task_backPressuredTimeMsPerSecond",
            "Milliseconds per second each subtask's output waited for credits",
            |m| m.backpressured_ms_per_second,
        ),
    ];
    for (name, help, value) in families {
        let family: Family<Task, Gauge<u64, AtomicU64>> = Family::default();
        for j in jobs.iter().filter(|j| !j.is_terminal()) {
            for v in &j.vertices {
                for t in &v.subtasks {
                    if let Some(m) = &t.metrics {
                        let labels =
                            Task { job_id: j.jid.clone(), task_name: v.name.clone(), subtask_index: t.subtask };
                        family.get_or_create(&labels).set(value(m));
                    }
                }
            }
        }
        r.register(name, help, family);
    }
    gauge(&mut r, "flink_jobmanager_numRunningJobs", "Jobs not yet ended", running);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatcher::{SubtaskDetails, VertexDetails};

    fn overview() -> ResourceManagerOverview {
        ResourceManagerOverview {
            rm_id: common::ids::ResourceManagerId::random(),
            driver: "test",
            slots: Default::default(),
            addresses: Default::default(),
            workers: Default::default(),
            failed_worker_requests: 2,
            heartbeat_misses: 0,
        }
    }

    #[test]
    fn running_subtasks_are_exported_by_flink_s_names_and_ended_jobs_are_not() {
        let metrics = SubtaskMetrics { write_records: 5, backpressured_ms_per_second: 250, ..Default::default() };
        let sub = SubtaskDetails { subtask: 1, status: "RUNNING".into(), metrics: Some(metrics), ..Default::default() };
        let vertex =
            VertexDetails { name: "tokenize".into(), parallelism: 2, subtasks: vec![sub], ..Default::default() };
        let running = JobDetails {
            jid: "j1".into(),
            state: "RUNNING".into(),
            vertices: vec![vertex.clone()],
            ..Default::default()
        };
        let ended =
            JobDetails { jid: "j2".into(), state: "FINISHED".into(), vertices: vec![vertex], ..Default::default() };
        let page = render(&overview(), &[running, ended]);
        assert!(
            page.contains(
                r#"flink_taskmanager_job_task_numRecordsOut{job_id="j1",task_name="tokenize",subtask_index="1"} 5"#
            ),
            "{page}"
        );
        assert!(page.contains(r#"flink_taskmanager_job_task_backPressuredTimeMsPerSecond{job_id="j1",task_name="tokenize",subtask_index="1"} 250"#));
        assert!(!page.contains(r#"job_id="j2",task_name"#), "ended jobs' subtasks are not exported: {page}");
        assert!(page.contains("yarn_flink_worker_requests_failed_total 2"));
        assert!(page.contains("flink_jobmanager_numRunningJobs 1"));
    }
}
