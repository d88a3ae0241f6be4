//! `media` (reference §5): every post of every account, with carousel slides expanded.
//! Also the parent of `media_insights`, read once per sync.

use super::{FULL_REFRESH_AND_INCREMENTAL, ParentRun, Reader, Reading, StreamDef};
use crate::graph::{self, Account, CHILD_FIELDS, MEDIA_FIELDS, ObjectRef};
use crate::http::client::GraphClient;
use crate::http::shape::Shape;
use crate::protocol::{Failure, LogLevel};
use crate::transform;
use crate::window::{self, MediaWindow};
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::{Map, Value, json};

pub const NAME: &str = "media";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("timestamp"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Parent(start))
};

fn start(run: ParentRun<'_>) -> Reading<'_> {
    produce(run).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/media.json");

/// Transforms one raw media item (steps 1–4 and 6 of §5.2; children are step 5, done by the caller).
pub fn transform(raw: Value, account: &Account) -> Option<(Map<String, Value>, ObjectRef)> {
    let Value::Object(mut record) = raw else { return None };
    let media_id = graph::id_string(record.get("id"))?;
    let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_owned);
    let (media_type, media_product_type) = (text("media_type"), text("media_product_type"));
    record.insert(
        "media_insights_info".into(),
        json!({
            "media_id": media_id,
            "media_type": record.get("media_type").cloned().unwrap_or(Value::Null),
            "media_product_type": record.get("media_product_type").cloned().unwrap_or(Value::Null),
            "business_account_id": account.business_account_id,
            "page_id": account.page_id,
        }),
    );
    record.insert("page_id".into(), serde_json::json!(account.page_id));
    transform::rfc3339_field(&mut record, "timestamp");
    record.insert("business_account_id".into(), Value::String(account.business_account_id.clone()));
    transform::clean_urls(&mut record);
    let media_ref = ObjectRef {
        id: media_id,
        media_type,
        media_product_type,
        account: account.clone(),
        timestamp: record.get("timestamp").cloned(),
        comments_count: record.get("comments_count").and_then(Value::as_u64),
    };
    Some((record, media_ref))
}

/// One carousel slide, fetched with the reduced field list, cleaned like a media record.
fn transform_child(raw: Value) -> Value {
    let Value::Object(mut child) = raw else { return raw };
    transform::clean_urls(&mut child);
    transform::rfc3339_field(&mut child, "timestamp");
    Value::Object(child)
}

fn child_ids(record: &Map<String, Value>) -> Option<Vec<String>> {
    let children = record.get("children")?;
    let list = children.get("data")?.as_array()?;
    Some(list.iter().filter_map(|c| graph::id_string(c.get("id"))).collect())
}

/// Replaces `children.data[{id}]` with the slides, one GET each (the reference's way, and the
/// fallback); a slide that cannot be fetched is skipped with a WARN naming it and its parent.
async fn expand_children_one_by_one(client: &GraphClient<'_>, record: &mut Map<String, Value>) {
    let truthy = record.get("children").is_some_and(|c| !c.is_null() && c != &json!({}));
    let Some(ids) = child_ids(record).filter(|_| truthy) else { return };
    let parent = record.get("id").and_then(Value::as_str).unwrap_or_default().to_owned();
    let fetches = ids.iter().map(|child_id| async move {
        let path = format!("/{child_id}");
        (child_id, client.get(&path, &[("fields", CHILD_FIELDS)], Shape::Node, NAME).await)
    });
    let results: Vec<_> = futures::stream::iter(fetches).buffered(ids.len().max(1)).collect().await;
    let mut children = Vec::with_capacity(results.len());
    for (child_id, result) in results {
        match result {
            Ok(child) => children.push(transform_child(child)),
            Err(error) => client.sink().log(
                LogLevel::Warn,
                &format!("media: skipping carousel child {child_id} of media {parent}: {}", error.to_failure().message),
            ),
        }
    }
    record.insert("children".into(), Value::Array(children));
}

/// Replaces inline `children.data` (fetched by field expansion) with the cleaned slides.
fn inline_children(record: &mut Map<String, Value>) {
    let truthy = record.get("children").is_some_and(|c| !c.is_null() && c != &json!({}));
    if !truthy {
        return;
    }
    let slides = record.get_mut("children").and_then(|c| c.get_mut("data")).map(Value::take);
    let slides = match slides {
        Some(Value::Array(slides)) => slides.into_iter().map(transform_child).collect(),
        _ => Vec::new(),
    };
    record.insert("children".into(), Value::Array(slides));
}

/// Reads every account's media (accounts in parallel, pages in order), emitting records to `out`
/// when `media` is synced and sending each page's refs to `refs` when `media_insights` is, so
/// insights of a page are fetched while the next page is read. Slides are fetched only for `out`.
async fn produce(run: ParentRun<'_>) -> Result<(), Failure> {
    let ParentRun { ctx, accounts, out, refs, consumers } = run;
    let (client, refs, expand_children) = (ctx.client, refs.as_ref(), ctx.config.optimizations.expand_children);
    let own = out.map(|out| MediaWindow::new(NAME, out.sync_mode, ctx)).transpose()?;
    let (own, consumers) = (own.as_ref(), &consumers);
    let (fields, fallback) = match (out.is_some(), expand_children) {
        (true, true) => {
            let expanded = MEDIA_FIELDS.replace(",children", &format!(",children{{{CHILD_FIELDS}}}"));
            (expanded, Some(vec![("fields", MEDIA_FIELDS.to_owned())]))
        }
        _ => (MEDIA_FIELDS.to_owned(), None),
    };
    super::for_each_account(accounts, refs, |account| {
        let (fields, fallback) = (fields.clone(), fallback.clone());
        async move {
            let paging_start = window::paging_start(ctx, consumers, account);
            let path = format!("/{}/media", account.business_account_id);
            let mut pages =
                std::pin::pin!(graph::pages_with_fallback(client, path, vec![("fields", fields)], fallback, NAME));
            while let Some(page) = pages.try_next().await.map_err(|e| e.to_failure())? {
                let inline = expand_children && !page.fallback;
                let transformed: Vec<_> = page.records.into_iter().filter_map(|raw| transform(raw, account)).collect();
                super::feed(refs, Ok(transformed.iter().map(|(_, media_ref)| media_ref.clone()).collect())).await;
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
                        Value::Object(record)
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

    fn account() -> Account {
        Account { business_account_id: "41408147298757123".into(), page_id: Some("144706962067225".into()) }
    }

    #[test]
    fn media_record_gets_info_from_the_raw_record_then_ids_and_rfc3339() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/media_for_children.json"))
                .expect("json");
        let raw = sample["data"][0].clone();
        let (record, media_ref) = transform(raw, &account()).expect("record");
        assert_eq!(record["timestamp"], "2021-03-03T22:48:39+00:00");
        assert_eq!(
            record["media_insights_info"],
            json!({"media_id": "66123508374641123", "media_type": "CAROUSEL_ALBUM", "media_product_type": "FEED",
                   "business_account_id": "41408147298757123", "page_id": "144706962067225"})
        );
        assert_eq!(record["page_id"], "144706962067225");
        assert_eq!(record["business_account_id"], "41408147298757123");
        assert_eq!(media_ref.timestamp, Some(json!("2021-03-03T22:48:39+00:00")));
        let keys: Vec<&str> = record.keys().map(String::as_str).collect();
        assert_eq!(&keys[keys.len() - 3..], ["media_insights_info", "page_id", "business_account_id"]);
        assert_eq!(child_ids(&record).map(|ids| ids.len()), Some(4));
    }

    #[test]
    fn inline_slides_are_cleaned_like_fetched_ones() {
        let mut record = json!({"id": "1", "children": {"data": [
            {"id": "c1", "media_url": "https://x/a.jpg?_nc_rid=1&k=v", "timestamp": "2021-03-03T22:48:39+0000"}
        ]}});
        let Value::Object(map) = &mut record else { unreachable!() };
        inline_children(map);
        assert_eq!(
            map["children"],
            json!([{"id": "c1", "media_url": "https://x/a.jpg?k=v", "timestamp": "2021-03-03T22:48:39+00:00"}])
        );
    }

    #[test]
    fn children_keep_their_fields_and_get_clean_urls_and_rfc3339() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/media_children_for_children.json"))
                .expect("json");
        let child = transform_child(sample);
        assert_eq!(child["timestamp"], "2021-03-03T22:48:39+00:00");
        assert!(child.get("page_id").is_none());
        let dirty =
            json!({"media_url": "https://x/a.jpg?_nc_cat=1&_nc_rid=abc", "thumbnail_url": "https://x/t?_nc_rid=1"});
        let clean = transform_child(dirty);
        assert_eq!(clean["media_url"], "https://x/a.jpg?_nc_cat=1");
        assert_eq!(clean["thumbnail_url"], "https://x/t?_nc_rid=1", "thumbnail_url is never cleaned");
    }
}
