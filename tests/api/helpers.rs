//! Shared test harness: `spawn_app()` starts sofiia in-process on port 0 with its own data dir.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};
use sofiia::config::Settings;
use sofiia::kernel::clock::{Clock, ManualClock, SystemClock};
use sofiia::server::App;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    pub state: sofiia::app::AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn settings_for(data_dir: &Path) -> Settings {
    Settings::ephemeral(data_dir, "test")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Arc::new(SystemClock)).await
}

pub async fn spawn_app_with_clock(clock: Arc<ManualClock>) -> TestApp {
    spawn_app_with(clock).await
}

async fn spawn_app_with(clock: Arc<dyn Clock>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    spawn_in(dir, clock).await
}

/// Start a server on an existing data dir.
pub async fn spawn_in(dir: tempfile::TempDir, clock: Arc<dyn Clock>) -> TestApp {
    spawn_configured(dir, clock, |_| {}).await
}

/// Start a server after adjusting its settings (config dir, keys, env…).
pub async fn spawn_configured(
    dir: tempfile::TempDir,
    clock: Arc<dyn Clock>,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_prepared(dir, clock, adjust, |_| {}).await
}

/// Start a server, letting `prepare` see its rooms before it serves (e.g. to register test
/// graphs before interrupted runs resume).
pub async fn spawn_prepared(
    dir: tempfile::TempDir,
    clock: Arc<dyn Clock>,
    adjust: impl FnOnce(&mut Settings),
    prepare: impl FnOnce(&sofiia::app::AppState),
) -> TestApp {
    let mut settings = settings_for(&dir.path().join("data"));
    adjust(&mut settings);
    let app = App::build_with_clock(settings, clock).await.unwrap();
    prepare(app.state());
    let base = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base,
        client: sofiia::net::client(),
        dir,
        state,
        stop: Some(tx),
        task: Some(task),
    }
}

impl TestApp {
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stop the server gracefully and hand back its folder.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.unwrap();
        split(r).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        split(r).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .patch(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        split(r).await
    }

    /// POST a raw body with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        ctype: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("content-type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        split(r).await
    }

    /// Create an incident and return its id.
    pub async fn create(&self, service: &str, severity: &str, title: &str) -> String {
        let (s, v) = self
            .post(
                "/api/incidents",
                json!({"service": service, "severity": severity, "title": title, "env": "prod"}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Total incidents visible through the list API (pages through everything).
    pub async fn count_all(&self) -> usize {
        let mut n = 0;
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/incidents?limit=500&cursor={c}"),
                None => "/api/incidents?limit=500".into(),
            };
            let (s, v) = self.get(&q).await;
            assert_eq!(s, 200, "{v}");
            n += v["items"].as_array().unwrap().len();
            match v["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return n,
            }
        }
    }
}

pub async fn split(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Assert the JSON error envelope with the given status and code.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

pub fn fixed_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        time::macros::datetime!(2026-03-02 12:00 UTC),
    ))
}

/// Make a stopped app's store look like one written by an older build: drop `tables` (those
/// the steps after `version` add) and record `version` as the store's schema.
pub fn rewind_schema(dir: &tempfile::TempDir, version: u32, tables: &[&str]) {
    let db = redb::Database::open(dir.path().join("data").join("sofiia.redb")).unwrap();
    let txn = db.begin_write().unwrap();
    for t in tables {
        let gone = txn
            .delete_table(redb::TableDefinition::<(), ()>::new(t))
            .unwrap();
        assert!(gone, "the store has no table {t}");
    }
    txn.open_table(sofiia::store::META)
        .unwrap()
        .insert("schema_version", version.to_string().as_str())
        .unwrap();
    txn.commit().unwrap();
}

/// `sofiia import` of the export-layout folder `src` into `dir`'s data dir (a fresh store),
/// before a server starts on it.
pub fn import_into(dir: &tempfile::TempDir, src: &Path) -> sofiia::transfer::ImportReport {
    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let report = std::thread::scope(|s| {
        s.spawn(|| sofiia::transfer::import(&store, &data.join("incidents"), src))
            .join()
            .unwrap()
    })
    .unwrap();
    store.shutdown();
    drop(store);
    report
}

/// A config folder under `dir` whose `observability_sources.yml` is `yml` (the other files
/// take their defaults).
pub fn sources_config(dir: &Path, yml: &str) -> PathBuf {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("observability_sources.yml"), yml).unwrap();
    config
}
