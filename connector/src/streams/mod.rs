//! The stream registry: one module per stream, each declaring a [`StreamDef`] (name, schema,
//! keys, cursor, sync modes, parent and entry point), and [`REGISTRY`], the one list of them.
//! `discover`, the catalog rules, the parent→child wiring in [`crate::source`], the demo and the
//! tests all read this list, so adding a stream is one file plus one line here. Also what every
//! stream uses while it reads: its [`StreamOutput`], and the pipes between parents and children.

pub mod api;
pub mod comments;
pub mod media;
pub mod media_insights;
pub mod stories;
pub mod story_insights;
pub mod user_daily_totals;
pub mod user_insights;
pub mod user_lifetime_insights;
pub mod users;

use crate::config::Config;
use crate::graph::{IgnoreRule, Metrics};
use crate::http::batch::MAX_BATCH;
use crate::http::client::GraphClient;
use crate::metrics::{Chosen, Healer, InsightsItem, Scope, get_insights};
use crate::model::{Account, ObjectRef, Page, SyncMode};
use crate::protocol::{Failure, Sink, StreamStatus};
use crate::record::RawRecord;
use crate::state::{InputState, PartitionCursors};
use crate::window::MediaWindow;
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Every stream, in `discover` order (`docs/source-instagram.md` §10.3).
pub const REGISTRY: [&StreamDef; 10] = [
    &media::STREAM,
    &media_insights::STREAM,
    &users::STREAM,
    &user_lifetime_insights::STREAM,
    &stories::STREAM,
    &story_insights::STREAM,
    &api::STREAM,
    &user_insights::STREAM,
    &comments::STREAM,
    &user_daily_totals::STREAM,
];

/// The stream names, in registry order.
pub const NAMES: [&str; REGISTRY.len()] = {
    let mut names = [""; REGISTRY.len()];
    let mut index = 0;
    while index < REGISTRY.len() {
        names[index] = REGISTRY[index].name;
        index += 1;
    }
    names
};

/// The stream called `name`.
pub fn find(name: &str) -> Option<&'static StreamDef> {
    REGISTRY.iter().copied().find(|stream| stream.name == name)
}

/// What a stream is: what `discover` says of it and how `read` starts it.
pub struct StreamDef {
    pub name: &'static str,
    /// The record schema, packed (see [`crate::packed`]).
    pub schema: &'static [u8],
    /// Source-defined primary key: top-level fields, in order (none: no key).
    pub primary_key: &'static [&'static str],
    /// The cursor field, for a stream that reads incrementally.
    pub cursor: Option<&'static str>,
    pub sync_modes: &'static [SyncMode],
    /// Whether an interrupted read can resume (Airbyte's `is_resumable`).
    pub resumable: bool,
    /// Whether it reads the media edge through a [`MediaWindow`], which the wiring makes once
    /// and hands to the stream and to its parent.
    pub windowed: bool,
    /// For an insights stream, its metric fields under the user's choices (its schema follows).
    pub metric_fields: Option<crate::metrics::MetricFields>,
    pub reader: Reader,
}

impl StreamDef {
    /// A full-refresh stream that cannot resume, the common case; others override fields.
    pub const fn full_refresh(
        name: &'static str,
        schema: &'static [u8],
        primary_key: &'static [&'static str],
        reader: Reader,
    ) -> StreamDef {
        StreamDef {
            name,
            schema,
            primary_key,
            cursor: None,
            sync_modes: FULL_REFRESH,
            resumable: false,
            windowed: false,
            metric_fields: None,
            reader,
        }
    }

    /// Incremental support, derived from the declared sync modes.
    pub fn supports_incremental(&self) -> bool {
        self.sync_modes.contains(&SyncMode::Incremental)
    }
}

pub const FULL_REFRESH: &[SyncMode] = &[SyncMode::FullRefresh];
pub const FULL_REFRESH_AND_INCREMENTAL: &[SyncMode] = &[SyncMode::FullRefresh, SyncMode::Incremental];

/// What every stream's reader may use during one `read`.
pub struct ReadContext<'a> {
    pub client: &'a GraphClient<'a>,
    pub config: &'a Config,
    pub state: &'a InputState,
    pub now: DateTime<Utc>,
    pub sink: &'a dyn Sink,
    /// The sync's metric lists, healed as Graph refuses metrics.
    pub healer: &'a Healer,
}

impl ReadContext<'_> {
    /// How many pages or accounts a stream works on at once (two per request slot).
    pub fn fan_out(&self) -> usize {
        self.config.num_workers * 2
    }
}

/// A stream's result, with the lifetime of what it borrows.
pub type Reading<'a> = LocalBoxFuture<'a, Result<(), Failure>>;

/// What a parent stream reads and whom it feeds.
pub struct ParentRun<'a> {
    pub ctx: &'a ReadContext<'a>,
    pub accounts: &'a [Account],
    /// `None` when only its children are synced.
    pub out: Option<&'a StreamOutput<'a>>,
    /// Its own window over the media edge, when it reads through one and is synced.
    pub window: Option<Rc<MediaWindow>>,
    /// Its synced children's pipes.
    pub pipes: Pipes,
}

impl ParentRun<'_> {
    /// How far back `account`'s edge must be paged for every reader of it: the earliest start of
    /// its own window and its children's; `None` (all of it) when any of them reads it all.
    pub fn paging_start(&self, account: &Account) -> Option<DateTime<Utc>> {
        let windows =
            self.out.map(|_| self.window.clone()).into_iter().chain(self.pipes.0.iter().map(|p| p.window.clone()));
        let starts = windows.map(|window| window?.start(account));
        starts.collect::<Option<Vec<_>>>()?.into_iter().min()
    }
}

/// What a child stream reads: its parent's pages, and its window over them, if it has one.
pub struct ChildRun<'a> {
    pub ctx: &'a ReadContext<'a>,
    pub pages: PageReceiver,
    pub window: Option<Rc<MediaWindow>>,
}

/// How `read` starts a stream.
pub enum Reader {
    /// The root (`Api`): its records are the accounts every other stream reads.
    Accounts,
    /// Reads from the account list.
    PerAccount(for<'a> fn(&'a ReadContext<'a>, &'a [Account], &'a StreamOutput<'a>) -> Reading<'a>),
    /// Reads an edge of every account and feeds its pages to its children; with no output, it
    /// only feeds them (its child is synced, it is not).
    Parent(for<'a> fn(ParentRun<'a>) -> Reading<'a>),
    /// Reads the pages its parent feeds it.
    Child { parent: &'static str, read: for<'a> fn(ChildRun<'a>, &'a StreamOutput<'a>) -> Reading<'a> },
}

/// Emits the records and states of one stream, with the bookkeeping every stream needs:
/// RUNNING at the first record, per-state record counts, no two identical states in a row.
pub struct StreamOutput<'a> {
    name: &'a str,
    /// The sync mode `read` runs the stream in (after the catalog rules).
    pub sync_mode: SyncMode,
    sink: &'a dyn Sink,
    emitted: Cell<u64>,
    since_state: Cell<u64>,
    last_state: RefCell<Option<Value>>,
}

impl<'a> StreamOutput<'a> {
    pub fn new(name: &'a str, sync_mode: SyncMode, sink: &'a dyn Sink) -> Self {
        let (emitted, since_state, last_state) = (Cell::new(0), Cell::new(0), RefCell::new(None));
        StreamOutput { name, sync_mode, sink, emitted, since_state, last_state }
    }

    /// Emits one record: a `Value` or a typed record, serialized once with serde_json's writer
    /// (not `Display`, which goes through the formatting machinery token by token).
    pub fn emit(&self, record: &impl serde::Serialize) {
        if self.emitted.get() == 0 {
            self.sink.stream_status(self.name, StreamStatus::Running, None);
        }
        // Records are built from parsed JSON, whose serialization cannot fail.
        self.sink.record(self.name, &serde_json::to_string(record).unwrap_or_default());
        self.emitted.set(self.emitted.get() + 1);
        self.since_state.set(self.since_state.get() + 1);
    }

    /// Emits `state` unless it equals the previous one and no record came since.
    pub fn checkpoint(&self, state: &Value) {
        let mut last = self.last_state.borrow_mut();
        if last.as_ref() == Some(state) && self.since_state.get() == 0 {
            return;
        }
        self.sink.state(self.name, state, self.since_state.get());
        self.since_state.set(0);
        *last = Some(state.clone());
    }

    pub fn emitted(&self) -> u64 {
        self.emitted.get()
    }

    /// Emits the records of `batches`, run `fan_out` at a time and emitted in their order, until
    /// one fails.
    pub async fn emit_batches<R: serde::Serialize>(
        &self,
        batches: impl futures::Stream<Item = impl Future<Output = Result<Vec<R>, Failure>>>,
        fan_out: usize,
    ) -> Result<(), Failure> {
        let mut batches = std::pin::pin!(batches.buffered(fan_out.max(1)));
        while let Some(records) = batches.try_next().await? {
            records.iter().for_each(|record| self.emit(record));
        }
        Ok(())
    }
}

/// How a child stream asks for the insights of its parent's objects (media or stories).
pub struct InsightsRequest {
    pub stream: &'static str,
    /// The scope of an object's metric list (`crate::metrics`).
    pub scope: fn(&ObjectRef) -> Scope,
    /// The metrics to ask for an object, under the user's choices.
    pub metrics: fn(&ObjectRef, &Chosen) -> Vec<String>,
    /// The errors that mean "no insights for this object".
    pub ignore: IgnoreRule,
    pub record: fn(Metrics, &ObjectRef) -> RawRecord,
}

/// Fetches the insights of each page of `objects` as it arrives, [`MAX_BATCH`] per Batch API
/// call when batching is on, and emits one record per object that has insights, in object order.
pub async fn emit_insights(
    ctx: &ReadContext<'_>,
    objects: impl futures::Stream<Item = Page>,
    request: &InsightsRequest,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let batch = ctx.config.optimizations.batch_insights;
    let pages = objects.map(|page| async move {
        let page = page?;
        let chunks = page.chunks(MAX_BATCH).map(|chunk| async move {
            let items: Vec<InsightsItem> = chunk
                .iter()
                .map(|object| InsightsItem {
                    path: format!("/{}/insights", object.id),
                    scope: (request.scope)(object),
                    metrics: (request.metrics)(object, &ctx.config.metrics),
                    query: Vec::new(),
                })
                .collect();
            let outcomes = get_insights(ctx.client, ctx.healer, &items, batch, request.stream, request.ignore).await;
            let records = chunk.iter().zip(outcomes).map(|(object, outcome)| match outcome {
                Ok(body) => Ok(body.map(|body| (request.record)(body, object))),
                Err(error) => Err(error.to_failure()),
            });
            records.filter_map(Result::transpose).collect::<Result<Vec<RawRecord>, Failure>>()
        });
        Ok(futures::future::try_join_all(chunks).await?.concat())
    });
    out.emit_batches(pages, ctx.fan_out()).await
}

/// Emit a state at least this often in a stream read in dated windows.
pub const CHECKPOINT_EVERY: u64 = 1_000;

/// Records of one dated window, each with its date.
pub type Dated = Vec<(RawRecord, DateTime<Utc>)>;

/// Where a dated read starts: the cursors, when the sync started (for `lookback_window`), and how
/// many windows of an account are read at once.
pub struct DatedProgress {
    pub cursors: PartitionCursors,
    pub started: DateTime<Utc>,
    pub in_flight: usize,
}

/// Reads the dated windows of each account in turn (`in_flight` at a time, in order), emits the
/// records dated at or after the account's `emit_from` (all when `None`), moves its cursor, and
/// checkpoints after every account and at least every [`CHECKPOINT_EVERY`] records. On a failure
/// the state reached so far is checkpointed before the error is returned. `lookback_window` in the
/// state is the time since `started` (the CDK's bookkeeping).
pub async fn read_dated<'a, W, Fut>(
    ctx: &ReadContext<'_>,
    accounts: &'a [Account],
    progress: DatedProgress,
    windows: impl Fn(&Account) -> (Vec<W>, Option<DateTime<Utc>>),
    read_window: impl Fn(&'a Account, W) -> Fut,
    out: &StreamOutput<'_>,
) -> Result<(), Failure>
where
    Fut: Future<Output = Result<Dated, crate::http::error::RequestError>>,
{
    let DatedProgress { mut cursors, started, in_flight } = progress;
    let state = |cursors: &PartitionCursors| {
        cursors.to_state((ctx.client.runtime().now() - started).num_seconds().max(0) as u64)
    };
    let mut since_checkpoint = 0u64;
    for account in accounts {
        let (account_windows, emit_from) = windows(account);
        let reads = account_windows.into_iter().map(|window| read_window(account, window));
        let mut results = std::pin::pin!(futures::stream::iter(reads).buffered(in_flight.max(1)));
        loop {
            let records = match results.try_next().await {
                Ok(Some(records)) => records,
                Ok(None) => break,
                Err(error) => {
                    out.checkpoint(&state(&cursors));
                    return Err(error.to_failure());
                }
            };
            for (record, date) in records.into_iter().filter(|(_, date)| emit_from.is_none_or(|from| *date >= from)) {
                out.emit(&record);
                cursors.advance(&account.business_account_id, date);
                since_checkpoint += 1;
            }
            if since_checkpoint >= CHECKPOINT_EVERY {
                out.checkpoint(&state(&cursors));
                since_checkpoint = 0;
            }
        }
        out.checkpoint(&state(&cursors));
        since_checkpoint = 0;
    }
    out.checkpoint(&state(&cursors));
    Ok(())
}

/// Pages a parent→child pipe holds before the parent waits (backpressure: a slow child slows
/// its parent instead of letting pages pile up in memory).
pub const PIPE_PAGES: usize = 4;

/// The sending ends of a parent's pipes, one per synced child.
#[derive(Default)]
pub struct Pipes(Vec<Pipe>);

/// A pipe to one child, with the child's window over the media edge (`None`: it reads every
/// page), which its parent asks for how far back to page.
pub struct Pipe {
    sender: futures::channel::mpsc::Sender<Page>,
    window: Option<Rc<MediaWindow>>,
}

/// The receiving end of a parent→child pipe.
pub type PageReceiver = futures::channel::mpsc::Receiver<Page>;

impl Pipes {
    /// Opens one more bounded pipe from this parent, for a child reading through `window`.
    pub fn open(&mut self, window: Option<Rc<MediaWindow>>) -> PageReceiver {
        let (sender, receiver) = futures::channel::mpsc::channel(PIPE_PAGES);
        self.0.push(Pipe { sender, window });
        receiver
    }

    /// Sends a page to each child still listening (a child that failed has stopped listening,
    /// and its parent carries on for its own records and its other children).
    pub async fn feed(&self, page: Page) {
        for pipe in &self.0 {
            let _ = pipe.sender.clone().send(page.clone()).await;
        }
    }
}

/// Runs `read_account` for every account at once; if any fails, the children fed through
/// `pipes` learn the failure too (the one way a pipe reports failures).
pub async fn for_each_account<'a, F, Fut>(
    accounts: &'a [Account],
    pipes: &Pipes,
    read_account: F,
) -> Result<(), Failure>
where
    F: Fn(&'a Account) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let readers = futures::stream::iter(accounts.iter().map(read_account));
    let result = readers.buffer_unordered(accounts.len().max(1)).try_collect::<Vec<()>>().await;
    if let Err(failure) = &result {
        pipes.feed(Err(failure.clone())).await;
    }
    result.map(|_| ())
}

/// Runs `f` with a read context around `client` (a default config, no state), for unit tests.
#[cfg(test)]
pub fn with_context<R>(client: &GraphClient<'_>, now: DateTime<Utc>, f: impl FnOnce(&ReadContext<'_>) -> R) -> R {
    let config = Config::parse(r#"{"access_token":"t","num_workers":8}"#).expect("a config");
    let state = InputState::parse(None).expect("no state");
    let healer = Healer::default();
    f(&ReadContext { client, config: &config, state: &state, now, sink: client.sink(), healer: &healer })
}
