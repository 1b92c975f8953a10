//! The runner's redb tables and the helpers that keep them in step.

use redb::{ReadableTable, TableDefinition};

use super::{Run, RunEvent};
use crate::error::Result;
use crate::store::from_json;
use crate::store::{AnyTable, WriteTx};

/// run id → run JSON.
pub const RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("graph_runs");
/// (run id, seq) → event JSON.
pub const RUN_EVENTS: TableDefinition<(&str, u64), &[u8]> =
    TableDefinition::new("graph_run_events");
/// (created µs, run id) → status: listing newest first, and finding queued or interrupted runs.
pub const RUNS_BY_TIME: TableDefinition<(i64, &str), &str> =
    TableDefinition::new("graph_runs_by_time");
/// `graph|Idempotency-Key` → run id.
pub const RUN_IDEMPOTENCY: TableDefinition<&str, &str> =
    TableDefinition::new("graph_run_idempotency");

/// requeue entry id → entry JSON: work waiting for a person's decision.
pub const REQUEUE: TableDefinition<&str, &[u8]> = TableDefinition::new("graph_requeue");

/// Every table of the runner (created at start, copied by backups).
pub const ALL: &[&dyn AnyTable] = &[
    &RUNS,
    &RUN_EVENTS,
    &RUNS_BY_TIME,
    &RUN_IDEMPOTENCY,
    &REQUEUE,
];

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| crate::error::Error::Internal(e.to_string()))
}

/// The run as stored, inside a write.
pub fn load_run(txn: &WriteTx, id: &str) -> Result<Option<Run>> {
    let t = txn.open(RUNS)?;
    let g = t.get(id)?;
    g.map(|g| from_json(g.value())).transpose()
}

/// The run as stored, inside a read.
pub fn read_run(txn: &redb::ReadTransaction, id: &str) -> Result<Option<Run>> {
    let t = txn.open_table(RUNS)?;
    let g = t.get(id)?;
    g.map(|g| from_json(g.value())).transpose()
}

/// Events after `after`, at most `limit`.
pub fn read_events(
    txn: &redb::ReadTransaction,
    id: &str,
    after: u64,
    limit: usize,
) -> Result<Vec<RunEvent>> {
    let t = txn.open_table(RUN_EVENTS)?;
    let mut out = Vec::new();
    for row in t.range((id, after.saturating_add(1))..=(id, u64::MAX))? {
        out.push(from_json(row?.1.value())?);
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Save a run and its time-index entry (whose value is its status).
pub fn save_run(txn: &WriteTx, run: &Run) -> Result<()> {
    txn.open(RUNS)?
        .insert(run.run_id.as_str(), to_json(run)?.as_slice())?;
    txn.open(RUNS_BY_TIME)?.insert(
        (
            crate::kernel::clock::micros(run.created_at),
            run.run_id.as_str(),
        ),
        run.status.as_str(),
    )?;
    Ok(())
}

/// Append the next event of `run` (its sequence number is the run's new event count); the
/// caller saves the run in the same write.
pub fn append_event(
    txn: &WriteTx,
    run: &mut Run,
    ts: time::OffsetDateTime,
    kind: &str,
    node: Option<String>,
    details: serde_json::Value,
) -> Result<RunEvent> {
    run.events += 1;
    let ev = RunEvent {
        seq: run.events,
        ts,
        kind: kind.into(),
        node,
        details,
    };
    insert_event(txn, &run.run_id, &ev)?;
    Ok(ev)
}

fn insert_event(txn: &WriteTx, id: &str, ev: &RunEvent) -> Result<()> {
    txn.open(RUN_EVENTS)?
        .insert((id, ev.seq), to_json(ev)?.as_slice())?;
    Ok(())
}

/// Remove a run, its events, its index entry and its idempotency key.
pub fn delete_run(txn: &WriteTx, run: &Run) -> Result<()> {
    txn.open(RUNS)?.remove(run.run_id.as_str())?;
    txn.open(RUNS_BY_TIME)?.remove((
        crate::kernel::clock::micros(run.created_at),
        run.run_id.as_str(),
    ))?;
    if let Some(k) = &run.idempotency_key {
        let key = format!("{}|{k}", run.graph);
        txn.open(RUN_IDEMPOTENCY)?.remove(key.as_str())?;
    }
    let mut events = txn.open(RUN_EVENTS)?;
    for seq in 1..=run.events {
        events.remove((run.run_id.as_str(), seq))?;
    }
    drop(events);
    // Its requeue entries go with it (a replay needs the run).
    let mut rq = txn.open(REQUEUE)?;
    let doomed: Vec<String> = rq
        .iter()?
        .filter_map(|r| r.ok())
        .filter_map(|(k, v)| {
            let e: serde_json::Value = serde_json::from_slice(v.value()).ok()?;
            (e["run_id"] == run.run_id.as_str()).then(|| k.value().to_string())
        })
        .collect();
    for k in doomed {
        rq.remove(k.as_str())?;
    }
    Ok(())
}

/// The runner's schema steps (its tables are created empty).
pub const MIGRATIONS: &[crate::store::Migration] = &[
    crate::store::Migration::tables_added(3, "graph runs, run events and checkpoints"),
    crate::store::Migration::tables_added(4, "the runner's requeue list"),
];
