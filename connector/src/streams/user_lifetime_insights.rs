//! `user_lifetime_insights` (`docs/source-instagram.md` §8.1): follower demographics per account
//! and breakdown.

use super::{ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{Edge, TotalValue};
use crate::http::client::GraphClient;
use crate::model::Account;
use crate::protocol::Failure;
use crate::record::{Entry, RawRecord};
use futures::FutureExt;
use serde_json::value::RawValue;

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
/// dimension and lost the gender split. The entry's other fields follow, as Graph sent them.
pub fn transform(entry: Entry, breakdown: &str, account: &Account) -> RawRecord {
    let Entry(item) = entry;
    let mut record = RawRecord::default();
    record.add("breakdown", &breakdown);
    record.add("business_account_id", &account.business_account_id);
    record.add("page_id", &account.page_id);
    record.insert("metric", item.get("name").map_or_else(|| RawValue::NULL.to_owned(), ToOwned::to_owned));
    // One of another shape counts as no results.
    let total = item.read::<TotalValue>("total_value").unwrap_or_default();
    record.add("value", &total.first_breakdown());
    let dropped = ["name", "period", "title", "description", "id", "total_value", "value"];
    let rest = item.into_fields().filter(|(name, _)| !dropped.contains(&name.as_ref()));
    rest.for_each(|(name, field)| record.insert(name, field));
    record
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
        let body: Edge<Entry> = client.get(&path, &query, NAME).await.map_err(|e| e.to_failure())?;
        Ok::<_, Failure>(body.data.into_iter().map(|entry| transform(entry, breakdown, account)).collect::<Vec<_>>())
    });
    out.emit_batches(futures::stream::iter(requests), fan_out).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn record(item: Value, breakdown: &str) -> Value {
        let entry: Entry = serde_json::from_value(item).expect("an entry");
        serde_json::to_value(transform(entry, breakdown, &account())).expect("json")
    }

    fn account() -> Account {
        Account { business_account_id: "b1".into(), page_id: Some("p1".into()) }
    }

    #[test]
    fn age_gender_keys_join_every_dimension() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/samples/user_lifetime_insights_for_age_gender.json"
        ))
        .expect("json");
        assert_eq!(
            record(sample["data"][0].clone(), "age,gender"),
            json!({"breakdown": "age,gender", "business_account_id": "b1", "page_id": "p1", "metric": "follower_demographics",
                   "value": {"18-24,F": 10, "18-24,M": 7, "18-24,U": 1, "25-34,F": 25, "25-34,M": 19, "25-34,U": 2}})
        );
    }

    #[test]
    fn city_keys_keep_their_commas() {
        let sample: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/samples/user_lifetime_insights.json"))
                .expect("json");
        let record = record(sample["data"][0].clone(), "city");
        assert!(record["value"].get("London, England").is_some(), "{record}");
        assert!(record.get("total_value").is_none() && record.get("name").is_none());
    }
}
