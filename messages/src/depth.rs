//! How deep JSON may nest in what this project reads from Graph and writes out.
//!
//! Why a bound: serde_json passes raw JSON (`RawValue`) through without counting its depth, so a
//! value nested 100,000 levels deep would go out as a record that Python's `json`, serde_json's
//! own default reader (128 levels) and most warehouses cannot load. Graph's answers nest about
//! ten levels; nothing this connector emits comes near [`MAX_DEPTH`].

/// The deepest nesting (objects and arrays) accepted in an answer or a record.
pub const MAX_DEPTH: usize = 64;

/// Whether the JSON text `json` nests deeper than `limit`. Counts brackets outside strings in one
/// pass, without parsing; text that is not JSON is for the parser to refuse. Strings (most of an
/// answer's bytes: captions, URLs) are skipped with `memchr` to their closing quote.
pub fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    // Each level needs an opening bracket: with no more of them than `limit` (most records), no
    // walk is needed.
    if memchr::memchr2_iter(b'{', b'[', json).nth(limit).is_none() {
        return false;
    }
    let mut depth = 0usize;
    let mut at = 0;
    while at < json.len() {
        match json[at] {
            b'"' => at = string_end(json, at + 1),
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
                at += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                at += 1;
            }
            _ => at += 1,
        }
    }
    false
}

/// Just past the quote that closes the string whose contents start at `at`.
fn string_end(json: &[u8], mut at: usize) -> usize {
    while let Some(found) = memchr::memchr2(b'"', b'\\', &json[at..]) {
        at += found;
        if json[at] == b'"' {
            return at + 1;
        }
        at += 2;
        if at >= json.len() {
            break;
        }
    }
    json.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_brackets_outside_strings_only() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        assert!(!nests_deeper_than(nested(64).as_bytes(), 64));
        assert!(nests_deeper_than(nested(65).as_bytes(), 64));
        assert!(nests_deeper_than(nested(100_000).as_bytes(), 64));
        let in_strings = format!(r#"{{"a":"{}","b":"\"[[[","c":[{{}}]}}"#, "[{".repeat(1000));
        assert!(!nests_deeper_than(in_strings.as_bytes(), 3));
        assert!(nests_deeper_than(in_strings.as_bytes(), 2));
    }
}
