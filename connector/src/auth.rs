//! The two ways in (`auth_type`): Facebook Login (a Facebook user token; accounts linked to the
//! user's Pages) and Instagram Login (an Instagram user token on graph.instagram.com; the token's
//! own account, no Page). And the refresh of an Instagram Login token.
//!
//! Why the refresh lives here: a long-lived token expires 60 days after it was issued or last
//! refreshed, and a sync then fails until a person pastes a new one. Instagram Login tokens can
//! be refreshed (`GET /refresh_access_token?grant_type=ig_refresh_token`); the connector does so
//! before `check` and `read`, hands the whole config with the new token back as a CONTROL message
//! (Airbyte's `CONNECTOR_CONFIG`, which the platform persists), and uses the new token for every
//! request after it. A refusal (Graph refuses tokens less than 24 hours old) is a WARN: the old
//! token still works.

use crate::config::{AuthType, Config};
use crate::http::Runtime;
use crate::http::answer::Id;
use crate::http::client::{GraphClient, RetryPolicy};
use crate::http::error::RequestError;
use crate::model::Account;
use crate::protocol::{Failure, LogLevel, RedactingSink, Sink};
use serde::Deserialize;

const REFRESH_PATH: &str = "/refresh_access_token";
/// `check` warns when the token expires sooner than this.
const EXPIRY_WARNING_DAYS: i64 = 7;

/// Graph's answer to a refresh.
#[derive(Deserialize)]
struct Refreshed {
    access_token: String,
}

/// The config to run with: `config` itself, or, with Instagram Login and `refresh_access_token`
/// on, the same config with a refreshed token, announced to `sink` as the whole config (`text`
/// with its `access_token` replaced). Graph's refresh endpoint has no version in its path.
pub async fn prepared(text: &str, config: Config, runtime: &dyn Runtime, sink: &dyn Sink) -> Config {
    if config.auth_type != AuthType::InstagramLogin || !config.refresh_access_token {
        return config;
    }
    let redacting = RedactingSink::new(sink, config.secrets());
    let client = GraphClient::new(config.origin(), &config.access_token, 1, RetryPolicy::quick(), runtime, &redacting);
    let outcome = client.get::<Refreshed>(REFRESH_PATH, &[("grant_type", "ig_refresh_token")], "check").await;
    let token = match outcome {
        Ok(Refreshed { access_token }) if is_token(&access_token) => access_token,
        Ok(_) => {
            redacting.log(LogLevel::Warn, "The Instagram Login token was not refreshed: Graph's answer held no usable token; the sync goes on with the current one.");
            return config;
        }
        Err(error) => {
            let message = format!(
                "The Instagram Login token was not refreshed ({}); the sync goes on with the current one, which expires 60 days after it was issued or last refreshed.",
                error.message()
            );
            redacting.log(LogLevel::Warn, &message);
            return config;
        }
    };
    let mut whole: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(crate::protocol::without_bom(text)).unwrap_or_default();
    whole.insert("access_token".into(), serde_json::Value::String(token.clone()));
    sink.config_updated(&serde_json::Value::Object(whole).to_string());
    redacting.log(
        LogLevel::Info,
        "The Instagram Login token was refreshed; the config with it went out as a CONTROL message.",
    );
    Config { access_token: token, ..config }
}

/// What a token must look like to go in a header (as `Config::parse` checks the user's).
fn is_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= crate::config::MAX_TOKEN_LENGTH && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Instagram Login's `/me`: the token's own account.
#[derive(Deserialize)]
struct Me {
    user_id: Option<Id>,
}

/// The account an Instagram Login token belongs to; `selected` ids, if any, must be that one.
/// A `/me` without `user_id` is a Facebook user: the token belongs to Facebook Login.
pub async fn instagram_account(
    client: &GraphClient<'_>,
    selected: &[String],
    stream: &str,
) -> Result<Account, Failure> {
    let me: Me = client
        .get("/me", &[("fields", "user_id,username")], stream)
        .await
        .map_err(|error| explain(&error, AuthType::InstagramLogin, client.token()))?;
    let Some(user_id) = me.user_id.map(|id| id.text()) else {
        return Err(Failure::config(
            "The token belongs to Facebook Login (Graph's /me is a Facebook user, with no Instagram user_id), and `auth_type` is instagram_login: set `auth_type` to facebook_login, or paste an Instagram Login token.",
        ));
    };
    if let Some(other) = selected.iter().find(|id| **id != user_id) {
        return Err(Failure::config(format!(
            "Config field `account_ids` names {other}, but an Instagram Login token reads its own account only, {user_id}: remove `account_ids` or list that id."
        )));
    }
    Ok(Account { business_account_id: user_id, page_id: None })
}

/// `error` as the failure to report, naming the login a refused token belongs to (code 190) where
/// its form shows it (Facebook user tokens start with `EAA`, Instagram Login tokens with `IG`),
/// and Instagram Login's permission names for a permission error.
pub fn explain(error: &RequestError, auth_type: AuthType, token: &str) -> Failure {
    let failure = error.to_failure();
    let hint = match (error.code(), auth_type) {
        (Some(190), AuthType::InstagramLogin) if token.starts_with("EAA") => Some(
            "The token belongs to Facebook Login (it starts with EAA), and `auth_type` is instagram_login: set `auth_type` to facebook_login, or paste an Instagram Login token.",
        ),
        (Some(190), AuthType::FacebookLogin) if token.starts_with("IG") => Some(
            "The token belongs to Instagram Login (it starts with IG), and `auth_type` is facebook_login: set `auth_type` to instagram_login.",
        ),
        (Some(10 | 200), AuthType::InstagramLogin) => Some(
            "The Instagram Login token lacks a permission: it needs instagram_business_basic and instagram_business_manage_insights (and instagram_business_manage_comments for comments).",
        ),
        _ => None,
    };
    match hint {
        Some(hint) => Failure { message: format!("{hint} ({})", failure.message), ..failure },
        None => failure,
    }
}

/// Graph's `/debug_token` answer: when the token expires (`0`: never).
#[derive(Deserialize)]
struct Debugged {
    data: DebuggedToken,
}

#[derive(Deserialize)]
struct DebuggedToken {
    #[serde(default)]
    expires_at: Option<i64>,
}

/// Facebook Login: when the config holds the app's `client_id` and `client_secret`, asks Graph's
/// `/debug_token` (which needs an app token, `client_id|client_secret`) when the user token
/// expires, and warns when that is less than 7 days away. Without them Graph tells nothing about
/// a user token's expiry, so nothing is asked; any failure of the probe is silent (the check
/// itself proves the token works).
pub async fn warn_of_expiry(config: &Config, runtime: &dyn Runtime, sink: &dyn Sink) {
    let (AuthType::FacebookLogin, Some(id), Some(secret)) =
        (config.auth_type, &config.client_id, &config.client_secret)
    else {
        return;
    };
    let app_token = format!("{id}|{secret}");
    let client = GraphClient::new(&config.base_url, &app_token, 1, RetryPolicy::quick(), runtime, sink);
    let query = [("input_token", config.access_token.as_str()), ("fields", "expires_at")];
    let Ok(Debugged { data }) = client.get::<Debugged>("/debug_token", &query, "check").await else { return };
    let Some(expires_at) = data.expires_at.filter(|at| *at > 0) else { return };
    let left = expires_at - runtime.now().timestamp();
    if left < EXPIRY_WARNING_DAYS * 86_400 {
        let when = chrono::DateTime::from_timestamp(expires_at, 0).map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string());
        sink.log(
            LogLevel::Warn,
            &format!(
                "The access token expires {} (in {} days): generate a new long-lived token before then, or syncs will fail with code 190.",
                when.unwrap_or_default(),
                (left.max(0) + 86_399) / 86_400
            ),
        );
    }
}
