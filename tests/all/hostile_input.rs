//! One test per defect the 319-case hostile-input report found (issue 10), each against the real
//! CLI and sandbox; `corpus.rs` covers the same ground by the hundred.

use e2e_tests::{Scratch, catalog_of, config_for, path_str, read, read_catalog, run_cli, run_cli_raw, run_json_lines};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{BrokenAnswer, CursorCycle, Sandbox, SandboxOptions};
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn sandbox_with(media: usize, change: impl FnOnce(&mut SandboxOptions)) -> Sandbox {
    let model = Model::generate(&ModelSpec { accounts: 1, media_per_account: media, ..ModelSpec::default() });
    let mut options = SandboxOptions::new(model);
    change(&mut options);
    Sandbox::start(options).expect("sandbox")
}

/// Issue item 1: A cursor cycle (`A → B → A`) or a repeat (`A → A`) ends the walk with a system_error
/// naming the cycle, after the records of the pages already read.
#[test]
fn a_cursor_cycle_ends_the_stream_with_a_clear_error() {
    for (cycle, pages_read) in [(CursorCycle::Loop, 3), (CursorCycle::BackToBack, 2)] {
        let sandbox = sandbox_with(800, |o| o.cursor_cycle = Some(cycle));
        let scratch = Scratch::new("cycle");
        let started = Instant::now();
        let out = read(&scratch, &config_for(&sandbox), &["media"]);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert_eq!(out.code, 1, "{cycle:?}");
        let errors = out.errors();
        assert_eq!(errors[0]["failure_type"], "system_error");
        assert!(errors[0]["message"].as_str().expect("m").contains("cycle forever"), "{errors:?}");
        assert_eq!(errors.last().expect("summary")["failure_type"], "system_error");
        assert_eq!(out.records("media").len(), pages_read * 100, "{cycle:?}: the pages before the cycle are kept");
    }
}

/// Issue item 2: Broken 200 answers are errors, and `check` fails on `{}`.
#[test]
fn broken_success_answers_fail_with_the_endpoint_named() {
    let sandbox =
        sandbox_with(4, |o| o.broken = Some(BrokenAnswer { path_suffix: "/me/accounts".into(), body: "{}".into() }));
    let scratch = Scratch::new("broken");
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let check = run_cli(&["check", "--config", path_str(&config)]);
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .expect("m")
            .contains("GET /me/accounts with a body this connector cannot use: the body has no `data` list")
    );
    let out = read(&scratch, &config_for(&sandbox), &["users"]);
    assert_eq!((out.code, out.errors()[0]["failure_type"].as_str()), (1, Some("system_error")));
}

/// Issue item 3 and 4: A huge or multi-line token and a huge base_url are config errors at once: no trap,
/// no retries.
#[test]
fn tokens_and_urls_that_can_never_be_sent_are_config_errors_at_once() {
    let sandbox = sandbox_with(1, |_| {});
    let scratch = Scratch::new("unsendable");
    let base = sandbox.base_url();
    for config in [
        json!({"access_token": "a".repeat(1 << 20), "base_url": base}),
        json!({"access_token": "sandbox-token\r\nX: y", "base_url": base}),
        json!({"access_token": "sandbox\u{0}token", "base_url": base}),
        json!({"access_token": "t", "base_url": format!("{base}/{}", "p".repeat(100_000))}),
    ] {
        let started = Instant::now();
        let out = read(&scratch, &config, &["users"]);
        assert!(started.elapsed() < Duration::from_secs(5), "no retries");
        assert_eq!(out.code, 1);
        assert_eq!(out.errors()[0]["failure_type"], "config_error");
        assert!(!out.stderr.contains("wasm backtrace") && !out.stdout.contains("wasm function"), "{}", out.stderr);
    }
}

/// Issue item 5: State and output files: a state file that cannot be written fails before the sync, the
/// state file cannot be silently ignored beside --output, and resuming into an output directory
/// keeps the records an earlier run wrote.
#[test]
fn state_files_and_output_directories_never_lose_or_ignore_data() {
    let sandbox = sandbox_with(4, |_| {});
    let scratch = Scratch::new("files");
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_of(&["users", "user_insights"]).to_string());
    let base = ["read", "--config", path_str(&config), "--catalog", path_str(&catalog)];
    let missing = scratch.path().join("no/such/dir/state.json");
    let out = run_cli(&[&base[..], &["--state-file", path_str(&missing)]].concat());
    assert_eq!(out.code, 1);
    assert_eq!(out.errors()[0]["failure_type"], "config_error");
    assert!(out.of_type("RECORD").is_empty(), "refused before the sync");

    let dir = scratch.path().join("out");
    let state = scratch.path().join("state.json");
    let out = run_cli(&[&base[..], &["--output", path_str(&dir), "--state-file", path_str(&state)]].concat());
    assert_eq!(out.code, 1);
    assert!(out.errors()[0]["message"].as_str().expect("m").contains("drop --state-file"));

    let dir_state = dir.join("state.json");
    let resume = [&base[..], &["--output", path_str(&dir), "--state", path_str(&dir_state)]].concat();
    assert_eq!(run_cli(&resume).code, 0);
    let first = std::fs::read_to_string(dir.join("user_insights.jsonl")).expect("records");
    assert_eq!(run_cli(&resume).code, 0);
    let after = std::fs::read_to_string(dir.join("user_insights.jsonl")).expect("records");
    assert!(after.starts_with(&first) && after.len() > first.len(), "the resumed run appended");
}

/// Issue item 6: The closing summary carries the failed streams' type, and run-many's detail says why.
#[test]
fn the_summary_agrees_with_the_streams_and_run_many_gives_the_cause() {
    let sandbox =
        sandbox_with(4, |o| o.broken = Some(BrokenAnswer { path_suffix: "/media".into(), body: "[1,2,3]".into() }));
    let scratch = Scratch::new("summary");
    let out = read(&scratch, &config_for(&sandbox), &["media", "users"]);
    let types: Vec<&str> = out.errors().iter().filter_map(|e| e["failure_type"].as_str()).collect();
    assert_eq!(types, ["system_error", "system_error"]);

    let jobs = json!({"jobs": [{"name": "broken", "config": config_for(&sandbox), "catalog": catalog_of(&["media"]),
        "output": "out", "allow_hosts": [format!("http://{}", sandbox.addr())]}]});
    let path = scratch.write("jobs.json", &jobs.to_string());
    let summary = run_json_lines(&["run-many", path_str(&path)]).messages;
    let detail = summary[0]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("media: The Graph API answered GET") && detail.contains("a list instead of a JSON object"),
        "{detail}"
    );
}

/// Issue item 7: A server that drips one byte a second is cut off by the per-request deadline.
#[test]
fn a_dripping_body_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8).flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
                for _ in 0..60 {
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            });
        }
    });
    let scratch = Scratch::new("drip");
    let config = json!({"access_token": "t", "base_url": format!("http://127.0.0.1:{port}/v23.0")});
    let config = scratch.write("config.json", &config.to_string());
    let started = Instant::now();
    let out = run_cli_raw(&[
        "check",
        "--config",
        path_str(&config),
        "--allow-host",
        &format!("http://127.0.0.1:{port}"),
        "--request-timeout-secs",
        "2",
    ]);
    assert!(started.elapsed() < Duration::from_secs(25), "{:?}", started.elapsed());
    let status = &out.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(status["message"].as_str().expect("m").contains("timed out"), "{status}");
}

/// Issue item 8: Cursor and start-date rules: a future start date is refused; non-date cursors are refused
/// like "yesterday" (a future cursor is moved back: `incremental.rs`).
#[test]
fn odd_cursors_and_start_dates_follow_one_rule() {
    let sandbox = sandbox_with(1, |_| {});
    let scratch = Scratch::new("cursors");
    let mut config = config_for(&sandbox);
    config["start_date"] = json!("2030-01-01T00:00:00Z");
    let out = read(&scratch, &config, &["user_insights"]);
    assert_eq!((out.code, out.errors()[0]["failure_type"].as_str()), (1, Some("config_error")));
    assert!(out.errors()[0]["message"].as_str().expect("m").contains("in the future"));
    let catalog = json!({"streams": [{"stream": {"name": "user_insights"}, "sync_mode": "incremental"}]});
    for stream_state in [json!(-5), json!(1_719_000_000), json!({"cursor": 7}), json!("yesterday")] {
        let state = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "user_insights"}, "stream_state": stream_state}}]);
        let path = scratch.write("state.json", &state.to_string());
        let out = read_catalog(&scratch, &config_for(&sandbox), &catalog, &["--state", path_str(&path)]);
        assert_eq!((out.code, out.errors()[0]["failure_type"].as_str()), (1, Some("config_error")), "{stream_state}");
    }
}

/// Issue item 9: Messages are words, not Rust debug output; odd config values are named as given.
#[test]
fn users_see_words_not_internal_text() {
    let scratch = Scratch::new("words");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let config = json!({"access_token": "t", "base_url": format!("http://127.0.0.1:{closed}/v23.0")});
    let path = scratch.write("config.json", &config.to_string());
    let out =
        run_cli_raw(&["check", "--config", path_str(&path), "--allow-host", &format!("http://127.0.0.1:{closed}")]);
    let message = out.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["message"].as_str().expect("m").to_owned();
    assert!(message.contains("the connection was refused"), "{message}");
    assert!(!message.contains("ErrorCode") && !message.contains("Some("), "{message}");

    for (config, needle) in [
        (json!({"access_token": "t", "num_workers": 9_223_372_036_854_775_807_i64}), "is 9223372036854775807"),
        (json!({"access_token": "t", "base_url": null}), "remove it to use https://graph.facebook.com"),
        (json!({"access_token": "t", "base_url": ""}), "remove it to use https://graph.facebook.com"),
    ] {
        let path = scratch.write("config.json", &config.to_string());
        let out = run_cli_raw(&["check", "--config", path_str(&path)]);
        let message = out.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["message"].clone();
        assert!(message.as_str().expect("m").contains(needle), "{message}");
    }
    let path = scratch.write("config.json", &format!("\u{feff}{}", json!({"access_token": "t"})));
    let out = run_cli_raw(&["discover", "--config", path_str(&path)]);
    assert_eq!(out.code, 0, "a byte-order mark is not an error");
    let out = run_cli_raw(&["check", "--config", path_str(&path), "--allow-host", "*"]);
    assert_eq!(out.code, 1);
    assert!(out.errors()[0]["message"].as_str().expect("m").contains("no wildcards"));
}

/// Record and replay: a sandbox sync recorded, the sandbox stopped, and the replay (no network)
/// gives the same records; the cassette holds no secret.
#[test]
fn a_recorded_sync_replays_without_the_network_and_the_cassette_holds_no_secret() {
    let secret = "EAAB-cassette-secret-91c2";
    let model = Model::generate(&ModelSpec { accounts: 2, media_per_account: 6, ..ModelSpec::default() });
    let sandbox =
        Sandbox::start(SandboxOptions { token: secret.into(), ..SandboxOptions::new(model) }).expect("sandbox");
    let scratch = Scratch::new("cassette");
    let mut config = config_for(&sandbox);
    config["client_secret"] = json!("cs-cassette-secret-55");
    let cassette = scratch.path().join("cassette.json");
    let recorded = read_catalog(&scratch, &config, &e2e_tests::catalog_all(), &["--record", path_str(&cassette)]);
    assert_eq!(recorded.code, 0, "{:?}", recorded.errors());
    let origin = format!("http://{}", sandbox.addr());
    drop(sandbox);

    let text = std::fs::read_to_string(&cassette).expect("cassette");
    assert!(!text.contains(secret) && !text.contains("cs-cassette-secret-55"), "no secret in the cassette");
    assert!(text.contains("REDACTED"), "the Authorization header is kept, redacted");

    let config_path = scratch.write("config.json", &config.to_string());
    let catalog_path = scratch.write("catalog.json", &e2e_tests::catalog_all().to_string());
    let replayed = run_cli_raw(&[
        "read",
        "--config",
        path_str(&config_path),
        "--catalog",
        path_str(&catalog_path),
        "--replay",
        path_str(&cassette),
        "--allow-host",
        &origin,
    ]);
    assert_eq!(replayed.code, 0, "{:?}", replayed.errors());
    assert_eq!(replayed.record_set(), recorded.record_set());
}
