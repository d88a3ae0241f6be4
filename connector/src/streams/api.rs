//! `Api`: the Facebook Pages of the token's user that have an Instagram business account
//! (`docs/source-instagram.md` §3). Also the parent of every other stream and the `check` probe.

use super::{Reader, StreamDef};
use crate::auth;
use crate::config::{AuthType, Config};
use crate::graph::{self, ACCOUNTS_FIELDS, ACCOUNTS_PATH};
use crate::http::answer::{Id, Object};
use crate::http::client::GraphClient;
use crate::http::error::{ErrorClass, RequestError};
use crate::model::Account;
use crate::protocol::{Failure, LogLevel, Sink};
use crate::record::{Node, RawRecord};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

pub const NAME: &str = "Api";

pub const STREAM: StreamDef =
    StreamDef { resumable: true, ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Accounts) };

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/api.json");

/// An item of `/me/accounts`: a Page, and the id of the Instagram account it links, checked as
/// the answer is read (an id no Graph id looks like makes the answer broken, not the Page
/// skipped). `linked`: `None` without a link (not an Api record), `Some(None)` for a link
/// without an id (`null`, `{}`: skipped with a WARN).
pub struct PageItem {
    page: Node,
    linked: Option<Option<Id>>,
}

impl<'de> Deserialize<'de> for PageItem {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Linked {
            id: Option<Id>,
        }
        let page = Node::deserialize(deserializer)?;
        let linked = page.record.get("instagram_business_account").map(|raw| {
            let linked = serde_json::from_str::<Option<Object<Linked>>>(raw.get()).map_err(|error| {
                let fault = error.to_string();
                let fault = fault.rsplit_once(" at line ").map_or(fault.as_str(), |(words, _)| words);
                serde::de::Error::custom(format!("has an `instagram_business_account` that {fault}"))
            })?;
            Ok(linked.and_then(|Object(linked)| linked.id))
        });
        Ok(PageItem { page, linked: linked.transpose()? })
    }
}

/// The `account` an Api record carries.
#[derive(Serialize)]
struct Pair<'a> {
    business_account_id: &'a str,
    page_id: &'a str,
}

/// Turns one `/me/accounts` item into an `Api` record, or `None` for a page without a usable
/// Instagram business account.
pub fn transform(item: PageItem, sink: &dyn Sink) -> Option<(RawRecord, Account)> {
    let PageItem { page: Node { mut record, id }, linked } = item;
    let Some(business_account_id) = linked?.map(|id| id.text()) else {
        sink.log(LogLevel::Warn, "Api: skipping a page whose instagram_business_account.id is missing");
        return None;
    };
    record.remove("instagram_business_account");
    let page_id = id.text();
    record.add("id", &page_id);
    record.add("account", &Pair { business_account_id: &business_account_id, page_id: &page_id });
    Some((record, Account { business_account_id, page_id: Some(page_id) }))
}

/// An account to sync, with the Api record of its Page (`None`: read by id, Page unknown).
pub type SyncedAccount = (Option<RawRecord>, Account);

/// The accounts to sync, with the Api records of their Pages. Without `selected` ids: every
/// account linked to a Page of `/me/accounts`. With them: those accounts only, in that order. A
/// selected account missing from the Page list (or a token that may not list Pages at all) is
/// read by id, with no Page and no Api record; an id the token cannot read is a `config_error`
/// naming it.
pub async fn read_all(client: &GraphClient<'_>, config: &Config) -> Result<Vec<SyncedAccount>, Failure> {
    let selected = &config.account_ids;
    if config.auth_type == AuthType::InstagramLogin {
        // No Page: the token's own account, and no Api record.
        return Ok(vec![(None, auth::instagram_account(client, selected, NAME).await?)]);
    }
    let explain = |error: RequestError| auth::explain(&error, config.auth_type, client.token());
    let listed = list_pages(client).await;
    if selected.is_empty() {
        return listed
            .map(|pages| pages.into_iter().map(|(record, account)| (Some(record), account)).collect())
            .map_err(explain);
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
        Err(error) => return Err(explain(error)),
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
async fn list_pages(client: &GraphClient<'_>) -> Result<Vec<(RawRecord, Account)>, RequestError> {
    let mut out = Vec::new();
    let mut pages = std::pin::pin!(graph::pages(client, ACCOUNTS_PATH.into(), fields(), None, NAME));
    while let Some(page) = pages.next().await {
        out.extend(page?.into_iter().filter_map(|item: PageItem| transform(item, client.sink())));
    }
    Ok(out)
}

/// Proves the token can read one Instagram account.
async fn read_by_id(client: &GraphClient<'_>, id: &str) -> Result<Node, RequestError> {
    client.get(&format!("/{id}"), &[("fields", "id")], NAME).await
}

/// What `check` needs to prove the token works: the first page of `/me/accounts`, or with
/// `selected` ids, that each of them can be read.
pub async fn check(client: &GraphClient<'_>, config: &Config) -> Result<(), Failure> {
    if !config.account_ids.is_empty() || config.auth_type == AuthType::InstagramLogin {
        return read_all(client, config).await.map(|_| ());
    }
    let mut pages = std::pin::pin!(graph::pages::<PageItem>(client, ACCOUNTS_PATH.into(), fields(), None, NAME));
    let first = pages.next().await.transpose();
    first.map(|_| ()).map_err(|error| auth::explain(&error, config.auth_type, client.token()))
}

fn fields() -> Vec<(&'static str, String)> {
    vec![("fields", ACCOUNTS_FIELDS.into())]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::RecordingSink;
    use serde_json::{Value, json};

    fn api(page: Value) -> Option<(Value, Account)> {
        let item: PageItem = serde_json::from_value(page).expect("an item");
        transform(item, &RecordingSink::default()).map(|(r, a)| (serde_json::to_value(r).expect("json"), a))
    }

    #[test]
    fn keeps_only_pages_with_a_business_account() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/samples/api_for_not_instagram_business_account.json"
        ))
        .expect("sample");
        let pages = sample["data"].as_array().cloned().unwrap_or_default();
        let kept: Vec<_> = pages.into_iter().filter_map(api).collect();
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
        let (record, _) = api(json!({"id": 12, "instagram_business_account": {"id": 34}})).expect("kept");
        assert_eq!(record, json!({"id": "12", "account": {"business_account_id": "34", "page_id": "12"}}));
        assert!(api(json!({"id": 12, "instagram_business_account": null})).is_none());
        assert!(api(json!({"id": 12, "instagram_business_account": {}})).is_none());
        let broken = serde_json::from_value::<PageItem>(
            json!({"id": 12, "instagram_business_account": {"id": "7".repeat(300)}}),
        );
        assert!(
            broken
                .err()
                .is_some_and(|e| e.to_string().contains("has an `instagram_business_account` that has an `id` of 300"))
        );
    }
}
