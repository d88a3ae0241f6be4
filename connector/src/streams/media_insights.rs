//! `media_insights` (reference §6): one insights request per media, metric list by type.

use super::{FULL_REFRESH_AND_INCREMENTAL, PageReceiver, ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{self, ObjectRef};
use crate::http::batch::MAX_BATCH;
use crate::http::client::GraphClient;
use crate::protocol::Failure;
use crate::transform::{self, Insights, Record};
use crate::window::{self, MediaWindow};
use futures::{FutureExt, StreamExt, TryStreamExt};

pub const NAME: &str = "media_insights";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("timestamp"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Child { parent: super::media::NAME, read: start })
};

fn start<'a>(ctx: &'a ReadContext<'a>, refs: PageReceiver, out: &'a StreamOutput<'a>) -> Reading<'a> {
    let batch = ctx.config.optimizations.batch_insights;
    async move {
        let window = MediaWindow::new(NAME, out.sync_mode, ctx)?;
        consume(ctx.client, window::filter(refs, &window), batch, ctx.fan_out(), out).await?;
        out.checkpoint(&window.state());
        Ok(())
    }
    .boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/media_insights.json");

/// First matching rule wins (4.2.28 lists, in this order: REELS, VIDEO+FEED, VIDEO,
/// CAROUSEL_ALBUM, anything else).
pub fn metrics_for(media_type: Option<&str>, media_product_type: Option<&str>) -> &'static str {
    match (media_type, media_product_type) {
        (_, Some("REELS")) => {
            "comments,ig_reels_avg_watch_time,ig_reels_video_view_total_time,likes,reach,saved,shares,views"
        }
        (Some("VIDEO"), Some("FEED")) => "reach,saved,views",
        (Some("VIDEO"), _) => "reach,saved,likes,comments,shares,follows,profile_visits",
        (Some("CAROUSEL_ALBUM"), _) => "reach,saved,shares,follows,profile_visits",
        _ => "reach,saved,likes,comments,shares,follows,profile_visits",
    }
}

/// Flattened insights plus `id`, `page_id`, `business_account_id` and the parent's `timestamp`.
pub fn transform(body: Insights, media: &ObjectRef) -> Record {
    let mut record = transform::insights_record(body, &media.id, &media.account);
    if let Some(timestamp) = &media.timestamp {
        record.insert("timestamp", timestamp.clone());
    }
    record
}

/// Fetches the insights of each page of media refs as it arrives (`fan_out` pages at a time),
/// through the Batch API when `batch` is on; records in media order.
pub async fn consume(
    client: &GraphClient<'_>,
    refs: impl futures::Stream<Item = Result<Vec<ObjectRef>, Failure>>,
    batch: bool,
    fan_out: usize,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let pages = refs.map(|page| async move {
        let page = page?;
        let chunks = page.chunks(MAX_BATCH).map(|chunk| async move {
            let items = chunk
                .iter()
                .map(|m| {
                    let metric = metrics_for(m.media_type.as_deref(), m.media_product_type.as_deref());
                    (format!("/{}/insights", m.id), vec![("metric", metric.to_owned())])
                })
                .collect();
            let outcomes = graph::get_many_or_ignore(client, items, batch, NAME, graph::ignore_insights_errors).await;
            chunk
                .iter()
                .zip(outcomes)
                .filter_map(|(media, outcome)| match outcome {
                    Ok(Some(body)) => Some(Ok(transform(body, media))),
                    Ok(None) => None,
                    Err(error) => Some(Err(error.to_failure())),
                })
                .collect::<Result<Vec<Record>, Failure>>()
        });
        let records: Vec<Vec<Record>> = futures::future::try_join_all(chunks).await?;
        Ok::<_, Failure>(records.into_iter().flatten().collect::<Vec<_>>())
    });
    let mut pages = std::pin::pin!(pages.buffered(fan_out.max(1)));
    while let Some(records) = pages.try_next().await? {
        records.iter().for_each(|record| out.emit(record));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Account;
    use crate::http::shape::Answer;
    use serde_json::{Value, json};

    #[test]
    fn metric_rules_apply_in_reference_order() {
        let reels = metrics_for(Some("VIDEO"), Some("REELS"));
        assert_eq!(
            reels,
            "comments,ig_reels_avg_watch_time,ig_reels_video_view_total_time,likes,reach,saved,shares,views"
        );
        assert_eq!(metrics_for(Some("CAROUSEL_ALBUM"), Some("REELS")), reels, "REELS wins over the media type");
        assert_eq!(metrics_for(Some("VIDEO"), Some("FEED")), "reach,saved,views");
        assert_eq!(metrics_for(Some("VIDEO"), Some("AD")), "reach,saved,likes,comments,shares,follows,profile_visits");
        assert_eq!(metrics_for(Some("CAROUSEL_ALBUM"), Some("FEED")), "reach,saved,shares,follows,profile_visits");
        assert_eq!(
            metrics_for(Some("IMAGE"), Some("FEED")),
            "reach,saved,likes,comments,shares,follows,profile_visits"
        );
        assert_eq!(metrics_for(None, None), "reach,saved,likes,comments,shares,follows,profile_visits");
    }

    #[test]
    fn record_is_flat_with_string_ids() {
        let media = ObjectRef {
            comments_count: None,
            id: "1789".into(),
            media_type: Some("VIDEO".into()),
            media_product_type: Some("REELS".into()),
            account: Account { business_account_id: "178414".into(), page_id: Some("1447".into()) },
            timestamp: Some(json!("2023-06-12T19:20:02+00:00")),
        };
        let body = json!({"data": [
            {"name": "comments", "period": "lifetime", "values": [{"value": 7}], "title": "t", "id": "1789/insights/comments/lifetime"},
            {"name": "ig_reels_avg_watch_time", "period": "lifetime", "values": [{"value": 12549}]}
        ]});
        let expected = json!({"comments": 7, "ig_reels_avg_watch_time": 12549, "id": "1789", "page_id": "1447",
                              "business_account_id": "178414", "timestamp": "2023-06-12T19:20:02+00:00"});
        let typed = <Insights as Answer>::parse(body.to_string().as_bytes()).expect("read typed");
        for answer in [typed, Insights::Json(body)] {
            let record = serde_json::to_value(transform(answer, &media)).expect("json");
            assert_eq!(record.to_string(), expected.to_string(), "same fields in the same order");
        }
    }

    #[test]
    fn ignore_rules_match_the_reference_samples() {
        use crate::http::HttpResponse;
        use crate::http::error::RequestError;
        let error_for = |name: &str| {
            let body: Value = serde_json::from_str(
                &std::fs::read_to_string(format!("../tests/fixtures/samples/{name}")).expect("sample"),
            )
            .expect("json");
            let response = HttpResponse { status: 400, headers: vec![], body: body.to_string().into_bytes() };
            RequestError::from_response(&response, Some(&body), "/x/insights")
        };
        let before = graph::ignore_insights_errors(&error_for("media_insights_for_error_posted_before_business.json"));
        assert_eq!(before.as_deref(), Some("Insights error for business_account_id: Invalid parameter"));
        let perms = graph::ignore_insights_errors(&error_for("media_insights_for_error_with_wrong_permissions.json"));
        assert_eq!(perms.as_deref(), Some("Check provided permissions for: Invalid parameter"));
        let code10 =
            graph::ignore_insights_errors(&error_for("media_insights_for_error_with_wrong_permissions_code_10.json"));
        assert!(code10.is_some_and(|m| m.starts_with("Check provided permissions for: (#10)")));
        let other_10 = RequestError::from_response(
            &HttpResponse { status: 400, headers: vec![], body: vec![] },
            Some(&json!({"error": {"code": 10, "message": "(#10) Not enough viewers for the media to show insights"}})),
            "/x",
        );
        assert_eq!(graph::ignore_insights_errors(&other_10), None, "another code-10 text is not ignored");
    }
}
