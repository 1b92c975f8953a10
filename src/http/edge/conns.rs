//! The live connections: how many there are, which are idle, and a switch that drops any of
//! them — also after a WebSocket upgrade, when the socket has left hyper for axum's task.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Every connection being served.
pub(super) struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    epoch: Instant,
    /// Notified whenever a connection leaves (shutdown waits on it).
    left: Notify,
    /// Longest a write may wait for the client to read (a client that stops reading a
    /// response, or a WebSocket that stops reading the stream, is dropped after it).
    write_timeout: Duration,
}

/// One connection's state, shared by its task, its requests and its socket.
pub(super) struct Conn {
    id: u64,
    epoch: Instant,
    in_flight: AtomicUsize,
    upgraded: AtomicBool,
    /// Milliseconds since `epoch` when the connection last became idle.
    idle_since_ms: AtomicU64,
    killed: AtomicBool,
    kill: Notify,
    /// Tasks parked on the socket (read, write), woken when the connection is killed.
    parked: Mutex<[Option<Waker>; 2]>,
}

const READ: usize = 0;
const WRITE: usize = 1;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    pub(super) fn new(write_timeout: Duration) -> Arc<Registry> {
        Arc::new(Registry {
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            epoch: Instant::now(),
            left: Notify::new(),
            write_timeout,
        })
    }

    /// Connections being served (killed ones no longer count).
    pub(super) fn len(&self) -> usize {
        lock(&self.conns).len()
    }

    /// Register a new connection over `stream`; it counts until the returned socket drops.
    pub(super) fn open(self: &Arc<Self>, stream: TcpStream) -> (Arc<Conn>, Tracked) {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            epoch: self.epoch,
            in_flight: AtomicUsize::new(0),
            upgraded: AtomicBool::new(false),
            idle_since_ms: AtomicU64::new(self.now_ms()),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            parked: Mutex::new([None, None]),
        });
        lock(&self.conns).insert(conn.id, conn.clone());
        let tracked = Tracked {
            io: stream,
            conn: conn.clone(),
            registry: self.clone(),
            stall: None,
        };
        (conn, tracked)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Drop the connection that has been idle the longest (no request in flight: kept alive
    /// between requests, or still waiting for its first headers). False when none is idle.
    pub(super) fn evict_idle(&self) -> bool {
        let victim = {
            let mut conns = lock(&self.conns);
            let oldest = conns
                .values()
                .filter(|c| c.is_idle())
                // Ties (same millisecond) go to the one accepted first.
                .min_by_key(|c| (c.idle_since_ms.load(Ordering::Relaxed), c.id))
                .map(|c| c.id);
            oldest.and_then(|id| conns.remove(&id))
        };
        match victim {
            Some(c) => {
                c.kill();
                self.left.notify_waiters();
                true
            }
            None => false,
        }
    }

    /// Drop every idle connection (at shutdown: nothing of theirs is lost). Returns how many.
    pub(super) fn kill_idle(&self) -> usize {
        self.kill_where(|c| c.is_idle())
    }

    /// Drop every connection (when the shutdown grace is over). Returns how many.
    pub(super) fn kill_all(&self) -> usize {
        self.kill_where(|_| true)
    }

    fn kill_where(&self, pick: impl Fn(&Conn) -> bool) -> usize {
        let victims: Vec<Arc<Conn>> = {
            let mut conns = lock(&self.conns);
            let ids: Vec<u64> = conns.values().filter(|c| pick(c)).map(|c| c.id).collect();
            ids.iter().filter_map(|id| conns.remove(id)).collect()
        };
        for c in &victims {
            c.kill();
        }
        if !victims.is_empty() {
            self.left.notify_waiters();
        }
        victims.len()
    }

    /// Wait until no connection is left, or `deadline`. True when none is left.
    pub(super) async fn wait_empty(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let left = self.left.notified();
            if self.len() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, left).await.is_err() {
                return self.len() == 0;
            }
        }
    }

    fn remove(&self, id: u64) {
        if lock(&self.conns).remove(&id).is_some() {
            self.left.notify_waiters();
        }
    }
}

impl Conn {
    fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && !self.upgraded.load(Ordering::Acquire)
            && !self.killed.load(Ordering::Acquire)
    }

    /// A request started; it is in flight until the returned guard drops (after its response
    /// is written).
    pub(super) fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// The connection became a WebSocket: busy for as long as it lives.
    pub(super) fn mark_upgraded(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill.notify_waiters();
        let parked = std::mem::take(&mut *lock(&self.parked));
        for w in parked.into_iter().flatten() {
            w.wake();
        }
    }

    /// Resolves once the connection is killed.
    pub(super) async fn killed(&self) {
        loop {
            let note = self.kill.notified();
            if self.killed.load(Ordering::Acquire) {
                return;
            }
            note.await;
        }
    }

    /// Remember who waits on the socket, then tell whether the connection was killed
    /// meanwhile (checked after parking, so a kill in between is never missed).
    fn park(&self, slot: usize, waker: &Waker) -> bool {
        {
            let mut parked = lock(&self.parked);
            match &parked[slot] {
                Some(w) if w.will_wake(waker) => {}
                _ => parked[slot] = Some(waker.clone()),
            }
        }
        self.killed.load(Ordering::Acquire)
    }
}

/// A request in flight on its connection.
pub(super) struct Busy(Arc<Conn>);

impl Drop for Busy {
    fn drop(&mut self) {
        let conn = &self.0;
        let now = u64::try_from(conn.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        conn.idle_since_ms.store(now, Ordering::Relaxed);
        conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket: counts in the registry until dropped, fails every read and
/// write once the connection is killed, and fails a write the client has not let through for
/// the registry's write timeout.
pub(super) struct Tracked {
    io: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
    /// Since when a write has been waiting for the client to read.
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.registry.remove(self.conn.id);
    }
}

fn dropped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "connection dropped by sofiia",
    )
}

fn stalled(after: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the client read nothing for {} ms; connection dropped",
            after.as_millis()
        ),
    )
}

impl Tracked {
    /// A write's outcome, with the stall deadline: started when the client stops taking
    /// bytes, cleared when it takes some, and an error when it passes.
    fn write_deadline<T>(
        &mut self,
        cx: &mut Context<'_>,
        res: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match res {
            Poll::Pending => {
                let after = self.registry.write_timeout;
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
                if stall.as_mut().poll(cx).is_ready() {
                    self.stall = None;
                    tracing::debug!("connection_write_stalled");
                    return Poll::Ready(Err(stalled(after)));
                }
                Poll::Pending
            }
            ready => {
                self.stall = None;
                ready
            }
        }
    }

    fn check<T>(
        &self,
        slot: usize,
        cx: &Context<'_>,
        res: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match res {
            Poll::Pending if self.conn.park(slot, cx.waker()) => Poll::Ready(Err(dropped())),
            other => other,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.conn.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(dropped()));
        }
        let res = Pin::new(&mut this.io).poll_read(cx, buf);
        this.check(READ, cx, res)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.conn.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(dropped()));
        }
        let res = Pin::new(&mut this.io).poll_write(cx, buf);
        let res = this.write_deadline(cx, res);
        this.check(WRITE, cx, res)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.conn.killed.load(Ordering::Acquire) {
            return Poll::Ready(Err(dropped()));
        }
        let res = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        let res = this.write_deadline(cx, res);
        this.check(WRITE, cx, res)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.io).poll_flush(cx);
        let res = this.write_deadline(cx, res);
        this.check(WRITE, cx, res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.conn.killed.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let res = Pin::new(&mut this.io).poll_shutdown(cx);
        this.check(WRITE, cx, res)
    }
}
