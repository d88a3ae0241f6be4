//! The four verbs, independent of WebAssembly: the component glue and native tests both call
//! these with a [`Runtime`] and a [`Sink`].

use crate::catalog::{self, ConfiguredStream, SyncMode};
use crate::config::Config;
use crate::graph::Account;
use crate::http::Runtime;
use crate::http::client::{GraphClient, RetryPolicy};
use crate::protocol::{Failure, LogLevel, RedactingSink, Sink, StreamStatus};
use crate::state::InputState;
use crate::streams::{self, StreamOutput, api, users};
use serde_json::Value;

const SPEC_JSON: &str = include_str!("../resources/spec.json");

/// The SPEC payload, compact JSON.
pub fn spec() -> Result<String, Failure> {
    let spec: Value = serde_json::from_str(SPEC_JSON)
        .map_err(|e| Failure::system(format!("The built-in spec is not valid JSON: {e}")))?;
    Ok(spec.to_string())
}

/// Validates the config, then reads the first page of `Api` (reference §10.2).
pub async fn check(config: &str, runtime: &dyn Runtime, sink: &dyn Sink) -> Result<(), Failure> {
    let config = Config::parse(config)?;
    let sink = RedactingSink::new(sink, config.secrets());
    // A connection check should answer in seconds, not after the sync's 310 s retry budget.
    let policy =
        RetryPolicy { max_retries: 2, backoff_factor: std::time::Duration::from_secs(1), ..RetryPolicy::default() };
    let client = GraphClient::new(&config.base_url, &config.access_token, config.num_workers, policy, runtime, &sink);
    api::read_first_page(&client).await.map_err(|e| {
        let failure = e.to_failure();
        Failure { message: sink.redact(&failure.message), ..failure }
    })
}

pub fn discover(config: &str) -> Result<String, Failure> {
    Config::parse(config)?;
    catalog::discovered()
}

/// Syncs the configured streams; see the WIT `read` for the contract.
pub async fn read(
    config: &str,
    configured_catalog: &str,
    state: Option<&str>,
    runtime: &dyn Runtime,
    sink: &dyn Sink,
) -> Result<(), Failure> {
    let config = Config::parse(config)?;
    let configured = catalog::parse_configured(configured_catalog)?;
    let _state = InputState::parse(state)?;
    let sink = RedactingSink::new(sink, config.secrets());
    let client = client_for(&config, runtime, &sink);
    let mut sync = Sync { client: &client, accounts: None };

    let mut failed = Vec::new();
    for stream in &configured {
        sink.stream_status(&stream.name, StreamStatus::Started, None);
        let out = StreamOutput::new(&stream.name, &sink);
        match sync.read_stream(stream, &out).await {
            Ok(()) => {
                out.checkpoint(&streams::final_full_refresh_state());
                sink.stream_status(&stream.name, StreamStatus::Complete, None);
            }
            Err(failure) => {
                sink.error(Some(&stream.name), &failure);
                sink.stream_status(&stream.name, StreamStatus::Incomplete, None);
                failed.push(stream.name.as_str());
            }
        }
        sink.log(LogLevel::Info, &format!("{}: {} records", stream.name, out.emitted()));
    }
    sink.log(
        LogLevel::Info,
        &format!(
            "Read done: {} HTTP round trips, {} retries, at most {} requests in flight.",
            client.counters.round_trips.get(),
            client.counters.retries.get(),
            client.peak_in_flight()
        ),
    );
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::config(format!(
            "During the sync, the following streams did not sync successfully: {}",
            failed.join(", ")
        )))
    }
}

fn client_for<'a>(config: &Config, runtime: &'a dyn Runtime, sink: &'a dyn Sink) -> GraphClient<'a> {
    GraphClient::new(&config.base_url, &config.access_token, config.num_workers, RetryPolicy::default(), runtime, sink)
}

/// What one `read` shares between its streams: parents are fetched once.
struct Sync<'c> {
    client: &'c GraphClient<'c>,
    accounts: Option<Result<Vec<(Value, Account)>, Failure>>,
}

impl Sync<'_> {
    async fn accounts(&mut self) -> Result<&[(Value, Account)], Failure> {
        if self.accounts.is_none() {
            self.accounts = Some(api::read_all(self.client).await.map_err(|e| e.to_failure()));
        }
        match &self.accounts {
            Some(Ok(accounts)) => Ok(accounts),
            Some(Err(failure)) => Err(failure.clone()),
            None => Err(Failure::system("accounts were not loaded")),
        }
    }

    async fn read_stream(&mut self, stream: &ConfiguredStream, out: &StreamOutput<'_>) -> Result<(), Failure> {
        if !streams::ALL.contains(&stream.name.as_str()) {
            return Err(Failure::config(format!(
                "The stream `{}` in your connection configuration was not found in the source. Refresh the schema in your replication settings and remove this stream from future sync attempts.",
                stream.name
            )));
        }
        if stream.sync_mode == SyncMode::Incremental && !catalog::supports_incremental(&stream.name) {
            return Err(Failure::config(format!(
                "The stream `{}` supports only full_refresh, but the catalog asks for incremental.",
                stream.name
            )));
        }
        match stream.name.as_str() {
            api::NAME => {
                for (record, _) in self.accounts().await? {
                    out.emit(record);
                }
                Ok(())
            }
            users::NAME => {
                let accounts: Vec<Account> = self.accounts().await?.iter().map(|(_, a)| a.clone()).collect();
                users::read(self.client, &accounts, out).await
            }
            other => {
                Err(Failure::system(format!("The stream `{other}` is not supported yet by this connector version.")))
            }
        }
    }
}
