//! Property tests: the parsers of everything a user or an API hands in (config, configured
//! catalog, state, Graph answers, command lines) return a value or a clear `Failure` for any
//! input, and never panic.

use crate::catalog::parse_configured;
use crate::command_line::Invocation;
use crate::config::Config;
use crate::graph::Edge;
use crate::http::shape::{Answer, Shape};
use crate::state::{InputState, PartitionCursors};
use crate::streams::comments::Comment;
use crate::transform::{Insights, RawRecord, Record, flatten_insights};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, nested a few levels, with the keys these parsers look for mixed in.
fn json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("access_token".to_owned()),
        Just("base_url".to_owned()),
        Just("num_workers".to_owned()),
        Just("start_date".to_owned()),
        Just("streams".to_owned()),
        Just("stream".to_owned()),
        Just("name".to_owned()),
        Just("sync_mode".to_owned()),
        Just("states".to_owned()),
        Just("partition".to_owned()),
        Just("business_account_id".to_owned()),
        Just("cursor".to_owned()),
        Just("date".to_owned()),
        Just("data".to_owned()),
        Just("id".to_owned()),
        Just("paging".to_owned()),
        Just("type".to_owned()),
        Just("stream_state".to_owned()),
        Just("stream_descriptor".to_owned()),
        Just("values".to_owned()),
        Just("value".to_owned()),
        Just("next".to_owned()),
        Just("cursors".to_owned()),
        Just("after".to_owned()),
        Just("error".to_owned()),
        Just("replies".to_owned()),
        Just("from".to_owned()),
        "[a-z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("2025-06-28T07:00:00+00:00".to_owned()),
            Just("9999-12-31T00:00:00Z".to_owned()),
            Just("users".to_owned()),
            Just("incremental".to_owned()),
            Just("http://127.0.0.1:1/v23.0".to_owned()),
            ".{0,12}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A Graph page, well-formed or nearly: a `data` list of objects (any JSON as their `id`), maybe
/// `paging` and other fields.
fn page() -> impl Strategy<Value = Value> {
    let items = prop::collection::vec(json(), 0..4);
    let cursors = (json(), json()).prop_map(|(next, after)| json!({"next": next, "cursors": {"after": after}}));
    let paging = prop_oneof![json(), cursors, Just(json!({"next": "n", "cursors": {"after": "a"}}))];
    (items, paging, json(), any::<bool>()).prop_map(|(items, paging, extra, with_paging)| {
        let items: Vec<Value> = items
            .into_iter()
            .map(|item| match item {
                Value::Object(_) => item,
                id => json!({"id": id, "name": "reach", "values": [{"value": 1}], "text": "hi"}),
            })
            .collect();
        let mut body = json!({"data": items});
        if with_paging {
            body["paging"] = paging;
        }
        if let (Value::Object(extra), Value::Object(page)) = (extra, &mut body) {
            page.extend(extra.into_iter().filter(|(k, _)| k != "data"));
        }
        body
    })
}

/// The `Value` reading of a page's next cursor (how it was read before typed pages).
fn next_cursor_of(body: &Value) -> Option<String> {
    let paging = body.get("paging")?;
    paging.get("next")?;
    let after = paging.get("cursors")?.get("after")?.as_str()?;
    (!after.is_empty()).then(|| after.to_owned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// A typed answer is only taken when the checked `Value` path would have taken the body too,
    /// and then it reads the same data (everything else goes down the `Value` path).
    #[test]
    fn typed_answers_agree_with_the_checked_json(body in prop_oneof![page(), json()]) {
        let text = body.to_string();
        // Both paths read the same text (a float may not survive a round trip exactly).
        let body: Value = serde_json::from_str(&text).expect("json");
        let accepted = |shape: Shape| body.get("error").is_none() && shape.check(&body).is_ok();
        if let Some(edge) = <Edge<Value> as Answer>::parse(text.as_bytes()) {
            prop_assert!(accepted(Shape::Records));
            prop_assert_eq!(edge.next_cursor(), next_cursor_of(&body));
            prop_assert_eq!(&Value::Array(edge.data), &body["data"]);
        }
        if let Some(edge) = <Edge<RawRecord> as Answer>::parse(text.as_bytes()) {
            prop_assert!(accepted(Shape::Records));
            let passed: Vec<Value> = edge.data.iter().map(|r| serde_json::to_value(r).expect("json")).collect();
            prop_assert_eq!(&Value::Array(passed), &body["data"]);
        }
        if <Edge<Comment> as Answer>::parse(text.as_bytes()).is_some() {
            prop_assert!(accepted(Shape::Records));
        }
        // And a page the `Value` path takes is never refused for its types (only its records'
        // own fields can be), with the same data and cursor.
        if accepted(Shape::Records) {
            let edge = <Edge<Value> as Answer>::from_checked(body.clone());
            prop_assert!(edge.as_ref().is_ok_and(|e| e.next_cursor() == next_cursor_of(&body) && Value::Array(e.data.clone()) == body["data"]));
            prop_assert!(<Edge<RawRecord> as Answer>::from_checked(body.clone()).is_ok());
        }
        if let Some(insights) = <Insights as Answer>::parse(text.as_bytes()) {
            prop_assert!(accepted(Shape::Metrics));
            let typed = serde_json::to_string(&insights.flatten()).expect("json");
            let checked = serde_json::to_string(&Record::from(flatten_insights(body.clone()))).expect("json");
            prop_assert_eq!(typed, checked);
        }
    }

    #[test]
    fn documents_never_panic(value in json(), text in ".{0,64}") {
        for input in [value.to_string(), text.clone(), format!("\u{feff}{value}")] {
            let _ = Config::parse(&input);
            let _ = parse_configured(&input);
            if let Ok(state) = InputState::parse(Some(&input)) {
                for stream_state in state.streams.values() {
                    let _ = PartitionCursors::from_state(Some(stream_state));
                }
            }
        }
        let _ = PartitionCursors::from_state(Some(&value));
    }

    #[test]
    fn graph_answers_never_panic(value in json()) {
        for shape in [Shape::Records, Shape::Metrics, Shape::Node, Shape::Any] {
            let _ = shape.check(&value);
        }
    }

    /// The string fast path of timestamp conversion gives exactly chrono's answer, in range or
    /// not, and any text at all never panics.
    #[test]
    fn timestamps_convert_like_chrono(
        fields in (0u32..10_000, 0u32..14, 0u32..33, 0u32..26, 0u32..62, 0u32..62, any::<bool>(), 0u32..26, 0u32..62),
        text in ".{0,30}",
    ) {
        let (y, mo, d, h, mi, s, east, oh, om) = fields;
        let sign = if east { '+' } else { '-' };
        let timestamp = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{sign}{oh:02}{om:02}");
        let chrono_form = |t: &str| chrono::DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%z")
            .ok()
            .map(|p| p.format("%Y-%m-%dT%H:%M:%S%:z").to_string());
        prop_assert_eq!(crate::transform::rfc3339(&timestamp), chrono_form(&timestamp));
        let _ = crate::transform::rfc3339(&text);
    }

    #[test]
    fn command_lines_never_panic(args in prop::collection::vec(prop_oneof![
        Just("read".to_owned()), Just("check".to_owned()), Just("--config".to_owned()), Just("--catalog".to_owned()),
        Just("--state".to_owned()), ".{0,8}"], 0..7)) {
        let _ = Invocation::parse(&args);
    }
}
