//! Group commit: one thread owns every write transaction.
//!
//! Jobs arrive on a channel. The thread takes the first, drains whatever else is already
//! waiting (up to [`MAX_BATCH`]), runs them all in one write transaction and commits once.
//! Every job's caller is answered after that commit is durable, so under concurrency many
//! acknowledged writes share one fsync while each stays durable when acknowledged.
//! No transaction ever lives across an `.await`: the async side only waits on a oneshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use redb::{Database, WriteTransaction};
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
    run: Box<dyn FnOnce(&WriteTransaction) -> Outcome + Send>,
    fail: Box<dyn FnOnce(String) + Send>,
}

/// Counters for benchmarks and `/metrics`.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Stats {
    /// Durable commits made.
    pub commits: u64,
    /// Jobs committed.
    pub jobs: u64,
}

/// The writer thread's handle.
pub struct Writer {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    commits: Arc<AtomicU64>,
    jobs: Arc<AtomicU64>,
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
    /// Start the writer thread for `db`.
    pub fn start(db: Arc<Database>) -> Writer {
        let (tx, rx) = mpsc::channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        let jobs = Arc::new(AtomicU64::new(0));
        let (c, j) = (commits.clone(), jobs.clone());
        let thread = std::thread::Builder::new()
            .name("sofiia-writer".into())
            .spawn(move || run(db, rx, c, j))
            .ok();
        Writer {
            tx: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
            commits,
            jobs,
        }
    }

    /// Queue `f`; the ticket resolves after the commit containing it.
    pub fn submit<T, F>(&self, f: F) -> Result<Ticket<T>>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T> + Send + 'static,
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
            commits: self.commits.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(db: Arc<Database>, rx: mpsc::Receiver<Job>, commits: Arc<AtomicU64>, jobs: Arc<AtomicU64>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        let txn = match db.begin_write() {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("cannot begin write: {e}");
                tracing::error!(error = %msg, "store_write_failed");
                // Answer every job: dropping the closures drops their senders, which
                // would read as ShuttingDown; say what happened instead.
                for job in batch.drain(..) {
                    (job.fail)(msg.clone());
                }
                continue;
            }
        };
        let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
        let mut poison: Option<String> = None;
        for job in batch.drain(..) {
            if poison.is_some() {
                // The transaction is already doomed: do not run more jobs in it.
                (job.fail)(format!(
                    "write batch aborted: {}",
                    poison.as_deref().unwrap_or_default()
                ));
                continue;
            }
            match (job.run)(&txn) {
                Outcome::Pending(r) => replies.push(r),
                Outcome::Done => {}
                Outcome::Poisoned(r, msg) => {
                    replies.push(r);
                    poison = Some(msg);
                }
            }
        }
        let result = match poison {
            Some(msg) => {
                let _ = txn.abort();
                tracing::error!(error = %msg, jobs = n, "store_batch_aborted");
                Err(format!("write batch aborted: {msg}"))
            }
            None => match txn.commit() {
                Ok(()) => {
                    commits.fetch_add(1, Ordering::Relaxed);
                    jobs.fetch_add(n, Ordering::Relaxed);
                    Ok(())
                }
                Err(e) => {
                    tracing::error!(error = %e, jobs = n, "store_commit_failed");
                    Err(format!("commit failed: {e}"))
                }
            },
        };
        for r in replies {
            r(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("t");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_jobs_share_commits_and_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let w = Arc::new(Writer::start(db.clone()));
        let mut handles = Vec::new();
        for i in 0..400u64 {
            let w = w.clone();
            handles.push(tokio::spawn(async move {
                w.submit(move |txn| {
                    txn.open_table(T)?.insert(i, i * 2)?;
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
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let w = Writer::start(db.clone());
        let bad = w
            .submit(|_txn| -> Result<()> { Err(Error::invalid("x", "no")) })
            .unwrap();
        let good = w
            .submit(|txn| {
                txn.open_table(T)?.insert(1, 1)?;
                Ok(())
            })
            .unwrap();
        assert!(matches!(bad.await, Err(Error::Validation { .. })));
        good.await.unwrap();
        w.shutdown();
        assert!(matches!(w.submit(|_| Ok(())), Err(Error::ShuttingDown)));
    }

    #[tokio::test]
    async fn a_storage_failure_aborts_the_batch_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("t.redb")).unwrap());
        let w = Writer::start(db.clone());
        let t1 = w
            .submit(|txn| -> Result<()> {
                txn.open_table(T)?.insert(5, 5)?;
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
