//! Cron schedules: 5 fields (minutes) or 6 (seconds first), evaluated in UTC or in a named
//! time zone. Local-time schedules are computed here with croner over chrono-tz, so a 09:00
//! Europe/Kyiv job stays at 09:00 local across DST (tokio-cron-scheduler's `_tz` constructors
//! keep the offset of the day they were built, see NOTES-crates.md).

use chrono::{DateTime, TimeZone, Utc};
use time::OffsetDateTime;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: croner::Cron,
    tz: Option<chrono_tz::Tz>,
    /// As written in the registry.
    pub expr: String,
    /// Whether the expression has a seconds field.
    pub seconds: bool,
}

/// Why a schedule could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// `schedule` or `tz`.
    pub field: &'static str,
    pub message: String,
}

fn to_chrono(t: OffsetDateTime) -> DateTime<Utc> {
    let nanos = t.unix_timestamp_nanos();
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    // Fires fall on whole seconds: the sub-second part of `t` is dropped.
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

fn from_chrono<Tz: TimeZone>(t: DateTime<Tz>) -> Option<OffsetDateTime> {
    let u = t.with_timezone(&Utc);
    OffsetDateTime::from_unix_timestamp(u.timestamp())
        .ok()
        .map(|o| o + time::Duration::nanoseconds(u.timestamp_subsec_nanos() as i64))
}

impl Schedule {
    /// Parse a 5- or 6-field cron expression and an optional IANA time zone name.
    pub fn parse(expr: &str, tz: Option<&str>) -> Result<Schedule, ScheduleError> {
        let fields = expr.split_whitespace().count();
        let bad = |m: String| ScheduleError {
            field: "schedule",
            message: m,
        };
        if expr.trim_start().starts_with('@') {
            return Err(bad(format!(
                "'{expr}': write the cron fields out (e.g. '0 * * * *' for hourly)"
            )));
        }
        if fields != 5 && fields != 6 {
            return Err(bad(format!(
                "'{expr}' has {fields} fields; a schedule has 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
            )));
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(if fields == 6 {
                croner::parser::Seconds::Required
            } else {
                croner::parser::Seconds::Disallowed
            })
            .build()
            .parse(expr)
            .map_err(|e| bad(format!("'{expr}': {e}")))?;
        let tz = match tz {
            None => None,
            Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| ScheduleError {
                field: "tz",
                message: format!(
                    "'{name}' is not an IANA time zone (e.g. Europe/Kyiv, America/New_York, UTC)"
                ),
            })?),
        };
        let s = Schedule {
            cron,
            tz,
            expr: expr.to_string(),
            seconds: fields == 6,
        };
        // A pattern that can never match (31 February) is refused now, not silently idle.
        if s.next_after(OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 56))
            .is_none()
        {
            return Err(bad(format!("'{expr}' never fires")));
        }
        Ok(s)
    }

    /// The time zone's name (`UTC` when none was given).
    pub fn tz_name(&self) -> &str {
        self.tz.as_ref().map_or("UTC", |t| t.name())
    }

    /// The first fire strictly after `t`.
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let c = to_chrono(t);
        match self.tz {
            Some(tz) => self
                .cron
                .find_next_occurrence(&c.with_timezone(&tz), false)
                .ok()
                .and_then(from_chrono),
            None => self
                .cron
                .find_next_occurrence(&c, false)
                .ok()
                .and_then(from_chrono),
        }
    }

    /// The next `n` fires after `t`.
    pub fn next_n(&self, t: OffsetDateTime, n: usize) -> Vec<OffsetDateTime> {
        let mut out = Vec::with_capacity(n);
        let mut at = t;
        while out.len() < n {
            match self.next_after(at) {
                Some(f) => {
                    out.push(f);
                    at = f;
                }
                None => break,
            }
        }
        out
    }

    /// Fires in `(after, until]`: how many (counting stops at `cap`), the first and the last.
    pub fn fires_between(&self, after: OffsetDateTime, until: OffsetDateTime, cap: u64) -> Fires {
        let mut f = Fires::default();
        let mut at = after;
        while let Some(next) = self.next_after(at) {
            if next > until {
                break;
            }
            f.first.get_or_insert(next);
            f.last = Some(next);
            f.count += 1;
            if f.count >= cap {
                // Stop counting, but the last fire before `until` still matters.
                f.capped = true;
                f.last = self.last_at_or_before(until).or(f.last);
                break;
            }
            at = next;
        }
        f
    }

    /// The last `n` fires in `(after, until]`, oldest first.
    pub fn last_fires(
        &self,
        after: OffsetDateTime,
        until: OffsetDateTime,
        n: usize,
    ) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        let mut at = until;
        while out.len() < n {
            match self.last_at_or_before(at) {
                Some(f) if f > after => {
                    out.push(f);
                    at = f - time::Duration::SECOND;
                }
                _ => break,
            }
        }
        out.reverse();
        out
    }

    /// The latest fire at or before `t`.
    pub fn last_at_or_before(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let c = to_chrono(t);
        match self.tz {
            Some(tz) => self
                .cron
                .find_previous_occurrence(&c.with_timezone(&tz), true)
                .ok()
                .and_then(from_chrono),
            None => self
                .cron
                .find_previous_occurrence(&c, true)
                .ok()
                .and_then(from_chrono),
        }
    }

    /// The schedule in words ("At 09:00, only on Monday").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The expression in tokio-cron-scheduler's 6-field form (seconds first).
    pub fn six_field(&self) -> String {
        if self.seconds {
            self.expr.clone()
        } else {
            format!("0 {}", self.expr.trim())
        }
    }
}

/// What [`Schedule::fires_between`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fires {
    pub count: u64,
    /// Counting stopped at the cap: there were at least `count`.
    pub capped: bool,
    pub first: Option<OffsetDateTime>,
    pub last: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn five_and_six_field_schedules() {
        let s = Schedule::parse("*/5 * * * *", None).unwrap();
        let t = datetime!(2026-03-02 10:03:10 UTC);
        assert_eq!(
            s.next_n(t, 3),
            vec![
                datetime!(2026-03-02 10:05 UTC),
                datetime!(2026-03-02 10:10 UTC),
                datetime!(2026-03-02 10:15 UTC)
            ]
        );
        assert_eq!(s.six_field(), "0 */5 * * * *");
        let s6 = Schedule::parse("30 0 6 * * 1", None).unwrap();
        // 2026-03-02 is a Monday.
        assert_eq!(
            s6.next_after(datetime!(2026-03-01 00:00 UTC)),
            Some(datetime!(2026-03-02 06:00:30 UTC))
        );
        assert_eq!(s6.six_field(), "30 0 6 * * 1");
    }

    #[test]
    fn bad_schedules_name_their_field() {
        for (expr, tz, field) in [
            ("* * * *", None, "schedule"),
            ("61 * * * *", None, "schedule"),
            ("@hourly", None, "schedule"),
            ("0 0 31 2 *", None, "schedule"),
            ("0 9 * * *", Some("Mars/Olympus"), "tz"),
        ] {
            let e = Schedule::parse(expr, tz).unwrap_err();
            assert_eq!(e.field, field, "{expr}: {}", e.message);
        }
    }

    #[test]
    fn a_local_schedule_keeps_its_wall_clock_time_across_dst() {
        // 09:00 in New York: 14:00 UTC in winter (EST), 13:00 UTC after 8 March 2026 (EDT).
        let s = Schedule::parse("0 9 * * *", Some("America/New_York")).unwrap();
        let fires = s.next_n(datetime!(2026-03-06 12:00 UTC), 4);
        assert_eq!(
            fires,
            vec![
                datetime!(2026-03-06 14:00 UTC),
                datetime!(2026-03-07 14:00 UTC),
                datetime!(2026-03-08 13:00 UTC),
                datetime!(2026-03-09 13:00 UTC),
            ]
        );
        // And back in November (1 November 2026 is the change).
        let back = s.next_n(datetime!(2026-10-31 00:00 UTC), 2);
        assert_eq!(
            back,
            vec![
                datetime!(2026-10-31 13:00 UTC),
                datetime!(2026-11-01 14:00 UTC)
            ]
        );
    }

    #[test]
    fn a_job_in_the_skipped_hour_runs_once_after_the_change() {
        // 02:30 does not exist in New York on 8 March 2026; it runs once, at 03:00 EDT.
        let s = Schedule::parse("30 2 * * *", Some("America/New_York")).unwrap();
        let f = s.fires_between(
            datetime!(2026-03-07 12:00 UTC),
            datetime!(2026-03-09 12:00 UTC),
            100,
        );
        assert_eq!(f.count, 2);
        assert_eq!(f.first, Some(datetime!(2026-03-08 07:00 UTC)));
        assert_eq!(f.last, Some(datetime!(2026-03-09 06:30 UTC)));
    }

    #[test]
    fn fires_between_counts_and_caps() {
        let s = Schedule::parse("*/5 * * * *", None).unwrap();
        let a = datetime!(2026-03-02 00:00 UTC);
        let f = s.fires_between(a, a + time::Duration::days(3), 1_000_000);
        assert_eq!(f.count, 3 * 24 * 12);
        assert_eq!(f.first, Some(datetime!(2026-03-02 00:05 UTC)));
        assert_eq!(f.last, Some(datetime!(2026-03-05 00:00 UTC)));
        let capped = s.fires_between(a, a + time::Duration::days(3), 10);
        assert!(capped.capped && capped.count == 10);
        assert_eq!(capped.last, Some(datetime!(2026-03-05 00:00 UTC)));
        assert_eq!(s.fires_between(a, a, 10).count, 0);
    }
}
