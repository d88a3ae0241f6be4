//! `story_insights` (reference §7.2): one insights request per live story.

use super::{PageReceiver, ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{self, ObjectRef, STORY_METRICS};
use crate::http::batch::MAX_BATCH;
use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use crate::protocol::Failure;
use crate::transform::{self, Insights, Record};
use futures::{FutureExt, TryStreamExt};

pub const NAME: &str = "story_insights";

pub const STREAM: StreamDef =
    StreamDef::full_refresh(NAME, SCHEMA, &[], Reader::Child { parent: super::stories::NAME, read: start });

fn start<'a>(ctx: &'a ReadContext<'a>, refs: PageReceiver, out: &'a StreamOutput<'a>) -> Reading<'a> {
    consume(ctx.client, refs, ctx.config.optimizations.batch_insights, out).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/story_insights.json");

/// Any code 10 (e.g. "Not enough viewers") means no insights for that story.
fn ignore_code_10(error: &RequestError) -> Option<String> {
    (error.code() == Some(10)).then(|| format!("Insights error: {}", error.message()))
}

pub fn transform(body: Insights, story: &ObjectRef) -> Record {
    transform::insights_record(body, &story.id, &story.account)
}

/// Fetches the insights of the stories as their pages arrive, batched when `batch` is on.
pub async fn consume(
    client: &GraphClient<'_>,
    refs: impl futures::Stream<Item = Result<Vec<ObjectRef>, Failure>>,
    batch: bool,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let mut refs = std::pin::pin!(refs);
    while let Some(page) = refs.try_next().await? {
        for chunk in page.chunks(MAX_BATCH) {
            let items = chunk
                .iter()
                .map(|story| (format!("/{}/insights", story.id), vec![("metric", STORY_METRICS.to_owned())]))
                .collect();
            let outcomes = graph::get_many_or_ignore(client, items, batch, NAME, ignore_code_10).await;
            for (story, outcome) in chunk.iter().zip(outcomes) {
                if let Some(body) = outcome.map_err(|e| e.to_failure())? {
                    out.emit(&transform(body, story));
                }
            }
        }
    }
    Ok(())
}
