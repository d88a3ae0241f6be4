//! The Graph Batch API's wire format: up to [`MAX_BATCH`] relative GETs in one form-encoded
//! `POST /`, answered by an array of `{code, headers, body}`, one per item, in order.
//! Encoding and decoding only; sending and retrying are the client's.

use super::HttpResponse;
use super::answer::Object;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

/// The most requests one Batch API call carries (Meta's limit).
pub const MAX_BATCH: usize = 50;

/// `/123/insights` + query → `123/insights?metric=…` (a batch item's `relative_url`).
pub fn relative_url(path: &str, query: &[(&str, &str)]) -> String {
    let mut url = path.trim_start_matches('/').to_owned();
    if !query.is_empty() {
        url.push('?');
        url.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish());
    }
    url
}

/// The form body for GETs of `items` (path and query).
pub fn encode<'a>(items: impl Iterator<Item = &'a (String, Vec<(&'a str, String)>)>) -> Vec<u8> {
    let batch: Vec<Value> = items
        .map(|(path, query)| {
            let pairs: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
            json!({"method": "GET", "relative_url": relative_url(path, &pairs)})
        })
        .collect();
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("batch", &serde_json::to_string(&batch).unwrap_or_default())
        .finish()
        .into_bytes()
}

/// A batch call's answers, one per item in order, each as a response of its own; `None` where
/// Meta did not get to the item (it answers `null`), which is worth sending again.
pub struct Answers(pub Vec<Option<HttpResponse>>);

/// An item's answer as Meta sends it.
#[derive(Deserialize)]
struct Item {
    code: u64,
    #[serde(default)]
    headers: Vec<Object<Header>>,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Header {
    name: String,
    value: String,
}

impl<'de> Deserialize<'de> for Answers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<Option<Object<Item>>>::deserialize(deserializer)?;
        let response = |Object(item): Object<Item>| HttpResponse {
            status: u16::try_from(item.code).unwrap_or(500),
            headers: item.headers.into_iter().map(|Object(h)| (h.name.to_ascii_lowercase(), h.value)).collect(),
            body: item.body.into_bytes(),
        };
        Ok(Answers(items.into_iter().map(|item| item.map(response)).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_the_wire_format() {
        let items = [("/1/insights".to_owned(), vec![("metric", "reach,saved".to_owned())])];
        let form = String::from_utf8(encode(items.iter())).expect("utf-8");
        let batch: Vec<(String, String)> = url::form_urlencoded::parse(form.as_bytes()).into_owned().collect();
        assert_eq!(batch[0].1, r#"[{"method":"GET","relative_url":"1/insights?metric=reach%2Csaved"}]"#);
        let answer = json!({"code": 400, "headers": [{"name": "Retry-After", "value": "3"}], "body": "{}"});
        let typed: Answers = serde_json::from_value(json!([answer, null])).expect("typed");
        assert_eq!(typed.0[0].as_ref().map(|r| (r.status, r.header("retry-after"))), Some((400, Some("3"))));
        assert!(typed.0[1].is_none(), "no answer: sent again");
        // An item of another shape makes the envelope broken: its requests go one by one.
        for odd in [json!([5]), json!([{"code": "200"}]), json!([{"code": 200, "body": 5}])] {
            assert!(serde_json::from_value::<Answers>(odd.clone()).is_err(), "{odd}");
        }
    }
}
