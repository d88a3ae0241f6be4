//! Graph API paths, field lists and cursor pagination.

use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use crate::http::shape::{self, Answer, Shape, Typed};
use futures::Stream;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Page size requested on every paginated call (the reference's `limit=100`).
pub const PAGE_SIZE: &str = "100";

pub const ACCOUNTS_PATH: &str = "/me/accounts";
pub const ACCOUNTS_FIELDS: &str = "id,instagram_business_account";
pub const USER_FIELDS: &str =
    "id,biography,ig_id,followers_count,follows_count,media_count,name,profile_picture_url,username,website";

pub const MEDIA_FIELDS: &str = "caption,comments_count,id,ig_id,is_comment_enabled,like_count,media_type,media_product_type,media_url,owner,permalink,shortcode,thumbnail_url,timestamp,username,children";
pub const CHILD_FIELDS: &str =
    "id,ig_id,media_type,media_url,owner,permalink,shortcode,thumbnail_url,timestamp,username";
pub const STORY_FIELDS: &str = "caption,id,ig_id,like_count,media_type,media_product_type,media_url,owner,permalink,shortcode,thumbnail_url,timestamp,username";
/// An IG Comment's fields, and the top-level comments query with their replies expanded.
pub const COMMENT_FIELDS: &str = "id,text,timestamp,username,like_count,hidden,from,parent_id";
pub const COMMENTS_PAGE_SIZE: &str = "50";
pub const STORY_METRICS: &str = "reach,replies,follows,profile_visits,shares,total_interactions,views";

/// The exact message Graph sends when an app lacks a permission (reference §6.2).
pub const NO_PERMISSION_MESSAGE: &str = "(#10) Application does not have permission for this action";

/// A rule that turns some Graph errors into "no records" plus an INFO log (reference §1.2).
pub type IgnoreRule = fn(&RequestError) -> Option<String>;

/// media_insights and user_insights: media posted before the business conversion (2108006),
/// unsupported object (100/33) or the exact missing-permission code 10.
pub fn ignore_insights_errors(error: &RequestError) -> Option<String> {
    if error.subcode() == Some(2_108_006) {
        return Some(format!("Insights error for business_account_id: {}", error.message()));
    }
    let permission = (error.code() == Some(100) && error.subcode() == Some(33))
        || (error.code() == Some(10) && error.message() == NO_PERMISSION_MESSAGE);
    permission.then(|| format!("Check provided permissions for: {}", error.message()))
}

/// An insights GET that applies `ignore`: `Ok(None)` when the error is one the stream skips
/// (logged at INFO).
pub async fn get_or_ignore<T: Answer>(
    client: &GraphClient<'_>,
    path: &str,
    query: &[(&str, &str)],
    stream: &str,
    ignore: IgnoreRule,
) -> Result<Option<T>, RequestError> {
    apply_ignore(client.get(path, query, Shape::Metrics, stream).await, client, stream, ignore)
}

/// Applies an ignore rule to an outcome (of a single request or a batch item).
pub fn apply_ignore<T>(
    outcome: Result<T, RequestError>,
    client: &GraphClient<'_>,
    stream: &str,
    ignore: IgnoreRule,
) -> Result<Option<T>, RequestError> {
    match outcome {
        Ok(body) => Ok(Some(body)),
        Err(error) => match ignore(&error) {
            Some(message) => {
                client.sink().log(crate::protocol::LogLevel::Info, &format!("{stream}: {message}"));
                Ok(None)
            }
            None => Err(error),
        },
    }
}

/// GETs insights `items` (path and query) singly or through the Batch API, applying `ignore`;
/// outcomes in the order of `items`.
pub async fn get_many_or_ignore<T: Answer>(
    client: &GraphClient<'_>,
    items: Vec<(String, Vec<(&str, String)>)>,
    batch: bool,
    stream: &str,
    ignore: IgnoreRule,
) -> Vec<Result<Option<T>, RequestError>> {
    let outcomes = get_many(client, &items, batch, Shape::Metrics, stream).await;
    outcomes.into_iter().map(|outcome| apply_ignore(outcome, client, stream, ignore)).collect()
}

/// GETs `items` (path and query) singly or through the Batch API; outcomes in their order.
pub async fn get_many<T: Answer>(
    client: &GraphClient<'_>,
    items: &[(String, Vec<(&str, String)>)],
    batch: bool,
    shape: Shape,
    stream: &str,
) -> Vec<Result<T, RequestError>> {
    if batch {
        return client.get_batch(items, shape, stream).await;
    }
    let singles = items.iter().map(|(path, query)| async move {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client.get(path, &pairs, shape, stream).await
    });
    futures::future::join_all(singles).await
}

/// An Instagram business account behind a Facebook Page: the parent of every account stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub business_account_id: String,
    /// `None` when the token cannot list the account's Page (accounts picked by id).
    pub page_id: Option<String>,
}

/// An object read from a parent edge (a media item or a story), as its insights child needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectRef {
    pub id: String,
    pub account: Account,
    pub media_type: Option<String>,
    pub media_product_type: Option<String>,
    /// RFC 3339, as in the parent record (media only).
    pub timestamp: Option<Value>,
    /// The media's `comments_count` (replies included), when the parent edge gave it.
    pub comments_count: Option<u64>,
}

/// One page of an edge (`{data, paging}`), read straight into its item type.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
pub struct Edge<T> {
    #[serde(deserialize_with = "shape::list_of_objects")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "shape::optional_object")]
    paging: Option<Paging>,
    #[serde(default, deserialize_with = "shape::present")]
    error: bool,
}

#[derive(Deserialize)]
struct Paging {
    #[serde(default, deserialize_with = "shape::present")]
    next: bool,
    #[serde(default, deserialize_with = "shape::optional_object")]
    cursors: Option<Cursors>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<Value>,
}

/// The longest paging cursor followed. Graph's are a few hundred characters; a cursor goes into
/// the next request's URL, so an absurd one is the answer's fault, not the config's.
pub const MAX_CURSOR_LENGTH: usize = 2048;

impl<T> Edge<T> {
    /// The cursor of the page after this one, if Graph says there is one.
    pub fn next_cursor(&self) -> Option<String> {
        let paging = self.paging.as_ref().filter(|paging| paging.next)?;
        let after = paging.cursors.as_ref()?.after.as_ref()?.as_str()?;
        (!after.is_empty()).then(|| after.to_owned())
    }
}

/// `cursor`, if a request can carry it; else the broken answer of `path` that sent it.
fn usable_cursor(cursor: String, path: &str) -> Result<String, RequestError> {
    if cursor.len() <= MAX_CURSOR_LENGTH {
        return Ok(cursor);
    }
    let what = format!("its paging cursor is {} characters long (Graph's are a few hundred)", cursor.len());
    Err(RequestError::bad_answer(path, what))
}

/// An item of an edge: kept as JSON (`Value`) or typed.
pub trait EdgeItem: DeserializeOwned {
    /// Whether the item passes the `id` check of [`Shape::Records`] (typed items check their
    /// own `id` as they are read).
    fn fits(&self) -> bool {
        true
    }
}

impl EdgeItem for Value {
    fn fits(&self) -> bool {
        shape::valid_id(self.get("id"))
    }
}

impl EdgeItem for crate::transform::RawRecord {
    fn fits(&self) -> bool {
        shape::valid_id(self.read::<Value>("id").as_ref())
    }
}

impl<T: EdgeItem> Typed for Edge<T> {
    fn read(body: &[u8]) -> Option<Self> {
        shape::object_from_slice(body)
    }

    fn fits(&self) -> bool {
        !self.error && self.data.iter().all(EdgeItem::fits)
    }

    /// A page the types refused but the shape check passed (`"paging": null`, a cursor that is
    /// not a string…), read as leniently as the `Value` path always read pages.
    fn from_value(body: Value) -> Result<Self, String> {
        let after = (|| {
            let paging = body.get("paging")?;
            paging.get("next")?;
            paging.get("cursors")?.get("after").cloned()
        })();
        let items = match body {
            Value::Object(mut page) => page.remove("data"),
            _ => None,
        };
        let Some(Value::Array(items)) = items else { return Err("the body has no `data` list".into()) };
        let data = items.into_iter().map(T::deserialize).collect::<Result<Vec<T>, _>>();
        let data = data.map_err(|_| "a record has a field of a type Graph does not document".to_owned())?;
        let paging = after.map(|after| Paging { next: true, cursors: Some(Cursors { after: Some(after) }) });
        Ok(Edge { data, paging, error: false })
    }
}

/// One page of a paginated edge.
pub struct Page<T> {
    pub records: Vec<T>,
    /// The page was fetched with the fallback query because the primary one failed.
    pub fallback: bool,
}

/// The records of a paginated edge, one `Vec` per page.
pub fn pages<'c, T: EdgeItem + 'c>(
    client: &'c GraphClient<'c>,
    path: String,
    query: Vec<(&'static str, String)>,
    stream: &'c str,
) -> impl Stream<Item = Result<Vec<T>, RequestError>> + 'c {
    pages_from(client, path, query, None, stream)
}

/// [`pages`] from the page after `after` (a cursor of a page already read).
pub fn pages_from<'c, T: EdgeItem + 'c>(
    client: &'c GraphClient<'c>,
    path: String,
    query: Vec<(&'static str, String)>,
    after: Option<String>,
    stream: &'c str,
) -> impl Stream<Item = Result<Vec<T>, RequestError>> + 'c {
    use futures::StreamExt;
    walk(client, path, query, None, after, stream).map(|page| page.map(|p| p.records))
}

/// Cursor pagination shared by every paginated stream.
///
/// Follows `paging.cursors.after` while the response also has `paging.next`: Meta omits `next`
/// on the last page, so this saves the empty extra request the reference makes when a last page
/// still carries a cursor. A cursor seen before in the same walk (`A → B → A`, or `A → A`) is a
/// broken answer: the walk fails with a `system_error` instead of looping or silently stopping,
/// and the records already read stay delivered. When a page
/// fails with an error no retry cures (Graph refuses the query) and a `fallback` query is given,
/// the same page is asked again with it (e.g. without a field expansion).
pub fn pages_with_fallback<'c, T: EdgeItem + 'c>(
    client: &'c GraphClient<'c>,
    path: String,
    query: Vec<(&'static str, String)>,
    fallback: Option<Vec<(&'static str, String)>>,
    stream: &'c str,
) -> impl Stream<Item = Result<Page<T>, RequestError>> + 'c {
    walk(client, path, query, fallback, None, stream)
}

fn walk<'c, T: EdgeItem + 'c>(
    client: &'c GraphClient<'c>,
    path: String,
    query: Vec<(&'static str, String)>,
    fallback: Option<Vec<(&'static str, String)>>,
    after: Option<String>,
    stream: &'c str,
) -> impl Stream<Item = Result<Page<T>, RequestError>> + 'c {
    enum Cursor {
        First,
        After(String),
        /// The last page was delivered; its cursor was broken.
        Broken(RequestError),
        Done,
    }
    let seen = std::rc::Rc::new(std::cell::RefCell::new(std::collections::HashSet::<String>::new()));
    let start = match after.map(|after| usable_cursor(after, &path)) {
        None => Cursor::First,
        Some(Ok(after)) => Cursor::After(after),
        Some(Err(error)) => Cursor::Broken(error),
    };
    futures::stream::unfold(start, move |cursor| {
        let (path, query, fallback, seen) = (path.clone(), query.clone(), fallback.clone(), seen.clone());
        async move {
            let after = match cursor {
                Cursor::Done => return None,
                Cursor::Broken(error) => return Some((Err(error), Cursor::Done)),
                Cursor::First => None,
                Cursor::After(after) => Some(after),
            };
            let fetch = |query: Vec<(&'static str, String)>| {
                let (path, after) = (path.clone(), after.clone());
                async move {
                    let mut params: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    params.push(("limit", PAGE_SIZE));
                    if let Some(after) = after.as_deref() {
                        params.push(("after", after));
                    }
                    client.get::<Edge<T>>(&path, &params, Shape::Records, stream).await
                }
            };
            let mut used_fallback = false;
            let mut answer = fetch(query).await;
            // Only for an answer a retry cannot cure: an outage that spent the page's retry budget
            // would spend it again on the fallback.
            if let (Err(error), Some(fallback)) = (&answer, fallback)
                && !error.class.is_retryable()
            {
                client.sink().log(
                    crate::protocol::LogLevel::Info,
                    &format!(
                        "{stream}: a page failed ({}); asking for it again without field expansion",
                        error.to_failure().message
                    ),
                );
                used_fallback = true;
                answer = fetch(fallback).await;
            }
            match answer {
                Err(error) => Some((Err(error), Cursor::Done)),
                Ok(edge) => {
                    let next = match edge.next_cursor().map(|next| usable_cursor(next, &path)) {
                        Some(Err(error)) => Cursor::Broken(error),
                        Some(Ok(next)) if !seen.borrow_mut().insert(next.clone()) => {
                            let what = "its paging cursor repeats an earlier page, so the pages would cycle forever";
                            Cursor::Broken(RequestError::bad_answer(&path, what.into()))
                        }
                        Some(Ok(next)) => Cursor::After(next),
                        None => Cursor::Done,
                    };
                    let page = Page { records: edge.data, fallback: used_fallback };
                    Some((Ok(page), next))
                }
            }
        }
    })
}

/// An id that Graph may send as a string or a number, as a string.
pub fn id_string(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
