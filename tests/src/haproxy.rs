//! `HaproxyProc`: the shipped `haproxy/haproxy.cfg`, run for real in front of a test cluster
//! (exactly three members, as the file describes), on free loopback ports.

use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::procs::{free_port, system_bin, workspace_root};

/// A running HAProxy.
pub struct HaproxyProc {
    /// Port of the primary (read-write) listener.
    pub primary_port: u16,
    /// Port of the replicas (read-only) listener.
    pub replicas_port: u16,
    /// Port of the stats page.
    pub stats_port: u16,
    child: Child,
}

impl HaproxyProc {
    /// Starts HAProxy for members given as `(pg_port, api_port)`.
    pub fn start(members: &[(u16, u16); 3], log: &std::path::Path) -> HaproxyProc {
        let cfg = workspace_root().join("haproxy").join("haproxy.cfg");
        Self::run(members, log, &cfg)
    }

    /// As `start`, logging into `log_dir`; with `patroni_checks`, the shipped file's checks
    /// are replaced by those of Patroni's sample configuration (`inter 1s fall 2 rise 1`,
    /// `timeout check 5s`), the timing most Patroni deployments run with.
    pub fn start_with(
        members: &[(u16, u16); 3],
        log_dir: &std::path::Path,
        patroni_checks: bool,
    ) -> HaproxyProc {
        let log = log_dir.join("haproxy.log");
        if !patroni_checks {
            return Self::start(members, &log);
        }
        let shipped = workspace_root().join("haproxy").join("haproxy.cfg");
        let text = std::fs::read_to_string(&shipped).expect("read haproxy.cfg");
        let patroni = text
            .replace(
                "inter 100ms fastinter 100ms downinter 100ms fall 2 rise 1",
                "inter 1s fall 2 rise 1",
            )
            .replace("timeout check 1s", "timeout check 5s");
        assert_ne!(
            patroni, text,
            "haproxy.cfg no longer has the lines to replace"
        );
        let cfg = log_dir.join("haproxy-patroni-checks.cfg");
        std::fs::write(&cfg, patroni).expect("write haproxy config");
        Self::run(members, &log, &cfg)
    }

    fn run(members: &[(u16, u16); 3], log: &std::path::Path, cfg: &std::path::Path) -> HaproxyProc {
        let bin = system_bin("HAPROXY_BIN", &["haproxy"], "apt-get install haproxy");
        let (primary_port, replicas_port, stats_port) = (free_port(), free_port(), free_port());
        let out = std::fs::File::create(log).expect("haproxy log");
        let err = out.try_clone().expect("log fd");
        let mut cmd = Command::new(bin);
        cmd.arg("-f")
            .arg(cfg)
            .arg("-db")
            .env("HAPG_PRIMARY_BIND", format!("127.0.0.1:{primary_port}"))
            .env("HAPG_REPLICAS_BIND", format!("127.0.0.1:{replicas_port}"))
            .env("HAPG_STATS_BIND", format!("127.0.0.1:{stats_port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        for (i, (pg, api)) in members.iter().enumerate() {
            cmd.env(format!("NODE{}_PG", i + 1), format!("127.0.0.1:{pg}"))
                .env(format!("NODE{}_API", i + 1), api.to_string());
        }
        let child = cmd.spawn().expect("spawn haproxy");
        HaproxyProc {
            primary_port,
            replicas_port,
            stats_port,
            child,
        }
    }

    /// HAProxy's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Server states of proxy `px` (`primary`, `replicas_only`, ...) from the stats page:
    /// `(server, status)` such as `("node1", "UP")`.
    pub async fn servers(&self, px: &str) -> Vec<(String, String)> {
        let Some(csv) = self.stats_csv().await else {
            return Vec::new();
        };
        csv.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                if f.first() != Some(&px)
                    || matches!(f.get(1), Some(&"FRONTEND") | Some(&"BACKEND"))
                {
                    return None;
                }
                Some((f.get(1)?.to_string(), f.get(17)?.to_string()))
            })
            .collect()
    }

    /// Waits until HAProxy's primary listener has exactly `leader` up (servers start as UP
    /// until their first checks fail, so right after start it may still route elsewhere).
    pub async fn wait_routes_to(&self, leader: &str, timeout: std::time::Duration) {
        crate::procs::wait_for(
            &format!("HAProxy routing writes to {leader} only"),
            timeout,
            || async {
                let s = self.servers("primary").await;
                let up: Vec<&str> = s
                    .iter()
                    .filter(|(_, st)| st.starts_with("UP"))
                    .map(|(n, _)| n.as_str())
                    .collect();
                (up == [leader]).then_some(())
            },
        )
        .await;
    }

    /// The stats page as CSV (`;csv`), to see which servers HAProxy considers up.
    pub async fn stats_csv(&self) -> Option<String> {
        crate::agent::http()
            .get(format!("http://127.0.0.1:{}/;csv", self.stats_port))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }
}
