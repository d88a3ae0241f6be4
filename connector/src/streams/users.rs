//! `users`: the profile of each Instagram business account (reference §4).

use super::{ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{Account, USER_FIELDS};
use crate::http::client::GraphClient;
use crate::http::shape::Shape;
use crate::protocol::Failure;
use crate::transform;
use futures::{FutureExt, StreamExt, TryStreamExt};
use serde_json::Value;

pub const NAME: &str = "users";

pub const STREAM: StreamDef = StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::PerAccount(start));

fn start<'a>(ctx: &'a ReadContext<'a>, accounts: &'a [Account], out: &'a StreamOutput<'a>) -> Reading<'a> {
    read(ctx.client, accounts, out).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/users.json");

/// Adds `page_id` (no `business_account_id`: the reference does not) and cleans URLs.
pub fn transform(body: Value, account: &Account) -> Value {
    let Value::Object(mut record) = body else {
        return body;
    };
    record.insert("page_id".into(), serde_json::json!(account.page_id));
    transform::clean_urls(&mut record);
    Value::Object(record)
}

pub async fn read(client: &GraphClient<'_>, accounts: &[Account], out: &StreamOutput<'_>) -> Result<(), Failure> {
    let requests = accounts.iter().map(|account| async move {
        let path = format!("/{}", account.business_account_id);
        client.get(&path, &[("fields", USER_FIELDS)], Shape::Node, NAME).await.map(|body| transform(body, account))
    });
    // `buffered` keeps account order while the request layer runs them concurrently.
    let mut records = futures::stream::iter(requests).buffered(accounts.len().max(1));
    while let Some(record) = records.try_next().await.map_err(|e| e.to_failure())? {
        out.emit(&record);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adds_page_id_as_string_and_strips_ccb() {
        let account = Account { business_account_id: "17841400000000000".into(), page_id: Some("111".into()) };
        let body =
            json!({"id": "17841400000000000", "ig_id": 3, "profile_picture_url": "https://x/p.jpg?stp=a&ccb=7-5&oh=0"});
        assert_eq!(
            transform(body, &account),
            json!({"id": "17841400000000000", "ig_id": 3, "profile_picture_url": "https://x/p.jpg?stp=a&oh=0", "page_id": "111"})
        );
    }
}
