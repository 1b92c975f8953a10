//! Job runs and job state as stored.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::kernel::clock::serde_ts;

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A fire of the schedule, on time.
    Schedule,
    /// Fires missed while the laptop slept or sofiia was stopped.
    CatchUp,
    /// A person: the console, the API or the command line.
    Manual,
    /// An agent or a graph through `job_orchestrator_tool`.
    Tool,
}

impl Trigger {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::CatchUp => "catch_up",
            Trigger::Manual => "manual",
            Trigger::Tool => "tool",
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for the run before it (overlap `queue_one`, catch-up `all`).
    Queued,
    Running,
    Succeeded,
    Failed,
    /// Ran past the task's timeout and was stopped.
    TimedOut,
    Cancelled,
    /// sofiia stopped (a crash, `kill -9`) while it ran; never re-run by itself.
    Interrupted,
}

impl JobStatus {
    /// As written in records.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::TimedOut => "timed_out",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Interrupted => "interrupted",
        }
    }
    /// Whether the run is over.
    pub fn finished(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Running)
    }
    /// Parse a status filter.
    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Queued,
            JobStatus::Running,
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::TimedOut,
            JobStatus::Cancelled,
            JobStatus::Interrupted,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// Fires a catch-up run stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missed {
    /// How many fires (at least this many when `capped`).
    pub count: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
    #[serde(with = "serde_ts")]
    pub first: OffsetDateTime,
    #[serde(with = "serde_ts")]
    pub last: OffsetDateTime,
    /// `missed while asleep` (sofiia was running: the machine slept) or `missed while stopped`.
    pub reason: String,
    /// What the policy did: `ran once`, `ran N of M`, `skipped by policy`.
    pub handled: String,
}

/// A report a dry run would have written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WouldWrite {
    /// Relative to `DATA_DIR`.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// The start of the text (at most 4 KiB).
    pub preview: String,
}

/// One run of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRun {
    /// `jr_` and hex.
    pub id: String,
    /// The task id in the registry.
    pub job: String,
    pub trigger: Trigger,
    pub status: JobStatus,
    pub dry_run: bool,
    /// The inputs it ran with (defaults filled in).
    pub inputs: Json,
    /// Who started it: `scheduler`, `operator`, `agent:<id>`.
    pub requested_by: String,
    /// The fire it is for (scheduled and catch-up runs).
    #[serde(default, with = "serde_ts::option")]
    pub scheduled_for: Option<OffsetDateTime>,
    #[serde(default)]
    pub missed: Option<Missed>,
    #[serde(with = "serde_ts")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "serde_ts::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_ts::option")]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub summary: String,
    /// What the job returns (figures, ids); for a dry run also what it would change.
    #[serde(default)]
    pub result: Json,
    /// Files written, relative to `DATA_DIR`.
    #[serde(default)]
    pub artifacts: Vec<String>,
    /// What a dry run would have written.
    #[serde(default)]
    pub would_write: Vec<WouldWrite>,
    #[serde(default)]
    pub tool_calls: u32,
    #[serde(default)]
    pub error: Option<String>,
}

/// What the scheduler keeps per task between fires.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JobState {
    /// The latest scheduled fire that was handled (run, queued, or skipped by policy).
    #[serde(default, with = "serde_ts::option")]
    pub last_fire: Option<OffsetDateTime>,
    /// The schedule `last_fire` belongs to: a changed schedule starts afresh.
    #[serde(default)]
    pub schedule: String,
    /// The latest missed fires, however they were handled.
    #[serde(default)]
    pub last_missed: Option<Missed>,
    /// Fires not run because the job was still running (overlap `skip`).
    #[serde(default)]
    pub skipped_overlap: u64,
}
