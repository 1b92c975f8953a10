//! One run, node by node: resume checks, the node loop with its deadline and cancel, and what
//! a node's outcome does to the run.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;

use super::cancel::flipped;
use super::checkpoints::resume_refusal;
use super::tables::read_run;
use super::{NodeCx, RunStatus, Runner, Step};
use crate::error::Result;

impl Runner {
    pub(super) async fn execute_inner(&self, id: &str) -> Result<()> {
        // The cancel channel exists before the run is read: a cancel committed after the read
        // finds it and is seen; one committed before is in the record.
        let (tx, rx) = watch::channel(false);
        if let Ok(mut c) = self.inner.cancels.lock() {
            c.insert(id.to_string(), tx.clone());
        }
        let idc = id.to_string();
        let Some(mut run) = self
            .inner
            .store
            .read(move |txn| read_run(txn, &idc))
            .await?
        else {
            return Ok(());
        };
        if run.status.finished() {
            return Ok(());
        }
        if run.cancel_requested {
            let _ = tx.send(true);
        }
        let Some(g) = self.graph(&run.graph) else {
            let why = format!("graph '{}' is not available in this build", run.graph);
            return self
                .finish(&mut run, RunStatus::Failed, None, Some(why))
                .await;
        };
        let resumed = run.status == RunStatus::Running;
        if resumed {
            if let Some(why) = resume_refusal(g.as_ref(), &run) {
                return self
                    .finish(&mut run, RunStatus::Failed, None, Some(why))
                    .await;
            }
        }
        let now = self.inner.clock.now();
        if run.started_at.is_none() {
            run.started_at = Some(now);
        }
        run.status = RunStatus::Running;
        let kind = if resumed {
            "run_resumed"
        } else {
            "run_started"
        };
        let details = json!({"next_node": run.next_node});
        self.checkpoint(&mut run, Some((kind, None, details)))
            .await?;
        self.announce(&run);
        let started = run.started_at.unwrap_or(now);
        let deadline_in = (started + time::Duration::seconds(run.timeout_s as i64)) - now;
        let deadline =
            tokio::time::Instant::now() + Duration::try_from(deadline_in).unwrap_or(Duration::ZERO);
        let mut attempt = 0u32;
        loop {
            let Some(node) = run.next_node.clone() else {
                return match g.try_result(&run.state) {
                    Ok(result) => {
                        self.finish(&mut run, RunStatus::Succeeded, Some(result), None)
                            .await
                    }
                    Err(e) => {
                        let why = format!("the final state gives no result: {e}");
                        self.finish(&mut run, RunStatus::Failed, None, Some(why))
                            .await
                    }
                };
            };
            if !g.nodes().iter().any(|n| n.name == node) {
                return self
                    .finish(
                        &mut run,
                        RunStatus::Failed,
                        None,
                        Some(format!("unknown node '{node}'")),
                    )
                    .await;
            }
            if *rx.borrow() || run.cancel_requested {
                return self
                    .finish(&mut run, RunStatus::Cancelled, None, None)
                    .await;
            }
            attempt += 1;
            run.current_node = Some(node.clone());
            self.checkpoint(
                &mut run,
                Some(("node_start", Some(node.clone()), json!({}))),
            )
            .await?;
            let cx = NodeCx {
                run_id: run.run_id.clone(),
                agent_id: run.agent_id.clone(),
                node: node.clone(),
                attempt,
                runner: self.clone(),
                cancel: rx.clone(),
                exhausted: std::sync::atomic::AtomicBool::new(false),
                deadline,
                overall: Duration::from_secs(run.timeout_s),
            };
            let node_started = Instant::now();
            let mut state = run.state.clone();
            let cancel = rx.clone();
            let outcome = tokio::select! {
                r = g.step(&node, &mut state, &cx) => Some(r),
                _ = flipped(cancel.clone()) => None,
                _ = tokio::time::sleep_until(deadline) => {
                    let why = format!("timed out after {} s (in node '{node}')", run.timeout_s);
                    return self.finish(&mut run, RunStatus::Failed, None, Some(why)).await;
                }
            };
            let elapsed_ms = node_started.elapsed().as_millis() as u64;
            match outcome {
                None => {
                    return self
                        .finish(&mut run, RunStatus::Cancelled, None, None)
                        .await
                }
                Some(Err(e)) if *rx.borrow() => {
                    let _ = e;
                    return self
                        .finish(&mut run, RunStatus::Cancelled, None, None)
                        .await;
                }
                Some(Err(e)) => {
                    self.event(
                        &run.run_id,
                        "node_error",
                        Some(&node),
                        json!({"code": e.code(), "elapsed_ms": elapsed_ms}),
                    )
                    .await?;
                    run = self.reload(&run.run_id).await?;
                    let why = format!("node '{node}': {e}");
                    let exhausted = cx.exhausted.load(std::sync::atomic::Ordering::Relaxed);
                    // Out of retries: a person decides (the failed node is where a replay
                    // starts again).
                    let entry = exhausted.then(|| self.requeue_entry(&run, &node, &why));
                    return self
                        .finish_with(&mut run, RunStatus::Failed, None, Some(why), entry)
                        .await;
                }
                Some(Ok(step)) => {
                    run = self.reload(&run.run_id).await?;
                    let text = state.to_string();
                    run.state = state;
                    run.current_node = None;
                    run.next_node = match step {
                        Step::Next(n) => Some(n.to_string()),
                        Step::Done => None,
                    };
                    let details = json!({
                        "elapsed_ms": elapsed_ms, "state_bytes": text.len(),
                        "state_sha256": &crate::kernel::hash::sha256_hex(text.as_bytes())[..16],
                        "next": run.next_node});
                    self.checkpoint(&mut run, Some(("node_end", Some(node.clone()), details)))
                        .await?;
                }
            }
        }
    }
}
