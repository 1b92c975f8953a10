//! Synthetic incidents for the benchmarks: `n` incidents one minute apart from `base`, over
//! 40 services, each with its `opened` event, written in durable batches of 5000.

use serde_json::json;
use sofiia::incidents::model::{Incident, Severity, Status};
use sofiia::incidents::{new_event, tables};
use sofiia::store::Store;

/// Write `n` synthetic incidents (and their first events) into `store`.
pub async fn populate(store: &Store, base: time::OffsetDateTime, n: usize) {
    let services: Vec<String> = (0..40).map(|i| format!("svc{i}")).collect();
    let mut made = 0;
    while made < n {
        let batch = 5_000.min(n - made);
        let services = services.clone();
        store
            .write(move |txn| {
                for k in made..made + batch {
                    let t = base + time::Duration::seconds(k as i64 * 60);
                    let inc = Incident {
                        id: format!(
                            "inc_{}_{:012x}",
                            t.format(time::macros::format_description!(
                                "[year][month][day]_[hour][minute]"
                            ))
                            .unwrap(),
                            k
                        ),
                        service: services[k % services.len()].clone(),
                        env: ["prod", "staging", "dev"][k % 3].into(),
                        severity: Severity::ALL[(k / 3) % 4],
                        status: Status::ALL[(k / 7) % 5],
                        title: format!("Synthetic incident {k} with a realistic title length"),
                        summary: "Error rate above SLO after deploy; rolled back.".into(),
                        started_at: t,
                        acknowledged_at: None,
                        mitigated_at: None,
                        resolved_at: None,
                        closed_at: None,
                        owner: Some("oncall".into()),
                        created_by: "bench".into(),
                        labels: vec!["synthetic".into()],
                        fingerprints: vec![],
                        created_at: t,
                        updated_at: t,
                    };
                    tables::put_incident(txn, None, &inc)?;
                    let mut ev = new_event(
                        &inc.id,
                        t,
                        "status_change",
                        "opened".into(),
                        json!({"to":"open"}),
                        "bench",
                    );
                    tables::insert_event(txn, &mut ev)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        made += batch;
    }
}
