//! The triage report (the run's result, in the seed's shape), one function per section, and
//! attaching it to the linked incident.

use serde_json::{json, Value as Json};

use super::rank::{found_traces, rank_causes, slo_status, Cause};
use super::state::TriageState;
use super::{pct, round2};
use crate::error::Result;
use crate::graphs::builtin::shared::{has_event, one_line, str_of};
use crate::graphs::NodeCx;
use crate::kernel::clock::rfc3339;

/// Rank causes from the collected signals and write the report.
pub(super) fn build_report(state: &TriageState, run_id: &str) -> Json {
    let causes = rank_causes(state);
    let ranked = ranked(&causes);
    let sources = sources(state);
    let minutes = (state.to - state.from).whole_minutes();
    json!({
        "summary": one_line(&summary(state, &ranked, &sources, minutes)),
        "suspected_root_causes": ranked,
        "impact_assessment": impact(state, &sources, minutes),
        "mitigations_now": mitigations(state, &causes),
        "next_checks": next_checks(state, &sources),
        "references": references(state),
        "sources": sources,
        "privacy": state.privacy,
        "window": {"from": rfc3339(state.from), "to": rfc3339(state.to),
                   "clamped": state.clamped, "max_hours": state.max_window_h},
        "service": state.service, "env": state.env, "symptom": state.symptom,
        "incident_id": state.incident_id, "run_id": run_id,
    })
}

/// `suspected_root_causes`: rank, cause, kind, score (at most 1), evidence.
fn ranked(causes: &[Cause]) -> Vec<Json> {
    causes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"rank": i + 1, "cause": c.cause, "kind": c.kind,
                   "score": round2(c.score.min(1.0)), "evidence": c.evidence})
        })
        .collect()
}

/// `sources`: how each source answered (one that no node reached is not configured).
fn sources(state: &TriageState) -> Json {
    let s = &state.sources;
    let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
    json!({
        "metrics": or(&s.metrics, "not_configured"),
        "logs": or(&s.logs, "not_configured"),
        "traces": or(&s.traces, "not_configured"),
        "runbooks": or(&s.runbooks, "ok"),
        "alerts": or(&s.alerts, "not_configured"),
        "health": or(&s.health, "not_configured"),
    })
}

/// `impact_assessment`: the SLO's numbers and the cost estimate, or what is missing.
fn impact(state: &TriageState, sources: &Json, minutes: i64) -> String {
    let slo = &state.slo;
    let estimate = state.cost.as_ref().and_then(|c| c.estimate());
    if slo.is_object() && slo["status"] != "no_data" {
        let mut s = format!("SLO impact: status={}", slo_status(state));
        if let Some(e) = slo["error_rate"].as_f64() {
            s.push_str(&format!(
                ", error_rate={} (burn rate {}×)",
                pct(e),
                slo["burn_rate"]
            ));
        }
        if let Some(l) = slo["latency_p95_ms"].as_f64() {
            s.push_str(&format!(
                ", p95={l} ms (target {} ms)",
                slo["objective"]["latency_p95_ms"]
            ));
        }
        if let Some(c) = estimate {
            // Printed as JSON prints it (`12.0`, `null`), as the report always has.
            s.push_str(&format!(
                "; estimated cost {} {} over {minutes} min",
                Json::from(c.total),
                c.currency
            ));
            if let Some(f) = c.failed_requests.filter(|f| f.is_finite()) {
                s.push_str(&format!(" (~{f} failed requests)"));
            }
        }
        s
    } else if let Some(c) = estimate {
        format!(
            "SLO impact unknown (no SLO data); estimated cost {} {} from unavailable targets",
            Json::from(c.total),
            c.currency
        )
    } else {
        format!(
            "Impact unknown: no SLO metrics for {} in {} (metrics: {})",
            state.service,
            state.env,
            sources["metrics"].as_str().unwrap_or("")
        )
    }
}

/// `mitigations_now`: one per kind of cause that has one, then matching runbook sections.
fn mitigations(state: &TriageState, causes: &[Cause]) -> Vec<String> {
    let svc = &state.service;
    let mut mit: Vec<String> = Vec::new();
    for c in causes {
        let m = match c.kind {
            "deploy" => Some(format!(
                "Roll back or switch off the suspect change ({})",
                c.cause.trim_start_matches("Regression from deploy: ")
            )),
            "health" => Some(format!(
                "Take the failing {svc} targets out of rotation or restart them"
            )),
            "slo_burn" => Some(
                "Shed or rate-limit traffic, or fail over, while the error budget burns"
                    .to_string(),
            ),
            "latency" => Some(format!(
                "Scale out {svc} or reduce load until p95 is back under target"
            )),
            _ => None,
        };
        if let Some(m) = m {
            if !mit.contains(&m) {
                mit.push(m);
            }
        }
    }
    let fixes =
        regex::Regex::new(r"(?i)mitigat|fix|recover|roll ?back|workaround|resol|restart").ok();
    for r in &state.runbooks {
        let heading = str_of(&r.heading_path);
        if fixes
            .as_ref()
            .is_some_and(|re| re.is_match(&heading) || re.is_match(&r.text))
        {
            mit.push(format!(
                "Follow the runbook: {heading} ({}#{})",
                str_of(&r.path),
                str_of(&r.anchor)
            ));
        }
    }
    if mit.is_empty() {
        mit.push("No mitigation is suggested by the available signals yet; see next checks".into());
    }
    mit.truncate(6);
    mit
}

/// `next_checks`: sources to set up or fix, traces to look at, what to compare and watch.
fn next_checks(state: &TriageState, sources: &Json) -> Vec<String> {
    let svc = &state.service;
    let env = &state.env;
    let mut next: Vec<String> = Vec::new();
    for (what, file_hint) in [
        ("metrics", "prometheus"),
        ("logs", "logs"),
        ("traces", "traces"),
    ] {
        let s = sources[what].as_str().unwrap_or("");
        if s == "not_configured" {
            next.push(format!(
                "Configure a {what} source ({file_hint}) for env '{env}' in config/observability_sources.yml"
            ));
        } else if let Some(why) = s.strip_prefix("unavailable: ") {
            next.push(format!(
                "The {what} source did not answer ({why}); check it is up and reachable"
            ));
        }
    }
    let trace_ids = state.logs.trace_ids.len();
    if !state.include_traces && trace_ids > 0 {
        next.push(format!("Run again with include_traces to look up {trace_ids} trace ids found in the error logs"));
    }
    for t in found_traces(state) {
        if t.error_spans.as_u64().unwrap_or(0) > 0 {
            next.push(format!(
                "Inspect trace {} ({} error spans)",
                t.trace_id, t.error_spans
            ));
        }
    }
    if state.health.failing > 0 {
        next.push(format!(
            "Check /healthz and the logs of the failing {svc} targets"
        ));
    }
    if let Some(d) = state.deploys.last() {
        next.push(format!(
            "Compare error templates before and after the deploy at {}",
            d.ts
        ));
    }
    for i in state.related_incidents.iter().take(3) {
        next.push(format!(
            "Related active incident {} ({}): {}",
            str_of(&i.id),
            str_of(&i.severity),
            str_of(&i.title)
        ));
    }
    next.push(format!(
        "After mitigating, watch {svc}'s error rate and p95 for 15 minutes to confirm recovery"
    ));
    next
}

/// `summary`: the symptom, the top suspect, the counts, and the sources that were missing.
fn summary(state: &TriageState, ranked: &[Json], sources: &Json, minutes: i64) -> String {
    let errors = state.logs.matched;
    let alerts = state.alerts.len();
    let mut summary = format!(
        "{} ({}): {}. ",
        state.service,
        state.env,
        one_line(&state.symptom)
    );
    match ranked.first() {
        Some(c) => summary.push_str(&format!(
            "Top suspect: {} (score {}). ",
            str_of(&c["cause"]),
            c["score"]
        )),
        None => summary.push_str("No signal points to a cause yet. "),
    }
    summary.push_str(&format!(
        "{errors} error log lines and {alerts} firing alerts in the {minutes} min window"
    ));
    let slo_status = slo_status(state);
    if !slo_status.is_empty() {
        summary.push_str(&format!("; SLO {slo_status}"));
    }
    summary.push('.');
    let missing: Vec<String> = ["metrics", "logs", "traces"]
        .iter()
        .filter(|k| {
            sources[**k] != "ok" && !sources[**k].as_str().unwrap_or("").starts_with("skipped")
        })
        .map(|k| format!("{k} {}", sources[*k].as_str().unwrap_or("")))
        .collect();
    if !missing.is_empty() {
        summary.push_str(&format!(" Not available: {}.", missing.join("; ")));
    }
    summary
}

/// `references`: what the report rests on, as collected (after the privacy pass).
fn references(state: &TriageState) -> Json {
    let snippets: Vec<Json> = state
        .runbooks
        .iter()
        .map(|r| json!({"path": r.path, "text": r.text, "heading": r.heading_path, "anchor": r.anchor}))
        .collect();
    json!({
        "metrics": {"slo": state.slo, "alerts_count": state.alerts.len(), "alerts": state.alerts,
                    "health": state.health, "cost": state.cost},
        "log_samples": state.logs.samples,
        "log_clusters": state.logs.clusters,
        "runbook_snippets": snippets,
        "traces": {"traces": state.traces},
        "deploys": state.deploys,
        "related_incidents": state.related_incidents,
    })
}

/// Attach the report to the incident and note it on the timeline, once per run (a resumed
/// node finds its own artifact and event and does not add them again).
pub(super) async fn attach(state: &mut TriageState, cx: &NodeCx) -> Result<()> {
    let id = state.incident_id.clone().unwrap_or_default();
    let report = state.report.get_or_insert(Json::Null);
    let name = format!("triage_{}.json", cx.run_id);
    let d = cx
        .tool("oncall_tool", "incident_get", json!({"incident_id": id}))
        .await?;
    let attached = d["artifacts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["name"].as_str() == Some(name.as_str()));
    if !attached {
        let content = serde_json::to_string_pretty(report).unwrap_or_default();
        cx.tool(
            "oncall_tool",
            "incident_attach_artifact",
            json!({"incident_id": id, "name": name, "content": content, "format": "json"}),
        )
        .await?;
    }
    if !has_event(cx, &id, "triage", &cx.run_id).await? {
        let top = report["suspected_root_causes"][0]["cause"].clone();
        cx.tool(
            "oncall_tool",
            "incident_append_event",
            json!({"incident_id": id, "type": "triage",
                   "message": crate::kernel::text::clip(&str_of(&report["summary"]), 2000),
                   "meta": {"run_id": cx.run_id, "artifact": name, "top_cause": top}}),
        )
        .await?;
    }
    report["artifact"] = json!(name);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reports of fixed states as the graph wrote them when its state was loose JSON: the
    /// shape is read by tests, the console and postmortems, so it must not drift.
    #[test]
    fn the_report_keeps_its_shape() {
        for (state, report) in [
            (
                include_str!("testdata/state_rich.json"),
                include_str!("testdata/report_rich.json"),
            ),
            (
                include_str!("testdata/state_bare.json"),
                include_str!("testdata/report_bare.json"),
            ),
        ] {
            let st: TriageState = serde_json::from_str(state).unwrap();
            let want: Json = serde_json::from_str(report).unwrap();
            let got = build_report(&st, "gr_x");
            assert_eq!(got.to_string(), want.to_string());
            // And after a checkpoint's round trip through JSON.
            let back: TriageState =
                serde_json::from_value(serde_json::to_value(&st).unwrap()).unwrap();
            assert_eq!(build_report(&back, "gr_x").to_string(), want.to_string());
        }
    }
}
