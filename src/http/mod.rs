//! The axum router: routes per room, JSON errors for every failure, request logs, the UI.

pub mod alerts;
pub mod backlog;
pub mod edge;
pub mod error;
pub mod extract;
pub mod graphs;
pub mod guard;
pub mod incidents;
pub mod jobs;
pub mod risk;
pub mod runbooks;
pub mod tools;
pub mod ui;
pub mod ws;

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::error::{Error, Result};
use extract::OptionalJson;

/// The rooms (console tabs) this build serves, in the order the console lists them.
pub const ROOMS: &[&str] = &[
    "overview",
    "incidents",
    "ops",
    "runbooks",
    "alerts",
    "jobs",
    "reports",
    "events",
    "settings",
];

/// Body limit for ordinary JSON endpoints.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Body limit for artifact uploads (2 MB of content, escaped or base64-encoded).
pub const ARTIFACT_BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Build the whole router over `state`.
pub fn router(state: AppState) -> Router {
    let guard = std::sync::Arc::new(guard::Guard::new(&state.settings));
    let artifacts = Router::new()
        .route(
            "/api/incidents/{id}/artifacts",
            get(incidents::list_artifacts).post(incidents::attach_artifact),
        )
        .layer(DefaultBodyLimit::max(ARTIFACT_BODY_LIMIT));
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/api/health", get(api_health))
        .route(
            "/api/incidents",
            get(incidents::list).post(incidents::create),
        )
        .route(
            "/api/incidents/{id}",
            get(incidents::get).patch(incidents::update),
        )
        .route("/api/incidents/{id}/related", get(incidents::related))
        .route("/api/incidents/{id}/close", post(incidents::close))
        .route("/api/incidents/{id}/reopen", post(incidents::reopen))
        .route(
            "/api/incidents/{id}/events",
            get(incidents::events).post(incidents::append_event),
        )
        .route(
            "/api/incidents/{id}/followups/{event_id}/close",
            post(incidents::close_followup),
        )
        .route(
            "/api/incidents/{id}/artifacts/{name}",
            get(incidents::download_artifact),
        )
        .route("/api/incidents/stats", get(incidents::stats))
        .route("/api/incidents/services", get(incidents::services))
        .route("/api/events/recent", get(incidents::recent_events))
        .route("/api/followups/summary", get(incidents::followups_summary))
        .route("/api/followups", get(incidents::followups))
        .route("/api/risk", get(risk::top))
        .route("/api/risk/{service}", get(risk::service))
        .route("/api/risk/{service}/history", get(risk::history))
        .route("/api/alerts", get(alerts::list).post(alerts::ingest))
        .route("/api/alerts/alertmanager", post(alerts::alertmanager))
        .route("/api/alerts/stats", get(alerts::stats))
        .route("/api/alerts/ack", post(alerts::ack))
        .route("/api/alerts/triage", post(alerts::triage))
        .route(
            "/api/alerts/silences",
            get(alerts::silences).post(alerts::silence),
        )
        .route("/api/alerts/silences/{id}/expire", post(alerts::unsilence))
        .route("/api/alerts/{fingerprint}", get(alerts::get))
        .route("/api/backlog", get(backlog::list))
        .route("/api/backlog/{id}", axum::routing::patch(backlog::update))
        .route("/api/runbooks", get(runbooks::list))
        .route("/api/runbooks/search", get(runbooks::search))
        .route("/api/runbooks/reindex", post(runbooks::reindex))
        .route("/api/runbooks/{*path}", get(runbooks::get))
        .route("/api/admin/backup", post(admin_backup))
        .route("/api/audit", get(tools::audit))
        .route("/api/jobs", get(jobs::list))
        .route("/api/jobs/{id}/runs", get(jobs::runs))
        .route("/api/jobs/{id}/run", post(jobs::run))
        .route("/api/job-runs/{id}", get(jobs::get))
        .route("/api/job-runs/{id}/cancel", post(jobs::cancel))
        .route("/api/reports", get(jobs::reports))
        .route("/api/reports/{*path}", get(jobs::report))
        .route("/ws/events", get(ws::events))
        .layer(DefaultBodyLimit::max(BODY_LIMIT));
    let tool_calls = Router::new()
        .route("/v1/tools", get(tools::list))
        .route("/v1/tools/execute", post(tools::execute))
        .route("/v1/tools/{tool}", post(tools::execute_short))
        .route("/v1/graphs", get(graphs::graphs))
        .route("/v1/graphs/{name}/runs", post(graphs::start))
        .route("/v1/runs", get(graphs::list))
        .route("/v1/runs/{id}", get(graphs::get))
        .route("/v1/runs/{id}/events", get(graphs::events))
        .route("/v1/runs/{id}/cancel", post(graphs::cancel))
        .route("/v1/requeue", get(graphs::requeue_list))
        .route("/v1/requeue/{id}/resolve", post(graphs::requeue_resolve))
        .layer(DefaultBodyLimit::max(ARTIFACT_BODY_LIMIT));
    Router::new()
        .merge(api)
        .merge(artifacts)
        .merge(tool_calls)
        .route("/", get(ui::index))
        .route("/assets/{version}/{*path}", get(ui::asset))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ))
        .layer(cors(&guard))
        // Foreign web pages and rebound names are refused before anything else runs.
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            guard::guard,
        ))
        // Inside the request log: a panic's answer carries the request's id too.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn(log_requests))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler_panicked");
    Error::Internal("the request failed unexpectedly".into()).into_response()
}

async fn log_requests(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // The matched route, not the raw path: paths carry ids and names callers chose.
    // Query strings and bodies are never logged.
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| {
            if req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/v1/") {
                "(unmatched)".into()
            } else {
                "(static)".into()
            }
        });
    let id = error::new_request_id();
    let mut res = error::REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    let status = res.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if path == "/healthz" || path == "/api/health" {
        tracing::debug!(%method, %path, status, elapsed_ms, request_id = %id, "http");
    } else {
        tracing::info!(%method, %path, status, elapsed_ms = format!("{elapsed_ms:.2}"), request_id = %id, "http");
    }
    res
}

/// CORS: browsers may read answers from the origins the guard allows (loopback origins and
/// `CORS_ORIGINS`); the console's own page is same-origin and needs no CORS headers.
fn cors(guard: &std::sync::Arc<guard::Guard>) -> tower_http::cors::CorsLayer {
    use axum::http::{header, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let g = guard.clone();
    CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("x-api-key"),
        ])
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origin.to_str().is_ok_and(|o| g.cors_allowed(o))
        }))
}

/// When keys are required (prod, or an operator key is configured), every endpoint but the
/// health checks needs one. Tool calls accept agent keys (the gateway checks them); every
/// other endpoint is the operator's console and needs the operator key.
async fn require_key(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    // The console's static files hold no data (its API calls carry the key); health checks
    // must work for monitors without one.
    let static_ui =
        !path.starts_with("/api/") && !path.starts_with("/v1/") && !path.starts_with("/ws");
    let exempt = static_ui || matches!(path, "/healthz" | "/api/health" | "/metrics");
    if exempt {
        return next.run(req).await;
    }
    // The supervisor API: SUPERVISOR_INTERNAL_KEY when set (or the operator's key).
    let supervisor = path.starts_with("/v1/graphs")
        || path.starts_with("/v1/runs")
        || path.starts_with("/v1/requeue");
    if supervisor {
        if let Some(internal) = &s.settings.supervisor_internal_key {
            let presented = tools::presented_key(req.headers());
            if presented
                .as_deref()
                .is_some_and(|k| crate::gateway::auth::key_matches(k, internal))
            {
                return next.run(req).await;
            }
            return match s.gateway.authenticate(presented.as_deref()) {
                Ok(crate::gateway::auth::Principal::Operator) if s.gateway.auth_required() => {
                    next.run(req).await
                }
                _ => Error::Unauthorized(
                    "this endpoint needs SUPERVISOR_INTERNAL_KEY (Authorization: Bearer …)".into(),
                )
                .into_response(),
            };
        }
    }
    if !s.gateway.auth_required() {
        return next.run(req).await;
    }
    // Tool calls and the audit log take any valid key (the gateway and the handler decide
    // what it may do); it is checked here, before a body is read.
    let any_key = path.starts_with("/v1/tools")
        || path == "/api/audit"
        || path == "/api/alerts"
        || path.starts_with("/api/alerts/")
        || path.starts_with("/api/jobs")
        || path.starts_with("/api/job-runs/")
        || path.starts_with("/api/reports");
    let key = if path.starts_with("/ws") {
        tools::presented_ws_key(req.headers(), req.uri().query())
    } else {
        tools::presented_key(req.headers())
    };
    match s.gateway.authenticate(key.as_deref()) {
        Ok(crate::gateway::auth::Principal::Operator) => next.run(req).await,
        Ok(_) if any_key => next.run(req).await,
        Ok(_) => Error::Forbidden {
            code: "forbidden",
            message: "this endpoint needs the operator key".into(),
        }
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"error": {"code": "method_not_allowed", "message": "this endpoint does not accept that method"}})),
    )
        .into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    // A store that refuses writes (e.g. after a full disk) is not healthy: monitors must see it.
    if s.store.writer_stats().failed {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "failed",
                "service": "sofiia",
                "store": "refusing writes after a failed write; free the disk if it is full, then restart sofiia (the log is replayed, nothing acknowledged is lost)",
            })),
        )
            .into_response();
    }
    Json(json!({
        "status": "ok",
        "service": "sofiia",
        "version": env!("CARGO_PKG_VERSION"),
        "build_id": s.settings.build_id,
        "env": s.settings.env.as_str(),
        "graphs": s.runner.graph_names(),
        "state_backend": "redb",
        "uptime_s": s.started.elapsed().as_secs(),
    }))
    .into_response()
}

async fn api_health(State(s): State<AppState>) -> Response {
    Json(json!({
        "status": "ok",
        "service": "sofiia-console",
        "version": env!("CARGO_PKG_VERSION"),
        "build_id": s.settings.build_id,
        "env": s.settings.env.as_str(),
        // The rooms this build has: the console shows a tab for each and hides the rest.
        "rooms": ROOMS,
        "auth_required": s.gateway.auth_required(),
        "ui_version": ui::assets_version(),
    }))
    .into_response()
}

/// Body of `POST /api/admin/backup`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    /// Folder name under `DATA_DIR/backups/` (default: a UTC timestamp).
    name: Option<String>,
}

async fn admin_backup(
    State(s): State<AppState>,
    OptionalJson(body): OptionalJson<BackupBody>,
) -> Result<Response> {
    let name = match body.and_then(|b| b.name) {
        Some(n) => {
            let ok = !n.is_empty()
                && n.len() <= 100
                && !n.starts_with('.')
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            if !ok {
                return Err(Error::invalid(
                    "name",
                    "use 1-100 of A-Z a-z 0-9 . _ - (not starting with .)",
                ));
            }
            n
        }
        None => {
            let fmt =
                time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
            s.clock
                .now()
                .format(&fmt)
                .unwrap_or_else(|_| "backup".into())
        }
    };
    let report = s.backup_to(&name).await?;
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

async fn fallback(uri: Uri, headers: axum::http::HeaderMap) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/v1/") || path.contains("..") {
        return Error::NotFound(format!("no endpoint {path}")).into_response();
    }
    ui::other(&headers, path.trim_start_matches('/'))
}
