//! Property tests: the parsers of everything a user or an API hands in (config, configured
//! catalog, state, Graph answers, command lines) return a value or a clear `Failure` for any
//! input, and never panic; a Graph answer they refuse is named in words, never quoted.

use crate::catalog::parse_configured;
use crate::command_line::Invocation;
use crate::config::Config;
use crate::graph::{Edge, Metrics};
use crate::http::answer::{self, Answered};
use crate::http::batch::Answers;
use crate::record::{Entry, Node, RawRecord};
use crate::state::{InputState, PartitionCursors};
use crate::streams::comments::Comment;
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// Any JSON value, nested a few levels, with the keys these parsers look for mixed in.
fn json() -> impl Strategy<Value = Value> {
    const KEYS: &str = "access_token base_url num_workers start_date streams stream name sync_mode states \
        partition business_account_id cursor date data id paging type stream_state stream_descriptor values value \
        next cursors after error replies from";
    let keys: Vec<&str> = KEYS.split_whitespace().collect();
    let key = prop_oneof![prop::sample::select(keys).prop_map(str::to_owned), "[a-z_]{0,8}"];
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
            ".{0,12}".prop_map(|text| format!("{text}{MARKER}"))
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

/// A refusal worth showing a user: a sentence about the body or one of its parts, with no
/// value of the body in it (the property test's bodies carry this marker in every string).
fn assert_clear<T: DeserializeOwned>(text: &str) -> Result<(), TestCaseError> {
    match answer::read::<T>(text.as_bytes()) {
        Ok(Answered::Value(_) | Answered::Error(_)) => {}
        Err(what) => {
            prop_assert!(
                what.starts_with("the body ") || what.starts_with("the object ") || what.starts_with('`'),
                "{}",
                what
            );
            prop_assert!(!what.contains(MARKER), "a refusal quotes the body: {}", what);
            prop_assert!(!what.contains("line ") && !what.contains("expected"), "serde's own words: {}", what);
        }
    }
    Ok(())
}

/// In every generated string, so that a message quoting the body would show it.
const MARKER: &str = "QUOTED";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// Every answer type, on pages that are nearly right and on any JSON: read, or refused in
    /// clear words; never a panic, never a quote of the body.
    #[test]
    fn every_answer_is_read_or_refused_in_words(body in prop_oneof![page(), json()]) {
        let text = body.to_string();
        assert_clear::<Edge<Node>>(&text)?;
        assert_clear::<Edge<Comment>>(&text)?;
        assert_clear::<Edge<Entry>>(&text)?;
        assert_clear::<Metrics>(&text)?;
        assert_clear::<Node>(&text)?;
        assert_clear::<crate::http::answer::Object<Comment>>(&text)?;
        assert_clear::<Answers>(&text)?;
        assert_clear::<RawRecord>(&text)?;
        // A cut body (mid-character too) is not JSON, whatever its type.
        let cut = &text.as_bytes()[..text.len() / 2];
        if serde_json::from_slice::<serde::de::IgnoredAny>(cut).is_err() {
            let refused = answer::read::<Edge<Node>>(cut).err();
            prop_assert_eq!(refused.as_deref(), Some("the body is not JSON"));
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
        prop_assert_eq!(crate::record::rfc3339(&timestamp), chrono_form(&timestamp));
        let _ = crate::record::rfc3339(&text);
    }

    #[test]
    fn command_lines_never_panic(args in prop::collection::vec(prop_oneof![
        Just("read".to_owned()), Just("check".to_owned()), Just("--config".to_owned()), Just("--catalog".to_owned()),
        Just("--state".to_owned()), ".{0,8}"], 0..7)) {
        let _ = Invocation::parse(&args);
    }
}
