//! `incident_triage` (SPEC §8): collects what the observability sources, the incident log and
//! the runbooks say about a service in a time window, and ranks suspected root causes with
//! their evidence.
//!
//! `validate_input → service_overview → top_errors_logs → health_and_runbooks → trace_lookup →
//! slo_context → privacy → cost → build_triage_report`. Every read is a tool call through the
//! gateway. A source that is not configured or does not answer is reported as such in
//! `sources`, and contributes nothing: no number in the report is made up. With an
//! `incident_id`, the report is attached to the incident (`triage_<run_id>.json`) and a
//! `triage` event is appended to its timeline.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use super::{is_cancel, next_in_order, reject_unknown, Graph, Node, NodeCx, NodeFuture};
use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::gateway::redact::Redactor;
use crate::kernel::clock::{parse_ts, rfc3339, Clock};

const NODES: &[Node] = &[
    Node {
        name: "validate_input",
        safe_to_repeat: true,
    },
    Node {
        name: "service_overview",
        safe_to_repeat: true,
    },
    Node {
        name: "top_errors_logs",
        safe_to_repeat: true,
    },
    Node {
        name: "health_and_runbooks",
        safe_to_repeat: true,
    },
    Node {
        name: "trace_lookup",
        safe_to_repeat: true,
    },
    Node {
        name: "slo_context",
        safe_to_repeat: true,
    },
    Node {
        name: "privacy",
        safe_to_repeat: true,
    },
    Node {
        name: "cost",
        safe_to_repeat: true,
    },
    // Attaching is idempotent (a second attach of the same name is found and not repeated).
    Node {
        name: "build_triage_report",
        safe_to_repeat: true,
    },
];

/// `cost_weights.yml`: what a failed request and a minute of unavailability cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostWeights {
    pub currency: String,
    pub defaults: CostRates,
    #[serde(default)]
    pub services: BTreeMap<String, CostOverride>,
    pub queries: CostQueries,
}

/// Rates of one service.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostRates {
    pub cost_per_failed_request: f64,
    pub cost_per_minute_unavailable: f64,
}

/// Per-service changes to the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostOverride {
    pub cost_per_failed_request: Option<f64>,
    pub cost_per_minute_unavailable: Option<f64>,
}

/// PromQL used to estimate volume (`{service}` is replaced).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostQueries {
    pub request_rate: String,
}

/// The shipped `cost_weights.yml`.
pub const DEFAULT_COST_WEIGHTS: &str = include_str!("../../config/cost_weights.yml");

impl CostWeights {
    /// `CONFIG_DIR/cost_weights.yml`, or the built-in defaults.
    pub fn load(config_dir: Option<&std::path::Path>) -> std::result::Result<Self, ConfigError> {
        let w: CostWeights =
            crate::config::policy::load(config_dir, "cost_weights.yml", DEFAULT_COST_WEIGHTS)?;
        let bad = |x: f64| !x.is_finite() || x < 0.0;
        if bad(w.defaults.cost_per_failed_request) || bad(w.defaults.cost_per_minute_unavailable) {
            return Err(ConfigError(
                "cost_weights.yml: defaults: costs must be numbers >= 0".into(),
            ));
        }
        for (name, o) in &w.services {
            if o.cost_per_failed_request.is_some_and(bad)
                || o.cost_per_minute_unavailable.is_some_and(bad)
            {
                return Err(ConfigError(format!(
                    "cost_weights.yml: services.{name}: costs must be numbers >= 0"
                )));
            }
        }
        if !w.queries.request_rate.contains("{service}") {
            return Err(ConfigError(
                "cost_weights.yml: queries.request_rate: must contain {service}".into(),
            ));
        }
        Ok(w)
    }

    fn for_service(&self, s: &str) -> CostRates {
        let mut r = self.defaults;
        if let Some(o) = self.services.get(s) {
            if let Some(x) = o.cost_per_failed_request {
                r.cost_per_failed_request = x;
            }
            if let Some(x) = o.cost_per_minute_unavailable {
                r.cost_per_minute_unavailable = x;
            }
        }
        r
    }
}

/// The graph.
pub struct IncidentTriage {
    clock: Arc<dyn Clock>,
    max_window_h: u64,
    redactor: Redactor,
    cost: CostWeights,
}

impl IncidentTriage {
    pub fn new(
        clock: Arc<dyn Clock>,
        max_window_h: u64,
        redactor: Redactor,
        cost: CostWeights,
    ) -> Self {
        IncidentTriage {
            clock,
            max_window_h,
            redactor,
            cost,
        }
    }
}

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
async fn soft(cx: &NodeCx, tool: &str, action: &str, params: Json) -> Result<Result<Json, Error>> {
    match cx.tool(tool, action, params).await {
        Ok(v) => Ok(Ok(v)),
        Err(e) if is_cancel(&e) => Err(e),
        Err(e) => {
            // Reported as data, so not a reason to put the run on the requeue list.
            cx.exhausted
                .store(false, std::sync::atomic::Ordering::Relaxed);
            Ok(Err(e))
        }
    }
}

/// A log message reduced to its template: ids, numbers, addresses and quoted values become
/// placeholders, so the same error with different values falls into one cluster.
pub fn template_of(msg: &str) -> String {
    static RES: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> = std::sync::OnceLock::new();
    let res =
        RES.get_or_init(|| {
            [
            (r#""[^"]*""#, "\"<s>\""),
            (r"'[^']*'", "'<s>'"),
            (r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b", "<email>"),
            (r"https?://\S+", "<url>"),
            (
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                "<uuid>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
            (r"\b\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?\b", "<ts>"),
            (r"\b(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b", "<hex>"),
            (r"\b(?:0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\d[0-9a-fA-F]*\b", "<hex>"),
            (r"\b\d+(?:\.\d+)?(?:ms|s|m|h|b|kb|mb|gb|%)?\b", "<n>"),
        ]
        .into_iter()
        .filter_map(|(p, r)| regex::Regex::new(p).ok().map(|re| (re, r)))
        .collect()
        });
    let mut t: String = one_line(msg).chars().take(400).collect();
    for (re, rep) in res {
        t = re.replace_all(&t, *rep).into_owned();
    }
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    // "<hex>" only for runs of hex with digits and letters; plain words stay words.
    t
}

/// Words of a text worth matching (lowercase, 4+ letters, no placeholders).
fn words(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_alphabetic()))
        .map(|w| w.to_lowercase())
        .filter(|w| {
            !matches!(
                w.as_str(),
                "error" | "failed" | "with" | "from" | "that" | "this"
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Text from sources (logs, timelines) on one line: control characters become spaces, so it
/// can go into summaries, event messages and follow-up titles.
pub(super) fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// A JSON string's text (empty for anything else).
pub(super) fn str_of(v: &Json) -> String {
    v.as_str().unwrap_or("").to_string()
}

impl Graph for IncidentTriage {
    fn name(&self) -> &'static str {
        "incident_triage"
    }
    fn description(&self) -> &'static str {
        "Collect metrics, error logs, health, runbooks, traces, SLO, privacy and cost context for a service and rank suspected root causes"
    }
    fn nodes(&self) -> &'static [Node] {
        NODES
    }
    fn input_schema(&self) -> Json {
        json!({
            "type": "object",
            "required": ["service", "symptom"],
            "additionalProperties": false,
            "properties": {
                "service": {"type": "string", "description": "Service name", "maxLength": 64},
                "symptom": {"type": "string", "description": "Brief description of what is wrong", "maxLength": 500},
                "env": {"type": "string", "enum": ["dev", "staging", "prod"], "default": "prod"},
                "time_range": {"type": "object", "description": "Analysis window (default: the last hour; at most INCIDENT_MAX_TIME_WINDOW_H)",
                    "additionalProperties": false,
                    "properties": {
                        "from": {"type": "string", "format": "date-time"},
                        "to": {"type": "string", "format": "date-time"}}},
                "include_traces": {"type": "boolean", "default": false, "description": "Look up traces by the ids found in error logs"},
                "max_log_lines": {"type": "integer", "minimum": 1, "maximum": 200, "default": 120},
                "log_query_hint": {"type": "string", "description": "Only log lines containing this text", "maxLength": 200},
                "incident_id": {"type": "string", "description": "Attach the report to this incident"},
                "timeouts": {"type": "object", "properties": {"overall_sec": {"type": "number", "minimum": 1, "default": 120}}}
            }
        })
    }
    fn default_timeout_s(&self) -> u64 {
        120
    }
    fn init(&self, input: &Json) -> Result<Json> {
        let known = [
            "service",
            "symptom",
            "env",
            "time_range",
            "include_traces",
            "max_log_lines",
            "log_query_hint",
            "incident_id",
            "timeouts",
        ];
        if let Some(m) = input.as_object() {
            reject_unknown(m, "input", &known)?;
        }
        let text = |k: &str, max: usize, required: bool| -> Result<Option<String>> {
            match input.get(k) {
                None | Some(Json::Null) if required => {
                    Err(Error::invalid(&format!("input.{k}"), "is required"))
                }
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) if s.trim().is_empty() && required => {
                    Err(Error::invalid(&format!("input.{k}"), "must not be empty"))
                }
                Some(Json::String(s)) if s.chars().count() > max => Err(Error::invalid(
                    &format!("input.{k}"),
                    format!("at most {max} characters"),
                )),
                Some(Json::String(s)) if s.chars().any(|c| c.is_control()) => Err(Error::invalid(
                    &format!("input.{k}"),
                    "must be one line of text",
                )),
                Some(Json::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
                Some(_) => Err(Error::invalid(&format!("input.{k}"), "must be a string")),
            }
        };
        let service = text("service", 64, true)?.unwrap_or_default();
        crate::kernel::text::check_token("input.service", &service, 64)?;
        let symptom = text("symptom", 500, true)?.unwrap_or_default();
        let env = match text("env", 20, false)? {
            None => "prod".to_string(),
            Some(e) => crate::config::Env::parse(&e)
                .map(|e| e.as_str().to_string())
                .ok_or_else(|| Error::invalid("input.env", "dev, staging or prod"))?,
        };
        let hint = text("log_query_hint", 200, false)?;
        let incident_id = text("incident_id", 64, false)?;
        if let Some(id) = &incident_id {
            crate::incidents::model::validate_incident_id(id)
                .map_err(|_| Error::invalid("input.incident_id", "is not an incident id"))?;
        }
        let include_traces = match input.get("include_traces") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::invalid(
                    "input.include_traces",
                    "must be true or false",
                ))
            }
        };
        let max_log_lines = match input.get("max_log_lines") {
            None | Some(Json::Null) => 120,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=200).contains(n))
                .ok_or_else(|| Error::invalid("input.max_log_lines", "a whole number 1-200"))?,
        };
        let now = self.clock.now();
        let tr = input.get("time_range").cloned().unwrap_or(Json::Null);
        if !(tr.is_null() || tr.is_object()) {
            return Err(Error::invalid(
                "input.time_range",
                "must be an object {from, to}",
            ));
        }
        if let Some(m) = tr.as_object() {
            reject_unknown(m, "input.time_range", &["from", "to"])?;
        }
        let when = |k: &str| -> Result<Option<OffsetDateTime>> {
            match tr.get(k) {
                None | Some(Json::Null) => Ok(None),
                Some(Json::String(s)) => parse_ts(s).map(Some).ok_or_else(|| {
                    Error::invalid(
                        &format!("input.time_range.{k}"),
                        "is not an RFC 3339 time (e.g. 2026-02-23T09:00:00Z)",
                    )
                }),
                Some(_) => Err(Error::invalid(
                    &format!("input.time_range.{k}"),
                    "must be an RFC 3339 time string",
                )),
            }
        };
        let to = when("to")?.unwrap_or(now);
        if to > now + time::Duration::minutes(5) {
            return Err(Error::invalid(
                "input.time_range.to",
                "is in the future; nothing can be observed there yet",
            ));
        }
        let from = when("from")?.unwrap_or(to - time::Duration::hours(1));
        if from >= to {
            return Err(Error::invalid(
                "input.time_range.from",
                "must be before time_range.to",
            ));
        }
        let max = time::Duration::hours(self.max_window_h as i64);
        let (from, clamped) = if to - from > max {
            (to - max, true)
        } else {
            (from, false)
        };
        Ok(json!({
            "service": service, "symptom": symptom, "env": env,
            "from": rfc3339(from), "to": rfc3339(to), "clamped": clamped,
            "max_window_h": self.max_window_h,
            "include_traces": include_traces, "max_log_lines": max_log_lines,
            "log_query_hint": hint, "incident_id": incident_id,
            "sources": {},
        }))
    }

    fn step<'a>(&'a self, node: &'a str, state: &'a mut Json, cx: &'a NodeCx) -> NodeFuture<'a> {
        Box::pin(async move {
            match node {
                "validate_input" => self.validate_input(state, cx).await?,
                "service_overview" => self.service_overview(state, cx).await?,
                "top_errors_logs" => self.top_errors_logs(state, cx).await?,
                "health_and_runbooks" => self.health_and_runbooks(state, cx).await?,
                "trace_lookup" => self.trace_lookup(state, cx).await?,
                "slo_context" => self.slo_context(state, cx).await?,
                "privacy" => self.privacy(state),
                "cost" => self.cost(state, cx).await?,
                "build_triage_report" => {
                    state["report"] = build_report(state, &cx.run_id);
                    if state["incident_id"].is_string() {
                        attach(state, cx).await?;
                    }
                }
                other => return Err(Error::Internal(format!("no node {other}"))),
            }
            Ok(next_in_order(NODES, node))
        })
    }

    fn result(&self, state: &Json) -> Json {
        state["report"].clone()
    }
}

impl IncidentTriage {
    /// The linked incident must exist (its id is checked before anything is collected).
    async fn validate_input(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        if let Some(id) = state["incident_id"].as_str().map(str::to_string) {
            let inc = cx
                .tool("oncall_tool", "incident_get", json!({"incident_id": id}))
                .await?;
            let i = &inc["incident"];
            state["incident"] = json!({"id": i["id"], "title": i["title"], "severity": i["severity"],
                "status": i["status"], "started_at": i["started_at"], "service": i["service"]});
        }
        Ok(())
    }

    /// Firing alerts for the service, its other active incidents, deploys in and just before
    /// the window.
    async fn service_overview(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        let svc = str_of(&state["service"]);
        let env = str_of(&state["env"]);
        let from =
            parse_ts(state["from"].as_str().unwrap_or("")).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let to = parse_ts(state["to"].as_str().unwrap_or("")).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        match soft(cx, "observability_tool", "alerts", json!({"env": env})).await? {
            Ok(v) => {
                let alerts: Vec<Json> = v["alerts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|a| {
                        let l = &a["labels"];
                        ["service", "job", "app"]
                            .iter()
                            .any(|k| l[*k].as_str() == Some(svc.as_str()))
                    })
                    .filter(|a| a["state"] == "firing")
                    .map(|a| {
                        json!({"name": a["labels"]["alertname"], "severity": a["labels"]["severity"],
                               "active_at": a["activeAt"], "summary": a["annotations"]["summary"]
                                   .as_str().or(a["annotations"]["description"].as_str())})
                    })
                    .take(50)
                    .collect();
                state["alerts"] = json!(alerts);
                state["sources"]["alerts"] = json!("ok");
            }
            Err(e) => {
                state["alerts"] = json!([]);
                state["sources"]["alerts"] = json!(source_state(&e));
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
        let own = state["incident_id"].as_str().unwrap_or("").to_string();
        state["related_incidents"] = json!(page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["id"].as_str() != Some(own.as_str()))
            .map(|i| json!({"id": i["id"], "title": i["title"], "severity": i["severity"], "status": i["status"]}))
            .take(10)
            .collect::<Vec<_>>());
        // Deploys recorded on timelines: the linked incident's and the service's others, from
        // two hours before the window to its end.
        let lookback = from - time::Duration::hours(2);
        let mut deploys: Vec<Json> = Vec::new();
        let feed = cx
            .tool(
                "oncall_tool",
                "incident_feed",
                json!({"types": "deploy", "limit": 200}),
            )
            .await?;
        for item in feed["items"].as_array().into_iter().flatten() {
            let ev = &item["event"];
            let Some(ts) = ev["ts"].as_str().and_then(parse_ts) else {
                continue;
            };
            let same_service = item["incident"]["service"].as_str() == Some(svc.as_str())
                || ev["meta"]["service"].as_str() == Some(svc.as_str());
            if same_service && ts >= lookback && ts <= to {
                deploys.push(json!({"ts": rfc3339(ts), "message": crate::kernel::text::clip(&one_line(&str_of(&ev["message"])), 200), "incident_id": ev["incident_id"],
                                    "version": ev["meta"]["version"]}));
            }
        }
        deploys.sort_by(|a, b| str_of(&a["ts"]).cmp(&str_of(&b["ts"])));
        deploys.dedup_by(|a, b| a["ts"] == b["ts"] && a["message"] == b["message"]);
        state["deploys"] = json!(deploys);
        Ok(())
    }

    /// Error lines of the window, clustered by message template.
    async fn top_errors_logs(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        let mut params = json!({"env": state["env"], "service": state["service"], "from": state["from"],
            "to": state["to"], "level": "error", "limit": state["max_log_lines"]});
        if let Some(h) = state["log_query_hint"].as_str() {
            params["contains"] = json!(h);
        }
        match soft(cx, "observability_tool", "logs_query", params).await? {
            Ok(v) => {
                let lines: Vec<Json> = v["lines"].as_array().cloned().unwrap_or_default();
                let mut clusters: BTreeMap<String, (u64, String, String, String)> = BTreeMap::new();
                let mut trace_ids: Vec<String> = Vec::new();
                for l in &lines {
                    let msg = str_of(&l["message"]);
                    let ts = str_of(&l["ts"]);
                    let t = template_of(&msg);
                    let e = clusters
                        .entry(t)
                        .or_insert((0, ts.clone(), ts.clone(), msg.clone()));
                    e.0 += 1;
                    e.2 = ts;
                    if let Some(id) = l["trace_id"].as_str() {
                        if !trace_ids.iter().any(|x| x == id) {
                            trace_ids.push(id.to_string());
                        }
                    }
                }
                let mut cl: Vec<Json> = clusters
                    .into_iter()
                    .map(|(t, (n, first, last, sample))| {
                        json!({"template": t, "count": n, "first_ts": first, "last_ts": last,
                               "sample": crate::kernel::text::clip(&sample, 300)})
                    })
                    .collect();
                cl.sort_by(|a, b| {
                    b["count"]
                        .as_u64()
                        .cmp(&a["count"].as_u64())
                        .then(str_of(&a["first_ts"]).cmp(&str_of(&b["first_ts"])))
                });
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
                state["logs"] = json!({"matched": v["matched"], "analysed": lines.len(), "clusters": cl,
                    "samples": samples, "trace_ids": trace_ids,
                    "first_error_ts": v.get("first_ts").cloned().filter(|t| t.is_string()).or_else(|| lines.first().map(|l| l["ts"].clone()))});
                state["sources"]["logs"] = json!("ok");
            }
            Err(e) => {
                state["logs"] = json!({"matched": 0, "analysed": 0, "clusters": [], "samples": [], "trace_ids": []});
                state["sources"]["logs"] = json!(source_state(&e));
            }
        }
        Ok(())
    }

    /// Prometheus `up` for the service's targets, and runbook sections that match.
    async fn health_and_runbooks(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        let svc = str_of(&state["service"]);
        let q = format!("up{{job=\"{svc}\"}} or up{{service=\"{svc}\"}}");
        let params = json!({"env": state["env"], "query": q, "time": state["to"]});
        match soft(cx, "observability_tool", "metrics_query", params).await? {
            Ok(v) => {
                let targets: Vec<Json> = v["result"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| {
                        let up = r["value"][1]
                            .as_str()
                            .and_then(|x| x.parse::<f64>().ok())
                            .unwrap_or(0.0);
                        json!({"instance": r["metric"]["instance"], "job": r["metric"]["job"], "up": up >= 1.0})
                    })
                    .collect();
                let failing = targets.iter().filter(|t| t["up"] == false).count();
                state["health"] = json!({"checked": true, "targets": targets, "failing": failing});
                state["sources"]["health"] = json!("ok");
            }
            Err(e) => {
                state["health"] = json!({"checked": false, "targets": [], "failing": 0});
                state["sources"]["health"] = json!(source_state(&e));
            }
        }
        // Search with the symptom and the words of the top error templates.
        let mut q = str_of(&state["symptom"]);
        for c in state["logs"]["clusters"]
            .as_array()
            .into_iter()
            .flatten()
            .take(2)
        {
            for w in words(&str_of(&c["template"])).into_iter().take(6) {
                q.push(' ');
                q.push_str(&w);
            }
        }
        let q = crate::kernel::text::clip(&q, 400);
        // The service's own runbooks and all runbooks, merged by score: a strong general
        // match (disk full) beats a weak one that merely names the service.
        let mut hits: Vec<Json> = Vec::new();
        let mut status = json!("ok");
        for service in [Some(svc.clone()), None] {
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
                    status = json!(source_state(&e));
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
        let snippets: Vec<Json> = hits
            .iter()
            .map(|h| {
                let text: String = h["snippet"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| str_of(&p["text"]))
                    .collect();
                json!({"path": h["path"], "heading": h["heading"], "heading_path": h["heading_path"],
                       "anchor": h["anchor"], "title": h["title"], "score": h["score"], "text": text})
            })
            .collect();
        state["runbooks"] = json!(snippets);
        state["sources"]["runbooks"] = status;
        Ok(())
    }

    /// Traces by the ids the error logs carry (when asked for).
    async fn trace_lookup(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        if state["include_traces"] != true {
            state["traces"] = json!([]);
            state["sources"]["traces"] = json!("skipped: include_traces is false");
            return Ok(());
        }
        let ids: Vec<String> = state["logs"]["trace_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .take(3)
            .collect();
        if ids.is_empty() {
            state["traces"] = json!([]);
            state["sources"]["traces"] = json!("skipped: no trace ids in the error logs");
            return Ok(());
        }
        let mut out = Vec::new();
        let mut status = json!("ok");
        for id in ids {
            match soft(
                cx,
                "observability_tool",
                "traces_lookup",
                json!({"env": state["env"], "trace_id": id}),
            )
            .await?
            {
                Ok(t) => {
                    let items = t["items"].as_array().cloned().unwrap_or_default();
                    let mut err_services: Vec<String> = items
                        .iter()
                        .filter(|s| s["error"] == true)
                        .filter_map(|s| s["service"].as_str().map(str::to_string))
                        .collect();
                    err_services.sort();
                    err_services.dedup();
                    let slowest = items
                        .iter()
                        .max_by_key(|s| s["duration_us"].as_i64().unwrap_or(0))
                        .map(|s| json!({"service": s["service"], "operation": s["operation"],
                                        "duration_ms": s["duration_us"].as_f64().map(|d| d / 1000.0)}));
                    out.push(
                        json!({"trace_id": id, "spans": t["spans"], "services": t["services"],
                        "duration_ms": t["duration_ms"], "error_spans": t["error_spans"],
                        "error_services": err_services, "slowest": slowest}),
                    );
                }
                Err(e)
                    if matches!(e, Error::NotFound(_))
                        && !source_state(&e).starts_with("not_configured") =>
                {
                    out.push(json!({"trace_id": id, "found": false}));
                }
                Err(e) => {
                    status = json!(source_state(&e));
                    break;
                }
            }
        }
        state["traces"] = json!(out);
        state["sources"]["traces"] = status;
        Ok(())
    }

    /// Error budget burn and latency against `slo_policy.yml`, at the window's end.
    async fn slo_context(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        let p = json!({"env": state["env"], "service": state["service"], "time": state["to"]});
        match soft(cx, "observability_tool", "slo_status", p).await? {
            Ok(v) => {
                state["slo"] = v;
                state["sources"]["metrics"] = json!("ok");
            }
            Err(e) => {
                state["slo"] = Json::Null;
                state["sources"]["metrics"] = json!(source_state(&e));
            }
        }
        Ok(())
    }

    /// Mask secrets and personal data (`data_governance.yml`) in everything quoted from logs,
    /// traces and runbooks before it goes into a report.
    fn privacy(&self, state: &mut Json) {
        let mut n = 0;
        for key in ["logs", "traces", "runbooks", "alerts", "deploys"] {
            n += self.redactor.json(&mut state[key]);
        }
        state["privacy"] = json!({"redacted_values": n, "policy": "data_governance.yml"});
    }

    /// Impact in money from `cost_weights.yml`: failed requests and unavailable minutes.
    async fn cost(&self, state: &mut Json, cx: &NodeCx) -> Result<()> {
        let svc = str_of(&state["service"]);
        let rates = self.cost.for_service(&svc);
        let from =
            parse_ts(state["from"].as_str().unwrap_or("")).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let to = parse_ts(state["to"].as_str().unwrap_or("")).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let minutes = (to - from).whole_seconds() as f64 / 60.0;
        let error_rate = state["slo"]["error_rate"].as_f64();
        let mut rps = None;
        let mut basis = Vec::new();
        if error_rate.is_some() {
            let q = self.cost.queries.request_rate.replace("{service}", &svc);
            let p = json!({"env": state["env"], "query": q, "time": state["to"]});
            if let Ok(v) = soft(cx, "observability_tool", "metrics_query", p).await? {
                rps = crate::observability::first_value(&v);
            }
        }
        let failed = match (error_rate, rps) {
            (Some(e), Some(r)) => {
                basis.push(format!(
                    "{} error rate × {:.1} req/s × {:.0} min",
                    pct(e),
                    r,
                    minutes
                ));
                Some(e * r * minutes * 60.0)
            }
            _ => None,
        };
        let h = &state["health"];
        let total = h["targets"].as_array().map(|a| a.len()).unwrap_or(0);
        let failing = h["failing"].as_u64().unwrap_or(0) as usize;
        let down_minutes = if h["checked"] == true && total > 0 {
            if failing > 0 {
                basis.push(format!(
                    "{failing} of {total} targets down × {minutes:.0} min"
                ));
            }
            Some(minutes * failing as f64 / total as f64)
        } else {
            None
        };
        if failed.is_none() && down_minutes.is_none() {
            state["cost"] = json!({"estimated": false, "currency": self.cost.currency,
                "reason": "no request or health metrics for the window"});
            return Ok(());
        }
        let c_failed = failed
            .map(|f| f * rates.cost_per_failed_request)
            .unwrap_or(0.0);
        let c_down = down_minutes
            .map(|m| m * rates.cost_per_minute_unavailable)
            .unwrap_or(0.0);
        state["cost"] = json!({
            "estimated": true, "currency": self.cost.currency,
            "failed_requests": failed.map(|f| f.round()),
            "unavailable_minutes": down_minutes.map(round2),
            "cost_failed_requests": round2(c_failed), "cost_unavailability": round2(c_down),
            "total": round2(c_failed + c_down), "window_minutes": round2(minutes),
            "rates": {"cost_per_failed_request": rates.cost_per_failed_request,
                      "cost_per_minute_unavailable": rates.cost_per_minute_unavailable},
            "basis": basis,
        });
        Ok(())
    }
}

/// Rank causes from the collected signals and write the report of the seed's shape.
fn build_report(state: &Json, run_id: &str) -> Json {
    let svc = str_of(&state["service"]);
    let env = str_of(&state["env"]);
    let mut causes: Vec<(f64, String, &'static str, Vec<String>)> = Vec::new();
    let slo = &state["slo"];
    let slo_status = slo["status"].as_str().unwrap_or("");
    let burning = matches!(slo_status, "fast_burn" | "burning");
    let first_error = state["logs"]["first_error_ts"].as_str().and_then(parse_ts);
    let runbooks: Vec<Json> = state["runbooks"].as_array().cloned().unwrap_or_default();
    let runbook_ref = |text: &str| -> Option<String> {
        let w = words(text);
        runbooks
            .iter()
            .find(|r| {
                let body =
                    format!("{} {}", str_of(&r["heading_path"]), str_of(&r["text"])).to_lowercase();
                w.iter().filter(|x| body.contains(x.as_str())).count() >= 2
            })
            .map(|r| {
                format!(
                    "runbook {}#{} ({})",
                    str_of(&r["path"]),
                    str_of(&r["anchor"]),
                    str_of(&r["heading"])
                )
            })
    };

    // Deploys: the closer before the first error, the stronger.
    for d in state["deploys"].as_array().into_iter().flatten() {
        let Some(ts) = d["ts"].as_str().and_then(parse_ts) else {
            continue;
        };
        let mut score: f64 = 0.5;
        let mut ev = vec![format!(
            "deploy at {}: {}",
            rfc3339(ts),
            str_of(&d["message"])
        )];
        if let Some(fe) = first_error {
            let gap = (fe - ts).whole_minutes();
            if fe < ts {
                // Errors began before it: a fix or an unrelated change, not the cause.
                continue;
            }
            if gap <= 60 {
                score = 0.8;
                ev.push(format!("first error log {gap} min after the deploy"));
            }
        }
        if burning {
            score += 0.1;
            ev.push(format!(
                "error budget burning (burn rate {})",
                slo["burn_rate"]
            ));
        }
        causes.push((
            score,
            format!("Regression from deploy: {}", str_of(&d["message"])),
            "deploy",
            ev,
        ));
    }
    // Failing health checks.
    let h = &state["health"];
    let failing = h["failing"].as_u64().unwrap_or(0);
    if failing > 0 {
        let total = h["targets"].as_array().map(|a| a.len()).unwrap_or(1).max(1);
        let down: Vec<String> = h["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["up"] == false)
            .map(|t| str_of(&t["instance"]))
            .collect();
        causes.push((
            0.6 + 0.3 * failing as f64 / total as f64,
            format!("{failing} of {total} {svc} targets failing health checks"),
            "health",
            vec![format!("Prometheus up=0 for {}", down.join(", "))],
        ));
    }
    // SLO: burn rate and latency.
    if burning {
        let score = if slo_status == "fast_burn" { 0.75 } else { 0.6 };
        let er = slo["error_rate"].as_f64().unwrap_or(0.0);
        causes.push((
            score,
            format!(
                "Error budget burning at {}× (error rate {} against an objective of {})",
                slo["burn_rate"],
                pct(er),
                pct(slo["objective"]["availability"].as_f64().unwrap_or(1.0))
            ),
            "slo_burn",
            vec![format!("slo_status={slo_status}, error_rate={}", pct(er))],
        ));
    }
    if slo["latency_over_target"] == true {
        causes.push((
            0.5,
            format!(
                "p95 latency {} ms over the {} ms target",
                slo["latency_p95_ms"], slo["objective"]["latency_p95_ms"]
            ),
            "latency",
            vec![format!("latency_p95_ms={}", slo["latency_p95_ms"])],
        ));
    }
    // Error log clusters.
    let total_err: u64 = state["logs"]["analysed"].as_u64().unwrap_or(0);
    for c in state["logs"]["clusters"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
    {
        let n = c["count"].as_u64().unwrap_or(0);
        if n == 0 || (n < 2 && total_err > 3) {
            continue;
        }
        let share = n as f64 / total_err.max(1) as f64;
        let mut ev = vec![
            format!(
                "{n} of {total_err} error lines analysed, {} → {}",
                str_of(&c["first_ts"]),
                str_of(&c["last_ts"])
            ),
            format!("sample: {}", str_of(&c["sample"])),
        ];
        let mut score = 0.35 + 0.4 * share;
        if let Some(r) = runbook_ref(&str_of(&c["template"])) {
            ev.push(r);
            score += 0.05;
        }
        causes.push((
            score,
            format!("Recurring error: {}", str_of(&c["template"])),
            "error_logs",
            ev,
        ));
    }
    // Alerts, one cause per alert name.
    let mut seen = Vec::new();
    for a in state["alerts"].as_array().into_iter().flatten() {
        let name = str_of(&a["name"]);
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let mut ev = vec![format!("firing since {}", str_of(&a["active_at"]))];
        if let Some(s) = a["summary"].as_str() {
            ev.push(s.to_string());
        }
        causes.push((0.5, format!("Alert {name} firing"), "alerts", ev));
    }
    // Downstream errors seen in traces.
    for t in state["traces"].as_array().into_iter().flatten() {
        let others: Vec<String> = t["error_services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str())
            .filter(|s| *s != svc)
            .map(str::to_string)
            .collect();
        if !others.is_empty() {
            causes.push((
                0.55,
                format!("Errors in downstream service {}", others.join(", ")),
                "traces",
                vec![format!(
                    "trace {}: {} error spans of {}",
                    str_of(&t["trace_id"]),
                    t["error_spans"],
                    t["spans"]
                )],
            ));
        }
    }
    // A documented failure mode that matches, when nothing stronger points anywhere.
    if causes.is_empty() {
        if let Some(r) = runbooks.first() {
            causes.push((
                0.3,
                format!("Known failure mode: {}", str_of(&r["heading_path"])),
                "runbook",
                vec![format!(
                    "runbook {}#{}",
                    str_of(&r["path"]),
                    str_of(&r["anchor"])
                )],
            ));
        }
    }
    causes.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut seen_causes = std::collections::HashSet::new();
    causes.retain(|c| seen_causes.insert(c.1.clone()));
    causes.truncate(8);
    let ranked: Vec<Json> = causes
        .iter()
        .enumerate()
        .map(|(i, (score, cause, kind, ev))| {
            json!({"rank": i + 1, "cause": cause, "kind": kind, "score": round2(score.min(1.0)), "evidence": ev})
        })
        .collect();

    // Sources, with metrics counted once.
    let sources = json!({
        "metrics": state["sources"]["metrics"].as_str().unwrap_or("not_configured"),
        "logs": state["sources"]["logs"].as_str().unwrap_or("not_configured"),
        "traces": state["sources"]["traces"].as_str().unwrap_or("not_configured"),
        "runbooks": state["sources"]["runbooks"].as_str().unwrap_or("ok"),
        "alerts": state["sources"]["alerts"].as_str().unwrap_or("not_configured"),
        "health": state["sources"]["health"].as_str().unwrap_or("not_configured"),
    });
    let from = str_of(&state["from"]);
    let to = str_of(&state["to"]);
    let minutes = match (parse_ts(&from), parse_ts(&to)) {
        (Some(a), Some(b)) => (b - a).whole_minutes(),
        _ => 0,
    };

    // Impact.
    let cost = &state["cost"];
    let impact = if slo.is_object() && slo["status"] != "no_data" {
        let mut s = format!("SLO impact: status={slo_status}");
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
        if cost["estimated"] == true {
            s.push_str(&format!(
                "; estimated cost {} {} over {minutes} min",
                cost["total"],
                str_of(&cost["currency"])
            ));
            if let Some(f) = cost["failed_requests"].as_f64() {
                s.push_str(&format!(" (~{f} failed requests)"));
            }
        }
        s
    } else if cost["estimated"] == true {
        format!(
            "SLO impact unknown (no SLO data); estimated cost {} {} from unavailable targets",
            cost["total"],
            str_of(&cost["currency"])
        )
    } else {
        format!(
            "Impact unknown: no SLO metrics for {svc} in {env} (metrics: {})",
            sources["metrics"].as_str().unwrap_or("")
        )
    };

    // Mitigations.
    let mut mit: Vec<String> = Vec::new();
    for (_, cause, kind, _) in &causes {
        let m = match *kind {
            "deploy" => Some(format!(
                "Roll back or switch off the suspect change ({})",
                cause.trim_start_matches("Regression from deploy: ")
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
    for r in &runbooks {
        let heading = str_of(&r["heading_path"]);
        if fixes
            .as_ref()
            .is_some_and(|re| re.is_match(&heading) || re.is_match(&str_of(&r["text"])))
        {
            mit.push(format!(
                "Follow the runbook: {heading} ({}#{})",
                str_of(&r["path"]),
                str_of(&r["anchor"])
            ));
        }
    }
    if mit.is_empty() {
        mit.push("No mitigation is suggested by the available signals yet; see next checks".into());
    }
    mit.truncate(6);

    // Next checks.
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
    let trace_ids = state["logs"]["trace_ids"]
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    if state["include_traces"] != true && trace_ids > 0 {
        next.push(format!("Run again with include_traces to look up {trace_ids} trace ids found in the error logs"));
    }
    for t in state["traces"].as_array().into_iter().flatten() {
        if t["error_spans"].as_u64().unwrap_or(0) > 0 {
            next.push(format!(
                "Inspect trace {} ({} error spans)",
                str_of(&t["trace_id"]),
                t["error_spans"]
            ));
        }
    }
    if failing > 0 {
        next.push(format!(
            "Check /healthz and the logs of the failing {svc} targets"
        ));
    }
    if let Some(d) = state["deploys"].as_array().and_then(|a| a.last()) {
        next.push(format!(
            "Compare error templates before and after the deploy at {}",
            str_of(&d["ts"])
        ));
    }
    for i in state["related_incidents"]
        .as_array()
        .into_iter()
        .flatten()
        .take(3)
    {
        next.push(format!(
            "Related active incident {} ({}): {}",
            str_of(&i["id"]),
            str_of(&i["severity"]),
            str_of(&i["title"])
        ));
    }
    next.push(format!(
        "After mitigating, watch {svc}'s error rate and p95 for 15 minutes to confirm recovery"
    ));

    // Summary.
    let errors = state["logs"]["matched"].as_u64().unwrap_or(0);
    let alerts = state["alerts"].as_array().map(|a| a.len()).unwrap_or(0);
    let mut summary = format!("{svc} ({env}): {}. ", one_line(&str_of(&state["symptom"])));
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

    let snippets: Vec<Json> = runbooks
        .iter()
        .map(|r| json!({"path": r["path"], "text": r["text"], "heading": r["heading_path"], "anchor": r["anchor"]}))
        .collect();
    json!({
        "summary": one_line(&summary),
        "suspected_root_causes": ranked,
        "impact_assessment": impact,
        "mitigations_now": mit,
        "next_checks": next,
        "references": {
            "metrics": {"slo": slo, "alerts_count": alerts, "alerts": state["alerts"], "health": state["health"], "cost": state["cost"]},
            "log_samples": state["logs"]["samples"],
            "log_clusters": state["logs"]["clusters"],
            "runbook_snippets": snippets,
            "traces": {"traces": state["traces"]},
            "deploys": state["deploys"],
            "related_incidents": state["related_incidents"],
        },
        "sources": sources,
        "privacy": state["privacy"],
        "window": {"from": from, "to": to, "clamped": state["clamped"], "max_hours": state["max_window_h"]},
        "service": svc, "env": env, "symptom": state["symptom"],
        "incident_id": state["incident_id"], "run_id": run_id,
    })
}

/// Attach the report to the incident and note it on the timeline, once per run (a resumed
/// node finds its own artifact and event and does not add them again).
async fn attach(state: &mut Json, cx: &NodeCx) -> Result<()> {
    let id = str_of(&state["incident_id"]);
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
        let content = serde_json::to_string_pretty(&state["report"]).unwrap_or_default();
        cx.tool(
            "oncall_tool",
            "incident_attach_artifact",
            json!({"incident_id": id, "name": name, "content": content, "format": "json"}),
        )
        .await?;
    }
    if !has_event(cx, &id, "triage", &cx.run_id).await? {
        let top = state["report"]["suspected_root_causes"][0]["cause"].clone();
        cx.tool(
            "oncall_tool",
            "incident_append_event",
            json!({"incident_id": id, "type": "triage",
                   "message": crate::kernel::text::clip(&str_of(&state["report"]["summary"]), 2000),
                   "meta": {"run_id": cx.run_id, "artifact": name, "top_cause": top}}),
        )
        .await?;
    }
    state["report"]["artifact"] = json!(name);
    Ok(())
}

/// An incident's timeline, oldest first, at most `max` events, paged through `oncall_tool`.
pub(super) async fn timeline(cx: &NodeCx, incident: &str, max: usize) -> Result<Vec<Json>> {
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
pub(super) async fn events_of_run(
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
pub(super) async fn has_event(
    cx: &NodeCx,
    incident: &str,
    kind: &str,
    run_id: &str,
) -> Result<bool> {
    Ok(!events_of_run(cx, incident, kind, run_id).await?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fold_values_into_placeholders() {
        let a = template_of(
            "timeout after 3000ms calling 10.0.0.12:5432 for user 'bob' req=7f3a9c21b4",
        );
        let b = template_of(
            "timeout after 2500ms calling 10.0.0.13:5432 for user 'eve' req=0a1b2c3d4e",
        );
        assert_eq!(a, b);
        assert_eq!(a, "timeout after <n> calling <ip> for user '<s>' req=<hex>");
        assert_ne!(a, template_of("connection refused by db"));
        assert_eq!(
            template_of("user a@b.io id 123e4567-e89b-12d3-a456-426614174000 failed"),
            "user <email> id <uuid> failed"
        );
    }

    #[test]
    fn shipped_cost_weights_load() {
        let w = CostWeights::load(None).unwrap();
        assert!(w.defaults.cost_per_failed_request > 0.0);
        assert!(w.queries.request_rate.contains("{service}"));
    }
}
