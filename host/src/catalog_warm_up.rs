//! Catalog warm-up: right after start-up the host lists the models once through the component,
//! so the catalog is cached and `/readyz` turns ready without waiting for user traffic. A failed
//! listing is logged and retried after a capped backoff (1 s doubling to 60 s) until one
//! succeeds or the host shuts down; each attempt is bounded by the request timeout.

use crate::app::App;
use crate::readiness::list_models;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Wait after the first failed attempt.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between two attempts.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// The wait after `previous`: doubled, capped at [`MAX_RETRY`].
pub fn next_delay(previous: Duration) -> Duration {
    previous.saturating_mul(2).min(MAX_RETRY)
}

/// The background task; dropping it (or `stop`) ends it.
pub struct CatalogWarmUp {
    handle: JoinHandle<()>,
}

impl Drop for CatalogWarmUp {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl CatalogWarmUp {
    /// Start listing the models until one listing succeeds.
    pub fn spawn(app: Arc<App>) -> Self {
        let handle = tokio::spawn(async move {
            let mut delay = FIRST_RETRY;
            while !app.shutting_down.load(Ordering::Relaxed) {
                if app.catalog_loaded.load(Ordering::Acquire) || attempt(&app).await {
                    return;
                }
                tracing::info!(
                    retry_in_ms = delay.as_millis() as u64,
                    "catalog warm-up will retry"
                );
                tokio::time::sleep(delay).await;
                delay = next_delay(delay);
            }
        });
        CatalogWarmUp { handle }
    }

    /// Stop the task (an attempt in flight is abandoned).
    pub fn stop(self) {
        self.handle.abort();
    }
}

/// One listing; true when it succeeded. A failure is logged with its `error.type`.
async fn attempt(app: &App) -> bool {
    let request_id = format!("warm-up-{}", uuid::Uuid::now_v7().simple());
    let span = tracing::info_span!("catalog_warm_up", request_id = %request_id);
    let outcome = list_models(app, &request_id).instrument(span.clone()).await;
    let _enter = span.enter();
    match outcome {
        Ok(Ok(_)) => {
            tracing::info!("catalog loaded");
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(
                error.type = "pipe_error",
                message = %crate::logsafe::escaped_to(crate::maintenance::pipe_error_message(&e), 400),
                "catalog warm-up failed"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error.type = e.kind(), "catalog warm-up failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_from_one_second_up_to_a_minute() {
        let mut delays = vec![FIRST_RETRY];
        for _ in 0..8 {
            let last = delays[delays.len() - 1];
            delays.push(next_delay(last));
        }
        let secs: Vec<u64> = delays.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
