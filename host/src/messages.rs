//! Airbyte protocol messages on the host side: the [`MessageSink`] trait a run reports to, and
//! [`AirbyteWriter`], the sink that writes one JSON message per line (the CLI's stdout).

use crate::{Failure, FailureType, LogLevel, StreamStatus};
use airbyte_messages::{ErrorTrace, spelling};
use serde::Serialize;
use serde_json::value::RawValue;
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
    /// The whole config the component now runs with (a refreshed token in it): a CONTROL message.
    fn config_updated(&mut self, config: &RawValue);
    /// The first failure to write output (full disk, closed pipe), if any: the host then stops
    /// the component at its next sink call instead of letting it sync into the void.
    fn write_failure(&self) -> Option<String> {
        None
    }
    /// Makes everything delivered so far durable (flushed, and synced to the disk where it goes
    /// to a file), so that a state covering it may be persisted; `Err` says what was not written.
    /// A state is never persisted past a failed call.
    fn make_durable(&mut self) -> Result<(), String> {
        self.write_failure().map_or(Ok(()), Err)
    }
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
    fn config_updated(&mut self, config: &RawValue) {
        self.lock().unwrap_or_else(|p| p.into_inner()).config_updated(config);
    }
    fn write_failure(&self) -> Option<String> {
        self.lock().unwrap_or_else(|p| p.into_inner()).write_failure()
    }
    fn make_durable(&mut self) -> Result<(), String> {
        self.lock().unwrap_or_else(|p| p.into_inner()).make_durable()
    }
}

/// Milliseconds since the epoch, as Airbyte's `emitted_at`.
pub fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The protocol spelling of a `failure_type` (WIT order, see `airbyte_messages::spelling`).
pub(crate) fn failure_type_str(failure_type: FailureType) -> &'static str {
    spelling::FAILURE_TYPES[failure_type as usize]
}

/// `stream: message (failure_type)`, as reports list a stream's failure.
pub fn describe_stream_failure(stream: &str, failure: &Failure) -> String {
    format!("{stream}: {} ({})", failure.message, failure_type_str(failure.failure_type))
}

/// The Airbyte `TRACE` ERROR message for `failure`.
pub fn trace_error<'a>(stream: Option<&'a str>, failure: &'a Failure) -> airbyte_messages::Message<'a> {
    let error = ErrorTrace {
        stream,
        message: &failure.message,
        internal_message: failure.internal_message.as_deref(),
        failure_type: failure_type_str(failure.failure_type),
    };
    airbyte_messages::trace_error(&error, now_millis())
}

/// Writes Airbyte messages as JSON lines. A write error (a closed pipe, a full disk) ends the
/// output: [`MessageSink::write_failure`] reports it and the host stops the component.
pub struct AirbyteWriter<W: Write + Send> {
    out: W,
    broken: bool,
    /// The file `out` writes to, when it is one, for [`MessageSink::make_durable`].
    file: Option<std::fs::File>,
}

impl<W: Write + Send> AirbyteWriter<W> {
    /// A writer over `out` (wrap stdout in a `BufWriter`; states flush it).
    pub fn new(out: W) -> Self {
        AirbyteWriter { out, broken: false, file: None }
    }

    /// The same writer, syncing `file` (where `out`'s bytes land) to the disk in
    /// [`MessageSink::make_durable`]: a handle to stdout when it is redirected to a file.
    pub fn syncing(mut self, file: Option<std::fs::File>) -> Self {
        self.file = file.filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
        self
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
        self.write_message(&airbyte_messages::record(stream, data, now_millis()));
    }

    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        self.write_message(&airbyte_messages::state(stream, stream_state, record_count));
        // Whoever persists state downstream must have every record before it.
        self.flush();
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.write_message(&airbyte_messages::log(spelling::LOG_LEVELS[level as usize], message));
        self.flush();
    }

    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        let status = spelling::STREAM_STATUSES[status as usize];
        self.write_message(&airbyte_messages::stream_status(stream, status, rate_limited_until_ms, now_millis()));
        self.flush();
    }

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.write_message(&trace_error(stream, failure));
        self.flush();
    }

    fn config_updated(&mut self, config: &RawValue) {
        self.write_message(&airbyte_messages::connector_config(config, now_millis()));
        self.flush();
    }

    fn write_failure(&self) -> Option<String> {
        self.broken.then(|| "the output (stdout) cannot be written: it was closed or is full".to_owned())
    }

    fn make_durable(&mut self) -> Result<(), String> {
        self.flush();
        if !self.broken
            && let Some(file) = &self.file
            && file.sync_data().is_err()
        {
            self.broken = true;
        }
        self.write_failure().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's bindgen enums index the shared spellings in WIT order.
    #[test]
    fn wit_enums_map_to_protocol_spellings() {
        assert_eq!(failure_type_str(FailureType::TransientError), "transient_error");
        assert_eq!(spelling::LOG_LEVELS[LogLevel::Info as usize], "INFO");
        assert_eq!(spelling::LOG_LEVELS[LogLevel::Trace as usize], "TRACE");
        assert_eq!(spelling::STREAM_STATUSES[StreamStatus::Incomplete as usize], "INCOMPLETE");
    }
}
