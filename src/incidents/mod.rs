//! The incident log (SPEC §4): incidents, timeline events, follow-ups and artifacts.
//!
//! [`Incidents`] exposes plain async functions; the REST API and the `oncall_tool` both call
//! them. Every change appends a timeline event in the same transaction as the change itself.
//! The room's functions live by concern: `lifecycle` (create, update, close, reopen),
//! `timeline` (events, follow-ups), `artifacts`, `queries` (get, lists, feed, stats); the
//! records and their checks in [`model`], the tables and migrations in [`tables`].

mod artifacts;
mod lifecycle;
pub mod model;
mod queries;
pub mod tables;
mod timeline;

pub use artifacts::artifact_rel_path;

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
    /// How many items match in all (an incident list without a text filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// With a text filter: how many incidents match the other filters (the text search's
    /// candidates), and how many of them this page examined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanned: Option<u64>,
}

impl<T> Page<T> {
    /// A page with no counts.
    pub fn new(items: Vec<T>, next_cursor: Option<String>) -> Self {
        Page {
            items,
            next_cursor,
            partial: false,
            total: None,
            candidates: None,
            scanned: None,
        }
    }
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
    /// Any of these services (empty = all), matched without regard to case.
    pub service: Vec<String>,
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
    pub sort: Sort,
}

/// The order of an incident list. Within each, newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// By creation time, newest first.
    #[default]
    Created,
    /// P0 first, then P1, P2, P3; newest created first within each.
    Severity,
    /// Most recently updated first.
    Updated,
    /// Most recently started first.
    Started,
}

impl Sort {
    pub const ALL: [Sort; 4] = [Sort::Created, Sort::Severity, Sort::Updated, Sort::Started];

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Created => "created",
            Sort::Severity => "severity",
            Sort::Updated => "updated",
            Sort::Started => "started",
        }
    }

    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|x| x.as_str() == s.trim())
    }
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

/// What [`Incidents::followups`] lists: open follow-ups, optionally only overdue ones, of
/// some services (any case), one env, one owner (any case).
#[derive(Debug, Clone, Default)]
pub struct FollowupQuery {
    pub service: Vec<String>,
    pub env: Option<String>,
    pub owner: Option<String>,
    pub overdue: bool,
    /// Earliest due first (else latest due first).
    pub soonest: bool,
    pub limit: usize,
    pub cursor: Option<String>,
}

/// A service and how many incidents it has.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceCount {
    pub service: String,
    pub incidents: u64,
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
