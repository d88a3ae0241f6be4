//! The vocabulary every part of a sync shares: how a stream is read, the accounts it reads, the
//! objects a parent hands its children, and the state a full refresh ends with.
//!
//! Why its own module: the catalog, the state, the incremental windows and the streams all speak
//! these words; kept here, each of them depends on this module and none on another of them.

use crate::protocol::Failure;
use serde_json::Value;

/// The Graph API version every request path starts with, unless the config names another
/// (`api_version`, or a `base_url` ending in one). The one place it is written.
pub const API_VERSION: &str = "v23.0";

/// The Graph API's own origin: the default `base_url`, before the version.
pub const GRAPH_ORIGIN: &str = "https://graph.facebook.com";

/// The origin of the Instagram API with Instagram Login (`auth_type: instagram_login`).
pub const INSTAGRAM_ORIGIN: &str = "https://graph.instagram.com";

/// Whether `base_url` is the Graph API's own (any version).
pub fn is_graph_api(base_url: &str) -> bool {
    base_url.strip_prefix(GRAPH_ORIGIN).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// How a configured stream is read (Airbyte's `sync_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

/// The state a full-refresh stream ends with (the CDK's FinalStateCursor). An incremental
/// stream that finds it reads it as "no cursor yet" (see `docs/airbyte.md`, "State").
pub fn final_full_refresh_state() -> Value {
    serde_json::json!({"__ab_no_cursor_state_message": true})
}

/// An Instagram business account, and the Facebook Page it is linked to: every stream but `Api`
/// reads per account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub business_account_id: String,
    /// `None` when the token cannot list the account's Page (accounts picked by id).
    pub page_id: Option<String>,
}

/// An object read from a parent edge (a media item or a story), as its children need it.
#[derive(Clone, Debug, Default)]
pub struct ObjectRef {
    pub id: String,
    pub account: Account,
    pub media_type: Option<String>,
    pub media_product_type: Option<String>,
    /// As in the parent record, RFC 3339 (media only).
    pub timestamp: Option<Box<serde_json::value::RawValue>>,
    /// The media's `comments_count` (replies included), when the parent edge gave it.
    pub comments_count: Option<u64>,
}

/// One page of a parent's objects, or the failure that ended the parent.
pub type Page = Result<Vec<ObjectRef>, Failure>;
