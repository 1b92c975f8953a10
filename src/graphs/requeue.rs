//! The requeue list (SPEC §8): work that needs a person's decision waits here. Today that is
//! a run whose tool call failed after its last retry. `resolve {allow: true}` replays the run
//! from the node that failed (with the state checkpointed before it); `{allow: false}` drops
//! it. Every decision is audited (who, which entry, which run; no payloads).

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use super::tables::{append_event, load_run, save_run, REQUEUE};
use super::{definition_hash, Run, RunStatus, Runner};
use crate::audit::{Audit, AuditRecord};
use crate::error::{Error, Result};

/// One entry of the requeue list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequeueEntry {
    /// `rq_` and random hex.
    pub id: String,
    /// What is waiting: `retries_exhausted`.
    pub kind: String,
    /// The run waiting.
    pub run_id: String,
    /// Its graph.
    pub graph: String,
    /// Where a replay starts.
    pub node: String,
    /// Why it failed (clipped).
    pub reason: String,
    /// `pending`, `replayed` or `dropped`.
    pub status: String,
    /// When it was put on the list.
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub created_at: OffsetDateTime,
    /// When a person decided.
    #[serde(default, with = "crate::kernel::clock::serde_ts::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// Who decided.
    #[serde(default)]
    pub resolved_by: Option<String>,
}

fn to_bytes(e: &RequeueEntry) -> Result<Vec<u8>> {
    serde_json::to_vec(e).map_err(|e| Error::Internal(e.to_string()))
}

/// Store an entry inside a write.
pub(super) fn insert(txn: &crate::store::WriteTx, e: &RequeueEntry) -> Result<()> {
    txn.open(REQUEUE)?
        .insert(e.id.as_str(), to_bytes(e)?.as_slice())?;
    Ok(())
}

/// `rq_` and 1-40 alphanumerics.
fn validate_id(id: &str) -> Result<()> {
    let ok = id.strip_prefix("rq_").is_some_and(|r| {
        !r.is_empty() && r.len() <= 40 && r.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("id", "is not a requeue id (rq_…)"))
    }
}

impl Runner {
    /// An entry for a run that failed in `node` (written with the run's failure).
    pub(super) fn requeue_entry(&self, run: &Run, node: &str, reason: &str) -> RequeueEntry {
        RequeueEntry {
            id: format!("rq_{}", crate::kernel::clock::random_hex(8)),
            kind: "retries_exhausted".into(),
            run_id: run.run_id.clone(),
            graph: run.graph.clone(),
            node: node.to_string(),
            reason: crate::kernel::text::clip(reason, 500),
            status: "pending".into(),
            created_at: self.inner.clock.now(),
            resolved_at: None,
            resolved_by: None,
        }
    }

    /// Log and publish a new entry.
    pub(super) fn requeue_announce(&self, e: &RequeueEntry) {
        tracing::warn!(run = %e.run_id, node = %e.node, requeue = %e.id, "run_requeue_waiting");
        self.inner
            .bus
            .publish(crate::kernel::events::Event::Requeue {
                entry: serde_json::to_value(e).unwrap_or_default(),
            });
    }

    /// Entries, oldest first; `status` filters (`pending` by default in the API).
    pub async fn requeue_list(&self, status: Option<String>) -> Result<Vec<RequeueEntry>> {
        self.inner
            .store
            .read(move |txn| {
                let t = txn.open_table(REQUEUE)?;
                let mut out: Vec<RequeueEntry> = Vec::new();
                for row in t.iter()? {
                    let (_, v) = row?;
                    let e: RequeueEntry = crate::store::from_json(v.value())?;
                    if status.as_deref().is_none_or(|s| s == e.status) {
                        out.push(e);
                    }
                }
                out.sort_by_key(|e| e.created_at);
                Ok(out)
            })
            .await
    }

    /// Decide a pending entry: replay its run from the failed node (`allow`) or drop it.
    /// `by` names who decided (for the audit record).
    pub async fn requeue_resolve(&self, id: &str, allow: bool, by: &str) -> Result<Json> {
        validate_id(id)?;
        let now = self.inner.clock.now();
        let id2 = id.to_string();
        let by2 = by.to_string();
        let current_hashes: std::collections::HashMap<String, String> = self
            .inner
            .graphs
            .read()
            .map(|m| {
                m.values()
                    .map(|g| (g.name().to_string(), definition_hash(g.as_ref())))
                    .collect()
            })
            .unwrap_or_default();
        let input_hash = self
            .inner
            .gateway
            .audit()
            .hash(json!({"id": id, "allow": allow}).to_string().as_bytes());
        let (entry, run) = self
            .inner
            .store
            .write(move |txn| {
                let mut e: RequeueEntry = {
                    let t = txn.open(REQUEUE)?;
                    let g = t.get(id2.as_str())?;
                    match g {
                        Some(g) => crate::store::from_json(g.value())?,
                        None => {
                            return Err(Error::NotFound(format!(
                                "requeue entry {} not found",
                                crate::kernel::text::clip(&id2, 60)
                            )))
                        }
                    }
                };
                if e.status != "pending" {
                    return Err(Error::Conflict(format!(
                        "requeue entry {} was already {}",
                        e.id, e.status
                    )));
                }
                let mut run = load_run(txn, &e.run_id)?
                    .ok_or_else(|| Error::NotFound(format!("run {} no longer exists", e.run_id)))?;
                if allow {
                    if run.status != RunStatus::Failed {
                        return Err(Error::Conflict(format!(
                            "run {} is {}, not failed: nothing to replay",
                            run.run_id,
                            run.status.as_str()
                        )));
                    }
                    match current_hashes.get(&run.graph) {
                        Some(h) if *h == run.graph_hash => {}
                        Some(_) => {
                            return Err(Error::Conflict(format!(
                            "graph '{}' has changed since run {} started; start a new run instead",
                            run.graph, run.run_id
                        )))
                        }
                        None => {
                            return Err(Error::Conflict(format!(
                                "graph '{}' is not available in this build",
                                run.graph
                            )))
                        }
                    }
                    run.status = RunStatus::Queued;
                    run.next_node = Some(e.node.clone());
                    run.current_node = None;
                    run.error = None;
                    run.result = None;
                    run.finished_at = None;
                    // A replay gets its whole time budget again.
                    run.started_at = None;
                    run.cancel_requested = false;
                    let details = json!({"requeue_id": e.id, "by": by2});
                    append_event(
                        txn,
                        &mut run,
                        now,
                        "run_requeued",
                        Some(e.node.clone()),
                        details,
                    )?;
                    save_run(txn, &run)?;
                }
                e.status = if allow { "replayed" } else { "dropped" }.into();
                e.resolved_at = Some(now);
                e.resolved_by = Some(by2.clone());
                insert(txn, &e)?;
                Audit::insert(
                    txn,
                    &AuditRecord {
                        id: Audit::new_id(),
                        ts: now,
                        principal: by2.clone(),
                        agent_id: None,
                        role: "operator".into(),
                        tool: "requeue".into(),
                        action: "resolve".into(),
                        decision: if allow { "allow" } else { "deny" }.into(),
                        status: "ok".into(),
                        input_hash: input_hash.clone(),
                        input_size: 0,
                        output_size: 0,
                        elapsed_ms: 0,
                        graph_run_id: Some(run.run_id.clone()),
                        job_run_id: None,
                    },
                )?;
                Ok((e, run))
            })
            .await?;
        tracing::info!(requeue = %entry.id, run = %entry.run_id, allow, "requeue_resolved");
        if allow {
            self.announce(&run);
            self.enqueue(run.run_id.clone());
        }
        self.inner
            .bus
            .publish(crate::kernel::events::Event::Requeue {
                entry: serde_json::to_value(&entry).unwrap_or_default(),
            });
        Ok(json!({"entry": entry, "run_id": run.run_id, "run_status": run.status}))
    }
}
