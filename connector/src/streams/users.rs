//! `users`: the profile of each Instagram business account (`docs/source-instagram.md` §4).

use super::{ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::USER_FIELDS;
use crate::http::client::GraphClient;
use crate::model::Account;
use crate::protocol::Failure;
use crate::record::{Node, RawRecord};
use futures::FutureExt;

pub const NAME: &str = "users";

pub const STREAM: StreamDef = StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::PerAccount(start));

fn start<'a>(ctx: &'a ReadContext<'a>, accounts: &'a [Account], out: &'a StreamOutput<'a>) -> Reading<'a> {
    read(ctx.client, accounts, out).boxed_local()
}

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/users.json");

/// Adds `page_id` (no `business_account_id`: the reference does not) and cleans URLs.
pub fn transform(profile: Node, account: &Account) -> RawRecord {
    let mut record = profile.record;
    record.add("page_id", &account.page_id);
    record.clean_urls();
    record
}

pub async fn read(client: &GraphClient<'_>, accounts: &[Account], out: &StreamOutput<'_>) -> Result<(), Failure> {
    let requests = accounts.iter().map(|account| async move {
        let path = format!("/{}", account.business_account_id);
        let profile = client.get(&path, &[("fields", USER_FIELDS)], NAME).await.map_err(|e| e.to_failure())?;
        Ok(vec![transform(profile, account)])
    });
    out.emit_batches(futures::stream::iter(requests), accounts.len()).await
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
        let node: Node = serde_json::from_value(body).expect("a node");
        assert_eq!(
            serde_json::to_value(transform(node, &account)).expect("json"),
            json!({"id": "17841400000000000", "ig_id": 3, "profile_picture_url": "https://x/p.jpg?stp=a&oh=0", "page_id": "111"})
        );
    }
}
