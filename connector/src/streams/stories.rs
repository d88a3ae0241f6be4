//! `stories` (`docs/source-instagram.md` §7.1): the live stories of each account; parent of
//! `story_insights`.

use super::{ParentRun, Reader, Reading, StreamDef};
use crate::graph::{self, STORY_FIELDS};
use crate::model::{Account, ObjectRef};
use crate::protocol::Failure;
use crate::record::{Node, RawRecord};
use futures::{FutureExt, TryStreamExt};
use serde::Serialize;

pub const NAME: &str = "stories";

pub const STREAM: StreamDef = StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Parent(start));

fn start(run: ParentRun<'_>) -> Reading<'_> {
    produce(run).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/stories.json");

/// Where a story record's insights come from (its `story_insights_info`).
#[derive(Serialize)]
struct InsightsInfo<'a> {
    story_id: &'a str,
    business_account_id: &'a str,
    page_id: &'a Option<String>,
}

pub fn transform(story: Node, account: &Account) -> (RawRecord, ObjectRef) {
    let Node { mut record, id } = story;
    let story_id = id.text();
    let info = InsightsInfo {
        story_id: &story_id,
        business_account_id: &account.business_account_id,
        page_id: &account.page_id,
    };
    record.add("story_insights_info", &info);
    record.add("page_id", &account.page_id);
    record.add("business_account_id", &account.business_account_id);
    record.in_rfc3339("timestamp");
    record.clean_urls();
    let story = ObjectRef { id: story_id, account: account.clone(), ..ObjectRef::default() };
    (record, story)
}

/// Reads every account's stories, emitting records to `out` when `stories` is synced and sending
/// each page's refs down the pipes when `story_insights` is.
async fn produce(run: ParentRun<'_>) -> Result<(), Failure> {
    let (client, run) = (run.ctx.client, &run);
    super::for_each_account(run.accounts, &run.pipes, |account| async move {
        let path = format!("/{}/stories", account.business_account_id);
        let mut pages = std::pin::pin!(graph::pages(client, path, vec![("fields", STORY_FIELDS.into())], None, NAME));
        while let Some(page) = pages.try_next().await.map_err(|e| e.to_failure())? {
            let stories: Vec<_> = page.into_iter().map(|story: Node| transform(story, account)).collect();
            run.pipes.feed(Ok(stories.iter().map(|(_, story)| story.clone()).collect())).await;
            if let Some(out) = run.out {
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
    use serde_json::{Value, json};

    #[test]
    fn story_record_matches_the_reference_shape() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/stories.json")).expect("json");
        let account = Account { business_account_id: "b".into(), page_id: Some("p".into()) };
        let node: Node = serde_json::from_value(sample["data"][0].clone()).expect("a node");
        let (record, story) = transform(node, &account);
        let record = serde_json::to_value(record).expect("json");
        assert_eq!(record["timestamp"], "2024-06-17T19:39:18+00:00");
        assert_eq!(
            record["story_insights_info"],
            json!({"story_id": "id", "business_account_id": "b", "page_id": "p"})
        );
        assert_eq!((record["page_id"].as_str(), record["business_account_id"].as_str()), (Some("p"), Some("b")));
        assert_eq!(story.id, "id");
    }
}
