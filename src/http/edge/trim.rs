//! Giving memory back after large request bodies. glibc's allocator keeps freed memory in
//! its arenas: after 50 clients each held a 6 MB body until they timed out, the process
//! stayed at 270 MB of 55 MB although every buffer was freed. When large bodies have been
//! dropped, a trim (`malloc_trim`) a moment later returns the free pages to the system. On
//! other allocators and platforms (macOS, musl) it does nothing: they return memory
//! themselves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Request bodies smaller than this are not counted (they fit in the allocator's caches).
const LARGE_BODY: u64 = 256 * 1024;
/// Body bytes dropped since the last trim that make another one worth it.
const TRIM_AFTER: u64 = 16 * 1024 * 1024;
/// Wait after the threshold is crossed, so one trim covers a burst of requests ending.
const TRIM_DELAY: Duration = Duration::from_secs(1);

/// Counts dropped request-body bytes and trims the allocator when they add up.
#[derive(Default)]
pub(super) struct Trimmer {
    pending: AtomicU64,
    scheduled: AtomicBool,
}

impl Trimmer {
    /// A request whose body carried `bytes` is over and its buffers dropped.
    pub(super) fn dropped(self: &Arc<Self>, bytes: u64) {
        if !TRIMS || bytes < LARGE_BODY {
            return;
        }
        let pending = self.pending.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if pending < TRIM_AFTER || self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        // Outside a runtime (cannot happen while serving) the trim is skipped.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(TRIM_DELAY).await;
                me.pending.store(0, Ordering::Release);
                me.scheduled.store(false, Ordering::Release);
                let _ = tokio::task::spawn_blocking(release_free_memory).await;
            });
        }
    }
}

const TRIMS: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim takes no pointers; it only walks glibc's own arenas.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(released, "allocator_trimmed");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}
