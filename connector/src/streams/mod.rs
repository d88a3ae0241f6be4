//! One module per stream; the orchestration lives in [`crate::source`], the shared request layer
//! in [`crate::http`].

pub mod api;
pub mod media;
pub mod media_insights;
pub mod stories;
pub mod story_insights;
pub mod user_insights;
pub mod user_lifetime_insights;
pub mod users;

use crate::graph::Account;
use crate::protocol::{Failure, Sink, StreamStatus};
use futures::{StreamExt, TryStreamExt};
use serde_json::{Value, json};
use std::cell::{Cell, RefCell};

/// Every stream, in `discover` order (reference §10.3).
pub const ALL: [&str; 8] =
    ["media", "media_insights", "users", "user_lifetime_insights", "stories", "story_insights", "Api", "user_insights"];

/// The state a full-refresh stream ends with (the CDK's FinalStateCursor).
pub fn final_full_refresh_state() -> Value {
    json!({"__ab_no_cursor_state_message": true})
}

/// Emits the records and states of one stream, with the bookkeeping every stream needs:
/// RUNNING at the first record, per-state record counts, no two identical states in a row.
pub struct StreamOutput<'a> {
    name: &'a str,
    sink: &'a dyn Sink,
    emitted: Cell<u64>,
    since_state: Cell<u64>,
    last_state: RefCell<Option<Value>>,
}

impl<'a> StreamOutput<'a> {
    pub fn new(name: &'a str, sink: &'a dyn Sink) -> Self {
        StreamOutput { name, sink, emitted: Cell::new(0), since_state: Cell::new(0), last_state: RefCell::new(None) }
    }

    pub fn emit(&self, record: &Value) {
        if self.emitted.get() == 0 {
            self.sink.stream_status(self.name, StreamStatus::Running, None);
        }
        self.sink.record(self.name, record);
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

/// The sending end of a parent-to-child page pipeline: pages of refs, or the failure that ended them.
pub type PageSender<T> = futures::channel::mpsc::UnboundedSender<Result<T, Failure>>;

/// Runs `read_account` for every account at once; if any fails, the child stream fed through
/// `refs` learns the failure too.
pub async fn for_each_account<'a, T, F, Fut>(
    accounts: &'a [Account],
    refs: Option<&PageSender<T>>,
    read_account: F,
) -> Result<(), Failure>
where
    F: Fn(&'a Account) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let readers = futures::stream::iter(accounts.iter().map(read_account));
    let result = readers.buffer_unordered(accounts.len().max(1)).try_collect::<Vec<()>>().await;
    if let (Err(failure), Some(refs)) = (&result, refs) {
        let _ = refs.unbounded_send(Err(failure.clone()));
    }
    result.map(|_| ())
}
