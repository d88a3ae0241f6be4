//! The four verbs, independent of WebAssembly: the component glue and native tests both call
//! these with a [`Runtime`] and a [`Sink`].

use crate::catalog::{self, ConfiguredStream, SyncMode};
use crate::config::Config;
use crate::graph::Account;
use crate::http::Runtime;
use crate::http::client::{GraphClient, RetryPolicy};
use crate::protocol::{Failure, LogLevel, RedactingSink, Sink, StreamStatus};
use crate::state::{InputState, PartitionCursors};
use crate::streams::media::MediaRef;
use crate::streams::stories::StoryRef;
use crate::streams::{
    self, StreamOutput, api, media, media_insights, stories, story_insights, user_insights, user_lifetime_insights,
    users,
};
use serde_json::Value;
use std::rc::Rc;

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
    let state = InputState::parse(state)?;
    let sink = RedactingSink::new(sink, config.secrets());
    let client = client_for(&config, runtime, &sink);
    let selected: Vec<&str> = configured.iter().map(|s| s.name.as_str()).collect();
    let mut sync = Sync {
        client: &client,
        config: &config,
        state: &state,
        media_with_children: selected.contains(&media::NAME),
        accounts: None,
        media: None,
        stories: None,
    };

    let mut failed = Vec::new();
    for stream in &configured {
        sink.stream_status(&stream.name, StreamStatus::Started, None);
        let out = StreamOutput::new(&stream.name, &sink);
        match sync.read_stream(stream, &out).await {
            Ok(()) => {
                if stream.name != user_insights::NAME {
                    out.checkpoint(&streams::final_full_refresh_state());
                }
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

/// A parent read once per sync and shared by its children (or its failure, shared likewise).
type Parent<T> = Option<Result<Rc<Vec<T>>, Failure>>;

/// What one `read` shares between its streams.
struct Sync<'c> {
    client: &'c GraphClient<'c>,
    config: &'c Config,
    state: &'c InputState,
    /// Carousel slides are fetched only when `media` itself is synced.
    media_with_children: bool,
    accounts: Parent<(Value, Account)>,
    media: Parent<(Value, MediaRef)>,
    stories: Parent<(Value, StoryRef)>,
}

fn shared<T>(parent: &Parent<T>) -> Result<Rc<Vec<T>>, Failure> {
    match parent {
        Some(Ok(items)) => Ok(items.clone()),
        Some(Err(failure)) => Err(failure.clone()),
        None => Err(Failure::system("a parent stream was not loaded")),
    }
}

impl Sync<'_> {
    /// Requests a fan-out keeps queued: enough to keep every worker busy.
    fn fan_out(&self) -> usize {
        self.config.num_workers * 2
    }

    async fn accounts(&mut self) -> Result<Rc<Vec<(Value, Account)>>, Failure> {
        if self.accounts.is_none() {
            self.accounts = Some(api::read_all(self.client).await.map(Rc::new).map_err(|e| e.to_failure()));
        }
        shared(&self.accounts)
    }

    async fn account_list(&mut self) -> Result<Vec<Account>, Failure> {
        Ok(self.accounts().await?.iter().map(|(_, account)| account.clone()).collect())
    }

    async fn media(&mut self) -> Result<Rc<Vec<(Value, MediaRef)>>, Failure> {
        if self.media.is_none() {
            let accounts = self.account_list().await?;
            let media = media::read_all(self.client, &accounts, self.media_with_children).await;
            self.media = Some(media.map(Rc::new));
        }
        shared(&self.media)
    }

    async fn stories(&mut self) -> Result<Rc<Vec<(Value, StoryRef)>>, Failure> {
        if self.stories.is_none() {
            let accounts = self.account_list().await?;
            self.stories = Some(stories::read_all(self.client, &accounts).await.map(Rc::new));
        }
        shared(&self.stories)
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
        let fan_out = self.fan_out();
        match stream.name.as_str() {
            api::NAME => {
                self.accounts().await?.iter().for_each(|(record, _)| out.emit(record));
                Ok(())
            }
            users::NAME => users::read(self.client, &self.account_list().await?, out).await,
            media::NAME => {
                media::emit(&self.media().await?, out);
                Ok(())
            }
            media_insights::NAME => {
                let media: Vec<MediaRef> = self.media().await?.iter().map(|(_, m)| m.clone()).collect();
                media_insights::read(self.client, &media, fan_out, out).await
            }
            stories::NAME => {
                self.stories().await?.iter().for_each(|(record, _)| out.emit(record));
                Ok(())
            }
            story_insights::NAME => {
                let stories: Vec<StoryRef> = self.stories().await?.iter().map(|(_, s)| s.clone()).collect();
                story_insights::read(self.client, &stories, fan_out, out).await
            }
            user_lifetime_insights::NAME => {
                user_lifetime_insights::read(self.client, &self.account_list().await?, fan_out, out).await
            }
            user_insights::NAME => {
                // A full refresh ignores incoming state (reference §13).
                let state = match stream.sync_mode {
                    SyncMode::Incremental => self.state.get(user_insights::NAME),
                    SyncMode::FullRefresh => None,
                };
                let plan = user_insights::Plan {
                    now: self.client.runtime().now(),
                    start_date: self.config.start_date,
                    cursors: PartitionCursors::from_state(state)?,
                };
                let accounts = self.account_list().await?;
                user_insights::read(self.client, &accounts, &plan, self.config.num_workers, out).await
            }
            other => Err(Failure::system(format!("The stream `{other}` has no reader."))),
        }
    }
}
