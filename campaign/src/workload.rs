//! The workload: a writer through HAProxy (on the client host) and one direct writer per
//! member (on the observer host). Every attempt becomes one event with its send and answer
//! times, acknowledged or not, so the checker sees exactly what a client saw.
//!
//! - Through HAProxy: one connection kept open (re-opened after any error), one insert of
//!   the next integer every `interval`, `returning host(inet_server_addr())` to record which
//!   member acknowledged it. A failed attempt's value is never reused (it may have committed).
//! - Direct: per member, a new connection every 100 ms and one insert; a replica refuses it
//!   (read-only), a primary acknowledges it. These tell when each member accepted writes.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventLog};
use crate::net::Topology;
use crate::nsrt::NsRuntime;
use crate::observe::connect;

/// How long one attempt (connect or insert) may take before it counts as failed.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The direct writers' period.
const DIRECT_EVERY: Duration = Duration::from_millis(100);

/// The tables, created on the first primary before the writers start.
pub const SCHEMA: &str = "create table if not exists campaign_w (v bigint primary key, at timestamptz not null default clock_timestamp()); \
     create table if not exists campaign_d (v bigint primary key, m text not null, at timestamptz not null default clock_timestamp())";

/// The running writers.
pub struct Workload {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    acks: Arc<AtomicI64>,
}

impl Workload {
    /// Starts the writer through HAProxy on `client` and the direct writers on `observer`.
    pub fn start(
        client: &NsRuntime,
        observer: &NsRuntime,
        topo: &Topology,
        log: &EventLog,
        interval: Duration,
    ) -> Workload {
        let stop = CancellationToken::new();
        let mut tasks = Vec::new();
        let names: Vec<(String, String)> = topo
            .members
            .iter()
            .map(|h| (h.addr.to_string(), h.name.clone()))
            .collect();
        let acks = Arc::new(AtomicI64::new(0));
        tasks.push(client.spawn(through_haproxy(
            topo.client.addr.to_string(),
            names,
            log.clone(),
            interval,
            stop.clone(),
            acks.clone(),
        )));
        let next = Arc::new(AtomicI64::new(1));
        for h in &topo.members {
            tasks.push(observer.spawn(direct(
                h.name.clone(),
                h.addr.to_string(),
                next.clone(),
                log.clone(),
                stop.clone(),
            )));
        }
        Workload { stop, tasks, acks }
    }

    /// Writes acknowledged through HAProxy so far.
    pub fn acks(&self) -> i64 {
        self.acks.load(Ordering::Relaxed)
    }

    /// Stops every writer after its current attempt.
    pub async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

/// A short, stable description of a failed attempt.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut m = db.message().to_string();
        m.truncate(60);
        return format!("{} {m}", db.code().code());
    }
    if e.is_closed() {
        return "connection closed".into();
    }
    let mut s = e.to_string();
    s.truncate(60);
    s
}

async fn through_haproxy(
    proxy: String,
    names: Vec<(String, String)>,
    log: EventLog,
    interval: Duration,
    stop: CancellationToken,
    acks: Arc<AtomicI64>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut conn: Option<(tokio_postgres::Client, tokio_postgres::Statement)> = None;
    let mut v: i64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        v += 1;
        let s = log.t();
        if conn.is_none() {
            conn = open_haproxy(&proxy).await.ok();
        }
        let result = match &conn {
            None => Err("connect".to_string()),
            Some((c, stmt)) => {
                match tokio::time::timeout(ATTEMPT_TIMEOUT, c.query_one(stmt, &[&v])).await {
                    Err(_) => Err("timeout".to_string()),
                    Ok(Err(e)) => Err(describe(&e)),
                    Ok(Ok(row)) => Ok(row.get::<_, Option<String>>(0).unwrap_or_default()),
                }
            }
        };
        let e = log.t();
        let ev = match result {
            Ok(addr) => {
                acks.fetch_add(1, Ordering::Relaxed);
                Event::W {
                    v,
                    s,
                    e,
                    ok: true,
                    srv: Some(
                        names
                            .iter()
                            .find(|(a, _)| *a == addr)
                            .map_or(addr, |(_, n)| n.clone()),
                    ),
                    err: None,
                }
            }
            Err(err) => {
                conn = None;
                Event::W {
                    v,
                    s,
                    e,
                    ok: false,
                    srv: None,
                    err: Some(err),
                }
            }
        };
        log.push(&ev);
    }
}

async fn open_haproxy(
    proxy: &str,
) -> anyhow::Result<(tokio_postgres::Client, tokio_postgres::Statement)> {
    let (host, port) = (proxy.to_string(), 5000u16);
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(&host)
        .port(port)
        .user("postgres")
        .password("su-pass")
        .dbname("postgres")
        .connect_timeout(ATTEMPT_TIMEOUT);
    let fut = cfg.connect(tokio_postgres::NoTls);
    let (client, c) = tokio::time::timeout(ATTEMPT_TIMEOUT, fut).await??;
    tokio::spawn(async move {
        let _ = c.await;
    });
    let stmt = tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        client.prepare("insert into campaign_w (v) values ($1) returning host(inet_server_addr())"),
    )
    .await??;
    Ok((client, stmt))
}

async fn direct(
    member: String,
    addr: String,
    next: Arc<AtomicI64>,
    log: EventLog,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(DIRECT_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let v = next.fetch_add(1, Ordering::Relaxed);
        let s = log.t();
        let result = async {
            let c = connect(addr.clone(), ATTEMPT_TIMEOUT)
                .await
                .map_err(|e| format!("{e:#}").chars().take(60).collect::<String>())?;
            match tokio::time::timeout(
                ATTEMPT_TIMEOUT,
                c.execute(
                    "insert into campaign_d (v, m) values ($1, $2)",
                    &[&v, &member],
                ),
            )
            .await
            {
                Err(_) => Err("timeout".to_string()),
                Ok(Err(e)) => Err(describe(&e)),
                Ok(Ok(_)) => Ok(()),
            }
        }
        .await;
        let e = log.t();
        log.push(&Event::D {
            m: member.clone(),
            v,
            s,
            e,
            ok: result.is_ok(),
            err: result.err(),
        });
    }
}
