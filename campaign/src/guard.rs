//! Guaranteed clean-up. A campaign holds an exclusive lock (`/run/hapg-campaign.lock`, or
//! `/run/hapg-campaignN.lock` for instance N) for its whole run: a second campaign of the
//! same instance refuses to start instead of tearing down the first one's namespaces. Having
//! the lock means any namespace of the instance (`hapgc-*`, `hapgcN-*`) or process in it
//! left on the machine belongs to a campaign that was killed, so it is removed before
//! starting, along with the old data directory. When the guard is dropped (normal end, error, panic, or after Ctrl-C
//! or SIGTERM in `main`) it kills every process in the campaign's namespaces, deletes the
//! namespaces (and with them the bridge and the veths) and removes the data directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nix::fcntl::{Flock, FlockArg};

use crate::net::{self, Instance};

/// Holds the lock; cleans up when dropped.
pub struct Guard {
    _lock: Flock<File>,
    instance: Instance,
    data_dir: PathBuf,
}

impl Guard {
    /// Takes the lock and removes leftovers of an earlier, killed campaign.
    pub fn acquire(instance: Instance, data_dir: &Path) -> anyhow::Result<Guard> {
        if !nix::unistd::geteuid().is_root() {
            bail!(
                "ha-campaign needs root (network namespaces, iptables); agents and PostgreSQL still run as postgres"
            );
        }
        let path = instance.lock_path();
        let f = File::create(&path).with_context(|| format!("create {}", path.display()))?;
        let lock = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, e)) => bail!(
                "another ha-campaign is running ({} is locked: {e}; --instance runs one beside it)",
                path.display()
            ),
        };
        let leftovers = net::campaign_namespaces(instance);
        if !leftovers.is_empty() {
            tracing::warn!(?leftovers, "removing what a killed campaign left behind");
        }
        for p in net::destroy_all(instance) {
            tracing::warn!("clean-up: {p}");
        }
        remove_dir(data_dir)?;
        Ok(Guard {
            _lock: lock,
            instance,
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Removes everything now (also done on drop).
    pub fn clean(&self) -> Vec<String> {
        let mut problems = net::destroy_all(self.instance);
        if let Err(e) = remove_dir(&self.data_dir) {
            problems.push(format!("{e:#}"));
        }
        problems
    }
}

fn remove_dir(d: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", d.display())),
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let problems = self.clean();
        if problems.is_empty() {
            eprintln!("clean-up: namespaces, processes and data removed");
        }
        for p in problems {
            eprintln!("clean-up problem: {p}");
        }
    }
}
