//! The built-in JSON documents (the spec and the stream schemas), stored deflated.
//!
//! Why: every tenant's instance maps the component's constant data, so each kilobyte there costs
//! a kilobyte of memory per tenant running. Only `spec` and `discover` read these documents;
//! `build.rs` checks, minifies and deflates them (26 KB down to 4 KB), and they are inflated when
//! asked for.

use crate::protocol::Failure;

/// The packed form of a JSON document of this crate, by its path from the crate's root.
macro_rules! packed {
    ($path:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/", $path, ".deflate"))
    };
}
pub(crate) use packed;

/// The JSON text of a packed document.
pub fn unpack(packed: &[u8], what: &str) -> Result<String, Failure> {
    miniz_oxide::inflate::decompress_to_vec(packed)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Failure::system(format!("The built-in {what} cannot be unpacked.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_unpack_to_their_source_minified_in_order() {
        let source = include_str!("streams/schemas/media.json");
        let minified = serde_json::from_str::<serde_json::Value>(source).expect("json").to_string();
        assert_eq!(unpack(packed!("src/streams/schemas/media.json"), "schema").expect("unpacked"), minified);
        assert!(unpack(b"not deflate", "schema").is_err());
    }
}
