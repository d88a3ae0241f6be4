//! Insights edges with the Graph API's validation: metric lists per media product type, periods
//! and the since/until rules of account insights, demographics breakdowns.

use crate::SandboxOptions;
use crate::graph::{Incoming, Reply, graph_error};
use crate::model::{IgUser, InsightsBehaviour, Media, metric_value};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use serde_json::{Map, Value, json};

const REELS_METRICS: &[&str] = &[
    "comments",
    "ig_reels_avg_watch_time",
    "ig_reels_video_view_total_time",
    "likes",
    "reach",
    "saved",
    "shares",
    "views",
    "total_interactions",
    "reposts",
    "reels_skip_rate",
    "crossposted_views",
    "facebook_views",
];
const FEED_METRICS: &[&str] = &[
    "reach",
    "saved",
    "likes",
    "comments",
    "shares",
    "follows",
    "profile_visits",
    "profile_activity",
    "views",
    "total_interactions",
    "reposts",
];
const STORY_METRICS: &[&str] = &[
    "reach",
    "replies",
    "follows",
    "profile_visits",
    "profile_activity",
    "shares",
    "total_interactions",
    "views",
    "navigation",
];
const DEPRECATED: [&str; 5] =
    ["impressions", "plays", "video_views", "clips_replays_count", "ig_reels_aggregated_all_plays_count"];

fn metric_list(request: &Incoming<'_>) -> Result<Vec<String>, Reply> {
    let metrics: Vec<String> = request
        .query
        .get("metric")
        .map(|m| m.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if metrics.is_empty() {
        return Err(graph_error(400, 100, None, "(#100) The parameter metric is required"));
    }
    Ok(metrics)
}

/// Graph's refusals of a metric list, in Graph's words: a retired metric (whatever the scope),
/// one a media product type does not support, or one not valid there at all. `scope` is a media
/// product type, `STORY`, or what the valid list is for (`period day`, `breakdown …`).
fn validate(metrics: &[String], valid: &[&str], scope: &str, options: &SandboxOptions) -> Result<(), Reply> {
    let refuse = |message: String| Err(graph_error(400, 100, None, &message));
    if let Some(metric) =
        metrics.iter().find(|m| DEPRECATED.contains(&m.as_str()) || options.retired_metrics.contains(m))
    {
        return refuse(format!(
            "(#100) Starting from version v22.0 and above, the {metric} metric is no longer supported."
        ));
    }
    let unsupported = |metric: &str| options.unsupported_metrics.iter().any(|(m, s)| m == metric && s == scope);
    let media_scope = scope != "ACCOUNT" && scope.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    for (index, metric) in metrics.iter().enumerate() {
        if media_scope && (unsupported(metric) || (metric == "views" && !valid.contains(&"views"))) {
            return refuse(format!(
                "(#100) The Media Insights API does not support the {metric} metric for this media product type."
            ));
        }
        if unsupported(metric) || !valid.contains(&metric.as_str()) {
            let valid: Vec<&str> = valid.iter().copied().filter(|v| !unsupported(v)).collect();
            return refuse(format!(
                "(#100) metric[{index}] must be one of the following values for {scope}: {}",
                valid.join(", ")
            ));
        }
    }
    Ok(())
}

fn special_error(behaviour: InsightsBehaviour) -> Option<Reply> {
    Some(match behaviour {
        InsightsBehaviour::Normal => return None,
        InsightsBehaviour::PostedBeforeBusiness => {
            let mut reply = graph_error(400, 100, Some(2_108_006), "Invalid parameter");
            reply.body["error"]["error_user_title"] = json!("Media posted before business account conversion");
            reply.body["error"]["is_transient"] = json!(false);
            reply
        }
        InsightsBehaviour::UnsupportedObject => graph_error(400, 100, Some(33), "Invalid parameter"),
        InsightsBehaviour::NoPermission => {
            graph_error(400, 10, None, "(#10) Application does not have permission for this action")
        }
        InsightsBehaviour::NotEnoughViewers => {
            graph_error(400, 10, None, "(#10) Not enough viewers for the media to show insights")
        }
    })
}

fn lifetime_item(object_id: &str, metric: &str, value: Value) -> Value {
    json!({
        "name": metric,
        "period": "lifetime",
        "values": [{"value": value}],
        "title": format!("{} title", metric.replace('_', " ")),
        "description": format!("{metric} description."),
        "id": format!("{object_id}/insights/{metric}/lifetime"),
    })
}

fn object_metric(object_id: &str, metric: &str, day: u32) -> Value {
    let salt = i64::from(day);
    match metric {
        "reels_skip_rate" => json!(metric_value(object_id, metric, salt, 1_000) as f64 / 10.0),
        "ig_reels_avg_watch_time" => json!(metric_value(object_id, metric, salt, 40_000)),
        "ig_reels_video_view_total_time" => json!(metric_value(object_id, metric, salt, 90_000_000)),
        _ => json!(metric_value(object_id, metric, salt, 20_000)),
    }
}

pub fn media(media: &Media, request: &Incoming<'_>, options: &SandboxOptions) -> Reply {
    if let Some(error) = special_error(media.insights) {
        return error;
    }
    let metrics = match metric_list(request) {
        Ok(metrics) => metrics,
        Err(error) => return error,
    };
    let valid = if media.media_product_type == "REELS" { REELS_METRICS } else { FEED_METRICS };
    if let Err(error) = validate(&metrics, valid, media.media_product_type, options) {
        return error;
    }
    let data: Vec<Value> =
        metrics.iter().map(|m| lifetime_item(&media.id, m, object_metric(&media.id, m, media.insights_day))).collect();
    ok(json!({ "data": data }))
}

pub fn story(story: &Media, request: &Incoming<'_>, options: &SandboxOptions) -> Reply {
    if let Some(error) = special_error(story.insights) {
        return error;
    }
    let metrics = match metric_list(request) {
        Ok(metrics) => metrics,
        Err(error) => return error,
    };
    if let Err(error) = validate(&metrics, STORY_METRICS, "STORY", options) {
        return error;
    }
    let data: Vec<Value> =
        metrics.iter().map(|m| lifetime_item(&story.id, m, object_metric(&story.id, m, story.insights_day))).collect();
    ok(json!({ "data": data }))
}

fn ok(body: Value) -> Reply {
    Reply { status: 200, body, headers: Vec::new() }
}

const CITIES: [&str; 6] =
    ["London, England", "New York, New York", "Berlin, Berlin", "Paris, Île-de-France", "Lisbon, Lisboa", "Kyiv, Kyiv"];
const COUNTRIES: [&str; 6] = ["GB", "US", "DE", "FR", "PT", "UA"];
const AGES: [&str; 5] = ["18-24", "25-34", "35-44", "45-54", "55-64"];
const GENDERS: [&str; 3] = ["F", "M", "U"];

fn demographics(user: &IgUser, request: &Incoming<'_>) -> Reply {
    let param = |key: &str| request.query.get(key).map(String::as_str);
    if param("period") != Some("lifetime") {
        return graph_error(400, 100, None, "(#100) follower_demographics supports only period lifetime");
    }
    if param("metric_type") != Some("total_value") {
        return graph_error(400, 100, None, "(#100) follower_demographics requires metric_type=total_value");
    }
    let breakdown = param("breakdown").unwrap_or("");
    let rows: Vec<Vec<&str>> = match breakdown {
        "city" => CITIES.iter().map(|c| vec![*c]).collect(),
        "country" => COUNTRIES.iter().map(|c| vec![*c]).collect(),
        "age" => AGES.iter().map(|a| vec![*a]).collect(),
        "gender" => GENDERS.iter().map(|g| vec![*g]).collect(),
        "age,gender" => AGES.iter().flat_map(|a| GENDERS.iter().map(move |g| vec![*a, *g])).collect(),
        other => {
            return graph_error(
                400,
                100,
                None,
                &format!(
                    "(#100) breakdown[0] must be one of the following values: city, country, age, gender; got {other}"
                ),
            );
        }
    };
    let results: Vec<Value> = rows
        .iter()
        .map(|dims| json!({"dimension_values": dims, "value": metric_value(&user.id, &dims.join("|"), 0, 5_000) + 1}))
        .collect();
    let keys: Vec<&str> = breakdown.split(',').collect();
    ok(json!({"data": [{
        "name": "follower_demographics",
        "period": "lifetime",
        "title": "Follower demographics",
        "description": "The demographic characteristics of followers, including countries, cities and gender distribution.",
        "total_value": {"breakdowns": [{"dimension_keys": keys, "results": results}]},
        "id": format!("{}/insights/follower_demographics/lifetime", user.id),
    }]}))
}

/// Account insights by period, honouring since/until like Graph: `since` more than 2 years back or
/// in the future is refused, at most 30 days between since and until, one value per day whose
/// boundary (07:00 UTC, Pacific midnight) falls in `(since, until]`.
pub fn account(user: &IgUser, request: &Incoming<'_>, options: &SandboxOptions) -> Reply {
    let metrics = match metric_list(request) {
        Ok(metrics) => metrics,
        Err(error) => return error,
    };
    if metrics == ["follower_demographics"] {
        return demographics(user, request);
    }
    if request.query.get("metric_type").is_some_and(|t| t == "total_value") {
        return totals(user, request, &metrics, options);
    }
    let period = request.query.get("period").map(String::as_str).unwrap_or("");
    let valid: &[&str] = match period {
        "day" => &["follower_count", "reach"],
        "week" | "days_28" => &["reach"],
        "lifetime" => &["online_followers"],
        _ => return graph_error(400, 100, None, "(#100) period must be one of day, week, days_28, lifetime"),
    };
    if let Err(error) = validate(&metrics, valid, &format!("period {period}"), options) {
        return error;
    }
    let (since, until) = match since_until(request) {
        Ok(range) => range,
        Err(error) => return error,
    };
    let mut boundaries = Vec::new();
    let mut boundary = day_boundary_after(since);
    while boundary <= until {
        boundaries.push(boundary);
        boundary += Duration::days(1);
    }
    if boundaries.is_empty() {
        boundaries.push(day_boundary_after(since));
    }
    let data: Vec<Value> = metrics
        .iter()
        .map(|metric| {
            let values: Vec<Value> = boundaries
                .iter()
                .map(|b| {
                    let day = b.timestamp() / 86_400;
                    let value = if metric == "online_followers" {
                        let hours: Map<String, Value> = (0..24)
                            .map(|h| (h.to_string(), json!(metric_value(&user.id, metric, day * 24 + h, 3_000))))
                            .collect();
                        Value::Object(hours)
                    } else {
                        json!(metric_value(&user.id, &format!("{metric}/{period}"), day, 50_000))
                    };
                    json!({"value": value, "end_time": b.format("%Y-%m-%dT%H:%M:%S+0000").to_string()})
                })
                .collect();
            json!({
                "name": metric,
                "period": period,
                "values": values,
                "title": metric.replace('_', " "),
                "description": format!("{metric} over {period}"),
                "id": format!("{}/insights/{metric}/{period}", user.id),
            })
        })
        .collect();
    ok(json!({"data": data}))
}

/// `since` and `until`, checked as Graph checks them: both needed, `since` within the last 2
/// years and not in the future, at most 30 days between them.
fn since_until(request: &Incoming<'_>) -> Result<(DateTime<Utc>, DateTime<Utc>), Reply> {
    let (Some(since), Some(until)) = (parse_time(request.query.get("since")), parse_time(request.query.get("until")))
    else {
        return Err(graph_error(400, 100, None, "(#100) since and until are required and must be valid times"));
    };
    if since < request.now - Duration::days(730) || since > request.now {
        let message = "(#100) since param is not valid. Metrics data is available for the last 2 years";
        return Err(graph_error(400, 100, None, message));
    }
    if until - since > Duration::days(30) {
        let message = "(#100) There cannot be more than 30 days (2592000 s) between since and until";
        return Err(graph_error(400, 100, None, message));
    }
    Ok((since, until))
}

/// The account metrics served as `metric_type=total_value`, and for each breakdown the metrics
/// it splits.
pub const TOTALS: &[&str] = &[
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
pub const TOTALS_BREAKDOWNS: [(&str, &[&str]); 4] = [
    (
        "media_product_type",
        &["comments", "likes", "reach", "reposts", "saves", "shares", "total_interactions", "views"],
    ),
    ("follower_type", &["views"]),
    ("follow_type", &["follows_and_unfollows", "reach"]),
    ("contact_button_type", &["profile_links_taps"]),
];

/// The values a breakdown splits a metric into.
pub fn dimensions(breakdown: &str, metric: &str) -> &'static [&'static str] {
    match (breakdown, metric) {
        ("media_product_type", _) => &["AD", "FEED", "REEL", "STORY"],
        ("follow_type", "follows_and_unfollows") => &["FOLLOW", "UNFOLLOW"],
        ("follower_type" | "follow_type", _) => &["FOLLOWER", "NON_FOLLOWER"],
        ("contact_button_type", _) => &["BOOK_NOW", "CALL", "DIRECTION", "EMAIL", "TEXT", "UNDEFINED"],
        _ => &[],
    }
}

/// The value of an account total for one UTC day (days since the epoch), or of one of its
/// breakdown's values, as Graph reports it at `now`: Meta's figures lag up to 48 hours, so a day's
/// value grows until two days after it ends (changing once a day, at midnight UTC), then stays
/// final.
pub fn daily_total(user_id: &str, metric: &str, split: Option<(&str, &str)>, day: i64, now: DateTime<Utc>) -> u64 {
    let key = match split {
        None => format!("total/{metric}"),
        Some((breakdown, value)) => format!("total/{metric}/{breakdown}/{value}"),
    };
    let last = metric_value(user_id, &key, day, 5_000) + 1;
    // A quarter on the day itself, half the day after, three quarters the next, then final.
    let days_since = (now.timestamp().div_euclid(86_400) - day).clamp(0, 3) as u64;
    if days_since == 3 { last } else { last * (days_since + 1) / 4 }
}

/// Daily account totals: one value per metric over `[since, until)` (the sum of the UTC days
/// that start in it), split by the `breakdown` asked for.
fn totals(user: &IgUser, request: &Incoming<'_>, metrics: &[String], options: &SandboxOptions) -> Reply {
    if request.query.get("period").map(String::as_str) != Some("day") {
        return graph_error(400, 100, None, "(#100) total_value metrics support only period day");
    }
    let breakdown = request.query.get("breakdown").map(String::as_str);
    let (valid, scope) = match breakdown {
        None => (TOTALS, "ACCOUNT".to_owned()),
        Some(breakdown) => match TOTALS_BREAKDOWNS.iter().find(|(b, _)| *b == breakdown) {
            Some((_, metrics)) => (*metrics, format!("breakdown {breakdown}")),
            None => return graph_error(400, 100, None, &format!("(#100) Invalid breakdown {breakdown}")),
        },
    };
    let valid: Vec<&str> = valid
        .iter()
        .copied()
        .filter(|m| !options.unsupported_metrics.iter().any(|(u, s)| u == m && s == "ACCOUNT"))
        .collect();
    if let Err(error) = validate(metrics, &valid, &scope, options) {
        return error;
    }
    let (since, until) = match since_until(request) {
        Ok(range) => range,
        Err(error) => return error,
    };
    let days: Vec<i64> = ((since.timestamp() + 86_399).div_euclid(86_400)..)
        .take_while(|day| day * 86_400 < until.timestamp())
        .collect();
    let total = |metric: &str, split| {
        days.iter().map(|day| daily_total(&user.id, metric, split, *day, request.now)).sum::<u64>()
    };
    let data: Vec<Value> = metrics
        .iter()
        .map(|metric| {
            let mut total_value = json!({"value": total(metric, None)});
            if let Some(breakdown) = breakdown {
                let results: Vec<Value> = dimensions(breakdown, metric)
                    .iter()
                    .map(|value| json!({"dimension_values": [value], "value": total(metric, Some((breakdown, value)))}))
                    .collect();
                total_value["breakdowns"] = json!([{"dimension_keys": [breakdown], "results": results}]);
            }
            json!({
                "name": metric,
                "period": "day",
                "title": metric.replace('_', " "),
                "description": format!("{metric} over the range"),
                "total_value": total_value,
                "id": format!("{}/insights/{metric}/day", user.id),
            })
        })
        .collect();
    ok(json!({"data": data}))
}

fn day_boundary_after(moment: DateTime<Utc>) -> DateTime<Utc> {
    let date = moment.date_naive();
    let same_day = Utc.from_utc_datetime(&date.and_hms_opt(7, 0, 0).unwrap_or_default());
    if same_day > moment { same_day } else { same_day + Duration::days(1) }
}

/// Graph accepts unix seconds or a date-time string.
pub fn parse_time(value: Option<&String>) -> Option<DateTime<Utc>> {
    let value = value?.trim();
    if let Ok(seconds) = value.parse::<i64>() {
        return DateTime::from_timestamp(seconds, 0);
    }
    if let Ok(parsed) = DateTime::parse_from_rfc3339(value) {
        return Some(parsed.with_timezone(&Utc));
    }
    if let Ok(parsed) = DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%z") {
        return Some(parsed.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S").ok().map(|n| n.and_utc())
}
