//! The first pass of an import: every line is read and checked before anything is written.
//! What later lines are checked against is kept compactly — ids as 128-bit keyed hashes, a
//! line number, a start time — so memory grows by a few dozen bytes per record, never by the
//! record. Timestamps in the future or out of order are warnings (errors in a strict import).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::path::Path;

use redb::ReadTransaction;
use time::OffsetDateTime;

use super::artifact_link;
use super::lines;
use crate::error::Result;
use crate::incidents::model::{sanitize_artifact_name, Incident, MAX_ARTIFACT_BYTES};
use crate::incidents::tables::{artifacts_of, from_json, ARTIFACTS, INCIDENTS};
use crate::kernel::clock::{micros, rfc3339};
use crate::kernel::hash::sha256_hex;
use crate::store::jsonl::LineError;

/// Bad lines kept for the report (all are counted).
pub const MAX_ERRORS_KEPT: usize = 1000;
/// Warnings kept for the report (all are counted).
pub const MAX_WARNINGS_KEPT: usize = 20;
/// Clock skew allowed before a timestamp counts as in the future.
pub const FUTURE_SKEW: time::Duration = time::Duration::minutes(5);

/// A 128-bit keyed hash standing in for an id (or a pair of ids).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Key(u64, u64);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0);
    }
}

/// The key is already a keyed hash: maps use its first half as is.
#[derive(Default)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type KeyMap<V> = HashMap<Key, V, BuildHasherDefault<KeyHasher>>;
type KeySet = HashSet<Key, BuildHasherDefault<KeyHasher>>;

/// Keyed hashes with keys drawn afresh for each import, so no file can make two ids collide
/// on purpose. Also digests chunks of lines (the second pass compares them).
pub(super) struct Keyer {
    a: RandomState,
    b: RandomState,
}

impl Keyer {
    pub fn new() -> Self {
        Keyer {
            a: RandomState::new(),
            b: RandomState::new(),
        }
    }

    /// The key of `parts` (each ended by a byte no UTF-8 text holds).
    pub fn key(&self, parts: &[&str]) -> Key {
        let mut ha = self.a.build_hasher();
        let mut hb = self.b.build_hasher();
        for p in parts {
            ha.write(p.as_bytes());
            ha.write_u8(0xff);
            hb.write(p.as_bytes());
            hb.write_u8(0xff);
        }
        Key(ha.finish(), hb.finish())
    }

    /// A fresh digest of line bytes.
    pub fn digest(&self) -> std::hash::DefaultHasher {
        self.a.build_hasher()
    }
}

/// Bad lines and warnings, counted; the first few of each kept.
pub(super) struct Findings {
    strict: bool,
    pub errors: Vec<LineError>,
    pub error_total: usize,
    pub warnings: Vec<LineError>,
    pub warning_total: usize,
}

impl Findings {
    fn new(strict: bool) -> Self {
        Findings {
            strict,
            errors: Vec::new(),
            error_total: 0,
            warnings: Vec::new(),
            warning_total: 0,
        }
    }

    pub fn error(&mut self, file: &str, line: usize, reason: String) {
        self.error_total += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(LineError {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }

    /// One warning for the line, listing every reason.
    fn warn(&mut self, file: &str, line: usize, reasons: &[String]) {
        if reasons.is_empty() {
            return;
        }
        let reason = reasons.join("; ");
        if self.strict {
            return self.error(file, line, format!("{reason} (refused: strict import)"));
        }
        self.warning_total += 1;
        if self.warnings.len() < MAX_WARNINGS_KEPT {
            self.warnings.push(LineError {
                file: file.to_string(),
                line,
                reason,
            });
        }
    }
}

/// What a line's incident reference points at.
#[derive(Clone, Copy)]
enum Ref {
    /// An incident of this import or of the store, which began at this time (µs).
    Known(i64),
    /// An incident line that could not be read: its problems are reported there.
    Broken,
    /// Nothing.
    Missing,
}

/// A valid artifact line's file as checked: its sha256 and size, used by the second pass.
pub(super) struct CheckedFile {
    pub sha256: Box<str>,
    pub size: u32,
}

/// The first pass over one import folder.
pub(super) struct Checker<'a> {
    findings: Findings,
    /// Links met where an artifact file or its folder should be, relative to the folder.
    links: Vec<String>,
    /// Every artifact line's file, in line order (complete only when no line is bad).
    files: Vec<CheckedFile>,
    keyer: &'a Keyer,
    dir: &'a Path,
    txn: ReadTransaction,
    future: OffsetDateTime,
    /// Incidents of the file: key → (first line, started_at µs).
    incidents: KeyMap<(u32, i64)>,
    /// Incident ids whose line is broken.
    broken: KeySet,
    /// The last reference looked up in the store.
    stored: Option<(Key, Ref)>,
    /// Event ids → first line.
    events: KeyMap<u32>,
    /// (incident, artifact id) → first line.
    artifacts: KeyMap<u32>,
    /// (incident, artifact name) → first line.
    names: KeyMap<u32>,
}

fn ts_list(inc: &Incident) -> [(&'static str, Option<OffsetDateTime>); 7] {
    [
        ("started_at", Some(inc.started_at)),
        ("acknowledged_at", inc.acknowledged_at),
        ("mitigated_at", inc.mitigated_at),
        ("resolved_at", inc.resolved_at),
        ("closed_at", inc.closed_at),
        ("created_at", Some(inc.created_at)),
        ("updated_at", Some(inc.updated_at)),
    ]
}

impl<'a> Checker<'a> {
    pub fn new(
        keyer: &'a Keyer,
        dir: &'a Path,
        txn: ReadTransaction,
        now: OffsetDateTime,
        strict: bool,
    ) -> Self {
        Checker {
            findings: Findings::new(strict),
            links: Vec::new(),
            files: Vec::new(),
            keyer,
            dir,
            txn,
            future: now + FUTURE_SKEW,
            incidents: KeyMap::default(),
            broken: KeySet::default(),
            stored: None,
            events: KeyMap::default(),
            artifacts: KeyMap::default(),
            names: KeyMap::default(),
        }
    }

    /// What the second pass needs: the findings, the links met, the checked files. The rest
    /// (the maps, the read transaction) is dropped here, before the writing starts.
    pub fn finish(self) -> (Findings, Vec<String>, Vec<CheckedFile>) {
        (self.findings, self.links, self.files)
    }

    fn in_future(&self, field: &str, t: OffsetDateTime, out: &mut Vec<String>) {
        if t > self.future {
            out.push(format!("{field} {} is in the future", rfc3339(t)));
        }
    }

    /// What an incident id refers to: this import's incidents, then the store's.
    /// The incident an event or artifact line names (an id that is not one is missing).
    fn parent(&mut self, incident_id: &str) -> Result<Ref> {
        if lines::incident_id_ok(incident_id) {
            self.lookup(incident_id)
        } else {
            Ok(Ref::Missing)
        }
    }

    fn lookup(&mut self, id: &str) -> Result<Ref> {
        let k = self.keyer.key(&[id]);
        if let Some((_, started)) = self.incidents.get(&k) {
            return Ok(Ref::Known(*started));
        }
        if self.broken.contains(&k) {
            return Ok(Ref::Broken);
        }
        if let Some((last, r)) = self.stored {
            if last == k {
                return Ok(r);
            }
        }
        let r = match self.txn.open_table(INCIDENTS)?.get(id)? {
            Some(v) => Ref::Known(micros(from_json::<Incident>(v.value())?.started_at)),
            None => Ref::Missing,
        };
        self.stored = Some((k, r));
        Ok(r)
    }

    /// One line of `incidents.jsonl`.
    pub fn incident(&mut self, file: &str, line: usize, text: std::result::Result<&str, String>) {
        let inc = match read(text, lines::incident) {
            Ok(i) => i,
            Err(b) => {
                if let Some(id) = b.id {
                    self.broken.insert(self.keyer.key(&[&id]));
                }
                return self.findings.error(file, line, b.reason);
            }
        };
        let before = self.findings.error_total;
        if let Err(e) = inc.validate() {
            self.findings.error(file, line, e.to_string());
        }
        let k = self.keyer.key(&[&inc.id]);
        match self.incidents.entry(k) {
            std::collections::hash_map::Entry::Occupied(o) => {
                let first = o.get().0;
                self.findings.error(
                    file,
                    line,
                    format!("duplicate id {} (first on line {first})", inc.id),
                );
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert((line as u32, micros(inc.started_at)));
            }
        }
        if self.findings.error_total != before {
            return;
        }
        let mut w = Vec::new();
        for (field, t) in ts_list(&inc) {
            if let Some(t) = t {
                self.in_future(field, t, &mut w);
            }
        }
        for (field, t) in &ts_list(&inc)[1..5] {
            if let Some(t) = t.filter(|t| *t < inc.started_at) {
                w.push(format!(
                    "{field} {} is before started_at {}",
                    rfc3339(t),
                    rfc3339(inc.started_at)
                ));
            }
        }
        if inc.updated_at < inc.created_at {
            w.push(format!(
                "updated_at {} is before created_at {}",
                rfc3339(inc.updated_at),
                rfc3339(inc.created_at)
            ));
        }
        self.findings.warn(file, line, &w);
    }

    /// One line of `events.jsonl`.
    pub fn event(
        &mut self,
        file: &str,
        line: usize,
        text: std::result::Result<&str, String>,
    ) -> Result<()> {
        let (ev, mut bad) = match read(text, lines::event) {
            Ok(v) => v,
            Err(b) => {
                self.findings.error(file, line, b.reason);
                return Ok(());
            }
        };
        let r = self.parent(&ev.incident_id)?;
        if let Ref::Missing = r {
            bad.push(no_parent(&ev.incident_id));
        }
        lines::event_tail(&ev, &mut bad);
        match self.events.entry(self.keyer.key(&[&ev.id])) {
            std::collections::hash_map::Entry::Occupied(o) => bad.push(format!(
                "duplicate id {} (first on line {})",
                ev.id,
                o.get()
            )),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(line as u32);
            }
        }
        if !bad.is_empty() {
            for reason in bad {
                self.findings.error(file, line, reason);
            }
            return Ok(());
        }
        let mut w = Vec::new();
        self.in_future("ts", ev.ts, &mut w);
        if let Ref::Known(started) = r {
            if micros(ev.ts) < started {
                let started = OffsetDateTime::from_unix_timestamp_nanos(i128::from(started) * 1000)
                    .map(rfc3339)
                    .unwrap_or_default();
                w.push(format!(
                    "ts {} is before started_at {started} of {}",
                    rfc3339(ev.ts),
                    ev.incident_id
                ));
            }
        }
        self.findings.warn(file, line, &w);
        Ok(())
    }

    /// One line of `artifacts.jsonl`: safe names, allowed formats, the file present (and no
    /// link), within the size limit and matching its checksum.
    pub fn artifact(
        &mut self,
        file: &str,
        line: usize,
        text: std::result::Result<&str, String>,
    ) -> Result<()> {
        let a = match read(text, lines::artifact) {
            Ok(a) => a,
            Err(b) => {
                self.findings.error(file, line, b.reason);
                return Ok(());
            }
        };
        let bad = |s: &mut Self, r: String| s.findings.error(file, line, r);
        if let Err(e) = lines::check_other_id(&a.id) {
            bad(self, format!("id: {e}"));
            return Ok(());
        }
        match self.parent(&a.incident_id)? {
            Ref::Missing => {
                bad(self, no_parent(&a.incident_id));
                return Ok(());
            }
            Ref::Broken => return Ok(()),
            Ref::Known(_) => {}
        }
        let k = self.keyer.key(&[&a.incident_id, &a.id]);
        if let Some(first) = self.artifacts.get(&k) {
            bad(
                self,
                format!("duplicate id {} (first on line {first})", a.id),
            );
            return Ok(());
        }
        self.artifacts.insert(k, line as u32);
        let (name, ext) = match sanitize_artifact_name(&a.name) {
            Ok(v) => v,
            Err(e) => {
                bad(self, e.to_string());
                return Ok(());
            }
        };
        if name != a.name {
            bad(
                self,
                format!(
                    "name: '{}' is not a safe file name (would be '{name}')",
                    crate::kernel::text::clip(&a.name, 80)
                ),
            );
            return Ok(());
        }
        let stored = artifacts_of(&self.txn.open_table(ARTIFACTS)?, &a.incident_id)?;
        if let Some(other) = stored.iter().find(|s| s.name == a.name && s.id != a.id) {
            bad(
                self,
                format!(
                    "name: {} already has an artifact '{}' ({})",
                    a.incident_id, a.name, other.id
                ),
            );
            return Ok(());
        }
        if a.format != ext {
            bad(
                self,
                format!("format: '{}' does not match the .{ext} name", a.format),
            );
            return Ok(());
        }
        let nk = self.keyer.key(&[&a.incident_id, &a.name]);
        if let Some(first) = self.names.get(&nk) {
            bad(
                self,
                format!(
                    "name: {} is also used on line {first} for {}",
                    a.name, a.incident_id
                ),
            );
            return Ok(());
        }
        self.names.insert(nk, line as u32);
        if let Some(link) = artifact_link(self.dir, &a.incident_id, &a.name)? {
            if !self.links.contains(&link) {
                self.links.push(link);
            }
            return Ok(());
        }
        let src = self.dir.join(&a.incident_id).join(&a.name);
        let bytes = match read_capped(&src) {
            Ok(Some(b)) => b,
            Ok(None) => {
                bad(self, format!("file {} is larger than 2 MB", src.display()));
                return Ok(());
            }
            Err(e) => {
                bad(self, format!("file {}: {e}", src.display()));
                return Ok(());
            }
        };
        let sha = sha256_hex(&bytes);
        if !a.sha256.is_empty() && !a.sha256.eq_ignore_ascii_case(&sha) {
            bad(
                self,
                format!("sha256 of {} is {sha}, not {}", src.display(), a.sha256),
            );
            return Ok(());
        }
        if a.size_bytes != 0 && a.size_bytes != bytes.len() as u64 {
            bad(
                self,
                format!(
                    "size of {} is {}, not {}",
                    src.display(),
                    bytes.len(),
                    a.size_bytes
                ),
            );
            return Ok(());
        }
        self.files.push(CheckedFile {
            sha256: sha.into(),
            size: bytes.len() as u32,
        });
        let mut w = Vec::new();
        self.in_future("created_at", a.created_at, &mut w);
        self.findings.warn(file, line, &w);
        Ok(())
    }

    /// One line of `audit.jsonl`.
    pub fn audit(&mut self, file: &str, line: usize, text: std::result::Result<&str, String>) {
        match text.and_then(lines::audit) {
            Err(reason) => self.findings.error(file, line, reason),
            Ok(r) => {
                let mut w = Vec::new();
                self.in_future("ts", r.ts, &mut w);
                self.findings.warn(file, line, &w);
            }
        }
    }
}

/// The bytes of an artifact file; `None` when it is larger than an artifact may be (never
/// read past the limit).
pub(super) fn read_capped(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    f.take(MAX_ARTIFACT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() <= MAX_ARTIFACT_BYTES).then_some(bytes))
}

/// A line as read (or why it could not be), parsed by `parse`.
fn read<T>(
    text: std::result::Result<&str, String>,
    parse: fn(&str) -> std::result::Result<T, lines::Broken>,
) -> std::result::Result<T, lines::Broken> {
    text.map_err(|reason| lines::Broken { id: None, reason })
        .and_then(parse)
}

/// The finding for a line whose incident is neither in the import nor in the store.
fn no_parent(incident_id: &str) -> String {
    format!(
        "incident_id: no incident {} in this import or the store",
        crate::kernel::text::clip(incident_id, 60)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_ids_and_their_parts_apart() {
        let k = Keyer::new();
        assert!(k.key(&["inc_1", "art_2"]) == k.key(&["inc_1", "art_2"]));
        assert!(k.key(&["inc_1", "art_2"]) != k.key(&["inc_1a", "rt_2"]));
        assert!(k.key(&["ab", "c"]) != k.key(&["a", "bc"]));
        assert!(k.key(&["ev_1"]) != k.key(&["ev_2"]));
        // Fresh keys per import: the same id hashes differently elsewhere.
        assert!(Keyer::new().key(&["ev_1"]) != k.key(&["ev_1"]));
        let mut m: KeyMap<u32> = KeyMap::default();
        for i in 0..10_000u32 {
            m.insert(k.key(&[&format!("ev_{i}")]), i);
        }
        assert_eq!(m.len(), 10_000);
        assert_eq!(m.get(&k.key(&["ev_1234"])), Some(&1234));
    }

    #[test]
    fn strict_findings_turn_warnings_into_errors_and_keep_only_the_first() {
        let mut f = Findings::new(false);
        for line in 1..=(MAX_WARNINGS_KEPT + 5) {
            f.warn("e.jsonl", line, &["ts is in the future".into()]);
        }
        f.warn("e.jsonl", 99, &[]);
        assert_eq!(
            (f.warnings.len(), f.warning_total),
            (MAX_WARNINGS_KEPT, MAX_WARNINGS_KEPT + 5)
        );
        assert_eq!(f.error_total, 0);
        let mut f = Findings::new(true);
        f.warn("e.jsonl", 3, &["a".into(), "b".into()]);
        assert_eq!(f.warning_total, 0);
        assert_eq!(
            f.errors[0].to_string(),
            "e.jsonl:3: a; b (refused: strict import)"
        );
    }
}
