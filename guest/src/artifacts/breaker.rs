//! The per-user database breaker (REFERENCE §2.11): after `BREAKER_MAX_FAILURES` store or crypto
//! failures within `BREAKER_WINDOW_SECONDS`, persistence and replay are skipped for that user
//! until the oldest failure leaves the window, so a database that is down is not hit by every
//! chat. The failure history lives in kv (shared by every worker when kv is Redis) with the
//! window as its time to live; a success clears it. A kv failure counts as "closed": the breaker
//! must never be the reason a chat loses its history.

use super::ArtifactSettings;
use crate::caps::{Env, Kv};

/// Most bytes of history read back (a few timestamps).
const MAX_HISTORY_BYTES: u32 = 4096;

fn key(user_id: Option<&str>) -> String {
    format!("db_breaker:{}", user_id.unwrap_or("anonymous"))
}

fn history(kv: &impl Kv, key: &str) -> Vec<u64> {
    kv.get(key, MAX_HISTORY_BYTES)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn window_ms(s: &ArtifactSettings) -> u64 {
    s.breaker_window_seconds.max(1).saturating_mul(1000)
}

/// Whether the breaker is open for this user now.
pub fn is_open(s: &ArtifactSettings, kv: &impl Kv, env: &impl Env, user_id: Option<&str>) -> bool {
    let now = env.now_ms();
    let recent = history(kv, &key(user_id))
        .into_iter()
        .filter(|t| now.saturating_sub(*t) < window_ms(s))
        .count();
    recent >= s.breaker_max_failures.max(1) as usize
}

/// Record one failure.
pub fn record_failure(s: &ArtifactSettings, kv: &impl Kv, env: &impl Env, user_id: Option<&str>) {
    let now = env.now_ms();
    let k = key(user_id);
    let mut h: Vec<u64> = history(kv, &k)
        .into_iter()
        .filter(|t| now.saturating_sub(*t) < window_ms(s))
        .collect();
    h.push(now);
    let keep = s.breaker_history_size.max(s.breaker_max_failures).max(1) as usize;
    if h.len() > keep {
        h.drain(..h.len() - keep);
    }
    if let Ok(bytes) = serde_json::to_vec(&h)
        && let Err(e) = kv.set(&k, &bytes, Some(window_ms(s)))
    {
        env.log(&format!("db breaker: could not record a failure: {e}"));
    }
}

/// Record a success: the history is cleared.
pub fn record_success(kv: &impl Kv, user_id: Option<&str>) {
    let _ = kv.delete(&key(user_id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FixedEnv, MemKv};

    #[test]
    fn the_breaker_opens_after_the_threshold_and_closes_when_the_window_passes() {
        let (kv, env) = (MemKv::default(), FixedEnv::default());
        let s = ArtifactSettings {
            breaker_max_failures: 3,
            breaker_window_seconds: 60,
            ..ArtifactSettings::default()
        };
        let user = Some("u1");
        for _ in 0..2 {
            record_failure(&s, &kv, &env, user);
            assert!(!is_open(&s, &kv, &env, user));
        }
        record_failure(&s, &kv, &env, user);
        assert!(is_open(&s, &kv, &env, user));
        assert!(!is_open(&s, &kv, &env, Some("u2")), "per user");
        env.now.set(env.now.get() + 60_000);
        assert!(!is_open(&s, &kv, &env, user), "closes by itself");
        record_failure(&s, &kv, &env, user);
        record_failure(&s, &kv, &env, user);
        record_failure(&s, &kv, &env, user);
        assert!(is_open(&s, &kv, &env, user));
        record_success(&kv, user);
        assert!(!is_open(&s, &kv, &env, user));
    }
}
