//! Egress policy: which origins the component may call.
//!
//! Why here: `WasiHttpHooks::send_request` is the only choke point for outbound HTTP (the default
//! sender opens TCP itself and ignores wasi:sockets policy), so the allow-list lives in that hook.
//! It is fail-closed: an origin is reachable only if it is listed, and by default only the origin
//! of the config's `base_url` is.

use http_body_util::BodyExt;
use std::fmt;
use std::sync::Arc;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// The Graph API, when the config names no `base_url`.
pub const DEFAULT_BASE_URL: &str = "https://graph.facebook.com/v23.0";

/// Scheme, host and port: the unit of the allow-list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute http(s) URL.
    pub fn from_url(url: &str) -> Option<Origin> {
        let url = url::Url::parse(url).ok()?;
        let scheme = url.scheme().to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Origin { port: url.port_or_known_default()?, host: url.host_str()?.to_ascii_lowercase(), scheme })
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
            host: authority.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(default_port),
            scheme,
        })
    }

    /// The origin of the `base_url` in a config (JSON text); the Graph API when absent.
    /// `None` when the config or its `base_url` cannot be read: then nothing is allowed.
    pub fn of_config(config: &str) -> Option<Origin> {
        let config: serde_json::Value = serde_json::from_str(config).ok()?;
        match config.get("base_url") {
            None | Some(serde_json::Value::Null) => Origin::from_url(DEFAULT_BASE_URL),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => Origin::from_url(DEFAULT_BASE_URL),
            Some(serde_json::Value::String(s)) => Origin::from_url(s),
            Some(_) => None,
        }
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

/// The `WasiHttpHooks` that enforce the allow-list.
pub struct EgressPolicy {
    allowed: Vec<Origin>,
    on_denied: DenialReporter,
}

impl EgressPolicy {
    /// Allows exactly `allowed`.
    pub fn new(allowed: Vec<Origin>, on_denied: DenialReporter) -> Self {
        EgressPolicy { allowed, on_denied }
    }

    fn permits(&self, uri: &http::Uri) -> Result<(), String> {
        match Origin::of_uri(uri) {
            Some(origin) if self.allowed.contains(&origin) => Ok(()),
            Some(origin) => Err(format!("refused an outbound request to {origin}: not in the egress allow-list")),
            None => Err("refused an outbound request without a valid http(s) origin".to_owned()),
        }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_body_result: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> SendFuture {
        if let Err(reason) = self.permits(request.uri()) {
            (self.on_denied)(&reason);
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
            ))
        })
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
    }

    #[test]
    fn only_listed_origins_pass() {
        let allowed = Origin::from_url("http://127.0.0.1:9000/").into_iter().collect();
        let policy = EgressPolicy::new(allowed, Arc::new(|_| {}));
        let ok: http::Uri = "http://127.0.0.1:9000/v23.0/me".parse().expect("uri");
        let other_port: http::Uri = "http://127.0.0.1:9001/".parse().expect("uri");
        let other_host: http::Uri = "https://example.com/".parse().expect("uri");
        assert!(policy.permits(&ok).is_ok());
        assert!(policy.permits(&other_port).is_err());
        let reason = policy.permits(&other_host).expect_err("denied");
        assert!(reason.contains("https://example.com:443"), "{reason}");
    }
}
