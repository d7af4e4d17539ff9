//! The `kv` capability: shared state for caches, breakers, counters and locks. Two backends: the
//! embedded one keeps it in this process's memory ([`MemoryKv`]); with `REDIS_URL` it lives in
//! Redis, shared by every host of a fleet, with the in-memory store as the fallback while Redis
//! is unreachable ([`SharedKv`]). Every key and value is size-capped on both.

mod memory;
mod redis_store;
mod shared;

pub use memory::{MAX_KEYS, MemoryKv};
pub use redis_store::{KvSetupError, RedisFailure, RedisKv};
pub use shared::SharedKv;

use crate::bindings::kv::{self, KvError};
use crate::config::Config;
use crate::metrics::Metrics;
use std::sync::Arc;

/// Longest key accepted.
pub const MAX_KEY_BYTES: usize = 512;
/// Largest value accepted (the cached OpenRouter catalog is the biggest, ~1–2 MB).
pub const MAX_VALUE_BYTES: usize = 16 << 20;

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(KvError::InvalidArgument(format!(
            "keys must be 1 to {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

fn check_value(value: &[u8]) -> Result<(), KvError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(KvError::TooLarge);
    }
    Ok(())
}

/// The backend chosen at start-up.
#[derive(Debug)]
pub enum KvBackend {
    Memory(MemoryKv),
    Redis(SharedKv),
}

impl KvBackend {
    pub fn memory() -> Self {
        KvBackend::Memory(MemoryKv::default())
    }

    /// Redis when `REDIS_URL` is set, else memory; the choice is logged (never the URL).
    pub fn from_config(config: &Config, metrics: Arc<Metrics>) -> Result<Self, KvSetupError> {
        let Some(url) = config.redis_url() else {
            tracing::info!(backend = "memory", "kv backend");
            return Ok(Self::memory());
        };
        let redis = RedisKv::new(url, config.pipe_id(), config.redis_timeout())?;
        tracing::info!(backend = "redis", host = %redis.host(), "kv backend");
        Ok(KvBackend::Redis(SharedKv::start(redis, metrics)))
    }

    /// `memory` or `redis`, for the start-up report and readiness.
    pub fn kind(&self) -> &'static str {
        match self {
            KvBackend::Memory(_) => "memory",
            KvBackend::Redis(_) => "redis",
        }
    }

    /// For readiness: `memory` (nothing to reach), `ok` when Redis answers a `PING`, else
    /// `down`.
    pub async fn readiness(&self) -> &'static str {
        match self {
            KvBackend::Memory(_) => "memory",
            KvBackend::Redis(r) => {
                if r.ping().await {
                    "ok"
                } else {
                    "down"
                }
            }
        }
    }

    pub async fn get(&self, key: &str, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        match self {
            KvBackend::Memory(m) => m.get(key, max_bytes),
            KvBackend::Redis(r) => r.get(key, max_bytes).await,
        }
    }

    pub async fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), KvError> {
        check_key(key)?;
        check_value(&value)?;
        match self {
            KvBackend::Memory(m) => m.set(key, value, ttl_ms),
            KvBackend::Redis(r) => r.set(key, value, ttl_ms).await,
        }
    }

    pub async fn delete(&self, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        match self {
            KvBackend::Memory(m) => m.delete(key),
            KvBackend::Redis(r) => r.delete(key).await,
        }
    }

    pub async fn incr(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        check_key(key)?;
        match self {
            KvBackend::Memory(m) => m.incr(key, delta, ttl_ms),
            KvBackend::Redis(r) => r.incr(key, delta, ttl_ms).await,
        }
    }

    pub async fn lock(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, KvError> {
        check_key(name)?;
        match self {
            KvBackend::Memory(m) => m.lock(name, ttl_ms),
            KvBackend::Redis(r) => r.lock(name, ttl_ms).await,
        }
    }

    pub async fn unlock(&self, name: &str, token: &str) -> Result<bool, KvError> {
        check_key(name)?;
        match self {
            KvBackend::Memory(m) => m.unlock(name, token),
            KvBackend::Redis(r) => r.unlock(name, token).await,
        }
    }
}

/// The per-instance view the guest's `kv` calls land on.
pub struct KvView<'a> {
    pub backend: &'a KvBackend,
}

impl kv::Host for KvView<'_> {
    async fn get(&mut self, key: String, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError> {
        self.backend.get(&key, max_bytes).await
    }
    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    ) -> Result<(), KvError> {
        self.backend.set(&key, value, ttl_ms).await
    }
    async fn delete(&mut self, key: String) -> Result<bool, KvError> {
        self.backend.delete(&key).await
    }
    async fn incr(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        self.backend.incr(&key, delta, ttl_ms).await
    }
    async fn lock(&mut self, name: String, ttl_ms: u64) -> Result<Option<String>, KvError> {
        self.backend.lock(&name, ttl_ms).await
    }
    async fn unlock(&mut self, name: String, token: String) -> Result<bool, KvError> {
        self.backend.unlock(&name, &token).await
    }
}
