//! Maintenance scheduling: the guest's `maintain` export (retention cleanup and other
//! housekeeping) runs shortly after start and then every `ARTIFACT_CLEANUP_INTERVAL_HOURS` plus a
//! random jitter of up to min(600 s, 25 % of the interval), as the reference does. Only one worker
//! runs a pass at a time: this process holds a local lock, and with PostgreSQL a session advisory
//! lock keyed by the artifact table name (on a dedicated connection), so several hosts sharing the
//! database take turns instead of all cleaning at once. `responses-pipe maintain` runs one pass.

use crate::app::App;
use crate::bindings::types::PipeError;
use crate::instance::GuestFailure;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

/// How long after start the first pass runs (plus jitter up to the same again).
pub const FIRST_RUN_DELAY: Duration = Duration::from_secs(30);

/// What one pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassOutcome {
    /// This worker ran `maintain` and it succeeded.
    Ran,
    /// Another worker holds the maintenance lock; nothing was done.
    Skipped,
}

/// Why a pass failed.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("the maintenance lock could not be taken: {0:?}")]
    Lock(crate::bindings::store::StoreError),
    #[error("the pipe's maintain call failed: {}", pipe_error_message(.0))]
    Pipe(PipeError),
    #[error(transparent)]
    Guest(#[from] GuestFailure),
}

pub(crate) fn pipe_error_message(e: &PipeError) -> &str {
    match e {
        PipeError::InvalidRequest(b)
        | PipeError::Upstream(b)
        | PipeError::Unavailable(b)
        | PipeError::Internal(b) => &b.message,
    }
}

/// Jitter bound: min(600 s, 25 % of the interval).
pub fn max_jitter(interval: Duration) -> Duration {
    (interval / 4).min(Duration::from_secs(600))
}

/// A uniformly random duration in `[0, max]` (randomness from a v7 UUID's random bits).
fn jitter(max: Duration) -> Duration {
    let max_ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    if max_ms == 0 {
        return Duration::ZERO;
    }
    let random = uuid::Uuid::now_v7().as_u128() as u64;
    Duration::from_millis(random % (max_ms + 1))
}

/// Run one maintenance pass if no other worker is running one.
pub async fn run_once(app: &App) -> Result<PassOutcome, MaintenanceError> {
    let lock = match app.store.try_maintenance_lock().await {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            app.metrics.incr("maintenance_runs", "skipped");
            tracing::info!("maintenance skipped: another worker holds the lock");
            return Ok(PassOutcome::Skipped);
        }
        Err(e) => {
            app.metrics.incr("maintenance_runs", "failed");
            return Err(MaintenanceError::Lock(e));
        }
    };
    let request_id = format!("maintain-{}", uuid::Uuid::now_v7().simple());
    let span = tracing::info_span!("maintain", request_id = %request_id);
    span.in_scope(|| tracing::info!(table = app.store.table_name(), "maintenance pass started"));
    let result = app
        .runner
        .maintain(app.config.guest_settings_json(), &request_id)
        .instrument(span.clone())
        .await;
    lock.release(app.config.db_statement_timeout()).await;
    let _enter = span.enter();
    match result {
        Ok(Ok(())) => {
            app.metrics.incr("maintenance_runs", "ok");
            tracing::info!("maintenance pass finished");
            Ok(PassOutcome::Ran)
        }
        Ok(Err(e)) => {
            app.metrics.incr("maintenance_runs", "failed");
            tracing::warn!(error.type = "pipe_error", message = %crate::logsafe::escaped_to(pipe_error_message(&e), 400), "maintenance pass failed");
            Err(MaintenanceError::Pipe(e))
        }
        Err(e) => {
            app.metrics.incr("maintenance_runs", "failed");
            tracing::warn!(error.type = e.kind(), "maintenance pass failed");
            Err(MaintenanceError::Guest(e))
        }
    }
}

/// The background task; dropping it (or `stop`) ends the schedule.
pub struct MaintenanceTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl MaintenanceTask {
    /// Start the schedule: first pass after `first_delay` plus jitter up to `first_delay`, then
    /// every `interval` plus jitter up to [`max_jitter`]`(interval)`.
    pub fn spawn(app: Arc<App>, first_delay: Duration, interval: Duration) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let handle = tokio::spawn(async move {
            let mut wait = first_delay + jitter(first_delay);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                tokio::select! {
                    // A failed pass is logged and counted; the next one comes on schedule.
                    _ = run_once(&app) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
                wait = interval + jitter(max_jitter(interval));
            }
        });
        MaintenanceTask { stop, handle }
    }

    /// Stop the schedule and wait for the task to end (a running pass is abandoned).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_is_bounded_by_a_quarter_of_the_interval_and_ten_minutes() {
        assert_eq!(
            max_jitter(Duration::from_secs(3600)),
            Duration::from_secs(600)
        );
        assert_eq!(
            max_jitter(Duration::from_secs(1800)),
            Duration::from_secs(450)
        );
        for _ in 0..1000 {
            assert!(jitter(Duration::from_secs(450)) <= Duration::from_secs(450));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
