//! The incident room's redb tables and the transaction-level helpers that keep them in step.
//!
//! Records are JSON (the same serde types the JSONL export writes). The list filters use one
//! index table keyed `(dimension, created_at µs, id)` where the dimension is `all`,
//! `status:<s>`, `service:<s>`, `env:<e>` or `severity:<P>`; each entry's value carries the
//! incident's `status|service|env|severity`, so combined filters are checked on the index
//! without loading records. `INDEX_COUNTS` lets a list pick its most selective dimension.

use redb::{ReadableTable, TableDefinition};

use super::model::{Artifact, Event, Incident, Severity, Status};
use crate::error::{Error, Result};
use crate::store::Migration;
use crate::store::{AnyTable, WriteTx};

/// id → incident JSON.
pub const INCIDENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("incidents");
/// (dimension, created_at µs, id) → `status|service|env|severity`.
pub const INDEX: TableDefinition<(&str, i64, &str), &str> = TableDefinition::new("incident_index");
/// dimension → number of index entries (all but `all`, whose count is the incidents table's
/// length).
pub const INDEX_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("incident_index_counts");
/// (incident id, seq) → event JSON.
pub const EVENTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("incident_events");
/// (incident id, artifact id) → artifact JSON.
pub const ARTIFACTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("incident_artifacts");
/// (event ts µs, incident id, seq) → event type: every incident's timeline in one time order,
/// for the console's "latest events" and the Events tab's history.
pub const EVENT_FEED: TableDefinition<(i64, &str, u64), &str> =
    TableDefinition::new("incident_event_feed");
/// (incident id, event ts µs, seq) → (): each timeline in time order, insertion order
/// breaking ties. Every reader of a timeline walks this (an event posted late with an earlier
/// `ts` is read where it happened, not where it was appended).
pub const EVENT_ORDER: TableDefinition<(&str, i64, u64), ()> =
    TableDefinition::new("incident_event_order");
/// (order, key µs, id) → `status|service|env|severity`: every incident once per order other
/// than creation, `updated` (by `updated_at`) and `started` (by `started_at`), so the list
/// sorts by them without loading records.
pub const SORT_INDEX: TableDefinition<(&str, i64, &str), &str> =
    TableDefinition::new("incident_sort_index");
/// follow-up event id → (incident id, seq), only while the follow-up is open.
pub const OPEN_FOLLOWUPS: TableDefinition<&str, (&str, u64)> =
    TableDefinition::new("incident_open_followups");
/// (due µs, or `i64::MAX` without a due date; follow-up event id) → (incident id, seq): the
/// open follow-ups in due order, so the overdue ones page without reading every one.
pub const FOLLOWUP_DUE: TableDefinition<(i64, &str), (&str, u64)> =
    TableDefinition::new("incident_followup_due");

/// Every table of this room (created at start, copied by backups).
pub const ALL: &[&dyn AnyTable] = &[
    &INCIDENTS,
    &INDEX,
    &INDEX_COUNTS,
    &EVENTS,
    &ARTIFACTS,
    &OPEN_FOLLOWUPS,
    &EVENT_FEED,
    &EVENT_ORDER,
    &SORT_INDEX,
    &FOLLOWUP_DUE,
];

/// The incident log's schema steps: version 2 fills the time-ordered event feed from the
/// timelines already stored, version 5 the time order of each timeline, version 6 the list's
/// orders by update and start time, version 7 the open follow-ups by due date.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 2,
        what: "time-ordered event feed from the stored timelines",
        run: backfill_event_feed,
    },
    Migration {
        version: 5,
        what: "each timeline in time order",
        run: backfill_event_order,
    },
    Migration {
        version: 6,
        what: "incident lists sorted by update and start time",
        run: backfill_sort_index,
    },
    Migration {
        version: 7,
        what: "open follow-ups by due date",
        run: backfill_followup_due,
    },
];

/// The index dimension names for an incident.
pub fn dims(inc: &Incident) -> [String; 5] {
    [
        "all".to_string(),
        format!("status:{}", inc.status.as_str()),
        format!("service:{}", inc.service),
        format!("env:{}", inc.env),
        format!("severity:{}", inc.severity.as_str()),
    ]
}

/// The incident's entries in [`SORT_INDEX`]: (order, key µs).
pub fn sort_keys(inc: &Incident) -> [(&'static str, i64); 2] {
    use crate::kernel::clock::micros;
    [
        ("updated", micros(inc.updated_at)),
        ("started", micros(inc.started_at)),
    ]
}

/// The filterable fields of an incident, as stored in index values.
#[derive(Debug, Clone, PartialEq)]
pub struct Brief<'a> {
    pub status: Option<Status>,
    pub service: &'a str,
    pub env: &'a str,
    pub severity: Option<Severity>,
}

/// Index value for an incident.
pub fn brief_of(inc: &Incident) -> String {
    format!(
        "{}|{}|{}|{}",
        inc.status.as_str(),
        inc.service,
        inc.env,
        inc.severity.as_str()
    )
}

/// Parse an index value.
pub fn parse_brief(v: &str) -> Brief<'_> {
    let mut it = v.split('|');
    Brief {
        status: it.next().and_then(Status::parse),
        service: it.next().unwrap_or(""),
        env: it.next().unwrap_or(""),
        severity: it.next().and_then(Severity::parse),
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(format!("encode: {e}")))
}

pub use crate::store::from_json;

/// Load an incident from an open incidents table.
pub fn load_incident(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<Incident>> {
    match t.get(id)? {
        Some(v) => Ok(Some(from_json(v.value())?)),
        None => Ok(None),
    }
}

/// Write `new` (replacing `old` if given) and keep the index and counts in step.
pub fn put_incident(txn: &WriteTx, old: Option<&Incident>, new: &Incident) -> Result<()> {
    let bytes = to_json(new)?;
    txn.open(INCIDENTS)?
        .insert(new.id.as_str(), bytes.as_slice())?;
    let ts = crate::kernel::clock::micros(new.created_at);
    let brief = brief_of(new);
    put_sort_keys(txn, old, new, &brief)?;
    let old_dims: Vec<String> = match old {
        // Only status, service, env and severity are indexed: most updates (a new event, a
        // title change) leave the index alone.
        Some(o) if o.created_at == new.created_at && brief_of(o) == brief => return Ok(()),
        Some(o) => dims(o).to_vec(),
        None => Vec::new(),
    };
    let new_dims = dims(new);
    let mut idx = txn.open(INDEX)?;
    if let Some(o) = old {
        let old_ts = crate::kernel::clock::micros(o.created_at);
        for d in old_dims
            .iter()
            .filter(|d| old_ts != ts || !new_dims.contains(d))
        {
            if idx.remove((d.as_str(), old_ts, o.id.as_str()))? && d != "all" {
                txn.add_count(INDEX_COUNTS, d, -1);
            }
        }
    }
    for d in &new_dims {
        if !idx.insert((d.as_str(), ts, new.id.as_str()), brief.as_str())? && d != "all" {
            txn.add_count(INDEX_COUNTS, d, 1);
        }
    }
    Ok(())
}

/// Keep `new`'s [`SORT_INDEX`] entries in step (most updates move `updated` only).
fn put_sort_keys(txn: &WriteTx, old: Option<&Incident>, new: &Incident, brief: &str) -> Result<()> {
    let mut sort = txn.open(SORT_INDEX)?;
    let old_keys = old.map(|o| (sort_keys(o), brief_of(o)));
    for (i, (order, key)) in sort_keys(new).into_iter().enumerate() {
        if let Some((keys, old_brief)) = &old_keys {
            if keys[i].1 == key && old_brief == brief {
                continue;
            }
            sort.remove((order, keys[i].1, new.id.as_str()))?;
        }
        sort.insert((order, key, new.id.as_str()), brief)?;
    }
    Ok(())
}

/// Store incidents whose id is not there yet, each with its index entries (a bulk import:
/// the tables are opened once for the whole batch). Returns how many were new.
pub fn insert_new_incidents(txn: &WriteTx, incs: &[Incident]) -> Result<usize> {
    let mut t = txn.open(INCIDENTS)?;
    let mut idx = txn.open(INDEX)?;
    let mut sort = txn.open(SORT_INDEX)?;
    let mut n = 0;
    for inc in incs {
        if t.get(inc.id.as_str())?.is_some() {
            continue;
        }
        let bytes = to_json(inc)?;
        t.insert(inc.id.as_str(), bytes.as_slice())?;
        let ts = crate::kernel::clock::micros(inc.created_at);
        let brief = brief_of(inc);
        for (order, key) in sort_keys(inc) {
            sort.insert((order, key, inc.id.as_str()), brief.as_str())?;
        }
        for d in &dims(inc) {
            if !idx.insert((d.as_str(), ts, inc.id.as_str()), brief.as_str())? && d != "all" {
                txn.add_count(INDEX_COUNTS, d, 1);
            }
        }
        n += 1;
    }
    Ok(n)
}

/// The tables an appended event goes into, opened once for many events.
struct TimelineTables<'t> {
    events: crate::store::LoggedTable<'t, (&'static str, u64), &'static [u8]>,
    feed: crate::store::LoggedTable<'t, (i64, &'static str, u64), &'static str>,
    order: crate::store::LoggedTable<'t, (&'static str, i64, u64), ()>,
    open: crate::store::LoggedTable<'t, &'static str, (&'static str, u64)>,
    due: crate::store::LoggedTable<'t, (i64, &'static str), (&'static str, u64)>,
}

impl<'t> TimelineTables<'t> {
    fn open(txn: &'t WriteTx) -> Result<Self> {
        Ok(TimelineTables {
            events: txn.open(EVENTS)?,
            feed: txn.open(EVENT_FEED)?,
            order: txn.open(EVENT_ORDER)?,
            open: txn.open(OPEN_FOLLOWUPS)?,
            due: txn.open(FOLLOWUP_DUE)?,
        })
    }

    fn append(&mut self, ev: &mut Event) -> Result<()> {
        let events = &mut self.events;
        let taken = ev.seq == 0
            || events
                .get((ev.incident_id.as_str(), ev.seq))?
                .is_some_and(|g| {
                    from_json::<Event>(g.value())
                        .map(|e| e.id != ev.id)
                        .unwrap_or(true)
                });
        if taken {
            let last = events
                .range((ev.incident_id.as_str(), 0u64)..=(ev.incident_id.as_str(), u64::MAX))?
                .next_back()
                .transpose()?
                .map(|(k, _)| k.value().1)
                .unwrap_or(0);
            ev.seq = last + 1;
        }
        let bytes = to_json(&*ev)?;
        events.insert((ev.incident_id.as_str(), ev.seq), bytes.as_slice())?;
        let ts = crate::kernel::clock::micros(ev.ts);
        self.feed
            .insert((ts, ev.incident_id.as_str(), ev.seq), ev.kind.as_str())?;
        self.order
            .insert((ev.incident_id.as_str(), ts, ev.seq), ())?;
        if is_open_followup(ev) {
            let at = (ev.incident_id.as_str(), ev.seq);
            self.open.insert(ev.id.as_str(), at)?;
            self.due.insert((due_key(ev), ev.id.as_str()), at)?;
        }
        Ok(())
    }
}

/// Just the id of a stored event.
#[derive(serde::Deserialize)]
struct EventId {
    id: String,
}

/// Append the events whose id is not yet on their incident's timeline (a bulk import: the
/// tables are opened once for the whole batch). Returns how many were new.
pub fn insert_new_events(txn: &WriteTx, evs: Vec<Event>) -> Result<usize> {
    let mut t = TimelineTables::open(txn)?;
    // The ids on each touched timeline (timelines are short, and an incident's events come
    // together, so most are read once).
    let mut stored: std::collections::HashMap<String, std::collections::HashSet<String>> =
        Default::default();
    let mut n = 0;
    for mut ev in evs {
        if !stored.contains_key(&ev.incident_id) {
            let inc = ev.incident_id.as_str();
            let mut ids = std::collections::HashSet::new();
            for row in t.events.range((inc, 0u64)..=(inc, u64::MAX))? {
                ids.insert(from_json::<EventId>(row?.1.value())?.id);
            }
            stored.insert(ev.incident_id.clone(), ids);
        }
        let ids = stored.get_mut(&ev.incident_id);
        if ids.is_some_and(|ids| !ids.insert(ev.id.clone())) {
            continue;
        }
        t.append(&mut ev)?;
        n += 1;
    }
    Ok(n)
}

/// Append `ev` to its incident's timeline. A `seq` of 0 (or one already taken) is replaced
/// by the next free position. Open follow-ups are tracked for the summary.
pub fn insert_event(txn: &WriteTx, ev: &mut Event) -> Result<()> {
    TimelineTables::open(txn)?.append(ev)
}

/// Replace a stored event in place (closing a follow-up). Its `ts` and `seq` stay as they
/// were (the feed and the time order are keyed by them).
pub fn replace_event(txn: &WriteTx, ev: &Event) -> Result<()> {
    let bytes = to_json(ev)?;
    let mut events = txn.open(EVENTS)?;
    let old: Option<Event> = events
        .get((ev.incident_id.as_str(), ev.seq))?
        .map(|g| from_json(g.value()))
        .transpose()?;
    events.insert((ev.incident_id.as_str(), ev.seq), bytes.as_slice())?;
    let mut open = txn.open(OPEN_FOLLOWUPS)?;
    let mut due = txn.open(FOLLOWUP_DUE)?;
    if let Some(o) = &old {
        due.remove((due_key(o), o.id.as_str()))?;
    }
    let at = (ev.incident_id.as_str(), ev.seq);
    if is_open_followup(ev) {
        open.insert(ev.id.as_str(), at)?;
        due.insert((due_key(ev), ev.id.as_str()), at)?;
    } else {
        open.remove(ev.id.as_str())?;
    }
    Ok(())
}

/// A follow-up's key in [`FOLLOWUP_DUE`]: its due time in µs, `i64::MAX` without one.
pub fn due_key(ev: &Event) -> i64 {
    ev.meta
        .get("due")
        .and_then(|d| d.as_str())
        .and_then(crate::kernel::clock::parse_ts)
        .map(crate::kernel::clock::micros)
        .unwrap_or(i64::MAX)
}

/// A follow-up event whose meta status is still open.
pub fn is_open_followup(ev: &Event) -> bool {
    ev.kind == "followup" && ev.meta.get("status").and_then(|s| s.as_str()) != Some("done")
}

/// Find an event of one incident by id (timelines are short: a range scan of one incident).
pub fn find_event(
    t: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    incident_id: &str,
    event_id: &str,
) -> Result<Option<Event>> {
    for row in t.range((incident_id, 0u64)..=(incident_id, u64::MAX))? {
        let ev: Event = from_json(row?.1.value())?;
        if ev.id == event_id {
            return Ok(Some(ev));
        }
    }
    Ok(None)
}

/// Where a timeline page starts: at the beginning, or after an event's place in time order.
#[derive(Debug, Clone, Copy)]
pub enum After {
    Start,
    /// After the event at (ts µs, seq).
    Event(i64, u64),
}

/// Up to `limit` events of one incident in time order (ts, then seq) after `after`, and
/// whether more follow.
pub fn timeline_page(
    order: &impl ReadableTable<(&'static str, i64, u64), ()>,
    events: &impl ReadableTable<(&'static str, u64), &'static [u8]>,
    incident_id: &str,
    after: After,
    limit: usize,
) -> Result<(Vec<Event>, bool)> {
    let start = match after {
        After::Start => (incident_id, i64::MIN, 0),
        After::Event(ts, seq) => match seq.checked_add(1) {
            Some(next) => (incident_id, ts, next),
            None => (incident_id, ts.saturating_add(1), 0),
        },
    };
    let mut items = Vec::new();
    for row in order.range(start..=(incident_id, i64::MAX, u64::MAX))? {
        let (k, _) = row?;
        if items.len() == limit {
            return Ok((items, true));
        }
        let (_, _, seq) = k.value();
        if let Some(g) = events.get((incident_id, seq))? {
            items.push(from_json::<Event>(g.value())?);
        }
    }
    Ok((items, false))
}

/// Store artifact metadata.
pub fn insert_artifact(txn: &WriteTx, a: &Artifact) -> Result<()> {
    let bytes = to_json(a)?;
    txn.open(ARTIFACTS)?
        .insert((a.incident_id.as_str(), a.id.as_str()), bytes.as_slice())?;
    Ok(())
}

/// All artifacts of one incident, oldest first.
pub fn artifacts_of(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    incident_id: &str,
) -> Result<Vec<Artifact>> {
    let mut v: Vec<Artifact> = Vec::new();
    for row in t.range((incident_id, "")..(incident_id, "\u{10ffff}"))? {
        let (_, val) = row?;
        v.push(from_json(val.value())?);
    }
    v.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(v)
}

/// Migration to schema 5: each stored timeline event in its incident's time order.
pub fn backfill_event_order(txn: &redb::WriteTransaction) -> Result<()> {
    let events = txn.open_table(EVENTS)?;
    let mut order = txn.open_table(EVENT_ORDER)?;
    for row in events.iter()? {
        let (k, v) = row?;
        let ev: Event = from_json(v.value())?;
        let (inc, seq) = k.value();
        order.insert((inc, crate::kernel::clock::micros(ev.ts), seq), ())?;
    }
    Ok(())
}

/// Migration to schema 7: each open follow-up's [`FOLLOWUP_DUE`] entry.
pub fn backfill_followup_due(txn: &redb::WriteTransaction) -> Result<()> {
    let open = txn.open_table(OPEN_FOLLOWUPS)?;
    let events = txn.open_table(EVENTS)?;
    let mut due = txn.open_table(FOLLOWUP_DUE)?;
    for row in open.iter()? {
        let (k, v) = row?;
        let (inc, seq) = v.value();
        if let Some(g) = events.get((inc, seq))? {
            let ev: Event = from_json(g.value())?;
            due.insert((due_key(&ev), k.value()), (inc, seq))?;
        }
    }
    Ok(())
}

/// Migration to schema 6: each stored incident's [`SORT_INDEX`] entries.
pub fn backfill_sort_index(txn: &redb::WriteTransaction) -> Result<()> {
    let incs = txn.open_table(INCIDENTS)?;
    let mut sort = txn.open_table(SORT_INDEX)?;
    for row in incs.iter()? {
        let (k, v) = row?;
        let inc: Incident = from_json(v.value())?;
        let brief = brief_of(&inc);
        for (order, key) in sort_keys(&inc) {
            sort.insert((order, key, k.value()), brief.as_str())?;
        }
    }
    Ok(())
}

/// Migration to schema 2: one feed entry per stored timeline event.
pub fn backfill_event_feed(txn: &redb::WriteTransaction) -> Result<()> {
    let events = txn.open_table(EVENTS)?;
    let mut feed = txn.open_table(EVENT_FEED)?;
    for row in events.iter()? {
        let (k, v) = row?;
        let ev: Event = from_json(v.value())?;
        let (inc, seq) = k.value();
        feed.insert(
            (crate::kernel::clock::micros(ev.ts), inc, seq),
            ev.kind.as_str(),
        )?;
    }
    Ok(())
}
