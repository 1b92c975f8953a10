//! `backlog.yml`: the generation rules, owners and priorities.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::config::ConfigError;
use crate::incidents::model::Severity;

/// The built-in `backlog.yml`.
pub const DEFAULT_BACKLOG: &str = include_str!("../../config/backlog.yml");

/// `backlog.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BacklogPolicy {
    /// Owner of an item when nothing more specific is known.
    pub default_owner: String,
    /// Service → owner.
    #[serde(default)]
    pub service_owners: BTreeMap<String, String>,
    /// The rules.
    pub rules: Rules,
}

/// `rules`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Overdue follow-ups.
    pub overdue_followup: FollowupRule,
    /// Recurring signatures.
    pub recurrence: RecurrenceRule,
    /// High risk scores.
    pub high_risk: RiskRule,
    /// Architecture pressure.
    pub pressure: PressureRule,
}

/// `rules.overdue_followup`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FollowupRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// `P0`-`P3`, or `followup` for the follow-up's own priority.
    pub priority: String,
}

/// `rules.recurrence`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrenceRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Days of incidents looked at.
    pub window_days: u32,
    /// A signature seen this often becomes an item.
    pub min_occurrences: u32,
    /// The item's priority.
    pub priority: Severity,
}

/// `rules.high_risk`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// Lowest score that becomes an item.
    pub min_score: u32,
    /// Priority by band.
    pub priority: BandPriority,
}

/// Priority per risk band.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandPriority {
    /// For `critical`.
    pub critical: Severity,
    /// For `high`.
    pub high: Severity,
    /// For `medium`.
    pub medium: Severity,
    /// For `low`.
    pub low: Severity,
}

impl BandPriority {
    /// The priority of `band` (None for a word that is not a band).
    pub fn of(&self, band: &str) -> Option<Severity> {
        match band {
            "critical" => Some(self.critical),
            "high" => Some(self.high),
            "medium" => Some(self.medium),
            "low" => Some(self.low),
            _ => None,
        }
    }
}

/// `rules.pressure`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureRule {
    /// Whether the rule runs.
    pub enabled: bool,
    /// The item's priority.
    pub priority: Severity,
}

impl BacklogPolicy {
    /// Load `backlog.yml` (or the default) and check its values.
    pub fn load(config_dir: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let p: BacklogPolicy =
            crate::config::policy::load(config_dir, "backlog.yml", DEFAULT_BACKLOG)?;
        p.check()?;
        Ok(p)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |field: &str, why: &str| ConfigError(format!("backlog.yml: {field}: {why}"));
        let owner_ok = |o: &str| !o.trim().is_empty() && o.chars().count() <= 128;
        if !owner_ok(&self.default_owner) {
            return Err(bad("default_owner", "must be 1-128 characters"));
        }
        if let Some((s, _)) = self.service_owners.iter().find(|(_, o)| !owner_ok(o)) {
            return Err(bad(
                &format!("service_owners.{s}"),
                "must be 1-128 characters",
            ));
        }
        let p = &self.rules.overdue_followup.priority;
        if p != "followup" && Severity::parse(p).is_none() {
            return Err(bad(
                "rules.overdue_followup.priority",
                "must be P0-P3 or followup",
            ));
        }
        let r = &self.rules.recurrence;
        if !(1..=365).contains(&r.window_days) {
            return Err(bad("rules.recurrence.window_days", "must be 1-365"));
        }
        if r.min_occurrences < 2 {
            return Err(bad(
                "rules.recurrence.min_occurrences",
                "must be at least 2",
            ));
        }
        if self.rules.high_risk.min_score > 100 {
            return Err(bad("rules.high_risk.min_score", "must be at most 100"));
        }
        Ok(())
    }

    /// The owner of a new item of `service` (a follow-up's own owner comes first).
    pub fn owner_of(&self, service: &str, own: Option<&str>) -> String {
        own.filter(|o| !o.trim().is_empty())
            .map(str::to_string)
            .or_else(|| self.service_owners.get(service).cloned())
            .unwrap_or_else(|| self.default_owner.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_bad_values_name_the_field() {
        let p = BacklogPolicy::load(None).unwrap();
        assert_eq!(p.rules.high_risk.priority.of("high"), Some(Severity::P1));
        assert_eq!(p.owner_of("router", None), "platform");
        assert_eq!(p.owner_of("router", Some("ana")), "ana");
        let dir = tempfile::tempdir().unwrap();
        let bad = DEFAULT_BACKLOG.replace("priority: followup", "priority: soon");
        std::fs::write(dir.path().join("backlog.yml"), bad).unwrap();
        assert_eq!(
            BacklogPolicy::load(Some(dir.path())).unwrap_err().0,
            "backlog.yml: rules.overdue_followup.priority: must be P0-P3 or followup"
        );
        let extra = DEFAULT_BACKLOG.replace(
            "    enabled: true\n    priority: P1\n",
            "    enabled: true\n    priority: P1\n    weekly: true\n",
        );
        std::fs::write(dir.path().join("backlog.yml"), extra).unwrap();
        let e = BacklogPolicy::load(Some(dir.path())).unwrap_err().0;
        assert!(e.contains("backlog.yml") && e.contains("weekly"), "{e}");
    }
}
