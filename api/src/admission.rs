//! Admission control for expensive requests: a gate lets a fixed number of requests run,
//! a bounded number wait (each at most a short while), and answers the rest at once with
//! 503 and `Retry-After`. Clip analysis and store writes each have one, so a burst of
//! uploads queues briefly and then sheds load instead of piling up on the CPU or the
//! database pool (and queries and `/v1/health` never wait behind them).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{ApiError, ApiResult};

/// How many run, how many may wait, and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateLimits {
    /// Requests doing the work at once.
    pub running: usize,
    /// Requests allowed to wait for a turn; one more is refused at once.
    pub queue: usize,
    /// Longest wait for a turn before a 503.
    pub max_wait: Duration,
}

/// One kind of expensive work (its name is in the 503's message and details).
pub struct Gate {
    name: &'static str,
    limits: GateLimits,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// A turn at the work; the slot is free again when this is dropped.
pub struct Turn {
    _permit: OwnedSemaphorePermit,
}

impl Gate {
    pub fn new(name: &'static str, limits: GateLimits) -> Gate {
        Gate {
            name,
            limits,
            slots: Arc::new(Semaphore::new(limits.running.max(1))),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Requests now waiting for a turn.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Waits for a turn: at once when a slot is free, up to `max_wait` when the queue has
    /// room, else 503 `busy` with a `Retry-After`.
    pub async fn enter(&self) -> ApiResult<Turn> {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(Turn { _permit: p });
        }
        let queued = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _leave = Leave(&self.waiting);
        if queued >= self.limits.queue {
            return Err(self.busy("the queue is full"));
        }
        match tokio::time::timeout(self.limits.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(Turn { _permit: p }),
            _ => Err(self.busy("no turn came within the wait limit")),
        }
    }

    fn busy(&self, why: &str) -> ApiError {
        let retry = self.limits.max_wait.as_secs().clamp(1, 60) as u32;
        ApiError::new(
            503,
            "busy",
            format!(
                "too many {} requests at once ({why}): retry later",
                self.name
            ),
        )
        .with_details(json!({
            "work": self.name,
            "running": self.limits.running,
            "queue": self.limits.queue,
        }))
        .retry_after(retry)
    }
}

/// Decrements the waiting count however the wait ends (including a dropped request).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_queues_then_sheds_with_retry_after() {
        let gate = Arc::new(Gate::new(
            "test",
            GateLimits {
                running: 1,
                queue: 1,
                max_wait: Duration::from_millis(300),
            },
        ));
        let first = gate.enter().await.expect("a free slot");
        // One waits; while it waits, a third is refused at once.
        let g2 = gate.clone();
        let waiter = tokio::spawn(async move { g2.enter().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.waiting(), 1);
        let refused = gate.enter().await.err().expect("queue full");
        assert_eq!((refused.status, refused.code), (503, "busy"));
        assert_eq!(refused.retry_after, Some(1));
        // The waiter gives up after max_wait with a 503 too.
        let Err(timed_out) = waiter.await.unwrap() else {
            panic!("waited too long");
        };
        assert_eq!(timed_out.status, 503);
        assert_eq!(gate.waiting(), 0);
        // Once the slot is free, the next request runs.
        drop(first);
        assert!(gate.enter().await.is_ok());
    }
}
