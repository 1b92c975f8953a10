//! `observability_tool`: `metrics_query` (Prometheus instant or range query), `alerts`
//! (Prometheus active alerts), `logs_query` (Loki or local log files) and `traces_lookup`
//! (Jaeger or Tempo), per env.

use serde::Deserialize;
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::{no_action, object, parse};
use crate::error::{Error, Result};
use crate::gateway::{Action, Params, Tool, ToolCx, ToolFuture};
use crate::observability::{LogQuery, Observability};

const NAME: &str = "observability_tool";

/// Every action, in the order `GET /v1/tools` lists them.
const ACTIONS: &[Action] = &[
    Action::read("metrics_query"),
    Action::read("alerts"),
    Action::read("logs_query"),
    Action::read("traces_lookup"),
    Action::read("slo_status"),
];

fn default_env() -> String {
    "prod".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsArgs {
    #[serde(default = "default_env")]
    env: String,
    query: String,
    time: Option<String>,
    start: Option<String>,
    end: Option<String>,
    step: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsArgs {
    #[serde(default = "default_env")]
    env: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsArgs {
    #[serde(default = "default_env")]
    env: String,
    service: Option<String>,
    from: Option<String>,
    to: Option<String>,
    contains: Option<String>,
    level: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SloArgs {
    #[serde(default = "default_env")]
    env: String,
    service: String,
    /// Evaluate at this time (default now).
    time: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceArgs {
    #[serde(default = "default_env")]
    env: String,
    trace_id: String,
}

/// `prod`, `production`… → the canonical env name.
fn env_of(s: &str) -> Result<String> {
    crate::config::Env::parse(s)
        .map(|e| e.as_str().to_string())
        .ok_or_else(|| Error::invalid("env", "dev, staging or prod"))
}

fn ts(field: &str, v: Option<String>) -> Result<Option<OffsetDateTime>> {
    v.map(|s| {
        crate::kernel::clock::parse_ts(&s).ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "'{}' is not an RFC 3339 time",
                    crate::kernel::text::clip(&s, 40)
                ),
            )
        })
    })
    .transpose()
}

/// Run one action.
async fn call(o: &Observability, action: &str, params: Json, now: OffsetDateTime) -> Result<Json> {
    let p = object(params)?;
    match action {
        "metrics_query" => {
            let a: MetricsArgs = parse(p)?;
            let range = match (ts("start", a.start)?, ts("end", a.end)?) {
                (Some(s), Some(e)) => Some((s, e, a.step.unwrap_or(60))),
                (None, None) => None,
                _ => return Err(Error::invalid("start", "give start and end together")),
            };
            o.metrics_query(&env_of(&a.env)?, &a.query, ts("time", a.time)?, range)
                .await
        }
        "alerts" => {
            let a: AlertsArgs = parse(p)?;
            o.alerts(&env_of(&a.env)?).await
        }
        "logs_query" => {
            let a: LogsArgs = parse(p)?;
            let to = ts("to", a.to)?.unwrap_or(now);
            let from = ts("from", a.from)?.unwrap_or(to - time::Duration::hours(1));
            if from >= to {
                return Err(Error::invalid("from", "must be before to"));
            }
            o.logs_query(LogQuery {
                env: env_of(&a.env)?,
                service: a.service.filter(|s| !s.is_empty()),
                from,
                to,
                contains: a.contains.filter(|s| !s.is_empty()),
                level: a.level.map(|l| l.to_lowercase()).filter(|s| !s.is_empty()),
                limit: a.limit.unwrap_or(120),
            })
            .await
        }
        "slo_status" => {
            let a: SloArgs = parse(p)?;
            o.slo_status(&env_of(&a.env)?, &a.service, ts("time", a.time)?)
                .await
        }
        "traces_lookup" => {
            let a: TraceArgs = parse(p)?;
            o.trace(&env_of(&a.env)?, &a.trace_id).await
        }
        other => Err(no_action(NAME, other, ACTIONS)),
    }
}

/// `observability_tool`, over the configured sources.
pub struct ObservabilityTool {
    obs: Observability,
}

impl ObservabilityTool {
    /// The tool over `obs`.
    pub fn new(obs: Observability) -> ObservabilityTool {
        ObservabilityTool { obs }
    }
}

impl Tool for ObservabilityTool {
    fn name(&self) -> &'static str {
        NAME
    }
    fn actions(&self) -> &'static [Action] {
        ACTIONS
    }
    fn execute<'a>(&'a self, cx: ToolCx<'a>, action: &'a str, params: Params) -> ToolFuture<'a> {
        // Sources are asked to answer within the call's own time limit, so a source that
        // hangs is reported as not answering rather than cut off unrecorded.
        let obs = self.obs.until(Some(cx.deadline));
        Box::pin(async move { call(&obs, action, params.into_json()?, cx.now).await })
    }
}
