//! `hactl version [CLUSTER [MEMBER...]]`: hactl's version and, per member, the agent and
//! PostgreSQL versions from its `GET /patroni` (as patronictl's `version`). Without a
//! configuration only hactl's version is printed.

use serde_json::Value;

use crate::cmd::{Ctx, cluster_and_members, say};

/// `version` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// [CLUSTER] [MEMBER...]: whose versions to show (default: every member of the
    /// configured cluster).
    pub targets: Vec<String>,
}

/// `150018` → `15.18`; `90624` → `9.6.24`.
pub fn pg_version(v: u64) -> String {
    if v < 100_000 {
        format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
    } else {
        format!("{}.{}", v / 10000, v % 10000)
    }
}

/// Runs `hactl version`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    say(&format!("hactl version {}", env!("CARGO_PKG_VERSION")));
    let Ok(settings) = ctx.settings() else {
        return Ok(());
    };
    let (cluster, names) = cluster_and_members(&a.targets, settings.scope.as_deref());
    if cluster.is_none() && settings.scope.is_none() {
        return Ok(());
    }
    let o = ctx.open(cluster.as_deref()).await?;
    let c = o.dcs.cluster().await?;
    say("");
    for m in &c.members {
        if m.record.api_url.is_empty() || (!names.is_empty() && !names.contains(&m.name)) {
            continue;
        }
        match o.api.patroni(&m.record.api_url).await {
            Ok(p) => {
                let agent = p
                    .get("patroni")
                    .and_then(|x| x.get("version"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                let pg = p
                    .get("server_version")
                    .and_then(Value::as_u64)
                    .map(|v| format!(" PostgreSQL {}", pg_version(v)))
                    .unwrap_or_default();
                say(&format!("{}: agent {agent}{pg}", m.name));
            }
            Err(e) => say(&format!("{}: failed to get version: {e}", m.name)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pg_version;

    #[test]
    fn pg_versions_as_patronictl() {
        assert_eq!(pg_version(90624), "9.6.24");
        assert_eq!(pg_version(100000), "10.0");
        assert_eq!(pg_version(150018), "15.18");
    }
}
