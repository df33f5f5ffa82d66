//! One module per subcommand; this module dispatches and holds what they share.

pub mod backup;
pub mod completions;
pub mod dsn;
pub mod edit_config;
pub mod failover;
pub mod fix_initialize;
pub mod flush;
pub mod handover;
pub mod history;
pub mod list;
pub mod pause;
pub mod query;
pub mod reinit;
pub mod reload;
pub mod remove;
pub mod restart;
pub mod restore;
pub mod select;
pub mod show_config;
pub mod switchover;
pub mod version;

use std::io::Write;

use crate::api::Api;
use crate::cli::{Cli, Command};
use crate::config::{Settings, Source, resolve};
use crate::dcs::ClusterDcs;

/// What every command gets: the global options.
pub struct Ctx {
    /// Where the cluster is.
    pub source: Source,
}

/// An opened cluster: settings, etcd and the REST API client.
pub struct Opened {
    /// The cluster's keys in etcd.
    pub dcs: ClusterDcs,
    /// REST API client.
    pub api: Api,
}

impl Ctx {
    /// Resolves the settings.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        resolve(&self.source)
    }

    /// Opens cluster `name` (or the configured scope).
    pub async fn open(&self, name: Option<&str>) -> anyhow::Result<Opened> {
        let settings = self.settings()?;
        let scope = settings.scope(name)?;
        let dcs = ClusterDcs::connect(&settings, &scope).await?;
        let api = Api::new(&settings)?;
        Ok(Opened { dcs, api })
    }
}

/// Runs the parsed command line.
pub async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let ctx = Ctx {
        source: cli.source(),
    };
    match cli.command {
        Command::List(a) => list::run(&ctx, a).await,
        Command::Topology(a) => list::topology(&ctx, a).await,
        Command::Switchover(a) => switchover::run(&ctx, a).await,
        Command::Failover(a) => failover::run(&ctx, a).await,
        Command::Restart(a) => restart::run(&ctx, a).await,
        Command::Reload(a) => reload::run(&ctx, a).await,
        Command::Reinit(a) => reinit::run(&ctx, a).await,
        Command::Pause(a) => pause::run(&ctx, a, true).await,
        Command::Resume(a) => pause::run(&ctx, a, false).await,
        Command::ShowConfig(a) => show_config::run(&ctx, a).await,
        Command::EditConfig(a) => edit_config::run(&ctx, a).await,
        Command::History(a) => history::run(&ctx, a).await,
        Command::Dsn(a) => dsn::run(&ctx, a).await,
        Command::Query(a) => query::run(&ctx, a).await,
        Command::Flush(a) => flush::run(&ctx, a).await,
        Command::Remove(a) => remove::run(&ctx, a).await,
        Command::FixInitialize(a) => fix_initialize::run(&ctx, a).await,
        Command::Version(a) => version::run(&ctx, a).await,
        Command::Completions(a) => completions::run(a),
        Command::Backup(a) => backup::run_backup(&ctx, a).await,
        Command::Backups(a) => backup::run_backups(&ctx, a).await,
        Command::Restore(a) => restore::run(&ctx, a).await,
    }
}

/// Prints `text` and a newline on stdout; a closed pipe (`hactl list | head`) is not an error.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// Splits patronictl-style positionals `[CLUSTER] MEMBER...`: the first argument names the
/// cluster when it equals the configured cluster name, or when no name is configured
/// (patronictl requires it there); otherwise every argument is a member.
pub fn cluster_and_members(
    positionals: &[String],
    scope: Option<&str>,
) -> (Option<String>, Vec<String>) {
    match positionals.split_first() {
        Some((first, rest)) if scope.is_none_or(|s| s == first) => {
            (Some(first.clone()), rest.to_vec())
        }
        _ => (None, positionals.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_positional_is_the_cluster_only_when_it_is_its_name() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            cluster_and_members(&v(&["demo", "node1"]), Some("demo")),
            (Some("demo".into()), v(&["node1"]))
        );
        assert_eq!(
            cluster_and_members(&v(&["node1", "node2"]), Some("demo")),
            (None, v(&["node1", "node2"]))
        );
        assert_eq!(
            cluster_and_members(&v(&["demo", "node1"]), None),
            (Some("demo".into()), v(&["node1"]))
        );
        assert_eq!(cluster_and_members(&[], Some("demo")), (None, vec![]));
    }
}
