//! [`Runtime`] over wasi:http (outgoing requests) and wasi:clocks (timers, wall time).

use super::reactor::wait_for;
use crate::http::{HttpRequest, HttpResponse, Method, Runtime, TransportError};
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use std::time::Duration;
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

/// Per-request timeouts: a stuck connection must not stall a sync for the host's 600 s default.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(120);
const BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(60);
const READ_CHUNK: u64 = 64 * 1024;

pub struct WasiRuntime;

impl Runtime for WasiRuntime {
    fn send(&self, request: HttpRequest) -> LocalBoxFuture<'static, Result<HttpResponse, TransportError>> {
        Box::pin(send(request))
    }

    fn sleep(&self, duration: Duration) -> LocalBoxFuture<'static, ()> {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Box::pin(wait_for(wasi::clocks::monotonic_clock::subscribe_duration(nanos)))
    }

    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A request that cannot be built: sending it again cannot help.
fn invalid(what: &str) -> TransportError {
    TransportError::Invalid(format!("the request's {what} is not valid"))
}

async fn send(request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let url = url::Url::parse(&request.url).map_err(|_| invalid("URL"))?;
    let scheme = match url.scheme() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return Err(invalid("scheme")),
    };
    let host = url.host_str().ok_or_else(|| invalid("host"))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let mut path_with_query = url.path().to_owned();
    if let Some(query) = url.query() {
        path_with_query.push('?');
        path_with_query.push_str(query);
    }

    let header_list: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(name, value)| (name.clone(), value.clone().into_bytes())).collect();
    let headers = Fields::from_list(&header_list).map_err(|_| invalid("headers"))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
    };
    outgoing.set_method(&method).map_err(|_| invalid("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|_| invalid("scheme"))?;
    outgoing.set_authority(Some(&authority)).map_err(|_| invalid("authority"))?;
    outgoing.set_path_with_query(Some(&path_with_query)).map_err(|_| invalid("path"))?;
    let body = outgoing.body().map_err(|_| invalid("body"))?;

    let options = RequestOptions::new();
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    // A host may not support a timeout; the request then runs with the host's own.
    let _ = options.set_connect_timeout(Some(nanos(CONNECT_TIMEOUT)));
    let _ = options.set_first_byte_timeout(Some(nanos(FIRST_BYTE_TIMEOUT)));
    let _ = options.set_between_bytes_timeout(Some(nanos(BETWEEN_BYTES_TIMEOUT)));

    let pending = outgoing_handler::handle(outgoing, Some(options)).map_err(|code| map_error(&code))?;
    write_body(body, request.body.as_deref()).await?;

    let response = loop {
        match pending.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(map_error(&code)),
            Some(Err(())) => {
                return Err(TransportError::Connection("response already taken".into()));
            }
            None => wait_for(pending.subscribe()).await,
        }
    };
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|_| TransportError::Connection("body already taken".into()))?;
    let body = read_body(&incoming).await;
    drop(IncomingBody::finish(incoming));
    Ok(HttpResponse { status, headers, body: body? })
}

/// Writes the request body without ever blocking the component: the host may hold the request
/// in its queue (a slot cap) until other responses are read, and those are read by other futures
/// of this same thread. A blocking write here would stop them all (a deadlock under scarce
/// slots); instead the write waits on the stream's pollable like any other future.
async fn write_body(body: OutgoingBody, bytes: Option<&[u8]>) -> Result<(), TransportError> {
    if let Some(mut rest) = bytes {
        let broken = |_| TransportError::Connection("request body write failed".into());
        let stream = body.write().map_err(|_| invalid("body stream"))?;
        while !rest.is_empty() {
            let permitted = stream.check_write().map_err(broken)?;
            if permitted == 0 {
                wait_for(stream.subscribe()).await;
                continue;
            }
            let length = rest.len().min(usize::try_from(permitted).unwrap_or(usize::MAX));
            stream.write(&rest[..length]).map_err(broken)?;
            rest = &rest[length..];
        }
        stream.flush().map_err(broken)?;
        // The flush is done once the stream can take a write again.
        while stream.check_write().map_err(broken)? == 0 {
            wait_for(stream.subscribe()).await;
        }
    }
    OutgoingBody::finish(body, None).map_err(|code| map_error(&code))
}

async fn read_body(incoming: &IncomingBody) -> Result<Vec<u8>, TransportError> {
    let stream = incoming.stream().map_err(|_| TransportError::Connection("body stream already taken".into()))?;
    let mut body = Vec::new();
    loop {
        match stream.read(READ_CHUNK) {
            Ok(chunk) if chunk.is_empty() => wait_for(stream.subscribe()).await,
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(body),
            Err(StreamError::LastOperationFailed(error)) => {
                let cause = wasi::http::types::http_error_code(&error).map_or_else(
                    || "the body was cut off (timed out, or the connection broke)".into(),
                    |c| describe(&c),
                );
                return Err(TransportError::Connection(format!("reading the response failed: {cause}")));
            }
        }
    }
}

fn map_error(code: &ErrorCode) -> TransportError {
    let text = describe(code);
    match code {
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => TransportError::Timeout(text),
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => TransportError::Denied(text),
        ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestUriTooLong
        | ErrorCode::HttpRequestMethodInvalid
        | ErrorCode::HttpRequestHeaderSectionSize(_)
        | ErrorCode::HttpRequestHeaderSize(_) => TransportError::Invalid(text),
        _ => TransportError::Connection(text),
    }
}

/// A wasi:http error in words (never Rust debug output).
fn describe(code: &ErrorCode) -> String {
    let text = match code {
        ErrorCode::DnsTimeout => "the DNS lookup timed out",
        ErrorCode::DnsError(payload) => {
            return match &payload.rcode {
                Some(rcode) => format!("the DNS lookup failed: {rcode}"),
                None => "the DNS lookup failed".into(),
            };
        }
        ErrorCode::DestinationNotFound => "the destination was not found",
        ErrorCode::DestinationUnavailable => "the destination is unavailable",
        ErrorCode::DestinationIpProhibited => "the destination address is prohibited by the host",
        ErrorCode::DestinationIpUnroutable => "the destination address is unroutable",
        ErrorCode::ConnectionRefused => "the connection was refused",
        ErrorCode::ConnectionTerminated => "the server closed the connection",
        ErrorCode::ConnectionTimeout => "connecting timed out",
        ErrorCode::ConnectionReadTimeout => "reading timed out",
        ErrorCode::ConnectionWriteTimeout => "writing timed out",
        ErrorCode::ConnectionLimitReached => "the host's connection limit was reached",
        ErrorCode::TlsProtocolError => "the TLS handshake failed",
        ErrorCode::TlsCertificateError => "the server's TLS certificate was not accepted",
        ErrorCode::TlsAlertReceived(_) => "the server sent a TLS alert",
        ErrorCode::HttpRequestDenied => "the host's egress policy refused the destination",
        ErrorCode::HttpRequestUriInvalid => "the request URL is not valid",
        ErrorCode::HttpRequestUriTooLong => "the request URL is too long",
        ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
            "the request headers are too large"
        }
        ErrorCode::HttpResponseIncomplete => "the response ended early",
        ErrorCode::HttpResponseBodySize(_) => "the response body is larger than the host allows",
        ErrorCode::HttpResponseTimeout => "the response timed out",
        ErrorCode::HttpProtocolError => "the server broke the HTTP protocol",
        _ => "the HTTP request failed",
    };
    text.to_owned()
}
