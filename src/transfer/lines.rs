//! One line of each import file, read the same way by both passes: the old stack's layout
//! mapped onto the stored record types, and the rules that concern that line alone.
//!
//! A line is first parsed straight into its record type (the fast path, taken by every line
//! of an export); only when that fails is it read as a JSON object, adjusted (ids derived,
//! old field names mapped) and converted, which also gives the error messages.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};

use crate::audit::AuditRecord;
use crate::incidents::model::{
    check_event_type, check_line, check_text, normalize_followup_meta, validate_incident_id,
    Artifact, Event, Incident, MAX_META_BYTES, MAX_SUMMARY,
};
use crate::kernel::hash::sha256_hex;
use crate::store::jsonl::parse_line;

/// Why a line cannot be used, with the id it carries if one could be read (so lines that
/// refer to that id are not reported a second time).
pub(super) struct Broken {
    pub id: Option<String>,
    pub reason: String,
}

/// Parse `text` as `T`: directly, or else as an object adjusted by `fix`.
fn parse<T: DeserializeOwned>(
    text: &str,
    fix: impl FnOnce(&mut Map<String, Json>),
) -> Result<T, Broken> {
    if let Ok(t) = serde_json::from_str::<T>(text) {
        return Ok(t);
    }
    let broken = |reason: String| Broken { id: None, reason };
    let mut v: Json = parse_line(text).map_err(broken)?;
    match v.as_object_mut() {
        Some(m) => fix(m),
        None => return Err(broken("not a JSON object".into())),
    }
    let id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
    serde_json::from_value::<T>(v).map_err(|e| Broken {
        id,
        reason: e.to_string(),
    })
}

/// An incident line. `create` lowercases env; imported records follow the same rule so
/// filters match.
pub(super) fn incident(text: &str) -> Result<Incident, Broken> {
    let mut inc: Incident = parse(text, |_| {})?;
    inc.env = inc.env.to_ascii_lowercase();
    Ok(inc)
}

/// Old stores wrote events without ids: derive a stable one so re-imports are no-ops.
fn fix_event(m: &mut Map<String, Json>) {
    if !m.contains_key("id") {
        let field = |k: &str| m.get(k).map(|v| v.to_string()).unwrap_or_default();
        let key = format!(
            "{}|{}|{}|{}",
            field("incident_id"),
            field("ts"),
            field("type"),
            field("message")
        );
        m.insert(
            "id".into(),
            Json::String(format!("ev_{}", &sha256_hex(key.as_bytes())[..20])),
        );
    }
}

/// An event line, with its follow-up meta normalised as the API would store it, and the
/// reasons it breaks the rules for one line. `Err` when it is not an event at all.
pub(super) fn event(text: &str) -> Result<(Event, Vec<String>), Broken> {
    let mut ev: Event = parse(text, fix_event)?;
    let mut bad = Vec::new();
    if let Err(e) = check_text("message", &ev.message, MAX_SUMMARY)
        .and_then(|_| check_line("actor", &ev.actor, 128))
    {
        bad.push(e.to_string());
    }
    if serde_json::to_vec(&ev.meta)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > MAX_META_BYTES
    {
        bad.push(format!("meta: larger than {MAX_META_BYTES} bytes"));
    }
    if ev.kind == "followup" {
        // The same rules as a follow-up appended through the API (title, due, priority,
        // status), so the summary and overdue checks can trust them.
        match normalize_followup_meta(Some(ev.meta.clone()), &ev.message) {
            Ok(m) => ev.meta = m,
            Err(e) => bad.push(e.to_string()),
        }
    }
    if let Err(e) = check_other_id(&ev.id) {
        bad.push(format!("id: {e}"));
    }
    Ok((ev, bad))
}

/// The checks of an event line that come after its incident reference (kept in the order
/// the import has always reported them).
pub(super) fn event_tail(ev: &Event, bad: &mut Vec<String>) {
    if let Err(e) = check_event_type(&ev.kind) {
        bad.push(e.to_string());
    }
    if !ev.meta.is_object() {
        bad.push("meta: must be an object".into());
    }
}

/// Whether an incident id is well formed (the reference check of events and artifacts).
pub(super) fn incident_id_ok(id: &str) -> bool {
    validate_incident_id(id).is_ok()
}

/// The old stack's artifact lines: no id, a `path` instead of a `name`, the creation time
/// under another name or none, no format.
fn fix_artifact(m: &mut Map<String, Json>) {
    if !m.contains_key("id") {
        let key = format!(
            "{}|{}",
            m.get("incident_id")
                .map(|v| v.to_string())
                .unwrap_or_default(),
            m.get("name")
                .or(m.get("path"))
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
        m.insert(
            "id".into(),
            Json::String(format!("art_{}", &sha256_hex(key.as_bytes())[..16])),
        );
    }
    if !m.contains_key("name") {
        if let Some(p) = m.get("path").and_then(|p| p.as_str()) {
            let base = p.rsplit(['/', '\\']).next().unwrap_or(p).to_string();
            m.insert("name".into(), Json::String(base));
        }
    }
    if !m.contains_key("path") {
        m.insert("path".into(), Json::String(String::new()));
    }
    // Old-stack lines may lack a creation time: take the one they carry under another
    // name, else the time of the import.
    if !m.contains_key("created_at") {
        let t = ["ts", "uploaded_at", "created"]
            .iter()
            .find_map(|k| m.get(*k).filter(|v| v.is_string()).cloned())
            .unwrap_or_else(|| {
                Json::String(crate::kernel::clock::rfc3339(
                    time::OffsetDateTime::now_utc(),
                ))
            });
        m.remove("ts");
        m.remove("uploaded_at");
        m.remove("created");
        m.insert("created_at".into(), t);
    }
    if !m.contains_key("format") {
        if let Some(n) = m.get("name").and_then(|n| n.as_str()) {
            let ext = n
                .rsplit_once('.')
                .map(|(_, e)| e.to_ascii_lowercase())
                .unwrap_or_default();
            m.insert("format".into(), Json::String(ext));
        }
    }
}

/// An artifact line. (A line that parses directly has every field the fixes would add.)
pub(super) fn artifact(text: &str) -> Result<Artifact, Broken> {
    parse(text, fix_artifact)
}

/// An audit line.
pub(super) fn audit(text: &str) -> Result<AuditRecord, String> {
    let r: AuditRecord = parse_line(text)?;
    crate::audit::check_imported(&r)?;
    Ok(r)
}

/// Event and artifact ids: 1-64 of `A-Z a-z 0-9 _ -`.
pub(super) fn check_other_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid id (1-64 of A-Z a-z 0-9 _ -)",
            crate::kernel::text::clip(id, 70)
        ))
    }
}
