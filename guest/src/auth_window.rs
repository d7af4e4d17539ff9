//! The auth-failure window: once OpenRouter has answered `401` for a caller, that caller's
//! further requests are refused at once, with the authentication template, for
//! [`AUTH_FAILURE_WINDOW_MS`], instead of sending OpenRouter a key it has just refused.
//!
//! Keyed by the caller's principal (client key name + user, as the breakers are), in kv with the
//! window as TTL, so one user's refused requests never block another key or user. The record
//! holds OpenRouter's (already sanitised) message, so the fast refusal says what OpenRouter said.
//! A kv failure leaves the window closed: the request goes to OpenRouter as usual.

use crate::caps::Kv;
use serde::{Deserialize, Serialize};

/// How long a `401` keeps a caller's requests from reaching OpenRouter.
pub const AUTH_FAILURE_WINDOW_MS: u64 = 60_000;

/// Largest record read back.
const MAX_RECORD_BYTES: u32 = 4096;
/// Longest OpenRouter message kept in the record, in characters.
const MAX_DETAIL_CHARS: usize = 300;

/// An open window: when OpenRouter refused the key, and what it said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub at_ms: u64,
    pub detail: String,
}

impl Refusal {
    /// Whole seconds left in the window at `now_ms` (at least 1).
    pub fn seconds_left(&self, now_ms: u64) -> u64 {
        let end = self.at_ms.saturating_add(AUTH_FAILURE_WINDOW_MS);
        end.saturating_sub(now_ms).div_ceil(1000).max(1)
    }
}

/// The kv key of a principal's window.
pub fn key(principal: &str) -> String {
    format!("authfail:{principal}")
}

/// OpenRouter answered `401` for this principal at `now_ms`.
pub fn record<K: Kv>(kv: &K, principal: &str, now_ms: u64, detail: &str) {
    let refusal = Refusal {
        at_ms: now_ms,
        detail: detail.chars().take(MAX_DETAIL_CHARS).collect(),
    };
    if let Ok(bytes) = serde_json::to_vec(&refusal) {
        let _ = kv.set(&key(principal), &bytes, Some(AUTH_FAILURE_WINDOW_MS));
    }
}

/// The principal's open window at `now_ms`, if any.
pub fn open<K: Kv>(kv: &K, principal: &str, now_ms: u64) -> Option<Refusal> {
    kv.get(&key(principal), MAX_RECORD_BYTES)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<Refusal>(&b).ok())
        .filter(|r| r.at_ms <= now_ms && now_ms < r.at_ms.saturating_add(AUTH_FAILURE_WINDOW_MS))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemKv;

    #[test]
    fn a_refusal_blocks_its_principal_for_sixty_seconds_only() {
        let kv = MemKv::default();
        assert_eq!(open(&kv, "key-1:alice", 1_000), None);
        record(&kv, "key-1:alice", 1_000, "User not found");
        let r = open(&kv, "key-1:alice", 1_000).unwrap();
        assert_eq!(r.detail, "User not found");
        assert_eq!(r.seconds_left(1_000), 60);
        assert_eq!(r.seconds_left(60_500), 1);
        assert!(open(&kv, "key-1:alice", 60_999).is_some());
        assert_eq!(open(&kv, "key-1:alice", 61_000), None, "the window closes");
        assert_eq!(
            open(&kv, "key-1:bob", 1_000),
            None,
            "other users are not blocked"
        );
        assert_eq!(open(&kv, "key-2:alice", 1_000), None, "nor other keys");
    }

    #[test]
    fn a_long_detail_is_shortened() {
        let kv = MemKv::default();
        record(&kv, "p", 0, &"x".repeat(10_000));
        assert_eq!(
            open(&kv, "p", 0).unwrap().detail.chars().count(),
            MAX_DETAIL_CHARS
        );
    }
}
