//! Cheap daily re-syncs of the streams read from the media edge (`media`, `media_insights`,
//! `comments`): their state keeps, per account, the newest media `timestamp` synced. An
//! incremental sync reads the media posted after `cursor − insights_lookback_days` (new media,
//! plus recent media whose insights, likes and comments still move), and the media edge, which
//! Graph serves newest first, is paged only until every stream reading it has passed its start.
//!
//! A full refresh reads everything and still ends with this state, so a later incremental sync
//! continues from it. Values of media older than the window stay as last synced until a full
//! refresh (the documented trade-off).

use crate::model::{Account, ObjectRef, Page, SyncMode};
use crate::protocol::Failure;
use crate::state::{PartitionCursors, parse_cursor};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::cell::RefCell;

/// The state's cursor key.
const KEY: &str = "timestamp";

/// One stream's window over the media edge.
pub struct MediaWindow {
    /// The cursors the sync started from (empty in full refresh: read everything).
    start: PartitionCursors,
    lookback: Duration,
    /// The newest media seen per account in this sync, merged over the incoming cursors.
    newest: RefCell<PartitionCursors>,
}

impl MediaWindow {
    /// The window of `stream` read in `mode`, from its incoming `state`, re-reading media posted
    /// within `lookback_days` before the cursor.
    pub fn new(
        stream: &'static str,
        mode: SyncMode,
        state: Option<&Value>,
        lookback_days: u32,
    ) -> Result<MediaWindow, Failure> {
        let incoming = PartitionCursors::read(stream, KEY, state)?;
        let start = match mode {
            SyncMode::Incremental => incoming.clone(),
            SyncMode::FullRefresh => PartitionCursors::read(stream, KEY, None)?,
        };
        let lookback = Duration::days(i64::from(lookback_days));
        Ok(MediaWindow { start, lookback, newest: RefCell::new(incoming) })
    }

    /// The oldest media this stream needs from `account`; `None`: all of them.
    pub fn start(&self, account: &Account) -> Option<DateTime<Utc>> {
        self.start.get(&account.business_account_id).map(|cursor| cursor - self.lookback)
    }

    /// Whether this stream reads `media`, noting it as seen.
    pub fn wants(&self, media: &ObjectRef) -> bool {
        let Some(posted) = posted(media) else { return true };
        self.newest.borrow_mut().advance(&media.account.business_account_id, posted);
        self.start(&media.account).is_none_or(|start| posted >= start)
    }

    /// The stream's closing state: the newest media per account (accounts not read keep theirs).
    pub fn state(&self) -> Value {
        self.newest.borrow().to_state(self.lookback.num_seconds().unsigned_abs())
    }
}

/// The pages of a parent pipe, each cut to the media `window` reads.
pub fn filter<'w>(
    refs: impl futures::Stream<Item = Page> + 'w,
    window: &'w MediaWindow,
) -> impl futures::Stream<Item = Page> + 'w {
    use futures::StreamExt;
    refs.map(move |page| page.map(|refs| refs.into_iter().filter(|media| window.wants(media)).collect()))
}

/// When a media was posted, from its parent record.
pub fn posted(media: &ObjectRef) -> Option<DateTime<Utc>> {
    let text = serde_json::from_str::<String>(media.timestamp.as_ref()?.get()).ok()?;
    parse_cursor(&text)
}
