//! `postmortem_draft` (SPEC §8): a postmortem drafted from an incident's record, timeline and
//! triage, attached to the incident as markdown and JSON, with its action items appended to
//! the timeline as follow-ups.
//!
//! `load_incident → ensure_triage → draft → attach_artifacts → followups`. `ensure_triage`
//! reuses the incident's latest `triage_*.json` artifact, or runs `incident_triage` as a
//! sub-run. Writes are idempotent per run: a resumed node finds what it already wrote.

use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use super::triage::{events_of_run, has_event, one_line, str_of as s, timeline};
use super::{is_cancel, next_in_order, reject_unknown, Graph, Node, NodeCx, NodeFuture, RunStatus};
use crate::error::{Error, Result};
use crate::kernel::clock::{parse_ts, rfc3339};

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

/// The graph.
pub struct PostmortemDraft {
    max_window_h: u64,
}

impl PostmortemDraft {
    /// `max_window_h` bounds the window of a triage it starts (`INCIDENT_MAX_TIME_WINDOW_H`).
    pub fn new(max_window_h: u64) -> Self {
        PostmortemDraft { max_window_h }
    }
}

/// Minutes from `a` to `b` (RFC 3339 strings), when both are set and in order.
fn minutes(a: &Json, b: &Json) -> Option<i64> {
    let (a, b) = (parse_ts(a.as_str()?)?, parse_ts(b.as_str()?)?);
    (b >= a).then(|| (b - a).whole_minutes())
}

fn human(m: i64) -> String {
    if m < 60 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{} days", m / (24 * 60))
    }
}

/// Markdown text on one line (table cells, list items): no pipes or line breaks.
fn cell(t: &str) -> String {
    one_line(&t.replace('\\', "\\\\").replace('|', "\\|"))
}

/// Free text (an incident summary) as a block quote: its lines cannot start headings or
/// table rows of the draft.
fn quote(t: &str) -> String {
    t.lines()
        .map(|l| format!("> {}", l.replace(|c: char| c.is_control(), " ")))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Graph for PostmortemDraft {
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
    fn init(&self, input: &Json) -> Result<Json> {
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
        Ok(json!({"incident_id": id}))
    }

    fn step<'a>(&'a self, node: &'a str, state: &'a mut Json, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            match node {
                "load_incident" => load_incident(state, cx).await?,
                "ensure_triage" => self.ensure_triage(state, cx).await?,
                "draft" => {
                    state["run_id"] = json!(cx.run_id);
                    draft(state, cx.now());
                }
                "attach_artifacts" => attach_artifacts(state, cx).await?,
                "followups" => followups(state, cx).await?,
                other => return Err(Error::Internal(format!("no node {other}"))),
            }
            Ok(next_in_order(NODES, node))
        })
    }

    fn result(&self, state: &Json) -> Json {
        json!({
            "incident_id": state["incident_id"],
            "triage_run_id": state["triage_run_id"],
            "triage": state["triage_source"],
            "triage_error": state["triage_error"],
            "artifacts": state["artifacts"],
            "followups": state["followups_added"],
            "markdown": state["markdown"],
            "postmortem": state["postmortem"],
        })
    }
}

/// The incident, its whole timeline (up to 2000 events) and its artifacts.
async fn load_incident(state: &mut Json, cx: &NodeCx) -> Result<()> {
    let id = s(&state["incident_id"]);
    let d = cx
        .tool("oncall_tool", "incident_get", json!({"incident_id": id}))
        .await?;
    let mut events: Vec<Json> = d["events"].as_array().cloned().unwrap_or_default();
    if d["events_truncated"] == true {
        events = timeline(cx, &id, 2000).await?;
    }
    state["incident"] = d["incident"].clone();
    state["events"] = json!(events);
    state["artifacts_before"] = d["artifacts"].clone();
    Ok(())
}

impl PostmortemDraft {
    /// The latest triage report attached to the incident, or a fresh `incident_triage` run.
    async fn ensure_triage(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        let id = s(&state["incident_id"]);
        let latest = state["artifacts_before"]
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
                    state["triage_run_id"] = report["run_id"].clone();
                    state["triage"] = report;
                    state["triage_source"] = json!("existing");
                    state["triage_artifact"] = json!(name);
                    return Ok(());
                }
            }
        }
        let inc = &state["incident"];
        let now = cx.now();
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
        let child = match cx
            .sub_run(
                "incident_triage",
                json!({"service": inc["service"], "env": env, "symptom": one_line(&symptom),
                       "incident_id": id, "time_range": {"from": rfc3339(from), "to": rfc3339(to)}}),
            )
            .await
        {
            Ok(c) => c,
            Err(e) if is_cancel(&e) => return Err(e),
            // The draft goes on without it and says why.
            Err(e) => {
                state["triage"] = Json::Null;
                state["triage_source"] = json!("failed");
                state["triage_error"] = json!(format!("triage could not start: {e}"));
                return Ok(());
            }
        };
        state["triage_run_id"] = json!(child.run_id);
        state["triage_source"] = json!("sub_run");
        if child.status == RunStatus::Succeeded {
            state["triage"] = child.result.unwrap_or(Json::Null);
        } else {
            state["triage"] = Json::Null;
            state["triage_error"] = json!(format!(
                "triage run {} {}: {}",
                child.run_id,
                child.status.as_str(),
                child.error.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// Action items from the triage's causes and gaps, each with an owner, a due date and a
/// priority.
fn action_items(state: &Json, now: OffsetDateTime) -> Vec<Json> {
    let inc = &state["incident"];
    let svc = s(&inc["service"]);
    let env = s(&inc["env"]);
    let t = &state["triage"];
    let mut items: Vec<String> = Vec::new();
    for c in t["suspected_root_causes"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
    {
        let cause = s(&c["cause"]);
        let item = match c["kind"].as_str().unwrap_or("") {
            "deploy" => format!(
                "Add a release check that would have caught: {}",
                cause.trim_start_matches("Regression from deploy: ")
            ),
            "health" => {
                format!("Find why {svc} targets failed health checks and alert on it earlier")
            }
            "slo_burn" => format!(
                "Review {svc}'s error budget alerting so burn is paged before users report it"
            ),
            "latency" => format!("Find and fix the p95 latency regression in {svc}"),
            "error_logs" => format!(
                "Fix the recurring error in {svc}: {}",
                cause.trim_start_matches("Recurring error: ")
            ),
            "alerts" => format!(
                "Check that {} leads to a runbook with a clear first action",
                cause.trim_end_matches(" firing")
            ),
            "traces" => format!("Add timeouts and fallbacks for the call path: {cause}"),
            _ => format!("Confirm or rule out: {cause}"),
        };
        items.push(crate::kernel::text::clip(&one_line(&item), 290));
    }
    for (what, st) in t["sources"].as_object().into_iter().flatten() {
        if st == "not_configured" && matches!(what.as_str(), "metrics" | "logs") {
            items.push(format!(
                "Configure a {what} source for {env} in config/observability_sources.yml"
            ));
        }
    }
    if t["references"]["runbook_snippets"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        items.push(crate::kernel::text::clip(
            &one_line(&format!("Write a runbook for {svc}: {}", s(&inc["title"]))),
            290,
        ));
    }
    if items.is_empty() {
        items.push("Hold the postmortem review and record the confirmed root cause".into());
    }
    items.dedup();
    items.truncate(6);
    let (days, priority) = match s(&inc["severity"]).as_str() {
        "P0" => (7, "P1"),
        "P1" => (14, "P1"),
        "P2" => (30, "P2"),
        _ => (60, "P3"),
    };
    let due = (now + time::Duration::days(days)).date();
    items
        .into_iter()
        .map(|title| {
            json!({"title": title, "owner": inc["owner"], "due": due.to_string(), "priority": priority})
        })
        .collect()
}

/// The markdown and JSON postmortem (pure: the same state gives the same text).
fn draft(state: &mut Json, now: OffsetDateTime) {
    let inc = state["incident"].clone();
    let t = state["triage"].clone();
    let id = s(&inc["id"]);
    let items = action_items(state, now);
    let mtta = minutes(&inc["started_at"], &inc["acknowledged_at"]);
    let mttm = minutes(&inc["started_at"], &inc["mitigated_at"]);
    let mttr = minutes(&inc["started_at"], &inc["resolved_at"]);
    let events: Vec<Json> = state["events"].as_array().cloned().unwrap_or_default();

    let mut well: Vec<String> = Vec::new();
    let mut badly: Vec<String> = Vec::new();
    match mtta {
        Some(m) if m <= 15 => well.push(format!("Acknowledged {} after impact began", human(m))),
        Some(m) => badly.push(format!(
            "Acknowledged only {} after impact began (aim: 15 min)",
            human(m)
        )),
        None => badly.push("The incident was never marked acknowledged".into()),
    }
    match mttm {
        Some(m) if m <= 60 => well.push(format!("Mitigated within {}", human(m))),
        Some(m) => badly.push(format!("Mitigation took {}", human(m))),
        None => {}
    }
    if let Some(m) = mttr {
        well.push(format!("Resolved {} after impact began", human(m)));
    }
    let snippets = t["references"]["runbook_snippets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(r) = snippets.first() {
        well.push(format!(
            "A runbook section matched the symptoms: {} ({})",
            s(&r["heading"]),
            s(&r["path"])
        ));
    } else if t.is_object() {
        badly.push("No runbook matched the symptoms".into());
    }
    for (what, st) in t["sources"].as_object().into_iter().flatten() {
        let st = st.as_str().unwrap_or("");
        if st == "not_configured" {
            badly.push(format!(
                "No {what} source was configured, so triage could not use it"
            ));
        } else if st.starts_with("unavailable") {
            badly.push(format!("The {what} source was unreachable during triage"));
        }
    }
    let mitigations = events.iter().filter(|e| e["type"] == "mitigation").count();
    if mitigations > 0 {
        well.push(format!(
            "{mitigations} mitigation step(s) recorded on the timeline"
        ));
    }
    let related = t["references"]["related_incidents"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    if related > 0 {
        badly.push(format!(
            "{related} other active incident(s) for the same service at the time"
        ));
    }

    let mut md = String::new();
    md.push_str(&format!("# Postmortem: {}\n\n", cell(&s(&inc["title"]))));
    md.push_str(&format!(
        "*Draft by sofiia's postmortem_draft (run `{}`, {}); review and edit before sharing.*\n\n",
        s(&state["run_id"]),
        rfc3339(now)
    ));
    md.push_str("| | |\n|---|---|\n");
    for (k, v) in [
        ("Incident", format!("`{id}`")),
        (
            "Service",
            format!("{} ({})", s(&inc["service"]), s(&inc["env"])),
        ),
        ("Severity", s(&inc["severity"])),
        ("Status", s(&inc["status"])),
        (
            "Owner",
            inc["owner"].as_str().unwrap_or("unassigned").to_string(),
        ),
        ("Impact began", s(&inc["started_at"])),
        (
            "Acknowledged",
            inc["acknowledged_at"].as_str().unwrap_or("—").to_string(),
        ),
        (
            "Mitigated",
            inc["mitigated_at"].as_str().unwrap_or("—").to_string(),
        ),
        (
            "Resolved",
            inc["resolved_at"].as_str().unwrap_or("—").to_string(),
        ),
        (
            "MTTA / MTTM / MTTR",
            [mtta, mttm, mttr]
                .iter()
                .map(|m| m.map(human).unwrap_or("—".into()))
                .collect::<Vec<_>>()
                .join(" / "),
        ),
    ] {
        md.push_str(&format!("| {k} | {} |\n", cell(&v)));
    }
    md.push_str("\n## Summary\n\n");
    let summary = s(&inc["summary"]);
    if !summary.is_empty() {
        md.push_str(&format!("{}\n\n", quote(&summary)));
    }
    match t["summary"].as_str() {
        Some(ts) => md.push_str(&format!("Triage: {}\n", cell(ts))),
        None => md.push_str(&format!(
            "Triage: not available ({}).\n",
            state["triage_error"].as_str().unwrap_or("no report")
        )),
    }
    md.push_str("\n## Impact\n\n");
    md.push_str(&format!(
        "{}\n",
        cell(
            t["impact_assessment"]
                .as_str()
                .unwrap_or("Unknown: no triage report.")
        )
    ));
    md.push_str("\n## Timeline (UTC)\n\n");
    if events.is_empty() {
        md.push_str("No events recorded.\n");
    }
    for e in events.iter().take(300) {
        md.push_str(&format!(
            "- **{}** `{}` {}{}\n",
            s(&e["ts"]),
            s(&e["type"]),
            cell(&crate::kernel::text::clip(&s(&e["message"]), 300)),
            match e["actor"].as_str() {
                Some(a) if !a.is_empty() => format!(" — {}", cell(a)),
                _ => String::new(),
            }
        ));
    }
    if events.len() > 300 {
        md.push_str(&format!("- … {} more events\n", events.len() - 300));
    }
    md.push_str("\n## Root cause (suspected)\n\n");
    let causes = t["suspected_root_causes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if causes.is_empty() {
        md.push_str("No cause was identified from the available signals. Record the confirmed root cause in review.\n");
    }
    for c in &causes {
        md.push_str(&format!(
            "{}. **{}** (score {})\n",
            c["rank"],
            cell(&s(&c["cause"])),
            c["score"]
        ));
        for e in c["evidence"].as_array().into_iter().flatten() {
            md.push_str(&format!("   - {}\n", cell(&s(e))));
        }
    }
    md.push_str("\n## What went well\n\n");
    if well.is_empty() {
        md.push_str("- (to be filled in review)\n");
    }
    for w in &well {
        md.push_str(&format!("- {}\n", cell(w)));
    }
    md.push_str("\n## What went badly\n\n");
    if badly.is_empty() {
        md.push_str("- (to be filled in review)\n");
    }
    for b in &badly {
        md.push_str(&format!("- {}\n", cell(b)));
    }
    md.push_str("\n## Action items\n\n| Action | Owner | Due | Priority |\n|---|---|---|---|\n");
    for i in &items {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&s(&i["title"])),
            cell(i["owner"].as_str().unwrap_or("unassigned")),
            s(&i["due"]),
            s(&i["priority"])
        ));
    }
    md.push_str("\n## References\n\n");
    if let Some(r) = state["triage_run_id"].as_str() {
        md.push_str(&format!("- Triage run `{r}`\n"));
    }
    for r in &snippets {
        md.push_str(&format!(
            "- Runbook {} ({})\n",
            cell(&s(&r["heading"])),
            s(&r["path"])
        ));
    }
    state["markdown"] = json!(md);
    state["action_items"] = json!(items);
    state["postmortem"] = json!({
        "incident_id": id, "title": inc["title"], "service": inc["service"], "env": inc["env"],
        "severity": inc["severity"], "status": inc["status"], "owner": inc["owner"],
        "started_at": inc["started_at"], "acknowledged_at": inc["acknowledged_at"],
        "mitigated_at": inc["mitigated_at"], "resolved_at": inc["resolved_at"],
        "metrics_minutes": {"mtta": mtta, "mttm": mttm, "mttr": mttr},
        "summary": t["summary"], "impact": t["impact_assessment"],
        "timeline": events.iter().take(300).map(|e| json!({"ts": e["ts"], "type": e["type"], "message": e["message"], "actor": e["actor"]})).collect::<Vec<_>>(),
        "root_causes": causes, "went_well": well, "went_badly": badly,
        "action_items": state["action_items"], "triage_run_id": state["triage_run_id"],
        "drafted_at": rfc3339(now), "run_id": state["run_id"],
    });
}

/// Attach `postmortem.md` and `postmortem.json` (the incident room names them
/// `postmortem-2.md`… when earlier drafts hold those names). The content names the run, so a
/// resumed node recognises its own files by their sha256 and does not attach them twice.
async fn attach_artifacts(state: &mut Json, cx: &NodeCx) -> Result<()> {
    let id = s(&state["incident_id"]);
    let md = s(&state["markdown"]);
    let js = serde_json::to_string_pretty(&state["postmortem"]).unwrap_or_default();
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
        out.push(json!({"name": a["name"], "sha256": a["sha256"], "size": a["size_bytes"]}));
    }
    state["artifacts"] = json!(out);
    Ok(())
}

/// Append each action item as a `followup` event (once per run), then a `postmortem` event.
async fn followups(state: &mut Json, cx: &NodeCx) -> Result<()> {
    let id = s(&state["incident_id"]);
    let run = cx.run_id.clone();
    // Follow-ups this run already added (a resumed node skips them).
    let done: Vec<String> = events_of_run(cx, &id, "followup", &run)
        .await?
        .iter()
        .map(|e| s(&e["meta"]["title"]))
        .collect();
    let items = state["action_items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for i in &items {
        if done.contains(&s(&i["title"])) {
            continue;
        }
        let mut meta = json!({"title": i["title"], "due": i["due"], "priority": i["priority"],
                              "run_id": run, "source": "postmortem_draft"});
        if i["owner"].is_string() {
            meta["owner"] = i["owner"].clone();
        }
        cx.tool(
            "oncall_tool",
            "incident_append_event",
            json!({"incident_id": id, "type": "followup", "message": i["title"], "meta": meta}),
        )
        .await?;
    }
    if !has_event(cx, &id, "postmortem", &run).await? {
        let names: Vec<Json> = state["artifacts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["name"].clone())
            .collect();
        cx.tool(
            "oncall_tool",
            "incident_append_event",
            json!({"incident_id": id, "type": "postmortem",
                   "message": format!("Postmortem draft attached ({} action items)", items.len()),
                   "meta": {"run_id": run, "artifacts": names}}),
        )
        .await?;
    }
    state["followups_added"] = json!(items);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draft_covers_every_section_and_items_have_owner_and_due() {
        let mut st = json!({
            "incident_id": "inc_20260301_1000_aaaaaaaaaaaa",
            "incident": {"id": "inc_20260301_1000_aaaaaaaaaaaa", "title": "router 5xx | spike", "service": "router",
                "env": "prod", "severity": "P1", "status": "resolved", "owner": "ana",
                "started_at": "2026-03-01T10:00:00Z", "acknowledged_at": "2026-03-01T10:40:00Z",
                "mitigated_at": "2026-03-01T10:50:00Z", "resolved_at": "2026-03-01T12:00:00Z", "summary": ""},
            "events": [{"ts": "2026-03-01T09:55:00Z", "type": "deploy", "message": "router v2.3.1", "actor": "ci"}],
            "triage": {"summary": "s", "impact_assessment": "SLO impact: error_rate=2.10%",
                "suspected_root_causes": [{"rank": 1, "cause": "Regression from deploy: router v2.3.1", "kind": "deploy", "score": 0.8, "evidence": ["deploy at …"]}],
                "sources": {"metrics": "ok", "logs": "not_configured", "traces": "skipped: include_traces is false"},
                "references": {"runbook_snippets": []}},
            "triage_run_id": "gr_abc",
        });
        let now = parse_ts("2026-03-02T00:00:00Z").unwrap();
        draft(&mut st, now);
        let md = s(&st["markdown"]);
        for h in [
            "## Summary",
            "## Impact",
            "## Timeline",
            "## Root cause",
            "## What went well",
            "## What went badly",
            "## Action items",
        ] {
            assert!(md.contains(h), "{h} missing");
        }
        assert!(md.contains("router 5xx \\| spike"));
        assert!(md.contains("Acknowledged only 40 min"));
        assert!(md.contains("MTTA / MTTM / MTTR | 40 min / 50 min / 2 h 0 min"));
        let items = st["action_items"].as_array().unwrap();
        assert!(items
            .iter()
            .any(|i| s(&i["title"]).contains("release check")));
        assert!(items
            .iter()
            .any(|i| s(&i["title"]).contains("Configure a logs source")));
        assert!(items
            .iter()
            .all(|i| i["owner"] == "ana" && i["due"] == "2026-03-16" && i["priority"] == "P1"));
        // Pure: the same state drafts the same text (so a resumed attach finds its own file).
        let first = md.clone();
        draft(&mut st, now);
        assert_eq!(s(&st["markdown"]), first);
    }
}
