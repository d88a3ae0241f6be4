//! The Airbyte protocol envelopes this project prints, in one place, so that the wasmtime host,
//! the stdout-sink component (for stock `wasmtime run`) and the component's command mode print
//! byte-for-byte the same lines. The envelopes are typed ([`Message`]); payloads the connector
//! produced (`data`, `stream_state`, spec, catalog) pass through as raw JSON, never re-parsed.
//!
//! It also holds the two rules every printer applies to what it prints: no secret in any
//! spelling ([`secrets`]) and no JSON nested deeper than readers load ([`depth`]).

pub mod depth;
pub mod secrets;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The protocol spellings of the enums the WIT `types` interface carries.
pub mod spelling {
    /// `failure_type`: `system_error`, `config_error`, `transient_error`.
    pub const FAILURE_TYPES: [&str; 3] = ["system_error", "config_error", "transient_error"];
    /// Log levels, in WIT order.
    pub const LOG_LEVELS: [&str; 6] = ["FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"];
    /// Stream statuses, in WIT order.
    pub const STREAM_STATUSES: [&str; 4] = ["STARTED", "RUNNING", "COMPLETE", "INCOMPLETE"];
}

/// One AirbyteMessage line, tagged by `type`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Message<'a> {
    Record {
        record: RecordBody<'a>,
    },
    State {
        state: StateBody<'a>,
    },
    Log {
        log: LogBody<'a>,
    },
    Trace {
        trace: Trace<'a>,
    },
    Spec {
        spec: &'a RawValue,
    },
    Catalog {
        catalog: &'a RawValue,
    },
    Control {
        control: ControlBody<'a>,
    },
    ConnectionStatus {
        #[serde(rename = "connectionStatus")]
        connection_status: ConnectionStatus<'a>,
    },
}

#[derive(Serialize)]
pub struct RecordBody<'a> {
    stream: &'a str,
    data: &'a RawValue,
    emitted_at: u64,
}

#[derive(Serialize)]
pub struct StateBody<'a> {
    #[serde(flatten)]
    message: StreamStateMessage<'a>,
    #[serde(rename = "sourceStats")]
    source_stats: SourceStats,
}

#[derive(Serialize)]
struct SourceStats {
    #[serde(rename = "recordCount")]
    record_count: f64,
}

/// A per-stream AirbyteStateMessage, `{"type": "STREAM", "stream": {…}}`, as `--state` files hold
/// them.
#[derive(Serialize)]
pub struct StreamStateMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    stream: StreamStateBody<'a>,
}

#[derive(Serialize)]
struct StreamStateBody<'a> {
    stream_descriptor: Descriptor<'a>,
    stream_state: &'a RawValue,
}

#[derive(Serialize)]
struct Descriptor<'a> {
    name: &'a str,
}

#[derive(Serialize)]
pub struct LogBody<'a> {
    level: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
pub struct Trace<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    emitted_at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_status: Option<StreamStatusBody<'a>>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    failure_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    internal_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_descriptor: Option<Descriptor<'a>>,
}

#[derive(Serialize)]
struct StreamStatusBody<'a> {
    stream_descriptor: Descriptor<'a>,
    status: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    reasons: Vec<StatusReason>,
}

#[derive(Serialize)]
struct StatusReason {
    #[serde(rename = "type")]
    kind: &'static str,
    rate_limited: RateLimited,
}

#[derive(Serialize)]
struct RateLimited {
    quota_reset: u64,
}

#[derive(Serialize)]
pub struct ConnectionStatus<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

/// `{"type":"RECORD", …}`.
/// A CONTROL message's body: always `CONNECTOR_CONFIG` here (the protocol's one control type).
#[derive(Serialize)]
pub struct ControlBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    emitted_at: u64,
    #[serde(rename = "connectorConfig")]
    connector_config: ConnectorConfig<'a>,
}

#[derive(Serialize)]
pub struct ConnectorConfig<'a> {
    config: &'a RawValue,
}

/// `{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG",…}}`: the whole config the source now
/// runs with, for the platform to persist (Airbyte protocol, `AirbyteControlMessage`).
pub fn connector_config(config: &RawValue, emitted_at: u64) -> Message<'_> {
    Message::Control {
        control: ControlBody { kind: "CONNECTOR_CONFIG", emitted_at, connector_config: ConnectorConfig { config } },
    }
}

pub fn record<'a>(stream: &'a str, data: &'a RawValue, emitted_at: u64) -> Message<'a> {
    Message::Record { record: RecordBody { stream, data, emitted_at } }
}

/// The per-stream state message a `--state` file holds for `stream`.
pub fn stream_state_message<'a>(stream: &'a str, stream_state: &'a RawValue) -> StreamStateMessage<'a> {
    StreamStateMessage {
        kind: "STREAM",
        stream: StreamStateBody { stream_descriptor: Descriptor { name: stream }, stream_state },
    }
}

/// A per-stream `{"type":"STATE", …}` with `sourceStats.recordCount`.
pub fn state<'a>(stream: &'a str, stream_state: &'a RawValue, record_count: u64) -> Message<'a> {
    let source_stats = SourceStats { record_count: record_count as f64 };
    Message::State { state: StateBody { message: stream_state_message(stream, stream_state), source_stats } }
}

/// `{"type":"LOG", …}`.
pub fn log<'a>(level: &'a str, message: &'a str) -> Message<'a> {
    Message::Log { log: LogBody { level, message } }
}

/// A STREAM_STATUS trace; `rate_limited_until` (epoch ms) adds a RATE_LIMITED reason.
pub fn stream_status<'a>(
    stream: &'a str,
    status: &'a str,
    rate_limited_until: Option<u64>,
    emitted_at: u64,
) -> Message<'a> {
    let reasons = rate_limited_until
        .map(|quota_reset| StatusReason { kind: "RATE_LIMITED", rate_limited: RateLimited { quota_reset } })
        .into_iter()
        .collect();
    let body = StreamStatusBody { stream_descriptor: Descriptor { name: stream }, status, reasons };
    Message::Trace { trace: Trace { kind: "STREAM_STATUS", emitted_at, error: None, stream_status: Some(body) } }
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
pub fn trace_error<'a>(error: &ErrorTrace<'a>, emitted_at: u64) -> Message<'a> {
    let body = ErrorBody {
        message: error.message,
        failure_type: error.failure_type,
        internal_message: error.internal_message,
        stream_descriptor: error.stream.map(|name| Descriptor { name }),
    };
    Message::Trace { trace: Trace { kind: "ERROR", emitted_at, error: Some(body), stream_status: None } }
}

/// `{"type":"SPEC","spec":…}`.
pub fn spec(spec: &RawValue) -> Message<'_> {
    Message::Spec { spec }
}

/// `{"type":"CATALOG","catalog":…}`.
pub fn catalog(catalog: &RawValue) -> Message<'_> {
    Message::Catalog { catalog }
}

/// `{"type":"CONNECTION_STATUS", …}`: SUCCEEDED, or FAILED with the failure's message.
pub fn connection_status(failed: Option<&str>) -> Message<'_> {
    let status = if failed.is_some() { "FAILED" } else { "SUCCEEDED" };
    Message::ConnectionStatus { connection_status: ConnectionStatus { status, message: failed } }
}

/// One stream's name and raw `stream_state` (`None` for null).
pub type StreamStateEntry = (String, Option<Box<RawValue>>);

#[derive(Deserialize)]
struct StateEnvelope {
    #[serde(rename = "type")]
    kind: Option<String>,
    state: Option<Box<RawValue>>,
    stream: Option<StreamState>,
}

#[derive(Deserialize)]
struct StreamState {
    stream_descriptor: Option<StreamDescriptor>,
    stream_state: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_keep_raw_payloads_and_protocol_spellings() {
        let json = |message: &Message<'_>| -> serde_json::Value {
            serde_json::from_str(&serde_json::to_string(message).expect("json")).expect("parse")
        };
        let data = RawValue::from_string(r#"{"id":"1","n":1.50}"#.into()).expect("raw");
        let line = serde_json::to_string(&record("media", &data, 7)).expect("json");
        assert_eq!(line, r#"{"type":"RECORD","record":{"stream":"media","data":{"id":"1","n":1.50},"emitted_at":7}}"#);
        assert_eq!(json(&state("s", &data, 2))["state"]["sourceStats"]["recordCount"], serde_json::json!(2.0));
        let limited = stream_status("s", "RUNNING", Some(9), 1);
        assert_eq!(json(&limited)["trace"]["stream_status"]["reasons"][0]["rate_limited"]["quota_reset"], 9);
        let error = ErrorTrace { stream: None, message: "m", internal_message: None, failure_type: "config_error" };
        assert!(json(&trace_error(&error, 1))["trace"]["error"].get("stream_descriptor").is_none());
        assert_eq!(json(&connection_status(Some("bad")))["connectionStatus"]["status"], "FAILED");
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
