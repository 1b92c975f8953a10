//! `oncall_tool`: the incident log's actions (SPEC §4), calling the incident room.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value as Json};

use super::{no_action, object, parse, take_str, to_json};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture, TypedCall};
use crate::incidents::model::{
    IncidentPatch, NewArtifact, NewEvent, NewIncident, Severity, Status,
};
use crate::incidents::Incidents;
use crate::incidents::{ListQuery, Sort};

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
    Action::read("incident_followups"),
    Action::read("incident_services"),
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

/// Params of `incident_stats` (and the query of `GET /api/incidents/stats`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StatsParams {
    pub env: Option<String>,
}

/// Params of `incident_feed` (and the query of `GET /api/events/recent`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// One event type or a comma-separated list.
    pub types: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// Params of `incident_followups_summary` (and the query of `GET /api/followups/summary`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    pub service: Option<String>,
    pub env: Option<String>,
    pub window_days: Option<u32>,
}

/// Params of `incident_followups` (and the query of `GET /api/followups`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupsParams {
    /// One service or a comma-separated list, any case.
    pub service: Option<String>,
    pub env: Option<String>,
    pub owner: Option<String>,
    /// Only follow-ups past their due date.
    pub overdue: Option<bool>,
    /// `latest` (the default: latest due first) or `soonest` (earliest due first).
    pub order: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

impl FollowupsParams {
    /// Convert to the room's query, validating every value.
    pub fn into_query(self) -> Result<crate::incidents::FollowupQuery> {
        let service = split_tokens("service", self.service.as_deref(), 64)?;
        let env = self
            .env
            .filter(|e| !e.is_empty())
            .map(|e| e.to_ascii_lowercase());
        if let Some(e) = &env {
            crate::kernel::text::check_token("env", e, 32)?;
        }
        let owner = self
            .owner
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty());
        if owner.as_ref().is_some_and(|o| o.chars().count() > 100) {
            return Err(Error::invalid("owner", "at most 100 characters"));
        }
        let soonest = match self.order.as_deref().map(str::trim) {
            None | Some("") | Some("latest") => false,
            Some("soonest") => true,
            Some(o) => {
                return Err(Error::invalid(
                    "order",
                    format!("'{o}' is not one of latest, soonest"),
                ))
            }
        };
        Ok(crate::incidents::FollowupQuery {
            service,
            env,
            owner,
            overdue: self.overdue.unwrap_or(false),
            soonest,
            limit: self.limit.unwrap_or(0),
            cursor: check_cursor(self.cursor)?,
        })
    }
}

/// Params of `incident_services` (and the query of `GET /api/incidents/services`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesParams {
    /// Only services whose name starts with this, any case.
    pub prefix: Option<String>,
    /// At most this many (500, the most, when absent).
    pub limit: Option<usize>,
}

/// A comma-separated list of tokens (`service=a,b`), each checked like the values it matches.
fn split_tokens(field: &str, v: Option<&str>, max: usize) -> Result<Vec<String>> {
    let out: Vec<String> = v
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if out.len() > 50 {
        return Err(Error::invalid(field, "at most 50 values"));
    }
    for s in &out {
        // `name*`: every name starting with `name` (where the field allows it).
        let s = if field == "service" {
            s.strip_suffix('*').unwrap_or(s)
        } else {
            s
        };
        crate::kernel::text::check_token(field, s, max)?;
    }
    Ok(out)
}

/// A page cursor as given back (empty = none); bounded so junk is refused early.
fn check_cursor(c: Option<String>) -> Result<Option<String>> {
    match c.filter(|c| !c.is_empty()) {
        Some(c) if c.len() > 200 => Err(Error::bad_request(
            "invalid_cursor",
            "cursor is not one this server returned",
        )),
        c => Ok(c),
    }
}

/// Query of `GET /api/incidents` (and params of `oncall_tool.incident_list`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// One status or a comma-separated list.
    status: Option<String>,
    /// One service or a comma-separated list, matched without regard to case; `name*` stands
    /// for every service starting with `name`.
    service: Option<String>,
    env: Option<String>,
    /// One severity or a comma-separated list.
    severity: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
    /// Words that must all appear in the id, title, summary, service, owner or labels (an
    /// incident id alone is looked up directly).
    q: Option<String>,
    /// `created` (the default), `severity`, `updated` or `started`; newest first in each.
    sort: Option<String>,
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
        // Filters are bounded like the values they match.
        if let Some(v) = self.env.as_deref().filter(|v| !v.is_empty()) {
            crate::kernel::text::check_token("env", v, 32)?;
        }
        let services = split_tokens("service", self.service.as_deref(), 64)?;
        let sort = match self
            .sort
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Sort::Created,
            Some(s) => Sort::parse(s).ok_or_else(|| {
                Error::invalid(
                    "sort",
                    format!("'{s}' is not one of created, severity, updated, started"),
                )
            })?,
        };
        Ok(ListQuery {
            status: split("status", self.status, Status::parse)?,
            severity: split("severity", self.severity, Severity::parse)?,
            service: services,
            env: self
                .env
                .filter(|s| !s.is_empty())
                .map(|e| e.to_ascii_lowercase()),
            since,
            limit: self.limit.unwrap_or(0),
            cursor: check_cursor(self.cursor)?,
            text: match self.q.map(|q| q.trim().to_string()) {
                Some(q) if q.chars().count() > 200 => {
                    return Err(Error::invalid("q", "at most 200 characters"))
                }
                Some(q) if !q.is_empty() => Some(q),
                _ => None,
            },
            sort,
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

/// One `oncall_tool` call with its typed params: what an agent's JSON is parsed into, and
/// what the console's HTTP handlers build directly. It serializes to the params an agent
/// would send (the audit record hashes that).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum OncallCall {
    Create(NewIncident),
    Get {
        incident_id: String,
    },
    Events {
        incident_id: String,
        after: Option<u64>,
        limit: Option<usize>,
    },
    List(ListParams),
    Update {
        incident_id: String,
        #[serde(flatten)]
        patch: IncidentPatch,
    },
    Close {
        incident_id: String,
        message: Option<String>,
    },
    Reopen {
        incident_id: String,
        message: Option<String>,
    },
    AppendEvent {
        incident_id: String,
        #[serde(flatten)]
        event: NewEvent,
    },
    FollowupClose {
        incident_id: String,
        event_id: String,
        message: Option<String>,
    },
    AttachArtifact {
        incident_id: String,
        #[serde(flatten)]
        artifact: NewArtifact,
    },
    ArtifactGet {
        incident_id: String,
        name: String,
    },
    FollowupsSummary(SummaryParams),
    Stats(StatsParams),
    Feed(FeedParams),
    Followups(FollowupsParams),
    Services(ServicesParams),
}

impl TypedCall for OncallCall {
    const TOOL: &'static str = NAME;
    fn action(&self) -> &'static str {
        match self {
            OncallCall::Create(_) => "incident_create",
            OncallCall::Get { .. } => "incident_get",
            OncallCall::Events { .. } => "incident_events",
            OncallCall::List(_) => "incident_list",
            OncallCall::Update { .. } => "incident_update",
            OncallCall::Close { .. } => "incident_close",
            OncallCall::Reopen { .. } => "incident_reopen",
            OncallCall::AppendEvent { .. } => "incident_append_event",
            OncallCall::FollowupClose { .. } => "incident_followup_close",
            OncallCall::AttachArtifact { .. } => "incident_attach_artifact",
            OncallCall::ArtifactGet { .. } => "incident_artifact_get",
            OncallCall::FollowupsSummary(_) => "incident_followups_summary",
            OncallCall::Stats(_) => "incident_stats",
            OncallCall::Feed(_) => "incident_feed",
            OncallCall::Followups(_) => "incident_followups",
            OncallCall::Services(_) => "incident_services",
        }
    }
}

impl OncallCall {
    /// Parse an agent's params for `action` (a 422 naming the problem).
    pub fn parse(action: &str, params: Json) -> Result<OncallCall> {
        let mut p = object(params)?;
        Ok(match action {
            "incident_create" => OncallCall::Create(parse(p)?),
            "incident_get" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                no_more(p, "incident_get takes only incident_id")?;
                OncallCall::Get { incident_id }
            }
            "incident_events" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                let q: EventsPage = parse(p)?;
                OncallCall::Events {
                    incident_id,
                    after: q.after,
                    limit: q.limit,
                }
            }
            "incident_list" => OncallCall::List(parse(p)?),
            "incident_update" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                OncallCall::Update {
                    incident_id,
                    patch: parse(p)?,
                }
            }
            "incident_close" | "incident_reopen" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                let Note { message } = parse(p)?;
                match action {
                    "incident_close" => OncallCall::Close {
                        incident_id,
                        message,
                    },
                    _ => OncallCall::Reopen {
                        incident_id,
                        message,
                    },
                }
            }
            "incident_append_event" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                OncallCall::AppendEvent {
                    incident_id,
                    event: parse(p)?,
                }
            }
            "incident_followup_close" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                let event_id = take_str(&mut p, "event_id")?;
                let Note { message } = parse(p)?;
                OncallCall::FollowupClose {
                    incident_id,
                    event_id,
                    message,
                }
            }
            "incident_attach_artifact" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                OncallCall::AttachArtifact {
                    incident_id,
                    artifact: parse(p)?,
                }
            }
            "incident_artifact_get" => {
                let incident_id = take_str(&mut p, "incident_id")?;
                let name = take_str(&mut p, "name")?;
                no_more(p, "incident_artifact_get takes incident_id and name")?;
                OncallCall::ArtifactGet { incident_id, name }
            }
            "incident_followups_summary" => OncallCall::FollowupsSummary(parse(p)?),
            "incident_stats" => OncallCall::Stats(parse(p)?),
            "incident_feed" => OncallCall::Feed(parse(p)?),
            "incident_followups" => OncallCall::Followups(parse(p)?),
            "incident_services" => OncallCall::Services(parse(p)?),
            other => return Err(no_action(NAME, other, ACTIONS)),
        })
    }

    /// Run it on the incident room as `actor`.
    pub async fn run(self, inc: &Incidents, actor: &str) -> Result<Json> {
        match self {
            OncallCall::Create(new) => to_json(inc.create(new, actor).await?),
            OncallCall::Get { incident_id } => to_json(inc.get(&incident_id).await?),
            OncallCall::Events {
                incident_id,
                after,
                limit,
            } => to_json(
                inc.events(&incident_id, after.unwrap_or(0), limit.unwrap_or(200))
                    .await?,
            ),
            OncallCall::List(q) => to_json(inc.list(q.into_query()?).await?),
            OncallCall::Update { incident_id, patch } => {
                to_json(inc.update(&incident_id, patch, actor).await?)
            }
            OncallCall::Close {
                incident_id,
                message,
            } => to_json(inc.close(&incident_id, message, actor).await?),
            OncallCall::Reopen {
                incident_id,
                message,
            } => to_json(inc.reopen(&incident_id, message, actor).await?),
            OncallCall::AppendEvent { incident_id, event } => {
                to_json(inc.append_event(&incident_id, event, actor).await?)
            }
            OncallCall::FollowupClose {
                incident_id,
                event_id,
                message,
            } => to_json(
                inc.close_followup(&incident_id, &event_id, message, actor)
                    .await?,
            ),
            OncallCall::AttachArtifact {
                incident_id,
                artifact,
            } => to_json(inc.attach_artifact(&incident_id, artifact, actor).await?),
            OncallCall::ArtifactGet { incident_id, name } => {
                let (a, bytes) = inc.read_artifact(&incident_id, &name).await?;
                // Artifacts are UTF-8 text (json, md, txt) by construction.
                let content = String::from_utf8(bytes).map_err(|_| Error::Validation {
                    code: "not_text",
                    message: format!("artifact {} is not UTF-8 text", a.id),
                })?;
                Ok(json!({"artifact": a, "content": content}))
            }
            OncallCall::FollowupsSummary(s) => to_json(
                inc.followups_summary(s.service, s.env, s.window_days.unwrap_or(30))
                    .await?,
            ),
            OncallCall::Stats(q) => to_json(inc.stats(q.env).await?),
            OncallCall::Followups(q) => to_json(inc.followups(q.into_query()?).await?),
            OncallCall::Services(q) => {
                let (total, services) = inc.services(q.prefix, q.limit.unwrap_or(0)).await?;
                Ok(json!({"total": total, "services": services}))
            }
            OncallCall::Feed(q) => {
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
        }
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
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        Box::pin(async move {
            let call = params.into_typed(|j| OncallCall::parse(action, j))?;
            debug_assert_eq!(call.action(), action);
            call.run(&self.incidents, cx.actor).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_call_names_its_action_and_serializes_to_the_params_an_agent_sends() {
        for (action, params) in [
            ("incident_get", json!({"incident_id": "inc_1"})),
            (
                "incident_close",
                json!({"incident_id": "inc_1", "message": "fixed"}),
            ),
            (
                "incident_followup_close",
                json!({"incident_id": "inc_1", "event_id": "ev_2", "message": null}),
            ),
            (
                "incident_artifact_get",
                json!({"incident_id": "inc_1", "name": "pm.md"}),
            ),
        ] {
            let call = OncallCall::parse(action, params.clone()).unwrap();
            assert_eq!(call.action(), action);
            assert_eq!(serde_json::to_value(&call).unwrap(), params, "{action}");
        }
        let update = OncallCall::parse(
            "incident_update",
            json!({"incident_id": "inc_1", "title": "t"}),
        )
        .unwrap();
        let v = serde_json::to_value(&update).unwrap();
        assert_eq!(
            (v["incident_id"].as_str(), v["title"].as_str()),
            (Some("inc_1"), Some("t"))
        );
        let e =
            OncallCall::parse("incident_get", json!({"incident_id": "inc_1", "x": 1})).unwrap_err();
        assert!(e.to_string().contains("takes only incident_id"), "{e}");
        assert!(OncallCall::parse("incident_delete", json!({})).is_err());
    }
}
