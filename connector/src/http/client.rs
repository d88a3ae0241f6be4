//! `GraphClient`: send, classify, back off, retry, for every stream.
//!
//! One retry driver serves single requests and Batch API items alike: each round sends what is
//! pending, classifies every outcome with the same rules, waits once (the longest wait any answer
//! asked for, else the backoff schedule; throttling is announced), and resends what may be
//! retried, within the attempt count and the request's time budget ([`Budgets`], the operator's).
//! A request that gives up marks its stream as failing: until one of the stream's requests
//! succeeds, the others get no retries, so a fallback (single requests after a batch, a page
//! without its expansion) never spends the budget twice against the same outage.

use super::batch::{self, MAX_BATCH};
use super::error::{ErrorClass, RequestError, outcome};
use super::limiter::Limiter;
use super::pacing::{Admission, Pacer};
use super::{HttpRequest, Method, Runtime, TransportError};
use crate::protocol::{LogLevel, Sink, StreamStatus};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::Duration;

/// How long requests are retried and paced: the host's operator settings (the WIT `budgets`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// A request that keeps failing is given up this long after its first attempt.
    pub retry: Duration,
    /// The longest one pacing wait lasts when Graph gives no estimate.
    pub pacing_wait_cap: Duration,
    /// How long pacing may hold a sync back in a row before it stops.
    pub pacing: Duration,
}

impl Default for Budgets {
    /// The host's defaults (Airbyte's CDK gives up a request after about 150 s of backoff).
    fn default() -> Self {
        Budgets {
            retry: Duration::from_secs(150),
            pacing_wait_cap: Duration::from_secs(60),
            pacing: Duration::from_secs(600),
        }
    }
}

/// How failed requests are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (Airbyte's CDK: 5, so 6 attempts).
    pub max_retries: u32,
    /// Wait before retry `n` is `factor × 2^(n-1)` (the CDK's 5 s: 5, 10, 20, 40, 80 s).
    pub backoff_factor: Duration,
    /// A request is given up once retrying would take it past this long after its first attempt:
    /// a computed backoff is cut to what is left; a server that asks for a longer wait is not
    /// waited for at all.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::within(Budgets::default().retry)
    }
}

impl RetryPolicy {
    /// Two retries, 1 s then 2 s: for `check` and the token refresh, which should answer in
    /// seconds, not after a sync's retry budget.
    pub fn quick() -> Self {
        RetryPolicy { max_retries: 2, backoff_factor: Duration::from_secs(1), ..RetryPolicy::default() }
    }

    /// The CDK's schedule within a time budget.
    pub fn within(budget: Duration) -> Self {
        RetryPolicy { max_retries: 5, backoff_factor: Duration::from_secs(5), budget }
    }

    /// The wait before retry `retry` (1 for the first).
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_factor.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
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
    /// Streams whose last settled request gave up after its retry budget: their next requests get
    /// no retries until one of them succeeds, so a fallback or a sibling request does not spend
    /// the budget a second time against the same outage.
    failing: RefCell<HashSet<String>>,
    /// Some request of this run got an HTTP answer: `base_url` leads somewhere.
    answered: Cell<bool>,
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
            failing: RefCell::default(),
            answered: Cell::new(false),
        }
    }

    /// Turns proactive pacing on or off (on by default), within `budgets`.
    pub fn paced(mut self, enabled: bool, budgets: &Budgets) -> Self {
        self.pacer = Pacer::new(enabled).within(budgets.pacing_wait_cap, budgets.pacing);
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
    /// The token requests carry.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        format!("{}/{}", self.base_url, batch::relative_url(path, query))
    }

    /// GET a Graph path; on success the answer read as a `T` (see [`super::answer`]). `stream`
    /// names the stream for status messages.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        stream: &str,
    ) -> Result<T, RequestError> {
        let request = self.request(Method::Get, self.url(path, query), None);
        let round = |_| async {
            let admission = self.pacer.admit(1, stream, self.runtime, self.sink).await;
            vec![(0, Attempt::from(self.send(&request, path, Some(admission.sequence)).await))]
        };
        let mut outcomes = self.drive(1, stream, round).await;
        outcomes.pop().unwrap_or_else(|| Err(not_sent(path)))
    }

    /// GETs many Graph paths through the Batch API ([`MAX_BATCH`] per round trip). Each item is
    /// classified, retried and reported exactly like a single [`get`](Self::get); a batch call
    /// that fails as a whole is waited out and resent like its items, and one that still fails
    /// (or cannot succeed on retry) falls back to single requests. Results follow `items`.
    pub async fn get_batch<T: DeserializeOwned>(
        &self,
        items: &[(String, Vec<(&str, String)>)],
        stream: &str,
    ) -> Vec<Result<T, RequestError>> {
        // Chunks of up to MAX_BATCH, each cut to what the pacer lets through, sent as admitted.
        let round = |pending: Vec<usize>| async move {
            let chunks = futures::stream::unfold(pending, move |mut rest| async move {
                if rest.is_empty() {
                    return None;
                }
                let admission =
                    self.pacer.admit(rest.len().min(MAX_BATCH) as u32, stream, self.runtime, self.sink).await;
                let chunk: Vec<usize> = rest.drain(..(admission.calls as usize).min(rest.len())).collect();
                Some((self.batch_round(items, chunk, stream, admission), rest))
            });
            chunks.buffer_unordered(usize::MAX).concat().await
        };
        self.drive(items.len(), stream, round).await
    }

    /// The retry driver: rounds of `send_round(pending)` until every item is settled,
    /// within the policy's attempts and time budget (see [`RetryPolicy`] and `failing`).
    async fn drive<T, F, Fut>(&self, count: usize, stream: &str, send_round: F) -> Vec<Result<T, RequestError>>
    where
        F: Fn(Vec<usize>) -> Fut,
        Fut: Future<Output = Vec<(usize, Attempt<T>)>>,
    {
        let started = self.runtime.now();
        let max_retries = if self.failing.borrow().contains(stream) { 0 } else { self.policy.max_retries };
        let mut results: Vec<Option<Result<T, RequestError>>> = (0..count).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..count).collect();
        let mut attempt = 1;
        let mut gave_up = false;
        while !pending.is_empty() {
            let mut retry: Vec<(usize, RequestError, Option<Duration>)> = Vec::new();
            for (index, outcome) in send_round(pending).await {
                match outcome {
                    Attempt::Done(result) => {
                        if result.is_ok() {
                            self.failing.borrow_mut().remove(stream);
                        }
                        results[index] = Some(result);
                    }
                    Attempt::Failed((mut error, wait)) => {
                        error.attempts = attempt;
                        if error.class.is_retryable() && attempt <= max_retries {
                            retry.push((index, error, wait));
                        } else {
                            gave_up |= error.class.is_retryable();
                            results[index] = Some(Err(error));
                        }
                    }
                }
            }
            // Throttling, if any item was throttled, is what the user must hear about.
            let throttled = retry.iter().find(|(_, error, _)| error.class == ErrorClass::RateLimited);
            let Some((_, first, _)) = throttled.or(retry.first()) else { break };
            let Some(wait) = self.next_wait(&retry, attempt, started, first, stream) else {
                gave_up = true;
                retry.into_iter().for_each(|(index, error, _)| results[index] = Some(Err(error)));
                break;
            };
            self.announce_retry(first, wait, stream);
            self.counters.retries.set(self.counters.retries.get() + retry.len() as u64);
            self.runtime.sleep(wait).await;
            pending = retry.into_iter().map(|(index, _, _)| index).collect();
            attempt += 1;
        }
        if gave_up {
            self.failing.borrow_mut().insert(stream.to_owned());
        }
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(not_sent(""))).map_err(|e| self.blame(e))).collect()
    }

    /// Who must act on a request that got no answer: when nothing in this run ever answered and
    /// `base_url` is the user's own (not the Graph API's), the user, whose `base_url` leads nowhere
    /// (refused, unresolvable, or an address the host does not allow); otherwise as classified.
    fn blame(&self, mut error: RequestError) -> RequestError {
        let no_answer = error.status.is_none() && matches!(error.class, ErrorClass::Transient | ErrorClass::Fatal);
        if no_answer && !self.answered.get() && !crate::model::is_graph_api(&self.base_url) {
            error.class = ErrorClass::Misdirected;
        }
        error
    }

    /// The wait before the next round, or `None` (with a warning) when the retry budget does not
    /// allow one: the longest wait a server asked for, else the backoff cut to the budget left.
    fn next_wait(
        &self,
        retry: &[(usize, RequestError, Option<Duration>)],
        attempt: u32,
        started: chrono::DateTime<chrono::Utc>,
        first: &RequestError,
        stream: &str,
    ) -> Option<Duration> {
        let spent = (self.runtime.now() - started).to_std().unwrap_or_default();
        let left = self.policy.budget.saturating_sub(spent);
        let asked = retry.iter().filter_map(|(_, _, wait)| *wait).max();
        let wait = match asked {
            Some(asked) if asked > left => None,
            Some(asked) => Some(asked),
            None => Some(self.policy.backoff(attempt).min(left)).filter(|wait| !wait.is_zero()),
        };
        if wait.is_none() {
            let cause = first.to_failure().message;
            let budget = self.policy.budget.as_secs();
            let asked = asked.map_or(String::new(), |a| format!(" (the server asks to wait {} s)", a.as_secs()));
            self.sink.log(
                LogLevel::Warn,
                &format!(
                    "{stream}: giving up a request after {} s of its {budget} s retry budget{asked}: {cause}",
                    spent.as_secs()
                ),
            );
        }
        wait
    }

    /// One Batch API round trip for `chunk` of `items`, as per-item attempts.
    async fn batch_round<T: DeserializeOwned>(
        &self,
        items: &[(String, Vec<(&str, String)>)],
        chunk: Vec<usize>,
        stream: &str,
        admission: Admission,
    ) -> Vec<(usize, Attempt<T>)> {
        let body = batch::encode(chunk.iter().map(|&index| &items[index]));
        let request = self.request(Method::Post, format!("{}/", self.base_url), Some(body));
        // The items' own answers carry the usage after each of them; the call's is not read.
        let answers = match self.send(&request, BATCH_PATH, None).await {
            Ok(batch::Answers(answers)) if answers.len() == chunk.len() => Ok(answers),
            Ok(_) => Err((RequestError::bad_answer(BATCH_PATH, "not one answer per request".into()), None)),
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
                            outcome(&response, path)
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
            // A throttled or failing batch call is waited out and resent like its items, within
            // their budget; one that gives up is not tried again as single requests.
            Err((error, wait)) if error.class.is_retryable() => {
                chunk.iter().map(|&index| (index, Attempt::Failed((error.clone(), wait)))).collect()
            }
            // A broken batch answer: its requests one by one, each with a budget of its own.
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
                    (index, Attempt::Done(self.get(path, &query, stream).await))
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
    async fn send<T: DeserializeOwned>(
        &self,
        request: &HttpRequest,
        path: &str,
        seq: Option<u64>,
    ) -> Result<T, Failed> {
        let _permit = self.limiter.acquire().await;
        self.counters.round_trips.set(self.counters.round_trips.get() + 1);
        match self.runtime.send(request.clone()).await {
            Ok(response) => {
                self.answered.set(true);
                if let Some(sequence) = seq {
                    self.pacer.observe(&response, sequence);
                }
                outcome(&response, path)
            }
            Err(error) => Err((RequestError::from_transport(&error, path), None)),
        }
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

/// How a Batch API call is named in messages (it has no path of its own).
const BATCH_PATH: &str = "/ (batch)";

fn not_sent(path: &str) -> RequestError {
    RequestError::from_transport(&TransportError::Connection("not sent".into()), path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpResponse;
    use crate::http::error::server_requested_wait;
    use crate::http::testing::{ScriptedRuntime, client as client_of, respond};
    use crate::protocol::testing::{Message, RecordingSink};
    use serde_json::{Value, json};

    const GRAPH_API: &str = "https://graph.facebook.com/v23.0";

    fn scripted(answer: impl Fn(&HttpRequest) -> Result<HttpResponse, TransportError> + 'static) -> ScriptedRuntime {
        ScriptedRuntime::new(chrono::Utc::now(), answer)
    }

    fn get(client: &GraphClient<'_>, path: &str, stream: &str) -> Result<Value, RequestError> {
        futures::executor::block_on(client.get::<Value>(path, &[], stream))
    }

    #[test]
    fn backoff_schedule_is_the_cdks() {
        let p = RetryPolicy::default();
        let waits: Vec<u64> = (1..=5).map(|n| p.backoff(n).as_secs()).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 80]);
        assert_eq!(p.budget, Duration::from_secs(150));
    }

    /// Every way a request can keep failing (no answer, 5xx, throttling with or without a
    /// server-given wait) gives up within the budget, whatever the budget.
    #[test]
    fn a_request_that_keeps_failing_gives_up_within_its_budget() {
        type Answer = fn() -> Result<HttpResponse, TransportError>;
        let throttled =
            || respond(400, json!({"error": {"code": 4, "message": "(#4) Application request limit reached"}}));
        let failures: [(&str, Answer); 5] = [
            ("refused", || Err(TransportError::Connection("connection refused".into()))),
            ("timeout", || Err(TransportError::Timeout("first byte".into()))),
            ("502", || respond(502, json!({}))),
            ("throttled", throttled),
            ("retry-after 3600", || {
                let mut response = respond(503, json!({}))?;
                response.headers.push(("retry-after".into(), "3600".into()));
                Ok(response)
            }),
        ];
        for (name, answer) in failures {
            for budget in [0, 1, 7, 60, 150, 155, 400] {
                let runtime = scripted(move |_| answer());
                let sink = RecordingSink::default();
                let policy = RetryPolicy::within(Duration::from_secs(budget));
                let client = GraphClient::new(GRAPH_API, "tok", 4, policy, &runtime, &sink);
                let error = get(&client, "/me", "users").expect_err(name);
                let waited: Duration = runtime.sleeps.borrow().iter().sum();
                assert!(waited <= Duration::from_secs(budget), "{name}, budget {budget}: waited {waited:?}");
                assert_eq!(error.to_failure().failure_type, crate::protocol::FailureType::TransientError, "{name}");
                assert!(error.attempts <= 6, "{name}");
            }
        }
        // The default budget runs the CDK's schedule, the last wait cut to what is left.
        let runtime = scripted(|_| respond(502, json!({})));
        let sink = RecordingSink::default();
        let client = client_of(&runtime, &sink);
        let error = get(&client, "/me", "users").expect_err("502");
        let waits: Vec<u64> = runtime.sleeps.borrow().iter().map(Duration::as_secs).collect();
        assert_eq!((waits, error.attempts), (vec![5, 10, 20, 40, 75], 6));
        // A server wait beyond the budget is not waited for at all.
        let retry_after = failures[4].1;
        let runtime = scripted(move |_| retry_after());
        let client = client_of(&runtime, &sink);
        let error = get(&client, "/me", "users").expect_err("503");
        assert_eq!((runtime.sleeps.borrow().len(), error.attempts), (0, 1));
        assert!(sink.logs().iter().any(|(_, l)| l.contains("server asks to wait 3600 s")), "{:?}", sink.logs());
    }

    /// No answer at all from the user's own `base_url` is the user's to fix (a config_error that
    /// names `base_url`), as is a redirect; from the Graph API, or once anything answered, an
    /// outage (transient).
    #[test]
    fn a_base_url_that_leads_nowhere_is_the_users_to_fix() {
        use crate::protocol::FailureType::{ConfigError, TransientError};
        let refused = || Err(TransportError::Connection("connection refused".into()));
        let denied = || Err(TransportError::Denied("not allowed".into()));
        let redirect = || {
            let mut response = respond(301, json!({}))?;
            response.headers.push(("location".into(), "http://elsewhere.example/v23.0/me?access_token=tok".into()));
            Ok(response)
        };
        type Answer = fn() -> Result<HttpResponse, TransportError>;
        let cases: [(&str, Answer, crate::protocol::FailureType); 5] = [
            ("http://127.0.0.1:9/v23.0", refused, ConfigError),
            ("http://127.0.0.1:9/v23.0", denied, ConfigError),
            ("http://127.0.0.1:9/v23.0", redirect, ConfigError),
            (GRAPH_API, refused, TransientError),
            (GRAPH_API, redirect, ConfigError),
        ];
        for (base_url, answer, expected) in cases {
            let runtime = scripted(move |_| answer());
            let sink = RecordingSink::default();
            let client = GraphClient::new(base_url, "tok", 4, RetryPolicy::default(), &runtime, &sink);
            let failure = get(&client, "/me", "users").expect_err("fails").to_failure();
            assert_eq!(failure.failure_type, expected, "{base_url}: {}", failure.message);
            if expected == ConfigError {
                assert!(failure.message.contains("`base_url`"), "{}", failure.message);
                assert!(!failure.message.contains("access_token"), "only the redirect's origin: {}", failure.message);
            }
        }
        // Once anything answered, `base_url` is right: a refusal later is an outage.
        let calls = Cell::new(0);
        let runtime = scripted(move |_| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 { respond(200, json!({"id": "1"})) } else { refused() }
        });
        let sink = RecordingSink::default();
        let client = GraphClient::new("http://127.0.0.1:9/v23.0", "tok", 4, RetryPolicy::default(), &runtime, &sink);
        assert!(get(&client, "/me", "users").is_ok());
        let later = get(&client, "/x", "users").expect_err("down");
        assert_eq!(later.to_failure().failure_type, TransientError);
    }

    /// Once a request of a stream gave up, the stream's next requests are not retried (a
    /// fallback would spend the budget twice), until one of them succeeds.
    #[test]
    fn a_stream_whose_request_gave_up_does_not_spend_the_budget_again() {
        let healthy = Cell::new(false);
        let runtime = scripted(move |request| {
            if request.url.ends_with("/ok") || healthy.get() {
                healthy.set(request.url.ends_with("/ok") || healthy.get());
                respond(200, json!({"ok": true}))
            } else {
                respond(502, json!({}))
            }
        });
        let sink = RecordingSink::default();
        let client = client_of(&runtime, &sink);
        let get = |path: &str, stream: &str| futures::executor::block_on(client.get::<Value>(path, &[], stream));
        assert_eq!(get("/a", "media").expect_err("down").attempts, 6);
        let slept = runtime.sleeps.borrow().len();
        assert_eq!(get("/b", "media").expect_err("down").attempts, 1, "no second budget for the same stream");
        assert_eq!(runtime.sleeps.borrow().len(), slept);
        assert_eq!(get("/c", "stories").expect_err("down").attempts, 6, "other streams keep their budget");
        assert!(get("/ok", "media").is_ok());
        assert!(get("/d", "media").is_ok(), "a success lifts the mark");
    }

    #[test]
    fn retries_wait_the_cdk_schedule_then_give_up_with_six_attempts() {
        let runtime = scripted(|_| {
            respond(400, json!({"error": {"message": "(#80002) There have been too many calls", "code": 80002}}))
        });
        let sink = RecordingSink::default();
        let policy = RetryPolicy::within(Duration::from_secs(1000));
        let client = GraphClient::new("http://x/v23.0", "tok", 4, policy, &runtime, &sink);
        let error = get(&client, "/me/accounts", "Api").expect_err("throttled");
        assert_eq!(error.attempts, 6);
        let waits: Vec<u64> = runtime.sleeps.borrow().iter().map(Duration::as_secs).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 80]);
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
        let calls = Cell::new(0);
        let runtime = scripted(move |_| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 { respond(503, json!({})) } else { respond(200, json!({"ok": true})) }
        });
        let sink = RecordingSink::default();
        let client = client_of(&runtime, &sink);
        let body = get(&client, "/me", "users").expect("retried");
        assert_eq!(body["ok"], true);
        assert_eq!(runtime.sleeps.borrow().as_slice(), [Duration::from_secs(5)]);
    }

    #[test]
    fn batch_items_are_classified_and_retried_like_single_requests() {
        let round = Cell::new(0);
        let runtime = scripted(move |request| {
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
        let client = client_of(&runtime, &sink);
        let items: Vec<(String, Vec<(&str, String)>)> =
            ["/ok/insights", "/bad/insights", "/slow/insights", "/lost/insights"]
                .iter()
                .map(|p| (p.to_string(), vec![("metric", "reach,saved".to_string())]))
                .collect();
        let results = futures::executor::block_on(client.get_batch::<Value>(&items, "media_insights"));
        assert_eq!(results[0].as_ref().ok().map(|b| b["url"].clone()), Some(json!("ok/insights?metric=reach%2Csaved")));
        let bad = results[1].as_ref().expect_err("fatal item");
        assert_eq!((bad.code(), bad.attempts), (Some(100), 1), "a fatal item is not retried");
        assert!(results[2].is_ok() && results[3].is_ok(), "throttled and missing items are retried");
        assert_eq!(runtime.requests.borrow().len(), 2, "one batch, then one retry batch");
        assert_eq!(runtime.sleeps.borrow().len(), 1);
    }

    #[test]
    fn a_throttled_batch_call_is_waited_out_and_resent() {
        let round = Cell::new(0);
        let runtime = scripted(move |_| {
            round.set(round.get() + 1);
            if round.get() == 1 {
                respond(400, json!({"error": {"code": 4, "message": "(#4) Application request limit reached"}}))
            } else {
                respond(200, json!([{"code": 200, "body": "{\"ok\":1}"}, {"code": 200, "body": "{\"ok\":2}"}]))
            }
        });
        let sink = RecordingSink::default();
        let client = client_of(&runtime, &sink);
        let items = vec![("/a".to_string(), vec![]), ("/b".to_string(), vec![])];
        let results = futures::executor::block_on(client.get_batch::<Value>(&items, "media_insights"));
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(runtime.requests.borrow().len(), 2, "the batch is resent, not split into singles");
        assert_eq!(runtime.sleeps.borrow().as_slice(), [Duration::from_secs(5)]);
    }

    #[test]
    fn a_broken_batch_answer_falls_back_to_single_requests_and_an_outage_does_not() {
        let items = vec![("/a".to_string(), vec![]), ("/b".to_string(), vec![])];
        let broken = |post: Result<HttpResponse, TransportError>| {
            let runtime = scripted(move |request| match request.method {
                Method::Post => post.clone(),
                Method::Get => respond(200, json!({"single": true})),
            });
            let sink = RecordingSink::default();
            let client = client_of(&runtime, &sink);
            let results = futures::executor::block_on(client.get_batch::<Value>(&items, "story_insights"));
            let singles = runtime.requests.borrow().iter().filter(|url| !url.ends_with("/v23.0/")).count();
            (results.iter().all(|r| r.as_ref().is_ok_and(|b| b["single"] == true)), singles)
        };
        // Broken envelopes: every record is recovered through single requests.
        for body in [json!({}), json!([{"code": 200}]), json!("x")] {
            assert_eq!(broken(respond(200, body.clone())), (true, 2), "{body}");
        }
        assert_eq!(broken(respond(400, json!({"error": {"code": 100, "message": "(#100) bad batch"}}))), (true, 2));
        // An outage: the batch's budget is the items' budget; no second one as singles.
        assert_eq!(broken(respond(502, json!({}))), (false, 0));
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
