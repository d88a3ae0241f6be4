//! Request handling with the Graph API's semantics: auth, field selection, cursor paging and
//! error bodies shaped like Meta's.

use crate::SandboxOptions;
use crate::comments;
use crate::insights;
use crate::model::{Model, Node};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// A response: HTTP status, JSON body, extra headers.
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn ok(body: Value) -> Reply {
        Reply { status: 200, body, headers: Vec::new() }
    }
}

/// Meta's error body.
pub fn graph_error(status: u16, code: i64, subcode: Option<i64>, message: &str) -> Reply {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "ASandboxTraceId000000",
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = json!(subcode);
    }
    Reply { status, body: json!({ "error": error }), headers: Vec::new() }
}

pub fn invalid_token() -> Reply {
    graph_error(400, 190, None, "Invalid OAuth access token - Cannot parse access token")
}

pub fn unknown_object(id: &str) -> Reply {
    graph_error(
        400,
        100,
        Some(33),
        &format!(
            "Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
        ),
    )
}

/// What the server knows about one incoming request.
pub struct Incoming<'a> {
    pub path: &'a str,
    pub query: HashMap<String, String>,
    pub bearer: Option<&'a str>,
    /// `http://127.0.0.1:PORT`, for `paging.next`.
    pub origin: &'a str,
    /// The sandbox's clock.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The token presented is a valid Instagram Login token (graph.instagram.com's kind).
    pub instagram_login: bool,
}

/// A request path's Graph API version and what follows it: like Graph, the sandbox serves every
/// version under `/vMAJOR.MINOR/`.
pub fn split_version(path: &str) -> Option<(&str, &str)> {
    let (version, rest) = path.strip_prefix('/')?.split_once('/')?;
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then_some((version, rest))
}

pub fn handle(options: &SandboxOptions, request: &Incoming<'_>) -> Reply {
    let mut reply = route(options, request);
    if options.echo_token
        && reply.status >= 400
        && let Some(error) = reply.body.get_mut("error")
    {
        // As some Graph errors do: the request quoted, its token percent-encoded (`|` → `%7C`).
        let token = request.bearer.or(request.query.get("access_token").map(String::as_str)).unwrap_or("");
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("access_token", token).finish();
        let message = error["message"].as_str().unwrap_or("").to_owned();
        error["message"] = json!(format!("{message} (request: {}{}?{query})", request.origin, request.path));
    }
    reply
}

fn route(options: &SandboxOptions, request: &Incoming<'_>) -> Reply {
    let model = &options.model;
    let Some((_, rest)) = split_version(request.path) else {
        return graph_error(400, 2500, None, "Unknown path components");
    };
    let presented = request.bearer.or(request.query.get("access_token").map(String::as_str));
    if rest == "debug_token" {
        return debug_token(options, request, presented);
    }
    if !request.instagram_login && presented != Some(options.token.as_str()) {
        return invalid_token();
    }
    let fields = request.query.get("fields").map(|f| parse_fields(f));
    let fields = fields.as_deref();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let page_size = options.max_page_size;
    match segments.as_slice() {
        // Instagram Login: `/me` is the token's Instagram account; there are no Pages, and
        // graph.facebook.com cannot read an Instagram token.
        ["me"] if request.instagram_login && options.instagram_basic_denied => {
            graph_error(400, 10, None, "(#10) Application does not have permission for this action")
        }
        ["me"] if request.instagram_login => match model.users().next() {
            Some((_, user)) => reply(Ok(json!({"user_id": user.id, "username": user.username, "id": user.id}))),
            None => unknown_object("me"),
        },
        ["me", "accounts"] if request.instagram_login => invalid_token(),
        // A Facebook token's `/me` is a Facebook user.
        ["me"] => reply(Ok(json!({"id": "100000000000001", "name": "Sandbox User"}))),
        ["me", "accounts"] if options.pages_denied => {
            graph_error(400, 100, None, "(#100) Tried accessing nonexisting field (accounts) on node type (User)")
        }
        ["me", "accounts"] => accounts(model, fields, request, page_size),
        [id] => match model.node(id) {
            Some(Node::User(user)) => reply(select_fields(&user.node(), fields, "IGUser")),
            Some(Node::Media(user, media) | Node::Story(user, media)) => {
                reply(select_fields(&media.node(user), fields, "IGMedia"))
            }
            Some(Node::Child(_, child)) if child.deleted => unknown_object(id),
            Some(Node::Child(user, child)) => reply(select_fields(&child.node(user), fields, "IGMedia")),
            None => match comments::parse_id(id).and_then(|(media, _)| model.node(media)) {
                Some(Node::Media(_, media)) => comments::by_id(media, id, request),
                _ => unknown_object(id),
            },
        },
        [id, "media"] => match model.user(id) {
            Some(user) => media_edge(user, fields, request, page_size, options.expansion_fails),
            None => unknown_object(id),
        },
        [id, "stories"] => match model.user(id) {
            Some(user) => edge(user.stories.iter().map(|m| m.node(user)), fields, request, page_size),
            None => unknown_object(id),
        },
        [_, "comments" | "replies"] if options.comments_denied => comments::no_permission(),
        [id, "comments"] => match model.node(id) {
            Some(Node::Media(_, media)) => comments::media_edge(media, request, page_size, options.sparse_comments),
            _ => unknown_object(id),
        },
        [id, "replies"] => match comments::parse_id(id).and_then(|(media, index)| Some((model.node(media)?, index))) {
            Some((Node::Media(_, media), index)) => {
                comments::replies_edge(media, index, request, page_size, options.sparse_comments)
            }
            _ => unknown_object(id),
        },
        [id, "insights"] => match model.node(id) {
            Some(Node::User(user)) => insights::account(user, request, options),
            Some(Node::Media(_, media)) => insights::media(media, request, options),
            Some(Node::Story(_, story)) => insights::story(story, request, options),
            Some(Node::Child(..)) => {
                graph_error(400, 10, None, "(#10) Insights are not available for media inside an album")
            }
            None => unknown_object(id),
        },
        _ => graph_error(400, 2500, None, "Unknown path components"),
    }
}

/// `/debug_token?input_token=…`, which Graph answers only to an app token (`app_id|app_secret`):
/// the user token's validity and expiry.
fn debug_token(options: &SandboxOptions, request: &Incoming<'_>, presented: Option<&str>) -> Reply {
    if !presented.is_some_and(|token| token.contains('|')) {
        return graph_error(
            400,
            100,
            None,
            "(#100) You must provide an app access token, or a user access token that is an owner or developer of the app",
        );
    }
    let valid = request.query.get("input_token") == Some(&options.token);
    let expires_at = (request.now + options.token_expires_in).timestamp();
    reply(Ok(json!({"data": {"type": "USER", "is_valid": valid, "expires_at": if valid { expires_at } else { 0 }}})))
}

/// The media edge, with `children{…}` field expansion as Graph does it: the slides' own fields
/// inline, slides that no longer exist left out.
fn media_edge(
    user: &crate::model::IgUser,
    fields: Option<&[String]>,
    request: &Incoming<'_>,
    page_size: usize,
    expansion_fails: bool,
) -> Reply {
    let expansion = fields.and_then(|f| f.iter().find_map(|f| f.strip_prefix("children{")?.strip_suffix('}')));
    let Some(subfields) = expansion else {
        return paginate_with(user.media.len(), request, page_size, |i| {
            select_fields(&user.media[i].node(user), fields, "IGMedia")
        });
    };
    if expansion_fails {
        return graph_error(400, 100, None, "(#100) Field expansion of children is not supported on this node");
    }
    let subfields = parse_fields(subfields);
    let plain: Vec<String> = fields
        .unwrap_or(&[])
        .iter()
        .map(|f| if f.starts_with("children{") { "children".to_owned() } else { f.clone() })
        .collect();
    // Only the requested page is built: an edge of 20,000 media is paged in linear time.
    paginate_with(user.media.len(), request, page_size, |i| {
        let media = &user.media[i];
        let mut node = media.node(user);
        if !media.children.is_empty() {
            let mut slides = Vec::new();
            for child in media.children.iter().filter(|c| !c.deleted) {
                slides.push(select_fields(&child.node(user), Some(&subfields), "IGMedia")?);
            }
            node["children"] = json!({ "data": slides });
        }
        select_fields(&node, Some(&plain), "IGMedia")
    })
}

fn reply(selected: Result<Value, Reply>) -> Reply {
    selected.map_or_else(|error| error, Reply::ok)
}

fn edge(
    nodes: impl Iterator<Item = Value>,
    fields: Option<&[String]>,
    request: &Incoming<'_>,
    page_size: usize,
) -> Reply {
    let mut items = Vec::new();
    for node in nodes {
        match select_fields(&node, fields, "IGMedia") {
            Ok(selected) => items.push(selected),
            Err(error) => return error,
        }
    }
    paginate(items, request, page_size)
}

/// `a,b{c,d},e` → `["a", "b{c,d}", "e"]` (commas inside braces do not split).
pub fn parse_fields(fields: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut current = String::new();
    for c in fields.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out.into_iter().map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()).collect()
}

const OPTIONAL_FIELDS: [&str; 4] = ["thumbnail_url", "children", "caption", "media_url"];

/// The node restricted to `fields` (plus `id`, which Graph always returns); an unknown field is
/// the error Graph gives.
fn select_fields(node: &Value, fields: Option<&[String]>, node_type: &str) -> Result<Value, Reply> {
    let Some(fields) = fields else {
        let mut default = Map::new();
        default.insert("id".into(), node["id"].clone());
        return Ok(Value::Object(default));
    };
    let mut out = Map::new();
    if let Some(id) = node.get("id") {
        out.insert("id".into(), id.clone());
    }
    for field in fields {
        match node.get(field.as_str()) {
            Some(value) => {
                out.insert(field.clone(), value.clone());
            }
            // Graph omits fields a node does not have (thumbnail_url on images, children on posts).
            None if OPTIONAL_FIELDS.contains(&field.as_str()) => {}
            None => {
                return Err(graph_error(
                    400,
                    100,
                    None,
                    &format!("(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"),
                ));
            }
        }
    }
    Ok(Value::Object(out))
}

fn accounts(model: &Model, fields: Option<&[String]>, request: &Incoming<'_>, max_page_size: usize) -> Reply {
    let mut items = Vec::with_capacity(model.pages.len());
    for page in &model.pages {
        let mut node = json!({"id": page.id, "name": format!("Sandbox Page {}", page.id)});
        if let Some(user) = &page.instagram {
            node["instagram_business_account"] = json!({"id": user.id});
        }
        // Graph omits an unset field rather than sending null.
        let wanted: Vec<String> = fields
            .unwrap_or(&[])
            .iter()
            .filter(|f| f.as_str() != "instagram_business_account" || page.instagram.is_some())
            .cloned()
            .collect();
        if let Some(unknown) =
            fields.unwrap_or(&[]).iter().find(|f| !matches!(f.as_str(), "id" | "name" | "instagram_business_account"))
        {
            return graph_error(
                400,
                100,
                None,
                &format!("(#100) Tried accessing nonexisting field ({unknown}) on node type (Page)"),
            );
        }
        match select_fields(&node, Some(&wanted), "Page") {
            Ok(selected) => items.push(selected),
            Err(reply) => return reply,
        }
    }
    paginate(items, request, max_page_size)
}

const DEFAULT_LIMIT: usize = 25;

fn encode_cursor(position: usize) -> String {
    format!("QVFIU{position:08x}")
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    usize::from_str_radix(cursor.strip_prefix("QVFIU")?, 16).ok()
}

/// Rewrites a media page's `after` cursor so the pages cycle (see [`crate::CursorCycle`]).
pub fn break_cursor(reply: &mut Reply, after: Option<&str>, cycle: crate::CursorCycle) {
    let position = after.and_then(decode_cursor);
    let target = match (cycle, position) {
        (crate::CursorCycle::BackToBack, Some(100)) => 100,
        (crate::CursorCycle::Loop, Some(200)) => 100,
        _ => return,
    };
    if let Some(cursors) = reply.body.pointer_mut("/paging/cursors") {
        cursors["after"] = json!(encode_cursor(target));
    }
    if reply.body.pointer("/paging/next").is_none()
        && let Some(paging) = reply.body.get_mut("paging")
    {
        paging["next"] = json!("more");
    }
}

/// Cursor paging as Graph does it: `cursors.before/after` on every non-empty page, `next` only
/// when more data follows, `previous` when some precedes.
pub fn paginate(items: Vec<Value>, request: &Incoming<'_>, max_page_size: usize) -> Reply {
    paginate_with(items.len(), request, max_page_size, |i| Ok(items[i].clone()))
}

/// [`paginate`] over `total` items of which only the requested page is built, by `item(index)`.
pub fn paginate_with(
    total: usize,
    request: &Incoming<'_>,
    max_page_size: usize,
    mut item: impl FnMut(usize) -> Result<Value, Reply>,
) -> Reply {
    let limit = request
        .query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, max_page_size.max(1));
    let start = match request.query.get("after") {
        None => 0,
        Some(cursor) => match decode_cursor(cursor) {
            Some(position) => position,
            None => {
                return graph_error(400, 100, None, "(#100) The after parameter is not a valid cursor");
            }
        },
    };
    let end = (start + limit).min(total);
    let mut data = Vec::with_capacity(end.saturating_sub(start));
    for index in start..end {
        match item(index) {
            Ok(value) => data.push(value),
            Err(error) => return error,
        }
    }
    if data.is_empty() {
        return Reply::ok(json!({"data": []}));
    }
    let mut paging = json!({"cursors": {"before": encode_cursor(start), "after": encode_cursor(end)}});
    if end < total {
        paging["next"] = json!(page_url(request, "after", &encode_cursor(end), limit));
    }
    if start > 0 {
        paging["previous"] = json!(page_url(request, "before", &encode_cursor(start), limit));
    }
    Reply::ok(json!({"data": data, "paging": paging}))
}

fn page_url(request: &Incoming<'_>, key: &str, cursor: &str, limit: usize) -> String {
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "after" | "before" | "limit" | "access_token"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    query.sort();
    // Graph's paging links carry the token that was presented, form-encoded (`|` → `%7C`).
    if let Some(token) = request.bearer.or(request.query.get("access_token").map(String::as_str)) {
        query.push(("access_token".into(), token.into()));
    }
    query.push(("limit".into(), limit.to_string()));
    query.push((key.into(), cursor.into()));
    let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(query).finish();
    format!("{}{}?{}", request.origin, request.path, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_fields_do_not_split() {
        assert_eq!(parse_fields("id,children{id,media_url},name"), vec!["id", "children{id,media_url}", "name"]);
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(250)), Some(250));
        assert_eq!(decode_cursor("garbage"), None);
    }
}
