//! The bad-input corpus: generated configs, catalogs, states and broken Graph answers (the
//! sandbox's broken answers mode), each run through the real CLI with a 60 s cap. Every case must
//! end with the expected exit code, stdout of JSON lines only, errors of exactly one expected
//! `failure_type` (the closing summary agreeing with the streams), no trap or Rust debug text, and
//! no secret anywhere. Prints the tally.

use e2e_tests::{ALL_STREAMS, Scratch, catalog_all, catalog_of, component, host_binary, keep_transcript, path_str};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{BrokenAnswer, Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOKEN: &str = "EAAB-corpus-secret-7f3a";
const CAP: Duration = Duration::from_secs(60);

/// What a case must end with: exit code, and the failure type of every error (None: no error).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Expect(i32, Option<&'static str>);
const OK: Expect = Expect(0, None);
const CONFIG: Expect = Expect(1, Some("config_error"));
const SYSTEM: Expect = Expect(1, Some("system_error"));
/// `check` answers FAILED with exit 0, without a TRACE ERROR.
const CHECK_FAILED: Expect = Expect(0, Some("FAILED"));

struct Case {
    name: String,
    verb: &'static str,
    config: String,
    catalog: String,
    state: Option<String>,
    expect: Expect,
    sandbox: usize,
}

#[derive(Default)]
struct Tally {
    cases: usize,
    clear: usize,
    wrong: Vec<String>,
    hangs: usize,
    traps: usize,
    leaks: usize,
}

fn config_with(base_url: &str, field: &str, value: Value) -> String {
    let mut config = json!({"access_token": TOKEN, "base_url": base_url, "num_workers": 4});
    if value.is_null() && field == "-" {
        return config.to_string();
    }
    config[field] = value;
    config.to_string()
}

fn bad_configs(base_url: &str) -> Vec<(String, String, Expect)> {
    let mut cases: Vec<(String, String, Expect)> = vec![
        ("empty text".into(), String::new(), CONFIG),
        ("truncated".into(), "{\"access_token\":".into(), CONFIG),
        ("array".into(), "[]".into(), CONFIG),
        ("number".into(), "42".into(), CONFIG),
        ("string".into(), "\"config\"".into(), CONFIG),
        ("null".into(), "null".into(), CONFIG),
        ("no token".into(), json!({"base_url": base_url}).to_string(), CONFIG),
        ("byte-order mark".into(), format!("\u{feff}{}", config_with(base_url, "-", Value::Null)), OK),
    ];
    let token_values = [
        json!(null),
        json!(""),
        json!("   "),
        json!(7),
        json!(true),
        json!([]),
        json!({}),
        json!(format!("{TOKEN}\r\nX-Injected: 1")),
        json!(format!("{TOKEN}\u{0}")),
        json!(format!("{TOKEN} x")),
        json!("a".repeat(1 << 20)),
        json!("b".repeat(5000)),
        json!("tökén"),
    ];
    for value in token_values {
        let text = json!({"access_token": value, "base_url": base_url}).to_string();
        cases.push((format!("access_token {}", short(&value)), text, CONFIG));
    }
    let field_values: [(&str, Value, Expect); 30] = [
        ("start_date", json!("2024-01-01"), CONFIG),
        ("start_date", json!("yesterday"), CONFIG),
        ("start_date", json!(5), CONFIG),
        ("start_date", json!("2030-01-01T00:00:00Z"), CONFIG),
        ("start_date", json!("9999-12-31T00:00:00Z"), CONFIG),
        ("start_date", json!("2024-13-01T00:00:00Z"), CONFIG),
        ("start_date", json!(null), OK),
        ("num_workers", json!(0), CONFIG),
        ("num_workers", json!(1), CONFIG),
        ("num_workers", json!(41), CONFIG),
        ("num_workers", json!(-1), CONFIG),
        ("num_workers", json!(2.5), CONFIG),
        ("num_workers", json!("8"), CONFIG),
        ("num_workers", json!(9_223_372_036_854_775_807_i64), CONFIG),
        ("num_workers", json!(true), CONFIG),
        ("num_workers", json!(null), OK),
        ("base_url", json!(""), CONFIG),
        ("base_url", json!(null), CONFIG),
        ("base_url", json!("ftp://x/v23.0"), CONFIG),
        ("base_url", json!("nope"), CONFIG),
        ("base_url", json!("http://"), CONFIG),
        ("base_url", json!(format!("{base_url}?q=1")), CONFIG),
        ("base_url", json!(format!("https://x/{}", "p".repeat(100_000))), CONFIG),
        ("base_url", json!(5), CONFIG),
        ("base_url", json!([base_url]), CONFIG),
        ("expand_carousel_children", json!("yes"), CONFIG),
        ("batch_insights_requests", json!(1), CONFIG),
        ("user_insights_date_ranges", json!(null), OK),
        ("client_secret", json!(5), CONFIG),
        ("unknown_field", json!({"nested": [1, 2]}), OK),
    ];
    for (field, value, expect) in field_values {
        cases.push((format!("{field} {}", short(&value)), config_with(base_url, field, value), expect));
    }
    cases
}

fn bad_catalogs() -> Vec<(String, String, Expect)> {
    let entry = |fields: Value| {
        let mut stream = json!({"stream": {"name": "users", "json_schema": {}, "supported_sync_modes": ["full_refresh"]}, "sync_mode": "full_refresh"});
        if let (Some(stream), Some(fields)) = (stream.as_object_mut(), fields.as_object()) {
            stream.extend(fields.clone());
        }
        json!({"streams": [stream]}).to_string()
    };
    let mut cases: Vec<(String, String, Expect)> = [
        ("empty", "", CONFIG),
        ("truncated", "{\"streams\":", CONFIG),
        ("array", "[]", CONFIG),
        ("object", "{}", CONFIG),
        ("streams null", r#"{"streams":null}"#, CONFIG),
        ("streams object", r#"{"streams":{}}"#, CONFIG),
        ("streams number", r#"{"streams":[1]}"#, CONFIG),
        ("stream without name", r#"{"streams":[{"stream":{}}]}"#, CONFIG),
        ("name null", r#"{"streams":[{"stream":{"name":null}}]}"#, CONFIG),
        ("name number", r#"{"streams":[{"stream":{"name":5}}]}"#, CONFIG),
        ("no streams", r#"{"streams":[]}"#, OK),
        ("unknown stream only", r#"{"streams":[{"stream":{"name":"nope"}}]}"#, CONFIG),
    ]
    .into_iter()
    .map(|(name, text, expect)| (name.to_owned(), text.to_owned(), expect))
    .collect();
    for (name, fields, expect) in [
        ("sync_mode sideways", json!({"sync_mode": "sideways"}), CONFIG),
        ("sync_mode number", json!({"sync_mode": 5}), CONFIG),
        ("sync_mode null", json!({"sync_mode": null}), OK),
        ("incremental on full refresh", json!({"sync_mode": "incremental"}), OK),
        ("destination_sync_mode odd", json!({"destination_sync_mode": "weird"}), OK),
        ("cursor_field odd", json!({"cursor_field": "date"}), OK),
        ("primary_key odd", json!({"primary_key": 7}), OK),
    ] {
        cases.push((name.to_owned(), entry(fields), expect));
    }
    cases.push((
        "duplicate stream".into(),
        json!({"streams": [catalog_of(&["users"])["streams"][0], catalog_of(&["users"])["streams"][0]]}).to_string(),
        CONFIG,
    ));
    cases.push(("unknown beside known".into(), catalog_of(&["users", "no_such_stream"]).to_string(), CONFIG));
    cases.push(("byte-order mark".into(), format!("\u{feff}{}", catalog_of(&["users"])), OK));
    cases
}

fn bad_states() -> Vec<(String, String, Expect)> {
    let stream_state = |state: Value| {
        json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "user_insights"}, "stream_state": state}}])
            .to_string()
    };
    let entry = |cursor: Value| json!({"states": [{"partition": {"business_account_id": "17841400000000001"}, "cursor": cursor}]});
    let mut cases: Vec<(String, String, Expect)> = [
        ("empty", "", OK),
        ("truncated", "[{", CONFIG),
        ("null", "null", OK),
        ("empty list", "[]", OK),
        ("list of number", "[1]", CONFIG),
        ("list of empty object", "[{}]", CONFIG),
        ("global state", r#"[{"type":"GLOBAL","global":{}}]"#, CONFIG),
        ("string", "\"state\"", CONFIG),
        ("number", "7", CONFIG),
        ("no descriptor", r#"[{"type":"STREAM","stream":{}}]"#, CONFIG),
    ]
    .into_iter()
    .map(|(name, text, expect)| (name.to_owned(), text.to_owned(), expect))
    .collect();
    for (name, state, expect) in [
        ("stream_state -5", json!(-5), CONFIG),
        ("stream_state epoch", json!(1_719_000_000), CONFIG),
        ("stream_state cursor object", json!({"cursor": 7}), CONFIG),
        ("stream_state yesterday", json!("yesterday"), CONFIG),
        ("stream_state list", json!([1]), CONFIG),
        ("states number", json!({"states": 5}), CONFIG),
        ("states without partition", json!({"states": [{"cursor": {"date": "2025-01-01T00:00:00+00:00"}}]}), CONFIG),
        ("cursor someday", entry(json!({"date": "someday"})), CONFIG),
        ("cursor epoch", entry(json!({"date": 1_719_000_000})), CONFIG),
        ("cursor missing", entry(json!({})), CONFIG),
        ("cursor 2030", entry(json!({"date": "2030-01-01T00:00:00+00:00"})), OK),
        ("cursor 9999", entry(json!({"date": "9999-12-31T00:00:00+00:00"})), OK),
        ("cursor Z form", entry(json!({"date": "2025-01-01T00:00:00Z"})), OK),
        ("legacy form", json!({"17841400000000001": {"date": "2025-01-01T00:00:00+00:00"}}), OK),
        ("legacy bad date", json!({"17841400000000001": {"date": -5}}), CONFIG),
        ("empty object", json!({}), OK),
        ("null state", json!(null), OK),
    ] {
        cases.push((name.to_owned(), stream_state(state), expect));
    }
    cases.push((
        "legacy top-level".into(),
        json!({"user_insights": {"17841400000000001": {"date": "2025-01-01T00:00:00+00:00"}}}).to_string(),
        OK,
    ));
    cases.push(("byte-order mark".into(), format!("\u{feff}{}", stream_state(json!({}))), OK));
    cases
}

/// Broken 200 answers per endpoint: (endpoint suffix, streams whose reads touch it).
fn broken_answers(user_id: &str) -> Vec<(String, BrokenAnswer, Vec<&'static str>)> {
    let bodies = [
        "{}",
        r#"{"data":null}"#,
        r#"{"data":{"id":"1"}}"#,
        "[1,2,3]",
        r#""hello""#,
        "null",
        "42",
        "not json",
        r#"{"data":[{"id":null}]}"#,
        r#"{"data":[{"id":{}}]}"#,
        r#"{"data":[1]}"#,
        r#"{"data":"x"}"#,
        "",
        "<html>oops</html>",
    ];
    let endpoints: [(&str, Vec<&'static str>); 7] = [
        ("/me/accounts", ALL_STREAMS.to_vec()),
        ("/media", vec!["media", "media_insights"]),
        ("/stories", vec!["stories", "story_insights"]),
        ("/insights", vec!["media_insights", "story_insights", "user_insights", "user_lifetime_insights"]),
        (user_id, vec!["users"]),
        ("batch", vec!["media_insights", "story_insights"]),
        ("/children", vec![]),
    ];
    let mut cases = Vec::new();
    for (suffix, streams) in endpoints {
        for body in bodies {
            cases.push((
                format!("{suffix} answers {}", short(&json!(body))),
                BrokenAnswer { path_suffix: suffix.into(), body: body.into() },
                streams.clone(),
            ));
        }
    }
    cases
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 24 {
        format!("{}…({} chars)", text.chars().take(16).collect::<String>(), text.len())
    } else {
        text
    }
}

/// Runs the CLI with a 60 s cap; (exit code or None on hang, stdout, stderr).
fn run_capped(args: &[String]) -> (Option<i32>, String, String) {
    let mut child = Command::new(host_binary())
        .arg(component())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the host");
    let (mut stdout, mut stderr) = (child.stdout.take().expect("stdout"), child.stderr.take().expect("stderr"));
    let out = std::thread::spawn(move || std::io::read_to_string(&mut stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut stderr).unwrap_or_default());
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if started.elapsed() > CAP {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, out.join().unwrap_or_default(), err.join().unwrap_or_default())
}

const DEBUG_TEXT: [&str; 8] = [
    "wasm backtrace",
    "panicked",
    "RUST_BACKTRACE",
    "ErrorCode::",
    "Payload {",
    "Some(\"",
    "error while executing",
    "<wasm function",
];

fn judge(case: &Case, scratch: &Scratch, origins: &[String], tally: &mut Tally) {
    let config = scratch.write(&format!("{}-config.json", tally.cases), &case.config);
    let catalog = scratch.write(&format!("{}-catalog.json", tally.cases), &case.catalog);
    let mut args: Vec<String> = vec![case.verb.into(), "--config".into(), path_str(&config).into()];
    if case.verb == "read" {
        args.extend(["--catalog".into(), path_str(&catalog).into()]);
        if let Some(state) = &case.state {
            args.extend([
                "--state".into(),
                path_str(&scratch.write(&format!("{}-state.json", tally.cases), state)).into(),
            ]);
        }
    }
    args.extend(["--allow-host".into(), origins[case.sandbox].clone()]);
    tally.cases += 1;
    let (code, stdout, stderr) = run_capped(&args);
    let Some(code) = code else {
        tally.hangs += 1;
        tally.wrong.push(format!("{}: hung", case.name));
        return;
    };
    keep_transcript(&stdout);
    if DEBUG_TEXT.iter().any(|t| stdout.contains(t) || stderr.contains(t)) {
        tally.traps += 1;
    }
    if stdout.contains(TOKEN) || stderr.contains(TOKEN) {
        tally.leaks += 1;
    }
    let messages: Result<Vec<Value>, _> = stdout.lines().map(serde_json::from_str::<Value>).collect();
    let Ok(messages) = messages else {
        tally.wrong.push(format!("{}: stdout is not JSON lines", case.name));
        return;
    };
    let errors: Vec<&Value> =
        messages.iter().filter(|m| m["trace"]["type"] == "ERROR").map(|m| &m["trace"]["error"]).collect();
    if let Ok(path) = std::env::var("CORPUS_MESSAGES") {
        // Every user-facing message of the case, to compare two builds (`CORPUS_MESSAGES=FILE`).
        let said: Vec<String> = messages
            .iter()
            .filter_map(|m| m["trace"]["error"]["message"].as_str().or(m["connectionStatus"]["message"].as_str()))
            .map(|m| m.to_owned())
            .collect();
        let line = format!("{}\t{}\n", case.name, said.join(" | "));
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("messages file");
        std::io::Write::write_all(&mut file, line.as_bytes()).expect("write messages");
    }
    let mut types: Vec<&str> = errors.iter().filter_map(|e| e["failure_type"].as_str()).collect();
    if case.verb == "check" {
        let status = messages.iter().find_map(|m| m["connectionStatus"]["status"].as_str()).unwrap_or("none");
        types.extend((status == "FAILED").then_some("FAILED"));
    }
    types.dedup();
    let summary_agrees = errors
        .iter()
        .filter(|e| e.get("stream_descriptor").is_none())
        .all(|e| Some(e["failure_type"].as_str().unwrap_or("")) == case.expect.1);
    let got = Expect(
        code,
        (types.len() == 1).then(|| types[0]).map(|t| match t {
            "config_error" => "config_error",
            "system_error" => "system_error",
            "transient_error" => "transient_error",
            _ => "FAILED",
        }),
    );
    if got == case.expect && (types.len() <= 1) && summary_agrees {
        tally.clear += 1;
    } else {
        tally.wrong.push(format!("{}: expected {:?}, got exit {code} with {types:?}", case.name, case.expect));
    }
}

#[test]
fn the_bad_input_corpus_ends_every_case_cleanly() {
    let model = Model::generate(&ModelSpec {
        accounts: 2,
        media_per_account: 4,
        stories_per_account: 1,
        ..ModelSpec::default()
    });
    let good =
        Sandbox::start(SandboxOptions { token: TOKEN.into(), ..SandboxOptions::new(model.clone()) }).expect("sandbox");
    let mut sandboxes = vec![good];
    let mut cases: Vec<Case> = Vec::new();
    let base = sandboxes[0].base_url();
    let users = catalog_of(&["users"]).to_string();
    for (name, config, expect) in bad_configs(&base) {
        cases.push(Case {
            name: format!("config {name} (read)"),
            verb: "read",
            config: config.clone(),
            catalog: users.clone(),
            state: None,
            expect,
            sandbox: 0,
        });
        let check_expect = if expect == OK { OK } else { CHECK_FAILED };
        cases.push(Case {
            name: format!("config {name} (check)"),
            verb: "check",
            config: config.clone(),
            catalog: String::new(),
            state: None,
            expect: check_expect,
            sandbox: 0,
        });
        // A start date in the future is refused where it is used (check, read), not by discover.
        let future_start = name.starts_with("start_date \"2030") || name.starts_with("start_date \"9999");
        let discover_expect = if future_start { OK } else { expect };
        cases.push(Case {
            name: format!("config {name} (discover)"),
            verb: "discover",
            config,
            catalog: String::new(),
            state: None,
            expect: discover_expect,
            sandbox: 0,
        });
    }
    let config = json!({"access_token": TOKEN, "base_url": base, "num_workers": 4}).to_string();
    for (name, catalog, expect) in bad_catalogs() {
        cases.push(Case {
            name: format!("catalog {name}"),
            verb: "read",
            config: config.clone(),
            catalog,
            state: None,
            expect,
            sandbox: 0,
        });
    }
    let user_insights =
        json!({"streams": [{"stream": {"name": "user_insights"}, "sync_mode": "incremental"}]}).to_string();
    for (name, state, expect) in bad_states() {
        cases.push(Case {
            name: format!("state {name}"),
            verb: "read",
            config: config.clone(),
            catalog: user_insights.clone(),
            state: Some(state),
            expect,
            sandbox: 0,
        });
    }
    let all = catalog_all().to_string();
    let user_id = model.users().next().map(|(_, user)| user.id.clone()).expect("an account");
    for (name, broken, streams) in broken_answers(&user_id) {
        let options =
            SandboxOptions { token: TOKEN.into(), broken: Some(broken.clone()), ..SandboxOptions::new(model.clone()) };
        sandboxes.push(Sandbox::start(options).expect("broken sandbox"));
        let index = sandboxes.len() - 1;
        let config =
            json!({"access_token": TOKEN, "base_url": sandboxes[index].base_url(), "num_workers": 4}).to_string();
        // Children are expanded in the media request: a broken per-slide answer is never asked for.
        // A broken Batch API envelope falls back to single requests: the records still arrive.
        let expect = if streams.is_empty() || broken.path_suffix == "batch" { OK } else { SYSTEM };
        cases.push(Case {
            name: format!("answer {name}"),
            verb: "read",
            config: config.clone(),
            catalog: all.clone(),
            state: None,
            expect,
            sandbox: index,
        });
        if broken.path_suffix == "/me/accounts" {
            cases.push(Case {
                name: format!("answer {name} (check)"),
                verb: "check",
                config,
                catalog: String::new(),
                state: None,
                expect: CHECK_FAILED,
                sandbox: index,
            });
        }
    }
    let origins: Vec<String> = sandboxes.iter().map(|s| format!("http://{}", s.addr())).collect();

    let scratch = Scratch::new("corpus");
    let workers = 4;
    let chunks: Vec<Vec<Case>> = {
        let mut chunks: Vec<Vec<Case>> = (0..workers).map(|_| Vec::new()).collect();
        for (index, case) in cases.into_iter().enumerate() {
            chunks[index % workers].push(case);
        }
        chunks
    };
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .iter()
            .enumerate()
            .map(|(worker, chunk)| {
                let (origins, scratch) = (&origins, &scratch);
                scope.spawn(move || {
                    let dir = Scratch::new(&format!("corpus-{worker}"));
                    let _ = scratch;
                    let mut tally = Tally::default();
                    for case in chunk {
                        judge(case, &dir, origins, &mut tally);
                    }
                    tally
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("worker")).collect()
    });
    let mut total = Tally::default();
    for tally in tallies {
        total.cases += tally.cases;
        total.clear += tally.clear;
        total.hangs += tally.hangs;
        total.traps += tally.traps;
        total.leaks += tally.leaks;
        total.wrong.extend(tally.wrong);
    }
    println!(
        "| cases | clear errors or clean success | wrong type/exit | hangs | traps/debug text | leaks |\n|---|---|---|---|---|---|\n| {} | {} | {} | {} | {} | {} |",
        total.cases,
        total.clear,
        total.wrong.len(),
        total.hangs,
        total.traps,
        total.leaks
    );
    assert!(total.cases >= 300, "{} cases", total.cases);
    assert!(total.wrong.is_empty(), "{:#?}", total.wrong);
    assert_eq!((total.hangs, total.traps, total.leaks), (0, 0, 0));
}
