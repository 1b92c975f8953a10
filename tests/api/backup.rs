use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;
use sofiia::kernel::clock::SystemClock;
use sofiia::store::backup::restore;

use crate::helpers::*;

/// Check a served data dir is internally consistent and return its incident count.
async fn check_consistent(app: &TestApp) -> usize {
    let n = app.count_all().await;
    let (rows, all_count) = app
        .state
        .store
        .read(|txn| {
            use redb::ReadableTableMetadata;
            let rows = txn
                .open_table(sofiia::incidents::tables::INCIDENTS)?
                .len()?;
            let c = txn
                .open_table(sofiia::incidents::tables::INDEX)?
                .range(("all", i64::MIN, "")..=("all", i64::MAX, ""))?
                .count() as u64;
            Ok((rows, c))
        })
        .await
        .unwrap();
    assert_eq!(rows as usize, n);
    assert_eq!(all_count as usize, n);
    let (_, page) = app.get("/api/incidents?limit=500").await;
    for inc in page["items"].as_array().unwrap() {
        let id = inc["id"].as_str().unwrap();
        let (s, d) = app.get(&format!("/api/incidents/{id}")).await;
        assert_eq!(s, 200);
        assert_eq!(d["events"][0]["type"], "status_change", "{d}");
        for a in d["artifacts"].as_array().unwrap() {
            let r = app
                .client
                .get(app.url(&format!(
                    "/api/incidents/{id}/artifacts/{}",
                    a["name"].as_str().unwrap()
                )))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            let body = r.bytes().await.unwrap();
            assert_eq!(
                sofiia::kernel::hash::sha256_hex(&body),
                a["sha256"].as_str().unwrap()
            );
        }
    }
    n
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("CONFIG_DIR")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_taken_during_concurrent_writes_restore_consistently() {
    let app = spawn_app().await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..6 {
        let (client, base, stop) = (app.client.clone(), app.base.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let r = client
                    .post(format!("{base}/api/incidents"))
                    .json(&json!({"service": format!("svc{w}"), "severity": "P2", "title": format!("w{w} #{n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_string();
                client
                    .post(format!("{base}/api/incidents/{id}/artifacts"))
                    .json(&json!({"name": "log.txt", "content": format!("line {n}\n")}))
                    .send()
                    .await
                    .unwrap();
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, rep) = app
        .post("/api/admin/backup", json!({"name": "during-writes"}))
        .await;
    assert_eq!(s, 201, "{rep}");
    assert_error(
        &app.post("/api/admin/backup", json!({"name": "../escape"}))
            .await,
        422,
        "invalid_field",
    );
    // The CLI reads beside the running server (a separate process).
    let work = tempfile::tempdir().unwrap();
    let cli_out = work.path().join("cli-backup");
    let o = cli(&app.data_dir(), &["backup", cli_out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Export works beside the running server too (it reads a snapshot the server writes).
    let export_out = work.path().join("export");
    let o = cli(
        &app.data_dir(),
        &["export", "--out", export_out.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exported = std::fs::read_to_string(export_out.join("incidents.jsonl"))
        .unwrap()
        .lines()
        .count();
    assert!(exported > 0);
    assert!(
        !app.data_dir().join("backups").read_dir().unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("cli-")),
        "the temporary snapshot is cleaned up"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    assert!(written > 20, "writers made progress: {written}");
    let http_backup = app.data_dir().join("backups").join("during-writes");
    assert_eq!(rep["path"], "backups/during-writes");
    let total = app.count_all().await;

    for backup in [http_backup, cli_out] {
        let target = tempfile::tempdir().unwrap();
        let data = target.path().join("data");
        let r = restore(
            &backup,
            &sofiia::app::schema(),
            &data,
            &data.join("incidents"),
            false,
        )
        .unwrap();
        assert!(r.previous_moved_to.is_none());
        let restored = spawn_in(target, Arc::new(SystemClock)).await;
        let n = check_consistent(&restored).await;
        assert!(n > 0 && n <= total, "restored {n} of {total}");
        // Still writable after restore.
        restored
            .create("after", "P3", "restored store accepts writes")
            .await;
    }
}

#[tokio::test]
async fn restore_refuses_a_non_empty_or_running_data_dir() {
    let app = spawn_app().await;
    app.create("gateway", "P1", "one").await;
    let backup = app.dir.path().join("b1");
    let (s, _) = app.post("/api/admin/backup", json!({"name":"b1"})).await;
    assert_eq!(s, 201);
    let b1 = app.data_dir().join("backups").join("b1");
    std::fs::rename(&b1, &backup).unwrap();
    // Running server: refused even with --force.
    let o = cli(
        &app.data_dir(),
        &["restore", backup.to_str().unwrap(), "--force"],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("running"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    app.create("gateway", "P1", "two").await;
    let dir = app.stop().await;
    let data = dir.path().join("data");

    let o = cli(&data, &["restore", backup.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not empty"));
    let o = cli(&data, &["restore", backup.to_str().unwrap(), "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let aside = report["previous_moved_to"].as_str().unwrap();
    assert!(
        Path::new(aside).join("sofiia.redb").is_file(),
        "old data kept aside"
    );

    // The install's audit secret travels with the backup: hashes stay comparable.
    let key_before = std::fs::read(Path::new(aside).join("audit.key")).unwrap();
    assert_eq!(std::fs::read(data.join("audit.key")).unwrap(), key_before);
    #[cfg(unix)]
    {
        // …and stays readable by its owner only, in the backup and after the restore.
        use std::os::unix::fs::PermissionsExt;
        for p in [data.join("audit.key"), backup.join("audit.key")] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
    let app = spawn_in(dir, Arc::new(SystemClock)).await;
    assert_eq!(
        app.count_all().await,
        1,
        "state of the backup, not the later write"
    );

    // A tampered backup is rejected before anything is touched.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(bad.path().join("backup.json"), "{}").unwrap();
    let target = tempfile::tempdir().unwrap();
    assert!(restore(
        bad.path(),
        &sofiia::app::schema(),
        &target.path().join("d"),
        &target.path().join("d/incidents"),
        false
    )
    .is_err());
    assert!(!target.path().join("d").exists());
}

/// The HTTP reply and its errors name the backup folder relative to DATA_DIR, never the
/// server's absolute paths.
#[tokio::test]
async fn backup_replies_and_errors_name_paths_relative_to_the_data_dir() {
    let app = spawn_app().await;
    app.create("gateway", "P1", "one").await;
    let abs = app.data_dir().display().to_string();
    let (s, rep) = app.post("/api/admin/backup", json!({"name": "b1"})).await;
    assert_eq!(s, 201, "{rep}");
    assert_eq!(rep["path"], "backups/b1");
    assert!(!rep.to_string().contains(&abs), "{rep}");
    assert!(app.data_dir().join("backups/b1/backup.json").is_file());
    // The same name again: refused, naming the folder as the client knows it.
    let got = app.post("/api/admin/backup", json!({"name": "b1"})).await;
    assert_error(&got, 409, "conflict");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("backups/b1 exists"), "{msg}");
    assert!(!got.1.to_string().contains(&abs), "{}", got.1);
}

/// The database, its write-ahead log, the agent key hashes and the audit secret are owner-only
/// (0600) in DATA_DIR, in a backup and after a restore; older, wider files are tightened at start.
#[cfg(unix)]
#[tokio::test]
async fn data_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let app = spawn_app().await;
    app.create("gateway", "P1", "one").await;
    let data = app.data_dir();
    sofiia::gateway::auth::issue_key(&data, "helion", None).unwrap();
    let files = [
        "sofiia.redb",
        sofiia::store::wal::WAL_FILE,
        "agent_keys.yml",
        "audit.key",
    ];
    for f in files {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    let (s, rep) = app.post("/api/admin/backup", json!({"name": "b1"})).await;
    assert_eq!(s, 201, "{rep}");
    let backup = data.join("backups/b1");
    for f in ["sofiia.redb", "agent_keys.yml", "audit.key"] {
        assert_eq!(mode(&backup.join(f)), 0o600, "backup {f}");
    }
    let dir = app.stop().await;

    // A restore keeps them private.
    let target = tempfile::tempdir().unwrap();
    let restored = target.path().join("data");
    restore(
        &backup,
        &sofiia::app::schema(),
        &restored,
        &restored.join("incidents"),
        false,
    )
    .unwrap();
    for f in ["sofiia.redb", "agent_keys.yml", "audit.key"] {
        assert_eq!(mode(&restored.join(f)), 0o600, "restored {f}");
    }

    // Files left 0644 by an older build are tightened when sofiia starts again.
    for f in files {
        std::fs::set_permissions(data.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let app = spawn_in(dir, Arc::new(SystemClock)).await;
    for f in [
        "sofiia.redb",
        sofiia::store::wal::WAL_FILE,
        "agent_keys.yml",
    ] {
        assert_eq!(mode(&app.data_dir().join(f)), 0o600, "after restart: {f}");
    }
}
