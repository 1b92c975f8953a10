//! `postmortem_draft` (SPEC §8): a postmortem drafted from an incident's record, timeline and
//! triage, attached to the incident as markdown and JSON, with its action items appended to
//! the timeline as follow-ups.
//!
//! `load_incident → ensure_triage → draft → attach_artifacts → followups`. `ensure_triage`
//! reuses the incident's latest `triage_*.json` artifact, or runs `incident_triage` as a
//! sub-run. Writes are idempotent per run: a resumed node finds what it already wrote.
//!
//! Files: `state.rs` is the typed run state; `draft.rs` writes the draft (pure).

mod draft;
mod state;

use serde_json::{json, Value as Json};

use super::shared::{events_of_run, has_event, one_line, str_of as s, timeline};
use crate::error::{Error, Result};
use crate::graphs::{
    is_cancel, next_in_order, reject_unknown, Node, NodeCx, NodeFuture, RunStatus, TypedGraph,
};
use crate::kernel::clock::{parse_ts, rfc3339};

pub use state::{ActionItem, ArtifactRef, PostmortemState};

const NODES: &[Node] = &[
    Node {
        name: "load_incident",
        safe_to_repeat: true,
    },
    Node {
        name: "ensure_triage",
        safe_to_repeat: true,
    },
    Node {
        name: "draft",
        safe_to_repeat: true,
    },
    Node {
        name: "attach_artifacts",
        safe_to_repeat: true,
    },
    Node {
        name: "followups",
        safe_to_repeat: true,
    },
];

/// The `postmortem_draft` graph.
pub struct PostmortemDraft {
    max_window_h: u64,
}

impl PostmortemDraft {
    /// `max_window_h` bounds the window of a triage it starts (`INCIDENT_MAX_TIME_WINDOW_H`).
    pub fn new(max_window_h: u64) -> Self {
        PostmortemDraft { max_window_h }
    }
}

impl TypedGraph for PostmortemDraft {
    type State = PostmortemState;

    fn name(&self) -> &'static str {
        "postmortem_draft"
    }
    fn description(&self) -> &'static str {
        "Draft a postmortem from an incident (running triage first when it has none), attach it as markdown and JSON, and add its action items as follow-ups"
    }
    fn nodes(&self) -> &'static [Node] {
        NODES
    }
    fn input_schema(&self) -> Json {
        json!({
            "type": "object", "required": ["incident_id"], "additionalProperties": false,
            "properties": {
                "incident_id": {"type": "string", "description": "The incident (inc_…)"},
                "timeouts": {"type": "object", "properties": {"overall_sec": {"type": "number", "minimum": 1, "default": 300}}}
            }
        })
    }
    fn default_timeout_s(&self) -> u64 {
        300
    }
    fn init(&self, input: &Json) -> Result<PostmortemState> {
        if let Some(m) = input.as_object() {
            reject_unknown(m, "input", &["incident_id", "timeouts"])?;
        }
        let id = match input.get("incident_id") {
            Some(Json::String(s)) => s.trim().to_string(),
            None | Some(Json::Null) => {
                return Err(Error::invalid("input.incident_id", "is required"))
            }
            Some(_) => return Err(Error::invalid("input.incident_id", "must be a string")),
        };
        crate::incidents::model::validate_incident_id(&id).map_err(|_| {
            Error::invalid(
                "input.incident_id",
                "is not an incident id (inc_YYYYMMDD_HHMM_…)",
            )
        })?;
        serde_json::from_value(json!({"incident_id": id}))
            .map_err(|e| Error::Internal(format!("postmortem state: {e}")))
    }

    fn step<'a>(
        &'a self,
        node: &'a str,
        state: &'a mut PostmortemState,
        cx: &'a NodeCx,
    ) -> NodeFuture<'a> {
        Box::pin(async move {
            match node {
                "load_incident" => load_incident(state, cx).await?,
                "ensure_triage" => self.ensure_triage(state, cx).await?,
                "draft" => {
                    state.run_id = cx.run_id.clone();
                    draft::draft(state, cx.now());
                }
                "attach_artifacts" => attach_artifacts(state, cx).await?,
                "followups" => followups(state, cx).await?,
                other => return Err(Error::Internal(format!("no node {other}"))),
            }
            Ok(next_in_order(NODES, node))
        })
    }

    fn result(&self, state: &PostmortemState) -> Json {
        json!({
            "incident_id": state.incident_id,
            "triage_run_id": state.triage_run_id,
            "triage": state.triage_source,
            "triage_error": state.triage_error,
            "artifacts": state.artifacts,
            "followups": state.followups_added,
            "markdown": state.markdown,
            "postmortem": state.postmortem,
        })
    }
}

/// The incident, its whole timeline (up to 2000 events) and its artifacts.
async fn load_incident(state: &mut PostmortemState, cx: &NodeCx) -> Result<()> {
    let id = state.incident_id.clone();
    let d = cx
        .tool("oncall_tool", "incident_get", json!({"incident_id": id}))
        .await?;
    let mut events: Vec<Json> = d["events"].as_array().cloned().unwrap_or_default();
    if d["events_truncated"] == true {
        events = timeline(cx, &id, 2000).await?;
    }
    state.incident = d["incident"].clone();
    state.events = events;
    state.artifacts_before = d["artifacts"].clone();
    Ok(())
}

impl PostmortemDraft {
    /// The latest triage report attached to the incident, or a fresh `incident_triage` run.
    async fn ensure_triage(&self, state: &mut PostmortemState, cx: &NodeCx) -> Result<()> {
        let id = state.incident_id.clone();
        let latest = state
            .artifacts_before
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                let n = s(&a["name"]);
                // Reports written by incident_triage runs, not any file a person named so.
                n.starts_with("triage_gr_") && n.ends_with(".json")
            })
            .max_by_key(|a| s(&a["created_at"]))
            .map(|a| s(&a["name"]));
        if let Some(name) = latest {
            let a = match cx
                .tool(
                    "oncall_tool",
                    "incident_artifact_get",
                    json!({"incident_id": id, "name": name}),
                )
                .await
            {
                Ok(a) => a,
                Err(e) if is_cancel(&e) => return Err(e),
                // Unreadable: a fresh triage replaces it.
                Err(_) => Json::Null,
            };
            if let Ok(report) = serde_json::from_str::<Json>(a["content"].as_str().unwrap_or("")) {
                if report.is_object() && report["suspected_root_causes"].is_array() {
                    state.triage_run_id = report["run_id"].clone();
                    state.triage = report;
                    state.triage_source = Some("existing".into());
                    state.triage_artifact = Some(name);
                    return Ok(());
                }
            }
        }
        let input = self.triage_input(state, cx.now());
        let child = match cx.sub_run("incident_triage", input).await {
            Ok(c) => c,
            Err(e) if is_cancel(&e) => return Err(e),
            // The draft goes on without it and says why.
            Err(e) => {
                state.triage = Json::Null;
                state.triage_source = Some("failed".into());
                state.triage_error = Some(format!("triage could not start: {e}"));
                return Ok(());
            }
        };
        state.triage_run_id = json!(child.run_id);
        state.triage_source = Some("sub_run".into());
        if child.status == RunStatus::Succeeded {
            state.triage = child.result.unwrap_or(Json::Null);
        } else {
            state.triage = Json::Null;
            state.triage_error = Some(format!(
                "triage run {} {}: {}",
                child.run_id,
                child.status.as_str(),
                child.error.unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// The input of a triage for the incident: its service and env, its title as the symptom,
    /// and a window from 15 minutes before impact to 15 after resolution (or now).
    fn triage_input(&self, state: &PostmortemState, now: time::OffsetDateTime) -> Json {
        let inc = &state.incident;
        let started = parse_ts(&s(&inc["started_at"])).unwrap_or(now);
        let to = match parse_ts(&s(&inc["resolved_at"])) {
            Some(r) => (r + time::Duration::minutes(15)).min(now),
            None => now,
        };
        let earliest = to - time::Duration::hours(self.max_window_h as i64);
        let from = (started - time::Duration::minutes(15)).max(earliest);
        let from = if from >= to {
            to - time::Duration::hours(1)
        } else {
            from
        };
        let symptom = crate::kernel::text::clip(&s(&inc["title"]), 480);
        // An env triage does not know (incidents accept any env name) triages as prod.
        let env = match crate::config::Env::parse(&s(&inc["env"])) {
            Some(e) => e.as_str().to_string(),
            None => "prod".to_string(),
        };
        json!({"service": inc["service"], "env": env, "symptom": one_line(&symptom),
               "incident_id": state.incident_id,
               "time_range": {"from": rfc3339(from), "to": rfc3339(to)}})
    }
}

/// Attach `postmortem.md` and `postmortem.json` (the incident room names them
/// `postmortem-2.md`… when earlier drafts hold those names). The content names the run, so a
/// resumed node recognises its own files by their sha256 and does not attach them twice.
async fn attach_artifacts(state: &mut PostmortemState, cx: &NodeCx) -> Result<()> {
    let id = state.incident_id.clone();
    let md = state.markdown.clone();
    let js = serde_json::to_string_pretty(&state.postmortem).unwrap_or_default();
    let d = cx
        .tool("oncall_tool", "incident_get", json!({"incident_id": id}))
        .await?;
    let existing = d["artifacts"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (ext, content) in [("md", md), ("json", js)] {
        let sha = crate::kernel::hash::sha256_hex(content.as_bytes());
        let a = match existing
            .iter()
            .find(|a| a["sha256"].as_str() == Some(sha.as_str()))
        {
            Some(a) => a.clone(),
            None => {
                cx.tool(
                    "oncall_tool",
                    "incident_attach_artifact",
                    json!({"incident_id": id, "name": format!("postmortem.{ext}"), "content": content, "format": ext}),
                )
                .await?
            }
        };
        out.push(ArtifactRef {
            name: a["name"].clone(),
            sha256: a["sha256"].clone(),
            size: a["size_bytes"].clone(),
        });
    }
    state.artifacts = out;
    Ok(())
}

/// Append each action item as a `followup` event (once per run), then a `postmortem` event.
async fn followups(state: &mut PostmortemState, cx: &NodeCx) -> Result<()> {
    let id = state.incident_id.clone();
    let run = cx.run_id.clone();
    // Follow-ups this run already added (a resumed node skips them).
    let done: Vec<String> = events_of_run(cx, &id, "followup", &run)
        .await?
        .iter()
        .map(|e| s(&e["meta"]["title"]))
        .collect();
    let items = state.action_items.clone();
    for i in &items {
        if done.contains(&i.title) {
            continue;
        }
        let mut meta = json!({"title": i.title, "due": i.due, "priority": i.priority,
                              "run_id": run, "source": "postmortem_draft"});
        if i.owner.is_string() {
            meta["owner"] = i.owner.clone();
        }
        cx.tool(
            "oncall_tool",
            "incident_append_event",
            json!({"incident_id": id, "type": "followup", "message": i.title, "meta": meta}),
        )
        .await?;
    }
    if !has_event(cx, &id, "postmortem", &run).await? {
        let names: Vec<&Json> = state.artifacts.iter().map(|a| &a.name).collect();
        cx.tool(
            "oncall_tool",
            "incident_append_event",
            json!({"incident_id": id, "type": "postmortem",
                   "message": format!("Postmortem draft attached ({} action items)", items.len()),
                   "meta": {"run_id": run, "artifacts": names}}),
        )
        .await?;
    }
    state.followups_added = items;
    Ok(())
}
