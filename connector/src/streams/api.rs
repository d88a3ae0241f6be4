//! `Api`: the Facebook Pages of the token's user that have an Instagram business account
//! (reference §3). Also the parent of every other stream and the `check` probe.

use super::{Reader, StreamDef};
use crate::graph::{self, ACCOUNTS_FIELDS, ACCOUNTS_PATH, Account};
use crate::http::client::GraphClient;
use crate::http::error::{ErrorClass, RequestError};
use crate::http::shape::Shape;
use crate::protocol::{Failure, LogLevel, Sink};
use futures::StreamExt;
use serde_json::{Value, json};

pub const NAME: &str = "Api";

pub const STREAM: StreamDef =
    StreamDef { resumable: true, ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Accounts) };

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/api.json");

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
    Some((Value::Object(page), Account { business_account_id, page_id: Some(page_id) }))
}

/// An account to sync, with the Api record of its Page (`None`: read by id, Page unknown).
pub type SyncedAccount = (Option<Value>, Account);

/// The accounts to sync, with the Api records of their Pages. Without `selected` ids: every
/// account linked to a Page of `/me/accounts`. With them: those accounts only, in that order. A
/// selected account missing from the Page list (or a token that may not list Pages at all) is
/// read by id, with no Page and no Api record; an id the token cannot read is a `config_error`
/// naming it.
pub async fn read_all(client: &GraphClient<'_>, selected: &[String]) -> Result<Vec<SyncedAccount>, Failure> {
    let listed = list_pages(client).await;
    if selected.is_empty() {
        return listed
            .map(|pages| pages.into_iter().map(|(record, account)| (Some(record), account)).collect())
            .map_err(|e| e.to_failure());
    }
    let listed = match listed {
        Ok(listed) => listed,
        // Graph refuses the listing itself (a token without pages_show_list, or an Instagram
        // Login token): the ids can still be read one by one.
        Err(error) if error.class == ErrorClass::Fatal => {
            let message = format!(
                "Api: the token cannot list Facebook Pages ({}); the accounts in `account_ids` are read by id, with a null page_id.",
                error.message()
            );
            client.sink().log(LogLevel::Info, &message);
            Vec::new()
        }
        Err(error) => return Err(error.to_failure()),
    };
    let probes = selected.iter().map(|id| {
        let found = listed.iter().find(|(_, account)| account.business_account_id == *id).cloned();
        async move {
            match found {
                Some(found) => Ok(Some(found)),
                None => read_by_id(client, id).await.map(|_| None),
            }
        }
    });
    let outcomes = futures::future::join_all(probes).await;
    let mut accounts = Vec::new();
    let mut unreadable = Vec::new();
    for (id, outcome) in selected.iter().zip(outcomes) {
        match outcome {
            Ok(Some((record, account))) => accounts.push((Some(record), account)),
            Ok(None) => accounts.push((None, Account { business_account_id: id.clone(), page_id: None })),
            Err(error) if error.class == ErrorClass::Fatal => unreadable.push(format!("{id} ({})", error.message())),
            Err(error) => return Err(error.to_failure()),
        }
    }
    if !unreadable.is_empty() {
        return Err(Failure::config(format!(
            "The token cannot read the Instagram account(s) in `account_ids`: {}. Use the ids of Instagram business or creator accounts the token's user manages.",
            unreadable.join("; ")
        )));
    }
    Ok(accounts)
}

/// Every page of `/me/accounts`, as Api records with their accounts.
async fn list_pages(client: &GraphClient<'_>) -> Result<Vec<(Value, Account)>, RequestError> {
    let mut out = Vec::new();
    let mut pages = std::pin::pin!(graph::pages(client, ACCOUNTS_PATH.into(), fields(), NAME));
    while let Some(page) = pages.next().await {
        out.extend(page?.into_iter().filter_map(|p| transform(p, client.sink())));
    }
    Ok(out)
}

/// Proves the token can read one Instagram account.
async fn read_by_id(client: &GraphClient<'_>, id: &str) -> Result<Value, RequestError> {
    client.get(&format!("/{id}"), &[("fields", "id")], Shape::Node, NAME).await
}

/// What `check` needs to prove the token works: the first page of `/me/accounts`, or with
/// `selected` ids, that each of them can be read.
pub async fn check(client: &GraphClient<'_>, selected: &[String]) -> Result<(), Failure> {
    if !selected.is_empty() {
        return read_all(client, selected).await.map(|_| ());
    }
    let mut pages = std::pin::pin!(graph::pages::<Value>(client, ACCOUNTS_PATH.into(), fields(), NAME));
    pages.next().await.transpose().map(|_| ()).map_err(|e| e.to_failure())
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
        assert_eq!(account.page_id.as_deref(), Some("118981261308043"));
    }

    #[test]
    fn numeric_ids_become_strings() {
        let sink = RecordingSink::default();
        let (record, _) = transform(json!({"id": 12, "instagram_business_account": {"id": 34}}), &sink).expect("kept");
        assert_eq!(record, json!({"id": "12", "account": {"business_account_id": "34", "page_id": "12"}}));
    }
}
