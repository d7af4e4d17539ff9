//! Sliding-window circuit breakers in kv: a breaker opens when it holds
//! `BREAKER_MAX_FAILURES` failures within `BREAKER_WINDOW_SECONDS`; older failures fall out of the
//! window, so it closes on its own. A tool breaker is also cleared by a success of that tool.
//!
//! The failure times live under one kv key per breaker as a JSON list (capped at the threshold,
//! with the window as TTL). Read-modify-write is not atomic across requests: two requests failing
//! at the same instant may record one failure; a breaker is a guard, not an accountant.

use crate::caps::Kv;

/// Largest breaker record read back.
const MAX_RECORD_BYTES: u32 = 4096;

/// One breaker: its kv key and its rule.
pub struct Breaker<'a, K> {
    pub kv: &'a K,
    pub key: String,
    pub max_failures: u32,
    pub window_ms: u64,
}

/// The per-user, per-tool breaker's key.
pub fn tool_key(user: &str, tool: &str) -> String {
    format!("breaker:tool:{user}:{tool}")
}

/// The per-user request breaker's key.
pub fn request_key(user: &str) -> String {
    format!("breaker:request:{user}")
}

impl<K: Kv> Breaker<'_, K> {
    fn failures(&self, now_ms: u64) -> Vec<u64> {
        let stored = self
            .kv
            .get(&self.key, MAX_RECORD_BYTES)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice::<Vec<u64>>(&b).ok())
            .unwrap_or_default();
        let since = now_ms.saturating_sub(self.window_ms);
        stored.into_iter().filter(|t| *t > since).collect()
    }

    /// Whether calls are refused now. A kv failure leaves the breaker closed.
    pub fn is_open(&self, now_ms: u64) -> bool {
        self.opens_at(self.failure_count(now_ms))
    }

    /// Failures recorded within the window.
    pub fn failure_count(&self, now_ms: u64) -> usize {
        self.failures(now_ms).len()
    }

    /// Whether this many recent failures keep the breaker open.
    pub fn opens_at(&self, failures: usize) -> bool {
        self.max_failures > 0 && failures >= self.max_failures as usize
    }

    /// Record one failure at `now_ms`, keeping as many as the threshold needs.
    pub fn record_failure(&self, now_ms: u64) {
        self.record_failure_keeping(now_ms, self.max_failures);
    }

    /// Record one failure at `now_ms`, keeping at most the latest `history` failures (at least
    /// one). A history shorter than the threshold never opens the breaker.
    pub fn record_failure_keeping(&self, now_ms: u64, history: u32) {
        let mut failures = self.failures(now_ms);
        failures.push(now_ms);
        let keep = history.max(1) as usize;
        if failures.len() > keep {
            failures.drain(..failures.len() - keep);
        }
        if let Ok(bytes) = serde_json::to_vec(&failures) {
            let _ = self.kv.set(&self.key, &bytes, Some(self.window_ms.max(1)));
        }
    }

    /// Forget the failures (a success of the guarded thing).
    pub fn clear(&self) {
        let _ = self.kv.delete(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemKv;

    #[test]
    fn opens_at_the_threshold_within_the_window_and_closes_as_failures_age() {
        let kv = MemKv::default();
        let b = Breaker {
            kv: &kv,
            key: tool_key("u1", "search"),
            max_failures: 3,
            window_ms: 60_000,
        };
        b.record_failure(1_000);
        b.record_failure(2_000);
        assert!(!b.is_open(2_000));
        b.record_failure(3_000);
        assert!(b.is_open(3_000));
        // Another user's breaker for the same tool is independent.
        let other = Breaker {
            kv: &kv,
            key: tool_key("u2", "search"),
            max_failures: 3,
            window_ms: 60_000,
        };
        assert!(!other.is_open(3_000));
        // The first failure leaves the window: closed again.
        assert!(!b.is_open(61_000));
        b.record_failure(61_500);
        assert!(b.is_open(61_500));
        b.clear();
        assert!(!b.is_open(61_500));
    }
}
