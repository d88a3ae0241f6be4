//! The sandbox's deterministic account model: what the Graph API "knows".
//!
//! Everything derives from a seed through a small PRNG, so a test can rebuild the same model and
//! compute the records it expects without asking the server.

use serde_json::{Value, json};
use std::collections::HashMap;

/// splitmix64: tiny, deterministic, good enough for fake data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// A decimal id of `digits` digits starting with `prefix`.
    pub fn id(&mut self, prefix: &str, digits: usize) -> String {
        let mut id = prefix.to_owned();
        while id.len() < digits {
            id.push(char::from(b'0' + (self.next_u64() % 10) as u8));
        }
        id
    }
}

/// An Instagram professional account.
#[derive(Clone, Debug)]
pub struct IgUser {
    pub id: String,
    pub ig_id: u64,
    pub username: String,
    pub name: String,
    pub biography: String,
    pub website: String,
    pub followers_count: u64,
    pub follows_count: u64,
    pub media_count: u64,
    /// As Meta serves it, with the `ccb` parameter the connector strips.
    pub profile_picture_url: String,
    /// Newest first.
    pub media: Vec<Media>,
    pub stories: Vec<Media>,
}

impl IgUser {
    /// Every field of the node, in Graph order.
    pub fn node(&self) -> Value {
        json!({
            "id": self.id,
            "biography": self.biography,
            "ig_id": self.ig_id,
            "followers_count": self.followers_count,
            "follows_count": self.follows_count,
            "media_count": self.media_count,
            "name": self.name,
            "profile_picture_url": self.profile_picture_url,
            "username": self.username,
            "website": self.website,
        })
    }
}

/// A Facebook Page managed by the token's user, with or without a linked Instagram account.
#[derive(Clone, Debug)]
pub struct Page {
    pub id: String,
    pub instagram: Option<IgUser>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub pages: Vec<Page>,
    index: HashMap<String, NodeRef>,
}

/// Where an id lives in the model.
#[derive(Clone, Copy, Debug)]
enum NodeRef {
    User(usize),
    Media(usize, usize),
    Child(usize, usize, usize),
    Story(usize, usize),
}

/// A node found by id.
pub enum Node<'a> {
    User(&'a IgUser),
    Media(&'a IgUser, &'a Media),
    Child(&'a IgUser, &'a Child),
    Story(&'a IgUser, &'a Media),
}

/// Shape of a generated model.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub seed: u64,
    /// Pages with an Instagram business account.
    pub accounts: usize,
    /// Extra pages without one (the connector must drop them).
    pub pages_without_instagram: usize,
    pub media_per_account: usize,
    pub stories_per_account: usize,
    /// Seed the special cases: insights errors 2108006, 100/33 and code 10 on the first
    /// account's media, a deleted carousel slide, a story with too few viewers, comments on
    /// age-gated media, and a comment deleted while its replies are read.
    pub special_errors: bool,
    /// Seconds between two posts of an account (plus up to an hour of jitter).
    pub media_interval_secs: i64,
    /// How many simulated days have passed since the model's first day (see [`Model::generate`]).
    pub days_later: u32,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec {
            seed: 42,
            accounts: 3,
            pages_without_instagram: 2,
            media_per_account: 12,
            stories_per_account: 3,
            special_errors: true,
            media_interval_secs: 7_200,
            days_later: 0,
        }
    }
}

/// Posts each account publishes per simulated day.
pub const NEW_MEDIA_PER_DAY: usize = 5;
/// Media younger than this (at the model's "now") still gain likes and comments each day.
pub const ACTIVE_DAYS: i64 = 7;
/// Media younger than this still see their insights move each day.
pub const INSIGHTS_MOVING_DAYS: i64 = 28;

impl Model {
    pub fn generate(spec: &ModelSpec) -> Model {
        let mut rng = Rng::new(spec.seed);
        let total = spec.accounts + spec.pages_without_instagram;
        let mut pages = Vec::with_capacity(total);
        let mut with_instagram = 0;
        for index in 0..total {
            // Spread the pages without Instagram between the others, deterministically.
            let linked =
                with_instagram < spec.accounts && (index % 3 != 1 || total - index <= spec.accounts - with_instagram);
            let page_id = rng.id("1", 15);
            let instagram = linked.then(|| {
                with_instagram += 1;
                let mut user = generate_user(&mut rng, with_instagram, spec);
                days_pass(&mut user, spec, with_instagram - 1);
                user
            });
            pages.push(Page { id: page_id, instagram });
        }
        Model::indexed(pages)
    }

    fn indexed(pages: Vec<Page>) -> Model {
        let mut index = HashMap::new();
        for (p, page) in pages.iter().enumerate() {
            let Some(user) = &page.instagram else { continue };
            index.insert(user.id.clone(), NodeRef::User(p));
            for (m, media) in user.media.iter().enumerate() {
                index.insert(media.id.clone(), NodeRef::Media(p, m));
                for (c, child) in media.children.iter().enumerate() {
                    index.insert(child.id.clone(), NodeRef::Child(p, m, c));
                }
            }
            for (s, story) in user.stories.iter().enumerate() {
                index.insert(story.id.clone(), NodeRef::Story(p, s));
            }
        }
        Model { pages, index }
    }

    /// The node with this id, if any.
    pub fn node(&self, id: &str) -> Option<Node<'_>> {
        let user = |p: usize| self.pages.get(p).and_then(|page| page.instagram.as_ref());
        Some(match *self.index.get(id)? {
            NodeRef::User(p) => Node::User(user(p)?),
            NodeRef::Media(p, m) => {
                let u = user(p)?;
                Node::Media(u, u.media.get(m)?)
            }
            NodeRef::Child(p, m, c) => {
                let u = user(p)?;
                Node::Child(u, u.media.get(m)?.children.get(c)?)
            }
            NodeRef::Story(p, s) => {
                let u = user(p)?;
                Node::Story(u, u.stories.get(s)?)
            }
        })
    }

    /// A model whose pages are given (e.g. the reference's `/me/accounts` sample); Instagram
    /// users are generated for the linked ones.
    pub fn from_pages(spec: &ModelSpec, pages: &[(String, Option<String>)]) -> Model {
        let mut rng = Rng::new(spec.seed);
        let pages = pages
            .iter()
            .enumerate()
            .map(|(index, (page_id, ig_id))| Page {
                id: page_id.clone(),
                instagram: ig_id
                    .as_ref()
                    .map(|ig_id| IgUser { id: ig_id.clone(), ..generate_user(&mut rng, index + 1, spec) }),
            })
            .collect();
        Model::indexed(pages)
    }

    pub fn users(&self) -> impl Iterator<Item = (&Page, &IgUser)> {
        self.pages.iter().filter_map(|page| page.instagram.as_ref().map(|user| (page, user)))
    }

    pub fn user(&self, id: &str) -> Option<&IgUser> {
        match self.node(id)? {
            Node::User(user) => Some(user),
            _ => None,
        }
    }
}

fn generate_user(rng: &mut Rng, ordinal: usize, spec: &ModelSpec) -> IgUser {
    let id = rng.id("178414", 17);
    let media = generate_media(rng, spec, ordinal - 1);
    let stories = generate_stories(rng, spec.stories_per_account, ordinal - 1, spec.special_errors);
    let username = format!("sandbox_brand_{ordinal}");
    IgUser {
        ig_id: rng.range(1_000_000, 99_999_999),
        name: format!("Sandbox Brand {ordinal}"),
        biography: format!("Deterministic test account #{ordinal}. Coffee, cameras & code."),
        website: format!("https://brand{ordinal}.sandbox.test/"),
        followers_count: rng.range(100, 250_000),
        follows_count: rng.range(0, 2_000),
        media_count: rng.range(0, 3_000),
        profile_picture_url: format!(
            "https://scontent.sandbox.test/v/t51.2885-19/{id}_n.jpg?stp=dst-jpg_s206x206&_nc_cat=1&ccb=1-7&_nc_sid=7d201b&oh=00_AY{ordinal}&oe=6F0A"
        ),
        username,
        id,
        media,
        stories,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_model() {
        let spec = ModelSpec::default();
        let a = Model::generate(&spec);
        let b = Model::generate(&spec);
        assert_eq!(format!("{:?}", a.pages), format!("{:?}", b.pages));
        assert_eq!(a.users().count(), 3);
        assert_eq!(a.pages.len(), 5);
        assert!(a.pages[1].instagram.is_none());
    }
}

/// A media object (post, reel, carousel) or story.
#[derive(Clone, Debug)]
pub struct Media {
    pub id: String,
    pub ig_id: String,
    pub media_type: &'static str,
    pub media_product_type: &'static str,
    pub caption: String,
    /// Graph form, `+0000`.
    pub timestamp: String,
    pub like_count: u64,
    pub comments_count: u64,
    pub shortcode: String,
    pub children: Vec<Child>,
    pub insights: InsightsBehaviour,
    pub comments: CommentsBehaviour,
    /// The simulated day whose values the insights show (0 for insights that no longer move).
    pub insights_day: u32,
    /// Top-level comments posted since the first day (part of `comments_count`).
    pub comments_added: u64,
}

/// How the comments edges of a media answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentsBehaviour {
    Normal,
    /// Graph does not serve comments of age-restricted media.
    AgeGated,
    /// The comment with many replies is deleted before its replies are read.
    RepliesOfDeletedComment,
}

/// Unix seconds of a Graph `+0000` timestamp.
pub fn graph_epoch(timestamp: &str) -> i64 {
    chrono::DateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%S%z").map(|t| t.timestamp()).unwrap_or(0)
}

/// Advances one account by `spec.days_later` simulated days: new posts each day (newest first),
/// recent posts gain likes and comments, recent insights move, and one old post gains a comment.
fn days_pass(user: &mut IgUser, spec: &ModelSpec, account_index: usize) {
    if spec.days_later == 0 {
        return;
    }
    let days = i64::from(spec.days_later);
    let now = MEDIA_EPOCH_SECS + days * 86_400;
    let mut rng = Rng::new(spec.seed ^ (0xDA7 + u64::from(spec.days_later)) ^ account_index as u64);
    let fresh_spec = ModelSpec {
        media_per_account: NEW_MEDIA_PER_DAY * spec.days_later as usize,
        special_errors: false,
        media_interval_secs: 86_400 / NEW_MEDIA_PER_DAY as i64,
        ..spec.clone()
    };
    let mut fresh = generate_media(&mut rng, &fresh_spec, account_index);
    for (index, media) in fresh.iter_mut().enumerate() {
        let created = now - 60 - (index as i64) * fresh_spec.media_interval_secs;
        media.timestamp = graph_time(created);
        media.children.iter_mut().for_each(|child| child.timestamp = graph_time(created));
        media.caption = format!("Day {} post {index} of account {account_index} #sandbox", spec.days_later);
    }
    // The oldest post gains a comment every day, far outside any insights window: the value an
    // incremental sync leaves frozen.
    let oldest = user.media.len().saturating_sub(1);
    for (index, media) in user.media.iter_mut().enumerate() {
        let age = now - graph_epoch(&media.timestamp);
        if age < ACTIVE_DAYS * 86_400 {
            media.like_count += 10 * days as u64;
            media.comments_count += days as u64;
            media.comments_added += days as u64;
        }
        if age < INSIGHTS_MOVING_DAYS * 86_400 {
            media.insights_day = spec.days_later;
        }
        if index == oldest {
            media.comments_count += days as u64;
            media.comments_added += days as u64;
        }
    }
    user.media_count += fresh.len() as u64;
    fresh.append(&mut user.media);
    user.media = fresh;
}

/// A carousel slide.
#[derive(Clone, Debug)]
pub struct Child {
    pub id: String,
    pub ig_id: String,
    pub media_type: &'static str,
    pub timestamp: String,
    /// Deleted since the carousel was read: fetching it fails like Graph does.
    pub deleted: bool,
}

/// How the insights edge of a media or story answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsightsBehaviour {
    Normal,
    /// 100 / 2108006: posted before the business conversion.
    PostedBeforeBusiness,
    /// 100 / 33: unsupported or missing permission.
    UnsupportedObject,
    /// 10 with the exact "Application does not have permission" text.
    NoPermission,
    /// 10 "Not enough viewers" (stories with low reach).
    NotEnoughViewers,
}

impl Media {
    /// The full node as Graph serves it (fields filtered later).
    pub fn node(&self, owner: &IgUser) -> Value {
        let mut node = json!({
            "caption": self.caption,
            "comments_count": self.comments_count,
            "id": self.id,
            "ig_id": self.ig_id,
            "is_comment_enabled": true,
            "like_count": self.like_count,
            "media_type": self.media_type,
            "media_product_type": self.media_product_type,
            "media_url": format!("https://scontent.sandbox.test/o1/v/{}.{}?_nc_cat=104&_nc_rid=rid{}&oh=00_A&oe=6F0A", self.id, extension(self.media_type), &self.id[..6]),
            "owner": {"id": owner.id},
            "permalink": format!("https://www.instagram.com/p/{}/", self.shortcode),
            "shortcode": self.shortcode,
            "timestamp": self.timestamp,
            "username": owner.username,
        });
        if self.media_type == "VIDEO" {
            node["thumbnail_url"] =
                json!(format!("https://scontent.sandbox.test/t/{}.jpg?_nc_rid=keep&stp=t", self.id));
        }
        if !self.children.is_empty() {
            node["children"] = json!({"data": self.children.iter().map(|c| json!({"id": c.id})).collect::<Vec<_>>()});
        }
        node
    }
}

impl Child {
    pub fn node(&self, owner: &IgUser) -> Value {
        json!({
            "id": self.id,
            "ig_id": self.ig_id,
            "media_type": self.media_type,
            "media_url": format!("https://scontent.sandbox.test/c/{}.{}?_nc_rid=c{}&_nc_sid=10", self.id, extension(self.media_type), &self.id[..4]),
            "owner": {"id": owner.id},
            "permalink": format!("https://www.instagram.com/p/child{}/", &self.id[..8]),
            "shortcode": format!("C{}", &self.id[..9]),
            "timestamp": self.timestamp,
            "username": owner.username,
        })
    }
}

fn extension(media_type: &str) -> &'static str {
    if media_type == "VIDEO" { "mp4" } else { "jpg" }
}

/// Minutes since the Unix epoch of a fixed "now" for generated media (2026-06-01T00:00Z), so the
/// model never depends on the wall clock.
const MEDIA_EPOCH_SECS: i64 = 1_780_272_000;

fn graph_time(epoch_secs: i64) -> String {
    chrono::DateTime::from_timestamp(epoch_secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S+0000").to_string())
        .unwrap_or_default()
}

/// The media of one account, newest first (Graph's order), with the seeded special cases on the
/// first account when `special_errors` is set.
pub fn generate_media(rng: &mut Rng, spec: &ModelSpec, account_index: usize) -> Vec<Media> {
    let (count, special_errors) = (spec.media_per_account, spec.special_errors);
    let kinds: [(&str, &str); 5] =
        [("IMAGE", "FEED"), ("VIDEO", "REELS"), ("CAROUSEL_ALBUM", "FEED"), ("VIDEO", "FEED"), ("IMAGE", "FEED")];
    (0..count)
        .map(|index| {
            let (media_type, media_product_type) = kinds[rng.range(0, kinds.len() as u64 - 1) as usize];
            let created = MEDIA_EPOCH_SECS - (index as i64) * spec.media_interval_secs - rng.range(0, 3_599) as i64;
            let children = if media_type == "CAROUSEL_ALBUM" {
                (0..rng.range(2, 5))
                    .map(|slide| Child {
                        id: rng.id("179", 17),
                        ig_id: rng.id("3", 19),
                        media_type: if slide % 3 == 2 { "VIDEO" } else { "IMAGE" },
                        timestamp: graph_time(created),
                        deleted: false,
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let insights = match (special_errors && account_index == 0, index) {
                (true, 1) => InsightsBehaviour::PostedBeforeBusiness,
                (true, 2) => InsightsBehaviour::UnsupportedObject,
                (true, 3) => InsightsBehaviour::NoPermission,
                _ => InsightsBehaviour::Normal,
            };
            Media {
                id: rng.id("180", 17),
                ig_id: rng.id("3", 19),
                media_type,
                media_product_type,
                caption: format!("Post {index} of account {account_index} #sandbox"),
                timestamp: graph_time(created),
                like_count: rng.range(0, 5_000),
                // Most posts have no comments; the rest a handful (a third of them replies).
                comments_count: rng.range(0, 300).saturating_sub(180) / 8,
                shortcode: format!("Sb{}", rng.id("", 9)),
                children,
                insights,
                comments: match (special_errors && account_index == 0, index) {
                    (true, 4) => CommentsBehaviour::AgeGated,
                    (true, 5) => CommentsBehaviour::RepliesOfDeletedComment,
                    _ => CommentsBehaviour::Normal,
                },
                insights_day: 0,
                comments_added: 0,
            }
        })
        .map(|mut media| {
            if media.comments == CommentsBehaviour::RepliesOfDeletedComment {
                // One comment with more replies than one expanded page holds.
                media.comments_count = 2 + 60;
            }
            media
        })
        .collect::<Vec<_>>()
        .into_iter()
        .scan(special_errors && account_index == 0, |pending, mut media| {
            // The first carousel of the first account lost a slide since it was posted.
            if *pending
                && media.media_type == "CAROUSEL_ALBUM"
                && let Some(child) = media.children.get_mut(1)
            {
                child.deleted = true;
                *pending = false;
            }
            Some(media)
        })
        .collect()
}

pub fn generate_stories(rng: &mut Rng, count: usize, account_index: usize, special_errors: bool) -> Vec<Media> {
    (0..count)
        .map(|index| {
            let media_type = if index % 2 == 0 { "IMAGE" } else { "VIDEO" };
            Media {
                id: rng.id("181", 17),
                ig_id: rng.id("3", 19),
                media_type,
                media_product_type: "STORY",
                caption: String::new(),
                timestamp: graph_time(MEDIA_EPOCH_SECS - (index as i64) * 3_600),
                like_count: 0,
                comments_count: 0,
                shortcode: format!("St{}", rng.id("", 9)),
                children: Vec::new(),
                comments: CommentsBehaviour::Normal,
                insights_day: 0,
                comments_added: 0,
                insights: if special_errors && account_index == 0 && index == 0 {
                    InsightsBehaviour::NotEnoughViewers
                } else {
                    InsightsBehaviour::Normal
                },
            }
        })
        .collect()
}

/// A deterministic metric value for (object, metric, salt).
pub fn metric_value(object_id: &str, metric: &str, salt: i64, max: u64) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in object_id.bytes().chain(metric.bytes()).chain(salt.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash % (max + 1)
}
