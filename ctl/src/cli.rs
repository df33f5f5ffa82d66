//! The command line: global options (where the cluster is, how to authenticate to the REST
//! API) and one subcommand per operation, named and shaped like patronictl's.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::config::Source;

/// hapg's operator CLI: list, switch over, pause, configure a cluster (a superset of patronictl).
#[derive(Debug, Parser)]
#[command(name = "hactl", version, about, max_term_width = 100)]
pub struct Cli {
    /// The agent's YAML (or a patronictl config file).
    #[arg(short = 'c', long = "config-file", global = true, env = "HACTL_CONFIG")]
    pub config_file: Option<PathBuf>,
    /// etcd to use instead of the file's: etcd3://host:2379[,host2:2379][/namespace].
    #[arg(
        short = 'd',
        long = "dcs-url",
        visible_alias = "dcs",
        global = true,
        env = "HACTL_DCS_URL"
    )]
    pub dcs_url: Option<String>,
    /// Cluster name (the file's `scope` otherwise).
    #[arg(long, global = true)]
    pub scope: Option<String>,
    /// REST API user (default: ctl.authentication or restapi.authentication of the file).
    #[arg(long, global = true, env = "HACTL_API_USERNAME")]
    pub username: Option<String>,
    /// REST API password.
    #[arg(
        long,
        global = true,
        env = "HACTL_API_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Do not verify the REST API's TLS certificate.
    #[arg(short = 'k', long, global = true)]
    pub insecure: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The global options that locate the cluster.
    pub fn source(&self) -> Source {
        Source {
            config_file: self.config_file.clone(),
            dcs_url: self.dcs_url.clone(),
            scope: self.scope.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            insecure: self.insecure,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the members of a cluster (as patronictl list).
    List(cmd::list::Args),
    /// Print the replication tree of a cluster.
    Topology(cmd::list::TopologyArgs),
    /// Hand the leader role to a replica, gracefully.
    Switchover(cmd::switchover::Args),
    /// Make a replica the leader (also when there is no leader).
    Failover(cmd::failover::Args),
    /// Restart PostgreSQL on members.
    Restart(cmd::restart::Args),
    /// Reload the configuration of members.
    Reload(cmd::reload::Args),
    /// Rebuild a replica from scratch.
    Reinit(cmd::reinit::Args),
    /// Maintenance mode: no automatic failover, PostgreSQL left alone.
    Pause(cmd::pause::Args),
    /// Leave maintenance mode.
    Resume(cmd::pause::Args),
    /// Print the cluster's dynamic configuration.
    ShowConfig(cmd::show_config::Args),
    /// Change the cluster's dynamic configuration.
    EditConfig(cmd::edit_config::Args),
    /// Show the history of failovers and switchovers.
    History(cmd::history::Args),
    /// Print a libpq connection string for a member.
    Dsn(cmd::dsn::Args),
    /// Run SQL on a member (the leader by default) and print the result (as patronictl query).
    Query(cmd::query::Args),
    /// Cancel a scheduled switchover.
    Flush(cmd::flush::Args),
    /// Delete a cluster's keys from etcd.
    Remove(cmd::remove::Args),
    /// Resolve a system-ID conflict: write the leader's system identifier into `initialize`.
    FixInitialize(cmd::fix_initialize::Args),
    /// Print hactl's version and each member's agent version.
    Version(cmd::version::Args),
    /// Print a shell completion script.
    Completions(cmd::completions::Args),
    /// Run a pgBackRest backup now (on the leader, from a healthy replica when there is one).
    Backup(cmd::backup::BackupArgs),
    /// List the backups in the pgBackRest repository (needs -c with the agent's YAML).
    Backups(cmd::backup::BackupsArgs),
    /// Restore a stopped cluster from the repository into a new data directory.
    Restore(cmd::restore::Args),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over every subcommand (a subcommand option that reuses
    /// a global option's letter or id panics only when that subcommand is run).
    #[test]
    fn every_subcommand_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn query_takes_patronictl_spellings_next_to_global_options() {
        use clap::Parser;
        let args = crate::cmd::query::patronictl_spellings(
            "hactl -c cfg.yml query -c select -U u -d db --password"
                .split(' ')
                .map(str::to_string)
                .collect(),
        );
        let cli = super::Cli::try_parse_from(args).expect("parses");
        let super::Command::Query(q) = cli.command else {
            panic!("not query");
        };
        assert_eq!(q.command.as_deref(), Some("select"));
        assert_eq!(q.db_user.as_deref(), Some("u"));
        assert_eq!(q.dbname.as_deref(), Some("db"));
        assert!(q.ask_password);
        assert_eq!(
            cli.config_file.as_deref(),
            Some(std::path::Path::new("cfg.yml"))
        );
    }
}
