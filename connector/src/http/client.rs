//! `GraphClient`: send, classify, back off, retry, for every stream.

use super::error::{ErrorClass, RequestError};
use super::limiter::Limiter;
use super::{HttpRequest, HttpResponse, Method, Runtime};
use crate::protocol::{LogLevel, Sink, StreamStatus};
use serde_json::Value;
use std::cell::Cell;
use std::time::Duration;

/// How failed requests are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the reference: 5, so 6 attempts).
    pub max_retries: u32,
    /// Wait before retry `n` is `factor × 2^n` (the reference: 5 s → 10, 20, 40, 80, 160 s).
    pub backoff_factor: Duration,
    /// Upper bound on any single wait, whatever the server asks for.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_retries: 5, backoff_factor: Duration::from_secs(5), max_wait: Duration::from_secs(3600) }
    }
}

impl RetryPolicy {
    pub fn backoff(&self, retry: u32) -> Duration {
        let wait = self.backoff_factor.saturating_mul(2u32.saturating_pow(retry));
        wait.min(self.max_wait)
    }
}

/// Request counters for logs and benchmarks.
#[derive(Default)]
pub struct Counters {
    /// HTTP round trips, retries included.
    pub round_trips: Cell<u64>,
    pub retries: Cell<u64>,
}

pub struct GraphClient<'a> {
    base_url: String,
    token: String,
    runtime: &'a dyn Runtime,
    sink: &'a dyn Sink,
    limiter: Limiter,
    policy: RetryPolicy,
    pub counters: Counters,
}

impl<'a> GraphClient<'a> {
    pub fn new(
        base_url: &str,
        token: &str,
        num_workers: usize,
        policy: RetryPolicy,
        runtime: &'a dyn Runtime,
        sink: &'a dyn Sink,
    ) -> Self {
        GraphClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            runtime,
            sink,
            limiter: Limiter::new(num_workers),
            policy,
            counters: Counters::default(),
        }
    }

    pub fn runtime(&self) -> &'a dyn Runtime {
        self.runtime
    }

    pub fn sink(&self) -> &'a dyn Sink {
        self.sink
    }

    pub fn peak_in_flight(&self) -> usize {
        self.limiter.peak_in_flight()
    }

    /// The absolute URL for a Graph path (`/me/accounts`) and query.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}{}", self.base_url, path);
        if !query.is_empty() {
            let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
            url.push('?');
            url.push_str(&encoded);
        }
        url
    }

    /// GET a Graph path; the JSON body on success. `stream` names the stream for status messages.
    pub async fn get(&self, path: &str, query: &[(&str, &str)], stream: &str) -> Result<Value, RequestError> {
        let request = HttpRequest {
            method: Method::Get,
            url: self.url(path, query),
            headers: vec![("authorization".into(), format!("Bearer {}", self.token))],
            body: None,
        };
        let mut attempt = 1;
        loop {
            let (mut error, server_wait) = match self.send_once(&request, path).await {
                Ok(body) => return Ok(body),
                Err(failed) => failed,
            };
            error.attempts = attempt;
            if !error.class.is_retryable() || attempt > self.policy.max_retries {
                return Err(error);
            }
            let wait = server_wait.unwrap_or_else(|| self.policy.backoff(attempt)).min(self.policy.max_wait);
            self.announce_retry(&error, wait, stream);
            self.counters.retries.set(self.counters.retries.get() + 1);
            self.runtime.sleep(wait).await;
            attempt += 1;
        }
    }

    /// One round trip. On failure also returns the wait the server asked for, if any.
    async fn send_once(&self, request: &HttpRequest, path: &str) -> Result<Value, (RequestError, Option<Duration>)> {
        let response = {
            let _permit = self.limiter.acquire().await;
            self.counters.round_trips.set(self.counters.round_trips.get() + 1);
            self.runtime.send(request.clone()).await
        };
        let response = response.map_err(|e| (RequestError::from_transport(&e, path), None))?;
        let body: Option<Value> = serde_json::from_slice(&response.body).ok();
        let ok_status = (200..300).contains(&response.status);
        match body {
            Some(body) if ok_status && body.get("error").is_none() => Ok(body),
            body => {
                let error = RequestError::from_response(&response, body.as_ref(), path);
                let wait = server_requested_wait(&response, error.class);
                Err((error, wait))
            }
        }
    }

    fn announce_retry(&self, error: &RequestError, wait: Duration, stream: &str) {
        let cause = error.to_failure().message;
        if error.class == ErrorClass::RateLimited {
            let until = self.runtime.now().timestamp_millis().max(0) as u64 + wait.as_millis() as u64;
            self.sink.stream_status(stream, StreamStatus::Running, Some(until));
            self.sink.log(
                LogLevel::Warn,
                &format!(
                    "{stream}: throttled by the Graph API; waiting {}s before attempt {} ({cause})",
                    wait.as_secs(),
                    error.attempts + 1
                ),
            );
        } else {
            self.sink.log(
                LogLevel::Info,
                &format!("{stream}: retrying in {}s, attempt {} failed ({cause})", wait.as_secs(), error.attempts),
            );
        }
    }
}

/// The wait a response asks for: `Retry-After` (seconds), or for throttling the largest
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
fn server_requested_wait(response: &HttpResponse, class: ErrorClass) -> Option<Duration> {
    if let Some(seconds) = response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(seconds));
    }
    if class != ErrorClass::RateLimited {
        return None;
    }
    let usage: Value = serde_json::from_str(response.header("x-business-use-case-usage")?).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry.get("estimated_time_to_regain_access").and_then(Value::as_u64))
        .max()
        .filter(|m| *m > 0)?;
    Some(Duration::from_secs(minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_schedule_matches_the_reference() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=5).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160]);
    }

    #[test]
    fn retries_wait_the_reference_schedule_then_give_up_with_six_attempts() {
        use crate::http::testing::{ScriptedRuntime, respond};
        use crate::protocol::testing::{Message, RecordingSink};
        let runtime = ScriptedRuntime::new(chrono::Utc::now(), |_| {
            respond(
                400,
                serde_json::json!({"error": {"message": "(#80002) There have been too many calls", "code": 80002}}),
            )
        });
        let sink = RecordingSink::default();
        let client = GraphClient::new("http://x/v23.0", "tok", 4, RetryPolicy::default(), &runtime, &sink);
        let error = futures::executor::block_on(client.get("/me/accounts", &[], "Api")).expect_err("throttled");
        assert_eq!(error.attempts, 6);
        let waits: Vec<u64> = runtime.sleeps.borrow().iter().map(Duration::as_secs).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160]);
        let statuses = sink
            .messages
            .borrow()
            .iter()
            .filter(|m| matches!(m, Message::Status(_, StreamStatus::Running, Some(_))))
            .count();
        assert_eq!(statuses, 5, "each wait is announced as RATE_LIMITED");
        assert!(error.to_failure().message.starts_with("Rate limit exceeded for Instagram Graph API."));
    }

    #[test]
    fn a_transient_fault_is_retried_once_and_succeeds() {
        use crate::http::testing::{ScriptedRuntime, respond};
        use crate::protocol::testing::RecordingSink;
        let calls = std::cell::Cell::new(0);
        let runtime = ScriptedRuntime::new(chrono::Utc::now(), move |_| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                respond(503, serde_json::json!({}))
            } else {
                respond(200, serde_json::json!({"ok": true}))
            }
        });
        let sink = RecordingSink::default();
        let client = GraphClient::new("http://x/v23.0", "tok", 4, RetryPolicy::default(), &runtime, &sink);
        let body = futures::executor::block_on(client.get("/me", &[], "users")).expect("retried");
        assert_eq!(body["ok"], true);
        assert_eq!(runtime.sleeps.borrow().as_slice(), [Duration::from_secs(10)]);
    }

    #[test]
    fn usage_header_sets_the_wait_for_throttling_only() {
        let r = HttpResponse {
            status: 400,
            headers: vec![(
                "x-business-use-case-usage".into(),
                r#"{"1784":[{"type":"instagram","call_count":100,"estimated_time_to_regain_access":3}]}"#.into(),
            )],
            body: vec![],
        };
        assert_eq!(server_requested_wait(&r, ErrorClass::RateLimited), Some(Duration::from_secs(180)));
        assert_eq!(server_requested_wait(&r, ErrorClass::Transient), None);
        let r = HttpResponse { status: 503, headers: vec![("retry-after".into(), "7".into())], body: vec![] };
        assert_eq!(server_requested_wait(&r, ErrorClass::Transient), Some(Duration::from_secs(7)));
    }
}
