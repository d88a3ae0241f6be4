//! Issue 21: Instagram Login (no Facebook Page), the token refresh handed back as a CONTROL
//! message, the host writing it back to the config file, and tokens of the wrong login.

use e2e_tests::{Output, Scratch, catalog_all, config_for, path_str, read_catalog, run_cli, start_days_ago};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{INSTAGRAM_TOKEN, Sandbox, SandboxOptions};
use serde_json::{Value, json};

fn model() -> Model {
    Model::generate(&ModelSpec { accounts: 2, media_per_account: 12, stories_per_account: 2, ..ModelSpec::default() })
}

fn instagram_config(sandbox: &Sandbox) -> Value {
    let mut config = config_for(sandbox);
    config["auth_type"] = json!("instagram_login");
    config["access_token"] = json!(INSTAGRAM_TOKEN);
    config["start_date"] = start_days_ago(3);
    config
}

/// Every `page_id`, at any depth (`media_insights_info` carries one too), set to null.
fn null_page_ids(value: &mut Value) {
    if let Some(object) = value.as_object_mut() {
        for (key, inner) in object.iter_mut() {
            if key == "page_id" {
                *inner = Value::Null;
            } else {
                null_page_ids(inner);
            }
        }
    }
}

/// The Instagram account the sandbox's Instagram Login token belongs to.
fn own_account(model: &Model) -> String {
    model.users().next().expect("an account").1.id.clone()
}

#[test]
fn an_instagram_login_sync_equals_facebook_login_without_pages() {
    let model = model();
    let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let scratch = Scratch::new("instagram-login");
    let mut facebook = config_for(&sandbox);
    facebook["account_ids"] = json!([own_account(&model)]);
    facebook["start_date"] = start_days_ago(3);
    let expected = read_catalog(&scratch, &facebook, &catalog_all(), &[]);
    assert_eq!(expected.code, 0, "{:?}", expected.errors());

    let mut config = instagram_config(&sandbox);
    config["refresh_access_token"] = json!(false);
    let got = read_catalog(&scratch, &config, &catalog_all(), &[]);
    assert_eq!(got.code, 0, "{:?}", got.errors());
    assert!(got.records("Api").is_empty(), "no Page, no Api record");
    assert!(got.of_type("CONTROL").is_empty(), "no refresh asked, none announced");
    let without_pages = |out: &Output| {
        let mut set = std::collections::BTreeMap::<String, Vec<String>>::new();
        for message in out.of_type("RECORD") {
            let stream = message["record"]["stream"].as_str().unwrap_or("").to_owned();
            let mut data = message["record"]["data"].clone();
            null_page_ids(&mut data);
            set.entry(stream).or_default().push(data.to_string());
        }
        set.remove("Api");
        set.values_mut().for_each(|v| v.sort());
        set
    };
    let (got_set, expected_set) = (without_pages(&got), without_pages(&expected));
    assert_eq!(got_set.keys().collect::<Vec<_>>(), expected_set.keys().collect::<Vec<_>>());
    for (stream, records) in &expected_set {
        let missing: Vec<&String> = records.iter().filter(|r| !got_set[stream].contains(r)).take(2).collect();
        let extra: Vec<&String> = got_set[stream].iter().filter(|r| !records.contains(r)).take(2).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{stream}: missing {missing:#?}, unexpected {extra:#?}");
    }
    assert!(got.records("users").iter().all(|u| u["page_id"].is_null()));
    let me = sandbox.requests().into_iter().find(|r| r.path.ends_with("/me")).expect("/me asked");
    assert_eq!(me.query["fields"], "user_id,username");
    assert!(
        !sandbox
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/me/accounts") && r.token.as_deref() == Some(INSTAGRAM_TOKEN))
    );

    config["account_ids"] = json!(["17841400000000001"]);
    let other = read_catalog(&scratch, &config, &catalog_all(), &[]);
    assert_eq!(other.code, 1);
    let error = &other.errors()[0];
    assert_eq!(error["failure_type"], "config_error");
    assert!(error["message"].as_str().expect("m").contains("its own account only"), "{error}");
}

/// Every output line but the CONTROL message, and stderr, without either token.
fn assert_tokens_only_in_control(out: &Output, tokens: &[&str]) {
    for line in out.stdout.lines().filter(|line| !line.starts_with(r#"{"type":"CONTROL""#)) {
        for token in tokens {
            assert!(!line.contains(token), "a token outside the CONTROL message: {line}");
        }
    }
    for token in tokens {
        assert!(!out.stderr.contains(token), "a token on stderr");
    }
}

#[test]
fn a_refreshed_token_goes_out_once_as_control_carries_every_later_request_and_is_kept_with_the_flag() {
    let model = model();
    let sandbox = Sandbox::start(SandboxOptions::new(model)).expect("sandbox");
    let scratch = Scratch::new("refresh");
    let config = instagram_config(&sandbox);
    let config_path = scratch.write("config.json", &serde_json::to_string_pretty(&config).expect("json"));
    let catalog_path = scratch.write("catalog.json", &catalog_all().to_string());
    let read = || {
        run_cli(&["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path), "--config-update"])
    };
    let out = read();
    assert_eq!(out.code, 0, "{:?}", out.errors());
    let controls = out.of_type("CONTROL");
    assert_eq!(controls.len(), 1, "exactly one CONTROL message");
    let control = &controls[0]["control"];
    assert_eq!(control["type"], "CONNECTOR_CONFIG");
    let handed_back = &control["connectorConfig"]["config"];
    let fresh = handed_back["access_token"].as_str().expect("token").to_owned();
    assert_ne!(fresh, INSTAGRAM_TOKEN);
    let mut expected = config.clone();
    expected["access_token"] = json!(fresh);
    assert_eq!(handed_back, &expected, "the whole config, with the new token");

    let requests = sandbox.requests();
    let refresh = requests.iter().position(|r| r.path == "/refresh_access_token").expect("refreshed");
    assert_eq!(requests[refresh].token.as_deref(), Some(INSTAGRAM_TOKEN));
    assert!(refresh + 1 < requests.len());
    for request in &requests[refresh + 1..] {
        assert_eq!(request.token.as_deref(), Some(fresh.as_str()), "{} carries the new token", request.path);
    }
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config")).expect("json");
    assert_eq!(written, expected, "the config file holds the new token");
    assert_tokens_only_in_control(&out, &[INSTAGRAM_TOKEN, &fresh]);

    // The next run starts from the file: its refresh carries the token the first one got.
    let before = sandbox.requests().len();
    let second = read();
    assert_eq!(second.code, 0, "{:?}", second.errors());
    let second_refresh = sandbox.requests()[before..]
        .iter()
        .find(|r| r.path == "/refresh_access_token")
        .map(|r| r.token.clone())
        .expect("refreshed again");
    assert_eq!(second_refresh.as_deref(), Some(fresh.as_str()));

    // Without the flag, nothing on disk changes.
    let untouched = std::fs::read_to_string(&config_path).expect("config");
    let plain = run_cli(&["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path)]);
    assert_eq!(plain.code, 0);
    assert_eq!(plain.of_type("CONTROL").len(), 1);
    assert_eq!(std::fs::read_to_string(&config_path).expect("config"), untouched);
}

#[test]
fn a_refused_refresh_is_a_warn_and_the_sync_completes_with_the_old_token() {
    let sandbox =
        Sandbox::start(SandboxOptions { refuse_refresh: true, ..SandboxOptions::new(model()) }).expect("sandbox");
    let scratch = Scratch::new("refresh-refused");
    let out = read_catalog(&scratch, &instagram_config(&sandbox), &catalog_all(), &["--config-update"]);
    assert_eq!(out.code, 0, "{:?}", out.errors());
    assert!(out.of_type("CONTROL").is_empty());
    let warned = out.of_type("LOG").into_iter().any(|m| {
        m["log"]["level"] == "WARN" && m["log"]["message"].as_str().unwrap_or("").contains("was not refreshed")
    });
    assert!(warned, "a WARN says the token was not refreshed");
    assert!(sandbox.requests().iter().all(|r| r.token.as_deref() == Some(INSTAGRAM_TOKEN)));
    assert!(!out.records("media").is_empty());
}

#[test]
fn a_token_of_the_other_login_is_a_config_error_naming_its_login() {
    let facebook_token = "EAAsandbox-facebook-token";
    let sandbox = Sandbox::start(SandboxOptions { token: facebook_token.into(), ..SandboxOptions::new(model()) })
        .expect("sandbox");
    let scratch = Scratch::new("wrong-login");
    let mut cases = Vec::new();
    let mut instagram_with_facebook_token = instagram_config(&sandbox);
    instagram_with_facebook_token["access_token"] = json!(facebook_token);
    instagram_with_facebook_token["refresh_access_token"] = json!(false);
    cases.push((instagram_with_facebook_token, "Facebook Login"));
    let mut facebook_with_instagram_token = config_for(&sandbox);
    facebook_with_instagram_token["access_token"] = json!(INSTAGRAM_TOKEN);
    cases.push((facebook_with_instagram_token, "Instagram Login"));
    for (config, login) in cases {
        let path = scratch.write("config.json", &config.to_string());
        let checked = run_cli(&["check", "--config", path_str(&path)]);
        let status = &checked.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED");
        assert!(status["message"].as_str().expect("m").contains(&format!("belongs to {login}")), "{status}");
        let read = read_catalog(&scratch, &config, &catalog_all(), &[]);
        assert_eq!(read.code, 1);
        let error = read.errors().into_iter().find(|e| e["stream_descriptor"].is_object()).expect("a stream error");
        assert_eq!(error["failure_type"], "config_error");
        assert!(error["message"].as_str().expect("m").contains(login), "{error}");
    }
}

/// Every file a sync writes (cassette, state file, output directory) holds neither token outside a
/// CONTROL line; `run-many` writes a job's refreshed config back to its config file.
#[test]
fn no_file_holds_a_token_outside_control_and_run_many_keeps_each_jobs_refreshed_config() {
    let sandbox = Sandbox::start(SandboxOptions::new(model())).expect("sandbox");
    let scratch = Scratch::new("refresh-files");
    let config = instagram_config(&sandbox);
    let config_path = scratch.write("config.json", &config.to_string());
    let catalog_path = scratch.write("catalog.json", &catalog_all().to_string());
    let cassette = scratch.path().join("cassette.json");
    let state = scratch.path().join("state.json");
    let output = scratch.path().join("out");
    let args = |extra: &[&str]| {
        let mut args = vec!["read", "--config", path_str(&config_path), "--catalog", path_str(&catalog_path)];
        args.extend_from_slice(extra);
        run_cli(&args)
    };
    let recorded = args(&["--record", path_str(&cassette), "--state-file", path_str(&state)]);
    assert_eq!(recorded.code, 0, "{:?}", recorded.errors());
    let into_dir = args(&["--output", path_str(&output)]);
    assert_eq!(into_dir.code, 0, "{:?}", into_dir.errors());
    let mut tokens: Vec<String> = vec![INSTAGRAM_TOKEN.to_owned()];
    for out in [&recorded, &into_dir] {
        let control = out.of_type("CONTROL");
        tokens.extend(
            control
                .iter()
                .filter_map(|c| c["control"]["connectorConfig"]["config"]["access_token"].as_str().map(str::to_owned)),
        );
    }
    assert_eq!(tokens.len(), 3, "each run refreshed once");
    let mut files = vec![cassette.clone(), state.clone()];
    files.extend(std::fs::read_dir(&output).expect("output").flatten().map(|e| e.path()));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("file");
        for line in text.lines().filter(|line| !line.starts_with(r#"{"type":"CONTROL""#)) {
            for token in &tokens {
                assert!(!line.contains(token.as_str()), "{} holds a token: {line}", file.display());
            }
        }
    }

    let jobs = json!({"jobs": [{
        "name": "instagram", "config": path_str(&config_path), "catalog": path_str(&catalog_path),
        "output": path_str(&scratch.path().join("job")), "allow_hosts": [format!("http://{}", sandbox.addr())],
        "config_update": true
    }]});
    let jobs_path = scratch.write("jobs.json", &jobs.to_string());
    let before = sandbox.requests().len();
    let many = e2e_tests::run_json_lines(&["run-many", path_str(&jobs_path)]);
    assert_eq!(many.code, 0, "{}", many.stdout);
    assert_eq!(many.messages[0]["status"], "succeeded", "{}", many.stdout);
    let used = sandbox.requests()[before..].iter().rev().find_map(|r| r.token.clone()).expect("requests");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&config_path).expect("config")).expect("json");
    assert_eq!(kept["access_token"], json!(used), "the job's config file holds the token its sync used");
    assert_ne!(kept["access_token"], json!(INSTAGRAM_TOKEN));
}

/// Facebook Login: with the app's id and secret in the config, `check` asks `/debug_token` and
/// warns when the token expires within 7 days; without them it asks nothing.
#[test]
fn check_warns_of_a_facebook_token_that_expires_within_a_week() {
    for (days, warned) in [(3, true), (30, false)] {
        let options = SandboxOptions { token_expires_in: chrono::Duration::days(days), ..SandboxOptions::new(model()) };
        let sandbox = Sandbox::start(options).expect("sandbox");
        let scratch = Scratch::new("expiry");
        let mut config = config_for(&sandbox);
        config["client_id"] = json!("1234567890");
        config["client_secret"] = json!("app-secret-for-expiry");
        let path = scratch.write("config.json", &config.to_string());
        let checked = run_cli(&["check", "--config", path_str(&path)]);
        assert_eq!(checked.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"], "SUCCEEDED");
        let warning = checked.of_type("LOG").into_iter().any(|m| {
            m["log"]["level"] == "WARN"
                && m["log"]["message"].as_str().unwrap_or("").contains("The access token expires")
        });
        assert_eq!(warning, warned, "{days} days left");
        assert!(!checked.stdout.contains("app-secret-for-expiry"));
        assert!(sandbox.requests().iter().any(|r| r.path.ends_with("/debug_token")));

        let plain = scratch.write("plain.json", &config_for(&sandbox).to_string());
        let before = sandbox.requests().len();
        run_cli(&["check", "--config", path_str(&plain)]);
        assert!(
            !sandbox.requests()[before..].iter().any(|r| r.path.ends_with("/debug_token")),
            "no app token, no probe"
        );
    }
}

#[test]
fn check_names_a_missing_permission_in_instagram_logins_words() {
    let options = SandboxOptions { instagram_basic_denied: true, ..SandboxOptions::new(model()) };
    let sandbox = Sandbox::start(options).expect("sandbox");
    let scratch = Scratch::new("instagram-permission");
    let mut config = instagram_config(&sandbox);
    config["refresh_access_token"] = json!(false);
    let path = scratch.write("config.json", &config.to_string());
    let checked = run_cli(&["check", "--config", path_str(&path)]);
    let status = &checked.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    let message = status["message"].as_str().expect("message");
    assert!(message.contains("instagram_business_basic") && !message.contains("pages_show_list"), "{message}");
}
