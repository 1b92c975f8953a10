//! Serving: [`App`] binds the port, serves the router of [`crate::http`] through the edge of
//! [`crate::http::edge`] until a shutdown signal, then drains requests (dropping stalled
//! connections after the grace period), stops the background tasks and closes the store.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::app::AppState;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::kernel::clock::{Clock, SystemClock};

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
            let _ = crate::kernel::fs::write_synced(&marker, &text);
        }
        // Indexes build and follow their sources in the background: start-up does not wait.
        let background = [
            state.search.runbooks.spawn(state.closing.subscribe()),
            state
                .search
                .incidents
                .spawn(&state.bus, state.closing.subscribe()),
            state.runner.spawn(state.closing.subscribe()),
            // Governance and housekeeping jobs (task_registry.yml) run from here on.
            state.jobs.spawn(state.closing.subscribe()),
        ];
        let router = crate::http::router(self.state);
        // WebSockets close when `closing` is set; what is still open after the grace is dropped.
        let closing = state.closing.clone();
        crate::http::edge::serve(self.listener, router, &state.settings.edge, async move {
            shutdown.await;
            let _ = closing.send(true);
        })
        .await;
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
        Ok(())
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
