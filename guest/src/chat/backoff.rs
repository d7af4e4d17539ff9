//! The one backoff every retry of the chat path waits by: a fixed number of retries, the first
//! after a base delay, each next one twice as long as the one before (at most eight times the
//! base).

use crate::caps::Env;

/// Retries left, and how long to wait before the next one.
#[derive(Debug)]
pub(super) struct Backoff {
    base_ms: u64,
    max_retries: u32,
    retries: u32,
}

impl Backoff {
    /// Before a turn's first event (transport failures, streams that sent nothing): at most three
    /// retries, 0.5 s, 1 s, 2 s, as the reference pipe does.
    pub(super) const fn before_first_event() -> Backoff {
        Backoff {
            base_ms: 500,
            max_retries: 3,
            retries: 0,
        }
    }

    /// A housekeeping task's request: one retry, after 0.2 s.
    pub(super) const fn task() -> Backoff {
        Backoff {
            base_ms: 200,
            max_retries: 1,
            retries: 0,
        }
    }

    /// Whether a retry is left.
    pub(super) fn can_retry(&self) -> bool {
        self.retries < self.max_retries
    }

    /// The number of the attempt being made (1 for the first, then one more per retry).
    pub(super) fn attempt(&self) -> u32 {
        self.retries + 1
    }

    /// The wait before the next retry, counting that retry; `None` when none is left.
    fn next_delay_ms(&mut self) -> Option<u64> {
        if !self.can_retry() {
            return None;
        }
        self.retries += 1;
        Some(self.base_ms << (self.retries - 1).min(3))
    }

    /// Wait before the next retry and count it; false, at once, when none is left.
    pub(super) async fn wait(&mut self, env: &impl Env) -> bool {
        let Some(ms) = self.next_delay_ms() else {
            return false;
        };
        env.sleep_ms(ms).await;
        true
    }

    /// A new model turn begins: it gets its own retries.
    pub(super) fn reset(&mut self) {
        self.retries = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delays(mut b: Backoff) -> Vec<u64> {
        std::iter::from_fn(|| b.next_delay_ms()).collect()
    }

    #[test]
    fn before_the_first_event_three_retries_wait_half_a_second_then_double() {
        assert_eq!(delays(Backoff::before_first_event()), [500, 1_000, 2_000]);
    }

    #[test]
    fn a_task_retries_once_after_200_ms() {
        assert_eq!(delays(Backoff::task()), [200]);
    }

    #[test]
    fn a_reset_gives_the_retries_back_and_attempts_count_from_one() {
        let mut b = Backoff::before_first_event();
        assert_eq!(b.attempt(), 1);
        while b.next_delay_ms().is_some() {}
        assert!(!b.can_retry());
        assert_eq!(b.attempt(), 4);
        b.reset();
        assert!(b.can_retry());
        assert_eq!(b.next_delay_ms(), Some(500));
    }

    #[test]
    fn the_wait_doubles_at_most_three_times() {
        let b = Backoff {
            base_ms: 10,
            max_retries: 6,
            retries: 0,
        };
        assert_eq!(delays(b), [10, 20, 40, 80, 80, 80]);
    }
}
