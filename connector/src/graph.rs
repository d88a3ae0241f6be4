//! Graph API paths, field lists and cursor pagination.

use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use futures::Stream;
use serde_json::Value;

/// Page size requested on every paginated call (the reference's `limit=100`).
pub const PAGE_SIZE: &str = "100";

pub const ACCOUNTS_PATH: &str = "/me/accounts";
pub const ACCOUNTS_FIELDS: &str = "id,instagram_business_account";
pub const USER_FIELDS: &str =
    "id,biography,ig_id,followers_count,follows_count,media_count,name,profile_picture_url,username,website";

/// An Instagram business account behind a Facebook Page: the parent of every account stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub business_account_id: String,
    pub page_id: String,
}

/// The records of a paginated edge, one `Vec` per page.
///
/// Follows `paging.cursors.after` while the response also has `paging.next`: Meta omits `next`
/// on the last page, so this saves the empty extra request the reference makes when a last page
/// still carries a cursor. A repeated cursor ends the walk instead of looping forever.
pub fn pages<'c>(
    client: &'c GraphClient<'c>,
    path: String,
    query: Vec<(&'static str, String)>,
    stream: &'c str,
) -> impl Stream<Item = Result<Vec<Value>, RequestError>> + 'c {
    enum Cursor {
        First,
        After(String),
        Done,
    }
    futures::stream::unfold(Cursor::First, move |cursor| {
        let path = path.clone();
        let query = query.clone();
        async move {
            let after = match cursor {
                Cursor::Done => return None,
                Cursor::First => None,
                Cursor::After(after) => Some(after),
            };
            let mut params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            params.push(("limit", PAGE_SIZE));
            if let Some(after) = after.as_deref() {
                params.push(("after", after));
            }
            match client.get(&path, &params, stream).await {
                Err(error) => Some((Err(error), Cursor::Done)),
                Ok(body) => {
                    let next = next_cursor(&body).filter(|next| Some(next) != after.as_ref());
                    let records = match body {
                        Value::Object(mut map) => match map.remove("data") {
                            Some(Value::Array(records)) => records,
                            _ => Vec::new(),
                        },
                        _ => Vec::new(),
                    };
                    Some((Ok(records), next.map_or(Cursor::Done, Cursor::After)))
                }
            }
        }
    })
}

fn next_cursor(body: &Value) -> Option<String> {
    let paging = body.get("paging")?;
    paging.get("next")?;
    let after = paging.get("cursors")?.get("after")?.as_str()?;
    (!after.is_empty()).then(|| after.to_owned())
}

/// An id that Graph may send as a string or a number, as a string.
pub fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
