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

/// A per-stream AirbyteStateMessage, `{"type": "STREAM", "stream": {…}}`, as `--state` files hold
/// them.
pub fn stream_state_message(stream: &str, stream_state: &RawValue) -> Value {
    json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": stream}, "stream_state": stream_state}})
}

/// One stream's name and raw `stream_state` (`None` for null).
pub type StreamStateEntry = (String, Option<Box<RawValue>>);

#[derive(serde::Deserialize)]
struct StateEnvelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    state: Option<Box<RawValue>>,
    stream: Option<StreamState>,
}

#[derive(serde::Deserialize)]
struct StreamState {
    stream_descriptor: Option<StreamDescriptor>,
    stream_state: Option<Box<RawValue>>,
}

#[derive(serde::Deserialize)]
struct StreamDescriptor {
    name: Option<String>,
}

/// The per-stream states of a `--state` document, in one place for the host and the connector: a
/// JSON array of per-stream AirbyteStateMessages (bare, or whole `{"type": "STATE", "state": …}`
/// lines), or the deprecated object keyed by stream name. Each `stream_state` stays raw JSON
/// (`None` for null); an empty document is no state. `Err` says what is wrong, for a user.
pub fn parse_states(text: &str) -> Result<Vec<StreamStateEntry>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let document: Box<RawValue> =
        serde_json::from_str(text).map_err(|e| format!("The state is not valid JSON: {e}."))?;
    let trimmed = document.get().trim_start();
    if trimmed.starts_with('{') {
        let legacy: std::collections::BTreeMap<String, Option<Box<RawValue>>> =
            serde_json::from_str(document.get()).map_err(|e| format!("The state object cannot be read: {e}."))?;
        return Ok(legacy.into_iter().collect());
    }
    if trimmed == "null" {
        return Ok(Vec::new());
    }
    let messages: Vec<Box<RawValue>> = serde_json::from_str(document.get())
        .map_err(|_| "The state must be a JSON array of stream states or an object.".to_owned())?;
    let not_stream = || "The state array holds a message that is not a per-stream (type STREAM) state.".to_owned();
    messages
        .iter()
        .map(|message| {
            let mut envelope: StateEnvelope = serde_json::from_str(message.get()).map_err(|_| not_stream())?;
            // A whole protocol line carries the state message inside.
            if let (Some(_), Some(inner)) = (&envelope.kind, &envelope.state) {
                envelope = serde_json::from_str(inner.get()).map_err(|_| not_stream())?;
            }
            let stream = envelope.stream.ok_or_else(not_stream)?;
            let name = stream.stream_descriptor.and_then(|d| d.name);
            let name = name.ok_or_else(|| "A stream state has no `stream_descriptor.name`.".to_owned())?;
            Ok((name, stream.stream_state))
        })
        .collect()
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

    #[test]
    fn state_documents_in_every_accepted_form() {
        let bare = r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":{"x":1}}}]"#;
        let line = r#"[{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"a"},"stream_state":{"x":1}}}}]"#;
        for text in [bare, line, &format!("\u{feff}{bare}")] {
            let states = parse_states(text).expect(text);
            assert_eq!(states.len(), 1);
            assert_eq!((states[0].0.as_str(), states[0].1.as_ref().map(|r| r.get())), ("a", Some(r#"{"x":1}"#)));
        }
        assert_eq!(parse_states(r#"{"a":{"1":{"date":"d"}}}"#).expect("legacy")[0].0, "a");
        assert!(parse_states("").expect("empty").is_empty());
        assert!(parse_states("null").expect("null").is_empty());
        for bad in [
            "[1]",
            "[{}]",
            r#"[{"type":"GLOBAL","global":{}}]"#,
            r#"[{"type":"STREAM","stream":{}}]"#,
            "7",
            "\"x\"",
            "{",
        ] {
            assert!(parse_states(bad).is_err(), "{bad}");
        }
    }
}
