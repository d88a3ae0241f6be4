//! user_insights state: two-read incremental runs, legacy migration, future state, full refresh.

use e2e_tests::{Scratch, config_for, path_str, read_catalog};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

fn sandbox() -> (Sandbox, Model) {
    let model = Model::generate(&ModelSpec {
        accounts: 2,
        media_per_account: 0,
        stories_per_account: 0,
        ..ModelSpec::default()
    });
    (Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox"), model)
}

fn catalog(mode: &str) -> Value {
    json!({"streams": [{"stream": {"name": "user_insights", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
                        "sync_mode": mode, "destination_sync_mode": "append", "cursor_field": ["date"]}]})
}

fn dates(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["date"].as_str().unwrap_or("").to_owned()).collect()
}

#[test]
fn a_second_read_returns_only_records_at_or_after_the_state() {
    second_read(true);
}

#[test]
fn a_second_read_with_one_day_windows_skips_the_future_window_like_the_reference() {
    second_read(false);
}

fn second_read(date_ranges: bool) {
    let (sandbox, model) = sandbox();
    let mut config = config_for(&sandbox);
    config["user_insights_date_ranges"] = json!(date_ranges);
    let scratch = Scratch::new("incremental");
    let state_file = scratch.path().join("state.json");
    let state_arg = path_str(&state_file).to_owned();
    let args = ["--state", state_arg.as_str(), "--state-file", state_arg.as_str()];
    let first = read_catalog(&scratch, &config, &catalog("incremental"), &args);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.records("user_insights").len(), 62);
    let persisted: Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).expect("state file")).expect("json");
    let stream_state = &persisted[0]["stream"]["stream_state"];
    assert_eq!(stream_state, &first.last_state("user_insights").expect("state"), "the file holds the last state");
    let cursors: Vec<String> = stream_state["states"]
        .as_array()
        .expect("states")
        .iter()
        .map(|s| s["cursor"]["date"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(cursors.len(), 2);

    let second = read_catalog(&scratch, &config, &catalog("incremental"), &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let records = second.records("user_insights");
    for (record, (_, user)) in records.iter().zip(model.users()) {
        let cursor = stream_state["states"]
            .as_array()
            .expect("states")
            .iter()
            .find(|s| s["partition"]["business_account_id"] == user.id)
            .expect("partition")["cursor"]["date"]
            .clone();
        assert!(record["date"].as_str() >= cursor.as_str(), "{} < {cursor}", record["date"]);
    }
    assert_eq!(records.len(), 2, "only the cursor day is read again (one-day lookback)");
    let skipped = second.logs().iter().any(|l| l.contains("Skipping time window with future 'since' date"));
    assert_eq!(skipped, !date_ranges, "one-day windows reach into the future and are skipped");
    assert_eq!(
        second.last_state("user_insights").expect("state")["states"],
        stream_state["states"],
        "nothing new: cursors unchanged"
    );
}

#[test]
fn a_legacy_state_is_migrated_and_read_from() {
    let (sandbox, model) = sandbox();
    let scratch = Scratch::new("legacy");
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%dT07:00:00Z").to_string();
    let legacy: serde_json::Map<String, Value> =
        model.users().map(|(_, u)| (u.id.clone(), json!({"date": yesterday}))).collect();
    let state = scratch.write("state.json", &json!({"user_insights": legacy}).to_string());
    let out = read_catalog(&scratch, &config_for(&sandbox), &catalog("incremental"), &["--state", path_str(&state)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let records = out.records("user_insights");
    assert!(!records.is_empty() && records.len() <= 6, "{}", records.len());
    let floor = yesterday.replace('Z', "+00:00");
    assert!(dates(&records).iter().all(|d| *d >= floor), "{:?}", dates(&records));
    let state = out.last_state("user_insights").expect("state");
    assert_eq!(state["states"].as_array().map(Vec::len), Some(2));
    assert_eq!(state["use_global_cursor"], false);
}

#[test]
fn a_future_state_yields_no_records_and_full_refresh_ignores_state() {
    let (sandbox, model) = sandbox();
    let scratch = Scratch::new("future");
    let states: Vec<Value> = model
        .users()
        .map(|(_, u)| json!({"partition": {"business_account_id": u.id}, "cursor": {"date": "2031-01-01T00:00:00+00:00"}}))
        .collect();
    let state = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "user_insights"}, "stream_state": {"states": states}}}]);
    let state = scratch.write("state.json", &state.to_string());
    let out = read_catalog(&scratch, &config_for(&sandbox), &catalog("incremental"), &["--state", path_str(&state)]);
    assert_eq!(out.code, 0);
    assert!(out.records("user_insights").is_empty());
    // The future cursor is not written back (the stream would be stuck until 2031): it is moved
    // back to tomorrow, with a warning per account.
    let written = out.last_state("user_insights").expect("state")["states"][0]["cursor"]["date"].clone();
    let written = chrono::DateTime::parse_from_rfc3339(written.as_str().expect("date")).expect("rfc3339");
    let tomorrow = chrono::Utc::now() + chrono::Duration::days(1);
    assert!((written.timestamp() - tomorrow.timestamp()).abs() < 120, "{written}");
    let warnings = out.logs().into_iter().filter(|l| l.contains("is in the future (2031-01-01")).count();
    assert_eq!(warnings, model.users().count());

    let out = read_catalog(&scratch, &config_for(&sandbox), &catalog("full_refresh"), &["--state", path_str(&state)]);
    assert_eq!(out.code, 0);
    assert_eq!(out.records("user_insights").len(), 62, "full refresh starts over");
}

#[test]
fn an_unreadable_state_is_a_config_error() {
    let (sandbox, _) = sandbox();
    let scratch = Scratch::new("bad-state");
    for state in [
        "{nope",
        r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"user_insights"},"stream_state":{"states":[{"partition":{"business_account_id":"1"},"cursor":{"date":"someday"}}]}}}]"#,
    ] {
        let path = scratch.write("state.json", state);
        let out = read_catalog(&scratch, &config_for(&sandbox), &catalog("incremental"), &["--state", path_str(&path)]);
        assert_eq!(out.code, 1);
        assert!(out.errors().iter().all(|e| e["failure_type"] == "config_error"), "{:?}", out.errors());
    }
}
