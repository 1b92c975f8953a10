//! Cancellation: the per-run cancel channels, [`Runner::cancel`], and how a node's wait or
//! tool call ends at once when its run is cancelled.

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value as Json};
use tokio::sync::watch;

use super::runner::not_found;
use super::tables::{append_event, load_run, save_run};
use super::{validate_run_id, NodeCx, RunStatus, Runner};
use crate::error::{Error, Result};

/// Resolves once the flag turns true (or its sender is gone).
pub(super) async fn flipped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|c| *c).await;
}

const CANCELLED: &str = "the run was cancelled";

pub(super) fn cancelled() -> Error {
    Error::Conflict(CANCELLED.into())
}

/// Whether an error is this run's cancellation (never retried, never reported as data).
pub fn is_cancel(e: &Error) -> bool {
    matches!(e, Error::Conflict(m) if m == CANCELLED)
}

impl Runner {
    /// Cancel a run: a queued one at once, a running one within its current step (its tool
    /// call is dropped). Cancelling a finished run is a 409.
    pub async fn cancel(&self, id: &str) -> Result<Json> {
        validate_run_id(id)?;
        let id2 = id.to_string();
        let now = self.inner.clock.now();
        let run = self
            .inner
            .store
            .write(move |txn| {
                let mut run = load_run(txn, &id2)?.ok_or_else(|| not_found(&id2))?;
                if run.status.finished() {
                    return Err(Error::Conflict(format!(
                        "run {} already {}",
                        run.run_id,
                        run.status.as_str()
                    )));
                }
                run.cancel_requested = true;
                let (kind, details) = if run.status == RunStatus::Queued {
                    run.status = RunStatus::Cancelled;
                    run.finished_at = Some(now);
                    run.next_node = None;
                    ("run_cancelled", json!({"while": "queued"}))
                } else {
                    ("cancel_requested", json!({}))
                };
                let node = run.current_node.clone();
                let ev = append_event(txn, &mut run, now, kind, node, details)?;
                save_run(txn, &run)?;
                Ok((run, ev))
            })
            .await?;
        let (run, ev) = run;
        self.publish_event(&run.run_id, &ev);
        if let Ok(c) = self.inner.cancels.lock() {
            if let Some(tx) = c.get(id) {
                let _ = tx.send(true);
            }
        }
        self.announce(&run);
        Ok(json!({"run_id": run.run_id, "status": run.status, "cancel_requested": true}))
    }
}

impl NodeCx {
    /// Sleep, unless the run is cancelled first.
    pub async fn sleep(&self, d: Duration) -> Result<()> {
        self.cancellable(tokio::time::sleep(d)).await
    }

    /// Run `fut` unless the run is cancelled first (then the future is dropped).
    pub async fn cancellable<T>(&self, fut: impl Future<Output = T>) -> Result<T> {
        let cancel = self.cancel.clone();
        if *cancel.borrow() {
            return Err(cancelled());
        }
        tokio::select! {
            v = fut => Ok(v),
            _ = flipped(cancel.clone()) => Err(cancelled()),
        }
    }
}
