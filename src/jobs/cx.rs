//! What a running job is given: its inputs, tool calls through the gateway (audited with
//! the run's `job_run_id`), and report files written atomically — or, in a dry run, only
//! described.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value as Json;
use time::OffsetDateTime;

use super::model::WouldWrite;
use crate::error::{Error, Result};
use crate::gateway::auth::Principal;
use crate::gateway::{Gateway, RunTrace, ToolCall};

/// Stop codes of a run: cancelled by hand, sofiia stopping, past its timeout.
pub const STOP_CANCEL: u8 = 1;
/// Sofiia is stopping.
pub const STOP_SHUTDOWN: u8 = 2;
/// The run is past its task's timeout.
pub const STOP_TIMEOUT: u8 = 3;

/// The agent scheduled runs act as (its role is `agent_scheduler` in the RBAC matrix).
pub const SCHEDULER_AGENT: &str = "scheduler";

/// A running job's context.
pub struct JobCx {
    /// The run's id (`jr_…`).
    pub run_id: String,
    /// The task id.
    pub task: String,
    /// Compute everything, write nothing.
    pub dry_run: bool,
    /// The clock at the start of the run.
    pub now: OffsetDateTime,
    /// Inputs with the registry's defaults filled in.
    pub inputs: serde_json::Map<String, Json>,
    pub(super) gateway: Gateway,
    pub(super) data_dir: PathBuf,
    pub(super) deadline: Instant,
    pub(super) calls: AtomicU32,
    /// Set when the run is stopped: no further tool call or file write starts.
    pub(super) stop: std::sync::atomic::AtomicU8,
    /// Tool calls and file writes under way (a stop waits for them, not for the rest).
    pub(super) in_flight: AtomicU32,
    pub(super) written: Mutex<Written>,
}

/// Files a run wrote, or would have.
#[derive(Default)]
pub(super) struct Written {
    pub artifacts: Vec<String>,
    pub would_write: Vec<WouldWrite>,
}

impl JobCx {
    /// Call a tool through the gateway as the `scheduler` agent (RBAC, limits, redaction and
    /// audit apply; the audit record carries this run's id).
    pub async fn tool(&self, tool: &str, action: &str, params: Json) -> Result<Json> {
        self.stopped()?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let _busy = Busy::new(&self.in_flight);
        self.gateway
            .execute_in_run(
                &Principal::Operator,
                ToolCall {
                    tool: tool.into(),
                    action: action.into(),
                    params,
                    agent_id: Some(SCHEDULER_AGENT.into()),
                    metadata: Json::Null,
                },
                RunTrace {
                    run_id: self.run_id.clone(),
                    node: self.task.clone(),
                    attempt: 1,
                    deadline: Some(self.deadline),
                    job: true,
                },
            )
            .await
    }

    /// An error once the run has been stopped.
    fn stopped(&self) -> Result<()> {
        match self.stop.load(Ordering::SeqCst) {
            0 => Ok(()),
            _ => Err(Error::Conflict("this run was stopped".into())),
        }
    }

    /// An input as a whole number.
    pub fn input_u64(&self, name: &str) -> Option<u64> {
        self.inputs.get(name).and_then(Json::as_u64)
    }

    /// An input as text.
    pub fn input_str(&self, name: &str) -> Option<&str> {
        self.inputs.get(name).and_then(Json::as_str)
    }

    /// Write `DATA_DIR/rel` atomically (a temporary file, fsync, rename, fsync of the
    /// folder), replacing an older file of that name; in a dry run, only record what would
    /// be written. `rel` is built by the job from fixed parts and dates, never from input.
    pub async fn write_report(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        if rel
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            || rel.contains('\\')
        {
            return Err(Error::Internal(format!("report path {rel} is not plain")));
        }
        self.stopped()?;
        if self.dry_run {
            let text = String::from_utf8_lossy(&bytes);
            let preview = crate::kernel::text::clip(&text, 4096);
            if let Ok(mut w) = self.written.lock() {
                w.would_write.push(WouldWrite {
                    path: rel.to_string(),
                    bytes: bytes.len() as u64,
                    sha256: crate::kernel::hash::sha256_hex(&bytes),
                    preview,
                });
            }
            return Ok(());
        }
        let path = self.data_dir.join(rel);
        let _busy = Busy::new(&self.in_flight);
        tokio::task::spawn_blocking(move || crate::kernel::fs::write_atomic(&path, &bytes))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        if let Ok(mut w) = self.written.lock() {
            w.artifacts.push(rel.to_string());
        }
        Ok(())
    }
}

/// Counts one call or write in flight while it lives.
struct Busy<'a>(&'a AtomicU32);

impl<'a> Busy<'a> {
    fn new(n: &'a AtomicU32) -> Busy<'a> {
        n.fetch_add(1, Ordering::SeqCst);
        Busy(n)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
