//! The stream registry: one module per stream, each declaring a [`StreamDef`] (name, schema,
//! keys, cursor, sync modes, parent and entry point), and [`REGISTRY`], the one list of them.
//! `discover`, the catalog rules, the parent→child wiring in [`crate::source`], the demo and the
//! tests all read this list, so adding a stream is one file plus one line here.

pub mod api;
pub mod comments;
pub mod media;
pub mod media_insights;
pub mod stories;
pub mod story_insights;
pub mod user_insights;
pub mod user_lifetime_insights;
pub mod users;

use crate::catalog::SyncMode;
use crate::config::Config;
use crate::graph::{Account, ObjectRef};
use crate::http::client::GraphClient;
use crate::protocol::{Failure, Sink, StreamStatus};
use crate::state::InputState;
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};

/// Every stream, in `discover` order (reference §10.3).
pub const REGISTRY: [&StreamDef; 9] = [
    &media::STREAM,
    &media_insights::STREAM,
    &users::STREAM,
    &user_lifetime_insights::STREAM,
    &stories::STREAM,
    &story_insights::STREAM,
    &api::STREAM,
    &user_insights::STREAM,
    &comments::STREAM,
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
        StreamDef { name, schema, primary_key, cursor: None, sync_modes: FULL_REFRESH, resumable: false, reader }
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
    /// Its children's pipes, when a child is synced.
    pub refs: Option<PageSender>,
    /// The synced streams that read this edge (itself included when synced), with their modes.
    pub consumers: Vec<(&'static str, SyncMode)>,
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
    Child {
        parent: &'static str,
        read: for<'a> fn(&'a ReadContext<'a>, PageReceiver, &'a StreamOutput<'a>) -> Reading<'a>,
    },
}

/// The state a full-refresh stream ends with (the CDK's FinalStateCursor).
pub fn final_full_refresh_state() -> Value {
    json!({"__ab_no_cursor_state_message": true})
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
}

/// Pages a parent→child pipe holds before the parent waits (backpressure: a slow child slows
/// its parent instead of letting pages pile up in memory).
pub const PIPE_PAGES: usize = 4;

/// One page of a parent's objects, or the failure that ended the parent.
pub type Page = Result<Vec<ObjectRef>, Failure>;
/// The sending ends of a parent's pipes, one per synced child.
#[derive(Clone, Default)]
pub struct PageSender(Vec<futures::channel::mpsc::Sender<Page>>);
/// The receiving end of a parent→child pipe.
pub type PageReceiver = futures::channel::mpsc::Receiver<Page>;

impl PageSender {
    /// Opens one more bounded pipe from this parent, for a child.
    pub fn open(&mut self) -> PageReceiver {
        let (sender, receiver) = futures::channel::mpsc::channel(PIPE_PAGES);
        self.0.push(sender);
        receiver
    }
}

/// Sends a page to each synced child still listening (a child that failed has stopped
/// listening, and its parent carries on for its own records and its other children).
pub async fn feed(refs: Option<&PageSender>, page: Page) {
    let Some(refs) = refs else { return };
    for sender in &refs.0 {
        let _ = sender.clone().send(page.clone()).await;
    }
}

/// Runs `read_account` for every account at once; if any fails, the child fed through `refs`
/// learns the failure too (the one way a pipe reports failures).
pub async fn for_each_account<'a, F, Fut>(
    accounts: &'a [Account],
    refs: Option<&PageSender>,
    read_account: F,
) -> Result<(), Failure>
where
    F: Fn(&'a Account) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let readers = futures::stream::iter(accounts.iter().map(read_account));
    let result = readers.buffer_unordered(accounts.len().max(1)).try_collect::<Vec<()>>().await;
    if let Err(failure) = &result {
        feed(refs, Err(failure.clone())).await;
    }
    result.map(|_| ())
}
