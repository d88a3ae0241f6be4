//! Embedding the host in another program: load the component once, allow one origin, cap the
//! run, and receive the records through a `MessageSink`. Syncs `Api` and `users` from an
//! in-process Graph API sandbox.
//!
//! `cargo run --release -p instagram-host --example sync_from_sandbox` (after `make build`).
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_host::{Connector, Failure, Limits, LogLevel, MessageSink, RunOptions, StreamStatus};
use serde_json::{json, value::RawValue};
use std::sync::{Arc, Mutex};

/// Collects records; prints everything else.
#[derive(Default)]
struct Collect(Vec<(String, String)>);

impl MessageSink for Collect {
    fn record(&mut self, stream: &str, data: &RawValue) {
        self.0.push((stream.to_owned(), data.get().to_owned()));
    }
    fn state(&mut self, stream: &str, state: &RawValue, records: u64) {
        println!("state of {stream} after {records} records: {state}");
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        println!("{level:?}: {message}");
    }
    fn stream_status(&mut self, stream: &str, status: StreamStatus, _: Option<u64>) {
        println!("{stream}: {status:?}");
    }
    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        println!("error in {stream:?}: {}", failure.message);
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sandbox = Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default())))?;
    let component = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/wasm32-wasip2/release/instagram_connector.wasm");
    let connector = Connector::from_file(component.as_ref())?;

    let config = json!({"access_token": sandbox.token(), "base_url": sandbox.base_url()}).to_string();
    let streams = ["Api", "users"].map(|name| json!({"stream": {"name": name}, "sync_mode": "full_refresh"}));
    let catalog = json!({ "streams": streams });
    let options = RunOptions {
        limits: Limits { memory_bytes: 128 << 20, ..Limits::default() },
        ..RunOptions::for_config(&config)
    }
    .allow_origin(format!("http://{}", sandbox.addr()).parse()?);

    let sink = Arc::new(Mutex::new(Collect::default()));
    let outcome = connector.read(&options, sink.clone(), &config, &catalog.to_string(), None).await?;
    let records = &sink.lock().map_err(|_| "poisoned")?.0;
    println!("read {} records ({:?})", records.len(), outcome.map_err(|f| f.message));
    for (stream, data) in records.iter().take(2) {
        println!("{stream}: {data}");
    }
    Ok(())
}
