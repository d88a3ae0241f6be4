//! Airbyte protocol vocabulary as the connector core sees it.
//!
//! The core never writes protocol JSON itself: it talks to a [`Sink`], which the component glue
//! forwards to the host's `sink` import and which native tests replace with a recorder. That keeps
//! every Graph API rule testable without WebAssembly.

use serde_json::Value;
use std::fmt;

/// JSON text without a leading UTF-8 byte-order mark (some editors on Windows write one), for
/// every document a user hands in: config, catalog, state.
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// Airbyte `failure_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureType {
    SystemError,
    ConfigError,
    TransientError,
}

impl FailureType {
    /// The protocol spelling (`system_error`, …).
    pub fn as_str(self) -> &'static str {
        airbyte_messages::spelling::FAILURE_TYPES[self as usize]
    }
}

/// A failure as shown to the user: one sentence plus optional technical detail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub internal_message: Option<String>,
    pub failure_type: FailureType,
}

impl Failure {
    pub fn new(failure_type: FailureType, message: impl Into<String>) -> Self {
        Failure { message: message.into(), internal_message: None, failure_type }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(FailureType::ConfigError, message)
    }

    pub fn system(message: impl Into<String>) -> Self {
        Self::new(FailureType::SystemError, message)
    }

    pub fn with_internal(mut self, internal: impl Into<String>) -> Self {
        self.internal_message = Some(internal.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.failure_type.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Fatal,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStatus {
    Started,
    Running,
    Complete,
    Incomplete,
}

/// Where the connector's messages go. Methods take `&self`: the core is single-threaded and
/// emits from many concurrent request futures.
pub trait Sink {
    /// One record, as the text of a JSON object (records are serialized once, by the stream).
    fn record(&self, stream: &str, json: &str);
    fn state(&self, stream: &str, stream_state: &Value, record_count: u64);
    fn log(&self, level: LogLevel, message: &str);
    fn stream_status(&self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>);
    fn error(&self, stream: Option<&str>, failure: &Failure);
    /// The whole config the connector now runs with (a refreshed token in it), as a CONTROL
    /// message. The one message that carries a secret, so no sink redacts it.
    fn config_updated(&self, config: &str);
}

/// Wraps a sink so that no message can carry a secret, in any spelling an API echoed it back in
/// (see [`airbyte_messages::secrets`]): records and states included, since a server may echo a
/// token anywhere.
pub struct RedactingSink<'a> {
    inner: &'a dyn Sink,
    redactor: airbyte_messages::secrets::Redactor,
}

impl<'a> RedactingSink<'a> {
    /// `secrets` shorter than 4 characters are ignored (redacting them would mangle ordinary text).
    pub fn new(inner: &'a dyn Sink, secrets: impl IntoIterator<Item = String>) -> Self {
        RedactingSink { inner, redactor: airbyte_messages::secrets::Redactor::new(secrets, "****") }
    }

    fn redact(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    pub fn redact_failure(&self, failure: &Failure) -> Failure {
        Failure {
            message: self.redact(&failure.message),
            internal_message: failure.internal_message.as_deref().map(|m| self.redact(m)),
            failure_type: failure.failure_type,
        }
    }
}

impl Sink for RedactingSink<'_> {
    fn record(&self, stream: &str, json: &str) {
        self.inner.record(stream, &self.redactor.redact_data(json))
    }

    fn state(&self, stream: &str, stream_state: &Value, record_count: u64) {
        let text = stream_state.to_string();
        match self.redactor.redact(&text) {
            std::borrow::Cow::Borrowed(_) => self.inner.state(stream, stream_state, record_count),
            std::borrow::Cow::Owned(clean) => {
                let clean = serde_json::from_str(&clean).unwrap_or(Value::Null);
                self.inner.state(stream, &clean, record_count)
            }
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(level, &self.redact(message))
    }

    fn stream_status(&self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        self.inner.stream_status(stream, status, rate_limited_until_ms)
    }

    fn error(&self, stream: Option<&str>, failure: &Failure) {
        self.inner.error(stream, &self.redact_failure(failure))
    }

    fn config_updated(&self, config: &str) {
        self.inner.config_updated(config)
    }
}

#[cfg(test)]
pub mod testing {
    //! A sink that records every message, for native tests.
    use super::*;
    use std::cell::RefCell;

    #[derive(Debug, Clone, PartialEq)]
    pub enum Message {
        Record(String, Value),
        State(String, Value, u64),
        Log(LogLevel, String),
        Status(String, StreamStatus, Option<u64>),
        Error(Option<String>, Failure),
        ConfigUpdated(Value),
    }

    #[derive(Default)]
    pub struct RecordingSink {
        pub messages: RefCell<Vec<Message>>,
    }

    impl RecordingSink {
        pub fn records(&self, stream: &str) -> Vec<Value> {
            self.messages
                .borrow()
                .iter()
                .filter_map(|m| match m {
                    Message::Record(s, v) if s == stream => Some(v.clone()),
                    _ => None,
                })
                .collect()
        }

        pub fn logs(&self) -> Vec<(LogLevel, String)> {
            self.messages
                .borrow()
                .iter()
                .filter_map(|m| match m {
                    Message::Log(l, t) => Some((*l, t.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    impl Sink for RecordingSink {
        fn record(&self, stream: &str, json: &str) {
            let data = serde_json::from_str(json).expect("records are JSON");
            self.messages.borrow_mut().push(Message::Record(stream.into(), data));
        }
        fn state(&self, stream: &str, stream_state: &Value, record_count: u64) {
            self.messages.borrow_mut().push(Message::State(stream.into(), stream_state.clone(), record_count));
        }
        fn log(&self, level: LogLevel, message: &str) {
            self.messages.borrow_mut().push(Message::Log(level, message.into()));
        }
        fn stream_status(&self, stream: &str, status: StreamStatus, until: Option<u64>) {
            self.messages.borrow_mut().push(Message::Status(stream.into(), status, until));
        }
        fn error(&self, stream: Option<&str>, failure: &Failure) {
            self.messages.borrow_mut().push(Message::Error(stream.map(Into::into), failure.clone()));
        }
        fn config_updated(&self, config: &str) {
            let config = serde_json::from_str(config).expect("configs are JSON");
            self.messages.borrow_mut().push(Message::ConfigUpdated(config));
        }
    }
}
