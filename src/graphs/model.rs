//! What the runner stores: runs, their states and events, and the request that starts one.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

/// Run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
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
    pub run_id: String,
    pub graph: String,
    pub graph_hash: String,
    pub status: RunStatus,
    pub workspace_id: String,
    pub user_id: String,
    pub agent_id: String,
    pub input: Json,
    pub state: Json,
    /// The node to run next (None when finished).
    pub next_node: Option<String>,
    /// Set while a node runs (cleared by its checkpoint): what a restart finds interrupted.
    pub current_node: Option<String>,
    #[serde(with = "crate::clock::serde_ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "crate::clock::serde_ts::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "crate::clock::serde_ts::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub timeout_s: u64,
    pub result: Option<Json>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub idempotency_key: Option<String>,
    pub events: u64,
    /// Runs this run started as sub-runs (cancelled with it).
    #[serde(default)]
    pub children: Vec<String>,
}

/// A run event (no payloads: sizes and hashes only).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunEvent {
    pub seq: u64,
    #[serde(with = "crate::clock::serde_ts")]
    pub ts: OffsetDateTime,
    #[serde(rename = "type")]
    pub kind: String,
    pub node: Option<String>,
    pub details: Json,
}

/// What `POST /v1/graphs/{name}/runs` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    #[serde(default = "default_workspace")]
    pub workspace_id: String,
    #[serde(default = "default_user")]
    pub user_id: String,
    #[serde(default = "default_user")]
    pub agent_id: String,
    #[serde(default)]
    pub input: Json,
}

pub(super) fn default_workspace() -> String {
    "default".into()
}
pub(super) fn default_user() -> String {
    "sofiia".into()
}
