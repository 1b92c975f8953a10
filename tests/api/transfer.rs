use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use sofiia::kernel::clock::SystemClock;
use sofiia::store::Store;
use sofiia::transfer::{export, ImportError, ImportOptions, ImportReport, Progress, Step};

use crate::helpers::*;

fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(dir).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Import from a plain thread (the blocking writer API must not run on the async executor).
fn import(store: &Store, artifacts: &Path, dir: &Path) -> Result<ImportReport, ImportError> {
    std::thread::scope(|s| {
        s.spawn(|| sofiia::transfer::import(store, artifacts, dir))
            .join()
            .unwrap()
    })
}

/// `sofiia import src` on `data` as the CLI (with `--strict` when asked).
fn cli_import(data: &Path, src: &Path, strict: bool) -> std::process::Output {
    let mut args = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "import",
        src.to_str().unwrap(),
    ];
    if strict {
        args.push("--strict");
    }
    std::process::Command::new(env!("CARGO_BIN_EXE_sofiia"))
        .args(args)
        .env_remove("CONFIG_DIR")
        .output()
        .unwrap()
}

fn export_dir(data: &Path, out: &Path) {
    let store = sofiia::app::open_store(data).unwrap();
    store
        .read_blocking(|txn| export(txn, &data.join("incidents"), out))
        .unwrap();
    store.shutdown();
}

async fn seed(app: &TestApp) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = app
            .create(
                ["gateway", "router"][i % 2],
                "P1",
                &format!("incident {i} \"quoted\" ünïcode"),
            )
            .await;
        app.post(
            &format!("/api/incidents/{id}/events"),
            json!({"type":"deploy","message":"v1.2.3","meta":{"sha":"abc"}}),
        )
        .await;
        app.post(
            &format!("/api/incidents/{id}/events"),
            json!({"type":"followup","meta":{"title":"fix it","due":"2026-01-01"}}),
        )
        .await;
        app.post(
            &format!("/api/incidents/{id}/artifacts"),
            json!({"name":"notes.md","content":format!("# notes {i}\n")}),
        )
        .await;
        if i % 2 == 0 {
            app.patch(
                &format!("/api/incidents/{id}"),
                json!({"status":"resolved","labels":["x"]}),
            )
            .await;
        }
        ids.push(id);
    }
    ids
}

#[tokio::test]
async fn export_import_round_trip_is_identical_and_idempotent() {
    let app = seed_app().await;
    let src = app.stop().await;
    let out1 = src.path().join("export1");
    export_dir(&src.path().join("data"), &out1);
    let first = read_all(&out1);
    assert!(first.iter().any(|(p, _)| p == "incidents.jsonl"));
    assert_eq!(
        first
            .iter()
            .filter(|(p, _)| p.ends_with("notes.md"))
            .count(),
        5
    );

    // Import into a fresh data dir, export again: byte-identical.
    let fresh = tempfile::tempdir().unwrap();
    let data2 = fresh.path().join("data");
    let store = sofiia::app::open_store(&data2).unwrap();
    let r = import(&store, &data2.join("incidents"), &out1).unwrap();
    assert_eq!(r.incidents.imported, 5);
    assert_eq!(r.events.imported, first_lines(&out1, "events.jsonl"));
    assert_eq!(r.artifacts.imported, 5);
    // Twice: nothing changes.
    let r2 = import(&store, &data2.join("incidents"), &out1).unwrap();
    assert_eq!(
        r2.incidents.imported + r2.events.imported + r2.artifacts.imported,
        0
    );
    assert_eq!(r2.incidents.skipped_existing, 5);
    assert_eq!(r2.audit.imported, 0);
    assert_eq!(r.audit.imported, first_lines(&out1, "audit.jsonl"));
    store.shutdown();
    drop(store);
    let out2 = fresh.path().join("export2");
    export_dir(&data2, &out2);
    assert_eq!(read_all(&out2), first);

    // The imported store serves the records, with working indexes.
    let app2 = spawn_in(fresh, Arc::new(SystemClock)).await;
    assert_eq!(app2.count_all().await, 5);
    let (_, v) = app2.get("/api/incidents?status=resolved").await;
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
    let (_, s) = app2.get("/api/followups/summary?window_days=3650").await;
    assert_eq!(s["stats"]["open_followups"], 5);
}

fn first_lines(dir: &Path, f: &str) -> usize {
    std::fs::read_to_string(dir.join(f))
        .unwrap()
        .lines()
        .count()
}

async fn seed_app() -> TestApp {
    let app = spawn_app().await;
    seed(&app).await;
    app
}

#[tokio::test]
async fn one_broken_line_imports_nothing_and_names_the_line() {
    let app = seed_app().await;
    let src = app.stop().await;
    let out = src.path().join("export");
    export_dir(&src.path().join("data"), &out);
    // Break line 3 of events.jsonl and line 2 of incidents.jsonl (bad severity).
    let ev = std::fs::read_to_string(out.join("events.jsonl")).unwrap();
    let mut lines: Vec<String> = ev.lines().map(String::from).collect();
    lines[2] = "{\"id\": \"ev_x\", \"incident_id\": ".into();
    std::fs::write(out.join("events.jsonl"), lines.join("\n") + "\n").unwrap();
    let inc = std::fs::read_to_string(out.join("incidents.jsonl")).unwrap();
    let mut lines: Vec<String> = inc.lines().map(String::from).collect();
    lines[1] = lines[1].replace("\"P1\"", "\"P7\"");
    std::fs::write(out.join("incidents.jsonl"), lines.join("\n") + "\n").unwrap();

    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    match import(&store, &data.join("incidents"), &out) {
        Err(ImportError::Lines {
            errors: errs,
            total,
        }) => {
            assert_eq!(total, errs.len());
            let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            assert_eq!(errs.len(), 2, "{text:?}");
            assert!(text[0].contains("events.jsonl:3:"), "{text:?}");
            assert!(
                text[1].contains("incidents.jsonl:2:") && text[1].contains("P7"),
                "{text:?}"
            );
        }
        other => panic!("expected line errors, got {other:?}"),
    }
    let n = store
        .read_blocking(|txn| {
            use redb::ReadableTableMetadata;
            Ok(txn
                .open_table(sofiia::incidents::tables::INCIDENTS)?
                .len()?)
        })
        .unwrap();
    assert_eq!(n, 0);
    let copied = data
        .join("incidents")
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    assert!(!copied, "no artifact files copied");

    // The CLI says the same and exits non-zero.
    store.shutdown();
    drop(store);
    let o = cli_import(&data, &out, false);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("events.jsonl:3:") && err.contains("nothing was imported"),
        "{err}"
    );
}

#[tokio::test]
async fn imports_the_old_stack_layout_without_ids() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ops-incidents");
    std::fs::create_dir_all(src.join("inc_20260218_1430_abc123")).unwrap();
    std::fs::write(
        src.join("incidents.jsonl"),
        r#"{"id":"inc_20260218_1430_abc123","workspace_id":"daarion","service":"gateway","env":"prod","severity":"P1","status":"resolved","title":"Gateway 5xx","summary":"","started_at":"2026-02-18T14:30:00","created_at":"2026-02-18T14:31:00+00:00","updated_at":"2026-02-18T15:00:00+00:00","created_by":"sofiia"}
"#,
    )
    .unwrap();
    std::fs::write(
        src.join("events.jsonl"),
        r#"{"incident_id":"inc_20260218_1430_abc123","ts":"2026-02-18T14:35:00","type":"note","message":"rolled back"}
{"incident_id":"inc_20260218_1430_abc123","ts":"2026-02-18T14:50:00","type":"followup","message":"add alert","meta":{"title":"add alert","due":"2026-03-01","status":"open"}}
"#,
    )
    .unwrap();
    std::fs::write(
        src.join("inc_20260218_1430_abc123").join("postmortem.md"),
        "# PM\n",
    )
    .unwrap();
    // An old line without created_at (it carries `ts`) still imports.
    std::fs::write(
        src.join("inc_20260218_1430_abc123").join("triage.json"),
        "{}",
    )
    .unwrap();
    std::fs::write(
        src.join("artifacts.jsonl"),
        r#"{"incident_id":"inc_20260218_1430_abc123","path":"ops/incidents/inc_20260218_1430_abc123/postmortem.md","format":"md","created_at":"2026-02-18T15:00:00Z"}
{"incident_id":"inc_20260218_1430_abc123","path":"ops/incidents/inc_20260218_1430_abc123/triage.json","ts":"2026-02-18T15:05:00Z"}
"#,
    )
    .unwrap();
    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let r = import(&store, &data.join("incidents"), &src).unwrap();
    assert_eq!(
        (
            r.incidents.imported,
            r.events.imported,
            r.artifacts.imported
        ),
        (1, 2, 2)
    );
    let r = import(&store, &data.join("incidents"), &src).unwrap();
    assert_eq!(
        (
            r.incidents.imported,
            r.events.imported,
            r.artifacts.imported
        ),
        (0, 0, 0)
    );
    store.shutdown();
    drop(store);
    let app = spawn_in(dir, Arc::new(SystemClock)).await;
    let (s, d) = app.get("/api/incidents/inc_20260218_1430_abc123").await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["events"].as_array().unwrap().len(), 2);
    let triage = d["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "triage.json")
        .unwrap();
    assert_eq!(triage["created_at"], "2026-02-18T15:05:00Z");
    assert_eq!(
        d["artifacts"][0]["sha256"],
        "ed2d211f5e9c696e14c59de29c462b576482c5637903c6f38d8f54becc1850f8"
    );
    let r = app
        .client
        .get(app.url("/api/incidents/inc_20260218_1430_abc123/artifacts/postmortem.md"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "# PM\n");
}

#[tokio::test]
async fn import_applies_the_api_rules_to_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    let inc = "inc_20260218_1430_abc123";
    std::fs::create_dir_all(src.join(inc)).unwrap();
    std::fs::write(
        src.join("incidents.jsonl"),
        format!(
            "{{\"id\":\"{inc}\",\"service\":\"gw\",\"env\":\"PROD\",\"severity\":\"P1\",\"status\":\"open\",\"title\":\"t\",\"started_at\":\"2026-02-18T14:30:00Z\",\"created_at\":\"2026-02-18T14:30:00Z\",\"updated_at\":\"2026-02-18T14:30:00Z\"}}\n\
             {{\"id\":\"inc_20260218_1431_def456\",\"service\":\"gw\",\"env\":\"prod\",\"severity\":\"P1\",\"status\":\"open\",\"title\":\"t\",\"started_at\":\"9999-12-31T23:30:00-01:00\",\"created_at\":\"2026-02-18T14:30:00Z\",\"updated_at\":\"2026-02-18T14:30:00Z\"}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        src.join("events.jsonl"),
        format!(
            "{{\"incident_id\":\"{inc}\",\"ts\":\"2026-02-18T14:35:00Z\",\"type\":\"followup\",\"meta\":{{\"title\":\"x\",\"due\":\"soon\"}}}}\n"
        ),
    )
    .unwrap();
    std::fs::write(src.join(inc).join("a.md"), "# a\n").unwrap();
    std::fs::write(
        src.join("artifacts.jsonl"),
        format!(
            "{{\"id\":\"art_1\",\"incident_id\":\"{inc}\",\"name\":\"a.md\",\"format\":\"md\",\"path\":\"\",\"created_at\":\"2026-02-18T15:00:00Z\"}}\n\
             {{\"id\":\"art_2\",\"incident_id\":\"{inc}\",\"name\":\"a.md\",\"format\":\"md\",\"path\":\"\",\"created_at\":\"2026-02-18T15:00:00Z\"}}\n\
             {{\"id\":\"art_3\",\"incident_id\":\"{inc}\",\"name\":\"../../etc/passwd.md\",\"format\":\"md\",\"path\":\"\",\"created_at\":\"2026-02-18T15:00:00Z\"}}\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let errs = match import(&store, &data.join("incidents"), &src) {
        Err(ImportError::Lines { errors: e, .. }) => {
            e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>()
        }
        other => panic!("expected line errors, got {other:?}"),
    };
    let has = |needle: &str| errs.iter().any(|e| e.contains(needle));
    assert!(has("incidents.jsonl:2:"), "out-of-range time: {errs:?}");
    assert!(
        has("events.jsonl:1:") && has("meta.due"),
        "follow-up rules: {errs:?}"
    );
    assert!(
        has("artifacts.jsonl:2:") && has("also used on line 1"),
        "duplicate names: {errs:?}"
    );
    assert!(
        has("artifacts.jsonl:3:") && has("not a safe file name"),
        "traversal: {errs:?}"
    );
    assert_eq!(errs.len(), 4, "{errs:?}");
    store.shutdown();
}

/// A link inside the import folder (to a file or a folder outside it) is refused by name,
/// relative to the import folder, before anything is read or written.
#[cfg(unix)]
#[tokio::test]
async fn import_refuses_symlinks_and_writes_nothing() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.md"), "# secret\n").unwrap();
    let src = dir.path().join("in");
    let (a, b) = ("inc_20260218_1430_abc123", "inc_20260218_1431_def456");
    std::fs::create_dir_all(src.join(a)).unwrap();
    let inc = |id: &str| {
        format!("{{\"id\":\"{id}\",\"service\":\"gw\",\"env\":\"prod\",\"severity\":\"P1\",\"status\":\"open\",\"title\":\"t\",\"started_at\":\"2026-02-18T14:30:00Z\",\"created_at\":\"2026-02-18T14:30:00Z\",\"updated_at\":\"2026-02-18T14:30:00Z\"}}\n")
    };
    std::fs::write(src.join("incidents.jsonl"), inc(a) + &inc(b)).unwrap();
    let art = |n: u32, id: &str, name: &str| {
        format!("{{\"id\":\"art_{n}\",\"incident_id\":\"{id}\",\"name\":\"{name}\",\"format\":\"md\",\"path\":\"\",\"created_at\":\"2026-02-18T15:00:00Z\"}}\n")
    };
    std::fs::write(
        src.join("artifacts.jsonl"),
        art(1, a, "plain.md") + &art(2, a, "secret.md") + &art(3, b, "secret.md"),
    )
    .unwrap();
    std::fs::write(src.join(a).join("plain.md"), "# plain\n").unwrap();
    // A linked file inside a plain folder, and a linked folder.
    symlink(outside.join("secret.md"), src.join(a).join("secret.md")).unwrap();
    symlink(&outside, src.join(b)).unwrap();

    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let nothing_written = |store: &Store| {
        let n = store
            .read_blocking(|txn| {
                use redb::ReadableTableMetadata;
                Ok(txn
                    .open_table(sofiia::incidents::tables::INCIDENTS)?
                    .len()?)
            })
            .unwrap();
        assert_eq!(n, 0, "no incident stored");
        let copied = data
            .join("incidents")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        assert!(!copied, "no artifact file copied");
    };
    match import(&store, &data.join("incidents"), &src) {
        Err(ImportError::Links(links)) => {
            assert_eq!(links, vec![format!("{a}/secret.md"), b.to_string()]);
        }
        other => panic!("expected the links refused, got {other:?}"),
    }
    nothing_written(&store);

    // A linked JSONL file is refused before it is read.
    std::fs::remove_file(src.join(a).join("secret.md")).unwrap();
    std::fs::remove_file(src.join(b)).unwrap();
    std::fs::write(outside.join("events.jsonl"), "").unwrap();
    symlink(outside.join("events.jsonl"), src.join("events.jsonl")).unwrap();
    match import(&store, &data.join("incidents"), &src) {
        Err(ImportError::Links(links)) => assert_eq!(links, vec!["events.jsonl".to_string()]),
        other => panic!("expected the link refused, got {other:?}"),
    }
    nothing_written(&store);
    store.shutdown();
    drop(store);

    // The CLI names the link and exits non-zero.
    let o = cli_import(&data, &src, false);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("events.jsonl")
            && err.contains("symbolic link")
            && err.contains("nothing was imported"),
        "{err}"
    );
}

fn incident_line(id: &str, started: &str, created: &str, updated: &str) -> String {
    format!(
        "{{\"id\":\"{id}\",\"service\":\"gw\",\"env\":\"prod\",\"severity\":\"P2\",\"status\":\"open\",\"title\":\"t\",\"started_at\":\"{started}\",\"created_at\":\"{created}\",\"updated_at\":\"{updated}\"}}\n"
    )
}

fn event_line(id: &str, incident: &str, ts: &str) -> String {
    format!(
        "{{\"id\":\"{id}\",\"incident_id\":\"{incident}\",\"ts\":\"{ts}\",\"type\":\"note\",\"message\":\"m\"}}\n"
    )
}

fn table_len<K: redb::Key + 'static, V: redb::Value + 'static>(
    store: &Store,
    t: redb::TableDefinition<'static, K, V>,
) -> u64 {
    store
        .read_blocking(|txn| {
            use redb::ReadableTableMetadata;
            Ok(txn.open_table(t)?.len()?)
        })
        .unwrap()
}

/// A folder whose lines are all valid, four of them with timestamps an operator should hear
/// about: updated before created, created in the future, an event before its incident began,
/// an event in the future. "Now" is 2026-03-01; one event is two minutes ahead of it (clock
/// skew, not a warning).
fn folder_with_odd_timestamps(dir: &Path, future: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let (a, b, c) = (
        "inc_20260218_1430_aaa111",
        "inc_20260218_1431_bbb222",
        "inc_20260218_1432_ccc333",
    );
    std::fs::write(
        dir.join("incidents.jsonl"),
        incident_line(
            a,
            "2026-02-18T14:30:00Z",
            "2026-02-18T14:31:00Z",
            "2026-02-18T15:00:00Z",
        ) + &incident_line(
            b,
            "2026-02-18T14:31:00Z",
            "2026-02-18T16:00:00Z",
            "2026-02-18T15:00:00Z",
        ) + &incident_line(c, "2026-02-18T14:32:00Z", future, future),
    )
    .unwrap();
    std::fs::write(
        dir.join("events.jsonl"),
        event_line("ev_1", a, "2026-02-18T14:00:00Z")
            + &event_line("ev_2", a, future)
            + &event_line("ev_3", a, "2026-02-18T14:40:00Z")
            + &event_line("ev_4", b, "2026-03-01T00:02:00Z"),
    )
    .unwrap();
}

#[test]
fn import_warns_about_future_and_out_of_order_timestamps_and_strict_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    folder_with_odd_timestamps(&src, "2026-06-01T00:00:00Z");
    let now = time::macros::datetime!(2026-03-01 00:00 UTC);

    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            sofiia::transfer::import_with(
                &store,
                &data.join("incidents"),
                &src,
                ImportOptions::new(now),
            )
        })
        .join()
        .unwrap()
    })
    .unwrap();
    // Warned, and imported anyway.
    assert_eq!((r.incidents.imported, r.events.imported), (3, 4));
    let w: Vec<String> = r.warnings.first.iter().map(|w| w.to_string()).collect();
    assert_eq!(r.warnings.total, 4, "{w:?}");
    assert!(
        w[0].contains("incidents.jsonl:2: updated_at 2026-02-18T15:00:00Z is before created_at"),
        "{w:?}"
    );
    assert!(
        w[1].contains("incidents.jsonl:3: created_at 2026-06-01T00:00:00Z is in the future")
            && w[1].contains("updated_at 2026-06-01T00:00:00Z is in the future"),
        "{w:?}"
    );
    assert!(
        w[2].contains("events.jsonl:1: ts 2026-02-18T14:00:00Z is before started_at 2026-02-18T14:30:00Z of inc_20260218_1430_aaa111"),
        "{w:?}"
    );
    assert!(
        w[3].contains("events.jsonl:2: ts 2026-06-01T00:00:00Z is in the future"),
        "{w:?}"
    );
    store.shutdown();
    drop(store);

    // Strict: the same lines are bad lines, and nothing is written.
    let data = dir.path().join("data-strict");
    let store = sofiia::app::open_store(&data).unwrap();
    let mut opts = ImportOptions::new(now);
    opts.strict = true;
    let res = sofiia::transfer::import_with(&store, &data.join("incidents"), &src, opts);
    match res {
        Err(ImportError::Lines { errors, total }) => {
            let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            assert_eq!(total, 4, "{text:?}");
            assert!(text.iter().all(|t| t.contains("strict")), "{text:?}");
            // Sorted by file, then line.
            assert!(text[0].contains("events.jsonl:1:"), "{text:?}");
            assert!(text[3].contains("incidents.jsonl:3:"), "{text:?}");
        }
        other => panic!("expected the strict import refused, got {other:?}"),
    }
    assert_eq!(table_len(&store, sofiia::incidents::tables::INCIDENTS), 0);
    assert_eq!(table_len(&store, sofiia::incidents::tables::EVENTS), 0);
    store.shutdown();
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn the_cli_prints_warnings_and_plain_progress_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    // The CLI judges "the future" by the wall clock.
    folder_with_odd_timestamps(&src, "2999-01-01T00:00:00Z");
    let run = |data: &Path, strict: bool| cli_import(data, &src, strict);
    let data = dir.path().join("data");
    let o = run(&data, false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // The stderr of a pipe is plain text: no carriage returns, no escape sequences.
    assert!(!has_control_chars(&err), "{err:?}");
    for needle in [
        "import: checked incidents.jsonl: 3 lines",
        "import: checked events.jsonl: 4 lines",
        "import: wrote incidents.jsonl: 3 lines",
        "import: wrote events.jsonl: 4 lines, 100%",
        "warning: ",
        "events.jsonl:2: ts 2999-01-01T00:00:00Z is in the future",
        "events.jsonl:1: ts 2026-02-18T14:00:00Z is before started_at",
        "warning: 4 line(s) with timestamps in the future or out of order; imported anyway",
        "--strict",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["events"]["imported"], 4);
    // The same four lines as with the fixed clock (ev_4 is long past by the wall clock).
    assert_eq!(report["warnings"]["total"], 4, "{report}");

    let data = dir.path().join("data-strict");
    let o = run(&data, true);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(!has_control_chars(&err), "{err:?}");
    assert!(
        err.contains(
            "events.jsonl:2: ts 2999-01-01T00:00:00Z is in the future (refused: strict import)"
        ) && err.contains("4 bad line(s)")
            && err.contains("nothing was imported"),
        "{err}"
    );
    let store = sofiia::app::open_store(&data).unwrap();
    assert_eq!(table_len(&store, sofiia::incidents::tables::INCIDENTS), 0);
    store.shutdown();
}

/// More lines than one chunk (2000), with the events file ending exactly on a chunk
/// boundary: every record lands once, the indexes follow, and a second import skips all.
#[test]
fn a_multi_chunk_import_lands_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    std::fs::create_dir_all(&src).unwrap();
    let (mut incs, mut evs) = (String::new(), String::new());
    for k in 0..2100 {
        let id = format!("inc_20260218_1430_{k:06}");
        incs += &incident_line(
            &id,
            "2026-02-18T14:30:00Z",
            "2026-02-18T14:31:00Z",
            "2026-02-18T15:00:00Z",
        );
        if k < 2000 {
            evs += &event_line(&format!("ev_{k}a"), &id, "2026-02-18T14:35:00Z");
            evs += &event_line(&format!("ev_{k}b"), &id, "2026-02-18T14:36:00Z");
        }
    }
    std::fs::write(src.join("incidents.jsonl"), incs).unwrap();
    std::fs::write(src.join("events.jsonl"), evs).unwrap();
    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let r = import(&store, &data.join("incidents"), &src).unwrap();
    assert_eq!((r.incidents.imported, r.events.imported), (2100, 4000));
    assert_eq!(r.warnings.total, 0);
    use sofiia::incidents::tables::{EVENTS, EVENT_FEED, INCIDENTS, INDEX};
    assert_eq!(table_len(&store, INCIDENTS), 2100);
    assert_eq!(table_len(&store, EVENTS), 4000);
    assert_eq!(table_len(&store, EVENT_FEED), 4000);
    // all, status, service, env, severity
    assert_eq!(table_len(&store, INDEX), 5 * 2100);
    let r = import(&store, &data.join("incidents"), &src).unwrap();
    assert_eq!((r.incidents.imported, r.events.imported), (0, 0));
    assert_eq!(
        (r.incidents.skipped_existing, r.events.skipped_existing),
        (2100, 4000)
    );
    assert_eq!(table_len(&store, EVENTS), 4000);
    store.shutdown();
}

/// The writing pass reads the files again; a file changed after it was checked is refused
/// at the first chunk that differs, before that chunk is written.
#[test]
fn a_file_changed_between_the_passes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    folder_with_odd_timestamps(&src, "2026-02-19T00:00:00Z");
    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    let events = src.join("events.jsonl");
    let mut changed = false;
    let mut on_progress = |p: &Progress<'_>| {
        // Once the incidents are written, rewrite one event's message in place: the line
        // still parses and passes every rule, only its bytes differ.
        if p.step == Step::Write && p.file == "incidents.jsonl" && p.finished && !changed {
            let text = std::fs::read_to_string(&events).unwrap();
            std::fs::write(&events, text.replacen("\"m\"", "\"x\"", 1)).unwrap();
            changed = true;
        }
    };
    let mut opts = ImportOptions::new(time::macros::datetime!(2026-03-01 00:00 UTC));
    opts.progress = Some(&mut on_progress);
    let res = sofiia::transfer::import_with(&store, &data.join("incidents"), &src, opts);
    match res {
        Err(ImportError::Other(e)) => {
            let m = e.to_string();
            assert!(m.contains("events.jsonl changed during the import"), "{m}");
        }
        other => panic!("expected the changed file refused, got {other:?}"),
    }
    assert_eq!(table_len(&store, sofiia::incidents::tables::INCIDENTS), 3);
    assert_eq!(table_len(&store, sofiia::incidents::tables::EVENTS), 0);
    store.shutdown();
}

/// A file of nothing but bad lines: all counted, the first thousand kept (memory stays
/// bounded), and the CLI says how many it did not print.
#[test]
fn many_bad_lines_are_counted_and_the_first_thousand_kept() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("incidents.jsonl"),
        incident_line(
            "inc_20260218_1430_aaa111",
            "2026-02-18T14:30:00Z",
            "2026-02-18T14:31:00Z",
            "2026-02-18T15:00:00Z",
        ),
    )
    .unwrap();
    std::fs::write(src.join("events.jsonl"), "{\"oops\n".repeat(1005)).unwrap();
    let data = dir.path().join("data");
    let store = sofiia::app::open_store(&data).unwrap();
    match import(&store, &data.join("incidents"), &src) {
        Err(ImportError::Lines { errors, total }) => {
            assert_eq!((errors.len(), total), (1000, 1005));
            assert_eq!(errors[999].line, 1000);
        }
        other => panic!("expected line errors, got {other:?}"),
    }
    store.shutdown();
    drop(store);
    let o = cli_import(&data, &src, false);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("… and 5 more bad line(s)") && err.contains("1005 bad line(s)"),
        "{err}"
    );
}
