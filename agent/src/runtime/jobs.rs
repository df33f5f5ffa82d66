//! Long-running PostgreSQL work (bootstrap, clone, rewind, start, restart) runs here in the
//! background so the HA loop keeps cycling — renewing the lease, answering the API — while it
//! runs. At most one job at a time; the core sees it as `Observation.job` and its outcome as
//! `Observation.last_job`.
//!
//! Invariant: a job that may leave PostgreSQL running as primary is marked `primary`, and the
//! core stops it (the shell aborts it and stops PostgreSQL) as soon as the lease is not proven.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use crate::ha::{JobKind, JobResult, Millis, RunningJob};

struct Current {
    job: RunningJob,
    /// The job's result, sent before the loop is woken, so a woken loop always finds it.
    result: oneshot::Receiver<Result<(), String>>,
    handle: JoinHandle<()>,
}

/// The one background job slot.
#[derive(Default)]
pub(crate) struct Jobs {
    current: Option<Current>,
    done: Arc<Notify>,
}

impl Jobs {
    /// Starts `work` as the current job. The caller made sure none is running.
    pub fn spawn<F>(&mut self, kind: JobKind, since: Millis, primary: bool, work: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let done = self.done.clone();
        let (tx, result) = oneshot::channel();
        let handle = tokio::spawn(async move {
            let r = work.await;
            let _ = tx.send(r);
            done.notify_one();
        });
        self.current = Some(Current {
            job: RunningJob {
                kind,
                since,
                primary,
            },
            result,
            handle,
        });
    }

    /// The job in flight, if any.
    pub fn running(&self) -> Option<RunningJob> {
        self.current.as_ref().map(|c| c.job)
    }

    /// If the current job has finished, takes its result.
    pub fn reap(&mut self, now: Millis) -> Option<(JobResult, Option<String>)> {
        let c = self.current.as_mut()?;
        let outcome = match c.result.try_recv() {
            Ok(r) => r,
            Err(oneshot::error::TryRecvError::Empty) => return None,
            Err(oneshot::error::TryRecvError::Closed) => {
                Err("job panicked or was cancelled".to_string())
            }
        };
        let c = self.current.take()?;
        let (ok, err) = match outcome {
            Ok(()) => (true, None),
            Err(e) => (false, Some(e)),
        };
        Some((
            JobResult {
                kind: c.job.kind,
                ok,
                at: now,
            },
            err,
        ))
    }

    /// Cancels the job in flight (its child processes are killed on drop). Returns what it was.
    pub async fn abort(&mut self) -> Option<RunningJob> {
        let c = self.current.take()?;
        c.handle.abort();
        let _ = c.handle.await;
        Some(c.job)
    }

    /// Resolves when a job finishes.
    pub fn finished(&self) -> impl Future<Output = ()> + Send + 'static {
        let done = self.done.clone();
        async move { done.notified().await }
    }
}
