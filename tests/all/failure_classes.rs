//! One test per class of failure the second hostile set found (issue 18): secrets in other
//! spellings, blame on the right side, IPv6 origins, depth, objects listed bare, and retry and
//! pacing budgets. Each case is a sample of its class; the unit tests beside each mechanism
//! (`airbyte_messages::secrets`, the retry driver, the pacer) sweep the class.

use e2e_tests::{
    Scratch, catalog_all, catalog_of, config_for, path_str, read, read_catalog, run_cli, run_cli_within, run_json_lines,
};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{BrokenAnswer, Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn sandbox_with(accounts: usize, media: usize, change: impl FnOnce(&mut SandboxOptions)) -> Sandbox {
    let model = Model::generate(&ModelSpec {
        accounts,
        media_per_account: media,
        stories_per_account: 2,
        ..ModelSpec::default()
    });
    let mut options = SandboxOptions::new(model);
    change(&mut options);
    Sandbox::start(options).expect("sandbox")
}

/// Every spelling of `token` a server or a JSON writer could send back, built here by hand
/// (not by the redactor under test): raw, its secret half, form- and percent-encoded in either
/// case, percent-encoded twice, and JSON-escaped.
fn spellings(token: &str) -> Vec<String> {
    let percent = |text: &str, upper: bool| -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ if upper => format!("%{b:02X}"),
                _ => format!("%{b:02x}"),
            })
            .collect()
    };
    let half = token.rsplit_once('|').map_or(token, |(_, half)| half).to_owned();
    let mut all =
        vec![token.to_owned(), half.clone(), percent(token, true), percent(token, false), percent(&half, true)];
    all.push(percent(token, true).replace('%', "%25"));
    all.push(token.replace('|', "\\u007c").replace('/', "\\/"));
    all.push(token.replace('|', "\\u007C"));
    all
}

fn assert_no_spelling(what: &str, text: &str, token: &str) {
    for spelling in spellings(token) {
        assert!(!text.contains(&spelling), "{what} holds the token spelled `{spelling}`");
    }
}

/// Class 4: an app token `ID|SECRET` that Graph echoes percent-encoded (every paging link, and
/// error messages that quote the request) appears in no output in any spelling: stdout (records,
/// logs, errors, check's FAILED message), stderr, the state file, the output directory, the
/// cassette, and run-many's files.
#[test]
fn an_app_token_appears_in_no_output_in_any_spelling() {
    let token = "1234567890123456|Ab3_app-Secret.x/y";
    let sandbox = sandbox_with(2, 12, |o| {
        o.token = token.into();
        o.echo_token = true;
        o.comments_denied = true;
        o.max_page_size = 5;
    });
    let scratch = Scratch::new("app-token");
    let config = config_for(&sandbox);
    let config_path = scratch.write("config.json", &config.to_string());
    let catalog_path = scratch.write("catalog.json", &catalog_all().to_string());
    let mut texts: Vec<(String, String)> = Vec::new();

    // A check that fails with an echoing error: an account id Graph does not know.
    let mut bad_account = config.clone();
    bad_account["account_ids"] = json!(["17841499999999999"]);
    let bad_path = scratch.write("bad.json", &bad_account.to_string());
    let check = run_cli(&["check", "--config", path_str(&bad_path)]);
    let status = &check.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED", "{status}");
    texts.push(("check".into(), format!("{}{}", check.stdout, check.stderr)));

    let state = scratch.path().join("state.json");
    let cassette = scratch.path().join("cassette.json");
    let base = ["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path)];
    let out = run_cli(&[&base[..], &["--state-file", path_str(&state), "--record", path_str(&cassette)]].concat());
    assert_eq!(out.code, 1, "comments fails on its permission, with an echoing error");
    assert!(out.errors().iter().any(|e| e["message"].as_str().unwrap_or("").contains("instagram_manage_comments")));
    assert!(!out.records("media").is_empty());
    let paged = sandbox.requests().iter().filter(|r| r.query.contains_key("after")).count();
    assert!(paged > 0, "paging links (which echo the token) were followed");
    texts.push(("read stdout and stderr".into(), format!("{}{}", out.stdout, out.stderr)));
    texts.push(("state file".into(), std::fs::read_to_string(&state).expect("state")));
    let recorded = std::fs::read_to_string(&cassette).expect("cassette");
    assert!(recorded.contains("REDACTED"));
    texts.push(("cassette".into(), recorded));

    let dir = scratch.path().join("out");
    let out = run_cli(&[&base[..], &["--output", path_str(&dir)]].concat());
    texts.push(("read --output stdout".into(), format!("{}{}", out.stdout, out.stderr)));
    let jobs = json!({"jobs": [{"name": "t", "config": config, "catalog": catalog_all(), "output": "tenant",
                               "allow_hosts": [format!("http://{}", sandbox.addr())]}]});
    let jobs = scratch.write("jobs.json", &jobs.to_string());
    let summary = run_json_lines(&["run-many", path_str(&jobs)]);
    texts.push(("run-many summary".into(), summary.stdout));
    for directory in [dir, scratch.path().join("tenant")] {
        for entry in std::fs::read_dir(&directory).expect("dir").flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            texts.push((entry.path().display().to_string(), text));
        }
    }
    for (what, text) in &texts {
        assert_no_spelling(what, text, token);
    }
}

/// Class 5: what the server sent is the server's fault (`system_error`), whatever request it
/// leads to; what the user supplied, and only that, is a `config_error`.
#[test]
fn blame_falls_on_the_side_that_supplied_the_fault() {
    let scratch = Scratch::new("blame");
    // A paging cursor of 100,000 characters, and an account id of 70,000 digits.
    let huge_cursor = json!({"data": [{"id": "1", "timestamp": "2025-01-01T00:00:00+0000"}],
                             "paging": {"cursors": {"after": "Q".repeat(100_000)}, "next": "https://x/next"}});
    let huge_id = json!({"data": [{"id": "1", "instagram_business_account": {"id": "7".repeat(70_000)}}]});
    for (suffix, body, stream) in [("/media", huge_cursor, "media"), ("/me/accounts", huge_id, "users")] {
        let sandbox = sandbox_with(1, 3, |o| {
            o.broken = Some(BrokenAnswer { path_suffix: suffix.into(), body: body.to_string() })
        });
        let out = read(&scratch, &config_for(&sandbox), &[stream]);
        let errors = out.errors();
        assert_eq!(out.code, 1);
        assert_eq!(errors[0]["failure_type"], "system_error", "{suffix}: {errors:?}");
        assert!(!errors[0]["message"].as_str().unwrap_or("").contains("Check `base_url`"), "{errors:?}");
    }

    // A port nothing listens on: the user's base_url leads nowhere.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let config = json!({"access_token": "t", "base_url": format!("http://127.0.0.1:{closed}/v23.0")});
    let config_path = scratch.write("config.json", &config.to_string());
    let catalog_path = scratch.write("catalog.json", &catalog_of(&["users"]).to_string());
    let out = run_cli_within(
        &["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path), "--retry-budget-secs", "2"],
        Duration::from_secs(60),
    )
    .expect("ends");
    let error = &out.errors()[0];
    assert_eq!(error["failure_type"], "config_error", "{error}");
    assert!(error["message"].as_str().unwrap_or("").contains("`base_url`"), "{error}");

    // An https base_url redirected to plain http.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(16).flatten() {
            let mut stream = stream;
            let _ = stream.read(&mut [0u8; 8192]);
            let answer = format!(
                "HTTP/1.1 301 Moved Permanently\r\nlocation: http://127.0.0.1:{port}/v23.0/me?access_token=leak-me\r\ncontent-length: 0\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let config = json!({"access_token": "leak-me", "base_url": format!("http://127.0.0.1:{port}/v23.0")});
    let config_path = scratch.write("config.json", &config.to_string());
    let check = run_cli(&["check", "--config", path_str(&config_path)]);
    let message =
        check.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["message"].as_str().unwrap_or("").to_owned();
    assert!(message.contains("`base_url`") && message.contains("redirect"), "{message}");
    assert!(!message.contains("leak-me"), "{message}");
    let out = read(&scratch, &config, &["users"]);
    assert_eq!(out.errors()[0]["failure_type"], "config_error", "{:?}", out.errors());

    // What the URL parser would silently change is refused before any request.
    for base_url in ["http:\\\\127.0.0.1:9\\v23.0", "http://user:pw@127.0.0.1:9/v23.0", "http://127.0.0.1:9/v23.0\n"] {
        let started = Instant::now();
        let out = read(&scratch, &json!({"access_token": "t", "base_url": base_url}), &["users"]);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(out.errors()[0]["failure_type"], "config_error", "{base_url}: {:?}", out.errors());
    }
}

/// Class 6: an IPv6 origin can be allowed, and then every request to it goes through.
#[test]
fn an_ipv6_origin_can_be_allowed() {
    let sandbox = sandbox_with(1, 4, |o| o.address = "::1".parse().expect("v6"));
    assert!(sandbox.base_url().starts_with("http://[::1]:"), "{}", sandbox.base_url());
    let scratch = Scratch::new("ipv6");
    let out = read(&scratch, &config_for(&sandbox), &["Api", "users", "media"]);
    assert_eq!(out.code, 0, "{:?} {}", out.errors(), out.stderr);
    assert_eq!(out.records("media").len(), 4);
}

/// Class 7: a value nested 100,000 levels deep is refused with a clear `system_error`; every
/// line that goes out loads with a standard JSON reader (the test's own parse, 128 levels).
#[test]
fn answers_nested_too_deep_are_refused() {
    let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let body = format!(r#"{{"data":[{{"id":"1","timestamp":"2025-01-01T00:00:00+0000","caption":{deep}}}]}}"#);
    let sandbox = sandbox_with(1, 3, |o| o.broken = Some(BrokenAnswer { path_suffix: "/media".into(), body }));
    let scratch = Scratch::new("depth");
    let out = read(&scratch, &config_for(&sandbox), &["media"]);
    assert_eq!(out.code, 1);
    let error = &out.errors()[0];
    assert_eq!(error["failure_type"], "system_error");
    assert!(error["message"].as_str().unwrap_or("").contains("levels deep"), "{error}");
    assert!(out.records("media").is_empty());
}

/// Class 8: comments Graph lists with their `id` alone are fetched whole: the same records as
/// when every comment is listed whole, and none with a null key or cursor.
#[test]
fn comments_listed_bare_are_fetched_whole() {
    let scratch = Scratch::new("bare");
    let records = |sparse: bool| {
        let sandbox = sandbox_with(1, 8, |o| o.sparse_comments = sparse);
        let out = read(&scratch, &config_for(&sandbox), &["comments"]);
        assert_eq!(out.code, 0, "{:?}", out.errors());
        (out.records("comments"), out.logs())
    };
    let (whole, _) = records(false);
    let (fetched, logs) = records(true);
    assert!(whole.iter().any(|c| !c["parent_id"].is_null()), "the model has replies");
    for record in &fetched {
        assert!(record["id"].is_string() && record["timestamp"].is_string(), "{record}");
    }
    let sorted = |mut v: Vec<Value>| {
        v.sort_by_key(|r| r["id"].to_string());
        v
    };
    assert_eq!(sorted(fetched), sorted(whole));
    assert!(!logs.iter().any(|l| l.contains("skipping comment")), "{logs:?}");
}

/// Class 9: retry and pacing budgets end. A server that answers 502 forever fails the stream
/// within its retry budget; a carousel expansion throttled forever is not retried a second time
/// through its fallback; a quota figure stuck at 99 % stops pacing after its budget.
#[test]
fn retry_and_pacing_budgets_end() {
    let scratch = Scratch::new("budgets");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut stream = stream;
            let _ = stream.read(&mut [0u8; 8192]);
            let _ = stream.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let config = json!({"access_token": "t", "base_url": format!("http://127.0.0.1:{port}/v23.0")});
    let config_path = scratch.write("config.json", &config.to_string());
    let catalog_path = scratch.write("catalog.json", &catalog_of(&["users"]).to_string());
    let started = Instant::now();
    let args = ["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path)];
    let out =
        run_cli_within(&[&args[..], &["--retry-budget-secs", "8"]].concat(), Duration::from_secs(60)).expect("ends");
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");
    assert_eq!(out.errors()[0]["failure_type"], "transient_error", "{:?}", out.errors());
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) <= 6);

    // The expanded media page and a slide are throttled forever: one budget, no fallback.
    let model = Model::generate(&ModelSpec { accounts: 1, media_per_account: 6, ..ModelSpec::default() });
    let slide =
        model.users().flat_map(|(_, u)| u.media.iter()).flat_map(|m| m.children.iter()).next().map(|c| c.id.clone());
    let slide = slide.expect("the model has a carousel");
    let options =
        SandboxOptions { throttled: vec!["children%7B".into(), format!("/{slide}?")], ..SandboxOptions::new(model) };
    let sandbox = Sandbox::start(options).expect("sandbox");
    let out = run_cli_within(
        &[
            "read",
            "--config",
            path_str(&scratch.write("config.json", &config_for(&sandbox).to_string())),
            "--catalog",
            path_str(&scratch.write("catalog.json", &catalog_of(&["media"]).to_string())),
        ],
        Duration::from_secs(120),
    )
    .expect("ends");
    assert_eq!(out.errors()[0]["failure_type"], "transient_error", "{:?}", out.errors());
    let throttled = sandbox.requests().iter().filter(|r| r.injected).count();
    assert!(throttled <= 6, "{throttled} throttled requests: the budget was spent more than once");

    // A quota figure stuck at 99 % without throttling: the sync ends, with one warning.
    let sandbox = sandbox_with(1, 30, |o| o.stuck_usage = Some(99));
    let config_path = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog_path = scratch.write("catalog.json", &catalog_of(&["media", "media_insights"]).to_string());
    let started = Instant::now();
    let args = ["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path)];
    let budgets = ["--pacing-wait-secs", "1", "--pacing-budget-secs", "3"];
    let out = run_cli_within(&[&args[..], &budgets[..]].concat(), Duration::from_secs(60)).expect("ends");
    assert_eq!(out.code, 0, "{:?}", out.errors());
    assert!(started.elapsed() < Duration::from_secs(30));
    let warnings: Vec<String> = out.logs().into_iter().filter(|l| l.contains("pacing stops")).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(out.records("media").len(), 30);
}

/// Class 1's sample: a read with 4 request slots (a third of its records, then a hang, before)
/// ends with every record; so does a full catalog at 1 and 2 slots.
#[test]
fn a_read_with_few_request_slots_delivers_every_record() {
    let sandbox = sandbox_with(2, 150, |_| {});
    let scratch = Scratch::new("slots");
    let config = config_for(&sandbox);
    let full = read_catalog(&scratch, &config, &catalog_all(), &[]);
    assert_eq!(full.code, 0, "{:?}", full.errors());
    for slots in ["4", "2", "1"] {
        let config_path = scratch.write("config.json", &config.to_string());
        let catalog_path = scratch.write("catalog.json", &catalog_all().to_string());
        let out = run_cli_within(
            &[
                "read",
                "--config",
                path_str(&config_path),
                "--catalog",
                path_str(&catalog_path),
                "--max-requests",
                slots,
            ],
            Duration::from_secs(120),
        )
        .unwrap_or_else(|e| panic!("--max-requests {slots}: {e}"));
        assert_eq!(out.code, 0, "{slots}: {:?}", out.errors());
        assert_eq!(out.record_set(), full.record_set(), "--max-requests {slots}");
    }
}
