//! A client that writes through HAProxy's primary port in a loop, as an application would:
//! one row per attempt with an id it chooses, reconnecting whenever the connection breaks.
//! It records every acknowledged write with its time and the PostgreSQL port that took it,
//! so tests can check which server accepted writes when, and that acknowledged rows survive.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// An acknowledged write.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    /// Row id.
    pub id: i64,
    /// When the attempt was sent.
    pub sent: Instant,
    /// When the acknowledgement arrived.
    pub acked: Instant,
    /// `inet_server_port()` of the server that committed it.
    pub port: u16,
}

/// A running writer.
pub struct Writer {
    acks: Arc<Mutex<Vec<Ack>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<u64>,
}

impl Writer {
    /// Creates table `w` through `port` (HAProxy's primary port) if needed and starts writing
    /// every `every`.
    pub async fn start(port: u16, every: Duration) -> Writer {
        let c = crate::agent::connect(port)
            .await
            .expect("writer: first connection");
        c.batch_execute(
            "create table if not exists w (id bigint primary key, at timestamptz default now())",
        )
        .await
        .expect("create table w");
        // Ids continue after earlier writers' (a benchmark reuses the table).
        let first_id: i64 = c
            .query_one("select coalesce(max(id), 0) from w", &[])
            .await
            .expect("max id")
            .get(0);
        drop(c);
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (a, s) = (acks.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut id: i64 = first_id;
            let mut failures = 0u64;
            let mut client: Option<tokio_postgres::Client> = None;
            while !s.is_cancelled() {
                if client.is_none() {
                    client =
                        tokio::time::timeout(Duration::from_secs(1), crate::agent::connect(port))
                            .await
                            .ok()
                            .and_then(Result::ok);
                }
                if let Some(cl) = &client {
                    id += 1;
                    let sent = Instant::now();
                    let r = tokio::time::timeout(
                        Duration::from_secs(2),
                        cl.query_one(
                            "insert into w (id) values ($1) returning inet_server_port()",
                            &[&id],
                        ),
                    )
                    .await;
                    match r {
                        Ok(Ok(row)) => {
                            let port: i32 = row.get(0);
                            a.lock().expect("acks").push(Ack {
                                id,
                                sent,
                                acked: Instant::now(),
                                port: u16::try_from(port).unwrap_or(0),
                            });
                        }
                        _ => {
                            failures += 1;
                            client = None;
                        }
                    }
                } else {
                    failures += 1;
                }
                tokio::time::sleep(every).await;
            }
            failures
        });
        Writer { acks, stop, task }
    }

    /// Acknowledged writes so far.
    pub fn acks(&self) -> Vec<Ack> {
        self.acks.lock().expect("acks").clone()
    }

    /// Waits until a write is acknowledged by the server on `pg_port`.
    pub async fn wait_for_ack_from(&self, pg_port: u16, timeout: Duration) -> Ack {
        crate::procs::wait_for(
            &format!("a write acknowledged by port {pg_port}"),
            timeout,
            || async { self.acks().into_iter().find(|a| a.port == pg_port) },
        )
        .await
    }

    /// Stops; returns the acknowledged writes and the number of failed attempts.
    pub async fn stop(self) -> (Vec<Ack>, u64) {
        self.stop.cancel();
        let failures = self.task.await.unwrap_or(0);
        let acks = self.acks.lock().expect("acks").clone();
        (acks, failures)
    }
}

/// The longest time between two consecutive acknowledgements after `from`.
pub fn longest_gap(acks: &[Ack], from: Instant) -> Duration {
    let mut v: Vec<Instant> = acks
        .iter()
        .map(|a| a.acked)
        .filter(|t| *t >= from)
        .collect();
    v.sort();
    v.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}
