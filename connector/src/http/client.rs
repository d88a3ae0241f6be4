//! `GraphClient`: send, classify, back off, retry, for every stream.
//!
//! One retry driver serves single requests and Batch API items alike: each round sends what is
//! pending, classifies every outcome with the same rules, waits once (the longest wait any answer
//! asked for, else the backoff schedule; throttling is announced), and resends what may be
//! retried, within the attempt count and the stream's budget for unanswered requests.

use super::batch::{self, MAX_BATCH};
use super::error::{ErrorClass, RequestError, outcome};
use super::limiter::Limiter;
use super::pacing::{Admission, Pacer};
use super::shape::{Answer, Shape};
use super::{HttpRequest, Method, Runtime, TransportError};
use crate::protocol::{LogLevel, Sink, StreamStatus};
use futures::StreamExt;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
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
    /// Total waiting a stream may spend on retries of requests that got no answer at all
    /// (refused, unreachable, DNS, timeouts): an unreachable server fails the stream in about a
    /// minute instead of the reference's 310 s per request.
    pub unanswered_budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            backoff_factor: Duration::from_secs(5),
            max_wait: Duration::from_secs(3600),
            unanswered_budget: Duration::from_secs(60),
        }
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
    pacer: Pacer,
    policy: RetryPolicy,
    pub counters: Counters,
    /// Per stream: waiting spent so far on retries of unanswered requests.
    unanswered_waits: RefCell<HashMap<String, Duration>>,
}

use super::error::Failed;

/// What one round did for one item.
enum Attempt<T> {
    /// A final outcome (an answer, or one settled elsewhere, such as a fallback request).
    Done(Result<T, RequestError>),
    /// A failure the driver may retry.
    Failed(Failed),
}

impl<T> From<Result<T, Failed>> for Attempt<T> {
    fn from(outcome: Result<T, Failed>) -> Self {
        match outcome {
            Ok(body) => Attempt::Done(Ok(body)),
            Err(failed) => Attempt::Failed(failed),
        }
    }
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
            pacer: Pacer::new(true),
            policy,
            counters: Counters::default(),
            unanswered_waits: RefCell::default(),
        }
    }

    /// Turns proactive pacing on or off (on by default).
    pub fn paced(mut self, enabled: bool) -> Self {
        self.pacer = Pacer::new(enabled);
        self
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

    /// GET a Graph path; on success the answer, typed or a `Value` checked to have `shape`.
    /// `stream` names the stream for status messages.
    pub async fn get<T: Answer>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        shape: Shape,
        stream: &str,
    ) -> Result<T, RequestError> {
        let request = self.request(Method::Get, self.url(path, query), None);
        let round = |_, _| async {
            let admission = self.pacer.admit(1, stream, self.runtime, self.sink).await;
            vec![(0, Attempt::from(self.send(&request, path, shape, Some(admission.sequence)).await))]
        };
        let mut outcomes = self.drive(1, stream, round).await;
        outcomes.pop().unwrap_or_else(|| Err(not_sent(path)))
    }

    /// GETs many Graph paths through the Batch API ([`MAX_BATCH`] per round trip). Each item is
    /// classified, retried and reported exactly like a single [`get`](Self::get); a batch call
    /// that fails as a whole is waited out and resent like its items, and one that still fails
    /// (or cannot succeed on retry) falls back to single requests. Results follow `items`.
    pub async fn get_batch<T: Answer>(
        &self,
        items: &[(String, Vec<(&str, String)>)],
        shape: Shape,
        stream: &str,
    ) -> Vec<Result<T, RequestError>> {
        // Chunks of up to MAX_BATCH, each cut to what the pacer lets through, sent as admitted.
        let round = |pending: Vec<usize>, attempt: u32| async move {
            let chunks = futures::stream::unfold(pending, move |mut rest| async move {
                if rest.is_empty() {
                    return None;
                }
                let admission =
                    self.pacer.admit(rest.len().min(MAX_BATCH) as u32, stream, self.runtime, self.sink).await;
                let chunk: Vec<usize> = rest.drain(..(admission.calls as usize).min(rest.len())).collect();
                Some((self.batch_round(items, chunk, shape, attempt, stream, admission), rest))
            });
            chunks.buffer_unordered(usize::MAX).concat().await
        };
        self.drive(items.len(), stream, round).await
    }

    /// The retry driver: rounds of `send_round(pending, attempt)` until every item is settled.
    async fn drive<T, F, Fut>(&self, count: usize, stream: &str, send_round: F) -> Vec<Result<T, RequestError>>
    where
        F: Fn(Vec<usize>, u32) -> Fut,
        Fut: Future<Output = Vec<(usize, Attempt<T>)>>,
    {
        let mut results: Vec<Option<Result<T, RequestError>>> = (0..count).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..count).collect();
        let mut attempt = 1;
        while !pending.is_empty() {
            let mut retry: Vec<(usize, RequestError, Option<Duration>)> = Vec::new();
            for (index, outcome) in send_round(pending, attempt).await {
                match outcome {
                    Attempt::Done(result) => results[index] = Some(result),
                    Attempt::Failed((mut error, wait)) => {
                        error.attempts = attempt;
                        if error.class.is_retryable() && attempt <= self.policy.max_retries {
                            retry.push((index, error, wait));
                        } else {
                            results[index] = Some(Err(error));
                        }
                    }
                }
            }
            // Throttling, if any item was throttled, is what the user must hear about.
            let throttled = retry.iter().find(|(_, error, _)| error.class == ErrorClass::RateLimited);
            let Some((_, first, _)) = throttled.or(retry.first()) else { break };
            let server_wait = retry.iter().filter_map(|(_, _, wait)| *wait).max();
            let wait = server_wait.unwrap_or_else(|| self.policy.backoff(attempt)).min(self.policy.max_wait);
            if !self.within_budget(first, wait, stream) {
                retry.into_iter().for_each(|(index, error, _)| results[index] = Some(Err(error)));
                break;
            }
            self.announce_retry(first, wait, stream);
            self.counters.retries.set(self.counters.retries.get() + retry.len() as u64);
            self.runtime.sleep(wait).await;
            pending = retry.into_iter().map(|(index, _, _)| index).collect();
            attempt += 1;
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(not_sent("")))).collect()
    }

    /// One Batch API round trip for `chunk` of `items`, as per-item attempts.
    async fn batch_round<T: Answer>(
        &self,
        items: &[(String, Vec<(&str, String)>)],
        chunk: Vec<usize>,
        shape: Shape,
        attempt: u32,
        stream: &str,
        admission: Admission,
    ) -> Vec<(usize, Attempt<T>)> {
        let body = batch::encode(chunk.iter().map(|&index| &items[index]));
        let request = self.request(Method::Post, format!("{}/", self.base_url), Some(body));
        // The items' own answers carry the usage after each of them; the call's is not read.
        let answers = match self.send(&request, "/ (batch)", Shape::Any, None).await {
            Ok(batch::Answers(answers)) if answers.len() == chunk.len() => Ok(answers),
            Ok(_) => Err((RequestError::bad_answer("/ (batch)", "not one answer per request".into()), None)),
            Err(failed) => Err(failed),
        };
        match answers {
            Ok(answers) => chunk
                .iter()
                .zip(answers)
                .map(|(&index, answer)| {
                    let path = items[index].0.as_str();
                    let outcome = match answer {
                        Some(response) => {
                            self.pacer.observe(&response, admission.sequence);
                            outcome(&response, path, shape)
                        }
                        // Meta answers null for an item it did not get to: try it again.
                        None => Err((
                            RequestError::from_transport(
                                &TransportError::Connection("no answer in the batch".into()),
                                path,
                            ),
                            None,
                        )),
                    };
                    (index, Attempt::from(outcome))
                })
                .collect(),
            // A throttled or failing batch call is waited out and resent like its items.
            Err((error, wait)) if error.class.is_retryable() && attempt <= self.policy.max_retries => {
                chunk.iter().map(|&index| (index, Attempt::Failed((error.clone(), wait)))).collect()
            }
            Err((error, _)) => {
                // The single requests are admitted one by one.
                drop(admission);
                let cause = error.to_failure().message;
                let count = chunk.len();
                self.sink.log(
                    LogLevel::Info,
                    &format!("{stream}: a batch call failed ({cause}); sending its {count} requests one by one"),
                );
                let singles = chunk.into_iter().map(|index| async move {
                    let (path, query) = &items[index];
                    let query: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    (index, Attempt::Done(self.get(path, &query, shape, stream).await))
                });
                futures::future::join_all(singles).await
            }
        }
    }

    fn request(&self, method: Method, url: String, body: Option<Vec<u8>>) -> HttpRequest {
        let mut headers = vec![("authorization".to_owned(), format!("Bearer {}", self.token))];
        if body.is_some() {
            headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
        }
        HttpRequest { method, url, headers, body }
    }

    /// One round trip under the in-flight limit, classified; with the admission's sequence, its
    /// usage headers are read.
    async fn send<T: Answer>(
        &self,
        request: &HttpRequest,
        path: &str,
        shape: Shape,
        seq: Option<u64>,
    ) -> Result<T, Failed> {
        let _permit = self.limiter.acquire().await;
        self.counters.round_trips.set(self.counters.round_trips.get() + 1);
        match self.runtime.send(request.clone()).await {
            Ok(response) => {
                if let Some(sequence) = seq {
                    self.pacer.observe(&response, sequence);
                }
                outcome(&response, path, shape)
            }
            Err(error) => Err((RequestError::from_transport(&error, path), None)),
        }
    }

    /// Charges `wait` to the stream's budget for unanswered requests; `false` (with a warning)
    /// when the budget is spent and the error should be returned instead.
    fn within_budget(&self, error: &RequestError, wait: Duration, stream: &str) -> bool {
        if error.status.is_some() {
            return true;
        }
        let mut waits = self.unanswered_waits.borrow_mut();
        let spent = waits.entry(stream.to_owned()).or_default();
        if *spent + wait > self.policy.unanswered_budget {
            let cause = error.to_failure().message;
            let seconds = spent.as_secs();
            self.sink.log(
                LogLevel::Warn,
                &format!("{stream}: giving up: the Graph API has not answered for {seconds} s of retries ({cause})."),
            );
            return false;
        }
        *spent += wait;
        true
    }

    fn announce_retry(&self, error: &RequestError, wait: Duration, stream: &str) {
        let cause = error.to_failure().message;
        let (seconds, next) = (wait.as_secs(), error.attempts + 1);
        if error.class == ErrorClass::RateLimited {
            let until = self.runtime.now().timestamp_millis().max(0) as u64 + wait.as_millis() as u64;
            self.sink.stream_status(stream, StreamStatus::Running, Some(until));
            let message =
                format!("{stream}: throttled by the Graph API; waiting {seconds}s before attempt {next} ({cause})");
            self.sink.log(LogLevel::Warn, &message);
        } else {
            let message = format!("{stream}: retrying in {seconds}s, attempt {} failed ({cause})", error.attempts);
            self.sink.log(LogLevel::Info, &message);
        }
    }
}

fn not_sent(path: &str) -> RequestError {
    RequestError::from_transport(&TransportError::Connection("not sent".into()), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpResponse;
    use crate::http::error::server_requested_wait;
    use serde_json::Value;
    use serde_json::json;

    #[test]
    fn backoff_schedule_matches_the_reference() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=5).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![10, 20, 40, 80, 160]);
    }

    #[test]
    fn an_unanswered_stream_gives_up_within_its_retry_budget_as_a_transient_error() {
        use crate::http::testing::ScriptedRuntime;
        use crate::protocol::testing::RecordingSink;
        let runtime =
            ScriptedRuntime::new(chrono::Utc::now(), |_| Err(TransportError::Connection("connection refused".into())));
        let sink = RecordingSink::default();
        let client = GraphClient::new("http://x/v23.0", "tok", 4, RetryPolicy::default(), &runtime, &sink);
        let error =
            futures::executor::block_on(client.get::<Value>("/me/accounts", &[], Shape::Any, "Api")).expect_err("down");
        let waits: Vec<u64> = runtime.sleeps.borrow().iter().map(Duration::as_secs).collect();
        assert_eq!(waits, vec![10, 20], "10 + 20 fit the 60 s budget, 40 more would not");
        assert_eq!(error.attempts, 3);
        assert_eq!(error.to_failure().failure_type, crate::protocol::FailureType::TransientError);
        // The budget is per stream: the next request of the stream has only the rest of it.
        let _ = futures::executor::block_on(client.get::<Value>("/x", &[], Shape::Any, "Api"));
        let waits: Vec<u64> = runtime.sleeps.borrow().iter().map(Duration::as_secs).collect();
        assert_eq!(waits, vec![10, 20, 10, 20]);
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
        let error = futures::executor::block_on(client.get::<Value>("/me/accounts", &[], Shape::Any, "Api"))
            .expect_err("throttled");
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
        let body = futures::executor::block_on(client.get::<Value>("/me", &[], Shape::Any, "users")).expect("retried");
        assert_eq!(body["ok"], true);
        assert_eq!(runtime.sleeps.borrow().as_slice(), [Duration::from_secs(10)]);
    }

    #[test]
    fn batch_items_are_classified_and_retried_like_single_requests() {
        use crate::http::testing::{ScriptedRuntime, respond};
        use crate::protocol::testing::RecordingSink;
        let round = std::cell::Cell::new(0);
        let runtime = ScriptedRuntime::new(chrono::Utc::now(), move |request| {
            round.set(round.get() + 1);
            let body = String::from_utf8(request.body.clone().unwrap_or_default()).unwrap_or_default();
            let form: std::collections::HashMap<String, String> =
                url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
            let items: Vec<Value> = serde_json::from_str(&form["batch"]).unwrap_or_default();
            let answers: Vec<Value> = items
                .iter()
                .map(|item| {
                    let url = item["relative_url"].as_str().unwrap_or("");
                    if url.starts_with("bad") {
                        json!({"code": 400, "body": json!({"error": {"code": 100, "message": "(#100) Invalid"}}).to_string()})
                    } else if url.starts_with("slow") && round.get() == 1 {
                        json!({"code": 400, "body": json!({"error": {"code": 4, "message": "(#4) limit"}}).to_string()})
                    } else if url.starts_with("lost") && round.get() == 1 {
                        Value::Null
                    } else {
                        json!({"code": 200, "body": json!({"url": url}).to_string()})
                    }
                })
                .collect();
            respond(200, Value::Array(answers))
        });
        let sink = RecordingSink::default();
        let client = GraphClient::new("http://x/v23.0", "tok", 4, RetryPolicy::default(), &runtime, &sink);
        let items: Vec<(String, Vec<(&str, String)>)> =
            ["/ok/insights", "/bad/insights", "/slow/insights", "/lost/insights"]
                .iter()
                .map(|p| (p.to_string(), vec![("metric", "reach,saved".to_string())]))
                .collect();
        let results = futures::executor::block_on(client.get_batch::<Value>(&items, Shape::Any, "media_insights"));
        assert_eq!(results[0].as_ref().ok().map(|b| b["url"].clone()), Some(json!("ok/insights?metric=reach%2Csaved")));
        let bad = results[1].as_ref().expect_err("fatal item");
        assert_eq!((bad.code(), bad.attempts), (Some(100), 1), "a fatal item is not retried");
        assert!(results[2].is_ok() && results[3].is_ok(), "throttled and missing items are retried");
        assert_eq!(runtime.requests.borrow().len(), 2, "one batch, then one retry batch");
        assert_eq!(runtime.sleeps.borrow().len(), 1);
    }

    #[test]
    fn a_throttled_batch_call_is_waited_out_and_resent() {
        use crate::http::testing::{ScriptedRuntime, respond};
        use crate::protocol::testing::RecordingSink;
        let round = std::cell::Cell::new(0);
        let runtime = ScriptedRuntime::new(chrono::Utc::now(), move |_| {
            round.set(round.get() + 1);
            if round.get() == 1 {
                respond(400, json!({"error": {"code": 4, "message": "(#4) Application request limit reached"}}))
            } else {
                respond(200, json!([{"code": 200, "body": "{\"ok\":1}"}, {"code": 200, "body": "{\"ok\":2}"}]))
            }
        });
        let sink = RecordingSink::default();
        let client = GraphClient::new("http://x/v23.0", "tok", 4, RetryPolicy::default(), &runtime, &sink);
        let items = vec![("/a".to_string(), vec![]), ("/b".to_string(), vec![])];
        let results = futures::executor::block_on(client.get_batch::<Value>(&items, Shape::Any, "media_insights"));
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(runtime.requests.borrow().len(), 2, "the batch is resent, not split into singles");
        assert_eq!(runtime.sleeps.borrow().as_slice(), [Duration::from_secs(10)]);
    }

    #[test]
    fn a_failed_batch_call_falls_back_to_single_requests() {
        use crate::http::testing::{ScriptedRuntime, respond};
        use crate::protocol::testing::RecordingSink;
        let runtime = ScriptedRuntime::new(chrono::Utc::now(), |request| match request.method {
            Method::Post => {
                respond(500, json!({"error": {"code": 1, "message": "batch broke", "is_transient": false}}))
            }
            Method::Get => respond(200, json!({"single": true})),
        });
        let sink = RecordingSink::default();
        let policy = RetryPolicy { max_retries: 0, ..RetryPolicy::default() };
        let client = GraphClient::new("http://x/v23.0", "tok", 4, policy, &runtime, &sink);
        let items = vec![("/a".to_string(), vec![]), ("/b".to_string(), vec![])];
        let results = futures::executor::block_on(client.get_batch::<Value>(&items, Shape::Any, "story_insights"));
        assert!(results.iter().all(|r| r.as_ref().is_ok_and(|b| b["single"] == true)));
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
