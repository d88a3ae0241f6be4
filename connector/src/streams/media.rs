//! `media` (`docs/source-instagram.md` §5): every post of every account, with carousel slides
//! expanded.
//! Also the parent of `media_insights`, read once per sync.

use super::{FULL_REFRESH_AND_INCREMENTAL, ParentRun, Reader, Reading, StreamDef};
use crate::graph::{self, CHILD_FIELDS, MEDIA_FIELDS};
use crate::http::answer::Id;
use crate::http::client::GraphClient;
use crate::model::{Account, ObjectRef};
use crate::protocol::{Failure, LogLevel};
use crate::record::{Node, RawRecord, raw_json};
use crate::window;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const NAME: &str = "media";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("timestamp"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    windowed: true,
    ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Parent(start))
};

fn start(run: ParentRun<'_>) -> Reading<'_> {
    produce(run).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/media.json");

/// Where a media record's insights come from (its `media_insights_info`).
#[derive(Serialize)]
struct InsightsInfo<'a> {
    media_id: &'a str,
    media_type: &'a RawValue,
    media_product_type: &'a RawValue,
    business_account_id: &'a str,
    page_id: &'a Option<String>,
    /// As Graph wrote it (the info is built from the raw record, as the reference's manifest
    /// builds it), which is also the form `media_insights` keeps.
    timestamp: &'a RawValue,
}

/// Transforms one media item as Graph sent it (steps 1–4 and 6 of `docs/source-instagram.md` §5.2; children are step 5,
/// done by the caller). Fields pass through as raw JSON; only the ones §5.2 changes are read.
pub fn transform(media: Node, account: &Account) -> (RawRecord, ObjectRef) {
    let Node { mut record, id } = media;
    let media_id = id.text();
    let (media_type, media_product_type) =
        (record.read::<String>("media_type"), record.read::<String>("media_product_type"));
    let field = |key: &str| record.get(key).unwrap_or(RawValue::NULL);
    let info = raw_json(&InsightsInfo {
        media_id: &media_id,
        media_type: field("media_type"),
        media_product_type: field("media_product_type"),
        business_account_id: &account.business_account_id,
        page_id: &account.page_id,
        timestamp: field("timestamp"),
    });
    record.insert("media_insights_info", info);
    record.add("page_id", &account.page_id);
    record.in_rfc3339("timestamp");
    record.add("business_account_id", &account.business_account_id);
    record.clean_urls();
    let media_ref = ObjectRef {
        id: media_id,
        account: account.clone(),
        media_type,
        media_product_type,
        timestamp: record.get("timestamp").map(ToOwned::to_owned),
        comments_count: record.read::<u64>("comments_count"),
    };
    (record, media_ref)
}

/// Whether a media item carries its cursor (`timestamp`); one listed without it is skipped with
/// a WARN, for itself and its children: no record goes out with a null cursor.
fn has_cursor(media_ref: &ObjectRef, ctx: &super::ReadContext<'_>) -> bool {
    let present = media_ref.timestamp.as_ref().is_some_and(|t| t.get() != "null");
    if !present {
        let message = format!("media: skipping media {}: Graph lists it without a timestamp", media_ref.id);
        ctx.sink.log(LogLevel::Warn, &message);
    }
    present
}

/// `children` holds slides to fetch or clean: present, and neither `null` nor `{}`.
fn has_children(children: &RawValue) -> bool {
    children.get() != "null"
        && !serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(children.get())
            .is_ok_and(|map| map.is_empty())
}

/// The ids in `children.data`: `None` when there is no such list.
fn child_ids(record: &RawRecord) -> Option<Vec<String>> {
    #[derive(Deserialize)]
    struct Child {
        id: Id,
    }
    #[derive(Deserialize)]
    struct Children {
        data: Vec<Child>,
    }
    let children: Children = record.read("children")?;
    Some(children.data.into_iter().map(|child| child.id.text()).collect())
}

/// Replaces `children.data[{id}]` with the slides, one GET each (the reference's way, and the
/// fallback); a slide that cannot be fetched is skipped with a WARN naming it and its parent.
async fn expand_children_one_by_one(client: &GraphClient<'_>, record: &mut RawRecord) {
    // `null` and `{}` have no `data` list, so no ids either.
    let Some(ids) = child_ids(record) else { return };
    let parent = record.text("id").unwrap_or_default();
    let fetches = ids.iter().map(|child_id| async move {
        let path = format!("/{child_id}");
        (child_id, client.get::<Node>(&path, &[("fields", CHILD_FIELDS)], NAME).await)
    });
    let results: Vec<_> = futures::stream::iter(fetches).buffered(ids.len().max(1)).collect().await;
    let mut children = Vec::with_capacity(results.len());
    for (child_id, result) in results {
        match result {
            Ok(child) => children.push(transform_slide(child.record)),
            Err(error) => client.sink().log(
                LogLevel::Warn,
                &format!("media: skipping carousel child {child_id} of media {parent}: {}", error.to_failure().message),
            ),
        }
    }
    record.add("children", &children);
}

/// Replaces inline `children.data` (fetched by field expansion) with the slides: each object
/// cleaned like a media record, anything else kept as it came; a `children` without a `data`
/// list becomes `[]`.
fn inline_children(record: &mut RawRecord) {
    #[derive(Deserialize)]
    struct Slides {
        data: Vec<Box<RawValue>>,
    }
    let Some(children) = record.get("children").filter(|children| has_children(children)) else { return };
    let slides = serde_json::from_str::<Slides>(children.get()).map_or_else(|_| Vec::new(), |slides| slides.data);
    let slides: Vec<Box<RawValue>> = slides
        .into_iter()
        .map(|slide| match serde_json::from_str::<RawRecord>(slide.get()) {
            Ok(object) => raw_json(&transform_slide(object)),
            Err(_) => slide,
        })
        .collect();
    record.add("children", &slides);
}

/// One carousel slide, cleaned like a media record.
fn transform_slide(mut slide: RawRecord) -> RawRecord {
    slide.clean_urls();
    slide.in_rfc3339("timestamp");
    slide
}

/// Reads every account's media (accounts in parallel, pages in order), emitting records to `out`
/// when `media` is synced and sending each page's refs to `refs` when `media_insights` is, so
/// insights of a page are fetched while the next page is read. Slides are fetched only for `out`.
async fn produce(run: ParentRun<'_>) -> Result<(), Failure> {
    let (client, out, own) = (run.ctx.client, run.out, run.window.as_deref().filter(|_| run.out.is_some()));
    let expand_children = run.ctx.config.optimizations.expand_children;
    let (fields, fallback) = match (out.is_some(), expand_children) {
        (true, true) => {
            let expanded = MEDIA_FIELDS.replace(",children", &format!(",children{{{CHILD_FIELDS}}}"));
            (expanded, Some(vec![("fields", MEDIA_FIELDS.to_owned())]))
        }
        _ => (MEDIA_FIELDS.to_owned(), None),
    };
    let run = &run;
    super::for_each_account(run.accounts, &run.pipes, |account| {
        let (fields, fallback) = (fields.clone(), fallback.clone());
        async move {
            let paging_start = run.paging_start(account);
            let path = format!("/{}/media", account.business_account_id);
            let mut pages =
                std::pin::pin!(graph::pages_with_fallback(client, path, vec![("fields", fields)], fallback, NAME));
            while let Some(page) = pages.try_next().await.map_err(|e| e.to_failure())? {
                let inline = expand_children && !page.fallback;
                let transformed: Vec<_> = page
                    .records
                    .into_iter()
                    .map(|media: Node| transform(media, account))
                    .filter(|(_, media_ref)| has_cursor(media_ref, run.ctx))
                    .collect();
                run.pipes.feed(Ok(transformed.iter().map(|(_, media_ref)| media_ref.clone()).collect())).await;
                // Newest first: once a page ends before the start every reader needs, stop.
                let passed = transformed.last().and_then(|(_, last)| window::posted(last));
                let done = matches!((paging_start, passed), (Some(start), Some(last)) if last < start);
                if let (Some(out), Some(own)) = (out, own) {
                    let wanted = transformed.into_iter().filter(|(_, media_ref)| own.wants(media_ref));
                    let records = futures::stream::iter(wanted.map(|(mut record, _)| async move {
                        if inline {
                            inline_children(&mut record);
                        } else {
                            expand_children_one_by_one(client, &mut record).await;
                        }
                        record
                    }))
                    .buffered(64)
                    .collect::<Vec<_>>()
                    .await;
                    records.iter().for_each(|record| out.emit(record));
                }
                if done {
                    break;
                }
            }
            Ok::<_, Failure>(())
        }
    })
    .await?;
    if let (Some(out), Some(own)) = (out, own) {
        out.checkpoint(&own.state());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn account() -> Account {
        Account { business_account_id: "41408147298757123".into(), page_id: Some("144706962067225".into()) }
    }

    fn raw(value: Value) -> RawRecord {
        serde_json::from_value(value).expect("an object")
    }

    fn json_of(record: &RawRecord) -> Value {
        serde_json::to_value(record).expect("json")
    }

    #[test]
    fn media_record_gets_info_from_the_raw_record_then_ids_and_rfc3339() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/media_for_children.json"))
                .expect("json");
        let node: Node = serde_json::from_value(sample["data"][0].clone()).expect("a node");
        let (record, media_ref) = transform(node, &account());
        assert_eq!(child_ids(&record).map(|ids| ids.len()), Some(4));
        let record = json_of(&record);
        assert_eq!(record["timestamp"], "2021-03-03T22:48:39+00:00");
        assert_eq!(
            record["media_insights_info"],
            json!({"media_id": "66123508374641123", "media_type": "CAROUSEL_ALBUM", "media_product_type": "FEED",
                   "business_account_id": "41408147298757123", "page_id": "144706962067225",
                   "timestamp": "2021-03-03T22:48:39+0000"})
        );
        assert_eq!(record["page_id"], "144706962067225");
        assert_eq!(record["business_account_id"], "41408147298757123");
        assert_eq!(media_ref.timestamp.map(|t| t.get().to_owned()), Some("\"2021-03-03T22:48:39+00:00\"".to_owned()));
        let keys: Vec<&str> = record.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys[0], "caption", "Graph's fields keep their order");
        assert_eq!(&keys[keys.len() - 3..], ["media_insights_info", "page_id", "business_account_id"]);
    }

    #[test]
    fn inline_slides_are_cleaned_like_fetched_ones() {
        let slide =
            json!({"id": "c1", "media_url": "https://x/a.jpg?_nc_rid=1&k=v", "timestamp": "2021-03-03T22:48:39+0000"});
        let clean = json!({"id": "c1", "media_url": "https://x/a.jpg?k=v", "timestamp": "2021-03-03T22:48:39+00:00"});
        // The usual expansion, and odd shapes, as the reference treats them.
        for (children, expected) in [
            (json!({"data": [slide]}), json!([clean])),
            (json!({"data": [slide], "paging": {}}), json!([clean])),
            (json!({"data": [7, slide]}), json!([7, clean])),
            (json!({"data": "x"}), json!([])),
            (json!({}), json!({})),
            (Value::Null, Value::Null),
        ] {
            let mut record = raw(json!({"id": "1", "children": children}));
            inline_children(&mut record);
            assert_eq!(json_of(&record)["children"], expected, "{children}");
        }
    }

    #[test]
    fn children_keep_their_fields_and_get_clean_urls_and_rfc3339() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/media_children_for_children.json"))
                .expect("json");
        let child = json_of(&transform_slide(raw(sample)));
        assert_eq!(child["timestamp"], "2021-03-03T22:48:39+00:00");
        assert!(child.get("page_id").is_none());
        let dirty =
            json!({"media_url": "https://x/a.jpg?_nc_cat=1&_nc_rid=abc", "thumbnail_url": "https://x/t?_nc_rid=1"});
        let clean = json_of(&transform_slide(raw(dirty)));
        assert_eq!(clean["media_url"], "https://x/a.jpg?_nc_cat=1");
        assert_eq!(clean["thumbnail_url"], "https://x/t?_nc_rid=1", "thumbnail_url is never cleaned");
    }
}
