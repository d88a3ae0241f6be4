//! The user's config: parsed once, validated with messages a user can act on.
//!
//! Validation mirrors the spec (`resources/spec.json`): a config that the spec rejects is a
//! `config_error`, never a crash later in a stream.

use crate::http::answer::present;
use crate::metrics::{self, Chosen};
use crate::model::{API_VERSION, GRAPH_ORIGIN, INSTAGRAM_ORIGIN};
use crate::protocol::{Failure, without_bom};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use std::fmt;

pub const DEFAULT_NUM_WORKERS: usize = 15;
pub const MIN_NUM_WORKERS: usize = 2;
pub const MAX_NUM_WORKERS: usize = 40;
/// Meta's tokens are a few hundred characters; anything far longer cannot be one, and would be
/// refused by the host's header limits instead of by a clear message.
pub const MAX_TOKEN_LENGTH: usize = 4096;
pub const MAX_BASE_URL_LENGTH: usize = 2048;
pub const DEFAULT_LOOKBACK_DAYS: u32 = 30;
pub const MAX_LOOKBACK_DAYS: u32 = 730;
/// More ids than any business manages; a longer list is a pasted mistake.
pub const MAX_ACCOUNT_IDS: usize = 1000;
pub const DEFAULT_LAG_DAYS: u32 = 2;
pub const MAX_LAG_DAYS: u32 = 30;

/// How the token was obtained, which decides the API's host and how accounts are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// A Facebook user token; accounts are the Instagram accounts linked to the user's Pages.
    FacebookLogin,
    /// An Instagram user token (graph.instagram.com); the account is the token's own, no Page.
    InstagramLogin,
}

#[derive(Clone)]
pub struct Config {
    pub access_token: String,
    pub auth_type: AuthType,
    /// Instagram Login: refresh the long-lived token before `check` and `read`.
    pub refresh_access_token: bool,
    /// The OAuth app's id and secret (the spec marks both secret; neither is sent anywhere).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub start_date: Option<DateTime<Utc>>,
    pub num_workers: usize,
    /// With the API version, without a trailing slash: `https://graph.facebook.com/v23.0`.
    pub base_url: String,
    /// Call reduction switches (all default on; off is the reference's request pattern).
    pub optimizations: Optimizations,
    /// The Instagram accounts to sync; empty means every account the token's Pages link.
    pub account_ids: Vec<String>,
    /// Incremental media reads re-read media posted this many days before the cursor.
    pub insights_lookback_days: u32,
    /// The user's insights metric lists (each `None`: the default).
    pub metrics: Chosen,
    /// Incremental `user_daily_totals` syncs re-read this many days before the cursor (Meta's
    /// figures can lag up to 48 hours).
    pub daily_totals_lag_days: u32,
}

/// Ways to get the same records with fewer calls and round trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Optimizations {
    /// Carousel slides through `children{…}` field expansion instead of one GET per slide.
    pub expand_children: bool,
    /// Media and story insights through the Batch API, 50 per round trip.
    pub batch_insights: bool,
    /// user_insights metric groups for up to 30 days per request instead of one day.
    pub insights_ranges: bool,
    /// Slow down before Meta's reported quota usage reaches 100 %.
    pub pace_requests: bool,
}

impl Default for Optimizations {
    fn default() -> Self {
        Optimizations { expand_children: true, batch_insights: true, insights_ranges: true, pace_requests: true }
    }
}

/// Secrets stay out of any debug output.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Config { base_url, start_date, num_workers, account_ids, .. } = self;
        let settings = (base_url, start_date, num_workers, account_ids, &self.optimizations);
        f.debug_tuple("Config").field(&settings).finish_non_exhaustive()
    }
}

/// The config as the user wrote it: each field typed as the spec declares it, before the rules
/// that serde cannot say (bounds, token characters, URL shape). Unknown keys are ignored, as the
/// spec allows them.
#[derive(Deserialize)]
struct UserConfig {
    access_token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    start_date: Option<String>,
    /// A number of any kind, so that `2.5` or `-3` is refused by value, not as a type.
    num_workers: Option<serde_json::Number>,
    /// Absent means the real Graph API; null is a mistake worth naming.
    #[serde(default, deserialize_with = "present")]
    base_url: Option<Option<String>>,
    expand_carousel_children: Option<bool>,
    batch_insights_requests: Option<bool>,
    user_insights_date_ranges: Option<bool>,
    pace_requests: Option<bool>,
    account_ids: Option<Vec<String>>,
    insights_lookback_days: Option<serde_json::Number>,
    api_version: Option<String>,
    media_insights_metrics: Option<ProductTypes>,
    story_insights_metrics: Option<Vec<String>>,
    daily_totals_metrics: Option<Vec<String>>,
    daily_totals_lag_days: Option<serde_json::Number>,
    auth_type: Option<String>,
    refresh_access_token: Option<bool>,
}

/// `media_insights_metrics`: a list per media product type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductTypes {
    #[serde(rename = "FEED")]
    feed: Option<Vec<String>>,
    #[serde(rename = "REELS")]
    reels: Option<Vec<String>>,
}

/// What a field must be, for the message when its type is wrong. serde's own wording would quote
/// the value, which may be a secret.
fn expected(field: &str) -> String {
    match field {
        "num_workers" => format!("a whole number from {MIN_NUM_WORKERS} to {MAX_NUM_WORKERS}"),
        "base_url" => format!("a non-empty http(s) URL; remove it to use {GRAPH_ORIGIN}"),
        "auth_type" => "`facebook_login` or `instagram_login`".to_owned(),
        "expand_carousel_children"
        | "batch_insights_requests"
        | "user_insights_date_ranges"
        | "pace_requests"
        | "refresh_access_token" => "true or false".to_owned(),
        "insights_lookback_days" => format!("a whole number of days from 0 to {MAX_LOOKBACK_DAYS}"),
        "daily_totals_lag_days" => format!("a whole number of days from 0 to {MAX_LAG_DAYS}"),
        "media_insights_metrics" => "an object with a list of metrics for FEED and/or REELS".to_owned(),
        field if field.ends_with("_metrics") || field.contains("_metrics.") => "a list of metric names".to_owned(),
        field if field.starts_with("account_ids") => "a list of Instagram account ids, as strings".to_owned(),
        _ => "a string".to_owned(),
    }
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, Failure> {
        let text = without_bom(text);
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| Failure::config(format!("The config is not valid JSON: {e}.")))?;
        if !text.trim_start().starts_with('{') {
            return Err(Failure::config("The config must be a JSON object."));
        }
        let user: UserConfig = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text))
            .map_err(|error| {
                // A field of the wrong type has a path; an error of the whole object (a duplicate
                // key) has none and names the key itself.
                let field = error.path().to_string();
                if field == "." {
                    Failure::config(format!("The config cannot be read: {}.", error.inner()))
                } else {
                    Failure::config(format!("Config field `{field}` must be {}.", expected(&field)))
                }
            })?;

        let access_token = user.access_token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Failure::config("Config field `access_token` is required: paste a Graph API user access token.")
        })?;
        // A token travels in an HTTP header: it must be one line of visible ASCII.
        if access_token.len() > MAX_TOKEN_LENGTH {
            return Err(Failure::config(format!(
                "Config field `access_token` is {} characters long; a Graph API token has at most {MAX_TOKEN_LENGTH}. Paste the token alone.",
                access_token.len()
            )));
        }
        if !access_token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Failure::config(
                "Config field `access_token` contains spaces, line breaks or other characters a Graph API token never has. Paste the token alone.",
            ));
        }

        let start_date = user.start_date.filter(|s| !s.is_empty()).map(|s| parse_start_date(&s)).transpose()?;

        let num_workers = match user.num_workers {
            None => DEFAULT_NUM_WORKERS,
            Some(n) => n
                .as_u64()
                .filter(|n| (MIN_NUM_WORKERS as u64..=MAX_NUM_WORKERS as u64).contains(n))
                .map(|n| n as usize)
                .ok_or_else(|| {
                    Failure::config(format!(
                        "Config field `num_workers` is {n}; it must be a whole number from {MIN_NUM_WORKERS} to {MAX_NUM_WORKERS}."
                    ))
                })?,
        };

        let auth_type = match user.auth_type.as_deref() {
            None | Some("facebook_login") => AuthType::FacebookLogin,
            Some("instagram_login") => AuthType::InstagramLogin,
            Some(other) => {
                let shown: String = other.chars().take(40).collect();
                return Err(Failure::config(format!(
                    "Config field `auth_type` is `{shown}`; it must be {}.",
                    expected("auth_type")
                )));
            }
        };
        let base_url = match user.base_url {
            None if auth_type == AuthType::InstagramLogin => INSTAGRAM_ORIGIN.to_owned(),
            None => GRAPH_ORIGIN.to_owned(),
            Some(Some(url)) if !url.trim().is_empty() => url,
            Some(_) => {
                return Err(Failure::config(format!("Config field `base_url` must be {}.", expected("base_url"))));
            }
        };
        if base_url.len() > MAX_BASE_URL_LENGTH {
            return Err(Failure::config(format!(
                "Config field `base_url` is {} characters long; at most {MAX_BASE_URL_LENGTH} are accepted.",
                base_url.len()
            )));
        }
        let parsed = url::Url::parse(&base_url).map_err(|e| match e {
            // The component carries no Unicode tables (they cost memory in every tenant).
            url::ParseError::IdnaError => Failure::config(
                "Config field `base_url` has a non-ASCII host name: write it in its ASCII form (`xn--…`).",
            ),
            e => Failure::config(format!("Config field `base_url` is not a URL ({e}).")),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(Failure::config("Config field `base_url` must be an http(s) URL with a host."));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(Failure::config("Config field `base_url` must not carry a query or fragment."));
        }
        // What the URL parser would silently change, so the request would not go where the user
        // wrote: a backslash (read as `/`), spaces and line breaks (dropped), user info (sent to
        // the server), port 0.
        if base_url.contains('\\') {
            return Err(Failure::config("Config field `base_url` contains a backslash; URLs use `/`."));
        }
        if base_url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Failure::config("Config field `base_url` contains spaces, tabs or line breaks."));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Failure::config(
                "Config field `base_url` must not carry a user name or password (`user@`); the token authenticates.",
            ));
        }
        if parsed.port() == Some(0) {
            return Err(Failure::config("Config field `base_url` has port 0, which no server listens on."));
        }

        let optimizations = Optimizations {
            expand_children: user.expand_carousel_children.unwrap_or(true),
            batch_insights: user.batch_insights_requests.unwrap_or(true),
            insights_ranges: user.user_insights_date_ranges.unwrap_or(true),
            pace_requests: user.pace_requests.unwrap_or(true),
        };

        let insights_lookback_days = match user.insights_lookback_days {
            None => DEFAULT_LOOKBACK_DAYS,
            Some(n) => {
                n.as_u64().filter(|n| *n <= u64::from(MAX_LOOKBACK_DAYS)).map(|n| n as u32).ok_or_else(|| {
                    Failure::config(format!(
                        "Config field `insights_lookback_days` is {n}; it must be {}.",
                        expected("insights_lookback_days")
                    ))
                })?
            }
        };

        let daily_totals_lag_days = match user.daily_totals_lag_days {
            None => DEFAULT_LAG_DAYS,
            Some(n) => n.as_u64().filter(|n| *n <= u64::from(MAX_LAG_DAYS)).map(|n| n as u32).ok_or_else(|| {
                Failure::config(format!(
                    "Config field `daily_totals_lag_days` is {n}; it must be {}.",
                    expected("daily_totals_lag_days")
                ))
            })?,
        };
        let (feed, reels) = user.media_insights_metrics.map_or((None, None), |types| (types.feed, types.reels));
        let metrics = Chosen {
            feed: chosen("media_insights_metrics.FEED", feed, metrics::FEED_METRICS)?,
            reels: chosen("media_insights_metrics.REELS", reels, metrics::REELS_METRICS)?,
            story: chosen("story_insights_metrics", user.story_insights_metrics, metrics::STORY_METRICS)?,
            totals: chosen("daily_totals_metrics", user.daily_totals_metrics, metrics::TOTALS_METRICS)?,
        };

        Ok(Config {
            auth_type,
            refresh_access_token: user.refresh_access_token.unwrap_or(true),
            metrics,
            daily_totals_lag_days,
            account_ids: account_ids(user.account_ids.unwrap_or_default())?,
            insights_lookback_days,
            optimizations,
            access_token,
            client_id: user.client_id,
            client_secret: user.client_secret,
            start_date,
            num_workers,
            base_url: versioned(&parsed, user.api_version)?,
        })
    }

    /// A `start_date` after `now` would read nothing, sync after sync: refuse it.
    pub fn check_start_date(&self, now: DateTime<Utc>) -> Result<(), Failure> {
        match self.start_date {
            Some(start) if start > now => Err(Failure::config(format!(
                "Config field `start_date` is {}, which is in the future; use a past date (or leave it empty for two years back).",
                start.format("%Y-%m-%dT%H:%M:%SZ")
            ))),
            _ => Ok(()),
        }
    }

    /// `base_url` without its API version, for Graph's unversioned endpoints (Instagram Login's
    /// token refresh).
    pub fn origin(&self) -> &str {
        let unversioned = self.base_url.rsplit_once('/').filter(|(_, last)| is_version(last));
        unversioned.map_or(self.base_url.as_str(), |(origin, _)| origin)
    }

    /// Every value that must never appear in any output.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.access_token.clone()];
        secrets.extend(self.client_id.clone());
        secrets.extend(self.client_secret.clone());
        secrets
    }
}

/// `v23.0` and the like: `v`, then one to three digits, a dot, one to three digits.
fn is_version(text: &str) -> bool {
    let digits = |part: &str| !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit());
    text.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| digits(major) && digits(minor))
}

/// `base_url` with the API version its requests go to: a URL ending in a version (`/v23.0`) is
/// kept as written; any other gets `api_version` (default [`API_VERSION`]) appended. Naming two
/// different versions is a `config_error`.
fn versioned(base_url: &url::Url, api_version: Option<String>) -> Result<String, Failure> {
    if let Some(version) = api_version.as_deref().filter(|version| !is_version(version)) {
        let shown: String = version.chars().take(20).collect();
        return Err(Failure::config(format!(
            "Config field `api_version` is `{shown}`; it must look like {API_VERSION} (a `v`, the major and minor version)."
        )));
    }
    let written = base_url.as_str().trim_end_matches('/');
    match written.rsplit_once('/').map(|(_, last)| last).filter(|last| is_version(last)) {
        Some(in_url) if api_version.as_deref().is_some_and(|version| version != in_url) => {
            Err(Failure::config(format!(
                "Config field `base_url` names the API version {in_url} and `api_version` names {}; remove one of them.",
                api_version.unwrap_or_default()
            )))
        }
        Some(_) => Ok(written.to_owned()),
        None => Ok(format!("{written}/{}", api_version.as_deref().unwrap_or(API_VERSION))),
    }
}

/// A metric list of the user's: every name one Graph serves there (`known`), repeats dropped.
fn chosen(field: &str, names: Option<Vec<String>>, known: &[&str]) -> Result<Option<Vec<String>>, Failure> {
    let Some(names) = names else { return Ok(None) };
    let known_list = known.join(", ");
    if names.is_empty() {
        return Err(Failure::config(format!(
            "Config field `{field}` is empty; leave it out for the default metrics, or name some of: {known_list}."
        )));
    }
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if !known.contains(&name.as_str()) {
            let shown: String = name.chars().take(40).collect();
            return Err(Failure::config(format!(
                "Config field `{field}` names `{shown}`, which is not a metric Graph serves there; the known ones are: {known_list}."
            )));
        }
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Ok(Some(unique))
}

/// Each id is digits (Graph ids are decimal); repeats are dropped, order kept.
fn account_ids(ids: Vec<String>) -> Result<Vec<String>, Failure> {
    if ids.len() > MAX_ACCOUNT_IDS {
        return Err(Failure::config(format!(
            "Config field `account_ids` lists {} ids; at most {MAX_ACCOUNT_IDS} are accepted.",
            ids.len()
        )));
    }
    let mut unique: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        let id = id.trim().to_owned();
        if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Failure::config(format!(
                "Config field `account_ids` holds `{}`; an Instagram account id is digits only, e.g. 17841400000000000.",
                id.chars().take(40).collect::<String>()
            )));
        }
        if !unique.contains(&id) {
            unique.push(id);
        }
    }
    Ok(unique)
}

fn parse_start_date(text: &str) -> Result<DateTime<Utc>, Failure> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ").map(|naive| naive.and_utc()).map_err(|_| {
        Failure::config(format!("Config field `start_date` is `{text}`; it must look like 2017-01-25T00:00:00Z."))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::FailureType;
    use serde_json::Value;

    #[test]
    fn defaults_apply() {
        let c = Config::parse(r#"{"access_token":"tok-123"}"#).expect("valid");
        assert_eq!(c.num_workers, 15);
        assert_eq!(c.base_url, format!("{GRAPH_ORIGIN}/{API_VERSION}"));
        assert!(c.start_date.is_none());
        assert_eq!(c.optimizations, Optimizations::default());
        assert_eq!((c.account_ids.len(), c.insights_lookback_days), (0, 30));
        let picked = Config::parse(r#"{"access_token":"t","account_ids":["2"," 1","2"]}"#).expect("valid");
        assert_eq!(picked.account_ids, ["2", "1"]);
        let off =
            Config::parse(r#"{"access_token":"t","batch_insights_requests":false,"expand_carousel_children":false}"#)
                .expect("valid");
        assert_eq!(
            off.optimizations,
            Optimizations { expand_children: false, batch_insights: false, insights_ranges: true, pace_requests: true }
        );
        assert!(Config::parse(r#"{"access_token":"t","batch_insights_requests":"yes"}"#).is_err());
    }

    /// A `base_url` ending in a version is kept; any other gets `api_version`; the spec's default
    /// is the one constant.
    #[test]
    fn the_api_version_is_appended_unless_base_url_names_one() {
        let base_url = |config: &str| Config::parse(config).map(|c| c.base_url).map_err(|f| f.message);
        for (config, expected) in [
            (r#"{"access_token":"t"}"#, format!("https://graph.facebook.com/{API_VERSION}")),
            (r#"{"access_token":"t","api_version":"v24.0"}"#, "https://graph.facebook.com/v24.0".into()),
            (r#"{"access_token":"t","base_url":"http://127.0.0.1:8/"}"#, format!("http://127.0.0.1:8/{API_VERSION}")),
            (
                r#"{"access_token":"t","base_url":"http://h:8/graph","api_version":"v9.1"}"#,
                "http://h:8/graph/v9.1".into(),
            ),
            (r#"{"access_token":"t","base_url":"http://h:8/v22.0/"}"#, "http://h:8/v22.0".into()),
            (r#"{"access_token":"t","base_url":"http://h:8/v22.0","api_version":"v22.0"}"#, "http://h:8/v22.0".into()),
        ] {
            assert_eq!(base_url(config), Ok(expected), "{config}");
        }
        for (config, needle) in [
            (r#"{"access_token":"t","base_url":"http://h:8/v22.0","api_version":"v24.0"}"#, "remove one"),
            (r#"{"access_token":"t","api_version":"23.0"}"#, "must look like"),
            (r#"{"access_token":"t","api_version":"v23"}"#, "must look like"),
            (r#"{"access_token":"t","api_version":"v23.0/../x"}"#, "must look like"),
            (r#"{"access_token":"t","api_version":5}"#, "`api_version` must be"),
        ] {
            assert!(base_url(config).is_err_and(|m| m.contains(needle)), "{config}: {:?}", base_url(config));
        }
        let spec: Value = serde_json::from_str(&crate::source::spec().expect("spec")).expect("json");
        assert_eq!(spec["connectionSpecification"]["properties"]["api_version"]["default"], API_VERSION);
        assert_eq!(spec["connectionSpecification"]["properties"]["base_url"]["default"], GRAPH_ORIGIN);
        let origin = |text: &str| Config::parse(text).expect("valid").origin().to_owned();
        assert_eq!(origin(r#"{"access_token":"t"}"#), "https://graph.facebook.com");
        assert_eq!(origin(r#"{"access_token":"t","base_url":"http://h:8/graph"}"#), "http://h:8/graph");
        assert_eq!(origin(r#"{"access_token":"t","base_url":"http://h:8/vault/v9.1"}"#), "http://h:8/vault");
    }

    #[test]
    fn trailing_slash_is_trimmed_and_start_date_parsed() {
        let c = Config::parse(
            r#"{"access_token":"t","base_url":"http://127.0.0.1:9/v23.0/","start_date":"2024-01-14T00:00:00Z"}"#,
        )
        .expect("valid");
        assert_eq!(c.base_url, "http://127.0.0.1:9/v23.0");
        assert_eq!(c.start_date.map(|d| d.to_rfc3339()), Some("2024-01-14T00:00:00+00:00".into()));
    }

    #[test]
    fn bad_configs_are_config_errors_without_the_token() {
        for (text, needle) in [
            ("not json", "not valid JSON"),
            ("[]", "JSON object"),
            ("{}", "access_token"),
            (r#"{"access_token":""}"#, "access_token"),
            (r#"{"access_token":"secret-token","num_workers":1}"#, "num_workers"),
            (r#"{"access_token":"secret-token","num_workers":41}"#, "num_workers"),
            (r#"{"access_token":"secret-token","num_workers":"8"}"#, "num_workers"),
            (r#"{"access_token":"secret-token","start_date":"2024-01-01"}"#, "start_date"),
            (r#"{"access_token":"secret-token","base_url":"ftp://x"}"#, "base_url"),
            (r#"{"access_token":"secret-token","base_url":"nope"}"#, "base_url"),
            (r#"{"access_token":"secret-token","base_url":"https://bücher.example/v23.0"}"#, "xn--"),
            (r#"{"access_token":"secret-token","base_url":""}"#, "non-empty"),
            (r#"{"access_token":"secret-token","base_url":"https:\\\\graph.facebook.com\\v23.0"}"#, "backslash"),
            (r#"{"access_token":"secret-token","base_url":"https://graph.facebook.com\\v23.0"}"#, "backslash"),
            (r#"{"access_token":"secret-token","base_url":"https://u:p@graph.facebook.com/v23.0"}"#, "user name"),
            (r#"{"access_token":"secret-token","base_url":"https://me@graph.facebook.com/v23.0"}"#, "user name"),
            (r#"{"access_token":"secret-token","base_url":"https://graph.face\tbook.com/v23.0"}"#, "tabs"),
            (r#"{"access_token":"secret-token","base_url":" https://graph.facebook.com/v23.0"}"#, "spaces"),
            (r#"{"access_token":"secret-token","base_url":"http://127.0.0.1:0/v23.0"}"#, "port 0"),
            (r#"{"access_token":"secret-token","base_url":null}"#, "non-empty"),
            (r#"{"access_token":"secret-token","num_workers":9223372036854775807}"#, "is 9223372036854775807"),
            (r#"{"access_token":"secret-token","num_workers":-3}"#, "is -3"),
            (r#"{"access_token":"secret-token","num_workers":2.5}"#, "is 2.5"),
            (r#"{"access_token":"secret\r\ntoken"}"#, "line breaks"),
            (r#"{"access_token":"secret\u0000token"}"#, "line breaks"),
            (r#"{"access_token":"secret-token","access_token":"secret-token"}"#, "duplicate field `access_token`"),
            (r#"{"access_token":"t","client_secret":["secret-token"]}"#, "`client_secret` must be a string"),
            (r#"{"access_token":"t","account_ids":"1784"}"#, "`account_ids` must be a list"),
            (r#"{"access_token":"t","account_ids":[1784]}"#, "`account_ids[0]` must be a list"),
            (r#"{"access_token":"t","account_ids":["@brand"]}"#, "digits only"),
            (r#"{"access_token":"t","insights_lookback_days":731}"#, "is 731"),
            (r#"{"access_token":"t","insights_lookback_days":-1}"#, "is -1"),
        ] {
            let err = Config::parse(text).expect_err(text);
            assert_eq!(err.failure_type, FailureType::ConfigError, "{text}");
            assert!(err.message.contains(needle), "{text}: {}", err.message);
            assert!(!err.message.contains("secret-token"));
        }
    }

    #[test]
    fn a_byte_order_mark_is_ignored_and_huge_values_are_refused() {
        assert!(Config::parse("\u{feff}{\"access_token\":\"t\"}").is_ok());
        let huge = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(1 << 20));
        assert!(Config::parse(&huge).expect_err("huge").message.contains("1048576 characters"));
        let long_url = format!(r#"{{"access_token":"t","base_url":"https://x/{}"}}"#, "p".repeat(100_000));
        assert!(Config::parse(&long_url).expect_err("long").message.contains("at most 2048"));
    }

    /// The spec and the code cannot drift: every spec property is read by [`Config::parse`] with
    /// the type, bounds, pattern and default the spec declares, and a wrong value is refused with
    /// a message naming the field.
    #[test]
    fn every_spec_property_is_enforced_as_declared() {
        let spec: Value = serde_json::from_str(include_str!("../resources/spec.json")).expect("spec");
        let properties = spec["connectionSpecification"]["properties"].as_object().expect("properties");
        let with = |key: &str, value: Value| {
            let mut config = serde_json::json!({"access_token": "tok"});
            config[key] = value;
            Config::parse(&config.to_string())
        };
        for (key, property) in properties {
            let wrong_type = match property["type"].as_str() {
                Some("string") => serde_json::json!(5),
                Some("integer" | "boolean" | "array" | "object") => serde_json::json!("x"),
                other => panic!("{key}: type {other:?} is not covered"),
            };
            let refused = with(key, wrong_type).expect_err(key);
            assert!(refused.message.contains(&format!("`{key}`")), "{key}: {}", refused.message);
            if let Some(default) = property.get("default") {
                assert!(with(key, default.clone()).is_ok(), "{key}: the default is accepted");
            }
            if let (Some(min), Some(max)) = (property["minimum"].as_i64(), property["maximum"].as_i64()) {
                assert!(
                    with(key, serde_json::json!(min)).is_ok() && with(key, serde_json::json!(max)).is_ok(),
                    "{key}"
                );
                assert!(
                    with(key, serde_json::json!(min - 1)).is_err() && with(key, serde_json::json!(max + 1)).is_err(),
                    "{key}"
                );
            }
            if let Some(known) = property.pointer("/items/enum") {
                assert!(with(key, serde_json::json!(["x1"])).is_err_and(|f| f.message.contains("known ones")), "{key}");
                assert!(with(key, serde_json::json!([])).is_err(), "{key}: at least one");
                assert!(with(key, serde_json::json!([known[0]])).is_ok(), "{key}: a known name is accepted");
            }
            if let Some(types) = property["properties"].as_object() {
                for (product_type, list) in types {
                    let first = &list["items"]["enum"][0];
                    assert!(with(key, serde_json::json!({product_type: [first]})).is_ok(), "{key}.{product_type}");
                    assert!(with(key, serde_json::json!({product_type: ["x1"]})).is_err(), "{key}.{product_type}");
                }
                assert!(with(key, serde_json::json!({"STORY": ["reach"]})).is_err(), "{key}: unknown product types");
            }
            if property.pointer("/items/pattern").is_some() {
                assert!(with(key, serde_json::json!(["x1"])).is_err(), "{key}: the item pattern is enforced");
                assert!(with(key, property["examples"][0].clone()).is_ok(), "{key}: the example is accepted");
            }
            if property.get("pattern").is_some() {
                assert!(with(key, serde_json::json!("2017-01-25")).is_err(), "{key}: the pattern is enforced");
                let example = property["examples"][0].clone();
                assert!(with(key, example).is_ok(), "{key}: the example is accepted");
            }
        }
        let defaults = Config::parse(r#"{"access_token":"tok"}"#).expect("defaults");
        assert_eq!(defaults.num_workers as u64, properties["num_workers"]["default"].as_u64().expect("default"));
        let default_url = |key: &str| properties[key]["default"].as_str().expect("default").to_owned();
        assert_eq!(defaults.base_url, format!("{}/{}", default_url("base_url"), default_url("api_version")));
    }

    #[test]
    fn debug_output_hides_the_token() {
        let c = Config::parse(r#"{"access_token":"secret-token"}"#).expect("valid");
        assert!(!format!("{c:?}").contains("secret-token"));
    }
}
