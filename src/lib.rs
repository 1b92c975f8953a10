//! sofiia: the ops control plane of a small AI-agent platform, in one process.
//!
//! # Layout
//!
//! - [`cli`]: clap commands (`serve`, `export`, `import`, `backup`, `restore`) → library calls.
//! - [`app`]: `AppState` wiring the rooms together; start-up and graceful shutdown.
//! - [`config`]: settings, layered flag > environment > `CONFIG_DIR/sofiia.yml` > default.
//! - [`store`]: the redb file, schema version and migrations, the group-commit writer,
//!   JSONL helpers, backup and restore.
//! - [`incidents`]: the incident log: incidents, timeline events, follow-ups, artifacts,
//!   JSONL export/import.
//! - [`gateway`]: the tool pipeline (auth → RBAC → rollout → limits → execute → audit),
//!   policies, keys, audit records, and the tools (`tools/`, one file each).
//! - [`http`]: the axum router, extractors that keep every error in one JSON envelope, the
//!   WebSocket event stream, and the console's embedded files (`http::ui`: versioned,
//!   compressed, cached). The console itself is plain ES modules in `ui/`.
//! - [`graphs`]: the graph runner: durable runs of node graphs, cancel, timeouts, resume,
//!   idempotency, TTL purge; every side effect through the gateway.
//! - [`observability`]: metrics (Prometheus HTTP API) and logs (local files) per env.
//! - [`search`]: tantivy indexes: runbook sections and incident similarity.
//! - [`error`]: the crate's error type and its HTTP mapping.
//! - [`events`]: the broadcast bus behind `WS /ws/events`.
//! - [`clock`]: injected time, timestamps, random ids.

pub mod app;
pub mod audit;
pub mod cli;
pub mod config;
pub mod error;
pub mod gateway;
pub mod graphs;
pub mod http;
pub mod incidents;
pub mod intel;
pub mod kernel;
pub mod net;
pub mod observability;
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
