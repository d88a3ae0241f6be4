//! The four verbs, independent of WebAssembly: the component glue and native tests both call
//! these with a [`Runtime`] and a [`Sink`].

use crate::catalog::{self, ConfiguredStream};
use crate::config::Config;
use crate::http::Runtime;
use crate::http::client::{Budgets, GraphClient, RetryPolicy};
use crate::model::{Account, SyncMode};
use crate::protocol::{Failure, FailureType, LogLevel, RedactingSink, Sink, StreamStatus};
use crate::state::InputState;
use crate::streams::{self, ChildRun, ParentRun, Pipes, ReadContext, Reader, StreamDef, StreamOutput, api};
use crate::window::MediaWindow;
use futures::FutureExt;
use futures::future::{LocalBoxFuture, Shared};
use std::collections::HashMap;
use std::rc::Rc;

/// The SPEC payload, compact JSON (checked and minified by `build.rs`).
pub fn spec() -> Result<String, Failure> {
    crate::packed::unpack(crate::packed::packed!("resources/spec.json"), "spec")
}

/// Validates the config, then reads the first page of `Api` (`docs/source-instagram.md` §10.2), or
/// each account of `account_ids`.
pub async fn check(config: &str, runtime: &dyn Runtime, sink: &dyn Sink) -> Result<(), Failure> {
    let text = config;
    let config = Config::parse(text)?;
    config.check_start_date(runtime.now())?;
    let (config, secrets) = with_refreshed_token(text, config, runtime, sink).await;
    let sink = RedactingSink::new(sink, secrets);
    let client = client_for(&config, RetryPolicy::quick(), &Budgets::default(), runtime, &sink);
    api::check(&client, &config).await.map_err(|failure| sink.redact_failure(&failure))?;
    crate::auth::warn_of_expiry(&config, runtime, &sink).await;
    Ok(())
}

/// The config to run with after Instagram Login's token refresh (see [`crate::auth`]), and the
/// secrets to redact: the config's, and the token the refresh replaced.
async fn with_refreshed_token(
    text: &str,
    config: Config,
    runtime: &dyn Runtime,
    sink: &dyn Sink,
) -> (Config, Vec<String>) {
    let previous = config.access_token.clone();
    let config = crate::auth::prepared(text, config, runtime, sink).await;
    let secrets = config.secrets().into_iter().chain([previous]).collect();
    (config, secrets)
}

pub fn discover(config: &str) -> Result<String, Failure> {
    catalog::discovered(&Config::parse(config)?.metrics)
}

/// Syncs the configured streams within the operator's `budgets`; see the WIT `read` for the
/// contract.
///
/// Every configured stream runs concurrently within the one `num_workers` request pool, started
/// as its [`streams::Reader`] says. Parents are read once: `Api` as a shared future, `media` and
/// `stories` through bounded page pipes that feed their children as pages arrive, so insights of
/// one page are fetched while the next page is read (a parent whose child is synced but which is
/// not is read only to feed it). Records of different streams may interleave (as in Airbyte's
/// concurrent CDK); each stream's own messages keep their order.
pub async fn read(
    config: &str,
    configured_catalog: &str,
    state: Option<&str>,
    budgets: &Budgets,
    runtime: &dyn Runtime,
    sink: &dyn Sink,
) -> Result<(), Failure> {
    let text = config;
    let config = Config::parse(text)?;
    config.check_start_date(runtime.now())?;
    let configured = catalog::parse_configured(configured_catalog)?;
    let state = InputState::parse(state)?;
    let (config, secrets) = with_refreshed_token(text, config, runtime, sink).await;
    let sink = RedactingSink::new(sink, secrets);
    let client = &client_for(&config, RetryPolicy::within(budgets.retry), budgets, runtime, &sink);
    let healer = crate::metrics::Healer::default();
    let ctx = &ReadContext { client, config: &config, state: &state, now: runtime.now(), sink: &sink, healer: &healer };

    let accounts: Accounts<'_> = api::read_all(client, &config).map(|r| r.map(Rc::new)).boxed_local().shared();
    let account_list = || {
        let accounts = accounts.clone();
        async move { Ok::<_, Failure>(accounts.await?.iter().map(|(_, a)| a.clone()).collect::<Vec<Account>>()) }
    };
    // Each configured stream planned once, and a pipe from its parent for each child, carrying
    // the child's window so that the parent pages only as far back as its readers need.
    let plans: Vec<Result<Plan, Failure>> = configured.iter().map(|s| plan(s, ctx)).collect();
    let mut pipes: HashMap<&str, Pipes> = HashMap::new();
    let mut intakes: Vec<_> = plans
        .iter()
        .map(|plan| match plan {
            Ok(Plan { def: StreamDef { reader: Reader::Child { parent, .. }, .. }, window, .. }) => {
                Some(pipes.entry(*parent).or_default().open(window.clone()))
            }
            _ => None,
        })
        .collect();
    let outputs: Vec<StreamOutput<'_>> = configured
        .iter()
        .zip(&plans)
        .map(|(s, p)| StreamOutput::new(&s.name, p.as_ref().map_or(SyncMode::FullRefresh, |plan| plan.mode), &sink))
        .collect();
    // A parent's edge, read once the accounts are known, for its own output (if synced) and its
    // children; a failure to list the accounts reaches the children through their pipes.
    let run_parent = |read: fn(ParentRun<'_>) -> streams::Reading<'_>, out, window, pipes: Pipes| {
        let accounts = account_list();
        async move {
            match accounts.await {
                Ok(accounts) => read(ParentRun { ctx, accounts: &accounts, out, window, pipes }).await,
                Err(failure) => {
                    pipes.feed(Err(failure.clone())).await;
                    Err(failure)
                }
            }
        }
    };

    let mut tasks: Vec<LocalBoxFuture<'_, Option<(&str, FailureType)>>> = Vec::new();
    for (index, ((stream, out), plan)) in configured.iter().zip(&outputs).zip(plans).enumerate() {
        // Incremental-capable streams checkpoint their own cursor state.
        let checkpoints_itself = plan.as_ref().is_ok_and(|plan| plan.def.supports_incremental());
        let body: LocalBoxFuture<'_, Result<(), Failure>> = match plan {
            Err(failure) => async move { Err(failure) }.boxed_local(),
            Ok(Plan { def, window, .. }) => match (&def.reader, intakes[index].take()) {
                (Reader::Accounts, _) => {
                    let accounts = accounts.clone();
                    async move {
                        // Accounts picked by id without a Page have no Api record.
                        accounts.await?.iter().filter_map(|(record, _)| record.as_ref()).for_each(|r| out.emit(r));
                        Ok(())
                    }
                    .boxed_local()
                }
                (Reader::PerAccount(read), _) => {
                    async move { read(ctx, &account_list().await?, out).await }.boxed_local()
                }
                (Reader::Parent(read), _) => {
                    run_parent(*read, Some(out), window, pipes.remove(def.name).unwrap_or_default()).boxed_local()
                }
                (Reader::Child { read, .. }, Some(pages)) => read(ChildRun { ctx, pages, window }, out),
                (Reader::Child { .. }, None) => {
                    async { Err(Failure::system("a child stream has no pipe")) }.boxed_local()
                }
            },
        };
        tasks.push(run_stream(stream, out, checkpoints_itself, &sink, body).boxed_local());
    }
    // Parents that are not synced (or could not start) still feed their synced children.
    for (parent, pipes) in pipes {
        let Some(Reader::Parent(read)) = streams::find(parent).map(|def| &def.reader) else { continue };
        let feeding = run_parent(*read, None, None, pipes);
        tasks.push(
            async move {
                let _ = feeding.await;
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

/// How one configured stream is read: its definition, its mode after the catalog rules, and,
/// for a stream that reads the media edge through one, its window (made here, once).
struct Plan {
    def: &'static StreamDef,
    mode: SyncMode,
    window: Option<Rc<MediaWindow>>,
}

/// Plans `stream`; `Err` fails that stream alone (unknown, or a state it cannot read).
fn plan(stream: &ConfiguredStream, ctx: &ReadContext<'_>) -> Result<Plan, Failure> {
    let (def, mode) = resolve(stream, ctx.sink)?;
    let window = match def.windowed {
        true => {
            let lookback = ctx.config.insights_lookback_days;
            Some(Rc::new(MediaWindow::new(def.name, mode, ctx.state.get(def.name), lookback)?))
        }
        false => None,
    };
    Ok(Plan { def, mode, window })
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
    budgets: &Budgets,
    runtime: &'a dyn Runtime,
    sink: &'a dyn Sink,
) -> GraphClient<'a> {
    GraphClient::new(&config.base_url, &config.access_token, config.num_workers, policy, runtime, sink)
        .paced(config.optimizations.pace_requests, budgets)
}

/// The accounts, read once and awaited by every stream that needs them.
type Accounts<'a> = Shared<LocalBoxFuture<'a, Result<Rc<Vec<api::SyncedAccount>>, Failure>>>;

/// The configured-catalog rules of Airbyte's Python CDK (`AbstractSource.read`, 7.x): a stream
/// that `discover` does not list fails alone with a `config_error`; `incremental` asked for a
/// full-refresh-only stream reads it in full refresh (PyAirbyte asks `incremental` for every
/// stream). `destination_sync_mode` and `cursor_field` / `primary_key` overrides are the
/// destination's business and are ignored, as the CDK ignores them for source-defined cursors
/// and keys.
fn resolve(stream: &ConfiguredStream, sink: &dyn Sink) -> Result<(&'static StreamDef, SyncMode), Failure> {
    let Some(def) = streams::find(&stream.name) else {
        return Err(Failure::config(format!(
            "The stream `{}` in your connection configuration was not found in the source. Refresh the schema in your replication settings and remove this stream from future sync attempts.",
            stream.name
        )));
    };
    if stream.sync_mode == SyncMode::Incremental && !def.supports_incremental() {
        sink.log(
            LogLevel::Info,
            &format!(
                "The stream `{}` supports only full_refresh; the catalog asks for incremental, so it is read in full refresh.",
                stream.name
            ),
        );
        return Ok((def, SyncMode::FullRefresh));
    }
    Ok((def, stream.sync_mode))
}

/// One stream's life: STARTED, its records, a final state, COMPLETE; or TRACE ERROR and
/// INCOMPLETE. Returns the stream's name and failure type if it failed.
async fn run_stream<'s>(
    stream: &'s ConfiguredStream,
    out: &StreamOutput<'_>,
    checkpoints_itself: bool,
    sink: &dyn Sink,
    body: impl Future<Output = Result<(), Failure>>,
) -> Option<(&'s str, FailureType)> {
    sink.stream_status(&stream.name, StreamStatus::Started, None);
    let result = body.await;
    sink.log(LogLevel::Info, &format!("{}: {} records", stream.name, out.emitted()));
    match result {
        Ok(()) => {
            if !checkpoints_itself {
                out.checkpoint(&crate::model::final_full_refresh_state());
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
