//! Cost snapshots (`COSTS_REDIS_DUMP`): after each answer or task that reported usage, one
//! record in Redis for accounting, under `costs:<PIPE_ID>:<user id>:<uuid4>:<epoch seconds>`,
//! holding `{guid, email, name, model, usage, ts, chat_id?, message_id?, kind}` and expiring
//! after `COSTS_REDIS_TTL_SECONDS`. The write runs after the answer, never delays it, and a
//! Redis that does not answer costs the record, not the chat. Every outcome is counted in
//! `responses_pipe_cost_snapshots_total{reason}`.

use crate::bindings::types::{RequestContext, Usage};
use crate::config::Config;
use crate::kv::{KvBackend, RedisFailure, RedisKv};
use crate::metrics::Metrics;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where and for how long snapshots are written. Present only when the feature is on.
#[derive(Debug, Clone)]
pub struct CostSnapshots {
    redis: RedisKv,
    pipe_id: String,
    ttl: Duration,
    metrics: Arc<Metrics>,
}

impl CostSnapshots {
    /// On when `COSTS_REDIS_DUMP` is set (the configuration then guarantees `REDIS_URL`).
    pub fn from_config(config: &Config, kv: &KvBackend, metrics: Arc<Metrics>) -> Option<Self> {
        let ttl = config.costs_redis_ttl()?;
        let KvBackend::Redis(shared) = kv else {
            return None;
        };
        Some(CostSnapshots {
            redis: shared.redis().clone(),
            pipe_id: config.pipe_id().to_owned(),
            ttl,
            metrics,
        })
    }

    /// What the end of one request needs to write its snapshot.
    pub fn pending(&self, ctx: RequestContext, model: String) -> PendingSnapshot {
        PendingSnapshot {
            snapshots: self.clone(),
            ctx,
            model,
        }
    }

    /// Record the usage of one finished request, in the background.
    pub fn record(&self, ctx: &RequestContext, model: &str, usage: Option<&Usage>) {
        let Some((key, value)) = snapshot(&self.pipe_id, ctx, model, usage, now_secs()) else {
            self.metrics.incr("cost_snapshots", "missing_field");
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            let reason = match this.redis.set_record(&key, value, this.ttl).await {
                Ok(()) => "written",
                Err(RedisFailure::Unreachable(reason)) => {
                    tracing::warn!(
                        error.type = "cost_snapshot_failed",
                        reason = %crate::logsafe::escaped(&reason),
                        "could not write a cost snapshot to Redis"
                    );
                    "redis_unavailable"
                }
                Err(RedisFailure::Refused(_)) => "refused",
            };
            this.metrics.incr("cost_snapshots", reason);
        });
    }
}

/// One request's snapshot, written when the request ends with its usage.
#[derive(Debug)]
pub struct PendingSnapshot {
    snapshots: CostSnapshots,
    ctx: RequestContext,
    model: String,
}

impl PendingSnapshot {
    pub fn finish(self, usage: Option<&Usage>) {
        self.snapshots.record(&self.ctx, &self.model, usage);
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The key and JSON value of one snapshot, or `None` when a required field (user id, email,
/// name, model, usage) is missing.
fn snapshot(
    pipe_id: &str,
    ctx: &RequestContext,
    model: &str,
    usage: Option<&Usage>,
    ts: u64,
) -> Option<(String, Vec<u8>)> {
    let present = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
    let guid = present(&ctx.user_id)?;
    let email = present(&ctx.user_email)?;
    let name = present(&ctx.user_name)?;
    let usage = usage?;
    if model.is_empty() {
        return None;
    }
    let kind = if ctx.task.as_deref().is_some_and(|t| !t.is_empty()) {
        "task"
    } else {
        "generation"
    };
    let mut value = json!({
        "guid": guid,
        "email": email,
        "name": name,
        "model": model,
        "usage": crate::server::chunks::usage_json(usage),
        "ts": ts,
        "kind": kind,
    });
    if let Some(obj) = value.as_object_mut() {
        if let Some(chat) = present(&ctx.chat_id) {
            obj.insert("chat_id".into(), Value::String(chat));
        }
        if let Some(message) = present(&ctx.message_id) {
            obj.insert("message_id".into(), Value::String(message));
        }
    }
    let key = format!(
        "costs:{pipe_id}:{guid}:{}:{ts}",
        uuid::Uuid::new_v4().hyphenated()
    );
    Some((key, value.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(task: Option<&str>) -> RequestContext {
        RequestContext {
            request_id: "r".into(),
            user_id: Some("u-1".into()),
            user_email: Some("a@example.com".into()),
            user_name: Some("Ada".into()),
            user_role: None,
            chat_id: Some("c-1".into()),
            message_id: None,
            task: task.map(str::to_owned),
            openwebui_caller: true,
            cache_session_id: None,
            received_at_ms: 0,
            key_name: "owui".into(),
            openwebui_key: true,
        }
    }

    fn usage() -> Usage {
        Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            total_tokens: 7,
            cached_tokens: 0,
            reasoning_tokens: 0,
            cost_usd: Some(0.5),
        }
    }

    #[test]
    fn a_snapshot_has_the_reference_key_and_fields() {
        let (key, value) = snapshot("pipe", &ctx(None), "a/b", Some(&usage()), 1700).unwrap();
        let parts: Vec<&str> = key.split(':').collect();
        assert_eq!(
            (parts[0], parts[1], parts[2], parts[4]),
            ("costs", "pipe", "u-1", "1700")
        );
        assert_eq!(parts[3].len(), 36, "{key}");
        let v: Value = serde_json::from_slice(&value).unwrap();
        assert_eq!(v["guid"], "u-1");
        assert_eq!(v["email"], "a@example.com");
        assert_eq!(v["name"], "Ada");
        assert_eq!(v["model"], "a/b");
        assert_eq!(v["usage"]["total_tokens"], 7);
        assert_eq!(v["usage"]["cost"], 0.5);
        assert_eq!(v["ts"], 1700);
        assert_eq!(v["kind"], "generation");
        assert_eq!(v["chat_id"], "c-1");
        assert!(v.get("message_id").is_none());
        let (_, task) = snapshot(
            "pipe",
            &ctx(Some("title_generation")),
            "a/b",
            Some(&usage()),
            1,
        )
        .unwrap();
        let task: Value = serde_json::from_slice(&task).unwrap();
        assert_eq!(task["kind"], "task");
    }

    #[test]
    fn a_missing_required_field_writes_nothing() {
        assert!(snapshot("p", &ctx(None), "a/b", None, 1).is_none());
        assert!(snapshot("p", &ctx(None), "", Some(&usage()), 1).is_none());
        for clear in [0, 1, 2] {
            let mut c = ctx(None);
            match clear {
                0 => c.user_id = None,
                1 => c.user_email = Some(String::new()),
                _ => c.user_name = None,
            }
            assert!(snapshot("p", &c, "a/b", Some(&usage()), 1).is_none());
        }
    }
}
