//! The scheduler: each wake-up (a tokio-cron-scheduler fire or the 30 s wall-clock check) is
//! a [`Jobs::tick`] that compares every task's last handled fire with the clock, starts what
//! is due and hands what was missed to the task's `catch_up` policy.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use time::OffsetDateTime;
use tokio::sync::watch;

use super::*;

impl Jobs {
    /// Check the clock against every scheduled task: start what is due, handle what was
    /// missed by its `catch_up` policy. Safe to call at any time and from several places.
    pub async fn tick(&self) -> Result<()> {
        self.recovered().await?;
        let _g = self.0.tick_lock.lock().await;
        self.0.ticks.fetch_add(1, Ordering::Relaxed);
        let now = self.0.clock.now();
        for task in &self.0.registry.tasks {
            if !task.enabled || task.schedule.is_none() {
                continue;
            }
            if let Err(e) = self.tick_task(task, now).await {
                tracing::warn!(task = %task.id, error = %e, "job_tick_failed");
            }
        }
        Ok(())
    }

    async fn tick_task(&self, task: &Task, now: OffsetDateTime) -> Result<()> {
        let Some(sched) = &task.schedule else {
            return Ok(());
        };
        let key = format!("{} @ {}", sched.expr, sched.tz_name());
        let id = task.id.clone();
        let mut state = self
            .0
            .store
            .read(move |txn| tables::read_state(txn, &id))
            .await?;
        let last = match state.last_fire {
            Some(l) if state.schedule == key => l,
            _ => {
                // First sight of this task (or of its new schedule): fires from now on.
                state.last_fire = Some(now);
                state.schedule = key;
                let id = task.id.clone();
                return self
                    .0
                    .store
                    .write(move |txn| tables::save_state(txn, &id, &state))
                    .await;
            }
        };
        if now <= last {
            return Ok(());
        }
        let fires = sched.fires_between(last, now, 100_000);
        let (Some(first), Some(latest)) = (fires.first, fires.last) else {
            return Ok(());
        };
        let latest_on_time = now - latest <= GRACE;
        let reason = if first >= self.0.started_at {
            "missed while asleep"
        } else {
            "missed while stopped"
        };
        let missed_n = fires.count - u64::from(latest_on_time);
        let missed = |handled: String| Missed {
            count: fires.count,
            capped: fires.capped,
            first,
            last: latest,
            reason: reason.to_string(),
            handled,
        };
        // (trigger, scheduled for, missed)
        let mut plan: Vec<(Trigger, OffsetDateTime, Option<Missed>)> = Vec::new();
        if missed_n == 0 {
            plan.push((Trigger::Schedule, latest, None));
        } else {
            match task.catch_up {
                CatchUp::Skip => {
                    let mut m = missed("skipped by policy".into());
                    m.count = missed_n;
                    if latest_on_time {
                        m.last = sched
                            .last_at_or_before(latest - time::Duration::SECOND)
                            .unwrap_or(latest);
                        plan.push((Trigger::Schedule, latest, None));
                    }
                    state.last_missed = Some(m);
                }
                CatchUp::Once => {
                    let m = missed("ran once".into());
                    state.last_missed = Some(m.clone());
                    plan.push((Trigger::CatchUp, latest, Some(m)));
                }
                CatchUp::All => {
                    let list = sched.last_fires(last, now, task.catch_up_max as usize);
                    let k = list.len();
                    let m = missed(format!("ran {k} of {}", fires.count));
                    state.last_missed = Some(m.clone());
                    for at in list {
                        plan.push((Trigger::CatchUp, at, Some(m.clone())));
                    }
                }
            }
        }
        state.last_fire = Some(latest);
        // Decide each planned run's status under the live lock (overlap policy).
        let mut runs: Vec<(JobRun, Option<watch::Receiver<u8>>)> = Vec::new();
        {
            let mut live = lock(&self.0.live);
            let mut busy = live.running.get(&task.id).is_some_and(|v| !v.is_empty());
            let mut waiting = live.waiting.get(&task.id).map(|w| w.len()).unwrap_or(0);
            for (i, (trigger, at, m)) in plan.into_iter().enumerate() {
                let base = self.scheduled_run(task, trigger, at, m, now);
                let sequel = i > 0; // the later runs of an `all` catch-up wait their turn
                let status = match (busy, task.overlap) {
                    (false, _) if !sequel => JobStatus::Running,
                    (_, Overlap::Allow) if !sequel => JobStatus::Running,
                    (true, Overlap::Skip) if !sequel => {
                        state.skipped_overlap += 1;
                        tracing::info!(task = %task.id, "job_fire_skipped_overlap");
                        continue;
                    }
                    (true, Overlap::QueueOne) if !sequel && waiting > 0 => {
                        state.skipped_overlap += 1;
                        continue;
                    }
                    _ => JobStatus::Queued,
                };
                let mut run = base;
                run.status = status;
                if status == JobStatus::Running {
                    run.started_at = Some(now);
                    live.running
                        .entry(task.id.clone())
                        .or_default()
                        .push(run.id.clone());
                    let rx = self.stop_channel(&mut live, &run.id);
                    busy = true;
                    runs.push((run, Some(rx)));
                } else {
                    live.waiting
                        .entry(task.id.clone())
                        .or_default()
                        .push_back(run.clone());
                    waiting += 1;
                    runs.push((run, None));
                }
            }
        }
        let recs: Vec<JobRun> = runs.iter().map(|(r, _)| r.clone()).collect();
        let id = task.id.clone();
        let saved = self
            .0
            .store
            .write(move |txn| {
                for r in &recs {
                    tables::save_run(txn, r)?;
                }
                tables::save_state(txn, &id, &state)
            })
            .await;
        if let Err(e) = saved {
            for (r, _) in &runs {
                self.forget(r);
            }
            return Err(e);
        }
        for (run, rx) in runs {
            self.publish(&run);
            if let Some(rx) = rx {
                let me = self.clone();
                tokio::spawn(async move { me.drive(run, rx).await });
            }
        }
        Ok(())
    }

    pub(super) fn scheduled_run(
        &self,
        task: &Task,
        trigger: Trigger,
        at: OffsetDateTime,
        missed: Option<Missed>,
        now: OffsetDateTime,
    ) -> JobRun {
        JobRun {
            id: run_id(),
            job: task.id.clone(),
            trigger,
            status: JobStatus::Queued,
            dry_run: false,
            inputs: Json::Object(task.inputs.clone()),
            requested_by: SCHEDULER_AGENT.into(),
            scheduled_for: Some(at),
            missed,
            created_at: now,
            started_at: None,
            finished_at: None,
            duration_ms: None,
            summary: String::new(),
            result: Json::Null,
            artifacts: vec![],
            would_write: vec![],
            tool_calls: 0,
            error: None,
        }
    }

    /// Run the scheduler until `closing`: tokio-cron-scheduler fires each UTC task at its
    /// time and re-reads the wall clock every 30 s (which also serves tasks with a `tz`,
    /// whose fires we compute ourselves); every wake-up is a [`Jobs::tick`].
    pub fn spawn(&self, mut closing: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let _ = me.tick().await;
            // The crate's callbacks only ring this bell: they hold nothing of the room, so
            // nothing of the store outlives a shutdown inside the crate's own tasks.
            let wake = Arc::new(tokio::sync::Notify::new());
            let mut sched = me.cron_scheduler(wake.clone()).await;
            let mut every = tokio::time::interval(Duration::from_secs(30));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = closing.wait_for(|c| *c) => break,
                    _ = wake.notified() => {}
                    // Without the crate (it failed to start), a plain 30 s check.
                    _ = every.tick(), if sched.is_none() => {}
                }
                if let Err(e) = me.tick().await {
                    tracing::warn!(error = %e, "job_tick_failed");
                }
            }
            if let Some(s) = sched.as_mut() {
                let _ = s.shutdown().await;
            }
            me.stop_all().await;
        })
    }

    async fn cron_scheduler(
        &self,
        wake: Arc<tokio::sync::Notify>,
    ) -> Option<tokio_cron_scheduler::JobScheduler> {
        let s = match tokio_cron_scheduler::JobScheduler::new().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cron_scheduler_unavailable_polling_every_30s");
                return None;
            }
        };
        let mut crons: Vec<String> = vec![WALL_CLOCK_CHECK.to_string()];
        for t in &self.0.registry.tasks {
            if let (Some(sc), true) = (&t.schedule, t.enabled) {
                if sc.tz_name() == "UTC" && !crons.contains(&sc.six_field()) {
                    crons.push(sc.six_field());
                }
            }
        }
        for c in crons {
            let wake = wake.clone();
            let job = tokio_cron_scheduler::Job::new_async(c.as_str(), move |_id, _s| {
                let wake = wake.clone();
                Box::pin(async move {
                    wake.notify_one();
                })
            });
            match job {
                Ok(j) => {
                    if let Err(e) = s.add(j).await {
                        tracing::warn!(cron = %c, error = %e, "cron_job_not_added");
                    }
                }
                Err(e) => tracing::warn!(cron = %c, error = %e, "cron_job_not_added"),
            }
        }
        if let Err(e) = s.start().await {
            tracing::warn!(error = %e, "cron_scheduler_unavailable_polling_every_30s");
            return None;
        }
        Some(s)
    }

    /// Stop the running jobs (recorded as interrupted) and wait a little for them.
    pub async fn stop_all(&self) {
        {
            let live = lock(&self.0.live);
            for tx in live.stop.values() {
                let _ = tx.send(cx::STOP_SHUTDOWN);
            }
        }
        for _ in 0..250 {
            if lock(&self.0.live).stop.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
