//! Creating incidents and changing them: fields, severity, status (close, reopen), each change
//! with its timeline event in the same commit.

use super::*;

impl Incidents {
    /// Create an incident (status `open`) and its first timeline event.
    pub async fn create(&self, input: NewIncident, actor: &str) -> Result<Incident> {
        let now = self.clock.now();
        let service = input.service.trim().to_string();
        let env = input.env.trim().to_ascii_lowercase();
        check_token("service", &service, 64)?;
        check_token("env", &env, 32)?;
        let title = input.title.trim().to_string();
        check_title(&title)?;
        check_text("summary", &input.summary, MAX_SUMMARY)?;
        let owner = input
            .owner
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty());
        if let Some(o) = &owner {
            check_line("owner", o, 128)?;
        }
        check_list("labels", &input.labels, 50, 64)?;
        check_list("fingerprints", &input.fingerprints, 100, 128)?;
        // Who created it is the caller (the key's principal, or the agent it acts as), never
        // what the request says.
        if input.created_by.is_some() {
            return Err(Error::invalid(
                "created_by",
                "is set from the caller's key and cannot be given",
            ));
        }
        let created_by = actor.to_string();
        check_line("created_by", &created_by, 128)?;
        let started_at = input.started_at.unwrap_or(now);
        if started_at > now + time::Duration::minutes(5) {
            return Err(Error::invalid("started_at", "is in the future"));
        }
        let mut inc = Incident {
            id: String::new(),
            service,
            env,
            severity: input.severity,
            status: Status::Open,
            title,
            summary: input.summary,
            started_at,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            closed_at: None,
            owner,
            created_by,
            labels: dedup(input.labels),
            fingerprints: dedup(input.fingerprints),
            created_at: now,
            updated_at: now,
        };
        let actor = actor.to_string();
        let inc = self
            .store
            .write(move |txn| {
                let prefix = format!(
                    "inc_{:04}{:02}{:02}_{:02}{:02}_",
                    now.year(),
                    now.month() as u8,
                    now.day(),
                    now.hour(),
                    now.minute()
                );
                {
                    let t = txn.open(INCIDENTS)?;
                    loop {
                        let id = format!("{prefix}{}", random_hex(6));
                        if t.get(id.as_str())?.is_none() {
                            inc.id = id;
                            break;
                        }
                    }
                }
                put_incident(txn, None, &inc)?;
                let mut ev = new_event(
                    &inc.id,
                    now,
                    "status_change",
                    format!("Incident opened: {}", inc.title),
                    json!({"from": null, "to": "open", "severity": inc.severity}),
                    &actor,
                );
                ev.seq = 1; // a new incident's timeline starts here
                insert_event(txn, &mut ev)?;
                Ok(inc)
            })
            .await?;
        self.announce(IncidentChange::Created, &inc.id, &inc);
        Ok(inc)
    }

    /// Change fields of an incident. Status moves are validated; each per-status timestamp is
    /// set when that status is first entered. Returns the incident after the change.
    pub async fn update(&self, id: &str, patch: IncidentPatch, actor: &str) -> Result<Incident> {
        validate_incident_id(id)?;
        validate_patch(&patch)?;
        let now = self.clock.now();
        let (id, actor) = (id.to_string(), actor.to_string());
        let inc = self
            .store
            .write(move |txn| apply_patch(txn, &id, patch, &actor, now))
            .await?;
        self.announce(IncidentChange::Updated, &inc.id, &inc);
        Ok(inc)
    }

    /// Close an incident (from any other status).
    pub async fn close(&self, id: &str, message: Option<String>, actor: &str) -> Result<Incident> {
        self.transition(id, Status::Closed, message, actor).await
    }

    /// Reopen a mitigated, resolved or closed incident.
    pub async fn reopen(&self, id: &str, message: Option<String>, actor: &str) -> Result<Incident> {
        self.transition(id, Status::Open, message, actor).await
    }

    async fn transition(
        &self,
        id: &str,
        to: Status,
        message: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        validate_incident_id(id)?;
        let patch = IncidentPatch {
            status: Some(to),
            message,
            ..Default::default()
        };
        validate_patch(&patch)?;
        let now = self.clock.now();
        let (id, actor) = (id.to_string(), actor.to_string());
        let inc = self
            .store
            .write(move |txn| apply_patch(txn, &id, patch, &actor, now))
            .await?;
        self.announce(IncidentChange::Updated, &inc.id, &inc);
        Ok(inc)
    }
}

pub(super) fn validate_patch(p: &IncidentPatch) -> Result<()> {
    if let Some(t) = &p.title {
        check_title(t.trim())?;
    }
    if let Some(s) = &p.summary {
        check_text("summary", s, MAX_SUMMARY)?;
    }
    if let Some(o) = &p.owner {
        check_line("owner", o.trim(), 128)?;
    }
    if let Some(s) = &p.service {
        check_token("service", s.trim(), 64)?;
    }
    if let Some(e) = &p.env {
        check_token("env", e.trim(), 32)?;
    }
    if let Some(l) = &p.labels {
        check_list("labels", l, 50, 64)?;
    }
    if let Some(f) = &p.fingerprints {
        check_list("fingerprints", f, 100, 128)?;
    }
    if let Some(m) = &p.message {
        check_text("message", m, MAX_SUMMARY)?;
    }
    Ok(())
}

/// Apply a patch inside a write transaction: validate against the stored record, then write
/// the record and one event per kind of change. One rule for every way of setting a status
/// (PATCH, close, reopen): asking for the status the incident already has is a conflict.
pub(super) fn apply_patch(
    txn: &crate::store::WriteTx,
    id: &str,
    p: IncidentPatch,
    actor: &str,
    now: OffsetDateTime,
) -> Result<Incident> {
    let old = load_incident(&*txn.open(INCIDENTS)?, id)?.ok_or_else(|| not_found(id))?;
    let mut new = old.clone();
    let mut events: Vec<Event> = Vec::new();
    let note = p.message.clone().unwrap_or_default();
    if let Some(to) = p.status {
        if old.status == to {
            return Err(Error::Conflict(format!(
                "incident {id} is already {}",
                to.as_str()
            )));
        }
    }
    if let Some(to) = p.status {
        if to != old.status {
            if !old.status.can_move_to(to) {
                return Err(Error::Validation {
                    code: "invalid_transition",
                    message: format!(
                        "status: cannot move from {} to {}; reopen it first",
                        old.status.as_str(),
                        to.as_str()
                    ),
                });
            }
            new.status = to;
            if let Some(slot) = new.status_ts_mut(to) {
                if slot.is_none() {
                    *slot = Some(now);
                }
            }
            let verb = if to == Status::Open {
                "reopened".to_string()
            } else {
                to.as_str().to_string()
            };
            let msg = if note.is_empty() {
                format!("Status {} → {}", old.status.as_str(), verb)
            } else {
                note.clone()
            };
            events.push(new_event(
                id,
                now,
                "status_change",
                msg,
                json!({"from": old.status, "to": to}),
                actor,
            ));
        }
    }
    if let Some(sev) = p.severity {
        if sev != old.severity {
            new.severity = sev;
            let msg = if note.is_empty() {
                format!("Severity {} → {}", old.severity.as_str(), sev.as_str())
            } else {
                note.clone()
            };
            events.push(new_event(
                id,
                now,
                "severity_change",
                msg,
                json!({"from": old.severity, "to": sev}),
                actor,
            ));
        }
    }
    let mut changed: Vec<&str> = Vec::new();
    let mut set = |field: &'static str, differs: bool| {
        if differs {
            changed.push(field);
        }
        differs
    };
    if let Some(t) = p.title.map(|t| t.trim().to_string()) {
        if set("title", t != old.title) {
            new.title = t;
        }
    }
    if let Some(s) = p.summary {
        if set("summary", s != old.summary) {
            new.summary = s;
        }
    }
    if let Some(o) = p.owner.map(|o| o.trim().to_string()) {
        let o = (!o.is_empty()).then_some(o);
        if set("owner", o != old.owner) {
            new.owner = o;
        }
    }
    if let Some(s) = p.service.map(|s| s.trim().to_string()) {
        if set("service", s != old.service) {
            new.service = s;
        }
    }
    if let Some(e) = p.env.map(|e| e.trim().to_ascii_lowercase()) {
        if set("env", e != old.env) {
            new.env = e;
        }
    }
    if let Some(l) = p.labels.map(dedup) {
        if set("labels", l != old.labels) {
            new.labels = l;
        }
    }
    if let Some(f) = p.fingerprints.map(dedup) {
        if set("fingerprints", f != old.fingerprints) {
            new.fingerprints = f;
        }
    }
    if let Some(s) = p.started_at {
        if s > now + time::Duration::minutes(5) {
            return Err(Error::invalid("started_at", "is in the future"));
        }
        if set("started_at", s != old.started_at) {
            new.started_at = s;
        }
    }
    if !changed.is_empty() {
        let msg = if note.is_empty() {
            format!("Updated {}", changed.join(", "))
        } else {
            note.clone()
        };
        events.push(new_event(
            id,
            now,
            "update",
            msg,
            json!({"fields": changed}),
            actor,
        ));
    }
    if events.is_empty() {
        return Ok(old);
    }
    new.updated_at = now;
    put_incident(txn, Some(&old), &new)?;
    for mut ev in events {
        insert_event(txn, &mut ev)?;
    }
    Ok(new)
}
