//! The second pass of an import, run only when the first found every line good: the files
//! are read again, each chunk of lines compared with its digest from the first pass before
//! any of it is used, and each chunk becomes one write job. The next chunk is read and parsed
//! while the writer commits the previous one.

use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable};

use super::check::{read_capped, CheckedFile, Keyer};
use super::{
    artifact_link, lines, Chunker, Counts, ImportError, Meter, Source, Step, IMPORT_CHUNK,
};
use super::{Artifact, Event, Incident};
use crate::audit::AuditRecord;
use crate::error::{Error, Result};
use crate::incidents::tables::{
    insert_artifact, insert_new_events, insert_new_incidents, ARTIFACTS,
};
use crate::kernel::fs::{sync_dir, write_synced};
use crate::kernel::hash::sha256_hex;
use crate::store::writer::Ticket;
use crate::store::{Store, WriteTx};

fn changed(src: &Source, line: usize) -> ImportError {
    Error::Conflict(format!(
        "{} changed during the import (line {line} is not what was checked): the lines \
         before it were imported, nothing from there on; import again once the folder is \
         settled (stored records are skipped)",
        src.path
    ))
    .into()
}

/// A chunk's write job: returns (imported, skipped because already stored).
type Job<T> = fn(&WriteTx, Vec<T>) -> Result<(usize, usize)>;

/// The second pass's handles.
pub(super) struct Writer<'a, 'p> {
    pub store: &'a Store,
    pub keyer: &'a Keyer,
    pub meter: &'a mut Meter<'p>,
}

impl Writer<'_, '_> {
    /// Read `src` again in chunks of lines, each checked against its first-pass digest, then
    /// parsed by `parse` and handed to `chunk`.
    fn scan<T>(
        &mut self,
        src: &Source,
        step: Step,
        mut parse: impl FnMut(usize, &str) -> Option<T>,
        mut chunk: impl FnMut(Vec<T>) -> std::result::Result<(), ImportError>,
    ) -> std::result::Result<(), ImportError> {
        let Some(mut r) = src.reader()? else {
            return Ok(());
        };
        let mut batch: Vec<T> = Vec::with_capacity(IMPORT_CHUNK);
        let mut chunks = Chunker::new(self.keyer);
        let mut done = 0;
        let mut last = 0;
        loop {
            let next = r.next_line()?;
            let full = match next {
                Some(line) => {
                    let full = chunks.add(r.raw());
                    match r.text().ok().and_then(|t| parse(line, t)) {
                        Some(rec) => batch.push(rec),
                        // Good in the first pass, bad now: the file changed (the digest
                        // would say so too, once the chunk is complete).
                        None => return Err(changed(src, line)),
                    }
                    last = line;
                    full
                }
                None => !chunks.is_empty(),
            };
            if full {
                let first_line = chunks.first_line;
                if src.digests.get(done).copied() != Some(chunks.cut()) {
                    return Err(changed(src, first_line));
                }
                chunk(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(IMPORT_CHUNK),
                ))?;
                done += 1;
                if done % 2 == 0 && next.is_some() {
                    self.meter.tick(step, src.name, last, r.bytes_read(), false);
                }
            }
            if next.is_none() {
                break;
            }
        }
        if done != src.digests.len() {
            return Err(changed(src, last + 1));
        }
        self.meter.tick(step, src.name, last, r.bytes_read(), true);
        Ok(())
    }

    /// [`Writer::scan`] with one write job per chunk; the job returns (imported, skipped).
    fn write_all<T: Send + 'static>(
        &mut self,
        src: &Source,
        parse: impl FnMut(usize, &str) -> Option<T>,
        job: Job<T>,
    ) -> std::result::Result<Counts, ImportError> {
        let store = self.store;
        let mut counts = Counts::default();
        let mut pending: Option<Ticket<(usize, usize)>> = None;
        let settle = |t: Ticket<(usize, usize)>, counts: &mut Counts| -> Result<()> {
            let (i, s) = t.wait()?;
            counts.imported += i;
            counts.skipped_existing += s;
            Ok(())
        };
        self.scan(src, Step::Write, parse, |batch| {
            // The previous chunk commits while this one was read; wait for it before
            // queueing the next, so at most two chunks are in memory.
            if let Some(t) = pending.take() {
                settle(t, &mut counts)?;
            }
            pending = Some(store.queue_blocking(move |tx| job(tx, batch))?);
            Ok(())
        })?;
        if let Some(t) = pending.take() {
            settle(t, &mut counts)?;
        }
        Ok(counts)
    }

    /// Copy the artifact files not in the store yet into the data dir. Each source is checked
    /// again right before it is read (a link swapped in since the check, or changed bytes,
    /// fail the import), and on any failure the files copied so far are removed.
    pub fn copy_artifacts(
        &mut self,
        src: &Source,
        dir: &Path,
        artifacts_dir: &Path,
        files: &[CheckedFile],
    ) -> std::result::Result<(), ImportError> {
        let txn = self.store.db().begin_read().map_err(Error::from)?;
        let stored = txn.open_table(ARTIFACTS).map_err(Error::from)?;
        let mut written: Vec<PathBuf> = Vec::new();
        let res = self.scan(
            src,
            Step::Copy,
            |line, t| lines::artifact(t).ok().map(|a| (line, a)),
            |batch| {
                let mut todo = Vec::with_capacity(batch.len());
                for (line, a) in batch {
                    if stored
                        .get((a.incident_id.as_str(), a.id.as_str()))
                        .map_err(Error::from)?
                        .is_some()
                    {
                        continue;
                    }
                    let checked = files.get(line - 1).ok_or_else(|| changed(src, line))?;
                    todo.push((a, checked));
                }
                copy_parallel(dir, artifacts_dir, &todo, &mut written)
            },
        );
        if res.is_err() {
            for p in &written {
                let _ = std::fs::remove_file(p);
            }
        }
        res
    }

    /// Incidents not in the store yet.
    pub fn incidents(&mut self, src: &Source) -> std::result::Result<Counts, ImportError> {
        self.write_all(src, |_, t| lines::incident(t).ok(), put_incidents)
    }

    /// Events not in the store yet, follow-up meta normalised as in the first pass.
    pub fn events(&mut self, src: &Source) -> std::result::Result<Counts, ImportError> {
        self.write_all(
            src,
            |_, t| match lines::event(t) {
                Ok((ev, bad)) if bad.is_empty() => Some(ev),
                _ => None,
            },
            put_events,
        )
    }

    /// Artifact records not in the store yet, with the checksum and size of the file copied.
    pub fn artifacts(
        &mut self,
        src: &Source,
        files: &[CheckedFile],
    ) -> std::result::Result<Counts, ImportError> {
        self.write_all(
            src,
            |line, t| {
                let mut a = lines::artifact(t).ok()?;
                let f = files.get(line - 1)?;
                a.sha256 = f.sha256.to_string();
                a.size_bytes = u64::from(f.size);
                a.path = format!("{}/{}", a.incident_id, a.name);
                Some(a)
            },
            put_artifacts,
        )
    }

    /// Audit records not in the store yet.
    pub fn audit(&mut self, src: &Source) -> std::result::Result<Counts, ImportError> {
        self.write_all(src, |_, t| lines::audit(t).ok(), put_audit)
    }
}

/// Threads copying artifact files: each copy waits on two fsyncs (file, folder), which the
/// disk serves faster together than one after another.
const COPY_THREADS: usize = 8;

/// Copy `todo` on a few threads; every file written is added to `written`, also on failure.
fn copy_parallel(
    dir: &Path,
    artifacts_dir: &Path,
    todo: &[(Artifact, &CheckedFile)],
    written: &mut Vec<PathBuf>,
) -> std::result::Result<(), ImportError> {
    if todo.is_empty() {
        return Ok(());
    }
    let per = todo.len().div_ceil(COPY_THREADS);
    let results: Vec<(Vec<PathBuf>, std::result::Result<(), ImportError>)> =
        std::thread::scope(|s| {
            let handles: Vec<_> = todo
                .chunks(per)
                .map(|part| {
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        let r = part
                            .iter()
                            .try_for_each(|(a, c)| copy_one(dir, artifacts_dir, a, c, &mut mine));
                        (mine, r)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        let e = Error::Internal("an artifact copy failed unexpectedly".into());
                        (Vec::new(), Err(e.into()))
                    })
                })
                .collect()
        });
    let mut first_err = None;
    for (mine, r) in results {
        written.extend(mine);
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn copy_one(
    dir: &Path,
    artifacts_dir: &Path,
    a: &Artifact,
    checked: &CheckedFile,
    written: &mut Vec<PathBuf>,
) -> std::result::Result<(), ImportError> {
    if let Some(link) = artifact_link(dir, &a.incident_id, &a.name)? {
        return Err(ImportError::Links(vec![link]));
    }
    let src = dir.join(&a.incident_id).join(&a.name);
    let changed = || -> ImportError {
        Error::Conflict(format!(
            "{}/{} changed during the import",
            a.incident_id, a.name
        ))
        .into()
    };
    let bytes = read_capped(&src)
        .map_err(|e| Error::Io(format!("{}: {e}", src.display())))?
        .ok_or_else(changed)?;
    if *checked.sha256 != sha256_hex(&bytes) {
        return Err(changed());
    }
    let dest_dir = artifacts_dir.join(&a.incident_id);
    std::fs::create_dir_all(&dest_dir).map_err(Error::from)?;
    let dest = dest_dir.join(&a.name);
    written.push(dest.clone());
    write_synced(&dest, &bytes)?;
    sync_dir(&dest_dir);
    Ok(())
}

fn put_incidents(tx: &WriteTx, chunk: Vec<Incident>) -> Result<(usize, usize)> {
    let n = insert_new_incidents(tx, &chunk)?;
    Ok((n, chunk.len() - n))
}

fn put_events(tx: &WriteTx, chunk: Vec<Event>) -> Result<(usize, usize)> {
    let len = chunk.len();
    let n = insert_new_events(tx, chunk)?;
    Ok((n, len - n))
}

fn put_artifacts(tx: &WriteTx, chunk: Vec<Artifact>) -> Result<(usize, usize)> {
    let exists: Vec<bool> = {
        let t = tx.open(ARTIFACTS)?;
        chunk
            .iter()
            .map(|a| Ok(t.get((a.incident_id.as_str(), a.id.as_str()))?.is_some()))
            .collect::<Result<_>>()?
    };
    let mut imported = 0;
    for (a, exists) in chunk.iter().zip(&exists) {
        if !exists {
            insert_artifact(tx, a)?;
            imported += 1;
        }
    }
    Ok((imported, chunk.len() - imported))
}

fn put_audit(tx: &WriteTx, chunk: Vec<AuditRecord>) -> Result<(usize, usize)> {
    crate::audit::put_imported(tx, &chunk)
}
