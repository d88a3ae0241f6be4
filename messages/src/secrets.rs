//! Secrets out of every output, in whatever spelling they come back.
//!
//! Why a plain `replace` is not enough: Graph echoes the token inside URLs (`paging.next`), where
//! an app token `ID|SECRET` reads `ID%7CSECRET`; JSON may escape any character (`\u007c`, `\/`);
//! and answers nest (a Batch API item's body is a JSON string inside JSON, with URLs inside that,
//! so `\\u007c` and `%257C` happen too). [`Redactor`] therefore matches a secret character by
//! character, accepting for each character every spelling of it:
//! * the character itself;
//! * `%XX` per UTF-8 byte, hex in either case, percent-encoded again any number of times
//!   (`%257C`);
//! * `\uXXXX` behind any number of backslashes (surrogate pairs for characters beyond the BMP);
//! * a backslash escape (`\/`, `\\`, `\"`) behind any number of backslashes, for punctuation;
//! * `+` for a space (form encoding);
//! * an HTML character reference (`&#124;`, `&#x7C;`).
//!
//! An app token's secret half (`SECRET` of `ID|SECRET`) is a secret of its own: Graph may echo
//! it alone (`appsecret_proof` is derived from it; some errors quote it).

use std::borrow::Cow;

/// Secrets shorter than this are not redacted: they would mangle ordinary text.
pub const MIN_SECRET_LENGTH: usize = 4;

/// Finds and replaces secrets in every spelling (see the module docs).
#[derive(Clone, Debug)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: Vec<Vec<char>>,
    replacement: String,
    /// How each secret's spellings that start as written begin ([`literal_starts`]): with `%`,
    /// `\` and `&` (where every other spelling starts), the only places a spelling can start.
    /// Each is found with one fast pass, so text without them costs almost nothing.
    prefixes: Vec<memchr::memmem::Finder<'static>>,
    /// Each secret's longest run of letters and digits, when it has one of at least
    /// [`MIN_ANCHOR`] (see [`Redactor::redact_data`]); `None` when some secret has none.
    anchors: Option<Vec<memchr::memmem::Finder<'static>>>,
}

/// The shortest run of letters and digits worth searching for instead of scanning every spelling.
const MIN_ANCHOR: usize = 6;

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new(Vec::new(), "")
    }
}

impl Redactor {
    /// Redacts `secrets` (and the secret half of app tokens) as `replacement`.
    pub fn new(secrets: impl IntoIterator<Item = String>, replacement: &str) -> Redactor {
        let mut all: Vec<String> = Vec::new();
        for secret in secrets {
            if let Some((_, half)) = secret.rsplit_once('|') {
                all.push(half.to_owned());
            }
            all.push(secret);
        }
        all.retain(|s| s.chars().count() >= MIN_SECRET_LENGTH);
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        let mut prefixes: Vec<Vec<u8>> = all.iter().flat_map(|secret| literal_starts(secret)).collect();
        prefixes.sort_unstable();
        prefixes.dedup();
        let prefixes = prefixes.iter().map(|p| memchr::memmem::Finder::new(p).into_owned()).collect();
        let anchors = all
            .iter()
            .map(|secret| {
                let run = secret.split(|c: char| !c.is_ascii_alphanumeric()).max_by_key(|run| run.len()).unwrap_or("");
                (run.len() >= MIN_ANCHOR).then(|| memchr::memmem::Finder::new(run.as_bytes()).into_owned())
            })
            .collect();
        let secrets = all.into_iter().map(|s| s.chars().collect()).collect();
        Redactor { secrets, replacement: replacement.into(), prefixes, anchors }
    }

    /// [`Redactor::redact`] for data on the hot path (every record): each secret's longest run of
    /// letters and digits is looked for first, with one fast pass, and the text is scanned for
    /// every spelling only where one is found. Sound for every spelling any encoder writes:
    /// percent-encoding never encodes letters and digits (RFC 3986's unreserved characters), nor
    /// does JSON escape them, so every spelling of a secret holds that run as written.
    pub fn redact_data<'a>(&self, text: &'a str) -> Cow<'a, str> {
        match &self.anchors {
            Some(anchors) if !anchors.iter().any(|anchor| anchor.find(text.as_bytes()).is_some()) => {
                Cow::Borrowed(text)
            }
            _ => self.redact(text),
        }
    }

    /// Every place a spelling of a secret could start, in order.
    fn candidates(&self, text: &[u8]) -> Vec<usize> {
        let mut at: Vec<usize> = memchr::memchr3_iter(b'%', b'\\', b'&', text).collect();
        at.extend(self.prefixes.iter().flat_map(|prefix| prefix.find_iter(text)));
        at.sort_unstable();
        at
    }

    /// Whether there is anything to redact at all.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every spelling of every secret replaced.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.secrets.is_empty() {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        for at in self.candidates(bytes) {
            if at < copied {
                continue;
            }
            if let Some(end) = self.secrets.iter().find_map(|secret| match_at(bytes, at, secret)) {
                out.push_str(&text[copied..at]);
                out.push_str(&self.replacement);
                copied = end;
            }
        }
        if copied == 0 {
            return Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Whether `text` holds any spelling of any secret.
    pub fn finds_secret_in(&self, text: &str) -> bool {
        matches!(self.redact(text), Cow::Owned(_))
    }
}

/// The end of a spelling of `secret` starting at byte `at`, if there is one. Matches only at
/// character boundaries, so a replacement never splits a UTF-8 sequence.
fn match_at(text: &[u8], at: usize, secret: &[char]) -> Option<usize> {
    if at > 0 && at < text.len() && (text[at] & 0xC0) == 0x80 {
        return None;
    }
    let mut position = at;
    for &character in secret {
        position = spelling_of(text, position, character)?;
    }
    Some(position)
}

/// The end of one spelling of `character` at `at`.
fn spelling_of(text: &[u8], at: usize, character: char) -> Option<usize> {
    let rest = text.get(at..)?;
    let mut utf8 = [0u8; 4];
    let literal = character.encode_utf8(&mut utf8).as_bytes();
    let first = *rest.first()?;
    if first == b'%'
        && let Some(end) = percent_encoded(text, at, literal)
    {
        return Some(end);
    }
    if first == b'\\'
        && let Some(end) = backslash_escaped(text, at, character)
    {
        return Some(end);
    }
    if first == b'&'
        && let Some(end) = html_reference(text, at, character)
    {
        return Some(end);
    }
    if first == b'+' && character == ' ' {
        return Some(at + 1);
    }
    rest.starts_with(literal).then_some(at + literal.len())
}

/// How a spelling of `secret` that does not itself begin with `%`, `\` or `&` can begin: with
/// its first character as written, then the second as written or encoded (`%`, `\`, `&`). When
/// the second is a letter, a digit or `-._~` (RFC 3986's unreserved characters, which JSON never
/// escapes either), these two-byte starts are rare in text; otherwise the first character alone.
fn literal_starts(secret: &str) -> Vec<Vec<u8>> {
    let mut chars = secret.char_indices();
    let first = chars.next().map_or(0, |(_, c)| c.len_utf8());
    let head = &secret.as_bytes()[..first];
    match chars.next() {
        Some((at, c)) if c.is_ascii_alphanumeric() || "-._~".contains(c) => {
            let spelled = [secret.as_bytes()[at], b'%', b'\\', b'&'];
            spelled.iter().map(|&second| [head, &[second]].concat()).collect()
        }
        _ => vec![head.to_vec()],
    }
}

fn hex_value(digit: u8) -> Option<u32> {
    (digit as char).to_digit(16)
}

/// `%XX` for each byte of `utf8`, each possibly percent-encoded again (`%257C`: `%25` is `%`).
fn percent_encoded(text: &[u8], mut at: usize, utf8: &[u8]) -> Option<usize> {
    for &byte in utf8 {
        if text.get(at) != Some(&b'%') {
            return None;
        }
        at += 1;
        loop {
            let high = hex_value(*text.get(at)?)?;
            let low = hex_value(*text.get(at + 1)?)?;
            at += 2;
            match high * 16 + low {
                value if value == u32::from(byte) => break,
                // `%25` then two more hex digits: the `%` of a deeper encoding.
                0x25 => continue,
                _ => return None,
            }
        }
    }
    Some(at)
}

/// Backslashes, then `uXXXX` (a UTF-16 unit; two for a character beyond the BMP) or the
/// character itself when it is punctuation (`\/`, `\\`, `\"`).
fn backslash_escaped(text: &[u8], at: usize, character: char) -> Option<usize> {
    let mut units = [0u16; 2];
    let mut position = at;
    for unit in character.encode_utf16(&mut units).iter() {
        position = escaped_unit(text, position, *unit)?;
    }
    if position > at {
        return Some(position);
    }
    None
}

fn escaped_unit(text: &[u8], at: usize, unit: u16) -> Option<usize> {
    let slashes = text.get(at..)?.iter().take_while(|&&b| b == b'\\').count();
    if slashes == 0 {
        return None;
    }
    let after = at + slashes;
    if text.get(after) == Some(&b'u') {
        let digits = text.get(after + 1..after + 5)?;
        let value = digits.iter().try_fold(0u32, |value, &d| Some(value * 16 + hex_value(d)?))?;
        return (value == u32::from(unit)).then_some(after + 5);
    }
    let punctuation = u8::try_from(unit).ok().filter(|b| b.is_ascii_punctuation())?;
    // `\\` spells one backslash: the run ends with the character itself.
    if punctuation == b'\\' {
        return (slashes >= 2).then_some(after);
    }
    (text.get(after) == Some(&punctuation)).then_some(after + 1)
}

/// `&#NNN;` or `&#xHH;`.
fn html_reference(text: &[u8], at: usize, character: char) -> Option<usize> {
    let rest = text.get(at..)?;
    let (digits, radix) = match rest.get(..3)? {
        [b'&', b'#', b'x' | b'X'] => (&rest[3..], 16),
        [b'&', b'#', _] => (&rest[2..], 10),
        _ => return None,
    };
    let length = digits.iter().take_while(|&&d| (d as char).is_digit(radix)).count();
    if length == 0 || digits.get(length) != Some(&b';') {
        return None;
    }
    let value = u32::from_str_radix(std::str::from_utf8(&digits[..length]).ok()?, radix).ok()?;
    (value == u32::from(character)).then_some(at + (rest.len() - digits.len()) + length + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "1234567890|s3cr3t-AbC/xyz";

    fn redactor() -> Redactor {
        Redactor::new([TOKEN.to_owned()], "****")
    }

    /// Every spelling the module lists, alone and nested, is found and replaced whole.
    #[test]
    fn every_spelling_of_an_app_token_is_redacted() {
        let spellings = [
            TOKEN.to_owned(),
            TOKEN.replace('|', "%7C").replace('/', "%2F"),
            TOKEN.replace('|', "%7c"),
            TOKEN.replace('|', "%257C").replace('/', "%252F"),
            TOKEN.replace('|', "%25257C"),
            TOKEN.replace('|', "\\u007c").replace('/', "\\/"),
            TOKEN.replace('|', "\\\\u007C").replace('/', "\\\\\\/"),
            TOKEN.replace('|', "&#124;"),
            TOKEN.replace('|', "&#x7C;"),
            "s3cr3t-AbC/xyz".to_owned(),
            "s3cr3t-AbC%2Fxyz".to_owned(),
        ];
        for spelling in spellings {
            let text = format!("GET /me?access_token={spelling}&after=QVFI -> error {spelling}.");
            let redacted = redactor().redact(&text).into_owned();
            assert_eq!(redacted, "GET /me?access_token=****&after=QVFI -> error ****.", "{spelling}");
            let json = serde_json::to_string(&text).expect("json");
            assert!(!redactor().redact(&json).contains("s3cr3t"), "{json}");
        }
    }

    /// The hot path finds what the full scan finds in every spelling an encoder writes (letters
    /// and digits as written, every other character in any spelling), and skips clean text.
    #[test]
    fn the_data_path_agrees_with_the_full_scan() {
        let redactor = redactor();
        let record = r#"{"id":"17895695668004550","caption":"a % b \ c & d","media_url":"https://x/a.jpg?a=1&b=2"}"#;
        assert!(matches!(redactor.redact_data(record), Cow::Borrowed(_)));
        for spelling in every_encoders_spelling(TOKEN) {
            let text = format!("{{\"next\":\"https://graph/x?access_token={spelling}&after=Q\"}}");
            assert_eq!(redactor.redact_data(&text), redactor.redact(&text), "{spelling}");
            assert!(redactor.finds_secret_in(&text), "{spelling}");
        }
        let short = Redactor::new(["a|b-c-d".to_owned()], "#");
        assert_eq!(short.redact_data("x a%7Cb-c-d y"), "x # y", "no anchor: the full scan");
    }

    /// `token` with each non-alphanumeric character spelled each way an encoder may write it.
    fn every_encoders_spelling(token: &str) -> Vec<String> {
        let forms: [fn(char) -> String; 5] = [
            |c| c.to_string(),
            |c| c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
            |c| c.to_string().bytes().map(|b| format!("%25{b:02x}")).collect(),
            |c| format!("\\u{:04x}", u32::from(c)),
            |c| format!("&#{};", u32::from(c)),
        ];
        forms
            .iter()
            .map(|form| {
                token.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_string() } else { form(c) }).collect()
            })
            .collect()
    }

    #[test]
    fn text_without_secrets_is_borrowed_and_short_secrets_are_ignored() {
        assert!(matches!(redactor().redact("%7C \\u007c &#124; plain"), Cow::Borrowed(_)));
        assert!(Redactor::new(["abc".to_owned()], "*").is_empty());
        assert_eq!(Redactor::new(["ab|cdef".to_owned()], "*").redact("x ab|cdef y cdef"), "x * y *");
    }

    /// Every character of the secret, spelled any way at random, is still found; text around it
    /// is kept byte for byte, multi-byte characters included.
    #[test]
    fn random_mixtures_of_spellings_are_found() {
        let secret = "EAAB|tök€n/😀+x";
        let redactor = Redactor::new([secret.to_owned()], "#");
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2000 {
            let mut spelled = String::new();
            for c in secret.chars() {
                let mut units = [0u16; 2];
                let mut utf8 = [0u8; 4];
                let choice = next() % 5;
                match choice {
                    0 => spelled.push(c),
                    1 => c.encode_utf8(&mut utf8).bytes().for_each(|b| spelled.push_str(&format!("%{b:02X}"))),
                    2 => c.encode_utf16(&mut units).iter().for_each(|u| spelled.push_str(&format!("\\u{u:04x}"))),
                    3 => spelled.push_str(&format!("&#{};", u32::from(c))),
                    _ => c.encode_utf8(&mut utf8).bytes().for_each(|b| spelled.push_str(&format!("%25{b:02x}"))),
                }
            }
            let text = format!("ä{spelled}ö");
            assert_eq!(redactor.redact(&text), "ä#ö", "{spelled}");
        }
    }
}
