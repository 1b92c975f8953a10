//! `oncall_tool`: the incident log's actions (SPEC §4), calling the incident room.

use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::{parse, take_str};
use crate::error::{Error, Result};
use crate::incidents::model::{IncidentPatch, NewArtifact, NewEvent, NewIncident};
use crate::incidents::Incidents;

/// Every action, for RBAC matrices and `GET /v1/tools`.
pub const ACTIONS: [&str; 14] = [
    "incident_create",
    "incident_get",
    "incident_events",
    "incident_list",
    "incident_update",
    "incident_close",
    "incident_reopen",
    "incident_append_event",
    "incident_followup_close",
    "incident_attach_artifact",
    "incident_artifact_get",
    "incident_followups_summary",
    "incident_stats",
    "incident_feed",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Note {
    #[serde(default, alias = "resolution")]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsPage {
    after: Option<u64>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsParams {
    env: Option<String>,
}

/// Params of `incident_feed` (and the query of `GET /api/events/recent`).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// One event type or a comma-separated list.
    pub types: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    service: Option<String>,
    env: Option<String>,
    window_days: Option<u32>,
}

/// Refuse params left over after the ones an action takes.
fn no_more(rest: Map<String, Json>, usage: &str) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid("params", usage))
    }
}

fn to_json<T: serde::Serialize>(v: T) -> Result<Json> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// Run one action as `actor`.
pub async fn call(inc: &Incidents, action: &str, params: Json, actor: &str) -> Result<Json> {
    let mut p: Map<String, Json> = match params {
        Json::Object(m) => m,
        Json::Null => Map::new(),
        _ => return Err(Error::invalid("params", "must be an object")),
    };
    match action {
        "incident_create" => to_json(inc.create(parse::<NewIncident>(p)?, actor).await?),
        "incident_get" => {
            let id = take_str(&mut p, "incident_id")?;
            no_more(p, "incident_get takes only incident_id")?;
            to_json(inc.get(&id).await?)
        }
        "incident_events" => {
            let id = take_str(&mut p, "incident_id")?;
            let q: EventsPage = parse(p)?;
            to_json(
                inc.events(&id, q.after.unwrap_or(0), q.limit.unwrap_or(200))
                    .await?,
            )
        }
        "incident_list" => {
            let q: crate::http::incidents::ListParams = parse(p)?;
            to_json(inc.list(q.into_query()?).await?)
        }
        "incident_update" => {
            let id = take_str(&mut p, "incident_id")?;
            to_json(inc.update(&id, parse::<IncidentPatch>(p)?, actor).await?)
        }
        "incident_close" | "incident_reopen" => {
            let id = take_str(&mut p, "incident_id")?;
            let note: Note = parse(p)?;
            if action == "incident_close" {
                to_json(inc.close(&id, note.message, actor).await?)
            } else {
                to_json(inc.reopen(&id, note.message, actor).await?)
            }
        }
        "incident_append_event" => {
            let id = take_str(&mut p, "incident_id")?;
            to_json(inc.append_event(&id, parse::<NewEvent>(p)?, actor).await?)
        }
        "incident_followup_close" => {
            let id = take_str(&mut p, "incident_id")?;
            let ev = take_str(&mut p, "event_id")?;
            let note: Note = parse(p)?;
            to_json(inc.close_followup(&id, &ev, note.message, actor).await?)
        }
        "incident_attach_artifact" => {
            let id = take_str(&mut p, "incident_id")?;
            to_json(
                inc.attach_artifact(&id, parse::<NewArtifact>(p)?, actor)
                    .await?,
            )
        }
        "incident_artifact_get" => {
            let id = take_str(&mut p, "incident_id")?;
            let name = take_str(&mut p, "name")?;
            no_more(p, "incident_artifact_get takes incident_id and name")?;
            let (a, bytes) = inc.read_artifact(&id, &name).await?;
            // Artifacts are UTF-8 text (json, md, txt) by construction.
            let content = String::from_utf8(bytes).map_err(|_| Error::Validation {
                code: "not_text",
                message: format!("artifact {} is not UTF-8 text", a.id),
            })?;
            Ok(json!({"artifact": a, "content": content}))
        }
        "incident_followups_summary" => {
            let s: Summary = parse(p)?;
            to_json(
                inc.followups_summary(s.service, s.env, s.window_days.unwrap_or(30))
                    .await?,
            )
        }
        "incident_stats" => {
            let q: StatsParams = parse(p)?;
            to_json(inc.stats(q.env).await?)
        }
        "incident_feed" => {
            let q: FeedParams = parse(p)?;
            let types = q
                .types
                .unwrap_or_default()
                .split(',')
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            to_json(
                inc.feed(crate::incidents::FeedQuery {
                    types,
                    limit: q.limit.unwrap_or(0),
                    cursor: q.cursor.filter(|c| !c.is_empty()),
                })
                .await?,
            )
        }
        other => Err(Error::NotFound(format!(
            "oncall_tool has no action '{}'; actions: {}",
            crate::incidents::model::clip(other, 60),
            json!(ACTIONS)
        ))),
    }
}
