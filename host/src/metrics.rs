//! Process-wide counters: refusals, traps, requests. Cheap to bump from any task; rendered by
//! `/metrics` in Prometheus text form. Labels are static strings chosen by the code, never by a
//! request, so the label set stays bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A counter name with one bounded label value.
type Key = (&'static str, &'static str);

/// Counters keyed by `(name, label)`.
#[derive(Debug, Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<Key, u64>>,
}

impl Metrics {
    /// Add one to `name{reason=label}`.
    pub fn incr(&self, name: &'static str, label: &'static str) {
        if let Ok(mut map) = self.counters.lock() {
            *map.entry((name, label)).or_insert(0) += 1;
        }
    }

    /// Current value of `name{reason=label}` (0 when never bumped).
    pub fn get(&self, name: &'static str, label: &'static str) -> u64 {
        self.counters
            .lock()
            .map(|map| map.get(&(name, label)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Sum of `name` over every label.
    pub fn total(&self, name: &'static str) -> u64 {
        self.counters
            .lock()
            .map(|map| {
                map.iter()
                    .filter(|((n, _), _)| *n == name)
                    .map(|(_, v)| *v)
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Prometheus text exposition of every counter.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Ok(map) = self.counters.lock() {
            for ((name, label), value) in map.iter() {
                // Store errors are labelled by error kind; every other counter by reason.
                let label_name = if *name == "store_errors" {
                    "kind"
                } else {
                    "reason"
                };
                out.push_str(&format!(
                    "responses_pipe_{name}_total{{{label_name}=\"{label}\"}} {value}\n"
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_per_label_and_in_total() {
        let m = Metrics::default();
        m.incr("egress_refused", "not_allowlisted");
        m.incr("egress_refused", "not_allowlisted");
        m.incr("egress_refused", "private_address");
        assert_eq!(m.get("egress_refused", "not_allowlisted"), 2);
        assert_eq!(m.total("egress_refused"), 3);
        assert!(
            m.render()
                .contains("responses_pipe_egress_refused_total{reason=\"private_address\"} 1")
        );
        m.incr("store_errors", "timeout");
        assert!(
            m.render()
                .contains("responses_pipe_store_errors_total{kind=\"timeout\"} 1")
        );
    }
}
