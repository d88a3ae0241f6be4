//! A component implementing the `source-connector` world that misbehaves on purpose, so tests can
//! prove the host contains it. The config's `mode` picks the misbehaviour of `read` and `check`:
//! `busy-loop`, `alloc-bomb`, `sleep`, `forbidden-host`, `fetch` (GET the config's `url`),
//! `hoard` (send `count` GETs to `url` and never read the answers), `snoop` (read files,
//! environment and arguments). Built only for the tests.

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use bindings::airbyte::source::sink;
    use bindings::airbyte::source::types::{Failure, FailureType, LogLevel};
    use bindings::exports::airbyte::source::source::Guest;
    use bindings::wasi::http::outgoing_handler;
    use bindings::wasi::http::types::{Fields, OutgoingRequest, Scheme};

    mod bindings {
        wit_bindgen::generate!({
            path: "../../wit",
            world: "source-connector",
            // Its own WASI bindings (the connector's come from the `wasi` crate).
            generate_all,
        });
    }

    struct Hostile;
    bindings::export!(Hostile with_types_in bindings);

    fn failure(message: String) -> Failure {
        Failure { message, internal_message: None, failure_type: FailureType::SystemError }
    }

    /// A GET of `url`.
    fn get(url: &str) -> OutgoingRequest {
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
        let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
        let request = OutgoingRequest::new(Fields::new());
        let _ = request.set_scheme(Some(&if scheme == "http" { Scheme::Http } else { Scheme::Https }));
        let _ = request.set_authority(Some(authority));
        let _ = request.set_path_with_query(Some(&path));
        request
    }

    /// GET `url`; the outcome as text.
    fn fetch(url: &str) -> String {
        match outgoing_handler::handle(get(url), None) {
            Err(code) => format!("refused at once: {code:?}"),
            Ok(pending) => {
                pending.subscribe().block();
                match pending.get() {
                    Some(Ok(Ok(response))) => format!("answered with status {}", response.status()),
                    Some(Ok(Err(code))) => format!("failed: {code:?}"),
                    _ => "no answer".to_owned(),
                }
            }
        }
    }

    fn misbehave(config: &str) -> Result<(), Failure> {
        let config: serde_json::Value = serde_json::from_str(config).unwrap_or_default();
        match config["mode"].as_str().unwrap_or("") {
            "busy-loop" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "alloc-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "sleep" => {
                // Blocked in the host, running no wasm: only a host-side timer can stop this.
                bindings::wasi::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                Ok(())
            }
            "forbidden-host" => {
                let outcome = fetch("https://example.com/steal");
                sink::log(LogLevel::Info, &format!("forbidden-host: {outcome}"));
                Err(failure(format!("forbidden-host: {outcome}")))
            }
            "fetch" => {
                let url = config["url"].as_str().unwrap_or("https://localhost/");
                let outcome = fetch(url);
                sink::log(LogLevel::Info, &format!("fetch {url}: {outcome}"));
                Err(failure(format!("fetch: {outcome}")))
            }
            "hoard" => {
                // Takes `count` request slots and never reads the answers: the host must take the
                // slots back at each request's deadline, or every tenant waiting on them waits too.
                let url = config["url"].as_str().unwrap_or("https://localhost/");
                let count = config["count"].as_u64().unwrap_or(2);
                let pending: Vec<_> =
                    (0..count).filter_map(|_| outgoing_handler::handle(get(url), None).ok()).collect();
                pending.iter().for_each(|p| p.subscribe().block());
                sink::log(LogLevel::Info, &format!("hoard: holding {} answers unread", pending.len()));
                bindings::wasi::clocks::monotonic_clock::subscribe_duration(3_600_000_000_000).block();
                Ok(())
            }
            "snoop" => {
                let file = std::fs::read_to_string("/etc/passwd").map(|t| t.len());
                let dir = std::fs::read_dir("/").map(|d| d.count());
                let env = std::env::vars().count();
                let home = std::env::var("HOME").ok();
                let args = std::env::args().count();
                let report = format!("snoop: file={file:?} dir={dir:?} env_vars={env} home={home:?} args={args}");
                sink::log(LogLevel::Info, &report);
                Ok(())
            }
            other => Err(failure(format!("unknown mode `{other}`"))),
        }
    }

    impl Guest for Hostile {
        fn spec() -> String {
            "{}".to_owned()
        }

        fn check(config: String) -> Result<(), Failure> {
            misbehave(&config)
        }

        fn discover(_config: String) -> Result<String, Failure> {
            Ok(r#"{"streams":[]}"#.to_owned())
        }

        fn read(
            config: String,
            _catalog: String,
            _state: Option<String>,
            _budgets: bindings::airbyte::source::types::Budgets,
        ) -> Result<(), Failure> {
            misbehave(&config)
        }
    }
}
