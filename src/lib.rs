//! sofiia: the ops control plane of a small AI-agent platform, in one process.
//!
//! # Layout
//!
//! The house has layers and its arrows point down only: a module names (`crate::x`) only
//! modules of lower layers. `tests/api/layers.rs` checks it on every test run.
//!
//! 0. [`error`]: the crate's error type with stable codes (no HTTP in it).
//! 1. [`kernel`]: leaf helpers: injected clock and random ids, sha256, durable file writes,
//!    checks of untrusted text, and the typed live [`kernel::events`].
//! 2. [`config`]: settings (flag > environment > `CONFIG_DIR/sofiia.yml` > default) and
//!    [`config::policy::load`] for the YAML policy files.
//! 3. [`store`]: the redb file, write-ahead log and group commit, the table registry
//!    ([`store::Schema`]: rooms declare their tables and migrations, the store knows no
//!    room), backup and restore, JSONL helpers. [`net`]: the only way out (allowlist,
//!    timeouts, retries, circuit breakers; rustls on `ring`).
//! 4. Rooms: [`incidents`] (incidents, timelines, follow-ups, artifacts), [`audit`] (the
//!    gateway's audit records), [`observability`] (Prometheus, Loki or log files, traces,
//!    SLOs); then [`search`] (tantivy: runbook sections, incident similarity); then
//!    [`intel`] (correlation, recurrence, digests) and [`transfer`] (JSONL export/import,
//!    online snapshots);
//!    then [`risk`] (service risk scores, attribution, pressure, digests) and [`backlog`]
//!    (platform backlog items, deduplicated by key) and [`alerts`] (Alertmanager and generic
//!    alerts, routing, silences, the triage that opens incidents).
//! 5. [`gateway`]: the pipeline every tool call passes (auth → RBAC → rollout → limits →
//!    execute → redact → audit), the [`gateway::Tool`] trait and the [`gateway::Registry`].
//! 6. [`tools`]: one adapter per tool, its params types inside, calling its room.
//! 7. [`graphs`]: the graph runner (durable runs, checkpoints, cancel, requeue) and the
//!    built-in graphs; [`jobs`]: the task registry, the scheduler (catch-up after sleep,
//!    overlap policy, durable runs) and the governance jobs. Both reach rooms only through
//!    gateway tools.
//! 8. [`app`]: the wiring: `AppState`, the store's [`app::schema`], the [`app::tools`]
//!    registry, the graphs. A new room is its folder plus a line here.
//! 9. [`http`]: the axum router, the error edge (status, envelope, request ids), extractors,
//!    the WebSocket stream, the console's embedded files (`ui/`: plain ES modules), and
//!    [`http::edge`]: the accept loop with the connection cap, read timeouts and shutdown grace.
//! 10. [`server`]: bind, serve, graceful shutdown; [`cli`]: clap commands → library calls.

pub mod alerts;
pub mod app;
pub mod audit;
pub mod backlog;
pub mod cli;
pub mod config;
pub mod error;
pub mod gateway;
pub mod graphs;
pub mod http;
pub mod incidents;
pub mod intel;
pub mod jobs;
pub mod kernel;
pub mod net;
pub mod observability;
pub mod risk;
pub mod search;
pub mod server;
pub mod store;
pub mod tools;
pub mod transfer;

/// Log to stderr, one `key=value` line per event; `RUST_LOG` overrides the `info` default.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
