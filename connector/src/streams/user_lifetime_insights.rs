//! `user_lifetime_insights` (reference §8.1): follower demographics per account and breakdown.

use super::{ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::Account;
use crate::http::client::GraphClient;
use crate::http::shape::Shape;
use crate::protocol::Failure;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::{Map, Value};

pub const NAME: &str = "user_lifetime_insights";

pub const STREAM: StreamDef =
    StreamDef::full_refresh(NAME, SCHEMA, &["business_account_id", "breakdown"], Reader::PerAccount(start));

fn start<'a>(ctx: &'a ReadContext<'a>, accounts: &'a [Account], out: &'a StreamOutput<'a>) -> Reading<'a> {
    read(ctx.client, accounts, ctx.fan_out(), out).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/user_lifetime_insights.json");
pub const BREAKDOWNS: [&str; 3] = ["city", "country", "age,gender"];

/// `{breakdown, business_account_id, page_id, metric, value}` with `value` keyed by **all**
/// dimension values joined with `,` (`"18-24,F"`); the reference 4.2.27 kept only the first
/// dimension and lost the gender split.
pub fn transform(item: Value, breakdown: &str, account: &Account) -> Value {
    let Value::Object(mut item) = item else { return item };
    let mut record = Map::new();
    record.insert("breakdown".into(), Value::String(breakdown.to_owned()));
    record.insert("business_account_id".into(), Value::String(account.business_account_id.clone()));
    record.insert("page_id".into(), serde_json::json!(account.page_id));
    record.insert("metric".into(), item.get("name").cloned().unwrap_or(Value::Null));
    let results = item
        .get("total_value")
        .and_then(|t| t.pointer("/breakdowns/0/results"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let value: Map<String, Value> = results
        .iter()
        .map(|result| {
            let key = result
                .get("dimension_values")
                .and_then(Value::as_array)
                .map(|dims| {
                    dims.iter().map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_owned)).collect::<Vec<_>>()
                })
                .unwrap_or_default()
                .join(",");
            (key, result.get("value").cloned().unwrap_or(Value::Null))
        })
        .collect();
    record.insert("value".into(), Value::Object(value));
    for key in ["name", "period", "title", "description", "id", "total_value", "value"] {
        item.remove(key);
    }
    record.extend(item);
    Value::Object(record)
}

pub async fn read(
    client: &GraphClient<'_>,
    accounts: &[Account],
    fan_out: usize,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let partitions = accounts.iter().flat_map(|account| BREAKDOWNS.iter().map(move |b| (account, *b)));
    let requests = partitions.map(|(account, breakdown)| async move {
        let path = format!("/{}/insights", account.business_account_id);
        let query = [
            ("limit", "100"),
            ("metric", "follower_demographics"),
            ("period", "lifetime"),
            ("breakdown", breakdown),
            ("metric_type", "total_value"),
        ];
        let body: Value = client.get(&path, &query, Shape::Metrics, NAME).await.map_err(|e| e.to_failure())?;
        let items = body.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        Ok::<_, Failure>(items.into_iter().map(|item| transform(item, breakdown, account)).collect::<Vec<_>>())
    });
    let mut records = futures::stream::iter(requests).buffered(fan_out.max(1));
    while let Some(batch) = records.try_next().await? {
        for record in batch {
            out.emit(&record);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account() -> Account {
        Account { business_account_id: "b1".into(), page_id: Some("p1".into()) }
    }

    #[test]
    fn age_gender_keys_join_every_dimension() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/samples/user_lifetime_insights_for_age_gender.json"
        ))
        .expect("json");
        let record = transform(sample["data"][0].clone(), "age,gender", &account());
        assert_eq!(
            record,
            json!({"breakdown": "age,gender", "business_account_id": "b1", "page_id": "p1", "metric": "follower_demographics",
                   "value": {"18-24,F": 10, "18-24,M": 7, "18-24,U": 1, "25-34,F": 25, "25-34,M": 19, "25-34,U": 2}})
        );
    }

    #[test]
    fn city_keys_keep_their_commas() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/user_lifetime_insights.json"))
                .expect("json");
        let record = transform(sample["data"][0].clone(), "city", &account());
        assert!(record["value"].get("London, England").is_some(), "{record}");
        assert!(record.get("total_value").is_none() && record.get("name").is_none());
    }
}
