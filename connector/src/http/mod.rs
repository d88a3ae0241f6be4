//! The one request layer every stream uses.
//!
//! Why one layer: Graph API rules (auth header, error bodies inside 4xx, throttling codes, retry
//! budget, in-flight cap) are the same for every stream; a copy per stream would drift.
//!
//! * [`Runtime`] is the seam to the outside world (wasi:http + wasi:clocks in the component, a
//!   scripted fake in native tests).
//! * [`limiter`] caps requests in flight at `num_workers`.
//! * [`pacing`] keeps the calls in flight under Meta's reported quota usage.
//! * [`error`] classifies a response by HTTP status **and** Graph error body.
//! * [`answer`] reads an answer once, straight into the type its caller asked for, and says
//!   what is wrong with one that does not fit.
//! * [`client`] puts them together: send, classify, back off, retry.

pub mod answer;
pub mod batch;
pub mod client;
pub mod error;
pub mod limiter;
pub mod pacing;
#[cfg(test)]
pub mod testing;

use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

#[derive(Clone, Debug)]
pub struct HttpRequest {
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A request that never produced a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportError {
    /// Connect, first-byte or between-bytes timeout.
    Timeout(String),
    /// Refused, reset, DNS failure, protocol error: worth retrying.
    Connection(String),
    /// The host's egress policy refused the destination: retrying cannot help.
    Denied(String),
    /// The request cannot be sent as built (a URL or header no server accepts): a config problem.
    Invalid(String),
}

impl TransportError {
    pub fn describe(&self) -> String {
        match self {
            TransportError::Timeout(d) => format!("timed out ({d})"),
            TransportError::Connection(d) => format!("connection failed ({d})"),
            TransportError::Denied(d) => format!("refused by the host's egress policy ({d})"),
            TransportError::Invalid(d) => format!("cannot be sent ({d})"),
        }
    }
}

/// Everything the connector needs from its environment.
pub trait Runtime {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>>;
    /// A wait that costs no CPU.
    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()>;
    fn now(&self) -> DateTime<Utc>;
}
