//! `hactl query`: run SQL on a member (the leader by default) found through etcd, and print
//! the last result set as patronictl's `query` does: tab-separated (`--delimiter`) with a
//! header line by default, or `pretty`, `json`, `yaml`. A SQL error prints one row
//! `<time>\tERROR, SQLSTATE: <code>`, and a member that cannot be reached (or is not of the
//! asked `--role`) prints `<time>\tNo connection ... is available`, both with exit code 0,
//! as patronictl.
//!
//! patronictl's spellings after `query` (`-c SQL`, `-d DB`, `-U`/`--username USER`,
//! `--password`) collide with hactl's global options (`-c` config file, `-d` etcd URL, the
//! REST API's `--username`/`--password`), so [`patronictl_spellings`] rewrites them to this
//! command's own (`--command`, `--dbname`, `--db-user`, `--ask-password`) before parsing:
//! `hactl -c cfg.yml query -c 'select 1'` works as with patronictl.
//!
//! The connection: host and port from the member's `conn_url`; user `-U`, else `PGUSER`, else
//! the OS user; database `-d`, else `PGDATABASE`, else the user name (libpq's defaults);
//! password from `--password` (asked on the terminal) or `PGPASSWORD`. Unlike patronictl
//! (psycopg over libpq) it does not read `~/.pgpass` nor negotiate TLS: a server that requires
//! TLS for this connection refuses it. Values print in PostgreSQL's text form (`t`, not
//! `True`); NULL prints as `None`, as patronictl shows it.

use std::time::Duration;

use ha_agent::dcs::{Cluster, MemberEntry};
use serde_json::Value;

use crate::cmd::select::{self, Role};
use crate::cmd::{Ctx, say};
use crate::dcs::require_member;
use crate::error::usage;
use crate::output::{self, Format, Layout};
use crate::table::Align;

/// `query` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Cluster name (the file's `scope` otherwise).
    pub cluster_name: Option<String>,
    /// Output format.
    #[arg(long = "format", value_enum, default_value = "tsv")]
    pub format: Format,
    /// Execute the SQL commands from this file.
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// Ask for the database password on the terminal (patronictl's `query --password`).
    #[arg(long = "ask-password")]
    pub ask_password: bool,
    /// Database user name (patronictl's `query -U/--username`).
    #[arg(short = 'U', long = "db-user")]
    pub db_user: Option<String>,
    /// Run again every 2 seconds.
    #[arg(short = 'W')]
    pub w: bool,
    /// Run again every SECS seconds.
    #[arg(short = 'w', long = "watch", value_name = "SECS")]
    pub watch: Option<f64>,
    /// The member to query: the first with this role.
    #[arg(short = 'r', long, value_enum)]
    pub role: Option<Role>,
    /// The member to query.
    #[arg(short = 'm', long)]
    pub member: Option<String>,
    /// Column delimiter of the tsv format.
    #[arg(long, default_value = "\t")]
    pub delimiter: String,
    /// The SQL commands to execute (patronictl's `query -c`).
    #[arg(long)]
    pub command: Option<String>,
    /// Database name to connect to (patronictl's `query -d`).
    #[arg(long)]
    pub dbname: Option<String>,
}

/// hactl's global options that take a value (to find the subcommand among the arguments).
const GLOBAL_WITH_VALUE: [&str; 7] = [
    "-c",
    "--config-file",
    "-d",
    "--dcs-url",
    "--dcs",
    "--scope",
    "--username",
];

/// Rewrites patronictl's `query` options that hactl's global options would take
/// (`-c`, `-d`, `--username`, `--password`, also as `--opt=value`) into `query`'s own, for
/// the arguments after a `query` subcommand; other command lines are returned unchanged.
pub fn patronictl_spellings(args: Vec<String>) -> Vec<String> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_str();
        if GLOBAL_WITH_VALUE.contains(&a) || a == "--password" {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        break;
    }
    if args.get(i).map(String::as_str) != Some("query") {
        return args;
    }
    let mut out: Vec<String> = args[..=i].to_vec();
    for a in &args[i + 1..] {
        let (flag, value) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (a.as_str(), None),
        };
        let renamed = match flag {
            "-c" => "--command",
            "-d" => "--dbname",
            "--username" => "--db-user",
            "--password" => "--ask-password",
            _ => {
                out.push(a.clone());
                continue;
            }
        };
        out.push(match value {
            Some(v) => format!("{renamed}={v}"),
            None => renamed.to_string(),
        });
    }
    out
}

/// Who to connect as, and where.
#[derive(Debug, Clone)]
struct Login {
    user: String,
    dbname: String,
    password: Option<String>,
}

/// The member to query: `--member`, else the first of `--role` (the leader by default).
fn pick<'a>(
    c: &'a Cluster,
    scope: &str,
    member: Option<&str>,
    role: Option<Role>,
) -> anyhow::Result<Option<&'a MemberEntry>> {
    match (member, role) {
        (Some(_), Some(_)) => Err(usage("--role and --member are mutually exclusive options")),
        (Some(m), None) => require_member(c, scope, m).map(Some),
        (None, role) => Ok(select::with_role(c, role.unwrap_or(Role::Leader))
            .into_iter()
            .next()),
    }
}

/// The SQL's result: column names and rows (`None` for NULL), or patronictl's one-row
/// message (a time and the error) with no header.
type Outcome = (Option<Vec<String>>, Vec<Vec<Option<String>>>);

fn message(text: String) -> Outcome {
    (
        None,
        vec![vec![Some(crate::pyfmt::timestamp(0)), Some(text)]],
    )
}

/// Connects to `m` and runs `sql`; with `role`, the member must be in that state
/// (`pg_is_in_recovery()`), as patronictl checks. `unavailable` is the message when it cannot.
async fn run_on(
    m: &MemberEntry,
    login: &Login,
    role: Option<Role>,
    sql: &str,
    unavailable: &str,
) -> Outcome {
    let none = || message(unavailable.to_string());
    let Some(t) = m.record.conn_target() else {
        return none();
    };
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&t.host)
        .port(t.port)
        .user(&login.user)
        .dbname(&login.dbname)
        .application_name("hactl")
        .connect_timeout(Duration::from_secs(5));
    if let Some(p) = &login.password {
        cfg.password(p);
    }
    let Ok((client, conn)) = cfg.connect(tokio_postgres::NoTls).await else {
        return none();
    };
    tokio::spawn(conn);
    if let Some(r) = role.filter(|r| *r != Role::Any) {
        let in_recovery = client
            .query_one("SELECT pg_catalog.pg_is_in_recovery()", &[])
            .await
            .map(|row| row.get::<_, bool>(0));
        let wanted = matches!(r, Role::Replica | Role::Standby | Role::StandbyLeader);
        if in_recovery.ok() != Some(wanted) {
            return none();
        }
    }
    match client.simple_query(sql).await {
        Ok(messages) => last_result(messages),
        Err(e) => {
            let code = e
                .code()
                .map_or_else(|| e.to_string(), |c| c.code().to_string());
            message(format!("ERROR, SQLSTATE: {}", code.replace('\n', " ")))
        }
    }
}

/// The last result set of a simple query (patronictl prints what the cursor holds after the
/// whole string ran: the last statement's rows).
fn last_result(messages: Vec<tokio_postgres::SimpleQueryMessage>) -> Outcome {
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for msg in messages {
        match msg {
            tokio_postgres::SimpleQueryMessage::RowDescription(cols) => {
                columns = Some(cols.iter().map(|c| c.name().to_string()).collect());
                rows.clear();
            }
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                if columns.is_none() {
                    columns = Some(r.columns().iter().map(|c| c.name().to_string()).collect());
                }
                rows.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
            }
            _ => {}
        }
    }
    (columns, rows)
}

/// patronictl's `print_output` for the result.
fn render(out: &Outcome, format: Format, delimiter: &str) -> String {
    let (columns, rows) = out;
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "None".into());
    if format == Format::Tsv {
        let mut lines: Vec<String> = Vec::new();
        if let Some(c) = columns {
            lines.push(c.join(delimiter));
        }
        lines.extend(
            rows.iter()
                .map(|r| r.iter().map(text).collect::<Vec<_>>().join(delimiter)),
        );
        return lines.join("\n");
    }
    let cols = columns.clone().unwrap_or_default();
    let values: Vec<Vec<Value>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| v.clone().map_or(Value::Null, Value::String))
                .collect()
        })
        .collect();
    output::render(&cols, &values, &|_| Align::Left, Layout::Format(format), "")
}

/// Runs `hactl query`.
pub async fn run(ctx: &Ctx, a: Args) -> anyhow::Result<()> {
    let sql = match (&a.file, &a.command) {
        (Some(_), Some(_)) => {
            return Err(usage("--file and --command are mutually exclusive options"));
        }
        (Some(f), None) => {
            std::fs::read_to_string(f).map_err(|e| usage(format!("--file {}: {e}", f.display())))?
        }
        (None, Some(c)) => c.clone(),
        (None, None) => return Err(usage("You need to specify either --command or --file")),
    };
    let every = super::list::interval(a.w, a.watch)?;
    let user = a
        .db_user
        .clone()
        .or_else(|| std::env::var("PGUSER").ok())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "postgres".into());
    let password = if a.ask_password {
        crate::prompt::require_terminal("--password")?;
        Some(crate::prompt::ask("Password", None)?)
    } else {
        std::env::var("PGPASSWORD").ok()
    };
    let login = Login {
        dbname: a
            .dbname
            .clone()
            .or_else(|| std::env::var("PGDATABASE").ok())
            .unwrap_or_else(|| user.clone()),
        user,
        password,
    };
    // patronictl's messages: by member, else by role, else in general.
    let unavailable = match (&a.member, a.role) {
        (Some(m), _) => format!("No connection to member {m} is available"),
        (None, Some(r)) => format!("No connection to role '{}' is available", r.word()),
        (None, None) => "No connection is available".to_string(),
    };
    let o = ctx.open(a.cluster_name.as_deref()).await?;
    loop {
        let c = o.dcs.cluster().await?;
        let out = match pick(&c, &o.dcs.scope, a.member.as_deref(), a.role)? {
            Some(m) => run_on(m, &login, a.role, &sql, &unavailable).await,
            None => message(unavailable.clone()),
        };
        say(&render(&out, a.format, &a.delimiter));
        let Some(every) = every else {
            return Ok(());
        };
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out() -> Outcome {
        (
            Some(vec!["id".into(), "note".into()]),
            vec![
                vec![Some("1".into()), Some("a".into())],
                vec![Some("2".into()), None],
            ],
        )
    }

    #[test]
    fn tsv_is_a_header_and_rows_with_null_as_none() {
        assert_eq!(render(&out(), Format::Tsv, "\t"), "id\tnote\n1\ta\n2\tNone");
        assert_eq!(render(&out(), Format::Tsv, ","), "id,note\n1,a\n2,None");
    }

    fn v(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn patronictl_query_options_are_renamed_only_after_query() {
        assert_eq!(
            patronictl_spellings(v("hactl -c cfg.yml query -c select -d db -U u --password")),
            v("hactl -c cfg.yml query --command select --dbname db -U u --ask-password")
        );
        assert_eq!(
            patronictl_spellings(v("hactl --dcs-url etcd3://h:2379 query --username=u")),
            v("hactl --dcs-url etcd3://h:2379 query --db-user=u")
        );
        // Other commands, and a config file called `query`, are left alone.
        let list = v("hactl -c query list -d etcd3://h:2379");
        assert_eq!(patronictl_spellings(list.clone()), list);
    }

    #[test]
    fn an_error_is_one_row_without_header() {
        let m = message("ERROR, SQLSTATE: 42P01".into());
        let text = render(&m, Format::Tsv, "\t");
        assert!(text.ends_with("\tERROR, SQLSTATE: 42P01"), "{text}");
        assert_eq!(text.lines().count(), 1);
    }
}
