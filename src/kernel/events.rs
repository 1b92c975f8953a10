//! The broadcast bus behind `WS /ws/events`: every room publishes a typed [`Event`] after its
//! change is durable; subscribers inside the process (the incident index) match on the type,
//! and only the WebSocket edge turns an event into its `{type, ts, data}` JSON frame. Events
//! are stamped by the injected clock.

use std::sync::Arc;

use serde_json::{json, Value as Json};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::clock::{Clock, SystemClock};

/// Events a slow client may fall behind by before it is told it missed some.
pub const CAPACITY: usize = 1024;

/// What changed in the incident log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentChange {
    /// `incident.created`
    Created,
    /// `incident.updated` (fields, status, close, reopen)
    Updated,
    /// `incident.event`: a timeline event was appended or changed (a follow-up closed).
    Event,
    /// `incident.artifact`: an artifact was attached.
    Artifact,
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange {
    /// `alert.received`: a new alert, or one that changed (fired again, suppressed).
    Received,
    /// `alert.resolved`: an alert resolved.
    Resolved,
}

/// One live event. Payloads are the rooms' records as JSON (the kernel knows no room); the
/// ids subscribers route by are typed fields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A change of one incident; `record` is the incident, event or artifact.
    Incident {
        change: IncidentChange,
        incident_id: String,
        record: Json,
    },
    /// A run's status changed (`ops.run`).
    Run { run_id: String, summary: Json },
    /// A run's stored event (`ops.run.event`).
    RunEvent { run_id: String, event: Json },
    /// A requeue entry was made or decided (`ops.requeue`).
    Requeue { entry: Json },
    /// A job run of the scheduler started, finished, or was queued (`ops.job`).
    Job { run: Json },
    /// An alert was taken in or resolved; `record` is the alert.
    Alert {
        change: AlertChange,
        fingerprint: String,
        record: Json,
    },
}

impl Event {
    /// The frame's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Incident { change, .. } => match change {
                IncidentChange::Created => "incident.created",
                IncidentChange::Updated => "incident.updated",
                IncidentChange::Event => "incident.event",
                IncidentChange::Artifact => "incident.artifact",
            },
            Event::Run { .. } => "ops.run",
            Event::RunEvent { .. } => "ops.run.event",
            Event::Requeue { .. } => "ops.requeue",
            Event::Job { .. } => "ops.job",
            Event::Alert { change, .. } => match change {
                AlertChange::Received => "alert.received",
                AlertChange::Resolved => "alert.resolved",
            },
        }
    }

    /// The frame's `data`.
    pub fn data(&self) -> Json {
        match self {
            Event::Incident { change, record, .. } => {
                let key = match change {
                    IncidentChange::Created | IncidentChange::Updated => "incident",
                    IncidentChange::Event => "event",
                    IncidentChange::Artifact => "artifact",
                };
                json!({ key: record })
            }
            Event::Run { summary, .. } => summary.clone(),
            Event::RunEvent { run_id, event } => json!({"run_id": run_id, "event": event}),
            Event::Requeue { entry } => entry.clone(),
            Event::Job { run } => run.clone(),
            Event::Alert { record, .. } => json!({ "alert": record }),
        }
    }

    /// The incident this event is about, if any.
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            Event::Incident { incident_id, .. } => Some(incident_id),
            _ => None,
        }
    }
}

/// An event with the time it was published.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub ts: OffsetDateTime,
    pub event: Event,
}

impl Stamped {
    /// The WebSocket frame: `{"type","ts","data"}`.
    pub fn to_frame(&self) -> String {
        json!({"type": self.event.kind(), "ts": super::clock::rfc3339(self.ts), "data": self.event.data()})
            .to_string()
    }
}

/// The bus (cheap to clone).
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Stamped>>,
    clock: Arc<dyn Clock>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(Arc::new(SystemClock))
    }
}

impl Bus {
    /// A bus that stamps events with `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Bus {
        Bus {
            tx: broadcast::channel(CAPACITY).0,
            clock,
        }
    }

    /// Publish an event.
    pub fn publish(&self, event: Event) {
        let ts = self.clock.now();
        // No receiver is not an error: nobody is watching.
        let _ = self.tx.send(Arc::new(Stamped { ts, event }));
    }

    /// A new subscription (sees events published from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Stamped>> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::clock::ManualClock;

    #[test]
    fn events_are_stamped_by_the_injected_clock_and_framed_at_the_edge() {
        let t = time::macros::datetime!(2026-03-01 10:00:00 UTC);
        let bus = Bus::new(Arc::new(ManualClock::new(t)));
        let mut rx = bus.subscribe();
        bus.publish(Event::Incident {
            change: IncidentChange::Event,
            incident_id: "inc_1".into(),
            record: json!({"id": "ev_1", "incident_id": "inc_1"}),
        });
        let got = rx.try_recv().unwrap();
        assert_eq!(got.ts, t);
        assert_eq!(got.event.incident_id(), Some("inc_1"));
        let frame: Json = serde_json::from_str(&got.to_frame()).unwrap();
        assert_eq!(
            frame,
            json!({"type": "incident.event", "ts": crate::kernel::clock::rfc3339(t),
                   "data": {"event": {"id": "ev_1", "incident_id": "inc_1"}}})
        );
    }
}
