//! An offline Instagram Graph API: a real HTTP/1.1 server on loopback serving a deterministic
//! account model with the real API's shapes, paging and errors.
//!
//! It is the counterpart of every end-to-end test and the default target of `make run`, so the
//! connector never needs graph.facebook.com to be exercised. Every request is logged with its
//! timing, so tests can assert on what the connector asked for (and when), not only on output.

pub mod comments;
pub mod graph;
pub mod insights;
pub mod model;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use model::Model;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The token the sandbox accepts unless told otherwise.
pub const DEFAULT_TOKEN: &str = "sandbox-token";
/// The Instagram Login token of the model's first account (graph.instagram.com's kind); tokens it
/// is refreshed into are valid too.
pub const INSTAGRAM_TOKEN: &str = "IGAAsandbox-token";

#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub model: Model,
    pub token: String,
    /// 0 picks a free port.
    pub port: u16,
    /// The loopback address to listen on: 127.0.0.1, or ::1 for IPv6.
    pub address: std::net::IpAddr,
    /// The most items a page holds, whatever `limit` asks (Graph caps it too).
    pub max_page_size: usize,
    /// Added before every answer.
    pub latency: Duration,
    /// Share of requests (0.0–1.0) answered with a transient fault: half HTTP 503 (code 2),
    /// half throttling as HTTP 400 (code 4) with usage headers. Deterministic per seed.
    pub fault_rate: f64,
    pub fault_seed: u64,
    /// `Retry-After` seconds sent with faults and rate-limit answers.
    pub retry_after_secs: u64,
    /// At most `calls` per `window` per token; beyond, code 80002 like Instagram's account limit.
    pub rate_limit: Option<RateLimit>,
    /// `children{…}` expansion on the media edge fails (to exercise the connector's fallback).
    pub expansion_fails: bool,
    /// Broken answers mode: requests to one endpoint get a broken 200 answer instead.
    pub broken: Option<BrokenAnswer>,
    /// The media edge's paging cursors repeat an earlier page.
    pub cursor_cycle: Option<CursorCycle>,
    /// The token cannot list Facebook Pages (`/me/accounts` is refused, as for an Instagram
    /// Login token); accounts are still readable by id.
    pub pages_denied: bool,
    /// The token lacks `instagram_manage_comments`: the comments edges answer code 10.
    pub comments_denied: bool,
    /// Requests whose path and query contain any of these (e.g. `children%7B` for an expanded
    /// media page, or a slide's id) are throttled forever (code 4), whatever else they ask.
    pub throttled: Vec<String>,
    /// Every answer reports this share of the quota used (percent), and none is ever throttled:
    /// a figure stuck near 100 %.
    pub stuck_usage: Option<u32>,
    /// Every third reply is listed with its `id` alone (as Graph sometimes lists one); the
    /// reply itself is whole at `GET /{comment-id}`.
    pub sparse_comments: bool,
    /// Error messages quote the request with its token, percent-encoded (as some Graph errors
    /// do), so tests can prove no spelling of a token reaches any output.
    pub echo_token: bool,
    /// Meta's usage model: every answer reports (in `X-App-Usage` and
    /// `X-Business-Use-Case-Usage`) the share of this quota used in the rolling window; a call
    /// that would go past 100 % is throttled (code 80002).
    pub usage_quota: Option<RateLimit>,
    /// Metrics this API version no longer serves: any insights request asking for one is refused
    /// as Graph refuses a retired metric.
    pub retired_metrics: Vec<String>,
    /// `(metric, scope)` pairs refused as Graph refuses a metric a media product type does not
    /// support; the scope is a product type (`REELS`, `FEED`, `STORY`) or `ACCOUNT` (daily totals).
    pub unsupported_metrics: Vec<(String, String)>,
    /// The sandbox's clock is this far from the real one (Graph's "now" for since/until and the
    /// 48-hour lag of account totals); [`Sandbox::set_clock_offset`] moves it while running.
    pub clock_offset: chrono::Duration,
    /// `/refresh_access_token` refuses, as Graph does for a token less than 24 hours old.
    pub refuse_refresh: bool,
    /// What `/debug_token` says of the token's expiry: this long from the sandbox's now.
    pub token_expires_in: chrono::Duration,
    /// The Instagram Login token lacks `instagram_business_basic`: `/me` answers code 10.
    pub instagram_basic_denied: bool,
}

/// A broken answer: every GET (or batch item) whose path ends with `path_suffix` gets HTTP 200
/// with exactly `body` (any text, JSON or not); `path_suffix` "batch" breaks the Batch API
/// envelope instead.
#[derive(Clone, Debug)]
pub struct BrokenAnswer {
    pub path_suffix: String,
    pub body: String,
}

/// How the media edge's cursors go wrong (pages of 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CursorCycle {
    /// The second page points at itself: `A → A`.
    BackToBack,
    /// The third page points back at the second: `A → B → A → B …`.
    Loop,
}

#[derive(Clone, Copy, Debug)]
pub struct RateLimit {
    pub calls: usize,
    pub window: Duration,
}

impl SandboxOptions {
    pub fn new(model: Model) -> Self {
        SandboxOptions {
            model,
            token: DEFAULT_TOKEN.to_owned(),
            port: 0,
            address: std::net::IpAddr::from([127, 0, 0, 1]),
            max_page_size: 100,
            latency: Duration::ZERO,
            fault_rate: 0.0,
            fault_seed: 1,
            retry_after_secs: 1,
            rate_limit: None,
            expansion_fails: false,
            broken: None,
            cursor_cycle: None,
            pages_denied: false,
            comments_denied: false,
            sparse_comments: false,
            echo_token: false,
            throttled: Vec::new(),
            stuck_usage: None,
            usage_quota: None,
            retired_metrics: Vec::new(),
            unsupported_metrics: Vec::new(),
            clock_offset: chrono::Duration::zero(),
            refuse_refresh: false,
            token_expires_in: chrono::Duration::days(50),
            instagram_basic_denied: false,
        }
    }
}

/// One request as the sandbox saw it.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    pub status: u16,
    /// Answered with an injected fault or a rate-limit error.
    pub injected: bool,
    /// An item of a Batch API call (the call itself is logged too, as a POST).
    pub batched: bool,
    /// The token the request carried (header or query).
    pub token: Option<String>,
    pub received: Instant,
    pub answered: Instant,
}

/// What the sandbox counted: HTTP round trips and Graph API calls (a batch counts each item, as
/// Meta's rate limits do).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    pub round_trips: u64,
    pub calls: u64,
    /// Calls answered with a throttling error by the usage model.
    pub throttled: u64,
    /// The most requests being answered at once (a client's concurrency, as the server sees it).
    pub peak_in_flight: u64,
}

struct Shared {
    options: SandboxOptions,
    stats: Mutex<Stats>,
    origin: String,
    log: Mutex<Vec<LoggedRequest>>,
    faults: Mutex<model::Rng>,
    window: Mutex<(Instant, usize)>,
    /// When each call of the usage model's rolling window arrived.
    usage: Mutex<std::collections::VecDeque<Instant>>,
    in_flight: std::sync::atomic::AtomicU64,
    /// Seconds the sandbox's clock is ahead of (or behind) the real one.
    clock_offset: std::sync::atomic::AtomicI64,
    /// Valid Instagram Login tokens: [`INSTAGRAM_TOKEN`] and those it was refreshed into.
    instagram_tokens: Mutex<Vec<String>>,
}

impl Shared {
    /// The sandbox's "now".
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.clock_offset.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Counts a request as being answered while it lives.
struct Answering<'a>(&'a Shared);

impl<'a> Answering<'a> {
    fn start(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let mut stats = shared.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.peak_in_flight = stats.peak_in_flight.max(now);
        Answering(shared)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A running sandbox on its own thread; stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds its loopback address and serves on a background thread with its own runtime (so it can be
    /// started from sync code and from inside another async runtime alike).
    pub fn start(options: SandboxOptions) -> std::io::Result<Sandbox> {
        let (ready, bound) = std::sync::mpsc::channel();
        let (shutdown, stop) = oneshot::channel();
        let thread = std::thread::Builder::new().name("graph-sandbox".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(runtime) => runtime,
                Err(error) => return drop(ready.send(Err(error))),
            };
            runtime.block_on(async move {
                let listener =
                    match bind(options.address, options.port).await.and_then(|l| l.local_addr().map(|a| (l, a))) {
                        Ok(bound) => bound,
                        Err(error) => return drop(ready.send(Err(error))),
                    };
                let (listener, addr) = listener;
                let shared = Arc::new(Shared {
                    stats: Mutex::new(Stats::default()),
                    faults: Mutex::new(model::Rng::new(options.fault_seed)),
                    window: Mutex::new((Instant::now(), 0)),
                    usage: Mutex::new(std::collections::VecDeque::new()),
                    in_flight: Default::default(),
                    clock_offset: options.clock_offset.num_seconds().into(),
                    instagram_tokens: Mutex::new(vec![INSTAGRAM_TOKEN.to_owned()]),
                    options,
                    origin: format!("http://{addr}"),
                    log: Mutex::new(Vec::new()),
                });
                if ready.send(Ok((addr, shared.clone()))).is_ok() {
                    serve(listener, shared, stop).await;
                }
            });
        })?;
        let (addr, shared) = bound.recv().map_err(|_| std::io::Error::other("the sandbox thread ended early"))??;
        Ok(Sandbox { addr, shared, shutdown: Some(shutdown), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `base_url` to put in a connector config.
    pub fn base_url(&self) -> String {
        format!("{}/{}", self.shared.origin, instagram_connector::model::API_VERSION)
    }

    /// Moves the sandbox's clock to `offset` from the real one (one simulated day later: a day).
    pub fn set_clock_offset(&self, offset: chrono::Duration) {
        self.shared.clock_offset.store(offset.num_seconds(), std::sync::atomic::Ordering::SeqCst);
    }

    /// The sandbox's "now".
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.now()
    }

    pub fn token(&self) -> &str {
        &self.shared.options.token
    }

    /// Round trips and calls so far.
    pub fn stats(&self) -> Stats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Blocks until the server thread has stopped.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn bind(address: std::net::IpAddr, port: u16) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv6() { tokio::net::TcpSocket::new_v6()? } else { tokio::net::TcpSocket::new_v4()? };
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(address, port))?;
    // A deep backlog: a connector opens many connections at once.
    socket.listen(1024)
}

async fn serve(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn respond(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let received = Instant::now();
    let path = request.uri().path().to_owned();
    if path == "/__sandbox/stats" {
        let stats = serde_json::to_string(&*shared.stats.lock().unwrap_or_else(|p| p.into_inner())).unwrap_or_default();
        return Response::new(Full::new(Bytes::from(stats)));
    }
    let _answering = Answering::start(shared);
    if !shared.options.latency.is_zero() {
        tokio::time::sleep(shared.options.latency).await;
    }
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let bearer = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let method = request.method().clone();
    shared.count(1, 0);
    if let Some(broken) = shared.broken_answer(&path, method == http::Method::POST) {
        // Read the request first, as a server does: answering mid-upload resets the connection.
        let _ = request.into_body().collect().await;
        return broken;
    }
    // A batch counts its items (metered one by one below), not itself.
    let metered = if method == http::Method::GET { shared.metered(bearer.is_some()) } else { Ok(Vec::new()) };
    let target = request.uri().path_and_query().map(|t| t.as_str().to_owned()).unwrap_or_default();
    let (injected, usage) = match metered {
        Ok(usage) => (shared.injected_error(bearer.is_some(), &target), usage),
        Err(throttled) => (Some(throttled), Vec::new()),
    };
    let is_injected = injected.is_some();
    let mut reply = if let Some(reply) = injected {
        shared.count(0, 1);
        reply
    } else if method == http::Method::GET && path == "/refresh_access_token" {
        shared.count(0, 1);
        let presented = bearer.clone().or_else(|| query.get("access_token").cloned());
        shared.refresh(presented.as_deref(), query.get("grant_type").map(String::as_str))
    } else if method == http::Method::GET {
        shared.count(0, 1);
        let presented = bearer.as_deref().or(query.get("access_token").map(String::as_str));
        let incoming = graph::Incoming {
            path: &path,
            query: query.clone(),
            bearer: bearer.as_deref(),
            origin: &shared.origin,
            now: shared.now(),
            instagram_login: shared.is_instagram_token(presented),
        };
        let mut reply = graph::handle(&shared.options, &incoming);
        if let (Some(cycle), true) = (shared.options.cursor_cycle, path.ends_with("/media")) {
            graph::break_cursor(&mut reply, query.get("after").map(String::as_str), cycle);
        }
        reply
    } else if let Some(version) = batch_version(&path).filter(|_| method == http::Method::POST) {
        let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        shared.batch(&body, bearer.as_deref(), version)
    } else {
        shared.count(0, 1);
        graph::graph_error(400, 100, None, "Unsupported method")
    };
    reply.headers.extend(usage);
    let token = bearer.clone().or_else(|| query.get("access_token").cloned());
    shared.log(LoggedRequest {
        method: method.to_string(),
        path,
        query,
        status: reply.status,
        injected: is_injected,
        batched: false,
        token,
        received,
        answered: Instant::now(),
    });
    to_response(&reply)
}

/// The version a Batch API call is posted to (`/` is the default one, `/vN.N` or `/vN.N/` that one).
fn batch_version(path: &str) -> Option<&str> {
    if path == "/" {
        return Some(instagram_connector::model::API_VERSION);
    }
    let version = path.strip_prefix('/')?.trim_end_matches('/');
    graph::split_version(&format!("/{version}/")).is_some().then_some(version)
}

fn to_response(reply: &graph::Reply) -> Response<Full<Bytes>> {
    let mut response =
        Response::builder().status(reply.status).header("content-type", "application/json; charset=UTF-8");
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    let body = Full::new(Bytes::from(reply.body.to_string()));
    response.body(body).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The most items one Batch API call may carry.
pub const MAX_BATCH: usize = 50;

impl Shared {
    /// The broken answer for this request, in broken answers mode.
    fn broken_answer(&self, path: &str, batch: bool) -> Option<Response<Full<Bytes>>> {
        let broken = self.options.broken.as_ref()?;
        let hit = if broken.path_suffix == "batch" { batch } else { !batch && path.ends_with(&broken.path_suffix) };
        hit.then(|| Response::new(Full::new(Bytes::from(broken.body.clone()))))
    }

    fn count(&self, round_trips: u64, calls: u64) {
        let mut stats = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        stats.round_trips += round_trips;
        stats.calls += calls;
    }

    fn is_instagram_token(&self, token: Option<&str>) -> bool {
        let tokens = self.instagram_tokens.lock().unwrap_or_else(|p| p.into_inner());
        token.is_some_and(|token| tokens.iter().any(|valid| valid == token))
    }

    /// Instagram Login's `GET /refresh_access_token?grant_type=ig_refresh_token`: a new
    /// long-lived token (the old one stays valid, as Meta's does until it expires).
    fn refresh(&self, token: Option<&str>, grant_type: Option<&str>) -> graph::Reply {
        if !self.is_instagram_token(token) {
            return graph::invalid_token();
        }
        if grant_type != Some("ig_refresh_token") {
            return graph::graph_error(400, 100, None, "(#100) grant_type must be ig_refresh_token");
        }
        if self.options.refuse_refresh {
            return graph::graph_error(
                400,
                100,
                None,
                "(#100) Only long-lived tokens at least 24 hours old can be refreshed",
            );
        }
        let mut tokens = self.instagram_tokens.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = format!("{INSTAGRAM_TOKEN}-refreshed-{}", tokens.len());
        tokens.push(fresh.clone());
        graph::Reply {
            status: 200,
            body: serde_json::json!({"access_token": fresh, "token_type": "bearer", "expires_in": 5_184_000}),
            headers: Vec::new(),
        }
    }

    fn log(&self, entry: LoggedRequest) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).push(entry);
    }

    /// The Graph Batch API: `batch=[{"method":"GET","relative_url":…}]` in a form body; answers an
    /// array with one `{code, headers, body}` per item, in order, each handled (and rate-limited)
    /// like a request of its own.
    fn batch(&self, body: &[u8], bearer: Option<&str>, version: &str) -> graph::Reply {
        let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
        let bearer = bearer.map(str::to_owned).or_else(|| form.get("access_token").cloned());
        let Some(items) = form.get("batch").and_then(|b| serde_json::from_str::<Vec<serde_json::Value>>(b).ok()) else {
            self.count(0, 1);
            return graph::graph_error(
                400,
                100,
                None,
                "(#100) The parameter batch is required and must be a JSON array",
            );
        };
        if items.len() > MAX_BATCH {
            self.count(0, 1);
            return graph::graph_error(
                400,
                1,
                None,
                "(#1) Too many requests in batch message. Maximum batch size is 50",
            );
        }
        let answers: Vec<serde_json::Value> = items
            .iter()
            .map(|item| {
                let received = Instant::now();
                self.count(0, 1);
                let relative = item["relative_url"].as_str().unwrap_or("");
                let (path, query) = relative.split_once('?').unwrap_or((relative, ""));
                let path = format!("/{}", path.trim_start_matches('/'));
                let path = if graph::split_version(&path).is_some() { path } else { format!("/{version}{path}") };
                let query: HashMap<String, String> =
                    url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                let (injected, usage) = match self.metered(bearer.is_some()) {
                    Ok(usage) => (self.injected_error(bearer.is_some(), relative), usage),
                    Err(throttled) => (Some(throttled), Vec::new()),
                };
                let is_injected = injected.is_some();
                let broken =
                    self.options.broken.as_ref().filter(|b| b.path_suffix != "batch" && path.ends_with(&b.path_suffix));
                if let Some(broken) = broken {
                    return serde_json::json!({"code": 200, "headers": [], "body": broken.body});
                }
                let mut reply = match injected {
                    Some(reply) => reply,
                    None if item["method"].as_str().unwrap_or("GET") != "GET" => {
                        graph::graph_error(400, 100, None, "Unsupported method in batch")
                    }
                    None => {
                        let incoming = graph::Incoming {
                            path: &path,
                            query: query.clone(),
                            bearer: bearer.as_deref(),
                            origin: &self.origin,
                            now: self.now(),
                            instagram_login: self.is_instagram_token(bearer.as_deref()),
                        };
                        graph::handle(&self.options, &incoming)
                    }
                };
                reply.headers.extend(usage);
                self.log(LoggedRequest {
                    method: "GET".into(),
                    path,
                    query,
                    status: reply.status,
                    injected: is_injected,
                    batched: true,
                    token: bearer.clone(),
                    received,
                    answered: Instant::now(),
                });
                let mut headers =
                    vec![serde_json::json!({"name": "Content-Type", "value": "application/json; charset=UTF-8"})];
                headers.extend(
                    reply.headers.iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})),
                );
                serde_json::json!({"code": reply.status, "headers": headers, "body": reply.body.to_string()})
            })
            .collect();
        graph::Reply { status: 200, body: serde_json::Value::Array(answers), headers: Vec::new() }
    }

    /// Counts a call in the usage model: the usage headers for its answer, or the throttling
    /// answer when the rolling window is full.
    fn metered(&self, authenticated: bool) -> Result<Vec<(String, String)>, graph::Reply> {
        if let Some(percent) = self.options.stuck_usage {
            return Ok(usage_headers(percent));
        }
        let Some(quota) = self.options.usage_quota.filter(|_| authenticated) else {
            // Meta reports usage on every answer, not only on throttling ones: the other models
            // report theirs too (the per-second window's fill, or a low figure under faults).
            let window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(match self.options.rate_limit {
                Some(limit) if authenticated => {
                    let used = if window.0.elapsed() >= limit.window { 0 } else { window.1 };
                    usage_headers((used * 100 / limit.calls.max(1)).min(100) as u32)
                }
                _ if self.options.fault_rate > 0.0 => usage_headers(5),
                _ => Vec::new(),
            });
        };
        let mut calls = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while calls.front().is_some_and(|first| now.duration_since(*first) >= quota.window) {
            calls.pop_front();
        }
        if calls.len() >= quota.calls {
            self.stats.lock().unwrap_or_else(|p| p.into_inner()).throttled += 1;
            let free_in =
                calls.front().map_or(quota.window, |first| quota.window.saturating_sub(now.duration_since(*first)));
            let mut reply = graph::graph_error(
                400,
                80002,
                None,
                "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
            );
            reply.headers.push(("retry-after".to_owned(), free_in.as_secs().max(1).to_string()));
            reply.headers.extend(usage_headers(100));
            return Err(reply);
        }
        calls.push_back(now);
        Ok(usage_headers((calls.len() * 100 / quota.calls.max(1)) as u32))
    }

    /// A fault or rate-limit answer for this request (`target`: its path and query), if one is due.
    fn injected_error(&self, authenticated: bool, target: &str) -> Option<graph::Reply> {
        let retry_after = ("retry-after".to_owned(), self.options.retry_after_secs.to_string());
        if self.options.throttled.iter().any(|pattern| target.contains(pattern.as_str())) {
            let mut reply = graph::graph_error(400, 4, None, "(#4) Application request limit reached");
            reply.headers.push(retry_after);
            reply.headers.extend(usage_headers(100));
            return Some(reply);
        }
        if let (Some(limit), true) = (self.options.rate_limit, authenticated) {
            let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
            if window.0.elapsed() >= limit.window {
                *window = (Instant::now(), 0);
            }
            window.1 += 1;
            if window.1 > limit.calls {
                let mut reply = graph::graph_error(
                    400,
                    80002,
                    None,
                    "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again.",
                );
                reply.headers.push(retry_after);
                reply.headers.extend(usage_headers(100));
                return Some(reply);
            }
        }
        if self.options.fault_rate <= 0.0 {
            return None;
        }
        let draw = self.faults.lock().unwrap_or_else(|p| p.into_inner()).next_u64();
        let roll = (draw % 1_000_000) as f64 / 1_000_000.0;
        if roll >= self.options.fault_rate {
            return None;
        }
        let mut reply = if draw.is_multiple_of(2) {
            let mut reply = graph::graph_error(503, 2, None, "Service temporarily unavailable");
            reply.body["error"]["is_transient"] = serde_json::json!(true);
            reply
        } else {
            let mut reply = graph::graph_error(400, 4, None, "(#4) Application request limit reached");
            reply.headers.extend(usage_headers(100));
            reply
        };
        reply.headers.push(retry_after);
        Some(reply)
    }
}

/// Both usage headers for `percent` of the quota used (CPU and time figures trail the count).
fn usage_headers(percent: u32) -> Vec<(String, String)> {
    let business = serde_json::json!({"17841400000000000": [{
        "type": "instagram", "call_count": percent, "total_cputime": percent / 2, "total_time": percent * 3 / 4,
        "estimated_time_to_regain_access": 0
    }]});
    let app = serde_json::json!({"call_count": percent / 3, "total_cputime": percent / 4, "total_time": percent / 4});
    vec![("x-business-use-case-usage".to_owned(), business.to_string()), ("x-app-usage".to_owned(), app.to_string())]
}
