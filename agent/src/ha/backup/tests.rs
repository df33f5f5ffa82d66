//! Table tests of the backup policy: one named case per rule.

use super::*;

const H: u64 = 3600;

fn leader() -> BackupObservation {
    BackupObservation {
        leader: true,
        stanza_ready: true,
        job_running: false,
        due: DueSlots::default(),
        claimed: None,
        request: None,
        replicas: Vec::new(),
        from_replica: true,
        max_lag: 1 << 20,
    }
}

fn replica(name: &str, lag: Option<u64>) -> StandbyCandidate {
    StandbyCandidate {
        name: name.into(),
        streaming: true,
        lag,
        reachable: true,
    }
}

fn run(kind: BackupKind, trigger: Trigger, source: BackupSource) -> BackupDecision {
    BackupDecision::Run {
        kind,
        trigger,
        source,
    }
}

struct Case {
    name: &'static str,
    obs: BackupObservation,
    want: BackupDecision,
}

fn case(name: &'static str, f: impl FnOnce(&mut BackupObservation), want: BackupDecision) -> Case {
    let mut obs = leader();
    f(&mut obs);
    Case { name, obs, want }
}

#[test]
fn backup_decisions() {
    use BackupKind::*;
    use BackupSource::*;
    let cases = [
        case(
            "a replica never runs backups",
            |o| {
                o.leader = false;
                o.due.full = Some(10 * H);
            },
            BackupDecision::Wait(BackupWait::NotLeader),
        ),
        case(
            "the leader waits for its stanza",
            |o| {
                o.stanza_ready = false;
                o.due.full = Some(10 * H);
            },
            BackupDecision::Wait(BackupWait::StanzaNotReady),
        ),
        case(
            "one backup at a time",
            |o| {
                o.job_running = true;
                o.due.full = Some(10 * H);
            },
            BackupDecision::Wait(BackupWait::JobRunning),
        ),
        case(
            "no schedule and no request: nothing",
            |_| {},
            BackupDecision::Wait(BackupWait::NothingDue),
        ),
        case(
            "first slot of a new cluster runs at once",
            |o| o.due.incr = Some(10 * H),
            run(Incr, Trigger::Slot(10 * H), Primary),
        ),
        case(
            "a claimed slot never runs twice (the next leader sees the claim)",
            |o| {
                o.due.full = Some(10 * H);
                o.claimed = Some(10 * H);
            },
            BackupDecision::Wait(BackupWait::NothingDue),
        ),
        case(
            "a later incr slot runs as incr",
            |o| {
                o.due.full = Some(H);
                o.due.incr = Some(10 * H);
                o.claimed = Some(6 * H);
            },
            run(Incr, Trigger::Slot(10 * H), Primary),
        ),
        case(
            "a missed full slot is not downgraded by a later incr slot",
            |o| {
                o.due.full = Some(7 * H);
                o.due.incr = Some(10 * H);
                o.claimed = Some(6 * H);
            },
            run(Full, Trigger::Slot(10 * H), Primary),
        ),
        case(
            "full and incr on the same slot: full",
            |o| {
                o.due.full = Some(10 * H);
                o.due.incr = Some(10 * H);
                o.claimed = Some(9 * H);
            },
            run(Full, Trigger::Slot(10 * H), Primary),
        ),
        case(
            "diff wins over incr on the same slot",
            |o| {
                o.due.diff = Some(10 * H);
                o.due.incr = Some(10 * H);
                o.claimed = Some(9 * H);
            },
            run(Diff, Trigger::Slot(10 * H), Primary),
        ),
        case(
            "a request runs before a due slot, with its own type",
            |o| {
                o.due.incr = Some(10 * H);
                o.request = Some(("r1".into(), Full));
            },
            run(Full, Trigger::Request("r1".into()), Primary),
        ),
        case(
            "the least lagging streaming replica is the source",
            |o| {
                o.due.full = Some(10 * H);
                o.replicas = vec![replica("pg3", Some(50)), replica("pg2", Some(10))];
            },
            run(Full, Trigger::Slot(10 * H), Standby("pg2".into())),
        ),
        case(
            "equal lag: the first name",
            |o| {
                o.due.full = Some(10 * H);
                o.replicas = vec![replica("pg3", Some(0)), replica("pg2", Some(0))];
            },
            run(Full, Trigger::Slot(10 * H), Standby("pg2".into())),
        ),
        case(
            "lagging, unknown-lag, unreachable or not streaming replicas are no source",
            |o| {
                o.due.full = Some(10 * H);
                let mut not_streaming = replica("pg4", Some(0));
                not_streaming.streaming = false;
                let mut unreachable = replica("pg5", Some(0));
                unreachable.reachable = false;
                o.replicas = vec![
                    replica("pg2", Some(2 << 20)),
                    replica("pg3", None),
                    not_streaming,
                    unreachable,
                ];
            },
            run(Full, Trigger::Slot(10 * H), Primary),
        ),
        case(
            "from_replica off: the primary",
            |o| {
                o.due.full = Some(10 * H);
                o.from_replica = false;
                o.replicas = vec![replica("pg2", Some(0))];
            },
            run(Full, Trigger::Slot(10 * H), Primary),
        ),
    ];
    for c in cases {
        assert_eq!(decide_backup(&c.obs), c.want, "{}", c.name);
    }
}

#[test]
fn kinds_read_back_what_they_print() {
    for k in [BackupKind::Full, BackupKind::Diff, BackupKind::Incr] {
        assert_eq!(BackupKind::parse(k.as_str()), Some(k));
    }
    assert_eq!(BackupKind::parse("FULL"), None);
}
