//! Record and replay of HTTP exchanges, for bug reports: `read --record FILE` writes every
//! exchange the component made; `read --replay FILE` answers the component from that file with no
//! network at all. It lives in the host's HTTP hook, so it works for any component.
//!
//! A cassette is meant to be attached to an issue, so it is redacted as it is written: the
//! `Authorization` header, the `access_token`, `appsecret_proof` and `client_secret` query and
//! form parameters, and every secret the config holds, wherever it appears (Graph's `paging.next`
//! links echo the token), become `REDACTED`.
//!
//! Replay matches each Graph request, alone or inside a Batch API call (batches are split into
//! their items both ways), by method, path, query and body. `since`/`until` follow the clock, so
//! they are left out of the match; among recorded answers that match otherwise, the one whose
//! `since` is nearest the request's is used (a sync's windows are days apart, a replay's clock
//! shift is not), and equal requests are answered in recorded order.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

const REDACTED: &str = "REDACTED";
const SECRET_PARAMETERS: [&str; 3] = ["access_token", "appsecret_proof", "client_secret"];
const CLOCK_PARAMETERS: [&str; 2] = ["since", "until"];

/// One recorded request and its answer, redacted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exchange {
    /// `GET`, `POST`.
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// Request headers (name, value).
    pub request_headers: Vec<(String, String)>,
    /// The request body as text (Batch API forms), empty for a GET.
    pub request_body: String,
    /// The answer's status.
    pub status: u16,
    /// The answer's headers.
    pub response_headers: Vec<(String, String)>,
    /// The answer's body as text.
    pub response_body: String,
}

#[derive(Serialize, Deserialize)]
struct CassetteFile {
    version: u32,
    exchanges: Vec<Exchange>,
}

/// What the hook does with exchanges in this run.
#[derive(Clone)]
pub enum Tape {
    /// Send as usual and keep every exchange.
    Record(std::sync::Arc<Recorder>),
    /// Send nothing; answer from a cassette.
    Replay(std::sync::Arc<Replayer>),
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tape::Record(_) => "Tape::Record",
            Tape::Replay(_) => "Tape::Replay",
        })
    }
}

/// Keeps redacted exchanges until [`Recorder::save`].
pub struct Recorder {
    redactor: airbyte_messages::secrets::Redactor,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Recorder {
    /// `secrets`: the values to scrub wherever they appear, in any spelling (the config's token
    /// and secret; see [`airbyte_messages::secrets`]).
    pub fn new(secrets: Vec<String>) -> Recorder {
        Recorder {
            redactor: airbyte_messages::secrets::Redactor::new(secrets, REDACTED),
            exchanges: Mutex::new(Vec::new()),
        }
    }

    /// The secrets of a config (JSON text): `access_token`, `client_secret`, `client_id`.
    pub fn secrets_of(config: &str) -> Vec<String> {
        let config: serde_json::Value = serde_json::from_str(config).unwrap_or_default();
        ["access_token", "client_secret", "client_id"]
            .iter()
            .filter_map(|key| config.get(*key).and_then(|v| v.as_str()).map(str::to_owned))
            .collect()
    }

    fn redact(&self, text: &str) -> String {
        self.redactor.redact(text).into_owned()
    }

    /// Sends `request` through `send`, keeping the exchange. Bodies are buffered whole.
    pub async fn exchange<F, Fut>(
        &self,
        request: http::Request<WasiBody>,
        send: F,
    ) -> wasmtime_wasi_http::Result<http::Response<WasiBody>>
    where
        F: FnOnce(http::Request<WasiBody>) -> Fut,
        Fut: Future<Output = wasmtime_wasi_http::Result<http::Response<WasiBody>>>,
    {
        let (parts, body) = request.into_parts();
        let request_body = body.collect().await?.to_bytes();
        let (method, url) = (parts.method.to_string(), self.redact(&redact_query(&parts.uri.to_string())));
        let request_headers = self.headers(&parts.headers);
        let response = send(http::Request::from_parts(parts, full(request_body.clone()))).await?;
        let (parts, body) = response.into_parts();
        let response_body = body.collect().await?.to_bytes();
        let exchange = Exchange {
            method,
            url,
            request_headers,
            request_body: self.redact(&redact_query(&String::from_utf8_lossy(&request_body))),
            status: parts.status.as_u16(),
            response_headers: self.headers(&parts.headers),
            response_body: self.redact(&token_fields_redacted(&String::from_utf8_lossy(&response_body))),
        };
        self.exchanges.lock().unwrap_or_else(|p| p.into_inner()).push(exchange);
        Ok(http::Response::from_parts(parts, full(response_body)))
    }

    fn headers(&self, headers: &http::HeaderMap) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let value = if name == http::header::AUTHORIZATION {
                    REDACTED.to_owned()
                } else {
                    self.redact(&String::from_utf8_lossy(value.as_bytes()))
                };
                (name.to_string(), value)
            })
            .collect()
    }

    /// Writes the cassette (JSON) to `path`.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let exchanges = self.exchanges.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let text = serde_json::to_string_pretty(&CassetteFile { version: 1, exchanges })?;
        crate::state_file::write_atomically(path, text.as_bytes())
    }
}

/// Answers requests from a cassette, one Graph request at a time: a GET recorded alone or inside
/// a Batch API call answers the same GET alone or inside a batch on replay, because which
/// requests share a batch depends on timing (which answer arrived first), not on the sync.
pub struct Replayer {
    answers: Mutex<HashMap<String, Vec<Answer>>>,
}

/// One recorded answer to one request.
struct Answer {
    /// The request's URL or batch `relative_url` (for its `since`).
    url: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// A batch item's answer as the Batch API writes it.
#[derive(Deserialize)]
struct BatchAnswer {
    code: u16,
    #[serde(default)]
    headers: Vec<BatchHeader>,
    #[serde(default)]
    body: String,
}

#[derive(Serialize, Deserialize)]
struct BatchHeader {
    name: String,
    value: String,
}

#[derive(Deserialize)]
struct BatchRequest {
    #[serde(default)]
    method: Option<String>,
    relative_url: String,
}

/// The requests of a Batch API form body (`batch=[{method, relative_url}, …]`), if it is one.
fn batch_requests(body: &str) -> Option<Vec<BatchRequest>> {
    let (_, batch) = url::form_urlencoded::parse(body.as_bytes()).find(|(k, _)| k == "batch")?;
    serde_json::from_str(&batch).ok()
}

impl Replayer {
    /// Loads a cassette written by [`Recorder::save`].
    pub fn load(path: &Path) -> Result<Replayer, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the cassette {}: {e}", path.display()))?;
        let file: CassetteFile =
            serde_json::from_str(&text).map_err(|e| format!("the cassette {} is not valid: {e}", path.display()))?;
        let mut answers: HashMap<String, Vec<Answer>> = HashMap::new();
        for exchange in file.exchanges {
            let batch = batch_requests(&exchange.request_body).zip(
                serde_json::from_str::<Vec<Option<BatchAnswer>>>(&exchange.response_body)
                    .ok()
                    .filter(|_| exchange.status == 200),
            );
            match batch {
                Some((requests, items)) => {
                    for (request, item) in requests.into_iter().zip(items) {
                        let Some(item) = item else { continue };
                        let method = request.method.unwrap_or_else(|| "GET".to_owned());
                        answers.entry(match_key(&method, &request.relative_url, "")).or_default().push(Answer {
                            url: request.relative_url,
                            status: item.code,
                            headers: item.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                            body: item.body,
                        });
                    }
                }
                None => {
                    let key = match_key(&exchange.method, &exchange.url, &exchange.request_body);
                    answers.entry(key).or_default().push(Answer {
                        url: exchange.url,
                        status: exchange.status,
                        headers: exchange.response_headers,
                        body: exchange.response_body,
                    });
                }
            }
        }
        Ok(Replayer { answers: Mutex::new(answers) })
    }

    /// The recorded answer to `request`; a request the cassette has no answer for (or a batch
    /// with an item it has none for) is refused.
    pub async fn answer(
        &self,
        request: http::Request<WasiBody>,
    ) -> wasmtime_wasi_http::Result<http::Response<WasiBody>> {
        let (parts, body) = request.into_parts();
        let body = redact_query(&String::from_utf8_lossy(&body.collect().await?.to_bytes()));
        let url = redact_query(&parts.uri.to_string());
        let Some(requests) = batch_requests(&body) else {
            let answer = self.take(&[(match_key(parts.method.as_str(), &url, &body), url)])?.remove(0);
            let mut response = http::Response::builder().status(answer.status);
            // The body is whole and may have changed length in redaction: framing headers go.
            let framing = |name: &str| {
                name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
            };
            for (name, value) in answer.headers.iter().filter(|(name, _)| !framing(name)) {
                response = response.header(name, value);
            }
            return response.body(full(Bytes::from(answer.body))).map_err(|_| HttpError::HttpProtocolError);
        };
        let wanted: Vec<(String, String)> = requests
            .into_iter()
            .map(|r| (match_key(r.method.as_deref().unwrap_or("GET"), &r.relative_url, ""), r.relative_url))
            .collect();
        let items: Vec<serde_json::Value> = self
            .take(&wanted)?
            .into_iter()
            .map(|answer| {
                let headers: Vec<BatchHeader> =
                    answer.headers.into_iter().map(|(name, value)| BatchHeader { name, value }).collect();
                serde_json::json!({"code": answer.status, "headers": headers, "body": answer.body})
            })
            .collect();
        let body = serde_json::to_string(&items).map_err(|_| HttpError::HttpProtocolError)?;
        http::Response::builder()
            .status(200)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(full(Bytes::from(body)))
            .map_err(|_| HttpError::HttpProtocolError)
    }

    /// Takes one recorded answer per `(key, url)`, each the one whose `since` is nearest the
    /// url's (equal requests in recorded order); all or none.
    fn take(&self, wanted: &[(String, String)]) -> Result<Vec<Answer>, HttpError> {
        let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
        let mut chosen: Vec<(String, usize)> = Vec::new();
        for (key, url) in wanted {
            let candidates = answers.get(key).ok_or(HttpError::DestinationNotFound)?;
            let taken = |i: &usize| chosen.iter().any(|(k, j)| k == key && j == i);
            let distance = |answer: &Answer| match (since(url), since(&answer.url)) {
                (Some(a), Some(b)) => (a - b).abs(),
                _ => 0,
            };
            let nearest = (0..candidates.len())
                .filter(|i| !taken(i))
                .min_by_key(|&i| distance(&candidates[i]))
                .ok_or(HttpError::DestinationNotFound)?;
            chosen.push((key.clone(), nearest));
        }
        // Removed from the highest index down, so the indexes chosen stay valid.
        let mut order: Vec<usize> = (0..chosen.len()).collect();
        order.sort_by_key(|&n| std::cmp::Reverse(chosen[n].1));
        let mut taken: Vec<Option<Answer>> = (0..chosen.len()).map(|_| None).collect();
        for n in order {
            let (key, index) = &chosen[n];
            taken[n] = answers.get_mut(key).map(|candidates| candidates.remove(*index));
        }
        taken.into_iter().map(|answer| answer.ok_or(HttpError::DestinationNotFound)).collect()
    }
}

fn full(bytes: Bytes) -> WasiBody {
    Full::new(bytes).map_err(|never: std::convert::Infallible| match never {}).boxed_unsync()
}

/// A JSON body with the value of every `access_token` field replaced: a token Graph hands out
/// (Instagram Login's refresh) is a secret the config does not know yet.
fn token_fields_redacted(body: &str) -> String {
    /// Replaces every `access_token` string in `value`; whether any was found.
    fn walk(value: &mut serde_json::Value) -> bool {
        let mut changed = false;
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map.iter_mut() {
                    if key == "access_token" && inner.is_string() {
                        *inner = serde_json::Value::String(REDACTED.to_owned());
                        changed = true;
                    } else {
                        changed |= walk(inner);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                for item in items {
                    changed |= walk(item);
                }
            }
            _ => {}
        }
        changed
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(mut value) => {
            if walk(&mut value) {
                value.to_string()
            } else {
                body.to_owned()
            }
        }
        Err(_) => body.to_owned(),
    }
}

/// A URL or form body with its secret parameters' values replaced.
fn redact_query(text: &str) -> String {
    let (head, query) = match text.split_once('?') {
        Some((head, query)) => (Some(head), query),
        None if text.contains('=') && !text.contains("://") => (None, text),
        None => return text.to_owned(),
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            let secret = SECRET_PARAMETERS.contains(&k.as_ref());
            (k.into_owned(), if secret { REDACTED.to_owned() } else { v.into_owned() })
        })
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    match head {
        Some(head) => format!("{head}?{query}"),
        None => query,
    }
}

/// The `since` of a URL, in seconds since the epoch.
fn since(url: &str) -> Option<i64> {
    let query = url.split_once('?')?.1;
    let (_, value) = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "since")?;
    chrono::DateTime::parse_from_rfc3339(&value).map(|t| t.timestamp()).ok().or_else(|| value.parse().ok())
}

/// `v23.0` and the like.
fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| {
        !major.is_empty() && !minor.is_empty() && (major.to_owned() + minor).bytes().all(|b| b.is_ascii_digit())
    })
}

/// Method, path (without the API version), query without the clock parameters, and body.
fn match_key(method: &str, url: &str, body: &str) -> String {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let path = path.split_once("://").map_or(path, |(_, rest)| rest.split_once('/').map_or("/", |(_, p)| p));
    // A batch item's relative URL names no version (the batch call's URL does).
    let path = path.trim_start_matches('/');
    let path = path.split_once('/').filter(|(version, _)| is_version(version)).map_or(path, |(_, rest)| rest);
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| !CLOCK_PARAMETERS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    format!("{method} {path}?{pairs:?} {body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_and_the_clock_is_left_out_of_the_match() {
        assert_eq!(
            redact_query("https://g/v23.0/me?fields=id&access_token=EAAB1&appsecret_proof=p"),
            "https://g/v23.0/me?fields=id&access_token=REDACTED&appsecret_proof=REDACTED"
        );
        assert_eq!(redact_query("batch=%5B%5D&access_token=EAAB1"), "batch=%5B%5D&access_token=REDACTED");
        assert_eq!(
            token_fields_redacted(r#"{"access_token":"IGAA-new","expires_in":5}"#),
            r#"{"access_token":"REDACTED","expires_in":5}"#
        );
        let recorder = Recorder::new(vec!["EAAB-secret".into()]);
        assert_eq!(
            recorder.redact(r#"{"next":"https://x?access_token=EAAB-secret"}"#),
            r#"{"next":"https://x?access_token=REDACTED"}"#
        );
        assert_eq!(
            match_key("GET", "http://h:1/v23.0/1/insights?since=1&metric=reach&until=2", ""),
            match_key("GET", "http://other:2/v23.0/1/insights?metric=reach&since=9&until=10", "")
        );
    }

    #[tokio::test]
    async fn windows_that_differ_only_by_the_clock_get_their_own_answers() {
        let exchange = |since: &str, body: &str| Exchange {
            method: "GET".into(),
            url: format!("http://h/v23.0/1/insights?metric=reach&since={since}"),
            request_headers: vec![],
            request_body: String::new(),
            status: 200,
            response_headers: vec![],
            response_body: body.into(),
        };
        let file =
            CassetteFile { version: 1, exchanges: vec![exchange("1000000", "early"), exchange("3592000", "late")] };
        let path = std::env::temp_dir().join(format!("cassette-test-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_string(&file).expect("json")).expect("write");
        let replayer = Replayer::load(&path).expect("load");
        let _ = std::fs::remove_file(&path);
        let ask = |since: &str| {
            let uri = format!("http://h/v23.0/1/insights?metric=reach&since={since}");
            http::Request::get(uri).body(full(Bytes::new())).expect("request")
        };
        // The replay runs a few seconds later, and asks for the later window first.
        let late = replayer.answer(ask("3592007")).await.expect("answered").into_body().collect().await.expect("body");
        assert_eq!(late.to_bytes(), "late");
        let early = replayer.answer(ask("1000007")).await.expect("answered").into_body().collect().await.expect("body");
        assert_eq!(early.to_bytes(), "early");
        assert!(replayer.answer(ask("1000007")).await.is_err(), "each answer is used once");
    }

    #[tokio::test]
    async fn requests_recorded_in_a_batch_are_answered_alone_and_the_reverse() {
        let form = |urls: &[&str]| {
            let batch: Vec<_> = urls.iter().map(|u| serde_json::json!({"method": "GET", "relative_url": u})).collect();
            url::form_urlencoded::Serializer::new(String::new()).append_pair("batch", &batch_json(&batch)).finish()
        };
        let recorded = |method: &str, url: &str, request_body: String, response_body: &str| Exchange {
            method: method.into(),
            url: url.into(),
            request_headers: vec![],
            request_body,
            status: 200,
            response_headers: vec![],
            response_body: response_body.into(),
        };
        let item = |body: &str| serde_json::json!({"code": 200, "headers": [], "body": body});
        let exchanges = vec![
            recorded(
                "POST",
                "http://h/v23.0/",
                form(&["1/insights?metric=a", "2/insights?metric=a"]),
                &batch_json(&[item("one"), item("two")]),
            ),
            recorded("GET", "http://h/v23.0/3/insights?metric=a", String::new(), "three"),
        ];
        let path = std::env::temp_dir().join(format!("cassette-batch-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_string(&CassetteFile { version: 1, exchanges }).expect("json"))
            .expect("write");
        let replayer = Replayer::load(&path).expect("load");
        let _ = std::fs::remove_file(&path);
        let body = |response: http::Response<WasiBody>| async {
            response.into_body().collect().await.expect("body").to_bytes()
        };
        let alone = http::Request::get("http://h/v23.0/2/insights?metric=a").body(full(Bytes::new())).expect("request");
        assert_eq!(body(replayer.answer(alone).await.expect("answered")).await, "two");
        let batch = |urls: &[&str]| {
            http::Request::post("http://h/v23.0/").body(full(Bytes::from(form(urls)))).expect("request")
        };
        assert!(
            replayer.answer(batch(&["3/insights?metric=a", "9/insights?metric=a"])).await.is_err(),
            "an unknown item"
        );
        let answered =
            body(replayer.answer(batch(&["3/insights?metric=a", "1/insights?metric=a"])).await.expect("answered"))
                .await;
        let items: Vec<serde_json::Value> = serde_json::from_slice(&answered).expect("array");
        assert_eq!((items[0]["body"].as_str(), items[1]["body"].as_str()), (Some("three"), Some("one")));
    }

    fn batch_json(items: &[serde_json::Value]) -> String {
        serde_json::to_string(items).expect("json")
    }
}
