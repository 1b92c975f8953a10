//! Architecture pressure: whether a service's recurrence and risk trend say "fix the design",
//! from `architecture_pressure.yml`. Pure: the caller passes the signatures, the current
//! score and the snapshot history.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::policy::PressurePolicy;

/// A signature and how often it was seen in the pressure window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Recurring {
    /// Signature key.
    pub signature: String,
    /// Incidents with it in the window.
    pub count: u32,
}

/// The verdict for one service.
#[derive(Debug, Clone, Serialize)]
pub struct Pressure {
    /// The service.
    pub service: String,
    /// Whether any signal fired.
    pub pressure: bool,
    /// One sentence per signal that fired.
    pub reasons: Vec<String>,
    /// Signatures at or over the threshold, most frequent first.
    pub recurring_signatures: Vec<Recurring>,
    /// Current score minus the oldest score of the trend window (null without one).
    pub trend_points: Option<i64>,
    /// Days of the sustained window whose peak reached the sustained score.
    pub high_days: u32,
    /// The score the verdict used (null when none is known).
    pub score: Option<u32>,
}

/// Judge one service at `as_of`: `signatures` are (key, count) over the recurrence window,
/// `current` its score at `as_of`, `history` its snapshots (time, score), any order.
pub fn assess(
    p: &PressurePolicy,
    service: &str,
    signatures: &[(String, u32)],
    current: Option<u32>,
    history: &[(OffsetDateTime, u32)],
    as_of: OffsetDateTime,
) -> Pressure {
    let mut reasons = Vec::new();
    let r = p.recurrence;
    let mut recurring: Vec<Recurring> = signatures
        .iter()
        .filter(|(_, n)| *n >= r.min_occurrences)
        .map(|(k, n)| Recurring {
            signature: k.clone(),
            count: *n,
        })
        .collect();
    recurring.sort_by(|a, b| b.count.cmp(&a.count).then(a.signature.cmp(&b.signature)));
    if recurring.len() as u32 >= r.min_signatures {
        let list: Vec<String> = recurring
            .iter()
            .map(|s| format!("'{}' x{}", s.signature, s.count))
            .collect();
        reasons.push(format!(
            "{} signature(s) recurred at least {} times in {} days: {}",
            recurring.len(),
            r.min_occurrences,
            r.window_days,
            list.join(", ")
        ));
    }

    let t = p.trend;
    let from = as_of - time::Duration::days(t.window_days as i64);
    let oldest = history
        .iter()
        .filter(|(at, _)| *at >= from && *at <= as_of)
        .min_by_key(|(at, _)| *at);
    let trend_points = match (oldest, current) {
        (Some((_, old)), Some(now)) => Some(now as i64 - *old as i64),
        _ => None,
    };
    if let (Some(d), Some((_, old)), Some(now)) = (trend_points, oldest, current) {
        if d >= t.rising_points as i64 {
            reasons.push(format!(
                "risk rose {d} points in {} days ({old} to {now})",
                t.window_days
            ));
        }
    }

    let s = p.sustained;
    let today = as_of.date();
    let first = today - time::Duration::days(s.last_days as i64 - 1);
    let mut peak: BTreeMap<time::Date, u32> = BTreeMap::new();
    let points = history
        .iter()
        .copied()
        .filter(|(at, _)| *at <= as_of)
        .chain(current.map(|c| (as_of, c)));
    for (at, score) in points {
        let d = at.date();
        if d >= first && d <= today {
            let e = peak.entry(d).or_insert(score);
            *e = (*e).max(score);
        }
    }
    let high_days = peak.values().filter(|v| **v >= s.score).count() as u32;
    if high_days >= s.days {
        reasons.push(format!(
            "risk peaked at {} or more on {high_days} of the last {} days",
            s.score, s.last_days
        ));
    }
    Pressure {
        service: service.to_string(),
        pressure: !reasons.is_empty(),
        reasons,
        recurring_signatures: recurring,
        trend_points,
        high_days,
        score: current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::policy::RiskPolicies;
    use time::macros::datetime;

    #[test]
    fn each_signal_fires_on_its_own_threshold() {
        let p = RiskPolicies::load(None).unwrap().pressure;
        let now = datetime!(2026-03-10 12:00 UTC);
        let d = |n: i64| now - time::Duration::days(n);
        // Nothing: two occurrences, a rise of 19, one high day.
        let calm = assess(
            &p,
            "a",
            &[("x".into(), 2)],
            Some(60),
            &[(d(6), 41), (d(8), 0)],
            now,
        );
        assert!(!calm.pressure, "{:?}", calm.reasons);
        assert_eq!(calm.trend_points, Some(19));
        assert_eq!(calm.high_days, 1);

        // Recurrence: 3 of "x" (and 1 of "y", below the threshold).
        let rec = assess(&p, "a", &[("x".into(), 3), ("y".into(), 1)], None, &[], now);
        assert_eq!(
            rec.reasons,
            ["1 signature(s) recurred at least 3 times in 30 days: 'x' x3"]
        );
        assert_eq!(rec.trend_points, None);

        // Trend: 40 six days ago, 60 now: +20.
        let up = assess(&p, "a", &[], Some(60), &[(d(6), 40), (d(2), 10)], now);
        assert_eq!(up.reasons, ["risk rose 20 points in 7 days (40 to 60)"]);

        // Sustained: peaks of 60+ on today, 2 and 6 days ago; 7 days ago is outside.
        let high = assess(
            &p,
            "a",
            &[],
            Some(65),
            &[
                (d(2), 70),
                (d(2) + time::Duration::hours(1), 10),
                (d(6), 60),
                (d(7), 90),
                (d(3), 59),
            ],
            now,
        );
        assert_eq!(high.high_days, 3);
        assert!(high.pressure);
        assert_eq!(
            high.reasons.last().unwrap(),
            "risk peaked at 60 or more on 3 of the last 7 days"
        );
    }
}
