//! The redb store: one file `DATA_DIR/sofiia.redb` holding every record.
//!
//! - [`Store::open`] creates the file on first start, checks the schema version and runs
//!   forward migrations, and creates every table once (so read transactions never meet a
//!   missing table). It does not scan records: start-up cost does not grow with the data.
//! - Writes go through [`writer`]: one thread owns write transactions and batches every job
//!   waiting in its queue into one durable commit (group commit).
//! - Reads run on the blocking pool in their own read transaction (a consistent snapshot).
//! - [`backup`] makes consistent snapshots while writes go on; [`jsonl`] reads and writes
//!   JSON Lines with `file:line` errors.

pub mod backup;
pub mod jsonl;
pub mod schema;
pub mod wal;
pub mod writer;

pub use schema::{Migration, Schema};
pub use wal::{LoggedTable, WriteTx};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, Value, WriteTransaction,
};

use crate::error::{Error, Result};

/// File name of the database inside `DATA_DIR`.
pub const DB_FILE: &str = "sofiia.redb";

/// Key/value metadata: `schema_version`, `created_at`, …
pub const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Decode a stored record.
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt record: {e}")))
}

/// A table the store knows how to create, count and copy without knowing its types.
pub trait AnyTable: Sync {
    /// Table name.
    fn name(&self) -> &str;
    /// Create the table if it does not exist.
    fn create(&self, txn: &WriteTransaction) -> Result<()>;
    /// Row count.
    fn rows(&self, txn: &ReadTransaction) -> Result<u64>;
    /// Copy every row from a snapshot into another database's write transaction.
    fn copy(&self, src: &ReadTransaction, dst: &WriteTransaction) -> Result<u64>;
    /// Set a key to a value given as redb's byte encodings (log replay).
    fn put_raw(&self, txn: &WriteTransaction, key: &[u8], value: &[u8]) -> Result<()>;
    /// Delete a key given as redb's byte encoding (log replay).
    fn del_raw(&self, txn: &WriteTransaction, key: &[u8]) -> Result<()>;
}

impl<K: Key + Sync + 'static, V: Value + Sync + 'static> AnyTable
    for TableDefinition<'static, K, V>
{
    fn name(&self) -> &str {
        redb::TableHandle::name(self)
    }
    fn create(&self, txn: &WriteTransaction) -> Result<()> {
        txn.open_table(*self)?;
        Ok(())
    }
    fn rows(&self, txn: &ReadTransaction) -> Result<u64> {
        Ok(txn.open_table(*self)?.len()?)
    }
    fn copy(&self, src: &ReadTransaction, dst: &WriteTransaction) -> Result<u64> {
        let from = src.open_table(*self)?;
        let mut to = dst.open_table(*self)?;
        let mut n = 0;
        for row in from.iter()? {
            let (k, v) = row?;
            to.insert(k.value(), v.value())?;
            n += 1;
        }
        Ok(n)
    }
    fn put_raw(&self, txn: &WriteTransaction, key: &[u8], value: &[u8]) -> Result<()> {
        txn.open_table(*self)?
            .insert(K::from_bytes(key), V::from_bytes(value))?;
        Ok(())
    }
    fn del_raw(&self, txn: &WriteTransaction, key: &[u8]) -> Result<()> {
        txn.open_table(*self)?.remove(K::from_bytes(key))?;
        Ok(())
    }
}

/// A write that rides along with the next successful write of a task (see [`Store::write`]).
/// It receives the transaction and the serialized size of that write's result.
pub type RiderFn = Box<dyn FnOnce(&WriteTx, usize) -> Result<()> + Send>;

/// Holder of a pending rider; tells afterwards whether it was written.
#[derive(Clone)]
pub struct RiderSlot {
    f: Arc<std::sync::Mutex<Option<RiderFn>>>,
    written: Arc<std::sync::atomic::AtomicBool>,
}

impl RiderSlot {
    /// A slot holding `f`.
    pub fn new(f: RiderFn) -> Self {
        RiderSlot {
            f: Arc::new(std::sync::Mutex::new(Some(f))),
            written: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }
    /// Whether a write has taken the rider (it is queued, or done).
    pub fn taken(&self) -> bool {
        self.f.lock().map(|g| g.is_none()).unwrap_or(true)
    }

    /// Whether the rider went into a write that succeeded (it commits or fails with it).
    pub fn written(&self) -> bool {
        self.written.load(std::sync::atomic::Ordering::Acquire)
    }
}

tokio::task_local! {
    static RIDER: RiderSlot;
}

/// Run `fut` with `slot` available to its writes.
pub async fn with_rider<F: std::future::Future>(slot: RiderSlot, fut: F) -> F::Output {
    RIDER.scope(slot, fut).await
}

/// How [`Store::open_with`] opens the store.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// When the writer makes redb's file durable.
    pub checkpoints: writer::Checkpoints,
    /// redb's page cache (read cache plus write buffer), in bytes; `None` keeps redb's default
    /// (1 GiB), right for the server. A bulk writer that must stay small (an import) sets
    /// less: redb then writes dirty pages out early instead of holding them.
    pub cache_bytes: Option<usize>,
}

/// Handle to the open database and its writer. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    writer: Arc<writer::Writer>,
    path: PathBuf,
    schema: Arc<Schema>,
}

impl Store {
    /// Open (or create) `DATA_DIR/sofiia.redb`, migrate it, fold in the write-ahead log left by
    /// a crash, and start the writer thread.
    pub fn open(data_dir: &Path, schema: Arc<Schema>) -> Result<Store> {
        Self::open_with(data_dir, schema, OpenOptions::default())
    }

    /// [`Store::open`] with an explicit checkpoint policy and cache size.
    pub fn open_with(data_dir: &Path, schema: Arc<Schema>, opts: OpenOptions) -> Result<Store> {
        schema.check()?;
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Error::Io(format!(
                "DATA_DIR: cannot create {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DB_FILE);
        let db = open_db(&path, opts.cache_bytes)?;
        let (mut log, records) = wal::Wal::open(&data_dir.join(wal::WAL_FILE), schema.version())?;
        migrate(&db, &path, &schema)?;
        if !records.is_empty() {
            let ops = replay(&db, &records, &schema)?;
            tracing::info!(records = records.len(), ops, "wal_replayed");
        }
        // Always start a fresh generation stamped with this build's schema version, so records
        // this run writes are never mixed with, or judged by, an older header.
        log.reset()?;
        crate::kernel::fs::sync_dir(data_dir);
        let db = Arc::new(db);
        let writer = Arc::new(writer::Writer::start(db.clone(), log, opts.checkpoints));
        Ok(Store {
            db,
            writer,
            path,
            schema,
        })
    }

    /// The registered tables and migrations.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The database (for snapshot readers such as backup and export).
    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Run `f` in a fresh read transaction on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_read()?;
            f(&txn)
        })
        .await
        .map_err(|e| Error::Internal(format!("read task failed: {e}")))?
    }

    /// Run `f` in a fresh read transaction on this thread (CLI, blocking contexts).
    pub fn read_blocking<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T>) -> Result<T> {
        let txn = self.db.begin_read()?;
        f(&txn)
    }

    /// Queue a write job; resolves once the commit that contains it is durable.
    ///
    /// Contract for `f`: validate first, write last. If it returns a non-storage error it
    /// must not have written anything, because other jobs share its transaction.
    ///
    /// Inside [`with_rider`], the first successful write of the task also runs the rider in
    /// the same transaction (the gateway's audit record, committed atomically with the
    /// change it describes).
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: serde::Serialize + Send + 'static,
        F: FnOnce(&WriteTx) -> Result<T> + Send + 'static,
    {
        let rider = RIDER.try_with(|slot| slot.clone()).ok().and_then(|slot| {
            let f = slot.f.lock().ok()?.take()?;
            Some((slot, f))
        });
        match rider {
            None => self.writer.submit(f)?.await,
            Some((slot, ride)) => {
                self.writer
                    .submit(move |tx| {
                        let v = f(tx)?;
                        let size = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
                        // A failed rider must sink the whole batch: the change may not
                        // commit without its record.
                        ride(tx, size).map_err(|e| Error::Storage(format!("audit record: {e}")))?;
                        slot.written
                            .store(true, std::sync::atomic::Ordering::Release);
                        Ok(v)
                    })?
                    .await
            }
        }
    }

    /// [`Store::write`] for blocking callers (CLI).
    pub fn write_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTx) -> Result<T> + Send + 'static,
    {
        self.writer.submit(f)?.wait()
    }

    /// Queue a write job without waiting for it (blocking callers that prepare the next job
    /// while this one commits); [`writer::Ticket::wait`] answers once it is durable.
    pub fn queue_blocking<T, F>(&self, f: F) -> Result<writer::Ticket<T>>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTx) -> Result<T> + Send + 'static,
    {
        self.writer.submit(f)
    }

    /// Stop accepting writes, let queued ones commit, and join the writer thread.
    pub fn shutdown(&self) {
        self.writer.shutdown();
    }

    /// Number of commits and jobs the writer has done (group-commit effectiveness).
    pub fn writer_stats(&self) -> writer::Stats {
        self.writer.stats()
    }

    /// Stored schema version.
    pub fn schema_version(&self) -> Result<u32> {
        self.read_blocking(read_schema_version)
    }
}

fn open_db(path: &Path, cache_bytes: Option<usize>) -> Result<Database> {
    // Exclusive mode on purpose: redb's multi-process modes force a two-phase commit (two
    // fsyncs per commit), which halves durable write throughput. Tools that need a snapshot
    // while the server runs ask the server for one (`POST /api/admin/backup`).
    // The file is created owner-only, and one from before that rule is tightened: it holds
    // every record, whoever may read the rest of DATA_DIR.
    let file = crate::kernel::fs::private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::Storage(format!("cannot open {}: {e}", path.display())))?;
    if let Err(e) = crate::kernel::fs::restrict(&file) {
        // Not fatal: a file owned by another user (shared ownership set up on purpose) keeps
        // its mode; the warning says so.
        tracing::warn!(path = %path.display(), error = %e, "database_not_private");
    }
    redb::backends::FileBackend::new(file)
        .and_then(|b| {
            let mut builder = Database::builder();
            if let Some(n) = cache_bytes {
                builder.set_cache_size(n);
            }
            builder.create_with_backend(b)
        })
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => Error::Conflict(format!(
                "{} is in use by another sofiia process; stop it or use another DATA_DIR",
                path.display()
            )),
            e => Error::Storage(format!("cannot open {}: {e}", path.display())),
        })
}

/// Apply log records to `db` in one durable commit; returns the number of operations.
fn replay(db: &Database, records: &[Vec<u8>], schema: &Schema) -> Result<usize> {
    let find = |name: &str| {
        schema
            .table(name)
            .ok_or_else(|| Error::Storage(format!("write-ahead log names unknown table {name}")))
    };
    let txn = db.begin_write()?;
    let mut n = 0;
    for (i, rec) in records.iter().enumerate() {
        let ops = wal::decode(rec).ok_or_else(|| {
            Error::Storage(format!("write-ahead log record {} is malformed", i + 1))
        })?;
        for op in ops {
            match op {
                wal::Op::Put { table, key, value } => find(table)?.put_raw(&txn, key, value)?,
                wal::Op::Del { table, key } => find(table)?.del_raw(&txn, key)?,
            }
            n += 1;
        }
    }
    txn.commit()?;
    Ok(n)
}

/// Open a database nobody is writing (a backup's copy) read-only.
pub fn open_read_only(path: &Path) -> Result<redb::ReadOnlyDatabase> {
    Database::builder()
        .open_read_only(path)
        .map_err(|e| Error::Storage(format!("cannot open {} read-only: {e}", path.display())))
}

/// The schema version recorded in a snapshot (0 when none).
pub fn read_schema_version(txn: &ReadTransaction) -> Result<u32> {
    let meta = match txn.open_table(META) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let v = meta.get("schema_version")?;
    match v {
        None => Ok(0),
        Some(g) => g
            .value()
            .parse()
            .map_err(|_| Error::Storage(format!("bad schema_version '{}'", g.value()))),
    }
}

fn migrate(db: &Database, path: &Path, schema: &Schema) -> Result<()> {
    let target = schema.version();
    let current = read_schema_version(&db.begin_read()?)?;
    if current > target {
        return Err(Error::Storage(format!(
            "{} has schema version {current}, newer than this sofiia understands ({target}); \
             upgrade sofiia or restore an older backup",
            path.display()
        )));
    }
    let txn = db.begin_write()?;
    for step in schema.steps_after(current) {
        (step.run)(&txn)?;
        if current > 0 {
            tracing::info!(to = step.version, what = step.what, "store_migration_step");
        }
    }
    for t in schema.tables() {
        t.create(&txn)?;
    }
    if current < target {
        let mut meta = txn.open_table(META)?;
        let v = target.to_string();
        meta.insert("schema_version", v.as_str())?;
        if meta.get("created_at")?.is_none() {
            let now = crate::kernel::clock::rfc3339(time::OffsetDateTime::now_utc());
            meta.insert("created_at", now.as_str())?;
        }
        drop(meta);
        tracing::info!(from = current, to = target, "store_migrated");
    }
    txn.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new())
    }
    const SCHEMA_VERSION: u32 = 1;

    #[test]
    fn fresh_store_records_schema_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), schema()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        s.shutdown();
        drop(s);
        let s = Store::open(dir.path(), schema()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("schema_version", "99")
                .unwrap();
            txn.commit().unwrap();
        }
        let err = Store::open(dir.path(), schema()).err().unwrap().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }

    #[test]
    fn migrates_a_file_without_schema_record() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(DB_FILE)).unwrap();
            db.begin_write().unwrap().commit().unwrap();
        }
        let s = Store::open(dir.path(), schema()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        // every table exists afterwards, so reads never meet a missing table
        s.read_blocking(|txn| {
            for t in schema().tables() {
                t.rows(txn)?;
            }
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn second_open_is_a_clear_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let _s = Store::open(dir.path(), schema()).unwrap();
        let err = Store::open(dir.path(), schema()).err().unwrap();
        assert!(matches!(err, Error::Conflict(_)), "{err}");
    }
}
