//! The `cost` node and its configuration, `cost_weights.yml`: impact in money from failed
//! requests and unavailable minutes. Without request or health metrics there is no estimate
//! (never a made-up number).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::state::{Cost, CostEstimate, TriageState};
use super::{pct, round2, IncidentTriage};
use crate::config::ConfigError;
use crate::error::Result;
use crate::graphs::NodeCx;
use crate::kernel::clock::rfc3339;

/// `cost_weights.yml`: what a failed request and a minute of unavailability cost.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostWeights {
    /// The currency costs are in (shown with every figure).
    pub currency: String,
    /// Rates of a service without overrides.
    pub defaults: CostRates,
    /// Per-service overrides, by service name.
    #[serde(default)]
    pub services: BTreeMap<String, CostOverride>,
    /// How request volume is measured.
    pub queries: CostQueries,
}

/// Rates of one service.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostRates {
    /// What one failed request costs.
    pub cost_per_failed_request: f64,
    /// What a minute of the whole service being down costs.
    pub cost_per_minute_unavailable: f64,
}

/// Per-service changes to the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostOverride {
    /// Replaces the default's, when set.
    pub cost_per_failed_request: Option<f64>,
    /// Replaces the default's, when set.
    pub cost_per_minute_unavailable: Option<f64>,
}

/// PromQL used to estimate volume (`{service}` is replaced).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostQueries {
    /// Requests per second of `{service}`.
    pub request_rate: String,
}

/// The shipped `cost_weights.yml`.
pub const DEFAULT_COST_WEIGHTS: &str = include_str!("../../../../config/cost_weights.yml");

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

    /// The rates of service `s`: the defaults with its overrides.
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

impl IncidentTriage {
    /// Impact in money from `cost_weights.yml`: failed requests and unavailable minutes.
    pub(super) async fn cost(&self, state: &mut TriageState, cx: &NodeCx) -> Result<()> {
        let svc = state.service.clone();
        let rates = self.cost.for_service(&svc);
        let minutes = (state.to - state.from).whole_seconds() as f64 / 60.0;
        let error_rate = state.slo["error_rate"].as_f64();
        let mut rps = None;
        let mut basis = Vec::new();
        if error_rate.is_some() {
            let q = self.cost.queries.request_rate.replace("{service}", &svc);
            let p = json!({"env": state.env, "query": q, "time": rfc3339(state.to)});
            if let Ok(v) = self
                .ask_source(state, cx, "metrics", "metrics_query", p)
                .await?
            {
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
        let h = &state.health;
        let total = h.targets.len();
        let failing = h.failing as usize;
        let down_minutes = if h.checked && total > 0 {
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
            state.cost = Some(Cost::Unknown {
                estimated: false,
                currency: self.cost.currency.clone(),
                reason: "no request or health metrics for the window".into(),
            });
            return Ok(());
        }
        let c_failed = failed
            .map(|f| f * rates.cost_per_failed_request)
            .unwrap_or(0.0);
        let c_down = down_minutes
            .map(|m| m * rates.cost_per_minute_unavailable)
            .unwrap_or(0.0);
        state.cost = Some(Cost::Estimated(CostEstimate {
            estimated: true,
            currency: self.cost.currency.clone(),
            failed_requests: failed.map(|f| f.round()),
            unavailable_minutes: down_minutes.map(round2),
            cost_failed_requests: round2(c_failed),
            cost_unavailability: round2(c_down),
            total: round2(c_failed + c_down),
            window_minutes: round2(minutes),
            rates,
            basis,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_cost_weights_load() {
        let w = CostWeights::load(None).unwrap();
        assert!(w.defaults.cost_per_failed_request > 0.0);
        assert!(w.queries.request_rate.contains("{service}"));
    }
}
