//! Ranking suspected root causes: each signal the nodes collected (deploys, health, SLO burn
//! and latency, error-log clusters, alerts, downstream errors in traces, a matching runbook)
//! proposes causes with a score and its evidence; the strongest eight are kept.

use super::pct;
use super::state::{Cluster, FoundTrace, RunbookSnippet, TraceSummary, TriageState};
use crate::graphs::builtin::shared::{one_line, str_of};
use crate::kernel::clock::{parse_ts, rfc3339};

/// A suspected cause. `kind` names the signal (`deploy`, `health`, `slo_burn`, `latency`,
/// `error_logs`, `alerts`, `traces`, `runbook`); mitigations and action items key on it.
#[derive(Debug, Clone)]
pub(super) struct Cause {
    pub(super) score: f64,
    pub(super) cause: String,
    pub(super) kind: &'static str,
    pub(super) evidence: Vec<String>,
}

impl Cause {
    fn new(score: f64, cause: String, kind: &'static str, evidence: Vec<String>) -> Cause {
        Cause {
            score,
            cause,
            kind,
            evidence,
        }
    }
}

/// Every signal's causes, strongest first, each cause once, at most eight.
pub(super) fn rank_causes(state: &TriageState) -> Vec<Cause> {
    let mut causes = deploy_causes(state);
    causes.extend(health_cause(state));
    causes.extend(slo_causes(state));
    causes.extend(log_causes(state));
    causes.extend(alert_causes(state));
    causes.extend(trace_causes(state));
    // A documented failure mode that matches, when nothing stronger points anywhere.
    if causes.is_empty() {
        causes.extend(runbook_cause(&state.runbooks));
    }
    causes.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut seen = std::collections::HashSet::new();
    causes.retain(|c| seen.insert(c.cause.clone()));
    causes.truncate(8);
    causes
}

/// The SLO's status (`ok`, `burning`, `fast_burn`, `no_data`…; empty without SLO data).
pub(super) fn slo_status(state: &TriageState) -> &str {
    state.slo["status"].as_str().unwrap_or("")
}

fn burning(state: &TriageState) -> bool {
    matches!(slo_status(state), "fast_burn" | "burning")
}

/// Deploys: the closer before the first error, the stronger.
fn deploy_causes(state: &TriageState) -> Vec<Cause> {
    let first_error = state.logs.first_error_ts.as_deref().and_then(parse_ts);
    let mut out = Vec::new();
    for d in &state.deploys {
        let Some(ts) = parse_ts(&d.ts) else {
            continue;
        };
        let mut score: f64 = 0.5;
        let mut ev = vec![format!("deploy at {}: {}", rfc3339(ts), d.message)];
        if let Some(fe) = first_error {
            let gap = (fe - ts).whole_minutes();
            if fe < ts {
                // Errors began before it: a fix or an unrelated change, not the cause.
                continue;
            }
            if gap <= 60 {
                score = 0.8;
                ev.push(format!("first error log {gap} min after the deploy"));
            }
        }
        if burning(state) {
            score += 0.1;
            ev.push(format!(
                "error budget burning (burn rate {})",
                state.slo["burn_rate"]
            ));
        }
        let cause = format!("Regression from deploy: {}", d.message);
        out.push(Cause::new(score, cause, "deploy", ev));
    }
    out
}

/// Failing health checks.
fn health_cause(state: &TriageState) -> Option<Cause> {
    let h = &state.health;
    if h.failing == 0 {
        return None;
    }
    let total = h.targets.len().max(1);
    let down: Vec<String> = h
        .targets
        .iter()
        .filter(|t| !t.up)
        .map(|t| str_of(&t.instance))
        .collect();
    Some(Cause::new(
        0.6 + 0.3 * h.failing as f64 / total as f64,
        format!(
            "{} of {total} {} targets failing health checks",
            h.failing, state.service
        ),
        "health",
        vec![format!("Prometheus up=0 for {}", down.join(", "))],
    ))
}

/// SLO: burn rate and latency.
fn slo_causes(state: &TriageState) -> Vec<Cause> {
    let slo = &state.slo;
    let mut out = Vec::new();
    if burning(state) {
        let status = slo_status(state);
        let score = if status == "fast_burn" { 0.75 } else { 0.6 };
        let er = slo["error_rate"].as_f64().unwrap_or(0.0);
        out.push(Cause::new(
            score,
            format!(
                "Error budget burning at {}× (error rate {} against an objective of {})",
                slo["burn_rate"],
                pct(er),
                pct(slo["objective"]["availability"].as_f64().unwrap_or(1.0))
            ),
            "slo_burn",
            vec![format!("slo_status={status}, error_rate={}", pct(er))],
        ));
    }
    if slo["latency_over_target"] == true {
        out.push(Cause::new(
            0.5,
            format!(
                "p95 latency {} ms over the {} ms target",
                slo["latency_p95_ms"], slo["objective"]["latency_p95_ms"]
            ),
            "latency",
            vec![format!("latency_p95_ms={}", slo["latency_p95_ms"])],
        ));
    }
    out
}

/// Error log clusters: the top three that recur.
fn log_causes(state: &TriageState) -> Vec<Cause> {
    let total_err = state.logs.analysed;
    let mut out = Vec::new();
    for c in state.logs.clusters.iter().take(3) {
        let n = c.count;
        if n == 0 || (n < 2 && total_err > 3) {
            continue;
        }
        let share = n as f64 / total_err.max(1) as f64;
        let mut ev = vec![
            format!(
                "{n} of {total_err} error lines analysed, {} → {}",
                c.first_ts, c.last_ts
            ),
            format!("sample: {}", c.sample),
        ];
        let mut score = 0.35 + 0.4 * share;
        if let Some(r) = runbook_ref(&state.runbooks, c) {
            ev.push(r);
            score += 0.05;
        }
        let cause = format!("Recurring error: {}", c.template);
        out.push(Cause::new(score, cause, "error_logs", ev));
    }
    out
}

/// A runbook section sharing two or more words with the cluster's template.
fn runbook_ref(runbooks: &[RunbookSnippet], c: &Cluster) -> Option<String> {
    let w = words(&c.template);
    runbooks
        .iter()
        .find(|r| {
            let body = format!("{} {}", str_of(&r.heading_path), r.text).to_lowercase();
            w.iter().filter(|x| body.contains(x.as_str())).count() >= 2
        })
        .map(|r| {
            format!(
                "runbook {}#{} ({})",
                str_of(&r.path),
                str_of(&r.anchor),
                str_of(&r.heading)
            )
        })
}

/// Alerts, one cause per alert name.
fn alert_causes(state: &TriageState) -> Vec<Cause> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for a in &state.alerts {
        let name = str_of(&a.name);
        if seen.contains(&name) {
            continue;
        }
        seen.push(name.clone());
        let mut ev = vec![format!("firing since {}", str_of(&a.active_at))];
        if let Some(s) = &a.summary {
            ev.push(s.clone());
        }
        out.push(Cause::new(
            0.5,
            format!("Alert {name} firing"),
            "alerts",
            ev,
        ));
    }
    out
}

/// The traces that were found.
pub(super) fn found_traces(state: &TriageState) -> impl Iterator<Item = &FoundTrace> {
    state.traces.iter().filter_map(|t| match t {
        TraceSummary::Found(f) => Some(f),
        TraceSummary::Missing { .. } => None,
    })
}

/// Downstream errors seen in traces.
fn trace_causes(state: &TriageState) -> Vec<Cause> {
    let mut out = Vec::new();
    for t in found_traces(state) {
        let others: Vec<&str> = t
            .error_services
            .iter()
            .map(String::as_str)
            .filter(|s| *s != state.service)
            .collect();
        if !others.is_empty() {
            out.push(Cause::new(
                0.55,
                format!("Errors in downstream service {}", others.join(", ")),
                "traces",
                vec![format!(
                    "trace {}: {} error spans of {}",
                    t.trace_id, t.error_spans, t.spans
                )],
            ));
        }
    }
    out
}

/// The best runbook section as a known failure mode.
fn runbook_cause(runbooks: &[RunbookSnippet]) -> Option<Cause> {
    let r = runbooks.first()?;
    Some(Cause::new(
        0.3,
        format!("Known failure mode: {}", str_of(&r.heading_path)),
        "runbook",
        vec![format!("runbook {}#{}", str_of(&r.path), str_of(&r.anchor))],
    ))
}

/// A log message reduced to its template: ids, numbers, addresses and quoted values become
/// placeholders, so the same error with different values falls into one cluster.
pub fn template_of(msg: &str) -> String {
    static RES: std::sync::OnceLock<Vec<(regex::Regex, &'static str)>> = std::sync::OnceLock::new();
    let res =
        RES.get_or_init(|| {
            [
            (r#""[^"]*""#, "\"<s>\""),
            (r"'[^']*'", "'<s>'"),
            (r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b", "<email>"),
            (r"https?://\S+", "<url>"),
            (
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
                "<uuid>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
            (r"\b\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?\b", "<ts>"),
            (r"\b(?:0x)?[0-9a-fA-F]*\d[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\b", "<hex>"),
            (r"\b(?:0x)?[0-9a-fA-F]*[a-fA-F][0-9a-fA-F]*\d[0-9a-fA-F]*\b", "<hex>"),
            (r"\b\d+(?:\.\d+)?(?:ms|s|m|h|b|kb|mb|gb|%)?\b", "<n>"),
        ]
        .into_iter()
        .filter_map(|(p, r)| regex::Regex::new(p).ok().map(|re| (re, r)))
        .collect()
        });
    let mut t: String = one_line(msg).chars().take(400).collect();
    for (re, rep) in res {
        t = re.replace_all(&t, *rep).into_owned();
    }
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    // "<hex>" only for runs of hex with digits and letters; plain words stay words.
    t
}

/// Words of a text worth matching (lowercase, 4+ letters, no placeholders).
pub(super) fn words(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4 && w.chars().all(|c| c.is_alphabetic()))
        .map(|w| w.to_lowercase())
        .filter(|w| {
            !matches!(
                w.as_str(),
                "error" | "failed" | "with" | "from" | "that" | "this"
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fold_values_into_placeholders() {
        let a = template_of(
            "timeout after 3000ms calling 10.0.0.12:5432 for user 'bob' req=7f3a9c21b4",
        );
        let b = template_of(
            "timeout after 2500ms calling 10.0.0.13:5432 for user 'eve' req=0a1b2c3d4e",
        );
        assert_eq!(a, b);
        assert_eq!(a, "timeout after <n> calling <ip> for user '<s>' req=<hex>");
        assert_ne!(a, template_of("connection refused by db"));
        assert_eq!(
            template_of("user a@b.io id 123e4567-e89b-12d3-a456-426614174000 failed"),
            "user <email> id <uuid> failed"
        );
    }
}
