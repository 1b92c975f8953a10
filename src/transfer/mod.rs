//! JSONL export and import of the incident log, in the old stack's layout:
//! `incidents.jsonl`, `events.jsonl`, `artifacts.jsonl` and one folder of artifact files per
//! incident. Both sides use the stored record types, so the format cannot drift from the store.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableTable};
use serde::Serialize;
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::incidents::artifact_rel_path;
use crate::incidents::model::{
    check_event_type, check_line, check_text, normalize_followup_meta, sanitize_artifact_name,
    validate_incident_id, Artifact, Event, Incident, MAX_ARTIFACT_BYTES, MAX_META_BYTES,
    MAX_SUMMARY,
};
use crate::incidents::tables::*;
use crate::kernel::fs::{sync_dir, write_synced};
use crate::kernel::hash::sha256_hex;
use crate::store::jsonl::{read_file, write_file, LineError};
use crate::store::Store;

/// File names of the layout.
pub const INCIDENTS_FILE: &str = "incidents.jsonl";
/// Timeline events.
pub const EVENTS_FILE: &str = "events.jsonl";
/// Artifact metadata.
pub const ARTIFACTS_FILE: &str = "artifacts.jsonl";

/// Records per write job during an import.
const IMPORT_CHUNK: usize = 2000;

/// What an export wrote.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ExportReport {
    pub incidents: usize,
    pub events: usize,
    pub artifacts: usize,
    /// Gateway audit records (`audit.jsonl`).
    pub audit: usize,
}

/// Counts of one record type in an import.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub imported: usize,
    pub skipped_existing: usize,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ImportReport {
    pub incidents: Counts,
    pub events: Counts,
    pub artifacts: Counts,
    pub audit: Counts,
}

/// Why an import wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Bad lines, each with `file:line: reason`.
    #[error("{} bad line(s); nothing was imported", .0.len())]
    Lines(Vec<LineError>),
    /// Symbolic links (or other non-regular entries) where the import reads a file or a
    /// folder, each named relative to the import folder. A link could pull a file from
    /// outside the folder into the data dir, where read-only agents can fetch it.
    #[error("{}; nothing was imported", links_message(.0))]
    Links(Vec<String>),
    /// Anything else (missing folder, store failure).
    #[error(transparent)]
    Other(#[from] Error),
}

fn links_message(links: &[String]) -> String {
    format!(
        "{} symbolic link(s) or special file(s) in the import folder, which import refuses: {}",
        links.len(),
        links.join(", ")
    )
}

/// What `symlink_metadata` says of `dir/rel`, without following a link.
enum Entry {
    Missing,
    File,
    Dir,
    /// A symbolic link or a special file (fifo, socket, device): never read.
    Refused,
}

fn entry(dir: &Path, rel: &Path) -> Result<Entry> {
    let p = dir.join(rel);
    match std::fs::symlink_metadata(&p) {
        Ok(m) if m.file_type().is_symlink() => Ok(Entry::Refused),
        Ok(m) if m.is_file() => Ok(Entry::File),
        Ok(m) if m.is_dir() => Ok(Entry::Dir),
        Ok(_) => Ok(Entry::Refused),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Entry::Missing),
        Err(e) => Err(Error::Io(format!("{}: {e}", p.display()))),
    }
}

/// Check the artifact file `dir/<incident>/<name>` and its folder: `Ok(None)` when both are
/// plain, `Ok(Some(rel))` naming the first link met.
fn artifact_link(dir: &Path, incident: &str, name: &str) -> Result<Option<String>> {
    let folder = Path::new(incident);
    if let Entry::Refused = entry(dir, folder)? {
        return Ok(Some(incident.to_string()));
    }
    if let Entry::Refused = entry(dir, &folder.join(name))? {
        return Ok(Some(format!("{incident}/{name}")));
    }
    Ok(None)
}

/// Relative paths (`<incident>/<name>`) of every artifact file in a snapshot.
pub fn artifact_paths(txn: &ReadTransaction) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for row in txn.open_table(ARTIFACTS)?.iter()? {
        let a: Artifact = from_json(row?.1.value())?;
        v.push(format!("{}/{}", a.incident_id, a.name));
        artifact_rel_path(&a)?;
    }
    Ok(v)
}

/// Write the snapshot `txn` to `out` (created if needed; existing files replaced).
pub fn export(txn: &ReadTransaction, artifacts_dir: &Path, out: &Path) -> Result<ExportReport> {
    std::fs::create_dir_all(out).map_err(|e| Error::Io(format!("{}: {e}", out.display())))?;
    let mut incidents: Vec<Incident> = Vec::new();
    for row in txn.open_table(INCIDENTS)?.iter()? {
        incidents.push(from_json(row?.1.value())?);
    }
    let mut events: Vec<Event> = Vec::new();
    for row in txn.open_table(EVENTS)?.iter()? {
        events.push(from_json(row?.1.value())?);
    }
    let mut artifacts: Vec<Artifact> = Vec::new();
    for row in txn.open_table(ARTIFACTS)?.iter()? {
        artifacts.push(from_json(row?.1.value())?);
    }
    for a in &artifacts {
        let dest_dir = out.join(&a.incident_id);
        std::fs::create_dir_all(&dest_dir)?;
        let src = artifacts_dir.join(artifact_rel_path(a)?);
        std::fs::copy(&src, dest_dir.join(&a.name))
            .map_err(|e| Error::Io(format!("artifact {}: {e}", src.display())))?;
    }
    let report = ExportReport {
        incidents: write_file(&out.join(INCIDENTS_FILE), &incidents)?,
        events: write_file(&out.join(EVENTS_FILE), &events)?,
        artifacts: write_file(&out.join(ARTIFACTS_FILE), &artifacts)?,
        audit: crate::audit::export(txn, out)?,
    };
    sync_dir(out);
    Ok(report)
}

/// Copy the validated artifact files into the data dir. Files first: a crash before the
/// commit leaves an unreferenced file, never a record without its file. Each source is checked
/// again right before it is read (a link swapped in since the validation, or changed bytes,
/// fail the import), and on any failure the files copied so far are removed.
fn copy_artifacts(
    dir: &Path,
    artifacts_dir: &Path,
    files: Vec<(PathBuf, Artifact)>,
) -> std::result::Result<Vec<Artifact>, ImportError> {
    let mut written: Vec<PathBuf> = Vec::new();
    let mut out = Vec::with_capacity(files.len());
    let mut copy_one = |src: &Path, a: &Artifact| -> std::result::Result<(), ImportError> {
        if let Some(link) = artifact_link(dir, &a.incident_id, &a.name)? {
            return Err(ImportError::Links(vec![link]));
        }
        let bytes = std::fs::read(src).map_err(Error::from)?;
        if sha256_hex(&bytes) != a.sha256 {
            return Err(Error::Conflict(format!(
                "{}/{} changed during the import",
                a.incident_id, a.name
            ))
            .into());
        }
        let dest_dir = artifacts_dir.join(&a.incident_id);
        std::fs::create_dir_all(&dest_dir).map_err(Error::from)?;
        let dest = dest_dir.join(&a.name);
        written.push(dest.clone());
        write_synced(&dest, &bytes)?;
        sync_dir(&dest_dir);
        Ok(())
    };
    for (src, a) in files {
        if let Err(e) = copy_one(&src, &a) {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
        out.push(a);
    }
    Ok(out)
}

/// Parse every line of `file` as JSON, then as `T` after `fix` adjusts the raw object.
fn parse_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    errors: &mut Vec<LineError>,
    broken_ids: &mut HashSet<String>,
    mut fix: impl FnMut(&mut serde_json::Map<String, Json>),
) -> Result<Vec<(usize, T)>> {
    let raw: Vec<(usize, Json)> = read_file(path, errors)?;
    let mut out = Vec::with_capacity(raw.len());
    for (line, v) in raw {
        let mut v = v;
        match v.as_object_mut() {
            Some(m) => fix(m),
            None => {
                errors.push(line_err(path, line, "not a JSON object".into()));
                continue;
            }
        }
        let id = v.get("id").and_then(|i| i.as_str()).map(str::to_string);
        match serde_json::from_value::<T>(v) {
            Ok(t) => out.push((line, t)),
            Err(e) => {
                // Remember the id so lines that refer to it are not reported a second time.
                broken_ids.extend(id);
                errors.push(line_err(path, line, e.to_string()))
            }
        }
    }
    Ok(out)
}

fn line_err(path: &Path, line: usize, reason: String) -> LineError {
    LineError {
        file: path.display().to_string(),
        line,
        reason,
    }
}

fn check_other_id(id: &str) -> std::result::Result<(), String> {
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

/// Import `dir` into `store`. Every line is validated first; if any is bad, nothing is
/// written and every bad line is reported. Records whose id already exists are skipped, so
/// importing the same folder twice changes nothing.
pub fn import(
    store: &Store,
    artifacts_dir: &Path,
    dir: &Path,
) -> std::result::Result<ImportReport, ImportError> {
    // The folder itself is the operator's choice; what it holds is not: no file or folder
    // the import reads may be a link (checked before anything is read).
    let mut links: Vec<String> = Vec::new();
    for f in [
        INCIDENTS_FILE,
        EVENTS_FILE,
        ARTIFACTS_FILE,
        crate::audit::AUDIT_FILE,
    ] {
        if let Entry::Refused = entry(dir, Path::new(f))? {
            links.push(f.to_string());
        }
    }
    if !links.is_empty() {
        return Err(ImportError::Links(links));
    }
    if !matches!(entry(dir, Path::new(INCIDENTS_FILE))?, Entry::File) {
        return Err(Error::NotFound(format!("{} has no {INCIDENTS_FILE}", dir.display())).into());
    }
    let mut errors: Vec<LineError> = Vec::new();
    let inc_path = dir.join(INCIDENTS_FILE);
    let ev_path = dir.join(EVENTS_FILE);
    let art_path = dir.join(ARTIFACTS_FILE);

    let mut broken: HashSet<String> = HashSet::new();
    let incidents: Vec<(usize, Incident)> =
        parse_lines(&inc_path, &mut errors, &mut broken, |m| {
            // `create` lowercases env; imported records follow the same rule so filters match.
            if let Some(Json::String(e)) = m.get_mut("env") {
                *e = e.to_ascii_lowercase();
            }
        })?;
    let mut ignored = HashSet::new();
    let events: Vec<(usize, Event)> = parse_lines(&ev_path, &mut errors, &mut ignored, |m| {
        // Old stores wrote events without ids: derive a stable one so re-imports are no-ops.
        if !m.contains_key("id") {
            let key = format!(
                "{}|{}|{}|{}",
                m.get("incident_id")
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                m.get("ts").map(|v| v.to_string()).unwrap_or_default(),
                m.get("type").map(|v| v.to_string()).unwrap_or_default(),
                m.get("message").map(|v| v.to_string()).unwrap_or_default()
            );
            m.insert(
                "id".into(),
                Json::String(format!("ev_{}", &sha256_hex(key.as_bytes())[..20])),
            );
        }
    })?;
    let artifacts: Vec<(usize, Artifact)> =
        parse_lines(&art_path, &mut errors, &mut ignored, |m| {
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
        })?;

    // Which incident ids exist already (store) or come with this import (file).
    let file_ids: HashMap<String, usize> = {
        let mut m = HashMap::new();
        for (line, inc) in &incidents {
            if let Err(e) = inc.validate() {
                errors.push(line_err(&inc_path, *line, e.to_string()));
            }
            if let Some(first) = m.insert(inc.id.clone(), *line) {
                errors.push(line_err(
                    &inc_path,
                    *line,
                    format!("duplicate id {} (first on line {first})", inc.id),
                ));
            }
        }
        m
    };
    let ev_ids: Vec<String> = events.iter().map(|(_, e)| e.incident_id.clone()).collect();
    let art_ids: Vec<String> = artifacts
        .iter()
        .map(|(_, a)| a.incident_id.clone())
        .collect();
    let referenced: Vec<String> = ev_ids.into_iter().chain(art_ids).collect();
    let (existing_incidents, existing_events, existing_artifacts, existing_names) = {
        let inc_ids: Vec<String> = file_ids.keys().cloned().chain(referenced).collect();
        let ev_ids: Vec<String> = events.iter().map(|(_, e)| e.id.clone()).collect();
        let art_keys: Vec<(String, String)> = artifacts
            .iter()
            .map(|(_, a)| (a.incident_id.clone(), a.id.clone()))
            .collect();
        store.read_blocking(|txn| {
            let t = txn.open_table(INCIDENTS)?;
            let mut incs = HashSet::new();
            for id in inc_ids {
                if t.get(id.as_str())?.is_some() {
                    incs.insert(id);
                }
            }
            // Event ids already stored, per incident the import touches.
            let t = txn.open_table(EVENTS)?;
            let wanted: HashSet<String> = ev_ids.into_iter().collect();
            let mut evs = HashSet::new();
            let touched: HashSet<&str> =
                events.iter().map(|(_, e)| e.incident_id.as_str()).collect();
            for inc in touched {
                for row in t.range((inc, 0u64)..=(inc, u64::MAX))? {
                    let ev: Event = from_json(row?.1.value())?;
                    if wanted.contains(&ev.id) {
                        evs.insert(ev.id);
                    }
                }
            }
            let t = txn.open_table(ARTIFACTS)?;
            let mut arts = HashSet::new();
            let mut names: HashMap<(String, String), String> = HashMap::new();
            for (i, a) in art_keys {
                if t.get((i.as_str(), a.as_str()))?.is_some() {
                    arts.insert((i.clone(), a));
                }
                for stored in artifacts_of(&t, &i)? {
                    names.insert((i.clone(), stored.name), stored.id);
                }
            }
            Ok((incs, evs, arts, names))
        })?
    };
    let known = |id: &str| file_ids.contains_key(id) || existing_incidents.contains(id);
    // A line about an incident whose own line is broken is reported through that line.
    let orphan = |id: &str| !known(id) && !broken.contains(id);

    let mut seen_events = HashMap::new();
    let mut events = events;
    for (line, ev) in events.iter_mut() {
        let mut bad = |r: String| errors.push(line_err(&ev_path, *line, r));
        if let Err(e) = check_text("message", &ev.message, MAX_SUMMARY)
            .and_then(|_| check_line("actor", &ev.actor, 128))
        {
            bad(e.to_string());
        }
        if serde_json::to_vec(&ev.meta)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
            > MAX_META_BYTES
        {
            bad(format!("meta: larger than {MAX_META_BYTES} bytes"));
        }
        if ev.kind == "followup" {
            // The same rules as a follow-up appended through the API (title, due, priority,
            // status), so the summary and overdue checks can trust them.
            match normalize_followup_meta(Some(ev.meta.clone()), &ev.message) {
                Ok(m) => ev.meta = m,
                Err(e) => bad(e.to_string()),
            }
        }
        if let Err(e) = check_other_id(&ev.id) {
            bad(format!("id: {e}"));
        }
        if validate_incident_id(&ev.incident_id).is_err() || orphan(&ev.incident_id) {
            bad(format!(
                "incident_id: no incident {} in this import or the store",
                crate::kernel::text::clip(&ev.incident_id, 60)
            ));
        }
        if let Err(e) = check_event_type(&ev.kind) {
            bad(e.to_string());
        }
        if !ev.meta.is_object() {
            bad("meta: must be an object".into());
        }
        if let Some(first) = seen_events.insert(ev.id.clone(), *line) {
            bad(format!("duplicate id {} (first on line {first})", ev.id));
        }
    }

    // Artifacts: safe names, allowed formats, files present and matching their checksums.
    let mut files: Vec<(PathBuf, Artifact)> = Vec::new();
    let mut seen_arts = HashMap::new();
    let mut seen_names: HashMap<(String, String), usize> = HashMap::new();
    for (line, a) in &artifacts {
        let mut bad = |r: String| errors.push(line_err(&art_path, *line, r));
        if let Err(e) = check_other_id(&a.id) {
            bad(format!("id: {e}"));
            continue;
        }
        if validate_incident_id(&a.incident_id).is_err() || orphan(&a.incident_id) {
            bad(format!(
                "incident_id: no incident {} in this import or the store",
                crate::kernel::text::clip(&a.incident_id, 60)
            ));
            continue;
        }
        if !known(&a.incident_id) {
            continue;
        }
        if let Some(first) = seen_arts.insert((a.incident_id.clone(), a.id.clone()), *line) {
            bad(format!("duplicate id {} (first on line {first})", a.id));
            continue;
        }
        let (name, ext) = match sanitize_artifact_name(&a.name) {
            Ok(v) => v,
            Err(e) => {
                bad(e.to_string());
                continue;
            }
        };
        if name != a.name {
            bad(format!(
                "name: '{}' is not a safe file name (would be '{name}')",
                crate::kernel::text::clip(&a.name, 80)
            ));
            continue;
        }
        if let Some(other) = existing_names.get(&(a.incident_id.clone(), a.name.clone())) {
            if other != &a.id {
                bad(format!(
                    "name: {} already has an artifact '{}' ({other})",
                    a.incident_id, a.name
                ));
                continue;
            }
        }
        if a.format != ext {
            bad(format!(
                "format: '{}' does not match the .{ext} name",
                a.format
            ));
            continue;
        }
        if let Some(first) = seen_names.insert((a.incident_id.clone(), a.name.clone()), *line) {
            bad(format!(
                "name: {} is also used on line {first} for {}",
                a.name, a.incident_id
            ));
            continue;
        }
        if let Some(link) = artifact_link(dir, &a.incident_id, &a.name)? {
            if !links.contains(&link) {
                links.push(link);
            }
            continue;
        }
        let src = dir.join(&a.incident_id).join(&a.name);
        match std::fs::symlink_metadata(&src) {
            Ok(m) if m.len() > MAX_ARTIFACT_BYTES as u64 => {
                bad(format!("file {} is larger than 2 MB", src.display()));
                continue;
            }
            _ => {}
        }
        let bytes = match std::fs::read(&src) {
            Ok(b) => b,
            Err(e) => {
                bad(format!("file {}: {e}", src.display()));
                continue;
            }
        };
        if bytes.len() > MAX_ARTIFACT_BYTES {
            bad(format!("file {} is larger than 2 MB", src.display()));
            continue;
        }
        let sha = sha256_hex(&bytes);
        if !a.sha256.is_empty() && !a.sha256.eq_ignore_ascii_case(&sha) {
            bad(format!(
                "sha256 of {} is {sha}, not {}",
                src.display(),
                a.sha256
            ));
            continue;
        }
        if a.size_bytes != 0 && a.size_bytes != bytes.len() as u64 {
            bad(format!(
                "size of {} is {}, not {}",
                src.display(),
                bytes.len(),
                a.size_bytes
            ));
            continue;
        }
        let mut a = a.clone();
        a.sha256 = sha;
        a.size_bytes = bytes.len() as u64;
        a.path = format!("{}/{}", a.incident_id, a.name);
        files.push((src, a));
    }

    let audit = crate::audit::read_import(dir, &mut errors)?;

    if !links.is_empty() {
        return Err(ImportError::Links(links));
    }
    if !errors.is_empty() {
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(ImportError::Lines(errors));
    }

    let mut report = ImportReport::default();
    let new_incidents: Vec<Incident> = incidents
        .into_iter()
        .map(|(_, i)| i)
        .filter(|i| {
            let skip = existing_incidents.contains(&i.id);
            if skip {
                report.incidents.skipped_existing += 1
            } else {
                report.incidents.imported += 1
            }
            !skip
        })
        .collect();
    let new_events: Vec<Event> = events
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| {
            let skip = existing_events.contains(&e.id);
            if skip {
                report.events.skipped_existing += 1
            } else {
                report.events.imported += 1
            }
            !skip
        })
        .collect();
    let to_copy: Vec<(PathBuf, Artifact)> = files
        .into_iter()
        .filter(|(_, a)| {
            let skip = existing_artifacts.contains(&(a.incident_id.clone(), a.id.clone()));
            if skip {
                report.artifacts.skipped_existing += 1;
            } else {
                report.artifacts.imported += 1;
            }
            !skip
        })
        .collect();
    let new_artifacts = copy_artifacts(dir, artifacts_dir, to_copy)?;

    // Written in chunks, each one durable commit: incidents first, then their events and
    // artifacts. Everything was validated above; if the process dies part-way, importing the
    // same folder again completes it (existing ids are skipped).
    for chunk in new_incidents.chunks(IMPORT_CHUNK) {
        let chunk = chunk.to_vec();
        store.write_blocking(move |txn| {
            for inc in &chunk {
                put_incident(txn, None, inc)?;
            }
            Ok(())
        })?;
    }
    for chunk in new_events.chunks(IMPORT_CHUNK) {
        let chunk = chunk.to_vec();
        store.write_blocking(move |txn| {
            for mut ev in chunk {
                insert_event(txn, &mut ev)?;
            }
            Ok(())
        })?;
    }
    for chunk in new_artifacts.chunks(IMPORT_CHUNK) {
        let chunk = chunk.to_vec();
        store.write_blocking(move |txn| {
            for a in &chunk {
                insert_artifact(txn, a)?;
            }
            Ok(())
        })?;
    }
    let (imported, skipped_existing) = crate::audit::import(store, audit)?;
    report.audit = Counts {
        imported,
        skipped_existing,
    };
    Ok(report)
}
