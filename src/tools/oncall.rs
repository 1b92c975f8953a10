//! `oncall_tool`: the incident log's actions (SPEC §4), calling the incident room.

use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

use super::{no_action, object, parse, take_str, to_json};
use crate::error::{Error, Result};
use crate::gateway::{Action, Tool, ToolCx, ToolFuture};
use crate::incidents::model::{
    IncidentPatch, NewArtifact, NewEvent, NewIncident, Severity, Status,
};
use crate::incidents::Incidents;
use crate::incidents::ListQuery;

const NAME: &str = "oncall_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[
    Action::write("incident_create"),
    Action::read("incident_get"),
    Action::read("incident_events"),
    Action::read("incident_list"),
    Action::write("incident_update"),
    Action::write("incident_close"),
    Action::write("incident_reopen"),
    Action::write("incident_append_event"),
    Action::write("incident_followup_close"),
    Action::write("incident_attach_artifact"),
    Action::read("incident_artifact_get"),
    Action::read("incident_followups_summary"),
    Action::read("incident_stats"),
    Action::read("incident_feed"),
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

/// Query of `GET /api/incidents` (and params of `oncall_tool.incident_list`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// One status or a comma-separated list.
    status: Option<String>,
    service: Option<String>,
    env: Option<String>,
    /// One severity or a comma-separated list.
    severity: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Words that must all appear in the id, title, summary, service, owner or labels.
    q: Option<String>,
}

fn split<T>(field: &str, v: Option<String>, parse: fn(&str) -> Option<T>) -> Result<Vec<T>> {
    let Some(v) = v else { return Ok(Vec::new()) };
    v.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            parse(s).ok_or_else(|| {
                Error::invalid(field, format!("'{}' is not a valid value", s.trim()))
            })
        })
        .collect()
}

impl ListParams {
    /// Convert to the room's query, validating every value.
    pub fn into_query(self) -> Result<ListQuery> {
        let since = match self.since {
            None => None,
            Some(s) => Some(crate::kernel::clock::parse_ts(&s).ok_or_else(|| {
                Error::invalid("since", format!("'{s}' is not an RFC 3339 time or date"))
            })?),
        };
        Ok(ListQuery {
            status: split("status", self.status, Status::parse)?,
            severity: split("severity", self.severity, Severity::parse)?,
            service: self.service.filter(|s| !s.is_empty()),
            env: self
                .env
                .filter(|s| !s.is_empty())
                .map(|e| e.to_ascii_lowercase()),
            since,
            limit: self.limit.unwrap_or(0),
            cursor: self.cursor.filter(|c| !c.is_empty()),
            text: match self.q.map(|q| q.trim().to_string()) {
                Some(q) if q.chars().count() > 200 => {
                    return Err(Error::invalid("q", "at most 200 characters"))
                }
                Some(q) if !q.is_empty() => Some(q),
                _ => None,
            },
        })
    }
}

/// Refuse params left over after the ones an action takes.
fn no_more(rest: Map<String, Json>, usage: &str) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid("params", usage))
    }
}

/// Run one action as `actor`.
async fn call(inc: &Incidents, action: &str, params: Json, actor: &str) -> Result<Json> {
    let mut p = object(params)?;
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
            let q: ListParams = parse(p)?;
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
        other => Err(no_action(NAME, other, ACTIONS)),
    }
}

/// `oncall_tool`, over the incident room.
pub struct OncallTool {
    incidents: Incidents,
}

impl OncallTool {
    /// The tool over `incidents`.
    pub fn new(incidents: Incidents) -> OncallTool {
        OncallTool { incidents }
    }
}

impl Tool for OncallTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Json) -> ToolFuture<'a> {
        Box::pin(call(&self.incidents, action, params, cx.actor))
    }
}
