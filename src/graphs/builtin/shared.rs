//! Helpers the built-in graphs share: text from sources made fit for one line, and an
//! incident's timeline read through `oncall_tool` (to find what a run already wrote there).

use serde_json::{json, Value as Json};

use crate::error::Result;
use crate::graphs::NodeCx;

/// Text from sources (logs, timelines) on one line: control characters become spaces, so it
/// can go into summaries, event messages and follow-up titles.
pub(in crate::graphs) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JSON string's text (empty for anything else).
pub(in crate::graphs) fn str_of(v: &Json) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// An incident's timeline, oldest first, at most `max` events, paged through `oncall_tool`.
pub(in crate::graphs) async fn timeline(
    cx: &NodeCx,
    incident: &str,
    max: usize,
) -> Result<Vec<Json>> {
    let mut out: Vec<Json> = Vec::new();
    let mut after = 0u64;
    while out.len() < max {
        let page = cx
            .tool(
                "oncall_tool",
                "incident_events",
                json!({"incident_id": incident, "after": after, "limit": 500}),
            )
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let full = items.len() == 500;
        after = items
            .last()
            .and_then(|e| e["seq"].as_u64())
            .unwrap_or(after);
        out.extend(items);
        if !full {
            break;
        }
    }
    out.truncate(max);
    Ok(out)
}

/// Events of `kind` that run `run_id` wrote on the incident's timeline.
pub(in crate::graphs) async fn events_of_run(
    cx: &NodeCx,
    incident: &str,
    kind: &str,
    run_id: &str,
) -> Result<Vec<Json>> {
    Ok(timeline(cx, incident, 100_000)
        .await?
        .into_iter()
        .filter(|e| e["type"] == kind && e["meta"]["run_id"].as_str() == Some(run_id))
        .collect())
}

/// Whether the incident's timeline has an event of `kind` written by run `run_id`.
pub(in crate::graphs) async fn has_event(
    cx: &NodeCx,
    incident: &str,
    kind: &str,
    run_id: &str,
) -> Result<bool> {
    Ok(!events_of_run(cx, incident, kind, run_id).await?.is_empty())
}
