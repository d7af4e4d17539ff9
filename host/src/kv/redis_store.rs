//! The kv operations on Redis: one managed, reconnecting connection (redis-rs's
//! `ConnectionManager`, multiplexed and shared by every instance), keys under `PIPE_ID`, every
//! value with a TTL, each command bounded by `REDIS_TIMEOUT_MS`. Whether a failure means "Redis
//! is unreachable" (serve from memory) or "this command was refused" is decided here.

use crate::bindings::kv::KvError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, Script};
use secrecy::{ExposeSecret, SecretString};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// Lifetime of a value the guest stores without one: nothing in Redis lives forever.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// Longest lifetime any value or lock gets.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// `INCRBY`, giving a counter its TTL when this call created it (every key we write has one, so
/// a key without one was created just now).
static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) \
         if redis.call('PTTL', KEYS[1]) == -1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
         return v",
    )
});

/// Compare-and-delete: a lock is released only by the token that holds it.
static UNLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) \
         else return 0 end",
    )
});

/// Why Redis could not be used at start-up. The URL itself is never part of the message.
#[derive(Debug, thiserror::Error)]
pub enum KvSetupError {
    #[error("REDIS_URL is not a usable redis:// or rediss:// URL ({0})")]
    BadUrl(&'static str),
}

/// How one command failed.
#[derive(Debug)]
pub enum RedisFailure {
    /// Redis did not answer (down, unreachable, timed out, connection lost, authentication):
    /// the command is served from memory instead.
    Unreachable(String),
    /// Redis answered and refused this command (wrong type, not an integer, …).
    Refused(KvError),
}

impl From<RedisError> for RedisFailure {
    fn from(e: RedisError) -> Self {
        match e.kind() {
            ErrorKind::Server(_) if !e.is_unrecoverable_error() => {
                let detail = e.detail().unwrap_or_default().to_ascii_lowercase();
                if detail.contains("not an integer") || detail.contains("overflow") {
                    RedisFailure::Refused(KvError::InvalidArgument(
                        "the value is not an integer, or the counter would overflow".into(),
                    ))
                } else {
                    RedisFailure::Refused(KvError::Other(format!(
                        "Redis refused the command: {}",
                        e.code().unwrap_or("error")
                    )))
                }
            }
            ErrorKind::UnexpectedReturnType | ErrorKind::Parse => {
                RedisFailure::Refused(KvError::Other("Redis answered an unexpected type".into()))
            }
            _ => RedisFailure::Unreachable(e.to_string()),
        }
    }
}

type Outcome<T> = Result<T, RedisFailure>;

/// The Redis side of the shared kv. Cheap to clone (the connection is shared).
#[derive(Clone)]
pub struct RedisKv {
    conn: ConnectionManager,
    /// `<PIPE_ID>:`; values live under `<prefix>kv:`, locks under `<prefix>lock:`.
    prefix: Arc<str>,
    host: Arc<str>,
    timeout: Duration,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv")
            .field("host", &self.host)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisKv {
    /// A lazily connecting client: nothing is dialled until the first command, so a Redis that
    /// is down at start-up does not stop the host.
    pub fn new(url: &SecretString, pipe_id: &str, timeout: Duration) -> Result<Self, KvSetupError> {
        let parsed = url::Url::parse(url.expose_secret())
            .map_err(|_| KvSetupError::BadUrl("it does not parse"))?;
        if !matches!(parsed.scheme(), "redis" | "rediss") {
            return Err(KvSetupError::BadUrl("the scheme must be redis or rediss"));
        }
        let host = parsed
            .host_str()
            .ok_or(KvSetupError::BadUrl("it names no host"))?
            .to_owned();
        let client = redis::Client::open(url.expose_secret())
            .map_err(|_| KvSetupError::BadUrl("the Redis client refused it"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Reconnecting is retried by the next command (and by the shared kv's probe), not
            // by a long retry loop that would hold commands waiting.
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|_| KvSetupError::BadUrl("the Redis client refused it"))?;
        Ok(RedisKv {
            conn,
            prefix: format!("{pipe_id}:").into(),
            host: host.into(),
            timeout,
        })
    }

    /// The Redis host, for logs (never the URL: it may carry a password).
    pub fn host(&self) -> &str {
        &self.host
    }

    fn value_key(&self, key: &str) -> String {
        format!("{}kv:{key}", self.prefix)
    }

    fn lock_key(&self, name: &str) -> String {
        format!("{}lock:{name}", self.prefix)
    }

    /// Run one command under the time budget (the connection's own timeouts cover the socket;
    /// this also covers waiting for a reconnect).
    async fn bounded<T>(
        &self,
        run: impl std::future::Future<Output = Result<T, RedisError>>,
    ) -> Outcome<T> {
        match tokio::time::timeout(self.timeout.saturating_mul(2), run).await {
            Ok(result) => result.map_err(RedisFailure::from),
            Err(_) => Err(RedisFailure::Unreachable(format!(
                "no answer within {} ms",
                self.timeout.saturating_mul(2).as_millis()
            ))),
        }
    }

    /// `PING`: does Redis answer?
    pub async fn ping(&self) -> Outcome<()> {
        let mut conn = self.conn.clone();
        self.bounded(async move {
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .map(drop)
        })
        .await
    }

    /// `SET key value EX ttl` on a key outside the kv namespace (the cost snapshots' own key
    /// shape). The caller builds the key; values stay bounded like kv values.
    pub async fn set_record(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Outcome<()> {
        if value.len() > super::MAX_VALUE_BYTES {
            return Err(RedisFailure::Refused(KvError::TooLarge));
        }
        let mut conn = self.conn.clone();
        let key = key.to_owned();
        let ttl = ttl.as_secs().max(1);
        self.bounded(async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    pub async fn get(&self, key: &str, max_bytes: u32) -> Outcome<Option<Vec<u8>>> {
        let mut conn = self.conn.clone();
        let key = self.value_key(key);
        let value: Option<Vec<u8>> = self
            .bounded(async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        match value {
            Some(v) if v.len() > max_bytes as usize => {
                Err(RedisFailure::Refused(KvError::TooLarge))
            }
            other => Ok(other),
        }
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl_ms: Option<u64>) -> Outcome<()> {
        let mut conn = self.conn.clone();
        // The command holds its own copy of the value; the caller keeps the original.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.value_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl_millis(ttl_ms));
        self.bounded(async move { cmd.query_async::<()>(&mut conn).await })
            .await
    }

    pub async fn delete(&self, key: &str) -> Outcome<bool> {
        let mut conn = self.conn.clone();
        let key = self.value_key(key);
        let removed: i64 = self
            .bounded(async move { redis::cmd("DEL").arg(key).query_async(&mut conn).await })
            .await?;
        Ok(removed > 0)
    }

    pub async fn incr(&self, key: &str, delta: i64, ttl_ms: Option<u64>) -> Outcome<i64> {
        let mut conn = self.conn.clone();
        let key = self.value_key(key);
        let ttl = ttl_millis(ttl_ms);
        self.bounded(async move {
            INCR.key(key)
                .arg(delta)
                .arg(ttl)
                .invoke_async(&mut conn)
                .await
        })
        .await
    }

    pub async fn lock(&self, name: &str, ttl_ms: u64) -> Outcome<Option<String>> {
        let mut conn = self.conn.clone();
        let key = self.lock_key(name);
        let token = uuid::Uuid::now_v7().simple().to_string();
        let ttl = ttl_millis(Some(ttl_ms));
        let taken: Option<String> = self
            .bounded({
                let token = token.clone();
                async move {
                    redis::cmd("SET")
                        .arg(key)
                        .arg(token)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl)
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(taken.map(|_| token))
    }

    pub async fn unlock(&self, name: &str, token: &str) -> Outcome<bool> {
        let mut conn = self.conn.clone();
        let key = self.lock_key(name);
        let token = token.to_owned();
        let removed: i64 = self
            .bounded(async move { UNLOCK.key(key).arg(token).invoke_async(&mut conn).await })
            .await?;
        Ok(removed > 0)
    }
}

/// The TTL a value gets in Redis: the guest's, else [`DEFAULT_TTL`]; at least 1 ms, at most
/// [`MAX_TTL`].
fn ttl_millis(ttl_ms: Option<u64>) -> u64 {
    let max = u64::try_from(MAX_TTL.as_millis()).unwrap_or(u64::MAX);
    let default = u64::try_from(DEFAULT_TTL.as_millis()).unwrap_or(max);
    ttl_ms.unwrap_or(default).clamp(1, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_gets_a_bounded_ttl() {
        assert_eq!(ttl_millis(None), 24 * 3600 * 1000);
        assert_eq!(ttl_millis(Some(0)), 1);
        assert_eq!(ttl_millis(Some(u64::MAX)), 30 * 24 * 3600 * 1000);
        assert_eq!(ttl_millis(Some(1500)), 1500);
    }

    #[test]
    fn urls_are_checked_without_echoing_them() {
        let bad = |u: &str| {
            RedisKv::new(
                &SecretString::from(u.to_owned()),
                "p",
                Duration::from_millis(100),
            )
            .unwrap_err()
            .to_string()
        };
        let e = bad("http://user:hunter2@host:6379");
        assert!(e.contains("scheme") && !e.contains("hunter2"), "{e}");
        assert!(!bad("not a url hunter2").contains("hunter2"));
    }
}
