//! Backups at size (issue 10's targets): a pgbench database of a few GiB on a 3-member cluster
//! with the `backup:` section, then, each timed, with the page cache dropped before it:
//! - the raw copy speed of the disk: `cp -a` of the leader's data directory next to it, and
//!   `sync` (what any backup of those files costs at least);
//! - a full backup (`hactl backup --type full`, taken from a replica; lz4) and its throughput;
//! - a restore of it (`pgbackrest restore` into an empty directory) and its throughput;
//! - a new member created from the repository (`create_replica_methods: [pgbackrest,
//!   basebackup]`) against one created by `pg_basebackup` from the primary: start to
//!   streaming, and the CPU the primary's PostgreSQL processes used meanwhile.
//!
//! The "primary CPU" is user + system time of the leader's postmaster and every process under
//! it (live ones from `/proc/<pid>/stat`, finished ones through the postmaster's `cutime`,
//! `cstime`): what the operation cost the server that takes the writes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use ha_tests::agent::AgentProc;
use ha_tests::backup::{backup_record, backups, make_repo, pgbackrest};
use ha_tests::cluster::{Opts as ClusterOpts, TestCluster};
use ha_tests::ctl::hactl;
use ha_tests::procs::{RunAs, wait_for};

use crate::commit::pgbench;
use crate::stats::command;

#[derive(Args, Debug, Clone)]
pub struct Opts {
    /// pgbench scale of the generated database (200 is about 3 GiB on disk).
    #[arg(long, default_value_t = 200)]
    pub scale: u32,
}

/// Schedules that never fire during the run: every backup here is asked for.
const BACKUP_YAML: &str = r#"backup:
  repo_path: {dir}/../repo
  retention_full: 2
  compress_type: lz4
  schedule:
    full: "0 0 1 1 *"
"#;

/// Bytes of the regular files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Flushes dirty pages and drops the page cache (as root; otherwise only flushes), so that
/// each measured operation reads from the disk.
fn drop_caches() {
    let _ = std::process::Command::new("sync").status();
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3\n");
}

/// Clock ticks per second for `/proc/<pid>/stat` times.
fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// `(utime + stime, cutime + cstime)` of `pid`, in ticks.
fn stat_ticks(pid: i32) -> Option<(u64, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    let n = |i: usize| f.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    Some((n(14)? + n(15)?, n(16)? + n(17)?))
}

/// The parent pid of `pid`.
fn ppid(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds used so far by the postmaster of `data_dir` and its processes.
fn postgres_cpu(data_dir: &Path) -> f64 {
    let Some(pm) = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<i32>().ok())
    else {
        return 0.0;
    };
    let mut ticks = stat_ticks(pm).map_or(0, |(own, children)| own + children);
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if ppid(pid) == Some(pm) {
                ticks += stat_ticks(pid).map_or(0, |(own, _)| own);
            }
        }
    }
    ticks as f64 / ticks_per_second()
}

fn mib_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1_048_576.0 / d.as_secs_f64().max(1e-9)
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / 1_073_741_824.0
}

/// Runs a shell command as root; fails with its output.
async fn sh(cmd: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Starts a new member `name` with `postgresql` extras and times it to streaming from
/// `leader`; returns (time, primary CPU seconds meanwhile).
async fn new_member(
    c: &mut TestCluster,
    leader: &str,
    name: &str,
    postgresql: Vec<String>,
) -> anyhow::Result<(Duration, f64)> {
    let parent = c.nodes[0].dir.parent().map(Path::to_path_buf).unwrap();
    let mut n = AgentProc::new(
        name,
        &parent,
        c.nodes[0].etcd_hosts.clone(),
        &c.log_dir,
        RunAs::unprivileged(),
    );
    let mut s = c.settings.clone();
    s.extra.postgresql = postgresql;
    drop_caches();
    let pdata = c.node(leader).data_dir();
    let cpu0 = postgres_cpu(&pdata);
    let t0 = Instant::now();
    n.start(&s);
    c.nodes.push(n);
    c.wait_streaming(leader, &[name], Duration::from_secs(1800))
        .await;
    let took = t0.elapsed();
    let cpu = postgres_cpu(&pdata) - cpu0;
    c.node_mut(name).stop(Duration::from_secs(60)).await;
    let dir = c.node(name).dir.clone();
    c.nodes.pop();
    let _ = std::fs::remove_dir_all(dir);
    Ok((took, cpu))
}

pub async fn run(o: Opts) -> anyhow::Result<()> {
    let mut settings = crate::settings(30, 10, 10);
    settings.extra_yaml = BACKUP_YAML.into();
    let mut c = TestCluster::start(
        "bench_backup",
        ClusterOpts {
            settings,
            before_start: Some(make_repo),
            ..ClusterOpts::default()
        },
    )
    .await;
    let leader = c.wait_healthy(Duration::from_secs(120)).await;
    wait_for(
        "the first good backup",
        Duration::from_secs(120),
        || async { backup_record(&c).await?.get("last_good").cloned() },
    )
    .await;
    let port = c.node(&leader).pg_port;
    println!("generating pgbench scale {} ...", o.scale);
    pgbench(
        port,
        &["-i".into(), "-q".into(), "-s".into(), o.scale.to_string()],
    )
    .await?;
    let cl = c.node(&leader).client().await?;
    cl.batch_execute("checkpoint").await?;
    let others: Vec<String> = c.others(&[&leader]);
    let os: Vec<&str> = others.iter().map(String::as_str).collect();
    c.wait_streaming(&leader, &os, Duration::from_secs(600))
        .await;
    wait_for(
        "the replicas to replay everything",
        Duration::from_secs(600),
        || async {
            let r = cl
            .query_one(
                "select count(*) from pg_stat_replication where replay_lsn = pg_current_wal_lsn()",
                &[],
            )
            .await
            .ok()?;
            (r.get::<_, i64>(0) == 2).then_some(())
        },
    )
    .await;
    let data = c.node(&leader).data_dir();
    let bytes = dir_bytes(&data);
    println!(
        "database: {:.2} GiB in the leader's data directory",
        gib(bytes)
    );

    let parent: PathBuf = c.nodes[0].dir.parent().map(Path::to_path_buf).unwrap();
    let raw_to = parent.join("raw-copy");
    drop_caches();
    let t0 = Instant::now();
    sh(&format!(
        "cp -a '{}' '{}' && sync",
        data.display(),
        raw_to.display()
    ))
    .await?;
    let raw = t0.elapsed();
    let _ = std::fs::remove_dir_all(&raw_to);

    drop_caches();
    let cpu0 = postgres_cpu(&data);
    let t0 = Instant::now();
    let out = hactl(
        &c.node("node1").config_path(),
        &["backup", "--type", "full", "--timeout", "3600"],
    )
    .await;
    anyhow::ensure!(out.code == 0, "hactl backup: {}{}", out.stdout, out.stderr);
    drop_caches();
    let backup = t0.elapsed();
    let backup_cpu = postgres_cpu(&data) - cpu0;
    let list = backups(&c).await;
    let last = list
        .iter()
        .rev()
        .find(|b| b["type"] == "full")
        .cloned()
        .unwrap_or_default();
    let repo_size = last["repo_size"].as_u64().unwrap_or(0);
    // What pgBackRest copied (the database without pg_wal): the backup's throughput is of that.
    let backed_up = last["size"].as_u64().unwrap_or(bytes);

    let restore_to = parent.join("restore-test");
    std::fs::create_dir_all(&restore_to)?;
    RunAs::unprivileged().chown(&restore_to);
    drop_caches();
    let t0 = Instant::now();
    let (ok, text) = pgbackrest(
        &c,
        &leader,
        &[
            &format!("--pg1-path={}", restore_to.display()),
            "--type=immediate",
            "restore",
        ],
    )
    .await;
    anyhow::ensure!(ok, "pgbackrest restore: {text}");
    drop_caches();
    let restore = t0.elapsed();
    let restored = dir_bytes(&restore_to);
    let _ = std::fs::remove_dir_all(&restore_to);

    let (from_repo, repo_cpu) = new_member(
        &mut c,
        &leader,
        "node4",
        vec!["create_replica_methods: [pgbackrest, basebackup]".into()],
    )
    .await?;
    let (from_primary, basebackup_cpu) = new_member(&mut c, &leader, "node5", Vec::new()).await?;

    println!(
        "\n## backups with pgBackRest, pgbench scale {}, {:.2} GiB of data, lz4, fsync on, one disk",
        o.scale,
        gib(bytes)
    );
    println!(
        "- raw copy of the data directory (cp -a + sync): {:.1} s for {:.2} GiB, {:.0} MiB/s",
        raw.as_secs_f64(),
        gib(bytes),
        mib_per_s(bytes, raw)
    );
    println!(
        "- full backup from a replica (hactl backup --type full, from the request to the outcome): {:.1} s for {:.2} GiB, {:.0} MiB/s ({:.2} x raw copy), repository {:.2} GiB; primary PostgreSQL CPU {:.2} s",
        backup.as_secs_f64(),
        gib(backed_up),
        mib_per_s(backed_up, backup),
        mib_per_s(backed_up, backup) / mib_per_s(bytes, raw),
        gib(repo_size),
        backup_cpu
    );
    println!(
        "- restore (pgbackrest restore into an empty directory): {:.1} s for {:.2} GiB, {:.0} MiB/s ({:.2} x raw copy)",
        restore.as_secs_f64(),
        gib(restored),
        mib_per_s(restored, restore),
        mib_per_s(restored, restore) / mib_per_s(bytes, raw)
    );
    println!(
        "- new replica from the repository (create_replica_methods: [pgbackrest, basebackup]): {:.1} s to streaming; primary PostgreSQL CPU {:.2} s",
        from_repo.as_secs_f64(),
        repo_cpu
    );
    println!(
        "- new replica by pg_basebackup from the primary: {:.1} s to streaming; primary PostgreSQL CPU {:.2} s",
        from_primary.as_secs_f64(),
        basebackup_cpu
    );
    println!("- command: {}", command());
    Ok(())
}
