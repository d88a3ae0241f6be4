//! `Api`: the Facebook Pages of the token's user that have an Instagram business account
//! (reference §3). Also the parent of every other stream and the `check` probe.

use super::{Reader, StreamDef};
use crate::graph::{self, ACCOUNTS_FIELDS, ACCOUNTS_PATH, Account};
use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use crate::protocol::{LogLevel, Sink};
use futures::StreamExt;
use serde_json::{Value, json};

pub const NAME: &str = "Api";

pub const STREAM: StreamDef =
    StreamDef { resumable: true, ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Accounts) };

/// The record schema `discover` returns.
pub const SCHEMA: &str = include_str!("schemas/api.json");

/// Turns one `/me/accounts` item into an `Api` record, or `None` for a page without a usable
/// Instagram business account.
pub fn transform(page: Value, sink: &dyn Sink) -> Option<(Value, Account)> {
    let Value::Object(mut page) = page else {
        return None;
    };
    let ig = page.remove("instagram_business_account")?;
    let page_id = graph::id_string(page.get("id"));
    let business_account_id = graph::id_string(ig.get("id"));
    let (Some(page_id), Some(business_account_id)) = (page_id, business_account_id) else {
        sink.log(LogLevel::Warn, "Api: skipping a page whose id or instagram_business_account.id is missing");
        return None;
    };
    page.insert("id".into(), Value::String(page_id.clone()));
    page.insert("account".into(), json!({"business_account_id": business_account_id, "page_id": page_id}));
    Some((Value::Object(page), Account { business_account_id, page_id }))
}

/// All Api records with their accounts, every page read.
pub async fn read_all(client: &GraphClient<'_>) -> Result<Vec<(Value, Account)>, RequestError> {
    let mut out = Vec::new();
    let mut pages = std::pin::pin!(graph::pages(client, ACCOUNTS_PATH.into(), fields(), NAME));
    while let Some(page) = pages.next().await {
        out.extend(page?.into_iter().filter_map(|p| transform(p, client.sink())));
    }
    Ok(out)
}

/// The first page only: what `check` needs to prove the token works.
pub async fn read_first_page(client: &GraphClient<'_>) -> Result<(), RequestError> {
    let mut pages = std::pin::pin!(graph::pages(client, ACCOUNTS_PATH.into(), fields(), NAME));
    pages.next().await.transpose().map(|_| ())
}

fn fields() -> Vec<(&'static str, String)> {
    vec![("fields", ACCOUNTS_FIELDS.into())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::RecordingSink;

    #[test]
    fn keeps_only_pages_with_a_business_account() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/samples/api_for_not_instagram_business_account.json"
        ))
        .expect("sample");
        let sink = RecordingSink::default();
        let pages = sample["data"].as_array().cloned().unwrap_or_default();
        let kept: Vec<_> = pages.into_iter().filter_map(|p| transform(p, &sink)).collect();
        assert_eq!(kept.len(), 13);
        let (record, account) = &kept[0];
        assert_eq!(
            record,
            &json!({"id": "118981261308043", "account": {"business_account_id": "17841462785487205", "page_id": "118981261308043"}})
        );
        assert_eq!(account.page_id, "118981261308043");
    }

    #[test]
    fn numeric_ids_become_strings() {
        let sink = RecordingSink::default();
        let (record, _) = transform(json!({"id": 12, "instagram_business_account": {"id": 34}}), &sink).expect("kept");
        assert_eq!(record, json!({"id": "12", "account": {"business_account_id": "34", "page_id": "12"}}));
    }
}
