//! Every resource limit, and every hostile component, stopped or blind (embedding API and CLI).

use e2e_tests::{Scratch, config_for, path_str, peak_in_flight, run_cli};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_host::{AirbyteWriter, AllowList, Connector, HostError, LimitExceeded, Limits, Origin, RunOptions};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Buffer = Arc<Mutex<AirbyteWriter<Vec<u8>>>>;

fn buffer() -> Buffer {
    Arc::new(Mutex::new(AirbyteWriter::new(Vec::new())))
}

fn text(buffer: &Buffer) -> String {
    String::from_utf8(buffer.lock().expect("lock").get_ref().clone()).expect("utf-8")
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(future)
}

fn hostile() -> Connector {
    e2e_tests::hostile_connector()
}

fn limited(limits: Limits) -> RunOptions {
    RunOptions { limits, ..RunOptions::default() }
}

fn run_hostile(mode: &str, options: &RunOptions) -> (Result<Result<(), instagram_host::Failure>, HostError>, String) {
    let sink = buffer();
    let config = json!({"mode": mode}).to_string();
    let result = block_on(hostile().read(options, sink.clone(), &config, "{}", None));
    (result, text(&sink))
}

#[test]
fn a_busy_loop_is_stopped_by_the_cpu_limit() {
    let cap = Duration::from_millis(300);
    let (result, _) = run_hostile("busy-loop", &limited(Limits { cpu_time: Some(cap), ..Limits::default() }));
    assert!(matches!(result, Err(HostError::Limit(LimitExceeded::Cpu { limit })) if limit == cap), "{result:?}");
}

#[test]
fn an_allocation_bomb_is_stopped_by_the_memory_limit() {
    let (result, _) = run_hostile("alloc-bomb", &limited(Limits { memory_bytes: 64 << 20, ..Limits::default() }));
    assert!(
        matches!(result, Err(HostError::Limit(LimitExceeded::Memory { limit })) if limit == 64 << 20),
        "{result:?}"
    );
}

#[test]
fn a_guest_blocked_in_the_host_is_stopped_by_the_wall_time_limit() {
    let limit = Duration::from_millis(300);
    let (result, _) = run_hostile("sleep", &limited(Limits { wall_time: Some(limit), ..Limits::default() }));
    assert!(matches!(result, Err(HostError::Limit(LimitExceeded::WallTime { .. }))), "{result:?}");
}

#[test]
fn a_forbidden_host_is_refused_and_the_refusal_logged() {
    let (result, log) = run_hostile("forbidden-host", &RunOptions::default());
    let failure = result.expect("no host failure").expect_err("guest reports the refusal");
    assert!(failure.message.contains("HttpRequestDenied"), "{}", failure.message);
    assert!(log.contains("refused an outbound request to https://example.com:443"), "{log}");
}

#[test]
fn a_name_resolving_to_loopback_is_refused_even_when_it_is_the_configured_origin() {
    let sandbox = Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default()))).expect("sandbox");
    let url = format!("https://localhost:{}/v23.0/me/accounts", sandbox.addr().port());
    let config = json!({"mode": "fetch", "url": url, "base_url": url}).to_string();
    let sink = buffer();
    let result = block_on(hostile().read(&RunOptions::for_config(&config), sink.clone(), &config, "{}", None));
    let failure = result.expect("no host failure").expect_err("refused");
    assert!(failure.message.contains("DestinationIpProhibited"), "{}", failure.message);
    assert!(text(&sink).contains("resolves to a private, loopback or link-local address"));
    assert!(sandbox.requests().is_empty());
}

#[test]
fn a_component_sees_no_files_environment_or_arguments() {
    let (result, log) = run_hostile("snoop", &RunOptions::default());
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    assert!(log.contains("file=Err("), "{log}");
    assert!(log.contains("dir=Err("), "{log}");
    assert!(log.contains("env_vars=0 home=None args=0"), "{log}");
}

fn sandbox_with(latency: Duration) -> Sandbox {
    let model = Model::generate(&ModelSpec { accounts: 2, media_per_account: 30, ..ModelSpec::default() });
    Sandbox::start(SandboxOptions { latency, ..SandboxOptions::new(model) }).expect("sandbox")
}

fn options_for(sandbox: &Sandbox, limits: Limits) -> RunOptions {
    let origin: Origin = format!("http://{}", sandbox.addr()).parse().expect("origin");
    RunOptions { allow: AllowList { explicit: vec![origin], default: None }, limits, ..RunOptions::default() }
}

fn catalog(streams: &[&str]) -> String {
    e2e_tests::catalog_of(streams).to_string()
}

#[test]
fn an_oversized_response_ends_the_run() {
    let sandbox = sandbox_with(Duration::ZERO);
    let connector = e2e_tests::connector();
    let options = options_for(&sandbox, Limits { max_response_bytes: 2_000, ..Limits::default() });
    let config = config_for(&sandbox).to_string();
    let result = block_on(connector.read(&options, buffer(), &config, &catalog(&["Api", "media"]), None));
    assert!(matches!(result, Err(HostError::Limit(LimitExceeded::ResponseBody { limit: 2_000 }))), "{result:?}");
}

#[test]
fn outbound_requests_are_capped_per_run_whatever_the_connector_asks() {
    let sandbox = sandbox_with(Duration::from_millis(50));
    let connector = e2e_tests::connector();
    let options = options_for(&sandbox, Limits { max_concurrent_requests: 3, ..Limits::default() });
    // Single requests (60 insights GETs, 12 wanted in flight), so the host's cap of 3 is what binds.
    let mut config = config_for(&sandbox);
    config["num_workers"] = json!(12);
    config["batch_insights_requests"] = json!(false);
    let result = block_on(connector.read(&options, buffer(), &config.to_string(), &catalog(&["media_insights"]), None));
    assert!(matches!(result, Ok(Ok(()))), "{result:?}");
    assert_eq!(peak_in_flight(&sandbox.requests()), 3);
}

#[test]
fn request_timeouts_are_capped_by_the_host() {
    let sandbox = sandbox_with(Duration::from_secs(2));
    let connector = e2e_tests::connector();
    let options = options_for(&sandbox, Limits { request_timeout: Duration::from_millis(200), ..Limits::default() });
    let result = block_on(connector.check(&options, buffer(), &config_for(&sandbox).to_string()));
    let failure = result.expect("no host failure").expect_err("timed out");
    assert!(failure.message.contains("timed out"), "{}", failure.message);
}

#[test]
fn a_limit_on_the_cli_is_a_system_error_with_exit_1_and_the_state_file_stays_intact() {
    let sandbox = sandbox_with(Duration::from_millis(400));
    let scratch = Scratch::new("cli-limit");
    let state =
        json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "users"}, "stream_state": {"kept": true}}}]);
    let state_path = scratch.write("state.json", &state.to_string());
    let mut config_value = config_for(&sandbox);
    config_value["user_insights_date_ranges"] = json!(false);
    config_value["num_workers"] = json!(4);
    let config = scratch.write("config.json", &config_value.to_string());
    let catalog_path = scratch.write("catalog.json", &catalog(&["Api", "users", "user_insights"]));
    let state_arg = path_str(&state_path);
    let out = run_cli(&[
        "read",
        "--config",
        path_str(&config),
        "--catalog",
        path_str(&catalog_path),
        "--state",
        state_arg,
        "--state-file",
        state_arg,
        "--wall-time-secs",
        "1",
    ]);
    assert_eq!(out.code, 1);
    let error = out.errors().last().copied().cloned().unwrap_or(Value::Null);
    assert_eq!(error["failure_type"], "system_error");
    assert!(error["message"].as_str().unwrap_or("").contains("wall-time limit exceeded"), "{error}");
    // The file holds exactly the last state each stream emitted, and nothing for the stream the
    // limit cut short (user_insights: 124 requests at 4 in flight and 400 ms each).
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state_path).expect("state")).expect("json");
    let persisted: Vec<(String, Value)> = after
        .as_array()
        .expect("array")
        .iter()
        .map(|m| {
            (
                m["stream"]["stream_descriptor"]["name"].as_str().unwrap_or("").to_owned(),
                m["stream"]["stream_state"].clone(),
            )
        })
        .collect();
    for (stream, state) in &persisted {
        let emitted = out.last_state(stream);
        if stream == "users" && emitted.is_none() {
            assert_eq!(state, &json!({"kept": true}), "an untouched stream keeps its incoming state");
        } else {
            assert_eq!(Some(state), emitted.as_ref(), "{stream}");
        }
    }
    assert!(persisted.iter().all(|(stream, _)| stream != "user_insights"), "user_insights never finished an account");
}

#[test]
fn a_warm_cache_loads_without_compiling() {
    let scratch = Scratch::new("cache");
    let (_, first) = Connector::load(&e2e_tests::component(), Some(scratch.path())).expect("load");
    let (_, second) = Connector::load(&e2e_tests::component(), Some(scratch.path())).expect("load");
    assert_eq!(first, instagram_host::CacheOutcome::Compiled);
    assert_eq!(second, instagram_host::CacheOutcome::Loaded);
    // A corrupt artifact is recompiled, never run.
    for entry in std::fs::read_dir(scratch.path()).expect("dir") {
        std::fs::write(entry.expect("entry").path(), b"not an artifact").expect("corrupt");
    }
    let (_, third) = Connector::load(&e2e_tests::component(), Some(scratch.path())).expect("load");
    assert_eq!(third, instagram_host::CacheOutcome::Compiled);
}

/// A sink that cannot write stops the component at its next call (the sink import traps): with
/// stdout closed, the read ends at once with exit 1 instead of syncing into the void.
#[test]
fn a_closed_stdout_stops_the_sync_at_once() {
    let model = Model::generate(&ModelSpec { accounts: 1, media_per_account: 3000, ..ModelSpec::default() });
    let sandbox = Sandbox::start(SandboxOptions::new(model)).expect("sandbox");
    let scratch = Scratch::new("closed-stdout");
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &e2e_tests::catalog_of(&["media", "media_insights"]).to_string());
    let mut child = std::process::Command::new(e2e_tests::host_binary())
        .arg(e2e_tests::component())
        .args(["read", "--config", path_str(&config), "--catalog", path_str(&catalog)])
        .args(["--allow-host", &format!("http://{}", sandbox.addr())])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot be written"), "{stderr}");
    assert!(sandbox.requests().len() < 30, "stopped at once: {} requests", sandbox.requests().len());
}
