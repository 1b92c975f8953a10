//! The typed run state of `incident_triage`: the checked input, then what each node collects.
//!
//! Checkpoints keep the JSON shape the graph stored before it had types, so runs saved by an
//! earlier build resume. Values quoted from a tool's answer that the report passes on as they
//! came (labels, ids, a trace's counts, the SLO answer) stay [`Json`]: typing them would change
//! how they print, and the report's shape is a contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::cost::CostRates;

/// The run state: the input (from `init`), then one field per collecting node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriageState {
    /// The service triaged.
    pub service: String,
    /// What is wrong, in a line.
    pub symptom: String,
    /// `dev`, `staging` or `prod`.
    pub env: String,
    /// The window (clamped to `max_window_h`).
    #[serde(with = "rfc3339_ts")]
    pub from: OffsetDateTime,
    /// The window's end.
    #[serde(with = "rfc3339_ts")]
    pub to: OffsetDateTime,
    /// Whether the asked-for window was longer than `max_window_h` and was cut.
    pub clamped: bool,
    /// The longest window allowed (`INCIDENT_MAX_TIME_WINDOW_H`).
    pub max_window_h: u64,
    /// Whether trace ids from the error logs are looked up.
    pub include_traces: bool,
    /// Error lines asked of the logs source.
    pub max_log_lines: u64,
    /// Only log lines containing this.
    pub log_query_hint: Option<String>,
    /// The incident the report is attached to.
    pub incident_id: Option<String>,
    /// How each source answered (`ok`, `not_configured`, `unavailable: …`, `skipped: …`).
    #[serde(default)]
    pub sources: Sources,
    /// Sources (`metrics`, `logs`, `traces`) that did not answer within their budget, with
    /// why: later nodes of the run do not ask them again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timed_out: BTreeMap<String, String>,
    /// The linked incident's headline, as `incident_get` gave it (`validate_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Json>,
    /// Firing alerts of the service (`service_overview`).
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// Its other active incidents.
    #[serde(default)]
    pub related_incidents: Vec<RelatedIncident>,
    /// Deploys from two hours before the window to its end.
    #[serde(default)]
    pub deploys: Vec<Deploy>,
    /// Error logs of the window (`top_errors_logs`).
    #[serde(default)]
    pub logs: Logs,
    /// Its targets' `up` (`health_and_runbooks`).
    #[serde(default)]
    pub health: Health,
    /// The best matching runbook sections.
    #[serde(default)]
    pub runbooks: Vec<RunbookSnippet>,
    /// Traces by the error logs' ids (`trace_lookup`).
    #[serde(default)]
    pub traces: Vec<TraceSummary>,
    /// `slo_status`'s answer as it came (null when the metrics source did not answer).
    #[serde(default)]
    pub slo: Json,
    /// What the privacy pass masked.
    #[serde(default)]
    pub privacy: Option<Privacy>,
    /// The impact in money (`cost`).
    #[serde(default)]
    pub cost: Option<Cost>,
    /// The report (`build_triage_report`), which is the run's result.
    #[serde(default)]
    pub report: Option<Json>,
}

/// How each source answered; unset until its node ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Sources {
    /// How the metrics source answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// How the logs source answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    /// How the traces source answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces: Option<String>,
    /// How the runbooks source answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbooks: Option<String>,
    /// How the alerts source answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<String>,
    /// How the health source answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// A firing alert of the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Alert {
    /// `alertname`.
    pub name: Json,
    /// The `severity` label.
    pub severity: Json,
    /// Since when it fires.
    pub active_at: Json,
    /// Its summary (or description) annotation.
    pub summary: Option<String>,
}

/// Another active incident of the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RelatedIncident {
    /// The incident's id.
    pub id: Json,
    /// Its title.
    pub title: Json,
    /// Its severity.
    pub severity: Json,
    /// Its status.
    pub status: Json,
}

/// A deploy event from an incident timeline (`ts` is RFC 3339 unless redaction touched it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deploy {
    /// When (RFC 3339).
    pub ts: String,
    /// The event's message, on one line, clipped.
    pub message: String,
    /// The incident whose timeline has it.
    #[serde(default)]
    pub incident_id: Json,
    /// `meta.version`, as recorded.
    #[serde(default)]
    pub version: Json,
}

/// The error logs of the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Logs {
    /// Lines the source matched (more than it returned when it hit the limit).
    pub matched: u64,
    /// Lines returned and clustered.
    pub analysed: u64,
    /// The ten largest clusters, largest first.
    pub clusters: Vec<Cluster>,
    /// The newest lines, clipped, for the report.
    pub samples: Vec<String>,
    /// Trace ids the lines carry, newest first.
    pub trace_ids: Vec<String>,
    /// When the first error line of the window was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error_ts: Option<String>,
}

/// Error lines that share a message template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    /// The message with its values replaced ([`super::template_of`]).
    pub template: String,
    /// Lines in the cluster.
    pub count: u64,
    /// The first line's time.
    pub first_ts: String,
    /// The last line's time.
    pub last_ts: String,
    /// One message as it was (clipped).
    pub sample: String,
}

/// Prometheus `up` of the service's targets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// Whether the metrics source answered.
    pub checked: bool,
    /// Every target of the service.
    pub targets: Vec<Target>,
    /// Targets that are down.
    pub failing: u64,
}

/// One scrape target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    /// The `instance` label.
    pub instance: Json,
    /// The `job` label.
    pub job: Json,
    /// Whether `up` was 1.
    pub up: bool,
}

/// A runbook section that matched the symptom and the top error templates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunbookSnippet {
    /// The runbook file.
    pub path: Json,
    /// The section's heading.
    pub heading: Json,
    /// Its headings from the top (`A > B`).
    pub heading_path: Json,
    /// Its anchor in the file.
    pub anchor: Json,
    /// The runbook's title.
    pub title: Json,
    /// The search score.
    pub score: Json,
    /// The matching text.
    pub text: String,
}

/// A trace looked up by an id from the error logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TraceSummary {
    /// The traces source does not know the id (`found` is false).
    Missing {
        /// The trace id.
        trace_id: String,
        /// Always false.
        found: bool,
    },
    /// What the trace says; the counts as the source gave them.
    Found(FoundTrace),
}

/// A trace that was found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FoundTrace {
    /// The trace id.
    pub trace_id: String,
    /// Its span count.
    pub spans: Json,
    /// Services it passes through.
    pub services: Json,
    /// How long it took.
    pub duration_ms: Json,
    /// Spans with an error.
    pub error_spans: Json,
    /// Services with an error span, sorted.
    pub error_services: Vec<String>,
    /// The longest span (null when the trace has none).
    pub slowest: Json,
}

/// What the `privacy` node masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Privacy {
    /// Values masked.
    pub redacted_values: u64,
    /// The policy file applied.
    pub policy: String,
}

/// Impact in money, or why there is no estimate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cost {
    /// `estimated` is true.
    Estimated(CostEstimate),
    /// `estimated` is false, with the reason.
    Unknown {
        /// Always false.
        estimated: bool,
        /// From `cost_weights.yml`.
        currency: String,
        /// Why there is no estimate.
        reason: String,
    },
}

/// An estimate from failed requests and unavailable minutes (`cost_weights.yml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostEstimate {
    /// Always true here.
    pub estimated: bool,
    /// From `cost_weights.yml`.
    pub currency: String,
    /// Error rate × request rate × window.
    #[serde(default)]
    pub failed_requests: Option<f64>,
    /// Window × the share of targets down.
    #[serde(default)]
    pub unavailable_minutes: Option<f64>,
    /// The failed requests' cost.
    #[serde(deserialize_with = "nan_if_null")]
    pub cost_failed_requests: f64,
    /// The unavailable minutes' cost.
    #[serde(deserialize_with = "nan_if_null")]
    pub cost_unavailability: f64,
    /// Both costs together.
    #[serde(deserialize_with = "nan_if_null")]
    pub total: f64,
    /// The window's length.
    #[serde(deserialize_with = "nan_if_null")]
    pub window_minutes: f64,
    /// The rates used.
    pub rates: CostRates,
    /// How each figure was reached, in words.
    pub basis: Vec<String>,
}

impl Cost {
    /// The estimate, when there is one.
    pub fn estimate(&self) -> Option<&CostEstimate> {
        match self {
            Cost::Estimated(c) if c.estimated => Some(c),
            _ => None,
        }
    }
}

/// JSON has no NaN (a Prometheus rate can be one): it is written as null, and read back so.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// RFC 3339 both ways, any year `time` holds (a window may start before 1970).
mod rfc3339_ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;

    /// RFC 3339 in UTC.
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = t
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    /// Any RFC 3339 time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}
