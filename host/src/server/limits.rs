//! Bounds on reading request bodies: each body must arrive within `CLIENT_BODY_TIMEOUT_SECONDS`
//! and fit `MAX_REQUEST_BODY_BYTES`, and all the bodies being read at once share one budget of
//! `MAX_INFLIGHT_BODY_BYTES`, so a few hundred slow uploads cannot exhaust the host's memory.
//!
//! Threat handled: slow or oversized uploads holding memory and connections. Bytes are charged
//! to the budget as they arrive and released once the body has been read (or refused); a body
//! that would take the budget over its cap is refused at once (`503` with `Retry-After`) rather
//! than waiting, so refused uploads cannot pile up either. Not handled: what the request holds
//! after its body was read (bounded by admission instead).

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body exceeds {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the request body did not arrive within {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("too many request bodies are being received at once")]
    BudgetExhausted,
    #[error("could not read the request body: {0}")]
    Read(String),
}

/// The process-wide budget of body bytes being read at once.
#[derive(Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    cap: usize,
}

/// Bytes held from the budget; given back when dropped.
#[derive(Debug)]
pub struct Charge {
    _permits: Vec<OwnedSemaphorePermit>,
}

impl BodyBudget {
    pub fn new(cap: usize) -> Self {
        let cap = cap.clamp(1, Semaphore::MAX_PERMITS);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(cap)),
            cap,
        }
    }

    /// Bytes currently charged.
    pub fn in_use(&self) -> usize {
        self.cap - self.bytes.available_permits()
    }

    /// Charge `n` more bytes now, or refuse.
    fn charge(&self, n: usize) -> Result<OwnedSemaphorePermit, BodyError> {
        let n = u32::try_from(n).map_err(|_| BodyError::BudgetExhausted)?;
        self.bytes
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| BodyError::BudgetExhausted)
    }

    /// Read `body` whole: at most `limit` bytes, within `timeout`, each frame charged to this
    /// budget as it arrives. The returned charge holds the bytes until the caller drops it.
    pub async fn read(
        &self,
        body: Body,
        limit: usize,
        timeout: Duration,
    ) -> Result<(Bytes, Charge), BodyError> {
        let mut permits = Vec::new();
        let mut out = Vec::new();
        let read = async {
            let mut body = body;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if out.len() + data.len() > limit {
                    return Err(BodyError::TooLarge { limit });
                }
                permits.push(self.charge(data.len())?);
                out.extend_from_slice(&data);
            }
            Ok(())
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(Ok(())) => Ok((Bytes::from(out), Charge { _permits: permits })),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BodyError::TimedOut(timeout)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(chunks: Vec<&'static [u8]>) -> Body {
        let frames = chunks
            .into_iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c)));
        Body::from_stream(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn bodies_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(10);
        let (first, charge) = budget
            .read(body_of(vec![b"abc", b"def"]), 100, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(&first[..], b"abcdef");
        assert_eq!(budget.in_use(), 6);
        let refused = budget
            .read(body_of(vec![b"12345"]), 100, Duration::from_secs(5))
            .await;
        assert!(matches!(refused, Err(BodyError::BudgetExhausted)));
        assert_eq!(budget.in_use(), 6, "a refused body gives its bytes back");
        drop(charge);
        assert_eq!(budget.in_use(), 0);
        assert!(
            budget
                .read(body_of(vec![b"12345"]), 100, Duration::from_secs(5))
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_body_over_its_limit_or_too_slow_is_refused() {
        let budget = BodyBudget::new(1000);
        let big = budget
            .read(body_of(vec![b"0123456789"]), 5, Duration::from_secs(5))
            .await;
        assert!(matches!(big, Err(BodyError::TooLarge { limit: 5 })));
        let slow = Body::from_stream(futures::stream::pending::<Result<Bytes, std::io::Error>>());
        let late = budget.read(slow, 5, Duration::from_millis(20)).await;
        assert!(matches!(late, Err(BodyError::TimedOut(_))));
        assert_eq!(budget.in_use(), 0);
    }
}
