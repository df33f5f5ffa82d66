//! `hactl -c node.yml restore --time T | --lsn L | --name N | --latest`: point-in-time
//! recovery of a stopped cluster from the pgBackRest repository, onto this member.
//!
//! Steps, each checked before the next; nothing is deleted at any point:
//! 1. refuse while any agent of the cluster runs (a member key exists) or this member's
//!    PostgreSQL runs;
//! 2. refuse a target before the end of the first backup (there is nothing to restore it
//!    from), or an empty repository;
//! 3. `pgbackrest restore` into a new directory `<data_dir>.restore-<unix time>`;
//! 4. run PostgreSQL there on a private socket (no TCP, archiving off) until recovery reaches
//!    the target and promotes; then remove the recovery settings pgBackRest wrote into
//!    `postgresql.auto.conf` (a replica cloned later must not stop at the target) and stop;
//! 5. only then rename the old data directory to `<data_dir>.before-restore-<time>` (kept)
//!    and the new one into its place;
//! 6. delete the keys that describe the old cluster's run (`initialize`, `leader`, members,
//!    `status`, `history`, ...; `config` and the backup keys stay), so the agent started on
//!    this member leads with the restored data. The other members' data directories must be
//!    moved away before they start, so that they clone from it;
//! 7. request a full backup (in the `backup` key), taken when the restored member leads.
//!
//! Run as root, the commands run as the owner of the data directory's parent (PostgreSQL
//! refuses to run as root, and the files must belong to it).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

use crate::cmd::backup::{agent_backup_config, stanza_info};
use crate::cmd::{Ctx, say};
use crate::error::{failed, usage};
use ha_agent::backup::pgbackrest::Pgbackrest;
use ha_agent::backup::runner::unix_now;

/// `restore` options.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["time", "lsn", "name", "latest"])))]
pub struct Args {
    /// Recover to this time (`2026-12-03 14:05:00+00`, as PostgreSQL reads recovery_target_time).
    #[arg(long)]
    pub time: Option<String>,
    /// Recover to this WAL position (`0/3000060`).
    #[arg(long)]
    pub lsn: Option<String>,
    /// Recover to this restore point (`pg_create_restore_point`).
    #[arg(long)]
    pub name: Option<String>,
    /// Recover to the end of the archived WAL.
    #[arg(long)]
    pub latest: bool,
    /// Restore from this backup set (label) instead of the one pgBackRest picks.
    #[arg(long)]
    pub set: Option<String>,
    /// Keep the cluster's keys in etcd (default: delete those of the old run).
    #[arg(long)]
    pub keep_dcs: bool,
    /// Seconds the recovery may take.
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
}

/// Runs `hactl restore`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let (cfg, backup) = agent_backup_config(ctx)?;
    let data_dir = cfg.postgresql.data_dir.clone();
    let o = ctx.open(None).await?;
    let c = o.dcs.cluster().await?;
    if !c.members.is_empty() || c.leader.is_some() {
        let names: Vec<&str> = c.members.iter().map(|m| m.name.as_str()).collect();
        return Err(failed(format!(
            "cluster {} is running (members: {}): stop every agent first",
            o.dcs.scope,
            names.join(", ")
        )));
    }
    if postmaster_running(&data_dir) {
        return Err(failed(format!(
            "{}/postmaster.pid exists: stop PostgreSQL first",
            data_dir.display()
        )));
    }
    let info = stanza_info(&cfg, &backup).await?;
    let first = info
        .backups
        .iter()
        .filter_map(|b| b.stop)
        .min()
        .ok_or_else(|| {
            failed(format!(
                "no backup in stanza {}: {}",
                backup.stanza, info.status
            ))
        })?;
    let (kind, target) = match (&a.time, &a.lsn, &a.name) {
        (Some(t), _, _) => {
            let at = parse_time(t)?;
            if at < first {
                return Err(failed(format!(
                    "restore time {t} is before the end of the first backup ({}): nothing to restore it from",
                    chrono::DateTime::from_timestamp(first, 0).unwrap_or_default()
                )));
            }
            ("time", Some(t.clone()))
        }
        (_, Some(l), _) => ("lsn", Some(l.clone())),
        (_, _, Some(n)) => ("name", Some(n.clone())),
        _ => ("default", None),
    };
    let parent = data_dir
        .parent()
        .ok_or_else(|| usage("the data directory has no parent"))?;
    let meta =
        std::fs::metadata(parent).map_err(|e| failed(format!("{}: {e}", parent.display())))?;
    let (uid, gid) = (meta.uid(), meta.gid());
    let stamp = unix_now();
    let new_dir = with_suffix(&data_dir, &format!(".restore-{stamp}"));

    say(&format!(
        "restoring stanza {} into {}",
        backup.stanza,
        new_dir.display()
    ));
    let pgbr = Pgbackrest::new(&backup, cfg.postgresql.superuser.password.clone()).run_as(uid, gid);
    let mut args = vec![
        format!("--pg1-path={}", new_dir.display()),
        format!("--type={kind}"),
        "--log-level-file=off".into(),
    ];
    if let Some(t) = &target {
        args.push(format!("--target={t}"));
        args.push("--target-action=promote".into());
    }
    if let Some(s) = &a.set {
        args.push(format!("--set={s}"));
    }
    pgbr.run("restore", &args, Duration::from_secs(a.timeout))
        .await
        .map_err(|e| {
            failed(format!(
                "{e} (nothing was changed; {} may be removed)",
                new_dir.display()
            ))
        })?;

    say("recovering (PostgreSQL on a private socket, archiving off)");
    recover(&cfg.postgresql.bin_dir, &new_dir, uid, gid, a.timeout).await?;
    strip_recovery_settings(&new_dir)?;

    if data_dir.exists() {
        let old = with_suffix(&data_dir, &format!(".before-restore-{stamp}"));
        std::fs::rename(&data_dir, &old)
            .map_err(|e| failed(format!("cannot move {} aside: {e}", data_dir.display())))?;
        say(&format!("old data directory kept as {}", old.display()));
    }
    std::fs::rename(&new_dir, &data_dir)
        .map_err(|e| failed(format!("cannot move {} into place: {e}", new_dir.display())))?;
    if !a.keep_dcs {
        o.dcs.dcs.reset_for_restore().await?;
        say(&format!(
            "cluster {}: keys of the old run deleted (config and backup keys kept)",
            o.dcs.scope
        ));
    }
    request_full_backup(&o.dcs.dcs, stamp).await;
    say(&format!(
        "restored into {}: start this member's agent first; move the other members' data \
         directories away before starting them (they clone from it)",
        data_dir.display()
    ));
    Ok(())
}

/// Asks for a full backup as soon as the restored member leads: the newest backups in the
/// repository belong to the abandoned timeline, and a replica restored from the repository
/// must find one of the new one. A failure here is only reported.
async fn request_full_backup(dcs: &ha_agent::dcs::etcd::EtcdDcs, at: u64) {
    let res = async {
        let current = dcs.read_backup().await?;
        let (mut record, revision) = match current {
            Some(v) => (v.value, Some(v.revision)),
            None => (Default::default(), None),
        };
        record.request = Some(ha_agent::backup::record::BackupRequest {
            id: format!("restore-{at}"),
            kind: ha_agent::ha::backup::BackupKind::Full,
            at,
        });
        dcs.write_backup(&record, revision).await
    }
    .await;
    match res {
        Ok(ha_agent::dcs::CasOutcome::Applied) => {
            say("a full backup is requested: the restored leader takes it when it starts")
        }
        Ok(_) | Err(_) => eprintln!(
            "could not request a full backup: run `hactl backup --type full` once the cluster runs"
        ),
    }
}

/// Whether `postmaster.pid` names a live process (a file left by a killed server does not).
fn postmaster_running(data_dir: &Path) -> bool {
    std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
        .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
}

/// `path` with `suffix` appended to its last component.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Unix seconds of a time as the user wrote it (RFC 3339, or PostgreSQL's `YYYY-MM-DD
/// HH:MM:SS[.frac][+TZ]`).
fn parse_time(t: &str) -> anyhow::Result<i64> {
    if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        return Ok(d.timestamp());
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%#z"] {
        if let Ok(d) = chrono::DateTime::parse_from_str(t, f) {
            return Ok(d.timestamp());
        }
    }
    Err(usage(format!(
        "--time {t:?}: expected a time with its zone, e.g. \"2026-12-03 14:05:00+00\""
    )))
}

/// Starts PostgreSQL on `dir` until recovery promoted (`recovery.signal` gone), then stops it.
async fn recover(bin: &Path, dir: &Path, uid: u32, gid: u32, timeout: u64) -> anyhow::Result<()> {
    let sock = tempfile::Builder::new()
        .prefix("hapg-restore-")
        .tempdir()
        .map_err(|e| failed(format!("temporary socket directory: {e}")))?;
    std::os::unix::fs::chown(sock.path(), Some(uid), Some(gid))?;
    let log = with_suffix(dir, ".log");
    let opts = format!(
        "-c listen_addresses='' -c unix_socket_directories='{}' -c archive_mode=off -c port=5432",
        sock.path().display()
    );
    let pg_ctl = |args: Vec<String>| {
        let mut c = Command::new(bin.join("pg_ctl"));
        c.args(args).uid(uid).gid(gid).kill_on_drop(true);
        c
    };
    let d = dir.display().to_string();
    let start = vec![
        "start".into(),
        "-D".into(),
        d.clone(),
        "-l".into(),
        log.display().to_string(),
        "-o".into(),
        opts,
        "-W".into(),
    ];
    let st = pg_ctl(start).status().await?;
    if !st.success() {
        return Err(failed(format!(
            "pg_ctl start failed; see {}",
            log.display()
        )));
    }
    let t0 = std::time::Instant::now();
    let deadline = t0 + Duration::from_secs(timeout);
    let mut seen = false;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let running = dir.join("postmaster.pid").exists();
        seen |= running;
        if !dir.join("recovery.signal").exists() && running {
            break;
        }
        if !running && (seen || t0.elapsed() > Duration::from_secs(30)) {
            return Err(failed(format!(
                "recovery stopped before the target was reached; see {} ({} left for inspection, nothing else changed)",
                log.display(),
                dir.display()
            )));
        }
        if std::time::Instant::now() > deadline {
            let _ = pg_ctl(vec![
                "stop".into(),
                "-D".into(),
                d.clone(),
                "-m".into(),
                "fast".into(),
            ])
            .status()
            .await;
            return Err(failed(format!(
                "recovery did not finish within {timeout} s; see {}",
                log.display()
            )));
        }
    }
    let st = pg_ctl(vec![
        "stop".into(),
        "-D".into(),
        d,
        "-m".into(),
        "fast".into(),
        "-w".into(),
    ])
    .status()
    .await?;
    if !st.success() {
        return Err(failed(format!("pg_ctl stop failed; see {}", log.display())));
    }
    Ok(())
}

/// Removes `restore_command` and `recovery_target*` from `postgresql.auto.conf`.
fn strip_recovery_settings(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join("postgresql.auto.conf");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("restore_command") || t.starts_with("recovery_target"))
        })
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_with_their_zone() {
        assert_eq!(parse_time("2026-12-03T14:05:00Z").unwrap(), 1796306700);
        assert_eq!(parse_time("2026-12-03 14:05:00+00").unwrap(), 1796306700);
        assert_eq!(parse_time("2026-12-03 15:05:00.25+01").unwrap(), 1796306700);
        assert!(parse_time("yesterday").is_err());
    }
}
