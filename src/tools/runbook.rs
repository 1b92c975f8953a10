//! `runbook_tool`: search the runbook index and read a runbook (SPEC §6).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{no_action, object, parse, to_json};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};
use crate::search::runbooks::{Runbooks, SearchParams};

const NAME: &str = "runbook_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[Action::read("search"), Action::read("get")];

/// Params of `search` (and the query of `GET /api/runbooks/search`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    #[serde(alias = "query")]
    pub q: String,
    pub service: Option<String>,
    pub tag: Option<String>,
    pub limit: Option<usize>,
}

/// One `runbook_tool` call with its typed params (agents' JSON is parsed into it; the
/// console's HTTP handlers build it directly).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum RunbookCall {
    Search(SearchArgs),
    Get { path: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    path: String,
}

impl TypedCall for RunbookCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            RunbookCall::Search(_) => "search",
            RunbookCall::Get { .. } => "get",
        }
    }
}

impl RunbookCall {
    /// Parse an agent's params for `action` (a 422 naming the problem).
    pub fn parse(action: &str, params: Json) -> Result<RunbookCall> {
        let p = object(params)?;
        match action {
            "search" => Ok(RunbookCall::Search(parse(p)?)),
            "get" => {
                let GetArgs { path } = parse(p)?;
                Ok(RunbookCall::Get { path })
            }
            other => Err(no_action(NAME, other, ACTIONS)),
        }
    }

    /// Run it. Index work is blocking, so it runs on the blocking pool.
    pub async fn run(self, rb: &Runbooks) -> Result<Json> {
        let rb = rb.clone();
        match self {
            RunbookCall::Search(a) => {
                let sp = SearchParams {
                    q: a.q,
                    service: a.service,
                    tag: a.tag,
                    limit: a.limit.unwrap_or(0),
                };
                blocking(move || rb.search(&sp).and_then(to_json)).await
            }
            RunbookCall::Get { path } => blocking(move || rb.get(&path).and_then(to_json)).await,
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("search task failed: {e}")))?
}

/// `runbook_tool`, over the runbook index.
pub struct RunbookTool {
    runbooks: Runbooks,
}

impl RunbookTool {
    /// The tool over `runbooks`.
    pub fn new(runbooks: Runbooks) -> RunbookTool {
        RunbookTool { runbooks }
    }
}

impl Tool for RunbookTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, _: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| RunbookCall::parse(action, j))?;
            call.run(&self.runbooks).await
        })
    }
}
