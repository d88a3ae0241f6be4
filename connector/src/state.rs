//! Incoming state: a JSON array of per-stream STATE messages (current protocol) or the deprecated
//! object keyed by stream name (reference §12.3).

use crate::protocol::Failure;
use serde_json::{Map, Value};

/// Stream name → that stream's `stream_state`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputState {
    pub streams: Map<String, Value>,
}

impl InputState {
    pub fn parse(text: Option<&str>) -> Result<InputState, Failure> {
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(InputState::default());
        };
        let value: Value =
            serde_json::from_str(text).map_err(|e| Failure::config(format!("The state is not valid JSON: {e}.")))?;
        let mut streams = Map::new();
        match value {
            Value::Array(messages) => {
                for message in messages {
                    // Accept both bare AirbyteStateMessages and full `{"type":"STATE","state":…}` lines.
                    let state = message.get("state").filter(|_| message.get("type").is_some()).unwrap_or(&message);
                    let Some(stream) = state.get("stream") else {
                        return Err(Failure::config(
                            "The state array holds a message that is not a per-stream (type STREAM) state.",
                        ));
                    };
                    let name = stream
                        .pointer("/stream_descriptor/name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| Failure::config("A stream state has no `stream_descriptor.name`."))?;
                    streams.insert(name.to_owned(), stream.get("stream_state").cloned().unwrap_or(Value::Null));
                }
            }
            Value::Object(legacy) => streams = legacy,
            Value::Null => {}
            _ => {
                return Err(Failure::config("The state must be a JSON array of stream states or an object."));
            }
        }
        Ok(InputState { streams })
    }

    pub fn get(&self, stream: &str) -> Option<&Value> {
        self.streams.get(stream).filter(|v| !v.is_null())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_stream_states_and_legacy_objects() {
        let text = r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"user_insights"},"stream_state":{"states":[]}}}]"#;
        assert_eq!(InputState::parse(Some(text)).expect("ok").get("user_insights"), Some(&json!({"states": []})));
        let legacy = r#"{"user_insights":{"1784":{"date":"2025-06-28T07:00:00+00:00"}}}"#;
        assert!(InputState::parse(Some(legacy)).expect("ok").get("user_insights").is_some());
        assert!(InputState::parse(None).expect("ok").streams.is_empty());
        assert!(InputState::parse(Some("[1]")).is_err());
        assert!(InputState::parse(Some("nope")).is_err());
    }
}
