//! SlotManager matching at scale: a 40,000-subtask requirement (four
//! profiles, one of them "any slot") against 10,000 registered TaskManagers
//! of 4 default slots each, which it fills exactly; the same requirement with
//! no TaskManagers (planning 10,000 new workers); re-declaring when nothing is
//! missing; registering the 10,000 TaskManagers.
//!
//! Prints the headline figure first, then runs criterion:
//! `cargo bench -p am --bench slot_manager -- --quick`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use am::resource_manager::slot_manager::{Action, SlotManager, SlotManagerConfig, TaskManagerRegistration};
use am::resource_manager::worker::WorkerSpec;
use common::ids::{InstanceId, JobId, ResourceId};
use common::protocol::{ResourceRequirement, SlotReport};
use common::resources::{RequestedProfile, ResourceProfile, MIB};
use criterion::{BatchSize, Criterion};

const TASK_MANAGERS: u32 = 10_000;
const SLOTS_PER_TM: u32 = 4;
const GIB: u64 = 1024 * MIB;

fn default_worker() -> WorkerSpec {
    WorkerSpec::uniform(ResourceProfile::new(1000, GIB), SLOTS_PER_TM)
}

/// 40,000 subtasks that exactly fill 10,000 x 4 x (1 cpu, 1 GB).
fn requirement() -> Vec<ResourceRequirement> {
    let exact = |cpu, mem| RequestedProfile::Exact(ResourceProfile::new(cpu, mem));
    vec![
        ResourceRequirement { profile: RequestedProfile::Unknown, count: 10_000 },
        ResourceRequirement { profile: exact(1000, GIB), count: 10_000 },
        ResourceRequirement { profile: exact(500, GIB / 2), count: 10_000 },
        ResourceRequirement { profile: exact(1500, GIB + GIB / 2), count: 10_000 },
    ]
}

fn empty_manager() -> SlotManager {
    let config = SlotManagerConfig { default_worker: default_worker(), ..SlotManagerConfig::default() };
    SlotManager::with_allocation_id_prefix(config, 1)
}

fn register_all(sm: &mut SlotManager, now: Instant) {
    let spec = default_worker();
    for i in 0..TASK_MANAGERS {
        let reg = TaskManagerRegistration {
            resource_id: ResourceId::new(format!("tm-{i:05}")),
            instance_id: InstanceId::from_u128(u128::from(i) + 1),
            total: spec.total.clone(),
            default_slot: spec.default_slot.clone(),
            num_slots: spec.num_slots,
            slot_report: SlotReport::default(),
        };
        let _ = sm.register_task_manager(now, reg);
    }
}

fn count(actions: &[Action]) -> (usize, usize) {
    let allocations = actions.iter().filter(|a| matches!(a, Action::AllocateSlot { .. })).count();
    let workers = actions.iter().filter(|a| matches!(a, Action::StartWorker(_))).count();
    (allocations, workers)
}

/// The headline figure, printed whatever criterion is asked to do.
fn print_figure(registered: &SlotManager, now: Instant) {
    let job = JobId::from_u128(1);
    let reqs = requirement();
    let mut times = Vec::new();
    let mut last = (0, 0);
    for _ in 0..5 {
        let mut sm = registered.clone();
        let start = Instant::now();
        let actions = sm.declare_requirements(now, job, &reqs);
        times.push(start.elapsed());
        last = count(&actions);
    }
    times.sort();
    println!(
        "slot_manager: 40,000-subtask requirement on {TASK_MANAGERS} TaskManagers x {SLOTS_PER_TM} slots: \
         median {:.2} ms, min {:.2} ms over 5 runs ({} slots allocated, {} workers started)",
        times[2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        last.0,
        last.1,
    );
}

fn benches(c: &mut Criterion, registered: &SlotManager, now: Instant) {
    let job = JobId::from_u128(1);
    let reqs = requirement();

    c.bench_function("declare 40k subtasks on 10k registered TMs x 4 slots", |b| {
        b.iter_batched(
            || registered.clone(),
            |mut sm| black_box(sm.declare_requirements(now, job, &reqs)),
            BatchSize::LargeInput,
        )
    });

    c.bench_function("declare 40k subtasks with no TMs (plan 10k new workers)", |b| {
        b.iter_batched(
            empty_manager,
            |mut sm| black_box(sm.declare_requirements(now, job, &reqs)),
            BatchSize::LargeInput,
        )
    });

    let mut fulfilled = registered.clone();
    let _ = fulfilled.declare_requirements(now, job, &reqs);
    c.bench_function("re-declare 40k subtasks, nothing missing", |b| {
        b.iter(|| black_box(fulfilled.declare_requirements(now, job, &reqs)))
    });

    c.bench_function("register 10k TMs", |b| {
        b.iter_batched(
            empty_manager,
            |mut sm| {
                register_all(&mut sm, now);
                sm
            },
            BatchSize::LargeInput,
        )
    });
}

fn main() {
    let now = Instant::now();
    let mut registered = empty_manager();
    register_all(&mut registered, now);
    print_figure(&registered, now);
    let mut c = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(10).configure_from_args();
    benches(&mut c, &registered, now);
    c.final_summary();
}
