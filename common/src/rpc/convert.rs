//! Domain types <-> protobuf messages. Decoding checks presence of required
//! fields: a peer's malformed message is an error, never a panic.

use std::path::PathBuf;

use super::pb;
use crate::ids::*;
use crate::jobspec::{BuiltinSink, BuiltinSource, BundleLimits, Partitioning, Program};
use crate::protocol::*;
use crate::resources::ResourceProfile;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("required field `{0}` is missing")]
    Missing(&'static str),
    #[error("field `{0}` has an unknown value {1}")]
    BadEnum(&'static str, i32),
}

fn req<T>(v: Option<T>, name: &'static str) -> Result<T, ConvertError> {
    v.ok_or(ConvertError::Missing(name))
}

pub fn uuid(u: uuid::Uuid) -> pb::Uuid {
    let (hi, lo) = u.as_u64_pair();
    pb::Uuid { hi, lo }
}

fn from_uuid(u: Option<pb::Uuid>, name: &'static str) -> Result<uuid::Uuid, ConvertError> {
    let u = req(u, name)?;
    Ok(uuid::Uuid::from_u64_pair(u.hi, u.lo))
}

macro_rules! id_conv {
    ($($t:ident => $to:ident, $from:ident);* $(;)?) => {$(
        pub fn $to(id: $t) -> Option<pb::Uuid> { Some(uuid(id.0)) }
        pub fn $from(u: Option<pb::Uuid>, name: &'static str) -> Result<$t, ConvertError> { from_uuid(u, name).map($t) }
    )*};
}

id_conv! {
    JobId => job_id, to_job_id;
    AllocationId => allocation_id, to_allocation_id;
    ExecutionAttemptId => attempt_id, to_attempt_id;
    ResourceManagerId => rm_id, to_rm_id;
    JobMasterId => job_master_id, to_job_master_id;
    InstanceId => instance_id, to_instance_id;
}

pub fn profile(p: &ResourceProfile) -> pb::ResourceProfile {
    pb::ResourceProfile {
        cpu_millis: p.cpu_millis,
        task_heap_bytes: p.task_heap_bytes,
        task_off_heap_bytes: p.task_off_heap_bytes,
        managed_bytes: p.managed_bytes,
        network_bytes: p.network_bytes,
        extended: p.extended.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

pub fn to_profile(p: Option<pb::ResourceProfile>, name: &'static str) -> Result<ResourceProfile, ConvertError> {
    let p = req(p, name)?;
    Ok(ResourceProfile {
        cpu_millis: p.cpu_millis,
        task_heap_bytes: p.task_heap_bytes,
        task_off_heap_bytes: p.task_off_heap_bytes,
        managed_bytes: p.managed_bytes,
        network_bytes: p.network_bytes,
        extended: p.extended.into_iter().filter(|(_, v)| *v > 0).collect(),
    })
}

pub fn slot_id(s: &SlotId) -> pb::SlotId {
    pb::SlotId { resource_id: s.resource_id.0.clone(), index: s.index }
}

pub fn to_slot_id(s: Option<pb::SlotId>) -> Result<SlotId, ConvertError> {
    let s = req(s, "slot_id")?;
    Ok(SlotId { resource_id: ResourceId(s.resource_id), index: s.index })
}

pub fn slot_report(r: &SlotReport) -> pb::SlotReport {
    pb::SlotReport {
        slots: r
            .slots
            .iter()
            .map(|s| pb::SlotStatus {
                slot_id: Some(slot_id(&s.slot_id)),
                profile: Some(profile(&s.profile)),
                allocation_id: s.allocation.and_then(|(a, _)| allocation_id(a)),
                job_id: s.allocation.and_then(|(_, j)| job_id(j)),
            })
            .collect(),
    }
}

pub fn to_slot_report(r: Option<pb::SlotReport>) -> Result<SlotReport, ConvertError> {
    let r = r.unwrap_or_default();
    let mut slots = Vec::with_capacity(r.slots.len());
    for s in r.slots {
        let allocation = match (s.allocation_id, s.job_id) {
            (Some(a), Some(j)) => Some((to_allocation_id(Some(a), "allocation_id")?, to_job_id(Some(j), "job_id")?)),
            _ => None,
        };
        slots.push(SlotStatus {
            slot_id: to_slot_id(s.slot_id)?,
            profile: to_profile(s.profile, "profile")?,
            allocation,
        });
    }
    Ok(SlotReport { slots })
}

pub fn execution_state(s: ExecutionState) -> pb::ExecutionState {
    use pb::ExecutionState as P;
    match s {
        ExecutionState::Created => P::Created,
        ExecutionState::Scheduled => P::Scheduled,
        ExecutionState::Deploying => P::Deploying,
        ExecutionState::Running => P::Running,
        ExecutionState::Finished => P::Finished,
        ExecutionState::Canceling => P::Canceling,
        ExecutionState::Canceled => P::Canceled,
        ExecutionState::Failed => P::Failed,
    }
}

pub fn to_execution_state(v: i32) -> Result<ExecutionState, ConvertError> {
    use pb::ExecutionState as P;
    Ok(match P::try_from(v).map_err(|_| ConvertError::BadEnum("state", v))? {
        P::Created => ExecutionState::Created,
        P::Scheduled => ExecutionState::Scheduled,
        P::Deploying => ExecutionState::Deploying,
        P::Running => ExecutionState::Running,
        P::Finished => ExecutionState::Finished,
        P::Canceling => ExecutionState::Canceling,
        P::Canceled => ExecutionState::Canceled,
        P::Failed => ExecutionState::Failed,
    })
}

pub fn task_state(s: &TaskExecutionState) -> pb::TaskExecutionState {
    pb::TaskExecutionState {
        job_id: job_id(s.job_id),
        attempt_id: attempt_id(s.attempt_id),
        state: execution_state(s.state) as i32,
        error: s.error.clone(),
        io: s.io.as_ref().map(task_io),
    }
}

pub fn to_task_state(s: pb::TaskExecutionState) -> Result<TaskExecutionState, ConvertError> {
    Ok(TaskExecutionState {
        job_id: to_job_id(s.job_id, "job_id")?,
        attempt_id: to_attempt_id(s.attempt_id, "attempt_id")?,
        state: to_execution_state(s.state)?,
        error: s.error,
        io: s.io.map(to_task_io),
    })
}

fn task_io(io: &TaskIo) -> pb::TaskIo {
    pb::TaskIo {
        records_in: io.records_in,
        bytes_in: io.bytes_in,
        records_out: io.records_out,
        bytes_out: io.bytes_out,
        backpressured_ms: io.backpressured_ms,
    }
}

fn to_task_io(io: pb::TaskIo) -> TaskIo {
    TaskIo {
        records_in: io.records_in,
        bytes_in: io.bytes_in,
        records_out: io.records_out,
        bytes_out: io.bytes_out,
        backpressured_ms: io.backpressured_ms,
    }
}

fn partitioning(p: Partitioning) -> i32 {
    (match p {
        Partitioning::Forward => pb::Partitioning::Forward,
        Partitioning::Hash => pb::Partitioning::Hash,
        Partitioning::Rebalance => pb::Partitioning::Rebalance,
        Partitioning::Broadcast => pb::Partitioning::Broadcast,
    }) as i32
}

fn to_partitioning(v: i32) -> Result<Partitioning, ConvertError> {
    Ok(match pb::Partitioning::try_from(v).map_err(|_| ConvertError::BadEnum("partitioning", v))? {
        pb::Partitioning::Forward => Partitioning::Forward,
        pb::Partitioning::Hash => Partitioning::Hash,
        pb::Partitioning::Rebalance => Partitioning::Rebalance,
        pb::Partitioning::Broadcast => Partitioning::Broadcast,
    })
}

fn program(p: &Program) -> pb::Program {
    use pb::program::Kind;
    let kind = match p {
        Program::Command { argv } => Kind::Command(pb::CommandProgram { argv: argv.clone() }),
        Program::Shell { script } => Kind::Shell(script.clone()),
        Program::Source(BuiltinSource::TextFiles { path }) => Kind::TextSourcePath(path.clone()),
        Program::Sink(BuiltinSink::TextFiles { path }) => Kind::TextSinkPath(path.clone()),
    };
    pb::Program { kind: Some(kind) }
}

fn to_program(p: Option<pb::Program>) -> Result<Program, ConvertError> {
    use pb::program::Kind;
    Ok(match req(req(p, "program")?.kind, "program.kind")? {
        Kind::Command(c) => Program::Command { argv: c.argv },
        Kind::Shell(script) => Program::Shell { script },
        Kind::TextSourcePath(path) => Program::Source(BuiltinSource::TextFiles { path }),
        Kind::TextSinkPath(path) => Program::Sink(BuiltinSink::TextFiles { path }),
    })
}

fn partition_id(p: &ResultPartitionId) -> pb::ResultPartitionId {
    pb::ResultPartitionId {
        edge_index: p.edge_index,
        producer_subtask: p.producer_subtask,
        producer_attempt: attempt_id(p.producer_attempt),
    }
}

fn to_partition_id(p: Option<pb::ResultPartitionId>) -> Result<ResultPartitionId, ConvertError> {
    let p = req(p, "partition_id")?;
    Ok(ResultPartitionId {
        edge_index: p.edge_index,
        producer_subtask: p.producer_subtask,
        producer_attempt: to_attempt_id(p.producer_attempt, "producer_attempt")?,
    })
}

pub fn tdd(t: &TaskDeploymentDescriptor) -> pb::TaskDeploymentDescriptor {
    pb::TaskDeploymentDescriptor {
        job_id: job_id(t.job_id),
        job_master_id: job_master_id(t.job_master_id),
        job_name: t.job_name.clone(),
        attempt_id: attempt_id(t.attempt_id),
        allocation_id: allocation_id(t.allocation_id),
        vertex_name: t.vertex_name.clone(),
        vertex_index: t.vertex_index,
        subtask_index: t.subtask_index,
        parallelism: t.parallelism,
        attempt_number: t.attempt_number,
        program: Some(program(&t.program)),
        bundle_dir: t.bundle_dir.to_string_lossy().into_owned(),
        inputs: t
            .inputs
            .iter()
            .map(|g| pb::InputGateDescriptor {
                edge_index: g.edge_index,
                partitioning: partitioning(g.partitioning),
                channels: g
                    .channels
                    .iter()
                    .map(|c| pb::InputChannelDescriptor {
                        partition_id: Some(partition_id(&c.partition_id)),
                        subpartition: c.subpartition,
                        producer_data_address: c.producer_data_address.clone(),
                        producer_resource_id: c.producer_resource_id.0.clone(),
                    })
                    .collect(),
            })
            .collect(),
        outputs: t
            .outputs
            .iter()
            .map(|o| pb::ResultPartitionDescriptor {
                partition_id: Some(partition_id(&o.partition_id)),
                partitioning: partitioning(o.partitioning),
                num_subpartitions: o.num_subpartitions,
            })
            .collect(),
        job_master_address: t.job_master_address.clone(),
        bundle_blob: t.bundle_blob.as_ref().map(|b| pb::BundleBlob {
            sha256: b.sha256.clone(),
            url: b.url.clone(),
            max_bytes: b.limits.max_bytes,
            max_entries: b.limits.max_entries,
        }),
    }
}

pub fn to_tdd(t: pb::TaskDeploymentDescriptor) -> Result<TaskDeploymentDescriptor, ConvertError> {
    let mut inputs = Vec::with_capacity(t.inputs.len());
    for g in t.inputs {
        let mut channels = Vec::with_capacity(g.channels.len());
        for c in g.channels {
            channels.push(InputChannelDescriptor {
                partition_id: to_partition_id(c.partition_id)?,
                subpartition: c.subpartition,
                producer_data_address: c.producer_data_address,
                producer_resource_id: ResourceId(c.producer_resource_id),
            });
        }
        inputs.push(InputGateDescriptor {
            edge_index: g.edge_index,
            partitioning: to_partitioning(g.partitioning)?,
            channels,
        });
    }
    let mut outputs = Vec::with_capacity(t.outputs.len());
    for o in t.outputs {
        outputs.push(ResultPartitionDescriptor {
            partition_id: to_partition_id(o.partition_id)?,
            partitioning: to_partitioning(o.partitioning)?,
            num_subpartitions: o.num_subpartitions,
        });
    }
    Ok(TaskDeploymentDescriptor {
        job_id: to_job_id(t.job_id, "job_id")?,
        job_master_id: to_job_master_id(t.job_master_id, "job_master_id")?,
        job_master_address: t.job_master_address,
        job_name: t.job_name,
        attempt_id: to_attempt_id(t.attempt_id, "attempt_id")?,
        allocation_id: to_allocation_id(t.allocation_id, "allocation_id")?,
        vertex_name: t.vertex_name,
        vertex_index: t.vertex_index,
        subtask_index: t.subtask_index,
        parallelism: t.parallelism,
        attempt_number: t.attempt_number,
        program: to_program(t.program)?,
        bundle_dir: PathBuf::from(t.bundle_dir),
        bundle_blob: t.bundle_blob.map(|b| {
            let default = BundleLimits::default();
            let or_default = |v: u64, d: u64| if v == 0 { d } else { v };
            BundleBlob {
                sha256: b.sha256,
                url: b.url,
                limits: BundleLimits {
                    max_bytes: or_default(b.max_bytes, default.max_bytes),
                    max_entries: or_default(b.max_entries, default.max_entries),
                },
            }
        }),
        inputs,
        outputs,
    })
}

pub fn request_slot(r: &RequestSlot) -> pb::RequestSlotRequest {
    pb::RequestSlotRequest {
        rm_id: rm_id(r.rm_id),
        slot_id: Some(slot_id(&r.slot_id)),
        allocation_id: allocation_id(r.allocation_id),
        job_id: job_id(r.job_id),
        profile: Some(profile(&r.profile)),
        job_master_address: r.job_master_address.clone(),
        job_master_id: job_master_id(r.job_master_id),
    }
}

pub fn to_request_slot(r: pb::RequestSlotRequest) -> Result<RequestSlot, ConvertError> {
    Ok(RequestSlot {
        rm_id: to_rm_id(r.rm_id, "rm_id")?,
        slot_id: to_slot_id(r.slot_id)?,
        allocation_id: to_allocation_id(r.allocation_id, "allocation_id")?,
        job_id: to_job_id(r.job_id, "job_id")?,
        profile: to_profile(r.profile, "profile")?,
        job_master_address: r.job_master_address,
        job_master_id: to_job_master_id(r.job_master_id, "job_master_id")?,
    })
}

pub fn offer_slots(o: &OfferSlots) -> pb::OfferSlotsRequest {
    pb::OfferSlotsRequest {
        resource_id: o.resource_id.0.clone(),
        job_id: job_id(o.job_id),
        job_master_id: job_master_id(o.job_master_id),
        address: o.address.clone(),
        data_address: o.data_address.clone(),
        report_version: o.report_version,
        offers: o
            .offers
            .iter()
            .map(|s| pb::SlotOffer {
                allocation_id: allocation_id(s.allocation_id),
                slot_index: s.slot_index,
                profile: Some(profile(&s.profile)),
            })
            .collect(),
    }
}

pub fn to_offer_slots(o: pb::OfferSlotsRequest) -> Result<OfferSlots, ConvertError> {
    let mut offers = Vec::with_capacity(o.offers.len());
    for s in o.offers {
        offers.push(SlotOffer {
            allocation_id: to_allocation_id(s.allocation_id, "allocation_id")?,
            slot_index: s.slot_index,
            profile: to_profile(s.profile, "profile")?,
        });
    }
    Ok(OfferSlots {
        resource_id: ResourceId(o.resource_id),
        job_id: to_job_id(o.job_id, "job_id")?,
        job_master_id: to_job_master_id(o.job_master_id, "job_master_id")?,
        address: o.address,
        data_address: o.data_address,
        offers,
        report_version: o.report_version,
    })
}

pub fn register(r: &RegisterTaskExecutor, report: &SlotReport) -> pb::RegisterTaskExecutorRequest {
    pb::RegisterTaskExecutorRequest {
        resource_id: r.resource_id.0.clone(),
        address: r.address.clone(),
        data_address: r.data_address.clone(),
        metrics_address: r.metrics_address.clone().unwrap_or_default(),
        total_resources: Some(profile(&r.total_resources)),
        default_slot_profile: Some(profile(&r.default_slot_profile)),
        num_slots: r.num_slots,
        slot_report: Some(slot_report(report)),
    }
}

pub fn to_register(r: pb::RegisterTaskExecutorRequest) -> Result<(RegisterTaskExecutor, SlotReport), ConvertError> {
    Ok((
        RegisterTaskExecutor {
            resource_id: ResourceId(r.resource_id),
            address: r.address,
            data_address: r.data_address,
            metrics_address: Some(r.metrics_address).filter(|a| !a.is_empty()),
            total_resources: to_profile(r.total_resources, "total_resources")?,
            default_slot_profile: to_profile(r.default_slot_profile, "default_slot_profile")?,
            num_slots: r.num_slots,
        },
        to_slot_report(r.slot_report)?,
    ))
}

pub fn te_heartbeat(h: &TaskExecutorHeartbeat) -> pb::TaskExecutorHeartbeat {
    pb::TaskExecutorHeartbeat {
        resource_id: h.resource_id.0.clone(),
        instance_id: instance_id(h.instance_id),
        slot_report: Some(slot_report(&h.slot_report)),
        report_version: h.report_version,
    }
}

pub fn to_te_heartbeat(h: pb::TaskExecutorHeartbeat) -> Result<TaskExecutorHeartbeat, ConvertError> {
    Ok(TaskExecutorHeartbeat {
        resource_id: ResourceId(h.resource_id),
        instance_id: to_instance_id(h.instance_id, "instance_id")?,
        slot_report: to_slot_report(h.slot_report)?,
        report_version: h.report_version,
    })
}

pub fn registration_accepted(r: &RegistrationAccepted) -> pb::RegisterTaskExecutorResponse {
    pb::RegisterTaskExecutorResponse {
        rm_id: rm_id(r.rm_id),
        instance_id: instance_id(r.instance_id),
        heartbeat_interval_ms: u64::try_from(r.heartbeat_interval.as_millis()).unwrap_or(u64::MAX),
        heartbeat_timeout_ms: u64::try_from(r.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

/// Intervals under 10 ms and timeouts under 50 ms are raised to that: a
/// zero from a confused peer must not make a TaskExecutor spin.
pub fn to_registration_accepted(r: pb::RegisterTaskExecutorResponse) -> Result<RegistrationAccepted, ConvertError> {
    Ok(RegistrationAccepted {
        rm_id: to_rm_id(r.rm_id, "rm_id")?,
        instance_id: to_instance_id(r.instance_id, "instance_id")?,
        heartbeat_interval: std::time::Duration::from_millis(r.heartbeat_interval_ms.max(10)),
        heartbeat_timeout: std::time::Duration::from_millis(r.heartbeat_timeout_ms.max(50)),
    })
}

pub fn jm_heartbeat(h: &JobMasterHeartbeat) -> pb::JobMasterHeartbeat {
    pb::JobMasterHeartbeat {
        resource_id: h.resource_id.0.clone(),
        job_id: job_id(h.job_id),
        job_master_id: job_master_id(h.job_master_id),
        allocations: h.allocations.iter().map(|a| uuid(a.0)).collect(),
        report_version: h.report_version,
        io: h.io.iter().map(|(a, io)| pb::AttemptIo { attempt_id: attempt_id(*a), io: Some(task_io(io)) }).collect(),
    }
}

pub fn to_jm_heartbeat(h: pb::JobMasterHeartbeat) -> Result<JobMasterHeartbeat, ConvertError> {
    let mut allocations = Vec::with_capacity(h.allocations.len());
    for a in h.allocations {
        allocations.push(to_allocation_id(Some(a), "allocations")?);
    }
    let mut io = Vec::with_capacity(h.io.len());
    for a in h.io {
        io.push((to_attempt_id(a.attempt_id, "io.attempt_id")?, a.io.map(to_task_io).unwrap_or_default()));
    }
    Ok(JobMasterHeartbeat {
        resource_id: ResourceId(h.resource_id),
        job_id: to_job_id(h.job_id, "job_id")?,
        job_master_id: to_job_master_id(h.job_master_id, "job_master_id")?,
        allocations,
        report_version: h.report_version,
        io,
    })
}

pub fn accepted_offers(accepted: &[AllocationId]) -> pb::OfferSlotsResponse {
    pb::OfferSlotsResponse { accepted: accepted.iter().map(|a| uuid(a.0)).collect() }
}

pub fn to_accepted_offers(r: pb::OfferSlotsResponse) -> Result<Vec<AllocationId>, ConvertError> {
    r.accepted.into_iter().map(|a| to_allocation_id(Some(a), "accepted")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::MIB;

    #[test]
    fn heartbeats_and_registrations_round_trip_and_zero_timings_are_raised() {
        let te = TaskExecutorHeartbeat {
            resource_id: ResourceId::new("tm-1"),
            instance_id: InstanceId::random(),
            slot_report: SlotReport::default(),
            report_version: 7,
        };
        assert_eq!(to_te_heartbeat(te_heartbeat(&te)).unwrap(), te);
        let jm = JobMasterHeartbeat {
            resource_id: ResourceId::new("tm-1"),
            job_id: JobId::random(),
            job_master_id: JobMasterId::random(),
            allocations: vec![AllocationId::random(), AllocationId::random()],
            report_version: 3,
            io: vec![(
                ExecutionAttemptId::random(),
                TaskIo { records_in: 1, bytes_in: 2, records_out: 3, bytes_out: 4, backpressured_ms: 5 },
            )],
        };
        assert_eq!(to_jm_heartbeat(jm_heartbeat(&jm)).unwrap(), jm);
        let state = TaskExecutionState {
            job_id: JobId::random(),
            attempt_id: ExecutionAttemptId::random(),
            state: ExecutionState::Finished,
            error: None,
            io: Some(TaskIo { records_out: 9, ..TaskIo::default() }),
        };
        assert_eq!(to_task_state(task_state(&state)).unwrap(), state);
        let accepted = RegistrationAccepted {
            rm_id: ResourceManagerId::random(),
            instance_id: InstanceId::random(),
            heartbeat_interval: std::time::Duration::from_millis(100),
            heartbeat_timeout: std::time::Duration::from_secs(2),
        };
        assert_eq!(to_registration_accepted(registration_accepted(&accepted)).unwrap(), accepted);
        let zero = pb::RegisterTaskExecutorResponse { heartbeat_interval_ms: 0, ..registration_accepted(&accepted) };
        assert_eq!(to_registration_accepted(zero).unwrap().heartbeat_interval, std::time::Duration::from_millis(10));
        let missing = pb::RegisterTaskExecutorResponse { rm_id: None, ..registration_accepted(&accepted) };
        assert!(matches!(to_registration_accepted(missing), Err(ConvertError::Missing("rm_id"))));
        let ids = vec![AllocationId::random()];
        assert_eq!(to_accepted_offers(accepted_offers(&ids)).unwrap(), ids);
    }

    #[test]
    fn tdd_round_trips() {
        let attempt = ExecutionAttemptId::random();
        let t = TaskDeploymentDescriptor {
            job_id: JobId::random(),
            job_master_id: JobMasterId::random(),
            job_master_address: "127.0.0.1:1".into(),
            job_name: "wc".into(),
            attempt_id: ExecutionAttemptId::random(),
            allocation_id: AllocationId::random(),
            vertex_name: "count".into(),
            vertex_index: 1,
            subtask_index: 1,
            parallelism: 2,
            attempt_number: 3,
            program: Program::Command { argv: vec!["awk".into(), "-f".into(), "x.awk".into()] },
            bundle_dir: "/tmp/b".into(),
            bundle_blob: Some(BundleBlob {
                sha256: "ab".repeat(32),
                url: "http://127.0.0.1:1/blobs/x".into(),
                limits: BundleLimits { max_bytes: 1 << 20, max_entries: 7 },
            }),
            inputs: vec![InputGateDescriptor {
                edge_index: 0,
                partitioning: Partitioning::Hash,
                channels: vec![InputChannelDescriptor {
                    partition_id: ResultPartitionId { edge_index: 0, producer_subtask: 0, producer_attempt: attempt },
                    subpartition: 1,
                    producer_data_address: "127.0.0.1:2".into(),
                    producer_resource_id: ResourceId::new("tm-1"),
                }],
            }],
            outputs: vec![ResultPartitionDescriptor {
                partition_id: ResultPartitionId { edge_index: 1, producer_subtask: 1, producer_attempt: attempt },
                partitioning: Partitioning::Broadcast,
                num_subpartitions: 4,
            }],
        };
        assert_eq!(to_tdd(tdd(&t)).unwrap(), t);
        let mut broken = tdd(&t);
        broken.program = None;
        assert!(matches!(to_tdd(broken), Err(ConvertError::Missing("program"))));
    }

    #[test]
    fn slot_report_and_profiles_round_trip() {
        let r = SlotReport {
            slots: vec![
                SlotStatus {
                    slot_id: SlotId { resource_id: ResourceId::new("a"), index: 0 },
                    profile: ResourceProfile::new(500, 256 * MIB).with_extended("gpu", 1),
                    allocation: Some((AllocationId::random(), JobId::random())),
                },
                SlotStatus {
                    slot_id: SlotId { resource_id: ResourceId::new("a"), index: 1 },
                    profile: ResourceProfile::new(1000, MIB),
                    allocation: None,
                },
            ],
        };
        assert_eq!(to_slot_report(Some(slot_report(&r))).unwrap(), r);
        assert!(to_execution_state(99).is_err());
    }
}
