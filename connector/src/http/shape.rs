//! What a successful Graph answer must look like before any stream sees it.
//!
//! Why at the request layer: a broken 200 (`{}`, `{"data": null}`, `[1,2,3]`, a record whose
//! `id` is null) would otherwise read as "no records" and end a sync with exit 0. Every answer is
//! checked here once, against the shape its caller asked for, and a mismatch is a
//! `system_error` naming the endpoint and what was wrong (never the body, which may echo a token).

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

fn check_id(id: Option<&Value>, what: &str) -> Result<(), String> {
    match id {
        Some(Value::String(id)) if !id.is_empty() => Ok(()),
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
