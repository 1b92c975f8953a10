//! Timelines: paged events, appending events, follow-ups (close, open and overdue summary).

use super::*;

impl Incidents {
    /// Timeline events in time order (`ts`, then `seq` for events of the same time), after the
    /// event whose `seq` is `after_seq` (0: from the start). The page's `next_cursor` is the
    /// `seq` of its last event, so paging by `after=next_cursor` walks the whole timeline in
    /// time order without gaps or repeats, however late each event was appended.
    pub async fn events(&self, id: &str, after_seq: u64, limit: usize) -> Result<Page<Event>> {
        validate_incident_id(id)?;
        let limit = limit.clamp(1, MAX_INLINE_EVENTS);
        let id = id.to_string();
        self.store
            .read(move |txn| {
                if txn.open_table(INCIDENTS)?.get(id.as_str())?.is_none() {
                    return Err(not_found(&id));
                }
                let events = txn.open_table(EVENTS)?;
                let after = if after_seq == 0 {
                    After::Start
                } else {
                    let ev: Event = events
                        .get((id.as_str(), after_seq))?
                        .map(|g| from_json(g.value()))
                        .transpose()?
                        .ok_or_else(|| {
                            Error::invalid(
                                "after",
                                format!(
                                    "incident {id} has no event {after_seq} (give the seq of an \
                                     event, as next_cursor does, or 0)"
                                ),
                            )
                        })?;
                    After::Event(micros(ev.ts), ev.seq)
                };
                let order = txn.open_table(EVENT_ORDER)?;
                let (items, more) = timeline_page(&order, &events, &id, after, limit)?;
                let next_cursor = if more {
                    items.last().map(|e: &Event| e.seq.to_string())
                } else {
                    None
                };
                Ok(Page::new(items, next_cursor))
            })
            .await
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
                        open_followups.push(followup_view(&ev, &inc.service, &inc.env, now));
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
    /// Open follow-ups matching `q`, one page at a time: by due date (`q.soonest`: earliest
    /// first, else latest first, so the most recently missed of the overdue ones lead), those
    /// without a due date last; `total` counts every match.
    pub async fn followups(&self, q: FollowupQuery) -> Result<Page<FollowupView>> {
        let limit = if q.limit == 0 { DEFAULT_LIMIT } else { q.limit };
        if limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("at most {MAX_LIMIT}")));
        }
        let cursor = q.cursor.as_deref().map(parse_followup_cursor).transpose()?;
        let now_t = self.clock.now();
        let now = micros(now_t);
        self.store
            .read(move |txn| {
                let incs = txn.open_table(INCIDENTS)?;
                let events = txn.open_table(EVENTS)?;
                let due = txn.open_table(FOLLOWUP_DUE)?;
                // The stored names the services stand for (any case, `name*`), as the list's.
                let services =
                    super::queries::resolve_services(&txn.open_table(INDEX_COUNTS)?, &q.service)?;
                let services: std::collections::HashSet<String> = services.into_iter().collect();
                let owner = q.owner.as_deref().map(str::to_lowercase);
                let filtered = owner.is_some() || !q.service.is_empty() || q.env.is_some();
                // Dated entries end at `now` for the overdue ones; undated ones are never due.
                let dated_end = if q.overdue { (now, "") } else { (i64::MAX, "") };
                let at = cursor.as_ref().map(|(k, id)| (*k, id.as_str()));

                // One entry: its event and incident when it matches the filters.
                let load = |inc_id: &str, seq: u64| -> Result<Option<(Event, Place)>> {
                    let Some(g) = events.get((inc_id, seq))? else {
                        return Ok(None);
                    };
                    let ev: Event = from_json(g.value())?;
                    let fo = ev.meta.get("owner").and_then(|v| v.as_str());
                    if !is_open_followup(&ev)
                        || owner
                            .as_deref()
                            .is_some_and(|o| fo.is_none_or(|fo| fo.to_lowercase() != o))
                    {
                        return Ok(None);
                    }
                    let Some(g) = incs.get(inc_id)? else {
                        return Ok(None);
                    };
                    let place: Place = from_json(g.value())?;
                    if !(q.service.is_empty() || services.contains(&place.service))
                        || q.env.as_deref().is_some_and(|e| e != place.env)
                    {
                        return Ok(None);
                    }
                    Ok(Some((ev, place)))
                };

                // Whether an entry comes after the cursor in this order.
                let after = |k: (i64, &str)| match at {
                    None => true,
                    Some(a) if q.soonest => k > a,
                    Some(a) if a.0 == i64::MAX => k.0 == i64::MAX && k > a,
                    Some(a) => k.0 == i64::MAX || k < a,
                };
                // Walk the order: the page after the cursor and one more (is there a next
                // page?); with filters, every entry (to count the matches).
                let mut page: Vec<(i64, String, Event, Place)> = Vec::new();
                let mut more = false;
                let mut matches = 0u64;
                let mut visit = |k: (i64, &str), v: (&str, u64)| -> Result<bool> {
                    let later = after(k);
                    if !filtered && (!later || page.len() == limit) {
                        more |= later;
                        return Ok(!later);
                    }
                    let Some((ev, place)) = load(v.0, v.1)? else {
                        return Ok(true);
                    };
                    matches += 1;
                    if later && page.len() < limit {
                        page.push((k.0, k.1.to_string(), ev, place));
                    } else if later {
                        more = true;
                    }
                    Ok(true)
                };
                let dated = due.range((i64::MIN, "")..dated_end)?;
                let mut go = true;
                let rows: Box<dyn Iterator<Item = _>> = if q.soonest {
                    Box::new(dated)
                } else {
                    Box::new(dated.rev())
                };
                for row in rows {
                    let (k, v) = row?;
                    if !visit(k.value(), v.value())? {
                        go = false;
                        break;
                    }
                }
                if go && !q.overdue {
                    for row in due.range((i64::MAX, "")..)? {
                        let (k, v) = row?;
                        if !visit(k.value(), v.value())? {
                            break;
                        }
                    }
                }
                let total = if filtered {
                    matches
                } else if q.overdue {
                    due.range((i64::MIN, "")..(now, ""))?.count() as u64
                } else {
                    redb::ReadableTableMetadata::len(&due)?
                };
                let next_cursor = more
                    .then(|| page.last().map(|(k, id, ..)| format!("{k}.{id}")))
                    .flatten();
                let items = page
                    .iter()
                    .map(|(_, _, ev, place)| followup_view(ev, &place.service, &place.env, now_t))
                    .collect();
                let mut out = Page::new(items, next_cursor);
                out.total = Some(total);
                Ok(out)
            })
            .await
    }

    /// The services with incidents, and how many each has: with `prefix`, those whose name
    /// starts with it (without regard to case), a name equal to it first, then by name; at
    /// most `limit` of them, with how many there are in all.
    pub async fn services(
        &self,
        prefix: Option<String>,
        limit: usize,
    ) -> Result<(u64, Vec<ServiceCount>)> {
        let prefix = prefix.map(|p| p.trim().to_lowercase()).unwrap_or_default();
        if prefix.chars().count() > 64 {
            return Err(Error::invalid("prefix", "at most 64 characters"));
        }
        let limit = if limit == 0 { MAX_LIMIT } else { limit };
        if limit > MAX_LIMIT {
            return Err(Error::invalid("limit", format!("at most {MAX_LIMIT}")));
        }
        self.store
            .read(move |txn| {
                let counts = txn.open_table(INDEX_COUNTS)?;
                let mut found: Vec<(String, u64)> = super::queries::known_services(&counts)?
                    .into_iter()
                    .filter(|(s, _)| s.to_lowercase().starts_with(&prefix))
                    .collect();
                // Stable: an exact name leads, the rest stay in name order.
                found.sort_by_key(|(s, _)| s.to_lowercase() != prefix);
                let total = found.len() as u64;
                Ok((
                    total,
                    found
                        .into_iter()
                        .take(limit)
                        .map(|(service, incidents)| ServiceCount { service, incidents })
                        .collect(),
                ))
            })
            .await
    }
}

/// Parse a follow-up list cursor `<sort key>.<event id>`.
fn parse_followup_cursor(c: &str) -> Result<(i64, String)> {
    let bad = || Error::bad_request("invalid_cursor", "cursor is not one this server returned");
    let (d, id) = c.split_once('.').ok_or_else(bad)?;
    let d = d.parse::<i64>().map_err(|_| bad())?;
    validate_record_id("event", "ev", id).map_err(|_| bad())?;
    Ok((d, id.to_string()))
}

/// The fields of a stored incident a follow-up list needs (the rest of the record is skipped,
/// not decoded).
#[derive(serde::Deserialize)]
struct Place {
    service: String,
    env: String,
}

pub(super) fn followup_view(
    ev: &Event,
    service: &str,
    env: &str,
    now: OffsetDateTime,
) -> FollowupView {
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
        service: service.to_string(),
        env: env.to_string(),
    }
}
