//! `story_insights` (`docs/source-instagram.md` §7.2): one insights request per live story.

use super::{ChildRun, InsightsRequest, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::Metrics;
use crate::http::error::RequestError;
use crate::metrics::Scope;
use crate::model::ObjectRef;
use crate::record::{self, RawRecord};
use futures::FutureExt;

pub const NAME: &str = "story_insights";

pub const STREAM: StreamDef = StreamDef {
    metric_fields: Some(crate::metrics::story_fields),
    ..StreamDef::full_refresh(NAME, SCHEMA, &[], Reader::Child { parent: super::stories::NAME, read: start })
};

fn start<'a>(run: ChildRun<'a>, out: &'a StreamOutput<'a>) -> Reading<'a> {
    super::emit_insights(run.ctx, run.pages, &REQUEST, out).boxed_local()
}

const REQUEST: InsightsRequest = InsightsRequest {
    stream: NAME,
    scope: |_| Scope::Story,
    metrics: |_, chosen| chosen.story(),
    ignore: ignore_code_10,
    record: transform,
};

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/story_insights.json");

/// Any code 10 (e.g. "Not enough viewers") means no insights for that story.
fn ignore_code_10(error: &RequestError) -> Option<String> {
    (error.code() == Some(10)).then(|| format!("Insights error: {}", error.message()))
}

pub fn transform(metrics: Metrics, story: &ObjectRef) -> RawRecord {
    record::insights_record(metrics.flatten(), story)
}
