//! `runbook_tool`: search the runbook index and read a runbook (SPEC §6).

use serde::Deserialize;
use serde_json::Value as Json;

use super::{no_action, object, parse, to_json};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture};
use crate::search::runbooks::{Runbooks, SearchParams};

const NAME: &str = "runbook_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[Action::read("search"), Action::read("get")];

/// Params of `search` (and the query of `GET /api/runbooks/search`).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    #[serde(alias = "query")]
    pub q: String,
    pub service: Option<String>,
    pub tag: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetArgs {
    path: String,
}

/// Run one action. Index work is blocking, so it runs on the blocking pool.
async fn call(rb: &Runbooks, action: &str, params: Json) -> Result<Json> {
    let p = object(params)?;
    let rb = rb.clone();
    match action {
        "search" => {
            let a: SearchArgs = parse(p)?;
            let sp = SearchParams {
                q: a.q,
                service: a.service,
                tag: a.tag,
                limit: a.limit.unwrap_or(0),
            };
            blocking(move || rb.search(&sp).and_then(to_json)).await
        }
        "get" => {
            let a: GetArgs = parse(p)?;
            blocking(move || rb.get(&a.path).and_then(to_json)).await
        }
        other => Err(no_action(NAME, other, ACTIONS)),
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
        Box::pin(async move { call(&self.runbooks, action, params.into_json()?).await })
    }
}
