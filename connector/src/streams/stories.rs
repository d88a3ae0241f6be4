//! `stories` (reference §7.1): the live stories of each account; parent of `story_insights`.

use super::{ParentRun, Reader, Reading, StreamDef};
use crate::graph::{self, Account, ObjectRef, STORY_FIELDS};
use crate::protocol::Failure;
use crate::transform;
use futures::{FutureExt, TryStreamExt};
use serde_json::{Value, json};

pub const NAME: &str = "stories";

pub const STREAM: StreamDef = StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Parent(start));

fn start(run: ParentRun<'_>) -> Reading<'_> {
    produce(run).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/stories.json");

pub fn transform(raw: Value, account: &Account) -> Option<(Value, ObjectRef)> {
    let Value::Object(mut record) = raw else { return None };
    let story_id = graph::id_string(record.get("id"))?;
    record.insert(
        "story_insights_info".into(),
        json!({"story_id": story_id, "business_account_id": account.business_account_id, "page_id": account.page_id}),
    );
    record.insert("page_id".into(), serde_json::json!(account.page_id));
    record.insert("business_account_id".into(), Value::String(account.business_account_id.clone()));
    transform::rfc3339_field(&mut record, "timestamp");
    transform::clean_urls(&mut record);
    let story = ObjectRef {
        id: story_id,
        account: account.clone(),
        media_type: None,
        media_product_type: None,
        timestamp: None,
        comments_count: None,
    };
    Some((Value::Object(record), story))
}

/// Reads every account's stories, emitting records to `out` when `stories` is synced and sending
/// each page's refs to `refs` when `story_insights` is.
async fn produce(run: ParentRun<'_>) -> Result<(), Failure> {
    let ParentRun { ctx, accounts, out, refs, .. } = run;
    let (client, refs) = (ctx.client, refs.as_ref());
    super::for_each_account(accounts, refs, |account| async move {
        let path = format!("/{}/stories", account.business_account_id);
        let mut pages = std::pin::pin!(graph::pages(client, path, vec![("fields", STORY_FIELDS.into())], NAME));
        while let Some(page) = pages.try_next().await.map_err(|e| e.to_failure())? {
            let stories: Vec<_> = page.into_iter().filter_map(|raw| transform(raw, account)).collect();
            super::feed(refs, Ok(stories.iter().map(|(_, story)| story.clone()).collect())).await;
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
        let account = Account { business_account_id: "b".into(), page_id: Some("p".into()) };
        let (record, story) = transform(sample["data"][0].clone(), &account).expect("record");
        assert_eq!(record["timestamp"], "2024-06-17T19:39:18+00:00");
        assert_eq!(
            record["story_insights_info"],
            json!({"story_id": "id", "business_account_id": "b", "page_id": "p"})
        );
        assert_eq!((record["page_id"].as_str(), record["business_account_id"].as_str()), (Some("p"), Some("b")));
        assert_eq!(story.id, "id");
    }
}
