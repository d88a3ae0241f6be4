//! Caps the number of requests in flight (`num_workers`) across every stream of a sync.
//!
//! A tiny single-threaded async semaphore: the component runs one thread, so `RefCell` suffices
//! and no executor-specific primitive is needed. A released slot wakes *every* waiter: a waiter
//! that was polled again and got a slot leaves a stale waker behind, and waking only the first
//! could hand the wake-up to that stale waker and strand the others.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

#[derive(Clone)]
pub struct Limiter {
    inner: Rc<RefCell<Inner>>,
}

struct Inner {
    available: usize,
    in_flight: usize,
    peak_in_flight: usize,
    waiters: VecDeque<Waker>,
}

/// Held while a request is in flight; frees the slot when dropped.
pub struct Permit {
    inner: Rc<RefCell<Inner>>,
}

impl Limiter {
    pub fn new(slots: usize) -> Self {
        Limiter {
            inner: Rc::new(RefCell::new(Inner {
                available: slots.max(1),
                in_flight: 0,
                peak_in_flight: 0,
                waiters: VecDeque::new(),
            })),
        }
    }

    pub async fn acquire(&self) -> Permit {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            if inner.available > 0 {
                inner.available -= 1;
                inner.in_flight += 1;
                inner.peak_in_flight = inner.peak_in_flight.max(inner.in_flight);
                Poll::Ready(())
            } else {
                inner.waiters.push_back(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        Permit { inner: self.inner.clone() }
    }

    /// The most requests that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.inner.borrow().peak_in_flight
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let waiters = {
            let mut inner = self.inner.borrow_mut();
            inner.available += 1;
            inner.in_flight -= 1;
            std::mem::take(&mut inner.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use futures::executor::block_on;

    /// Pending once (waking itself), then ready: holds the permit across a scheduling point.
    async fn yield_once() {
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await
    }

    #[test]
    fn never_more_than_the_slots_and_no_waiter_is_stranded() {
        let limiter = Limiter::new(3);
        let in_flight = std::cell::Cell::new(0usize);
        let tasks = (0..50).map(|_| async {
            let _permit = limiter.acquire().await;
            in_flight.set(in_flight.get() + 1);
            assert!(in_flight.get() <= 3);
            yield_once().await;
            in_flight.set(in_flight.get() - 1);
        });
        // buffer_unordered polls futures spuriously, which used to leave stale wakers behind.
        block_on(futures::stream::iter(tasks).buffer_unordered(20).collect::<Vec<_>>());
        assert_eq!(limiter.peak_in_flight(), 3);
    }
}
