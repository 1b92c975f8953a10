//! `alert_routing.yml`: which service, env and severity an alert gets, whether it opens an
//! incident, the maintenance windows that suppress alerts, and the triage policy.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::OffsetDateTime;

use super::model::{Labels, Matcher};
use crate::config::ConfigError;
use crate::incidents::model::Severity;

/// The built-in `alert_routing.yml`.
pub const DEFAULT_ROUTING: &str = include_str!("../../config/alert_routing.yml");

const FILE: &str = "alert_routing.yml";

/// `alert_routing.yml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// What every alert gets unless a route says otherwise.
    pub defaults: Defaults,
    /// Alert severity (lowercase) → incident severity.
    pub severity_map: BTreeMap<String, Severity>,
    /// For severities not in the map.
    pub default_severity: Severity,
    /// Checked in order; the first that matches wins.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Time ranges in which matching alerts are suppressed.
    #[serde(default)]
    pub maintenance_windows: Vec<Window>,
    /// The triage policy.
    pub triage: TriagePolicy,
}

/// `defaults`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Label holding the service.
    pub service_label: String,
    /// Service when that label is absent.
    pub service: String,
    /// Label holding the env.
    pub env_label: String,
    /// Env when that label is absent.
    pub env: String,
    /// Label holding the alert's severity.
    pub severity_label: String,
    /// Whether a firing alert opens an incident.
    pub open_incident: bool,
}

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Fixed service.
    pub service: Option<String>,
    /// Label to take the service from.
    pub service_label: Option<String>,
    /// Fixed env.
    pub env: Option<String>,
    /// Fixed severity (over the map).
    pub severity: Option<Severity>,
    /// Whether it opens an incident.
    pub open_incident: Option<bool>,
}

/// A maintenance window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Its name (shown as `maintenance:<name>`).
    pub name: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Start (RFC 3339).
    pub starts_at: String,
    /// End, exclusive (RFC 3339).
    pub ends_at: String,
    #[serde(skip)]
    range: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl Window {
    /// Whether it holds back `labels` at `t`.
    pub fn suppresses(&self, labels: &Labels, t: OffsetDateTime) -> bool {
        self.range.is_some_and(|(a, b)| a <= t && t < b)
            && self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// What happens to an incident when all its alerts resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnResolved {
    /// Only the resolved event.
    None,
    /// The event, and the incident moves to mitigated.
    Mitigate,
}

/// `triage`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriagePolicy {
    /// A re-fire this soon after resolving is a flap of the same incident.
    pub flap_window_minutes: u32,
    /// What happens when all alerts of an incident resolve.
    pub on_all_resolved: OnResolved,
}

/// Where an alert is routed.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// Service (a valid token).
    pub service: String,
    /// Env (a valid token, lowercase).
    pub env: String,
    /// Severity.
    pub severity: Severity,
    /// Whether it may open an incident.
    pub open_incident: bool,
    /// Index of the route that matched.
    pub route: Option<usize>,
}

/// A label value as a service or env name: letters, digits and `._:-/` (others become `-`),
/// at most `max` bytes; empty becomes `fallback`.
fn token(v: &str, max: usize, fallback: &str) -> String {
    let t: String = v
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-' | '/') {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    if t.is_empty() {
        fallback.to_string()
    } else {
        t
    }
}

impl Routing {
    /// Load `alert_routing.yml` (or the default) and check it.
    pub fn load(config_dir: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let mut r: Routing = crate::config::policy::load(config_dir, FILE, DEFAULT_ROUTING)?;
        r.check()?;
        Ok(r)
    }

    fn check(&mut self) -> Result<(), ConfigError> {
        let bad = |field: &str, why: &str| ConfigError(format!("{FILE}: {field}: {why}"));
        let d = &self.defaults;
        for (f, v) in [
            ("defaults.service_label", &d.service_label),
            ("defaults.env_label", &d.env_label),
            ("defaults.severity_label", &d.severity_label),
        ] {
            if v.is_empty() || v.len() > 128 {
                return Err(bad(f, "must be a label name"));
            }
        }
        if crate::kernel::text::check_token("service", &d.service, 64).is_err() {
            return Err(bad("defaults.service", "must be a service name"));
        }
        if crate::kernel::text::check_token("env", &d.env, 32).is_err() {
            return Err(bad("defaults.env", "must be an env name"));
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.matchers.is_empty() {
                return Err(bad(&format!("routes[{i}].matchers"), "must not be empty"));
            }
            if let Some(s) = &r.service {
                if crate::kernel::text::check_token("service", s, 64).is_err() {
                    return Err(bad(
                        &format!("routes[{i}].service"),
                        "must be a service name",
                    ));
                }
            }
            if let Some(e) = &r.env {
                if crate::kernel::text::check_token("env", e, 32).is_err() {
                    return Err(bad(&format!("routes[{i}].env"), "must be an env name"));
                }
            }
        }
        for (i, w) in self.maintenance_windows.iter_mut().enumerate() {
            let at = format!("maintenance_windows[{i}]");
            let a = crate::kernel::clock::parse_ts(&w.starts_at)
                .ok_or_else(|| bad(&format!("{at}.starts_at"), "must be an RFC 3339 time"))?;
            let b = crate::kernel::clock::parse_ts(&w.ends_at)
                .ok_or_else(|| bad(&format!("{at}.ends_at"), "must be an RFC 3339 time"))?;
            if b <= a {
                return Err(bad(&format!("{at}.ends_at"), "must be after starts_at"));
            }
            if w.matchers.is_empty() {
                return Err(bad(&format!("{at}.matchers"), "must not be empty"));
            }
            if w.name.trim().is_empty() || w.name.len() > 64 {
                return Err(bad(&format!("{at}.name"), "must be 1-64 characters"));
            }
            w.range = Some((a, b));
        }
        // Alert severities are compared without regard to case.
        self.severity_map = std::mem::take(&mut self.severity_map)
            .into_iter()
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v))
            .collect();
        if !(1..=1440).contains(&self.triage.flap_window_minutes) {
            return Err(bad("triage.flap_window_minutes", "must be 1-1440"));
        }
        Ok(())
    }

    /// Route `labels`; `given` are a generic alert's own service and severity.
    pub fn route(&self, labels: &Labels, given: (Option<&str>, Option<&str>)) -> Routed {
        let hit = self
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matchers.iter().all(|m| m.matches(labels)));
        let d = &self.defaults;
        let label = |name: &str| {
            labels
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let route = hit.map(|(_, r)| r);
        let service = match (route.and_then(|r| r.service.clone()), given.0) {
            (Some(s), _) => s,
            (None, Some(g)) => token(g, 64, &d.service),
            (None, None) => {
                let name = route
                    .and_then(|r| r.service_label.as_deref())
                    .unwrap_or(&d.service_label);
                token(label(name).unwrap_or(""), 64, &d.service)
            }
        };
        let env = match route.and_then(|r| r.env.clone()) {
            Some(e) => e,
            None => token(label(&d.env_label).unwrap_or(""), 32, &d.env),
        }
        .to_ascii_lowercase();
        let raw_sev = given
            .1
            .or_else(|| label(&d.severity_label))
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let severity = route.and_then(|r| r.severity).unwrap_or_else(|| {
            self.severity_map
                .get(&raw_sev)
                .copied()
                .or_else(|| given.1.and_then(Severity::parse))
                .unwrap_or(self.default_severity)
        });
        Routed {
            service,
            env,
            severity,
            open_incident: route
                .and_then(|r| r.open_incident)
                .unwrap_or(d.open_incident),
            route: hit.map(|(i, _)| i),
        }
    }

    /// The maintenance window holding back `labels` at `t`, if any.
    pub fn window(&self, labels: &Labels, t: OffsetDateTime) -> Option<&Window> {
        self.maintenance_windows
            .iter()
            .find(|w| w.suppresses(labels, t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn shipped_defaults_route_by_labels_and_the_first_matching_route() {
        let r = Routing::load(None).unwrap();
        let got = r.route(
            &labels(&[
                ("alertname", "HighLatency"),
                ("service", "gateway"),
                ("severity", "critical"),
            ]),
            (None, None),
        );
        assert_eq!(
            got,
            Routed {
                service: "gateway".into(),
                env: "prod".into(),
                severity: Severity::P1,
                open_incident: true,
                route: None
            }
        );
        let wd = r.route(&labels(&[("alertname", "Watchdog")]), (None, None));
        assert!(!wd.open_incident);
        assert_eq!(wd.route, Some(0));
        assert_eq!(wd.service, "unknown");
        assert_eq!(wd.severity, Severity::P3);
        // Anchored: WatchdogX is not the heartbeat.
        assert!(
            r.route(&labels(&[("alertname", "WatchdogX")]), (None, None))
                .open_incident
        );
        let page = r.route(
            &labels(&[("severity", "page"), ("env", "Staging")]),
            (None, None),
        );
        assert_eq!(
            (page.severity, page.env.as_str()),
            (Severity::P0, "staging")
        );
        // A generic alert's own service and severity (P-form or mapped).
        let g = r.route(&labels(&[]), (Some("api svc"), Some("warning")));
        assert_eq!((g.service.as_str(), g.severity), ("api-svc", Severity::P2));
        let g = r.route(&labels(&[]), (Some("api"), Some("P0")));
        assert_eq!(g.severity, Severity::P0);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join(FILE), text).unwrap();
        write(&DEFAULT_ROUTING.replace(
            "  open_incident: true\n",
            "  open_incident: true\n  pager: x\n",
        ));
        let e = Routing::load(Some(dir.path())).unwrap_err().0;
        assert!(e.contains(FILE) && e.contains("pager"), "{e}");
        write(&DEFAULT_ROUTING.replace(
            "'alertname=~\"Watchdog|InfoInhibitor\"'",
            "'alertname=~\"(\"'",
        ));
        let e = Routing::load(Some(dir.path())).unwrap_err().0;
        assert!(e.contains(FILE) && e.contains("bad regex"), "{e}");
        write(&DEFAULT_ROUTING.replace(
            "maintenance_windows: []",
            "maintenance_windows:\n  - name: db\n    matchers: ['service=\"db\"']\n    starts_at: 2026-03-01T10:00:00Z\n    ends_at: 2026-03-01T09:00:00Z",
        ));
        let e = Routing::load(Some(dir.path())).unwrap_err().0;
        assert_eq!(
            e,
            "alert_routing.yml: maintenance_windows[0].ends_at: must be after starts_at"
        );
    }

    #[test]
    fn the_severity_map_and_service_label_are_configurable() {
        let dir = tempfile::tempdir().unwrap();
        let text = DEFAULT_ROUTING
            .replace("  critical: P1\n", "  Critical: P0\n")
            .replace(
                "routes:\n",
                "routes:\n  - matchers: ['team=\"payments\"']\n    service_label: app\n    env: staging\n",
            );
        std::fs::write(dir.path().join(FILE), text).unwrap();
        let r = Routing::load(Some(dir.path())).unwrap();
        let got = r.route(
            &labels(&[
                ("severity", "CRITICAL"),
                ("team", "payments"),
                ("app", "billing"),
                ("service", "x"),
            ]),
            (None, None),
        );
        assert_eq!(
            (
                got.service.as_str(),
                got.env.as_str(),
                got.severity,
                got.route
            ),
            ("billing", "staging", Severity::P0, Some(0))
        );
        // Unmapped severities get default_severity.
        let got = r.route(&labels(&[("severity", "fatal")]), (None, None));
        assert_eq!(got.severity, Severity::P3);
    }

    #[test]
    fn maintenance_windows_suppress_matching_alerts_inside_their_range() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE),
            DEFAULT_ROUTING.replace(
                "maintenance_windows: []",
                "maintenance_windows:\n  - name: db-upgrade\n    matchers: ['service=\"db\"', 'env!=\"dev\"']\n    starts_at: 2026-03-01T10:00:00Z\n    ends_at: 2026-03-01T12:00:00Z",
            ),
        )
        .unwrap();
        let r = Routing::load(Some(dir.path())).unwrap();
        let t = time::macros::datetime!(2026-03-01 11:00 UTC);
        let db = labels(&[("service", "db")]);
        assert_eq!(
            r.window(&db, t).map(|w| w.name.as_str()),
            Some("db-upgrade")
        );
        assert!(r
            .window(&db, time::macros::datetime!(2026-03-01 12:00 UTC))
            .is_none());
        assert!(r
            .window(&db, time::macros::datetime!(2026-03-01 09:59:59 UTC))
            .is_none());
        assert!(r
            .window(&labels(&[("service", "db"), ("env", "dev")]), t)
            .is_none());
        assert!(r.window(&labels(&[("service", "api")]), t).is_none());
    }
}
