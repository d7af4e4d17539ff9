//! Readiness (`GET /readyz`): whether this host can serve traffic now, as opposed to liveness
//! (`/healthz`, the process answers). Ready means: the component is compiled and loaded (true
//! once the `App` exists), a model listing through the component has succeeded once (the
//! catalog is loaded; [`list_models`] records it, and `catalog_warm_up` makes one at start-up),
//! the artifact database answers a ping and, with `REDIS_URL`, Redis answers a `PING`. Each
//! check is bounded, so a stalled dependency makes the answer "not ready", never a hung probe.
//! The report names states only, never URLs, hosts or secrets.

use crate::app::App;
use crate::bindings::types::PipeError;
use crate::instance::GuestFailure;
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the database ping may take, waiting for a connection included.
pub const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What `/readyz` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ready: bool,
    /// `ok`: the component is compiled and loaded (the host does not serve before).
    pub component: &'static str,
    /// `ok` once a model listing succeeded, `not_loaded` before.
    pub catalog: &'static str,
    /// `ok` or `down`.
    pub database: &'static str,
    /// `memory` (no Redis configured), `ok` or `down`.
    pub kv: &'static str,
    /// The host is shutting down: it finishes in-flight requests but wants no new ones.
    pub shutting_down: bool,
}

impl Report {
    /// The report for these states; ready when every one is good.
    pub fn of(catalog_loaded: bool, database_up: bool, kv: &'static str, stopping: bool) -> Self {
        Report {
            ready: catalog_loaded && database_up && kv != "down" && !stopping,
            component: "ok",
            catalog: if catalog_loaded { "ok" } else { "not_loaded" },
            database: if database_up { "ok" } else { "down" },
            kv,
            shutting_down: stopping,
        }
    }
}

/// Check every dependency now (the database and Redis at the same time).
pub async fn check(app: &App) -> Report {
    let (database_up, kv) =
        tokio::join!(app.store.ping(DATABASE_CHECK_TIMEOUT), app.kv.readiness());
    Report::of(
        app.catalog_loaded.load(Ordering::Acquire),
        database_up,
        kv,
        app.shutting_down.load(Ordering::Relaxed),
    )
}

/// Run the component's `models` export within the request timeout; a success marks the catalog
/// loaded. A timeout is counted and answered as [`GuestFailure::TimedOut`].
pub async fn list_models(
    app: &App,
    request_id: &str,
) -> Result<Result<String, PipeError>, GuestFailure> {
    let cap = app.config.request_timeout();
    let run = app
        .runner
        .models(app.config.guest_settings_json(), request_id);
    let Ok(outcome) = tokio::time::timeout(cap, run).await else {
        app.metrics.incr("request_timeouts", "wall_clock");
        return Err(GuestFailure::TimedOut(cap));
    };
    if matches!(outcome, Ok(Ok(_))) {
        app.catalog_loaded.store(true, Ordering::Release);
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_dependency_is_good() {
        assert!(Report::of(true, true, "memory", false).ready);
        assert!(Report::of(true, true, "ok", false).ready);
        let not_ready = [
            Report::of(false, true, "memory", false),
            Report::of(true, false, "memory", false),
            Report::of(true, true, "down", false),
            Report::of(true, true, "ok", true),
        ];
        for report in not_ready {
            assert!(!report.ready, "{report:?}");
        }
    }

    #[test]
    fn the_report_names_each_state() {
        let report = Report::of(false, false, "down", false);
        assert_eq!(report.catalog, "not_loaded");
        assert_eq!(report.database, "down");
        assert_eq!(report.kv, "down");
        assert_eq!(report.component, "ok");
    }
}
