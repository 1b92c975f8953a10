//! `cargo bench --bench import`: time and peak memory of `sofiia import` on generated folders
//! in the export layout, next to a floor measured in the same run (reading and parsing every
//! line as JSON, which no import can beat).
//!
//! Sizes: `BENCH_IMPORT_INCIDENTS` (default `100000,246000`: 100k incidents with ~305k events,
//! then about 1M lines) — a comma-separated list; each incident has 3 events, every 20th a
//! fourth, and every 100th an artifact file. The import runs as the real binary in a child
//! process with a fresh `DATA_DIR`, then once more on the same data (everything skipped).
//! Peak memory is the child's maximum resident set size (`getrusage` through `wait4`).
//! `BENCH_IMPORT_BASELINE=/path/to/sofiia` also runs another build (say, one from before a
//! change) on the same folders in the same run, and prints the ratios. `BENCH_IMPORT_OUT=DIR`
//! only writes the folders (`DIR/<incidents>/`), for a manual `sofiia import` or a profiler.

use std::io::{BufRead, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use sofiia::incidents::model::{Artifact, Event, Incident, Severity, Status};

/// Write `n` incidents (~3.05 events each, an artifact for every 100th) into `dir`; returns
/// the number of lines written.
fn generate(dir: &Path, n: usize) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let open = |name: &str| BufWriter::new(std::fs::File::create(dir.join(name)).unwrap());
    let (mut inc_w, mut ev_w, mut art_w) = (
        open("incidents.jsonl"),
        open("events.jsonl"),
        open("artifacts.jsonl"),
    );
    let base = time::macros::datetime!(2024-01-01 00:00 UTC);
    let services = ["gateway", "router", "billing", "search", "auth", "ledger"];
    let mut lines = 0;
    for k in 0..n {
        let t = base + time::Duration::seconds(k as i64 * 97);
        let id = format!(
            "inc_{}_{:010x}",
            t.format(time::macros::format_description!(
                "[year][month][day]_[hour][minute]"
            ))
            .unwrap(),
            k
        );
        let status = Status::ALL[(k / 7) % 5];
        let later = |mins: i64| Some(t + time::Duration::minutes(mins));
        let inc = Incident {
            id: id.clone(),
            service: services[k % services.len()].into(),
            env: ["prod", "staging", "dev"][k % 3].into(),
            severity: Severity::ALL[(k / 3) % 4],
            status,
            title: format!("Synthetic incident {k}: 5xx above SLO on the public edge"),
            summary: "Error rate above SLO after deploy; rolled back, watching.".into(),
            started_at: t,
            acknowledged_at: (status != Status::Open).then(|| t + time::Duration::minutes(3)),
            mitigated_at: matches!(
                status,
                Status::Mitigated | Status::Resolved | Status::Closed
            )
            .then(|| later(20))
            .flatten(),
            resolved_at: matches!(status, Status::Resolved | Status::Closed)
                .then(|| later(45))
                .flatten(),
            closed_at: (status == Status::Closed).then(|| later(90)).flatten(),
            owner: Some("oncall".into()),
            created_by: "bench".into(),
            labels: vec!["synthetic".into(), format!("team-{}", k % 9)],
            fingerprints: vec![format!("fp-{:08x}", k)],
            created_at: t + time::Duration::minutes(1),
            updated_at: t + time::Duration::minutes(95),
        };
        serde_json::to_writer(&mut inc_w, &inc).unwrap();
        inc_w.write_all(b"\n").unwrap();
        lines += 1;
        let events = if k % 20 == 0 { 4 } else { 3 };
        for e in 0..events {
            let (kind, message, meta) = match e {
                0 => (
                    "note",
                    "paged the on-call; looking at the edge dashboards".to_string(),
                    json!({}),
                ),
                1 => (
                    "deploy",
                    format!("rolled back to v1.{}.{}", k % 40, e),
                    json!({"sha": format!("{:07x}", k * 31 + e)}),
                ),
                2 => (
                    "followup",
                    "add an alert on the 5xx ratio".to_string(),
                    json!({"title": "add an alert on the 5xx ratio", "due": "2024-12-31", "priority": "P2", "status": if k % 2 == 0 { "done" } else { "open" }}),
                ),
                _ => (
                    "note",
                    "post-incident review scheduled".to_string(),
                    json!({}),
                ),
            };
            let ev = Event {
                id: format!("ev_{:010x}{e}", k),
                incident_id: id.clone(),
                seq: e as u64 + 1,
                ts: t + time::Duration::minutes(5 + e as i64 * 10),
                kind: kind.into(),
                message,
                meta,
                actor: "oncall".into(),
            };
            serde_json::to_writer(&mut ev_w, &ev).unwrap();
            ev_w.write_all(b"\n").unwrap();
            lines += 1;
        }
        if k % 100 == 0 {
            let body = format!("# Postmortem {id}\n\nRolled back; alert added.\n");
            std::fs::create_dir_all(dir.join(&id)).unwrap();
            std::fs::write(dir.join(&id).join("postmortem.md"), &body).unwrap();
            let a = Artifact {
                id: format!("art_{:010x}", k),
                incident_id: id.clone(),
                name: "postmortem.md".into(),
                format: "md".into(),
                path: format!("{id}/postmortem.md"),
                sha256: sofiia::kernel::hash::sha256_hex(body.as_bytes()),
                size_bytes: body.len() as u64,
                created_at: t + time::Duration::minutes(60),
                created_by: "oncall".into(),
            };
            serde_json::to_writer(&mut art_w, &a).unwrap();
            art_w.write_all(b"\n").unwrap();
            lines += 1;
        }
    }
    for mut w in [inc_w, ev_w, art_w] {
        w.flush().unwrap();
    }
    lines
}

/// The floor: read every line of the three files and parse it as JSON.
fn parse_floor(dir: &Path) -> Duration {
    let start = Instant::now();
    let mut n = 0usize;
    for f in ["incidents.jsonl", "events.jsonl", "artifacts.jsonl"] {
        let r = std::io::BufReader::new(std::fs::File::open(dir.join(f)).unwrap());
        for line in r.lines() {
            let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
            n += v.is_object() as usize;
        }
    }
    assert!(n > 0);
    start.elapsed()
}

struct Run {
    elapsed: Duration,
    /// Peak resident set size of the child, in bytes (None where unknown).
    peak_rss: Option<u64>,
    stdout: String,
    stderr: String,
}

/// Run `bin import` in a child process and measure it.
fn import(bin: &Path, data: &Path, src: &Path, scratch: &Path) -> Run {
    let out = scratch.join("import.out");
    let err = scratch.join("import.err");
    let start = Instant::now();
    let child = std::process::Command::new(bin)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "import",
            src.to_str().unwrap(),
        ])
        .current_dir(scratch)
        .env_remove("CONFIG_DIR")
        .env_remove("DATA_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let (ok, peak_rss) = wait_measured(child);
    let elapsed = start.elapsed();
    let run = Run {
        elapsed,
        peak_rss,
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    assert!(ok, "import failed:\n{}\n{}", run.stdout, run.stderr);
    run
}

/// Wait for `child`; returns (success, peak RSS in bytes).
#[cfg(unix)]
fn wait_measured(child: std::process::Child) -> (bool, Option<u64>) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain syscall on our own child; `ru` is a zeroed out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4 failed");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    // ru_maxrss is in KiB on Linux and in bytes on macOS.
    let scale = if cfg!(target_os = "macos") { 1 } else { 1024 };
    (ok, Some(ru.ru_maxrss as u64 * scale))
}

#[cfg(not(unix))]
fn wait_measured(mut child: std::process::Child) -> (bool, Option<u64>) {
    (child.wait().unwrap().success(), None)
}

fn mb(b: Option<u64>) -> String {
    b.map(|b| format!("{:.0} MB", b as f64 / 1e6))
        .unwrap_or_else(|| "n/a".into())
}

/// Import `src` twice into a fresh data dir with `bin`; print and return the runs.
fn measure(label: &str, bin: &Path, src: &Path, lines: usize, floor: Duration) -> (Run, Run) {
    let scratch = tempfile::tempdir().unwrap();
    let data = scratch.path().join("data");
    let first = import(bin, &data, src, scratch.path());
    let again = import(bin, &data, src, scratch.path());
    let report: serde_json::Value = serde_json::from_str(&first.stdout).unwrap_or_default();
    let imported: u64 = ["incidents", "events", "artifacts"]
        .iter()
        .map(|k| report[k]["imported"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(imported as usize, lines, "report: {}", first.stdout);
    println!(
        "  {label:<9} first  {:>6.2} s  {:>7.0} lines/s  peak RSS {:>7}  ({:.1}x the parse floor)",
        first.elapsed.as_secs_f64(),
        lines as f64 / first.elapsed.as_secs_f64(),
        mb(first.peak_rss),
        first.elapsed.as_secs_f64() / floor.as_secs_f64(),
    );
    println!(
        "  {label:<9} again  {:>6.2} s  {:>7.0} lines/s  peak RSS {:>7}  (every record skipped; {} stderr line(s))",
        again.elapsed.as_secs_f64(),
        lines as f64 / again.elapsed.as_secs_f64(),
        mb(again.peak_rss),
        first.stderr.lines().count(),
    );
    if std::env::var_os("BENCH_IMPORT_VERBOSE").is_some() {
        print!("{}", first.stderr);
    }
    (first, again)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let sizes: Vec<usize> = std::env::var("BENCH_IMPORT_INCIDENTS")
        .unwrap_or_else(|_| "100000,246000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let this = Path::new(env!("CARGO_BIN_EXE_sofiia"));
    let baseline = std::env::var_os("BENCH_IMPORT_BASELINE").map(std::path::PathBuf::from);
    if let Some(out) = std::env::var_os("BENCH_IMPORT_OUT") {
        for n in sizes {
            let dir = Path::new(&out).join(n.to_string());
            let lines = generate(&dir, n);
            println!("import: wrote {lines} lines to {}", dir.display());
        }
        return;
    }
    for n in sizes {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("export");
        let t = Instant::now();
        let lines = generate(&src, n);
        let bytes: u64 = ["incidents.jsonl", "events.jsonl", "artifacts.jsonl"]
            .iter()
            .map(|f| std::fs::metadata(src.join(f)).unwrap().len())
            .sum();
        let floor = parse_floor(&src);
        println!(
            "import: {n} incidents, {lines} lines, {:.0} MB of JSONL (generated in {:.1} s; \
             parse floor {:.2} s)",
            bytes as f64 / 1e6,
            t.elapsed().as_secs_f64(),
            floor.as_secs_f64()
        );
        let (first, _) = measure("this", this, &src, lines, floor);
        if let Some(b) = &baseline {
            let (base, _) = measure("baseline", b, &src, lines, floor);
            let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) if b > 0 => format!("{:.2}x", a as f64 / b as f64),
                _ => "n/a".into(),
            };
            println!(
                "  this / baseline: time {:.2}x, peak RSS {}",
                first.elapsed.as_secs_f64() / base.elapsed.as_secs_f64(),
                ratio(first.peak_rss, base.peak_rss)
            );
        }
    }
}
