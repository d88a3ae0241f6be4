//! Record transformations shared by several streams (reference §9).

use crate::http::shape::{self, Answer, Typed};
use chrono::DateTime;
use serde::de::{DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer, ser::SerializeMap};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Removes every query parameter named `name` from `url`, re-encoding the rest the way Python's
/// `urlencode` does (reference §9.1: the URL is re-serialised even when `name` is absent).
pub fn strip_query_param(url: &str, name: &str) -> String {
    let (before_fragment, fragment) = match url.split_once('#') {
        Some((head, fragment)) => (head, Some(fragment)),
        None => (url, None),
    };
    let (base, query) = match before_fragment.split_once('?') {
        Some((base, query)) => (base, query),
        None => (before_fragment, ""),
    };
    let kept: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .filter(|(key, _)| key != name)
        .map(|(key, value)| format!("{}={}", quote_plus(&key), quote_plus(&value)))
        .collect();
    let mut out = base.to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(fragment) = fragment.filter(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

fn form_decode(text: &str) -> String {
    let plus_as_space = text.replace('+', " ");
    url::form_urlencoded::parse(format!("x={plus_as_space}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Python's `quote_plus`: unreserved `A-Za-z0-9_.-~` kept, space as `+`, the rest `%XX`.
fn quote_plus(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// URL cleaning (§9.1): `_nc_rid` from `media_url`, `ccb` from `profile_picture_url`.
pub fn clean_urls(record: &mut Map<String, Value>) {
    for (field, param) in CLEANED_URLS {
        clean_url(record.get_mut(field), param);
    }
}

const CLEANED_URLS: [(&str, &str); 2] = [("media_url", "_nc_rid"), ("profile_picture_url", "ccb")];

fn clean_url(value: Option<&mut Value>, param: &str) {
    if let Some(Value::String(url)) = value
        && !url.is_empty()
    {
        *url = strip_query_param(url, param);
    }
}

/// A record as its fields in order, written as a JSON object: built field by field (`Value`s), or
/// read from Graph with each field kept as raw JSON ([`RawRecord`]). Cheaper than a `Map` (no
/// hashing, no allocation for fixed names, no tree for nested values); [`Record::insert`] keeps a
/// `Map`'s rule that a repeated name replaces the value where it stands.
#[derive(Debug)]
pub struct Record<V = Value>(Vec<(Cow<'static, str>, V)>);

/// A Graph object passed through: every field as the JSON text Graph sent.
pub type RawRecord = Record<Box<RawValue>>;

impl<V> Default for Record<V> {
    fn default() -> Self {
        Record(Vec::new())
    }
}

impl<V> Record<V> {
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: V) {
        let name = name.into();
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(field, _)| field == name).map(|(_, value)| value)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.0.iter_mut().find(|(field, _)| field == name).map(|(_, value)| value)
    }
}

impl RawRecord {
    /// Field `name` as a `T`; `None` when absent or of another type.
    pub fn read<T: DeserializeOwned>(&self, name: &str) -> Option<T> {
        serde_json::from_str(self.get(name)?.get()).ok()
    }

    /// Rewrites field `name`, if present, through a `Value` (for the few fields a stream changes).
    pub fn rewrite(&mut self, name: &str, change: impl FnOnce(Value) -> Value) {
        if let Some(raw) = self.get_mut(name)
            && let Ok(value) = serde_json::from_str(raw.get())
            && let Ok(changed) = serde_json::value::to_raw_value(&change(value))
        {
            *raw = changed;
        }
    }

    /// [`clean_urls`] on a passed-through record.
    pub fn clean_urls(&mut self) {
        for (field, param) in CLEANED_URLS {
            self.rewrite(field, |mut value| {
                clean_url(Some(&mut value), param);
                value
            });
        }
    }
}

/// A single Graph object passed through (a carousel slide fetched by id).
impl Typed for RawRecord {
    fn read(body: &[u8]) -> Option<Self> {
        shape::object_from_slice(body)
    }

    fn fits(&self) -> bool {
        self.get("error").is_none() && crate::graph::EdgeItem::fits(self)
    }
}

/// JSON text of a value the connector made (ids, strings), for a [`RawRecord`].
pub fn raw_json(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| raw_json(&Value::Null))
}

impl From<Map<String, Value>> for Record {
    fn from(map: Map<String, Value>) -> Self {
        Record(map.into_iter().map(|(name, value)| (Cow::Owned(name), value)).collect())
    }
}

impl<V: Serialize> Serialize for Record<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Only from a JSON object; a repeated name keeps its first place and its last value, as a `Map`.
impl<'de, V: DeserializeOwned> Deserialize<'de> for Record<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<V>(std::marker::PhantomData<V>);
        impl<'de, V: DeserializeOwned> Visitor<'de> for Fields<V> {
            type Value = Record<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<V>, A::Error> {
                let mut record = Record(Vec::with_capacity(map.size_hint().unwrap_or(16)));
                while let Some((name, value)) = map.next_entry::<String, V>()? {
                    record.insert(name, value);
                }
                Ok(record)
            }
        }
        deserializer.deserialize_map(Fields(std::marker::PhantomData))
    }
}

/// A timestamp in any form Graph (or a state) writes one: RFC 3339 (`Z` or `+00:00`) or Graph's
/// `+0000`, with `T` or a space between date and time, with or without a fraction of a second.
pub fn parse_timestamp(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%z"))
        .ok()
}

/// `2024-01-01T00:00:00+0000` → `2024-01-01T00:00:00+00:00` (§9.2), from any form
/// [`parse_timestamp`] reads. `None` when unparseable.
pub fn rfc3339(timestamp: &str) -> Option<String> {
    // Graph's own form (`…+0000`, every timestamp it sends) only gains the colon: a string
    // edit, checked against the parse below in the tests, instead of chrono's parse and format
    // (5 % of a sync's CPU).
    if let Some(formatted) = graph_form_rfc3339(timestamp) {
        return Some(formatted);
    }
    Some(parse_timestamp(timestamp)?.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
}

/// `YYYY-MM-DDTHH:MM:SS±hhmm` with every field in range, rewritten with `±hh:mm`.
fn graph_form_rfc3339(timestamp: &str) -> Option<String> {
    let bytes = timestamp.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = bytes.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if bytes.len() != 24 || separators.iter().any(|&(at, c)| bytes[at] != c) || !matches!(bytes[19], b'+' | b'-') {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let (offset_hours, offset_minutes) = (digits(20..22)?, digits(22..24)?);
    let days_in_month = chrono::NaiveDate::from_ymd_opt(year as i32, month, 1)
        .and_then(|first| first.checked_add_months(chrono::Months::new(1)))
        .map(|next| next.pred_opt().map_or(0, |last| chrono::Datelike::day(&last)))?;
    // chrono writes a zero offset as `+00:00` whatever its sign.
    let negative_zero = bytes[19] == b'-' && offset_hours == 0 && offset_minutes == 0;
    let valid = !negative_zero
        && (1..=days_in_month).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && offset_hours < 24
        && offset_minutes < 60;
    valid.then(|| format!("{}:{}", &timestamp[..22], &timestamp[22..]))
}

/// Rewrites `record[field]` to RFC 3339 in place; an unparseable value is left as it came.
pub fn rfc3339_field(record: &mut Map<String, Value>, field: &str) {
    if let Some(value) = record.get_mut(field) {
        *value = rfc3339_value(value.take());
    }
}

/// A timestamp value in RFC 3339; anything unparseable as it came.
pub fn rfc3339_value(value: Value) -> Value {
    match value {
        Value::String(ts) => Value::String(rfc3339(&ts).unwrap_or(ts)),
        other => other,
    }
}

/// Insights flattening (§9.3): `data[]` → `{name: values[0].value}`. A missing or empty `data`
/// is left as it came.
pub fn flatten_insights(body: Value) -> Map<String, Value> {
    let Value::Object(mut record) = body else { return Map::new() };
    let has_items = record.get("data").and_then(Value::as_array).is_some_and(|items| !items.is_empty());
    if has_items && let Some(Value::Array(items)) = record.remove("data") {
        for item in items {
            let Some(name) = item.get("name").and_then(Value::as_str) else { continue };
            let value = item.pointer("/values/0/value").cloned().unwrap_or(Value::Null);
            record.insert(name.to_owned(), value);
        }
    }
    record
}

/// An insights answer (media or story): its metrics read straight from the body, or, for
/// anything else (an empty `data`, other top-level fields, values of odd shapes), the JSON,
/// flattened by [`flatten_insights`] as it comes.
pub enum Insights {
    Metrics(Vec<Metric>),
    Json(Value),
}

/// One metric of an insights answer.
#[derive(Deserialize)]
pub struct Metric {
    name: Option<Value>,
    #[serde(default, deserialize_with = "shape::list_of_objects")]
    values: Vec<MetricValue>,
    /// Checked like [`shape::Shape::Metrics`] does: valid where present.
    #[serde(default, rename = "id", deserialize_with = "shape::checked_id")]
    _id: (),
}

#[derive(Deserialize)]
struct MetricValue {
    value: Option<Value>,
}

/// Only `data`, non-empty: anything more goes down the `Value` path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MetricsOnly {
    #[serde(deserialize_with = "shape::list_of_objects")]
    data: Vec<Metric>,
}

impl Answer for Insights {
    fn parse(body: &[u8]) -> Option<Self> {
        let metrics = shape::object_from_slice::<MetricsOnly>(body)?.data;
        (!metrics.is_empty()).then_some(Insights::Metrics(metrics))
    }

    fn from_checked(body: Value) -> Result<Self, String> {
        Ok(Insights::Json(body))
    }
}

impl Insights {
    /// Flattened (§9.3): `{name: values[0].value}` per metric.
    pub(crate) fn flatten(self) -> Record {
        match self {
            Insights::Json(body) => flatten_insights(body).into(),
            Insights::Metrics(metrics) => {
                let mut record = Record::default();
                for metric in metrics {
                    let Some(Value::String(name)) = metric.name else { continue };
                    let value = metric.values.into_iter().next().and_then(|v| v.value);
                    record.insert(name, value.unwrap_or(Value::Null));
                }
                record
            }
        }
    }
}

/// An insights record (media or story): flattened metrics plus the object's `id` and its
/// account's `page_id` and `business_account_id`, URL-cleaned.
pub fn insights_record(body: Insights, object_id: &str, account: &crate::graph::Account) -> Record {
    let mut record = body.flatten();
    record.insert("id", Value::String(object_id.to_owned()));
    record.insert("page_id", serde_json::json!(account.page_id));
    record.insert("business_account_id", Value::String(account.business_account_id.clone()));
    for (field, param) in CLEANED_URLS {
        clean_url(record.get_mut(field), param);
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_named_parameter_only() {
        assert_eq!(
            strip_query_param("https://fake_url?_nc_cat=100&ccb=1-7&_nc_sid=18de74&_nc_rid=testing", "_nc_rid"),
            "https://fake_url?_nc_cat=100&ccb=1-7&_nc_sid=18de74"
        );
        assert_eq!(
            strip_query_param("https://fake_url?_nc_cat=100&ccb=1-7&_nc_sid=18de74", "ccb"),
            "https://fake_url?_nc_cat=100&_nc_sid=18de74"
        );
    }

    #[test]
    fn re_encodes_like_python_urlencode() {
        assert_eq!(
            strip_query_param("https://x/p?a=1,2&b=c:d/e&e=x%20y&f", "z"),
            "https://x/p?a=1%2C2&b=c%3Ad%2Fe&e=x+y&f="
        );
        assert_eq!(strip_query_param("https://x/p?ccb=1", "ccb"), "https://x/p");
        assert_eq!(strip_query_param("https://x/p?a=~*#frag", "z"), "https://x/p?a=~%2A#frag");
        assert_eq!(strip_query_param("https://x/p", "ccb"), "https://x/p");
    }

    #[test]
    fn insights_flatten_to_name_value_pairs() {
        let body: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/samples/story_insights_for_story_insights_happy_path.json"
        ))
        .expect("sample");
        let record = flatten_insights(body);
        assert!(record.get("data").is_none());
        assert_eq!(record.get("replies"), Some(&Value::from(0)));
        assert_eq!(record.get("reach"), Some(&Value::from(105)));
        let empty = flatten_insights(serde_json::json!({"data": []}));
        assert_eq!(empty.get("data"), Some(&serde_json::json!([])));
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        let chrono_form = |t: &str| {
            DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%z")
                .ok()
                .map(|p| p.format("%Y-%m-%dT%H:%M:%S%:z").to_string())
        };
        for t in [
            "2024-01-01T00:00:00+0000",
            "2024-02-29T23:59:59-0530",
            "2023-02-29T10:00:00+0000",
            "2024-13-01T10:00:00+0000",
            "2024-04-31T10:00:00+0000",
            "2024-01-01T24:00:00+0000",
            "2024-01-01T10:00:00+2400",
            "2024-01-01T10:00:00-0000",
            "2024-01-01 10:00:00+0000",
            "2024-01-01T10:00:00Z",
            "",
        ] {
            if let Some(fast) = graph_form_rfc3339(t) {
                assert_eq!(Some(fast), chrono_form(t), "{t}");
            }
            let lenient = parse_timestamp(t).map(|p| p.format("%Y-%m-%dT%H:%M:%S%:z").to_string());
            assert_eq!(rfc3339(t), lenient, "{t}");
        }
    }

    /// Every form a timestamp comes in reads as the same instant (Airbyte's own test scenarios
    /// send `end_time` with a space, which the reference reads).
    #[test]
    fn timestamps_read_in_every_form_graph_and_states_use() {
        for t in [
            "2025-07-01T07:00:00+0000",
            "2025-07-01 07:00:00+0000",
            "2025-07-01T07:00:00+00:00",
            "2025-07-01 07:00:00+00:00",
            "2025-07-01T07:00:00Z",
            "2025-07-01T07:00:00.000+0000",
            "2025-07-01 07:00:00.5+0000",
            "2025-07-01T09:00:00+0200",
        ] {
            assert_eq!(rfc3339(t).map(|r| parse_timestamp(&r)), Some(parse_timestamp("2025-07-01T07:00:00Z")), "{t}");
        }
        assert_eq!(rfc3339("2025-07-01 07:00:00+0000").as_deref(), Some("2025-07-01T07:00:00+00:00"));
        for bad in ["2025-07-01", "07:00:00", "2025-07-01 07:00:00", "yesterday", ""] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_gain_a_colon_in_the_offset() {
        assert_eq!(rfc3339("2024-01-01T00:00:00+0000").as_deref(), Some("2024-01-01T00:00:00+00:00"));
        assert_eq!(rfc3339("2023-06-12T19:20:02+0530").as_deref(), Some("2023-06-12T19:20:02+05:30"));
        assert_eq!(rfc3339("yesterday"), None);
    }
}
