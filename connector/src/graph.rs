//! Graph API paths, field lists, the shapes of its answers, and cursor pagination
//! (`docs/graph-api.md`).

use crate::http::answer::{FromMembers, Id, ListOf, Object, Raw, from_object, present};
use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use crate::record::RawRecord;
use futures::Stream;
use serde::de::{self, DeserializeOwned, MapAccess};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

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

/// The exact message Graph sends when an app lacks a permission (`docs/source-instagram.md` §6.2).
pub const NO_PERMISSION_MESSAGE: &str = "(#10) Application does not have permission for this action";

/// A rule that turns some Graph errors into "no records" plus an INFO log
/// (`docs/source-instagram.md` §1.2).
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

/// Account insights (`user_insights`, `user_daily_totals`): the insights rules, plus 4.2.28's skip
/// of windows whose `since` Graph refuses (more than 2 years back, or in the future).
pub fn ignore_account_insights_errors(error: &RequestError) -> Option<String> {
    if error.code() == Some(100) && error.message().contains("since param is not valid") {
        return Some(format!("Skipping time window with future 'since' date: {}", error.message()));
    }
    ignore_insights_errors(error)
}

/// An outcome with the errors `ignore` skips turned into `Ok(None)` (logged at INFO).
pub fn skip_ignored<T>(
    outcome: Result<Option<T>, RequestError>,
    client: &GraphClient<'_>,
    stream: &str,
    ignore: IgnoreRule,
) -> Result<Option<T>, RequestError> {
    outcome.or_else(|error| match ignore(&error) {
        Some(message) => {
            client.sink().log(crate::protocol::LogLevel::Info, &format!("{stream}: {message}"));
            Ok(None)
        }
        None => Err(error),
    })
}

/// GETs `items` (path and query) singly or through the Batch API; outcomes in their order.
pub async fn get_many<T: DeserializeOwned>(
    client: &GraphClient<'_>,
    items: &[(String, Vec<(&str, String)>)],
    batch: bool,
    stream: &str,
) -> Vec<Result<T, RequestError>> {
    if batch {
        return client.get_batch(items, stream).await;
    }
    let singles = items.iter().map(|(path, query)| async move {
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client.get(path, &pairs, stream).await
    });
    futures::future::join_all(singles).await
}

/// One page of an edge (`{data, paging}`): its items, each read as `T` (a [`crate::record::Node`]
/// or a typed struct, either of which checks its `id`), and the cursor of the next page, if Graph
/// says there is one. `paging` is read leniently: links of odd shapes end the walk, they never
/// refuse the page.
pub struct Edge<T> {
    pub data: Vec<T>,
    pub after: Option<String>,
}

#[derive(Deserialize)]
struct EdgeFields<T> {
    data: ListOf<T>,
    #[serde(default)]
    paging: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Paging {
    /// Meta omits `next` on the last page (a `null` still counts as there).
    #[serde(default, deserialize_with = "present")]
    next: Option<de::IgnoredAny>,
    cursors: Cursors,
}

#[derive(Deserialize)]
struct Cursors {
    after: String,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Edge<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Object(EdgeFields { data: ListOf(data), paging }) = Object::deserialize(deserializer)?;
        let paging = paging.and_then(|raw| serde_json::from_str::<Paging>(raw.get()).ok());
        let after =
            paging.filter(|paging| paging.next.is_some()).map(|paging| paging.cursors.after).filter(|a| !a.is_empty());
        Ok(Edge { data, after })
    }
}

/// An insights answer (`{data: [metric, …]}`): its metrics, and whatever else the body holds,
/// kept in place.
pub struct Metrics {
    pub metrics: Vec<Metric>,
    /// The body's other members, in order; `data` stays among them (as `[]`) when it is empty.
    pub rest: RawRecord,
}

/// One metric of an insights answer.
#[derive(Deserialize)]
pub struct Metric {
    pub name: Option<String>,
    #[serde(default)]
    pub values: Vec<MetricValue>,
    /// Checked where present, like every id (`null` too).
    #[serde(default, deserialize_with = "present")]
    pub id: Option<Id>,
}

#[derive(Deserialize)]
pub struct MetricValue {
    #[serde(default)]
    pub value: Option<Raw>,
    #[serde(default)]
    pub end_time: Option<String>,
}

impl Metric {
    /// `values[index].value`, or `null` when there is none.
    pub fn value(&self, index: usize) -> Box<RawValue> {
        let value = self.values.get(index).and_then(|v| v.value.clone());
        value.map_or_else(|| RawValue::NULL.to_owned(), |Raw(value)| value)
    }
}

impl Metrics {
    /// The flattened record (`docs/source-instagram.md` §9.3): `{name: values[0].value}` per metric, after the body's other
    /// members; with no metric, the body as it came.
    pub fn flatten(self) -> RawRecord {
        let mut record = self.rest;
        for metric in self.metrics {
            if let Some(name) = &metric.name {
                record.insert(name.clone(), metric.value(0));
            }
        }
        record
    }
}

impl<'de> FromMembers<'de> for Metrics {
    fn from_members<A: MapAccess<'de>>(mut members: A) -> Result<Self, A::Error> {
        let (mut metrics, mut rest) = (None, RawRecord::default());
        while let Some(key) = members.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "data" {
                let ListOf(list) = members.next_value::<ListOf<Metric>>()?;
                if list.is_empty() {
                    rest.add("data", &[(); 0]);
                }
                metrics = Some(list);
            } else {
                rest.insert(key.into_owned(), members.next_value::<Raw>()?.0);
            }
        }
        let metrics = metrics.ok_or_else(|| de::Error::missing_field("data"))?;
        Ok(Metrics { metrics, rest })
    }
}

/// Only from a JSON object (any other kind is named).
impl<'de> Deserialize<'de> for Metrics {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_object(deserializer)
    }
}

/// A `total_value` of an insights answer (demographics, daily totals): the total and its
/// breakdowns.
#[derive(Default, Deserialize)]
pub struct TotalValue {
    #[serde(default)]
    pub value: Option<Raw>,
    #[serde(default)]
    breakdowns: Vec<Breakdown>,
}

#[derive(Deserialize)]
struct Breakdown {
    results: Vec<Count>,
}

#[derive(Deserialize)]
struct Count {
    #[serde(default)]
    dimension_values: Vec<Raw>,
    value: Option<Raw>,
}

impl TotalValue {
    /// The first breakdown as `{dimension values joined with ",": value}` (`"18-24,F": 10`;
    /// `docs/source-instagram.md` §9.4); empty without one.
    pub fn first_breakdown(self) -> RawRecord {
        let mut counts = RawRecord::default();
        let results = self.breakdowns.into_iter().next().map(|breakdown| breakdown.results).unwrap_or_default();
        for count in results {
            let text = |Raw(d): &Raw| serde_json::from_str::<String>(d.get()).unwrap_or_else(|_| d.get().to_owned());
            let key: Vec<String> = count.dimension_values.iter().map(text).collect();
            counts.insert(key.join(","), count.value.map_or_else(|| RawValue::NULL.to_owned(), |Raw(value)| value));
        }
        counts
    }
}

/// The longest paging cursor followed. Graph's are a few hundred characters; a cursor goes into
/// the next request's URL, so an absurd one is the answer's fault, not the config's.
pub const MAX_CURSOR_LENGTH: usize = 2048;

/// `cursor`, if a request can carry it; else the broken answer of `path` that sent it.
fn usable_cursor(cursor: String, path: &str) -> Result<String, RequestError> {
    if cursor.len() <= MAX_CURSOR_LENGTH {
        return Ok(cursor);
    }
    let what = format!("its paging cursor is {} characters long (Graph's are a few hundred)", cursor.len());
    Err(RequestError::bad_answer(path, what))
}

/// One page of a paginated edge.
pub struct Page<T> {
    pub records: Vec<T>,
    /// The page was fetched with the fallback query because the primary one failed.
    pub fallback: bool,
}

/// The records of a paginated edge, one `Vec` per page, from its first page or from the page
/// after `after` (a cursor of a page already read).
pub fn pages<'c, T: DeserializeOwned + 'c>(
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
pub fn pages_with_fallback<'c, T: DeserializeOwned + 'c>(
    client: &'c GraphClient<'c>,
    path: String,
    query: Vec<(&'static str, String)>,
    fallback: Option<Vec<(&'static str, String)>>,
    stream: &'c str,
) -> impl Stream<Item = Result<Page<T>, RequestError>> + 'c {
    walk(client, path, query, fallback, None, stream)
}

fn walk<'c, T: DeserializeOwned + 'c>(
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
                    client.get::<Edge<T>>(&path, &params, stream).await
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
                    let next = match edge.after.map(|next| usable_cursor(next, &path)) {
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
