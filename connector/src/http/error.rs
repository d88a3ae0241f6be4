//! Graph API error classification: by HTTP status **and** by the Graph error body.
//!
//! Why the body matters: Meta answers most OAuthException errors, throttling (codes 4, 17, 32, 613,
//! 80002) and token expiry (190) included, as HTTP 400. Classifying by status alone (as the
//! reference connector does) fails a sync on a throttle that a wait would have cured, and hides
//! an expired token behind "Bad request".

pub use super::answer::GraphError;
use super::answer::{self, Answered, ErrorBody};
use super::{HttpResponse, TransportError};
use crate::protocol::{Failure, FailureType};
use serde::de::DeserializeOwned;

impl GraphError {
    fn describe(&self) -> String {
        match (self.code, self.subcode) {
            (Some(code), Some(sub)) => format!("Graph API error {code}/{sub}: {}", self.message),
            (Some(code), None) => format!("Graph API error {code}: {}", self.message),
            _ => format!("Graph API error: {}", self.message),
        }
    }
}

/// Graph codes that mean "slow down" (app, user, page, custom, Instagram account).
pub const THROTTLING_CODES: [i64; 5] = [4, 17, 32, 613, 80002];
/// Codes and subcodes that mean the token is expired, revoked or invalid.
const AUTH_CODES: [i64; 2] = [190, 102];
const AUTH_SUBCODES: [i64; 4] = [458, 460, 463, 467];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Throttled: wait for the quota, then retry.
    RateLimited,
    /// A fault that a retry may cure (5xx, timeouts, code 1/2, `is_transient`).
    Transient,
    /// The token is bad: only the user can fix it.
    Auth,
    /// A success answer with a body this connector cannot use (see [`super::answer`]).
    BadAnswer,
    /// The request cannot be sent as built. The config's parts are checked before any request,
    /// so it is a server-supplied part (an id, a cursor) that made it unsendable: no retry helps.
    Unsendable,
    /// `base_url` does not lead to a Graph API: it redirects elsewhere, or (before any answer
    /// arrived) nothing answers at it or the host's policy refuses it. Only the user can fix it.
    Misdirected,
    /// Anything else: retrying sends the same bad request again.
    Fatal,
}

impl ErrorClass {
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::RateLimited | ErrorClass::Transient)
    }
}

/// A request that did not yield a usable response, after the retry budget where retries apply.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    pub class: ErrorClass,
    /// HTTP status, if a response arrived.
    pub status: Option<u16>,
    /// Boxed: errors travel in many `Result`s and most have no Graph body.
    pub graph: Option<Box<GraphError>>,
    /// Transport failure or body excerpt when there is no Graph error.
    pub detail: String,
    /// How many attempts were made.
    pub attempts: u32,
    /// The path of the request, without query (never contains the token).
    pub path: String,
}

impl RequestError {
    pub fn from_transport(error: &TransportError, path: &str) -> RequestError {
        let class = match error {
            TransportError::Denied(_) => ErrorClass::Fatal,
            TransportError::Invalid(_) => ErrorClass::Unsendable,
            TransportError::Timeout(_) | TransportError::Connection(_) => ErrorClass::Transient,
        };
        RequestError { class, status: None, graph: None, detail: error.describe(), attempts: 1, path: path.into() }
    }

    /// Classifies a non-success response, or a success response with an `error` body; `body` is
    /// what the body says (`Err` when it is not JSON).
    pub fn from_response(response: &HttpResponse, body: ErrorBody, path: &str) -> RequestError {
        let json = body != ErrorBody::NotJson;
        let graph = match body {
            ErrorBody::Graph(error) => Some(Box::new(error)),
            _ => None,
        };
        let class = classify(response.status, graph.as_deref());
        // Never the body itself: a proxy's or server's page may echo the request, token included.
        let detail = match (&graph, json) {
            _ if class == ErrorClass::Misdirected => {
                // Only the origin of the redirect: its path or query may carry the token.
                let target = response.header("location").and_then(|l| url::Url::parse(l).ok());
                let origin = target.map_or("an address it does not name".into(), |t| t.origin().ascii_serialization());
                format!("the server answered HTTP {} with a redirect to {origin}", response.status)
            }
            (Some(_), _) => String::new(),
            (None, true) => format!("a JSON body of {} bytes without a Graph `error`", response.body.len()),
            (None, false) => format!("a body of {} bytes that is not JSON", response.body.len()),
        };
        RequestError { class, status: Some(response.status), graph, detail, attempts: 1, path: path.into() }
    }

    /// A success answer whose body does not have the expected shape; `what` says why.
    pub fn bad_answer(path: &str, what: String) -> RequestError {
        RequestError {
            class: ErrorClass::BadAnswer,
            status: Some(200),
            graph: None,
            detail: what,
            attempts: 1,
            path: path.into(),
        }
    }

    /// Graph error code, if any.
    pub fn code(&self) -> Option<i64> {
        self.graph.as_ref().and_then(|g| g.code)
    }

    pub fn subcode(&self) -> Option<i64> {
        self.graph.as_ref().and_then(|g| g.subcode)
    }

    /// Graph error message, or "" when there is none.
    pub fn message(&self) -> &str {
        self.graph.as_ref().map(|g| g.message.as_str()).unwrap_or("")
    }

    fn cause(&self) -> String {
        let mut cause = match &self.graph {
            Some(g) => g.describe(),
            None => self.detail.clone(),
        };
        if let Some(trace) = self.graph.as_ref().and_then(|g| g.fbtrace_id.as_deref()) {
            cause.push_str(&format!(" (fbtrace_id {trace})"));
        }
        cause
    }

    /// The user-facing failure for this error.
    pub fn to_failure(&self) -> Failure {
        let cause = self.cause();
        let internal =
            format!("GET {} -> {} after {} attempt(s): {cause}", self.path, self.status_text(), self.attempts);
        let (failure_type, message) = match self.class {
            ErrorClass::Auth => (
                FailureType::ConfigError,
                format!(
                    "The Instagram access token is invalid or has expired ({cause}). Re-authenticate the connection to get a new token."
                ),
            ),
            ErrorClass::RateLimited => (
                FailureType::TransientError,
                format!(
                    "Rate limit exceeded for Instagram Graph API. Gave up after {} attempts ({cause}); the next sync will continue.",
                    self.attempts
                ),
            ),
            ErrorClass::Transient => (
                FailureType::TransientError,
                format!(
                    "The Instagram Graph API did not answer successfully after {} attempts: {cause}.",
                    self.attempts
                ),
            ),
            ErrorClass::Unsendable => (
                FailureType::SystemError,
                format!(
                    "A Graph API answer led to a request for {} that {cause}: an id or paging cursor in it is not one Graph sends.",
                    self.path
                ),
            ),
            ErrorClass::Misdirected => (
                FailureType::ConfigError,
                format!(
                    "`base_url` does not lead to a Graph API: {cause}. Set `base_url` to a Graph API address, or remove it to use {}.",
                    crate::model::GRAPH_ORIGIN
                ),
            ),
            ErrorClass::BadAnswer => (
                FailureType::SystemError,
                format!(
                    "The Graph API answered GET {} with a body this connector cannot use: {cause}. Nothing was taken from that answer.",
                    self.path
                ),
            ),
            ErrorClass::Fatal => match self.status {
                Some(status) => {
                    let (failure_type, stem) = status_stem(status);
                    (failure_type, format!("HTTP Status Code: {status}. Error: {stem} {cause}"))
                }
                None => (FailureType::SystemError, format!("The request to the Graph API failed: {cause}.")),
            },
        };
        Failure::new(failure_type, message).with_internal(internal)
    }

    fn status_text(&self) -> String {
        self.status.map(|s| format!("HTTP {s}")).unwrap_or_else(|| "no response".into())
    }
}

fn classify(status: u16, graph: Option<&GraphError>) -> ErrorClass {
    if let Some(g) = graph {
        let code = g.code.unwrap_or(0);
        if AUTH_CODES.contains(&code) || g.subcode.is_some_and(|s| AUTH_SUBCODES.contains(&s)) {
            return ErrorClass::Auth;
        }
        if THROTTLING_CODES.contains(&code) || g.message.to_ascii_lowercase().contains("too many calls") {
            return ErrorClass::RateLimited;
        }
        if code == 1 || code == 2 || g.is_transient {
            return ErrorClass::Transient;
        }
    }
    match status {
        300..=399 => ErrorClass::Misdirected,
        429 => ErrorClass::RateLimited,
        408 | 500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Fatal,
    }
}

/// The Airbyte CDK's wording per status, kept so users recognise the messages.
fn status_stem(status: u16) -> (FailureType, &'static str) {
    match status {
        400 => (FailureType::SystemError, "Bad request. Please check your request parameters."),
        401 => (FailureType::ConfigError, "Unauthorized. Please ensure you are authenticated correctly."),
        403 => (FailureType::ConfigError, "Forbidden. You don't have permission to access this resource."),
        404 => (FailureType::SystemError, "Not found. The requested resource was not found on the server."),
        405 => (FailureType::SystemError, "Method not allowed. Please check your request method."),
        _ => (FailureType::SystemError, "Unexpected response."),
    }
}

/// A failed attempt: the error and the wait the server asked for, if any.
pub type Failed = (RequestError, Option<std::time::Duration>);

/// A response's outcome: the answer of a success, or the classified error (the same rules for
/// a single request and for a batch item).
pub fn outcome<T: DeserializeOwned>(response: &HttpResponse, path: &str) -> Result<T, Failed> {
    if (200..300).contains(&response.status) {
        return match answer::read::<T>(&response.body) {
            Ok(Answered::Value(answer)) => Ok(answer),
            Ok(Answered::Error(graph)) => Err(failed(response, ErrorBody::Graph(graph), path)),
            Err(what) => Err((RequestError::bad_answer(path, what), None)),
        };
    }
    Err(failed(response, answer::error_body(&response.body), path))
}

fn failed(response: &HttpResponse, body: ErrorBody, path: &str) -> Failed {
    let error = RequestError::from_response(response, body, path);
    let wait = server_requested_wait(response, error.class);
    (error, wait)
}

/// The wait a response asks for: `Retry-After` (seconds), or for throttling the largest
/// `estimated_time_to_regain_access` (minutes) in `X-Business-Use-Case-Usage`.
pub(crate) fn server_requested_wait(response: &HttpResponse, class: ErrorClass) -> Option<std::time::Duration> {
    if let Some(seconds) = response.header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(std::time::Duration::from_secs(seconds));
    }
    if class != ErrorClass::RateLimited {
        return None;
    }
    regain_estimate(response)
}

/// Graph's estimate of when a spent quota frees up: the largest `estimated_time_to_regain_access`
/// (minutes) in `X-Business-Use-Case-Usage`, when above zero.
pub(crate) fn regain_estimate(response: &HttpResponse) -> Option<std::time::Duration> {
    let minutes = super::pacing::business_usage(response)?
        .iter()
        .filter_map(|entry| entry.estimated_time_to_regain_access)
        .max()
        .filter(|m| *m > 0)?;
    Some(std::time::Duration::from_secs(minutes.saturating_mul(60)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn response(status: u16, body: &Value) -> (HttpResponse, ErrorBody) {
        let bytes = body.to_string().into_bytes();
        let graph = answer::error_body(&bytes);
        (HttpResponse { status, headers: vec![], body: bytes }, graph)
    }

    fn class_of(status: u16, body: Value) -> ErrorClass {
        let (r, b) = response(status, &body);
        RequestError::from_response(&r, b, "/x").class
    }

    #[test]
    fn throttling_codes_are_rate_limits_even_as_http_400_and_403() {
        for code in THROTTLING_CODES {
            for status in [400, 403] {
                let body = json!({"error": {"message": "slow down", "code": code}});
                assert_eq!(class_of(status, body), ErrorClass::RateLimited, "code {code} status {status}");
            }
        }
        let body = json!({"error": {"message": "There have been too many calls to this Instagram account."}});
        assert_eq!(class_of(400, body), ErrorClass::RateLimited);
        assert_eq!(class_of(429, json!({})), ErrorClass::RateLimited);
    }

    #[test]
    fn token_errors_are_auth_and_tell_the_user_to_reauthenticate() {
        let body =
            json!({"error": {"message": "Error validating access token", "code": 190, "type": "OAuthException"}});
        let (r, b) = response(400, &body);
        let err = RequestError::from_response(&r, b, "/me/accounts");
        assert_eq!(err.class, ErrorClass::Auth);
        let failure = err.to_failure();
        assert_eq!(failure.failure_type, FailureType::ConfigError);
        assert!(failure.message.contains("190"), "{}", failure.message);
        assert!(failure.message.contains("Re-authenticate"));
    }

    #[test]
    fn transient_faults_retry_and_other_400s_do_not() {
        assert_eq!(class_of(500, json!({})), ErrorClass::Transient);
        assert_eq!(class_of(503, json!({})), ErrorClass::Transient);
        assert_eq!(class_of(408, json!({})), ErrorClass::Transient);
        assert_eq!(class_of(400, json!({"error": {"code": 2, "message": "x"}})), ErrorClass::Transient);
        assert_eq!(class_of(400, json!({"error": {"code": 1, "message": "x"}})), ErrorClass::Transient);
        assert_eq!(class_of(400, json!({"error": {"code": 9, "is_transient": true}})), ErrorClass::Transient);
        assert_eq!(class_of(400, json!({"error": {"code": 100, "message": "Invalid parameter"}})), ErrorClass::Fatal);
        assert_eq!(class_of(404, json!({})), ErrorClass::Fatal);
    }

    #[test]
    fn fatal_400_uses_the_cdk_wording_plus_the_graph_cause() {
        let body = json!({"error": {"message": "(#100) Invalid parameter", "code": 100, "fbtrace_id": "T1"}});
        let (r, b) = response(400, &body);
        let f = RequestError::from_response(&r, b, "/1/insights").to_failure();
        assert_eq!(f.failure_type, FailureType::SystemError);
        assert!(f.message.starts_with("HTTP Status Code: 400. Error: Bad request."), "{}", f.message);
        assert!(f.message.contains("(#100) Invalid parameter"));
        let (r, b) = response(403, &json!({"error": {"message": "nope", "code": 200}}));
        let f = RequestError::from_response(&r, b, "/x").to_failure();
        assert_eq!(f.failure_type, FailureType::ConfigError);
        assert!(f.message.contains("Forbidden"));
    }

    #[test]
    fn exhausted_rate_limit_message_starts_with_the_reference_text() {
        let (r, b) = response(400, &json!({"error": {"message": "busy", "code": 80002}}));
        let mut err = RequestError::from_response(&r, b, "/x");
        err.attempts = 6;
        let f = err.to_failure();
        assert!(f.message.starts_with("Rate limit exceeded for Instagram Graph API."));
        assert_eq!(f.failure_type, FailureType::TransientError);
    }
}
