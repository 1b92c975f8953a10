//! The broadcast bus behind `WS /ws/events`: every room publishes `{type, ts, data}` envelopes
//! after its change is durable; each connected console receives them live.

use std::sync::Arc;

use serde_json::{json, Value as Json};
use tokio::sync::broadcast;

/// Events a slow client may fall behind by before it is told it missed some.
pub const CAPACITY: usize = 1024;

/// The bus (cheap to clone).
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<str>>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }
}

impl Bus {
    /// Publish an event of `kind` (e.g. `incident.created`) with its data.
    pub fn publish(&self, kind: &str, data: Json) {
        let ts = crate::kernel::clock::rfc3339(time::OffsetDateTime::now_utc());
        let msg = json!({"type": kind, "ts": ts, "data": data}).to_string();
        // No receiver is not an error: nobody is watching.
        let _ = self.tx.send(Arc::from(msg));
    }

    /// A new subscription (sees events published from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tx.subscribe()
    }
}
