//! Caps the number of requests in flight (`num_workers`) across every stream of a sync.
//!
//! A tiny single-threaded async semaphore: the component runs one thread, so `RefCell` suffices
//! and no executor-specific primitive is needed.

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
        let waiter = {
            let mut inner = self.inner.borrow_mut();
            inner.available += 1;
            inner.in_flight -= 1;
            inner.waiters.pop_front()
        };
        if let Some(waker) = waiter {
            waker.wake();
        }
    }
}
