//! `media_insights` (`docs/source-instagram.md` §6): one insights request per media, metric list
//! by type.

use super::{ChildRun, FULL_REFRESH_AND_INCREMENTAL, InsightsRequest, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{self, Metrics};
use crate::metrics::Scope;
use crate::model::ObjectRef;
use crate::record::{self, RawRecord};
use crate::window;
use futures::FutureExt;

pub const NAME: &str = "media_insights";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("timestamp"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    windowed: true,
    metric_fields: Some(crate::metrics::media_fields),
    ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Child { parent: super::media::NAME, read: start })
};

fn start<'a>(run: ChildRun<'a>, out: &'a StreamOutput<'a>) -> Reading<'a> {
    let ChildRun { ctx, pages, window } = run;
    async move {
        match &window {
            Some(window) => super::emit_insights(ctx, window::filter(pages, window), &REQUEST, out).await?,
            None => super::emit_insights(ctx, pages, &REQUEST, out).await?,
        }
        out.checkpoint(&window.map_or_else(crate::model::final_full_refresh_state, |window| window.state()));
        Ok(())
    }
    .boxed_local()
}

const REQUEST: InsightsRequest = InsightsRequest {
    stream: NAME,
    scope: |media| Scope::Media(media.media_product_type.clone().unwrap_or_default()),
    metrics: |media, chosen| chosen.media(media.media_type.as_deref(), media.media_product_type.as_deref()),
    ignore: graph::ignore_insights_errors,
    record: transform,
};

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/media_insights.json");

/// Flattened insights plus `id`, `page_id`, `business_account_id` and the parent's `timestamp`.
pub fn transform(metrics: Metrics, media: &ObjectRef) -> RawRecord {
    let mut record = record::insights_record(metrics.flatten(), media);
    if let Some(timestamp) = &media.timestamp {
        record.insert("timestamp", timestamp.clone());
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Account;
    use serde_json::json;

    /// The reference's lists in its rule order, each followed by December 2025's metrics where
    /// Meta lists them.
    #[test]
    fn metric_rules_apply_in_reference_order() {
        let rules = |kind, product| crate::metrics::default_media_metrics(kind, product);
        let reels = rules(Some("VIDEO"), Some("REELS"));
        assert_eq!(
            reels,
            "comments,ig_reels_avg_watch_time,ig_reels_video_view_total_time,likes,reach,saved,shares,views,reposts,reels_skip_rate,crossposted_views,facebook_views"
        );
        assert_eq!(rules(Some("CAROUSEL_ALBUM"), Some("REELS")), reels, "REELS wins over the media type");
        for (kind, product, reference) in [
            (Some("VIDEO"), Some("FEED"), "reach,saved,views"),
            (Some("VIDEO"), Some("AD"), "reach,saved,likes,comments,shares,follows,profile_visits"),
            (Some("CAROUSEL_ALBUM"), Some("FEED"), "reach,saved,shares,follows,profile_visits"),
            (Some("IMAGE"), Some("FEED"), "reach,saved,likes,comments,shares,follows,profile_visits"),
            (None, None, "reach,saved,likes,comments,shares,follows,profile_visits"),
        ] {
            assert_eq!(rules(kind, product), format!("{reference},reposts"), "{kind:?} {product:?}");
        }
    }

    #[test]
    fn record_is_flat_with_string_ids() {
        let media = ObjectRef {
            id: "1789".into(),
            media_type: Some("VIDEO".into()),
            media_product_type: Some("REELS".into()),
            account: Account { business_account_id: "178414".into(), page_id: Some("1447".into()) },
            timestamp: Some(record::raw_json(&"2023-06-12T19:20:02+00:00")),
            ..ObjectRef::default()
        };
        let body = json!({"data": [
            {"name": "comments", "period": "lifetime", "values": [{"value": 7}], "title": "t", "id": "1789/insights/comments/lifetime"},
            {"name": "ig_reels_avg_watch_time", "period": "lifetime", "values": [{"value": 12549}]}
        ]});
        let expected = json!({"comments": 7, "ig_reels_avg_watch_time": 12549, "id": "1789", "page_id": "1447",
                              "business_account_id": "178414", "timestamp": "2023-06-12T19:20:02+00:00"});
        let metrics: Metrics = serde_json::from_value(body).expect("insights");
        let record = serde_json::to_value(transform(metrics, &media)).expect("json");
        assert_eq!(record.to_string(), expected.to_string(), "same fields in the same order");
        // No metric: the body as it came, `data` included.
        let empty: Metrics = serde_json::from_value(json!({"data": [], "x": 1})).expect("insights");
        let record = serde_json::to_value(transform(empty, &media)).expect("json");
        assert_eq!(record["data"], json!([]));
        assert_eq!(record["x"], 1);
    }

    #[test]
    fn ignore_rules_match_the_reference_samples() {
        use crate::http::HttpResponse;
        use crate::http::error::RequestError;
        let error_for = |name: &str| {
            let body = std::fs::read(format!("../tests/fixtures/samples/{name}")).expect("sample");
            let graph = crate::http::answer::error_body(&body);
            let response = HttpResponse { status: 400, headers: vec![], body };
            RequestError::from_response(&response, graph, "/x/insights")
        };
        let before = graph::ignore_insights_errors(&error_for("media_insights_for_error_posted_before_business.json"));
        assert_eq!(before.as_deref(), Some("Insights error for business_account_id: Invalid parameter"));
        let perms = graph::ignore_insights_errors(&error_for("media_insights_for_error_with_wrong_permissions.json"));
        assert_eq!(perms.as_deref(), Some("Check provided permissions for: Invalid parameter"));
        let code10 =
            graph::ignore_insights_errors(&error_for("media_insights_for_error_with_wrong_permissions_code_10.json"));
        assert!(code10.is_some_and(|m| m.starts_with("Check provided permissions for: (#10)")));
        let body = json!({"error": {"code": 10, "message": "(#10) Not enough viewers for the media to show insights"}});
        let graph = crate::http::answer::error_body(body.to_string().as_bytes());
        let other_10 =
            RequestError::from_response(&HttpResponse { status: 400, headers: vec![], body: vec![] }, graph, "/x");
        assert_eq!(graph::ignore_insights_errors(&other_10), None, "another code-10 text is not ignored");
    }
}
