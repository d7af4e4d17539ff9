//! Database failures as the guest sees them: every driver error becomes one of the `store`
//! capability's typed errors (`unavailable`, `timeout`, `other`, never the driver's text), with a
//! stable label for logs and metrics; and [`Breaks`], which remembers when a connection last
//! broke so its pooled siblings are replaced instead of each failing one call.

use crate::bindings::store::StoreError;
use std::sync::Arc;
use std::time::Duration;

/// A stable label for logs and metrics.
pub fn error_kind(e: &StoreError) -> &'static str {
    match e {
        StoreError::NotFound => "not_found",
        StoreError::AccessDenied => "access_denied",
        StoreError::InvalidArgument(_) => "invalid_argument",
        StoreError::TooLarge => "too_large",
        StoreError::Timeout => "timeout",
        StoreError::Unavailable(_) => "unavailable",
        StoreError::Other(_) => "other",
    }
}

pub(super) fn unavailable() -> StoreError {
    StoreError::Unavailable("the artifact database is unavailable".into())
}

/// Map a driver error to the guest's typed error, and say whether the connection it happened on
/// should be discarded rather than reused.
pub(super) fn classify(e: &sqlx::Error) -> (StoreError, bool) {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => (unavailable(), false),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Configuration(_) => (unavailable(), true),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if let Ok(sqlite) = code.parse::<i64>() {
                // SQLite result codes (extended codes keep the primary code in the low byte).
                match sqlite & 0xff {
                    5 | 6 => (StoreError::Timeout, false), // BUSY, LOCKED after the busy timeout
                    10 | 13 | 14 | 8 => (unavailable(), true), // IOERR, FULL, CANTOPEN, READONLY
                    _ => (StoreError::Other("artifact database error".into()), false),
                }
            } else {
                match code.as_str() {
                    // query_canceled: the server-side statement_timeout fired.
                    "57014" => (StoreError::Timeout, false),
                    c if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") => {
                        (unavailable(), true)
                    }
                    _ => (StoreError::Other("artifact database error".into()), false),
                }
            }
        }
        _ => (StoreError::Other("artifact database error".into()), true),
    }
}

/// When a connection last broke (I/O error, cut, timeout). Pooled connections opened before
/// that moment are discarded when next acquired instead of failing one call each: when one
/// connection to a server breaks, its idle siblings are usually dead too.
#[derive(Clone, Default)]
pub(crate) struct Breaks(Arc<std::sync::Mutex<Option<std::time::Instant>>>);

impl Breaks {
    pub(super) fn mark(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(std::time::Instant::now());
        }
    }

    /// Whether a connection of this age was opened before the last break.
    pub(crate) fn predates(&self, age: Duration) -> bool {
        let last = self.0.lock().ok().and_then(|l| *l);
        match (last, std::time::Instant::now().checked_sub(age)) {
            (Some(broke), Some(opened)) => opened <= broke,
            _ => false,
        }
    }
}
