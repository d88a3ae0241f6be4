//! The sandbox's deterministic account model: what the Graph API "knows".
//!
//! Everything derives from a seed through a small PRNG, so a test can rebuild the same model and
//! compute the records it expects without asking the server.

use serde_json::{Value, json};

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
}

/// Shape of a generated model.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    pub seed: u64,
    /// Pages with an Instagram business account.
    pub accounts: usize,
    /// Extra pages without one (the connector must drop them).
    pub pages_without_instagram: usize,
}

impl Default for ModelSpec {
    fn default() -> Self {
        ModelSpec { seed: 42, accounts: 3, pages_without_instagram: 2 }
    }
}

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
                generate_user(&mut rng, with_instagram)
            });
            pages.push(Page { id: page_id, instagram });
        }
        Model { pages }
    }

    /// A model whose pages are given (e.g. the reference's `/me/accounts` sample); Instagram
    /// users are generated for the linked ones.
    pub fn from_pages(seed: u64, pages: &[(String, Option<String>)]) -> Model {
        let mut rng = Rng::new(seed);
        let pages = pages
            .iter()
            .enumerate()
            .map(|(index, (page_id, ig_id))| Page {
                id: page_id.clone(),
                instagram: ig_id
                    .as_ref()
                    .map(|ig_id| IgUser { id: ig_id.clone(), ..generate_user(&mut rng, index + 1) }),
            })
            .collect();
        Model { pages }
    }

    pub fn users(&self) -> impl Iterator<Item = (&Page, &IgUser)> {
        self.pages.iter().filter_map(|page| page.instagram.as_ref().map(|user| (page, user)))
    }

    pub fn user(&self, id: &str) -> Option<&IgUser> {
        self.users().map(|(_, user)| user).find(|user| user.id == id)
    }
}

fn generate_user(rng: &mut Rng, ordinal: usize) -> IgUser {
    let id = rng.id("178414", 17);
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
