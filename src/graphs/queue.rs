//! The in-memory queue of runs to execute, the workers that take from it, and the claim that
//! keeps one run from executing twice at once. The store is the truth: after a restart the
//! queue is refilled from the queued and interrupted runs it holds.

use std::time::Duration;

use tokio::sync::watch;

use super::cancel::flipped;
use super::checkpoints::ALREADY_FINISHED;
use super::tables::RUNS_BY_TIME;
use super::{RunStatus, Runner};
use crate::error::{Error, Result};
use redb::ReadableTable;

impl Runner {
    pub(super) fn enqueue(&self, id: String) {
        if let Ok(mut q) = self.inner.queue.lock() {
            q.push_back(id);
        }
        self.inner.notify.notify_one();
    }

    /// Queued and interrupted runs, oldest first.
    pub(super) async fn pending_runs(&self) -> Result<Vec<String>> {
        self.inner
            .store
            .read(|txn| {
                let by = txn.open_table(RUNS_BY_TIME)?;
                let mut out = Vec::new();
                for row in by.iter()? {
                    let (k, v) = row?;
                    if matches!(v.value(), "queued" | "running") {
                        out.push(k.value().1.to_string());
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Take the right to execute `id` (false: someone else is executing it).
    pub(super) fn claim(&self, id: &str) -> bool {
        self.inner
            .active
            .lock()
            .map(|mut a| a.insert(id.to_string()))
            .unwrap_or(false)
    }

    /// A receiver that flips when the runner stops.
    pub(super) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.stopping.subscribe()
    }

    /// Run (or resume) one run to its end, or until the runner stops (a worker's entry).
    async fn execute(&self, id: &str) {
        if self.claim(id) {
            self.execute_claimed(id).await;
        }
    }

    /// [`Runner::execute`] once claimed; gives the claim back at the end (also when dropped).
    pub(super) async fn execute_claimed(&self, id: &str) {
        struct Release<'a>(&'a Runner, &'a str);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                if let Ok(mut a) = self.0.inner.active.lock() {
                    a.remove(self.1);
                }
                if let Ok(mut c) = self.0.inner.cancels.lock() {
                    c.remove(self.1);
                }
            }
        }
        let release = Release(self, id);
        match self.execute_inner(id).await {
            Ok(()) => {}
            // Someone else finished it meanwhile (a cancel while it was still queued).
            Err(Error::Conflict(m)) if m == ALREADY_FINISHED => {}
            Err(e) => tracing::error!(run = %id, error = %e, "run_execute_failed"),
        }
        drop(release);
        // Queued again while we held it (a requeue replay resolved just as it failed): the
        // worker that popped it could not claim it, so it goes back in the queue.
        if let Ok(run) = self.reload(id).await {
            if run.status == RunStatus::Queued {
                self.enqueue(id.to_string());
            }
        }
    }

    /// A worker: takes queued runs one at a time until the runner stops.
    pub(super) async fn work(&self, stop: watch::Receiver<bool>) {
        loop {
            let next = self.inner.queue.lock().ok().and_then(|mut q| q.pop_front());
            match next {
                Some(id) => {
                    tokio::select! {
                        _ = self.execute(&id) => {}
                        // Stopping: the run stays `running` with its checkpoint and resumes at
                        // the next start.
                        _ = flipped(stop.clone()) => return,
                    }
                }
                None => {
                    tokio::select! {
                        _ = self.inner.notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = flipped(stop.clone()) => return,
                    }
                }
            }
        }
    }
}
