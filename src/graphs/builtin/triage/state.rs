//! The typed run state of `incident_triage`: the checked input, then what each node collects.
//!
//! Checkpoints keep the JSON shape the graph stored before it had types, so runs saved by an
//! earlier build resume. Values quoted from a tool's answer that the report passes on as they
//! came (labels, ids, a trace's counts, the SLO answer) stay [`Json`]: typing them would change
//! how they print, and the report's shape is a contract.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

use super::cost::CostRates;

/// The run state: the input (from `init`), then one field per collecting node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TriageState {
    pub service: String,
    pub symptom: String,
    pub env: String,
    /// The window (clamped to `max_window_h`).
    #[serde(with = "rfc3339_ts")]
    pub from: OffsetDateTime,
    #[serde(with = "rfc3339_ts")]
    pub to: OffsetDateTime,
    /// Whether the asked-for window was longer than `max_window_h` and was cut.
    pub clamped: bool,
    pub max_window_h: u64,
    pub include_traces: bool,
    pub max_log_lines: u64,
    pub log_query_hint: Option<String>,
    pub incident_id: Option<String>,
    /// How each source answered (`ok`, `not_configured`, `unavailable: …`, `skipped: …`).
    #[serde(default)]
    pub sources: Sources,
    /// The linked incident's headline, as `incident_get` gave it (`validate_input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Json>,
    #[serde(default)]
    pub alerts: Vec<Alert>,
    #[serde(default)]
    pub related_incidents: Vec<RelatedIncident>,
    #[serde(default)]
    pub deploys: Vec<Deploy>,
    #[serde(default)]
    pub logs: Logs,
    #[serde(default)]
    pub health: Health,
    #[serde(default)]
    pub runbooks: Vec<RunbookSnippet>,
    #[serde(default)]
    pub traces: Vec<TraceSummary>,
    /// `slo_status`'s answer as it came (null when the metrics source did not answer).
    #[serde(default)]
    pub slo: Json,
    #[serde(default)]
    pub privacy: Option<Privacy>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runbooks: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
}

/// A firing alert of the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Alert {
    pub name: Json,
    pub severity: Json,
    pub active_at: Json,
    pub summary: Option<String>,
}

/// Another active incident of the service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RelatedIncident {
    pub id: Json,
    pub title: Json,
    pub severity: Json,
    pub status: Json,
}

/// A deploy event from an incident timeline (`ts` is RFC 3339 unless redaction touched it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deploy {
    pub ts: String,
    pub message: String,
    #[serde(default)]
    pub incident_id: Json,
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
    pub clusters: Vec<Cluster>,
    /// The newest lines, clipped, for the report.
    pub samples: Vec<String>,
    /// Trace ids the lines carry, newest first.
    pub trace_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error_ts: Option<String>,
}

/// Error lines that share a message template.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub template: String,
    pub count: u64,
    pub first_ts: String,
    pub last_ts: String,
    pub sample: String,
}

/// Prometheus `up` of the service's targets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Health {
    /// Whether the metrics source answered.
    pub checked: bool,
    pub targets: Vec<Target>,
    pub failing: u64,
}

/// One scrape target.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    pub instance: Json,
    pub job: Json,
    pub up: bool,
}

/// A runbook section that matched the symptom and the top error templates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunbookSnippet {
    pub path: Json,
    pub heading: Json,
    pub heading_path: Json,
    pub anchor: Json,
    pub title: Json,
    pub score: Json,
    pub text: String,
}

/// A trace looked up by an id from the error logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TraceSummary {
    /// The traces source does not know the id (`found` is false).
    Missing { trace_id: String, found: bool },
    /// What the trace says; the counts as the source gave them.
    Found(FoundTrace),
}

/// A trace that was found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FoundTrace {
    pub trace_id: String,
    pub spans: Json,
    pub services: Json,
    pub duration_ms: Json,
    pub error_spans: Json,
    /// Services with an error span, sorted.
    pub error_services: Vec<String>,
    /// The longest span (null when the trace has none).
    pub slowest: Json,
}

/// What the `privacy` node masked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Privacy {
    pub redacted_values: u64,
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
        estimated: bool,
        currency: String,
        reason: String,
    },
}

/// An estimate from failed requests and unavailable minutes (`cost_weights.yml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CostEstimate {
    pub estimated: bool,
    pub currency: String,
    #[serde(default)]
    pub failed_requests: Option<f64>,
    #[serde(default)]
    pub unavailable_minutes: Option<f64>,
    #[serde(deserialize_with = "nan_if_null")]
    pub cost_failed_requests: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub cost_unavailability: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub total: f64,
    #[serde(deserialize_with = "nan_if_null")]
    pub window_minutes: f64,
    pub rates: CostRates,
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

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = t
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        OffsetDateTime::parse(&text, &Rfc3339).map_err(serde::de::Error::custom)
    }
}
