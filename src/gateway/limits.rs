//! Calls per minute per principal and tool: a fixed one-minute window per key.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// In-memory call counters.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<(String, String), (Instant, u32)>>,
}

impl RateLimiter {
    /// Count a call; `Err(seconds to wait)` when over `per_minute`.
    pub fn check(&self, principal: &str, tool: &str, per_minute: u32) -> Result<(), u64> {
        let now = Instant::now();
        let mut w = match self.windows.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if w.len() > 10_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let e = w
            .entry((principal.to_string(), tool.to_string()))
            .or_insert((now, 0));
        if now.duration_since(e.0) >= Duration::from_secs(60) {
            *e = (now, 0);
        }
        if e.1 >= per_minute {
            let left = Duration::from_secs(60).saturating_sub(now.duration_since(e.0));
            return Err(left.as_secs().max(1));
        }
        e.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_principal_and_tool() {
        let r = RateLimiter::default();
        assert!(r.check("a", "t", 2).is_ok());
        assert!(r.check("a", "t", 2).is_ok());
        let wait = r.check("a", "t", 2).unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(r.check("b", "t", 2).is_ok());
        assert!(r.check("a", "u", 2).is_ok());
    }
}
