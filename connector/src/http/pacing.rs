//! Proactive pacing: slow down before Meta throttles.
//!
//! Graph reports, on every answer (Batch API items included), how much of the app's and of the
//! business use case's hourly quota is used: `X-App-Usage` and `X-Business-Use-Case-Usage`, each
//! with `call_count`, `total_cputime` and `total_time` in percent. Throttling starts at 100 %.
//!
//! The pacer keeps the highest of those percentages and learns what one call adds to it. A
//! request (or a batch of N items, which count as N calls) is let through only while the calls in
//! flight, at that cost, still fit under [`CEILING`]; a batch is cut down to what fits. When
//! nothing fits and nothing is in flight, no answer will bring news, so the pacer waits and then
//! lets one call through as a probe: its answer shows whether the rolling window has drained.
//! The wait is what Graph estimates (`estimated_time_to_regain_access`) when it gives one; else it
//! halves when a probe finds room and doubles when it does not, up to the operator's cap. Pacing
//! that has held the sync back for its budget in a row without the usage draining stops, with a
//! warning: a figure that never moves (stale, or someone else's traffic) must not stall a sync
//! for hours, and Graph's own throttling, which the retry budget bounds, decides from there.
//! Below the ceiling no request ever waits, so a sync with quota to spare runs at full speed.

use super::{HttpResponse, Runtime};
use crate::protocol::{LogLevel, Sink, StreamStatus};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

/// Usage (percent) the pacer plans up to, leaving room for a probe and for estimation error.
pub const CEILING: f64 = 92.0;
/// The estimated cost of a call is multiplied by this before planning.
const SAFETY: f64 = 1.5;
const MIN_PROBE_WAIT: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Pacer {
    enabled: bool,
    /// The longest probe wait when Graph gives no estimate.
    wait_cap: Duration,
    /// How long pacing may hold calls back in a row without the usage draining.
    budget: Duration,
    state: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    /// The last usage Graph reported (percent, the highest of all its figures).
    usage: Option<f64>,
    /// The admission whose answer reported `usage`. Answers arrive out of order: a lower figure
    /// counts only from a call admitted later (one the server counted after it), else a stale
    /// answer would hide calls already counted.
    usage_from: u64,
    /// Admissions so far.
    admitted: u64,
    /// What one call adds to `usage`, learned from consecutive answers.
    per_call: f64,
    /// Calls sent and not yet answered.
    in_flight: u32,
    /// Answers seen (with or without usage headers).
    answered: u64,
    probe_wait: Duration,
    /// Graph's estimate of when the quota frees up, from the last answer that gave one.
    regain_in: Option<Duration>,
    /// The usage when the last probe was let through.
    probing_from: Option<f64>,
    /// When pacing started holding calls back without the usage draining since.
    holding_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Pacing ran out of budget: calls go through unpaced for the rest of the sync.
    gave_up: bool,
    waiters: Vec<Waker>,
}

/// What the pacer decides for a request now.
enum Decision {
    /// Send this many calls (at least one).
    Send(u32),
    /// Wait for answers in flight.
    AwaitAnswers,
    /// Nothing is in flight and nothing fits: wait this long, then probe.
    Probe(Duration),
}

/// Held while calls are in flight; answered (or lost) calls free their room when dropped.
pub struct Admission {
    pub calls: u32,
    /// Its place in the order of admissions (see [`Pacer::observe`]).
    pub sequence: u64,
    state: Rc<RefCell<State>>,
}

impl Pacer {
    pub fn new(enabled: bool) -> Pacer {
        let state = State { probe_wait: MIN_PROBE_WAIT, ..State::default() };
        let defaults = super::client::Budgets::default();
        Pacer {
            enabled,
            wait_cap: defaults.pacing_wait_cap,
            budget: defaults.pacing,
            state: Rc::new(RefCell::new(state)),
        }
    }

    /// The same pacer with the operator's cap on one wait and budget of waiting in a row.
    pub fn within(mut self, wait_cap: Duration, budget: Duration) -> Pacer {
        self.wait_cap = wait_cap.max(MIN_PROBE_WAIT);
        self.budget = budget;
        self
    }

    /// The last usage reported, in percent.
    pub fn usage(&self) -> Option<f64> {
        self.state.borrow().usage
    }

    /// Room for up to `wanted` calls under the usage Graph reports. A wait before a probe is
    /// announced like throttling (STREAM_STATUS RUNNING with the moment the probe goes out).
    pub async fn admit(&self, wanted: u32, stream: &str, runtime: &dyn Runtime, sink: &dyn Sink) -> Admission {
        loop {
            match self.decide(wanted) {
                Decision::Send(calls) => return self.admission(calls),
                Decision::AwaitAnswers => self.changed().await,
                Decision::Probe(wait) => {
                    let Some(wait) = self.within_budget(wait, stream, runtime, sink) else { continue };
                    let until = runtime.now().timestamp_millis().max(0) as u64 + wait.as_millis() as u64;
                    sink.stream_status(stream, StreamStatus::Running, Some(until));
                    let usage = self.usage().unwrap_or(0.0);
                    let message = format!(
                        "{stream}: the Graph API quota is {usage:.0}% used; pacing requests ({} ms until the next)",
                        wait.as_millis()
                    );
                    sink.log(LogLevel::Info, &message);
                    runtime.sleep(wait).await;
                    if let Some(admission) = self.probe() {
                        return admission;
                    }
                }
            }
        }
    }

    /// `wait`, cut to the pacing budget left; `None` once the budget is spent, after which pacing
    /// is off for the rest of the sync (announced once, as a warning).
    fn within_budget(&self, wait: Duration, stream: &str, runtime: &dyn Runtime, sink: &dyn Sink) -> Option<Duration> {
        let now = runtime.now();
        let mut state = self.state.borrow_mut();
        let since = *state.holding_since.get_or_insert(now);
        let held = (now - since).to_std().unwrap_or_default();
        let left = self.budget.saturating_sub(held);
        if !left.is_zero() {
            return Some(wait.min(left));
        }
        state.gave_up = true;
        let usage = state.usage.unwrap_or(0.0);
        drop(state);
        sink.log(
            LogLevel::Warn,
            &format!(
                "{stream}: the Graph API quota has stayed {usage:.0}% used for {} s of pacing without draining; pacing stops for this sync and Graph's own throttling decides from here",
                held.as_secs()
            ),
        );
        None
    }

    /// What to do about a request of up to `wanted` calls.
    fn decide(&self, wanted: u32) -> Decision {
        let mut state = self.state.borrow_mut();
        let wanted = wanted.max(1);
        let room = match (self.enabled && !state.gave_up, state.usage) {
            (true, Some(usage)) if state.per_call > 0.0 => {
                let calls = ((CEILING - usage) / (state.per_call * SAFETY)).floor();
                (calls.max(0.0) as u64).saturating_sub(u64::from(state.in_flight)).min(u64::from(u32::MAX)) as u32
            }
            _ => wanted,
        };
        if room >= 1 {
            let calls = room.min(wanted);
            state.in_flight += calls;
            return Decision::Send(calls);
        }
        if state.in_flight > 0 {
            Decision::AwaitAnswers
        } else {
            Decision::Probe(state.regain_in.unwrap_or(state.probe_wait))
        }
    }

    /// Lets one call through after a probe wait, unless other calls went out meanwhile.
    fn probe(&self) -> Option<Admission> {
        let mut state = self.state.borrow_mut();
        if state.in_flight > 0 {
            return None;
        }
        state.in_flight = 1;
        state.probing_from = state.usage;
        state.admitted += 1;
        Some(Admission { calls: 1, sequence: state.admitted, state: self.state.clone() })
    }

    /// The admission for a [`Decision::Send`].
    fn admission(&self, calls: u32) -> Admission {
        let sequence = {
            let mut state = self.state.borrow_mut();
            state.admitted += 1;
            state.admitted
        };
        Admission { calls, sequence, state: self.state.clone() }
    }

    /// Waits until an answer arrives or a call's room is freed.
    async fn changed(&self) {
        let mut registered = false;
        poll_fn(|cx| {
            if registered {
                return Poll::Ready(());
            }
            registered = true;
            self.state.borrow_mut().waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Reads the usage headers of one answer (a response or a batch item) to the call admitted
    /// as `sequence`.
    pub fn observe(&self, response: &HttpResponse, sequence: u64) {
        let usage = usage_percent(response);
        let regain_in = super::error::regain_estimate(response);
        let waiters = {
            let mut state = self.state.borrow_mut();
            state.answered += 1;
            if usage.is_some() {
                state.regain_in = regain_in;
            }
            let current = state.usage.filter(|current| usage.is_some_and(|u| u < *current));
            let stale = current.is_some() && sequence <= state.usage_from;
            if let (Some(usage), false) = (usage, stale) {
                let rise = match state.usage {
                    Some(previous) => usage - previous,
                    // The first figure: spread over every call answered so far.
                    None => usage / state.answered as f64,
                };
                // A jump far above one call's cost is someone else's traffic, not ours.
                let rise = rise.min(10.0);
                if rise > 0.0 {
                    state.per_call = if state.per_call == 0.0 { rise } else { (state.per_call + rise) / 2.0 };
                }
                if let Some(before) = state.probing_from.take() {
                    let drained = usage < before;
                    state.probe_wait = if drained {
                        state.holding_since = None;
                        (state.probe_wait / 2).max(MIN_PROBE_WAIT)
                    } else {
                        (state.probe_wait * 2).min(self.wait_cap)
                    };
                }
                if usage < CEILING {
                    state.holding_since = None;
                }
                state.usage = Some(usage);
                state.usage_from = state.usage_from.max(sequence);
            }
            std::mem::take(&mut state.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let waiters = {
            let mut state = self.state.borrow_mut();
            state.in_flight = state.in_flight.saturating_sub(self.calls);
            std::mem::take(&mut state.waiters)
        };
        waiters.into_iter().for_each(Waker::wake);
    }
}

/// One usage figure set, as `X-App-Usage` holds one and `X-Business-Use-Case-Usage` one per
/// business and use case (percentages; `docs/graph-api.md`, "Rate limits").
#[derive(Deserialize)]
pub struct Usage {
    call_count: Option<f64>,
    total_cputime: Option<f64>,
    total_time: Option<f64>,
    /// Minutes until a throttled quota frees up (0 when not throttled).
    pub estimated_time_to_regain_access: Option<u64>,
}

impl Usage {
    fn highest(&self) -> Option<f64> {
        [self.call_count, self.total_cputime, self.total_time].into_iter().flatten().reduce(f64::max)
    }
}

/// Every figure set of `X-Business-Use-Case-Usage`, if the answer has the header.
pub fn business_usage(response: &HttpResponse) -> Option<Vec<Usage>> {
    let header = response.header("x-business-use-case-usage")?;
    let accounts: BTreeMap<String, Vec<Usage>> = serde_json::from_str(header).ok()?;
    Some(accounts.into_values().flatten().collect())
}

/// The highest percentage in `X-App-Usage` and `X-Business-Use-Case-Usage`, if either is there.
pub fn usage_percent(response: &HttpResponse) -> Option<f64> {
    let app = response.header("x-app-usage").and_then(|h| serde_json::from_str::<Usage>(h).ok());
    let app = app.as_ref().and_then(Usage::highest);
    let business =
        business_usage(response).and_then(|entries| entries.iter().filter_map(Usage::highest).reduce(f64::max));
    [app, business].into_iter().flatten().reduce(f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(call_count: u32) -> HttpResponse {
        let usage = format!(
            r#"{{"1784":[{{"type":"instagram","call_count":{call_count},"total_cputime":1,"total_time":2}}]}}"#
        );
        HttpResponse { status: 200, headers: vec![("x-business-use-case-usage".into(), usage)], body: Vec::new() }
    }

    #[test]
    fn reads_the_highest_figure_of_both_headers() {
        let mut response = answer(40);
        response.headers.push(("x-app-usage".into(), r#"{"call_count":7,"total_cputime":55,"total_time":3}"#.into()));
        assert_eq!(usage_percent(&response), Some(55.0));
        assert_eq!(usage_percent(&HttpResponse { status: 200, headers: vec![], body: vec![] }), None);
    }

    #[test]
    fn cuts_batches_to_the_room_left_and_probes_when_none_is() {
        let pacer = Pacer::new(true);
        assert!(matches!(pacer.decide(50), Decision::Send(50)), "nothing known yet: no pacing");
        drop(pacer.admission(50));
        for used in [2, 4, 6] {
            pacer.observe(&answer(used), 1);
        }
        // A late answer to an earlier call does not lower the figure.
        pacer.observe(&answer(1), 0);
        assert_eq!(pacer.usage(), Some(6.0));
        // 2 % per call: (92 - 6) / (2 × 1.5) = 28 calls fit.
        let Decision::Send(calls) = pacer.decide(50) else { panic!("room") };
        assert_eq!(calls, 28);
        assert!(matches!(pacer.decide(1), Decision::AwaitAnswers));
        let sequence = pacer.admission(calls).sequence;
        pacer.observe(&answer(91), sequence);
        let Decision::Probe(wait) = pacer.decide(1) else { panic!("probe") };
        assert_eq!(wait, MIN_PROBE_WAIT);
        let probe = pacer.probe().expect("probe");
        pacer.observe(&answer(93), probe.sequence);
        drop(probe);
        assert!(matches!(pacer.decide(1), Decision::Probe(wait) if wait == MIN_PROBE_WAIT * 2), "not drained");
        assert!(matches!(Pacer::new(false).decide(50), Decision::Send(50)));
    }

    /// A usage figure that stays at 99 % without throttling: probe waits grow to the cap, never
    /// past it, and pacing stops (one WARN) once it has held calls back for its budget; Graph's
    /// own estimate, when it gives one, sets the wait instead.
    #[test]
    fn a_stuck_quota_cannot_stall_a_sync() {
        use crate::http::testing::ScriptedRuntime;
        use crate::protocol::testing::RecordingSink;
        use futures::executor::block_on;
        for (cap, budget) in [(60, 600), (5, 30), (1, 1), (300, 3600)] {
            let runtime =
                ScriptedRuntime::new(chrono::Utc::now(), |_| Err(super::super::TransportError::Timeout("-".into())));
            let sink = RecordingSink::default();
            let pacer = Pacer::new(true).within(Duration::from_secs(cap), Duration::from_secs(budget));
            let mut calls = 0;
            while calls < 10_000 {
                let admission = block_on(pacer.admit(1, "media", &runtime, &sink));
                calls += 1;
                pacer.observe(&answer(99), admission.sequence);
                if pacer.state.borrow().gave_up {
                    break;
                }
            }
            let sleeps = runtime.sleeps.borrow();
            assert!(sleeps.iter().all(|wait| *wait <= Duration::from_secs(cap)), "cap {cap}: {sleeps:?}");
            let waited: Duration = sleeps.iter().sum();
            assert!(waited <= Duration::from_secs(budget), "budget {budget}: waited {waited:?}");
            let warnings = sink.logs().iter().filter(|(level, _)| *level == LogLevel::Warn).count();
            assert_eq!(warnings, 1, "one warning when pacing stops");
            assert!(matches!(pacer.decide(50), Decision::Send(50)), "unpaced after the budget");
        }
        let runtime =
            ScriptedRuntime::new(chrono::Utc::now(), |_| Err(super::super::TransportError::Timeout("-".into())));
        let sink = RecordingSink::default();
        let pacer = Pacer::new(true).within(Duration::from_secs(60), Duration::from_secs(3600));
        let mut estimated = answer(99);
        estimated.headers[0].1 =
            r#"{"1784":[{"type":"instagram","call_count":99,"estimated_time_to_regain_access":7}]}"#.into();
        for _ in 0..3 {
            let admission = block_on(pacer.admit(1, "media", &runtime, &sink));
            pacer.observe(&estimated, admission.sequence);
        }
        assert_eq!(runtime.sleeps.borrow().as_slice(), [Duration::from_secs(420), Duration::from_secs(420)]);
    }
}
