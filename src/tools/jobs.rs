//! `job_orchestrator_tool` (alias `jobs`): start, inspect, list and cancel the governance
//! jobs of the task registry (SPEC §7). The jobs room is built after the gateway (its jobs
//! call tools), so the tool reaches it through [`JobControl`], bound once at start.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{no_action, object, parse};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};

const NAME: &str = "job_orchestrator_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[
    Action::write("start_task"),
    Action::read("get_task"),
    Action::read("list_tasks"),
    Action::read("task_runs"),
    Action::write("cancel_task"),
];

/// Params of `start_task` (and the body of `POST /api/jobs/{id}/run`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StartTask {
    pub task_id: String,
    #[serde(default)]
    pub inputs: Map<String, Json>,
    #[serde(default)]
    pub dry_run: bool,
}

/// Params of `task_runs` (and the query of `GET /api/jobs/{id}/runs`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRuns {
    pub task_id: String,
    pub limit: Option<usize>,
    /// A run id from the previous page's `next_before`.
    pub before: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunId {
    job_run_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Nothing {}

/// One `job_orchestrator_tool` call with typed params.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum JobsCall {
    Start(StartTask),
    Get { job_run_id: String },
    List {},
    Runs(TaskRuns),
    Cancel { job_run_id: String },
}

impl TypedCall for JobsCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            JobsCall::Start(_) => "start_task",
            JobsCall::Get { .. } => "get_task",
            JobsCall::List {} => "list_tasks",
            JobsCall::Runs(_) => "task_runs",
            JobsCall::Cancel { .. } => "cancel_task",
        }
    }
}

impl JobsCall {
    /// Parse an agent's params for `action`.
    pub fn parse(action: &str, params: Json) -> Result<JobsCall> {
        let p = object(params)?;
        Ok(match action {
            "start_task" => JobsCall::Start(parse(p)?),
            "get_task" => JobsCall::Get {
                job_run_id: parse::<RunId>(p)?.job_run_id,
            },
            "list_tasks" => {
                parse::<Nothing>(p)?;
                JobsCall::List {}
            }
            "task_runs" => JobsCall::Runs(parse(p)?),
            "cancel_task" => JobsCall::Cancel {
                job_run_id: parse::<RunId>(p)?.job_run_id,
            },
            other => return Err(no_action(NAME, other, ACTIONS)),
        })
    }
}

/// Who asks, as the gateway established it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// `operator` or the agent id.
    pub actor: String,
    /// The role the call acts with (`operator` for the operator).
    pub role: String,
}

/// The jobs room as the tool sees it.
pub trait JobControl: Send + Sync + 'static {
    /// Run one call for `caller`.
    fn call(&self, caller: Caller, call: JobsCall) -> ToolFuture<'_>;
}

/// Where the jobs room is bound once it exists.
pub type JobSlot = Arc<OnceLock<Arc<dyn JobControl>>>;

/// `job_orchestrator_tool`.
pub struct JobsTool {
    slot: JobSlot,
}

impl JobsTool {
    /// The tool over the (later bound) jobs room.
    pub fn new(slot: JobSlot) -> JobsTool {
        JobsTool { slot }
    }
}

impl Tool for JobsTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["jobs"]
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| JobsCall::parse(action, j))?;
            let control = self.slot.get().ok_or_else(|| Error::Unavailable {
                message: "the scheduler is not started yet".into(),
                retry_after_s: 1,
            })?;
            control
                .call(
                    Caller {
                        actor: cx.actor.to_string(),
                        role: cx.role.to_string(),
                    },
                    call,
                )
                .await
        })
    }
}
