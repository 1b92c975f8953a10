//! The collecting nodes of `incident_triage`: the linked incident, alerts, related incidents
//! and deploys, error logs, health and runbooks, traces, the SLO, and the privacy pass over
//! everything quoted. A source that fails is recorded in `sources` and contributes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value as Json};

use super::rank::{template_of, words};
use super::state::{
    Alert, Cluster, Deploy, FoundTrace, Health, Logs, Privacy, RelatedIncident, RunbookSnippet,
    Target, TraceSummary, TriageState,
};
use super::IncidentTriage;
use crate::error::{Error, Result};
use crate::gateway::redact::Redactor;
use crate::graphs::builtin::shared::{one_line, str_of};
use crate::graphs::{is_cancel, NodeCx};
use crate::kernel::clock::{parse_ts, rfc3339};

/// A source's state for the report: `ok`, `not_configured` or `unavailable: …`.
fn source_state(e: &Error) -> String {
    let m = e.to_string();
    if matches!(e, Error::NotFound(_)) && m.contains("source is configured") {
        "not_configured".into()
    } else {
        format!("unavailable: {}", crate::kernel::text::clip(&m, 200))
    }
}

/// A tool call whose failure is reported rather than fatal (a cancel still ends the node).
pub(super) async fn soft(
    cx: &NodeCx,
    tool: &str,
    action: &str,
    params: Json,
) -> Result<Result<Json, Error>> {
    match cx.tool(tool, action, params).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if is_cancel(&e) => Err(e),
        Err(e) => {
            // Reported as data, so not a reason to put the run on the requeue list.
            cx.failure_reported();
            Ok(Err(e))
        }
    }
}

/// The time a run keeps for ranking, writing and attaching its report after its last source
/// call: a fifth of the run's overall time, at most 5 s.
fn report_reserve(overall: Duration) -> Duration {
    (overall / 5).min(Duration::from_secs(5))
}

/// Shortest budget worth a source call; with less left, the source is not asked.
const MIN_SOURCE_BUDGET: Duration = Duration::from_millis(200);

impl IncidentTriage {
    /// Ask observability source `source` (`metrics`, `logs` or `traces`) with
    /// `observability_tool.action`, within the source budget: the configured one, cut to what
    /// the run has left before its report reserve. A failure is reported, not fatal. A source
    /// that timed out earlier in the run is not asked again; one that times out now is
    /// remembered in `state.timed_out`.
    pub(super) async fn ask_source(
        &self,
        state: &mut TriageState,
        cx: &NodeCx,
        source: &str,
        action: &str,
        params: Json,
    ) -> Result<Result<Json, Error>> {
        if let Some(why) = state.timed_out.get(source) {
            return Ok(Err(Error::Timeout(format!("{why}, not asked again"))));
        }
        let left = cx.time_left().saturating_sub(report_reserve(cx.overall()));
        let budget = self.source_budget.min(left);
        if budget < MIN_SOURCE_BUDGET {
            return Ok(Err(Error::Timeout(format!(
                "not asked: the {} the run has left are kept for its report",
                crate::net::secs(cx.time_left().as_millis() as u64)
            ))));
        }
        let out = match cx
            .tool_within("observability_tool", action, params, budget)
            .await
        {
            Ok(v) => Ok(v),
            Err(e) if is_cancel(&e) => return Err(e),
            Err(e) => {
                cx.failure_reported();
                if let Error::Timeout(why) = &e {
                    state.timed_out.insert(source.to_string(), why.clone());
                }
                Err(e)
            }
        };
        Ok(out)
    }

    /// The linked incident must exist (its id is checked before anything is collected).
    pub(super) async fn validate_input(&self, state: &mut TriageState, cx: &NodeCx) -> Result<()> {
        if let Some(id) = state.incident_id.clone() {
            let inc = cx
                .tool("oncall_tool", "incident_get", json!({"incident_id": id}))
                .await?;
            let i = &inc["incident"];
            state.incident = Some(
                json!({"id": i["id"], "title": i["title"], "severity": i["severity"],
                "status": i["status"], "started_at": i["started_at"], "service": i["service"]}),
            );
        }
        Ok(())
    }

    /// Firing alerts for the service, its other active incidents, deploys in and just before
    /// the window.
    pub(super) async fn service_overview(
        &self,
        state: &mut TriageState,
        cx: &NodeCx,
    ) -> Result<()> {
        let svc = state.service.clone();
        let env = state.env.clone();
        match self
            .ask_source(state, cx, "metrics", "alerts", json!({"env": env}))
            .await?
        {
            Ok(v) => {
                state.alerts = firing_alerts(&v, &svc);
                state.sources.alerts = Some("ok".into());
            }
            Err(e) => {
                state.alerts = vec![];
                state.sources.alerts = Some(source_state(&e));
            }
        }
        // Other active incidents of the service (the incident log always answers).
        let page = cx
            .tool(
                "oncall_tool",
                "incident_list",
                json!({"service": svc, "env": env, "status": "open,acknowledged,mitigated", "limit": 20}),
            )
            .await?;
        let own = state.incident_id.clone().unwrap_or_default();
        state.related_incidents = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["id"].as_str() != Some(own.as_str()))
            .map(|i| RelatedIncident {
                id: i["id"].clone(),
                title: i["title"].clone(),
                severity: i["severity"].clone(),
                status: i["status"].clone(),
            })
            .take(10)
            .collect();
        // Deploys recorded on timelines: the linked incident's and the service's others, from
        // two hours before the window to its end.
        let lookback = state.from - time::Duration::hours(2);
        let feed = cx
            .tool(
                "oncall_tool",
                "incident_feed",
                json!({"types": "deploy", "limit": 200}),
            )
            .await?;
        let mut deploys: Vec<Deploy> = Vec::new();
        for item in feed["items"].as_array().into_iter().flatten() {
            let ev = &item["event"];
            let Some(ts) = ev["ts"].as_str().and_then(parse_ts) else {
                continue;
            };
            let same_service = item["incident"]["service"].as_str() == Some(svc.as_str())
                || ev["meta"]["service"].as_str() == Some(svc.as_str());
            if same_service && ts >= lookback && ts <= state.to {
                deploys.push(Deploy {
                    ts: rfc3339(ts),
                    message: crate::kernel::text::clip(&one_line(&str_of(&ev["message"])), 200),
                    incident_id: ev["incident_id"].clone(),
                    version: ev["meta"]["version"].clone(),
                });
            }
        }
        deploys.sort_by(|a, b| a.ts.cmp(&b.ts));
        deploys.dedup_by(|a, b| a.ts == b.ts && a.message == b.message);
        state.deploys = deploys;
        Ok(())
    }

    /// Error lines of the window, clustered by message template.
    pub(super) async fn top_errors_logs(&self, state: &mut TriageState, cx: &NodeCx) -> Result<()> {
        let mut params = json!({"env": state.env, "service": state.service,
            "from": rfc3339(state.from), "to": rfc3339(state.to), "level": "error",
            "limit": state.max_log_lines});
        if let Some(h) = &state.log_query_hint {
            params["contains"] = json!(h);
        }
        match self
            .ask_source(state, cx, "logs", "logs_query", params)
            .await?
        {
            Ok(v) => {
                state.logs = error_logs(&v);
                state.sources.logs = Some("ok".into());
            }
            Err(e) => {
                state.logs = Logs::default();
                state.sources.logs = Some(source_state(&e));
            }
        }
        Ok(())
    }

    /// Prometheus `up` for the service's targets, and runbook sections that match.
    pub(super) async fn health_and_runbooks(
        &self,
        state: &mut TriageState,
        cx: &NodeCx,
    ) -> Result<()> {
        let svc = state.service.clone();
        let q = format!("up{{job=\"{svc}\"}} or up{{service=\"{svc}\"}}");
        let params = json!({"env": state.env, "query": q, "time": rfc3339(state.to)});
        match self
            .ask_source(state, cx, "metrics", "metrics_query", params)
            .await?
        {
            Ok(v) => {
                let targets: Vec<Target> = v["result"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let up = r["value"][1]
                            .as_str()
                            .and_then(|x| x.parse::<f64>().ok())
                            .unwrap_or(0.0);
                        Target {
                            instance: r["metric"]["instance"].clone(),
                            job: r["metric"]["job"].clone(),
                            up: up >= 1.0,
                        }
                    })
                    .collect();
                let failing = targets.iter().filter(|t| !t.up).count() as u64;
                state.health = Health {
                    checked: true,
                    targets,
                    failing,
                };
                state.sources.health = Some("ok".into());
            }
            Err(e) => {
                state.health = Health::default();
                state.sources.health = Some(source_state(&e));
            }
        }
        let (snippets, status) = self.runbooks(state, cx).await?;
        state.runbooks = snippets;
        state.sources.runbooks = Some(status);
        Ok(())
    }

    /// The best three runbook sections for the symptom and the words of the top error
    /// templates, and how the runbook source answered.
    async fn runbooks(
        &self,
        state: &TriageState,
        cx: &NodeCx,
    ) -> Result<(Vec<RunbookSnippet>, String)> {
        let mut q = state.symptom.clone();
        for c in state.logs.clusters.iter().take(2) {
            for w in words(&c.template).into_iter().take(6) {
                q.push(' ');
                q.push_str(&w);
            }
        }
        let q = crate::kernel::text::clip(&q, 400);
        // The service's own runbooks and all runbooks, merged by score: a strong general
        // match (disk full) beats a weak one that merely names the service.
        let mut hits: Vec<Json> = Vec::new();
        let mut status = "ok".to_string();
        for service in [Some(state.service.clone()), None] {
            let mut p = json!({"q": q, "limit": 3});
            if let Some(s) = &service {
                p["service"] = json!(s);
            }
            match soft(cx, "runbook_tool", "search", p).await? {
                Ok(v) => {
                    for h in v["items"].as_array().into_iter().flatten() {
                        let mut h = h.clone();
                        let score = h["score"].as_f64().unwrap_or(0.0);
                        // A section about this service counts a little more.
                        h["rank_score"] = json!(if service.is_some() {
                            score * 1.2
                        } else {
                            score
                        });
                        let same = |x: &Json| x["path"] == h["path"] && x["anchor"] == h["anchor"];
                        if !hits.iter().any(same) {
                            hits.push(h);
                        }
                    }
                }
                Err(e) => {
                    status = source_state(&e);
                    break;
                }
            }
        }
        hits.sort_by(|a, b| {
            b["rank_score"]
                .as_f64()
                .partial_cmp(&a["rank_score"].as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        hits.truncate(3);
        let snippets = hits
            .iter()
            .map(|h| RunbookSnippet {
                path: h["path"].clone(),
                heading: h["heading"].clone(),
                heading_path: h["heading_path"].clone(),
                anchor: h["anchor"].clone(),
                title: h["title"].clone(),
                score: h["score"].clone(),
                text: h["snippet"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| str_of(&p["text"]))
                    .collect(),
            })
            .collect();
        Ok((snippets, status))
    }

    /// Traces by the ids the error logs carry (when asked for).
    pub(super) async fn trace_lookup(&self, state: &mut TriageState, cx: &NodeCx) -> Result<()> {
        if !state.include_traces {
            state.traces = vec![];
            state.sources.traces = Some("skipped: include_traces is false".into());
            return Ok(());
        }
        let ids: Vec<String> = state.logs.trace_ids.iter().take(3).cloned().collect();
        if ids.is_empty() {
            state.traces = vec![];
            state.sources.traces = Some("skipped: no trace ids in the error logs".into());
            return Ok(());
        }
        let mut out = Vec::new();
        let mut status = "ok".to_string();
        for id in ids {
            let params = json!({"env": state.env, "trace_id": id});
            match self
                .ask_source(state, cx, "traces", "traces_lookup", params)
                .await?
            {
                Ok(t) => out.push(TraceSummary::Found(found_trace(id, &t))),
                Err(e)
                    if matches!(e, Error::NotFound(_))
                        && !source_state(&e).starts_with("not_configured") =>
                {
                    out.push(TraceSummary::Missing {
                        trace_id: id,
                        found: false,
                    });
                }
                Err(e) => {
                    status = source_state(&e);
                    break;
                }
            }
        }
        state.traces = out;
        state.sources.traces = Some(status);
        Ok(())
    }

    /// Error budget burn and latency against `slo_policy.yml`, at the window's end.
    pub(super) async fn slo_context(&self, state: &mut TriageState, cx: &NodeCx) -> Result<()> {
        let p = json!({"env": state.env, "service": state.service, "time": rfc3339(state.to)});
        match self
            .ask_source(state, cx, "metrics", "slo_status", p)
            .await?
        {
            Ok(v) => {
                state.slo = v;
                state.sources.metrics = Some("ok".into());
            }
            Err(e) => {
                state.slo = Json::Null;
                state.sources.metrics = Some(source_state(&e));
            }
        }
        Ok(())
    }

    /// Mask secrets and personal data (`data_governance.yml`) in everything quoted from logs,
    /// traces and runbooks before it goes into a report.
    pub(super) fn privacy(&self, state: &mut TriageState) -> Result<()> {
        let r = &self.redactor;
        let n = redact(r, &mut state.logs)?
            + redact(r, &mut state.traces)?
            + redact(r, &mut state.runbooks)?
            + redact(r, &mut state.alerts)?
            + redact(r, &mut state.deploys)?;
        state.privacy = Some(Privacy {
            redacted_values: n as u64,
            policy: "data_governance.yml".into(),
        });
        Ok(())
    }
}

/// The firing alerts of `svc` in an `alerts` answer (matched by service, job or app label).
fn firing_alerts(v: &Json, svc: &str) -> Vec<Alert> {
    v["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            let l = &a["labels"];
            ["service", "job", "app"]
                .iter()
                .any(|k| l[*k].as_str() == Some(svc))
        })
        .filter(|a| a["state"] == "firing")
        .map(|a| Alert {
            name: a["labels"]["alertname"].clone(),
            severity: a["labels"]["severity"].clone(),
            active_at: a["activeAt"].clone(),
            summary: a["annotations"]["summary"]
                .as_str()
                .or(a["annotations"]["description"].as_str())
                .map(str::to_string),
        })
        .take(50)
        .collect()
}

/// A `logs_query` answer clustered by message template, with samples and trace ids.
fn error_logs(v: &Json) -> Logs {
    let lines: Vec<Json> = v["lines"].as_array().cloned().unwrap_or_default();
    let mut clusters: BTreeMap<String, (u64, String, String, String)> = BTreeMap::new();
    let mut trace_ids: Vec<String> = Vec::new();
    for l in &lines {
        let msg = str_of(&l["message"]);
        let ts = str_of(&l["ts"]);
        let e =
            clusters
                .entry(template_of(&msg))
                .or_insert((0, ts.clone(), ts.clone(), msg.clone()));
        e.0 += 1;
        e.2 = ts;
        if let Some(id) = l["trace_id"].as_str() {
            if !trace_ids.iter().any(|x| x == id) {
                trace_ids.push(id.to_string());
            }
        }
    }
    let mut cl: Vec<Cluster> = clusters
        .into_iter()
        .map(|(template, (count, first_ts, last_ts, sample))| Cluster {
            template,
            count,
            first_ts,
            last_ts,
            sample: crate::kernel::text::clip(&sample, 300),
        })
        .collect();
    cl.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_ts.cmp(&b.first_ts)));
    cl.truncate(10);
    // Newest trace ids first: the freshest failures.
    trace_ids.reverse();
    trace_ids.truncate(5);
    let samples: Vec<String> = lines
        .iter()
        .rev()
        .take(8)
        .map(|l| {
            crate::kernel::text::clip(
                &format!(
                    "{} {} {}",
                    str_of(&l["ts"]),
                    str_of(&l["level"]),
                    str_of(&l["message"])
                ),
                300,
            )
        })
        .collect();
    let first_error_ts = v
        .get("first_ts")
        .filter(|t| t.is_string())
        .or_else(|| lines.first().map(|l| &l["ts"]))
        .and_then(|t| t.as_str())
        .map(str::to_string);
    Logs {
        matched: v["matched"].as_u64().unwrap_or(0),
        analysed: lines.len() as u64,
        clusters: cl,
        samples,
        trace_ids,
        first_error_ts,
    }
}

/// What a `traces_lookup` answer says about trace `id`.
fn found_trace(id: String, t: &Json) -> FoundTrace {
    let items = t["items"].as_array().cloned().unwrap_or_default();
    let mut error_services: Vec<String> = items
        .iter()
        .filter(|s| s["error"] == true)
        .filter_map(|s| s["service"].as_str().map(str::to_string))
        .collect();
    error_services.sort();
    error_services.dedup();
    let slowest = items
        .iter()
        .max_by_key(|s| s["duration_us"].as_i64().unwrap_or(0))
        .map(|s| {
            json!({"service": s["service"], "operation": s["operation"],
                   "duration_ms": s["duration_us"].as_f64().map(|d| d / 1000.0)})
        })
        .unwrap_or(Json::Null);
    FoundTrace {
        trace_id: id,
        spans: t["spans"].clone(),
        services: t["services"].clone(),
        duration_ms: t["duration_ms"].clone(),
        error_spans: t["error_spans"].clone(),
        error_services,
        slowest,
    }
}

/// Mask `v` in its JSON form (the redactor works on JSON) and count what it masked.
fn redact<T: Serialize + DeserializeOwned>(r: &Redactor, v: &mut T) -> Result<usize> {
    let internal = |e: serde_json::Error| Error::Internal(format!("privacy: {e}"));
    let mut j = serde_json::to_value(&*v).map_err(internal)?;
    let n = r.json(&mut j);
    *v = T::deserialize(&j).map_err(internal)?;
    Ok(n)
}
