//! `comments`: the comments of every media item, and their replies, as records of one stream.
//!
//! Replies are IG Comments too (same fields, same id space, same permission), so they are records
//! of this stream with `parent_id` set, as Fivetran's `MEDIA_COMMENT` table holds both: one table
//! to query, one key, and a reply can never arrive without the stream its parent is in.
//!
//! Cost: only media whose `comments_count` (which counts replies) is above zero are asked, each
//! with one call that brings up to 50 comments and up to 50 replies of each (`replies.limit(50)`
//! field expansion), through the Batch API 50 media per round trip. Longer threads are paged.

use super::{ChildRun, FULL_REFRESH_AND_INCREMENTAL, ReadContext, Reader, Reading, StreamDef, StreamOutput};
use crate::graph::{self, COMMENT_FIELDS, COMMENTS_PAGE_SIZE, Edge};
use crate::http::answer::{Id, Object, Raw};
use crate::http::batch::MAX_BATCH;
use crate::http::error::{ErrorClass, RequestError};
use crate::model::{ObjectRef, Page};
use crate::protocol::{Failure, LogLevel};
use crate::record::{raw_json, rfc3339};
use crate::window;
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};

pub const NAME: &str = "comments";

pub const STREAM: StreamDef = StreamDef {
    cursor: Some("timestamp"),
    sync_modes: FULL_REFRESH_AND_INCREMENTAL,
    windowed: true,
    ..StreamDef::full_refresh(NAME, SCHEMA, &["id"], Reader::Child { parent: super::media::NAME, read: start })
};

/// The record schema `discover` returns.
pub const SCHEMA: &[u8] = crate::packed::packed!("src/streams/schemas/comments.json");

fn start<'a>(run: ChildRun<'a>, out: &'a StreamOutput<'a>) -> Reading<'a> {
    let ChildRun { ctx, pages, window } = run;
    async move {
        match &window {
            Some(window) => consume(ctx, window::filter(pages, window), out).await?,
            None => consume(ctx, pages, out).await?,
        }
        out.checkpoint(&window.map_or_else(crate::model::final_full_refresh_state, |window| window.state()));
        Ok(())
    }
    .boxed_local()
}

/// An IG Comment as Graph sends it: a top-level comment with its first replies expanded, or a
/// reply. The fields a record passes through stay raw JSON; they are the record's first fields.
#[derive(Deserialize, Serialize)]
pub struct Comment {
    id: Id,
    text: Option<Raw>,
    timestamp: Option<Raw>,
    username: Option<Raw>,
    like_count: Option<Raw>,
    hidden: Option<Raw>,
    #[serde(skip_serializing)]
    from: Option<Object<Author>>,
    #[serde(skip_serializing)]
    parent_id: Option<Raw>,
    #[serde(skip_serializing)]
    replies: Option<Edge<Comment>>,
}

#[derive(Deserialize)]
struct Author {
    id: Option<Raw>,
}

impl Comment {
    /// Listed without the fields asked for: Graph sometimes lists a reply with its `id` alone.
    /// Its cursor field is what a record cannot do without.
    fn is_bare(&self) -> bool {
        self.timestamp.as_ref().is_none_or(|t| t.0.get() == "null")
    }
}

/// What reading a chunk's threads gathers: records, and the comments Graph listed bare (with
/// their media and parent), to be fetched whole.
#[derive(Default)]
struct Gathered {
    records: Vec<CommentRecord>,
    bare: Vec<(String, ObjectRef, Option<String>)>,
}

impl Gathered {
    fn add(&mut self, comment: Comment, media: &ObjectRef, parent: Option<&str>) {
        if comment.is_bare() {
            self.bare.push((comment.id.text(), media.clone(), parent.map(str::to_owned)));
        } else {
            self.records.push(transform(comment, media, parent));
        }
    }
}

/// One comment or reply as a record: its own fields, flat, plus where it belongs.
#[derive(Serialize)]
pub struct CommentRecord {
    #[serde(flatten)]
    comment: Comment,
    from_id: Option<Raw>,
    media_id: String,
    business_account_id: String,
    parent_id: Option<String>,
}

/// The record of a comment, or of a reply to `parent_id`.
pub fn transform(mut comment: Comment, media: &ObjectRef, parent_id: Option<&str>) -> CommentRecord {
    let given_parent = comment.parent_id.take().and_then(|Raw(raw)| Id::check(raw).ok()).map(|id| id.text());
    if let Some(Raw(raw)) = &mut comment.timestamp
        && let Some(rfc3339) = serde_json::from_str::<String>(raw.get()).ok().and_then(|t| rfc3339(&t))
    {
        *raw = raw_json(&rfc3339);
    }
    CommentRecord {
        from_id: comment.from.take().and_then(|Object(from)| from.id),
        media_id: media.id.clone(),
        business_account_id: media.account.business_account_id.clone(),
        parent_id: parent_id.map(str::to_owned).or(given_parent),
        comment,
    }
}

/// A token without `instagram_manage_comments` is refused with code 10 or 200: the whole
/// stream fails once, clearly, and the other streams carry on.
fn permission_failure(error: &RequestError) -> Option<Failure> {
    matches!(error.code(), Some(10 | 200)).then(|| {
        Failure::config(format!(
            "comments: the access token lacks the instagram_manage_comments permission ({}). Grant it to the app and generate a new token to sync comments; the other streams are not affected.",
            error.message()
        ))
    })
}

/// What to do with a failed comments request: skip what it was for (age-gated media, a deleted
/// comment: Graph refuses the one object) with a WARN, or fail the stream.
fn skip_or_fail(error: RequestError, what: &str, ctx: &ReadContext<'_>) -> Result<(), Failure> {
    if let Some(failure) = permission_failure(&error) {
        return Err(failure);
    }
    if error.class != ErrorClass::Fatal {
        return Err(error.to_failure());
    }
    ctx.sink.log(LogLevel::Warn, &format!("comments: skipping {what}: {}", error.message()));
    Ok(())
}

/// Reads the comments of each page of media refs as it arrives.
async fn consume(
    ctx: &ReadContext<'_>,
    refs: impl futures::Stream<Item = Page>,
    out: &StreamOutput<'_>,
) -> Result<(), Failure> {
    let pages = refs.map(|page| async move {
        let commented: Vec<ObjectRef> = page?.into_iter().filter(|m| m.comments_count != Some(0)).collect();
        let chunks = commented.chunks(MAX_BATCH).map(|chunk| read_chunk(ctx, chunk));
        let records: Vec<Vec<CommentRecord>> = futures::future::try_join_all(chunks).await?;
        Ok::<_, Failure>(records.into_iter().flatten().collect::<Vec<_>>())
    });
    out.emit_batches(pages, ctx.fan_out()).await
}

fn comments_query() -> Vec<(&'static str, String)> {
    let expanded = format!("{COMMENT_FIELDS},replies.limit({COMMENTS_PAGE_SIZE}){{{COMMENT_FIELDS}}}");
    vec![("fields", expanded), ("limit", COMMENTS_PAGE_SIZE.to_owned())]
}

/// The first page of comments of up to 50 media in one batch, then any further pages, then the
/// comments Graph listed bare, fetched whole.
async fn read_chunk(ctx: &ReadContext<'_>, chunk: &[ObjectRef]) -> Result<Vec<CommentRecord>, Failure> {
    let client = ctx.client;
    let items: Vec<(String, Vec<(&str, String)>)> =
        chunk.iter().map(|media| (format!("/{}/comments", media.id), comments_query())).collect();
    let batch = ctx.config.optimizations.batch_insights;
    let outcomes = graph::get_many::<Edge<Comment>>(client, &items, batch, NAME).await;
    let mut gathered = Gathered::default();
    for (media, outcome) in chunk.iter().zip(outcomes) {
        match outcome {
            Ok(first) => read_thread(ctx, media, first, &mut gathered).await?,
            Err(error) => skip_or_fail(error, &format!("the comments of media {}", media.id), ctx)?,
        }
    }
    fetch_bare(ctx, gathered).await
}

/// Fetches the comments listed bare, one batch for the chunk; one still without a `timestamp`
/// (or gone) is skipped with a WARN: no record goes out without its cursor.
async fn fetch_bare(ctx: &ReadContext<'_>, gathered: Gathered) -> Result<Vec<CommentRecord>, Failure> {
    let Gathered { mut records, bare } = gathered;
    if bare.is_empty() {
        return Ok(records);
    }
    let items: Vec<(String, Vec<(&str, String)>)> =
        bare.iter().map(|(id, _, _)| (format!("/{id}"), vec![("fields", COMMENT_FIELDS.to_owned())])).collect();
    let batch = ctx.config.optimizations.batch_insights;
    let outcomes = graph::get_many::<Object<Comment>>(ctx.client, &items, batch, NAME).await;
    for ((id, media, parent), outcome) in bare.iter().zip(outcomes) {
        let what = format!("comment {id} of media {}", media.id);
        match outcome {
            Ok(Object(comment)) if !comment.is_bare() => records.push(transform(comment, media, parent.as_deref())),
            Ok(_) => ctx.sink.log(
                LogLevel::Warn,
                &format!("comments: skipping {what}: Graph sends it without a timestamp even when asked by id"),
            ),
            Err(error) => skip_or_fail(error, &what, ctx)?,
        }
    }
    Ok(records)
}

/// Every comment of one media from its first page on, each followed by its replies.
async fn read_thread(
    ctx: &ReadContext<'_>,
    media: &ObjectRef,
    first: Edge<Comment>,
    out: &mut Gathered,
) -> Result<(), Failure> {
    let Edge { data, after } = first;
    read_comments(ctx, media, data, out).await?;
    let Some(after) = after else { return Ok(()) };
    let path = format!("/{}/comments", media.id);
    let mut pages = std::pin::pin!(graph::pages(ctx.client, path, comments_query(), Some(after), NAME));
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => read_comments(ctx, media, page, out).await?,
            Err(error) => return skip_or_fail(error, &format!("the rest of the comments of media {}", media.id), ctx),
        }
    }
    Ok(())
}

/// One page of top-level comments, each followed by its replies.
async fn read_comments(
    ctx: &ReadContext<'_>,
    media: &ObjectRef,
    page: Vec<Comment>,
    out: &mut Gathered,
) -> Result<(), Failure> {
    for mut comment in page {
        let (replies, parent) = (comment.replies.take(), comment.id.text());
        out.add(comment, media, None);
        if let Some(replies) = replies {
            read_replies(ctx, media, parent, replies, out).await?;
        }
    }
    Ok(())
}

/// The replies expanded inline, then any further pages of them.
async fn read_replies(
    ctx: &ReadContext<'_>,
    media: &ObjectRef,
    parent: String,
    replies: Edge<Comment>,
    out: &mut Gathered,
) -> Result<(), Failure> {
    let Edge { data, after } = replies;
    data.into_iter().for_each(|reply| out.add(reply, media, Some(&parent)));
    let Some(after) = after else { return Ok(()) };
    let query = vec![("fields", COMMENT_FIELDS.to_owned())];
    let mut pages = std::pin::pin!(graph::pages(ctx.client, format!("/{parent}/replies"), query, Some(after), NAME));
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => page.into_iter().for_each(|reply| out.add(reply, media, Some(&parent))),
            Err(error) => return skip_or_fail(error, &format!("the replies of comment {parent}"), ctx),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Account;
    use serde_json::{Value, json};

    #[test]
    fn a_reply_names_its_parent_and_the_record_is_flat() {
        let account = Account { business_account_id: "b".into(), page_id: None };
        let media = ObjectRef { id: "m".into(), account, comments_count: Some(2), ..ObjectRef::default() };
        let record = |raw: Value, parent: Option<&str>| {
            let raw: Comment = serde_json::from_value(raw).expect("a comment");
            serde_json::to_value(transform(raw, &media, parent)).expect("json")
        };
        let raw = json!({"id": "c2", "text": "hi", "timestamp": "2026-06-01T00:00:00+0000", "username": "u",
                         "like_count": 1, "hidden": false, "from": {"id": "f", "username": "u"}});
        assert_eq!(
            record(raw, Some("c1")),
            json!({"id": "c2", "text": "hi", "timestamp": "2026-06-01T00:00:00+00:00", "username": "u", "like_count": 1,
                   "hidden": false, "from_id": "f", "media_id": "m", "business_account_id": "b", "parent_id": "c1"})
        );
        assert!(record(json!({"id": "c1"}), None)["parent_id"].is_null());
        assert_eq!(record(json!({"id": 7, "parent_id": 6}), None)["parent_id"], "6");
        let deleted_author = record(json!({"id": "c3", "from": null, "replies": null}), None);
        assert!(deleted_author["from_id"].is_null());
        assert!(serde_json::from_value::<Comment>(json!({"id": "c4", "from": 5})).is_err(), "from must be an object");
    }
}
