//! JSONL export and import of the incident log, in the old stack's layout:
//! `incidents.jsonl`, `events.jsonl`, `artifacts.jsonl` and one folder of artifact files per
//! incident. Both sides use the stored record types, so the format cannot drift from the store.
//!
//! An import streams: a first pass (`check`) reads and checks every line, keeping only
//! compact keys of what later lines refer to; if any line is bad nothing is written. The
//! second pass (`write`) reads the files again — each chunk of lines checked against a
//! digest taken in the first pass, so a file changed in between is refused, not half-trusted —
//! and writes one durable batch per chunk. Memory stays bounded whatever the file sizes.

pub mod backups;
mod check;
mod lines;
mod write;

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::Path;

use redb::{ReadTransaction, ReadableDatabase, ReadableTable};
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::incidents::artifact_rel_path;
use crate::incidents::model::{Artifact, Event, Incident};
use crate::incidents::tables::*;
use crate::kernel::fs::sync_dir;
use crate::store::jsonl::{write_file, LineError, LineReader};
use crate::store::Store;

pub use check::{FUTURE_SKEW, MAX_ERRORS_KEPT, MAX_WARNINGS_KEPT};

/// File names of the layout.
pub const INCIDENTS_FILE: &str = "incidents.jsonl";
/// Timeline events.
pub const EVENTS_FILE: &str = "events.jsonl";
/// Artifact metadata.
pub const ARTIFACTS_FILE: &str = "artifacts.jsonl";

/// A chunk of lines ends after this many lines or bytes, whichever comes first: one digest
/// in the first pass, one write job in the second (so even lines near the size limit keep a
/// chunk's records to a few tens of MB).
const IMPORT_CHUNK: usize = 2000;
const IMPORT_CHUNK_BYTES: usize = 8 * 1024 * 1024;

/// The store cache an import should open the store with: enough for the pages a chunk
/// touches, small enough that a large import stays small (redb's default is 1 GiB).
pub const IMPORT_CACHE_BYTES: usize = 64 * 1024 * 1024;

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

/// Lines that were imported although something about them looks wrong (a timestamp in the
/// future, or out of order): all counted, the first [`MAX_WARNINGS_KEPT`] kept.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Warnings {
    pub total: usize,
    pub first: Vec<LineError>,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ImportReport {
    pub incidents: Counts,
    pub events: Counts,
    pub artifacts: Counts,
    pub audit: Counts,
    pub warnings: Warnings,
}

/// Which pass an import is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Step {
    /// Reading and checking every line; nothing is written.
    Check,
    /// Copying the artifact files into the data dir.
    Copy,
    /// Writing the records.
    Write,
}

/// Where an import is, for a progress display.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    pub step: Step,
    /// The file being read (a name of the layout).
    pub file: &'a str,
    /// Lines of that file done in this step.
    pub lines: u64,
    /// Bytes read over the whole import so far, and in all (every step reads the files).
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// This step is through this file.
    pub finished: bool,
}

/// How an import runs.
pub struct ImportOptions<'a> {
    /// The time "in the future" is judged against.
    pub now: OffsetDateTime,
    /// Refuse lines with warnings (as bad lines: nothing is imported) instead of importing
    /// them.
    pub strict: bool,
    /// Told where the import is, every few thousand lines and at the end of each file.
    pub progress: Option<&'a mut dyn FnMut(&Progress<'_>)>,
}

impl ImportOptions<'_> {
    /// Not strict, no progress.
    pub fn new(now: OffsetDateTime) -> Self {
        ImportOptions {
            now,
            strict: false,
            progress: None,
        }
    }
}

/// Why an import failed. After `Lines` and `Links` nothing was written; after `Other` the
/// import may have stopped part-way, and running it again completes it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Bad lines, each with `file:line: reason`: the first [`MAX_ERRORS_KEPT`] in file and
    /// line order, and how many there are in all.
    #[error("{total} bad line(s); nothing was imported")]
    Lines {
        errors: Vec<LineError>,
        total: usize,
    },
    /// Symbolic links (or other non-regular entries) where the import reads a file or a
    /// folder, each named relative to the import folder. A link could pull a file from
    /// outside the folder into the data dir, where read-only agents can fetch it.
    #[error("{}; nothing was imported", links_message(.0))]
    Links(Vec<String>),
    /// Anything else (missing folder, store failure, a file changed during the import).
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

/// One file of the import folder, opened once: both passes read the same open file.
struct Source {
    name: &'static str,
    /// As errors name it.
    path: String,
    file: Option<File>,
    size: u64,
    /// Digest of each chunk of lines, from the first pass.
    digests: Vec<u64>,
}

impl Source {
    fn open(dir: &Path, name: &'static str) -> std::result::Result<Source, ImportError> {
        let p = dir.join(name);
        let path = p.display().to_string();
        let file = match File::open(&p) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io(format!("{path}: {e}")).into()),
        };
        let size = match &file {
            Some(f) => {
                let m = f
                    .metadata()
                    .map_err(|e| Error::Io(format!("{path}: {e}")))?;
                // Checked before it was opened; a link swapped in since is refused too.
                if !m.is_file() {
                    return Err(ImportError::Links(vec![name.to_string()]));
                }
                m.len()
            }
            None => 0,
        };
        Ok(Source {
            name,
            path,
            file,
            size,
            digests: Vec::new(),
        })
    }

    /// A reader from the start of the file (`None` when there is no file).
    fn reader(&self) -> Result<Option<LineReader<&File>>> {
        let Some(mut f) = self.file.as_ref() else {
            return Ok(None);
        };
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::Io(format!("{}: {e}", self.path)))?;
        Ok(Some(LineReader::new(self.path.clone(), f)))
    }
}

/// Progress reporting, with the bytes of the files already done.
struct Meter<'p> {
    cb: Option<&'p mut dyn FnMut(&Progress<'_>)>,
    base: u64,
    total: u64,
}

impl Meter<'_> {
    fn tick(&mut self, step: Step, file: &str, lines: usize, bytes: u64, finished: bool) {
        if let Some(cb) = self.cb.as_mut() {
            cb(&Progress {
                step,
                file,
                lines: lines as u64,
                done_bytes: self.base + bytes,
                total_bytes: self.total,
                finished,
            });
        }
        if finished {
            self.base += bytes;
        }
    }
}

/// Cuts a file into chunks of lines, by the same rule in both passes, and digests each.
struct Chunker<'k> {
    keyer: &'k check::Keyer,
    digest: std::hash::DefaultHasher,
    lines: usize,
    bytes: usize,
    /// First line of the current chunk.
    first_line: usize,
}

impl<'k> Chunker<'k> {
    fn new(keyer: &'k check::Keyer) -> Self {
        Chunker {
            keyer,
            digest: keyer.digest(),
            lines: 0,
            bytes: 0,
            first_line: 1,
        }
    }

    /// Add a line's bytes; true when that line completes a chunk.
    fn add(&mut self, raw: &[u8]) -> bool {
        use std::hash::Hasher;
        self.digest.write(raw);
        self.lines += 1;
        self.bytes += raw.len();
        self.lines == IMPORT_CHUNK || self.bytes >= IMPORT_CHUNK_BYTES
    }

    /// Whether the current chunk has any line.
    fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// End the current chunk: its digest; the next one starts after it.
    fn cut(&mut self) -> u64 {
        use std::hash::Hasher;
        let d = self.digest.finish();
        self.digest = self.keyer.digest();
        self.first_line += self.lines;
        self.lines = 0;
        self.bytes = 0;
        d
    }
}

/// How often (in lines) progress is reported.
const TICK_LINES: usize = 4096;

/// First pass over one file: every line to `f`, a digest per chunk of lines kept.
fn check_file(
    src: &mut Source,
    keyer: &check::Keyer,
    meter: &mut Meter<'_>,
    mut f: impl FnMut(&str, usize, std::result::Result<&str, String>) -> Result<()>,
) -> Result<()> {
    let mut digests = Vec::new();
    if let Some(mut r) = src.reader()? {
        let mut chunks = Chunker::new(keyer);
        let mut lines = 0;
        while let Some(line) = r.next_line()? {
            if chunks.add(r.raw()) {
                digests.push(chunks.cut());
            }
            f(&src.path, line, r.text())?;
            lines = line;
            if line % TICK_LINES == 0 {
                meter.tick(Step::Check, src.name, line, r.bytes_read(), false);
            }
        }
        if !chunks.is_empty() {
            digests.push(chunks.cut());
        }
        meter.tick(Step::Check, src.name, lines, r.bytes_read(), true);
    }
    src.digests = digests;
    Ok(())
}

/// Import `dir` into `store` (now, not strict, no progress): see [`import_with`].
pub fn import(
    store: &Store,
    artifacts_dir: &Path,
    dir: &Path,
) -> std::result::Result<ImportReport, ImportError> {
    import_with(
        store,
        artifacts_dir,
        dir,
        ImportOptions::new(OffsetDateTime::now_utc()),
    )
}

/// Import `dir` into `store`. Every line is checked first; if any is bad (or, in a strict
/// import, has a warning), nothing is written and the bad lines are reported. Records whose
/// id already exists are skipped, so importing the same folder twice changes nothing.
pub fn import_with(
    store: &Store,
    artifacts_dir: &Path,
    dir: &Path,
    opts: ImportOptions<'_>,
) -> std::result::Result<ImportReport, ImportError> {
    // The folder itself is the operator's choice; what it holds is not: no file or folder
    // the import reads may be a link (checked before anything is read).
    let names = [
        INCIDENTS_FILE,
        EVENTS_FILE,
        ARTIFACTS_FILE,
        crate::audit::AUDIT_FILE,
    ];
    let mut links: Vec<String> = Vec::new();
    for f in names {
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
    let [mut incidents, mut events, mut artifacts, mut audit] = [
        Source::open(dir, INCIDENTS_FILE)?,
        Source::open(dir, EVENTS_FILE)?,
        Source::open(dir, ARTIFACTS_FILE)?,
        Source::open(dir, crate::audit::AUDIT_FILE)?,
    ];
    let all = incidents.size + events.size + artifacts.size + audit.size;
    let mut meter = Meter {
        cb: opts.progress,
        base: 0,
        total: 2 * all + artifacts.size,
    };
    let keyer = check::Keyer::new();

    // Pass 1: check everything; write nothing.
    let txn = store.db().begin_read().map_err(Error::from)?;
    let mut c = check::Checker::new(&keyer, dir, txn, opts.now, opts.strict);
    check_file(&mut incidents, &keyer, &mut meter, |p, line, text| {
        c.incident(p, line, text);
        Ok(())
    })?;
    check_file(&mut events, &keyer, &mut meter, |p, line, text| {
        c.event(p, line, text)
    })?;
    check_file(&mut artifacts, &keyer, &mut meter, |p, line, text| {
        c.artifact(p, line, text)
    })?;
    check_file(&mut audit, &keyer, &mut meter, |p, line, text| {
        c.audit(p, line, text);
        Ok(())
    })?;
    let (findings, links, files) = c.finish();
    if !links.is_empty() {
        return Err(ImportError::Links(links));
    }
    if findings.error_total > 0 {
        let mut errors = findings.errors;
        errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        return Err(ImportError::Lines {
            errors,
            total: findings.error_total,
        });
    }
    let warnings = Warnings {
        total: findings.warning_total,
        first: findings.warnings,
    };

    // Pass 2: artifact files first (a crash before the commit leaves an unreferenced file,
    // never a record without its file; a file changed since the check stops the import
    // before any record is written), then incidents, their events and artifacts, each chunk
    // one durable commit. If the process dies part-way, importing the same folder again
    // completes it (existing ids are skipped).
    let mut w = write::Writer {
        store,
        keyer: &keyer,
        meter: &mut meter,
    };
    w.copy_artifacts(&artifacts, dir, artifacts_dir, &files)?;
    let report = ImportReport {
        incidents: w.incidents(&incidents)?,
        events: w.events(&events)?,
        artifacts: w.artifacts(&artifacts, &files)?,
        audit: w.audit(&audit)?,
        warnings,
    };
    Ok(report)
}
