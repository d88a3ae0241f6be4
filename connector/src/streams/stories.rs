//! `stories` (reference §7.1): the live stories of each account; parent of `story_insights`.

use super::StreamOutput;
use crate::graph::{self, Account, STORY_FIELDS};
use crate::http::client::GraphClient;
use crate::protocol::Failure;
use crate::transform;
use futures::TryStreamExt;
use serde_json::{Value, json};

pub const NAME: &str = "stories";

/// What `story_insights` needs of a story.
#[derive(Clone, Debug, PartialEq)]
pub struct StoryRef {
    pub story_id: String,
    pub account: Account,
}

pub fn transform(raw: Value, account: &Account) -> Option<(Value, StoryRef)> {
    let Value::Object(mut record) = raw else { return None };
    let story_id = graph::id_string(record.get("id"))?;
    record.insert(
        "story_insights_info".into(),
        json!({"story_id": story_id, "business_account_id": account.business_account_id, "page_id": account.page_id}),
    );
    record.insert("page_id".into(), Value::String(account.page_id.clone()));
    record.insert("business_account_id".into(), Value::String(account.business_account_id.clone()));
    transform::rfc3339_field(&mut record, "timestamp");
    transform::clean_urls(&mut record);
    Some((Value::Object(record), StoryRef { story_id, account: account.clone() }))
}

/// The page refs `story_insights` consumes.
pub type RefSender = super::PageSender<Vec<StoryRef>>;

/// Reads every account's stories, emitting records to `out` when `stories` is synced and sending
/// each page's refs to `refs` when `story_insights` is.
pub async fn produce(
    client: &GraphClient<'_>,
    accounts: &[Account],
    out: Option<&StreamOutput<'_>>,
    refs: Option<&RefSender>,
) -> Result<(), Failure> {
    super::for_each_account(accounts, refs, |account| async move {
        let path = format!("/{}/stories", account.business_account_id);
        let mut pages = std::pin::pin!(graph::pages(client, path, vec![("fields", STORY_FIELDS.into())], NAME));
        while let Some(page) = pages.try_next().await.map_err(|e| e.to_failure())? {
            let stories: Vec<_> = page.into_iter().filter_map(|raw| transform(raw, account)).collect();
            if let Some(refs) = refs {
                let _ = refs.unbounded_send(Ok(stories.iter().map(|(_, story)| story.clone()).collect()));
            }
            if let Some(out) = out {
                stories.iter().for_each(|(record, _)| out.emit(record));
            }
        }
        Ok::<_, Failure>(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn story_record_matches_the_reference_shape() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/stories.json")).expect("json");
        let account = Account { business_account_id: "b".into(), page_id: "p".into() };
        let (record, story) = transform(sample["data"][0].clone(), &account).expect("record");
        assert_eq!(record["timestamp"], "2024-06-17T19:39:18+00:00");
        assert_eq!(
            record["story_insights_info"],
            json!({"story_id": "id", "business_account_id": "b", "page_id": "p"})
        );
        assert_eq!((record["page_id"].as_str(), record["business_account_id"].as_str()), (Some("p"), Some("b")));
        assert_eq!(story.story_id, "id");
    }
}
