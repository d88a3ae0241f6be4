//! The four verbs, independent of WebAssembly: the component glue and native tests both call
//! these with a [`Runtime`] and a [`Sink`].

use crate::catalog::{self, ConfiguredStream, SyncMode};
use crate::config::Config;
use crate::graph::Account;
use crate::http::Runtime;
use crate::http::client::{GraphClient, RetryPolicy};
use crate::protocol::{Failure, FailureType, LogLevel, RedactingSink, Sink, StreamStatus};
use crate::state::{InputState, PartitionCursors};
use crate::streams::{
    self, PageSender, StreamOutput, api, media, media_insights, stories, story_insights, user_insights,
    user_lifetime_insights, users,
};
use futures::FutureExt;
use futures::channel::mpsc::UnboundedReceiver;
use futures::future::{LocalBoxFuture, Shared};
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
    config.check_start_date(runtime.now())?;
    let sink = RedactingSink::new(sink, config.secrets());
    // A connection check should answer in seconds, not after the sync's 310 s retry budget.
    let policy =
        RetryPolicy { max_retries: 2, backoff_factor: std::time::Duration::from_secs(1), ..RetryPolicy::default() };
    let client = client_for(&config, policy, runtime, &sink);
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
///
/// Every configured stream runs concurrently within the one `num_workers` request pool. Parents
/// are read once: `Api` as a shared future, `media` and `stories` as page pipelines whose pages
/// feed `media_insights` / `story_insights` as they arrive, so insights of one page are fetched
/// while the next page is read. Records of different streams may interleave (as in Airbyte's
/// concurrent CDK); each stream's own messages keep their order.
pub async fn read(
    config: &str,
    configured_catalog: &str,
    state: Option<&str>,
    runtime: &dyn Runtime,
    sink: &dyn Sink,
) -> Result<(), Failure> {
    let config = Config::parse(config)?;
    config.check_start_date(runtime.now())?;
    let configured = catalog::parse_configured(configured_catalog)?;
    let state = InputState::parse(state)?;
    let sink = RedactingSink::new(sink, config.secrets());
    let client = &client_for(&config, RetryPolicy::default(), runtime, &sink);
    let selected = |name: &str| configured.iter().any(|s| s.name == name);
    let optimizations = config.optimizations;
    let fan_out = config.num_workers * 2;

    let accounts: Accounts<'_> =
        api::read_all(client).map(|r| r.map(Rc::new).map_err(|e| e.to_failure())).boxed_local().shared();
    let account_list = || {
        let accounts = accounts.clone();
        async move { Ok::<_, Failure>(accounts.await?.iter().map(|(_, a)| a.clone()).collect::<Vec<Account>>()) }
    };
    let (media_refs, media_insights_refs) = pipe(selected(media_insights::NAME));
    let (story_refs, story_insights_refs) = pipe(selected(story_insights::NAME));
    let mut media_insights_refs = media_insights_refs;
    let mut story_insights_refs = story_insights_refs;
    let outputs: Vec<StreamOutput<'_>> = configured.iter().map(|s| StreamOutput::new(&s.name, &sink)).collect();

    let mut tasks: Vec<LocalBoxFuture<'_, Option<(&str, FailureType)>>> = Vec::new();
    for (stream, out) in configured.iter().zip(&outputs) {
        let body: LocalBoxFuture<'_, Result<(), Failure>> = match effective_sync_mode(stream, &sink) {
            Err(failure) => async move { Err(failure) }.boxed_local(),
            Ok(sync_mode) => match stream.name.as_str() {
                api::NAME => {
                    let accounts = accounts.clone();
                    async move {
                        accounts.await?.iter().for_each(|(record, _)| out.emit(record));
                        Ok(())
                    }
                    .boxed_local()
                }
                users::NAME => async { users::read(client, &account_list().await?, out).await }.boxed_local(),
                media::NAME => {
                    let refs = media_refs.clone();
                    async move {
                        let accounts = account_list().await.inspect_err(|f| send_failure(&refs, f))?;
                        media::produce(client, &accounts, optimizations.expand_children, Some(out), refs.as_ref()).await
                    }
                    .boxed_local()
                }
                media_insights::NAME => match media_insights_refs.take() {
                    Some(refs) => {
                        media_insights::consume(client, refs, optimizations.batch_insights, fan_out, out).boxed_local()
                    }
                    None => async { Err(Failure::system("media_insights is listed twice")) }.boxed_local(),
                },
                stories::NAME => {
                    let refs = story_refs.clone();
                    async move {
                        let accounts = account_list().await.inspect_err(|f| send_failure(&refs, f))?;
                        stories::produce(client, &accounts, Some(out), refs.as_ref()).await
                    }
                    .boxed_local()
                }
                story_insights::NAME => match story_insights_refs.take() {
                    Some(refs) => {
                        story_insights::consume(client, refs, optimizations.batch_insights, out).boxed_local()
                    }
                    None => async { Err(Failure::system("story_insights is listed twice")) }.boxed_local(),
                },
                user_lifetime_insights::NAME => {
                    async { user_lifetime_insights::read(client, &account_list().await?, fan_out, out).await }
                        .boxed_local()
                }
                user_insights::NAME => {
                    // A full refresh ignores incoming state (reference §13).
                    let incoming = match sync_mode {
                        SyncMode::Incremental => state.get(user_insights::NAME),
                        SyncMode::FullRefresh => None,
                    };
                    let plan = PartitionCursors::from_state(incoming).map(|cursors| {
                        let mut plan = user_insights::Plan {
                            now: runtime.now(),
                            start_date: config.start_date,
                            cursors,
                            window_days: if optimizations.insights_ranges { user_insights::MAX_RANGE_DAYS } else { 1 },
                        };
                        plan.clamp_future_cursors().iter().for_each(|warning| sink.log(LogLevel::Warn, warning));
                        plan
                    });
                    let num_workers = config.num_workers;
                    async move {
                        let plan = plan?;
                        user_insights::read(client, &account_list().await?, &plan, num_workers, out).await
                    }
                    .boxed_local()
                }
                other => {
                    let failure = Failure::system(format!("The stream `{other}` has no reader."));
                    async move { Err(failure) }.boxed_local()
                }
            },
        };
        tasks.push(run_stream(stream, out, &sink, body).boxed_local());
    }
    // Parents whose stream is not synced still feed their children.
    if let (Some(refs), false) = (media_refs, selected(media::NAME)) {
        tasks.push(
            async move {
                if let Ok(accounts) = account_list().await.inspect_err(|f| send_failure(&Some(refs.clone()), f)) {
                    let _ = media::produce(client, &accounts, false, None, Some(&refs)).await;
                }
                None
            }
            .boxed_local(),
        );
    }
    if let (Some(refs), false) = (story_refs, selected(stories::NAME)) {
        tasks.push(
            async move {
                if let Ok(accounts) = account_list().await.inspect_err(|f| send_failure(&Some(refs.clone()), f)) {
                    let _ = stories::produce(client, &accounts, None, Some(&refs)).await;
                }
                None
            }
            .boxed_local(),
        );
    }
    let failed: Vec<(&str, FailureType)> = futures::future::join_all(tasks).await.into_iter().flatten().collect();

    sink.log(
        LogLevel::Info,
        &format!(
            "Read done: {} HTTP round trips, {} retries, at most {} requests in flight.",
            client.counters.round_trips.get(),
            client.counters.retries.get(),
            client.peak_in_flight()
        ),
    );
    summarize_failures(&failed)
}

/// The read's closing failure: it names the failed streams and carries the most pressing of
/// their failure types (system, then transient, then config), so it never contradicts them.
fn summarize_failures(failed: &[(&str, FailureType)]) -> Result<(), Failure> {
    let Some(failure_type) = [FailureType::SystemError, FailureType::TransientError, FailureType::ConfigError]
        .into_iter()
        .find(|wanted| failed.iter().any(|(_, t)| t == wanted))
    else {
        return Ok(());
    };
    let names: Vec<&str> = failed.iter().map(|(name, _)| *name).collect();
    Err(Failure::new(
        failure_type,
        format!("During the sync, the following streams did not sync successfully: {}", names.join(", ")),
    ))
}

fn client_for<'a>(
    config: &Config,
    policy: RetryPolicy,
    runtime: &'a dyn Runtime,
    sink: &'a dyn Sink,
) -> GraphClient<'a> {
    GraphClient::new(&config.base_url, &config.access_token, config.num_workers, policy, runtime, sink)
}

/// The accounts, read once and awaited by every stream that needs them.
type Accounts<'a> = Shared<LocalBoxFuture<'a, Result<Rc<Vec<(Value, Account)>>, Failure>>>;

/// The receiving end of a page pipeline.
type PageReceiver<T> = UnboundedReceiver<Result<T, Failure>>;

/// A page pipeline from a parent to its child stream, when the child is synced.
fn pipe<T>(wanted: bool) -> (Option<PageSender<T>>, Option<PageReceiver<T>>) {
    if !wanted {
        return (None, None);
    }
    let (sender, receiver) = futures::channel::mpsc::unbounded();
    (Some(sender), Some(receiver))
}

fn send_failure<T>(refs: &Option<PageSender<T>>, failure: &Failure) {
    if let Some(refs) = refs {
        let _ = refs.unbounded_send(Err(failure.clone()));
    }
}

/// The configured-catalog rules of Airbyte's Python CDK (`AbstractSource.read`, 7.x): a stream
/// that `discover` does not list fails alone with a `config_error`; `incremental` asked for a
/// full-refresh-only stream reads it in full refresh (PyAirbyte asks `incremental` for every
/// stream). `destination_sync_mode` and `cursor_field` / `primary_key` overrides are the
/// destination's business and are ignored, as the CDK ignores them for source-defined cursors
/// and keys.
fn effective_sync_mode(stream: &ConfiguredStream, sink: &dyn Sink) -> Result<SyncMode, Failure> {
    if !streams::ALL.contains(&stream.name.as_str()) {
        return Err(Failure::config(format!(
            "The stream `{}` in your connection configuration was not found in the source. Refresh the schema in your replication settings and remove this stream from future sync attempts.",
            stream.name
        )));
    }
    if stream.sync_mode == SyncMode::Incremental && !catalog::supports_incremental(&stream.name) {
        sink.log(
            LogLevel::Info,
            &format!(
                "The stream `{}` supports only full_refresh; the catalog asks for incremental, so it is read in full refresh.",
                stream.name
            ),
        );
        return Ok(SyncMode::FullRefresh);
    }
    Ok(stream.sync_mode)
}

/// One stream's life: STARTED, its records, a final state, COMPLETE; or TRACE ERROR and
/// INCOMPLETE. Returns the stream's name and failure type if it failed.
async fn run_stream<'s>(
    stream: &'s ConfiguredStream,
    out: &StreamOutput<'_>,
    sink: &dyn Sink,
    body: impl Future<Output = Result<(), Failure>>,
) -> Option<(&'s str, FailureType)> {
    sink.stream_status(&stream.name, StreamStatus::Started, None);
    let result = body.await;
    sink.log(LogLevel::Info, &format!("{}: {} records", stream.name, out.emitted()));
    match result {
        Ok(()) => {
            // Incremental-capable streams checkpoint their own cursor state.
            if !catalog::supports_incremental(&stream.name) {
                out.checkpoint(&streams::final_full_refresh_state());
            }
            sink.stream_status(&stream.name, StreamStatus::Complete, None);
            None
        }
        Err(failure) => {
            sink.error(Some(&stream.name), &failure);
            sink.stream_status(&stream.name, StreamStatus::Incomplete, None);
            Some((stream.name.as_str(), failure.failure_type))
        }
    }
}
