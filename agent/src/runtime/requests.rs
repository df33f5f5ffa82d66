//! Requests from the REST API (restart, reinitialize, reload): at most one at a time; the
//! core sees it in the next observation and either acts on it (a job; restart is answered
//! when the job ends, reinitialize when it starts) or it is refused with the decision's reason.

use super::{ApiRequest, ApiWhat, Runtime};
use crate::dcs::Dcs;
use crate::ha::{self, Decision};
use crate::pg::Postgres;

impl<D: Dcs, P: Postgres> Runtime<D, P> {
    pub(super) async fn accept_request(&mut self, req: ApiRequest) {
        if req.what == ApiWhat::Reload {
            let r = self.reload_config().await;
            let _ = req.reply.send(r);
            return;
        }
        if self.st.request.is_some() || self.st.awaiting_job.is_some() {
            let _ = req
                .reply
                .send(Err("another restart or reinitialize is in progress".into()));
            return;
        }
        self.st.request = Some(req);
    }

    /// A pending API request the decision did not act on is refused with the reason.
    pub(super) fn answer_request(&mut self, decision: &Decision) {
        let Some(req) = self.st.request.take() else {
            return;
        };
        let acted = decision.actions.iter().any(|a| {
            matches!(
                (a, req.what),
                (ha::Action::Restart { .. }, ApiWhat::Restart)
                    | (ha::Action::Reinitialize { .. }, ApiWhat::Reinitialize)
            )
        });
        match (acted, req.what) {
            (true, ApiWhat::Reinitialize) => {
                let _ = req.reply.send(Ok("reinitialize started".into()));
            }
            (true, _) if self.jobs.running().is_some() => self.st.awaiting_job = Some(req),
            _ => {
                let _ = req
                    .reply
                    .send(Err(format!("not possible now: {}", decision.reason)));
            }
        }
    }
}
