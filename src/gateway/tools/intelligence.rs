//! `incident_intelligence_tool`: `correlate`, `recurrence`, `weekly_digest` (SPEC §7).

use serde::Deserialize;
use serde_json::{Map, Value as Json};

use super::parse;
use crate::error::{Error, Result};
use crate::gateway::policy::IntelligencePolicy;
use crate::incidents::intelligence;
use crate::incidents::Incidents;
use crate::search::incidents::IncidentIndex;

/// Every action, for RBAC matrices and `GET /v1/tools`.
pub const ACTIONS: [&str; 3] = ["correlate", "recurrence", "weekly_digest"];

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

/// What the tool works with.
pub struct Ctx<'a> {
    pub incidents: &'a Incidents,
    pub index: &'a IncidentIndex,
    pub policy: &'a IntelligencePolicy,
    pub now: time::OffsetDateTime,
    pub reports_dir: &'a std::path::Path,
}

/// Run one action as `actor`.
pub async fn call(ctx: Ctx<'_>, action: &str, params: Json, actor: &str) -> Result<Json> {
    let p: Map<String, Json> = match params {
        Json::Object(m) => m,
        Json::Null => Map::new(),
        _ => return Err(Error::invalid("params", "must be an object")),
    };
    match action {
        "correlate" => {
            let a: CorrelateArgs = parse(p)?;
            crate::incidents::model::validate_incident_id(&a.incident_id)?;
            intelligence::correlate(
                ctx.incidents,
                ctx.index,
                ctx.policy,
                &a.incident_id,
                a.append_note,
                actor,
            )
            .await
        }
        "recurrence" => {
            let a: RecurrenceArgs = parse(p)?;
            intelligence::recurrence(ctx.incidents, ctx.policy, a.window_days, ctx.now).await
        }
        "weekly_digest" => {
            let a: DigestArgs = parse(p)?;
            intelligence::weekly_digest(
                ctx.incidents,
                ctx.policy,
                ctx.now,
                a.save_artifacts,
                ctx.reports_dir,
            )
            .await
        }
        other => Err(Error::NotFound(format!(
            "incident_intelligence_tool has no action '{}'; actions: {}",
            crate::incidents::model::clip(other, 60),
            serde_json::json!(ACTIONS)
        ))),
    }
}
