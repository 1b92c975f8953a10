//! The jobs room's redb tables.

use redb::{ReadableTable, TableDefinition};

use super::model::{JobRun, JobState};
use crate::error::{Error, Result};
use crate::store::{from_json, AnyTable, WriteTx};

/// run id → run JSON.
pub const JOB_RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("job_runs");
/// (task id, created µs, run id) → status: a task's history, newest last.
pub const JOB_RUNS_BY_TASK: TableDefinition<(&str, i64, &str), &str> =
    TableDefinition::new("job_runs_by_task");
/// run id → task id, for runs not finished: what a restart finds interrupted.
pub const JOB_ACTIVE: TableDefinition<&str, &str> = TableDefinition::new("job_runs_active");
/// task id → state JSON (the last handled fire, misses).
pub const JOB_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("job_state");

/// Every table of the room (created at start, copied by backups).
pub const ALL: &[&dyn AnyTable] = &[&JOB_RUNS, &JOB_RUNS_BY_TASK, &JOB_ACTIVE, &JOB_STATE];

/// The room's migration steps.
pub const MIGRATIONS: &[crate::store::Migration] = &[crate::store::Migration::tables_added(
    8,
    "job runs and scheduler state",
)];

/// Runs kept per task; older ones are dropped as new ones are recorded.
pub const KEEP_PER_TASK: usize = 2000;

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Save a run, keep the task index and the active set in step.
pub fn save_run(txn: &WriteTx, run: &JobRun) -> Result<()> {
    txn.open(JOB_RUNS)?
        .insert(run.id.as_str(), to_json(run)?.as_slice())?;
    let key = (
        run.job.as_str(),
        crate::kernel::clock::micros(run.created_at),
        run.id.as_str(),
    );
    txn.open(JOB_RUNS_BY_TASK)?
        .insert(key, run.status.as_str())?;
    let mut active = txn.open(JOB_ACTIVE)?;
    if run.status.finished() {
        active.remove(run.id.as_str())?;
    } else {
        active.insert(run.id.as_str(), run.job.as_str())?;
    }
    Ok(())
}

/// Drop a task's oldest runs beyond [`KEEP_PER_TASK`].
pub fn prune_task(txn: &WriteTx, task: &str) -> Result<usize> {
    let doomed: Vec<(i64, String)> = {
        let idx = txn.open(JOB_RUNS_BY_TASK)?;
        let n = idx
            .range((task, i64::MIN, "")..=(task, i64::MAX, "\u{10ffff}"))?
            .count();
        if n <= KEEP_PER_TASK {
            return Ok(0);
        }
        let mut out = Vec::new();
        for row in idx.range((task, i64::MIN, "")..=(task, i64::MAX, "\u{10ffff}"))? {
            let (k, _) = row?;
            let (_, at, id) = k.value();
            out.push((at, id.to_string()));
            if out.len() >= n - KEEP_PER_TASK {
                break;
            }
        }
        out
    };
    let mut idx = txn.open(JOB_RUNS_BY_TASK)?;
    let mut runs = txn.open(JOB_RUNS)?;
    for (at, id) in &doomed {
        idx.remove((task, *at, id.as_str()))?;
        runs.remove(id.as_str())?;
    }
    Ok(doomed.len())
}

/// A run, inside a read.
pub fn read_run(txn: &redb::ReadTransaction, id: &str) -> Result<Option<JobRun>> {
    let t = txn.open_table(JOB_RUNS)?;
    let g = t.get(id)?;
    g.map(|g| from_json(g.value())).transpose()
}

/// A run, inside a write.
pub fn load_run(txn: &WriteTx, id: &str) -> Result<Option<JobRun>> {
    let t = txn.open(JOB_RUNS)?;
    let g = t.get(id)?;
    g.map(|g| from_json(g.value())).transpose()
}

/// A task's state, inside a read.
pub fn read_state(txn: &redb::ReadTransaction, task: &str) -> Result<JobState> {
    let t = txn.open_table(JOB_STATE)?;
    let g = t.get(task)?;
    Ok(g.map(|g| from_json(g.value()))
        .transpose()?
        .unwrap_or_default())
}

/// A task's state, inside a write.
pub fn load_state(txn: &WriteTx, task: &str) -> Result<JobState> {
    let t = txn.open(JOB_STATE)?;
    let g = t.get(task)?;
    Ok(g.map(|g| from_json(g.value()))
        .transpose()?
        .unwrap_or_default())
}

/// Save a task's state.
pub fn save_state(txn: &WriteTx, task: &str, state: &JobState) -> Result<()> {
    txn.open(JOB_STATE)?
        .insert(task, to_json(state)?.as_slice())?;
    Ok(())
}

/// A task's runs, newest first: at most `limit`, older than `before` (created µs, id).
pub fn task_runs(
    txn: &redb::ReadTransaction,
    task: &str,
    before: Option<(i64, String)>,
    limit: usize,
) -> Result<Vec<JobRun>> {
    let idx = txn.open_table(JOB_RUNS_BY_TASK)?;
    let runs = txn.open_table(JOB_RUNS)?;
    let lo = (task, i64::MIN, "");
    let mut out = Vec::new();
    let iter = match &before {
        Some((at, id)) => idx.range(lo..(task, *at, id.as_str()))?,
        None => idx.range(lo..=(task, i64::MAX, "\u{10ffff}"))?,
    };
    for row in iter.rev() {
        let (k, _) = row?;
        let (_, _, id) = k.value();
        if let Some(v) = runs.get(id)? {
            out.push(from_json(v.value())?);
        }
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// Ids of runs not finished (as a restart finds them).
pub fn active_runs(txn: &redb::ReadTransaction) -> Result<Vec<String>> {
    let t = txn.open_table(JOB_ACTIVE)?;
    let mut out = Vec::new();
    for row in t.iter()? {
        out.push(row?.0.value().to_string());
    }
    Ok(out)
}
