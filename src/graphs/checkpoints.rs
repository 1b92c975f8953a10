//! Checkpoints: the run saved durably after every node (with its event, and a requeue entry
//! when one is due), finishing a run, and the checks that decide whether an interrupted run
//! may resume (the definition hash, the interrupted node being safe to repeat).

use serde_json::{json, Value as Json};

use super::requeue;
use super::runner::not_found;
use super::tables::{append_event, load_run, read_run, save_run};
use super::{Graph, Run, RunStatus, Runner};
use crate::error::{Error, Result};

/// A definition's hash: its name, version and nodes.
pub fn definition_hash(g: &dyn Graph) -> String {
    let nodes: Vec<String> = g
        .nodes()
        .iter()
        .map(|n| format!("{}:{}", n.name, n.safe_to_repeat))
        .collect();
    let text = format!("{}|v{}|{}", g.name(), g.version(), nodes.join(","));
    crate::kernel::hash::sha256_hex(text.as_bytes())[..16].to_string()
}

/// A checkpoint found the run already finished by another writer.
pub(super) const ALREADY_FINISHED: &str = "the run has already finished";

/// Why an interrupted run must not resume with `g` as it is now, if it must not.
pub(super) fn resume_refusal(g: &dyn Graph, run: &Run) -> Option<String> {
    let hash = definition_hash(g);
    if hash != run.graph_hash {
        return Some(format!(
            "interrupted by a restart, and the graph's definition has changed since it started ({} → {hash}); start a new run",
            run.graph_hash
        ));
    }
    let n = run.current_node.as_deref()?;
    let safe = g.nodes().iter().any(|x| x.name == n && x.safe_to_repeat);
    (!safe)
        .then(|| format!("interrupted by a restart inside node '{n}', which is not safe to repeat"))
}

impl Runner {
    pub(super) async fn reload(&self, id: &str) -> Result<Run> {
        let id = id.to_string();
        self.inner
            .store
            .read(move |txn| read_run(txn, &id)?.ok_or_else(|| not_found(&id)))
            .await
    }

    /// Save the run (and an event) durably.
    pub(super) async fn checkpoint(
        &self,
        run: &mut Run,
        ev: Option<(&'static str, Option<String>, Json)>,
    ) -> Result<()> {
        self.checkpoint_with(run, ev, None).await
    }

    /// [`Runner::checkpoint`], putting a requeue entry in the same commit.
    async fn checkpoint_with(
        &self,
        run: &mut Run,
        ev: Option<(&'static str, Option<String>, Json)>,
        requeue: Option<requeue::RequeueEntry>,
    ) -> Result<()> {
        let mut r = run.clone();
        let ts = self.inner.clock.now();
        let saved = self
            .inner
            .store
            .write(move |txn| {
                // Keep events appended meanwhile (tool calls) and a cancel request.
                if let Some(cur) = load_run(txn, &r.run_id)? {
                    // Finished by someone else (a cancel while queued): never brought back.
                    if cur.status.finished() {
                        return Err(Error::Conflict(ALREADY_FINISHED.into()));
                    }
                    r.events = cur.events;
                    r.cancel_requested |= cur.cancel_requested;
                    // Sub-runs are recorded straight in the store by the node that starts them.
                    for c in cur.children {
                        if !r.children.contains(&c) {
                            r.children.push(c);
                        }
                    }
                }
                let written = ev
                    .map(|(kind, node, details)| append_event(txn, &mut r, ts, kind, node, details))
                    .transpose()?;
                save_run(txn, &r)?;
                if let Some(e) = &requeue {
                    requeue::insert(txn, e)?;
                }
                Ok((r, written))
            })
            .await?;
        let (saved, written) = saved;
        // Live clients see every event as it is stored (node ends and the final one too).
        if let Some(e) = written {
            self.publish_event(&saved.run_id, &e);
        }
        *run = saved;
        Ok(())
    }

    pub(super) async fn finish(
        &self,
        run: &mut Run,
        status: RunStatus,
        result: Option<Json>,
        error: Option<String>,
    ) -> Result<()> {
        self.finish_with(run, status, result, error, None).await
    }

    /// [`Runner::finish`], with the run put on the requeue list in the same commit.
    pub(super) async fn finish_with(
        &self,
        run: &mut Run,
        status: RunStatus,
        result: Option<Json>,
        error: Option<String>,
        requeue: Option<requeue::RequeueEntry>,
    ) -> Result<()> {
        let requeued = requeue.clone();
        run.status = status;
        run.finished_at = Some(self.inner.clock.now());
        run.result = result;
        run.error = error.clone();
        run.current_node = None;
        if status != RunStatus::Succeeded {
            run.next_node = None;
        }
        let kind = match status {
            RunStatus::Succeeded => "run_succeeded",
            RunStatus::Cancelled => "run_cancelled",
            _ => "run_failed",
        };
        self.checkpoint_with(run, Some((kind, None, json!({"error": error}))), requeue)
            .await?;
        self.announce(run);
        if let Some(e) = requeued {
            self.requeue_announce(&e);
        }
        if status != RunStatus::Succeeded {
            for child in run.children.clone() {
                if let Ok(c) = self.reload(&child).await {
                    if !c.status.finished() {
                        let _ = self.cancel(&child).await;
                    }
                }
            }
        }
        Ok(())
    }
}
