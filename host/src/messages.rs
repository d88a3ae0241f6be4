//! Airbyte protocol messages on the host side: the [`MessageSink`] trait a run reports to, and
//! [`AirbyteWriter`], the sink that writes one JSON message per line (the CLI's stdout).

use crate::{Failure, FailureType, LogLevel, StreamStatus};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Receives everything a component emits during a verb. Implement it to embed the host.
///
/// `data` and `stream_state` are JSON texts the host has already checked to be JSON objects.
pub trait MessageSink: Send {
    /// One record of `stream`.
    fn record(&mut self, stream: &str, data: &RawValue);
    /// A per-stream state covering every record of `stream` delivered before it.
    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64);
    /// A log line from the component or the host.
    fn log(&mut self, level: LogLevel, message: &str);
    /// A stream status change.
    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>);
    /// A failure, of one stream or of the whole verb.
    fn error(&mut self, stream: Option<&str>, failure: &Failure);
}

/// A sink shared behind a mutex is a sink too (the CLI shares stdout between wrappers).
impl<S: MessageSink + ?Sized> MessageSink for std::sync::Arc<std::sync::Mutex<S>> {
    fn record(&mut self, stream: &str, data: &RawValue) {
        self.lock().unwrap_or_else(|p| p.into_inner()).record(stream, data);
    }
    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        self.lock().unwrap_or_else(|p| p.into_inner()).state(stream, stream_state, record_count);
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.lock().unwrap_or_else(|p| p.into_inner()).log(level, message);
    }
    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        self.lock().unwrap_or_else(|p| p.into_inner()).stream_status(stream, status, rate_limited_until_ms);
    }
    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.lock().unwrap_or_else(|p| p.into_inner()).error(stream, failure);
    }
}

/// Milliseconds since the epoch, as Airbyte's `emitted_at`.
pub fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(crate) fn failure_type_str(failure_type: FailureType) -> &'static str {
    match failure_type {
        FailureType::SystemError => "system_error",
        FailureType::ConfigError => "config_error",
        FailureType::TransientError => "transient_error",
    }
}

fn level_str(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Fatal => "FATAL",
        LogLevel::Error => "ERROR",
        LogLevel::Warn => "WARN",
        LogLevel::Info => "INFO",
        LogLevel::Debug => "DEBUG",
        LogLevel::Trace => "TRACE",
    }
}

fn status_str(status: StreamStatus) -> &'static str {
    match status {
        StreamStatus::Started => "STARTED",
        StreamStatus::Running => "RUNNING",
        StreamStatus::Complete => "COMPLETE",
        StreamStatus::Incomplete => "INCOMPLETE",
    }
}

/// The Airbyte `TRACE` ERROR message for `failure`.
pub fn trace_error(stream: Option<&str>, failure: &Failure) -> Value {
    let mut error = json!({
        "message": failure.message,
        "failure_type": failure_type_str(failure.failure_type),
    });
    if let Some(internal) = &failure.internal_message {
        error["internal_message"] = json!(internal);
    }
    if let Some(stream) = stream {
        error["stream_descriptor"] = json!({"name": stream});
    }
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": now_millis(), "error": error}})
}

#[derive(Serialize)]
struct RecordLine<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    record: RecordBody<'a>,
}

#[derive(Serialize)]
struct RecordBody<'a> {
    stream: &'a str,
    data: &'a RawValue,
    emitted_at: u64,
}

/// Writes Airbyte messages as JSON lines. Write errors (a closed pipe) end output silently:
/// the host still finishes the run and reports through its exit code.
pub struct AirbyteWriter<W: Write + Send> {
    out: W,
    broken: bool,
}

impl<W: Write + Send> AirbyteWriter<W> {
    /// A writer over `out` (wrap stdout in a `BufWriter`; states flush it).
    pub fn new(out: W) -> Self {
        AirbyteWriter { out, broken: false }
    }

    /// Writes one message line.
    pub fn write_message(&mut self, message: &impl Serialize) {
        if self.broken {
            return;
        }
        let ok = serde_json::to_writer(&mut self.out, message).is_ok() && self.out.write_all(b"\n").is_ok();
        self.broken = !ok;
    }

    /// The underlying writer (e.g. the bytes written to a `Vec<u8>`).
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// Flushes buffered lines.
    pub fn flush(&mut self) {
        if !self.broken && self.out.flush().is_err() {
            self.broken = true;
        }
    }
}

impl<W: Write + Send> MessageSink for AirbyteWriter<W> {
    fn record(&mut self, stream: &str, data: &RawValue) {
        let line = RecordLine { kind: "RECORD", record: RecordBody { stream, data, emitted_at: now_millis() } };
        self.write_message(&line);
    }

    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        self.write_message(&json!({
            "type": "STATE",
            "state": {
                "type": "STREAM",
                "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
                "sourceStats": {"recordCount": record_count as f64},
            }
        }));
        // Whoever persists state downstream must have every record before it.
        self.flush();
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.write_message(&json!({"type": "LOG", "log": {"level": level_str(level), "message": message}}));
        self.flush();
    }

    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        let mut stream_status = json!({"stream_descriptor": {"name": stream}, "status": status_str(status)});
        if let Some(until) = rate_limited_until_ms {
            stream_status["reasons"] = json!([{"type": "RATE_LIMITED", "rate_limited": {"quota_reset": until}}]);
        }
        self.write_message(&json!({
            "type": "TRACE",
            "trace": {"type": "STREAM_STATUS", "emitted_at": now_millis(), "stream_status": stream_status}
        }));
        self.flush();
    }

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.write_message(&trace_error(stream, failure));
        self.flush();
    }
}
