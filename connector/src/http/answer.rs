//! Reading a Graph answer: once, straight into the type its caller asked for.
//!
//! Why typed: building and freeing `Value` trees (a map, a hash and a key string per field) was
//! about 40 % of a sync's CPU; fields a record passes through stay raw JSON text instead.
//!
//! Why here: a broken 200 (`{}`, `{"data": null}`, `[1,2,3]`, a record whose `id` is null) would
//! otherwise read as "no records" and end a sync with exit 0. The caller's type is the shape it
//! expects ([`Answered`] adds that a 2xx body may also be a Graph error), so whatever does not
//! fit is refused as it is read. The words come from the failing part: the body is read once
//! more with `serde_path_to_error`, and `describe` says where it failed and what was there,
//! never quoting the body (it may echo a token).

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// A 2xx answer: the caller's type, or the Graph error Graph sometimes sends with a 2xx status
/// (`{"error": {…}}`), in one pass: the top-level `error` member is set aside while the type reads
/// the rest. Not `#[serde(untagged)]`, which buffers the body into serde's private `Content` first
/// (copying every field, and refusing `RawValue`). Object types refuse lists themselves.
pub enum Answered<T> {
    Error(GraphError),
    Value(T),
}

/// The `error` object of a Graph error body (`docs/graph-api.md`, "Errors"). Each member is read
/// leniently: one of an odd type is taken as absent, so an error never turns into a broken answer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GraphError {
    #[serde(deserialize_with = "lenient")]
    pub code: Option<i64>,
    #[serde(rename = "error_subcode", deserialize_with = "lenient")]
    pub subcode: Option<i64>,
    #[serde(deserialize_with = "lenient")]
    pub message: String,
    #[serde(rename = "type", deserialize_with = "lenient")]
    pub error_type: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub is_transient: bool,
    #[serde(deserialize_with = "lenient")]
    pub fbtrace_id: Option<String>,
}

/// A member as `T`, or `T`'s default when it is of another type (error bodies only: small).
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(deserializer: D) -> Result<T, D::Error> {
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(T::deserialize(value).unwrap_or_default())
}

/// `Some(value)` for a member that is present, even when it is null (`#[serde(default,
/// deserialize_with = "present")]`).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Reads a 2xx body as `T`; `Err` says what is wrong with it, in words fit for a user.
pub fn read<T: DeserializeOwned>(body: &[u8]) -> Result<Answered<T>, String> {
    serde_json::from_slice(body).map_err(|_| explain::<T>(body))
}

/// What an error status's body says.
#[derive(Debug, PartialEq)]
pub enum ErrorBody {
    Graph(GraphError),
    /// JSON without a Graph `error`.
    OtherJson,
    NotJson,
}

/// Reads a non-2xx body.
pub fn error_body(body: &[u8]) -> ErrorBody {
    match serde_json::from_slice::<Answered<IgnoredAny>>(body) {
        Ok(Answered::Error(error)) => ErrorBody::Graph(error),
        Ok(Answered::Value(_)) => ErrorBody::OtherJson,
        Err(_) if serde_json::from_slice::<IgnoredAny>(body).is_ok() => ErrorBody::OtherJson,
        Err(_) => ErrorBody::NotJson,
    }
}

/// The same read, tracking where it fails (a body that is not JSON at all is called that first,
/// whatever its first character promised).
fn explain<T: DeserializeOwned>(body: &[u8]) -> String {
    if serde_json::from_slice::<IgnoredAny>(body).is_err() {
        return NOT_JSON.to_owned();
    }
    let mut reader = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, Answered<T>>(&mut reader) {
        Ok(_) => match reader.end() {
            Ok(()) => "the body cannot be read".to_owned(),
            Err(_) => NOT_JSON.to_owned(),
        },
        Err(error) => describe(error.path(), error.inner()),
    }
}

const NOT_JSON: &str = "the body is not JSON";

/// Words for a failed read: the part that failed, and what was there.
fn describe(path: &serde_path_to_error::Path, error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    if matches!(error.classify(), Category::Syntax | Category::Eof | Category::Io) {
        return NOT_JSON.to_owned();
    }
    let mut segments: Vec<String> = Vec::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => match segments.last_mut() {
                Some(last) => last.push_str(&format!("[{index}]")),
                None => segments.push(format!("[{index}]")),
            },
            serde_path_to_error::Segment::Map { key } => segments.push(key.clone()),
            _ => {}
        }
    }
    // serde_json ends its messages with the position; the words are what comes before.
    let text = error.to_string();
    let text = text.rsplit_once(" at line ").map_or(text.as_str(), |(words, _)| words);
    let predicate = match text.strip_prefix("missing field ") {
        Some("`data`") => "has no `data` list".to_owned(),
        Some(field) => format!("has no {field}"),
        None => match text.strip_prefix("invalid type: ").and_then(|rest| rest.rsplit_once(", expected ")) {
            Some((kind, "a sequence")) => format!("is {} instead of a list", serde_kind(kind)),
            Some((kind, expected @ ("an object" | "a JSON object"))) => {
                format!("is {} instead of {expected}", serde_kind(kind))
            }
            Some((kind, _)) => format!("is {}, which Graph does not send there", serde_kind(kind)),
            None if ["is ", "has ", "nests "].iter().any(|start| text.starts_with(start)) => text.to_owned(),
            None => "is not what Graph sends there".to_owned(),
        },
    };
    // An `id`'s fault is told of the object it belongs to.
    let about_id = predicate.starts_with("has an `id`") || predicate == "has no `id`";
    if about_id && segments.last().is_some_and(|last| last == "id") {
        segments.pop();
    }
    match segments.join(".") {
        subject if subject.is_empty() && about_id => format!("the object {predicate}"),
        subject if subject.is_empty() => {
            format!("the body {}", predicate.replace("instead of an object", "instead of a JSON object"))
        }
        subject => format!("`{subject}` {predicate}"),
    }
}

/// serde's name of an unexpected value (`integer \`5\``, `string "…"`) as a kind, without the value.
fn serde_kind(unexpected: &str) -> &'static str {
    match unexpected.split([' ', ',']).next().unwrap_or("") {
        "null" | "unit" => "null",
        "boolean" => "a boolean",
        "integer" | "floating" => "a number",
        "string" | "character" => "a string",
        "sequence" => "a list",
        "map" => "an object",
        _ => "a value",
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Answered<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Top<T> {
            type Value = Answered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut spy = ErrorSpy { inner: map, error: None };
                let value = T::deserialize(MapAccessDeserializer::new(&mut spy));
                match (spy.error, value) {
                    (Some(error), _) => Ok(Answered::Error(error)),
                    (None, value) => value.map(Answered::Value),
                }
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                T::deserialize(SeqAccessDeserializer::new(seq)).map(Answered::Value)
            }
        }
        deserializer.deserialize_any(Top(PhantomData))
    }
}

/// The top-level map of an answer as its type sees it, minus an `error` member, which is kept
/// aside: a body with one is a Graph error, whatever else it holds.
struct ErrorSpy<A> {
    inner: A,
    error: Option<GraphError>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for &mut ErrorSpy<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<Cow<'de, str>>()? else { return Ok(None) };
            if key == "error" {
                self.error = Some(self.inner.next_value()?);
                continue;
            }
            let key = match key {
                Cow::Borrowed(key) => seed.deserialize(de::value::BorrowedStrDeserializer::new(key)),
                Cow::Owned(key) => seed.deserialize(de::value::StringDeserializer::new(key)),
            };
            return key.map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// A type read from the members of a JSON object (and from nothing else), as it meets them.
pub trait FromMembers<'de>: Sized {
    fn from_members<A: MapAccess<'de>>(members: A) -> Result<Self, A::Error>;
}

/// Reads a [`FromMembers`] type; any other kind of value is refused and named.
pub fn from_object<'de, D: Deserializer<'de>, T: FromMembers<'de>>(deserializer: D) -> Result<T, D::Error> {
    struct Visit<T>(PhantomData<T>);
    impl<'de, T: FromMembers<'de>> Visitor<'de> for Visit<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<T, A::Error> {
            Err(de::Error::invalid_type(de::Unexpected::Seq, &self))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_members(map)
        }
    }
    deserializer.deserialize_any(Visit(PhantomData))
}

/// A struct read only from a JSON object (serde would also read one from a list).
pub struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> FromMembers<'de> for Object<T> {
    fn from_members<A: MapAccess<'de>>(members: A) -> Result<Self, A::Error> {
        T::deserialize(MapAccessDeserializer::new(members)).map(Object)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        from_object(deserializer)
    }
}

/// A list of objects (an edge's `data`).
pub struct ListOf<T>(pub Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ListOf<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<Object<T>>::deserialize(deserializer)?;
        Ok(ListOf(items.into_iter().map(|Object(item)| item).collect()))
    }
}

/// A value passed through as Graph sent it (raw JSON text), refused when it nests deeper than
/// [`MAX_RAW_DEPTH`].
///
/// Why the bound lives here: serde_json passes raw JSON through without counting its depth, and
/// every other part of an answer is read into a type whose own shape bounds it. So this is the
/// one place an answer nested 100,000 levels deep could reach a record that Python's `json`,
/// serde_json's own reader (128 levels) and most warehouses cannot load.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Raw(pub Box<RawValue>);

/// How deep a passed-through value may nest: records hold it a few levels down, and stay within
/// [`airbyte_messages::depth::MAX_DEPTH`], which the host enforces on every record.
pub const MAX_RAW_DEPTH: usize = airbyte_messages::depth::MAX_DEPTH - 4;

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        let nested = matches!(raw.get().as_bytes().first(), Some(b'{' | b'['));
        if nested && airbyte_messages::depth::nests_deeper_than(raw.get().as_bytes(), MAX_RAW_DEPTH) {
            return Err(de::Error::custom(format!(
                "nests more than {MAX_RAW_DEPTH} levels deep (Graph's answers nest about ten)"
            )));
        }
        Ok(Raw(raw))
    }
}

/// The longest id accepted. Graph's object ids are decimal numbers of about 20 digits, and an
/// insights metric's id is a path of a few of them (`{media}/insights/{metric}/{period}`, about
/// 70); an id goes into the path of the next request, so an absurd one is the answer's fault,
/// refused where it is read.
pub const MAX_ID_LENGTH: usize = 200;

/// An object's `id` as Graph sent it (passed through as it came): a number, or a non-empty
/// string of at most [`MAX_ID_LENGTH`] letters, digits, `_`, `-` and `/` (metrics' ids are
/// paths), so that an id can never add a query or a `..` to the path it goes into.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct Id(Box<RawValue>);

impl Id {
    /// The id as text (a number's digits).
    pub fn text(&self) -> String {
        serde_json::from_str::<String>(self.0.get()).unwrap_or_else(|_| self.0.get().to_owned())
    }

    /// Checks a raw `id`; `Err` is the fault, worded about the object it belongs to.
    pub fn check(raw: Box<RawValue>) -> Result<Id, String> {
        let text = raw.get();
        let fault = match text.as_bytes().first() {
            Some(b'"') => match serde_json::from_str::<Cow<'_, str>>(text) {
                Ok(id) if id.is_empty() => Some("that is an empty string".to_owned()),
                Ok(id) if id.len() > MAX_ID_LENGTH => {
                    Some(format!("of {} characters (Graph's have at most about 70)", id.len()))
                }
                Ok(id) if id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-/".contains(&b)) => None,
                _ => Some("with characters no Graph id has".to_owned()),
            },
            Some(b'-' | b'0'..=b'9') => None,
            Some(b'n') => Some("that is null".to_owned()),
            Some(b't' | b'f') => Some("that is a boolean".to_owned()),
            Some(b'[') => Some("that is a list".to_owned()),
            _ => Some("that is an object".to_owned()),
        };
        match fault {
            None => Ok(Id(raw)),
            Some(fault) => Err(format!("has an `id` {fault}")),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Id::check(Box::<RawValue>::deserialize(deserializer)?).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Page = crate::graph::Edge<crate::record::Node>;

    fn refusal(body: serde_json::Value) -> String {
        match read::<Page>(body.to_string().as_bytes()) {
            Err(what) => what,
            Ok(_) => panic!("{body} was read"),
        }
    }

    /// The words of every refusal, as the corpus of broken answers pins them.
    #[test]
    fn broken_answers_are_named_by_the_part_that_failed() {
        for (body, expected) in [
            (json!({}), "the body has no `data` list"),
            (json!({"data": null}), "`data` is null instead of a list"),
            (json!({"data": {"id": "1"}}), "`data` is an object instead of a list"),
            (json!([1, 2, 3]), "the body is a list instead of a JSON object"),
            (json!("hello"), "the body is a string instead of a JSON object"),
            (json!(42), "the body is a number instead of a JSON object"),
            (json!(null), "the body is null instead of a JSON object"),
            (json!({"data": [{"id": null}]}), "`data[0]` has an `id` that is null"),
            (json!({"data": [{"id": "1"}, {"id": {}}]}), "`data[1]` has an `id` that is an object"),
            (json!({"data": [{"id": ""}]}), "`data[0]` has an `id` that is an empty string"),
            (json!({"data": [{"id": "1?x=2"}]}), "`data[0]` has an `id` with characters no Graph id has"),
            (json!({"data": [7]}), "`data[0]` is a number instead of an object"),
            (json!({"data": [{}]}), "`data[0]` has no `id`"),
        ] {
            assert_eq!(refusal(body.clone()), expected, "{body}");
        }
        for not_json in ["", "not json", "<html>oops</html>", "{\"data\":[]} trailing", "{\"data\":["] {
            assert!(matches!(read::<Page>(not_json.as_bytes()), Err(what) if what == NOT_JSON), "{not_json}");
        }
    }

    #[test]
    fn a_graph_error_is_an_answer_of_its_own_whatever_else_the_body_holds() {
        for body in [
            json!({"error": {"code": 4, "message": "(#4) limit", "error_subcode": "x"}}),
            json!({"data": [], "error": {"code": 4, "message": "(#4) limit"}}),
            json!({"error": {"code": 4}, "data": [{"id": null}]}),
        ] {
            match read::<Page>(body.to_string().as_bytes()) {
                Ok(Answered::Error(error)) => assert_eq!(error.code, Some(4), "{body}"),
                _ => panic!("{body} is a Graph error"),
            }
        }
        assert!(matches!(read::<Page>(br#"{"data": [{"id": 7}]}"#), Ok(Answered::Value(_))));
        assert_eq!(error_body(b"<html>"), ErrorBody::NotJson);
        assert_eq!(error_body(b"{\"x\": 1}"), ErrorBody::OtherJson);
        let error = error_body(br#"{"error": {"code": "190", "message": 5, "is_transient": true}}"#);
        let expected = GraphError { is_transient: true, ..GraphError::default() };
        assert_eq!(error, ErrorBody::Graph(expected));
    }
}
