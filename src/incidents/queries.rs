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
        if q.since.is_some() && matches!(q.sort, Sort::Updated | Sort::Started) {
            return Err(Error::invalid(
                "since",
                "works with sort=created or sort=severity (both walk creation time)",
            ));
        }
        let cursor = q
            .cursor
            .as_deref()
            .map(|c| parse_cursor(c, q.sort))
            .transpose()?;
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
                Ok(Page::new(items, next_cursor))
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

/// Where a list page starts: the segment of the order (a severity, for `sort=severity`), then
/// the sort key and id of the last item shown.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ListCursor {
    seg: usize,
    ts: i64,
    id: String,
}

impl ListCursor {
    /// `<key µs>.<id>` for the creation order (the format every earlier version returned),
    /// `<sort>.<segment>.<key µs>.<id>` for the others.
    fn format(&self, sort: Sort) -> String {
        match sort {
            Sort::Created => format!("{}.{}", self.ts, self.id),
            s => format!("{}.{}.{}.{}", s.as_str(), self.seg, self.ts, self.id),
        }
    }
}

/// Parse a list cursor for `sort` (a cursor of another order is refused).
pub(super) fn parse_cursor(c: &str, sort: Sort) -> Result<ListCursor> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server returned");
    let (seg, rest) = match sort {
        Sort::Created => (0, c),
        s => {
            let rest = c
                .strip_prefix(s.as_str())
                .and_then(|r| r.strip_prefix('.'))
                .ok_or_else(bad)?;
            let (seg, rest) = rest.split_once('.').ok_or_else(bad)?;
            let seg = seg.parse::<usize>().map_err(|_| bad())?;
            if seg >= segments(s).len() {
                return Err(bad());
            }
            (seg, rest)
        }
    };
    let (ts, id) = rest.split_once('.').ok_or_else(bad)?;
    let ts = ts.parse::<i64>().map_err(|_| bad())?;
    validate_incident_id(id).map_err(|_| bad())?;
    Ok(ListCursor {
        seg,
        ts,
        id: id.to_string(),
    })
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

/// One run of index entries a list walks, newest key first: a dimension of [`INDEX`] (by
/// creation time) or an order of [`SORT_INDEX`].
enum Segment {
    Index(String),
    Sorted(&'static str),
}

/// The segments of `sort`, in order: for `severity` one per severity (a cursor's segment is
/// the severity's place in [`Severity::ALL`], whatever the filter).
fn segments(sort: Sort) -> Vec<Segment> {
    match sort {
        Sort::Created => vec![Segment::Index("all".into())],
        Sort::Severity => Severity::ALL
            .into_iter()
            .map(|s| Segment::Index(format!("severity:{}", s.as_str())))
            .collect(),
        Sort::Updated => vec![Segment::Sorted("updated")],
        Sort::Started => vec![Segment::Sorted("started")],
    }
}

/// The stored service names `asked` stands for, without regard to case (`Billing` finds
/// `billing`), a trailing `*` standing for any rest (`bill*`: every service whose name starts
/// with `bill`); a name no incident has is kept as asked (and matches nothing).
pub(super) fn resolve_services(
    counts: &impl ReadableTable<&'static str, u64>,
    asked: &[String],
) -> Result<Vec<String>> {
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let known = known_services(counts)?;
    let mut out = Vec::new();
    for a in asked {
        let mut hit = false;
        let matches = |k: &str| match a.strip_suffix('*') {
            Some(p) => {
                k.len() >= p.len() && k.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            None => k.eq_ignore_ascii_case(a),
        };
        for (k, _) in known.iter().filter(|(k, _)| matches(k)) {
            hit = true;
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        if !hit && !out.contains(a) {
            out.push(a.clone());
        }
    }
    Ok(out)
}

/// Every service with at least one incident, and how many it has, by name.
pub(super) fn known_services(
    counts: &impl ReadableTable<&'static str, u64>,
) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    // `;` is the byte after `:`: the range holds exactly the `service:` dimensions.
    for row in counts.range("service:".."service;")? {
        let (k, v) = row?;
        let n = v.value();
        if n > 0 {
            out.push((k.value()["service:".len()..].to_string(), n));
        }
    }
    Ok(out)
}

pub(super) fn list_in(
    txn: &redb::ReadTransaction,
    q: &ListQuery,
    limit: usize,
    cursor: Option<ListCursor>,
) -> Result<Page<Incident>> {
    let idx = txn.open_table(INDEX)?;
    let sorted = txn.open_table(SORT_INDEX)?;
    let counts = txn.open_table(INDEX_COUNTS)?;
    let incs = txn.open_table(INCIDENTS)?;
    let services = resolve_services(&counts, &q.service)?;
    let wanted: std::collections::HashSet<&str> = services.iter().map(String::as_str).collect();
    let passes = |b: &Brief| {
        (q.status.is_empty() || b.status.is_some_and(|s| q.status.contains(&s)))
            && (wanted.is_empty() || wanted.contains(b.service))
            && q.env.as_deref().is_none_or(|e| e == b.env)
            && (q.severity.is_empty() || b.severity.is_some_and(|s| q.severity.contains(&s)))
    };
    let words: Vec<String> = q
        .text
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();

    // A pasted incident id is a direct lookup: exact (ids are case-sensitive), complete, and
    // one read. An id no incident has is searched for as text, as any other word.
    let typed: Vec<&str> = q.text.as_deref().unwrap_or("").split_whitespace().collect();
    if let [id] = typed.as_slice() {
        if validate_incident_id(id).is_ok() {
            if let Some(inc) = load_incident(&incs, id)? {
                let hit = passes(&parse_brief(&brief_of(&inc)))
                    && q.since.is_none_or(|t| inc.created_at >= t);
                let mut page = Page::new(Vec::new(), None);
                page.total = Some(u64::from(hit));
                // The one page holds it; a cursor (there is no second page) gets none.
                if hit && cursor.is_none() {
                    page.items.push(inc);
                }
                return Ok(page);
            }
        }
    }

    // The index dimensions of each kind of filter set (any of a kind's values matches).
    let kinds: Vec<Vec<String>> = [
        q.status
            .iter()
            .map(|s| format!("status:{}", s.as_str()))
            .collect::<Vec<_>>(),
        services.iter().map(|s| format!("service:{s}")).collect(),
        q.env.iter().map(|e| format!("env:{e}")).collect(),
        q.severity
            .iter()
            .map(|s| format!("severity:{}", s.as_str()))
            .collect(),
    ]
    .into_iter()
    .filter(|k| !k.is_empty())
    .collect();
    // The most selective single-valued filter drives a creation-ordered walk.
    let count = |d: &str| -> Result<u64> { Ok(counts.get(d)?.map(|g| g.value()).unwrap_or(0)) };
    let mut driver = "all".to_string();
    let mut best = redb::ReadableTableMetadata::len(&incs)?;
    for [d] in kinds
        .iter()
        .filter_map(|k| <&[String; 1]>::try_from(k.as_slice()).ok())
    {
        let n = count(d)?;
        if n < best {
            best = n;
            driver = d.clone();
        }
    }
    let lo_ts = q.since.map(micros).unwrap_or(i64::MIN);

    // How many match the filters other than text: from the counts when one kind of filter is
    // set, else by walking the driver's index entries (no records read).
    let matching = if best == 0 {
        0
    } else if q.since.is_none() && kinds.len() <= 1 {
        match kinds.first() {
            None => best,
            Some(k) => k.iter().map(|d| count(d)).sum::<Result<u64>>()?,
        }
    } else {
        let d = driver.as_str();
        let mut n = 0u64;
        for row in idx.range((d, lo_ts, "")..=(d, i64::MAX, ""))? {
            if passes(&parse_brief(row?.1.value())) {
                n += 1;
            }
        }
        n
    };
    let mut page = Page::new(Vec::new(), None);
    if words.is_empty() {
        page.total = Some(matching);
    } else {
        page.candidates = Some(matching);
        page.scanned = Some(0);
    }
    if matching == 0 {
        return Ok(page);
    }

    // A creation-ordered walk follows the driver.
    let segs = match q.sort {
        Sort::Created => vec![Segment::Index(driver)],
        s => segments(s),
    };
    let mut found: Vec<(ListCursor, Option<Incident>)> = Vec::with_capacity(limit + 1);
    let mut scanned = 0usize;
    let mut last_scanned: Option<ListCursor> = None;
    let mut partial = false;
    let first = cursor.as_ref().map(|c| c.seg).unwrap_or(0);
    'walk: for (si, seg) in segs.iter().enumerate().skip(first) {
        // Severities the filter leaves out are not walked.
        if q.sort == Sort::Severity
            && !q.severity.is_empty()
            && !q.severity.contains(&Severity::ALL[si])
        {
            continue;
        }
        let (table, d, lo) = match seg {
            // `since` bounds creation time: the lower end of a creation-ordered walk.
            Segment::Index(d) => (&idx, d.as_str(), lo_ts),
            Segment::Sorted(o) => (&sorted, *o, i64::MIN),
        };
        let range = match &cursor {
            Some(c) if c.seg == si && c.ts < lo => continue,
            Some(c) if c.seg == si => table.range((d, lo, "")..(d, c.ts, c.id.as_str()))?,
            _ => table.range((d, lo, "")..=(d, i64::MAX, ""))?,
        };
        for row in range.rev() {
            let (k, v) = row?;
            if !passes(&parse_brief(v.value())) {
                continue;
            }
            let (_, ts, id) = k.value();
            let at = ListCursor {
                seg: si,
                ts,
                id: id.to_string(),
            };
            if words.is_empty() {
                found.push((at, None));
            } else {
                if scanned == MAX_TEXT_SCAN {
                    partial = true;
                    break 'walk;
                }
                scanned += 1;
                last_scanned = Some(at.clone());
                let Some(inc) = load_incident(&incs, id)? else {
                    continue;
                };
                if !text_matches(&inc, &words) {
                    continue;
                }
                found.push((at, Some(inc)));
            }
            if found.len() > limit {
                break 'walk;
            }
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    page.next_cursor = if more {
        found.last().map(|(c, _)| c.format(q.sort))
    } else if partial {
        last_scanned.map(|c| c.format(q.sort))
    } else {
        None
    };
    for (at, inc) in found {
        match inc {
            Some(inc) => page.items.push(inc),
            None => {
                if let Some(inc) = load_incident(&incs, &at.id)? {
                    page.items.push(inc);
                }
            }
        }
    }
    page.partial = partial;
    if !words.is_empty() {
        page.scanned = Some(scanned as u64);
    }
    Ok(page)
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
