//! What a successful Graph answer must look like before any stream sees it.
//!
//! Why at the request layer: a broken 200 (`{}`, `{"data": null}`, `[1,2,3]`, a record whose
//! `id` is null) would otherwise read as "no records" and end a sync with exit 0. Every answer is
//! checked here once, against the shape its caller asked for, and a mismatch is a
//! `system_error` naming the endpoint and what was wrong (never the body, which may echo a token).
//!
//! Most answers are read into typed structs straight from the body ([`Answer`]): building and
//! freeing `Value` trees (a map, a hash and a key string per field) was about 40 % of a sync's
//! CPU. Only an answer the typed parse refuses is taken apart as a `Value`, so a broken answer
//! gets the same precise message either way.

use serde::de::{self, Deserialize, DeserializeOwned, Deserializer, IgnoredAny};
use serde_json::Value;

/// The shape a caller expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A page of an edge (`/me/accounts`, `/{ig-user}/media`): `data` is a list of objects, each
    /// with an `id`.
    Records,
    /// An insights answer: `data` is a list of objects (whose `id`, where present, is valid).
    Metrics,
    /// One object (`/{ig-user}`, `/{media}`) with an `id`.
    Node,
    /// Any JSON value (the Batch API envelope, which its caller takes apart).
    Any,
}

impl Shape {
    /// `Err` says what is wrong, in words fit for a user.
    pub fn check(self, body: &Value) -> Result<(), String> {
        if self == Shape::Any {
            return Ok(());
        }
        let Value::Object(object) = body else {
            return Err(format!("the body is {} instead of a JSON object", kind(body)));
        };
        if self == Shape::Node {
            return check_id(object.get("id"), "the object");
        }
        let items = match object.get("data") {
            Some(Value::Array(items)) => items,
            None => return Err("the body has no `data` list".to_owned()),
            Some(other) => return Err(format!("`data` is {} instead of a list", kind(other))),
        };
        for (index, item) in items.iter().enumerate() {
            let Value::Object(item) = item else {
                return Err(format!("`data[{index}]` is {} instead of an object", kind(item)));
            };
            if self == Shape::Records || item.contains_key("id") {
                check_id(item.get("id"), &format!("`data[{index}]`"))?;
            }
        }
        Ok(())
    }
}

/// What a caller takes from a successful answer.
pub trait Answer: Sized {
    /// The typed fast path; `None` sends the body down the checked `Value` path.
    fn parse(body: &[u8]) -> Option<Self>;
    /// From a body that passed its [`Shape`] check; `Err` says what is still wrong.
    fn from_checked(body: Value) -> Result<Self, String>;
}

impl Answer for Value {
    fn parse(_: &[u8]) -> Option<Self> {
        None
    }

    fn from_checked(body: Value) -> Result<Self, String> {
        Ok(body)
    }
}

/// A typed answer, read straight from the body.
pub trait Typed: DeserializeOwned {
    /// The typed read of a body (see [`object_from_slice`] for answers that are objects).
    fn read(body: &[u8]) -> Option<Self>;

    /// `false` sends the answer down the `Value` path: a Graph error (`{"error": …}` with a 2xx
    /// status) to be classified, or a part the types could not check to be named.
    fn fits(&self) -> bool;

    /// From any JSON that passed the shape check (the default: the same typed read).
    fn from_value(body: Value) -> Result<Self, String> {
        // The message never repeats serde's, which quotes the value.
        Self::deserialize(body).map_err(|_| "a field has a type Graph does not document".to_owned())
    }
}

impl<T: Typed> Answer for T {
    fn parse(body: &[u8]) -> Option<Self> {
        T::read(body).filter(T::fits)
    }

    fn from_checked(body: Value) -> Result<Self, String> {
        T::from_value(body)
    }
}

/// `true` when a field is in the object at all (`null` included), for `#[serde(default)]` fields.
pub fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(deserializer).map(|_| true)
}

/// A struct read only from a JSON object. serde would also read a struct from a list, which the
/// `Value` path treats as "not an object": typed parts must never accept what it refuses.
pub struct Object<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned> de::Visitor<'de> for Visit<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Visit(std::marker::PhantomData)).map(Object)
    }
}

/// For `#[serde(default, deserialize_with = "optional_object")]` fields: an [`Object`], or `null`
/// for none (as the `Value` path reads a `null` where an object may be).
pub fn optional_object<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Option<T>, D::Error> {
    Option::<Object<T>>::deserialize(deserializer).map(|object| object.map(|Object(inner)| inner))
}

/// A list whose items must be JSON objects.
pub fn list_of_objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(deserializer: D) -> Result<Vec<T>, D::Error> {
    Vec::<Object<T>>::deserialize(deserializer).map(|items| items.into_iter().map(|Object(item)| item).collect())
}

/// A whole body that must be one JSON object.
pub fn object_from_slice<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_json::from_slice::<Object<T>>(body).ok().map(|Object(inner)| inner)
}

/// The longest id accepted. Graph's object ids are decimal numbers of about 20 digits, and an
/// insights metric's id is a path of a few of them (`{media}/insights/{metric}/{period}`, about
/// 70); an id goes into the path of the next request, so an absurd one is the answer's fault,
/// refused where it is read.
pub const MAX_ID_LENGTH: usize = 200;

/// A record's `id` as Graph sent it: a number, or a non-empty string of at most
/// [`MAX_ID_LENGTH`] letters, digits, `_`, `-` and `/` (insights metrics' ids are paths), so that
/// an id can never add a query or a `..` to the path it goes into (the check of [`Shape`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Id(pub Value);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = Value::deserialize(deserializer)?;
        match check_id(Some(&id), "a record") {
            Ok(()) => Ok(Id(id)),
            Err(what) => Err(de::Error::custom(what)),
        }
    }
}

/// For an `id` that is only checked, not kept: `#[serde(default, rename = "id", deserialize_with
/// = "checked_id")] _id: ()`.
pub fn checked_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    Id::deserialize(deserializer).map(drop)
}

impl Id {
    /// The id as a string (a numeric id in decimal).
    pub fn text(&self) -> String {
        match &self.0 {
            Value::String(id) => id.clone(),
            other => other.to_string(),
        }
    }
}

/// Whether `id` passes the check of [`Shape::Records`].
pub fn valid_id(id: Option<&Value>) -> bool {
    check_id(id, "").is_ok()
}

fn check_id(id: Option<&Value>, what: &str) -> Result<(), String> {
    match id {
        Some(Value::String(id)) if id.len() > MAX_ID_LENGTH => {
            Err(format!("{what} has an `id` of {} characters (Graph's have at most about 70)", id.len()))
        }
        Some(Value::String(id))
            if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-/".contains(&b)) =>
        {
            Ok(())
        }
        Some(Value::String(id)) if !id.is_empty() => Err(format!("{what} has an `id` with characters no Graph id has")),
        Some(Value::Number(_)) => Ok(()),
        None => Err(format!("{what} has no `id`")),
        Some(other) => Err(format!("{what} has an `id` that is {}", kind(other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn broken_answers_are_named_and_good_ones_pass() {
        for (shape, body, needle) in [
            (Shape::Records, json!({}), "no `data` list"),
            (Shape::Records, json!({"data": null}), "`data` is null"),
            (Shape::Records, json!({"data": {"id": "1"}}), "`data` is an object"),
            (Shape::Records, json!([1, 2, 3]), "a list instead of a JSON object"),
            (Shape::Records, json!("hello"), "a string instead"),
            (Shape::Records, json!({"data": [{"id": null}]}), "`data[0]` has an `id` that is null"),
            (Shape::Records, json!({"data": [{"id": "1"}, {"id": {}}]}), "`data[1]` has an `id` that is an object"),
            (Shape::Records, json!({"data": [{"id": ""}]}), "an empty string"),
            (Shape::Records, json!({"data": [7]}), "`data[0]` is a number"),
            (Shape::Metrics, json!({"data": "x"}), "`data` is a string"),
            (Shape::Metrics, json!({"data": [{"name": "reach", "id": null}]}), "`data[0]` has an `id` that is null"),
            (Shape::Node, json!({"name": "x"}), "the object has no `id`"),
        ] {
            let error = shape.check(&body).expect_err(&body.to_string());
            assert!(error.contains(needle), "{body}: {error}");
        }
        assert!(Shape::Records.check(&json!({"data": [], "paging": {}})).is_ok());
        assert!(Shape::Records.check(&json!({"data": [{"id": 17}]})).is_ok());
        assert!(Shape::Metrics.check(&json!({"data": [{"name": "reach"}]})).is_ok());
        assert!(Shape::Node.check(&json!({"id": "1"})).is_ok());
        assert!(Shape::Any.check(&json!([1])).is_ok());
    }
}
