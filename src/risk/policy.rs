//! `risk_policy.yml`, `risk_attribution.yml` and `architecture_pressure.yml`: the factor
//! weights and bands, how a score is explained, and when a service is under pressure.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::incidents::model::Severity;

/// The built-in `risk_policy.yml`.
pub const DEFAULT_RISK: &str = include_str!("../../config/risk_policy.yml");
/// The built-in `risk_attribution.yml`.
pub const DEFAULT_ATTRIBUTION: &str = include_str!("../../config/risk_attribution.yml");
/// The built-in `architecture_pressure.yml`.
pub const DEFAULT_PRESSURE: &str = include_str!("../../config/architecture_pressure.yml");

/// `risk_policy.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskPolicy {
    /// Weights and caps of every factor.
    pub factors: Factors,
    /// Band thresholds.
    pub bands: Bands,
    /// How long snapshots are kept.
    pub history: History,
}

/// The factors of a score.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Factors {
    /// Active incidents by severity.
    pub open_incidents: PerSeverityFactor,
    /// Recurring signatures.
    pub recurrence: RecurrenceFactor,
    /// Overdue follow-ups by priority.
    pub overdue_followups: PerSeverityFactor,
    /// Error-budget burn from the observability room.
    pub slo_burn: SloFactor,
    /// Failed release checks (no room in this build).
    pub failed_release_checks: EachFactor,
    /// Alert volume (no room in this build).
    pub alert_volume: AlertFactor,
}

/// Points per P0..P3, and the factor's cap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerSeverityFactor {
    /// Points per severity (or follow-up priority).
    pub points: PerSeverity,
    /// Most points the factor adds.
    pub max: u32,
}

/// One number per severity.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub struct PerSeverity {
    /// Points for P0.
    pub P0: u32,
    /// Points for P1.
    pub P1: u32,
    /// Points for P2.
    pub P2: u32,
    /// Points for P3.
    pub P3: u32,
}

impl PerSeverity {
    /// The points for `s`.
    pub fn of(&self, s: Severity) -> u32 {
        match s {
            Severity::P0 => self.P0,
            Severity::P1 => self.P1,
            Severity::P2 => self.P2,
            Severity::P3 => self.P3,
        }
    }
}

/// `factors.recurrence`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceFactor {
    /// Incidents created this many days back are grouped by signature.
    pub window_days: u32,
    /// A signature seen this often recurs.
    pub min_count: u32,
    /// Points for every occurrence after the first of a recurring signature.
    pub points_per_repeat: u32,
    /// Most points the factor adds.
    pub max: u32,
}

/// `factors.slo_burn`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloFactor {
    /// The env whose Prometheus source is asked.
    pub env: String,
    /// Points when p95 latency is over its target.
    pub slow: u32,
    /// Points when the burn rate is at least 1.
    pub burning: u32,
    /// Points when the burn rate is at least 6.
    pub fast_burn: u32,
    /// Most points the factor adds.
    pub max: u32,
}

/// `factors.failed_release_checks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EachFactor {
    /// Points per failed check.
    pub points_each: u32,
    /// Most points the factor adds.
    pub max: u32,
}

/// `factors.alert_volume`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertFactor {
    /// Points per firing alert.
    pub points_per_alert: u32,
    /// Most points the factor adds.
    pub max: u32,
}

/// `bands`: lowest score of each band above `low`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bands {
    /// Lowest medium score.
    pub medium: u32,
    /// Lowest high score.
    pub high: u32,
    /// Lowest critical score.
    pub critical: u32,
}

impl Bands {
    /// The band of `score`.
    pub fn of(&self, score: u32) -> &'static str {
        if score >= self.critical {
            "critical"
        } else if score >= self.high {
            "high"
        } else if score >= self.medium {
            "medium"
        } else {
            "low"
        }
    }
}

/// `history`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Snapshots older than this many days are dropped.
    pub retention_days: u32,
}

/// `risk_attribution.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionPolicy {
    /// A change this recent is named.
    pub lookback_hours: u32,
    /// Timeline event types that are deploy-like changes.
    pub change_event_types: Vec<String>,
    /// An incident opened this long after a change is attributed to it.
    pub deploy_window_hours: u32,
}

/// `architecture_pressure.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressurePolicy {
    /// Recurring signatures.
    pub recurrence: PressureRecurrence,
    /// A rising score.
    pub trend: PressureTrend,
    /// A score that stays high.
    pub sustained: PressureSustained,
}

/// `architecture_pressure.yml` `recurrence`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureRecurrence {
    /// Days of incidents looked at.
    pub window_days: u32,
    /// A signature seen this often recurs.
    pub min_occurrences: u32,
    /// This many recurring signatures are pressure.
    pub min_signatures: u32,
}

/// `architecture_pressure.yml` `trend`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureTrend {
    /// Days of snapshots looked at.
    pub window_days: u32,
    /// A rise of this many points is pressure.
    pub rising_points: u32,
}

/// `architecture_pressure.yml` `sustained`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureSustained {
    /// The daily peak that counts as high.
    pub score: u32,
    /// On this many days ...
    pub days: u32,
    /// ... of the last this many days.
    pub last_days: u32,
}

/// The three policies of the risk room.
#[derive(Debug, Clone)]
pub struct RiskPolicies {
    /// `risk_policy.yml`.
    pub risk: RiskPolicy,
    /// `risk_attribution.yml`.
    pub attribution: AttributionPolicy,
    /// `architecture_pressure.yml`.
    pub pressure: PressurePolicy,
}

fn bad(file: &str, field: &str, why: &str) -> ConfigError {
    ConfigError(format!("{file}: {field}: {why}"))
}

impl RiskPolicies {
    /// Load the three files (or their defaults) from `config_dir` and check their values.
    pub fn load(config_dir: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        use crate::config::policy::load;
        let p = RiskPolicies {
            risk: load(config_dir, "risk_policy.yml", DEFAULT_RISK)?,
            attribution: load(config_dir, "risk_attribution.yml", DEFAULT_ATTRIBUTION)?,
            pressure: load(config_dir, "architecture_pressure.yml", DEFAULT_PRESSURE)?,
        };
        p.check()?;
        Ok(p)
    }

    /// Ranges the YAML types cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        let (f, r) = ("risk_policy.yml", &self.risk);
        let rec = &r.factors.recurrence;
        if !(1..=365).contains(&rec.window_days) {
            return Err(bad(f, "factors.recurrence.window_days", "must be 1-365"));
        }
        if rec.min_count < 2 {
            return Err(bad(f, "factors.recurrence.min_count", "must be at least 2"));
        }
        crate::kernel::text::check_token("env", &r.factors.slo_burn.env, 32)
            .map_err(|_| bad(f, "factors.slo_burn.env", "must be an env name"))?;
        let maxes = [
            ("factors.open_incidents.max", r.factors.open_incidents.max),
            ("factors.recurrence.max", rec.max),
            (
                "factors.overdue_followups.max",
                r.factors.overdue_followups.max,
            ),
            ("factors.slo_burn.max", r.factors.slo_burn.max),
            (
                "factors.failed_release_checks.max",
                r.factors.failed_release_checks.max,
            ),
            ("factors.alert_volume.max", r.factors.alert_volume.max),
        ];
        if let Some((name, _)) = maxes.iter().find(|(_, m)| *m > 100) {
            return Err(bad(f, name, "must be at most 100"));
        }
        let b = r.bands;
        if !(0 < b.medium && b.medium < b.high && b.high < b.critical && b.critical <= 100) {
            return Err(bad(f, "bands", "need 0 < medium < high < critical <= 100"));
        }
        if !(1..=3650).contains(&r.history.retention_days) {
            return Err(bad(f, "history.retention_days", "must be 1-3650"));
        }
        let (f, a) = ("risk_attribution.yml", &self.attribution);
        if !(1..=24 * 90).contains(&a.lookback_hours) {
            return Err(bad(f, "lookback_hours", "must be 1-2160"));
        }
        if !(1..=24 * 30).contains(&a.deploy_window_hours) {
            return Err(bad(f, "deploy_window_hours", "must be 1-720"));
        }
        for t in &a.change_event_types {
            crate::kernel::text::check_token("type", t, 64).map_err(|_| {
                bad(
                    f,
                    "change_event_types",
                    &format!("'{t}' is not an event type"),
                )
            })?;
        }
        let (f, p) = ("architecture_pressure.yml", &self.pressure);
        if !(1..=365).contains(&p.recurrence.window_days) {
            return Err(bad(f, "recurrence.window_days", "must be 1-365"));
        }
        if p.recurrence.min_occurrences < 2 {
            return Err(bad(f, "recurrence.min_occurrences", "must be at least 2"));
        }
        if p.recurrence.min_signatures < 1 {
            return Err(bad(f, "recurrence.min_signatures", "must be at least 1"));
        }
        if !(1..=365).contains(&p.trend.window_days) {
            return Err(bad(f, "trend.window_days", "must be 1-365"));
        }
        if !(1..=100).contains(&p.trend.rising_points) {
            return Err(bad(f, "trend.rising_points", "must be 1-100"));
        }
        let s = p.sustained;
        if s.score > 100 {
            return Err(bad(f, "sustained.score", "must be at most 100"));
        }
        if !(1..=365).contains(&s.last_days) || s.days < 1 || s.days > s.last_days {
            return Err(bad(f, "sustained", "need 1 <= days <= last_days <= 365"));
        }
        Ok(())
    }

    /// How many days of incidents any part of the room looks at.
    pub fn incident_window_days(&self) -> u32 {
        let lookback_days = self.attribution.lookback_hours.div_ceil(24);
        self.risk
            .factors
            .recurrence
            .window_days
            .max(self.pressure.recurrence.window_days)
            .max(lookback_days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_load_and_unknown_keys_name_file_and_field() {
        let p = RiskPolicies::load(None).unwrap();
        assert_eq!(p.risk.factors.open_incidents.points.of(Severity::P1), 25);
        assert_eq!(p.risk.bands.of(49), "medium");
        assert_eq!(p.risk.bands.of(50), "high");
        assert_eq!(p.risk.bands.of(24), "low");
        assert_eq!(p.risk.bands.of(100), "critical");
        assert_eq!(p.incident_window_days(), 30);

        let dir = tempfile::tempdir().unwrap();
        let extra = DEFAULT_RISK.replace("  medium: 25\n", "  medium: 25\n  severe: 90\n");
        std::fs::write(dir.path().join("risk_policy.yml"), extra).unwrap();
        let e = RiskPolicies::load(Some(dir.path())).unwrap_err().0;
        assert!(e.contains("risk_policy.yml") && e.contains("severe"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let swapped = DEFAULT_RISK.replace("  high: 50\n", "  high: 80\n");
        std::fs::write(dir.path().join("risk_policy.yml"), swapped).unwrap();
        let e = RiskPolicies::load(Some(dir.path())).unwrap_err().0;
        assert_eq!(
            e,
            "risk_policy.yml: bands: need 0 < medium < high < critical <= 100"
        );

        let dir = tempfile::tempdir().unwrap();
        let days = DEFAULT_PRESSURE.replace("  days: 3 ", "  days: 9 ");
        std::fs::write(dir.path().join("architecture_pressure.yml"), days).unwrap();
        let e = RiskPolicies::load(Some(dir.path())).unwrap_err().0;
        assert!(e.starts_with("architecture_pressure.yml: sustained"), "{e}");
    }
}
