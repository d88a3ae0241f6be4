//! Insights metric lists: which metrics each insights request asks for, the names the user may
//! choose from, and lists that heal themselves when Graph refuses a metric.
//!
//! Why: Meta retires metrics (`video_views` in v21; `impressions`, `plays` and others in v22) and
//! refuses some for some media product types; a connector that asks for one fails the whole
//! stream until a release. Here a refused metric is dropped for its scope for the rest of the
//! sync, with one WARN, and the request is sent again without it, so records carry every other
//! metric (`docs/graph-api.md`, "Insights"). To keep the extra calls to one per refused metric
//! and scope, the first request of each scope goes alone, and the rest are batched once it is
//! answered.

use crate::graph::{self, IgnoreRule};
use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use crate::protocol::LogLevel;
use serde::de::DeserializeOwned;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::rc::Rc;

/// Where a metric list applies: Graph accepts or refuses a metric per scope.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Insights of media of one product type (`FEED`, `REELS`, …).
    Media(String),
    Story,
    /// Account insights of one period (`user_insights`).
    Account(&'static str),
    /// Daily account totals, without a breakdown or by one.
    Totals(Option<&'static str>),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Media(product_type) => write!(f, "insights of {product_type} media"),
            Scope::Story => f.write_str("story insights"),
            Scope::Account(period) => write!(f, "account insights of period {period}"),
            Scope::Totals(None) => f.write_str("daily account totals"),
            Scope::Totals(Some(breakdown)) => write!(f, "daily account totals by {breakdown}"),
        }
    }
}

/// The metrics Meta's reference lists for media of the FEED product type (images, videos,
/// carousels), as of December 2025.
pub const FEED_METRICS: &[&str] = &[
    "comments",
    "follows",
    "likes",
    "profile_activity",
    "profile_visits",
    "reach",
    "reposts",
    "saved",
    "shares",
    "total_interactions",
    "views",
];
/// … for REELS (`reels_skip_rate`, `reposts`, `crossposted_views`, `facebook_views`: December 2025).
pub const REELS_METRICS: &[&str] = &[
    "comments",
    "crossposted_views",
    "facebook_views",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "likes",
    "reach",
    "reels_skip_rate",
    "reposts",
    "saved",
    "shares",
    "total_interactions",
    "views",
];
/// … for stories.
pub const STORY_METRICS: &[&str] = &[
    "follows",
    "navigation",
    "profile_activity",
    "profile_visits",
    "reach",
    "replies",
    "shares",
    "total_interactions",
    "views",
];
/// The account metrics Graph serves as `metric_type=total_value` for a day.
pub const TOTALS_METRICS: &[&str] = &[
    "accounts_engaged",
    "comments",
    "follows_and_unfollows",
    "likes",
    "profile_links_taps",
    "reach",
    "replies",
    "reposts",
    "saves",
    "shares",
    "total_interactions",
    "views",
];
/// The breakdowns of the daily totals, and the metrics Meta's reference lists for each.
pub const TOTALS_BREAKDOWNS: [(&str, &[&str]); 4] = [
    (
        "media_product_type",
        &["comments", "likes", "reach", "reposts", "saves", "shares", "total_interactions", "views"],
    ),
    ("follower_type", &["views"]),
    ("follow_type", &["follows_and_unfollows", "reach"]),
    ("contact_button_type", &["profile_links_taps"]),
];

/// The user's metric lists (config), each checked against the names above; `None`: the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chosen {
    pub feed: Option<Vec<String>>,
    pub reels: Option<Vec<String>>,
    pub story: Option<Vec<String>>,
    pub totals: Option<Vec<String>>,
}

/// The default metrics of a media item (the reference's rules in its order, `docs/source-instagram.md`
/// §6, plus December 2025's metrics where Meta lists them).
pub fn default_media_metrics(media_type: Option<&str>, media_product_type: Option<&str>) -> &'static str {
    match (media_type, media_product_type) {
        (_, Some("REELS")) => {
            "comments,ig_reels_avg_watch_time,ig_reels_video_view_total_time,likes,reach,saved,shares,views,reposts,reels_skip_rate,crossposted_views,facebook_views"
        }
        (Some("VIDEO"), Some("FEED")) => "reach,saved,views,reposts",
        (Some("VIDEO"), _) => "reach,saved,likes,comments,shares,follows,profile_visits,reposts",
        (Some("CAROUSEL_ALBUM"), _) => "reach,saved,shares,follows,profile_visits,reposts",
        _ => "reach,saved,likes,comments,shares,follows,profile_visits,reposts",
    }
}

/// The default story metrics.
pub const DEFAULT_STORY_METRICS: &str = "reach,replies,follows,profile_visits,shares,total_interactions,views";

impl Chosen {
    /// The metrics asked for a media item.
    pub fn media(&self, media_type: Option<&str>, media_product_type: Option<&str>) -> Vec<String> {
        let chosen = if media_product_type == Some("REELS") { &self.reels } else { &self.feed };
        chosen.clone().unwrap_or_else(|| split(default_media_metrics(media_type, media_product_type)))
    }

    pub fn story(&self) -> Vec<String> {
        self.story.clone().unwrap_or_else(|| split(DEFAULT_STORY_METRICS))
    }

    pub fn totals(&self) -> Vec<String> {
        self.totals.clone().unwrap_or_else(|| TOTALS_METRICS.iter().map(|m| m.to_string()).collect())
    }

    /// Every metric some media_insights record may carry: the union of every list in use.
    pub fn media_fields(&self) -> BTreeSet<String> {
        let kinds =
            [("IMAGE", "FEED"), ("VIDEO", "FEED"), ("VIDEO", "AD"), ("CAROUSEL_ALBUM", "FEED"), ("VIDEO", "REELS")];
        kinds.iter().flat_map(|(kind, product)| self.media(Some(kind), Some(product))).collect()
    }
}

/// The metric fields a stream's records carry under the user's choices: the names the stream knows
/// and the ones chosen; `None` when its defaults are in use (then its schema is used as written).
pub type MetricFields = fn(&Chosen) -> Option<(BTreeSet<String>, BTreeSet<String>)>;

fn names(lists: &[&[&str]]) -> BTreeSet<String> {
    lists.iter().flat_map(|list| list.iter().map(|name| name.to_string())).collect()
}

/// `media_insights`: every FEED and REELS metric; the union of the lists in use.
pub fn media_fields(chosen: &Chosen) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    (chosen.feed.is_some() || chosen.reels.is_some())
        .then(|| (names(&[FEED_METRICS, REELS_METRICS]), chosen.media_fields()))
}

/// `story_insights`.
pub fn story_fields(chosen: &Chosen) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    Some((names(&[STORY_METRICS]), chosen.story.as_ref()?.iter().cloned().collect()))
}

/// `user_daily_totals`: each metric, and `<metric>_by_<breakdown>` for the breakdowns it has.
pub fn totals_fields(chosen: &Chosen) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let with_breakdowns = |metrics: &[String]| -> BTreeSet<String> {
        let split = TOTALS_BREAKDOWNS.iter().flat_map(|(breakdown, supported)| {
            let chosen = metrics.iter().filter(|m| supported.contains(&m.as_str()));
            chosen.map(move |metric| format!("{metric}_by_{breakdown}"))
        });
        metrics.iter().cloned().chain(split).collect()
    };
    let all: Vec<String> = TOTALS_METRICS.iter().map(|m| m.to_string()).collect();
    Some((with_breakdowns(&all), with_breakdowns(chosen.totals.as_ref()?)))
}

fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::to_owned).collect()
}

/// What a refusal of Graph says of the metrics asked for.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// No longer served in this API version: refused in every scope.
    Retired(String),
    /// Not served in this scope.
    Unsupported(Vec<String>),
}

/// Reads a Graph error as a refusal of some of `requested`, when it is one: `metric[i] must be one
/// of the following values: a, b` (every requested metric outside that list), `does not support
/// the X metric`, `the X metric is no longer supported`. A permission error (code 10), or an error
/// that names no requested metric, is not one.
fn refusal(error: &RequestError, requested: &[String]) -> Option<Refusal> {
    if error.code() != Some(100) {
        return None;
    }
    let message = error.message();
    let named = |before: &str, after: &str| {
        let start = message.find(before)? + before.len();
        let end = start + message[start..].find(after)?;
        requested.iter().find(|m| **m == message[start..end]).cloned()
    };
    if let Some(metric) = named("the ", " metric is no longer supported") {
        return Some(Refusal::Retired(metric));
    }
    if let Some(metric) = named("does not support the ", " metric") {
        return Some(Refusal::Unsupported(vec![metric]));
    }
    let (_, valid) = message.split_once("must be one of the following values")?;
    let valid = valid.rsplit_once(':').map_or("", |(_, list)| list);
    let valid: BTreeSet<&str> =
        valid.split(',').map(|v| v.trim().trim_end_matches('.')).filter(|v| !v.is_empty()).collect();
    let outside: Vec<String> = requested.iter().filter(|m| !valid.contains(m.as_str())).cloned().collect();
    if !valid.is_empty() && !outside.is_empty() {
        return Some(Refusal::Unsupported(outside));
    }
    // The valid list cannot be read: the metric at the index Graph names.
    let index: usize = message.split_once("metric[")?.1.split_once(']')?.0.parse().ok()?;
    requested.get(index).map(|metric| Refusal::Unsupported(vec![metric.clone()]))
}

/// The metric lists of one sync: what Graph refused, per scope (a retired metric everywhere), and
/// whether each scope's first request has been answered.
#[derive(Default)]
pub struct Healer {
    dropped: RefCell<BTreeSet<(Scope, String)>>,
    retired: RefCell<BTreeSet<String>>,
    gates: RefCell<HashMap<Scope, Rc<futures::lock::Mutex<bool>>>>,
}

impl Healer {
    /// `wanted` without what Graph refused in `scope`.
    pub fn list(&self, scope: &Scope, wanted: &[String]) -> Vec<String> {
        let (dropped, retired) = (self.dropped.borrow(), self.retired.borrow());
        wanted
            .iter()
            .filter(|m| !retired.contains(*m) && !dropped.contains(&(scope.clone(), m.to_string())))
            .cloned()
            .collect()
    }

    /// Drops what `error` refuses of `requested` in `scope`, with one WARN per metric; `false`
    /// when `error` is not a refusal.
    fn heal(
        &self,
        scope: &Scope,
        requested: &[String],
        error: &RequestError,
        client: &GraphClient<'_>,
        stream: &str,
    ) -> bool {
        let Some(refusal) = refusal(error, requested) else { return false };
        let cause = error.message();
        let warn = |message: String| client.sink().log(LogLevel::Warn, &format!("{stream}: {message} ({cause})"));
        match refusal {
            Refusal::Retired(metric) => {
                if self.retired.borrow_mut().insert(metric.clone()) {
                    warn(format!(
                        "Graph no longer serves the metric `{metric}` in this API version (refused for {scope}); it is left out of every insights request for the rest of this sync"
                    ));
                }
            }
            Refusal::Unsupported(metrics) => {
                for metric in metrics {
                    if self.dropped.borrow_mut().insert((scope.clone(), metric.clone())) {
                        warn(format!(
                            "Graph refuses the metric `{metric}` for {scope}; it is left out of those requests for the rest of this sync"
                        ));
                    }
                }
            }
        }
        true
    }

    fn gate(&self, scope: &Scope) -> Rc<futures::lock::Mutex<bool>> {
        self.gates.borrow_mut().entry(scope.clone()).or_default().clone()
    }
}

/// One insights request: the object's path, its scope, the metrics wanted, and the rest of its
/// query (period, dates, breakdown).
pub struct InsightsItem {
    pub path: String,
    pub scope: Scope,
    pub metrics: Vec<String>,
    pub query: Vec<(&'static str, String)>,
}

impl InsightsItem {
    fn query(&self, metrics: &[String]) -> Vec<(&'static str, String)> {
        let mut query = vec![("metric", metrics.join(","))];
        query.extend(self.query.iter().cloned());
        query
    }
}

/// GETs insights `items` (singly or through the Batch API), healing refused metrics; outcomes in
/// the order of `items`: `Ok(None)` for an error `ignore` skips (logged at INFO) or an item whose
/// every metric Graph refused.
pub async fn get_insights<T: DeserializeOwned>(
    client: &GraphClient<'_>,
    healer: &Healer,
    items: &[InsightsItem],
    batch: bool,
    stream: &str,
    ignore: IgnoreRule,
) -> Vec<Result<Option<T>, RequestError>> {
    let mut outcomes: Vec<Option<Result<Option<T>, RequestError>>> = items.iter().map(|_| None).collect();
    // Each scope's first request goes alone, so a refusal costs one extra call, not one per item;
    // until one is answered (an object's own error, such as a media item too old for insights,
    // tells nothing of the metrics), the next one goes alone too.
    for (index, item) in items.iter().enumerate() {
        let gate = healer.gate(&item.scope);
        let mut answered = gate.lock().await;
        if !*answered {
            let outcome = get_one(client, healer, item, stream).await;
            *answered = outcome.is_ok();
            outcomes[index] = Some(outcome);
        }
    }
    let pending: Vec<(usize, Vec<String>)> = (0..items.len())
        .filter(|&index| outcomes[index].is_none())
        .map(|index| (index, healer.list(&items[index].scope, &items[index].metrics)))
        .collect();
    let sent: Vec<&(usize, Vec<String>)> = pending.iter().filter(|(_, metrics)| !metrics.is_empty()).collect();
    let requests: Vec<(String, Vec<(&str, String)>)> =
        sent.iter().map(|(index, metrics)| (items[*index].path.clone(), items[*index].query(metrics))).collect();
    let answers = graph::get_many::<T>(client, &requests, batch, stream).await;
    for (&&(index, ref metrics), answer) in sent.iter().zip(answers) {
        let item = &items[index];
        outcomes[index] = Some(match answer {
            Err(error) if healer.heal(&item.scope, metrics, &error, client, stream) => {
                get_one(client, healer, item, stream).await
            }
            answer => answer.map(Some),
        });
    }
    let outcomes = outcomes.into_iter().map(|outcome| outcome.unwrap_or(Ok(None)));
    outcomes.map(|outcome| graph::skip_ignored(outcome, client, stream, ignore)).collect()
}

/// One insights GET, sent again without each metric Graph refuses until it is answered.
async fn get_one<T: DeserializeOwned>(
    client: &GraphClient<'_>,
    healer: &Healer,
    item: &InsightsItem,
    stream: &str,
) -> Result<Option<T>, RequestError> {
    loop {
        let metrics = healer.list(&item.scope, &item.metrics);
        if metrics.is_empty() {
            return Ok(None);
        }
        let query = item.query(&metrics);
        let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        match client.get(&item.path, &pairs, stream).await {
            Err(error) if healer.heal(&item.scope, &metrics, &error, client, stream) => continue,
            answer => return answer.map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpResponse;

    fn error(message: &str, code: i64) -> RequestError {
        let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string().into_bytes();
        let graph = crate::http::answer::error_body(&body);
        RequestError::from_response(&HttpResponse { status: 400, headers: vec![], body }, graph, "/1/insights")
    }

    #[test]
    fn refusals_name_the_metrics_graph_refuses_and_nothing_else() {
        let asked: Vec<String> = split("reach,saved,views,reposts");
        for (message, code, expected) in [
            (
                "(#100) metric[2] must be one of the following values: reach, saved, likes",
                100,
                Some(Refusal::Unsupported(split("views,reposts"))),
            ),
            (
                "(#100) metric[1] must be one of the following values for REELS: reach, views, reposts",
                100,
                Some(Refusal::Unsupported(split("saved"))),
            ),
            (
                "(#100) The Media Insights API does not support the views metric for this media product type.",
                100,
                Some(Refusal::Unsupported(split("views"))),
            ),
            (
                "(#100) Starting from version v22.0 and above, the reposts metric is no longer supported.",
                100,
                Some(Refusal::Retired("reposts".into())),
            ),
            ("(#100) metric[3] must be one of the following values", 100, Some(Refusal::Unsupported(split("reposts")))),
            ("(#10) Application does not have permission for this action", 10, None),
            ("(#100) since param is not valid. Metrics data is available for the last 2 years", 100, None),
            ("(#100) does not support the plays metric", 100, None),
        ] {
            assert_eq!(refusal(&error(message, code), &asked), expected, "{message}");
        }
    }
}
