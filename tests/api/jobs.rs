//! Governance jobs end to end: the registry over HTTP, the seed's `/v1/tools/jobs` call,
//! permissions on every path, dry runs, catch-up after a gap, housekeeping, and a kill -9
//! during a run.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use sofiia::gateway::auth::issue_key;
use sofiia::kernel::clock::{Clock, ManualClock};
use time::macros::datetime;

use crate::helpers::*;

const OPERATOR_KEY: &str = "operator-test-key-0123456789";

/// Monday 2026-11-30 08:00:30 UTC: the weekly digest's fire has just come.
fn monday() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-11-30 08:00:30 UTC)))
}

/// Wait for a run to finish and return its record.
async fn finished(app: &TestApp, key: Option<&str>, id: &str) -> Value {
    for _ in 0..500 {
        let mut r = app.client.get(app.url(&format!("/api/job-runs/{id}")));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        let (s, v) = split(r.send().await.unwrap()).await;
        assert_eq!(s, 200, "{v}");
        if !matches!(v["status"].as_str(), Some("running" | "queued")) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("run {id} did not finish");
}

async fn run_job(app: &TestApp, task: &str, body: Value) -> Value {
    let (s, v) = app.post(&format!("/api/jobs/{task}/run"), body).await;
    assert_eq!(s, 202, "{v}");
    finished(app, None, v["job_run_id"].as_str().unwrap()).await
}

fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The incident log as exported (file name and sha256 of each file). The audit log is left
/// out on purpose: every tool call is audited, a dry run's too.
fn export(app: &TestApp, out: &Path) -> Vec<(String, String)> {
    use redb::ReadableDatabase;
    let txn = app.state.store.db().begin_read().unwrap();
    sofiia::transfer::export(&txn, &app.state.settings.artifacts_dir, out).unwrap();
    tree(out)
        .into_iter()
        .filter(|(name, _)| name != "audit.jsonl")
        .map(|(name, bytes)| (name, sofiia::kernel::hash::sha256_hex(&bytes)))
        .collect()
}

#[tokio::test]
async fn the_seed_curl_starts_the_weekly_digest_which_writes_both_files() {
    let app = spawn_app_with_clock(monday()).await;
    let a = app.create("gateway", "P1", "Gateway 5xx").await;
    let _ = app.create("router", "P3", "Slow routes").await;
    // As the seed writes it: curl -d with no content type, params nested.
    let (s, v) = app
        .post_raw(
            "/v1/tools/jobs",
            "application/x-www-form-urlencoded",
            r#"{"action":"start_task","params":{"task_id":"weekly_incident_digest","inputs":{}}}"#,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let id = v["result"]["job_run_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("jr_"), "{v}");
    assert_eq!(v["result"]["task_id"], "weekly_incident_digest");
    let run = finished(&app, None, &id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "manual");
    assert_eq!(run["dry_run"], false);
    // The week before Monday 2026-11-30 is ISO week 48.
    let base = "reports/incidents/weekly/2026-W48";
    assert_eq!(
        run["artifacts"],
        json!([format!("{base}.json"), format!("{base}.md")])
    );
    let data = app.data_dir();
    let digest: Value =
        serde_json::from_slice(&std::fs::read(data.join(format!("{base}.json"))).unwrap()).unwrap();
    assert_eq!(digest["incidents"], 2, "{digest}");
    assert_eq!(digest["by_severity"]["P1"], 1);
    assert!(digest.get("markdown").is_none());
    let md = std::fs::read_to_string(data.join(format!("{base}.md"))).unwrap();
    assert!(md.starts_with("# Incident digest 2026-W48"), "{md}");
    assert!(
        run["summary"].as_str().unwrap().contains("2 incidents"),
        "{run}"
    );
    // The job's tool call is audited with its job_run_id.
    let (_, audit) = app.get("/api/audit?tool=incident_intelligence_tool").await;
    let rec = &audit["items"][0];
    assert_eq!(rec["job_run_id"], id.as_str(), "{audit}");
    assert_eq!(rec["agent_id"], "scheduler");
    assert!(!a.is_empty());
    // A re-run for the same week replaces the files; it does not add more.
    let again = run_job(&app, "weekly_incident_digest", json!({})).await;
    assert_eq!(again["status"], "succeeded");
    let files = tree(&data.join("reports/incidents/weekly"));
    assert_eq!(
        files.len(),
        2,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    // The console reads them back through reports_tool.
    let (s, v) = app.get("/api/reports").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["reports"],
        json!([{"kind": "incidents_weekly", "period": "2026-W48",
            "path": base, "formats": ["json", "md"],
            "bytes": files.iter().map(|f| f.1.len()).sum::<usize>()}])
    );
    let (s, v) = app.get("/api/reports/incidents/weekly/2026-W48").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["markdown"].as_str().unwrap(), md);
    assert_eq!(v["json"]["incidents"], 2);
    assert_error(
        &app.get("/api/reports/risk/..%2F..%2Fagent_keys.yml").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/reports/risk/2026-01-01").await,
        404,
        "not_found",
    );
    #[cfg(unix)]
    {
        // A link planted under reports/ is not followed, in the list or when read.
        let secret = app.dir.path().join("secret.md");
        std::fs::write(&secret, "# not a report\n").unwrap();
        std::fs::create_dir_all(data.join("reports/risk")).unwrap();
        std::os::unix::fs::symlink(&secret, data.join("reports/risk/2026-01-02.md")).unwrap();
        assert_error(
            &app.get("/api/reports/risk/2026-01-02").await,
            422,
            "unreadable_report",
        );
        let (_, v) = app.get("/api/reports?kind=risk").await;
        assert_eq!(v["reports"], json!([]), "{v}");
    }
    assert_error(
        &app.get("/api/reports?kind=secrets").await,
        422,
        "invalid_field",
    );
}

#[tokio::test]
async fn the_registry_lists_each_job_with_its_next_five_fires_and_last_run() {
    let app = spawn_app_with_clock(monday()).await;
    let (s, v) = app.get("/api/jobs").await;
    assert_eq!(s, 200, "{v}");
    let tasks = v["tasks"].as_array().unwrap();
    let ids: Vec<&str> = tasks.iter().map(|t| t["id"].as_str().unwrap()).collect();
    for id in [
        "alert_triage",
        "hourly_risk_snapshot",
        "daily_risk_digest",
        "weekly_platform_priority_digest",
        "weekly_backlog_generate",
        "weekly_incident_digest",
        "audit_cleanup",
        "run_ttl_cleanup",
        "backup",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let digest = tasks
        .iter()
        .find(|t| t["id"] == "weekly_incident_digest")
        .unwrap();
    assert_eq!(digest["schedule"]["cron"], "0 8 * * 1");
    assert_eq!(digest["schedule"]["tz"], "UTC");
    assert_eq!(
        digest["next_fires"],
        json!([
            "2026-12-07T08:00:00Z",
            "2026-12-14T08:00:00Z",
            "2026-12-21T08:00:00Z",
            "2026-12-28T08:00:00Z",
            "2027-01-04T08:00:00Z"
        ])
    );
    assert_eq!(digest["catch_up"], "once");
    assert_eq!(digest["overlap"], "skip");
    let run = run_job(&app, "weekly_incident_digest", json!({"dry_run": true})).await;
    let (_, v) = app.get("/api/jobs").await;
    let digest = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "weekly_incident_digest")
        .unwrap()
        .clone();
    let _ = run;
    // Dry runs are not stored: the last stored run is still none.
    assert_eq!(digest["status"], "never_run", "{digest}");
    let real = run_job(&app, "weekly_incident_digest", json!({})).await;
    let (_, v) = app.get("/api/jobs/weekly_incident_digest/runs").await;
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(
        runs.len(),
        2,
        "the dry run is listed beside the stored one: {v}"
    );
    assert_eq!(runs[0]["id"], real["id"]);
    assert_error(&app.get("/api/jobs/nope/runs").await, 404, "not_found");
    assert_error(
        &app.post("/api/jobs/nope/run", json!({})).await,
        404,
        "not_found",
    );
    assert_error(
        &app.post(
            "/api/jobs/backup/run",
            json!({"inputs": {"keep_last": "many"}}),
        )
        .await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.post("/api/jobs/backup/run", json!({"inputs": {"rm": "-rf"}}))
            .await,
        422,
        "invalid_field",
    );
    for bad in [
        json!({"inputs": {"keep_last": 0}}),
        json!({"inputs": {"keep_last": 1001}}),
    ] {
        let got = app.post("/api/jobs/backup/run", bad).await;
        assert_error(&got, 422, "invalid_field");
        assert!(
            got.1["error"]["message"]
                .as_str()
                .unwrap()
                .contains("from 1 to 1000"),
            "{}",
            got.1
        );
    }
    assert_eq!(app.post("/api/jobs/backup/run", json!([])).await.0, 422);
    let (_, v) = app.get("/api/jobs/backup/runs").await;
    assert_eq!(v["runs"], json!([]), "refused starts record nothing: {v}");
    // A page holds at most `limit` runs, dry runs included; a cursor of another task is refused.
    let (_, v) = app
        .get("/api/jobs/weekly_incident_digest/runs?limit=1")
        .await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
    let other = app
        .get(&format!(
            "/api/jobs/backup/runs?before={}",
            real["id"].as_str().unwrap()
        ))
        .await;
    assert_error(&other, 422, "invalid_field");
    assert_error(
        &app.get("/api/job-runs/jr_nope").await,
        422,
        "invalid_field",
    );
    assert_error(
        &app.get("/api/job-runs/jr_00000000000000000000").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn permissions_apply_to_the_api_and_the_tool_including_a_403_for_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let monitor = issue_key(&data, "monitor", None).unwrap().0;
    let helion = issue_key(&data, "helion", None).unwrap().0;
    let app = spawn_configured(dir, monday(), |s| {
        s.console_api_key = Some(OPERATOR_KEY.into());
    })
    .await;
    let post = |key: String, path: &'static str, body: Value| {
        let r = app.client.post(app.url(path)).bearer_auth(key).json(&body);
        async move { split(r.send().await.unwrap()).await }
    };
    let start = json!({"action":"start_task","params":{"task_id":"weekly_incident_digest"}});
    // monitor: may look, may not start — through the tool and through the API.
    assert_error(
        &post(monitor.clone(), "/v1/tools/jobs", start.clone()).await,
        403,
        "forbidden",
    );
    assert_error(
        &post(
            monitor.clone(),
            "/api/jobs/weekly_incident_digest/run",
            json!({}),
        )
        .await,
        403,
        "forbidden",
    );
    let (s, v) = post(
        monitor.clone(),
        "/v1/tools/jobs",
        json!({"action":"list_tasks"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let r = app
        .client
        .get(app.url("/api/jobs"))
        .bearer_auth(&monitor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // helion (agent_oncall) may start the digest, but not a CTO-only task.
    let (s, v) = post(helion.clone(), "/v1/tools/jobs", start).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["result"]["run"]["trigger"], "tool");
    assert_eq!(v["result"]["run"]["requested_by"], "agent:helion");
    let id = v["result"]["job_run_id"].as_str().unwrap().to_string();
    assert_eq!(
        finished(&app, Some(&helion), &id).await["status"],
        "succeeded"
    );
    let denied = post(
        helion.clone(),
        "/v1/tools/job_orchestrator_tool",
        json!({"action":"start_task","params":{"task_id":"weekly_platform_priority_digest"}}),
    )
    .await;
    assert_error(&denied, 403, "job_permission");
    assert!(denied.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("agent_cto"));
    // helion may not cancel what it may not start, even a finished run (403, not 409).
    let r = app
        .client
        .post(app.url("/api/jobs/backup/run"))
        .bearer_auth(OPERATOR_KEY)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let backup: Value = r.json().await.unwrap();
    let bid = backup["job_run_id"].as_str().unwrap().to_string();
    finished(&app, Some(OPERATOR_KEY), &bid).await;
    let refused = post(
        helion.clone(),
        "/v1/tools/jobs",
        json!({"action":"cancel_task","params":{"job_run_id": bid}}),
    )
    .await;
    assert_error(&refused, 403, "job_permission");
    // Nothing was started by the refused calls: one run in all.
    let (_, v) = post(
        helion,
        "/v1/tools/jobs",
        json!({"action":"task_runs","params":{"task_id":"weekly_platform_priority_digest"}}),
    )
    .await;
    assert_eq!(v["result"]["runs"], json!([]), "{v}");
    // Without a key, nothing at all.
    let r = app.client.get(app.url("/api/jobs")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_dry_run_leaves_store_and_files_byte_identical_and_predicts_the_real_run() {
    let app = spawn_app_with_clock(monday()).await;
    for (svc, sev) in [("gateway", "P1"), ("gateway", "P1"), ("db", "P0")] {
        app.create(svc, sev, "Errors").await;
    }
    let before = export(&app, &app.dir.path().join("exp1"));
    let runs_before = app.get("/api/jobs/weekly_incident_digest/runs").await.1;
    let dry = run_job(&app, "weekly_incident_digest", json!({"dry_run": true})).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["artifacts"], json!([]));
    let would = dry["would_write"].as_array().unwrap();
    assert_eq!(would.len(), 2, "{dry}");
    assert!(!app.data_dir().join("reports/incidents").exists());
    assert_eq!(export(&app, &app.dir.path().join("exp2")), before);
    let (_, st) = app.get("/api/jobs").await;
    let t = st["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "weekly_incident_digest")
        .unwrap()
        .clone();
    assert!(t["last_run"].is_null(), "{t}");
    let _ = runs_before;
    // The real run writes exactly what the dry run said.
    let real = run_job(&app, "weekly_incident_digest", json!({})).await;
    assert_eq!(real["status"], "succeeded");
    for w in would {
        let bytes = std::fs::read(app.data_dir().join(w["path"].as_str().unwrap())).unwrap();
        assert_eq!(bytes.len() as u64, w["bytes"].as_u64().unwrap());
        assert_eq!(
            sofiia::kernel::hash::sha256_hex(&bytes),
            w["sha256"].as_str().unwrap()
        );
    }
    // Housekeeping dry runs change nothing either.
    let b = run_job(&app, "backup", json!({"dry_run": true})).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert!(b["result"]["would_create"]
        .as_str()
        .unwrap()
        .starts_with("backups/job-backup-"));
    assert!(!app.data_dir().join("backups").exists());
}

#[tokio::test]
async fn a_three_day_gap_becomes_one_catch_up_run_marked_with_what_it_stands_for() {
    let clock = monday();
    let app = spawn_app_with_clock(clock.clone()).await;
    // The server's first check records where each schedule starts.
    app.state.jobs.tick().await.unwrap();
    clock.advance(time::Duration::days(3) + time::Duration::minutes(3));
    app.state.jobs.tick().await.unwrap();
    app.state.jobs.tick().await.unwrap();
    let (_, v) = app.get("/api/jobs/alert_triage/runs").await;
    let runs = v["runs"].as_array().unwrap().clone();
    assert_eq!(runs.len(), 1, "{v}");
    let run = finished(&app, None, runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(run["trigger"], "catch_up");
    assert_eq!(run["status"], "succeeded");
    // Every 5 minutes from 08:05 on Monday to 08:00 on Thursday: 864 fires.
    assert_eq!(run["missed"]["count"], 864, "{run}");
    assert_eq!(run["missed"]["first"], "2026-11-30T08:05:00Z");
    assert_eq!(run["missed"]["last"], "2026-12-03T08:00:00Z");
    assert_eq!(run["missed"]["reason"], "missed while asleep");
    assert_eq!(
        run["summary"],
        "0 alert(s) triaged: 0 incident(s) opened, 0 updated, 0 resolved"
    );
    let (_, v) = app.get("/api/jobs").await;
    let t = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "alert_triage")
        .unwrap()
        .clone();
    assert_eq!(t["last_missed"]["count"], 864);
    assert_eq!(t["last_fire"], "2026-12-03T08:00:00Z");
    // The weekly digest (Mondays) had no fire in the gap: nothing ran for it.
    let (_, v) = app.get("/api/jobs/weekly_incident_digest/runs").await;
    assert_eq!(v["runs"], json!([]));
}

#[tokio::test]
async fn audit_cleanup_keeps_denials_longer_than_successes() {
    let clock = monday();
    let app = spawn_app_with_clock(clock.clone()).await;
    app.create("gateway", "P2", "kept?").await;
    // In open dev mode the role comes from agent_id: monitor may not create.
    let (s, _) = app
        .post(
            "/v1/tools/execute",
            json!({"tool":"oncall_tool","action":"incident_create","agent_id":"monitor",
                "params":{"service":"x","severity":"P2","title":"no"}}),
        )
        .await;
    assert_eq!(s, 403);
    clock.advance(time::Duration::days(100));
    let r = run_job(&app, "audit_cleanup", json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["result"]["removed"], 1, "{r}");
    assert_eq!(r["result"]["removed_denied"], 0);
    assert_eq!(r["result"]["kept_denied"], 1);
    let (_, audit) = app.get("/api/audit?decision=deny").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    clock.advance(time::Duration::days(300));
    let r = run_job(&app, "audit_cleanup", json!({})).await;
    assert_eq!(r["result"]["removed_denied"], 1, "{r}");
    assert_eq!(r["result"]["kept_denied"], 0);
    let (_, audit) = app.get("/api/audit?decision=deny").await;
    assert_eq!(audit["items"], json!([]));
}

#[tokio::test]
async fn backup_keeps_its_last_n_snapshots_and_never_touches_others() {
    let clock = monday();
    let app = spawn_app_with_clock(clock.clone()).await;
    app.create("gateway", "P2", "backed up").await;
    let (s, v) = app.post("/api/admin/backup", json!({"name": "mine"})).await;
    assert_eq!(s, 201, "{v}");
    let mut made = Vec::new();
    for _ in 0..3 {
        let r = run_job(&app, "backup", json!({"inputs": {"keep_last": 2}})).await;
        assert_eq!(r["status"], "succeeded", "{r}");
        made.push(r["result"]["created"]["path"].as_str().unwrap().to_string());
        clock.advance(time::Duration::seconds(1));
    }
    let mut left: Vec<String> = std::fs::read_dir(app.data_dir().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    left.sort();
    assert_eq!(
        left,
        vec![
            "job-backup-20261130-080031".to_string(),
            "job-backup-20261130-080032".to_string(),
            "mine".to_string()
        ]
    );
    assert_eq!(made[0], "backups/job-backup-20261130-080030");
    // A snapshot restores: it holds the incident.
    let snap = app.data_dir().join("backups/job-backup-20261130-080032");
    assert!(snap.join(sofiia::store::DB_FILE).exists());
    let r = run_job(&app, "run_ttl_cleanup", json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["result"]["expired"], 0);
    assert_eq!(clock.now().year(), 2026);
}

#[tokio::test]
async fn a_kill_9_during_a_run_leaves_it_interrupted_and_the_next_start_does_not_rerun_it() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let start = |hold: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sofiia"))
            .current_dir(dir.path())
            .env("DATA_DIR", dir.path().join("data"))
            .env("PORT", "0")
            .env("RUST_LOG", "warn")
            .env("SOFIIA_JOB_HOLD_MS", hold)
            .env_remove("CONFIG_DIR")
            .env_remove("SOFIIA_CONSOLE_API_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = lines.next().unwrap().unwrap();
        let base = line.rsplit(' ').next().unwrap().to_string();
        std::thread::spawn(move || for _ in lines {});
        (child, base)
    };
    let client = sofiia::net::client();
    let (mut child, base) = start("60000");
    let r = client
        .post(format!("{base}/api/jobs/backup/run"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, v) = split(r).await;
    assert_eq!(s, 202, "{v}");
    let id = v["job_run_id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "running");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (mut child, base) = start("0");
    let (s, run) = split(
        client
            .get(format!("{base}/api/job-runs/{id}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{run}");
    assert_eq!(run["status"], "interrupted", "{run}");
    assert!(
        run["error"].as_str().unwrap().contains("not re-run"),
        "{run}"
    );
    // Give a scheduler that wrongly re-ran it the time to do so: still one run, no snapshot.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_, v) = split(
        client
            .get(format!("{base}/api/jobs/backup/runs"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(v["runs"].as_array().unwrap().len(), 1, "{v}");
    assert!(!dir.path().join("data/backups").exists());
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn job_commands_work_from_the_shell_with_permissions() {
    use std::process::Command;
    let dir = tempfile::tempdir().unwrap();
    let sofiia = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_sofiia"))
            .current_dir(dir.path())
            .env("DATA_DIR", dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .env_remove("CONFIG_DIR")
            .env_remove("SOFIIA_CONSOLE_API_KEY")
            .args(args)
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| {
        (
            String::from_utf8_lossy(&o.stdout).to_string(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let o = sofiia(&["job", "list"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        out.lines().filter(|l| !l.starts_with(' ')).count(),
        9,
        "{out}"
    );
    assert!(
        out.contains("weekly_incident_digest") && out.contains("(0 8 * * 1 UTC)"),
        "{out}"
    );
    let o = sofiia(&["job", "run", "weekly_incident_digest", "--dry-run"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("(dry run)") && out.contains("would write reports/incidents/weekly/"),
        "{out}"
    );
    assert!(!dir.path().join("data/reports").exists());
    let o = sofiia(&["job", "run", "weekly_incident_digest", "--agent", "monitor"]);
    let (_, err) = text(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("may not call job_orchestrator_tool.start_task"),
        "{err}"
    );
    let o = sofiia(&["job", "run", "backup", "--input", "keep_last=lots"]);
    let (_, err) = text(&o);
    assert!(
        !o.status.success() && err.contains("inputs.keep_last"),
        "{err}"
    );
    let o = sofiia(&["job", "run", "backup", "--input", "keep_last=1", "--json"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let run: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["inputs"]["keep_last"], 1);
}

#[tokio::test]
async fn the_risk_and_backlog_jobs_on_a_seeded_history() {
    let clock = fixed_clock(); // Monday 2026-03-02 12:00
    let app = spawn_app_with_clock(clock.clone()).await;
    let seeded = crate::risk::seed(&app, &clock).await;
    // router scores 53 (high) and search 0 (tests/api/risk.rs works them out).
    let r = run_job(&app, "hourly_risk_snapshot", json!({})).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert_eq!(r["result"]["services"], 2);
    assert_eq!(r["result"]["written"], 2);
    assert_eq!(
        r["result"]["high_or_critical"],
        json!([{"service": "router", "score": 53, "band": "high"}])
    );
    assert_eq!(
        r["summary"],
        "recorded scores of 2 services (1 high or critical)"
    );
    let (_, h) = app.get("/api/risk/router/history?days=1").await;
    assert_eq!(h.to_string().matches("\"score\":53").count(), 1, "{h}");
    // A dry run records nothing more.
    let dry = run_job(&app, "hourly_risk_snapshot", json!({"dry_run": true})).await;
    assert_eq!(dry["result"]["written"], 0, "{dry}");
    let (_, h2) = app.get("/api/risk/router/history?days=1").await;
    assert_eq!(h, h2);

    let d = run_job(&app, "daily_risk_digest", json!({})).await;
    assert_eq!(d["status"], "succeeded", "{d}");
    assert_eq!(
        d["artifacts"],
        json!(["reports/risk/2026-03-02.json", "reports/risk/2026-03-02.md"])
    );
    let md = std::fs::read_to_string(app.data_dir().join("reports/risk/2026-03-02.md")).unwrap();
    assert!(md.contains("| router | 53 | high |"), "{md}");
    let p = run_job(&app, "weekly_platform_priority_digest", json!({})).await;
    assert_eq!(p["status"], "succeeded", "{p}");
    let week = p["result"]["week"].as_str().unwrap().to_string();
    let pj: Value = serde_json::from_slice(
        &std::fs::read(app.data_dir().join(format!("reports/platform/{week}.json"))).unwrap(),
    )
    .unwrap();
    assert!(pj["pressure"].is_array(), "{pj}");

    // The backlog: a dry run writes nothing; two real runs make the items once.
    let dry = run_job(&app, "weekly_backlog_generate", json!({"dry_run": true})).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    let (_, l) = app.get("/api/backlog").await;
    assert_eq!(l["total"], 0, "{l}");
    let first = run_job(&app, "weekly_backlog_generate", json!({})).await;
    let keys: Vec<String> = first["result"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap().to_string())
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("followup:{}:", seeded.b))),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"recurrence:router:router # rate #".to_string()),
        "{keys:?}"
    );
    assert_eq!(
        dry["result"]["created"].as_array().unwrap().len(),
        keys.len(),
        "the dry run said what the run made"
    );
    let (_, l) = app.get("/api/backlog").await;
    let total = l["total"].as_u64().unwrap();
    assert_eq!(total as usize, keys.len());
    let again = run_job(&app, "weekly_backlog_generate", json!({})).await;
    assert_eq!(again["result"]["created"], json!([]), "{again}");
    let (_, l) = app.get("/api/backlog").await;
    assert_eq!(l["total"].as_u64().unwrap(), total, "a re-run adds nothing");
    // A week later the same findings are the same items (new findings may add new ones).
    clock.advance(time::Duration::days(7));
    let later = run_job(&app, "weekly_backlog_generate", json!({})).await;
    let made: Vec<&str> = later["result"]["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert!(made.iter().all(|k| !keys.iter().any(|x| x == k)), "{later}");
    let (_, l) = app.get("/api/backlog").await;
    assert_eq!(
        l["total"].as_u64().unwrap(),
        total + made.len() as u64,
        "no duplicates a week later"
    );
    let _ = seeded.a;
}
