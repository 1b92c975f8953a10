//! Alert records, label matchers in Alertmanager's syntax, silences, and the checked form of
//! what the intake endpoints receive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::incidents::model::Severity;
use crate::kernel::clock::serde_ts;

/// Labels or annotations: name → value, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// Most labels an alert may carry.
pub const MAX_LABELS: usize = 64;
/// Longest label name.
pub const MAX_LABEL_NAME: usize = 128;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 1024;
/// Most annotations kept per alert (further ones are dropped and the alert says so).
pub const MAX_ANNOTATIONS: usize = 32;
/// Longest annotation value kept (longer ones are clipped and the alert says so).
pub const MAX_ANNOTATION_VALUE: usize = 4096;
/// Most alerts in one notification.
pub const MAX_ALERTS: usize = 1000;
/// Longest fingerprint.
pub const MAX_FINGERPRINT: usize = 128;

/// Where an alert came from.
pub const SOURCE_ALERTMANAGER: &str = "alertmanager";
/// The generic `POST /api/alerts` intake.
pub const SOURCE_API: &str = "api";

/// An alert's state: firing, resolved, or firing but suppressed (silence, maintenance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Firing and routed.
    Firing,
    /// Ended (`status: resolved` or an `endsAt` in the past).
    Resolved,
    /// Firing, but a silence or a maintenance window holds it back.
    Suppressed,
}

impl AlertStatus {
    /// `firing`, `resolved`, `suppressed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Suppressed => "suppressed",
        }
    }
    /// Parse one of [`AlertStatus::as_str`].
    pub fn parse(s: &str) -> Option<AlertStatus> {
        match s {
            "firing" => Some(AlertStatus::Firing),
            "resolved" => Some(AlertStatus::Resolved),
            "suppressed" => Some(AlertStatus::Suppressed),
            _ => None,
        }
    }
}

/// One alert, identified by its fingerprint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identity (Alertmanager's, or derived from the labels).
    pub fingerprint: String,
    /// `alertmanager` or `api`.
    pub source: String,
    /// The alert group (Alertmanager's `groupKey`, or the service for generic alerts).
    pub group_key: String,
    /// Firing, resolved or suppressed.
    pub status: AlertStatus,
    /// What suppresses it (`silence:<id>`, `maintenance:<name>`), when suppressed.
    pub suppressed_by: Option<String>,
    /// Its labels (bounded).
    pub labels: Labels,
    /// Its annotations (bounded; see `annotations_clipped`).
    pub annotations: Labels,
    /// True when annotations were dropped or clipped to the bounds.
    #[serde(default)]
    pub annotations_clipped: bool,
    /// One line for titles: the `summary` annotation, else the alert name.
    pub summary: String,
    /// Routed service.
    pub service: String,
    /// Routed env.
    pub env: String,
    /// Routed severity.
    pub severity: Severity,
    /// Whether routing lets it open an incident.
    pub open_incident: bool,
    /// The route that matched (its index in `alert_routing.yml`), if any.
    pub route: Option<usize>,
    /// When impact began.
    #[serde(with = "serde_ts")]
    pub starts_at: OffsetDateTime,
    /// When it ended (or is expected to, while firing).
    #[serde(with = "serde_ts::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// When sofiia first heard of it.
    #[serde(with = "serde_ts")]
    pub first_seen: OffsetDateTime,
    /// When sofiia last heard of it.
    #[serde(with = "serde_ts")]
    pub last_seen: OffsetDateTime,
    /// Notifications that carried it.
    pub notifications: u64,
    /// Fire → resolve → fire cycles within the flap window.
    pub flaps: u64,
    /// When it last went to resolved.
    #[serde(with = "serde_ts::option")]
    pub resolved_at: Option<OffsetDateTime>,
    /// The incident it belongs to.
    pub incident_id: Option<String>,
    /// Alertmanager's `generatorURL`.
    pub generator_url: Option<String>,
    /// Alertmanager's receiver.
    pub receiver: Option<String>,
    /// `truncatedAlerts` of the last notification that carried it (the group was cut).
    pub truncated_alerts: u64,
    /// When someone acknowledged it.
    #[serde(with = "serde_ts::option")]
    pub acked_at: Option<OffsetDateTime>,
    /// Who acknowledged it.
    pub acked_by: Option<String>,
}

/// A silence: alerts matching all its matchers are suppressed from `starts_at` to `ends_at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    /// `sil_…`.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Start of the silence.
    #[serde(with = "serde_ts")]
    pub starts_at: OffsetDateTime,
    /// End of the silence.
    #[serde(with = "serde_ts")]
    pub ends_at: OffsetDateTime,
    /// Why.
    pub reason: String,
    /// Who made it.
    pub created_by: String,
    /// When it was removed early (`unsilence`).
    #[serde(with = "serde_ts::option")]
    pub expired_at: Option<OffsetDateTime>,
}

impl Silence {
    /// Whether it holds back `labels` at `t`.
    pub fn suppresses(&self, labels: &Labels, t: OffsetDateTime) -> bool {
        self.expired_at.is_none()
            && self.starts_at <= t
            && t < self.ends_at
            && self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// Intake counts of one source (the dedup ratio is `deduplicated / alerts`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceStats {
    /// Notifications received (replays included).
    pub notifications: u64,
    /// Notifications that were exact replays (nothing changed).
    pub replays: u64,
    /// Alerts carried by all notifications.
    pub alerts: u64,
    /// Alerts with a fingerprint not seen before.
    pub new: u64,
    /// Alerts whose fingerprint was already known (merged into its record).
    pub deduplicated: u64,
}

impl SourceStats {
    /// `deduplicated / alerts` (0 when nothing came).
    pub fn dedup_ratio(&self) -> f64 {
        if self.alerts == 0 {
            0.0
        } else {
            self.deduplicated as f64 / self.alerts as f64
        }
    }
}

/// A label matcher's operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `=~` (fully anchored)
    Re,
    /// `!~` (fully anchored)
    NotRe,
}

impl MatchOp {
    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Ne => "!=",
            MatchOp::Re => "=~",
            MatchOp::NotRe => "!~",
        }
    }
}

/// One label matcher in Alertmanager's syntax: `name="value"`, `!=`, `=~`, `!~`. A label
/// that is absent matches as the empty string; regexes match the whole value, as in
/// Alertmanager.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Value or regex as written.
    pub value: String,
    re: Option<regex::Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Matcher) -> bool {
        self.name == o.name && self.op == o.op && self.value == o.value
    }
}

impl Matcher {
    /// Parse `name<op>value`; the value may be double-quoted (with `\"`, `\\`, `\n`).
    pub fn parse(text: &str) -> std::result::Result<Matcher, String> {
        let s = text.trim();
        let end = s
            .find(['=', '!', '~'])
            .ok_or_else(|| format!("'{}' has no operator (=, !=, =~, !~)", clip(s)))?;
        let name = s[..end].trim();
        let valid_name = !name.is_empty()
            && name.len() <= MAX_LABEL_NAME
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid_name {
            return Err(format!("'{}' is not a label name", clip(name)));
        }
        let rest = &s[end..];
        let (op, raw) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Re, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRe, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::Ne, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Eq, r)
        } else {
            return Err(format!("'{}' has no operator (=, !=, =~, !~)", clip(s)));
        };
        let raw = raw.trim();
        let value = if let Some(inner) = raw.strip_prefix('"') {
            unquote(inner).ok_or_else(|| format!("'{}': unterminated quoted value", clip(s)))?
        } else {
            if raw.contains('"') {
                return Err(format!("'{}': a value with \" must be quoted", clip(s)));
            }
            raw.to_string()
        };
        if value.chars().count() > MAX_LABEL_VALUE {
            return Err(format!(
                "'{}': value longer than {MAX_LABEL_VALUE}",
                clip(s)
            ));
        }
        let re = match op {
            MatchOp::Re | MatchOp::NotRe => Some(
                regex::RegexBuilder::new(&format!("^(?:{value})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| format!("'{}': bad regex: {e}", clip(s)))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value,
            re,
        })
    }

    /// Whether `labels` satisfy it (an absent label is the empty string).
    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match self.op {
            MatchOp::Eq => v == self.value,
            MatchOp::Ne => v != self.value,
            MatchOp::Re => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::NotRe => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self
            .value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        write!(f, "{}{}\"{}\"", self.name, self.op.as_str(), v)
    }
}

impl Serialize for Matcher {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn clip(s: &str) -> String {
    crate::kernel::text::clip(s, 80)
}

/// The rest of a quoted value after its opening quote, unescaped; None if unterminated or
/// followed by anything.
fn unquote(inner: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            '"' => return chars.as_str().trim().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

/// One alert of a notification, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncomingAlert {
    /// Firing or resolved as sent.
    pub resolved: bool,
    /// Labels (within the bounds).
    pub labels: Labels,
    /// Annotations (clipped to the bounds).
    pub annotations: Labels,
    /// True when annotations were clipped.
    pub annotations_clipped: bool,
    /// When impact began.
    #[serde(with = "serde_ts")]
    pub starts_at: OffsetDateTime,
    /// When it ended, if known.
    #[serde(with = "serde_ts::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// Link back to the rule.
    pub generator_url: Option<String>,
    /// Identity.
    pub fingerprint: String,
    /// For generic alerts: the service, severity and summary the sender gave.
    pub service: Option<String>,
    /// The sender's severity (generic alerts).
    pub severity: Option<String>,
    /// The sender's summary (generic alerts).
    pub summary: Option<String>,
}

/// One notification, checked: what intake stores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// `alertmanager` or `api`.
    pub source: String,
    /// The group the alerts belong to.
    pub group_key: String,
    /// Alertmanager's receiver.
    pub receiver: Option<String>,
    /// Alerts Alertmanager left out (`max_alerts`).
    pub truncated_alerts: u64,
    /// Alertmanager's `externalURL`.
    pub external_url: Option<String>,
    /// The alerts.
    pub alerts: Vec<IncomingAlert>,
    /// sha256 of the source and the notification as received (replay detection).
    pub digest: String,
}

fn field_err(field: &str, why: impl std::fmt::Display) -> Error {
    Error::Validation {
        code: "invalid_alert",
        message: format!("{field}: {why}"),
    }
}

fn get_str<'a>(o: &'a serde_json::Map<String, Json>, key: &str, at: &str) -> Result<&'a str> {
    match o.get(key) {
        Some(Json::String(s)) => Ok(s),
        Some(_) => Err(field_err(&format!("{at}{key}"), "must be a string")),
        None => Err(field_err(&format!("{at}{key}"), "is required")),
    }
}

fn opt_str<'a>(
    o: &'a serde_json::Map<String, Json>,
    key: &str,
    at: &str,
) -> Result<Option<&'a str>> {
    match o.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(_) => Err(field_err(&format!("{at}{key}"), "must be a string")),
    }
}

/// Parse an RFC 3339 time as Go writes it; Go's zero time (`0001-01-01T00:00:00Z`) and
/// anything before 1970 mean "not set".
pub fn parse_go_time(s: &str, field: &str) -> Result<Option<OffsetDateTime>> {
    use time::format_description::well_known::Rfc3339;
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| field_err(field, format!("'{}' is not an RFC 3339 time", clip(s))))?;
    let t = t.to_offset(time::UtcOffset::UTC);
    if t.year() < 1970 {
        return Ok(None);
    }
    if t.year() > 9998 {
        return Err(field_err(field, "is after year 9998"));
    }
    Ok(Some(crate::kernel::clock::trunc_ms(t)))
}

/// Check a label set against the bounds.
pub fn check_labels(v: Option<&Json>, field: &str, required: bool) -> Result<Labels> {
    let o = match v {
        Some(Json::Object(o)) => o,
        None | Some(Json::Null) if !required => return Ok(Labels::new()),
        None => return Err(field_err(field, "is required")),
        Some(_) => return Err(field_err(field, "must be an object of strings")),
    };
    if o.len() > MAX_LABELS {
        return Err(field_err(field, format!("more than {MAX_LABELS} labels")));
    }
    let mut out = Labels::new();
    for (k, v) in o {
        let at = format!("{field}.{}", clip(k));
        if k.is_empty() || k.chars().count() > MAX_LABEL_NAME || k.chars().any(char::is_control) {
            return Err(field_err(
                &at,
                format!("a label name is 1-{MAX_LABEL_NAME} characters without control characters"),
            ));
        }
        let Json::String(s) = v else {
            return Err(field_err(&at, "must be a string"));
        };
        if s.chars().count() > MAX_LABEL_VALUE {
            return Err(field_err(
                &at,
                format!("longer than {MAX_LABEL_VALUE} characters"),
            ));
        }
        out.insert(k.clone(), s.clone());
    }
    Ok(out)
}

/// Annotations, clipped to the bounds (never refused for length): (kept, clipped?).
pub fn clip_annotations(v: Option<&Json>, field: &str) -> Result<(Labels, bool)> {
    let o = match v {
        Some(Json::Object(o)) => o,
        None | Some(Json::Null) => return Ok((Labels::new(), false)),
        Some(_) => return Err(field_err(field, "must be an object of strings")),
    };
    let mut out = Labels::new();
    let mut clipped = o.len() > MAX_ANNOTATIONS;
    for (k, v) in o.iter().take(MAX_ANNOTATIONS) {
        let Json::String(s) = v else {
            return Err(field_err(
                &format!("{field}.{}", clip(k)),
                "must be a string",
            ));
        };
        let name: String = k.chars().take(MAX_LABEL_NAME).collect();
        let value: String = s.chars().take(MAX_ANNOTATION_VALUE).collect();
        clipped |= name.len() != k.len() || value.len() != s.len();
        out.insert(name, value);
    }
    Ok((out, clipped))
}

/// Check a fingerprint: 1-128 of letters, digits and `._:-/`.
pub fn check_fingerprint(fp: &str, field: &str) -> Result<()> {
    crate::kernel::text::check_token(field, fp, MAX_FINGERPRINT).map_err(|e| match e {
        Error::Validation { message, .. } => Error::Validation {
            code: "invalid_alert",
            message,
        },
        other => other,
    })
}

/// A stable fingerprint of a label set: the first 16 hex digits of sha256 over the sorted
/// `name=value` lines.
pub fn derive_fingerprint(labels: &Labels) -> String {
    let mut text = String::new();
    for (k, v) in labels {
        text.push_str(k);
        text.push('\u{0}');
        text.push_str(v);
        text.push('\n');
    }
    crate::kernel::hash::sha256_hex(text.as_bytes())[..16].to_string()
}

fn digest(source: &str, body: &Json) -> String {
    let mut b = source.as_bytes().to_vec();
    b.push(0);
    b.extend(serde_json::to_vec(body).unwrap_or_default());
    crate::kernel::hash::sha256_hex(&b)
}

/// Parse Alertmanager's webhook body (version 4) as it sends it; every error names the
/// field (`alerts[2].startsAt`).
pub fn parse_alertmanager(body: &Json) -> Result<Notification> {
    let Json::Object(o) = body else {
        return Err(field_err("body", "expected a JSON object"));
    };
    let version = get_str(o, "version", "")?;
    if version != "4" {
        return Err(field_err(
            "version",
            format!(
                "'{}' is not supported (Alertmanager sends \"4\")",
                clip(version)
            ),
        ));
    }
    let group_key = get_str(o, "groupKey", "")?;
    if group_key.is_empty() || group_key.chars().count() > 4096 {
        return Err(field_err("groupKey", "must be 1-4096 characters"));
    }
    let truncated_alerts = match o.get("truncatedAlerts") {
        None | Some(Json::Null) => 0,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| field_err("truncatedAlerts", "must be a whole number"))?,
    };
    let status = get_str(o, "status", "")?;
    if status != "firing" && status != "resolved" {
        return Err(field_err("status", "must be firing or resolved"));
    }
    let receiver = opt_str(o, "receiver", "")?.map(|s| s.chars().take(256).collect());
    for k in ["groupLabels", "commonLabels", "commonAnnotations"] {
        if !matches!(o.get(k), None | Some(Json::Null) | Some(Json::Object(_))) {
            return Err(field_err(k, "must be an object"));
        }
    }
    let external_url = opt_str(o, "externalURL", "")?.map(|s| s.chars().take(2048).collect());
    let list = match o.get("alerts") {
        Some(Json::Array(a)) => a,
        Some(_) => return Err(field_err("alerts", "must be an array")),
        None => return Err(field_err("alerts", "is required")),
    };
    if list.len() > MAX_ALERTS {
        return Err(field_err(
            "alerts",
            format!("more than {MAX_ALERTS} alerts"),
        ));
    }
    let mut alerts = Vec::with_capacity(list.len());
    for (i, a) in list.iter().enumerate() {
        let at = format!("alerts[{i}].");
        let Json::Object(a) = a else {
            return Err(field_err(&format!("alerts[{i}]"), "must be an object"));
        };
        let st = get_str(a, "status", &at)?;
        if st != "firing" && st != "resolved" {
            return Err(field_err(
                &format!("{at}status"),
                "must be firing or resolved",
            ));
        }
        let labels = check_labels(a.get("labels"), &format!("{at}labels"), true)?;
        if labels.is_empty() {
            return Err(field_err(&format!("{at}labels"), "must not be empty"));
        }
        let (annotations, annotations_clipped) =
            clip_annotations(a.get("annotations"), &format!("{at}annotations"))?;
        let starts_at = parse_go_time(get_str(a, "startsAt", &at)?, &format!("{at}startsAt"))?
            .ok_or_else(|| field_err(&format!("{at}startsAt"), "must be set"))?;
        let ends_at = match opt_str(a, "endsAt", &at)? {
            Some(s) => parse_go_time(s, &format!("{at}endsAt"))?,
            None => None,
        };
        let fingerprint = get_str(a, "fingerprint", &at)?.to_string();
        check_fingerprint(&fingerprint, &format!("{at}fingerprint"))?;
        let generator_url = opt_str(a, "generatorURL", &at)?
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(2048).collect());
        alerts.push(IncomingAlert {
            resolved: st == "resolved",
            labels,
            annotations,
            annotations_clipped,
            starts_at,
            ends_at,
            generator_url,
            fingerprint,
            service: None,
            severity: None,
            summary: None,
        });
    }
    Ok(Notification {
        source: SOURCE_ALERTMANAGER.into(),
        group_key: group_key.to_string(),
        receiver,
        truncated_alerts,
        external_url,
        alerts,
        digest: digest(SOURCE_ALERTMANAGER, body),
    })
}

const GENERIC_FIELDS: &[&str] = &[
    "service",
    "severity",
    "summary",
    "labels",
    "annotations",
    "starts_at",
    "ends_at",
    "status",
    "fingerprint",
    "env",
];

/// Parse a generic alert `{service, severity, summary, labels, starts_at, fingerprint?,
/// status?, ends_at?, annotations?, env?}`; without a fingerprint one is derived from the
/// labels (with `service` added).
pub fn parse_generic(body: &Json) -> Result<Notification> {
    let Json::Object(o) = body else {
        return Err(field_err("body", "expected a JSON object"));
    };
    if let Some(k) = o.keys().find(|k| !GENERIC_FIELDS.contains(&k.as_str())) {
        return Err(field_err(
            &clip(k),
            format!(
                "unknown field; expected one of {}",
                GENERIC_FIELDS.join(", ")
            ),
        ));
    }
    let service = get_str(o, "service", "")?.trim().to_string();
    crate::kernel::text::check_token("service", &service, 64).map_err(|e| match e {
        Error::Validation { message, .. } => {
            field_err("service", message.trim_start_matches("service: "))
        }
        other => other,
    })?;
    let severity = get_str(o, "severity", "")?.trim().to_string();
    if severity.is_empty() || severity.len() > 32 {
        return Err(field_err("severity", "must be 1-32 characters"));
    }
    let summary = get_str(o, "summary", "")?.trim().to_string();
    if summary.is_empty() || summary.chars().count() > 200 || summary.chars().any(char::is_control)
    {
        return Err(field_err("summary", "must be one line of 1-200 characters"));
    }
    let mut labels = check_labels(o.get("labels"), "labels", false)?;
    labels
        .entry("service".into())
        .or_insert_with(|| service.clone());
    if let Some(env) = opt_str(o, "env", "")? {
        labels
            .entry("env".into())
            .or_insert_with(|| env.to_string());
    }
    if labels.len() > MAX_LABELS {
        return Err(field_err(
            "labels",
            format!("more than {MAX_LABELS} labels"),
        ));
    }
    let (mut annotations, annotations_clipped) =
        clip_annotations(o.get("annotations"), "annotations")?;
    annotations
        .entry("summary".into())
        .or_insert_with(|| summary.clone());
    let starts_at = parse_go_time(get_str(o, "starts_at", "")?, "starts_at")?
        .ok_or_else(|| field_err("starts_at", "must be after 1970"))?;
    let ends_at = match opt_str(o, "ends_at", "")? {
        Some(s) => parse_go_time(s, "ends_at")?,
        None => None,
    };
    let resolved = match opt_str(o, "status", "")? {
        None | Some("firing") => false,
        Some("resolved") => true,
        Some(_) => return Err(field_err("status", "must be firing or resolved")),
    };
    let fingerprint = match opt_str(o, "fingerprint", "")? {
        Some(f) => {
            check_fingerprint(f, "fingerprint")?;
            f.to_string()
        }
        None => derive_fingerprint(&labels),
    };
    let group_key = format!("api:{service}");
    Ok(Notification {
        source: SOURCE_API.into(),
        group_key,
        receiver: None,
        truncated_alerts: 0,
        external_url: None,
        alerts: vec![IncomingAlert {
            resolved,
            labels,
            annotations,
            annotations_clipped,
            starts_at,
            ends_at,
            generator_url: None,
            fingerprint,
            service: Some(service),
            severity: Some(severity),
            summary: Some(summary),
        }],
        digest: digest(SOURCE_API, body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_operator_matches_as_alertmanager_does() {
        let l = labels(&[("alertname", "HighLatency"), ("env", "prod")]);
        let m = |s: &str| Matcher::parse(s).unwrap().matches(&l);
        assert!(m(r#"alertname="HighLatency""#));
        assert!(!m(r#"alertname="HighLatencyX""#));
        assert!(m(r#"env!="staging""#));
        assert!(!m(r#"env!="prod""#));
        assert!(m(r#"alertname=~"High.*""#));
        assert!(!m(r#"alertname!~"High.*""#));
        assert!(m(r#"alertname!~"Low.*""#));
        // Unquoted values and spaces around the operator, as amtool accepts.
        assert!(m("env = prod"));
        // An absent label is the empty string.
        assert!(m(r#"team="""#));
        assert!(!m(r#"team!="""#));
        assert!(m(r#"team=~"|x""#));
    }

    #[test]
    fn regexes_are_fully_anchored() {
        let l = labels(&[("alertname", "HighLatency")]);
        let m = |s: &str| Matcher::parse(s).unwrap().matches(&l);
        // A substring is not a match: `Latency` alone must match the whole value.
        assert!(!m(r#"alertname=~"Latency""#));
        assert!(!m(r#"alertname=~"High""#));
        assert!(m(r#"alertname=~"High|HighLatency""#));
        // The anchors wrap the whole alternation, not just its ends.
        assert!(!m(r#"alertname=~"Low|High""#));
        assert!(m(r#"alertname!~"Latency""#));
    }

    #[test]
    fn bad_matchers_are_refused_with_the_reason() {
        for (s, why) in [
            ("alertname", "no operator"),
            ("=\"x\"", "not a label name"),
            ("9x=\"y\"", "not a label name"),
            (r#"a="x"#, "unterminated"),
            (r#"a="x" b"#, "unterminated"),
            (r#"a=~"(""#, "bad regex"),
            (r#"a=x"y"#, "must be quoted"),
        ] {
            let e = Matcher::parse(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
        let m = Matcher::parse(r#"a="say \"hi\"""#).unwrap();
        assert_eq!(m.value, "say \"hi\"");
        assert_eq!(m.to_string(), r#"a="say \"hi\"""#);
        assert_eq!(Matcher::parse(&m.to_string()).unwrap(), m);
    }

    fn am_body() -> Json {
        json!({
            "receiver": "sofiia", "status": "firing", "version": "4",
            "groupKey": "{}:{alertname=\"HighLatency\"}", "truncatedAlerts": 0,
            "groupLabels": {"alertname": "HighLatency"},
            "commonLabels": {"alertname": "HighLatency"}, "commonAnnotations": {},
            "externalURL": "http://am:9093",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "HighLatency", "service": "gateway"},
                "annotations": {"summary": "p95 over 2s"},
                "startsAt": "2026-03-01T10:00:07.123456789+01:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom/graph", "fingerprint": "a1b2c3d4e5f60718"
            }]
        })
    }

    #[test]
    fn alertmanager_body_parses_with_go_times() {
        let n = parse_alertmanager(&am_body()).unwrap();
        assert_eq!(n.group_key, "{}:{alertname=\"HighLatency\"}");
        let a = &n.alerts[0];
        assert_eq!(
            a.starts_at,
            time::macros::datetime!(2026-03-01 09:00:07.123 UTC)
        );
        assert_eq!(a.ends_at, None, "Go's zero time is no end");
        assert!(!a.resolved);
        assert_eq!(a.fingerprint, "a1b2c3d4e5f60718");
        // The same body is the same notification; any change is another.
        assert_eq!(parse_alertmanager(&am_body()).unwrap().digest, n.digest);
        let mut b = am_body();
        b["alerts"][0]["status"] = json!("resolved");
        assert_ne!(parse_alertmanager(&b).unwrap().digest, n.digest);
    }

    #[test]
    fn malformed_alertmanager_bodies_name_the_field() {
        type Change = Box<dyn Fn(&mut Json)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|b| b["version"] = json!("3")), "version:"),
            (
                Box::new(|b| b["version"] = json!(4)),
                "version: must be a string",
            ),
            (
                Box::new(|b| {
                    b.as_object_mut().unwrap().remove("groupKey");
                }),
                "groupKey: is required",
            ),
            (
                Box::new(|b| b["truncatedAlerts"] = json!(-1)),
                "truncatedAlerts:",
            ),
            (
                Box::new(|b| b["alerts"] = json!({})),
                "alerts: must be an array",
            ),
            (
                Box::new(|b| b["alerts"][0]["startsAt"] = json!("yesterday")),
                "alerts[0].startsAt:",
            ),
            (
                Box::new(|b| b["alerts"][0]["status"] = json!("pending")),
                "alerts[0].status:",
            ),
            (
                Box::new(|b| b["alerts"][0]["labels"]["x"] = json!(1)),
                "alerts[0].labels.x:",
            ),
            (
                Box::new(|b| b["alerts"][0]["fingerprint"] = json!("a b")),
                "alerts[0].fingerprint:",
            ),
            (
                Box::new(|b| {
                    b["alerts"][0]
                        .as_object_mut()
                        .unwrap()
                        .remove("fingerprint");
                }),
                "alerts[0].fingerprint: is required",
            ),
            (
                Box::new(|b| b["alerts"][0]["labels"] = json!({})),
                "alerts[0].labels: must not be empty",
            ),
        ];
        for (change, want) in cases {
            let mut b = am_body();
            change(&mut b);
            match parse_alertmanager(&b) {
                Err(Error::Validation { code, message }) => {
                    assert_eq!(code, "invalid_alert");
                    assert!(message.starts_with(want), "{want}: {message}");
                }
                other => panic!("{want}: {other:?}"),
            }
        }
    }

    #[test]
    fn generic_alert_fingerprint_is_stable_and_label_order_free() {
        let a = json!({"service": "api", "severity": "critical", "summary": "down",
                       "labels": {"alertname": "Down", "zone": "a"}, "starts_at": "2026-03-01T10:00:00Z"});
        let b = json!({"labels": {"zone": "a", "alertname": "Down"}, "summary": "down again",
                       "severity": "warning", "service": "api", "starts_at": "2026-03-01T11:00:00Z"});
        let fa = parse_generic(&a).unwrap().alerts[0].fingerprint.clone();
        let fb = parse_generic(&b).unwrap().alerts[0].fingerprint.clone();
        assert_eq!(fa, fb);
        assert_eq!(fa.len(), 16);
        let mut want = labels(&[("alertname", "Down"), ("zone", "a"), ("service", "api")]);
        assert_eq!(fa, derive_fingerprint(&want));
        want.insert("zone".into(), "b".into());
        assert_ne!(fa, derive_fingerprint(&want));
        let e = parse_generic(&json!({"service": "api", "severity": "P1", "summary": "x",
                                       "starts_at": "2026-03-01T10:00:00Z", "extra": 1}))
        .unwrap_err();
        assert!(e.to_string().contains("extra"), "{e}");
        let e = parse_generic(&json!({"service": "api", "severity": "P1", "summary": "x"}))
            .unwrap_err();
        assert!(e.to_string().contains("starts_at: is required"), "{e}");
    }

    #[test]
    fn silences_hold_back_matching_alerts_only_in_their_time_range() {
        let t0 = time::macros::datetime!(2026-03-01 10:00 UTC);
        let s = Silence {
            id: "sil_1".into(),
            matchers: vec![Matcher::parse(r#"service=~"api|web""#).unwrap()],
            starts_at: t0,
            ends_at: t0 + time::Duration::hours(1),
            reason: "deploy".into(),
            created_by: "operator".into(),
            expired_at: None,
        };
        let api = labels(&[("service", "api")]);
        assert!(s.suppresses(&api, t0));
        assert!(s.suppresses(&api, t0 + time::Duration::minutes(59)));
        assert!(
            !s.suppresses(&api, t0 + time::Duration::hours(1)),
            "end is exclusive"
        );
        assert!(!s.suppresses(&api, t0 - time::Duration::seconds(1)));
        assert!(!s.suppresses(&labels(&[("service", "db")]), t0));
        let mut gone = s.clone();
        gone.expired_at = Some(t0);
        assert!(!gone.suppresses(&api, t0));
    }
}
