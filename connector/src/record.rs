//! Records: what a stream emits. Either Graph's own JSON passed through with the connector's
//! fields added ([`RawRecord`]), or a `Serialize` struct (comments, demographics); never a `Value`
//! tree. Plus the rewrites several streams apply to Graph's values: URL cleaning and timestamps
//! in RFC 3339 (`docs/source-instagram.md` §9).

use crate::http::answer::{FromMembers, Id, Raw, from_object};
use chrono::DateTime;
use serde::de::MapAccess;
use serde::{Deserialize, Serialize, Serializer, ser::SerializeMap};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A Graph object passed through: its fields in order, each as the JSON text Graph sent, plus
/// the fields the connector adds. Cheaper than a map (no hashing, no tree for nested values);
/// [`RawRecord::insert`] keeps a map's rule that a repeated name replaces the value where it
/// stands.
#[derive(Clone, Debug, Default)]
pub struct RawRecord(Vec<(Cow<'static, str>, Box<RawValue>)>);

impl RawRecord {
    pub fn insert(&mut self, name: impl Into<Cow<'static, str>>, value: Box<RawValue>) {
        let name = name.into();
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some((_, old)) => *old = value,
            None => self.0.push((name, value)),
        }
    }

    /// Adds a value the connector made (an id, an object of its own).
    pub fn add(&mut self, name: impl Into<Cow<'static, str>>, value: &impl Serialize) {
        self.insert(name, raw_json(value));
    }

    pub fn get(&self, name: &str) -> Option<&RawValue> {
        self.0.iter().find(|(field, _)| field == name).map(|(_, value)| &**value)
    }

    /// The fields, in order.
    pub fn into_fields(self) -> impl Iterator<Item = (Cow<'static, str>, Box<RawValue>)> {
        self.0.into_iter()
    }

    pub fn remove(&mut self, name: &str) -> Option<Box<RawValue>> {
        let at = self.0.iter().position(|(field, _)| field == name)?;
        Some(self.0.remove(at).1)
    }

    /// Field `name` as a `T`; `None` when absent or of another type.
    pub fn read<T: serde::de::DeserializeOwned>(&self, name: &str) -> Option<T> {
        serde_json::from_str(self.get(name)?.get()).ok()
    }

    /// Field `name` as text (a string's contents, a number's digits), when it is one of those.
    pub fn text(&self, name: &str) -> Option<String> {
        let raw = self.get(name)?.get();
        match raw.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(raw).ok().filter(|text| !text.is_empty()),
            Some(b'-' | b'0'..=b'9') => Some(raw.to_owned()),
            _ => None,
        }
    }

    /// Rewrites field `name`, if present and a string, with `change` (which `None` leaves as is).
    fn rewrite_text(&mut self, name: &str, change: impl FnOnce(&str) -> Option<String>) {
        let Some((_, raw)) = self.0.iter_mut().find(|(field, _)| field == name) else { return };
        if let Ok(text) = serde_json::from_str::<Cow<'_, str>>(raw.get())
            && let Some(changed) = change(&text)
        {
            *raw = raw_json(&changed);
        }
    }

    /// URL cleaning (`docs/source-instagram.md` §9.1): `_nc_rid` from `media_url`, `ccb` from `profile_picture_url`.
    pub fn clean_urls(&mut self) {
        for (field, param) in CLEANED_URLS {
            self.rewrite_text(field, |url| (!url.is_empty()).then(|| strip_query_param(url, param)));
        }
    }

    /// Field `name` in RFC 3339 (`docs/source-instagram.md` §9.2); a value that is not a timestamp is left as it came.
    pub fn in_rfc3339(&mut self, name: &str) {
        self.rewrite_text(name, rfc3339);
    }
}

impl Serialize for RawRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// A repeated name keeps its first place and its last value, as in a map.
impl<'de> FromMembers<'de> for RawRecord {
    fn from_members<A: MapAccess<'de>>(mut members: A) -> Result<Self, A::Error> {
        let mut record = RawRecord(Vec::with_capacity(members.size_hint().unwrap_or(16)));
        while let Some(name) = members.next_key::<Cow<'de, str>>()? {
            let Raw(value) = members.next_value()?;
            record.insert(name.into_owned(), value);
        }
        Ok(record)
    }
}

/// Only from a JSON object (any other kind is named).
impl<'de> Deserialize<'de> for RawRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_object(deserializer)
    }
}

/// A Graph object (a node, or an item of an edge) passed through, whose `id` is checked as it is
/// read ([`Id`]).
#[derive(Debug)]
pub struct Node {
    pub record: RawRecord,
    pub id: Id,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = RawRecord::deserialize(deserializer)?;
        let raw = record.get("id").map(ToOwned::to_owned).ok_or_else(|| serde::de::Error::custom("has no `id`"))?;
        let id = Id::check(raw).map_err(serde::de::Error::custom)?;
        Ok(Node { record, id })
    }
}

/// An entry of an insights answer passed through (a demographics breakdown): raw fields, whose
/// `id`, where present, is checked like a [`Node`]'s.
#[derive(Debug)]
pub struct Entry(pub RawRecord);

impl<'de> Deserialize<'de> for Entry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = RawRecord::deserialize(deserializer)?;
        if let Some(raw) = record.get("id") {
            Id::check(raw.to_owned()).map_err(serde::de::Error::custom)?;
        }
        Ok(Entry(record))
    }
}

/// An insights record (media or story): its flattened metrics (see
/// [`crate::graph::Metrics::flatten`]) plus the object's `id` and its account's `page_id` and
/// `business_account_id`, URL-cleaned.
pub fn insights_record(mut record: RawRecord, object: &crate::model::ObjectRef) -> RawRecord {
    record.add("id", &object.id);
    record.add("page_id", &object.account.page_id);
    record.add("business_account_id", &object.account.business_account_id);
    record.clean_urls();
    record
}

/// JSON text of a value the connector made (ids, strings), for a [`RawRecord`].
pub fn raw_json(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// Removes every query parameter named `name` from `url`, re-encoding the rest the way Python's
/// `urlencode` does (`docs/source-instagram.md` §9.1: the URL is re-serialised even when `name`
/// is absent).
pub fn strip_query_param(url: &str, name: &str) -> String {
    let (before_fragment, fragment) = url.split_once('#').map_or((url, None), |(head, f)| (head, Some(f)));
    let (base, query) = before_fragment.split_once('?').unwrap_or((before_fragment, ""));
    let kept: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
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

/// Python's `quote_plus`: letters, digits and `_.-~` kept, space as `+`, the rest `%XX`
/// (form encoding, which also keeps `*` and escapes `~`).
fn quote_plus(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('*', "%2A").replace("%7E", "~")
}

const CLEANED_URLS: [(&str, &str); 2] = [("media_url", "_nc_rid"), ("profile_picture_url", "ccb")];

/// A timestamp in any form Graph (or a state) writes one: RFC 3339 (`Z` or `+00:00`) or Graph's
/// `+0000`, with `T` or a space between date and time, with or without a fraction of a second.
pub fn parse_timestamp(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%z"))
        .ok()
}

/// `2024-01-01T00:00:00+0000` → `2024-01-01T00:00:00+00:00` (`docs/source-instagram.md` §9.2), from any form
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
    fn records_keep_graphs_order_and_text_and_replace_in_place() {
        let mut record: RawRecord = serde_json::from_str(
            r#"{"b": 1.50, "a": {"x": [1]}, "b": "again", "timestamp": "2024-01-01T00:00:00+0000"}"#,
        )
        .expect("an object");
        record.add("c", &"added");
        record.in_rfc3339("timestamp");
        assert_eq!(
            serde_json::to_string(&record).expect("json"),
            r#"{"b":"again","a":{"x": [1]},"timestamp":"2024-01-01T00:00:00+00:00","c":"added"}"#
        );
        assert!(serde_json::from_str::<RawRecord>("[1]").is_err());
        assert!(serde_json::from_str::<Node>(r#"{"id": null}"#).is_err());
        assert_eq!(serde_json::from_str::<Node>(r#"{"id": 17}"#).map(|n| n.id.text()).ok(), Some("17".into()));
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
