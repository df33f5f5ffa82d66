//! The backup runner: a task beside the HA loop that, every tick, observes (the latest
//! `NodeSnapshot`, the cluster from etcd's watch cache, the clock), asks
//! `ha::backup::decide_backup`, claims the slot or request in etcd with compare-and-set, and
//! runs pgBackRest as a background job. The HA loop never waits for it.
//!
//! Order on the leader: stanza-create (idempotent, once per leadership), then backups. A
//! finished job's outcome is written back into the `backup` key (re-read and retried on a
//! lost compare, since `hactl backup` may have written a request meanwhile).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::pgbackrest::{self, PgLocation, Pgbackrest};
use super::record::{BackupMember, BackupOutcome, BackupRecord};
use crate::config::{BackupConfig, Config};
use crate::dcs::etcd::EtcdDcs;
use crate::dcs::{CasOutcome, Cluster, Dcs};
use crate::ha::backup::{
    BackupDecision, BackupKind, BackupObservation, BackupSource, DueSlots, StandbyCandidate,
    Trigger, decide_backup,
};
use crate::status::NodeSnapshot;

/// How often the runner looks.
const TICK: Duration = Duration::from_secs(2);
/// Longest a backup may run.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// Longest stanza-create, check or info may run.
const SHORT_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts the runner for `cfg.backup` (nothing when there is no `backup` section).
pub fn spawn(
    cfg: Arc<Config>,
    dcs: Arc<EtcdDcs>,
    snapshots: watch::Receiver<NodeSnapshot>,
    cancel: CancellationToken,
) -> Option<JoinHandle<()>> {
    let backup = cfg.backup.clone()?;
    let span = info_span!("backup", member = %cfg.name);
    let runner = Runner {
        pgbr: Pgbackrest::new(&backup, cfg.postgresql.superuser.password.clone()),
        backup,
        cfg,
        dcs,
        snapshots,
        stanza_ready: false,
        published: false,
        job: None,
        running: None,
        host: host_id(),
    };
    Some(tokio::spawn(runner.run(cancel).instrument(span)))
}

struct Runner {
    cfg: Arc<Config>,
    backup: BackupConfig,
    dcs: Arc<EtcdDcs>,
    snapshots: watch::Receiver<NodeSnapshot>,
    pgbr: Pgbackrest,
    stanza_ready: bool,
    published: bool,
    job: Option<JoinHandle<BackupOutcome>>,
    /// What the running job was claimed as, to record it as interrupted at shutdown.
    running: Option<BackupOutcome>,
    /// This machine ([`host_id`]).
    host: String,
}

impl Runner {
    async fn run(mut self, cancel: CancellationToken) {
        let pg = self.cfg.pg_settings(&self.cfg.initial_dynamic());
        if let Err(e) = pgbackrest::write_config(&self.backup, &pg) {
            error!("backups are off: {e}");
            return;
        }
        info!(config = %self.backup.config_file.display(), stanza = %self.backup.stanza, "backup runner started");
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(TICK) => {}
            }
            self.tick().await;
        }
        // A backup cut short by the agent's shutdown is recorded as failed (it is retried at
        // the next slot), so the key does not show it running for ever.
        if let Some(job) = self.job.take() {
            job.abort();
            if let Some(mut o) = self.running.take() {
                o.finished = Some(unix_now());
                o.error = Some("interrupted: the agent stopped".into());
                let _ = tokio::time::timeout(Duration::from_secs(1), self.record(o)).await;
            }
        }
    }

    async fn tick(&mut self) {
        if !self.published {
            let pg = self.cfg.pg_settings(&self.cfg.initial_dynamic());
            let loc = PgLocation::local(&pg);
            let me = BackupMember {
                data_dir: loc.path.to_string_lossy().into_owned(),
                port: loc.port,
                socket: loc.socket,
                host: Some(self.host.clone()),
            };
            self.published = self.dcs.publish_backup_member(&me).await.is_ok();
        }
        if self.job.as_ref().is_some_and(JoinHandle::is_finished)
            && let Some(job) = self.job.take()
        {
            self.running = None;
            match job.await {
                Ok(outcome) => self.record(outcome).await,
                Err(e) => error!("backup job panicked or was cancelled: {e}"),
            }
        }
        let snap = self.snapshots.borrow().clone();
        let leader = snap.is_writable_leader(Instant::now());
        if !leader {
            self.stanza_ready = false;
        } else if !self.stanza_ready {
            self.stanza_ready = self.create_stanza().await;
        }
        let Some(cluster) = self
            .dcs
            .cached_cluster()
            .or_else(|| snap.cluster.as_deref().cloned())
        else {
            return;
        };
        let record = cluster.backup.as_ref();
        let obs = BackupObservation {
            leader,
            stanza_ready: self.stanza_ready,
            job_running: self.job.is_some(),
            due: self.due_slots(chrono::Utc::now()),
            claimed: record.and_then(|r| r.value.slot),
            request: record
                .and_then(|r| r.value.request.as_ref())
                .map(|q| (q.id.clone(), q.kind)),
            replicas: candidates(&cluster, &self.cfg.name, &self.host),
            from_replica: self.backup.from_replica,
            max_lag: snap.ha.maximum_lag_on_failover,
        };
        if let BackupDecision::Run {
            kind,
            trigger,
            source,
        } = decide_backup(&obs)
        {
            self.start(&cluster, kind, trigger, source).await;
        }
    }

    fn due_slots(&self, now: chrono::DateTime<chrono::Utc>) -> DueSlots {
        let slot =
            |s: &Option<super::schedule::Schedule>| s.as_ref().and_then(|s| s.latest_slot(now));
        DueSlots {
            full: slot(&self.backup.full),
            diff: slot(&self.backup.diff),
            incr: slot(&self.backup.incr),
        }
    }

    /// `stanza-create` (a no-op on a valid stanza), the WAL of older timelines the old
    /// primary may not have archived (`wal_gap`), then `check` (archiving works).
    async fn create_stanza(&self) -> bool {
        if let Err(e) = self.pgbr.run("stanza-create", &[], SHORT_TIMEOUT).await {
            warn!("cannot create the pgBackRest stanza (retrying): {e}");
            return false;
        }
        let (pushed, err) =
            super::wal_gap::push_old_segments(&self.pgbr, &self.cfg.postgresql.data_dir).await;
        if pushed > 0 {
            info!(
                pushed,
                "pushed WAL segments of older timelines the old primary may not have archived"
            );
        }
        if let Some(e) = err {
            warn!("could not push the WAL of older timelines: {e}");
        }
        match self.pgbr.run("check", &[], SHORT_TIMEOUT).await {
            Ok(_) => info!(stanza = %self.backup.stanza, "stanza ready and WAL archiving checked"),
            Err(e) => warn!("pgbackrest check failed (WAL archiving may not work): {e}"),
        }
        true
    }

    /// Claims the trigger with compare-and-set, then starts the job.
    async fn start(
        &mut self,
        cluster: &Cluster,
        kind: BackupKind,
        trigger: Trigger,
        source: BackupSource,
    ) {
        let (mut record, revision) = match &cluster.backup {
            Some(v) => (v.value.clone(), Some(v.revision)),
            None => (BackupRecord::default(), None),
        };
        let standby = match &source {
            BackupSource::Standby(name) => cluster.backup_members.get(name).map(|m| PgLocation {
                path: m.data_dir.clone().into(),
                port: m.port,
                socket: m.socket.clone(),
            }),
            BackupSource::Primary => None,
        };
        let source_name = match (&source, &standby) {
            (BackupSource::Standby(n), Some(_)) => n.clone(),
            _ => self.cfg.name.clone(),
        };
        let (slot, request) = match &trigger {
            Trigger::Slot(s) => {
                record.slot = Some(*s);
                (Some(*s), None)
            }
            Trigger::Request(id) => {
                record.request = None;
                (None, Some(id.clone()))
            }
        };
        let running = BackupOutcome {
            member: self.cfg.name.clone(),
            source: source_name.clone(),
            kind,
            slot,
            request,
            started: unix_now(),
            finished: None,
            ok: false,
            error: None,
            label: None,
            size: None,
            repo_size: None,
        };
        record.running = Some(running.clone());
        self.running = Some(running.clone());
        match self.dcs.write_backup(&record, revision).await {
            Ok(CasOutcome::Applied) => {}
            Ok(CasOutcome::Lost) => {
                self.running = None;
                return;
            }
            Err(e) => {
                self.running = None;
                warn!("cannot claim the backup slot: {e}");
                return;
            }
        }
        info!(%kind, source = %source_name, ?trigger, "backup started");
        let pgbr = self.pgbr.clone();
        let span = info_span!("backup_job", member = %self.cfg.name, %kind);
        self.job = Some(tokio::spawn(
            run_job(pgbr, running, standby).instrument(span),
        ));
    }

    /// Writes a finished job's outcome into the `backup` key.
    async fn record(&self, outcome: BackupOutcome) {
        if outcome.ok {
            info!(label = ?outcome.label, secs = ?outcome.duration(), "backup done");
        } else {
            error!(error = ?outcome.error, "backup failed; retried at the next slot");
        }
        for _ in 0..5 {
            let current = match self.dcs.read_backup().await {
                Ok(c) => c,
                Err(e) => {
                    warn!("cannot read the backup key: {e}");
                    tokio::time::sleep(TICK).await;
                    continue;
                }
            };
            let (mut record, revision) = match current {
                Some(v) => (v.value, Some(v.revision)),
                None => (BackupRecord::default(), None),
            };
            if record
                .running
                .as_ref()
                .is_some_and(|r| r.member == outcome.member && r.started == outcome.started)
            {
                record.running = None;
            }
            if outcome.ok {
                record.last_good = Some(outcome.clone());
            }
            record.last = Some(outcome.clone());
            match self.dcs.write_backup(&record, revision).await {
                Ok(CasOutcome::Applied) => return,
                Ok(CasOutcome::Lost) => continue,
                Err(e) => warn!("cannot record the backup outcome: {e}"),
            }
        }
        error!("gave up recording the backup outcome in etcd");
    }
}

/// The job: `pgbackrest backup`, then `info` for the new backup's label and sizes.
async fn run_job(
    pgbr: Pgbackrest,
    mut o: BackupOutcome,
    standby: Option<PgLocation>,
) -> BackupOutcome {
    let annotations = [
        ("hapg-member", o.member.clone()),
        ("hapg-source", o.source.clone()),
    ];
    let res = pgbr
        .backup(
            o.kind.as_str(),
            standby.as_ref(),
            &annotations,
            BACKUP_TIMEOUT,
        )
        .await;
    o.finished = Some(unix_now());
    match res {
        Ok(_) => {
            o.ok = true;
            if let Ok(json) = pgbr
                .run("info", &["--output=json".into()], SHORT_TIMEOUT)
                .await
                && let Ok(info) = super::info::parse(&json)
                && let Some(b) = info.backups.last()
            {
                o.label = Some(b.label.clone());
                o.size = b.size;
                o.repo_size = b.repo_size;
            }
        }
        Err(e) => o.error = Some(e.to_string()),
    }
    o
}

/// This machine, as far as a standby's files are concerned: the host name (each container
/// has its own, though they share the kernel) and the kernel's boot id (two machines with one
/// host name still differ). Members with the same value read each other's data directories
/// by the same local paths.
pub fn host_id() -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{} {}",
        read("/proc/sys/kernel/hostname"),
        read("/proc/sys/kernel/random/boot_id")
    )
}

/// The other members as backup sources: streaming, their lag behind the leader, and whether
/// their PostgreSQL's place is published and on this machine (`host`).
fn candidates(c: &Cluster, me: &str, host: &str) -> Vec<StandbyCandidate> {
    let leader_pos = crate::status::leader_position(c);
    c.members
        .iter()
        .filter(|m| m.name != me)
        .map(|m| StandbyCandidate {
            name: m.name.clone(),
            streaming: m.record.state == "running"
                && m.record.replication_state.as_deref() == Some("streaming"),
            lag: leader_pos
                .zip(m.record.xlog_location)
                .map(|(l, p)| l.saturating_sub(p)),
            reachable: c
                .backup_members
                .get(&m.name)
                .is_some_and(|b| b.host.as_deref() == Some(host)),
        })
        .collect()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcs::{MemberEntry, MemberRecord};

    fn member(name: &str) -> MemberEntry {
        MemberEntry {
            name: name.into(),
            record: MemberRecord {
                state: "running".into(),
                role: "replica".into(),
                replication_state: Some("streaming".into()),
                ..Default::default()
            },
            revision: 1,
            lease: 1,
        }
    }

    fn place(host: Option<&str>) -> BackupMember {
        BackupMember {
            data_dir: "/var/lib/postgresql/data".into(),
            port: 5432,
            socket: None,
            host: host.map(str::to_string),
        }
    }

    #[test]
    fn only_replicas_on_this_machine_can_be_backup_standbys() {
        let me = host_id();
        let mut c = Cluster {
            members: vec![member("pg1"), member("pg2"), member("pg3"), member("pg4")],
            ..Cluster::default()
        };
        c.backup_members.insert("pg2".into(), place(Some(&me)));
        c.backup_members
            .insert("pg3".into(), place(Some("other-host 1234")));
        c.backup_members.insert("pg4".into(), place(None));
        let reach: Vec<(String, bool)> = candidates(&c, "pg1", &me)
            .into_iter()
            .map(|s| (s.name, s.reachable))
            .collect();
        assert_eq!(
            reach,
            vec![
                ("pg2".to_string(), true),
                ("pg3".to_string(), false),
                ("pg4".to_string(), false),
            ]
        );
        assert!(
            me.contains(' ') && me.len() > 10,
            "host name and boot id: {me:?}"
        );
    }
}
