//! Observability sources (`config/observability_sources.yml`, per env): metrics from the
//! Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/alerts`), logs from
//! Loki's HTTP API (`/loki/api/v1/query_range`) or local files (JSON lines or plain text), and
//! traces by id from a Jaeger- or Tempo-compatible API (`/api/traces/{id}`). Every call goes
//! through the shared outbound client (allowlist, timeouts, retries, circuit breaker). A
//! source that is not configured or not reachable is reported as such, never invented.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::net::Outbound;

// Failures of a source are `Error::Upstream`: the outbound client has already retried the
// call (idempotent GETs, with backoff and the breaker), so a graph's tool call must not retry
// it again (3 × 3 calls to a failing host).

/// `observability_sources.yml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default)]
    pub envs: BTreeMap<String, EnvSources>,
}

/// The sources of one env.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSources {
    pub prometheus: Option<Prometheus>,
    pub logs: Option<Logs>,
    pub traces: Option<Traces>,
}

/// A trace API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traces {
    pub url: String,
    /// `jaeger` (default) or `tempo`.
    #[serde(default = "jaeger")]
    pub api: String,
}

fn jaeger() -> String {
    "jaeger".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    pub url: String,
}

/// Logs: local files (every file matching one of `files`; a `*` in the file name is a
/// wildcard; lines are JSON objects with `ts`/`time`/`timestamp`, `level`, `service`,
/// `msg`/`message`, or plain text), or a Loki URL (streams selected by `service_label`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    #[serde(default)]
    pub files: Vec<PathBuf>,
    pub loki: Option<String>,
    #[serde(default = "service_label")]
    pub service_label: String,
}

fn service_label() -> String {
    "service".into()
}

/// `slo_policy.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloPolicy {
    pub defaults: Slo,
    pub queries: SloQueries,
    #[serde(default)]
    pub services: BTreeMap<String, SloOverride>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    pub availability: f64,
    pub latency_p95_ms: f64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloOverride {
    pub availability: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloQueries {
    pub error_rate: String,
    pub latency_p95_ms: String,
}

/// Default SLO policy, identical to the shipped file.
pub const DEFAULT_SLO: &str = include_str!("../../config/slo_policy.yml");

impl SloPolicy {
    pub fn load(config_dir: Option<&Path>) -> std::result::Result<SloPolicy, ConfigError> {
        let p: SloPolicy = crate::config::policy::load(config_dir, "slo_policy.yml", DEFAULT_SLO)?;
        let check = |name: &str, a: Option<f64>, l: Option<f64>| {
            if a.is_some_and(|a| !(0.5..1.0).contains(&a))
                || l.is_some_and(|l| l.is_nan() || l <= 0.0)
            {
                return Err(ConfigError(format!(
                    "slo_policy.yml: {name}: availability must be in [0.5, 1) and latency_p95_ms above 0"
                )));
            }
            Ok(())
        };
        check(
            "defaults",
            Some(p.defaults.availability),
            Some(p.defaults.latency_p95_ms),
        )?;
        for (svc, o) in &p.services {
            check(&format!("services.{svc}"), o.availability, o.latency_p95_ms)?;
        }
        Ok(p)
    }

    /// The objective of `service`.
    pub fn for_service(&self, service: &str) -> Slo {
        let o = self.services.get(service).copied().unwrap_or_default();
        Slo {
            availability: o.availability.unwrap_or(self.defaults.availability),
            latency_p95_ms: o.latency_p95_ms.unwrap_or(self.defaults.latency_p95_ms),
        }
    }
}

/// The first sample of an instant-vector answer, if any.
pub fn first_value(data: &Json) -> Option<f64> {
    data["result"].as_array()?.first()?["value"][1]
        .as_str()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// Default: no source anywhere (triage reports them unavailable until configured).
pub const DEFAULT_SOURCES: &str = include_str!("../../config/observability_sources.yml");

impl Sources {
    pub fn load(config_dir: Option<&Path>) -> std::result::Result<Sources, ConfigError> {
        let s: Sources =
            crate::config::policy::load(config_dir, "observability_sources.yml", DEFAULT_SOURCES)?;
        let mut s = s;
        // Canonical env names (`production` is `prod`), as tool calls name them.
        let mut canonical = BTreeMap::new();
        for (env, src) in std::mem::take(&mut s.envs) {
            let Some(e) = crate::config::Env::parse(&env) else {
                return Err(ConfigError(format!(
                    "observability_sources.yml: envs.{env}: not dev, staging or prod"
                )));
            };
            canonical.insert(e.as_str().to_string(), src);
        }
        s.envs = canonical;
        for (env, src) in &s.envs {
            let http = |u: &str| {
                reqwest::Url::parse(u)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            };
            let bad = |field: &str| {
                Err(ConfigError(format!(
                    "observability_sources.yml: envs.{env}.{field}: not an http(s) URL"
                )))
            };
            if src.prometheus.as_ref().is_some_and(|p| !http(&p.url)) {
                return bad("prometheus.url");
            }
            if src.traces.as_ref().is_some_and(|t| !http(&t.url)) {
                return bad("traces.url");
            }
            if let Some(t) = &src.traces {
                if !matches!(t.api.as_str(), "jaeger" | "tempo") {
                    return Err(ConfigError(format!(
                        "observability_sources.yml: envs.{env}.traces.api: '{}' is not jaeger or tempo",
                        t.api
                    )));
                }
            }
            if let Some(l) = &src.logs {
                if l.loki.as_deref().is_some_and(|u| !http(u)) {
                    return bad("logs.loki");
                }
                if l.loki.is_some() != l.files.is_empty() {
                    return Err(ConfigError(format!(
                        "observability_sources.yml: envs.{env}.logs: give either files or loki"
                    )));
                }
                let label_ok = !l.service_label.is_empty()
                    && l.service_label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !label_ok {
                    return Err(ConfigError(format!(
                        "observability_sources.yml: envs.{env}.logs.service_label: letters, digits and _"
                    )));
                }
            }
        }
        Ok(s)
    }
}

/// The observability room.
#[derive(Clone)]
pub struct Observability {
    sources: Arc<Sources>,
    slo: Arc<SloPolicy>,
    outbound: Arc<Outbound>,
    /// Longest one request to a source may take, its retries included
    /// (`SOFIIA_SOURCE_TIMEOUT_MS`).
    call_budget: Duration,
    /// When the caller's time is up (see [`Observability::until`]); no request outlives it.
    deadline: Option<Instant>,
}

/// Not configured: a 404 (nothing to retry), unlike an unreachable source (503).
fn unavailable(what: &str, env: &str) -> Error {
    Error::NotFound(format!(
        "no {what} source is configured for env '{}' (config/observability_sources.yml)",
        crate::kernel::text::clip(env, 20)
    ))
}

impl Observability {
    /// The room over `sources`; each request to a source ends within `call_budget`, all its
    /// attempts included.
    pub fn new(
        sources: Sources,
        slo: SloPolicy,
        outbound: Arc<Outbound>,
        call_budget: Duration,
    ) -> Observability {
        Observability {
            sources: Arc::new(sources),
            slo: Arc::new(slo),
            outbound,
            call_budget,
            deadline: None,
        }
    }

    /// The same room for one caller whose time is up at `deadline` (a tool call's limit): every
    /// request ends by then, whatever its own budget, and one that times out is reported as
    /// the source not answering.
    pub fn until(&self, deadline: Option<Instant>) -> Observability {
        Observability {
            deadline,
            ..self.clone()
        }
    }

    /// The service's objectives against Prometheus now: error rate and burn rate of the error
    /// budget, p95 latency against its target. Missing series are `no_data`, not zeros.
    /// `at` evaluates them at a past time instead of now (incident triage looks at the end of
    /// its window).
    pub async fn slo_status(
        &self,
        env: &str,
        service: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<Json> {
        crate::kernel::text::check_token("service", service, 64)?;
        let slo = self.slo.for_service(service);
        let q = |t: &str| t.replace("{service}", service);
        let err = first_value(
            &self
                .metrics_query(env, &q(&self.slo.queries.error_rate), at, None)
                .await?,
        );
        let lat = first_value(
            &self
                .metrics_query(env, &q(&self.slo.queries.latency_p95_ms), at, None)
                .await?,
        );
        let budget = 1.0 - slo.availability;
        let burn = err.map(|e| e / budget);
        let status = match (burn, lat) {
            (None, None) => "no_data",
            (Some(b), _) if b >= 6.0 => "fast_burn",
            (Some(b), _) if b >= 1.0 => "burning",
            (_, Some(l)) if l > slo.latency_p95_ms => "slow",
            _ => "ok",
        };
        let r = |x: f64| (x * 10_000.0).round() / 10_000.0;
        Ok(json!({
            "service": service, "env": env, "status": status,
            "objective": {"availability": slo.availability, "latency_p95_ms": slo.latency_p95_ms},
            "error_rate": err.map(r), "error_budget": r(budget), "burn_rate": burn.map(|b| (b * 100.0).round() / 100.0),
            "latency_p95_ms": lat.map(|l| (l * 10.0).round() / 10.0),
            "latency_over_target": lat.map(|l| l > slo.latency_p95_ms),
        }))
    }

    fn env(&self, env: &str) -> Option<&EnvSources> {
        self.sources.envs.get(env)
    }

    /// What is configured for `env` (for reports: which sources exist at all).
    pub fn configured(&self, env: &str) -> Json {
        let e = self.env(env);
        json!({
            "metrics": e.and_then(|e| e.prometheus.as_ref()).is_some(),
            "logs": e.and_then(|e| e.logs.as_ref()).is_some(),
            "traces": e.and_then(|e| e.traces.as_ref()).is_some(),
        })
    }

    /// GET `base` + `path` with query params; the JSON body and the HTTP status.
    async fn get_json(
        &self,
        what: &str,
        env: &str,
        base: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(reqwest::StatusCode, Json)> {
        let base = if base.ends_with('/') {
            base.to_string()
        } else {
            format!("{base}/")
        };
        let mut url = reqwest::Url::parse(&base)
            .and_then(|u| u.join(path))
            .map_err(|_| Error::Internal(format!("{what} url")))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        let own = Instant::now() + self.call_budget;
        let deadline = self.deadline.map_or(own, |d| d.min(own));
        let res = self
            .outbound
            .send_until(reqwest::Method::GET, url.as_str(), None, Some(deadline))
            .await
            .map_err(|e| Error::Upstream {
                message: format!("{what} ({env}): {e}"),
                retry_after_s: 5,
            })?;
        let status = res.status();
        let body: Json = res.json().await.map_err(|e| Error::Upstream {
            message: format!("{what} ({env}) answered something that is not JSON: {e}"),
            retry_after_s: 5,
        })?;
        Ok((status, body))
    }

    async fn prom_get(&self, env: &str, path: &str, params: &[(&str, String)]) -> Result<Json> {
        let p = self
            .env(env)
            .and_then(|e| e.prometheus.as_ref())
            .ok_or_else(|| unavailable("metrics", env))?;
        let (status, body) = self
            .get_json("prometheus", env, &p.url, path, params)
            .await?;
        // Prometheus: {"status":"success","data":…} or {"status":"error","errorType","error"}.
        if body["status"] != "success" {
            let msg = body["error"].as_str().unwrap_or("unknown error");
            let kind = body["errorType"].as_str().unwrap_or("error");
            return Err(if status.is_client_error() {
                Error::invalid("query", format!("prometheus refused it ({kind}): {msg}"))
            } else {
                Error::Upstream {
                    message: format!("prometheus ({env}) {kind}: {msg}"),
                    retry_after_s: 5,
                }
            });
        }
        Ok(body["data"].clone())
    }

    /// An instant query (at `time`, default now), or a range query when `range` is given
    /// (start, end, step seconds).
    pub async fn metrics_query(
        &self,
        env: &str,
        query: &str,
        time: Option<OffsetDateTime>,
        range: Option<(OffsetDateTime, OffsetDateTime, u64)>,
    ) -> Result<Json> {
        if query.trim().is_empty() || query.len() > 4000 {
            return Err(Error::invalid(
                "query",
                "a PromQL expression of 1-4000 characters",
            ));
        }
        let secs = |t: OffsetDateTime| format!("{:.3}", t.unix_timestamp_nanos() as f64 / 1e9);
        match range {
            Some((start, end, step)) => {
                if end <= start || step == 0 || (end - start).whole_seconds() as u64 / step > 11_000
                {
                    return Err(Error::invalid(
                        "step",
                        "end must be after start, and at most 11000 points",
                    ));
                }
                self.prom_get(
                    env,
                    "api/v1/query_range",
                    &[
                        ("query", query.to_string()),
                        ("start", secs(start)),
                        ("end", secs(end)),
                        ("step", step.to_string()),
                    ],
                )
                .await
            }
            None => {
                let mut p = vec![("query", query.to_string())];
                if let Some(t) = time {
                    p.push(("time", secs(t)));
                }
                self.prom_get(env, "api/v1/query", &p).await
            }
        }
    }

    /// Active alerts as Prometheus reports them.
    pub async fn alerts(&self, env: &str) -> Result<Json> {
        self.prom_get(env, "api/v1/alerts", &[]).await
    }

    /// Log lines of `env` in `[from, to]`, newest last, optionally for one service and
    /// containing `contains` (case-insensitive), at most `limit`. Blocking file reads run on
    /// the blocking pool.
    pub async fn logs_query(&self, q: LogQuery) -> Result<Json> {
        let logs = self
            .env(&q.env)
            .and_then(|e| e.logs.clone())
            .ok_or_else(|| unavailable("logs", &q.env))?;
        if q.limit == 0 || q.limit > 1000 {
            return Err(Error::invalid("limit", "1-1000"));
        }
        if let Some(loki) = &logs.loki {
            return self.loki_query(loki, &logs.service_label, &q).await;
        }
        tokio::task::spawn_blocking(move || read_logs(&logs, &q))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// `GET /loki/api/v1/query_range` with a LogQL selector and line filters.
    async fn loki_query(&self, url: &str, label: &str, q: &LogQuery) -> Result<Json> {
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let mut logql = match &q.service {
            Some(s) => format!("{{{label}={}}}", quote(s)),
            None => format!("{{{label}=~\".+\"}}"),
        };
        if let Some(c) = &q.contains {
            logql.push_str(&format!(
                " |~ {}",
                quote(&format!("(?i){}", regex::escape(c)))
            ));
        }
        if let Some(l) = &q.level {
            logql.push_str(&format!(
                " |~ {}",
                quote(&format!("(?i){}", regex::escape(l)))
            ));
        }
        let ns = |t: OffsetDateTime| t.unix_timestamp_nanos().to_string();
        // One `query_range` over the window: `limit` lines from the newest or the oldest end.
        let range = |limit: usize, direction: &'static str| {
            let params = [
                ("query", logql.clone()),
                ("start", ns(q.from)),
                ("end", ns(q.to)),
                ("limit", limit.to_string()),
                ("direction", direction.to_string()),
            ];
            async move {
                self.get_json("loki", &q.env, url, "loki/api/v1/query_range", &params)
                    .await
            }
        };
        let (status, body) = range(q.limit, "backward").await?;
        if body["status"] != "success" {
            let msg = body["error"]
                .as_str()
                .or(body["message"].as_str())
                .unwrap_or("unknown error");
            return Err(if status.is_client_error() {
                Error::invalid("query", format!("loki refused it: {msg}"))
            } else {
                Error::Upstream {
                    message: format!("loki ({}): {msg}", q.env),
                    retry_after_s: 5,
                }
            });
        }
        let mut lines: Vec<(i128, Json)> = Vec::new();
        for stream in body["data"]["result"].as_array().into_iter().flatten() {
            let labels = &stream["stream"];
            for v in stream["values"].as_array().into_iter().flatten() {
                let ts_ns: i128 = v[0].as_str().and_then(|t| t.parse().ok()).unwrap_or(0);
                let line = v[1].as_str().unwrap_or("");
                let ts = OffsetDateTime::from_unix_timestamp_nanos(ts_ns).ok();
                let (_, level, service, msg) = parse_line(line).unwrap_or_default();
                lines.push((
                    ts_ns,
                    json!({"ts": ts.map(crate::kernel::clock::rfc3339), "level": level,
                           "service": if service.is_empty() { labels[label].clone() } else { json!(service) },
                           "message": msg, "trace_id": trace_id_of(line)}),
                ));
            }
        }
        lines.sort_by_key(|l| l.0);
        let matched = lines.len();
        // Only the newest `limit` lines came back: ask for the oldest one in the window too,
        // so callers know when matching lines began (triage dates the first error by it).
        let mut first_ns = lines.first().map(|l| l.0);
        if matched >= q.limit {
            let earliest = range(1, "forward").await;
            if let Ok((_, b)) = earliest {
                let oldest = b["data"]["result"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
                    .filter_map(|v| v[0].as_str().and_then(|t| t.parse::<i128>().ok()))
                    .min();
                first_ns = match (first_ns, oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        let first_ts = first_ns
            .and_then(|n| OffsetDateTime::from_unix_timestamp_nanos(n).ok())
            .map(crate::kernel::clock::rfc3339);
        Ok(
            json!({"source": "loki", "query": logql, "matched": matched, "first_ts": first_ts,
                  "lines": lines.into_iter().map(|(_, v)| v).collect::<Vec<_>>()}),
        )
    }

    /// A trace by id: span count, services, duration, error spans, and the spans themselves
    /// (at most 500).
    pub async fn trace(&self, env: &str, trace_id: &str) -> Result<Json> {
        let t = self
            .env(env)
            .and_then(|e| e.traces.clone())
            .ok_or_else(|| unavailable("traces", env))?;
        let ok =
            (16..=32).contains(&trace_id.len()) && trace_id.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(Error::invalid("trace_id", "16-32 hex digits"));
        }
        let (status, body) = self
            .get_json(
                "traces",
                env,
                &t.url,
                &format!("api/traces/{trace_id}"),
                &[],
            )
            .await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::NotFound(format!(
                "trace {trace_id} not found in {env}"
            )));
        }
        if !status.is_success() {
            return Err(Error::Upstream {
                message: format!("traces ({env}): HTTP {status}"),
                retry_after_s: 5,
            });
        }
        let spans = if t.api == "tempo" {
            tempo_spans(&body)
        } else {
            jaeger_spans(&body)
        };
        let start = spans.iter().filter_map(|s| s["start_us"].as_i64()).min();
        let end = spans
            .iter()
            .filter_map(|s| Some(s["start_us"].as_i64()? + s["duration_us"].as_i64()?))
            .max();
        let mut services: Vec<String> = spans
            .iter()
            .filter_map(|s| s["service"].as_str().map(str::to_string))
            .collect();
        services.sort();
        services.dedup();
        let errors = spans.iter().filter(|s| s["error"] == true).count();
        Ok(json!({
            "trace_id": trace_id, "api": t.api, "spans": spans.len(), "services": services,
            "duration_ms": start.zip(end).map(|(a, b)| (b - a) as f64 / 1000.0),
            "error_spans": errors,
            "items": spans.into_iter().take(500).collect::<Vec<_>>(),
        }))
    }
}

/// A log query.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub env: String,
    pub service: Option<String>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub contains: Option<String>,
    pub level: Option<String>,
    pub limit: usize,
}

fn matching_files(pattern: &Path) -> Vec<PathBuf> {
    let Some(name) = pattern.file_name().map(|n| n.to_string_lossy().to_string()) else {
        return vec![];
    };
    if !name.contains('*') {
        return if pattern.is_file() {
            vec![pattern.to_path_buf()]
        } else {
            vec![]
        };
    }
    let dir = pattern.parent().unwrap_or(Path::new("."));
    let (pre, post) = name.split_once('*').unwrap_or((&name, ""));
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_file()
                        && p.file_name().is_some_and(|n| {
                            let n = n.to_string_lossy();
                            n.len() >= pre.len() + post.len()
                                && n.starts_with(pre)
                                && n.ends_with(post)
                        })
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The trace id a log line carries (`trace_id`, `traceId`, `traceID` as a JSON key or a
/// `key=value` pair), lowercased.
pub fn trace_id_of(line: &str) -> Option<String> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE
        .get_or_init(|| {
            regex::Regex::new(r#"(?i)\btrace[_-]?id["']?\s*[:=]\s*["']?([0-9a-f]{16,32})\b"#).ok()
        })
        .as_ref()?;
    re.captures(line)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_ascii_lowercase())
}

/// One parsed line: (ts, level, service, message, raw).
fn parse_line(line: &str) -> Option<(Option<OffsetDateTime>, String, String, String)> {
    let t = line.trim();
    if t.is_empty() {
        return None;
    }
    if t.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<Json>(t) {
            let s = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
                    .unwrap_or("")
                    .to_string()
            };
            let ts = ["ts", "time", "timestamp", "@timestamp"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|x| x.as_str()))
                .and_then(crate::kernel::clock::parse_ts);
            return Some((
                ts,
                s(&["level", "severity", "lvl"]).to_lowercase(),
                s(&["service", "app", "logger"]),
                s(&["msg", "message", "error"]),
            ));
        }
    }
    // Plain text: an RFC 3339 time first if there is one, a level word if present.
    let first = t.split_whitespace().next().unwrap_or("");
    let ts = crate::kernel::clock::parse_ts(first.trim_matches(|c| c == '[' || c == ']'));
    let lower = t.to_lowercase();
    let level = ["error", "warn", "info", "debug"]
        .iter()
        .find(|l| lower.contains(*l))
        .map(|l| l.to_string())
        .unwrap_or_default();
    Some((ts, level, String::new(), t.to_string()))
}

fn read_logs(logs: &Logs, q: &LogQuery) -> Result<Json> {
    let mut files = Vec::new();
    for p in &logs.files {
        files.extend(matching_files(p));
    }
    let contains = q.contains.as_deref().map(str::to_lowercase);
    let mut lines: Vec<(OffsetDateTime, Json)> = Vec::new();
    let mut scanned = 0u64;
    for f in &files {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        for line in BufReader::new(file).lines().map_while(|l| l.ok()) {
            scanned += 1;
            let Some((ts, level, service, msg)) = parse_line(&line) else {
                continue;
            };
            // Lines without a time cannot be placed in the window: left out.
            let Some(ts) = ts else { continue };
            if ts < q.from || ts > q.to {
                continue;
            }
            if let Some(s) = &q.service {
                if !service.is_empty() && service != *s {
                    continue;
                }
                if service.is_empty() && !line.contains(s.as_str()) {
                    continue;
                }
            }
            if let Some(l) = &q.level {
                if level != *l {
                    continue;
                }
            }
            if let Some(c) = &contains {
                if !line.to_lowercase().contains(c.as_str()) {
                    continue;
                }
            }
            let mut m = msg;
            if m.len() > 2000 {
                let mut end = 2000;
                while !m.is_char_boundary(end) {
                    end -= 1;
                }
                m.truncate(end);
            }
            let trace_id = trace_id_of(&line);
            lines.push((
                ts,
                json!({"ts": crate::kernel::clock::rfc3339(ts), "level": level, "service": service,
                                   "message": m, "trace_id": trace_id}),
            ));
        }
    }
    lines.sort_by_key(|l| l.0);
    let total = lines.len();
    let first_ts = lines.first().map(|l| crate::kernel::clock::rfc3339(l.0));
    let keep: Vec<Json> = lines
        .into_iter()
        .skip(total.saturating_sub(q.limit))
        .map(|(_, v)| v)
        .collect();
    Ok(
        json!({"source": "files", "files": files.len(), "scanned_lines": scanned,
              "matched": total, "first_ts": first_ts, "lines": keep}),
    )
}

/// Spans of a Jaeger `/api/traces/{id}` answer: `{"data":[{"spans":[…],"processes":{…}}]}`.
fn jaeger_spans(body: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for trace in body["data"].as_array().into_iter().flatten() {
        let procs = &trace["processes"];
        for s in trace["spans"].as_array().into_iter().flatten() {
            let pid = s["processID"].as_str().unwrap_or("");
            let error = s["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["key"] == "error" && (t["value"] == true || t["value"] == "true"));
            out.push(json!({
                "span_id": s["spanID"], "operation": s["operationName"],
                "service": procs[pid]["serviceName"], "start_us": s["startTime"],
                "duration_us": s["duration"], "error": error,
            }));
        }
    }
    out
}

/// Spans of a Tempo `/api/traces/{id}` answer (OTLP JSON: `batches[].resource` and
/// `scopeSpans[].spans[]`, or the older `instrumentationLibrarySpans`).
fn tempo_spans(body: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for b in body["batches"].as_array().into_iter().flatten() {
        let service = b["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["key"] == "service.name")
            .map(|a| a["value"]["stringValue"].clone())
            .unwrap_or(Json::Null);
        let scopes = b["scopeSpans"]
            .as_array()
            .or(b["instrumentationLibrarySpans"].as_array());
        for sc in scopes.into_iter().flatten() {
            for s in sc["spans"].as_array().into_iter().flatten() {
                let ns = |k: &str| {
                    s[k].as_str()
                        .and_then(|v| v.parse::<i64>().ok())
                        .or(s[k].as_i64())
                };
                let start = ns("startTimeUnixNano").map(|v| v / 1000);
                let end = ns("endTimeUnixNano").map(|v| v / 1000);
                // OTLP status code 2 = ERROR (as a number or its enum name).
                let code = &s["status"]["code"];
                let error = code == 2 || code == "STATUS_CODE_ERROR";
                out.push(json!({
                    "span_id": s["spanId"], "operation": s["name"], "service": service,
                    "start_us": start, "duration_us": start.zip(end).map(|(a, b)| b - a),
                    "error": error,
                }));
            }
        }
    }
    out
}
