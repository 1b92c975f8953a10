//! The score itself, from facts already read: per-factor points with their items, caps, the
//! band, and the attribution of every point to a recent change or to a standing factor. Pure
//! functions of their inputs (no store, no clock), so the arithmetic is tested by hand.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::policy::RiskPolicies;
use crate::incidents::model::Severity;
use crate::kernel::clock::serde_ts;

/// The highest score.
pub const MAX_SCORE: u32 = 100;

/// An incident as the score sees it.
#[derive(Debug, Clone)]
pub struct IncidentFact {
    /// Incident id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its severity.
    pub severity: Severity,
    /// When it was recorded.
    pub created_at: OffsetDateTime,
    /// When its impact started.
    pub started_at: OffsetDateTime,
    /// Its signature key (intel's alert name or normalised title).
    pub signature: String,
}

/// An open follow-up past its due date.
#[derive(Debug, Clone)]
pub struct FollowupFact {
    /// The incident it belongs to.
    pub incident_id: String,
    /// The follow-up event's id.
    pub event_id: String,
    /// Its title.
    pub title: String,
    /// Its priority.
    pub priority: Severity,
    /// When it was due.
    pub due: OffsetDateTime,
}

/// A deploy-like timeline event of the service.
#[derive(Debug, Clone)]
pub struct ChangeFact {
    /// The event's id.
    pub event_id: String,
    /// The incident whose timeline holds it.
    pub incident_id: String,
    /// Its type (`deploy`, `release`, …).
    pub kind: String,
    /// When it happened.
    pub ts: OffsetDateTime,
    /// Its message.
    pub message: String,
}

/// What the observability room said of the service's objectives.
#[derive(Debug, Clone)]
pub enum SloFact {
    /// No answer, and why (no source configured, unreachable, no series).
    Unavailable(String),
    /// `slo_status`'s status (`ok`, `slow`, `burning`, `fast_burn`) and burn rate.
    Status {
        /// The status word.
        status: String,
        /// The burn rate when known.
        burn_rate: Option<f64>,
    },
}

/// Everything the score of one service is computed from.
#[derive(Debug, Clone)]
pub struct ServiceFacts {
    /// The service.
    pub service: String,
    /// Its active (open, acknowledged, mitigated) incidents.
    pub active: Vec<IncidentFact>,
    /// Its incidents created in the room's incident window, whatever their status.
    pub recent: Vec<IncidentFact>,
    /// Its open follow-ups past due.
    pub overdue: Vec<FollowupFact>,
    /// Its deploy-like events in the attribution lookback.
    pub changes: Vec<ChangeFact>,
    /// Its objectives.
    pub slo: SloFact,
}

/// One thing that added points to a factor.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// `incident`, `signature`, `followup` or `slo`.
    pub kind: &'static str,
    /// Incident id, signature key, follow-up event id, or the SLO status.
    pub id: String,
    /// Points after the caps.
    pub points: u32,
    /// Points before the caps.
    pub uncapped: u32,
    /// What it is, for a reader.
    pub detail: String,
    /// The incident it stands for (attribution), not shown.
    #[serde(skip)]
    pub incident: Option<usize>,
}

/// One factor of a score.
#[derive(Debug, Clone, Serialize)]
pub struct Factor {
    /// Factor name.
    pub factor: &'static str,
    /// False when this build or this install has no data for it.
    pub available: bool,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Points it adds (null when unavailable: never a silent 0).
    pub points: Option<u32>,
    /// Its cap.
    pub max: u32,
    /// What was found, in words.
    pub detail: String,
    /// What added its points.
    pub items: Vec<Item>,
}

/// One contributor of the attribution: a recent change or a standing factor.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Contributor {
    /// `change` (a deploy-like event), `incident_opened` or `factor`.
    pub kind: &'static str,
    /// The event id, incident id or factor name.
    pub id: String,
    /// What it is.
    pub detail: String,
    /// When the change happened.
    #[serde(with = "serde_ts::option", skip_serializing_if = "Option::is_none")]
    pub at: Option<OffsetDateTime>,
    /// Points it accounts for.
    pub points: u32,
    /// Of which, per factor.
    pub factors: BTreeMap<&'static str, u32>,
}

/// A factor's share of the score.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FactorPoints {
    /// Factor name.
    pub factor: &'static str,
    /// Its points.
    pub points: u32,
}

/// `risk_attribution`: who the points belong to. Both lists add up to the score.
#[derive(Debug, Clone, Serialize)]
pub struct Attribution {
    /// How far back a change is named.
    pub lookback_hours: u32,
    /// Factors with points, most first.
    pub by_factor: Vec<FactorPoints>,
    /// Changes and standing factors with points, most first.
    pub contributors: Vec<Contributor>,
    /// Deploy-like changes in the lookback that no points were attributed to.
    pub other_changes: Vec<Contributor>,
}

/// The risk of one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRisk {
    /// The service.
    pub service: String,
    /// When it was computed.
    #[serde(with = "serde_ts")]
    pub computed_at: OffsetDateTime,
    /// 0-100.
    pub score: u32,
    /// `low`, `medium`, `high` or `critical`.
    pub band: &'static str,
    /// Every factor, available or not.
    pub factors: Vec<Factor>,
    /// Where the points come from.
    pub risk_attribution: Attribution,
}

fn unavailable(factor: &'static str, max: u32, reason: &str) -> Factor {
    Factor {
        factor,
        available: false,
        reason: Some(reason.to_string()),
        points: None,
        max,
        detail: "no data".into(),
        items: vec![],
    }
}

/// Items sorted most points first (ties by id), their points capped at `cap` in that order.
fn capped(mut items: Vec<Item>, cap: u32) -> (Vec<Item>, u32) {
    items.sort_by(|a, b| b.uncapped.cmp(&a.uncapped).then(a.id.cmp(&b.id)));
    let mut left = cap;
    for i in &mut items {
        i.points = i.uncapped.min(left);
        left -= i.points;
    }
    (items, cap - left)
}

fn available(factor: &'static str, max: u32, detail: String, items: Vec<Item>) -> Factor {
    let (items, points) = capped(items, max);
    Factor {
        factor,
        available: true,
        reason: None,
        points: Some(points),
        max,
        detail,
        items,
    }
}

/// Score `f` at `now` under `p`.
pub fn score(p: &RiskPolicies, f: &ServiceFacts, now: OffsetDateTime) -> ServiceRisk {
    let w = &p.risk.factors;
    // Active and recent incidents in one list, so items can point at the incident they stand
    // for.
    let incidents: Vec<&IncidentFact> = f.active.iter().chain(f.recent.iter()).collect();
    let mut factors = Vec::new();

    let open: Vec<Item> = f
        .active
        .iter()
        .enumerate()
        .map(|(i, inc)| Item {
            kind: "incident",
            id: inc.id.clone(),
            points: 0,
            uncapped: w.open_incidents.points.of(inc.severity),
            detail: format!("{} active: {}", inc.severity.as_str(), inc.title),
            incident: Some(i),
        })
        .collect();
    let detail = match open.len() {
        0 => "no active incidents".to_string(),
        n => format!("{n} active incident(s)"),
    };
    factors.push(available(
        "open_incidents",
        w.open_incidents.max,
        detail,
        open,
    ));

    let rw = &w.recurrence;
    let since = now - time::Duration::days(rw.window_days as i64);
    // signature -> (count, index of its latest incident)
    let mut sigs: BTreeMap<&str, (u32, usize)> = BTreeMap::new();
    for (i, inc) in f.recent.iter().enumerate() {
        if inc.created_at < since || inc.created_at > now {
            continue;
        }
        let e = sigs.entry(inc.signature.as_str()).or_insert((0, i));
        e.0 += 1;
        if inc.created_at >= f.recent[e.1].created_at {
            e.1 = i;
        }
    }
    let rec: Vec<Item> = sigs
        .iter()
        .filter(|(_, (n, _))| *n >= rw.min_count)
        .map(|(key, (n, latest))| Item {
            kind: "signature",
            id: key.to_string(),
            points: 0,
            uncapped: (n - 1) * rw.points_per_repeat,
            detail: format!("{n} incidents in {} days", rw.window_days),
            incident: Some(f.active.len() + latest),
        })
        .collect();
    let detail = match rec.len() {
        0 => format!(
            "no signature seen {} times in {} days",
            rw.min_count, rw.window_days
        ),
        n => format!("{n} recurring signature(s) in {} days", rw.window_days),
    };
    factors.push(available("recurrence", rw.max, detail, rec));

    let over: Vec<Item> = f
        .overdue
        .iter()
        .map(|fu| Item {
            kind: "followup",
            id: fu.event_id.clone(),
            points: 0,
            uncapped: w.overdue_followups.points.of(fu.priority),
            detail: format!(
                "{} follow-up of {} due {}: {}",
                fu.priority.as_str(),
                fu.incident_id,
                crate::kernel::clock::rfc3339(fu.due),
                fu.title
            ),
            incident: None,
        })
        .collect();
    let detail = match over.len() {
        0 => "no overdue follow-ups".to_string(),
        n => format!("{n} overdue follow-up(s)"),
    };
    factors.push(available(
        "overdue_followups",
        w.overdue_followups.max,
        detail,
        over,
    ));

    let s = &w.slo_burn;
    factors.push(match &f.slo {
        SloFact::Unavailable(why) => unavailable("slo_burn", s.max, why),
        SloFact::Status { status, burn_rate } => {
            let pts = match status.as_str() {
                "fast_burn" => s.fast_burn,
                "burning" => s.burning,
                "slow" => s.slow,
                _ => 0,
            };
            let burn = burn_rate.map_or("unknown".to_string(), |b| format!("{b}"));
            let detail = format!("{status} in {} (burn rate {burn})", s.env);
            let items = if pts > 0 {
                vec![Item {
                    kind: "slo",
                    id: status.clone(),
                    points: 0,
                    uncapped: pts,
                    detail: detail.clone(),
                    incident: None,
                }]
            } else {
                vec![]
            };
            available("slo_burn", s.max, detail, items)
        }
    });
    factors.push(unavailable(
        "failed_release_checks",
        w.failed_release_checks.max,
        "no release-check room in this build",
    ));
    factors.push(unavailable(
        "alert_volume",
        w.alert_volume.max,
        "no alert room in this build",
    ));

    // The total is capped at 100 in factor order: points past it are dropped from the later
    // factors' items, so every list still adds up to the score.
    let mut left = MAX_SCORE;
    for fac in factors.iter_mut().filter(|x| x.available) {
        for it in &mut fac.items {
            it.points = it.points.min(left);
            left -= it.points;
        }
        fac.points = Some(fac.items.iter().map(|i| i.points).sum());
    }
    let score = MAX_SCORE - left;
    let risk_attribution = attribute(p, f, &incidents, &factors, now);
    ServiceRisk {
        service: f.service.clone(),
        computed_at: now,
        score,
        band: p.risk.bands.of(score),
        factors,
        risk_attribution,
    }
}

/// Give every point of `factors` to the recent change behind it, or to its factor.
fn attribute(
    p: &RiskPolicies,
    f: &ServiceFacts,
    incidents: &[&IncidentFact],
    factors: &[Factor],
    now: OffsetDateTime,
) -> Attribution {
    let a = &p.attribution;
    let lookback = now - time::Duration::hours(a.lookback_hours as i64);
    let window = time::Duration::hours(a.deploy_window_hours as i64);
    // (kind order, id) -> contributor
    let mut by: BTreeMap<(u8, String), Contributor> = BTreeMap::new();
    let mut by_factor = Vec::new();
    for fac in factors {
        let pts = fac.points.unwrap_or(0);
        if pts > 0 {
            by_factor.push(FactorPoints {
                factor: fac.factor,
                points: pts,
            });
        }
        for it in fac.items.iter().filter(|i| i.points > 0) {
            let recent = it
                .incident
                .and_then(|i| incidents.get(i))
                .filter(|inc| inc.created_at >= lookback);
            let (rank, c) = match recent {
                Some(inc) => {
                    // The latest deploy-like change before its impact started, within the
                    // window.
                    let change = f
                        .changes
                        .iter()
                        .filter(|c| {
                            c.ts >= lookback
                                && c.ts <= inc.started_at
                                && inc.started_at - c.ts <= window
                        })
                        .max_by(|x, y| x.ts.cmp(&y.ts).then(y.event_id.cmp(&x.event_id)));
                    match change {
                        Some(c) => (0, change_contributor(c)),
                        None => (
                            1,
                            Contributor {
                                kind: "incident_opened",
                                id: inc.id.clone(),
                                detail: format!("{} opened: {}", inc.severity.as_str(), inc.title),
                                at: Some(inc.created_at),
                                points: 0,
                                factors: BTreeMap::new(),
                            },
                        ),
                    }
                }
                None => (
                    2,
                    Contributor {
                        kind: "factor",
                        id: fac.factor.to_string(),
                        detail: format!("{} without a recent change", fac.factor.replace('_', " ")),
                        at: None,
                        points: 0,
                        factors: BTreeMap::new(),
                    },
                ),
            };
            let e = by.entry((rank, c.id.clone())).or_insert(c);
            e.points += it.points;
            *e.factors.entry(fac.factor).or_default() += it.points;
        }
    }
    by_factor.sort_by_key(|x| std::cmp::Reverse(x.points));
    let mut ranked: Vec<((u8, String), Contributor)> = by.into_iter().collect();
    ranked.sort_by(|(ka, a), (kb, b)| b.points.cmp(&a.points).then(ka.cmp(kb)));
    let contributors: Vec<Contributor> = ranked.into_iter().map(|(_, c)| c).collect();
    let mut other_changes: Vec<Contributor> = f
        .changes
        .iter()
        .filter(|c| c.ts >= lookback && !contributors.iter().any(|x| x.id == c.event_id))
        .map(change_contributor)
        .collect();
    other_changes.sort_by_key(|x| std::cmp::Reverse(x.at));
    Attribution {
        lookback_hours: a.lookback_hours,
        by_factor,
        contributors,
        other_changes,
    }
}

fn change_contributor(c: &ChangeFact) -> Contributor {
    Contributor {
        kind: "change",
        id: c.event_id.clone(),
        detail: format!(
            "{} on {}: {}",
            c.kind,
            c.incident_id,
            crate::kernel::text::clip(&c.message, 120)
        ),
        at: Some(c.ts),
        points: 0,
        factors: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn inc(id: &str, sev: Severity, created: OffsetDateTime, sig: &str) -> IncidentFact {
        IncidentFact {
            id: id.into(),
            title: format!("title {id}"),
            severity: sev,
            created_at: created,
            started_at: created,
            signature: sig.into(),
        }
    }

    fn facts() -> ServiceFacts {
        let now = datetime!(2026-03-10 12:00 UTC);
        let h = |n: i64| now - time::Duration::hours(n);
        // a: P1 active, opened 2 h ago, 1 h after a deploy; b: P2 active, opened 10 days ago;
        // c, d: closed, same signature as a, 2 and 4 days ago.
        let a = inc("inc_a", Severity::P1, h(2), "router 5xx");
        let b = inc("inc_b", Severity::P2, h(240), "disk full");
        ServiceFacts {
            service: "router".into(),
            active: vec![a.clone(), b.clone()],
            recent: vec![
                a,
                b,
                inc("inc_c", Severity::P2, h(48), "router 5xx"),
                inc("inc_d", Severity::P3, h(96), "router 5xx"),
            ],
            overdue: vec![FollowupFact {
                incident_id: "inc_b".into(),
                event_id: "ev_f1".into(),
                title: "add disk alert".into(),
                priority: Severity::P1,
                due: h(24),
            }],
            changes: vec![
                ChangeFact {
                    event_id: "ev_dep".into(),
                    incident_id: "inc_a".into(),
                    kind: "deploy".into(),
                    ts: h(3),
                    message: "router v2.4".into(),
                },
                ChangeFact {
                    event_id: "ev_old".into(),
                    incident_id: "inc_b".into(),
                    kind: "deploy".into(),
                    ts: h(60),
                    message: "router v2.3".into(),
                },
            ],
            slo: SloFact::Unavailable("no metrics source is configured for env 'prod'".into()),
        }
    }

    #[test]
    fn factors_caps_band_and_attribution_add_up_by_hand() {
        let p = RiskPolicies::load(None).unwrap();
        let now = datetime!(2026-03-10 12:00 UTC);
        let r = score(&p, &facts(), now);
        // open: P1 25 + P2 10 = 35; recurrence: "router 5xx" 3 times -> (3-1)*5 = 10
        // ("disk full" is 10 days old, outside 7 days); overdue: P1 8. Total 53: high.
        let pts: Vec<(&str, Option<u32>)> =
            r.factors.iter().map(|f| (f.factor, f.points)).collect();
        assert_eq!(
            pts,
            [
                ("open_incidents", Some(35)),
                ("recurrence", Some(10)),
                ("overdue_followups", Some(8)),
                ("slo_burn", None),
                ("failed_release_checks", None),
                ("alert_volume", None),
            ]
        );
        assert_eq!((r.score, r.band), (53, "high"));
        let slo = &r.factors[3];
        assert!(!slo.available && slo.reason.as_deref().unwrap().contains("metrics source"));
        assert_eq!(
            r.factors[4].reason.as_deref(),
            Some("no release-check room in this build")
        );

        // The deploy 1 h before inc_a carries inc_a's 25 and its signature's 10; inc_b (10
        // days old) and the follow-up stand under their factors.
        let c: Vec<(&str, &str, u32)> = r
            .risk_attribution
            .contributors
            .iter()
            .map(|c| (c.kind, c.id.as_str(), c.points))
            .collect();
        assert_eq!(
            c,
            [
                ("change", "ev_dep", 35),
                ("factor", "open_incidents", 10),
                ("factor", "overdue_followups", 8),
            ]
        );
        assert_eq!(
            r.risk_attribution.contributors[0].factors,
            BTreeMap::from([("open_incidents", 25), ("recurrence", 10)])
        );
        let sum: u32 = r
            .risk_attribution
            .contributors
            .iter()
            .map(|c| c.points)
            .sum();
        assert_eq!(sum, r.score);
        let sum: u32 = r.risk_attribution.by_factor.iter().map(|c| c.points).sum();
        assert_eq!(sum, r.score);
        // The older deploy (60 h ago, inside the 72 h lookback) explains nothing.
        let other: Vec<&str> = r
            .risk_attribution
            .other_changes
            .iter()
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(other, ["ev_old"]);
    }

    #[test]
    fn without_a_deploy_the_incident_opening_is_the_change_and_caps_hold() {
        let p = RiskPolicies::load(None).unwrap();
        let now = datetime!(2026-03-10 12:00 UTC);
        let mut f = facts();
        f.changes.clear();
        // Three P0s: 120 points, capped at 60; with the rest the total stays <= 100.
        for i in 0..3 {
            f.active.push(inc(
                &format!("inc_p{i}"),
                Severity::P0,
                now - time::Duration::days(20),
                "db down",
            ));
        }
        f.slo = SloFact::Status {
            status: "fast_burn".into(),
            burn_rate: Some(7.5),
        };
        let r = score(&p, &f, now);
        let open = &r.factors[0];
        assert_eq!(open.points, Some(60));
        // P0s first: 40 + 20 (capped) + 0 + 0 (P1 and P2 past the cap)
        let items: Vec<u32> = open.items.iter().map(|i| i.points).collect();
        assert_eq!(items, [40, 20, 0, 0, 0]);
        // 60 + recurrence 10 + overdue 8 + slo 25 = 103 -> 100, the slo keeps 22.
        assert_eq!(r.score, 100);
        assert_eq!(r.band, "critical");
        assert_eq!(r.factors[3].points, Some(22));
        // inc_a (P1, 2 h old) got no points past the cap; its signature's 10 go to its opening.
        let opened = r
            .risk_attribution
            .contributors
            .iter()
            .find(|c| c.kind == "incident_opened")
            .unwrap();
        assert_eq!((opened.id.as_str(), opened.points), ("inc_a", 10));
        let sum: u32 = r
            .risk_attribution
            .contributors
            .iter()
            .map(|c| c.points)
            .sum();
        assert_eq!(sum, 100);
    }

    #[test]
    fn a_quiet_service_scores_zero_with_every_factor_saying_why() {
        let p = RiskPolicies::load(None).unwrap();
        let f = ServiceFacts {
            service: "calm".into(),
            active: vec![],
            recent: vec![],
            overdue: vec![],
            changes: vec![],
            slo: SloFact::Unavailable("no metrics source".into()),
        };
        let r = score(&p, &f, datetime!(2026-03-10 12:00 UTC));
        assert_eq!((r.score, r.band), (0, "low"));
        assert_eq!(r.factors[0].detail, "no active incidents");
        assert_eq!(r.factors[0].points, Some(0));
        assert!(r.risk_attribution.contributors.is_empty());
    }
}
