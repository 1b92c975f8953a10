//! Injected time, so overdue follow-ups, windows and ids are testable without sleeping.

use std::sync::Mutex;
use time::OffsetDateTime;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC, truncated to milliseconds (what we store).
    fn now(&self) -> OffsetDateTime;
}

/// Truncate a timestamp to whole milliseconds in UTC.
pub fn trunc_ms(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    let ms = t.millisecond();
    t.replace_millisecond(ms).unwrap_or(t)
}

/// Earliest and latest accepted timestamps (years 1970-9999 in UTC): everything stored can
/// be written back as RFC 3339 and used in time arithmetic without overflow.
fn in_range(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(time::UtcOffset::UTC)?;
    (1970..=9998).contains(&utc.year()).then(|| trunc_ms(utc))
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        trunc_ms(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock stopped at `t`.
    pub fn new(t: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(trunc_ms(t)))
    }
    /// Move the clock forward.
    pub fn advance(&self, d: time::Duration) {
        if let Ok(mut g) = self.0.lock() {
            *g += d;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        match self.0.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }
}

/// Microseconds since the Unix epoch (index keys).
pub fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000) as i64
}

/// RFC 3339 text of a timestamp, in UTC with a `Z`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parse an RFC 3339 timestamp, or a plain `YYYY-MM-DD` date (midnight UTC).
/// Years outside 1970-9998 (UTC) are refused.
pub fn parse_ts(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return in_range(t);
    }
    // Python's isoformat() without an offset: treat as UTC.
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    if let Ok(t) = time::PrimitiveDateTime::parse(s, &fmt) {
        return in_range(t.assume_utc());
    }
    parse_date(s).and_then(|d| in_range(d.midnight().assume_utc()))
}

/// A plain `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<time::Date> {
    let dfmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &dfmt).ok()
}

/// Fill `buf` from the OS random source (getrandom). Unit tests can make it fail on their own
/// thread ([`fail_os_random_on_this_thread`]) to check what each caller does then.
fn os_fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    #[cfg(test)]
    if FAIL_OS_RANDOM.with(|f| f.get()) {
        return Err(getrandom::Error::UNSUPPORTED);
    }
    getrandom::fill(buf)
}

#[cfg(test)]
thread_local! {
    static FAIL_OS_RANDOM: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Test seam: make the OS random source fail (`true`) or work again on the calling thread.
#[cfg(test)]
pub fn fail_os_random_on_this_thread(fail: bool) {
    FAIL_OS_RANDOM.with(|f| f.set(fail));
}

/// Random bytes as lowercase hex, for ids and temporary names only (request, run, event
/// ids; tmp files), never for key material: if the OS source fails it falls back to
/// clock-derived bytes so an id can still be made (callers check for collisions). Secrets
/// use [`random_key_hex`].
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if os_fill(&mut buf).is_err() {
        let n = OffsetDateTime::now_utc().unix_timestamp_nanos() as u128;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (n >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(31);
        }
    }
    hex(&buf)
}

/// Random bytes as lowercase hex for key material (API keys, the audit secret): from the OS
/// source only. If it fails, so does this, and no weaker source is tried.
pub fn random_key_hex(bytes: usize) -> crate::error::Result<String> {
    let mut buf = vec![0u8; bytes];
    os_fill(&mut buf).map_err(|e| {
        crate::error::Error::Internal(format!(
            "the OS random source failed ({e}); no key material was made"
        ))
    })?;
    Ok(hex(&buf))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_python_and_dates() {
        let a = parse_ts("2026-02-23T10:00:00Z").unwrap();
        let b = parse_ts("2026-02-23T10:00:00+00:00").unwrap();
        let c = parse_ts("2026-02-23T10:00:00.123456").unwrap();
        assert_eq!(a, b);
        assert_eq!(c.millisecond(), 123);
        assert_eq!(
            parse_ts("2026-02-23").unwrap(),
            a - time::Duration::hours(10)
        );
        assert!(parse_ts("yesterday").is_none());
        // Out of range in UTC: refused, never a panic or an unwritable record.
        assert!(parse_ts("9999-12-31T23:30:00-01:00").is_none());
        assert!(parse_ts("0000-01-01T00:00:00+01:00").is_none());
        assert!(parse_ts("1969-12-31T23:59:59Z").is_none());
        assert_eq!(rfc3339(a), "2026-02-23T10:00:00Z");
    }

    #[test]
    fn random_hex_has_requested_length_and_varies() {
        let a = random_hex(6);
        assert_eq!(a.len(), 12);
        assert_ne!(a, random_hex(6));
        let k = random_key_hex(24).unwrap();
        assert_eq!(k.len(), 48);
        assert_ne!(k, random_key_hex(24).unwrap());
    }

    #[test]
    fn key_material_fails_closed_when_the_os_source_fails() {
        fail_os_random_on_this_thread(true);
        let key = random_key_hex(24);
        // Ids still get made (from the clock).
        let id = random_hex(8);
        fail_os_random_on_this_thread(false);
        let e = key.unwrap_err();
        assert!(e.to_string().contains("OS random source failed"), "{e}");
        assert_eq!(id.len(), 16);
    }
}

/// Serde for timestamps: RFC 3339 out (UTC, `Z`); RFC 3339, offset-less ISO or a date in.
pub mod serde_ts {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    /// Serialize as RFC 3339 (an unrepresentable time is an error, never an empty string).
    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        let text = super::rfc3339(*t);
        if text.is_empty() {
            return Err(serde::ser::Error::custom("timestamp out of range"));
        }
        s.serialize_str(&text)
    }
    /// Deserialize leniently (see [`super::parse_ts`]).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_ts(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not an RFC 3339 timestamp")))
    }

    /// The same for `Option<OffsetDateTime>` (null when absent).
    pub mod option {
        use super::*;
        /// Serialize as RFC 3339 or null.
        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
        /// Deserialize RFC 3339 or null.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            let s = Option::<String>::deserialize(d)?;
            match s {
                None => Ok(None),
                Some(s) if s.is_empty() => Ok(None),
                Some(s) => crate::kernel::clock::parse_ts(&s).map(Some).ok_or_else(|| {
                    serde::de::Error::custom(format!("'{s}' is not an RFC 3339 timestamp"))
                }),
            }
        }
    }
}
