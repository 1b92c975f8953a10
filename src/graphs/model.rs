//! What the runner stores: runs, their states and events, and the request that starts one.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

/// Run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// Executing, or interrupted by a stop (resumed at the next start).
    Running,
    /// Done, with a result.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Ended by a cancel.
    Cancelled,
}

impl RunStatus {
    /// The status as stored and shown (`queued`, `running`…).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
    /// A status from its name (a query filter).
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }
    /// Whether the run has ended (succeeded, failed or cancelled).
    pub fn finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// A run as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// `gr_` and random hex.
    pub run_id: String,
    /// The graph's name.
    pub graph: String,
    /// The graph's [`super::definition_hash`] when the run started (a resume checks it).
    pub graph_hash: String,
    /// Where the run is.
    pub status: RunStatus,
    /// The workspace it belongs to.
    pub workspace_id: String,
    /// The person who started it.
    pub user_id: String,
    /// The agent whose role its tool calls have.
    pub agent_id: String,
    /// The input as given (an object).
    pub input: Json,
    /// The graph's state after the last completed node.
    pub state: Json,
    /// The node to run next (None when finished).
    pub next_node: Option<String>,
    /// Set while a node runs (cleared by its checkpoint): what a restart finds interrupted.
    pub current_node: Option<String>,
    /// When it was queued.
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub created_at: OffsetDateTime,
    /// When it first ran (its deadline counts from here).
    #[serde(default, with = "crate::kernel::clock::serde_ts::option")]
    pub started_at: Option<OffsetDateTime>,
    /// When it ended.
    #[serde(default, with = "crate::kernel::clock::serde_ts::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The overall deadline in seconds.
    pub timeout_s: u64,
    /// What a succeeded run returned.
    pub result: Option<Json>,
    /// Why a run failed.
    pub error: Option<String>,
    /// Set by a cancel, seen by the run at once.
    pub cancel_requested: bool,
    /// The `Idempotency-Key` it was started with.
    pub idempotency_key: Option<String>,
    /// How many events it has (the last event's `seq`).
    pub events: u64,
    /// Runs this run started as sub-runs (cancelled with it).
    #[serde(default)]
    pub children: Vec<String>,
}

/// A run event (no payloads: sizes and hashes only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEvent {
    /// Its place among the run's events, from 1.
    pub seq: u64,
    /// When it happened.
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub ts: OffsetDateTime,
    /// `run_queued`, `node_start`, `tool_call`, `node_end`, `run_succeeded`…
    #[serde(rename = "type")]
    pub kind: String,
    /// The node it belongs to, if any.
    pub node: Option<String>,
    /// Sizes, hashes, codes and times (never payloads).
    pub details: Json,
}

/// What `POST /v1/graphs/{name}/runs` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The workspace (default `default`).
    #[serde(default = "default_workspace")]
    pub workspace_id: String,
    /// Who starts it (default `sofiia`).
    #[serde(default = "default_user")]
    pub user_id: String,
    /// The agent it acts as (default `sofiia`).
    #[serde(default = "default_user")]
    pub agent_id: String,
    /// The graph's input (an object; null is `{}`).
    #[serde(default)]
    pub input: Json,
}

pub(super) fn default_workspace() -> String {
    "default".into()
}
pub(super) fn default_user() -> String {
    "sofiia".into()
}
