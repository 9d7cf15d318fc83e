//! Transcripts: offers, updates and asks in, decisions out, written as text.

use super::*;

fn spec(cpu_millis: u64, mb: u64) -> WorkerSpec {
    WorkerSpec::uniform(ResourceProfile::new(cpu_millis, mb * MIB), 1)
}

fn offer(id: &str, agent: &str, cpus: f64, mem: f64) -> Offer {
    Offer {
        id: Id::new(id),
        framework_id: None,
        agent_id: Id::new(agent),
        hostname: agent.into(),
        resources: vec![Resource::scalar("cpus", cpus, "*"), Resource::scalar("mem", mem, "*")],
    }
}

fn status(task: &str, state: &str, uuid: Option<&str>) -> TaskStatus {
    TaskStatus {
        task_id: Id::new(task),
        state: state.into(),
        message: Some("Command exited with status 1".into()),
        reason: Some("REASON_COMMAND_EXECUTOR_FAILED".into()),
        source: None,
        agent_id: Some(Id::new("a1")),
        uuid: uuid.map(str::to_owned),
    }
}

/// One line per decision.
fn text(ds: &[Decision]) -> String {
    ds.iter()
        .map(|d| match d {
            Decision::Launch { offer, agent, tasks } => format!(
                "launch {} on {}: {}",
                offer.value,
                agent.value,
                tasks.iter().map(|(id, _, need)| format!("{id} [{need}]")).collect::<Vec<_>>().join(", ")
            ),
            Decision::Decline(ids) => {
                format!("decline {}", ids.iter().map(|i| i.value.as_str()).collect::<Vec<_>>().join(" "))
            }
            Decision::Suppress => "suppress".into(),
            Decision::Revive => "revive".into(),
            Decision::Acknowledge { task, uuid, .. } => format!("ack {} {uuid}", task.value),
            Decision::Kill { task, .. } => format!("kill {}", task.value),
            Decision::Event(DriverEvent::WorkerStarted { resource_id, .. }) => format!("started {resource_id}"),
            Decision::Event(DriverEvent::WorkerRequestFailed { reason, .. }) => format!("failed: {reason}"),
            Decision::Event(DriverEvent::WorkerTerminated { resource_id, diagnostics }) => {
                format!("terminated {resource_id}: {diagnostics}")
            }
            Decision::Event(DriverEvent::Fatal(r)) => format!("fatal: {r}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn heterogeneous_asks_share_offers_that_cover_them_and_the_rest_is_declined() {
    let mut b = OfferBook::new("*", "tm-");
    assert_eq!(text(&b.request(&spec(500, 256))), "");
    assert_eq!(text(&b.request(&spec(2500, 1280))), "");
    let d = b.offers(&[offer("o1", "a1", 1.0, 1024.0), offer("o2", "a2", 4.0, 4096.0), offer("o3", "a3", 4.0, 4096.0)]);
    assert_eq!(
        text(&d),
        "started tm-1\n\
         launch o1 on a1: tm-1 [cpus 0.5, mem 256 MB]\n\
         started tm-2\n\
         launch o2 on a2: tm-2 [cpus 2.5, mem 1280 MB]\n\
         decline o3\n\
         suppress"
    );
    // Nothing pending: later offers are declined, and we stay suppressed.
    assert_eq!(text(&b.offers(&[offer("o4", "a3", 4.0, 4096.0)])), "decline o4");
    // A new ask revives offers.
    assert_eq!(text(&b.request(&spec(1000, 512))), "revive");
    assert_eq!(text(&b.cancel(&spec(1000, 512))), "suppress");
}

#[test]
fn one_offer_takes_several_task_managers_while_it_has_room() {
    let mut b = OfferBook::new("*", "tm-");
    for _ in 0..3 {
        b.request(&spec(1000, 512));
    }
    let d = b.offers(&[offer("o1", "a1", 2.0, 4096.0)]);
    assert_eq!(
        text(&d),
        "started tm-1\nstarted tm-2\nlaunch o1 on a1: tm-1 [cpus 1, mem 512 MB], tm-2 [cpus 1, mem 512 MB]"
    );
    assert_eq!(b.pending(), 1, "the third waits for the next offer");
}

#[test]
fn updates_are_acknowledged_and_terminal_ones_end_the_worker_with_the_masters_words() {
    let mut b = OfferBook::new("*", "tm-");
    b.request(&spec(500, 256));
    b.offers(&[offer("o1", "a1", 1.0, 1024.0)]);
    assert_eq!(text(&b.update(&status("tm-1", "TASK_RUNNING", Some("u1")))), "ack tm-1 u1");
    assert_eq!(text(&b.release(&ResourceId::new("tm-1"))), "kill tm-1");
    assert_eq!(
        text(&b.update(&status("tm-1", "TASK_FAILED", Some("u2")))),
        "ack tm-1 u2\nterminated tm-1: Mesos task tm-1 is TASK_FAILED: Command exited with status 1 \
         (REASON_COMMAND_EXECUTOR_FAILED)"
    );
    // A reconciliation answer (no uuid) of a task we no longer track: nothing to do.
    assert_eq!(text(&b.update(&status("tm-1", "TASK_LOST", None))), "");
    assert_eq!(text(&b.release(&ResourceId::new("tm-1"))), "");
}

#[test]
fn an_ask_no_whole_agent_can_hold_is_refused_naming_the_largest_offer() {
    let mut b = OfferBook::new("*", "tm-");
    b.request(&spec(16_000, 1024));
    let d = b.offers(&[offer("o1", "a1", 4.0, 8192.0), offer("o2", "a2", 2.0, 2048.0)]);
    assert_eq!(
        text(&d),
        "failed: the TaskManager asks cpus 16, mem 1024 MB (for role *); the largest Mesos agent offers cpus 4, mem \
         8192 MB: lower the vertex's resources, or add agents with that much room\n\
         decline o1 o2\n\
         suppress"
    );
}

#[test]
fn offers_for_other_roles_do_not_count() {
    let mut b = OfferBook::new("analytics", "tm-");
    b.request(&spec(1000, 512));
    let mut o = offer("o1", "a1", 1.0, 1024.0);
    o.resources = vec![Resource::scalar("cpus", 8.0, "etl"), Resource::scalar("mem", 8192.0, "etl")];
    o.resources.push(Resource::scalar("cpus", 1.0, "analytics"));
    o.resources.push(Resource::scalar("mem", 512.0, "analytics"));
    assert_eq!(text(&b.offers(&[o])), "started tm-1\nlaunch o1 on a1: tm-1 [cpus 1, mem 512 MB]\nsuppress");
}
