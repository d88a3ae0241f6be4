//! Incoming state: a JSON array of per-stream STATE messages (current protocol) or the deprecated
//! object keyed by stream name (`docs/airbyte.md`, "State"); and the per-account cursors the
//! incremental streams keep in it.

use crate::protocol::Failure;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Stream name → that stream's `stream_state`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputState {
    pub streams: Map<String, Value>,
}

impl InputState {
    pub fn parse(text: Option<&str>) -> Result<InputState, Failure> {
        let states = airbyte_messages::parse_states(text.unwrap_or("")).map_err(Failure::config)?;
        let mut streams = Map::new();
        for (name, state) in states {
            let state = match state {
                Some(raw) => serde_json::from_str(raw.get())
                    .map_err(|e| Failure::config(format!("The state of `{name}` is not valid JSON: {e}.")))?,
                None => Value::Null,
            };
            streams.insert(name, state);
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

/// The cursor format of since/until and of state: literal `+00:00` (`docs/source-instagram.md` §8.2).
pub fn format_cursor(moment: DateTime<Utc>) -> String {
    moment.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Lenient: `+00:00`, `Z` and `+0000` (old legacy states used `Z`).
pub fn parse_cursor(text: &str) -> Option<DateTime<Utc>> {
    crate::record::parse_timestamp(text).map(|t| t.with_timezone(&Utc))
}

/// Rewrites a legacy `{account_id: {"date": …}}` state to the per-partition form
/// (`docs/source-instagram.md` §12.2); a state
/// that already has `states` is returned as it is.
pub fn migrate_legacy(state: Value) -> Value {
    let Value::Object(map) = state else { return state };
    if map.contains_key("states") {
        return Value::Object(map);
    }
    let legacy = map
        .values()
        .filter(|v| v.is_object())
        .all(|v| v.as_object().is_some_and(|o| o.len() == 1 && o.contains_key("date")));
    if !legacy {
        return Value::Object(map);
    }
    let states: Vec<Value> = map
        .into_iter()
        .filter(|(_, cursor)| cursor.is_object())
        .map(|(account, cursor)| json!({"partition": {"business_account_id": account}, "cursor": cursor}))
        .collect();
    json!({ "states": states })
}

/// Per-account cursors of an incremental stream partitioned by `business_account_id`.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionCursors {
    /// The stream, for messages.
    stream: &'static str,
    /// The cursor's key in `cursor` (`date` for user_insights, `timestamp` for media streams).
    key: &'static str,
    cursors: BTreeMap<String, DateTime<Utc>>,
}

impl Default for PartitionCursors {
    fn default() -> Self {
        PartitionCursors { stream: "user_insights", key: "date", cursors: BTreeMap::new() }
    }
}

impl PartitionCursors {
    /// Reads a user_insights state (current or legacy form).
    pub fn from_state(state: Option<&Value>) -> Result<PartitionCursors, Failure> {
        let empty = PartitionCursors::default();
        PartitionCursors::read(empty.stream, empty.key, state)
    }

    /// Reads a stream state (current or legacy form). Every other form is a `config_error` that
    /// says what was expected: a state this connector cannot read must never silently mean
    /// "start over" (a full resync) or "skip".
    pub fn read(stream: &'static str, key: &'static str, state: Option<&Value>) -> Result<PartitionCursors, Failure> {
        let expected = format!(
            r#"expected {{"states": [{{"partition": {{"business_account_id": "…"}}, "cursor": {{"{key}": "2025-06-28T07:00:00+00:00"}}}}]}}"#
        );
        let mut cursors = BTreeMap::new();
        let Some(state) = state else { return Ok(PartitionCursors { stream, key, cursors }) };
        // The stream was last synced in full refresh (or by a version that had no cursor for it):
        // no cursor yet, so everything is read.
        if *state == crate::model::final_full_refresh_state() {
            return Ok(PartitionCursors { stream, key, cursors });
        }
        let Some(object) = state.as_object() else {
            return Err(Failure::config(format!("The {stream} state is not an object; {expected}.")));
        };
        // Without `states`, only the legacy form is readable: account id → {"date": …}.
        if !object.contains_key("states") && object.values().any(|v| !v.is_object()) {
            return Err(Failure::config(format!("The {stream} state has no per-account cursors; {expected}.")));
        }
        let migrated = migrate_legacy(state.clone());
        let entries = match migrated.get("states") {
            Some(Value::Array(entries)) => entries.clone(),
            Some(_) => {
                return Err(Failure::config(format!("The {stream} state has a `states` entry that is not a list.")));
            }
            None => {
                return Err(Failure::config(format!("The {stream} state has no per-account cursors; {expected}.")));
            }
        };
        for entry in entries {
            let account = entry.pointer("/partition/business_account_id").and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            let Some(account) = account else {
                return Err(Failure::config(format!("A {stream} state entry has no `partition.business_account_id`.")));
            };
            let Some(text) = entry.get("cursor").and_then(|c| c.get(key)).and_then(Value::as_str) else {
                return Err(Failure::config(format!(
                    "The {stream} state of account {account} has no cursor {key}; {expected}."
                )));
            };
            let date = parse_cursor(text).ok_or_else(|| {
                Failure::config(format!(
                    "The {stream} state of account {account} has the {key} `{text}`; expected e.g. 2025-06-28T07:00:00+00:00."
                ))
            })?;
            cursors.insert(account, date);
        }
        Ok(PartitionCursors { stream, key, cursors })
    }

    pub fn get(&self, account: &str) -> Option<DateTime<Utc>> {
        self.cursors.get(account).copied()
    }

    /// Moves cursors later than `latest` (a state from the future: a clock that was wrong, a
    /// hand-edited state) back to `latest`, so the stream reads nothing it has not been asked to
    /// skip and is not stuck for good. Returns a warning per account moved.
    pub fn clamp_to(&mut self, latest: DateTime<Utc>) -> Vec<String> {
        let mut warnings = Vec::new();
        for (account, cursor) in self.cursors.iter_mut().filter(|(_, cursor)| **cursor > latest) {
            warnings.push(format!(
                "{}: the state of account {account} is in the future ({}); it was moved back to {} so later syncs continue from there.",
                self.stream,
                format_cursor(*cursor),
                format_cursor(latest)
            ));
            *cursor = latest;
        }
        warnings
    }

    /// Moves an account's cursor forward (never back).
    pub fn advance(&mut self, account: &str, date: DateTime<Utc>) {
        let entry = self.cursors.entry(account.to_owned()).or_insert(date);
        if date > *entry {
            *entry = date;
        }
    }

    /// The state message payload (`docs/source-instagram.md` §12.1). Accounts not read this time
    /// keep their cursor.
    pub fn to_state(&self, lookback_window_secs: u64) -> Value {
        let states: Vec<Value> = self
            .cursors
            .iter()
            .map(|(account, date)| {
                json!({"partition": {"business_account_id": account}, "cursor": {self.key: format_cursor(*date)}})
            })
            .collect();
        let mut state = json!({"use_global_cursor": false, "states": states});
        if let Some(max) = self.cursors.values().max() {
            state["state"] = json!({self.key: format_cursor(*max)});
        }
        state["lookback_window"] = json!(lookback_window_secs);
        state["parent_state"] = json!({});
        state
    }
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn legacy_state_is_migrated_and_current_state_left_alone() {
        let legacy = json!({"17841400000000000": {"date": "2025-06-28T07:00:00+00:00"}});
        assert_eq!(
            migrate_legacy(legacy),
            json!({"states": [{"partition": {"business_account_id": "17841400000000000"}, "cursor": {"date": "2025-06-28T07:00:00+00:00"}}]})
        );
        assert_eq!(migrate_legacy(json!({})), json!({"states": []}));
        let current = json!({"states": [], "state": {"date": "x"}});
        assert_eq!(migrate_legacy(current.clone()), current);
        let not_legacy = json!({"a": {"date": "x", "other": 1}});
        assert_eq!(migrate_legacy(not_legacy.clone()), not_legacy);
    }

    #[test]
    fn cursors_parse_leniently_and_serialise_with_colon_offsets() {
        let state = json!({"1": {"date": "2025-06-28T07:00:00Z"}, "2": {"date": "2025-06-27T07:00:00+0000"}});
        let cursors = PartitionCursors::from_state(Some(&state)).expect("valid");
        let out = cursors.to_state(4);
        assert_eq!(out["states"][0]["cursor"]["date"], "2025-06-28T07:00:00+00:00");
        assert_eq!(out["states"][1]["cursor"]["date"], "2025-06-27T07:00:00+00:00");
        assert_eq!(out["state"]["date"], "2025-06-28T07:00:00+00:00");
        assert_eq!(out["use_global_cursor"], false);
        assert_eq!(out["parent_state"], json!({}));
        for bad in [
            json!({"states": [{"partition": {"business_account_id": "1"}, "cursor": {"date": "yesterday"}}]}),
            json!({"states": [{"partition": {"business_account_id": "1"}, "cursor": {"date": 1719000000}}]}),
            json!({"states": [{"partition": {"business_account_id": "1"}, "cursor": {}}]}),
            json!({"1": {"date": -5}}),
            json!({"cursor": 7}),
            json!(-5),
            json!(1719000000),
            json!("2025-06-28T07:00:00+00:00"),
            json!({"__ab_no_cursor_state_message": false}),
        ] {
            let error = PartitionCursors::from_state(Some(&bad)).expect_err(&bad.to_string());
            assert_eq!(error.failure_type, crate::protocol::FailureType::ConfigError, "{bad}");
        }
    }

    #[test]
    fn a_full_refresh_final_state_means_no_cursor_yet() {
        let after_full_refresh = crate::model::final_full_refresh_state();
        let cursors = PartitionCursors::read("media", "timestamp", Some(&after_full_refresh)).expect("readable");
        assert_eq!(cursors.get("1"), None);
        assert_eq!(cursors.to_state(0)["states"], json!([]));
    }

    #[test]
    fn future_cursors_are_moved_back_with_a_warning() {
        let state = json!({"1": {"date": "9999-12-31T00:00:00+00:00"}, "2": {"date": "2025-01-01T00:00:00+00:00"}});
        let mut cursors = PartitionCursors::from_state(Some(&state)).expect("valid");
        let latest = parse_cursor("2026-11-27T00:00:00+00:00").expect("date");
        let warnings = cursors.clamp_to(latest);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("account 1 is in the future (9999-12-31"), "{}", warnings[0]);
        assert_eq!(cursors.get("1"), Some(latest));
        assert_eq!(cursors.get("2"), parse_cursor("2025-01-01T00:00:00+00:00"));
    }

    #[test]
    fn cursors_only_move_forward() {
        let mut cursors = PartitionCursors::default();
        let early = parse_cursor("2025-01-01T00:00:00+00:00").expect("date");
        let late = parse_cursor("2025-01-02T00:00:00+00:00").expect("date");
        cursors.advance("a", late);
        cursors.advance("a", early);
        assert_eq!(cursors.get("a"), Some(late));
    }
}
