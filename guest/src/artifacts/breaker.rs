//! The per-caller database breaker: after `BREAKER_MAX_FAILURES` store or
//! crypto failures within `BREAKER_WINDOW_SECONDS`, persistence and replay are skipped for that
//! caller until the oldest failure leaves the window, so a database that is down is not hit by
//! every chat. The caller is the request's principal (`RequestContext::principal`: the client
//! key's name, and the user when the key may name one), so one client's failures never switch
//! persistence off for another key's users, and requests without a user use their key's own
//! bucket instead of one shared by every anonymous client. It remembers the latest
//! `BREAKER_HISTORY_SIZE` failures; a history shorter than the threshold never opens it. The
//! failure history lives in kv (shared by every worker when kv is Redis) with the
//! window as its time to live; a success clears it. A kv failure counts as "closed": the breaker
//! must never be the reason a chat loses its history.

use super::ArtifactSettings;
use crate::caps::{Env, Kv};
use crate::tool_loop::breaker::Breaker;

/// The caller's DB breaker key.
fn key(principal: &str) -> String {
    format!("db_breaker:{principal}")
}

/// The per-caller DB breaker: the same sliding-window kv breaker as the tool breakers, under its
/// own key. A threshold of 0 counts as 1 (the DB breaker is never switched off by it).
fn breaker<'a, K: Kv>(s: &ArtifactSettings, kv: &'a K, principal: &str) -> Breaker<'a, K> {
    Breaker {
        kv,
        key: key(principal),
        max_failures: s.breaker_max_failures.max(1),
        window_ms: s.breaker_window_seconds.max(1).saturating_mul(1000),
    }
}

pub fn is_open(s: &ArtifactSettings, kv: &impl Kv, env: &impl Env, principal: &str) -> bool {
    breaker(s, kv, principal).is_open(env.now_ms())
}

pub fn record_failure(s: &ArtifactSettings, kv: &impl Kv, env: &impl Env, principal: &str) {
    breaker(s, kv, principal).record_failure_keeping(env.now_ms(), s.breaker_history_size);
}

pub fn record_success(kv: &impl Kv, principal: &str) {
    let _ = kv.delete(&key(principal));
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
        let user = "key-1:u1";
        for _ in 0..2 {
            record_failure(&s, &kv, &env, user);
            assert!(!is_open(&s, &kv, &env, user));
        }
        record_failure(&s, &kv, &env, user);
        assert!(is_open(&s, &kv, &env, user));
        assert!(!is_open(&s, &kv, &env, "key-1:u2"), "per user");
        assert!(
            !is_open(&s, &kv, &env, "key-2:u1"),
            "per key: another key's user u1"
        );
        assert!(
            !is_open(&s, &kv, &env, "key-1"),
            "the key's own bucket is separate"
        );
        env.now.set(env.now.get() + 60_000);
        assert!(!is_open(&s, &kv, &env, user), "closes by itself");
        record_failure(&s, &kv, &env, user);
        record_failure(&s, &kv, &env, user);
        record_failure(&s, &kv, &env, user);
        assert!(is_open(&s, &kv, &env, user));
        record_success(&kv, user);
        assert!(!is_open(&s, &kv, &env, user));
    }

    #[test]
    fn the_breaker_keeps_only_its_history_so_a_short_history_never_opens_it() {
        let (kv, env) = (MemKv::default(), FixedEnv::default());
        let short = ArtifactSettings {
            breaker_max_failures: 3,
            breaker_window_seconds: 60,
            breaker_history_size: 2,
            ..ArtifactSettings::default()
        };
        let user = "key-1:u1";
        for _ in 0..10 {
            record_failure(&short, &kv, &env, user);
        }
        assert!(
            !is_open(&short, &kv, &env, user),
            "two remembered failures < three"
        );
        // A history as long as the threshold opens at the threshold.
        let enough = ArtifactSettings {
            breaker_history_size: 3,
            ..short.clone()
        };
        record_failure(&enough, &kv, &env, user);
        assert!(is_open(&enough, &kv, &env, user));
    }
}
