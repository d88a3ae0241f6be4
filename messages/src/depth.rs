//! How deep JSON may nest in what this project reads from Graph and writes out.
//!
//! Why a bound: serde_json passes raw JSON (`RawValue`) through without counting its depth, so a
//! value nested 100,000 levels deep would go out as a record that Python's `json`, serde_json's
//! own default reader (128 levels) and most warehouses cannot load. Graph's answers nest about
//! ten levels; nothing this connector emits comes near [`MAX_DEPTH`].

/// The deepest nesting (objects and arrays) accepted in an answer or a record.
pub const MAX_DEPTH: usize = 64;

/// Whether the JSON text `json` nests deeper than `limit`. Counts brackets outside strings in one
/// pass, without parsing; text that is not JSON is for the parser to refuse.
pub fn nests_deeper_than(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
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
