//! `story_insights` (reference §7.2): one insights request per live story.

use super::StreamOutput;
use super::stories::StoryRef;
use crate::graph::{self, STORY_METRICS};
use crate::http::client::GraphClient;
use crate::http::error::RequestError;
use crate::protocol::Failure;
use crate::transform;
use futures::{StreamExt, TryStreamExt};
use serde_json::Value;

pub const NAME: &str = "story_insights";

/// Any code 10 (e.g. "Not enough viewers") means no insights for that story.
fn ignore_code_10(error: &RequestError) -> Option<String> {
    (error.code() == Some(10)).then(|| format!("Insights error: {}", error.message()))
}

pub fn transform(body: Value, story: &StoryRef) -> Value {
    let mut record = transform::flatten_insights(body);
    record.insert("id".into(), Value::String(story.story_id.clone()));
    record.insert("page_id".into(), Value::String(story.account.page_id.clone()));
    record.insert("business_account_id".into(), Value::String(story.account.business_account_id.clone()));
    transform::clean_urls(&mut record);
    Value::Object(record)
}

pub async fn read(
    client: &GraphClient<'_>,
    stories: &[StoryRef],
    fan_out: usize,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let requests = stories.iter().map(|story| async move {
        let path = format!("/{}/insights", story.story_id);
        let body = graph::get_or_ignore(client, &path, &[("metric", STORY_METRICS)], NAME, ignore_code_10)
            .await
            .map_err(|e| e.to_failure())?;
        Ok::<_, Failure>(body.map(|body| transform(body, story)))
    });
    let mut records = futures::stream::iter(requests).buffered(fan_out.max(1));
    while let Some(record) = records.try_next().await? {
        if let Some(record) = record {
            out.emit(&record);
        }
    }
    Ok(())
}
