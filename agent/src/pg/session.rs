//! Sessions to PostgreSQL (tokio-postgres): where the agent connects (its own server as the
//! superuser, or another member as the rewind user), with the role's TLS settings (`tls.rs`),
//! and the task that drives each connection.
//!
//! Invariant: a connection's background task is aborted when its `Session` is dropped, so a
//! connection to a frozen server cannot linger.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use super::tls::{MakeRustls, Tls};
use super::{Credentials, PgSettings};

/// A connection and the task that drives it.
pub struct Session {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where and how a session connects: the tokio-postgres configuration and its TLS.
#[derive(Debug, Clone)]
pub struct Target {
    /// Host, port, user, password, timeouts, ssl mode.
    pub cfg: Config,
    /// TLS from the role's `sslmode` & co., or why the settings cannot be used.
    pub tls: Result<Tls, String>,
}

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The role's TLS settings are unusable (a file cannot be read, ...).
    #[error("TLS settings: {0}")]
    Tls(String),
    /// tokio-postgres failed.
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
}

impl ConnectError {
    /// The tokio-postgres error, if that is what failed.
    pub fn pg(&self) -> Option<&tokio_postgres::Error> {
        match self {
            ConnectError::Pg(e) => Some(e),
            ConnectError::Tls(_) => None,
        }
    }
}

impl Session {
    /// Connects (bounded by the config's connect timeout) and spawns the connection task.
    pub async fn connect(target: &Target) -> Result<Session, ConnectError> {
        let (client, task) = match target
            .tls
            .as_ref()
            .map_err(|e| ConnectError::Tls(e.clone()))?
        {
            Tls::Off => {
                let (client, conn) = target.cfg.connect(NoTls).await?;
                (client, spawn_conn(conn))
            }
            Tls::On(config, _) => {
                let (client, conn) = target.cfg.connect(MakeRustls(config.clone())).await?;
                (client, spawn_conn(conn))
            }
        };
        Ok(Session { client, task })
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The connection is gone (server closed it or the task ended).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed() || self.task.is_finished()
    }

    /// Runs `sql` with the simple protocol and returns its rows as text columns.
    pub async fn rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
        Ok(self
            .client
            .simple_query(sql)
            .await?
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect())
    }
}

fn spawn_conn<S, T>(conn: tokio_postgres::Connection<S, T>) -> JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "postgresql connection ended");
        }
    })
}

/// How the agent reaches its own PostgreSQL: `local_host` (a directory means the Unix
/// socket), the configured port, the superuser (with its TLS settings), database `postgres`.
pub fn local_config(s: &PgSettings, connect_timeout: Duration) -> Target {
    target(&s.local_host, s.port, &s.superuser, connect_timeout)
}

/// A TCP connection to another member's PostgreSQL as `who`.
pub fn remote_config(host: &str, port: u16, who: &Credentials, timeout: Duration) -> Target {
    target(host, port, who, timeout)
}

fn target(host: &str, port: u16, who: &Credentials, timeout: Duration) -> Target {
    let mut cfg = Config::new();
    cfg.host(host)
        .port(port)
        .dbname("postgres")
        .application_name("hapg")
        .connect_timeout(timeout)
        .user(&who.username);
    if let Some(pw) = &who.password {
        cfg.password(pw.as_bytes());
    }
    let tls = super::tls::configure(&mut cfg, host, &who.conn);
    Target { cfg, tls }
}
