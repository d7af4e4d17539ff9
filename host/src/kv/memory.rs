//! The in-memory kv backend: one process's caches, breakers, counters and locks. It is the
//! embedded default, and the fallback of the Redis backend while Redis is unreachable. It holds
//! a bounded number of keys, so a guest cannot grow host memory without limit.

use super::{check_key, check_value};
use crate::bindings::kv::KvError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys (values and locks together) held at once.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

#[derive(Debug, Default)]
struct Inner {
    values: HashMap<String, Entry>,
    locks: HashMap<String, (String, Instant)>,
    next_token: u64,
}

impl Inner {
    fn len(&self) -> usize {
        self.values.len() + self.locks.len()
    }

    /// Drop expired values and locks once the store is getting full.
    fn sweep(&mut self, now: Instant) {
        if self.len() >= MAX_KEYS / 2 {
            self.values.retain(|_, e| e.live(now));
            self.locks.retain(|_, (_, t)| *t > now);
        }
    }

    fn room_for_new_key(&mut self, now: Instant) -> Result<(), KvError> {
        self.sweep(now);
        if self.len() >= MAX_KEYS {
            return Err(KvError::Unavailable(
                "the in-memory kv store is full".into(),
            ));
        }
        Ok(())
    }
}

/// The in-memory backend.
#[derive(Debug, Default)]
pub struct MemoryKv {
    inner: Mutex<Inner>,
}

fn poisoned() -> KvError {
    KvError::Unavailable("the kv store is unusable after an internal panic".into())
}

fn expiry(now: Instant, ttl_ms: Option<u64>) -> Option<Instant> {
    ttl_ms.map(|ms| now + Duration::from_millis(ms))
}

impl MemoryKv {
    pub fn get(&self, key: &str, max_bytes: u32) -> Result<Option<Vec<u8>>, KvError> {
        check_key(key)?;
        let inner = self.inner.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match inner.values.get(key) {
            Some(e) if e.live(now) => {
                if e.value.len() > max_bytes as usize {
                    return Err(KvError::TooLarge);
                }
                Ok(Some(e.value.clone()))
            }
            _ => Ok(None),
        }
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), KvError> {
        check_key(key)?;
        check_value(&value)?;
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        if !inner.values.contains_key(key) {
            inner.room_for_new_key(now)?;
        }
        inner.values.insert(
            key.to_string(),
            Entry {
                value,
                expires_at: expiry(now, ttl_ms),
            },
        );
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<bool, KvError> {
        check_key(key)?;
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        Ok(inner.values.remove(key).is_some_and(|e| e.live(now)))
    }

    pub fn incr(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Result<i64, KvError> {
        check_key(key)?;
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        let current = match inner.values.get(key) {
            Some(e) if e.live(now) => Some(
                std::str::from_utf8(&e.value)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| {
                        KvError::InvalidArgument("the value is not an integer".into())
                    })?,
            ),
            _ => None,
        };
        let next = current
            .unwrap_or(0)
            .checked_add(delta)
            .ok_or_else(|| KvError::InvalidArgument("the counter would overflow".into()))?;
        match (current, inner.values.get_mut(key)) {
            (Some(_), Some(e)) => e.value = next.to_string().into_bytes(),
            _ => {
                if !inner.values.contains_key(key) {
                    inner.room_for_new_key(now)?;
                }
                inner.values.insert(
                    key.to_string(),
                    Entry {
                        value: next.to_string().into_bytes(),
                        expires_at: expiry(now, ttl_ms),
                    },
                );
            }
        }
        Ok(next)
    }

    pub fn lock(&self, name: &str, ttl_ms: u64) -> Result<Option<String>, KvError> {
        check_key(name)?;
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        if inner.locks.get(name).is_some_and(|(_, t)| *t > now) {
            return Ok(None);
        }
        if !inner.locks.contains_key(name) {
            inner.room_for_new_key(now)?;
        }
        inner.next_token += 1;
        let token = format!("t{}", inner.next_token);
        inner.locks.insert(
            name.to_string(),
            (token.clone(), now + Duration::from_millis(ttl_ms.max(1))),
        );
        Ok(Some(token))
    }

    pub fn unlock(&self, name: &str, token: &str) -> Result<bool, KvError> {
        check_key(name)?;
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        let now = Instant::now();
        match inner.locks.get(name) {
            Some((t, exp)) if t == token && *exp > now => {
                inner.locks.remove(name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

    #[test]
    fn values_expire_after_their_ttl() {
        let kv = MemoryKv::default();
        kv.set("a", b"1".to_vec(), Some(1)).unwrap();
        kv.set("b", b"2".to_vec(), None).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(kv.get("a", 10).unwrap(), None);
        assert_eq!(kv.get("b", 10).unwrap(), Some(b"2".to_vec()));
    }

    #[test]
    fn reads_larger_than_the_callers_cap_are_refused() {
        let kv = MemoryKv::default();
        kv.set("a", vec![0; 100], None).unwrap();
        assert!(matches!(kv.get("a", 99), Err(KvError::TooLarge)));
        assert!(kv.set("b", vec![0; MAX_VALUE_BYTES + 1], None).is_err());
        assert!(kv.get(&"k".repeat(MAX_KEY_BYTES + 1), 1).is_err());
    }

    #[test]
    fn a_lock_is_exclusive_until_released_or_expired() {
        let kv = MemoryKv::default();
        let t = kv.lock("l", 60_000).unwrap().unwrap();
        assert_eq!(kv.lock("l", 60_000).unwrap(), None);
        assert!(!kv.unlock("l", "wrong").unwrap());
        assert!(kv.unlock("l", &t).unwrap());
        let _ = kv.lock("l", 1).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(kv.lock("l", 60_000).unwrap().is_some());
    }

    #[test]
    fn counters_behave_like_redis() {
        let kv = MemoryKv::default();
        assert_eq!(kv.incr("c", 2, None).unwrap(), 2);
        assert_eq!(kv.incr("c", -5, None).unwrap(), -3);
    }
}
