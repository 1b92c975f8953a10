//! The write-ahead log that makes group commit cheap.
//!
//! Each batch of writes is recorded physically (table, key bytes, value bytes or delete) and
//! appended to `DATA_DIR/sofiia.wal` as one checksummed record, then fsynced: that fsync is
//! what makes the batch durable. redb then commits the same batch without its own fsync
//! (`Durability::None`), so readers see it at once. A checkpoint (a durable redb commit)
//! periodically makes redb's file hold everything, after which the log is emptied.
//!
//! Recovery replays every complete record in order. Records are physical "set key to value" /
//! "delete key" operations, so replaying a record that redb already holds changes nothing.
//! A torn record at the tail (a batch whose fsync never finished, so never acknowledged) is
//! discarded.

use std::cell::RefCell;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use std::path::{Path, PathBuf};

use redb::{Key, ReadableTable, TableDefinition, Value, WriteTransaction};

use crate::error::{Error, Result};

/// Log file name inside `DATA_DIR`.
pub const WAL_FILE: &str = "sofiia.wal";
const MAGIC: &[u8; 8] = b"SOFWAL2\n";
/// magic, schema version (u32), generation (u64).
const HEADER_LEN: u64 = 20;
/// Largest record (one batch); far above any batch, far below the 4 GiB the length field holds.
const MAX_RECORD: usize = 512 * 1024 * 1024;
const OP_PUT: u8 = 1;
const OP_DEL: u8 = 2;

/// The open log file.
///
/// The file is reused rather than truncated: a checkpoint bumps the generation in the header
/// and writing starts again after it, overwriting blocks the file system already allocated
/// (an fsync then flushes data only, not file-size metadata; about 25% faster here). Each
/// record's checksum covers the generation, so records left over from an earlier generation
/// are never mistaken for current ones.
pub struct Wal {
    file: File,
    path: PathBuf,
    /// Where the next record goes.
    pos: u64,
    generation: u64,
    schema_version: u32,
    /// A reset failed: the header on disk is uncertain, so nothing may be appended until a
    /// reset succeeds (everything before it was already checkpointed, so redoing it is safe).
    needs_reset: bool,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{}: {e}", path.display()))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Read until `buf` is full or the file ends; returns how many bytes were read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn checksum(generation: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(payload);
    h.finalize()
}

impl Wal {
    /// Open (or create) the log; return it with the payloads of every current record.
    /// A log holding records of another schema version is refused.
    pub fn open(path: &Path, schema_version: u32) -> Result<(Wal, Vec<Vec<u8>>)> {
        // Owner-only like the database: it holds the same records.
        let mut file = crate::kernel::fs::private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, e))?;
        if let Err(e) = crate::kernel::fs::restrict(&file) {
            tracing::warn!(path = %path.display(), error = %e, "wal_not_private");
        }
        // Stream the records: after a clean stop the first one is already stale, so a large
        // (reused) log file costs one small read, not a read of the whole file.
        let mut header = [0u8; HEADER_LEN as usize];
        let got = read_full(&mut file, &mut header).map_err(|e| io(path, e))?;
        let mut wal = Wal {
            file,
            path: path.to_path_buf(),
            pos: HEADER_LEN,
            generation: 0,
            schema_version,
            needs_reset: false,
        };
        if got < HEADER_LEN as usize {
            wal.reset()?;
            return Ok((wal, Vec::new()));
        }
        if &header[..8] != MAGIC {
            return Err(Error::Storage(format!(
                "{} is not a sofiia write-ahead log",
                path.display()
            )));
        }
        let v = u32_at(&header, 8).unwrap_or(0);
        let mut g = [0u8; 8];
        g.copy_from_slice(&header[12..20]);
        wal.generation = u64::from_le_bytes(g);
        let file_len = wal.file.metadata().map_err(|e| io(path, e))?.len();
        let mut reader = std::io::BufReader::new(&wal.file);
        let mut records = Vec::new();
        let mut pos = HEADER_LEN;
        loop {
            let mut rh = [0u8; 8];
            if read_full(&mut reader, &mut rh).map_err(|e| io(path, e))? < 8 {
                break;
            }
            let n = u32_at(&rh, 0).unwrap_or(0) as usize;
            let crc = u32_at(&rh, 4).unwrap_or(0);
            // A length running past the end is a torn (or stale) record: never allocate for it.
            if n == 0 || pos + 8 + n as u64 > file_len {
                break;
            }
            let mut payload = vec![0u8; n];
            if read_full(&mut reader, &mut payload).map_err(|e| io(path, e))? < n
                || checksum(wal.generation, &payload) != crc
            {
                break;
            }
            records.push(payload);
            pos += 8 + n as u64;
        }
        drop(reader);
        if !records.is_empty() && v != schema_version {
            return Err(Error::Storage(format!(
                "{} holds writes of schema version {v}; start the sofiia version that wrote them once \
                 so it can fold them in, then upgrade",
                path.display()
            )));
        }
        wal.pos = pos;
        Ok((wal, records))
    }

    /// Bytes of records after the header.
    pub fn pending_bytes(&self) -> u64 {
        self.pos.saturating_sub(HEADER_LEN)
    }

    /// Append one record and fsync it. On failure the record is invalidated again.
    pub fn append(&mut self, payload: &[u8]) -> Result<()> {
        if payload.len() > MAX_RECORD {
            return Err(Error::Storage(format!(
                "a write of {} bytes is larger than the log accepts ({MAX_RECORD})",
                payload.len()
            )));
        }
        if self.needs_reset {
            self.reset()?;
        }
        let mut rec = Vec::with_capacity(payload.len() + 8);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&checksum(self.generation, payload).to_le_bytes());
        rec.extend_from_slice(payload);
        let at = self.pos;
        let res = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&rec))
            .and_then(|_| self.file.sync_data());
        match res {
            Ok(()) => {
                self.pos += rec.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.truncate_to(at);
                Err(io(&self.path, e))
            }
        }
    }

    /// Drop every record from `pos` on (its redb commit failed, so it must not be replayed).
    pub fn truncate_to(&mut self, pos: u64) -> Result<()> {
        self.file
            .seek(SeekFrom::Start(pos))
            .and_then(|_| self.file.write_all(&[0u8; 8]))
            .and_then(|_| self.file.sync_data())
            .map_err(|e| io(&self.path, e))?;
        self.pos = pos;
        Ok(())
    }

    /// Position of the next record (for [`Wal::truncate_to`]).
    pub fn len(&self) -> u64 {
        self.pos
    }

    /// True when no record is pending.
    pub fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    /// Start a new generation (only once everything logged is checkpointed): every earlier
    /// record becomes stale. If it fails, appends are refused until a retry succeeds.
    pub fn reset(&mut self) -> Result<()> {
        let generation = self.generation.wrapping_add(1);
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&self.schema_version.to_le_bytes());
        h.extend_from_slice(&generation.to_le_bytes());
        let res = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(&h))
            .and_then(|_| self.file.sync_data());
        match res {
            Ok(()) => {
                self.generation = generation;
                self.pos = HEADER_LEN;
                self.needs_reset = false;
                Ok(())
            }
            Err(e) => {
                self.needs_reset = true;
                Err(io(&self.path, e))
            }
        }
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    buf.extend_from_slice(&(b.len() as u32).to_le_bytes());
    buf.extend_from_slice(b);
}

/// One decoded operation of a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Op<'a> {
    /// Set `key` of `table` to `value`.
    Put {
        table: &'a str,
        key: &'a [u8],
        value: &'a [u8],
    },
    /// Delete `key` of `table`.
    Del { table: &'a str, key: &'a [u8] },
}

fn take<'a>(p: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (a, b) = (p.get(..n)?, p.get(n..)?);
    *p = b;
    Some(a)
}

fn take_len(p: &mut &[u8]) -> Option<usize> {
    let b = take(p, 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// Decode a record payload into its operations (None if malformed).
pub fn decode(payload: &[u8]) -> Option<Vec<Op<'_>>> {
    let mut ops = Vec::new();
    let mut p = payload;
    while !p.is_empty() {
        let kind = take(&mut p, 1)?[0];
        let n = take_len(&mut p)?;
        let table = std::str::from_utf8(take(&mut p, n)?).ok()?;
        let n = take_len(&mut p)?;
        let key = take(&mut p, n)?;
        match kind {
            OP_PUT => {
                let n = take_len(&mut p)?;
                let value = take(&mut p, n)?;
                ops.push(Op::Put { table, key, value });
            }
            OP_DEL => ops.push(Op::Del { table, key }),
            _ => return None,
        }
    }
    Some(ops)
}

type CountMap = std::collections::BTreeMap<
    (String, String),
    (TableDefinition<'static, &'static str, u64>, i64),
>;

/// A write transaction that records every change it makes for the log. Jobs get only this:
/// tables opened through it can be read freely, but changed only through logged methods.
pub struct WriteTx<'t> {
    txn: &'t WriteTransaction,
    log: RefCell<Vec<u8>>,
    /// Counter deltas, applied once per key when the batch ends ([`WriteTx::flush_counts`]):
    /// many writes in one batch bump the same few counters.
    counts: RefCell<CountMap>,
}

impl<'t> WriteTx<'t> {
    /// Wrap a redb write transaction.
    pub fn new(txn: &'t WriteTransaction) -> Self {
        WriteTx {
            txn,
            log: RefCell::new(Vec::with_capacity(16 * 1024)),
            counts: RefCell::new(Default::default()),
        }
    }

    /// Add `delta` to counter `key` of a `&str → u64` table (floored at 0; removed at 0).
    /// Applied when the batch ends, so it is not visible to reads in this transaction.
    pub fn add_count(
        &self,
        def: TableDefinition<'static, &'static str, u64>,
        key: &str,
        delta: i64,
    ) {
        let name = redb::TableHandle::name(&def).to_string();
        let mut c = self.counts.borrow_mut();
        c.entry((name, key.to_string())).or_insert((def, 0)).1 += delta;
    }

    /// Apply pending counter deltas (the writer calls this before taking the log).
    pub fn flush_counts(&self) -> Result<()> {
        let pending = std::mem::take(&mut *self.counts.borrow_mut());
        for ((_, key), (def, delta)) in pending {
            if delta == 0 {
                continue;
            }
            let mut t = self.open(def)?;
            let n = t.get(key.as_str())?.map(|g| g.value()).unwrap_or(0) as i64;
            let n = (n + delta).max(0) as u64;
            if n == 0 {
                t.remove(key.as_str())?;
            } else {
                t.insert(key.as_str(), n)?;
            }
        }
        Ok(())
    }

    /// Open a table for reading and logged writing.
    pub fn open<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<'static, K, V>,
    ) -> Result<LoggedTable<'_, K, V>> {
        Ok(LoggedTable {
            table: self.txn.open_table(def)?,
            name: redb::TableHandle::name(&def).to_string(),
            log: &self.log,
        })
    }

    /// Size of what has been written so far (log bytes plus pending counter updates).
    pub fn log_len(&self) -> usize {
        self.log.borrow().len() + self.counts.borrow().len()
    }

    /// Take the log of everything written.
    pub fn take_log(&self) -> Vec<u8> {
        std::mem::take(&mut *self.log.borrow_mut())
    }
}

/// A table whose changes are logged. Derefs to the redb table for reads only.
pub struct LoggedTable<'a, K: Key + 'static, V: Value + 'static> {
    table: redb::Table<'a, K, V>,
    name: String,
    log: &'a RefCell<Vec<u8>>,
}

impl<'a, K: Key + 'static, V: Value + 'static> std::ops::Deref for LoggedTable<'a, K, V> {
    type Target = redb::Table<'a, K, V>;
    fn deref(&self) -> &Self::Target {
        &self.table
    }
}

impl<K: Key + 'static, V: Value + 'static> LoggedTable<'_, K, V> {
    /// Insert or replace; returns whether the key existed.
    pub fn insert<'k, 'v>(
        &mut self,
        key: impl std::borrow::Borrow<K::SelfType<'k>>,
        value: impl std::borrow::Borrow<V::SelfType<'v>>,
    ) -> Result<bool> {
        {
            let mut log = self.log.borrow_mut();
            log.push(OP_PUT);
            put_bytes(&mut log, self.name.as_bytes());
            put_bytes(&mut log, K::as_bytes(key.borrow()).as_ref());
            put_bytes(&mut log, V::as_bytes(value.borrow()).as_ref());
        }
        Ok(self.table.insert(key, value)?.is_some())
    }

    /// Remove; returns whether the key existed.
    pub fn remove<'k>(&mut self, key: impl std::borrow::Borrow<K::SelfType<'k>>) -> Result<bool> {
        let existed = self.table.remove(key.borrow())?.is_some();
        if existed {
            let mut log = self.log.borrow_mut();
            log.push(OP_DEL);
            put_bytes(&mut log, self.name.as_bytes());
            put_bytes(&mut log, K::as_bytes(key.borrow()).as_ref());
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopen_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(WAL_FILE);
        {
            let (mut w, recs) = Wal::open(&p, 1).unwrap();
            assert!(recs.is_empty() && w.is_empty());
            w.append(b"one").unwrap();
            w.append(b"two").unwrap();
        }
        // A torn third record: length says 100 bytes, only 3 follow.
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&[0, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let size = std::fs::metadata(&p).unwrap().len();
        let (mut w, recs) = Wal::open(&p, 1).unwrap();
        assert_eq!(recs, vec![b"one".to_vec(), b"two".to_vec()]);
        w.append(b"three").unwrap();
        drop(w);
        let (mut w, recs) = Wal::open(&p, 1).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2], b"three");
        assert!(std::fs::metadata(&p).unwrap().len() >= size);
        // Another schema version with pending records is refused.
        assert!(Wal::open(&p, 2).is_err());
        // After a reset the old records are stale although their bytes are still there.
        w.reset().unwrap();
        assert!(w.is_empty());
        drop(w);
        let (mut w, recs) = Wal::open(&p, 1).unwrap();
        assert!(recs.is_empty());
        w.append(b"new").unwrap();
        let mark = w.len();
        w.append(b"failed-commit").unwrap();
        w.truncate_to(mark).unwrap();
        drop(w);
        let (_, recs) = Wal::open(&p, 1).unwrap();
        assert_eq!(recs, vec![b"new".to_vec()]);
    }

    #[test]
    fn a_corrupt_record_stops_replay_there() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(WAL_FILE);
        let (mut w, _) = Wal::open(&p, 1).unwrap();
        w.append(b"good").unwrap();
        w.append(b"flipped").unwrap();
        drop(w);
        let mut data = std::fs::read(&p).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&p, &data).unwrap();
        let (_, recs) = Wal::open(&p, 1).unwrap();
        assert_eq!(recs, vec![b"good".to_vec()]);
    }

    #[test]
    fn logged_writes_decode_to_the_same_operations() {
        const T: TableDefinition<&str, u64> = TableDefinition::new("t");
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("x.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let tx = WriteTx::new(&txn);
        {
            let mut t = tx.open(T).unwrap();
            assert!(!t.insert("a", 1).unwrap());
            assert!(t.insert("a", 2).unwrap());
            assert!(t.remove("a").unwrap());
            assert!(!t.remove("zzz").unwrap(), "removing nothing logs nothing");
            assert_eq!(t.get("a").unwrap().map(|g| g.value()), None);
        }
        let log = tx.take_log();
        let ops = decode(&log).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(
            ops[1],
            Op::Put {
                table: "t",
                key: b"a",
                value: &2u64.to_le_bytes()
            }
        );
        assert_eq!(
            ops[2],
            Op::Del {
                table: "t",
                key: b"a"
            }
        );
        assert!(decode(&log[..log.len() - 1]).is_none());
    }
}
