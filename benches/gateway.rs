//! `cargo bench --bench gateway`: what the tool pipeline adds to a call.
//! `oncall_tool.incident_get` through the whole pipeline (auth, RBAC, rollout, limits, keyed
//! hash, execute, redact, durable audit record) versus calling the incident room directly,
//! interleaved in the same run; plus the cost of the audit write on its own.

use std::time::Instant;

use serde_json::json;
use sofiia::config::Settings;
use sofiia::gateway::auth::Principal;
use sofiia::gateway::ToolCall;
use sofiia::server::App;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let n: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir_in(".").unwrap();
    // The agent's rate limit would stop the loop; everything else is the shipped default.
    let cfg = tmp.path().join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("tool_limits.yml"),
        "defaults: {calls_per_minute: 100000000}\n",
    )
    .unwrap();
    let settings = Settings {
        config_dir: Some(cfg),
        ..Settings::ephemeral(&tmp.path().join("data"), "bench")
    };
    rt.block_on(async {
        let app = App::build(settings).await.unwrap();
        let state = app.state().clone();
        let mut ids = Vec::new();
        for i in 0..200 {
            let input =
                serde_json::from_value(json!({"service": format!("svc{}", i % 7), "severity":"P2",
                "title": format!("incident {i} with a realistic title")}))
                .unwrap();
            ids.push(state.incidents.create(input, "bench").await.unwrap().id);
        }
        let (mut direct, mut piped, mut audit_only) = (Vec::new(), Vec::new(), Vec::new());
        let agent = Principal::Agent {
            agent_id: "helion".into(),
            role: None,
        };
        for i in 0..n {
            let id = &ids[i % ids.len()];
            let t = Instant::now();
            std::hint::black_box(state.incidents.get(id).await.unwrap());
            direct.push(t.elapsed().as_secs_f64() * 1e6);
            let call = ToolCall {
                tool: "oncall_tool".into(),
                action: "incident_get".into(),
                params: json!({"incident_id": id}),
                agent_id: Some("helion".into()),
                metadata: json!({}),
            };
            let t = Instant::now();
            std::hint::black_box(state.gateway.execute(&agent, call).await.unwrap());
            piped.push(t.elapsed().as_secs_f64() * 1e6);
            let rec = state
                .gateway
                .audit()
                .list(Default::default())
                .await
                .unwrap()
                .into_iter()
                .next()
                .unwrap();
            let rec = sofiia::audit::AuditRecord {
                id: sofiia::audit::Audit::new_id(),
                ..rec
            };
            let t = Instant::now();
            state.gateway.audit().write(rec).await.unwrap();
            audit_only.push(t.elapsed().as_secs_f64() * 1e6);
        }
        let (d50, d99) = (pct(&mut direct, 0.5), pct(&mut direct, 0.99));
        let (p50, p99) = (pct(&mut piped, 0.5), pct(&mut piped, 0.99));
        let (a50, a99) = (pct(&mut audit_only, 0.5), pct(&mut audit_only, 0.99));
        println!("gateway overhead bench: {n} calls each, interleaved");
        println!(
            "{:<46} p50 {:>8.1} us  p99 {:>8.1} us",
            "incident_get, incident room directly", d50, d99
        );
        println!(
            "{:<46} p50 {:>8.1} us  p99 {:>8.1} us",
            "incident_get through the pipeline", p50, p99
        );
        println!(
            "{:<46} p50 {:>8.1} us  p99 {:>8.1} us",
            "  of which: durable audit write alone", a50, a99
        );
        println!(
            "{:<46} {:>+8.0} % at p50, {:>+8.0} % at p99 (target < 10 %)",
            "pipeline overhead",
            (p50 / d50 - 1.0) * 100.0,
            (p99 / d99 - 1.0) * 100.0
        );
        println!(
            "{:<46} {:>+8.0} % at p50 (pipeline minus audit write)",
            "overhead without the audit write",
            ((p50 - a50) / d50 - 1.0) * 100.0
        );
    });
}
