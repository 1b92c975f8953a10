//! The alerts room (SPEC §11): Alertmanager's webhook and generic alerts become stored
//! alerts, deduplicated by fingerprint and routed by `alert_routing.yml`; the triage opens
//! or updates incidents through the incident room's own API.
//!
//! Intake ([`Alerts::ingest`]) writes the alerts and queues every changed one for triage in
//! one durable commit, before anyone is told 2xx; a replayed notification (same body) changes
//! nothing. Triage ([`Alerts::triage`]) runs right after intake and as the `alert_triage`
//! job: it works off the queue, so an alert taken in before a crash is triaged after it.
//! Suppressed alerts (silences, maintenance windows) are stored and listed, never dropped.

pub mod model;
pub mod routing;
pub mod tables;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::Serialize;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::incidents::model::{IncidentPatch, NewEvent, NewIncident, Severity, Status};
use crate::incidents::Incidents;
use crate::kernel::clock::{micros, random_hex, rfc3339, Clock};
use crate::kernel::events::{AlertChange, Bus, Event as LiveEvent};
use crate::store::{from_json, Store};
use model::*;
use routing::{OnResolved, Routing};
use tables::*;

/// Default page of `list`.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page of `list`.
pub const MAX_LIMIT: usize = 500;
/// Most active silences.
pub const MAX_SILENCES: usize = 1000;
/// Most fingerprints an incident carries (the incident room's bound).
const MAX_INCIDENT_FINGERPRINTS: usize = 100;

/// The alerts room.
#[derive(Clone)]
pub struct Alerts {
    store: Store,
    incidents: Incidents,
    clock: Arc<dyn Clock>,
    bus: Bus,
    routing: Arc<Routing>,
    triage_lock: Arc<tokio::sync::Mutex<()>>,
}

/// What intake answers.
#[derive(Debug, Clone, Serialize)]
pub struct IntakeReport {
    /// `alertmanager` or `api`.
    pub source: String,
    /// True when this exact notification was taken before (nothing changed).
    pub replay: bool,
    /// Alerts in the notification.
    pub alerts: usize,
    /// Of them, fingerprints not seen before.
    pub new: usize,
    /// Of them, alerts whose state changed (queued for triage).
    pub changed: usize,
    /// Of them, firing alerts held back by a silence or a maintenance window.
    pub suppressed: usize,
    /// Fingerprints of the notification, in its order.
    pub fingerprints: Vec<String>,
    /// What the triage right after intake did (absent on a replay or when it failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<TriageReport>,
    /// Why that triage failed (the alerts are stored and the next triage takes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage_error: Option<String>,
}

/// What one triage pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TriageReport {
    /// Queued alerts processed.
    pub processed: usize,
    /// Incidents opened.
    pub incidents_opened: Vec<String>,
    /// Incidents alerts were attached to (or re-fired on).
    pub incidents_updated: Vec<String>,
    /// Incidents whose alerts all resolved.
    pub incidents_resolved: Vec<String>,
    /// Suppressed alerts (stored, nothing opened).
    pub suppressed: usize,
    /// Firing alerts whose route opens no incident.
    pub not_routed: usize,
    /// Alerts left queued because they changed while being triaged.
    pub requeued: usize,
    /// Alerts left queued because their triage failed (`{fingerprint, error}`).
    pub failed: Vec<Json>,
}

/// Filters of [`Alerts::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<AlertStatus>,
    /// Only this service.
    pub service: Option<String>,
    /// Only alerts seen at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Page size (default 50, at most 500).
    pub limit: Option<usize>,
}

/// What [`Alerts::ack`] acknowledges.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AckTarget {
    /// One alert.
    Fingerprint(String),
    /// Every alert of an incident (and the incident, when open).
    IncidentId(String),
}

fn load_alert<T: ReadableTable<&'static str, &'static [u8]>>(
    t: &T,
    fp: &str,
) -> Result<Option<Alert>> {
    t.get(fp)?
        .map(|g| from_json::<Alert>(g.value()))
        .transpose()
}

fn to_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()))
}

fn alertname(a: &Alert) -> &str {
    a.labels
        .get("alertname")
        .map(String::as_str)
        .unwrap_or("alert")
}

fn incident_gone(e: &Error) -> bool {
    matches!(e, Error::NotFound(_))
}

impl Alerts {
    /// The room over `store`, opening incidents in `incidents`.
    pub fn new(
        store: Store,
        incidents: Incidents,
        clock: Arc<dyn Clock>,
        bus: Bus,
        routing: Routing,
    ) -> Alerts {
        Alerts {
            store,
            incidents,
            clock,
            bus,
            routing: Arc::new(routing),
            triage_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The routing in force.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Store a notification's alerts (durably, queued for triage), then triage. A replay of
    /// the same notification writes only its count.
    pub async fn ingest(&self, n: Notification, actor: &str) -> Result<IntakeReport> {
        let now = self.clock.now();
        let routing = self.routing.clone();
        let flap = time::Duration::minutes(i64::from(routing.triage.flap_window_minutes));
        let source = n.source.clone();
        let fingerprints: Vec<String> = n.alerts.iter().map(|a| a.fingerprint.clone()).collect();
        let count = n.alerts.len();
        let (replay, new, changed) = self
            .store
            .write(move |txn| {
                let mut stats_t = txn.open(SOURCE_STATS)?;
                let mut st: SourceStats = stats_t
                    .get(n.source.as_str())?
                    .map(|g| from_json(g.value()))
                    .transpose()?
                    .unwrap_or_default();
                st.notifications += 1;
                st.alerts += n.alerts.len() as u64;
                let mut notes = txn.open(NOTIFICATIONS)?;
                if notes.get(n.digest.as_str())?.is_some() {
                    st.replays += 1;
                    st.deduplicated += n.alerts.len() as u64;
                    stats_t.insert(n.source.as_str(), to_bytes(&st)?.as_slice())?;
                    return Ok((true, 0usize, Vec::<Alert>::new()));
                }
                notes.insert(n.digest.as_str(), micros(now))?;
                let silences: Vec<Silence> = {
                    let t = txn.open(SILENCES)?;
                    let mut v = Vec::new();
                    for row in t.iter()? {
                        let (_, val) = row?;
                        let s: Silence = from_json(val.value())?;
                        if s.expired_at.is_none() && s.ends_at > now {
                            v.push(s);
                        }
                    }
                    v
                };
                let mut alerts_t = txn.open(ALERTS)?;
                let mut queue = txn.open(UNTRIAGED)?;
                let mut groups = txn.open(BY_GROUP)?;
                let mut new = 0usize;
                let mut changed = Vec::new();
                for a in n.alerts {
                    let routed =
                        routing.route(&a.labels, (a.service.as_deref(), a.severity.as_deref()));
                    let suppressed_by = if a.resolved {
                        None
                    } else if let Some(s) = silences.iter().find(|s| s.suppresses(&a.labels, now)) {
                        Some(format!("silence:{}", s.id))
                    } else {
                        routing
                            .window(&a.labels, now)
                            .map(|w| format!("maintenance:{}", w.name))
                    };
                    let status = if a.resolved {
                        AlertStatus::Resolved
                    } else if suppressed_by.is_some() {
                        AlertStatus::Suppressed
                    } else {
                        AlertStatus::Firing
                    };
                    let summary = a
                        .summary
                        .clone()
                        .or_else(|| a.annotations.get("summary").cloned())
                        .or_else(|| a.labels.get("alertname").cloned())
                        .unwrap_or_else(|| a.fingerprint.clone());
                    let summary: String = summary
                        .chars()
                        .map(|c| if c.is_control() { ' ' } else { c })
                        .take(200)
                        .collect();
                    let old = load_alert(&*alerts_t, &a.fingerprint)?;
                    let (record, is_changed) = match old {
                        None => {
                            new += 1;
                            st.new += 1;
                            let rec = Alert {
                                fingerprint: a.fingerprint.clone(),
                                source: n.source.clone(),
                                group_key: n.group_key.clone(),
                                status,
                                suppressed_by,
                                labels: a.labels,
                                annotations: a.annotations,
                                annotations_clipped: a.annotations_clipped,
                                summary,
                                service: routed.service,
                                env: routed.env,
                                severity: routed.severity,
                                open_incident: routed.open_incident,
                                route: routed.route,
                                starts_at: a.starts_at,
                                ends_at: a.ends_at,
                                first_seen: now,
                                last_seen: now,
                                notifications: 1,
                                flaps: 0,
                                resolved_at: a.resolved.then(|| a.ends_at.unwrap_or(now)),
                                incident_id: None,
                                generator_url: a.generator_url,
                                receiver: n.receiver.clone(),
                                truncated_alerts: n.truncated_alerts,
                                acked_at: None,
                                acked_by: None,
                            };
                            (rec, true)
                        }
                        Some(mut r) => {
                            st.deduplicated += 1;
                            let was = r.status;
                            let mut is_changed = was != status
                                || r.starts_at != a.starts_at
                                || r.suppressed_by != suppressed_by;
                            if was == AlertStatus::Resolved && status != AlertStatus::Resolved {
                                let recent = r.resolved_at.is_some_and(|t| now - t <= flap);
                                if recent {
                                    r.flaps += 1;
                                }
                                is_changed = true;
                            }
                            if status == AlertStatus::Resolved && was != AlertStatus::Resolved {
                                r.resolved_at = Some(a.ends_at.unwrap_or(now));
                            }
                            r.status = status;
                            r.suppressed_by = suppressed_by;
                            r.labels = a.labels;
                            r.annotations = a.annotations;
                            r.annotations_clipped = a.annotations_clipped;
                            r.summary = summary;
                            r.service = routed.service;
                            r.env = routed.env;
                            r.severity = routed.severity;
                            r.open_incident = routed.open_incident;
                            r.route = routed.route;
                            r.starts_at = a.starts_at;
                            r.ends_at = a.ends_at;
                            r.last_seen = now;
                            r.notifications += 1;
                            r.truncated_alerts = n.truncated_alerts;
                            if a.generator_url.is_some() {
                                r.generator_url = a.generator_url;
                            }
                            if n.receiver.is_some() {
                                r.receiver = n.receiver.clone();
                            }
                            if r.group_key != n.group_key {
                                r.group_key = n.group_key.clone();
                                is_changed = true;
                            }
                            (r, is_changed)
                        }
                    };
                    alerts_t.insert(record.fingerprint.as_str(), to_bytes(&record)?.as_slice())?;
                    groups.insert(
                        (record.group_key.as_str(), record.fingerprint.as_str()),
                        micros(record.first_seen),
                    )?;
                    if is_changed {
                        queue.insert(record.fingerprint.as_str(), micros(now))?;
                        changed.push(record);
                    }
                }
                stats_t.insert(n.source.as_str(), to_bytes(&st)?.as_slice())?;
                Ok((false, new, changed))
            })
            .await?;
        let suppressed = changed
            .iter()
            .filter(|a| a.status == AlertStatus::Suppressed)
            .count();
        for a in &changed {
            let change = if a.status == AlertStatus::Resolved {
                AlertChange::Resolved
            } else {
                AlertChange::Received
            };
            if let Ok(record) = serde_json::to_value(a) {
                self.bus.publish(LiveEvent::Alert {
                    change,
                    fingerprint: a.fingerprint.clone(),
                    record,
                });
            }
        }
        let mut report = IntakeReport {
            source,
            replay,
            alerts: count,
            new,
            changed: changed.len(),
            suppressed,
            fingerprints,
            triage: None,
            triage_error: None,
        };
        if !changed.is_empty() {
            match self.triage(actor).await {
                Ok(t) => report.triage = Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "alert_triage_after_intake_failed");
                    report.triage_error = Some(e.to_string());
                }
            }
        }
        Ok(report)
    }

    /// Process every queued alert: open, update or resolve incidents.
    pub async fn triage(&self, actor: &str) -> Result<TriageReport> {
        let _one = self.triage_lock.lock().await;
        let pending: Vec<(Alert, i64)> = self
            .store
            .read(|txn| {
                let q = txn.open_table(UNTRIAGED)?;
                let t = txn.open_table(ALERTS)?;
                let mut out = Vec::new();
                for row in q.iter()? {
                    let (k, v) = row?;
                    if let Some(a) = load_alert(&t, k.value())? {
                        out.push((a, v.value()));
                    }
                }
                Ok(out)
            })
            .await?;
        let mut report = TriageReport::default();
        let mut to_open: BTreeMap<String, Vec<(Alert, i64)>> = BTreeMap::new();
        for (a, queued) in pending {
            report.processed += 1;
            let fp = a.fingerprint.clone();
            // One alert's failure leaves it queued for the next pass and does not stop the rest.
            if let Err(e) = self
                .triage_one(a, queued, actor, &mut report, &mut to_open)
                .await
            {
                report
                    .failed
                    .push(json!({"fingerprint": fp, "error": e.to_string()}));
            }
        }
        for (group, alerts) in to_open {
            let id = match self.open_incident(&group, &alerts, actor).await {
                Ok(id) => id,
                Err(e) => {
                    for (a, _) in &alerts {
                        report
                            .failed
                            .push(json!({"fingerprint": a.fingerprint, "error": e.to_string()}));
                    }
                    continue;
                }
            };
            report.incidents_opened.push(id.clone());
            for (a, queued) in alerts {
                if let Err(e) = self
                    .done(&a.fingerprint, queued, Some(id.clone()), &mut report)
                    .await
                {
                    report
                        .failed
                        .push(json!({"fingerprint": a.fingerprint, "error": e.to_string()}));
                }
            }
        }
        if !report.failed.is_empty() {
            tracing::warn!(
                failed = report.failed.len(),
                "alert_triage_left_alerts_queued"
            );
        }
        Ok(report)
    }

    /// Triage one queued alert; firing alerts that need a new incident go to `to_open`.
    async fn triage_one(
        &self,
        a: Alert,
        queued: i64,
        actor: &str,
        report: &mut TriageReport,
        to_open: &mut BTreeMap<String, Vec<(Alert, i64)>>,
    ) -> Result<()> {
        match a.status {
            AlertStatus::Suppressed => {
                report.suppressed += 1;
                self.done(&a.fingerprint, queued, None, report).await
            }
            AlertStatus::Firing if !a.open_incident => {
                report.not_routed += 1;
                self.done(&a.fingerprint, queued, None, report).await
            }
            AlertStatus::Firing => {
                let own = match &a.incident_id {
                    Some(id) => self.active_incident(id).await?,
                    None => None,
                };
                let target = match own {
                    Some(inc) => Some(inc),
                    None => match self.group_incident(&a).await? {
                        Some(inc) => Some(inc),
                        None => self.fingerprint_incident(&a).await?,
                    },
                };
                match target {
                    Some(inc) => {
                        self.attach(&inc, &a, actor).await?;
                        push_unique(&mut report.incidents_updated, &inc.id);
                        self.done(&a.fingerprint, queued, Some(inc.id.clone()), report)
                            .await
                    }
                    None => {
                        to_open
                            .entry(a.group_key.clone())
                            .or_default()
                            .push((a, queued));
                        Ok(())
                    }
                }
            }
            AlertStatus::Resolved => {
                if let Some(id) = &a.incident_id {
                    if self.resolve_on(id, &a, actor).await? {
                        push_unique(&mut report.incidents_resolved, id);
                    }
                }
                self.done(&a.fingerprint, queued, None, report).await
            }
        }
    }

    /// Take an alert off the queue (if it did not change meanwhile) and link its incident.
    async fn done(
        &self,
        fp: &str,
        queued: i64,
        incident: Option<String>,
        report: &mut TriageReport,
    ) -> Result<()> {
        let fp = fp.to_string();
        let requeued = self
            .store
            .write(move |txn| {
                if let Some(id) = incident {
                    let mut t = txn.open(ALERTS)?;
                    if let Some(mut a) = load_alert(&*t, &fp)? {
                        if a.incident_id.as_deref() != Some(id.as_str()) {
                            a.incident_id = Some(id);
                            t.insert(fp.as_str(), to_bytes(&a)?.as_slice())?;
                        }
                    }
                }
                let mut q = txn.open(UNTRIAGED)?;
                let now_queued = q.get(fp.as_str())?.map(|g| g.value());
                if now_queued == Some(queued) {
                    q.remove(fp.as_str())?;
                    Ok(false)
                } else {
                    Ok(now_queued.is_some())
                }
            })
            .await?;
        if requeued {
            report.requeued += 1;
        }
        Ok(())
    }

    async fn active_incident(&self, id: &str) -> Result<Option<crate::incidents::model::Incident>> {
        match self.incidents.get(id).await {
            Ok(d) if d.incident.status.is_active() => Ok(Some(d.incident)),
            Ok(_) => Ok(None),
            Err(e) if incident_gone(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The active incident of another alert of the same group, if any.
    async fn group_incident(&self, a: &Alert) -> Result<Option<crate::incidents::model::Incident>> {
        let group = a.group_key.clone();
        let ids: BTreeSet<String> = self
            .store
            .read(move |txn| {
                let g = txn.open_table(BY_GROUP)?;
                let t = txn.open_table(ALERTS)?;
                let mut ids = BTreeSet::new();
                for row in g.range((group.as_str(), "")..)? {
                    let (k, _) = row?;
                    let (gk, fp) = k.value();
                    if gk != group {
                        break;
                    }
                    if let Some(id) = load_alert(&t, fp)?.and_then(|a| a.incident_id) {
                        ids.insert(id);
                    }
                }
                Ok(ids)
            })
            .await?;
        for id in ids.iter().rev() {
            if let Some(inc) = self.active_incident(id).await? {
                return Ok(Some(inc));
            }
        }
        Ok(None)
    }

    /// The newest active incident of the alert's service that already carries its
    /// fingerprint (one opened by hand, or by a triage that stopped before it took the alert
    /// off the queue).
    async fn fingerprint_incident(
        &self,
        a: &Alert,
    ) -> Result<Option<crate::incidents::model::Incident>> {
        let page = self
            .incidents
            .list(crate::incidents::ListQuery {
                status: vec![Status::Open, Status::Acknowledged, Status::Mitigated],
                service: vec![a.service.clone()],
                limit: crate::incidents::MAX_LIMIT,
                ..Default::default()
            })
            .await?;
        Ok(page
            .items
            .into_iter()
            .find(|i| i.fingerprints.contains(&a.fingerprint)))
    }

    async fn open_incident(
        &self,
        group: &str,
        alerts: &[(Alert, i64)],
        actor: &str,
    ) -> Result<String> {
        let now = self.clock.now();
        let first = &alerts[0].0;
        let severity = alerts
            .iter()
            .map(|(a, _)| a.severity)
            .min()
            .unwrap_or(Severity::P3);
        let earliest = alerts
            .iter()
            .map(|(a, _)| a.starts_at)
            .min()
            .unwrap_or(now)
            .min(now);
        let started_at = earliest.replace_millisecond(0).unwrap_or(earliest);
        let fingerprints: Vec<String> = alerts
            .iter()
            .map(|(a, _)| a.fingerprint.clone())
            .take(MAX_INCIDENT_FINGERPRINTS)
            .collect();
        let title: String = format!("{}: {}", alertname(first), first.summary)
            .chars()
            .take(300)
            .collect();
        let mut summary = String::new();
        for (a, _) in alerts.iter().take(20) {
            let desc = a
                .annotations
                .get("description")
                .map(String::as_str)
                .unwrap_or("");
            summary.push_str(&format!("- {} ({}) {}\n", a.summary, a.fingerprint, desc));
        }
        let summary: String = summary.chars().take(4000).collect();
        let inc = self
            .incidents
            .create(
                NewIncident {
                    service: first.service.clone(),
                    env: first.env.clone(),
                    severity,
                    title,
                    summary,
                    started_at: Some(started_at),
                    owner: None,
                    labels: vec!["alert".into()],
                    fingerprints: fingerprints.clone(),
                    created_by: None,
                },
                actor,
            )
            .await?;
        let truncated = alerts
            .iter()
            .map(|(a, _)| a.truncated_alerts)
            .max()
            .unwrap_or(0);
        self.event(
            &inc.id,
            format!("{} alert(s) firing: {}", alerts.len(), first.summary),
            json!({"status": "firing", "group_key": group, "fingerprints": fingerprints,
                   "source": first.source, "truncated_alerts": truncated,
                   "starts_at": rfc3339(earliest)}),
            actor,
        )
        .await?;
        Ok(inc.id)
    }

    async fn event(&self, id: &str, message: String, meta: Json, actor: &str) -> Result<()> {
        self.incidents
            .append_event(
                id,
                NewEvent {
                    kind: "alert".into(),
                    message: message.chars().take(2000).collect(),
                    meta: Some(meta),
                    ts: None,
                },
                actor,
            )
            .await
            .map(|_| ())
    }

    /// Attach a firing alert to an active incident: its fingerprint, an alert event, and a
    /// reopen when the incident was mitigated (a flap).
    async fn attach(
        &self,
        inc: &crate::incidents::model::Incident,
        a: &Alert,
        actor: &str,
    ) -> Result<()> {
        if !inc.fingerprints.contains(&a.fingerprint)
            && inc.fingerprints.len() < MAX_INCIDENT_FINGERPRINTS
        {
            let mut fps = inc.fingerprints.clone();
            fps.push(a.fingerprint.clone());
            self.incidents
                .update(
                    &inc.id,
                    IncidentPatch {
                        fingerprints: Some(fps),
                        ..Default::default()
                    },
                    actor,
                )
                .await?;
        }
        let refire = a.incident_id.as_deref() == Some(inc.id.as_str());
        let message = if refire {
            format!("Alert firing again: {} (flaps: {})", a.summary, a.flaps)
        } else {
            format!("Alert firing: {}", a.summary)
        };
        self.event(
            &inc.id,
            message,
            json!({"status": "firing", "fingerprint": a.fingerprint, "group_key": a.group_key,
                   "flaps": a.flaps, "starts_at": rfc3339(a.starts_at)}),
            actor,
        )
        .await?;
        if inc.status == Status::Mitigated {
            self.incidents
                .update(
                    &inc.id,
                    IncidentPatch {
                        status: Some(Status::Open),
                        message: Some(format!("alert {} fired again", a.fingerprint)),
                        ..Default::default()
                    },
                    actor,
                )
                .await?;
        }
        Ok(())
    }

    /// Record a resolved alert on its incident; when all of the incident's alerts are
    /// resolved, a resolved event and (by policy) mitigated. Returns whether all resolved.
    async fn resolve_on(&self, id: &str, a: &Alert, actor: &str) -> Result<bool> {
        let Some(inc) = self.active_incident(id).await? else {
            return Ok(false);
        };
        self.event(
            id,
            format!("Alert resolved: {}", a.summary),
            json!({"status": "resolved", "fingerprint": a.fingerprint,
                   "ends_at": a.resolved_at.map(rfc3339)}),
            actor,
        )
        .await?;
        let fps = inc.fingerprints.clone();
        let statuses: Vec<AlertStatus> = self
            .store
            .read(move |txn| {
                let t = txn.open_table(ALERTS)?;
                let mut v = Vec::new();
                for fp in &fps {
                    if let Some(a) = load_alert(&t, fp)? {
                        v.push(a.status);
                    }
                }
                Ok(v)
            })
            .await?;
        if statuses.is_empty() || statuses.iter().any(|s| *s != AlertStatus::Resolved) {
            return Ok(false);
        }
        self.incidents
            .append_event(
                id,
                NewEvent {
                    kind: "alert_resolved".into(),
                    message: format!("All {} alert(s) of this incident resolved", statuses.len()),
                    meta: Some(json!({"fingerprints": inc.fingerprints})),
                    ts: None,
                },
                actor,
            )
            .await?;
        // Mitigated at most: an incident is never closed by its alerts (P0/P1 least of all).
        let mitigate = self.routing.triage.on_all_resolved == OnResolved::Mitigate
            && matches!(inc.status, Status::Open | Status::Acknowledged);
        if mitigate {
            self.incidents
                .update(
                    id,
                    IncidentPatch {
                        status: Some(Status::Mitigated),
                        message: Some("all alerts resolved".into()),
                        ..Default::default()
                    },
                    actor,
                )
                .await?;
        }
        Ok(true)
    }

    /// Alerts, most recently seen first, with the intake counts per source.
    pub async fn list(&self, q: ListQuery) -> Result<Json> {
        let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
        let (mut items, total) = self
            .store
            .read(move |txn| {
                let t = txn.open_table(ALERTS)?;
                let mut v = Vec::new();
                for row in t.iter()? {
                    let (_, val) = row?;
                    let a: Alert = from_json(val.value())?;
                    let keep = q.status.is_none_or(|s| a.status == s)
                        && q.service
                            .as_ref()
                            .is_none_or(|s| a.service.eq_ignore_ascii_case(s))
                        && q.since.is_none_or(|t| a.last_seen >= t);
                    if keep {
                        v.push(a);
                    }
                }
                let total = v.len();
                Ok((v, total))
            })
            .await?;
        items.sort_by(|a, b| {
            b.last_seen
                .cmp(&a.last_seen)
                .then(a.fingerprint.cmp(&b.fingerprint))
        });
        items.truncate(limit);
        Ok(json!({"items": items, "total": total, "sources": self.stats().await?["sources"]}))
    }

    /// One alert.
    pub async fn get(&self, fp: String) -> Result<Alert> {
        check_fingerprint(&fp, "fingerprint")?;
        let key = fp.clone();
        self.store
            .read(move |txn| load_alert(&txn.open_table(ALERTS)?, &key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("alert {fp} not found")))
    }

    /// Intake counts and dedup ratio per source, alerts per status, and the queue length.
    pub async fn stats(&self) -> Result<Json> {
        self.store
            .read(|txn| {
                let s = txn.open_table(SOURCE_STATS)?;
                let mut sources = serde_json::Map::new();
                for row in s.iter()? {
                    let (k, v) = row?;
                    let st: SourceStats = from_json(v.value())?;
                    let mut j =
                        serde_json::to_value(&st).map_err(|e| Error::Internal(e.to_string()))?;
                    j["dedup_ratio"] = json!((st.dedup_ratio() * 1000.0).round() / 1000.0);
                    sources.insert(k.value().to_string(), j);
                }
                let mut by_status = BTreeMap::<&str, u64>::new();
                for row in txn.open_table(ALERTS)?.iter()? {
                    let (_, v) = row?;
                    let a: Alert = from_json(v.value())?;
                    *by_status.entry(a.status.as_str()).or_default() += 1;
                }
                let untriaged = txn.open_table(UNTRIAGED)?.len()?;
                Ok(json!({"sources": sources, "by_status": by_status, "untriaged": untriaged}))
            })
            .await
    }

    /// Acknowledge one alert, or every alert of an incident (and the incident when open).
    pub async fn ack(&self, target: AckTarget, actor: &str) -> Result<Json> {
        let now = self.clock.now();
        let by = actor.to_string();
        let incident = match &target {
            AckTarget::IncidentId(id) => {
                crate::incidents::model::validate_incident_id(id)?;
                Some(self.incidents.get(id).await?.incident)
            }
            AckTarget::Fingerprint(fp) => {
                check_fingerprint(fp, "fingerprint")?;
                None
            }
        };
        let t2 = target.clone();
        let acked: Vec<String> = self
            .store
            .write(move |txn| {
                let mut t = txn.open(ALERTS)?;
                let fps: Vec<String> = match &t2 {
                    AckTarget::Fingerprint(fp) => {
                        if load_alert(&*t, fp)?.is_none() {
                            return Err(Error::NotFound(format!("alert {fp} not found")));
                        }
                        vec![fp.clone()]
                    }
                    AckTarget::IncidentId(id) => {
                        let mut v = Vec::new();
                        for row in t.iter()? {
                            let (k, val) = row?;
                            let a: Alert = from_json(val.value())?;
                            if a.incident_id.as_deref() == Some(id.as_str()) {
                                v.push(k.value().to_string());
                            }
                        }
                        v
                    }
                };
                for fp in &fps {
                    if let Some(mut a) = load_alert(&*t, fp)? {
                        if a.acked_at.is_none() {
                            a.acked_at = Some(now);
                            a.acked_by = Some(by.clone());
                            t.insert(fp.as_str(), to_bytes(&a)?.as_slice())?;
                        }
                    }
                }
                Ok(fps)
            })
            .await?;
        let mut incident_status = None;
        if let Some(inc) = incident {
            incident_status = Some(inc.status);
            if inc.status == Status::Open {
                let i = self
                    .incidents
                    .update(
                        &inc.id,
                        IncidentPatch {
                            status: Some(Status::Acknowledged),
                            message: Some("alerts acknowledged".into()),
                            ..Default::default()
                        },
                        actor,
                    )
                    .await?;
                incident_status = Some(i.status);
            }
        }
        Ok(json!({"acknowledged": acked, "incident_status": incident_status}))
    }

    /// Silence alerts matching all `matchers` from now until `until`.
    pub async fn silence(
        &self,
        matchers: Vec<Matcher>,
        until: OffsetDateTime,
        reason: String,
        actor: &str,
    ) -> Result<Silence> {
        let now = self.clock.now();
        if matchers.is_empty() {
            return Err(Error::invalid("matchers", "must not be empty"));
        }
        if matchers.len() > 32 {
            return Err(Error::invalid("matchers", "more than 32 matchers"));
        }
        if until <= now {
            return Err(Error::invalid("until", "must be in the future"));
        }
        if until > now + time::Duration::days(366) {
            return Err(Error::invalid("until", "must be within a year"));
        }
        let reason = reason.trim().to_string();
        if reason.is_empty() {
            return Err(Error::invalid("reason", "must not be empty"));
        }
        crate::kernel::text::check_line("reason", &reason, 500)?;
        let s = Silence {
            id: format!("sil_{}", random_hex(8)),
            matchers,
            starts_at: now,
            ends_at: until,
            reason,
            created_by: actor.to_string(),
            expired_at: None,
        };
        let rec = s.clone();
        self.store
            .write(move |txn| {
                let mut t = txn.open(SILENCES)?;
                let mut active = 0usize;
                for row in t.iter()? {
                    let (_, v) = row?;
                    let x: Silence = from_json(v.value())?;
                    if x.expired_at.is_none() && x.ends_at > now {
                        active += 1;
                    }
                }
                if active >= MAX_SILENCES {
                    return Err(Error::invalid(
                        "matchers",
                        format!("already {MAX_SILENCES} active silences"),
                    ));
                }
                t.insert(rec.id.as_str(), to_bytes(&rec)?.as_slice())?;
                Ok(())
            })
            .await?;
        Ok(s)
    }

    /// End a silence now (it stays listed, expired).
    pub async fn unsilence(&self, id: String) -> Result<Silence> {
        let now = self.clock.now();
        crate::incidents::model::validate_record_id("silence", "sil", &id)?;
        self.store
            .write(move |txn| {
                let mut t = txn.open(SILENCES)?;
                let mut s: Silence = match t.get(id.as_str())? {
                    Some(g) => from_json(g.value())?,
                    None => return Err(Error::NotFound(format!("silence {id} not found"))),
                };
                if s.expired_at.is_none() {
                    s.expired_at = Some(now);
                    t.insert(id.as_str(), to_bytes(&s)?.as_slice())?;
                }
                Ok(s)
            })
            .await
    }

    /// Every silence, newest end first.
    pub async fn silences(&self) -> Result<Vec<Silence>> {
        let mut v: Vec<Silence> = self
            .store
            .read(|txn| {
                let mut v = Vec::new();
                for row in txn.open_table(SILENCES)?.iter()? {
                    let (_, val) = row?;
                    v.push(from_json(val.value())?);
                }
                Ok(v)
            })
            .await?;
        v.sort_by_key(|s: &Silence| std::cmp::Reverse(s.ends_at));
        Ok(v)
    }
}

fn push_unique(v: &mut Vec<String>, id: &str) {
    if !v.iter().any(|x| x == id) {
        v.push(id.to_string());
    }
}
