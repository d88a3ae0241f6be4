//! Sending a request to the exact address the egress policy vetted.
//!
//! Why not `default_send_request`: it resolves the name again when it connects, so a DNS answer
//! that changes between the check and the connection (rebinding) could reach an address the
//! check refused. Like spin's outbound-networking factor, the host resolves once, vets every
//! address, and connects to a vetted one; TLS still verifies the certificate against the name.

use http::uri::Scheme;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// What a connection to the server is: plain TCP or TLS over it.
trait Connection: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// The connection's I/O, driven by the caller until the exchange is done.
pub type IoFuture = Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>;

static TLS: LazyLock<tokio_rustls::TlsConnector> = LazyLock::new(|| {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.into() };
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
});

const UNSET: Duration = Duration::from_secs(600);

/// Sends `request` over a new connection to `address`, verifying TLS against `host`.
pub async fn send(
    mut request: http::Request<WasiBody>,
    address: SocketAddr,
    host: &str,
    options: RequestOptions,
) -> wasmtime_wasi_http::Result<(http::Response<WasiBody>, IoFuture)> {
    let connect_timeout = options.connect_timeout.unwrap_or(UNSET);
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect(address))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)?
        .map_err(HttpError::Connect)?;
    let stream: Box<dyn Connection> = if request.uri().scheme() == Some(&Scheme::HTTPS) {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(HttpError::InvalidDnsNameError)?;
        Box::new(TLS.connect(name, tcp).await.map_err(HttpError::Tls)?)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) =
        tokio::time::timeout(connect_timeout, hyper::client::conn::http1::handshake(TokioIo::new(stream)))
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
    let driver = tokio::spawn(connection);

    // On the wire a request names only its path; the Host header carries the authority.
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
    *request.uri_mut() = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let first_byte_timeout = options.first_byte_timeout.unwrap_or(UNSET);
    let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let io: IoFuture = Box::new(async move {
        match driver.await {
            Ok(result) => result.map_err(HttpError::from),
            Err(_) => Err(HttpError::HttpResponseIncomplete),
        }
    });
    use http_body_util::BodyExt;
    Ok((response.map(|body| body.map_err(HttpError::from).boxed_unsync()), io))
}
