//! Service risk (SPEC §7): a 0-100 score per service from `risk_policy.yml` (active incidents
//! by severity, recurring signatures, overdue follow-ups, SLO burn; failed release checks and
//! alert volume are reported unavailable until their rooms exist), its band, and its
//! `risk_attribution` from `risk_attribution.yml` (every point given to a recent change or to
//! the factor it stands under). Snapshots are kept per service for `history.retention_days`;
//! the daily digest and the weekly platform digest (architecture pressure from
//! `architecture_pressure.yml`) are returned as JSON and markdown, for the caller to save.
//!
//! The facts are read from the incident log in one read transaction ([`Risk::facts`]); the
//! arithmetic lives in [`score`] and [`pressure`] as pure functions.

mod digest;
pub mod policy;
pub mod pressure;
pub mod score;
pub mod tables;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use redb::ReadableTable;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::incidents::model::{Event, Incident, Severity, Status};
use crate::incidents::tables::{
    from_json, is_open_followup, load_incident, parse_brief, EVENTS, EVENT_FEED, FOLLOWUP_DUE,
    INCIDENTS, INDEX, INDEX_COUNTS,
};
use crate::incidents::Incidents;
use crate::kernel::clock::{micros, rfc3339};
use crate::observability::Observability;
use policy::RiskPolicies;
use score::{ChangeFact, FollowupFact, IncidentFact, ServiceFacts, ServiceRisk, SloFact};
use tables::SNAPSHOTS;

/// Longest `top` list.
pub const MAX_TOP: usize = 200;
/// Days of `history` when the caller names none.
pub const DEFAULT_HISTORY_DAYS: u32 = 7;

/// The risk room.
#[derive(Clone)]
pub struct Risk {
    incidents: Incidents,
    observability: Observability,
    policies: Arc<RiskPolicies>,
}

/// A stored snapshot's time and score.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    /// When it was taken.
    pub at: OffsetDateTime,
    /// Its score.
    pub score: u32,
}

impl Risk {
    /// The room over the incident log and the observability sources.
    pub fn new(incidents: Incidents, observability: Observability, policies: RiskPolicies) -> Risk {
        Risk {
            incidents,
            observability,
            policies: Arc::new(policies),
        }
    }

    /// The loaded policies.
    pub fn policies(&self) -> &RiskPolicies {
        &self.policies
    }

    /// Facts of one service (or of every service the incident log knows), at `as_of`.
    /// Incidents are read up to `as_of`; SLO burn is asked only when `with_slo`.
    pub async fn facts(
        &self,
        only: Option<String>,
        as_of: OffsetDateTime,
        with_slo: bool,
        deadline: Option<Instant>,
    ) -> Result<Vec<ServiceFacts>> {
        if let Some(s) = &only {
            crate::kernel::text::check_token("service", s, 64)?;
        }
        let p = self.policies.clone();
        let mut facts = self
            .incidents
            .store()
            .read(move |txn| read_facts(txn, only.as_deref(), as_of, &p))
            .await?;
        let obs = self.observability.until(deadline);
        let env = self.policies.risk.factors.slo_burn.env.clone();
        let configured = obs.configured(&env)["metrics"] == true;
        // One failing source is asked once per call, not once per service: a Prometheus that
        // hangs must not make a snapshot of every service run past its time.
        let mut failed: Option<String> = None;
        for f in &mut facts {
            f.slo = if let Some(why) = &failed {
                SloFact::Unavailable(why.clone())
            } else if !with_slo {
                SloFact::Unavailable("not asked for a past time".into())
            } else if !configured {
                SloFact::Unavailable(format!(
                    "no metrics source is configured for env '{env}' (config/observability_sources.yml)"
                ))
            } else {
                match obs.slo_status(&env, &f.service, None).await {
                    Ok(v) if v["status"] == "no_data" => SloFact::Unavailable(format!(
                        "no SLO series for '{}' in env '{env}'",
                        f.service
                    )),
                    Ok(v) => SloFact::Status {
                        status: v["status"].as_str().unwrap_or("ok").to_string(),
                        burn_rate: v["burn_rate"].as_f64(),
                    },
                    Err(e) => {
                        let why = format!(
                            "slo_status failed: {}",
                            crate::kernel::text::clip(&e.to_string(), 200)
                        );
                        if e.is_transient() {
                            failed = Some(why.clone());
                        }
                        SloFact::Unavailable(why)
                    }
                }
            };
        }
        Ok(facts)
    }

    /// Scores computed now: of `only`, or of every service.
    pub async fn compute(
        &self,
        only: Option<String>,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<Vec<ServiceRisk>> {
        let facts = self.facts(only, now, true, deadline).await?;
        Ok(facts
            .iter()
            .map(|f| score::score(&self.policies, f, now))
            .collect())
    }

    /// `service_risk`: the score computed now and the service's last snapshot (or null).
    pub async fn service_risk(
        &self,
        service: String,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<Json> {
        let current = self
            .compute(Some(service.clone()), now, deadline)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no facts for the service".into()))?;
        let s = service.clone();
        let last = self
            .incidents
            .store()
            .read(move |txn| {
                let t = txn.open_table(SNAPSHOTS)?;
                let last = t
                    .range((s.as_str(), i64::MIN)..=(s.as_str(), i64::MAX))?
                    .next_back()
                    .transpose()?;
                match last {
                    Some((_, v)) => Ok(Some(from_json::<Json>(v.value())?)),
                    None => Ok(None),
                }
            })
            .await?;
        Ok(json!({"service": service, "current": current, "last_snapshot": last}))
    }

    /// Stored points of `service` in `[from, to]`, oldest first.
    pub async fn points(
        &self,
        service: String,
        from: OffsetDateTime,
        to: OffsetDateTime,
    ) -> Result<Vec<(Point, Json)>> {
        self.incidents
            .store()
            .read(move |txn| {
                let t = txn.open_table(SNAPSHOTS)?;
                let mut out = Vec::new();
                for row in
                    t.range((service.as_str(), micros(from))..=(service.as_str(), micros(to)))?
                {
                    let (_, v) = row?;
                    let snap: Json = from_json(v.value())?;
                    out.push((point_of(&snap)?, snap));
                }
                Ok(out)
            })
            .await
    }

    /// `history`: the service's snapshots of the last `days` days (default 7, or the
    /// retention if shorter), oldest first.
    pub async fn history(
        &self,
        service: String,
        days: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<Json> {
        crate::kernel::text::check_token("service", &service, 64)?;
        let keep = self.policies.risk.history.retention_days;
        let days = days.unwrap_or(DEFAULT_HISTORY_DAYS.min(keep));
        if !(1..=keep).contains(&days) {
            return Err(Error::invalid(
                "days",
                format!("must be between 1 and {keep} (the retention)"),
            ));
        }
        let from = now - time::Duration::days(days as i64);
        let rows = self.points(service.clone(), from, now).await?;
        let items: Vec<Json> = rows
            .iter()
            .map(|(_, s)| {
                let factors: serde_json::Map<String, Json> = s["factors"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| Some((f["factor"].as_str()?.to_string(), f["points"].clone())))
                            .collect()
                    })
                    .unwrap_or_default();
                json!({"at": s["computed_at"], "score": s["score"], "band": s["band"], "factors": factors})
            })
            .collect();
        Ok(json!({"service": service, "days": days, "since": rfc3339(from), "snapshots": items}))
    }

    /// `top`: the `limit` riskiest services now, highest score first (ties by name).
    pub async fn top(
        &self,
        limit: usize,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<Json> {
        if !(1..=MAX_TOP).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_TOP}"),
            ));
        }
        let mut all = self.compute(None, now, deadline).await?;
        let services = all.len();
        sort_riskiest(&mut all);
        all.truncate(limit);
        // The short form backlog_tool.generate takes as `high_risk`.
        let scores: Vec<Json> = all
            .iter()
            .map(|r| json!({"service": r.service, "score": r.score, "band": r.band}))
            .collect();
        Ok(
            json!({"computed_at": rfc3339(now), "services": services, "scores": scores, "items": all}),
        )
    }

    /// `snapshot`: every service's score now, one stored row each unless `dry_run`; rows older
    /// than the retention are dropped in the same commit.
    pub async fn snapshot(
        &self,
        dry_run: bool,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<Json> {
        let mut all = self.compute(None, now, deadline).await?;
        sort_riskiest(&mut all);
        let (mut written, mut pruned) = (0usize, 0usize);
        if !dry_run && !all.is_empty() {
            let mut rows = Vec::new();
            for r in &all {
                let bytes = serde_json::to_vec(r).map_err(|e| Error::Internal(e.to_string()))?;
                rows.push((r.service.clone(), bytes));
            }
            let cutoff = micros(
                now - time::Duration::days(self.policies.risk.history.retention_days as i64),
            );
            let at = micros(now);
            (written, pruned) = self
                .incidents
                .store()
                .write(move |txn| {
                    let mut t = txn.open(SNAPSHOTS)?;
                    let mut pruned = 0usize;
                    for (service, bytes) in &rows {
                        let old: Vec<i64> = t
                            .range((service.as_str(), i64::MIN)..(service.as_str(), cutoff))?
                            .map(|r| r.map(|(k, _)| k.value().1))
                            .collect::<std::result::Result<_, _>>()?;
                        for ts in old {
                            t.remove((service.as_str(), ts))?;
                            pruned += 1;
                        }
                        t.insert((service.as_str(), at), bytes.as_slice())?;
                    }
                    Ok((rows.len(), pruned))
                })
                .await?;
        }
        Ok(json!({
            "dry_run": dry_run, "computed_at": rfc3339(now),
            "written": written, "pruned": pruned, "snapshots": all,
        }))
    }

    /// Every service with a stored snapshot.
    async fn snapshot_services(&self) -> Result<Vec<String>> {
        self.incidents
            .store()
            .read(|txn| {
                let t = txn.open_table(SNAPSHOTS)?;
                let mut out: Vec<String> = Vec::new();
                loop {
                    let next = match out.last() {
                        None => t.range::<(&str, i64)>(..)?.next(),
                        Some(s) => t
                            .range((s.as_str(), i64::MAX)..)?
                            .find(|r| r.as_ref().map_or(true, |(k, _)| k.value().0 != s.as_str())),
                    };
                    match next.transpose()? {
                        Some((k, _)) => out.push(k.value().0.to_string()),
                        None => return Ok(out),
                    }
                }
            })
            .await
    }

    /// The last snapshot of `service` before `before`.
    async fn last_before(&self, service: String, before: OffsetDateTime) -> Result<Option<Json>> {
        self.incidents
            .store()
            .read(move |txn| {
                let t = txn.open_table(SNAPSHOTS)?;
                let last = t
                    .range((service.as_str(), i64::MIN)..(service.as_str(), micros(before)))?
                    .next_back()
                    .transpose()?;
                last.map(|(_, v)| from_json::<Json>(v.value())).transpose()
            })
            .await
    }

    /// `daily_digest`: each service's score on `date` (UTC; default today) with its change
    /// from the day before. Today's scores are computed now; a past day's are its last
    /// snapshots. Nothing is written.
    pub async fn daily_digest(
        &self,
        date: Option<String>,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<Json> {
        let today = now.date();
        let day = match date.as_deref().map(str::trim) {
            None | Some("") => today,
            Some(s) => crate::kernel::clock::parse_date(s).ok_or_else(|| {
                Error::invalid(
                    "date",
                    format!("'{}' is not YYYY-MM-DD", crate::kernel::text::clip(s, 20)),
                )
            })?,
        };
        if day > today {
            return Err(Error::invalid("date", "is in the future"));
        }
        let start = day.midnight().assume_utc();
        let end = start + time::Duration::days(1);
        let mut rows: Vec<Json> = Vec::new();
        if day == today {
            for r in self.compute(None, now, deadline).await? {
                rows.push(serde_json::to_value(r).map_err(|e| Error::Internal(e.to_string()))?);
            }
        } else {
            for s in self.snapshot_services().await? {
                if let Some(v) = self.last_before(s, end).await? {
                    if point_of(&v)?.at >= start {
                        rows.push(v);
                    }
                }
            }
        }
        let mut items = Vec::new();
        for r in rows {
            let service = r["service"].as_str().unwrap_or_default().to_string();
            let prev = self.last_before(service.clone(), start).await?;
            items.push(digest::day_item(&r, prev.as_ref()));
        }
        let body = digest::daily(day, now.min(end), items);
        let markdown = digest::daily_markdown(&body);
        Ok(json!({"date": body["date"], "json": body, "markdown": markdown}))
    }

    /// `platform_digest`: architecture pressure of every service for ISO week `week`
    /// (`YYYY-Www`; default the week before today's), judged at the week's end (or now, if
    /// sooner). Nothing is written.
    pub async fn platform_digest(
        &self,
        week: Option<String>,
        now: OffsetDateTime,
        deadline: Option<Instant>,
    ) -> Result<Json> {
        let monday = match week.as_deref().map(str::trim) {
            None | Some("") => {
                let (y, w, _) = (now - time::Duration::days(1)).to_iso_week_date();
                time::Date::from_iso_week_date(y, w, time::Weekday::Monday)
                    .map_err(|e| Error::Internal(e.to_string()))?
            }
            Some(s) => parse_week(s)?,
        };
        let start = monday.midnight().assume_utc();
        if start > now {
            return Err(Error::invalid("week", "is in the future"));
        }
        let as_of = now.min(start + time::Duration::days(7));
        let (y, w, _) = monday.to_iso_week_date();
        let week_id = format!("{y}-W{w:02}");
        let p = &self.policies.pressure;
        let current = as_of == now;
        let facts = self.facts(None, as_of, current, deadline).await?;
        let mut scores: BTreeMap<String, Option<u32>> = BTreeMap::new();
        if current {
            for f in &facts {
                scores.insert(
                    f.service.clone(),
                    Some(score::score(&self.policies, f, now).score),
                );
            }
        }
        let mut services: BTreeSet<String> = facts.iter().map(|f| f.service.clone()).collect();
        services.extend(self.snapshot_services().await?);
        let span = p.trend.window_days.max(p.sustained.last_days) as i64;
        let from = as_of - time::Duration::days(span);
        let sig_from = as_of - time::Duration::days(p.recurrence.window_days as i64);
        let by_service: HashMap<&str, &ServiceFacts> =
            facts.iter().map(|f| (f.service.as_str(), f)).collect();
        let mut out = Vec::new();
        for s in services {
            let hist = self.points(s.clone(), from, as_of).await?;
            let history: Vec<(OffsetDateTime, u32)> =
                hist.iter().map(|(pt, _)| (pt.at, pt.score)).collect();
            let score_now = match scores.get(&s) {
                Some(v) => *v,
                None => hist.last().map(|(pt, _)| pt.score),
            };
            let mut sigs: BTreeMap<String, u32> = BTreeMap::new();
            if let Some(f) = by_service.get(s.as_str()) {
                for inc in f
                    .recent
                    .iter()
                    .filter(|i| i.created_at >= sig_from && i.created_at <= as_of)
                {
                    *sigs.entry(inc.signature.clone()).or_default() += 1;
                }
            }
            let sigs: Vec<(String, u32)> = sigs.into_iter().collect();
            out.push(pressure::assess(p, &s, &sigs, score_now, &history, as_of));
        }
        out.sort_by(|a, b| {
            b.pressure
                .cmp(&a.pressure)
                .then(b.reasons.len().cmp(&a.reasons.len()))
                .then(b.score.cmp(&a.score))
                .then(a.service.cmp(&b.service))
        });
        let body = digest::platform(&week_id, start, as_of, &out);
        let markdown = digest::platform_markdown(&body);
        Ok(json!({"week": week_id, "json": body, "markdown": markdown}))
    }
}

/// Highest score first, ties by name.
fn sort_riskiest(v: &mut [ServiceRisk]) {
    v.sort_by(|a, b| b.score.cmp(&a.score).then(a.service.cmp(&b.service)));
}

/// Time and score of a stored snapshot.
fn point_of(snap: &Json) -> Result<Point> {
    let at = snap["computed_at"]
        .as_str()
        .and_then(crate::kernel::clock::parse_ts)
        .ok_or_else(|| Error::Storage("risk snapshot without computed_at".into()))?;
    let score = snap["score"]
        .as_u64()
        .ok_or_else(|| Error::Storage("risk snapshot without score".into()))?
        as u32;
    Ok(Point { at, score })
}

/// `YYYY-Www` → that ISO week's Monday.
pub fn parse_week(s: &str) -> Result<time::Date> {
    let bad = || {
        Error::invalid(
            "week",
            format!(
                "'{}' is not an ISO week like 2026-W09",
                crate::kernel::text::clip(s, 20)
            ),
        )
    };
    let (y, w) = s.split_once("-W").ok_or_else(bad)?;
    if y.len() != 4 || w.len() != 2 {
        return Err(bad());
    }
    let y: i32 = y.parse().map_err(|_| bad())?;
    let w: u8 = w.parse().map_err(|_| bad())?;
    time::Date::from_iso_week_date(y, w, time::Weekday::Monday).map_err(|_| bad())
}

fn fact_of(inc: &Incident) -> IncidentFact {
    IncidentFact {
        id: inc.id.clone(),
        title: inc.title.clone(),
        severity: inc.severity,
        created_at: inc.created_at,
        started_at: inc.started_at,
        signature: crate::intel::signature(inc).1,
    }
}

/// Read every fact but SLO burn in one snapshot of the store.
fn read_facts(
    txn: &redb::ReadTransaction,
    only: Option<&str>,
    as_of: OffsetDateTime,
    p: &RiskPolicies,
) -> Result<Vec<ServiceFacts>> {
    let idx = txn.open_table(INDEX)?;
    let incs = txn.open_table(INCIDENTS)?;
    let events = txn.open_table(EVENTS)?;
    let mut cache: HashMap<String, Option<Incident>> = HashMap::new();
    let mut load = |id: &str| -> Result<Option<Incident>> {
        if let Some(i) = cache.get(id) {
            return Ok(i.clone());
        }
        let i = load_incident(&incs, id)?;
        cache.insert(id.to_string(), i.clone());
        Ok(i)
    };
    let mut by: BTreeMap<String, ServiceFacts> = BTreeMap::new();
    let empty = |s: &str| ServiceFacts {
        service: s.to_string(),
        active: vec![],
        recent: vec![],
        overdue: vec![],
        changes: vec![],
        slo: SloFact::Unavailable("not asked".into()),
    };
    match only {
        Some(s) => {
            by.insert(s.to_string(), empty(s));
        }
        None => {
            let counts = txn.open_table(INDEX_COUNTS)?;
            for row in counts.range("service:".."service;")? {
                let (k, n) = row?;
                if n.value() > 0 {
                    if let Some(s) = k.value().strip_prefix("service:") {
                        by.insert(s.to_string(), empty(s));
                    }
                }
            }
        }
    }
    let wanted = |s: &str| only.is_none_or(|o| o == s);

    for status in Status::ALL.into_iter().filter(|s| s.is_active()) {
        let dim = format!("status:{}", status.as_str());
        for row in idx.range((dim.as_str(), i64::MIN, "")..=(dim.as_str(), i64::MAX, ""))? {
            let (k, v) = row?;
            if !wanted(parse_brief(v.value()).service) {
                continue;
            }
            if let Some(inc) = load(k.value().2)? {
                // Not yet recorded at `as_of` (a past snapshot time).
                if inc.created_at > as_of {
                    continue;
                }
                if let Some(f) = by.get_mut(&inc.service) {
                    f.active.push(fact_of(&inc));
                }
            }
        }
    }

    let from = as_of - time::Duration::days(p.incident_window_days() as i64);
    for row in idx.range(("all", micros(from), "")..("all", micros(as_of) + 1, ""))? {
        let (k, v) = row?;
        if !wanted(parse_brief(v.value()).service) {
            continue;
        }
        if let Some(inc) = load(k.value().2)? {
            if let Some(f) = by.get_mut(&inc.service) {
                f.recent.push(fact_of(&inc));
            }
        }
    }

    let due = txn.open_table(FOLLOWUP_DUE)?;
    for row in due.range((i64::MIN, "")..(micros(as_of), ""))? {
        let (k, v) = row?;
        let (inc_id, seq) = v.value();
        let Some(g) = events.get((inc_id, seq))? else {
            continue;
        };
        let ev: Event = from_json(g.value())?;
        if !is_open_followup(&ev) {
            continue;
        }
        let Some(inc) = load(inc_id)? else { continue };
        if let Some(f) = by.get_mut(&inc.service) {
            f.overdue.push(FollowupFact {
                incident_id: inc.id.clone(),
                event_id: ev.id.clone(),
                title: ev.meta["title"].as_str().unwrap_or(&ev.message).to_string(),
                priority: ev.meta["priority"]
                    .as_str()
                    .and_then(Severity::parse)
                    .unwrap_or(Severity::P2),
                due: OffsetDateTime::from_unix_timestamp_nanos(k.value().0 as i128 * 1000)
                    .unwrap_or(as_of),
            });
        }
    }

    let types = &p.attribution.change_event_types;
    let lookback = as_of - time::Duration::hours(p.attribution.lookback_hours as i64);
    let feed = txn.open_table(EVENT_FEED)?;
    for row in feed.range((micros(lookback), "", 0u64)..(micros(as_of) + 1, "", 0u64))? {
        let (k, v) = row?;
        if !types.iter().any(|t| t == v.value()) {
            continue;
        }
        let (_, inc_id, seq) = k.value();
        let Some(inc) = load(inc_id)? else { continue };
        let Some(f) = by.get_mut(&inc.service) else {
            continue;
        };
        let Some(g) = events.get((inc_id, seq))? else {
            continue;
        };
        let ev: Event = from_json(g.value())?;
        f.changes.push(ChangeFact {
            event_id: ev.id,
            incident_id: inc.id,
            kind: ev.kind,
            ts: ev.ts,
            message: ev.message,
        });
    }
    Ok(by.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_parse_to_their_monday() {
        assert_eq!(
            parse_week("2026-W10").unwrap(),
            time::macros::date!(2026 - 03 - 02)
        );
        assert_eq!(
            parse_week("2026-W01").unwrap(),
            time::macros::date!(2025 - 12 - 29)
        );
        for bad in ["2026-10", "2026-W60", "26-W10", "2026-W1", "2026-Wxx"] {
            assert_eq!(
                parse_week(bad).unwrap_err().code(),
                "invalid_field",
                "{bad}"
            );
        }
    }
}
