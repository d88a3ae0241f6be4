//! `spec`, `discover`, `check` and bad input, through the CLI.

use e2e_tests::{Scratch, graph_path, path_str, run_cli, sample};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default()))).expect("sandbox")
}

#[test]
fn spec_prints_one_spec_message_matching_the_reference() {
    let out = run_cli(&["spec"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.messages.len(), 1, "{}", out.stdout);
    let spec = &out.messages[0]["spec"];
    assert_eq!(out.messages[0]["type"], "SPEC");
    let reference = sample("spec.json");
    assert_eq!(spec["documentationUrl"], reference["documentationUrl"]);
    assert_eq!(spec["advanced_auth"], reference["advanced_auth"]);
    let connection = &spec["connectionSpecification"];
    assert_eq!(connection["title"], "Source Instagram");
    assert_eq!(connection["required"], json!(["access_token"]));
    for (name, property) in reference["connectionSpecification"]["properties"].as_object().expect("properties") {
        let ours = &connection["properties"][name];
        for key in ["type", "airbyte_secret", "pattern", "format", "title"] {
            assert_eq!(ours[key], property[key], "property {name}.{key}");
        }
    }
    let workers = &connection["properties"]["num_workers"];
    assert_eq!(
        (workers["minimum"].as_u64(), workers["maximum"].as_u64(), workers["default"].as_u64()),
        (Some(2), Some(40), Some(15))
    );
    assert_eq!(connection["properties"]["base_url"]["default"], "https://graph.facebook.com");
    assert_eq!(connection["properties"]["api_version"]["default"], instagram_connector::model::API_VERSION);
}

#[test]
fn discover_lists_the_reference_streams_comments_and_daily_totals_with_keys_and_cursors() {
    let scratch = Scratch::new("discover");
    let config = scratch.write("config.json", r#"{"access_token":"t"}"#);
    let out = run_cli(&["discover", "--config", path_str(&config)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let catalog = &out.of_type("CATALOG")[0]["catalog"];
    let streams = catalog["streams"].as_array().expect("streams");
    let both: &[&str] = &["full_refresh", "incremental"];
    let expected: [(&str, Value, &[&str]); 10] = [
        ("media", json!([["id"]]), both),
        ("media_insights", json!([["id"]]), both),
        ("users", json!([["id"]]), &["full_refresh"]),
        ("user_lifetime_insights", json!([["business_account_id"], ["breakdown"]]), &["full_refresh"]),
        ("stories", json!([["id"]]), &["full_refresh"]),
        ("story_insights", Value::Null, &["full_refresh"]),
        ("Api", json!([["id"]]), &["full_refresh"]),
        ("user_insights", json!([["business_account_id"], ["date"]]), both),
        ("comments", json!([["id"]]), both),
        ("user_daily_totals", json!([["business_account_id"], ["date"]]), both),
    ];
    assert_eq!(streams.len(), expected.len());
    for (stream, (name, primary_key, modes)) in streams.iter().zip(expected) {
        assert_eq!(stream["name"], name);
        assert_eq!(stream["source_defined_primary_key"], primary_key, "{name}");
        assert_eq!(stream["supported_sync_modes"], json!(modes), "{name}");
        let cursor = match name {
            "user_insights" | "user_daily_totals" => json!(["date"]),
            "media" | "media_insights" | "comments" => json!(["timestamp"]),
            _ => Value::Null,
        };
        assert_eq!(stream["default_cursor_field"], cursor, "{name}");
    }
    // Schemas: the reference catalog's, with the updates of `docs/source-instagram.md` §6 and §8.2.
    let reference = sample("discovered_catalog.json");
    // `comments` and `user_daily_totals` are this connector's own streams (the reference has none).
    for stream in streams.iter().filter(|s| s["name"] != "comments" && s["name"] != "user_daily_totals") {
        let name = stream["name"].as_str().expect("name");
        let theirs =
            reference["streams"].as_array().expect("streams").iter().find(|s| s["name"] == name).expect("stream");
        let mut ours: Vec<&String> = stream["json_schema"]["properties"].as_object().expect("props").keys().collect();
        let mut want: Vec<&String> = theirs["json_schema"]["properties"].as_object().expect("props").keys().collect();
        ours.sort();
        want.sort();
        let (added, removed): (Vec<&str>, Vec<&str>) = match name {
            // December 2025's media metrics (`docs/graph-api.md`, "Insights").
            "media_insights" => (
                vec!["timestamp", "reposts", "reels_skip_rate", "crossposted_views", "facebook_views"],
                vec!["video_views"],
            ),
            "user_insights" => (
                vec![],
                vec![
                    "email_contacts",
                    "get_directions_clicks",
                    "phone_call_clicks",
                    "profile_views",
                    "text_message_clicks",
                    "website_clicks",
                ],
            ),
            _ => (vec![], vec![]),
        };
        want.retain(|k| !removed.contains(&k.as_str()));
        ours.retain(|k| !added.contains(&k.as_str()));
        assert_eq!(ours, want, "{name} properties");
    }
}

#[test]
fn check_succeeds_against_the_sandbox() {
    let sandbox = sandbox();
    let scratch = Scratch::new("check-ok");
    let config = scratch.write("config.json", &e2e_tests::config_for(&sandbox).to_string());
    let out = run_cli(&["check", "--config", path_str(&config)]);
    assert_eq!(out.code, 0);
    assert_eq!(out.of_type("CONNECTION_STATUS")[0]["connectionStatus"], json!({"status": "SUCCEEDED"}));
    let accounts_calls = sandbox.requests().iter().filter(|r| r.path == graph_path("/me/accounts")).count();
    assert_eq!(accounts_calls, 1, "check reads the first page of Api only");
}

#[test]
fn check_with_a_wrong_token_fails_naming_the_code_190_cause() {
    let sandbox = sandbox();
    let scratch = Scratch::new("check-bad");
    let token = "EAAB-wrong-token-0123456789";
    let config = scratch.write(
        "config.json",
        &json!({"access_token": token, "base_url": sandbox.base_url(), "client_secret": "shh-client-secret"})
            .to_string(),
    );
    let out = run_cli(&["check", "--config", path_str(&config)]);
    assert_eq!(out.code, 0, "a FAILED check still exits 0");
    let status = &out.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    let message = status["message"].as_str().expect("message");
    assert!(message.contains("190"), "{message}");
    assert!(message.contains("Re-authenticate"), "{message}");
    assert_eq!(sandbox.requests().len(), 1, "an invalid token is not retried");
    for secret in [token, "shh-client-secret"] {
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "secret leaked");
    }
}

#[test]
fn check_with_an_invalid_config_fails_with_a_clear_message() {
    let scratch = Scratch::new("check-invalid");
    let config = scratch.write("config.json", r#"{"access_token":"t","num_workers":99}"#);
    let out = run_cli(&["check", "--config", path_str(&config)]);
    assert_eq!(out.code, 0);
    let status = &out.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(status["message"].as_str().expect("message").contains("num_workers"));
}

#[test]
fn bad_files_and_catalogs_are_config_errors_with_exit_1() {
    let scratch = Scratch::new("bad-input");
    let missing = scratch.path().join("nope.json");
    let out = run_cli(&["discover", "--config", path_str(&missing)]);
    assert_eq!(out.code, 1);
    assert_eq!(out.errors()[0]["failure_type"], "config_error");

    let config = scratch.write("config.json", r#"{"access_token":"t","base_url":"http://127.0.0.1:9/v23.0"}"#);
    for (catalog, needle) in [("{not json", "not valid JSON"), (r#"{"streams":3}"#, "streams")] {
        let catalog = scratch.write("catalog.json", catalog);
        let out = run_cli(&["read", "--config", path_str(&config), "--catalog", path_str(&catalog)]);
        assert_eq!(out.code, 1);
        let error = out.errors()[0];
        assert_eq!(error["failure_type"], "config_error");
        assert!(error["message"].as_str().expect("message").contains(needle), "{error}");
    }

    let out = run_cli(&["read", "--config", path_str(&config)]);
    assert_eq!(out.code, 1, "missing --catalog is a usage error");
    assert!(out.messages.is_empty(), "usage errors go to stderr");
}

/// A person at a terminal sees live per-stream progress and a summary on stderr; a pipe sees
/// nothing extra, and stdout is protocol-only either way.
#[test]
fn progress_is_shown_only_when_stderr_is_a_terminal() {
    let sandbox = sandbox();
    let scratch = Scratch::new("progress");
    let config = e2e_tests::config_for(&sandbox);
    let piped = e2e_tests::read(&scratch, &config, &["users", "media"]);
    assert_eq!(piped.code, 0);
    assert_eq!(piped.stderr, "", "nothing on a non-terminal stderr");

    // `script` runs the same read on a pseudo-terminal, stdout redirected to a file.
    let origin = format!("http://127.0.0.1:{}", sandbox.addr().port());
    let stdout = scratch.path().join("stdout.jsonl");
    let command = format!(
        "'{}' '{}' read --config '{}' --catalog '{}' --allow-host {origin} > '{}'",
        e2e_tests::host_binary().display(),
        e2e_tests::component().display(),
        scratch.path().join("config.json").display(),
        scratch.path().join("catalog.json").display(),
        stdout.display()
    );
    let terminal = std::process::Command::new("script").args(["-qec", &command, "/dev/null"]).output().expect("script");
    assert!(terminal.status.success());
    let screen = String::from_utf8_lossy(&terminal.stdout);
    assert!(screen.contains("requests in"), "{screen}");
    let summary_row = |l: &str| l.split_whitespace().collect::<Vec<_>>().ends_with(&["media", "36", "COMPLETE"]);
    assert!(screen.lines().any(summary_row), "{screen}");
    let lines = std::fs::read_to_string(&stdout).expect("stdout file");
    let records =
        lines.lines().map(|l| serde_json::from_str::<Value>(l).expect("JSON line")).filter(|m| m["type"] == "RECORD");
    assert_eq!(records.count(), 39);
}
