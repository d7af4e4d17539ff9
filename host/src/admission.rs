//! Admission control before any instantiation: at most `MAX_CONCURRENT_REQUESTS` guests run at
//! once, at most `MAX_QUEUED_REQUESTS` more wait for a slot, each for at most
//! `MAX_QUEUE_WAIT_SECONDS`, and everything beyond is refused with a 503 ("server busy"), so
//! overload never piles up unbounded, in number or in time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Refused: the queue is full, or the wait for a slot was too long.
#[derive(Debug, thiserror::Error)]
#[error("the server is busy: {running} requests running and {queued} waiting")]
pub struct Busy {
    pub running: usize,
    pub queued: usize,
    /// `true` when the request waited `MAX_QUEUE_WAIT_SECONDS` without getting a slot.
    pub waited_too_long: bool,
}

impl Busy {
    /// A stable label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        if self.waited_too_long {
            "queue_timeout"
        } else {
            "busy"
        }
    }
}

/// The gate every chat and model request passes.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    max_running: usize,
    max_queued: usize,
    max_wait: Duration,
    queued: AtomicUsize,
}

/// Holding this is the right to run one guest.
#[derive(Debug)]
pub struct Ticket {
    _permit: OwnedSemaphorePermit,
}

struct QueueSlot<'a>(&'a AtomicUsize);
impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(max_running: usize, max_queued: usize, max_wait: Duration) -> Self {
        Admission {
            permits: Arc::new(Semaphore::new(max_running.max(1))),
            max_running: max_running.max(1),
            max_queued,
            max_wait,
            queued: AtomicUsize::new(0),
        }
    }

    /// Take a running slot, waiting in the bounded queue (at most `max_wait`) if needed.
    pub async fn admit(&self) -> Result<Ticket, Busy> {
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Ok(Ticket { _permit: p });
        }
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        let slot = QueueSlot(&self.queued);
        if queued >= self.max_queued {
            drop(slot);
            return Err(Busy {
                running: self.running(),
                queued,
                waited_too_long: false,
            });
        }
        let permit =
            tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned()).await;
        drop(slot);
        match permit {
            Ok(Ok(p)) => Ok(Ticket { _permit: p }),
            Ok(Err(_)) => Err(Busy {
                running: self.running(),
                queued: self.queued(),
                waited_too_long: false,
            }),
            Err(_) => Err(Busy {
                running: self.running(),
                queued: self.queued(),
                waited_too_long: true,
            }),
        }
    }

    pub fn running(&self) -> usize {
        self.max_running - self.permits.available_permits()
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn beyond_running_and_queued_limits_requests_are_refused_at_once() {
        let a = Arc::new(Admission::new(1, 1, Duration::from_secs(60)));
        let first = a.admit().await.unwrap();
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        while a.queued() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = a.admit().await;
        assert!(
            refused.is_err(),
            "the queue holds one; the third is refused"
        );
        drop(first);
        assert!(
            waiter.await.unwrap().is_ok(),
            "the queued request runs once a slot frees"
        );
        assert_eq!(a.queued(), 0);
    }

    #[tokio::test]
    async fn a_queued_request_gives_up_after_the_longest_wait() {
        let a = Admission::new(1, 5, Duration::from_millis(30));
        let _running = a.admit().await.unwrap();
        let refused = a.admit().await.unwrap_err();
        assert!(refused.waited_too_long);
        assert_eq!(refused.reason(), "queue_timeout");
        assert_eq!(a.queued(), 0, "the gave-up request left the queue");
    }
}
