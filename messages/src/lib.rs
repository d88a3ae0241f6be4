//! The Airbyte protocol envelopes this project prints, in one place, so that the wasmtime host,
//! the stdout-sink component (for stock `wasmtime run`) and the component's command mode print
//! byte-for-byte the same lines. Payloads the connector produced (`data`, `stream_state`, spec,
//! catalog) pass through as raw JSON, never re-parsed.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

/// The protocol spellings of the enums the WIT `types` interface carries.
pub mod spelling {
    /// `failure_type`: `system_error`, `config_error`, `transient_error`.
    pub const FAILURE_TYPES: [&str; 3] = ["system_error", "config_error", "transient_error"];
    /// Log levels, in WIT order.
    pub const LOG_LEVELS: [&str; 6] = ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
    /// Stream statuses, in WIT order.
    pub const STREAM_STATUSES: [&str; 4] = ["STARTED", "RUNNING", "COMPLETE", "INCOMPLETE"];
}

/// A RECORD line's shape (serialized without copying `data`).
#[derive(Serialize)]
pub struct Record<'a> {
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

/// `{"type":"RECORD", …}`.
pub fn record<'a>(stream: &'a str, data: &'a RawValue, emitted_at: u64) -> Record<'a> {
    Record { kind: "RECORD", record: RecordBody { stream, data, emitted_at } }
}

/// A per-stream `{"type":"STATE", …}` with `sourceStats.recordCount`.
pub fn state(stream: &str, stream_state: &RawValue, record_count: u64) -> Value {
    json!({
        "type": "STATE",
        "state": {
            "type": "STREAM",
            "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state},
            "sourceStats": {"recordCount": record_count as f64},
        }
    })
}

/// `{"type":"LOG", …}`.
pub fn log(level: &str, message: &str) -> Value {
    json!({"type": "LOG", "log": {"level": level, "message": message}})
}

/// A STREAM_STATUS trace; `rate_limited_until` (epoch ms) adds a RATE_LIMITED reason.
pub fn stream_status(stream: &str, status: &str, rate_limited_until: Option<u64>, emitted_at: u64) -> Value {
    let mut stream_status = json!({"stream_descriptor": {"name": stream}, "status": status});
    if let Some(until) = rate_limited_until {
        stream_status["reasons"] = json!([{"type": "RATE_LIMITED", "rate_limited": {"quota_reset": until}}]);
    }
    json!({"type": "TRACE", "trace": {"type": "STREAM_STATUS", "emitted_at": emitted_at, "stream_status": stream_status}})
}

/// What a TRACE ERROR says.
pub struct ErrorTrace<'a> {
    /// The failing stream, if the failure belongs to one.
    pub stream: Option<&'a str>,
    /// One sentence for the user.
    pub message: &'a str,
    /// Detail for maintainers.
    pub internal_message: Option<&'a str>,
    /// The protocol `failure_type`.
    pub failure_type: &'a str,
}

/// A TRACE ERROR.
pub fn trace_error(error: &ErrorTrace<'_>, emitted_at: u64) -> Value {
    let mut body = json!({"message": error.message, "failure_type": error.failure_type});
    if let Some(internal) = error.internal_message {
        body["internal_message"] = json!(internal);
    }
    if let Some(stream) = error.stream {
        body["stream_descriptor"] = json!({"name": stream});
    }
    json!({"type": "TRACE", "trace": {"type": "ERROR", "emitted_at": emitted_at, "error": body}})
}

/// `{"type":"SPEC","spec":…}`.
pub fn spec(spec: &RawValue) -> Value {
    json!({"type": "SPEC", "spec": spec})
}

/// `{"type":"CATALOG","catalog":…}`.
pub fn catalog(catalog: &RawValue) -> Value {
    json!({"type": "CATALOG", "catalog": catalog})
}

/// `{"type":"CONNECTION_STATUS", …}`: SUCCEEDED, or FAILED with the failure's message.
pub fn connection_status(failed: Option<&str>) -> Value {
    let status = match failed {
        None => json!({"status": "SUCCEEDED"}),
        Some(message) => json!({"status": "FAILED", "message": message}),
    };
    json!({"type": "CONNECTION_STATUS", "connectionStatus": status})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_keep_raw_payloads_and_protocol_spellings() {
        let data = RawValue::from_string(r#"{"id":"1","n":1.50}"#.into()).expect("raw");
        let line = serde_json::to_string(&record("media", &data, 7)).expect("json");
        assert_eq!(line, r#"{"type":"RECORD","record":{"stream":"media","data":{"id":"1","n":1.50},"emitted_at":7}}"#);
        assert_eq!(state("s", &data, 2)["state"]["sourceStats"]["recordCount"], json!(2.0));
        let limited = stream_status("s", "RUNNING", Some(9), 1);
        assert_eq!(limited["trace"]["stream_status"]["reasons"][0]["rate_limited"]["quota_reset"], 9);
        let error = ErrorTrace { stream: None, message: "m", internal_message: None, failure_type: "config_error" };
        assert!(trace_error(&error, 1)["trace"]["error"].get("stream_descriptor").is_none());
        assert_eq!(connection_status(Some("bad"))["connectionStatus"]["status"], "FAILED");
    }
}
