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
//!
//! Each call to an observability source has its own budget (`SOFIIA_SOURCE_TIMEOUT_MS`, and
//! never more than the run has left before the time kept for the report): a source that
//! does not answer in it is `unavailable: timed out after N s`, and is not asked again in
//! the same run, so one hung source costs one budget and the report is still written.
//!
//! Files: `input.rs` checks the input into the first [`TriageState`] (`state.rs`);
//! `collect.rs` holds the collecting nodes, `cost.rs` the `cost` node and `cost_weights.yml`;
//! `rank.rs` ranks the suspected causes and `report.rs` writes the report.

mod collect;
mod cost;
mod input;
mod rank;
mod report;
mod state;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};

use crate::error::{Error, Result};
use crate::gateway::redact::Redactor;
use crate::graphs::{next_in_order, Node, NodeCx, NodeFuture, TypedGraph};
use crate::kernel::clock::Clock;

pub use cost::{CostOverride, CostQueries, CostRates, CostWeights, DEFAULT_COST_WEIGHTS};
pub use rank::template_of;
pub use state::TriageState;

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

/// The `incident_triage` graph.
pub struct IncidentTriage {
    clock: Arc<dyn Clock>,
    max_window_h: u64,
    redactor: Redactor,
    cost: CostWeights,
    source_budget: Duration,
}

impl IncidentTriage {
    /// `max_window_h` bounds the analysis window (`INCIDENT_MAX_TIME_WINDOW_H`); `redactor`
    /// masks what is quoted; `cost` prices the impact; `source_budget` is the longest one
    /// call to an observability source may take (`SOFIIA_SOURCE_TIMEOUT_MS`).
    pub fn new(
        clock: Arc<dyn Clock>,
        max_window_h: u64,
        redactor: Redactor,
        cost: CostWeights,
        source_budget: Duration,
    ) -> Self {
        IncidentTriage {
            clock,
            max_window_h,
            redactor,
            cost,
            source_budget,
        }
    }
}

impl TypedGraph for IncidentTriage {
    type State = TriageState;

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
    fn init(&self, input: &Json) -> Result<TriageState> {
        input::parse(input, self.clock.now(), self.max_window_h)
    }

    fn step<'a>(
        &'a self,
        node: &'a str,
        state: &'a mut TriageState,
        cx: &'a NodeCx,
    ) -> NodeFuture<'a> {
        Box::pin(async move {
            match node {
                "validate_input" => self.validate_input(state, cx).await?,
                "service_overview" => self.service_overview(state, cx).await?,
                "top_errors_logs" => self.top_errors_logs(state, cx).await?,
                "health_and_runbooks" => self.health_and_runbooks(state, cx).await?,
                "trace_lookup" => self.trace_lookup(state, cx).await?,
                "slo_context" => self.slo_context(state, cx).await?,
                "privacy" => self.privacy(state)?,
                "cost" => self.cost(state, cx).await?,
                "build_triage_report" => {
                    state.report = Some(report::build_report(state, &cx.run_id));
                    if state.incident_id.is_some() {
                        report::attach(state, cx).await?;
                    }
                }
                other => return Err(Error::Internal(format!("no node {other}"))),
            }
            Ok(next_in_order(NODES, node))
        })
    }

    fn result(&self, state: &TriageState) -> Json {
        state.report.clone().unwrap_or(Json::Null)
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}
