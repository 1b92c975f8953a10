//! The platform backlog (SPEC §7): items generated from overdue follow-ups, recurring
//! signatures, high risk and architecture pressure under `backlog.yml`, then worked through by
//! people (`open` → `in_progress` → `done` | `wontfix`).
//!
//! Every item has a stable key (`followup:<incident>:<event>`, `recurrence:<service>:<signature>`,
//! `risk:<service>`, `pressure:<service>`); generating again (the same week or a later one)
//! finds the item by its key and refreshes its `last_seen`, reasons and priority instead of
//! adding another. Risk and pressure are passed in by the caller: this room reads the incident
//! log only. A status or owner set by a person is never overwritten by generation.

pub mod policy;
pub mod tables;

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::incidents::model::Severity;
use crate::incidents::tables::{load_incident, INCIDENTS, INDEX};
use crate::incidents::{FollowupQuery, Incidents};
use crate::kernel::clock::{micros, random_hex, serde_ts};
use policy::BacklogPolicy;
use tables::{ITEMS, KEYS};

/// Most items one list returns.
pub const MAX_LIST: usize = 1000;

/// Where an item is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Not started.
    Open,
    /// Someone works on it.
    InProgress,
    /// Fixed.
    Done,
    /// Decided against.
    Wontfix,
}

impl ItemStatus {
    /// Every status.
    pub const ALL: [ItemStatus; 4] = [
        ItemStatus::Open,
        ItemStatus::InProgress,
        ItemStatus::Done,
        ItemStatus::Wontfix,
    ];

    /// Its word.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Open => "open",
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Done => "done",
            ItemStatus::Wontfix => "wontfix",
        }
    }

    /// Parse a status word; a 400 `invalid_status` listing the statuses otherwise.
    pub fn parse(s: &str) -> Result<ItemStatus> {
        ItemStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s.trim())
            .ok_or_else(|| {
                Error::bad_request(
                    "invalid_status",
                    format!(
                        "status: '{}' is not one of open, in_progress, done, wontfix",
                        crate::kernel::text::clip(s, 30)
                    ),
                )
            })
    }
}

/// A backlog item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// `bl_` and 16 hex digits.
    pub id: String,
    /// The stable key.
    pub key: String,
    /// `followup`, `recurrence`, `risk` or `pressure`.
    pub kind: String,
    /// The service it is about.
    pub service: String,
    /// One line.
    pub title: String,
    /// Where it is.
    pub status: ItemStatus,
    /// P0 (most urgent) to P3.
    pub priority: Severity,
    /// Who owns it.
    pub owner: String,
    /// Why it exists, as last generated.
    pub reasons: Vec<String>,
    /// What it refers to (incident, event, signature, score).
    pub source: Json,
    /// When it was first generated.
    #[serde(with = "serde_ts")]
    pub created_at: OffsetDateTime,
    /// When it last changed (generation with new reasons, or an update).
    #[serde(with = "serde_ts")]
    pub updated_at: OffsetDateTime,
    /// When generation last found it.
    #[serde(with = "serde_ts")]
    pub last_seen: OffsetDateTime,
}

/// What generation would make an item from.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The stable key.
    pub key: String,
    /// Rule kind.
    pub kind: &'static str,
    /// Service.
    pub service: String,
    /// Title.
    pub title: String,
    /// Priority.
    pub priority: Severity,
    /// Owner of a new item.
    pub owner: String,
    /// Reasons.
    pub reasons: Vec<String>,
    /// References.
    pub source: Json,
}

/// A service at high risk, as the caller passes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HighRisk {
    /// Service.
    pub service: String,
    /// Score 0-100.
    pub score: u32,
    /// `low`, `medium`, `high`, `critical`.
    pub band: String,
}

/// A service under architecture pressure, as the caller passes it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PressureInput {
    /// Service.
    pub service: String,
    /// Why (at least one).
    pub reasons: Vec<String>,
}

/// An overdue follow-up, as generation sees it.
#[derive(Debug, Clone)]
pub struct OverdueFollowup {
    /// Incident id.
    pub incident_id: String,
    /// Event id.
    pub event_id: String,
    /// Service.
    pub service: String,
    /// Title.
    pub title: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Its due time (RFC 3339).
    pub due: String,
    /// Its priority.
    pub priority: Severity,
}

/// A signature's count over the recurrence window.
#[derive(Debug, Clone)]
pub struct SignatureCount {
    /// Service.
    pub service: String,
    /// Signature key.
    pub signature: String,
    /// Incidents with it.
    pub count: u32,
    /// Up to 10 of their ids, oldest first.
    pub incident_ids: Vec<String>,
}

/// How generation treated one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// New.
    Created,
    /// Reasons, title or priority changed.
    Updated,
    /// Found again as it was (its `last_seen` still moves).
    Unchanged,
}

/// Check what a caller passed in.
pub fn check_inputs(high_risk: &[HighRisk], pressure: &[PressureInput]) -> Result<()> {
    for (i, h) in high_risk.iter().enumerate() {
        crate::kernel::text::check_token(&format!("high_risk[{i}].service"), &h.service, 64)?;
        if h.score > 100 {
            return Err(Error::invalid(
                &format!("high_risk[{i}].score"),
                "must be 0-100",
            ));
        }
        if !["low", "medium", "high", "critical"].contains(&h.band.as_str()) {
            return Err(Error::invalid(
                &format!("high_risk[{i}].band"),
                "must be low, medium, high or critical",
            ));
        }
    }
    for (i, p) in pressure.iter().enumerate() {
        crate::kernel::text::check_token(&format!("pressure[{i}].service"), &p.service, 64)?;
        if p.reasons.is_empty() || p.reasons.len() > 20 {
            return Err(Error::invalid(
                &format!("pressure[{i}].reasons"),
                "needs 1-20 reasons",
            ));
        }
        for r in &p.reasons {
            crate::kernel::text::check_line(&format!("pressure[{i}].reasons"), r, 500)?;
        }
    }
    Ok(())
}

/// The candidates `policy` makes of the findings, by key (one per key: a later finding of a
/// key replaces an earlier one).
pub fn candidates(
    policy: &BacklogPolicy,
    overdue: &[OverdueFollowup],
    signatures: &[SignatureCount],
    high_risk: &[HighRisk],
    pressure: &[PressureInput],
) -> Vec<Candidate> {
    let r = &policy.rules;
    let mut out: BTreeMap<String, Candidate> = BTreeMap::new();
    let mut add = |c: Candidate| {
        out.insert(c.key.clone(), c);
    };
    if r.overdue_followup.enabled {
        let fixed = Severity::parse(&r.overdue_followup.priority);
        for f in overdue {
            add(Candidate {
                key: format!("followup:{}:{}", f.incident_id, f.event_id),
                kind: "followup",
                service: f.service.clone(),
                title: format!("Overdue follow-up: {}", f.title),
                priority: fixed.unwrap_or(f.priority),
                owner: policy.owner_of(&f.service, f.owner.as_deref()),
                reasons: vec![format!(
                    "follow-up of {} was due {} and is still open",
                    f.incident_id, f.due
                )],
                source: json!({"incident_id": f.incident_id, "event_id": f.event_id, "due": f.due}),
            });
        }
    }
    if r.recurrence.enabled {
        for s in signatures
            .iter()
            .filter(|s| s.count >= r.recurrence.min_occurrences)
        {
            add(Candidate {
                key: format!("recurrence:{}:{}", s.service, s.signature),
                kind: "recurrence",
                service: s.service.clone(),
                title: format!("Recurring on {}: {}", s.service, s.signature),
                priority: r.recurrence.priority,
                owner: policy.owner_of(&s.service, None),
                reasons: vec![format!(
                    "seen {} times in {} days ({})",
                    s.count,
                    r.recurrence.window_days,
                    s.incident_ids.join(", ")
                )],
                source: json!({"signature": s.signature, "count": s.count, "incident_ids": s.incident_ids}),
            });
        }
    }
    if r.high_risk.enabled {
        for h in high_risk
            .iter()
            .filter(|h| h.score >= r.high_risk.min_score)
        {
            add(Candidate {
                key: format!("risk:{}", h.service),
                kind: "risk",
                service: h.service.clone(),
                title: format!("High risk: {}", h.service),
                priority: r.high_risk.priority.of(&h.band).unwrap_or(Severity::P2),
                owner: policy.owner_of(&h.service, None),
                reasons: vec![format!(
                    "risk score {} ({}), at least {}",
                    h.score, h.band, r.high_risk.min_score
                )],
                source: json!({"score": h.score, "band": h.band}),
            });
        }
    }
    if r.pressure.enabled {
        for p in pressure {
            add(Candidate {
                key: format!("pressure:{}", p.service),
                kind: "pressure",
                service: p.service.clone(),
                title: format!("Architecture pressure: {}", p.service),
                priority: r.pressure.priority,
                owner: policy.owner_of(&p.service, None),
                reasons: p.reasons.clone(),
                source: json!({}),
            });
        }
    }
    out.into_values().collect()
}

/// What generating `c` at `now` does to the stored item of its key (`existing`), and the item
/// after it. Status and owner stay as people left them.
pub fn plan(existing: Option<&Item>, c: &Candidate, now: OffsetDateTime) -> (Outcome, Item) {
    match existing {
        None => (
            Outcome::Created,
            Item {
                id: format!("bl_{}", random_hex(8)),
                key: c.key.clone(),
                kind: c.kind.to_string(),
                service: c.service.clone(),
                title: c.title.clone(),
                status: ItemStatus::Open,
                priority: c.priority,
                owner: c.owner.clone(),
                reasons: c.reasons.clone(),
                source: c.source.clone(),
                created_at: now,
                updated_at: now,
                last_seen: now,
            },
        ),
        Some(old) => {
            let mut new = old.clone();
            new.last_seen = now.max(old.last_seen);
            let changed =
                old.reasons != c.reasons || old.title != c.title || old.priority != c.priority;
            if !changed {
                return (Outcome::Unchanged, new);
            }
            new.reasons = c.reasons.clone();
            new.title = c.title.clone();
            new.priority = c.priority;
            new.source = c.source.clone();
            new.updated_at = now;
            (Outcome::Updated, new)
        }
    }
}

/// The backlog room.
#[derive(Clone)]
pub struct Backlog {
    incidents: Incidents,
    policy: std::sync::Arc<BacklogPolicy>,
}

fn encode(i: &Item) -> Result<Vec<u8>> {
    serde_json::to_vec(i).map_err(|e| Error::Internal(e.to_string()))
}

fn decode(b: &[u8]) -> Result<Item> {
    crate::store::from_json(b)
}

/// Check an item id's form.
pub fn check_id(id: &str) -> Result<()> {
    let ok = id
        .strip_prefix("bl_")
        .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "id",
            format!(
                "'{}' is not a backlog item id (bl_ and 16 hex digits)",
                crate::kernel::text::clip(id, 40)
            ),
        ))
    }
}

impl Backlog {
    /// The room over the incident log, with `backlog.yml`.
    pub fn new(incidents: Incidents, policy: BacklogPolicy) -> Backlog {
        Backlog {
            incidents,
            policy: std::sync::Arc::new(policy),
        }
    }

    /// Open follow-ups past due at the incident room's clock.
    async fn overdue(&self) -> Result<Vec<OverdueFollowup>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .incidents
                .followups(FollowupQuery {
                    overdue: true,
                    soonest: true,
                    limit: crate::incidents::MAX_LIMIT,
                    cursor,
                    ..Default::default()
                })
                .await?;
            for f in page.items {
                out.push(OverdueFollowup {
                    incident_id: f.incident_id,
                    event_id: f.event_id,
                    service: f.service,
                    title: f.title,
                    owner: f.owner,
                    due: f.due.unwrap_or_default(),
                    priority: Severity::parse(&f.priority).unwrap_or(Severity::P2),
                });
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Signatures of the incidents created in the recurrence window before `now`.
    async fn signatures(&self, now: OffsetDateTime) -> Result<Vec<SignatureCount>> {
        let from = now - time::Duration::days(self.policy.rules.recurrence.window_days as i64);
        self.incidents
            .store()
            .read(move |txn| {
                let idx = txn.open_table(INDEX)?;
                let incs = txn.open_table(INCIDENTS)?;
                let mut by: BTreeMap<(String, String), SignatureCount> = BTreeMap::new();
                for row in idx.range(("all", micros(from), "")..("all", micros(now) + 1, ""))? {
                    let (k, _) = row?;
                    let Some(inc) = load_incident(&incs, k.value().2)? else {
                        continue;
                    };
                    let (service, key, _) = crate::intel::signature(&inc);
                    let e = by
                        .entry((service.clone(), key.clone()))
                        .or_insert(SignatureCount {
                            service,
                            signature: key,
                            count: 0,
                            incident_ids: vec![],
                        });
                    e.count += 1;
                    if e.incident_ids.len() < 10 {
                        e.incident_ids.push(inc.id.clone());
                    }
                }
                Ok(by.into_values().collect())
            })
            .await
    }

    /// `generate`: items from the findings at `now`; with `dry_run` nothing is written and the
    /// answer says what would be.
    pub async fn generate(
        &self,
        dry_run: bool,
        high_risk: Vec<HighRisk>,
        pressure: Vec<PressureInput>,
        now: OffsetDateTime,
    ) -> Result<Json> {
        check_inputs(&high_risk, &pressure)?;
        let overdue = if self.policy.rules.overdue_followup.enabled {
            self.overdue().await?
        } else {
            vec![]
        };
        let sigs = if self.policy.rules.recurrence.enabled {
            self.signatures(now).await?
        } else {
            vec![]
        };
        let cands = candidates(&self.policy, &overdue, &sigs, &high_risk, &pressure);
        let planned: Vec<(Outcome, Item)> = if dry_run {
            self.incidents
                .store()
                .read(move |txn| {
                    let keys = txn.open_table(KEYS)?;
                    let items = txn.open_table(ITEMS)?;
                    let mut out = Vec::new();
                    for c in &cands {
                        let old = match keys.get(c.key.as_str())? {
                            Some(id) => items
                                .get(id.value())?
                                .map(|g| decode(g.value()))
                                .transpose()?,
                            None => None,
                        };
                        out.push(plan(old.as_ref(), c, now));
                    }
                    Ok(out)
                })
                .await?
        } else {
            self.incidents
                .store()
                .write(move |txn| {
                    let mut keys = txn.open(KEYS)?;
                    let mut items = txn.open(ITEMS)?;
                    let mut out = Vec::new();
                    for c in &cands {
                        let id = keys.get(c.key.as_str())?.map(|g| g.value().to_string());
                        let old = match &id {
                            Some(id) => items
                                .get(id.as_str())?
                                .map(|g| decode(g.value()))
                                .transpose()?,
                            None => None,
                        };
                        let (outcome, item) = plan(old.as_ref(), c, now);
                        items.insert(item.id.as_str(), encode(&item)?.as_slice())?;
                        if old.is_none() {
                            keys.insert(item.key.as_str(), item.id.as_str())?;
                        }
                        out.push((outcome, item));
                    }
                    Ok(out)
                })
                .await?
        };
        let pick = |o: Outcome| -> Vec<&Item> {
            planned
                .iter()
                .filter(|(x, _)| *x == o)
                .map(|(_, i)| i)
                .collect()
        };
        Ok(json!({
            "dry_run": dry_run,
            "created": pick(Outcome::Created),
            "updated": pick(Outcome::Updated),
            "unchanged": pick(Outcome::Unchanged),
        }))
    }

    /// `list`: items with `status` (any) of `service` (any), most urgent first, newest seen
    /// first within a priority.
    pub async fn list(
        &self,
        status: Option<String>,
        service: Option<String>,
        limit: Option<usize>,
    ) -> Result<Json> {
        let status = status
            .filter(|s| !s.trim().is_empty())
            .map(|s| ItemStatus::parse(&s))
            .transpose()?;
        let service = service.filter(|s| !s.is_empty());
        if let Some(s) = &service {
            crate::kernel::text::check_token("service", s, 64)?;
        }
        let limit = limit.unwrap_or(200);
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIST}"),
            ));
        }
        let mut all: Vec<Item> = self
            .incidents
            .store()
            .read(move |txn| {
                let t = txn.open_table(ITEMS)?;
                let mut out = Vec::new();
                for row in t.iter()? {
                    let i = decode(row?.1.value())?;
                    if status.is_none_or(|s| s == i.status)
                        && service.as_deref().is_none_or(|s| s == i.service)
                    {
                        out.push(i);
                    }
                }
                Ok(out)
            })
            .await?;
        all.sort_by(|a, b| (a.priority, b.last_seen, &a.id).cmp(&(b.priority, a.last_seen, &b.id)));
        let total = all.len();
        all.truncate(limit);
        Ok(json!({"total": total, "items": all}))
    }

    /// `update`: a person sets an item's status and/or owner.
    pub async fn update(
        &self,
        id: String,
        status: Option<String>,
        owner: Option<String>,
        now: OffsetDateTime,
    ) -> Result<Item> {
        check_id(&id)?;
        let status = status.map(|s| ItemStatus::parse(&s)).transpose()?;
        let owner = owner.map(|o| o.trim().to_string());
        if let Some(o) = &owner {
            if o.is_empty() {
                return Err(Error::invalid("owner", "must not be empty"));
            }
            crate::kernel::text::check_line("owner", o, 128)?;
        }
        if status.is_none() && owner.is_none() {
            return Err(Error::invalid("status", "give a status, an owner or both"));
        }
        self.incidents
            .store()
            .write(move |txn| {
                let mut items = txn.open(ITEMS)?;
                let old = items
                    .get(id.as_str())?
                    .map(|g| decode(g.value()))
                    .transpose()?
                    .ok_or_else(|| Error::NotFound(format!("backlog item {id} not found")))?;
                let mut new = old.clone();
                if let Some(s) = status {
                    new.status = s;
                }
                if let Some(o) = owner {
                    new.owner = o;
                }
                if new != old {
                    new.updated_at = now;
                    items.insert(new.id.as_str(), encode(&new)?.as_slice())?;
                }
                Ok(new)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn policy() -> BacklogPolicy {
        BacklogPolicy::load(None).unwrap()
    }

    fn overdue() -> Vec<OverdueFollowup> {
        vec![OverdueFollowup {
            incident_id: "inc_1".into(),
            event_id: "ev_1".into(),
            service: "router".into(),
            title: "add a canary".into(),
            owner: None,
            due: "2026-03-01T00:00:00Z".into(),
            priority: Severity::P1,
        }]
    }

    #[test]
    fn rules_make_keyed_candidates_with_their_priorities() {
        let sigs = vec![
            SignatureCount {
                service: "router".into(),
                signature: "router # errors".into(),
                count: 3,
                incident_ids: vec!["a".into(), "b".into(), "c".into()],
            },
            SignatureCount {
                service: "db".into(),
                signature: "slow".into(),
                count: 2,
                incident_ids: vec![],
            },
        ];
        let high = vec![
            HighRisk {
                service: "router".into(),
                score: 80,
                band: "critical".into(),
            },
            HighRisk {
                service: "db".into(),
                score: 59,
                band: "high".into(),
            },
        ];
        let pressure = vec![PressureInput {
            service: "router".into(),
            reasons: vec!["x recurred".into()],
        }];
        let c = candidates(&policy(), &overdue(), &sigs, &high, &pressure);
        let keys: Vec<(&str, Severity)> = c.iter().map(|c| (c.key.as_str(), c.priority)).collect();
        // db's 2 occurrences and score 59 stay below the thresholds (3 and 60).
        assert_eq!(
            keys,
            [
                ("followup:inc_1:ev_1", Severity::P1),
                ("pressure:router", Severity::P1),
                ("recurrence:router:router # errors", Severity::P2),
                ("risk:router", Severity::P0),
            ]
        );
        assert_eq!(c[0].owner, "platform");
        assert_eq!(c[2].reasons, ["seen 3 times in 30 days (a, b, c)"]);
    }

    #[test]
    fn planning_again_never_duplicates_and_keeps_what_people_set() {
        let now = datetime!(2026-03-09 06:20 UTC);
        let c = candidates(&policy(), &overdue(), &[], &[], &[]).remove(0);
        let (o, first) = plan(None, &c, now);
        assert_eq!(o, Outcome::Created);
        assert!(check_id(&first.id).is_ok());
        // A person took it.
        let mut taken = first.clone();
        taken.status = ItemStatus::InProgress;
        taken.owner = "ana".into();
        // Same findings a week later: same item, only last_seen moves.
        let later = now + time::Duration::days(7);
        let (o, again) = plan(Some(&taken), &c, later);
        assert_eq!(o, Outcome::Unchanged);
        assert_eq!(
            (again.id.as_str(), again.last_seen),
            (first.id.as_str(), later)
        );
        assert_eq!(
            (again.status, again.owner.as_str()),
            (ItemStatus::InProgress, "ana")
        );
        assert_eq!(again.updated_at, now);
        // New reasons: updated, still the same item.
        let mut c2 = c.clone();
        c2.reasons = vec!["still open".into()];
        let (o, upd) = plan(Some(&again), &c2, later);
        assert_eq!(o, Outcome::Updated);
        assert_eq!(
            (upd.id, upd.reasons, upd.updated_at),
            (first.id, vec!["still open".to_string()], later)
        );
    }

    #[test]
    fn statuses_and_inputs_are_checked() {
        assert_eq!(
            ItemStatus::parse("in_progress").unwrap(),
            ItemStatus::InProgress
        );
        let e = ItemStatus::parse("closed").unwrap_err();
        assert_eq!(e.code(), "invalid_status");
        assert!(e.to_string().contains("open, in_progress, done, wontfix"));
        let bad = check_inputs(
            &[HighRisk {
                service: "a".into(),
                score: 101,
                band: "high".into(),
            }],
            &[],
        )
        .unwrap_err();
        assert_eq!(bad.to_string(), "high_risk[0].score: must be 0-100");
        assert!(check_id("bl_0123456789abcdef").is_ok());
        assert!(check_id("bl_0123").is_err());
    }
}
