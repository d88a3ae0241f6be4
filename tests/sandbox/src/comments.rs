//! IG Comments: `GET /{media-id}/comments` (top-level comments, with `replies{…}` field
//! expansion) and `GET /{comment-id}/replies`, with Graph's paging and errors.
//!
//! Comments are derived from the media's `comments_count` (which, as on Instagram, counts replies
//! too), so a model that gains comments over simulated days serves them without storing them.

use crate::graph::{Incoming, Reply, graph_error, paginate, parse_fields, unknown_object};
use crate::model::{CommentsBehaviour, Media, graph_epoch, metric_value};
use serde_json::{Map, Value, json};

/// The fields an IG Comment has.
const COMMENT_FIELDS: [&str; 9] =
    ["id", "text", "timestamp", "username", "like_count", "hidden", "from", "parent_id", "media"];
/// Digits a comment id adds to its media's id (the sandbox's way to find a comment's media).
const INDEX_DIGITS: usize = 4;

/// The exact error Graph gives an app without `instagram_manage_comments`.
pub fn no_permission() -> Reply {
    graph_error(400, 10, None, "(#10) Application does not have permission for this action")
}

/// A comment: its node, and for a top-level comment, its replies.
pub struct Comment {
    node: Value,
    replies: Vec<Value>,
}

/// The comments of `media`, oldest first: `comments_count` in all, a third of them replies to the
/// first comments (the special media: one comment holds all replies but one).
pub fn of_media(media: &Media) -> Vec<Comment> {
    // The first day's comments, then the top-level ones added day by day.
    let first_day = (media.comments_count - media.comments_added) as usize;
    let replies =
        if media.comments == CommentsBehaviour::RepliesOfDeletedComment { first_day - 2 } else { first_day / 3 };
    let top = first_day - replies;
    let posted = graph_epoch(&media.timestamp);
    let node = |index: usize, parent: Option<&str>| {
        let id = format!("{}{index:0width$}", media.id, width = INDEX_DIGITS);
        let author = metric_value(&id, "author", 0, 9_999);
        let mut node = json!({
            "id": id,
            "text": format!("Comment {index} on {} 👍", media.shortcode),
            "timestamp": chrono::DateTime::from_timestamp(posted + 1_800 * (index as i64 + 1), 0)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S+0000").to_string()),
            "username": format!("fan_{author}"),
            "like_count": metric_value(&id, "likes", 0, 40),
            "hidden": author.is_multiple_of(17),
            "from": {"id": format!("178414{author:011}"), "username": format!("fan_{author}")},
            "media": {"id": media.id, "media_product_type": media.media_product_type},
        });
        if let Some(parent) = parent {
            node["parent_id"] = json!(parent);
        }
        node
    };
    let mut comments: Vec<Comment> = (0..top).map(|i| Comment { node: node(i, None), replies: Vec::new() }).collect();
    for reply in 0..replies {
        let parent = if media.comments == CommentsBehaviour::RepliesOfDeletedComment { 0 } else { reply % top.max(1) };
        let Some(parent_id) = comments.get(parent).map(|c| c.node["id"].as_str().unwrap_or("").to_owned()) else {
            break;
        };
        let reply_node = node(top + reply, Some(&parent_id));
        comments[parent].replies.push(reply_node);
    }
    let added =
        (0..media.comments_added as usize).map(|i| Comment { node: node(first_day + i, None), replies: Vec::new() });
    comments.extend(added);
    comments
}

impl Comment {
    /// The comment as Graph serves it with every field.
    pub fn node(&self) -> &Value {
        &self.node
    }

    /// Its replies, oldest first.
    pub fn replies(&self) -> &[Value] {
        &self.replies
    }
}

/// Which media a comment id belongs to, and its index.
pub fn parse_id(id: &str) -> Option<(&str, usize)> {
    let split = id.len().checked_sub(INDEX_DIGITS)?;
    Some((&id[..split], id[split..].parse().ok()?))
}

/// `GET /{comment-id}`: a comment or a reply by id.
pub fn by_id(media: &Media, id: &str, request: &Incoming<'_>) -> Reply {
    let comments = of_media(media);
    let mut nodes = comments.iter().flat_map(|c| std::iter::once(&c.node).chain(&c.replies));
    let Some(node) = nodes.find(|node| node["id"] == id) else { return unknown_object(id) };
    let fields = request.query.get("fields").map(|f| parse_fields(f)).unwrap_or_else(|| vec!["id".into()]);
    select(node, &fields).map_or_else(|error| error, Reply::ok)
}

/// How Graph sometimes lists a comment (seen with replies): with its `id` alone, whatever the
/// fields asked. With `sparse`, every third item of a list is.
fn listed(item: Value, position: usize, sparse: bool) -> Value {
    if sparse && position % 3 == 1 { json!({"id": item["id"]}) } else { item }
}

/// `GET /{media-id}/comments`.
pub fn media_edge(media: &Media, request: &Incoming<'_>, page_size: usize, sparse: bool) -> Reply {
    if media.comments == CommentsBehaviour::AgeGated {
        return graph_error(400, 100, Some(33), "(#100) Comments of age-restricted media cannot be read");
    }
    let fields = request.query.get("fields").map(|f| parse_fields(f)).unwrap_or_else(|| vec!["id".into()]);
    let mut expansion: Option<(Vec<String>, usize)> = None;
    let mut plain = Vec::new();
    for field in &fields {
        if let Some(rest) = field.strip_prefix("replies") {
            let (limit, rest) = match rest.strip_prefix(".limit(").and_then(|r| r.split_once(')')) {
                Some((limit, rest)) => (limit.parse().unwrap_or(25), rest),
                None => (25, rest),
            };
            let subfields = rest.strip_prefix('{').and_then(|r| r.strip_suffix('}')).map(parse_fields);
            expansion = Some((subfields.unwrap_or_else(|| vec!["id".into()]), limit.min(page_size)));
        } else {
            plain.push(field.clone());
        }
    }
    let mut items = Vec::new();
    for comment in of_media(media) {
        let mut item = match select(&comment.node, &plain) {
            Ok(item) => item,
            Err(error) => return error,
        };
        if let (Some((subfields, limit)), false) = (&expansion, comment.replies.is_empty()) {
            let mut selected = Vec::new();
            for (position, reply) in comment.replies.iter().enumerate() {
                match select(reply, subfields) {
                    Ok(reply) => selected.push(listed(reply, position, sparse)),
                    Err(error) => return error,
                }
            }
            let mut query = std::collections::HashMap::from([("limit".to_owned(), limit.to_string())]);
            query.insert("fields".into(), subfields.join(","));
            let version = crate::graph::split_version(request.path)
                .map_or(instagram_connector::model::API_VERSION, |(version, _)| version);
            let path = format!("/{version}/{}/replies", comment.node["id"].as_str().unwrap_or(""));
            let sub = Incoming {
                path: &path,
                query,
                bearer: None,
                origin: request.origin,
                now: request.now,
                instagram_login: request.instagram_login,
            };
            item["replies"] = paginate(selected, &sub, *limit).body;
        }
        items.push(item);
    }
    paginate(items, request, page_size)
}

/// `GET /{comment-id}/replies`.
pub fn replies_edge(media: &Media, index: usize, request: &Incoming<'_>, page_size: usize, sparse: bool) -> Reply {
    let comment_id = format!("{}{index:0width$}", media.id, width = INDEX_DIGITS);
    if media.comments == CommentsBehaviour::RepliesOfDeletedComment && index == 0 {
        return unknown_object(&comment_id);
    }
    let Some(comment) = of_media(media).into_iter().nth(index) else { return unknown_object(&comment_id) };
    let fields = request.query.get("fields").map(|f| parse_fields(f)).unwrap_or_else(|| vec!["id".into()]);
    let mut items = Vec::new();
    for (position, reply) in comment.replies.iter().enumerate() {
        match select(reply, &fields) {
            Ok(item) => items.push(listed(item, position, sparse)),
            Err(error) => return error,
        }
    }
    paginate(items, request, page_size)
}

/// The requested fields of a comment node; Graph omits `parent_id` on top-level comments.
fn select(node: &Value, fields: &[String]) -> Result<Value, Reply> {
    let mut out = Map::new();
    out.insert("id".into(), node["id"].clone());
    for field in fields {
        if !COMMENT_FIELDS.contains(&field.as_str()) {
            return Err(graph_error(
                400,
                100,
                None,
                &format!("(#100) Tried accessing nonexisting field ({field}) on node type (IGComment)"),
            ));
        }
        if let Some(value) = node.get(field.as_str()) {
            out.insert(field.clone(), value.clone());
        }
    }
    Ok(Value::Object(out))
}
