//! Incident log records (what is stored and exported) and the validation of what callers send.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::kernel::clock::serde_ts;
pub use crate::kernel::text::{check_line, check_text, check_token, clip};

/// Severity, P0 (worst) to P3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Severity {
    P0,
    P1,
    P2,
    P3,
}

impl Severity {
    /// All severities, worst first.
    pub const ALL: [Severity; 4] = [Severity::P0, Severity::P1, Severity::P2, Severity::P3];
    /// `P0`…`P3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P0 => "P0",
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
        }
    }
    /// Parse `P0`…`P3` (case-insensitive; `sev1`-style accepted).
    pub fn parse(s: &str) -> Option<Severity> {
        let s = s.trim().to_ascii_uppercase();
        let digit = s.strip_prefix('P').or_else(|| s.strip_prefix("SEV"))?;
        match digit {
            "0" => Some(Severity::P0),
            "1" => Some(Severity::P1),
            "2" => Some(Severity::P2),
            "3" => Some(Severity::P3),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Severity::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("'{s}' is not a severity (P0, P1, P2, P3)"))
        })
    }
}

/// Lifecycle state. Forward moves may skip steps; any later state may go back to `open`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Open,
    Acknowledged,
    Mitigated,
    Resolved,
    Closed,
}

impl Status {
    /// All states, in lifecycle order.
    pub const ALL: [Status; 5] = [
        Status::Open,
        Status::Acknowledged,
        Status::Mitigated,
        Status::Resolved,
        Status::Closed,
    ];
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Mitigated => "mitigated",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }
    /// Parse a state name (case-insensitive; `ack` accepted).
    pub fn parse(s: &str) -> Option<Status> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Some(Status::Open),
            "acknowledged" | "ack" => Some(Status::Acknowledged),
            "mitigated" => Some(Status::Mitigated),
            "resolved" => Some(Status::Resolved),
            "closed" => Some(Status::Closed),
            _ => None,
        }
    }
    /// Still needs attention (not resolved or closed).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Status::Open | Status::Acknowledged | Status::Mitigated
        )
    }
    /// Whether moving from `self` to `to` is allowed.
    pub fn can_move_to(self, to: Status) -> bool {
        to > self || (to == Status::Open && self != Status::Open)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Status::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "'{s}' is not a status (open, acknowledged, mitigated, resolved, closed)"
            ))
        })
    }
}

/// An incident record, as stored and as exported to `incidents.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub service: String,
    pub env: String,
    pub severity: Severity,
    pub status: Status,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// When impact began (may precede `created_at`).
    #[serde(with = "serde_ts")]
    pub started_at: OffsetDateTime,
    #[serde(default, with = "serde_ts::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_ts::option")]
    pub mitigated_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_ts::option")]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(default, with = "serde_ts::option")]
    pub closed_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default = "unknown")]
    pub created_by: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub fingerprints: Vec<String>,
    #[serde(with = "serde_ts")]
    pub created_at: OffsetDateTime,
    #[serde(with = "serde_ts")]
    pub updated_at: OffsetDateTime,
}

fn unknown() -> String {
    "unknown".into()
}

impl Incident {
    /// The per-status timestamp slot for `s` (none for `open`).
    pub fn status_ts_mut(&mut self, s: Status) -> Option<&mut Option<OffsetDateTime>> {
        match s {
            Status::Open => None,
            Status::Acknowledged => Some(&mut self.acknowledged_at),
            Status::Mitigated => Some(&mut self.mitigated_at),
            Status::Resolved => Some(&mut self.resolved_at),
            Status::Closed => Some(&mut self.closed_at),
        }
    }

    /// Check every field of a record (used for imports, where nothing was validated yet).
    pub fn validate(&self) -> Result<()> {
        validate_incident_id(&self.id)?;
        check_token("service", &self.service, 64)?;
        check_token("env", &self.env, 32)?;
        check_title(&self.title)?;
        check_text("summary", &self.summary, MAX_SUMMARY)?;
        if let Some(o) = &self.owner {
            check_line("owner", o, 128)?;
        }
        check_line("created_by", &self.created_by, 128)?;
        check_list("labels", &self.labels, 50, 64)?;
        check_list("fingerprints", &self.fingerprints, 100, 128)?;
        Ok(())
    }
}

/// A timeline event, as stored and as exported to `events.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub incident_id: String,
    /// Position in the incident's timeline (1-based, assigned on append).
    #[serde(default)]
    pub seq: u64,
    #[serde(with = "serde_ts")]
    pub ts: OffsetDateTime,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default = "empty_object")]
    pub meta: Json,
    #[serde(default = "unknown")]
    pub actor: String,
}

fn empty_object() -> Json {
    Json::Object(Default::default())
}

/// Artifact metadata, as stored and as exported to `artifacts.jsonl`. The file itself lives
/// at `<artifacts dir>/<path>`, where `path` is `<incident_id>/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub id: String,
    pub incident_id: String,
    pub name: String,
    /// `json`, `md` or `txt`.
    pub format: String,
    pub path: String,
    #[serde(default)]
    pub sha256: String,
    #[serde(default, alias = "size")]
    pub size_bytes: u64,
    #[serde(with = "serde_ts")]
    pub created_at: OffsetDateTime,
    #[serde(default = "unknown")]
    pub created_by: String,
}

/// What a caller sends to create an incident.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    pub service: String,
    #[serde(default = "default_env")]
    pub env: String,
    pub severity: Severity,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default, with = "serde_ts::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// Who reports it (defaults to the caller).
    #[serde(default)]
    pub created_by: Option<String>,
}

fn default_env() -> String {
    "prod".into()
}

/// What a caller sends to change an incident; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    pub status: Option<Status>,
    pub severity: Option<Severity>,
    pub title: Option<String>,
    pub summary: Option<String>,
    /// Empty string clears the owner.
    pub owner: Option<String>,
    pub service: Option<String>,
    pub env: Option<String>,
    pub labels: Option<Vec<String>>,
    pub fingerprints: Option<Vec<String>>,
    #[serde(default, with = "serde_ts::option")]
    pub started_at: Option<OffsetDateTime>,
    /// Optional note recorded with the change events.
    pub message: Option<String>,
}

/// What a caller sends to append a timeline event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub meta: Option<Json>,
    /// When it happened (defaults to now; may be in the past, e.g. a deploy).
    #[serde(default, with = "serde_ts::option")]
    pub ts: Option<OffsetDateTime>,
}

/// What a caller sends to attach an artifact.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewArtifact {
    #[serde(alias = "filename")]
    pub name: String,
    /// Text content (`encoding: utf8`, the default) or base64 (`encoding: base64`).
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub content_base64: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    /// `json`, `md` or `txt`; must agree with the name's extension when given.
    #[serde(default, alias = "kind")]
    pub format: Option<String>,
}

/// Event types written by the incident room itself; callers cannot append them directly.
pub const RESERVED_EVENT_TYPES: [&str; 5] = [
    "status_change",
    "severity_change",
    "update",
    "artifact",
    "followup_done",
];

/// Longest summary or event message, in characters.
pub const MAX_SUMMARY: usize = 20_000;
/// Largest event `meta`, serialized.
pub const MAX_META_BYTES: usize = 64 * 1024;
/// Largest artifact file.
pub const MAX_ARTIFACT_BYTES: usize = 2 * 1024 * 1024;
/// Artifact formats accepted.
pub const ARTIFACT_FORMATS: [&str; 3] = ["json", "md", "txt"];

/// `inc_YYYYMMDD_HHMM_<rand>`, `<rand>` 1–32 alphanumerics.
pub fn validate_incident_id(id: &str) -> Result<()> {
    let ok = (|| {
        let rest = id.strip_prefix("inc_")?;
        let (date, rest) = rest.split_once('_')?;
        let (hm, rand) = rest.split_once('_')?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        (digits(date, 8)
            && digits(hm, 4)
            && !rand.is_empty()
            && rand.len() <= 32
            && rand.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(())
    })();
    ok.ok_or_else(|| {
        Error::bad_request(
            "invalid_id",
            format!(
                "'{}' is not an incident id (inc_YYYYMMDD_HHMM_<rand>)",
                clip(id, 80)
            ),
        )
    })
}

/// `<prefix>_` followed by 1–40 of `[A-Za-z0-9_-]` (event and artifact ids).
pub fn validate_record_id(kind: &str, prefix: &str, id: &str) -> Result<()> {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .is_some_and(|r| {
            !r.is_empty()
                && r.len() <= 40
                && r.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::bad_request(
            "invalid_id",
            format!("'{}' is not a {kind} id ({prefix}_…)", clip(id, 80)),
        ))
    }
}

/// A non-empty title of at most 300 characters.
pub fn check_title(v: &str) -> Result<()> {
    if v.trim().is_empty() {
        return Err(Error::invalid("title", "must not be empty"));
    }
    check_line("title", v, 300)
}

/// A list of tokens with limits on count and length.
pub fn check_list(field: &str, v: &[String], max_items: usize, max_len: usize) -> Result<()> {
    if v.len() > max_items {
        return Err(Error::invalid(
            field,
            format!("more than {max_items} items"),
        ));
    }
    for (i, item) in v.iter().enumerate() {
        check_token(&format!("{field}[{i}]"), item, max_len)?;
    }
    Ok(())
}

/// An event type: lowercase letters, digits and `_`, starting with a letter, ≤ 32.
pub fn check_event_type(v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 32
        && v.as_bytes()[0].is_ascii_lowercase()
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "type",
            format!(
                "'{}' is not an event type (lowercase letters, digits, _)",
                clip(v, 40)
            ),
        ))
    }
}

/// Normalise and check a follow-up's `meta` (`title` required; `owner`, `due`, `priority`,
/// `status` open|done). Returns the meta to store.
pub fn normalize_followup_meta(meta: Option<Json>, message: &str) -> Result<Json> {
    let mut m = match meta {
        None => serde_json::Map::new(),
        Some(Json::Object(m)) => m,
        Some(_) => return Err(Error::invalid("meta", "must be an object")),
    };
    let title = match m.get("title") {
        Some(Json::String(s)) => s.clone(),
        Some(_) => return Err(Error::invalid("meta.title", "must be a string")),
        None if !message.trim().is_empty() => message.to_string(),
        None => return Err(Error::invalid("meta.title", "a follow-up needs a title")),
    };
    check_title(&title)
        .map_err(|_| Error::invalid("meta.title", "must be 1-300 characters on one line"))?;
    m.insert("title".into(), Json::String(title));
    if let Some(o) = m.get("owner") {
        match o {
            Json::String(s) => check_line("meta.owner", s, 128)?,
            Json::Null => {}
            _ => return Err(Error::invalid("meta.owner", "must be a string")),
        }
    }
    match m.get("due") {
        None | Some(Json::Null) => {}
        Some(Json::String(s)) if crate::kernel::clock::parse_date(s).is_some() => {
            // A due date with no time means "by the end of that day" (UTC).
            let end = crate::kernel::clock::parse_ts(s)
                .map(|d| d + time::Duration::days(1) - time::Duration::milliseconds(1))
                .ok_or_else(|| {
                    Error::invalid("meta.due", format!("'{}' is out of range", clip(s, 40)))
                })?;
            m.insert(
                "due".into(),
                Json::String(crate::kernel::clock::rfc3339(end)),
            );
        }
        Some(Json::String(s)) => {
            let t = crate::kernel::clock::parse_ts(s).ok_or_else(|| {
                Error::invalid(
                    "meta.due",
                    format!("'{}' is not a date or RFC 3339 time", clip(s, 40)),
                )
            })?;
            m.insert("due".into(), Json::String(crate::kernel::clock::rfc3339(t)));
        }
        Some(_) => return Err(Error::invalid("meta.due", "must be a date string")),
    }
    let priority = match m.get("priority") {
        None | Some(Json::Null) => Severity::P2,
        Some(Json::String(s)) => Severity::parse(s).ok_or_else(|| {
            Error::invalid("meta.priority", format!("'{}' is not P0-P3", clip(s, 20)))
        })?,
        Some(_) => return Err(Error::invalid("meta.priority", "must be P0-P3")),
    };
    m.insert("priority".into(), Json::String(priority.as_str().into()));
    // Only the known statuses; anything else (a number, an object, another word) is refused
    // rather than read as open.
    match m.get("status") {
        None | Some(Json::Null) => {
            m.insert("status".into(), Json::String("open".into()));
        }
        Some(Json::String(s)) if s == "open" || s == "done" => {}
        Some(Json::String(other)) => {
            return Err(Error::invalid(
                "meta.status",
                format!("'{}' is not open or done", clip(other, 20)),
            ))
        }
        Some(_) => {
            return Err(Error::invalid(
                "meta.status",
                "must be \"open\" or \"done\"",
            ))
        }
    }
    Ok(Json::Object(m))
}

/// Sanitise an artifact file name: keep the last path component, replace anything outside
/// `[A-Za-z0-9._-]` with `_`, strip leading dots, cap the length. Returns (name, format).
pub fn sanitize_artifact_name(raw: &str) -> Result<(String, String)> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let mut name: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    while name.starts_with('.') {
        name.remove(0);
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_string(), e.to_ascii_lowercase()),
        _ => {
            return Err(Error::invalid(
                "name",
                format!(
                    "'{}' has no extension; use .json, .md or .txt",
                    clip(raw, 80)
                ),
            ))
        }
    };
    if !ARTIFACT_FORMATS.contains(&ext.as_str()) {
        return Err(Error::invalid(
            "name",
            format!(
                "'.{}' files are not accepted; use .json, .md or .txt",
                clip(&ext, 16)
            ),
        ));
    }
    let stem: String = stem.chars().take(100).collect();
    name = format!("{stem}.{ext}");
    Ok((name, ext))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_transitions() {
        use Status::*;
        assert!(Open.can_move_to(Resolved));
        assert!(Acknowledged.can_move_to(Mitigated));
        assert!(Closed.can_move_to(Open));
        assert!(!Resolved.can_move_to(Acknowledged));
        assert!(!Open.can_move_to(Open));
        assert!(!Closed.can_move_to(Closed));
    }

    #[test]
    fn ids() {
        assert!(validate_incident_id("inc_20260223_1000_abc123").is_ok());
        assert!(validate_incident_id("inc_20260223_1000_").is_err());
        assert!(validate_incident_id("inc_2026022_1000_abc").is_err());
        assert!(validate_incident_id("../etc/passwd").is_err());
        assert!(validate_record_id("event", "ev", "ev_abc-1").is_ok());
        assert!(validate_record_id("event", "ev", "ev_a/b").is_err());
    }

    #[test]
    fn artifact_names_are_sanitised() {
        assert_eq!(sanitize_artifact_name("../../etc/x.md").unwrap().0, "x.md");
        assert_eq!(
            sanitize_artifact_name("..\\a b.JSON").unwrap(),
            ("a_b.json".into(), "json".into())
        );
        assert_eq!(
            sanitize_artifact_name(".hidden.txt").unwrap().0,
            "hidden.txt"
        );
        assert!(sanitize_artifact_name("run.sh").is_err());
        assert!(sanitize_artifact_name("noext").is_err());
        assert!(sanitize_artifact_name("../").is_err());
    }

    #[test]
    fn followup_meta() {
        let m = normalize_followup_meta(
            Some(serde_json::json!({"title":"Add alert","due":"2026-03-01","priority":"p1"})),
            "",
        )
        .unwrap();
        assert_eq!(m["due"], "2026-03-01T23:59:59.999Z");
        assert_eq!(m["priority"], "P1");
        assert_eq!(m["status"], "open");
        assert!(normalize_followup_meta(None, "").is_err());
        assert!(
            normalize_followup_meta(Some(serde_json::json!({"title":"x","due":"soon"})), "")
                .is_err()
        );
    }

    #[test]
    fn severity_parse() {
        assert_eq!(Severity::parse("p1"), Some(Severity::P1));
        assert_eq!(Severity::parse("SEV0"), Some(Severity::P0));
        assert_eq!(Severity::parse("P9"), None);
    }
}
