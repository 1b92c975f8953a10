//! Runbook search benchmark: relevance on the starter runbooks, latency at 10k sections, and
//! indexing rate, each next to a baseline measured in the same run.
//!
//! - Relevance: `benches/relevance.yml` (queries with the section that should come first),
//!   scored as recall@1, recall@3 and MRR for sofiia's search and for a grep-like baseline
//!   (sections ranked by how many query words they contain, case-insensitive), which is what
//!   an operator would otherwise reach for.
//! - Latency: 10k generated sections; p50/p99 of sofiia's search against a linear scan of the
//!   same sections in memory (the grep baseline again).
//! - Indexing: sections per second for a full build of those 10k sections.
//!
//! Run: `cargo bench --bench search` (BENCH_SECTIONS=10000, BENCH_QUERIES=2000).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;
use sofiia::search::markdown;
use sofiia::search::runbooks::{Runbooks, SearchParams};

#[derive(Deserialize)]
struct Case {
    q: String,
    expect: Expect,
}

#[derive(Deserialize)]
struct Expect {
    path: String,
    heading: String,
}

/// A section as the baseline sees it.
struct Plain {
    path: String,
    heading: String,
    text: String,
}

fn sections_of(root: &Path) -> Vec<Plain> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&p).unwrap();
                let rb = markdown::parse(&text, &rel);
                for s in rb.sections {
                    out.push(Plain {
                        path: rel.clone(),
                        heading: s.heading().to_string(),
                        text: format!("{} {}", s.path.join(" "), s.text).to_lowercase(),
                    });
                }
            }
        }
    }
    out
}

/// grep-like: rank sections by the number of distinct query words they contain.
fn baseline<'a>(sections: &'a [Plain], q: &str, limit: usize) -> Vec<&'a Plain> {
    let words: Vec<String> = q
        .split(|c: char| !c.is_alphanumeric() && c != '-' && c != '_' && c != '.')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let mut scored: Vec<(usize, usize, &Plain)> = sections
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                words.iter().filter(|w| s.text.contains(w.as_str())).count(),
                i,
                s,
            )
        })
        .filter(|(n, _, _)| *n > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(limit).map(|(_, _, s)| s).collect()
}

fn rank_of(hits: &[(String, String)], e: &Expect) -> Option<usize> {
    hits.iter()
        .position(|(p, h)| *p == e.path && *h == e.heading)
        .map(|i| i + 1)
}

struct Scores {
    r1: f64,
    r3: f64,
    mrr: f64,
}

fn score(ranks: &[Option<usize>]) -> Scores {
    let n = ranks.len() as f64;
    Scores {
        r1: ranks.iter().filter(|r| **r == Some(1)).count() as f64 / n,
        r3: ranks.iter().filter(|r| r.is_some_and(|r| r <= 3)).count() as f64 / n,
        mrr: ranks
            .iter()
            .map(|r| r.map(|r| 1.0 / r as f64).unwrap_or(0.0))
            .sum::<f64>()
            / n,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

const WORDS: &[&str] = &[
    "backup",
    "restore",
    "snapshot",
    "disk",
    "full",
    "space",
    "key",
    "rotate",
    "agent",
    "token",
    "incident",
    "timeline",
    "followup",
    "artifact",
    "export",
    "import",
    "jsonl",
    "gateway",
    "audit",
    "rbac",
    "role",
    "limit",
    "timeout",
    "breaker",
    "allowlist",
    "node",
    "offline",
    "alert",
    "storm",
    "silence",
    "route",
    "run",
    "graph",
    "cancel",
    "retry",
    "deploy",
    "rollback",
    "latency",
    "error",
    "rate",
    "budget",
    "slo",
    "burn",
    "queue",
    "worker",
    "cache",
    "memory",
    "cpu",
    "restart",
    "upgrade",
    "schema",
    "migration",
    "checksum",
    "manifest",
    "volume",
    "mount",
    "permission",
    "certificate",
    "proxy",
    "dns",
    "network",
    "packet",
    "socket",
    "port",
    "health",
    "probe",
    "monitor",
    "dashboard",
    "metric",
    "trace",
    "span",
    "log",
    "sample",
    "redact",
    "secret",
    "password",
    "policy",
    "rollout",
    "canary",
    "traffic",
    "shard",
    "replica",
    "leader",
    "election",
    "quorum",
    "lease",
    "lock",
    "deadlock",
    "throttle",
    "backpressure",
    "overflow",
];

fn generate(root: &Path, sections: usize) {
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let per_file = 20;
    for f in 0..sections.div_ceil(per_file) {
        let mut md = format!(
            "---\ntitle: Generated runbook {f}\nservices: [svc{}]\ntags: [t{}]\n---\n",
            f % 40,
            f % 25
        );
        for s in 0..per_file {
            let w = |n: &mut dyn FnMut() -> u64| WORDS[(n() % WORDS.len() as u64) as usize];
            md.push_str(&format!(
                "\n## {} {} step {s}\n\n",
                w(&mut next),
                w(&mut next)
            ));
            for _ in 0..60 {
                md.push_str(w(&mut next));
                md.push(' ');
            }
            md.push('\n');
        }
        std::fs::write(root.join(format!("gen{f:04}.md")), md).unwrap();
    }
}

fn main() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    // ---- relevance on the starter runbooks
    let cases: Vec<Case> = serde_saphyr::from_str(
        &std::fs::read_to_string(repo.join("benches/relevance.yml")).unwrap(),
    )
    .unwrap();
    let starter = repo.join("data/runbooks");
    let rb = Runbooks::new(
        tmp.path().join("idx1"),
        vec![starter.clone()],
        Duration::from_secs(3600),
    );
    rb.open_or_rebuild().unwrap();
    let plain = sections_of(&starter);
    let mut ours = Vec::new();
    let mut base = Vec::new();
    let mut misses = Vec::new();
    for c in &cases {
        let hits: Vec<(String, String)> = rb
            .search(&SearchParams {
                q: c.q.clone(),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .items
            .into_iter()
            .map(|h| (h.path, h.heading))
            .collect();
        let r = rank_of(&hits, &c.expect);
        if r.is_none_or(|r| r > 3) {
            misses.push(format!(
                "  {:<40} expected {}#{} got {}",
                format!("\"{}\"", c.q),
                c.expect.path,
                c.expect.heading,
                hits.first()
                    .map(|(p, h)| format!("{p}#{h}"))
                    .unwrap_or_else(|| "nothing".into())
            ));
        }
        ours.push(r);
        let bh: Vec<(String, String)> = baseline(&plain, &c.q, 10)
            .into_iter()
            .map(|s| (s.path.clone(), s.heading.clone()))
            .collect();
        base.push(rank_of(&bh, &c.expect));
    }
    let (o, b) = (score(&ours), score(&base));
    println!(
        "relevance: {} queries over {} starter sections",
        cases.len(),
        plain.len()
    );
    println!(
        "{:<44} recall@1 {:.2}  recall@3 {:.2}  MRR {:.2}",
        "  sofiia search", o.r1, o.r3, o.mrr
    );
    println!(
        "{:<44} recall@1 {:.2}  recall@3 {:.2}  MRR {:.2}",
        "  baseline: grep-like word count", b.r1, b.r3, b.mrr
    );
    println!(
        "  ratio (sofiia / baseline): recall@3 {:.2}x, MRR {:.2}x",
        o.r3 / b.r3.max(1e-9),
        o.mrr / b.mrr.max(1e-9)
    );
    if !misses.is_empty() {
        println!("  not in the top 3:");
        for m in &misses {
            println!("{m}");
        }
    }

    // ---- 10k generated sections: indexing rate and latency
    let n: usize = std::env::var("BENCH_SECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let nq: usize = std::env::var("BENCH_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let gen = tmp.path().join("gen");
    std::fs::create_dir_all(&gen).unwrap();
    generate(&gen, n);
    let big = Runbooks::new(
        tmp.path().join("idx2"),
        vec![gen.clone()],
        Duration::from_secs(3600),
    );
    let t = Instant::now();
    let r = big.open_or_rebuild().unwrap();
    let build_s = t.elapsed().as_secs_f64();
    let bytes: u64 = std::fs::read_dir(&gen)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    println!();
    println!(
        "{:<44} {:>9.0} sections/s  ({} sections, {:.1} MB in {:.2} s)",
        "indexing: full build",
        r.sections as f64 / build_s,
        r.sections,
        bytes as f64 / 1e6,
        build_s
    );
    let t = Instant::now();
    let r2 = big.sync(false).unwrap();
    println!(
        "{:<44} {:>9.1} ms  ({} files checked, {} re-read)",
        "indexing: no-change poll",
        t.elapsed().as_secs_f64() * 1000.0,
        r2.files,
        r2.added + r2.changed
    );
    let plain_big = sections_of(&gen);
    // Queries: 1-3 words, a third with a typo, a third with a half-typed last word.
    let mut rng = 0x9E3779B97F4A7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let queries: Vec<String> = (0..nq)
        .map(|i| {
            let k = 1 + (next() % 3) as usize;
            let mut ws: Vec<String> = (0..k)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize].to_string())
                .collect();
            let last = ws.last_mut().unwrap();
            match i % 3 {
                0 if last.len() > 4 => {
                    let mut c: Vec<char> = last.chars().collect();
                    c.swap(1, 2);
                    *last = c.into_iter().collect::<String>() + " ";
                }
                1 if last.len() > 4 => *last = last[..last.len() - 2].to_string(),
                _ => last.push(' '),
            }
            ws.join(" ")
        })
        .collect();
    for q in queries.iter().take(50) {
        let _ = big.search(&SearchParams {
            q: q.clone(),
            limit: 10,
            ..Default::default()
        });
    }
    let mut lat = Vec::with_capacity(nq);
    let mut empty = 0;
    for q in &queries {
        let t = Instant::now();
        let r = big
            .search(&SearchParams {
                q: q.clone(),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if r.items.is_empty() {
            empty += 1;
        }
    }
    let mut blat = Vec::with_capacity(200);
    for q in queries.iter().take(200) {
        let t = Instant::now();
        std::hint::black_box(baseline(&plain_big, q, 10));
        blat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    let (b50, b99) = (pct(&mut blat, 0.5), pct(&mut blat, 0.99));
    println!(
        "{:<44} p50 {:>6.2} ms  p99 {:>6.2} ms (target p99 < 5 ms; {} queries, {} empty)",
        format!("search @{}k sections, with snippets", r.sections / 1000),
        p50,
        p99,
        nq,
        empty
    );
    println!(
        "{:<44} p50 {:>6.2} ms  p99 {:>6.2} ms",
        "baseline: in-memory scan of the same sections", b50, b99
    );
    println!("  ratio (baseline p50 / sofiia p50): {:.1}x", b50 / p50);
}
