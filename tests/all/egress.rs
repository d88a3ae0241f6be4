//! The host refuses requests outside its egress policy (the embedding API and the CLI, with the
//! real component and a real server that would have answered).

use e2e_tests::{Scratch, config_for, path_str, run_cli_env, run_cli_raw};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_host::{AirbyteWriter, AllowList, Origin, RunOptions};
use std::sync::{Arc, Mutex};

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default()))).expect("sandbox")
}

#[test]
fn a_request_to_a_foreign_origin_is_refused_and_logged() {
    let sandbox = sandbox();
    let connector = e2e_tests::connector();
    let config = config_for(&sandbox).to_string();
    // Allow only another port on the same host: the sandbox's own origin is foreign.
    let other: Origin =
        format!("http://127.0.0.1:{}", sandbox.addr().port().wrapping_add(1).max(1)).parse().expect("origin");
    let options = RunOptions { allow: AllowList { explicit: vec![other], default: None }, ..RunOptions::default() };
    let buffer = Arc::new(Mutex::new(AirbyteWriter::new(Vec::new())));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(connector.check(&options, buffer.clone(), &config)).expect("no host failure");

    let failure = result.expect_err("the check must fail");
    assert!(failure.message.contains("egress policy"), "{}", failure.message);
    assert!(sandbox.requests().is_empty(), "nothing reached the server");
    let written = String::from_utf8(buffer.lock().expect("lock").get_ref().clone()).expect("utf-8");
    let origin = format!("http://127.0.0.1:{}", sandbox.addr().port());
    assert!(written.contains(&format!("refused an outbound request to {origin}")), "{written}");
    assert!(!written.contains(sandbox.token()));
}

#[test]
fn by_default_a_plain_http_or_loopback_base_url_is_refused() {
    let sandbox = sandbox();
    let scratch = Scratch::new("egress-default");
    // Plain http to the loopback sandbox: refused without an explicit --allow-host.
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let out = run_cli_raw(&["check", "--config", path_str(&config)]);
    let status = &out.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(out.logs().iter().any(|l| l.contains("plain http needs an explicit --allow-host")), "{:?}", out.logs());
    // https to a name that resolves to 127.0.0.1: refused after resolution.
    let port = sandbox.addr().port();
    let config = scratch.write(
        "config.json",
        &serde_json::json!({"access_token": sandbox.token(), "base_url": format!("https://localhost:{port}/v23.0")})
            .to_string(),
    );
    let out = run_cli_raw(&["check", "--config", path_str(&config)]);
    assert_eq!(out.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"], "FAILED");
    assert!(
        out.logs().iter().any(|l| l.contains("resolves to a private, loopback or link-local address")),
        "{:?}",
        out.logs()
    );
    assert!(sandbox.requests().is_empty(), "nothing reached the server");
    // The operator's explicit opt-in opens exactly that origin.
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let origin = format!("http://127.0.0.1:{port}");
    let out = run_cli_raw(&["check", "--config", path_str(&config), "--allow-host", &origin]);
    assert_eq!(out.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"], "SUCCEEDED");
}

#[test]
fn the_default_policy_allows_only_the_base_url_origin() {
    let config = r#"{"access_token":"t","base_url":"https://graph.example.com/v23.0"}"#;
    assert_eq!(
        RunOptions::for_config(config).allow,
        AllowList { explicit: vec![], default: Origin::from_url("https://graph.example.com") }
    );
    assert_eq!(RunOptions::for_config("{}").allow.default, Origin::from_url("https://graph.facebook.com"));
}

/// Clients that launch a source pass only the verb and its files, so operator settings also come
/// from `SOURCE_INSTAGRAM_*` variables; a flag wins over its variable, and the user's config can
/// never widen egress.
#[test]
fn operator_settings_come_from_the_environment_and_flags_win() {
    let sandbox = sandbox();
    let scratch = Scratch::new("egress-env");
    let origin = format!("http://127.0.0.1:{}", sandbox.addr().port());
    let elsewhere = format!("http://127.0.0.1:{}", sandbox.addr().port().wrapping_add(1).max(1));
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let check = ["check", "--config", path_str(&config)];
    let status = |out: &e2e_tests::Output| out.of_type("CONNECTION_STATUS")[0]["connectionStatus"]["status"].clone();

    let listed = format!("{elsewhere}, {origin},");
    let out = run_cli_env(&check, &[("SOURCE_INSTAGRAM_ALLOW_HOSTS", &listed)]);
    assert_eq!(status(&out), "SUCCEEDED", "comma-separated origins, no flag");

    let out = run_cli_env(
        &[&check[..], &["--allow-host", &elsewhere]].concat(),
        &[("SOURCE_INSTAGRAM_ALLOW_HOSTS", &origin)],
    );
    assert_eq!(status(&out), "FAILED", "the flag replaces the variable");

    let widening = config_for(&sandbox).as_object().cloned().map(|mut c| {
        c.insert("allow_hosts".into(), serde_json::json!([origin]));
        c.insert("SOURCE_INSTAGRAM_ALLOW_HOSTS".into(), serde_json::json!(origin));
        serde_json::Value::Object(c)
    });
    let widening = scratch.write("widening.json", &widening.expect("object").to_string());
    let out = run_cli_raw(&["check", "--config", path_str(&widening)]);
    assert_eq!(status(&out), "FAILED", "the config cannot allow a host");

    let out = run_cli_env(&check, &[("SOURCE_INSTAGRAM_ALLOW_HOSTS", "")]);
    assert_eq!(status(&out), "FAILED", "an empty variable allows nothing extra");

    let out =
        run_cli_env(&check, &[("SOURCE_INSTAGRAM_ALLOW_HOSTS", &origin), ("SOURCE_INSTAGRAM_CPU_SECS", "0.000001")]);
    let errors = out.errors();
    assert!(
        errors
            .iter()
            .any(|e| e["failure_type"] == "system_error" && e["message"].as_str().unwrap_or("").contains("CPU")),
        "{errors:?}"
    );

    let cache = scratch.path().join("cache");
    let out = run_cli_env(&["spec"], &[("SOURCE_INSTAGRAM_CACHE_DIR", path_str(&cache))]);
    assert_eq!(out.code, 0);
    assert!(std::fs::read_dir(&cache).expect("the cache dir from the environment").count() > 0);
}
