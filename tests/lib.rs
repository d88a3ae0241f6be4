//! Helpers for the end-to-end tests in `all/`: locate the built host and component, run the CLI
//! against a sandbox, and parse what it printed.
#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

use graph_sandbox::Sandbox;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// The host CLI, built with the tests (the `e2e-host` binary of this package is the host's own
/// `main.rs`), beside the running test or bench executable.
pub fn host_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe.parent().expect("its directory");
    let profile_dir = if dir.ends_with("deps") { dir.parent().expect("the profile directory") } else { dir };
    let path = profile_dir.join("e2e-host");
    assert!(path.exists(), "{} is missing: run `cargo test --workspace` or `make test`", path.display());
    path
}

/// The connector component, built for the tests by `build.rs`.
pub fn component() -> PathBuf {
    PathBuf::from(env!("GUEST_INSTAGRAM_CONNECTOR"))
}

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ig-e2e-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one CLI invocation produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub messages: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn of_type(&self, kind: &str) -> Vec<&Value> {
        self.messages.iter().filter(|m| m["type"] == kind).collect()
    }

    pub fn records(&self, stream: &str) -> Vec<Value> {
        self.of_type("RECORD")
            .into_iter()
            .filter(|m| m["record"]["stream"] == stream)
            .map(|m| m["record"]["data"].clone())
            .collect()
    }

    /// The messages of one stream, as short tags: `STARTED`, `RECORD`, `STATE`, `ERROR`, …
    pub fn timeline(&self, stream: &str) -> Vec<String> {
        self.messages
            .iter()
            .filter_map(|m| match m["type"].as_str()? {
                "RECORD" if m["record"]["stream"] == stream => Some("RECORD".to_owned()),
                "STATE" if m["state"]["stream"]["stream_descriptor"]["name"] == stream => Some("STATE".to_owned()),
                "TRACE" if m["trace"]["type"] == "STREAM_STATUS" => {
                    (m["trace"]["stream_status"]["stream_descriptor"]["name"] == stream)
                        .then(|| m["trace"]["stream_status"]["status"].as_str().unwrap_or("?").to_owned())
                }
                "TRACE" if m["trace"]["type"] == "ERROR" => {
                    (m["trace"]["error"]["stream_descriptor"]["name"] == stream).then(|| "ERROR".to_owned())
                }
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<&Value> {
        self.of_type("TRACE")
            .into_iter()
            .filter(|m| m["trace"]["type"] == "ERROR")
            .map(|m| &m["trace"]["error"])
            .collect()
    }
}

/// Runs `source-instagram-host COMPONENT args…` like an operator who trusts the sandbox: the
/// origin of the `--config` file's `base_url` is allowed explicitly (`--allow-host`), since the
/// default policy refuses plain http and loopback addresses.
pub fn run_cli(args: &[&str]) -> Output {
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    if let Some(origin) = config_origin(&args) {
        args.extend(["--allow-host".to_owned(), origin]);
    }
    run_cli_raw(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn config_origin(args: &[String]) -> Option<String> {
    let path = args.iter().position(|a| a == "--config").and_then(|i| args.get(i + 1))?;
    let config: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let base = config.get("base_url")?.as_str()?;
    let (scheme, rest) = base.split_once("://")?;
    Some(format!("{scheme}://{}", rest.split('/').next()?))
}

/// Runs the CLI with exactly `args` (no implicit `--allow-host`) and parses stdout as JSON lines,
/// asserting that every stdout line is a protocol message. The stdout is also kept as a
/// transcript, which `make test` validates with the official Airbyte protocol models.
pub fn run_cli_raw(args: &[&str]) -> Output {
    run_cli_env(args, &[])
}

/// [`run_cli_raw`] with operator settings in the environment (`SOURCE_INSTAGRAM_*`); any such
/// variable of the test's own environment is removed first.
pub fn run_cli_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let output = run_json_lines_env(args, env);
    for message in &output.messages {
        assert!(message["type"].is_string(), "not an Airbyte message: {message}");
    }
    keep_transcript(&output.stdout);
    output
}

/// Where the e2e tests keep the stdout of every protocol run (`<test name>-<n>.jsonl`).
pub fn transcript_dir() -> PathBuf {
    workspace_root().join("target/e2e-transcripts")
}

/// Keeps one run's stdout under [`transcript_dir`] for the protocol-model check.
pub fn keep_transcript(stdout: &str) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let dir = transcript_dir();
    std::fs::create_dir_all(&dir).expect("transcript dir");
    let test = std::thread::current().name().unwrap_or("main").replace("::", ".");
    let file = format!("{test}-{}-{}.jsonl", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    std::fs::write(dir.join(file), stdout).expect("write transcript");
}

/// [`run_cli`] (the config's origin allowed), killed at `deadline`: a run that hangs fails the
/// test instead of stalling it. `Err` says how long it ran.
pub fn run_cli_within(args: &[&str], deadline: std::time::Duration) -> Result<Output, String> {
    let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    if let Some(origin) = config_origin(&args) {
        args.extend(["--allow-host".to_owned(), origin]);
    }
    let output = run_json_lines_within(&args.iter().map(String::as_str).collect::<Vec<_>>(), deadline)?;
    keep_transcript(&output.stdout);
    Ok(output)
}

/// Runs the host with exactly `args` (stdout JSON lines of any shape), killed at `deadline`.
pub fn run_json_lines_within(args: &[&str], deadline: std::time::Duration) -> Result<Output, String> {
    let mut command = Command::new(host_binary());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SOURCE_INSTAGRAM_")) {
        command.env_remove(name);
    }
    let piped = std::process::Stdio::piped;
    let mut child = command.arg(component()).args(args).stdout(piped()).stderr(piped()).spawn().expect("run the host");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {deadline:?}: killed"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stdout = String::from_utf8(stdout.join().expect("stdout")).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr")).into_owned();
    let messages = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")))
        .collect();
    Ok(Output { code: status.code().unwrap_or(-1), messages, stdout, stderr })
}

/// Runs the CLI with exactly `args`; stdout parsed as JSON lines of any shape.
pub fn run_json_lines(args: &[&str]) -> Output {
    run_json_lines_env(args, &[])
}

fn run_json_lines_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(host_binary());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SOURCE_INSTAGRAM_")) {
        command.env_remove(name);
    }
    let output = command.arg(component()).args(args).envs(env.iter().copied()).output().expect("run the host");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let messages = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}")))
        .collect();
    Output { code: output.status.code().unwrap_or(-1), messages, stdout, stderr }
}

pub fn config_for(sandbox: &Sandbox) -> Value {
    json!({"access_token": sandbox.token(), "base_url": sandbox.base_url(), "num_workers": 4})
}

/// A `start_date` `days` before today's UTC midnight: a short first sync for tests about something
/// else than history (a first sync of `user_daily_totals` otherwise asks for two years of days).
pub fn start_days_ago(days: i64) -> Value {
    let midnight = chrono::Utc::now().date_naive() - chrono::Duration::days(days);
    json!(format!("{midnight}T00:00:00Z"))
}

/// A configured catalog syncing `streams` in full refresh.
pub fn catalog_of(streams: &[&str]) -> Value {
    json!({"streams": streams.iter().map(|name| json!({
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
        "sync_mode": "full_refresh",
        "destination_sync_mode": "overwrite"
    })).collect::<Vec<_>>()})
}

/// Runs `read` of `streams` against `sandbox` with `config`.
pub fn read(scratch: &Scratch, config: &Value, streams: &[&str]) -> Output {
    let config = scratch.write("config.json", &config.to_string());
    let catalog = scratch.write("catalog.json", &catalog_of(streams).to_string());
    run_cli(&["read", "--config", path_str(&config), "--catalog", path_str(&catalog)])
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The sandbox path of a Graph API path (`/me/accounts` → `/v23.0/me/accounts`), under the one
/// API version the connector uses by default.
pub fn graph_path(path: &str) -> String {
    format!("/{}{path}", instagram_connector::model::API_VERSION)
}

/// A reference sample from `tests/fixtures/samples`.
pub fn sample(name: &str) -> Value {
    let path = workspace_root().join("tests/fixtures/samples").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("sample JSON")
}

/// Every stream, in `discover` order: the connector's stream registry.
pub use instagram_connector::streams::NAMES as ALL_STREAMS;

/// Every stream: incremental where the registry says it can be, the rest full refresh.
pub fn catalog_all() -> Value {
    json!({"streams": instagram_connector::streams::REGISTRY.iter().map(|stream| {
        let incremental = stream.supports_incremental();
        json!({
            "stream": {"name": stream.name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
            "sync_mode": if incremental { "incremental" } else { "full_refresh" },
            "destination_sync_mode": if incremental { "append" } else { "overwrite" }
        })
    }).collect::<Vec<_>>()})
}

/// Runs `read` with an explicit catalog and extra arguments (e.g. `--state`).
pub fn read_catalog(scratch: &Scratch, config: &Value, catalog: &Value, extra: &[&str]) -> Output {
    let config = scratch.write("config.json", &config.to_string());
    let catalog = scratch.write("catalog.json", &catalog.to_string());
    let mut args = vec!["read", "--config", path_str(&config), "--catalog", path_str(&catalog)];
    args.extend_from_slice(extra);
    run_cli(&args)
}

impl Output {
    pub fn logs(&self) -> Vec<String> {
        self.of_type("LOG").into_iter().filter_map(|m| m["log"]["message"].as_str().map(str::to_owned)).collect()
    }

    /// Every stream's records (data only, sorted, as JSON text): what must not change between runs.
    pub fn record_set(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut set: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
        for message in self.of_type("RECORD") {
            let stream = message["record"]["stream"].as_str().unwrap_or("").to_owned();
            set.entry(stream).or_default().push(message["record"]["data"].to_string());
        }
        set.values_mut().for_each(|v| v.sort());
        set
    }

    /// The last STATE of `stream`.
    pub fn last_state(&self, stream: &str) -> Option<Value> {
        self.of_type("STATE")
            .into_iter()
            .rev()
            .find(|m| m["state"]["stream"]["stream_descriptor"]["name"] == stream)
            .map(|m| m["state"]["stream"]["stream_state"].clone())
    }
}

/// The misbehaving test component, built for the tests by `build.rs`.
pub fn hostile_component() -> PathBuf {
    PathBuf::from(env!("GUEST_HOSTILE_COMPONENT"))
}

/// The most requests in flight at one instant, from the sandbox's timestamps (checked at every
/// arrival).
pub fn peak_in_flight(requests: &[graph_sandbox::LoggedRequest]) -> usize {
    requests
        .iter()
        .map(|r| requests.iter().filter(|o| o.received <= r.received && r.received < o.answered).count())
        .max()
        .unwrap_or(0)
}

/// The small model the multi-tenant test and benchmark sync: 2 accounts, 4 media, 1 story each.
pub fn small_model() -> graph_sandbox::model::Model {
    use graph_sandbox::model::{Model, ModelSpec};
    Model::generate(&ModelSpec { accounts: 2, media_per_account: 4, stories_per_account: 1, ..ModelSpec::default() })
}

/// The connector component, compiled once per test process (through the shared cache).
pub fn connector() -> instagram_host::Connector {
    static LOADED: std::sync::OnceLock<instagram_host::Connector> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| load(&component())).clone()
}

/// The hostile test component, compiled once per test process.
pub fn hostile_connector() -> instagram_host::Connector {
    static LOADED: std::sync::OnceLock<instagram_host::Connector> = std::sync::OnceLock::new();
    LOADED.get_or_init(|| load(&hostile_component())).clone()
}

fn load(path: &Path) -> instagram_host::Connector {
    let cache = instagram_host::engine::default_cache_dir();
    instagram_host::Connector::load(path, cache.as_deref()).expect("load the component").0
}

/// A seeded xorshift64* generator: random test parameters that replay exactly from their seed.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}
