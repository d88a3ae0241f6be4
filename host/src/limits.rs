//! Resource limits of one run, and how a limit that fires ends it.
//!
//! Why each mechanism:
//! * memory: a per-store [`ResourceLimiter`] refuses growth past the cap and traps with
//!   [`LimitExceeded::Memory`], so the error names the limit;
//! * CPU: fuel counts guest instructions only, so time blocked on HTTP costs nothing;
//! * wall time: a host-side timer raced against the guest call, because a guest blocked in a host
//!   call (waiting on HTTP) runs no wasm and cannot be interrupted from inside;
//! * response bodies and other host-side checks trip an [`AbortSignal`] raced the same way.
//!
//! A limit that fires ends the run with a `system_error` naming it; state already persisted stays.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::ResourceLimiter;

/// Per-run limits. `Default` gives values sized for one Instagram sync on a small machine.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Guest linear memory, in bytes.
    pub memory_bytes: usize,
    /// Guest instructions (wasmtime fuel); `None` for no cap.
    pub fuel: Option<u64>,
    /// The whole verb, waiting included; `None` for no cap.
    pub wall_time: Option<Duration>,
    /// Outbound requests in flight at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    /// Upper bound on each of the connect, first-byte and between-bytes timeouts.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 512 << 20,
            fuel: Some(500_000_000_000),
            wall_time: Some(Duration::from_secs(6 * 3600)),
            max_concurrent_requests: 64,
            max_response_bytes: 64 << 20,
            request_timeout: Duration::from_secs(120),
        }
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
    /// The guest used all its fuel.
    Cpu {
        /// The cap in fuel units (about one per guest instruction).
        fuel: u64,
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
            LimitExceeded::Cpu { fuel } => write!(f, "CPU limit exceeded: the connector used all {fuel} units of fuel"),
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
