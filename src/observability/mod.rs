//! Observability sources (`config/observability_sources.yml`, per env): metrics from the
//! Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`, `/api/v1/alerts`) and logs
//! from local files (JSON lines or plain text). Every call goes through the shared outbound
//! client (allowlist, timeouts, retries, circuit breaker). A source that is not configured or
//! not reachable is reported as such, never invented.
//!
//! Loki, trace lookups and SLO status come with the triage graph (issue 6, still open).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::config::ConfigError;
use crate::error::{Error, Result};
use crate::gateway::outbound::Outbound;

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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prometheus {
    pub url: String,
}

/// Local log files: every file matching one of `paths` (a `*` in the file name is a
/// wildcard). Lines are JSON objects (`ts`/`time`/`timestamp`, `level`, `service`,
/// `msg`/`message`) or plain text.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    pub files: Vec<PathBuf>,
}

/// Default: no source anywhere (triage reports them unavailable until configured).
pub const DEFAULT_SOURCES: &str = include_str!("../../config/observability_sources.yml");

impl Sources {
    pub fn load(config_dir: Option<&Path>) -> std::result::Result<Sources, ConfigError> {
        let s: Sources =
            crate::gateway::policy::load(config_dir, "observability_sources.yml", DEFAULT_SOURCES)?;
        for (env, src) in &s.envs {
            if crate::config::Env::parse(env).is_none() {
                return Err(ConfigError(format!(
                    "observability_sources.yml: envs.{env}: not dev, staging or prod"
                )));
            }
            if let Some(p) = &src.prometheus {
                let ok = reqwest::Url::parse(&p.url)
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                if !ok {
                    return Err(ConfigError(format!(
                        "observability_sources.yml: envs.{env}.prometheus.url: not an http(s) URL"
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
    outbound: Arc<Outbound>,
}

/// Not configured: a 404 (nothing to retry), unlike an unreachable source (503).
fn unavailable(what: &str, env: &str) -> Error {
    Error::NotFound(format!(
        "no {what} source is configured for env '{}' (config/observability_sources.yml)",
        crate::incidents::model::clip(env, 20)
    ))
}

impl Observability {
    pub fn new(sources: Sources, outbound: Arc<Outbound>) -> Observability {
        Observability {
            sources: Arc::new(sources),
            outbound,
        }
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
        })
    }

    async fn prom_get(&self, env: &str, path: &str, params: &[(&str, String)]) -> Result<Json> {
        let p = self
            .env(env)
            .and_then(|e| e.prometheus.as_ref())
            .ok_or_else(|| unavailable("metrics", env))?;
        let mut url = reqwest::Url::parse(&p.url)
            .map_err(|_| Error::Internal("prometheus url".into()))?
            .join(path)
            .map_err(|_| Error::Internal("prometheus url".into()))?;
        {
            let mut q = url.query_pairs_mut();
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        let res = self
            .outbound
            .send(reqwest::Method::GET, url.as_str(), None)
            .await
            .map_err(|e| Error::Unavailable {
                message: format!("prometheus ({env}): {e}"),
                retry_after_s: 5,
            })?;
        let status = res.status();
        let body: Json = res.json().await.map_err(|e| Error::Unavailable {
            message: format!("prometheus ({env}) answered something that is not JSON: {e}"),
            retry_after_s: 5,
        })?;
        // Prometheus: {"status":"success","data":…} or {"status":"error","errorType","error"}.
        if body["status"] != "success" {
            let msg = body["error"].as_str().unwrap_or("unknown error");
            let kind = body["errorType"].as_str().unwrap_or("error");
            return Err(if status.is_client_error() {
                Error::invalid("query", format!("prometheus refused it ({kind}): {msg}"))
            } else {
                Error::Unavailable {
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
        tokio::task::spawn_blocking(move || read_logs(&logs, &q))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
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
                .and_then(crate::clock::parse_ts);
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
    let ts = crate::clock::parse_ts(first.trim_matches(|c| c == '[' || c == ']'));
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
            lines.push((ts, json!({"ts": crate::clock::rfc3339(ts), "level": level, "service": service, "message": m})));
        }
    }
    lines.sort_by_key(|l| l.0);
    let total = lines.len();
    let keep: Vec<Json> = lines
        .into_iter()
        .skip(total.saturating_sub(q.limit))
        .map(|(_, v)| v)
        .collect();
    Ok(
        json!({"source": "files", "files": files.len(), "scanned_lines": scanned,
              "matched": total, "lines": keep}),
    )
}
