//! `AppState` wires the rooms together; [`App`] owns start-up and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::incidents::Incidents;
use crate::store::backup::BackupReport;
use crate::store::Store;

/// Shared handles of every room (cheap to clone).
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    pub settings: Settings,
    pub store: Store,
    pub incidents: Incidents,
    pub gateway: crate::gateway::Gateway,
    /// The only way out to other systems (allowlist, timeouts, retries, circuit breakers).
    pub outbound: Arc<crate::gateway::outbound::Outbound>,
    /// Live events for `/ws/events`.
    pub bus: crate::events::Bus,
    /// Runbook search and incident similarity (tantivy).
    pub search: crate::search::Search,
    /// The graph runner (supervisor runs).
    pub runner: crate::graphs::Runner,
    /// Flips to true when sofiia is stopping (open WebSockets close on it).
    pub closing: tokio::sync::watch::Sender<bool>,
    pub clock: Arc<dyn Clock>,
    pub started: Instant,
    backup_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Open the store and build every room.
    pub fn open(settings: Settings, clock: Arc<dyn Clock>) -> Result<AppState> {
        // Only a developer's own machine may run without keys.
        let prod = settings.env != crate::config::Env::Dev;
        if prod && settings.console_api_key.is_none() {
            return Err(Error::Validation {
                code: "config",
                message: format!(
                    "SOFIIA_CONSOLE_API_KEY: ENV={} requires an operator key; for example \
                     export SOFIIA_CONSOLE_API_KEY={}",
                    settings.env.as_str(),
                    crate::clock::random_hex(24)
                ),
            });
        }
        let policies = crate::gateway::policy::Policies::load(settings.config_dir.as_deref())
            .map_err(|e| Error::Validation {
                code: "config",
                message: e.0,
            })?;
        let outbound = Arc::new(
            crate::gateway::outbound::Outbound::new(
                settings.config_dir.as_deref(),
                crate::gateway::outbound::Options::default(),
            )
            .map_err(|e| Error::Validation {
                code: "config",
                message: e.0,
            })?,
        );
        let policy = crate::store::writer::Checkpoints {
            interval: std::time::Duration::from_millis(settings.checkpoint_ms),
            ..Default::default()
        };
        let store = Store::open_with(&settings.data_dir, policy)?;
        std::fs::create_dir_all(&settings.artifacts_dir).map_err(|e| {
            Error::Io(format!(
                "INCIDENT_ARTIFACTS_DIR: cannot create {}: {e}",
                settings.artifacts_dir.display()
            ))
        })?;
        let bus = crate::events::Bus::default();
        let incidents =
            Incidents::new(store.clone(), clock.clone(), settings.artifacts_dir.clone())
                .with_bus(bus.clone());
        let keys = crate::gateway::auth::Keys::load(
            &settings.data_dir,
            settings.console_api_key.as_deref(),
            prod,
        )?;
        let audit = crate::gateway::audit::Audit::open(store.clone(), &settings.data_dir)?;
        let search = crate::search::Search::new(&settings, store.clone());
        match search.runbooks.seed_starter() {
            Ok(0) => {}
            Ok(n) => tracing::info!(runbooks = n, "starter_runbooks_written"),
            Err(e) => tracing::warn!(error = %e, "starter_runbooks_not_written"),
        }
        let sources =
            crate::observability::Sources::load(settings.config_dir.as_deref()).map_err(|e| {
                Error::Validation {
                    code: "config",
                    message: e.0,
                }
            })?;
        let gateway = crate::gateway::Gateway::new(
            policies,
            keys,
            settings.env,
            audit,
            crate::gateway::Rooms {
                incidents: incidents.clone(),
                search: search.clone(),
                observability: crate::observability::Observability::new(
                    sources,
                    crate::observability::SloPolicy::load(settings.config_dir.as_deref()).map_err(
                        |e| Error::Validation {
                            code: "config",
                            message: e.0,
                        },
                    )?,
                    outbound.clone(),
                ),
                reports_dir: settings.data_dir.join("reports"),
            },
            clock.clone(),
        )?;
        let runner = crate::graphs::Runner::new(
            store.clone(),
            gateway.clone(),
            clock.clone(),
            bus.clone(),
            crate::graphs::RunnerOptions {
                workers: settings.graph_workers,
                ttl: std::time::Duration::from_secs(settings.run_ttl_sec),
                failed_ttl: std::time::Duration::from_secs(settings.run_ttl_sec * 4),
                ..Default::default()
            },
        );
        let cost = crate::graphs::triage::CostWeights::load(settings.config_dir.as_deref())
            .map_err(|e| Error::Validation {
                code: "config",
                message: e.0,
            })?;
        runner.register(Arc::new(crate::graphs::triage::IncidentTriage::new(
            clock.clone(),
            settings.incident_max_time_window_h,
            gateway.redactor().clone(),
            cost,
        )));
        runner.register(Arc::new(crate::graphs::postmortem::PostmortemDraft::new(
            settings.incident_max_time_window_h,
        )));
        Ok(AppState(Arc::new(Inner {
            settings,
            store,
            incidents,
            gateway,
            outbound,
            bus,
            search,
            runner,
            closing: tokio::sync::watch::channel(false).0,
            clock,
            started: Instant::now(),
            backup_lock: Arc::new(tokio::sync::Mutex::new(())),
        })))
    }

    /// Consistent snapshot into `out` while serving; one backup at a time.
    pub async fn backup_to(&self, out: PathBuf) -> Result<BackupReport> {
        // The guard moves into the task: a client that disconnects does not free the slot
        // while its backup is still being written.
        let guard = self
            .backup_lock
            .clone()
            .try_lock_owned()
            .map_err(|_| Error::Conflict("a backup is already running".into()))?;
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let _guard = guard;
            use redb::ReadableDatabase;
            let txn = state.store.db().begin_read()?;
            let files = crate::incidents::transfer::artifact_paths(&txn)?;
            crate::store::backup::backup_snapshot(
                &txn,
                &state.settings.data_dir,
                &state.settings.artifacts_dir,
                &files,
                &out,
            )
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }
}

/// File in `DATA_DIR` naming the server that holds the store (for the CLI to find it).
pub const SERVER_FILE: &str = "server.json";

/// Contents of [`SERVER_FILE`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ServerInfo {
    pub pid: u32,
    pub url: String,
    pub version: String,
}

/// A bound, ready-to-serve sofiia.
pub struct App {
    listener: TcpListener,
    state: AppState,
}

impl App {
    /// Open the store and bind the port (0 = any free port).
    pub async fn build(settings: Settings) -> Result<App> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`App::build`] with an injected clock (tests).
    pub async fn build_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> Result<App> {
        let addr = format!("{}:{}", settings.host, settings.port);
        let state = tokio::task::spawn_blocking(move || AppState::open(settings, clock))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Io(format!("PORT: cannot listen on {addr}: {e}")))?;
        Ok(App { listener, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The rooms (for in-process callers such as tests and the CLI).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serve until `shutdown` resolves; then finish in-flight requests, let queued writes
    /// commit, and close the store.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let state = self.state.clone();
        let marker = state.settings.data_dir.join(SERVER_FILE);
        let info = ServerInfo {
            pid: std::process::id(),
            url: format!("http://{}", self.local_addr()),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        if let Ok(text) = serde_json::to_vec_pretty(&info) {
            let _ = crate::incidents::write_synced(&marker, &text);
        }
        // Audit retention: an hour after start, then hourly (until the jobs room schedules it).
        let purger = {
            let gw = state.gateway.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(
                    tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
                    std::time::Duration::from_secs(3600),
                );
                loop {
                    tick.tick().await;
                    if let Err(e) = gw.purge_expired_audit().await {
                        tracing::warn!(error = %e, "audit_purge_failed");
                    }
                }
            })
        };
        // Indexes build and follow their sources in the background: start-up does not wait.
        let background = [
            state.search.runbooks.spawn(state.closing.subscribe()),
            state
                .search
                .incidents
                .spawn(&state.bus, state.closing.subscribe()),
            state.runner.spawn(state.closing.subscribe()),
        ];
        let router = crate::http::router(self.state);
        // axum waits for requests but not for WebSockets: tell those to close.
        let closing = state.closing.clone();
        let res = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                let _ = closing.send(true);
            })
            .await;
        purger.abort();
        // The indexes finish what they are doing (a long reconcile stops at its next chunk)
        // and let go of the store before it closes.
        let _ = state.closing.send(true);
        state.search.incidents.stop();
        for task in background {
            let _ = task.await;
        }
        let store = state.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        let _ = std::fs::remove_file(&marker);
        tracing::info!("sofiia_stopped");
        res.map_err(|e| Error::Io(e.to_string()))
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown_requested");
}
