//! Embedding the host in another program: load the component once, allow one origin, cap the
//! run, and receive the records through a `MessageSink`. Discovers the streams and syncs them all
//! from the Graph API sandbox at BASE_URL, or from an in-process one; records go to stdout as
//! `{"stream", "data"}` lines, everything else to stderr.
//!
//! `cargo run --release -p instagram-host --example sync_from_sandbox [BASE_URL]` (after `make build`).
use graph_sandbox::{Sandbox, SandboxOptions, model::Model, model::ModelSpec};
use instagram_host::{Connector, Failure, Limits, LogLevel, MessageSink, RunOptions, StreamStatus};
use serde_json::{Value, json, value::RawValue};
use std::sync::{Arc, Mutex};

/// Prints records on stdout and everything else on stderr.
struct Print;

impl MessageSink for Print {
    fn record(&mut self, stream: &str, data: &RawValue) {
        println!("{}", json!({"stream": stream, "data": data}));
    }
    fn state(&mut self, stream: &str, state: &RawValue, records: u64) {
        eprintln!("state of {stream} after {records} records: {state}");
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        eprintln!("{level:?}: {message}");
    }
    fn stream_status(&mut self, stream: &str, status: StreamStatus, _: Option<u64>) {
        eprintln!("{stream}: {status:?}");
    }
    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        eprintln!("error in {stream:?}: {}", failure.message);
    }
    fn config_updated(&mut self, _config: &RawValue) {
        // A refreshed token (Instagram Login): an embedder keeps it for the next run.
        eprintln!("the connector handed back an updated config");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let in_process = Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default())))?;
    let base_url = std::env::args().nth(1).unwrap_or_else(|| in_process.base_url());
    let component =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../target/guests/wasm32-wasip2/release/instagram_connector.wasm");
    let connector = Connector::from_file(component.as_ref())?;

    let config = json!({"access_token": in_process.token(), "base_url": base_url}).to_string();
    let origin = base_url.split('/').take(3).collect::<Vec<_>>().join("/");
    let options = RunOptions {
        limits: Limits { memory_bytes: 128 << 20, ..Limits::default() },
        ..RunOptions::for_config(&config)
    }
    .allow_origin(origin.parse()?);
    let sink = Arc::new(Mutex::new(Print));

    // Every discovered stream, asked `incremental` as PyAirbyte does (full-refresh-only ones are
    // then read in full refresh).
    let catalog: Value = serde_json::from_str(&connector.discover(&options, sink.clone(), &config).await??)?;
    let streams = catalog["streams"].as_array().into_iter().flatten();
    let streams: Vec<Value> = streams.map(|s| json!({"stream": s, "sync_mode": "incremental"})).collect();
    let outcome = connector.read(&options, sink, &config, &json!({ "streams": streams }).to_string(), None).await?;
    eprintln!("read done: {:?}", outcome.map_err(|f| f.message));
    Ok(())
}
