//! The incident log (SPEC §4): incidents, timeline events, follow-ups and artifacts.
//!
//! [`Incidents`] exposes plain async functions; the REST API and the `oncall_tool` both call
//! them. Every change appends a timeline event in the same transaction as the change itself.

pub mod model;
pub mod tables;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::ReadableTable;
use serde::Serialize;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::kernel::clock::{micros, random_hex, rfc3339, Clock};
use crate::kernel::events::{Event as LiveEvent, IncidentChange};
use crate::kernel::fs::{sync_dir, write_synced};
use crate::kernel::hash::sha256_hex;
use crate::store::Store;
use model::*;
use tables::*;

/// Default and maximum page size of a list.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page a caller may ask for.
pub const MAX_LIMIT: usize = 500;
/// Most events returned inline with an incident.
pub const MAX_INLINE_EVENTS: usize = 500;

/// The incident room.
#[derive(Clone)]
pub struct Incidents {
    store: Store,
    clock: Arc<dyn Clock>,
    artifacts_dir: PathBuf,
    attach_lock: Arc<tokio::sync::Mutex<()>>,
    bus: crate::kernel::events::Bus,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// True when a text-filtered page stopped at its scan budget: `items` may be fewer than
    /// asked, and `next_cursor` continues the search.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
}

/// An incident with its timeline and artifacts.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetail {
    pub incident: Incident,
    pub events: Vec<Event>,
    /// True when the timeline is longer than what is inline (page with `/events`).
    pub events_truncated: bool,
    pub artifacts: Vec<Artifact>,
}

/// Filters and paging for [`Incidents::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Any of these statuses (empty = all).
    pub status: Vec<Status>,
    pub service: Option<String>,
    pub env: Option<String>,
    /// Any of these severities (empty = all).
    pub severity: Vec<Severity>,
    /// Only incidents created at or after this time.
    pub since: Option<OffsetDateTime>,
    pub limit: usize,
    pub cursor: Option<String>,
    /// Case-insensitive words that must all appear in the id, title, summary, service,
    /// owner or labels. Checked on records, so a page examines at most [`MAX_TEXT_SCAN`]
    /// candidates and says so in `partial`.
    pub text: Option<String>,
}

/// Most candidates one text-filtered list page examines before it returns what it found.
pub const MAX_TEXT_SCAN: usize = 20_000;

/// One entry of the time-ordered event feed: the event and the incident it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct FeedItem {
    pub event: Event,
    pub incident: Option<IncidentBrief>,
}

/// Filters and paging for [`Incidents::feed`].
#[derive(Debug, Clone, Default)]
pub struct FeedQuery {
    /// Only these event types (empty = all).
    pub types: Vec<String>,
    pub limit: usize,
    /// `<ts µs>.<incident id>.<seq>` from a previous page.
    pub cursor: Option<String>,
}

/// Counts for the console's overview.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentStats {
    /// Incidents per status (every incident ever recorded).
    pub by_status: serde_json::Map<String, Json>,
    /// Active (open, acknowledged, mitigated) incidents.
    pub active_total: u64,
    /// Active incidents per severity.
    pub active_by_severity: serde_json::Map<String, Json>,
    /// Active incidents per service, with a severity breakdown, busiest first.
    pub active_by_service: Vec<Json>,
    pub env: Option<String>,
}

/// A follow-up as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub struct FollowupView {
    pub incident_id: String,
    pub event_id: String,
    pub title: String,
    pub owner: Option<String>,
    pub due: Option<String>,
    pub priority: String,
    pub status: String,
    pub overdue: bool,
    pub service: String,
    pub env: String,
}

/// A short incident line for summaries.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentBrief {
    pub id: String,
    pub service: String,
    pub env: String,
    pub severity: Severity,
    pub status: Status,
    pub title: String,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub started_at: OffsetDateTime,
}

/// Result of [`Incidents::followups_summary`].
#[derive(Debug, Clone, Serialize)]
pub struct FollowupsSummary {
    pub service: Option<String>,
    pub env: Option<String>,
    pub window_days: u32,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub since: OffsetDateTime,
    /// Every active (open, acknowledged or mitigated) P0/P1 incident, whatever its age.
    pub open_incidents: Vec<IncidentBrief>,
    /// Every open follow-up, soonest due first (no due date last).
    pub open_followups: Vec<FollowupView>,
    /// The open follow-ups that are past due, most overdue first.
    pub overdue_followups: Vec<FollowupView>,
    pub stats: Json,
}

/// Parse a list cursor `<created µs>.<id>`.
fn parse_cursor(c: &str) -> Result<(i64, String)> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server returned");
    let (ts, id) = c.split_once('.').ok_or_else(bad)?;
    let ts = ts.parse::<i64>().map_err(|_| bad())?;
    validate_incident_id(id).map_err(|_| bad())?;
    Ok((ts, id.to_string()))
}

impl Incidents {
    /// The room over `store`, with artifact files under `artifacts_dir`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, artifacts_dir: PathBuf) -> Self {
        Incidents {
            store,
            clock,
            artifacts_dir,
            attach_lock: Arc::new(tokio::sync::Mutex::new(())),
            bus: crate::kernel::events::Bus::default(),
        }
    }

    /// Publish changes on `bus` (after they are durable).
    pub fn with_bus(mut self, bus: crate::kernel::events::Bus) -> Self {
        self.bus = bus;
        self
    }

    fn announce<T: Serialize>(&self, change: IncidentChange, incident_id: &str, v: &T) {
        if let Ok(record) = serde_json::to_value(v) {
            self.bus.publish(LiveEvent::Incident {
                change,
                incident_id: incident_id.to_string(),
                record,
            });
        }
    }

    /// Where artifact files live.
    pub fn artifacts_dir(&self) -> &Path {
        &self.artifacts_dir
    }

    /// The store this room writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Create an incident (status `open`) and its first timeline event.
    pub async fn create(&self, input: NewIncident, actor: &str) -> Result<Incident> {
        let now = self.clock.now();
        let service = input.service.trim().to_string();
        let env = input.env.trim().to_ascii_lowercase();
        check_token("service", &service, 64)?;
        check_token("env", &env, 32)?;
        let title = input.title.trim().to_string();
        check_title(&title)?;
        check_text("summary", &input.summary, MAX_SUMMARY)?;
        let owner = input
            .owner
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty());
        if let Some(o) = &owner {
            check_line("owner", o, 128)?;
        }
        check_list("labels", &input.labels, 50, 64)?;
        check_list("fingerprints", &input.fingerprints, 100, 128)?;
        let created_by = input.created_by.unwrap_or_else(|| actor.to_string());
        check_line("created_by", &created_by, 128)?;
        let started_at = input.started_at.unwrap_or(now);
        if started_at > now + time::Duration::minutes(5) {
            return Err(Error::invalid("started_at", "is in the future"));
        }
        let mut inc = Incident {
            id: String::new(),
            service,
            env,
            severity: input.severity,
            status: Status::Open,
            title,
            summary: input.summary,
            started_at,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            closed_at: None,
            owner,
            created_by,
            labels: dedup(input.labels),
            fingerprints: dedup(input.fingerprints),
            created_at: now,
            updated_at: now,
        };
        let actor = actor.to_string();
        let inc = self
            .store
            .write(move |txn| {
                let prefix = format!(
                    "inc_{:04}{:02}{:02}_{:02}{:02}_",
                    now.year(),
                    now.month() as u8,
                    now.day(),
                    now.hour(),
                    now.minute()
                );
                {
                    let t = txn.open(INCIDENTS)?;
                    loop {
                        let id = format!("{prefix}{}", random_hex(6));
                        if t.get(id.as_str())?.is_none() {
                            inc.id = id;
                            break;
                        }
                    }
                }
                put_incident(txn, None, &inc)?;
                let mut ev = new_event(
                    &inc.id,
                    now,
                    "status_change",
                    format!("Incident opened: {}", inc.title),
                    json!({"from": null, "to": "open", "severity": inc.severity}),
                    &actor,
                );
                ev.seq = 1; // a new incident's timeline starts here
                insert_event(txn, &mut ev)?;
                Ok(inc)
            })
            .await?;
        self.announce(IncidentChange::Created, &inc.id, &inc);
        Ok(inc)
    }

    /// An incident with its timeline and artifacts.
    pub async fn get(&self, id: &str) -> Result<IncidentDetail> {
        validate_incident_id(id)?;
        let id = id.to_string();
        self.store
            .read(move |txn| {
                let inc = load_incident(&txn.open_table(INCIDENTS)?, &id)?
                    .ok_or_else(|| not_found(&id))?;
                let events_t = txn.open_table(EVENTS)?;
                let mut events = Vec::new();
                let mut truncated = false;
                for row in events_t.range((id.as_str(), 0u64)..=(id.as_str(), u64::MAX))? {
                    if events.len() == MAX_INLINE_EVENTS {
                        truncated = true;
                        break;
                    }
                    events.push(from_json::<Event>(row?.1.value())?);
                }
                let artifacts = artifacts_of(&txn.open_table(ARTIFACTS)?, &id)?;
                Ok(IncidentDetail {
                    incident: inc,
                    events,
                    events_truncated: truncated,
                    artifacts,
                })
            })
            .await
    }

    /// Timeline events after `after_seq`, oldest first.
    pub async fn events(&self, id: &str, after_seq: u64, limit: usize) -> Result<Page<Event>> {
        validate_incident_id(id)?;
        let limit = limit.clamp(1, MAX_INLINE_EVENTS);
        let id = id.to_string();
        self.store
            .read(move |txn| {
                if txn.open_table(INCIDENTS)?.get(id.as_str())?.is_none() {
                    return Err(not_found(&id));
                }
                let t = txn.open_table(EVENTS)?;
                let mut items = Vec::new();
                let mut more = false;
                for row in
                    t.range((id.as_str(), after_seq.saturating_add(1))..=(id.as_str(), u64::MAX))?
                {
                    if items.len() == limit {
                        more = true;
                        break;
                    }
                    items.push(from_json::<Event>(row?.1.value())?);
                }
                let next_cursor = if more {
                    items.last().map(|e: &Event| e.seq.to_string())
                } else {
                    None
                };
                Ok(Page {
                    items,
                    next_cursor,
                    partial: false,
                })
            })
            .await
    }

    /// Incidents matching `q`, newest first, one page at a time.
    pub async fn list(&self, q: ListQuery) -> Result<Page<Incident>> {
        let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
        if limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("at most {MAX_LIMIT}")));
        }
        let cursor = q.cursor.as_deref().map(parse_cursor).transpose()?;
        self.store
            .read(move |txn| list_in(txn, &q, limit, cursor))
            .await
    }

    /// Change fields of an incident. Status moves are validated; each per-status timestamp is
    /// set when that status is first entered. Returns the incident after the change.
    pub async fn update(&self, id: &str, patch: IncidentPatch, actor: &str) -> Result<Incident> {
        validate_incident_id(id)?;
        validate_patch(&patch)?;
        let now = self.clock.now();
        let (id, actor) = (id.to_string(), actor.to_string());
        let inc = self
            .store
            .write(move |txn| apply_patch(txn, &id, patch, &actor, now, None))
            .await?;
        self.announce(IncidentChange::Updated, &inc.id, &inc);
        Ok(inc)
    }

    /// Close an incident (from any other status).
    pub async fn close(&self, id: &str, message: Option<String>, actor: &str) -> Result<Incident> {
        self.transition(id, Status::Closed, message, actor).await
    }

    /// Reopen a mitigated, resolved or closed incident.
    pub async fn reopen(&self, id: &str, message: Option<String>, actor: &str) -> Result<Incident> {
        self.transition(id, Status::Open, message, actor).await
    }

    async fn transition(
        &self,
        id: &str,
        to: Status,
        message: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        validate_incident_id(id)?;
        let patch = IncidentPatch {
            status: Some(to),
            message,
            ..Default::default()
        };
        validate_patch(&patch)?;
        let now = self.clock.now();
        let (id, actor) = (id.to_string(), actor.to_string());
        let inc = self
            .store
            .write(move |txn| apply_patch(txn, &id, patch, &actor, now, Some(to)))
            .await?;
        self.announce(IncidentChange::Updated, &inc.id, &inc);
        Ok(inc)
    }

    /// Append a timeline event of any caller type (note, deploy, followup, …).
    pub async fn append_event(&self, id: &str, input: NewEvent, actor: &str) -> Result<Event> {
        validate_incident_id(id)?;
        let kind = input.kind.trim().to_string();
        check_event_type(&kind)?;
        if RESERVED_EVENT_TYPES.contains(&kind.as_str()) {
            return Err(Error::invalid(
                "type",
                format!("'{kind}' events are written by sofiia itself; use incident_update"),
            ));
        }
        check_text("message", &input.message, MAX_SUMMARY)?;
        let meta = if kind == "followup" {
            normalize_followup_meta(input.meta, &input.message)?
        } else {
            match input.meta {
                None | Some(Json::Null) => json!({}),
                Some(m @ Json::Object(_)) => m,
                Some(_) => return Err(Error::invalid("meta", "must be an object")),
            }
        };
        if serde_json::to_vec(&meta)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
            > MAX_META_BYTES
        {
            return Err(Error::TooLarge(format!(
                "meta is larger than {MAX_META_BYTES} bytes"
            )));
        }
        let now = self.clock.now();
        let ts = input.ts.unwrap_or(now);
        if ts > now + time::Duration::minutes(5) {
            return Err(Error::invalid("ts", "is in the future"));
        }
        let mut ev = new_event(id, ts, &kind, input.message, meta, actor);
        let id = id.to_string();
        let ev = self
            .store
            .write(move |txn| {
                touch(txn, &id, now)?;
                insert_event(txn, &mut ev)?;
                Ok(ev)
            })
            .await?;
        self.announce(IncidentChange::Event, &ev.incident_id, &ev);
        Ok(ev)
    }

    /// Mark a follow-up done; the follow-up event's meta records when and by whom, and a
    /// `followup_done` event is appended. Returns the updated follow-up event.
    pub async fn close_followup(
        &self,
        id: &str,
        event_id: &str,
        message: Option<String>,
        actor: &str,
    ) -> Result<Event> {
        validate_incident_id(id)?;
        validate_record_id("event", "ev", event_id)?;
        let message = message.unwrap_or_default();
        check_text("message", &message, MAX_SUMMARY)?;
        let now = self.clock.now();
        let (id, event_id, actor) = (id.to_string(), event_id.to_string(), actor.to_string());
        let fu = self
            .store
            .write(move |txn| {
                let open = txn.open(OPEN_FOLLOWUPS)?.get(event_id.as_str())?.map(|g| {
                    let (i, s) = g.value();
                    (i.to_string(), s)
                });
                let fu: Option<Event> = match open {
                    Some((inc_id, seq)) if inc_id == id => {
                        let t = txn.open(EVENTS)?;
                        let g = t.get((inc_id.as_str(), seq))?;
                        g.map(|g| from_json(g.value())).transpose()?
                    }
                    // Not open (or open under another incident): look in this incident's
                    // timeline to say whether it is done or not a follow-up at all.
                    _ => find_event(&*txn.open(EVENTS)?, &id, &event_id)?,
                };
                let mut fu = fu.ok_or_else(|| {
                    Error::NotFound(format!("incident {id} has no event {event_id}"))
                })?;
                if fu.kind != "followup" {
                    return Err(Error::invalid(
                        "event_id",
                        format!("{event_id} is a '{}' event, not a follow-up", fu.kind),
                    ));
                }
                if !is_open_followup(&fu) {
                    return Err(Error::Conflict(format!(
                        "follow-up {event_id} is already done"
                    )));
                }
                touch(txn, &id, now)?;
                if let Some(m) = fu.meta.as_object_mut() {
                    m.insert("status".into(), json!("done"));
                    m.insert("done_at".into(), json!(rfc3339(now)));
                    m.insert("done_by".into(), json!(actor));
                }
                replace_event(txn, &fu)?;
                let title = fu.meta.get("title").cloned().unwrap_or(Json::Null);
                let msg = if message.is_empty() {
                    format!("Follow-up done: {}", title.as_str().unwrap_or(""))
                } else {
                    message
                };
                let mut ev = new_event(
                    &id,
                    now,
                    "followup_done",
                    msg,
                    json!({"followup_id": event_id, "title": title}),
                    &actor,
                );
                insert_event(txn, &mut ev)?;
                Ok(fu)
            })
            .await?;
        self.announce(IncidentChange::Event, &fu.incident_id, &fu);
        Ok(fu)
    }

    /// Attach a json/md/txt file (≤ 2 MB). The name is sanitised; if it is taken, `-2`, `-3`…
    /// is added so stored files are never overwritten. sha256 and size are recorded.
    pub async fn attach_artifact(
        &self,
        id: &str,
        input: NewArtifact,
        actor: &str,
    ) -> Result<Artifact> {
        validate_incident_id(id)?;
        let (name, ext) = sanitize_artifact_name(&input.name)?;
        if let Some(f) = &input.format {
            let f = f.trim().to_ascii_lowercase();
            let f = if f == "markdown" { "md".to_string() } else { f };
            if f != ext {
                return Err(Error::invalid(
                    "format",
                    format!("'{f}' does not match the name's .{ext} extension"),
                ));
            }
        }
        let bytes = decode_content(&input)?;
        if bytes.len() > MAX_ARTIFACT_BYTES {
            return Err(Error::TooLarge(format!(
                "artifact is {} bytes; the limit is {MAX_ARTIFACT_BYTES}",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::invalid("content", format!(".{ext} artifacts must be UTF-8 text"))
        })?;
        if ext == "json" {
            serde_json::from_str::<serde::de::IgnoredAny>(text)
                .map_err(|e| Error::invalid("content", format!("not valid JSON: {e}")))?;
        }
        // Refuse early for an unknown incident, before touching the disk.
        {
            let id = id.to_string();
            self.store
                .read(
                    move |txn| match txn.open_table(INCIDENTS)?.get(id.as_str())? {
                        Some(_) => Ok(()),
                        None => Err(not_found(&id)),
                    },
                )
                .await?;
        }
        let sha = sha256_hex(&bytes);
        let size = bytes.len() as u64;
        // One attach at a time: choosing a free name and placing the file must not race.
        // The file is in place before the record commits (a crash in between leaves an
        // unreferenced file, never a record without its file); the writer thread does no I/O.
        let _guard = self.attach_lock.lock().await;
        let existing = {
            let id = id.to_string();
            self.store
                .read(move |txn| artifacts_of(&txn.open_table(ARTIFACTS)?, &id))
                .await?
        };
        let taken: HashSet<&str> = existing.iter().map(|a| a.name.as_str()).collect();
        let final_name = unique_name(&name, &ext, &taken);
        let dir = self.artifacts_dir.join(id);
        let path = dir.join(&final_name);
        {
            let (dir, path) = (dir.clone(), path.clone());
            tokio::task::spawn_blocking(move || -> Result<()> {
                std::fs::create_dir_all(&dir)?;
                let tmp = dir.join(format!(".upload-{}.tmp", random_hex(8)));
                let placed = write_synced(&tmp, &bytes).and_then(|_| {
                    // A file with that name but no record (left by a crash) is replaced.
                    std::fs::rename(&tmp, &path).map_err(Error::from)
                });
                if placed.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                placed?;
                sync_dir(&dir);
                Ok(())
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        }
        let now = self.clock.now();
        let art = Artifact {
            id: format!("art_{}", random_hex(8)),
            incident_id: id.to_string(),
            path: format!("{id}/{final_name}"),
            name: final_name,
            format: ext,
            sha256: sha,
            size_bytes: size,
            created_at: now,
            created_by: actor.to_string(),
        };
        let (id_s, actor_s, art_c) = (id.to_string(), actor.to_string(), art.clone());
        let result = self
            .store
            .write(move |txn| {
                touch(txn, &id_s, now)?;
                insert_artifact(txn, &art_c)?;
                let mut ev = new_event(
                    &id_s,
                    now,
                    "artifact",
                    format!("Artifact attached: {}", art_c.name),
                    json!({"artifact_id": art_c.id, "name": art_c.name, "format": art_c.format,
                           "size_bytes": art_c.size_bytes, "sha256": art_c.sha256}),
                    &actor_s,
                );
                insert_event(txn, &mut ev)?;
                // Returned so the write's audit record sizes what the caller gets back.
                Ok(art_c)
            })
            .await;
        if let Err(e) = result {
            let _ = tokio::fs::remove_file(&path).await;
            return Err(e);
        }
        self.announce(IncidentChange::Artifact, &art.incident_id, &art);
        Ok(art)
    }

    /// An artifact's metadata and bytes.
    pub async fn read_artifact(&self, id: &str, name: &str) -> Result<(Artifact, Vec<u8>)> {
        validate_incident_id(id)?;
        let (id_s, name_s) = (id.to_string(), name.to_string());
        let art = self
            .store
            .read(move |txn| {
                if txn.open_table(INCIDENTS)?.get(id_s.as_str())?.is_none() {
                    return Err(not_found(&id_s));
                }
                artifacts_of(&txn.open_table(ARTIFACTS)?, &id_s)?
                    .into_iter()
                    .find(|a| a.name == name_s || a.id == name_s)
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "incident {id_s} has no artifact '{}'",
                            clip(&name_s, 80)
                        ))
                    })
            })
            .await?;
        let path = self.artifacts_dir.join(artifact_rel_path(&art)?);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| Error::Io(format!("artifact file {}: {e}", art.path)))?;
        Ok((art, bytes))
    }

    /// Every active P0/P1 incident and every open follow-up (overdue ones separately), for one
    /// service and/or env if given. Neither ages out: an old unresolved P0 or a follow-up
    /// overdue for months is exactly what a release gate must see. `window_days` bounds the
    /// window statistics (incidents created in it).
    pub async fn followups_summary(
        &self,
        service: Option<String>,
        env: Option<String>,
        window_days: u32,
    ) -> Result<FollowupsSummary> {
        if !(1..=3650).contains(&window_days) {
            return Err(Error::invalid("window_days", "must be between 1 and 3650"));
        }
        if let Some(s) = &service {
            check_token("service", s, 64)?;
        }
        let env = env.map(|e| e.to_ascii_lowercase());
        if let Some(e) = &env {
            check_token("env", e, 32)?;
        }
        let now = self.clock.now();
        let since = now - time::Duration::days(window_days as i64);
        self.store
            .read(move |txn| {
                let idx = txn.open_table(INDEX)?;
                let incs = txn.open_table(INCIDENTS)?;
                let matches = |b: &Brief| {
                    service.as_deref().is_none_or(|s| s == b.service)
                        && env.as_deref().is_none_or(|e| e == b.env)
                };
                let mut open_incidents = Vec::new();
                for status in Status::ALL.into_iter().filter(|s| s.is_active()) {
                    let dim = format!("status:{}", status.as_str());
                    for row in
                        idx.range((dim.as_str(), i64::MIN, "")..=(dim.as_str(), i64::MAX, ""))?
                    {
                        let (k, v) = row?;
                        let b = parse_brief(v.value());
                        if !matches(&b) || !matches!(b.severity, Some(Severity::P0 | Severity::P1))
                        {
                            continue;
                        }
                        if let Some(inc) = load_incident(&incs, k.value().2)? {
                            open_incidents.push(IncidentBrief {
                                id: inc.id,
                                service: inc.service,
                                env: inc.env,
                                severity: inc.severity,
                                status: inc.status,
                                title: inc.title,
                                started_at: inc.started_at,
                            });
                        }
                    }
                }
                open_incidents
                    .sort_by(|a, b| (a.severity, b.started_at).cmp(&(b.severity, a.started_at)));

                let dim = match (&service, &env) {
                    (Some(s), _) => format!("service:{s}"),
                    (None, Some(e)) => format!("env:{e}"),
                    (None, None) => "all".to_string(),
                };
                let mut in_window = 0usize;
                for row in
                    idx.range((dim.as_str(), micros(since), "")..=(dim.as_str(), i64::MAX, ""))?
                {
                    if matches(&parse_brief(row?.1.value())) {
                        in_window += 1;
                    }
                }

                let events = txn.open_table(EVENTS)?;
                let mut open_followups = Vec::new();
                for row in txn.open_table(OPEN_FOLLOWUPS)?.iter()? {
                    let (_, v) = row?;
                    let (inc_id, seq) = v.value();
                    let Some(inc) = load_incident(&incs, inc_id)? else {
                        continue;
                    };
                    let brief = brief_of(&inc);
                    if !matches(&parse_brief(&brief)) {
                        continue;
                    }
                    let Some(g) = events.get((inc_id, seq))? else {
                        continue;
                    };
                    let ev: Event = from_json(g.value())?;
                    if is_open_followup(&ev) {
                        open_followups.push(followup_view(&ev, &inc, now));
                    }
                }
                open_followups.sort_by(|a, b| (&a.due, &a.event_id).cmp(&(&b.due, &b.event_id)));
                let overdue_followups: Vec<FollowupView> = open_followups
                    .iter()
                    .filter(|f| f.overdue)
                    .cloned()
                    .collect();
                let count = |s: Severity| open_incidents.iter().filter(|i| i.severity == s).count();
                let stats = json!({
                    "open_p0": count(Severity::P0),
                    "open_p1": count(Severity::P1),
                    "open_followups": open_followups.len(),
                    "overdue_followups": overdue_followups.len(),
                    "incidents_in_window": in_window,
                });
                Ok(FollowupsSummary {
                    service,
                    env,
                    window_days,
                    since,
                    open_incidents,
                    open_followups,
                    overdue_followups,
                    stats,
                })
            })
            .await
    }
}

impl Incidents {
    /// Timeline events of every incident, newest first, with the incident they belong to.
    pub async fn feed(&self, q: FeedQuery) -> Result<Page<FeedItem>> {
        let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
        if limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("at most {MAX_LIMIT}")));
        }
        for t in &q.types {
            check_event_type(t)
                .map_err(|_| Error::invalid("types", format!("'{t}' is not an event type")))?;
        }
        let cursor = match q.cursor.as_deref() {
            None => None,
            Some(c) => Some(parse_feed_cursor(c)?),
        };
        self.store
            .read(move |txn| {
                let feed = txn.open_table(EVENT_FEED)?;
                let events = txn.open_table(EVENTS)?;
                let incs = txn.open_table(INCIDENTS)?;
                let range = match &cursor {
                    Some((ts, id, seq)) => feed.range(..(*ts, id.as_str(), *seq))?,
                    None => feed.range::<(i64, &str, u64)>(..)?,
                };
                let mut keys = Vec::with_capacity(limit + 1);
                for row in range.rev() {
                    let (k, v) = row?;
                    if !q.types.is_empty() && !q.types.iter().any(|t| t == v.value()) {
                        continue;
                    }
                    let (ts, id, seq) = k.value();
                    keys.push((ts, id.to_string(), seq));
                    if keys.len() > limit {
                        break;
                    }
                }
                let more = keys.len() > limit;
                keys.truncate(limit);
                let mut items = Vec::with_capacity(keys.len());
                for (_, id, seq) in &keys {
                    let Some(g) = events.get((id.as_str(), *seq))? else {
                        continue;
                    };
                    let event: Event = from_json(g.value())?;
                    let incident = load_incident(&incs, id)?.map(|i| brief_view(&i));
                    items.push(FeedItem { event, incident });
                }
                let next_cursor = more
                    .then(|| keys.last().map(|(ts, id, seq)| format!("{ts}.{id}.{seq}")))
                    .flatten();
                Ok(Page {
                    items,
                    next_cursor,
                    partial: false,
                })
            })
            .await
    }

    /// Counts for the overview: incidents per status, and the active ones per severity and
    /// service (optionally for one env). Reads index entries only, never records.
    pub async fn stats(&self, env: Option<String>) -> Result<IncidentStats> {
        let env = env
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| !e.is_empty());
        if let Some(e) = &env {
            check_token("env", e, 32)?;
        }
        self.store
            .read(move |txn| {
                let idx = txn.open_table(INDEX)?;
                let counts = txn.open_table(INDEX_COUNTS)?;
                let mut by_status = serde_json::Map::new();
                let mut active_total = 0u64;
                let mut by_sev: std::collections::BTreeMap<&'static str, u64> =
                    Severity::ALL.iter().map(|s| (s.as_str(), 0)).collect();
                let mut by_service: std::collections::HashMap<String, [u64; 4]> =
                    std::collections::HashMap::new();
                for status in Status::ALL {
                    let dim = format!("status:{}", status.as_str());
                    if env.is_none() || !status.is_active() {
                        let n = counts.get(dim.as_str())?.map(|g| g.value()).unwrap_or(0);
                        if env.is_none() {
                            by_status.insert(status.as_str().into(), n.into());
                        }
                        if !status.is_active() {
                            continue;
                        }
                    }
                    let mut n_env = 0u64;
                    for row in
                        idx.range((dim.as_str(), i64::MIN, "")..=(dim.as_str(), i64::MAX, ""))?
                    {
                        let (_, v) = row?;
                        let b = parse_brief(v.value());
                        if env.as_deref().is_some_and(|e| e != b.env) {
                            continue;
                        }
                        n_env += 1;
                        let Some(sev) = b.severity else { continue };
                        active_total += 1;
                        *by_sev.entry(sev.as_str()).or_default() += 1;
                        by_service.entry(b.service.to_string()).or_default()[sev as usize] += 1;
                    }
                    if env.is_some() {
                        by_status.insert(status.as_str().into(), n_env.into());
                    }
                }
                let mut services: Vec<(String, [u64; 4])> = by_service.into_iter().collect();
                services.sort_by(|a, b| {
                    (b.1, b.1.iter().sum::<u64>(), &a.0).cmp(&(a.1, a.1.iter().sum::<u64>(), &b.0))
                });
                let active_by_service = services
                    .into_iter()
                    .map(|(service, n)| {
                        json!({"service": service, "total": n.iter().sum::<u64>(),
                               "P0": n[0], "P1": n[1], "P2": n[2], "P3": n[3]})
                    })
                    .collect();
                Ok(IncidentStats {
                    by_status,
                    active_total,
                    active_by_severity: by_sev
                        .into_iter()
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect(),
                    active_by_service,
                    env,
                })
            })
            .await
    }
}

fn brief_view(inc: &Incident) -> IncidentBrief {
    IncidentBrief {
        id: inc.id.clone(),
        service: inc.service.clone(),
        env: inc.env.clone(),
        severity: inc.severity,
        status: inc.status,
        title: inc.title.clone(),
        started_at: inc.started_at,
    }
}

/// Parse a feed cursor `<ts µs>.<incident id>.<seq>`.
fn parse_feed_cursor(c: &str) -> Result<(i64, String, u64)> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server returned");
    let (ts, rest) = c.split_once('.').ok_or_else(bad)?;
    let (id, seq) = rest.rsplit_once('.').ok_or_else(bad)?;
    let ts = ts.parse::<i64>().map_err(|_| bad())?;
    let seq = seq.parse::<u64>().map_err(|_| bad())?;
    validate_incident_id(id).map_err(|_| bad())?;
    Ok((ts, id.to_string(), seq))
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("incident {id} not found"))
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    v.retain(|x| seen.insert(x.clone()));
    v
}

/// A new event with a fresh id (seq assigned on insert).
pub fn new_event(
    incident_id: &str,
    ts: OffsetDateTime,
    kind: &str,
    message: String,
    meta: Json,
    actor: &str,
) -> Event {
    Event {
        id: format!("ev_{}", random_hex(8)),
        incident_id: incident_id.to_string(),
        seq: 0,
        ts,
        kind: kind.to_string(),
        message,
        meta,
        actor: actor.to_string(),
    }
}

/// Bump `updated_at` of an existing incident (NotFound otherwise).
fn touch(txn: &crate::store::WriteTx, id: &str, now: OffsetDateTime) -> Result<Incident> {
    let old = load_incident(&*txn.open(INCIDENTS)?, id)?.ok_or_else(|| not_found(id))?;
    let mut new = old.clone();
    new.updated_at = now;
    put_incident(txn, Some(&old), &new)?;
    Ok(new)
}

fn validate_patch(p: &IncidentPatch) -> Result<()> {
    if let Some(t) = &p.title {
        check_title(t.trim())?;
    }
    if let Some(s) = &p.summary {
        check_text("summary", s, MAX_SUMMARY)?;
    }
    if let Some(o) = &p.owner {
        check_line("owner", o.trim(), 128)?;
    }
    if let Some(s) = &p.service {
        check_token("service", s.trim(), 64)?;
    }
    if let Some(e) = &p.env {
        check_token("env", e.trim(), 32)?;
    }
    if let Some(l) = &p.labels {
        check_list("labels", l, 50, 64)?;
    }
    if let Some(f) = &p.fingerprints {
        check_list("fingerprints", f, 100, 128)?;
    }
    if let Some(m) = &p.message {
        check_text("message", m, MAX_SUMMARY)?;
    }
    Ok(())
}

/// Apply a patch inside a write transaction: validate against the stored record, then write
/// the record and one event per kind of change. `strict` makes a no-op transition a conflict
/// (explicit close/reopen).
fn apply_patch(
    txn: &crate::store::WriteTx,
    id: &str,
    p: IncidentPatch,
    actor: &str,
    now: OffsetDateTime,
    strict: Option<Status>,
) -> Result<Incident> {
    let old = load_incident(&*txn.open(INCIDENTS)?, id)?.ok_or_else(|| not_found(id))?;
    let mut new = old.clone();
    let mut events: Vec<Event> = Vec::new();
    let note = p.message.clone().unwrap_or_default();
    if let Some(to) = strict {
        if old.status == to {
            return Err(Error::Conflict(format!(
                "incident {id} is already {}",
                to.as_str()
            )));
        }
    }
    if let Some(to) = p.status {
        if to != old.status {
            if !old.status.can_move_to(to) {
                return Err(Error::Validation {
                    code: "invalid_transition",
                    message: format!(
                        "status: cannot move from {} to {}; reopen it first",
                        old.status.as_str(),
                        to.as_str()
                    ),
                });
            }
            new.status = to;
            if let Some(slot) = new.status_ts_mut(to) {
                if slot.is_none() {
                    *slot = Some(now);
                }
            }
            let verb = if to == Status::Open {
                "reopened".to_string()
            } else {
                to.as_str().to_string()
            };
            let msg = if note.is_empty() {
                format!("Status {} → {}", old.status.as_str(), verb)
            } else {
                note.clone()
            };
            events.push(new_event(
                id,
                now,
                "status_change",
                msg,
                json!({"from": old.status, "to": to}),
                actor,
            ));
        }
    }
    if let Some(sev) = p.severity {
        if sev != old.severity {
            new.severity = sev;
            let msg = if note.is_empty() {
                format!("Severity {} → {}", old.severity.as_str(), sev.as_str())
            } else {
                note.clone()
            };
            events.push(new_event(
                id,
                now,
                "severity_change",
                msg,
                json!({"from": old.severity, "to": sev}),
                actor,
            ));
        }
    }
    let mut changed: Vec<&str> = Vec::new();
    let mut set = |field: &'static str, differs: bool| {
        if differs {
            changed.push(field);
        }
        differs
    };
    if let Some(t) = p.title.map(|t| t.trim().to_string()) {
        if set("title", t != old.title) {
            new.title = t;
        }
    }
    if let Some(s) = p.summary {
        if set("summary", s != old.summary) {
            new.summary = s;
        }
    }
    if let Some(o) = p.owner.map(|o| o.trim().to_string()) {
        let o = (!o.is_empty()).then_some(o);
        if set("owner", o != old.owner) {
            new.owner = o;
        }
    }
    if let Some(s) = p.service.map(|s| s.trim().to_string()) {
        if set("service", s != old.service) {
            new.service = s;
        }
    }
    if let Some(e) = p.env.map(|e| e.trim().to_ascii_lowercase()) {
        if set("env", e != old.env) {
            new.env = e;
        }
    }
    if let Some(l) = p.labels.map(dedup) {
        if set("labels", l != old.labels) {
            new.labels = l;
        }
    }
    if let Some(f) = p.fingerprints.map(dedup) {
        if set("fingerprints", f != old.fingerprints) {
            new.fingerprints = f;
        }
    }
    if let Some(s) = p.started_at {
        if s > now + time::Duration::minutes(5) {
            return Err(Error::invalid("started_at", "is in the future"));
        }
        if set("started_at", s != old.started_at) {
            new.started_at = s;
        }
    }
    if !changed.is_empty() {
        let msg = if note.is_empty() {
            format!("Updated {}", changed.join(", "))
        } else {
            note.clone()
        };
        events.push(new_event(
            id,
            now,
            "update",
            msg,
            json!({"fields": changed}),
            actor,
        ));
    }
    if events.is_empty() {
        return Ok(old);
    }
    new.updated_at = now;
    put_incident(txn, Some(&old), &new)?;
    for mut ev in events {
        insert_event(txn, &mut ev)?;
    }
    Ok(new)
}

fn list_in(
    txn: &redb::ReadTransaction,
    q: &ListQuery,
    limit: usize,
    cursor: Option<(i64, String)>,
) -> Result<Page<Incident>> {
    let idx = txn.open_table(INDEX)?;
    let counts = txn.open_table(INDEX_COUNTS)?;
    let mut candidates: Vec<String> = Vec::new();
    if let [s] = q.status.as_slice() {
        candidates.push(format!("status:{}", s.as_str()));
    }
    if let Some(s) = &q.service {
        candidates.push(format!("service:{s}"));
    }
    if let Some(e) = &q.env {
        candidates.push(format!("env:{e}"));
    }
    if let [s] = q.severity.as_slice() {
        candidates.push(format!("severity:{}", s.as_str()));
    }
    let mut driver = "all".to_string();
    let mut best = u64::MAX;
    for c in candidates {
        let n = counts.get(c.as_str())?.map(|g| g.value()).unwrap_or(0);
        if n < best {
            best = n;
            driver = c;
        }
    }
    if best == 0 {
        return Ok(Page {
            items: Vec::new(),
            next_cursor: None,
            partial: false,
        });
    }
    let lo_ts = q.since.map(micros).unwrap_or(i64::MIN);
    let d = driver.as_str();
    let range = match &cursor {
        Some((ts, id)) => idx.range((d, lo_ts, "")..(d, *ts, id.as_str()))?,
        None => idx.range((d, lo_ts, "")..=(d, i64::MAX, ""))?,
    };
    let incs = txn.open_table(INCIDENTS)?;
    let words: Vec<String> = q
        .text
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let mut found: Vec<(i64, String, Option<Incident>)> = Vec::with_capacity(limit + 1);
    let mut scanned = 0usize;
    let mut last_scanned: Option<(i64, String)> = None;
    let mut partial = false;
    for row in range.rev() {
        let (k, v) = row?;
        let b = parse_brief(v.value());
        let ok = (q.status.is_empty() || b.status.is_some_and(|s| q.status.contains(&s)))
            && q.service.as_deref().is_none_or(|s| s == b.service)
            && q.env.as_deref().is_none_or(|e| e == b.env)
            && (q.severity.is_empty() || b.severity.is_some_and(|s| q.severity.contains(&s)));
        if !ok {
            continue;
        }
        let (_, ts, id) = k.value();
        if words.is_empty() {
            found.push((ts, id.to_string(), None));
        } else {
            if scanned == MAX_TEXT_SCAN {
                partial = true;
                break;
            }
            scanned += 1;
            last_scanned = Some((ts, id.to_string()));
            let Some(inc) = load_incident(&incs, id)? else {
                continue;
            };
            if !text_matches(&inc, &words) {
                continue;
            }
            found.push((ts, id.to_string(), Some(inc)));
        }
        if found.len() > limit {
            break;
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    let next_cursor = if more {
        found.last().map(|(ts, id, _)| format!("{ts}.{id}"))
    } else if partial {
        last_scanned.map(|(ts, id)| format!("{ts}.{id}"))
    } else {
        None
    };
    let mut items = Vec::with_capacity(found.len());
    for (_, id, inc) in found {
        match inc {
            Some(inc) => items.push(inc),
            None => {
                if let Some(inc) = load_incident(&incs, &id)? {
                    items.push(inc);
                }
            }
        }
    }
    Ok(Page {
        items,
        next_cursor,
        partial,
    })
}

/// Whether every word appears in one of the incident's searchable fields.
fn text_matches(inc: &Incident, words: &[String]) -> bool {
    let hay = format!(
        "{} {} {} {} {} {}",
        inc.id,
        inc.title,
        inc.summary,
        inc.service,
        inc.owner.as_deref().unwrap_or(""),
        inc.labels.join(" ")
    )
    .to_lowercase();
    words.iter().all(|w| hay.contains(w.as_str()))
}

fn followup_view(ev: &Event, inc: &Incident, now: OffsetDateTime) -> FollowupView {
    let s = |k: &str| ev.meta.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let due = s("due");
    let overdue = due
        .as_deref()
        .and_then(crate::kernel::clock::parse_ts)
        .is_some_and(|d| d < now);
    FollowupView {
        incident_id: ev.incident_id.clone(),
        event_id: ev.id.clone(),
        title: s("title").unwrap_or_default(),
        owner: s("owner"),
        due,
        priority: s("priority").unwrap_or_else(|| "P2".into()),
        status: s("status").unwrap_or_else(|| "open".into()),
        overdue,
        service: inc.service.clone(),
        env: inc.env.clone(),
    }
}

fn decode_content(input: &NewArtifact) -> Result<Vec<u8>> {
    use base64::Engine as _;
    let enc = input
        .encoding
        .as_deref()
        .unwrap_or("utf8")
        .to_ascii_lowercase();
    match (&input.content, &input.content_base64) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "content",
            "give content or content_base64, not both",
        )),
        (None, None) => Err(Error::invalid("content", "is required")),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| Error::invalid("content_base64", format!("not valid base64: {e}"))),
        (Some(c), None) => match enc.as_str() {
            "utf8" | "utf-8" | "text" => Ok(c.clone().into_bytes()),
            "base64" => base64::engine::general_purpose::STANDARD
                .decode(c.trim())
                .map_err(|e| Error::invalid("content", format!("not valid base64: {e}"))),
            other => Err(Error::invalid(
                "encoding",
                format!("'{}' is not utf8 or base64", clip(other, 20)),
            )),
        },
    }
}

fn unique_name(name: &str, ext: &str, taken: &HashSet<&str>) -> String {
    if !taken.contains(name) {
        return name.to_string();
    }
    let stem = name.strip_suffix(&format!(".{ext}")).unwrap_or(name);
    (2..)
        .map(|n| format!("{stem}-{n}.{ext}"))
        .find(|c| !taken.contains(c.as_str()))
        .unwrap_or_else(|| format!("{stem}-{}.{ext}", random_hex(4)))
}

/// Where an artifact's file lives, relative to the artifacts folder: rebuilt from the
/// incident id and the (sanitised) name, never taken from the stored `path`, so a record
/// from an untrusted backup or import cannot point outside the folder.
pub fn artifact_rel_path(a: &Artifact) -> Result<PathBuf> {
    let safe = validate_incident_id(&a.incident_id).is_ok()
        && sanitize_artifact_name(&a.name).is_ok_and(|(n, _)| n == a.name);
    if !safe {
        return Err(Error::Storage(format!(
            "artifact {} has an unsafe incident id or name",
            clip(&a.id, 60)
        )));
    }
    Ok(Path::new(&a.incident_id).join(&a.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(incident_id: &str, name: &str) -> Artifact {
        Artifact {
            id: "art_x".into(),
            incident_id: incident_id.into(),
            name: name.into(),
            format: "md".into(),
            path: "../../../../etc/passwd".into(),
            sha256: String::new(),
            size_bytes: 0,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            created_by: "x".into(),
        }
    }

    #[test]
    fn artifact_files_are_located_from_id_and_name_never_the_stored_path() {
        let ok = artifact_rel_path(&art("inc_20260101_0000_abc", "pm.md")).unwrap();
        assert_eq!(ok, Path::new("inc_20260101_0000_abc").join("pm.md"));
        assert!(artifact_rel_path(&art("inc_20260101_0000_abc", "../x.md")).is_err());
        assert!(artifact_rel_path(&art("/etc", "pm.md")).is_err());
    }

    #[test]
    fn unique_names_count_up() {
        let taken: HashSet<&str> = ["a.md", "a-2.md"].into_iter().collect();
        assert_eq!(unique_name("a.md", "md", &taken), "a-3.md");
        assert_eq!(unique_name("b.md", "md", &taken), "b.md");
    }
}
