//! `backlog_tool`: `list`, `update`, `generate` (SPEC §7), calling the backlog room.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{no_action, object, parse, to_json};
use crate::backlog::{Backlog, HighRisk, PressureInput};
use crate::error::Result;
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};

const NAME: &str = "backlog_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[
    Action::read("list"),
    Action::write("update"),
    Action::write("generate"),
];

/// Params of `list` (and the query of `GET /api/backlog`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// `open`, `in_progress`, `done` or `wontfix`.
    pub status: Option<String>,
    /// One service.
    pub service: Option<String>,
    /// At most this many (default 200).
    pub limit: Option<usize>,
}

/// Params of `update` without the id (the body of `PATCH /api/backlog/{id}`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// New status.
    pub status: Option<String>,
    /// New owner.
    pub owner: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateArgs {
    id: String,
    status: Option<String>,
    owner: Option<String>,
}

/// Params of `generate`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateParams {
    /// Compute without writing.
    #[serde(default)]
    pub dry_run: bool,
    /// Services at high risk (from `risk_tool.top`).
    #[serde(default)]
    pub high_risk: Vec<HighRisk>,
    /// Services under pressure (from `risk_tool.platform_digest`).
    #[serde(default)]
    pub pressure: Vec<PressureInput>,
}

/// One `backlog_tool` call with its typed params.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum BacklogCall {
    /// `list`.
    List(ListParams),
    /// `update`.
    Update {
        /// Item id.
        id: String,
        /// Status and owner.
        #[serde(flatten)]
        body: UpdateBody,
    },
    /// `generate`.
    Generate(GenerateParams),
}

impl TypedCall for BacklogCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            BacklogCall::List(_) => "list",
            BacklogCall::Update { .. } => "update",
            BacklogCall::Generate(_) => "generate",
        }
    }
}

impl BacklogCall {
    /// Parse an agent's params for `action` (a 422 naming the problem).
    pub fn parse(action: &str, params: Json) -> Result<BacklogCall> {
        let p = object(params)?;
        Ok(match action {
            "list" => BacklogCall::List(parse(p)?),
            "update" => {
                let a: UpdateArgs = parse(p)?;
                BacklogCall::Update {
                    id: a.id,
                    body: UpdateBody {
                        status: a.status,
                        owner: a.owner,
                    },
                }
            }
            "generate" => BacklogCall::Generate(parse(p)?),
            other => return Err(no_action(NAME, other, ACTIONS)),
        })
    }

    /// Run the call against the room.
    pub async fn run(self, backlog: &Backlog, cx: ToolCx<'_>) -> Result<Json> {
        match self {
            BacklogCall::List(p) => backlog.list(p.status, p.service, p.limit).await,
            BacklogCall::Update { id, body } => {
                to_json(backlog.update(id, body.status, body.owner, cx.now).await?)
            }
            BacklogCall::Generate(g) => {
                backlog
                    .generate(g.dry_run, g.high_risk, g.pressure, cx.now)
                    .await
            }
        }
    }
}

/// `backlog_tool` over the backlog room.
pub struct BacklogTool {
    backlog: Backlog,
}

impl BacklogTool {
    /// The tool over `backlog`.
    pub fn new(backlog: Backlog) -> BacklogTool {
        BacklogTool { backlog }
    }
}

impl Tool for BacklogTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| BacklogCall::parse(action, j))?;
            call.run(&self.backlog, cx).await
        })
    }
}
