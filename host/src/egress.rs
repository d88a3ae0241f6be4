//! Egress policy: which origins the component may call.
//!
//! Why here: `WasiHttpHooks::send_request` is the only choke point for outbound HTTP (the default
//! sender opens TCP itself and ignores wasi:sockets policy), so the allow-list lives in that hook.
//! It is fail-closed: an origin is reachable only if it is listed. By default only the origin of
//! the config's `base_url` is, and only over https to public addresses, so a config cannot aim the
//! connector at the operator's own network; the operator opts other origins in explicitly. The
//! same hook applies the run's HTTP limits (request slots, timeouts, response size).

use crate::cassette::Tape;
use crate::limits::{AbortSignal, LimitExceeded, Limits};
use http_body_util::BodyExt;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The Graph API's origin, allowed when the config names no `base_url`.
pub const GRAPH_API_ORIGIN: &str = "https://graph.facebook.com";
/// The Instagram API with Instagram Login's origin (`auth_type: instagram_login`).
pub const INSTAGRAM_API_ORIGIN: &str = "https://graph.instagram.com";

/// Scheme, host and port: the unit of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl std::str::FromStr for Origin {
    type Err = String;

    /// `http://127.0.0.1:8123`, `https://graph.facebook.com` or `host:port` (https). Anything
    /// the policy could not mean exactly is refused: wildcards, paths, queries, user info.
    fn from_str(text: &str) -> Result<Origin, String> {
        let refuse = || {
            format!(
                "`{text}` is not an origin like http://127.0.0.1:8123 (one scheme, host and port; no wildcards or paths)"
            )
        };
        let url_text = if text.contains("://") { text.to_owned() } else { format!("https://{text}") };
        let url = url::Url::parse(&url_text).map_err(|_| refuse())?;
        let plain_host = match url.host() {
            Some(url::Host::Domain(name)) => name
                .split('.')
                .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')),
            Some(_) => true,
            None => false,
        };
        let bare = url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none();
        if !plain_host || !bare {
            return Err(refuse());
        }
        Origin::from_url(&url_text).ok_or_else(refuse)
    }
}

impl Origin {
    /// The origin of an absolute http(s) URL.
    pub fn from_url(url: &str) -> Option<Origin> {
        let url = url::Url::parse(url).ok()?;
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Origin { port: url.port_or_known_default()?, host: canonical_host(url.host_str()?), scheme })
    }

    fn of_uri(uri: &http::Uri) -> Option<Origin> {
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = uri.authority()?;
        Some(Origin {
            host: canonical_host(authority.host()),
            port: authority.port_u16().unwrap_or(default_port),
            scheme,
        })
    }

    /// The origin of the `base_url` in a config (JSON text); when absent, Meta's origin for the
    /// config's `auth_type` (graph.instagram.com for Instagram Login, else graph.facebook.com).
    /// `None` when the config or its `base_url` cannot be read: then nothing is allowed.
    pub fn of_config(config: &str) -> Option<Origin> {
        let config: serde_json::Value = serde_json::from_str(config).ok()?;
        match config.get("base_url") {
            None if config.get("auth_type").and_then(|a| a.as_str()) == Some("instagram_login") => {
                Origin::from_url(INSTAGRAM_API_ORIGIN)
            }
            None => Origin::from_url(GRAPH_API_ORIGIN),
            Some(serde_json::Value::String(s)) => Origin::from_url(s),
            Some(_) => None,
        }
    }
}

/// One spelling per host, whichever way it was written, so that the allow-list and a request
/// compare equal: lower case, and an IP address in its canonical form without brackets (`[::1]`,
/// `[0:0::1]` and `::1` are one host; `127.000.0.1` is not an address and stays a name).
fn canonical_host(host: &str) -> String {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(address) => address.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
        }
    }
}

/// Called with a one-line description of each refused request (origin only, never the path or
/// query, which could carry secrets).
pub type DenialReporter = Arc<dyn Fn(&str) + Send + Sync>;

/// Which origins a run may reach.
///
/// * `explicit` origins are the operator's opt-in (`--allow-host`): allowed whatever their scheme
///   or address, so a loopback sandbox can be reached on purpose;
/// * the `default` origin (the config's `base_url`) is allowed only over https and only when its
///   name resolves to public addresses, so a config cannot point the connector at the operator's
///   own network (cloud metadata, internal services).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AllowList {
    /// Operator-approved origins.
    pub explicit: Vec<Origin>,
    /// The config's origin, subject to the https and public-address rules.
    pub default: Option<Origin>,
}

impl AllowList {
    /// Only the config's `base_url` origin (https, public addresses).
    pub fn for_config(config: &str) -> AllowList {
        AllowList { explicit: Vec::new(), default: Origin::of_config(config) }
    }
}

/// The IANA special-purpose address registries (IPv4 and IPv6), plus multicast and the
/// reserved 240/4: none of these is the Graph API, and a config must not reach them without the
/// operator's opt-in (the operator's network, cloud metadata, NAT64 and 6to4 gateways that embed
/// such an address).
const SPECIAL_PURPOSE: [&str; 35] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "64:ff9b:1::/48",
    "100::/64",
    "2001::/23",
    "2001:db8::/32",
    "2002::/16",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

static SPECIAL_PURPOSE_NETS: std::sync::LazyLock<Vec<ipnet::IpNet>> =
    std::sync::LazyLock::new(|| SPECIAL_PURPOSE.iter().filter_map(|net| net.parse().ok()).collect());

/// Whether an address is one a config must not reach without the operator's opt-in: any
/// special-purpose range, and IPv4-mapped IPv6 addresses of one.
pub fn is_special_purpose(address: &IpAddr) -> bool {
    if let IpAddr::V6(v6) = address
        && let Some(v4) = v6.to_ipv4_mapped()
    {
        return is_special_purpose(&IpAddr::V4(v4));
    }
    SPECIAL_PURPOSE_NETS.iter().any(|net| net.contains(address))
}

/// Request slots shared by many runs: a host-wide cap on outbound requests in flight, on top of
/// each run's own (`run-many` gives one to all its tenants). A request waits for a slot of its
/// run, then for one of the pool, and holds both until its body is read or its deadline passes;
/// tokio's semaphore serves waiters in order, so no tenant starves.
///
/// Why: a thousand tenants each with a few requests in flight hold thousands of sockets and
/// their buffers at once; queued requests hold neither. A tenant that never reads its responses
/// gets its slots taken back at each request's deadline (`--request-timeout-secs`).
#[derive(Clone, Debug)]
pub struct RequestPool(Arc<Semaphore>);

impl RequestPool {
    /// A pool of `slots` requests in flight (at least one).
    pub fn new(slots: usize) -> RequestPool {
        RequestPool(Arc::new(Semaphore::new(slots.max(1))))
    }
}

/// The `WasiHttpHooks` that enforce the allow-list and the HTTP limits of a run.
pub struct EgressPolicy {
    allow: AllowList,
    on_denied: DenialReporter,
    slots: Arc<Semaphore>,
    pool: Option<RequestPool>,
    limits: Limits,
    abort: AbortSignal,
    requests_sent: Arc<AtomicU64>,
    tape: Option<Tape>,
}

impl EgressPolicy {
    /// A policy for one run; `requests_sent` counts the requests it lets through, `tape` records
    /// or replays them.
    pub fn new(
        allow: AllowList,
        limits: Limits,
        abort: AbortSignal,
        requests_sent: Arc<AtomicU64>,
        tape: Option<Tape>,
        on_denied: DenialReporter,
        pool: Option<RequestPool>,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1)));
        EgressPolicy { allow, on_denied, slots, pool, limits, abort, requests_sent, tape }
    }

    /// Static checks: origin listed, scheme allowed, no Host header naming another origin.
    fn check_request(&self, request: &http::Request<WasiBody>) -> Result<Admission, String> {
        let uri = request.uri();
        let Some(origin) = Origin::of_uri(uri) else {
            return Err("refused an outbound request without a valid http(s) origin".to_owned());
        };
        if let Some(host) = request.headers().get(http::header::HOST) {
            let named = host.to_str().unwrap_or("").to_ascii_lowercase();
            let authority = uri.authority().map(|a| a.as_str().to_ascii_lowercase()).unwrap_or_default();
            if named != authority {
                return Err(format!("refused an outbound request to {origin} whose Host header names another host"));
            }
        }
        if self.allow.explicit.contains(&origin) {
            return Ok(Admission::Explicit);
        }
        if self.allow.default.as_ref() == Some(&origin) {
            if origin.scheme != "https" {
                return Err(format!(
                    "refused an outbound request to {origin}: plain http needs an explicit --allow-host"
                ));
            }
            return Ok(Admission::PublicOnly(origin));
        }
        Err(format!("refused an outbound request to {origin}: not in the egress allow-list"))
    }
}

enum Admission {
    Explicit,
    /// Allowed if the name resolves to public addresses only.
    PublicOnly(Origin),
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

fn clamp(guest: Option<Duration>, cap: Duration) -> Option<Duration> {
    Some(guest.map_or(cap, |g| g.min(cap)))
}

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_body_result: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        let admission = match self.check_request(&request) {
            Ok(admission) => admission,
            Err(reason) => {
                (self.on_denied)(&reason);
                return Box::new(async { Err(HttpError::HttpRequestDenied) });
            }
        };
        let cap = self.limits.request_timeout;
        let options = RequestOptions {
            connect_timeout: clamp(options.and_then(|o| o.connect_timeout), cap),
            first_byte_timeout: clamp(options.and_then(|o| o.first_byte_timeout), cap),
            between_bytes_timeout: clamp(options.and_then(|o| o.between_bytes_timeout), cap),
        };
        let (slots, on_denied, abort) = (self.slots.clone(), self.on_denied.clone(), self.abort.clone());
        let (requests_sent, tape, pool) = (self.requests_sent.clone(), self.tape.clone(), self.pool.clone());
        let max_bytes = self.limits.max_response_bytes;
        Box::new(async move {
            let vetted = match admission {
                // A replay reaches no network: the cassette answers what the policy admits.
                _ if matches!(tape, Some(Tape::Replay(_))) => None,
                Admission::Explicit => None,
                Admission::PublicOnly(origin) => {
                    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((origin.host.as_str(), origin.port))
                        .await
                        .map_err(|_| HttpError::DnsError { rcode: Some("lookup failed".into()), info_code: None })?
                        .collect();
                    if resolved.is_empty() || resolved.iter().any(|a| is_special_purpose(&a.ip())) {
                        on_denied(&format!(
                            "refused an outbound request to {origin}: it resolves to a private, loopback or link-local address, or another special-purpose one (allow it explicitly with --allow-host)"
                        ));
                        return Err(HttpError::DestinationIpProhibited);
                    }
                    Some((resolved[0], origin.host))
                }
            };
            let permit = slots.acquire_owned().await.map_err(|_| HttpError::ConnectionLimitReached)?;
            let pooled = match pool {
                Some(RequestPool(pool)) => {
                    Some(pool.acquire_owned().await.map_err(|_| HttpError::ConnectionLimitReached)?)
                }
                None => None,
            };
            // One deadline for the whole exchange from the moment it leaves the queue, body
            // included: a server that drips a byte at a time never trips the between-bytes timeout.
            let deadline = tokio::time::Instant::now() + cap;
            requests_sent.fetch_add(1, Ordering::Relaxed);
            let send = |request: http::Request<WasiBody>| async move {
                match vetted {
                    // Connect to the address just vetted, never to a second lookup's answer.
                    Some((address, host)) => crate::vetted::send(request, address, &host, options).await,
                    None => {
                        let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
                        Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as crate::vetted::IoFuture))
                    }
                }
            };
            let exchange = async {
                let done: crate::vetted::IoFuture = Box::new(async { Ok(()) });
                match &tape {
                    None => send(request).await,
                    Some(Tape::Replay(replayer)) => Ok((replayer.answer(request).await?, done)),
                    Some(Tape::Record(recorder)) => {
                        // The body is read whole here, so the connection must be driven meanwhile.
                        let response = recorder
                            .exchange(request, |r| async {
                                let (response, io) = send(r).await?;
                                tokio::spawn(Box::into_pin(io));
                                Ok(response)
                            })
                            .await?;
                        Ok((response, done))
                    }
                }
            };
            // Boxed only now: a request waiting for a slot holds a small future, not the space of a
            // whole exchange (a connection's state is most of it).
            let exchange = Box::pin(tokio::time::timeout_at(deadline, exchange));
            let (response, io) = exchange.await.map_err(|_| HttpError::ConnectionReadTimeout)??;
            let lease = SlotLease::until(deadline, (permit, pooled));
            let response = response.map(|inner| {
                let deadline = Box::pin(tokio::time::sleep_until(deadline));
                LimitedBody { inner, remaining: max_bytes, max_bytes, abort, deadline, _lease: lease }.boxed_unsync()
            });
            Ok((response, io))
        })
    }
}

/// A request's slots: its run's and, in `run-many`, the pool's.
type Slots = (OwnedSemaphorePermit, Option<OwnedSemaphorePermit>);

/// Holds a request's slots until its body is done or its deadline passes, whichever comes first.
///
/// Why the deadline frees them on its own: a response's body is read only when the guest reads it.
/// A guest that never does (a hostile one, or one stalled by a bug) would otherwise keep its slots
/// until its wall-time cap, and every request of its run, and of every other tenant waiting on
/// the pool, would wait with it. A request past its deadline has failed anyway.
struct SlotLease {
    slots: Arc<std::sync::Mutex<Option<Slots>>>,
    expiry: tokio::task::JoinHandle<()>,
}

impl SlotLease {
    fn until(deadline: tokio::time::Instant, slots: Slots) -> SlotLease {
        let slots = Arc::new(std::sync::Mutex::new(Some(slots)));
        let expiring = slots.clone();
        let expiry = tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            drop(expiring.lock().unwrap_or_else(|p| p.into_inner()).take());
        });
        SlotLease { slots, expiry }
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        self.expiry.abort();
        drop(self.slots.lock().unwrap_or_else(|p| p.into_inner()).take());
    }
}

/// A response body that ends the run past `max_bytes`, fails the request at its deadline, and
/// holds the request's slots (see [`SlotLease`]).
struct LimitedBody {
    inner: WasiBody,
    remaining: u64,
    max_bytes: u64,
    abort: AbortSignal,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _lease: SlotLease,
}

impl http_body::Body for LimitedBody {
    type Data = bytes::Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
        }
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &frame
            && let Some(data) = frame.data_ref()
        {
            let size = data.len() as u64;
            if size > self.remaining {
                self.abort.trigger(LimitExceeded::ResponseBody { limit: self.max_bytes });
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(self.max_bytes)))));
            }
            self.remaining -= size;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_scheme_host_and_port() {
        let graph = Origin::from_url("https://graph.facebook.com/v23.0");
        assert_eq!(graph, Origin::from_url("https://GRAPH.facebook.com:443/other"));
        assert_ne!(graph, Origin::from_url("http://graph.facebook.com/v23.0"));
        assert_ne!(graph, Origin::from_url("https://graph.facebook.com:8443/"));
        assert_eq!(Origin::of_config("{}"), graph);
        assert_eq!(
            Origin::of_config(r#"{"base_url":"http://127.0.0.1:8123/v23.0"}"#).map(|o| o.to_string()),
            Some("http://127.0.0.1:8123".into())
        );
        assert_eq!(Origin::of_config("not json"), None);
        assert_eq!(Origin::of_config(r#"{"base_url":"ftp://x"}"#), None);
        assert_eq!("127.0.0.1:9".parse::<Origin>().map(|o| o.to_string()), Ok("https://127.0.0.1:9".into()));
    }

    fn policy(allow: AllowList) -> EgressPolicy {
        EgressPolicy::new(
            allow,
            Limits::default(),
            AbortSignal::default(),
            Arc::default(),
            None,
            Arc::new(|_| {}),
            None,
        )
    }

    fn request(uri: &str, host: Option<&str>) -> http::Request<WasiBody> {
        let mut builder = http::Request::get(uri);
        if let Some(host) = host {
            builder = builder.header(http::header::HOST, host);
        }
        let body =
            http_body_util::Empty::new().map_err(|never: std::convert::Infallible| match never {}).boxed_unsync();
        builder.body(body).expect("request")
    }

    #[test]
    fn explicit_origins_pass_and_others_are_refused() {
        let explicit = vec!["http://127.0.0.1:9000".parse().expect("origin")];
        let policy = policy(AllowList { explicit, default: None });
        assert!(matches!(
            policy.check_request(&request("http://127.0.0.1:9000/v23.0/me", None)),
            Ok(Admission::Explicit)
        ));
        assert!(policy.check_request(&request("http://127.0.0.1:9001/", None)).is_err());
        let reason = policy.check_request(&request("https://example.com/", None)).err().expect("denied");
        assert!(reason.contains("https://example.com:443"), "{reason}");
    }

    #[test]
    fn the_default_origin_needs_https_and_a_matching_host_header() {
        let plain = policy(AllowList::for_config(r#"{"base_url":"http://localhost:9000/v23.0"}"#));
        let reason = plain.check_request(&request("http://localhost:9000/x", None)).err().expect("denied");
        assert!(reason.contains("plain http"), "{reason}");
        let policy = policy(AllowList::for_config("{}"));
        assert!(matches!(
            policy.check_request(&request("https://graph.facebook.com/v23.0/me", None)),
            Ok(Admission::PublicOnly(_))
        ));
        let smuggled = request("https://graph.facebook.com/v23.0/me", Some("169.254.169.254"));
        assert!(policy.check_request(&smuggled).err().expect("denied").contains("Host header"));
    }

    /// Every special-purpose range: its first and last address are refused, and the addresses
    /// just outside it (where public) pass.
    #[test]
    fn every_special_purpose_range_is_refused() {
        assert_eq!(SPECIAL_PURPOSE_NETS.len(), SPECIAL_PURPOSE.len(), "every table entry parses");
        for net in SPECIAL_PURPOSE_NETS.iter() {
            assert!(is_special_purpose(&net.network()), "{net} first");
            assert!(is_special_purpose(&net.broadcast()), "{net} last");
        }
        for special in [
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.251",
            "239.255.255.250",
            "240.0.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "::ffff:10.0.0.1",
            "ff02::1",
            "169.254.169.254",
        ] {
            assert!(is_special_purpose(&special.parse().expect("ip")), "{special}");
        }
        for public in [
            "157.240.1.1",
            "8.8.8.8",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2a03:2880::1",
            "2606:4700::1111",
            "::ffff:157.240.1.1",
        ] {
            assert!(!is_special_purpose(&public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn origins_that_the_policy_cannot_mean_are_refused() {
        for bad in [
            "*",
            "*.facebook.com",
            "https://*",
            "http://127.0.0.1:8123/v23.0",
            "https://user@graph.facebook.com",
            "https://x?y",
            "",
            "ftp://x",
        ] {
            assert!(bad.parse::<Origin>().is_err(), "{bad}");
        }
        for good in ["http://127.0.0.1:8123", "https://graph.facebook.com/", "http://[::1]:9", "localhost:9"] {
            assert!(good.parse::<Origin>().is_ok(), "{good}");
        }
    }

    /// An origin allowed in any spelling admits requests written in any other spelling of it:
    /// IPv6 literals included (before, `[::1]` was allowed and every request to it refused).
    #[test]
    fn allowed_origins_match_requests_however_either_is_spelled() {
        let spellings = [
            ("http://[::1]:9000", vec!["http://[::1]:9000/v23.0/me", "http://[0:0::1]:9000/x", "HTTP://[::1]:9000/"]),
            ("http://[2001:DB8::A]:80", vec!["http://[2001:db8::a]/x", "http://[2001:0db8:0:0::a]:80/"]),
            ("http://127.0.0.1:8123", vec!["http://127.0.0.1:8123/v23.0/me"]),
            (
                "https://Graph.Facebook.com",
                vec!["https://graph.facebook.com/v23.0/me", "https://GRAPH.facebook.com:443/"],
            ),
        ];
        for (allowed, requests) in spellings {
            let policy = policy(AllowList { explicit: vec![allowed.parse().expect(allowed)], default: None });
            for uri in requests {
                assert!(
                    matches!(policy.check_request(&request(uri, None)), Ok(Admission::Explicit)),
                    "{allowed}: {uri}"
                );
            }
        }
        let policy = policy(AllowList { explicit: vec!["http://[::1]:9000".parse().expect("v6")], default: None });
        assert!(policy.check_request(&request("http://[::2]:9000/", None)).is_err());
        assert!(policy.check_request(&request("http://127.0.0.1:9000/", None)).is_err());
        assert_eq!(Origin::from_url("http://[0:0::1]:9/").map(|o| o.to_string()), Some("http://[::1]:9".into()));
    }
}
