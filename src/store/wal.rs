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
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use redb::{Key, TableDefinition, Value, WriteTransaction};

use crate::error::{Error, Result};

/// Log file name inside `DATA_DIR`.
pub const WAL_FILE: &str = "sofiia.wal";
const MAGIC: &[u8; 8] = b"SOFWAL1\n";
const HEADER_LEN: u64 = 12;
const OP_PUT: u8 = 1;
const OP_DEL: u8 = 2;

/// The open log file.
pub struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{}: {e}", path.display()))
}

impl Wal {
    /// Open (or create) the log; return it with the payloads of every complete record.
    /// A log written under another schema version is refused.
    pub fn open(path: &Path, schema_version: u32) -> Result<(Wal, Vec<Vec<u8>>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io(path, e))?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| io(path, e))?;
        let mut wal = Wal {
            file,
            path: path.to_path_buf(),
            len: data.len() as u64,
        };
        if data.len() < HEADER_LEN as usize {
            wal.reset(schema_version)?;
            return Ok((wal, Vec::new()));
        }
        if &data[..8] != MAGIC {
            return Err(Error::Storage(format!(
                "{} is not a sofiia write-ahead log",
                path.display()
            )));
        }
        let v = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
        let mut records = Vec::new();
        let mut pos = HEADER_LEN as usize;
        while pos + 8 <= data.len() {
            let n = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]])
                as usize;
            let crc =
                u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
            let Some(payload) = data.get(pos + 8..pos + 8 + n) else {
                break;
            };
            if crc32fast::hash(payload) != crc {
                break;
            }
            records.push(payload.to_vec());
            pos += 8 + n;
        }
        if !records.is_empty() && v != schema_version {
            return Err(Error::Storage(format!(
                "{} holds writes of schema version {v}; start the sofiia version that wrote them once \
                 so it can fold them in, then upgrade",
                path.display()
            )));
        }
        if pos < data.len() {
            tracing::warn!(bytes = data.len() - pos, "wal_torn_tail_discarded");
            wal.file.set_len(pos as u64).map_err(|e| io(path, e))?;
            wal.len = pos as u64;
        }
        wal.file.seek(SeekFrom::End(0)).map_err(|e| io(path, e))?;
        Ok((wal, records))
    }

    /// Bytes in the log after its header.
    pub fn pending_bytes(&self) -> u64 {
        self.len.saturating_sub(HEADER_LEN)
    }

    /// Append one record and fsync it. On failure the log is cut back to where it was.
    pub fn append(&mut self, payload: &[u8]) -> Result<()> {
        let mut rec = Vec::with_capacity(payload.len() + 8);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        rec.extend_from_slice(payload);
        let before = self.len;
        let res = self
            .file
            .write_all(&rec)
            .and_then(|_| self.file.sync_data());
        match res {
            Ok(()) => {
                self.len += rec.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.truncate_to(before);
                Err(io(&self.path, e))
            }
        }
    }

    /// Remove the last record again (its redb commit failed, so it must not be replayed).
    pub fn truncate_to(&mut self, len: u64) -> Result<()> {
        self.file.set_len(len).map_err(|e| io(&self.path, e))?;
        self.file
            .seek(SeekFrom::Start(len))
            .map_err(|e| io(&self.path, e))?;
        self.file.sync_data().map_err(|e| io(&self.path, e))?;
        self.len = len;
        Ok(())
    }

    /// Current length (for [`Wal::truncate_to`]).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when no record is pending.
    pub fn is_empty(&self) -> bool {
        self.pending_bytes() == 0
    }

    /// Empty the log (after a checkpoint) and stamp it with the schema version.
    pub fn reset(&mut self, schema_version: u32) -> Result<()> {
        self.file.set_len(0).map_err(|e| io(&self.path, e))?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| io(&self.path, e))?;
        let mut h = MAGIC.to_vec();
        h.extend_from_slice(&schema_version.to_le_bytes());
        self.file.write_all(&h).map_err(|e| io(&self.path, e))?;
        self.file.sync_data().map_err(|e| io(&self.path, e))?;
        self.len = HEADER_LEN;
        Ok(())
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

/// A write transaction that records every change it makes for the log. Jobs get only this:
/// tables opened through it can be read freely, but changed only through logged methods.
pub struct WriteTx<'t> {
    txn: &'t WriteTransaction,
    log: RefCell<Vec<u8>>,
}

impl<'t> WriteTx<'t> {
    /// Wrap a redb write transaction.
    pub fn new(txn: &'t WriteTransaction) -> Self {
        WriteTx {
            txn,
            log: RefCell::new(Vec::new()),
        }
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

    /// Bytes logged so far.
    pub fn log_len(&self) -> usize {
        self.log.borrow().len()
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
    use redb::ReadableTable;

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
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&100u32.to_le_bytes()).unwrap();
        f.write_all(&[0, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);
        let (mut w, recs) = Wal::open(&p, 1).unwrap();
        assert_eq!(recs, vec![b"one".to_vec(), b"two".to_vec()]);
        w.append(b"three").unwrap();
        drop(w);
        let (w, recs) = Wal::open(&p, 1).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[2], b"three");
        drop(w);
        // Another schema version with pending records is refused.
        assert!(Wal::open(&p, 2).is_err());
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
