//! `hactl dsn [MEMBER] [--role ROLE]`: a libpq connection string (`host=.. port=..`) for a
//! member, the leader by default, from its `conn_url` in etcd (as patronictl's `dsn`).

use ha_agent::dcs::{Cluster, MemberEntry};

use crate::cmd::select::{self, Role};
use crate::cmd::{Ctx, say};
use crate::dcs::require_member;
use crate::error::{failed, usage};

/// `dsn` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A member name (or, as with patronictl, the cluster's name).
    pub name: Option<String>,
    /// The first member with this role (default: the leader).
    #[arg(short = 'r', long, value_enum)]
    pub role: Option<Role>,
    /// This member.
    #[arg(short = 'm', long)]
    pub member: Option<String>,
}

/// `host=<host> port=<port>` for a member's `conn_url`.
pub fn dsn(m: &MemberEntry) -> Option<String> {
    let t = m.record.conn_target()?;
    Some(format!("host={} port={}", t.host, t.port))
}

fn pick<'a>(
    c: &'a Cluster,
    scope: &str,
    member: Option<&str>,
    role: Option<Role>,
) -> anyhow::Result<&'a MemberEntry> {
    match (member, role) {
        (Some(_), Some(_)) => Err(usage("--role and --member are mutually exclusive options")),
        (Some(m), None) => require_member(c, scope, m),
        (None, role) => select::with_role(c, role.unwrap_or(Role::Leader))
            .into_iter()
            .next()
            .ok_or_else(|| {
                failed(format!(
                    "cluster {scope} has no member with that role (see hactl list)"
                ))
            }),
    }
}

/// Runs `hactl dsn`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let settings = ctx.settings()?;
    let (cluster, member) = match a.name {
        // patronictl's positional is the cluster name.
        Some(n) if settings.scope.as_deref().is_none_or(|s| s == n) => (Some(n), a.member),
        Some(n) => {
            if a.member.is_some() {
                return Err(usage(
                    "give the member once: as an argument or with --member",
                ));
            }
            (None, Some(n))
        }
        None => (None, a.member),
    };
    let o = ctx.open(cluster.as_deref()).await?;
    let c = o.dcs.cluster().await?;
    let m = pick(&c, &o.dcs.scope, member.as_deref(), a.role)?;
    let line = dsn(m).ok_or_else(|| {
        failed(format!(
            "{} publishes no usable conn_url ({:?})",
            m.name, m.record.conn_url
        ))
    })?;
    say(&line);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ha_agent::dcs::MemberRecord;

    fn entry(url: &str) -> MemberEntry {
        MemberEntry {
            name: "n".into(),
            record: MemberRecord {
                conn_url: url.into(),
                ..Default::default()
            },
            revision: 1,
            lease: 0,
        }
    }

    #[test]
    fn dsn_from_conn_url() {
        assert_eq!(
            dsn(&entry("postgres://10.0.0.1:5433/postgres")).as_deref(),
            Some("host=10.0.0.1 port=5433")
        );
        assert_eq!(
            dsn(&entry("postgres://db.example/postgres")).as_deref(),
            Some("host=db.example port=5432")
        );
        assert_eq!(dsn(&entry("")), None);
    }
}
