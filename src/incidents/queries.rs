//! Reading the log: one incident, filtered and paged lists (server-side, cursor paging), the
//! feed of every timeline, and the overview counts.

use super::*;

impl Incidents {
    /// An incident with its timeline and artifacts.
    pub async fn get(&self, id: &str) -> Result<IncidentDetail> {
        validate_incident_id(id)?;
        let id = id.to_string();
        self.store
            .read(move |txn| {
                let inc = load_incident(&txn.open_table(INCIDENTS)?, &id)?
                    .ok_or_else(|| not_found(&id))?;
                // The timeline's first events in time order; the rest by `/events`.
                let (events, truncated) = timeline_page(
                    &txn.open_table(EVENT_ORDER)?,
                    &txn.open_table(EVENTS)?,
                    &id,
                    After::Start,
                    MAX_INLINE_EVENTS,
                )?;
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

/// Parse a list cursor `<created µs>.<id>`.
pub(super) fn parse_cursor(c: &str) -> Result<(i64, String)> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server returned");
    let (ts, id) = c.split_once('.').ok_or_else(bad)?;
    let ts = ts.parse::<i64>().map_err(|_| bad())?;
    validate_incident_id(id).map_err(|_| bad())?;
    Ok((ts, id.to_string()))
}

/// Parse a feed cursor `<ts µs>.<incident id>.<seq>`.
pub(super) fn parse_feed_cursor(c: &str) -> Result<(i64, String, u64)> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server returned");
    let (ts, rest) = c.split_once('.').ok_or_else(bad)?;
    let (id, seq) = rest.rsplit_once('.').ok_or_else(bad)?;
    let ts = ts.parse::<i64>().map_err(|_| bad())?;
    let seq = seq.parse::<u64>().map_err(|_| bad())?;
    validate_incident_id(id).map_err(|_| bad())?;
    Ok((ts, id.to_string(), seq))
}

pub(super) fn list_in(
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
pub(super) fn text_matches(inc: &Incident, words: &[String]) -> bool {
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
