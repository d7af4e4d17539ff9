//! The per-caller database breaker (REFERENCE §2.11): after `BREAKER_MAX_FAILURES` store or
//! crypto failures within `BREAKER_WINDOW_SECONDS`, persistence and replay are skipped for that
//! caller until the oldest failure leaves the window, so a database that is down is not hit by
//! every chat. The caller is the request's principal (`RequestContext::principal`: the client
//! key's name, and the user when the key may name one), so one client's failures never switch
//! persistence off for another key's users, and requests without a user use their key's own
//! bucket instead of one shared by every anonymous client. The failure history lives in kv (shared by every worker when kv is Redis) with the
//! window as its time to live; a success clears it. A kv failure counts as "closed": the breaker
//! must never be the reason a chat loses its history.

use super::ArtifactSettings;
use crate::caps::{Env, Kv};
use crate::tool_loop::breaker::Breaker;

/// The per-caller DB breaker: the same sliding-window kv breaker as the tool breakers, under its
/// own key. A threshold of 0 counts as 1 (the DB breaker is never switched off by it).
fn breaker<'a, K: Kv>(s: &ArtifactSettings, kv: &'a K, principal: &str) -> Breaker<'a, K> {
    Breaker {
        kv,
        key: format!("db_breaker:{principal}"),
        max_failures: s.breaker_max_failures.max(1),
        window_ms: s.breaker_window_seconds.max(1).saturating_mul(1000),
    }
}

pub fn is_open(s: &ArtifactSettings, kv: &impl Kv, env: &impl Env, principal: &str) -> bool {
    breaker(s, kv, principal).is_open(env.now_ms())
}

pub fn record_failure(s: &ArtifactSettings, kv: &impl Kv, env: &impl Env, principal: &str) {
    breaker(s, kv, principal).record_failure(env.now_ms());
}

pub fn record_success(kv: &impl Kv, principal: &str) {
    breaker(&ArtifactSettings::default(), kv, principal).clear();
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
}
