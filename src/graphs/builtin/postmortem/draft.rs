//! The postmortem draft, markdown and JSON, written from the incident record, its timeline
//! and the triage report. Pure: the same state and time give the same text, so a resumed
//! attach finds its own files by their sha256.

use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use super::state::{ActionItem, PostmortemState};
use crate::graphs::builtin::shared::{one_line, str_of as s};
use crate::kernel::clock::{parse_ts, rfc3339};

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

/// Minutes from impact to acknowledged, mitigated and resolved.
#[derive(Debug, Clone, Copy)]
struct Times {
    mtta: Option<i64>,
    mttm: Option<i64>,
    mttr: Option<i64>,
}

/// The triage report's runbook snippets (none without a report).
fn runbook_snippets(t: &Json) -> &[Json] {
    t["references"]["runbook_snippets"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The triage report's ranked causes.
fn root_causes(t: &Json) -> &[Json] {
    t["suspected_root_causes"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Write the markdown, the action items and the JSON postmortem into `state`.
pub(super) fn draft(state: &mut PostmortemState, now: OffsetDateTime) {
    // The incident log gives timelines in time order; a run saved by an earlier build holds
    // them in insertion order, so the draft puts them in time order itself (a stable sort:
    // the same state gives the same text).
    state
        .events
        .sort_by_cached_key(|e| (e["ts"].as_str().and_then(parse_ts), e["seq"].as_u64()));
    let inc = &state.incident;
    let times = Times {
        mtta: minutes(&inc["started_at"], &inc["acknowledged_at"]),
        mttm: minutes(&inc["started_at"], &inc["mitigated_at"]),
        mttr: minutes(&inc["started_at"], &inc["resolved_at"]),
    };
    let items = action_items(state, now);
    let (well, badly) = assessment(state, times);
    let md = markdown(state, now, times, &items, &well, &badly);
    let inc = &state.incident;
    let t = &state.triage;
    let postmortem = json!({
        "incident_id": s(&inc["id"]), "title": inc["title"], "service": inc["service"], "env": inc["env"],
        "severity": inc["severity"], "status": inc["status"], "owner": inc["owner"],
        "started_at": inc["started_at"], "acknowledged_at": inc["acknowledged_at"],
        "mitigated_at": inc["mitigated_at"], "resolved_at": inc["resolved_at"],
        "metrics_minutes": {"mtta": times.mtta, "mttm": times.mttm, "mttr": times.mttr},
        "summary": t["summary"], "impact": t["impact_assessment"],
        "timeline": state.events.iter().take(300).map(|e| json!({"ts": e["ts"], "type": e["type"], "message": e["message"], "actor": e["actor"]})).collect::<Vec<_>>(),
        "root_causes": root_causes(t), "went_well": well, "went_badly": badly,
        "action_items": items, "triage_run_id": state.triage_run_id,
        "drafted_at": rfc3339(now), "run_id": state.run_id,
    });
    state.markdown = md;
    state.action_items = items;
    state.postmortem = postmortem;
}

/// Action items from the triage's causes and gaps, each with an owner, a due date and a
/// priority.
fn action_items(state: &PostmortemState, now: OffsetDateTime) -> Vec<ActionItem> {
    let inc = &state.incident;
    let svc = s(&inc["service"]);
    let env = s(&inc["env"]);
    let t = &state.triage;
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
        .map(|title| ActionItem {
            title,
            owner: inc["owner"].clone(),
            due: due.to_string(),
            priority: priority.to_string(),
        })
        .collect()
}

/// What went well and what went badly: response times, runbook coverage, sources, the
/// timeline's mitigations and concurrent incidents.
fn assessment(state: &PostmortemState, times: Times) -> (Vec<String>, Vec<String>) {
    let t = &state.triage;
    let mut well: Vec<String> = Vec::new();
    let mut badly: Vec<String> = Vec::new();
    match times.mtta {
        Some(m) if m <= 15 => well.push(format!("Acknowledged {} after impact began", human(m))),
        Some(m) => badly.push(format!(
            "Acknowledged only {} after impact began (aim: 15 min)",
            human(m)
        )),
        None => badly.push("The incident was never marked acknowledged".into()),
    }
    match times.mttm {
        Some(m) if m <= 60 => well.push(format!("Mitigated within {}", human(m))),
        Some(m) => badly.push(format!("Mitigation took {}", human(m))),
        None => {}
    }
    if let Some(m) = times.mttr {
        well.push(format!("Resolved {} after impact began", human(m)));
    }
    if let Some(r) = runbook_snippets(t).first() {
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
    let mitigations = state
        .events
        .iter()
        .filter(|e| e["type"] == "mitigation")
        .count();
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
    (well, badly)
}

/// The markdown draft, section by section.
fn markdown(
    state: &PostmortemState,
    now: OffsetDateTime,
    times: Times,
    items: &[ActionItem],
    well: &[String],
    badly: &[String],
) -> String {
    [
        header(state, now, times),
        summary_and_impact(state),
        timeline(&state.events),
        causes(root_causes(&state.triage)),
        bullets("What went well", well),
        bullets("What went badly", badly),
        action_table(items),
        references(state),
    ]
    .concat()
}

/// The title, who drafted it, and the incident's facts as a table.
fn header(state: &PostmortemState, now: OffsetDateTime, times: Times) -> String {
    let inc = &state.incident;
    let or_dash = |k: &str| inc[k].as_str().unwrap_or("—").to_string();
    let mut md = format!("# Postmortem: {}\n\n", cell(&s(&inc["title"])));
    md.push_str(&format!(
        "*Draft by sofiia's postmortem_draft (run `{}`, {}); review and edit before sharing.*\n\n",
        state.run_id,
        rfc3339(now)
    ));
    md.push_str("| | |\n|---|---|\n");
    for (k, v) in [
        ("Incident", format!("`{}`", s(&inc["id"]))),
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
        ("Acknowledged", or_dash("acknowledged_at")),
        ("Mitigated", or_dash("mitigated_at")),
        ("Resolved", or_dash("resolved_at")),
        (
            "MTTA / MTTM / MTTR",
            [times.mtta, times.mttm, times.mttr]
                .iter()
                .map(|m| m.map(human).unwrap_or("—".into()))
                .collect::<Vec<_>>()
                .join(" / "),
        ),
    ] {
        md.push_str(&format!("| {k} | {} |\n", cell(&v)));
    }
    md
}

/// `Summary` (the incident's own, quoted, and the triage's) and `Impact`.
fn summary_and_impact(state: &PostmortemState) -> String {
    let t = &state.triage;
    let mut md = String::from("\n## Summary\n\n");
    let summary = s(&state.incident["summary"]);
    if !summary.is_empty() {
        md.push_str(&format!("{}\n\n", quote(&summary)));
    }
    match t["summary"].as_str() {
        Some(ts) => md.push_str(&format!("Triage: {}\n", cell(ts))),
        None => md.push_str(&format!(
            "Triage: not available ({}).\n",
            state.triage_error.as_deref().unwrap_or("no report")
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
    md
}

/// `Timeline`: the first 300 events, one line each.
fn timeline(events: &[Json]) -> String {
    let mut md = String::from("\n## Timeline (UTC)\n\n");
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
    md
}

/// `Root cause (suspected)`: the triage's ranked causes with their evidence.
fn causes(causes: &[Json]) -> String {
    let mut md = String::from("\n## Root cause (suspected)\n\n");
    if causes.is_empty() {
        md.push_str("No cause was identified from the available signals. Record the confirmed root cause in review.\n");
    }
    for c in causes {
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
    md
}

/// A section that is a list, with a placeholder when it is empty.
fn bullets(title: &str, lines: &[String]) -> String {
    let mut md = format!("\n## {title}\n\n");
    if lines.is_empty() {
        md.push_str("- (to be filled in review)\n");
    }
    for l in lines {
        md.push_str(&format!("- {}\n", cell(l)));
    }
    md
}

/// `Action items` as a table.
fn action_table(items: &[ActionItem]) -> String {
    let mut md = String::from(
        "\n## Action items\n\n| Action | Owner | Due | Priority |\n|---|---|---|---|\n",
    );
    for i in items {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&i.title),
            cell(i.owner.as_str().unwrap_or("unassigned")),
            i.due,
            i.priority
        ));
    }
    md
}

/// `References`: the triage run and the runbook sections it found.
fn references(state: &PostmortemState) -> String {
    let mut md = String::from("\n## References\n\n");
    if let Some(r) = state.triage_run_id.as_str() {
        md.push_str(&format!("- Triage run `{r}`\n"));
    }
    for r in runbook_snippets(&state.triage) {
        md.push_str(&format!(
            "- Runbook {} ({})\n",
            cell(&s(&r["heading"])),
            s(&r["path"])
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draft_covers_every_section_and_items_have_owner_and_due() {
        let mut st: PostmortemState = serde_json::from_value(json!({
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
        }))
        .unwrap();
        let now = parse_ts("2026-03-02T00:00:00Z").unwrap();
        draft(&mut st, now);
        let md = st.markdown.clone();
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
        let items = &st.action_items;
        assert!(items.iter().any(|i| i.title.contains("release check")));
        assert!(items
            .iter()
            .any(|i| i.title.contains("Configure a logs source")));
        assert!(items
            .iter()
            .all(|i| i.owner == "ana" && i.due == "2026-03-16" && i.priority == "P1"));
        // Pure: the same state drafts the same text (so a resumed attach finds its own file).
        let first = md.clone();
        draft(&mut st, now);
        assert_eq!(st.markdown, first);
    }

    /// A timeline saved in insertion order (a run of an earlier build) is drafted in time
    /// order, events of the same time in insertion order.
    #[test]
    fn the_draft_timeline_is_in_time_order() {
        let mut st: PostmortemState = serde_json::from_value(json!({
            "incident_id": "inc_20260301_1000_aaaaaaaaaaaa",
            "incident": {"id": "inc_20260301_1000_aaaaaaaaaaaa", "title": "t", "service": "router",
                "env": "prod", "severity": "P2", "status": "open", "started_at": "2026-03-01T10:00:00Z"},
            "events": [
                {"seq": 1, "ts": "2026-03-01T12:59:40Z", "type": "note", "message": "second"},
                {"seq": 2, "ts": "2026-03-01T12:59:50.5Z", "type": "note", "message": "fourth"},
                {"seq": 3, "ts": "2026-03-01T10:00:00Z", "type": "deploy", "message": "first"},
                {"seq": 4, "ts": "2026-03-01T12:59:40.000Z", "type": "note", "message": "third"}],
        }))
        .unwrap();
        draft(&mut st, parse_ts("2026-03-02T00:00:00Z").unwrap());
        let order: Vec<&str> = st.postmortem["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(order, ["first", "second", "third", "fourth"]);
        let md = &st.markdown;
        let at = |m: &str| {
            md.find(&format!("` {m}"))
                .unwrap_or_else(|| panic!("{m}: {md}"))
        };
        assert!(
            at("first") < at("second") && at("second") < at("third") && at("third") < at("fourth")
        );
    }
}
