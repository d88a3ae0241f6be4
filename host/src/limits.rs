//! Resource limits of one run, and how a limit that fires ends it.
//!
//! Why each mechanism:
//! * memory: a per-store [`ResourceLimiter`] refuses growth past the cap and traps with
//!   [`LimitExceeded::Memory`], so the error names the limit;
//! * CPU: [`GuestClock`] adds up the time the guest spends executing wasm (host calls and waits
//!   on HTTP excluded); the engine's epoch tick checks it, so a busy loop cannot escape the cap,
//!   and makes a busy guest yield to other tenants;
//! * wall time: a host-side timer raced against the guest call, because a guest blocked in a host
//!   call (waiting on HTTP) runs no wasm and cannot be interrupted from inside;
//! * response bodies and other host-side checks trip an [`AbortSignal`] raced the same way;
//! * retrying and pacing: budgets the component keeps itself (it alone knows which request is a
//!   retry), handed to it with `read` ([`Limits::budgets`]).
//!
//! A limit that fires ends the run with a `system_error` naming it; state already persisted stays.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::ResourceLimiter;

/// Per-run limits. `Default` gives values sized for one Instagram sync on a small machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Guest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Guest CPU time (time executing wasm); `None` for no cap.
    pub cpu_time: Option<Duration>,
    /// The whole verb, waiting included; `None` for no cap.
    pub wall_time: Option<Duration>,
    /// Outbound requests in flight at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    /// Upper bound on each of the connect, first-byte and between-bytes timeouts.
    pub request_timeout: Duration,
    /// How long the component keeps retrying a failing request (passed to `read`; see the WIT
    /// `budgets`).
    pub retry_budget: Duration,
    /// The longest one pacing wait lasts when Graph gives no estimate.
    pub pacing_wait_cap: Duration,
    /// How long pacing may hold a sync back in a row before the component stops pacing.
    pub pacing_budget: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            cpu_time: Some(Duration::from_secs(3600)),
            wall_time: Some(Duration::from_secs(6 * 3600)),
            max_concurrent_requests: 64,
            max_response_bytes: 64 << 20,
            request_timeout: Duration::from_secs(120),
            retry_budget: Duration::from_secs(150),
            pacing_wait_cap: Duration::from_secs(60),
            pacing_budget: Duration::from_secs(600),
        }
    }
}

impl Limits {
    /// The retry and pacing budgets in the WIT's form (whole seconds).
    pub fn budgets(&self) -> crate::bindings::airbyte::source::types::Budgets {
        let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
        crate::bindings::airbyte::source::types::Budgets {
            retry_secs: secs(self.retry_budget),
            pacing_wait_secs: secs(self.pacing_wait_cap),
            pacing_secs: secs(self.pacing_budget),
        }
    }
}

/// The guest's CPU time: time spent executing wasm, from the store's call hooks (entering and
/// leaving wasm and host calls) and the epoch callback (a yield to the executor stops the clock
/// until the guest runs again).
#[derive(Clone, Debug, Default)]
pub struct GuestClock {
    inner: Arc<Mutex<ClockState>>,
}

#[derive(Debug, Default)]
struct ClockState {
    used: Duration,
    /// When the guest last started executing wasm, while it is.
    running_since: Option<Instant>,
}

impl GuestClock {
    fn state(&self) -> std::sync::MutexGuard<'_, ClockState> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The guest starts (or resumes) executing wasm.
    pub fn start(&self) {
        self.state().running_since = Some(Instant::now());
    }

    /// The guest stops executing wasm (a host call, a return, a yield).
    pub fn stop(&self) {
        let mut state = self.state();
        if let Some(since) = state.running_since.take() {
            state.used += since.elapsed();
        }
    }

    /// CPU time used so far, the current stint included.
    pub fn used(&self) -> Duration {
        let state = self.state();
        state.used + state.running_since.map_or(Duration::ZERO, |since| since.elapsed())
    }
}

/// A limit that ended a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitExceeded {
    /// The guest asked for more memory than allowed.
    Memory {
        /// The cap in bytes.
        limit: usize,
    },
    /// The guest used all its CPU time.
    Cpu {
        /// The cap.
        limit: Duration,
    },
    /// The verb ran longer than allowed.
    WallTime {
        /// The cap.
        limit: Duration,
    },
    /// A response body was larger than allowed.
    ResponseBody {
        /// The cap in bytes.
        limit: u64,
    },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Memory { limit } => {
                write!(f, "memory limit exceeded: the connector needed more than {} MiB", limit >> 20)
            }
            LimitExceeded::Cpu { limit } => {
                write!(f, "CPU limit exceeded: the connector ran for more than {:.1} s of CPU", limit.as_secs_f64())
            }
            LimitExceeded::WallTime { limit } => {
                write!(f, "wall-time limit exceeded: the run took longer than {} s", limit.as_secs_f64())
            }
            LimitExceeded::ResponseBody { limit } => {
                write!(f, "response size limit exceeded: a response body was larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for LimitExceeded {}

/// Refuses memory growth past the cap with a [`LimitExceeded::Memory`] trap.
pub(crate) struct MemoryCap {
    pub(crate) limit: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(LimitExceeded::Memory { limit: self.limit }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Host-side code trips this to end a run (e.g. an oversized response); the runner races it
/// against the guest call.
#[derive(Clone, Default)]
pub struct AbortSignal(Arc<AbortInner>);

#[derive(Default)]
struct AbortInner {
    reason: Mutex<Option<LimitExceeded>>,
    notify: tokio::sync::Notify,
}

impl AbortSignal {
    /// Ends the run with `reason` (the first reason wins).
    pub fn trigger(&self, reason: LimitExceeded) {
        let mut current = self.0.reason.lock().unwrap_or_else(|p| p.into_inner());
        if current.is_none() {
            *current = Some(reason);
        }
        drop(current);
        self.0.notify.notify_waiters();
    }

    /// The reason, if already triggered.
    pub fn triggered_now(&self) -> Option<LimitExceeded> {
        self.0.reason.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Resolves once triggered.
    pub async fn triggered(&self) -> LimitExceeded {
        loop {
            let notified = self.0.notify.notified();
            if let Some(reason) = self.0.reason.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                return reason;
            }
            notified.await;
        }
    }
}
