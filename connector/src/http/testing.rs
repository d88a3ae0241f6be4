//! A scripted [`Runtime`] for native tests: answers requests from a closure, records every
//! request and every requested sleep, and never waits: a sleep moves its clock on instead.

use super::client::{GraphClient, RetryPolicy};
use super::{HttpRequest, HttpResponse, Runtime, TransportError};
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use std::cell::RefCell;
use std::time::Duration;

type Handler = Box<dyn Fn(&HttpRequest) -> Result<HttpResponse, TransportError>>;

pub struct ScriptedRuntime {
    /// The clock at the start; [`Runtime::now`] adds every sleep so far.
    pub start: DateTime<Utc>,
    handler: Handler,
    pub requests: RefCell<Vec<String>>,
    pub sleeps: RefCell<Vec<Duration>>,
}

impl ScriptedRuntime {
    pub fn new(
        now: DateTime<Utc>,
        handler: impl Fn(&HttpRequest) -> Result<HttpResponse, TransportError> + 'static,
    ) -> Self {
        ScriptedRuntime {
            start: now,
            handler: Box::new(handler),
            requests: RefCell::new(Vec::new()),
            sleeps: RefCell::new(Vec::new()),
        }
    }
}

/// A client of `runtime` with the default retry policy, at a `base_url` that is not the Graph API's.
pub fn client<'a>(runtime: &'a ScriptedRuntime, sink: &'a dyn crate::protocol::Sink) -> GraphClient<'a> {
    GraphClient::new("http://x/v23.0", "tok", 4, RetryPolicy::default(), runtime, sink)
}

/// A JSON response.
pub fn respond(status: u16, body: serde_json::Value) -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse { status, headers: Vec::new(), body: body.to_string().into_bytes() })
}

impl Runtime for ScriptedRuntime {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>> {
        self.requests.borrow_mut().push(request.url.clone());
        let answer = (self.handler)(&request);
        Box::pin(async move { answer })
    }

    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()> {
        self.sleeps.borrow_mut().push(duration);
        Box::pin(async {})
    }

    fn now(&self) -> DateTime<Utc> {
        let slept: Duration = self.sleeps.borrow().iter().sum();
        self.start + chrono::Duration::from_std(slept).unwrap_or_default()
    }
}
