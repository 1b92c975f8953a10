//! Incident intelligence (SPEC §7): related incidents with scores and reasons, recurring
//! signatures, and the weekly digest with MTTA / MTTM / MTTR.
//!
//! - A **signature** is `service` + a key: the alert name when the incident carries one (a
//!   label `alertname=X` or `alert:X`), else its title normalised (lowercase, numbers and ids
//!   replaced by `#`, punctuation dropped, at most eight words).
//! - **MTTA / MTTM / MTTR** are measured from `started_at` to `acknowledged_at`,
//!   `mitigated_at` and `resolved_at` (FireHydrant / Rootly), in minutes, as median, p90 and
//!   mean with the number of incidents each is over. A timestamp before `started_at` is flagged
//!   and left out, never averaged in.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::incidents::model::{Event, Incident, NewEvent, Severity};
use crate::incidents::tables::{from_json, load_incident, EVENTS, INCIDENTS, INDEX};
use crate::incidents::Incidents;
use crate::kernel::clock::{micros, rfc3339};
pub mod policy;

use crate::search::incidents::IncidentIndex;
use policy::IntelligencePolicy;

/// One reason two incidents are related.
#[derive(Debug, Clone, Serialize)]
pub struct Reason {
    pub kind: &'static str,
    /// 0..1 before weighting.
    pub value: f64,
    pub weight: f64,
    pub detail: String,
}

/// A related incident.
#[derive(Debug, Clone, Serialize)]
pub struct Related {
    pub incident_id: String,
    pub title: String,
    pub service: String,
    pub severity: Severity,
    pub status: crate::incidents::model::Status,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub started_at: OffsetDateTime,
    pub score: f64,
    pub reasons: Vec<Reason>,
}

/// Normalise a title into a signature key.
pub fn normalize_title(title: &str) -> String {
    let lower = title.to_lowercase();
    let words: Vec<String> = lower
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    ',' | ';' | ':' | '(' | ')' | '[' | ']' | '"' | '\'' | '!' | '?'
                )
        })
        .filter(|w| !w.is_empty())
        .map(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '%');
            if w.chars().any(|c| c.is_ascii_digit()) {
                "#".to_string()
            } else {
                w.to_string()
            }
        })
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::new();
    for w in words {
        // Runs of numbers collapse into one `#`.
        if w == "#" && out.last().is_some_and(|l| l == "#") {
            continue;
        }
        out.push(w);
        if out.len() == 8 {
            break;
        }
    }
    out.join(" ")
}

/// The signature of an incident: (service, key, whether the key is an alert name).
pub fn signature(inc: &Incident) -> (String, String, bool) {
    for l in &inc.labels {
        let l = l.trim();
        if let Some(a) = l
            .strip_prefix("alertname=")
            .or_else(|| l.strip_prefix("alertname:"))
            .or_else(|| l.strip_prefix("alert:"))
            .or_else(|| l.strip_prefix("alert="))
        {
            if !a.is_empty() {
                return (inc.service.clone(), a.to_string(), true);
            }
        }
    }
    (inc.service.clone(), normalize_title(&inc.title), false)
}

/// Incidents created in `[from, to)`, oldest first.
fn created_between(
    txn: &redb::ReadTransaction,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Incident>> {
    let idx = txn.open_table(INDEX)?;
    let incs = txn.open_table(INCIDENTS)?;
    let mut out = Vec::new();
    for row in idx.range(("all", micros(from), "")..("all", micros(to), ""))? {
        let (k, _) = row?;
        if let Some(inc) = load_incident(&incs, k.value().2)? {
            out.push(inc);
        }
    }
    Ok(out)
}

/// Related incidents of `id`, best first; with `append_note` the list is also recorded on its
/// timeline as a `correlation` event.
pub async fn correlate(
    room: &Incidents,
    index: &IncidentIndex,
    policy: &IntelligencePolicy,
    id: &str,
    append_note: bool,
    actor: &str,
) -> Result<Json> {
    let detail = room.get(id).await?;
    let inc = detail.incident.clone();
    let c = &policy.correlation;
    let w = &c.weights;
    let total_w = w.same_service + w.time_proximity + w.text_similarity + w.shared_fingerprints;
    let window = time::Duration::hours(c.time_window_hours as i64);

    // Text: the incident's own words against every other incident's.
    let mut text = format!("{}\n{}\n", inc.title, inc.summary);
    for ev in &detail.events {
        if matches!(ev.kind.as_str(), "note" | "alert" | "mitigation" | "triage") {
            text.push_str(&ev.message);
            text.push('\n');
        }
    }
    // Index lookups are blocking work: off the async runtime.
    let (hits, fp_hits) = {
        let (ix, fps) = (index.clone(), inc.fingerprints.clone());
        tokio::task::spawn_blocking(move || -> Result<_> {
            Ok((ix.similar(&text, 60)?, ix.with_fingerprints(&fps, 100)?))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
    };
    // Normalise by the incident's own score (the best any document can do for its words). Not
    // indexed yet (created a moment ago): no text signal rather than an inflated one.
    let mut text_sim: HashMap<String, f64> = HashMap::new();
    if let Some(self_score) = hits.iter().find(|(h, _)| *h == inc.id).map(|(_, s)| *s) {
        let self_score = self_score.max(f32::EPSILON);
        for (h, s) in &hits {
            text_sim.insert(h.clone(), (*s / self_score).min(1.0) as f64);
        }
    }

    let (service, started) = (inc.service.clone(), inc.started_at);
    // Text and fingerprint matches first (best first), then same-service incidents closest in
    // time, up to 500 candidates.
    let mut ids: Vec<String> = hits
        .iter()
        .map(|(h, _)| h.clone())
        .filter(|h| text_sim.contains_key(h))
        .chain(fp_hits)
        .collect();
    let candidates: Vec<Incident> = room
        .store()
        .read(move |txn| {
            let idx = txn.open_table(INDEX)?;
            let dim = format!("service:{service}");
            let mut near: Vec<(i64, String)> = Vec::new();
            for row in idx.range(
                (dim.as_str(), micros(started - window), "")
                    ..=(dim.as_str(), micros(started + window), ""),
            )? {
                let (k, _) = row?;
                let (_, ts, id) = k.value();
                near.push(((ts - micros(started)).abs(), id.to_string()));
            }
            near.sort();
            ids.extend(near.into_iter().map(|(_, id)| id));
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
            let incs = txn.open_table(INCIDENTS)?;
            let mut out = Vec::new();
            for id in ids.iter().take(500) {
                if let Some(i) = load_incident(&incs, id)? {
                    out.push(i);
                }
            }
            Ok(out)
        })
        .await?;

    let mut related: Vec<Related> = Vec::new();
    for other in candidates.into_iter().filter(|o| o.id != inc.id) {
        let mut reasons = Vec::new();
        let mut score = 0.0;
        let mut add = |kind: &'static str, value: f64, weight: f64, detail: String| {
            if value > 0.0 && weight > 0.0 {
                score += value * weight / total_w;
                reasons.push(Reason {
                    kind,
                    value: (value * 1000.0).round() / 1000.0,
                    weight: (weight / total_w * 1000.0).round() / 1000.0,
                    detail,
                });
            }
        };
        if other.service == inc.service {
            add("same_service", 1.0, w.same_service, other.service.clone());
        }
        let gap = (other.started_at - inc.started_at).abs();
        if gap < window {
            let v = 1.0 - gap.as_seconds_f64() / window.as_seconds_f64();
            add(
                "time_proximity",
                v,
                w.time_proximity,
                format!("started {} apart", human(gap)),
            );
        }
        if let Some(t) = text_sim.get(&other.id) {
            add(
                "text_similarity",
                *t,
                w.text_similarity,
                format!("{:.0}% of the words' weight", t * 100.0),
            );
        }
        let shared: Vec<&String> = other
            .fingerprints
            .iter()
            .filter(|f| inc.fingerprints.contains(f))
            .collect();
        if !shared.is_empty() {
            let denom = inc.fingerprints.len().min(other.fingerprints.len()).max(1);
            add(
                "shared_fingerprints",
                shared.len() as f64 / denom as f64,
                w.shared_fingerprints,
                shared
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        if score >= c.min_score {
            related.push(Related {
                incident_id: other.id,
                title: other.title,
                service: other.service,
                severity: other.severity,
                status: other.status,
                started_at: other.started_at,
                score: (score * 1000.0).round() / 1000.0,
                reasons,
            });
        }
    }
    related.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(b.started_at.cmp(&a.started_at))
    });
    related.truncate(c.max_results);

    let mut note_event = None;
    if append_note {
        let message = if related.is_empty() {
            "Correlation: no related incidents found".to_string()
        } else {
            let list: Vec<String> = related
                .iter()
                .take(5)
                .map(|r| {
                    let why: Vec<&str> = r.reasons.iter().map(|x| x.kind).collect();
                    format!("{} ({:.2}: {})", r.incident_id, r.score, why.join(", "))
                })
                .collect();
            format!("Correlation: related {}", list.join("; "))
        };
        let meta = json!({
            "related": related.iter().map(|r| json!({"incident_id": r.incident_id, "score": r.score})).collect::<Vec<_>>(),
        });
        let ev = room
            .append_event(
                &inc.id,
                NewEvent {
                    kind: "correlation".into(),
                    message,
                    meta: Some(meta),
                    ts: None,
                },
                actor,
            )
            .await?;
        note_event = Some(ev.id);
    }
    Ok(json!({
        "incident_id": inc.id,
        "related": related,
        "note_event_id": note_event,
        "weights": {"same_service": w.same_service / total_w, "time_proximity": w.time_proximity / total_w,
                    "text_similarity": w.text_similarity / total_w, "shared_fingerprints": w.shared_fingerprints / total_w},
    }))
}

fn human(d: time::Duration) -> String {
    let m = d.whole_minutes();
    if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h", m / 60)
    } else {
        format!("{} d", m / 1440)
    }
}

/// One recurring signature.
#[derive(Debug, Clone, Serialize)]
pub struct Signature {
    pub service: String,
    pub key: String,
    pub from_alert: bool,
    pub count: usize,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "crate::kernel::clock::serde_ts")]
    pub last_seen: OffsetDateTime,
    pub worst_severity: Severity,
    pub over_threshold: bool,
    pub incident_ids: Vec<String>,
}

fn group(incs: &[Incident], threshold: usize) -> Vec<Signature> {
    let mut by: BTreeMap<(String, String), Signature> = BTreeMap::new();
    for inc in incs {
        let (service, key, from_alert) = signature(inc);
        let e = by
            .entry((service.clone(), key.clone()))
            .or_insert_with(|| Signature {
                service,
                key,
                from_alert,
                count: 0,
                first_seen: inc.created_at,
                last_seen: inc.created_at,
                worst_severity: inc.severity,
                over_threshold: false,
                incident_ids: vec![],
            });
        e.count += 1;
        e.first_seen = e.first_seen.min(inc.created_at);
        e.last_seen = e.last_seen.max(inc.created_at);
        e.worst_severity = e.worst_severity.min(inc.severity);
        if e.incident_ids.len() < 20 {
            e.incident_ids.push(inc.id.clone());
        }
    }
    let mut out: Vec<Signature> = by.into_values().collect();
    for s in &mut out {
        s.over_threshold = s.count >= threshold;
    }
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.worst_severity.cmp(&b.worst_severity))
            .then(b.last_seen.cmp(&a.last_seen))
    });
    out
}

/// Signatures of the incidents created in the last `window_days`, most frequent first.
pub async fn recurrence(
    room: &Incidents,
    policy: &IntelligencePolicy,
    window_days: Option<u32>,
    now: OffsetDateTime,
) -> Result<Json> {
    let days = window_days.unwrap_or(policy.recurrence.window_days);
    if !(1..=3650).contains(&days) {
        return Err(Error::invalid("window_days", "must be between 1 and 3650"));
    }
    let from = now - time::Duration::days(days as i64);
    let incs = room
        .store()
        .read(move |txn| created_between(txn, from, now + time::Duration::seconds(1)))
        .await?;
    let sigs = group(&incs, policy.recurrence.threshold);
    Ok(json!({
        "window_days": days,
        "since": rfc3339(from),
        "threshold": policy.recurrence.threshold,
        "incidents": incs.len(),
        "signatures": sigs,
        "recurring": sigs.iter().filter(|s| s.over_threshold).count(),
    }))
}

/// Median, p90 and mean of durations in minutes, over how many.
fn stats(mut v: Vec<f64>) -> Json {
    if v.is_empty() {
        return json!({"n": 0, "median_min": null, "p90_min": null, "mean_min": null});
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // Nearest-rank p90.
    let p90 = v[((0.9 * n as f64).ceil() as usize).clamp(1, n) - 1];
    let mean = v.iter().sum::<f64>() / n as f64;
    let r = |x: f64| (x * 10.0).round() / 10.0;
    json!({"n": n, "median_min": r(median), "p90_min": r(p90), "mean_min": r(mean)})
}

/// The weekly digest over the last `policy.digest.window_days`. With `save`, it is also
/// written to `reports_dir/incidents/weekly/YYYY-WW.{json,md}` (ISO week of `now`).
pub async fn weekly_digest(
    room: &Incidents,
    policy: &IntelligencePolicy,
    now: OffsetDateTime,
    save: bool,
    reports_dir: &std::path::Path,
) -> Result<Json> {
    let d = &policy.digest;
    let from = now - time::Duration::days(d.window_days as i64);
    let lookback = now - time::Duration::days(d.followup_lookback_days as i64);
    let (incs, earlier, followups) = room
        .store()
        .read(move |txn| {
            let incs = created_between(txn, from, now + time::Duration::seconds(1))?;
            // Only earlier incidents that share a signature with this window's matter.
            let sigs: std::collections::HashSet<(String, String, bool)> =
                incs.iter().map(signature).collect();
            let earlier: Vec<Incident> =
                created_between(txn, lookback, now + time::Duration::seconds(1))?
                    .into_iter()
                    .filter(|i| sigs.contains(&signature(i)))
                    .collect();
            // Follow-ups of every incident in the lookback, with their incident.
            let events = txn.open_table(EVENTS)?;
            let mut fus: Vec<Event> = Vec::new();
            for inc in &earlier {
                for row in events.range((inc.id.as_str(), 0u64)..=(inc.id.as_str(), u64::MAX))? {
                    let ev: Event = from_json(row?.1.value())?;
                    if ev.kind == "followup" {
                        fus.push(ev);
                    }
                }
            }
            Ok((incs, earlier, fus))
        })
        .await?;

    let mut by_sev: BTreeMap<&str, usize> = Severity::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_service: BTreeMap<String, usize> = BTreeMap::new();
    for i in &incs {
        *by_sev.entry(i.severity.as_str()).or_default() += 1;
        *by_service.entry(i.service.clone()).or_default() += 1;
    }
    let mut flagged = Vec::new();
    let mut metric = |name: &'static str, pick: fn(&Incident) -> Option<OffsetDateTime>| {
        let mut v = Vec::new();
        for i in &incs {
            if let Some(t) = pick(i) {
                let m = (t - i.started_at).as_seconds_f64() / 60.0;
                if m < 0.0 {
                    flagged.push(json!({"incident_id": i.id, "metric": name,
                        "started_at": rfc3339(i.started_at), "at": rfc3339(t)}));
                } else {
                    v.push(m);
                }
            }
        }
        stats(v)
    };
    let mtta = metric("mtta", |i| i.acknowledged_at);
    let mttm = metric("mttm", |i| i.mitigated_at);
    let mttr = metric("mttr", |i| i.resolved_at);

    let sigs = group(&incs, policy.recurrence.threshold);
    let top: Vec<&Signature> = sigs
        .iter()
        .filter(|s| s.count > 1)
        .take(d.top_signatures)
        .collect();

    // Overdue follow-ups (every incident, not only this week's).
    let summary = room.followups_summary(None, None, d.window_days).await?;

    // Recurrences while a follow-up of an earlier incident of the same signature was open.
    let sig_of: HashMap<&str, (String, String, bool)> = earlier
        .iter()
        .map(|i| (i.id.as_str(), signature(i)))
        .collect();
    let inc_by_id: HashMap<&str, &Incident> = earlier.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut while_open = Vec::new();
    for b in &incs {
        let sb = signature(b);
        for fu in &followups {
            let Some(a) = inc_by_id.get(fu.incident_id.as_str()) else {
                continue;
            };
            if a.id == b.id
                || a.created_at >= b.created_at
                || sig_of.get(a.id.as_str()) != Some(&sb)
            {
                continue;
            }
            let done_at = fu
                .meta
                .get("done_at")
                .and_then(|v| v.as_str())
                .and_then(crate::kernel::clock::parse_ts);
            let open_then = fu.ts <= b.created_at && done_at.is_none_or(|d| d > b.created_at);
            if open_then {
                while_open.push(json!({
                    "incident_id": b.id, "signature": format!("{} / {}", sb.0, sb.1),
                    "earlier_incident_id": a.id, "followup_event_id": fu.id,
                    "followup_title": fu.meta.get("title").cloned().unwrap_or(Json::Null),
                    "followup_due": fu.meta.get("due").cloned().unwrap_or(Json::Null),
                }));
            }
        }
    }

    // Named after the ISO week the window ends in (a Monday-morning run reports last week).
    let (year, week, _) = (now - time::Duration::days(1)).to_iso_week_date();
    let week_id = format!("{year}-W{week:02}");
    let mut digest = json!({
        "week": week_id,
        "from": rfc3339(from),
        "to": rfc3339(now),
        "incidents": incs.len(),
        "by_severity": by_sev,
        "by_service": by_service,
        "mtta": mtta, "mttm": mttm, "mttr": mttr,
        "out_of_order": flagged,
        "top_recurring": top,
        "overdue_followups": summary.overdue_followups,
        "recurrences_while_followup_open": while_open,
    });
    let markdown = digest_markdown(&digest);
    if save {
        let dir = reports_dir.join("incidents").join("weekly");
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io(format!("{}: {e}", dir.display())))?;
        let json_path = dir.join(format!("{week_id}.json"));
        let md_path = dir.join(format!("{week_id}.md"));
        let body =
            serde_json::to_vec_pretty(&digest).map_err(|e| Error::Internal(e.to_string()))?;
        crate::kernel::fs::write_synced(&json_path, &body)?;
        crate::kernel::fs::write_synced(&md_path, markdown.as_bytes())?;
        digest["artifacts"] = json!([json_path, md_path]);
    }
    // The report as the files hold it, for callers that write it themselves (the job).
    digest["markdown"] = Json::String(markdown);
    Ok(digest)
}

fn digest_markdown(d: &Json) -> String {
    let mut s = String::new();
    let t = |v: &Json| v.as_str().unwrap_or("").to_string();
    s.push_str(&format!("# Incident digest {}\n\n", t(&d["week"])));
    s.push_str(&format!(
        "{} to {}: **{}** incidents.\n\n",
        t(&d["from"]),
        t(&d["to"]),
        d["incidents"]
    ));
    s.push_str("## By severity\n\n| severity | incidents |\n|---|---|\n");
    if let Some(m) = d["by_severity"].as_object() {
        for (k, v) in m {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
    }
    s.push_str("\n## By service\n\n| service | incidents |\n|---|---|\n");
    if let Some(m) = d["by_service"].as_object() {
        for (k, v) in m {
            s.push_str(&format!("| {k} | {v} |\n"));
        }
    }
    s.push_str("\n## Response times (minutes, from impact start)\n\n| metric | median | p90 | mean | over |\n|---|---|---|---|---|\n");
    for m in ["mtta", "mttm", "mttr"] {
        let x = &d[m];
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            m.to_uppercase(),
            x["median_min"],
            x["p90_min"],
            x["mean_min"],
            x["n"]
        ));
    }
    if let Some(a) = d["out_of_order"].as_array().filter(|a| !a.is_empty()) {
        s.push_str(&format!(
            "\n{} timestamps earlier than the impact start were left out:\n\n",
            a.len()
        ));
        for x in a {
            s.push_str(&format!(
                "- {} {}: {}\n",
                t(&x["incident_id"]),
                t(&x["metric"]),
                t(&x["at"])
            ));
        }
    }
    s.push_str("\n## Top recurring\n\n");
    match d["top_recurring"].as_array().filter(|a| !a.is_empty()) {
        Some(a) => {
            for x in a {
                s.push_str(&format!(
                    "- {} / {}: {} times ({} to {})\n",
                    t(&x["service"]),
                    t(&x["key"]),
                    x["count"],
                    t(&x["first_seen"]),
                    t(&x["last_seen"])
                ));
            }
        }
        None => s.push_str("Nothing recurred.\n"),
    }
    s.push_str("\n## Overdue follow-ups\n\n");
    match d["overdue_followups"].as_array().filter(|a| !a.is_empty()) {
        Some(a) => {
            for x in a {
                s.push_str(&format!(
                    "- {} ({}), due {}: {}\n",
                    t(&x["title"]),
                    t(&x["incident_id"]),
                    t(&x["due"]),
                    x["owner"].as_str().unwrap_or("no owner")
                ));
            }
        }
        None => s.push_str("None.\n"),
    }
    s.push_str("\n## Recurred while a follow-up was open\n\n");
    match d["recurrences_while_followup_open"]
        .as_array()
        .filter(|a| !a.is_empty())
    {
        Some(a) => {
            for x in a {
                s.push_str(&format!(
                    "- {} ({}) recurred while \"{}\" of {} was open\n",
                    t(&x["incident_id"]),
                    t(&x["signature"]),
                    t(&x["followup_title"]),
                    t(&x["earlier_incident_id"])
                ));
            }
        }
        None => s.push_str("None.\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_normalise_into_signatures() {
        // Numbers, ids and punctuation do not make two occurrences different.
        assert_eq!(
            normalize_title("Router 5xx rate > 5% (eu-west-1)"),
            "router # rate #"
        );
        assert_eq!(
            normalize_title("Router 4xx rate > 12% (us-east-2)"),
            normalize_title("Router 5xx rate > 5% (eu-west-1)")
        );
        assert_eq!(
            normalize_title("Gateway timeout on /v1/chat: 504 after 30s"),
            "gateway timeout on # after #"
        );
        assert_eq!(normalize_title("DB  down!!"), "db down");
        assert_eq!(normalize_title("Disk 91% full 12 3 4"), "disk # full #");
        assert_eq!(normalize_title("a b c d e f g h i j"), "a b c d e f g h");
    }

    #[test]
    fn stats_are_median_p90_mean() {
        assert_eq!(
            stats(vec![10.0, 20.0, 30.0, 40.0]),
            json!({"n": 4, "median_min": 25.0, "p90_min": 40.0, "mean_min": 25.0})
        );
        assert_eq!(
            stats(vec![]),
            json!({"n": 0, "median_min": null, "p90_min": null, "mean_min": null})
        );
    }
}
