//! A minimal single-threaded executor over `wasi:io/poll` pollables.
//!
//! Why: wasi:http lets one component have many requests in flight, but only if it waits on all
//! their pollables at once. Futures register the pollable they wait on; [`block_on`] polls the
//! top-level future and then blocks in one `poll` call over every registered pollable, waking
//! exactly the futures whose pollables are ready. Timers are pollables too, so backoff waits
//! sleep in the host instead of spinning.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use wasi::io::poll::{Pollable, poll};

#[derive(Default)]
struct Reactor {
    next_id: u64,
    waiting: BTreeMap<u64, (Pollable, Waker)>,
}

thread_local! {
    static REACTOR: RefCell<Reactor> = RefCell::new(Reactor::default());
}

/// Resolves once `pollable` is ready. The resource the pollable belongs to must outlive this
/// future (drop order: a pollable is a child resource; dropping its parent first traps).
pub fn wait_for(pollable: Pollable) -> WaitFor {
    WaitFor { state: WaitState::Fresh(Some(pollable)) }
}

pub struct WaitFor {
    state: WaitState,
}

enum WaitState {
    Fresh(Option<Pollable>),
    Registered(u64),
    Done,
}

impl Future for WaitFor {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            WaitState::Fresh(pollable) => {
                let Some(pollable) = pollable.take() else {
                    return Poll::Ready(());
                };
                if pollable.ready() {
                    self.state = WaitState::Done;
                    return Poll::Ready(());
                }
                let id = REACTOR.with_borrow_mut(|r| {
                    let id = r.next_id;
                    r.next_id += 1;
                    r.waiting.insert(id, (pollable, cx.waker().clone()));
                    id
                });
                self.state = WaitState::Registered(id);
                Poll::Pending
            }
            WaitState::Registered(id) => {
                let id = *id;
                let still_waiting = REACTOR.with_borrow_mut(|r| match r.waiting.get_mut(&id) {
                    Some((_, waker)) => {
                        waker.clone_from(cx.waker());
                        true
                    }
                    None => false,
                });
                if still_waiting {
                    Poll::Pending
                } else {
                    self.state = WaitState::Done;
                    Poll::Ready(())
                }
            }
            WaitState::Done => Poll::Ready(()),
        }
    }
}

impl Drop for WaitFor {
    fn drop(&mut self) {
        if let WaitState::Registered(id) = self.state {
            // Drops the pollable now, while its parent resource is still alive.
            let entry = REACTOR.with_borrow_mut(|r| r.waiting.remove(&id));
            drop(entry);
        }
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The top-level future stopped making progress with nothing to wait on: a bug, reported
/// instead of hanging or trapping.
#[derive(Debug)]
pub struct Stalled;

/// Runs `future` to completion on this thread.
pub fn block_on<F: Future>(future: F) -> Result<F::Output, Stalled> {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Ok(output);
        }
        if flag.0.load(Ordering::SeqCst) {
            continue;
        }
        let ready = REACTOR.with_borrow_mut(|r| {
            if r.waiting.is_empty() {
                return None;
            }
            let ids: Vec<u64> = r.waiting.keys().copied().collect();
            let pollables: Vec<&Pollable> = r.waiting.values().map(|(p, _)| p).collect();
            let ready = poll(&pollables);
            Some(
                ready
                    .into_iter()
                    .filter_map(|index| ids.get(index as usize))
                    .filter_map(|id| r.waiting.remove(id))
                    .map(|(_, waker)| waker)
                    .collect::<Vec<_>>(),
            )
        });
        match ready {
            None => return Err(Stalled),
            Some(wakers) => wakers.into_iter().for_each(Waker::wake),
        }
    }
}
