//! Counters and the concurrency gauge of tool calls, rendered for `/metrics`. Labels are server
//! names from the config and outcomes chosen by the code, so the label set is bounded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counters and the concurrency gauge of tool calls.
#[derive(Debug, Default)]
pub struct ToolMetrics {
    calls: Mutex<BTreeMap<(String, &'static str), u64>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// Holds one unit of the in-flight gauge.
pub(super) struct InFlight<'a>(&'a ToolMetrics);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ToolMetrics {
    pub(super) fn enter(&self) -> InFlight<'_> {
        let now = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
        InFlight(self)
    }

    pub(super) fn record(&self, server: &str, outcome: &'static str) {
        if let Ok(mut map) = self.calls.lock() {
            *map.entry((server.to_owned(), outcome)).or_insert(0) += 1;
        }
    }

    /// Calls to `server` that ended with `outcome`.
    pub fn calls(&self, server: &str, outcome: &str) -> u64 {
        self.calls
            .lock()
            .map(|map| {
                map.iter()
                    .filter(|((s, o), _)| s == server && *o == outcome)
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Most calls that were running at once since start.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// Calls running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Prometheus text: `responses_pipe_tool_calls_total{server,outcome}` (outcomes `ok`,
    /// `error`, `http_error`, `timeout` (the call's budget), `batch_timeout`, `idle_timeout`,
    /// `unavailable`, `refused`, `invalid_argument`,
    /// `not_found`, `session_closed`, `shutdown`, and `retried` for each retry of a call that
    /// never reached its server), the in-flight gauge and its peak. Server names come from the
    /// config, so the label set is bounded.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(map) = self.calls.lock() {
            for ((server, outcome), value) in map.iter() {
                let _ = writeln!(
                    out,
                    "responses_pipe_tool_calls_total{{server=\"{server}\",outcome=\"{outcome}\"}} {value}"
                );
            }
        }
        let _ = writeln!(
            out,
            "responses_pipe_tool_calls_in_flight {}",
            self.in_flight()
        );
        let _ = writeln!(
            out,
            "responses_pipe_tool_calls_peak_in_flight {}",
            self.peak()
        );
        out
    }
}
