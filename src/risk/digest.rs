//! The daily risk digest and the weekly platform digest as JSON and markdown (the caller
//! writes the files: `reports/risk/YYYY-MM-DD.{json,md}`, `reports/platform/YYYY-Www.*`).

use serde_json::{json, Value as Json};
use time::OffsetDateTime;

use super::pressure::Pressure;
use crate::kernel::clock::rfc3339;

/// One service's line of the daily digest: its score on the day, the day before, and its
/// three biggest contributors.
pub fn day_item(r: &Json, prev: Option<&Json>) -> Json {
    let score = r["score"].as_i64();
    let before = prev.and_then(|p| p["score"].as_i64());
    let top: Vec<Json> = r["risk_attribution"]["contributors"]
        .as_array()
        .map(|a| a.iter().take(3).cloned().collect())
        .unwrap_or_default();
    let unavailable: Vec<Json> = r["factors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["available"] == false)
                .map(|f| f["factor"].clone())
                .collect()
        })
        .unwrap_or_default();
    json!({
        "service": r["service"], "score": r["score"], "band": r["band"],
        "at": r["computed_at"],
        "previous_score": before,
        "delta": match (score, before) { (Some(s), Some(b)) => Some(s - b), _ => None },
        "top_contributors": top,
        "unavailable_factors": unavailable,
    })
}

/// The daily digest's JSON.
pub fn daily(day: time::Date, as_of: OffsetDateTime, mut items: Vec<Json>) -> Json {
    items.sort_by(|a, b| {
        b["score"]
            .as_i64()
            .cmp(&a["score"].as_i64())
            .then(a["service"].as_str().cmp(&b["service"].as_str()))
    });
    let mut bands = serde_json::Map::new();
    for b in ["critical", "high", "medium", "low"] {
        let n = items.iter().filter(|i| i["band"] == b).count();
        bands.insert(b.into(), json!(n));
    }
    let mut rising: Vec<&Json> = items
        .iter()
        .filter(|i| i["delta"].as_i64().is_some_and(|d| d > 0))
        .collect();
    rising.sort_by(|a, b| b["delta"].as_i64().cmp(&a["delta"].as_i64()));
    let rising: Vec<Json> = rising
        .iter()
        .map(|i| json!({"service": i["service"], "delta": i["delta"], "score": i["score"]}))
        .collect();
    json!({
        "date": day.to_string(),
        "as_of": rfc3339(as_of),
        "services": items.len(),
        "by_band": bands,
        "rising": rising,
        "items": items,
    })
}

fn s(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => "-".into(),
        v => v.to_string(),
    }
}

/// The daily digest as markdown.
pub fn daily_markdown(d: &Json) -> String {
    let mut m = format!(
        "# Risk digest {}\n\nAs of {}.",
        s(&d["date"]),
        s(&d["as_of"])
    );
    m.push_str(&format!(" {} service(s):", d["services"]));
    for b in ["critical", "high", "medium", "low"] {
        m.push_str(&format!(" {} {b},", d["by_band"][b]));
    }
    m.pop();
    m.push_str(
        ".\n\n| service | score | band | change | top contributors |\n|---|---|---|---|---|\n",
    );
    for i in d["items"].as_array().into_iter().flatten() {
        let delta = match i["delta"].as_i64() {
            Some(x) if x > 0 => format!("+{x}"),
            Some(x) => x.to_string(),
            None => "new".into(),
        };
        let top: Vec<String> = i["top_contributors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                let what = crate::kernel::text::clip(&s(&c["detail"]), 80).replace('|', "/");
                format!("{what} ({})", c["points"])
            })
            .collect();
        m.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            s(&i["service"]),
            s(&i["score"]),
            s(&i["band"]),
            delta,
            if top.is_empty() {
                "-".into()
            } else {
                top.join("; ")
            }
        ));
    }
    if d["items"].as_array().is_none_or(|a| a.is_empty()) {
        m.push_str("| - | - | - | - | no services with incidents or snapshots |\n");
    }
    m
}

/// The platform digest's JSON.
pub fn platform(week: &str, start: OffsetDateTime, as_of: OffsetDateTime, v: &[Pressure]) -> Json {
    let pressured: Vec<&Pressure> = v.iter().filter(|p| p.pressure).collect();
    json!({
        "week": week,
        "from": rfc3339(start),
        "as_of": rfc3339(as_of),
        "services": v.len(),
        "under_pressure": pressured.len(),
        // The form backlog_tool.generate takes as `pressure`.
        "pressure": pressured.iter().map(|p| json!({"service": p.service, "reasons": p.reasons})).collect::<Vec<_>>(),
        "items": v,
    })
}

/// The platform digest as markdown.
pub fn platform_markdown(d: &Json) -> String {
    let mut m = format!(
        "# Platform priorities {}\n\n{} to {}: {} of {} service(s) under architecture pressure.\n\n",
        s(&d["week"]),
        s(&d["from"]),
        s(&d["as_of"]),
        d["under_pressure"],
        d["services"]
    );
    let list = d["pressure"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        m.push_str("No service needs a design fix this week.\n");
    }
    let items = d["items"].as_array().cloned().unwrap_or_default();
    for p in list {
        let score = items
            .iter()
            .find(|i| i["service"] == p["service"])
            .map_or(Json::Null, |i| i["score"].clone());
        m.push_str(&format!(
            "## {} (score {})\n\n",
            s(&p["service"]),
            s(&score)
        ));
        for r in p["reasons"].as_array().into_iter().flatten() {
            m.push_str(&format!("- {}\n", s(r)));
        }
        m.push('\n');
    }
    m
}
