//! Group commit: one thread owns every write transaction.
//!
//! Jobs arrive on a channel. The thread takes the first, drains whatever else is already
//! waiting (up to [`MAX_BATCH`]), runs them all in one write transaction, appends what they
//! wrote to the write-ahead log with one fsync, then commits the transaction without a second
//! fsync. Every job's caller is answered after the log fsync, so many acknowledged writes
//! share one fsync while each is durable when acknowledged. Checkpoints (durable redb
//! commits, after which the log is emptied) run on a timer, when the log grows, when idle and
//! at shutdown. No transaction ever lives across an `.await`: the async side only waits on a
//! oneshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability};

use super::wal::{Wal, WriteTx};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

/// Most jobs one commit takes; bounds the latency of the first job in a batch.
pub const MAX_BATCH: usize = 512;

type Reply = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;

enum Outcome {
    /// Wrote; answer after the commit.
    Pending(Reply),
    /// Refused without writing; already answered.
    Done,
    /// The store failed inside the job: the whole transaction must be dropped.
    Poisoned(Reply, String),
}

/// A queued write: `run` executes it inside the batch transaction; `fail` answers it
/// without running when its batch cannot begin.
struct Job {
    run: Box<dyn FnOnce(&WriteTx) -> Outcome + Send>,
    fail: Box<dyn FnOnce(String) + Send>,
}

/// Counters for benchmarks and `/metrics`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stats {
    /// Batches made durable (one log fsync each).
    pub commits: u64,
    /// The writer refuses every write until sofiia restarts (a write failed half-way, e.g.
    /// on a full disk; the restart replays the log).
    pub failed: bool,
    /// Jobs committed.
    pub jobs: u64,
    /// Checkpoints (durable redb commits) made.
    pub checkpoints: u64,
}

/// When the writer folds the log into redb's file with a durable commit.
#[derive(Debug, Clone, Copy)]
pub struct Checkpoints {
    /// At most this long between checkpoints while writes arrive (and after the last write).
    pub interval: Duration,
    /// Checkpoint as soon as the log holds this many bytes.
    pub max_log_bytes: u64,
}

impl Default for Checkpoints {
    fn default() -> Self {
        Checkpoints {
            interval: Duration::from_millis(500),
            max_log_bytes: 32 * 1024 * 1024,
        }
    }
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    jobs: AtomicU64,
    checkpoints: AtomicU64,
    /// Set once the writer refuses writes until a restart.
    failed: std::sync::atomic::AtomicBool,
}

/// The writer thread's handle.
pub struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

/// A queued job's answer.
pub struct Ticket<T>(oneshot::Receiver<Result<T>>);

impl<T> Ticket<T> {
    /// Wait (async) for the commit.
    pub async fn await_result(self) -> Result<T> {
        self.0.await.unwrap_or(Err(Error::ShuttingDown))
    }
    /// Wait (blocking) for the commit.
    pub fn wait(self) -> Result<T> {
        self.0.blocking_recv().unwrap_or(Err(Error::ShuttingDown))
    }
}

impl<T> std::future::IntoFuture for Ticket<T>
where
    T: Send + 'static,
{
    type Output = Result<T>;
    type IntoFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T>> + Send>>;
    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.await_result())
    }
}

impl Writer {
    /// Start the writer thread for `db`, logging to `wal` (already replayed and empty).
    pub fn start(db: Arc<Database>, wal: Wal, policy: Checkpoints) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("sofiia-writer".into())
            .spawn(move || run(db, wal, policy, rx, c))
            .ok();
        Writer {
            tx: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
            counters,
        }
    }

    /// Queue `f`; the ticket resolves after the commit containing it.
    pub fn submit<T, F>(&self, f: F) -> Result<Ticket<T>>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTx) -> Result<T> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel::<Result<T>>();
        let slot = Arc::new(Mutex::new(Some(reply_tx)));
        let answer = move |slot: &Mutex<Option<oneshot::Sender<Result<T>>>>, r: Result<T>| {
            if let Some(tx) = slot.lock().ok().and_then(|mut g| g.take()) {
                let _ = tx.send(r);
            }
        };
        let fail_slot = slot.clone();
        let job = Job {
            run: Box::new(move |txn| match f(txn) {
                Ok(v) => Outcome::Pending(Box::new(move |committed| {
                    answer(&slot, committed.map(|_| v).map_err(Error::Storage));
                })),
                Err(e) if e.is_storage() => {
                    let msg = e.to_string();
                    Outcome::Poisoned(Box::new(move |_| answer(&slot, Err(e))), msg)
                }
                Err(e) => {
                    answer(&slot, Err(e));
                    Outcome::Done
                }
            }),
            fail: Box::new(move |msg| answer(&fail_slot, Err(Error::Storage(msg)))),
        };
        let guard = self.tx.lock().map_err(|_| Error::ShuttingDown)?;
        let tx = guard.as_ref().ok_or(Error::ShuttingDown)?;
        tx.send(job).map_err(|_| Error::ShuttingDown)?;
        Ok(Ticket(reply_rx))
    }

    /// Close the queue, let queued jobs commit, join the thread. Idempotent.
    pub fn shutdown(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let handle = self.thread.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        Stats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            jobs: self.counters.jobs.load(Ordering::Relaxed),
            checkpoints: self.counters.checkpoints.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Acquire),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(
    db: Arc<Database>,
    mut wal: Wal,
    policy: Checkpoints,
    rx: mpsc::Receiver<Job>,
    counters: Arc<Counters>,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut last_checkpoint = Instant::now();
    // Set when the log may hold a write that was reported as failed: from then on every write
    // is refused (a restart replays the log and settles it).
    let mut failed: Option<String> = None;
    loop {
        let first = if wal.is_empty() {
            match rx.recv() {
                Ok(j) => j,
                Err(_) => break,
            }
        } else {
            let wait = policy.interval.saturating_sub(last_checkpoint.elapsed());
            match rx.recv_timeout(wait) {
                Ok(j) => j,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    checkpoint(&db, &mut wal, &counters);
                    last_checkpoint = Instant::now();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        };
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if let Some(why) = &failed {
            for job in batch.drain(..) {
                (job.fail)(why.clone());
            }
            continue;
        }
        if let Err(why) = commit_batch(&db, &mut wal, &mut batch, &counters) {
            tracing::error!(error = %why, "store_failed_restart_required");
            counters.failed.store(true, Ordering::Release);
            failed = Some(why);
            continue;
        }
        if wal.pending_bytes() >= policy.max_log_bytes
            || last_checkpoint.elapsed() >= policy.interval
        {
            checkpoint(&db, &mut wal, &counters);
            last_checkpoint = Instant::now();
        }
    }
    // Queue closed: every job has been answered. Leave redb's file complete and the log empty,
    // so a stopped sofiia's DATA_DIR is a plain copyable backup.
    checkpoint(&db, &mut wal, &counters);
}

/// Run a batch in one transaction, make it durable through the log, commit it, answer it.
/// Returns an error only when the store can no longer tell which writes are durable.
fn commit_batch(
    db: &Database,
    wal: &mut Wal,
    batch: &mut Vec<Job>,
    counters: &Counters,
) -> std::result::Result<(), String> {
    let n = batch.len() as u64;
    let mut txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => {
            let msg = format!("cannot begin write: {e}");
            tracing::error!(error = %msg, "store_write_failed");
            for job in batch.drain(..) {
                (job.fail)(msg.clone());
            }
            return Ok(());
        }
    };
    // Durability comes from the log fsync below; redb's own fsync waits for the checkpoint.
    let _ = txn.set_durability(Durability::None);
    let tx = WriteTx::new(&txn);
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    let mut poison: Option<String> = None;
    for job in batch.drain(..) {
        if let Some(p) = &poison {
            (job.fail)(format!("write batch aborted: {p}"));
            continue;
        }
        let before = tx.log_len();
        // A panicking job must not take the writer thread (and every later write) with it.
        let Job { run, fail } = job;
        let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&tx))) {
            Ok(o) => o,
            Err(_) => {
                tracing::error!("write_job_panicked");
                let msg = "a write job failed unexpectedly".to_string();
                fail(msg.clone());
                poison = Some(msg);
                continue;
            }
        };
        match outcome {
            Outcome::Pending(r) => replies.push(r),
            Outcome::Done => {
                if tx.log_len() != before {
                    // A job that refused after writing broke the contract; its writes are in
                    // this transaction, so none of the batch may commit.
                    poison = Some("a refused write left changes behind".into());
                }
            }
            Outcome::Poisoned(r, msg) => {
                replies.push(r);
                poison = Some(msg);
            }
        }
    }
    if poison.is_none() {
        if let Err(e) = tx.flush_counts() {
            poison = Some(e.to_string());
        }
    }
    let log = tx.take_log();
    drop(tx);
    let result = if let Some(msg) = poison {
        let _ = txn.abort();
        tracing::error!(error = %msg, jobs = n, "store_batch_aborted");
        Err(format!("write batch aborted: {msg}"))
    } else if log.is_empty() {
        // Nothing was written (reads and refusals only): nothing to make durable.
        let _ = txn.abort();
        Ok(())
    } else {
        let mark = wal.len();
        match wal.append(&log) {
            Err(e) => {
                let _ = txn.abort();
                tracing::error!(error = %e, jobs = n, "wal_append_failed");
                Err(format!("write-ahead log: {e}"))
            }
            Ok(()) => match txn.commit() {
                Ok(()) => {
                    counters.commits.fetch_add(1, Ordering::Relaxed);
                    counters.jobs.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    // The batch is in the log but not in redb: take it out of the log again
                    // so a restart cannot resurrect a write that was reported as failed.
                    tracing::error!(error = %e, jobs = n, "store_commit_failed");
                    if let Err(t) = wal.truncate_to(mark) {
                        let why = format!(
                            "commit failed ({e}) and the log could not be rolled back ({t}); \
                             restart sofiia"
                        );
                        for r in replies {
                            r(Err(why.clone()));
                        }
                        return Err(why);
                    }
                    Err(format!("commit failed: {e}"))
                }
            },
        }
    };
    for r in replies {
        r(result.clone());
    }
    Ok(())
}

/// Make redb's file hold everything committed so far, then empty the log.
fn checkpoint(db: &Database, wal: &mut Wal, counters: &Counters) {
    if wal.is_empty() {
        return;
    }
    let started = Instant::now();
    let res = db
        .begin_write()
        .map_err(|e| e.to_string())
        .and_then(|t| t.commit().map_err(|e| e.to_string()));
    match res {
        Ok(()) => {
            let bytes = wal.pending_bytes();
            if let Err(e) = wal.reset() {
                tracing::error!(error = %e, "wal_reset_failed");
                return;
            }
            counters.checkpoints.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                log_bytes = bytes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "checkpoint"
            );
        }
        // The log still holds everything; the next checkpoint (or a restart) retries.
        Err(e) => tracing::error!(error = %e, "checkpoint_failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    fn start(dir: &std::path::Path) -> (Arc<Database>, Writer) {
        let db = Arc::new(Database::create(dir.join("t.redb")).unwrap());
        let (wal, _) = Wal::open(&dir.join("t.wal"), 1).unwrap();
        let w = Writer::start(db.clone(), wal, Checkpoints::default());
        (db, w)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_jobs_share_commits_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let (db, w) = start(dir.path());
        let w = Arc::new(w);
        let mut handles = Vec::new();
        for i in 0..400u64 {
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                w.submit(move |txn| {
                    txn.open(T)?.insert(i, i * 2)?;
                    Ok(i)
                })
                .unwrap()
                .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let s = w.stats();
        assert_eq!(s.jobs, 400);
        assert!(s.commits < 400, "no batching happened: {s:?}");
        let r = db.begin_read().unwrap();
        let t = r.open_table(T).unwrap();
        assert_eq!(t.get(399).unwrap().unwrap().value(), 798);
    }

    #[tokio::test]
    async fn a_refused_job_does_not_affect_others_and_shutdown_refuses_new_jobs() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, w) = start(dir.path());
        let bad = w
            .submit(|_txn| -> Result<()> { Err(Error::invalid("x", "no")) })
            .unwrap();
        let good = w
            .submit(|txn| {
                txn.open(T)?.insert(1, 1)?;
                Ok(())
            })
            .unwrap();
        assert!(matches!(bad.await, Err(Error::Validation { .. })));
        good.await.unwrap();
        w.shutdown();
        assert!(matches!(w.submit(|_| Ok(())), Err(Error::ShuttingDown)));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_writer_keeps_going() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, w) = start(dir.path());
        let boom = w
            .submit(|_txn| -> Result<()> { panic!("bug in a job") })
            .unwrap();
        assert!(boom.await.is_err());
        let ok = w
            .submit(|txn| {
                txn.open(T)?.insert(7, 7)?;
                Ok(7)
            })
            .unwrap();
        assert_eq!(ok.await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_storage_failure_aborts_the_batch_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (db, w) = start(dir.path());
        let t1 = w
            .submit(|txn| -> Result<()> {
                txn.open(T)?.insert(5, 5)?;
                Err(Error::Storage("disk on fire".into()))
            })
            .unwrap();
        assert!(matches!(t1.await, Err(Error::Storage(m)) if m.contains("disk on fire")));
        let r = db.begin_read().unwrap();
        // the poisoned job's write was rolled back
        assert!(r
            .open_table(T)
            .map(|t| t.get(5).unwrap().is_none())
            .unwrap_or(true));
    }
}
