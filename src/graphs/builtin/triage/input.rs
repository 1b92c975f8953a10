//! Checking `incident_triage`'s input (a 422 names the field) into the run's first state.

use serde_json::Value as Json;
use time::OffsetDateTime;

use super::state::TriageState;
use crate::error::{Error, Result};
use crate::graphs::reject_unknown;
use crate::kernel::clock::parse_ts;

/// The checked input as the first state. `now` ends the default window and bounds `to`;
/// a window longer than `max_window_h` is cut to its last `max_window_h` hours.
pub(super) fn parse(input: &Json, now: OffsetDateTime, max_window_h: u64) -> Result<TriageState> {
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
    let max = time::Duration::hours(max_window_h as i64);
    let (from, clamped) = if to - from > max {
        (to - max, true)
    } else {
        (from, false)
    };
    Ok(TriageState {
        service,
        symptom,
        env,
        from: from.to_offset(time::UtcOffset::UTC),
        to: to.to_offset(time::UtcOffset::UTC),
        clamped,
        max_window_h,
        include_traces,
        max_log_lines,
        log_query_hint: hint,
        incident_id,
        sources: Default::default(),
        timed_out: Default::default(),
        incident: None,
        alerts: vec![],
        related_incidents: vec![],
        deploys: vec![],
        logs: Default::default(),
        health: Default::default(),
        runbooks: vec![],
        traces: vec![],
        slo: Json::Null,
        privacy: None,
        cost: None,
        report: None,
    })
}
