//! `incident_intelligence_tool`: `correlate`, `recurrence`, `weekly_digest` (SPEC §7).

use serde::Deserialize;
use serde_json::Value as Json;

use super::{no_action, object, parse};
use crate::error::Result;
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture};
use crate::incidents::Incidents;
use crate::intel;
use crate::intel::policy::IntelligencePolicy;
use crate::search::incidents::IncidentIndex;

const NAME: &str = "incident_intelligence_tool";

/// Every action, in the order `GET /v1/tools` lists them. `correlate` may append a note and
/// `weekly_digest` may save its report as files.
const ACTIONS: &[Action] = &[
    Action::write("correlate"),
    Action::read("recurrence"),
    Action::write("weekly_digest"),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CorrelateArgs {
    incident_id: String,
    #[serde(default)]
    append_note: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecurrenceArgs {
    window_days: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestArgs {
    #[serde(default)]
    save_artifacts: bool,
}

/// `incident_intelligence_tool`: what it works with.
pub struct IntelligenceTool {
    incidents: Incidents,
    index: IncidentIndex,
    policy: IntelligencePolicy,
    /// Where digests are written (`DATA_DIR/reports`).
    reports_dir: std::path::PathBuf,
}

impl IntelligenceTool {
    /// The tool over the incident room, its similarity index and `incident_intelligence.yml`.
    pub fn new(
        incidents: Incidents,
        index: IncidentIndex,
        policy: IntelligencePolicy,
        reports_dir: std::path::PathBuf,
    ) -> IntelligenceTool {
        IntelligenceTool {
            incidents,
            index,
            policy,
            reports_dir,
        }
    }
}

impl Tool for IntelligenceTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move { call(self, cx, action, params.into_json()?).await })
    }
}

/// Run one action as `cx.actor`.
async fn call(ctx: &IntelligenceTool, cx: ToolCx<'_>, action: &str, params: Json) -> Result<Json> {
    let (actor, now) = (cx.actor, cx.now);
    let p = object(params)?;
    match action {
        "correlate" => {
            let a: CorrelateArgs = parse(p)?;
            crate::incidents::model::validate_incident_id(&a.incident_id)?;
            intel::correlate(
                &ctx.incidents,
                &ctx.index,
                &ctx.policy,
                &a.incident_id,
                a.append_note,
                actor,
            )
            .await
        }
        "recurrence" => {
            let a: RecurrenceArgs = parse(p)?;
            intel::recurrence(&ctx.incidents, &ctx.policy, a.window_days, now).await
        }
        "weekly_digest" => {
            let a: DigestArgs = parse(p)?;
            intel::weekly_digest(
                &ctx.incidents,
                &ctx.policy,
                now,
                a.save_artifacts,
                &ctx.reports_dir,
            )
            .await
        }
        other => Err(no_action(NAME, other, ACTIONS)),
    }
}
