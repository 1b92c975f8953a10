//! `incident_intelligence.yml`: correlation weights, recurrence and digest windows.

use serde::Deserialize;

use crate::config::ConfigError;

/// The built-in `incident_intelligence.yml`.
pub const DEFAULT_INTELLIGENCE: &str = include_str!("../../config/incident_intelligence.yml");

/// `incident_intelligence.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelligencePolicy {
    pub correlation: CorrelationPolicy,
    pub recurrence: RecurrencePolicy,
    pub digest: DigestPolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationPolicy {
    pub weights: CorrelationWeights,
    pub time_window_hours: u32,
    pub min_score: f64,
    pub max_results: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrelationWeights {
    pub same_service: f64,
    pub time_proximity: f64,
    pub text_similarity: f64,
    pub shared_fingerprints: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrencePolicy {
    pub window_days: u32,
    pub threshold: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestPolicy {
    pub window_days: u32,
    pub top_signatures: usize,
    pub followup_lookback_days: u32,
}

impl IntelligencePolicy {
    /// Load `incident_intelligence.yml` (or the default) and check its ranges.
    pub fn load(config_dir: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let p: IntelligencePolicy = crate::config::policy::load(
            config_dir,
            "incident_intelligence.yml",
            DEFAULT_INTELLIGENCE,
        )?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let w = &self.correlation.weights;
        let all = [
            w.same_service,
            w.time_proximity,
            w.text_similarity,
            w.shared_fingerprints,
        ];
        if all.iter().any(|x| !x.is_finite() || *x < 0.0) || all.iter().sum::<f64>() <= 0.0 {
            return Err(ConfigError(
                "incident_intelligence.yml: correlation.weights must be >= 0 and not all 0".into(),
            ));
        }
        let c = &self.correlation;
        if c.time_window_hours == 0
            || !(0.0..=1.0).contains(&c.min_score)
            || c.max_results == 0
            || c.max_results > 100
        {
            return Err(ConfigError(
                "incident_intelligence.yml: correlation needs time_window_hours > 0, min_score in 0..1, max_results 1-100".into(),
            ));
        }
        if !(1..=3650).contains(&self.recurrence.window_days) || self.recurrence.threshold < 2 {
            return Err(ConfigError(
                "incident_intelligence.yml: recurrence needs window_days 1-3650 and threshold >= 2"
                    .into(),
            ));
        }
        if !(1..=366).contains(&self.digest.window_days)
            || !(1..=3650).contains(&self.digest.followup_lookback_days)
        {
            return Err(ConfigError(
                "incident_intelligence.yml: digest needs window_days 1-366 and followup_lookback_days 1-3650".into(),
            ));
        }
        Ok(())
    }
}
