//! The host's bounds on tool calls, read from the settings, and how a request's own (lower)
//! bounds are clamped to them: the guest may lower every bound, never raise one.

use std::time::Duration;

use serde_json::Value;

use crate::bindings::tools::InvokeOptions;
use crate::config::{Config, valves};

/// The host's bounds on tool calls, from the valves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolLimits {
    /// `MAX_PARALLEL_TOOLS_PER_REQUEST`.
    pub per_request: usize,
    /// `MAX_PARALLEL_TOOLS_GLOBAL`.
    pub global: usize,
    /// `TOOL_TIMEOUT_SECONDS`: the most one call may take.
    pub call_timeout: Duration,
    /// `max(TOOL_TIMEOUT_SECONDS, TOOL_BATCH_TIMEOUT_SECONDS)`: the most one batch may take.
    pub batch_timeout: Duration,
    /// `TOOL_IDLE_TIMEOUT_SECONDS`, when set.
    pub idle_timeout: Option<Duration>,
    /// `TOOL_SHUTDOWN_TIMEOUT_SECONDS`: what in-flight calls get once shutdown starts.
    pub shutdown_timeout: Duration,
    /// `TOOL_SERVER_REFRESH_SECONDS`: how often a loaded server's tool list is fetched again
    /// (`None`: never after it first loads).
    pub refresh: Option<Duration>,
}

impl ToolLimits {
    /// Read the tool valves (their ranges were checked when the config was loaded).
    pub fn from_config(config: &Config) -> Self {
        // Every value is present and in range once the config is loaded; the table's default
        // stands in only should a name ever be missing from it.
        let int = |name: &str| {
            config
                .get(name)
                .and_then(Value::as_u64)
                .or_else(|| valves::find(name).and_then(|s| s.default.to_json().as_u64()))
                .unwrap_or(0)
        };
        let call = Duration::from_secs(int("TOOL_TIMEOUT_SECONDS"));
        let batch = Duration::from_secs(int("TOOL_BATCH_TIMEOUT_SECONDS")).max(call);
        let shutdown = config
            .get("TOOL_SHUTDOWN_TIMEOUT_SECONDS")
            .and_then(Value::as_f64)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or_default();
        Self {
            per_request: usize::try_from(int("MAX_PARALLEL_TOOLS_PER_REQUEST"))
                .unwrap_or(usize::MAX)
                .max(1),
            global: usize::try_from(int("MAX_PARALLEL_TOOLS_GLOBAL"))
                .unwrap_or(usize::MAX)
                .max(1),
            call_timeout: call,
            batch_timeout: batch,
            idle_timeout: config
                .get("TOOL_IDLE_TIMEOUT_SECONDS")
                .and_then(Value::as_u64)
                .map(Duration::from_secs),
            shutdown_timeout: shutdown,
            refresh: Some(int("TOOL_SERVER_REFRESH_SECONDS"))
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }
    }
}

/// The bounds of one `invoke`: the guest's options clamped to the host's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Calls of the batch running at once.
    pub parallel: usize,
    pub call_timeout: Duration,
    pub batch_timeout: Duration,
    pub idle: Option<Duration>,
}

impl ToolLimits {
    /// The guest may lower every limit, never raise one; `0` (or no idle timeout) means the
    /// host's own value.
    pub fn bounds(&self, options: &InvokeOptions) -> Bounds {
        let clamp = |guest_ms: u64, host: Duration| {
            if guest_ms == 0 {
                host
            } else {
                Duration::from_millis(guest_ms).min(host)
            }
        };
        let idle = match (options.idle_timeout_ms, self.idle_timeout) {
            (Some(ms), host) if ms > 0 => Some(host.map_or(Duration::from_millis(ms), |h| {
                Duration::from_millis(ms).min(h)
            })),
            (_, host) => host,
        };
        Bounds {
            parallel: usize::try_from(options.max_parallel)
                .unwrap_or(usize::MAX)
                .clamp(1, self.per_request),
            call_timeout: clamp(options.call_timeout_ms, self.call_timeout),
            batch_timeout: clamp(options.batch_timeout_ms, self.batch_timeout),
            idle,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ToolLimits {
        ToolLimits {
            per_request: 5,
            global: 200,
            call_timeout: Duration::from_secs(60),
            batch_timeout: Duration::from_secs(120),
            idle_timeout: Some(Duration::from_secs(30)),
            shutdown_timeout: Duration::from_secs(10),
            refresh: Some(Duration::from_secs(300)),
        }
    }

    fn opts(max_parallel: u32, call: u64, batch: u64, idle: Option<u64>) -> InvokeOptions {
        InvokeOptions {
            max_parallel,
            call_timeout_ms: call,
            batch_timeout_ms: batch,
            idle_timeout_ms: idle,
        }
    }

    #[test]
    fn the_guest_may_lower_every_bound_but_never_raise_one() {
        let l = limits();
        let lower = l.bounds(&opts(2, 1_000, 5_000, Some(500)));
        assert_eq!(
            lower,
            Bounds {
                parallel: 2,
                call_timeout: Duration::from_secs(1),
                batch_timeout: Duration::from_secs(5),
                idle: Some(Duration::from_millis(500)),
            }
        );
        let higher = l.bounds(&opts(50, 600_000, 900_000, Some(90_000)));
        assert_eq!(
            higher,
            Bounds {
                parallel: 5,
                call_timeout: Duration::from_secs(60),
                batch_timeout: Duration::from_secs(120),
                idle: Some(Duration::from_secs(30)),
            }
        );
        let unset = l.bounds(&opts(0, 0, 0, None));
        assert_eq!(unset.parallel, 1);
        assert_eq!(unset.call_timeout, Duration::from_secs(60));
        assert_eq!(unset.idle, Some(Duration::from_secs(30)));
        let no_host_idle = ToolLimits {
            idle_timeout: None,
            ..l
        };
        assert_eq!(no_host_idle.bounds(&opts(1, 0, 0, None)).idle, None);
        assert_eq!(
            no_host_idle.bounds(&opts(1, 0, 0, Some(700))).idle,
            Some(Duration::from_millis(700))
        );
    }

    #[test]
    fn tool_limits_come_from_the_valves_and_the_batch_budget_covers_a_call() {
        let config = Config::load(None, &|name| match name {
            "TOOL_TIMEOUT_SECONDS" => Some("200".to_owned()),
            "TOOL_BATCH_TIMEOUT_SECONDS" => Some("30".to_owned()),
            "TOOL_IDLE_TIMEOUT_SECONDS" => Some("7".to_owned()),
            "TOOL_SHUTDOWN_TIMEOUT_SECONDS" => Some("2.5".to_owned()),
            "MAX_PARALLEL_TOOLS_PER_REQUEST" => Some("3".to_owned()),
            "MAX_PARALLEL_TOOLS_GLOBAL" => Some("9".to_owned()),
            "TOOL_SERVER_REFRESH_SECONDS" => Some("0".to_owned()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ToolLimits::from_config(&config),
            ToolLimits {
                per_request: 3,
                global: 9,
                call_timeout: Duration::from_secs(200),
                batch_timeout: Duration::from_secs(200),
                idle_timeout: Some(Duration::from_secs(7)),
                shutdown_timeout: Duration::from_millis(2500),
                refresh: None,
            }
        );
    }
}
