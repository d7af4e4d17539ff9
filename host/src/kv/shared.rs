//! The shared kv: Redis while it answers, this process's memory while it does not. A command
//! that finds Redis unreachable is served from memory; from then on every command goes to
//! memory (no request waits on a dead Redis) while one background probe pings Redis with a
//! capped backoff, and the first answer switches the host back. Nothing depends on a long-lived
//! subscription or an idle connection staying open: the managed connection redials on the next
//! command after it was dropped.

use super::memory::MemoryKv;
use super::redis_store::{RedisFailure, RedisKv};
use crate::bindings::kv::KvError;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// First wait of the background probe after Redis stopped answering.
pub const PROBE_MIN_DELAY: Duration = Duration::from_millis(250);
/// Longest wait between two probes.
pub const PROBE_MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Health {
    /// Redis answered the last command (or the last probe).
    up: AtomicBool,
}

/// Redis with the in-memory fallback. See the module header.
#[derive(Debug)]
pub struct SharedKv {
    redis: RedisKv,
    memory: MemoryKv,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl SharedKv {
    /// Start on Redis, pinging it once in the background: a Redis that is down at start-up
    /// sends kv to memory from the first request on.
    pub fn start(redis: RedisKv, metrics: Arc<Metrics>) -> Self {
        let kv = SharedKv {
            redis,
            memory: MemoryKv::default(),
            health: Arc::new(Health {
                up: AtomicBool::new(true),
            }),
            metrics,
        };
        let probe = kv.prober();
        tokio::spawn(async move {
            if let Err(RedisFailure::Unreachable(reason)) = probe.redis.ping().await {
                probe.went_down(&reason, "Redis does not answer at start-up");
            }
        });
        kv
    }

    /// Whether commands go to Redis now (readiness reports it).
    pub fn redis_up(&self) -> bool {
        self.health.up.load(Ordering::Acquire)
    }

    /// The Redis side, for records written outside the kv namespace (cost snapshots).
    pub fn redis(&self) -> &RedisKv {
        &self.redis
    }

    /// Whether Redis answers a `PING` now, within the Redis timeout (readiness).
    pub async fn ping(&self) -> bool {
        self.redis.ping().await.is_ok()
    }

    fn prober(&self) -> Prober {
        Prober {
            redis: self.redis.clone(),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
        }
    }

    /// Run `on_redis` while Redis is up; on memory otherwise, or when it turns out unreachable.
    async fn run<T, F>(
        &self,
        on_redis: F,
        on_memory: impl FnOnce(&MemoryKv) -> Result<T, KvError>,
    ) -> Result<T, KvError>
    where
        F: std::future::Future<Output = Result<T, RedisFailure>>,
    {
        if self.redis_up() {
            match on_redis.await {
                Ok(v) => return Ok(v),
                Err(RedisFailure::Refused(e)) => return Err(e),
                Err(RedisFailure::Unreachable(reason)) => {
                    self.prober().went_down(&reason, "Redis stopped answering");
                }
            }
        }
        self.metrics.incr("kv_fallbacks", "redis_unavailable");
        on_memory(&self.memory)
    }

    pub async fn get(&self, key: &str, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError> {
        self.run(self.redis.get(key, max_bytes), |m| m.get(key, max_bytes))
            .await
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), KvError> {
        // Only a fallback to memory copies the value.
        self.run(self.redis.set(key, &value, ttl_ms), |m| {
            m.set(key, value.clone(), ttl_ms)
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<bool, KvError> {
        self.run(self.redis.delete(key), |m| m.delete(key)).await
    }

    pub async fn incr(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        self.run(self.redis.incr(key, delta, ttl_ms), |m| {
            m.incr(key, delta, ttl_ms)
        })
        .await
    }

    pub async fn lock(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, KvError> {
        self.run(self.redis.lock(name, ttl_ms), |m| m.lock(name, ttl_ms))
            .await
    }

    pub async fn unlock(&self, name: &str, token: &str) -> Result<bool, KvError> {
        self.run(self.redis.unlock(name, token), |m| m.unlock(name, token))
            .await
    }
}

/// What the background probe needs: the connection, the shared health flag and the counters.
struct Prober {
    redis: RedisKv,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl Prober {
    /// Record that Redis stopped answering; the first to notice logs it and starts the probe.
    fn went_down(self, reason: &str, what: &'static str) {
        if !self.health.up.swap(false, Ordering::AcqRel) {
            return;
        }
        self.metrics.incr("kv_redis_transitions", "down");
        tracing::warn!(
            error.type = "redis_unavailable",
            host = %self.redis.host(),
            reason = %crate::logsafe::escaped(reason),
            "{what}; serving kv from this process's memory until it answers again"
        );
        tokio::spawn(self.probe());
    }

    /// Ping with a capped, doubling delay until Redis answers, then switch back. The probe
    /// ends by itself when its kv is gone (a host that shut down).
    async fn probe(self) {
        let Prober {
            redis,
            health,
            metrics,
        } = self;
        let health = Arc::downgrade(&health);
        let since = Instant::now();
        let mut delay = PROBE_MIN_DELAY;
        loop {
            tokio::time::sleep(delay).await;
            if health.strong_count() == 0 {
                return;
            }
            if redis.ping().await.is_ok() {
                if let Some(health) = health.upgrade() {
                    health.up.store(true, Ordering::Release);
                }
                metrics.incr("kv_redis_transitions", "up");
                tracing::info!(
                    host = %redis.host(),
                    down_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "Redis answers again; kv is shared through it again"
                );
                return;
            }
            delay = delay.saturating_mul(2).min(PROBE_MAX_DELAY);
        }
    }
}
