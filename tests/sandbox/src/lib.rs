//! An offline Instagram Graph API: a real HTTP/1.1 server on loopback serving a deterministic
//! account model with the real API's shapes, paging and errors.
//!
//! It is the counterpart of every end-to-end test and the default target of `make run`, so the
//! connector never needs graph.facebook.com to be exercised. Every request is logged with its
//! timing, so tests can assert on what the connector asked for (and when), not only on output.

pub mod graph;
pub mod model;

use bytes::Bytes;
use http_body_util::Full;
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

#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub model: Model,
    pub token: String,
    /// 0 picks a free port.
    pub port: u16,
    /// The most items a page holds, whatever `limit` asks (Graph caps it too).
    pub max_page_size: usize,
}

impl SandboxOptions {
    pub fn new(model: Model) -> Self {
        SandboxOptions { model, token: DEFAULT_TOKEN.to_owned(), port: 0, max_page_size: 100 }
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
    pub received: Instant,
    pub answered: Instant,
}

struct Shared {
    options: SandboxOptions,
    origin: String,
    log: Mutex<Vec<LoggedRequest>>,
}

/// A running sandbox on its own thread; stops when dropped.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sandbox {
    /// Binds 127.0.0.1 and serves on a background thread.
    pub fn start(options: SandboxOptions) -> std::io::Result<Sandbox> {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let listener = runtime.block_on(bind(options.port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared { options, origin: format!("http://{addr}"), log: Mutex::new(Vec::new()) });
        let (shutdown, stop) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new().name("graph-sandbox".into()).spawn(move || {
            runtime.block_on(serve(listener, serving, stop));
        })?;
        Ok(Sandbox { addr, shared, shutdown: Some(shutdown), thread: Some(thread) })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `base_url` to put in a connector config.
    pub fn base_url(&self) -> String {
        format!("{}/{}", self.shared.origin, graph::API_VERSION)
    }

    pub fn token(&self) -> &str {
        &self.shared.options.token
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

async fn bind(port: u16) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], port)))?;
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
                async move { Ok::<_, std::convert::Infallible>(respond(&shared, request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

fn respond(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let received = Instant::now();
    let path = request.uri().path().to_owned();
    let query: HashMap<String, String> = request
        .uri()
        .query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let bearer = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let incoming = graph::Incoming { path: &path, query: query.clone(), bearer, origin: &shared.origin };
    let reply = if request.method() == http::Method::GET {
        graph::handle(&shared.options, &incoming)
    } else {
        graph::graph_error(400, 100, None, "Unsupported method")
    };

    let mut response =
        Response::builder().status(reply.status).header("content-type", "application/json; charset=UTF-8");
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    let body = Full::new(Bytes::from(reply.body.to_string()));
    let response = response.body(body).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    shared.log.lock().unwrap_or_else(|p| p.into_inner()).push(LoggedRequest {
        method: request.method().to_string(),
        path,
        query,
        status: reply.status,
        received,
        answered: Instant::now(),
    });
    response
}
