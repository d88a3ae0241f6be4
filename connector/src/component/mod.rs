//! Glue between the WIT world (`wit/source.wit`) and the native core: exports the `source`
//! verbs, forwards [`Sink`] calls to the host's `sink` import, and drives async code with the
//! pollable reactor. Nothing here knows about Instagram.

mod command;
mod reactor;
mod wasi_runtime;

use crate::protocol::{Failure, FailureType, LogLevel, Sink, StreamStatus};
use bindings::airbyte::source::{sink as host, types};
use bindings::exports::airbyte::source::source::Guest;
use serde_json::Value;

/// The WIT bindings. WASI interfaces are not generated here but mapped (`with`) onto the `wasi`
/// crate: `wasi` 0.14.7 re-exports `wasip2` 1.0.4, which binds WASI 0.2.12, the very version
/// vendored under `wit/deps`, so the request layer and these bindings share one set of resource
/// types and the component imports each WASI interface once. Moving `wit/deps` to another WASI
/// release means moving the `wasi` crate to the matching one.
mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "source-command",
        with: {
            "wasi:cli/environment@0.2.12": wasi::cli::environment,
            "wasi:cli/stdout@0.2.12": wasi::cli::stdout,
            "wasi:filesystem/preopens@0.2.12": wasi::filesystem::preopens,
            "wasi:filesystem/types@0.2.12": wasi::filesystem::types,
            "wasi:clocks/wall-clock@0.2.12": wasi::clocks::wall_clock,
            "wasi:http/types@0.2.12": wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasi::http::outgoing_handler,
            "wasi:io/poll@0.2.12": wasi::io::poll,
            "wasi:io/error@0.2.12": wasi::io::error,
            "wasi:io/streams@0.2.12": wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
        },
    });
}

struct Component;

bindings::export!(Component with_types_in bindings);

impl Guest for Component {
    fn spec() -> String {
        // The spec is a compile-time constant; a failure here is a build bug, reported as a log.
        crate::source::spec().unwrap_or_else(|failure| {
            host::log(types::LogLevel::Fatal, &failure.message);
            String::from("{}")
        })
    }

    fn check(config: String) -> Result<(), types::Failure> {
        run(crate::source::check(&config, &wasi_runtime::WasiRuntime, &HostSink))
    }

    fn discover(config: String) -> Result<String, types::Failure> {
        crate::source::discover(&config).map_err(to_wit)
    }

    fn read(
        config: String,
        catalog: String,
        state: Option<String>,
        budgets: types::Budgets,
    ) -> Result<(), types::Failure> {
        let seconds = |secs: u32| std::time::Duration::from_secs(u64::from(secs));
        let budgets = crate::http::client::Budgets {
            retry: seconds(budgets.retry_secs),
            pacing_wait_cap: seconds(budgets.pacing_wait_secs),
            pacing: seconds(budgets.pacing_secs),
        };
        let (state, runtime) = (state.as_deref(), &wasi_runtime::WasiRuntime);
        run(crate::source::read(&config, &catalog, state, &budgets, runtime, &HostSink))
    }
}

impl bindings::exports::wasi::cli::run::Guest for Component {
    fn run() -> Result<(), ()> {
        command::run()
    }
}

fn run<T>(future: impl Future<Output = Result<T, Failure>>) -> Result<T, types::Failure> {
    drive(future).map_err(to_wit)
}

/// Runs a verb's future on the pollable reactor; a stall is a `system_error`, never a hang.
fn drive<T>(future: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    reactor::block_on(future).unwrap_or_else(|reactor::Stalled| {
        Err(Failure::system("Internal error: the connector stopped making progress."))
    })
}

fn to_wit(failure: Failure) -> types::Failure {
    types::Failure {
        message: failure.message,
        internal_message: failure.internal_message,
        failure_type: match failure.failure_type {
            FailureType::SystemError => types::FailureType::SystemError,
            FailureType::ConfigError => types::FailureType::ConfigError,
            FailureType::TransientError => types::FailureType::TransientError,
        },
    }
}

/// Forwards every message to the host.
struct HostSink;

impl Sink for HostSink {
    fn record(&self, stream: &str, json: &str) {
        host::record_emitted(stream, json);
    }

    fn state(&self, stream: &str, stream_state: &Value, record_count: u64) {
        host::state(stream, &json_text(stream_state), record_count);
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Fatal => types::LogLevel::Fatal,
            LogLevel::Error => types::LogLevel::Error,
            LogLevel::Warn => types::LogLevel::Warn,
            LogLevel::Info => types::LogLevel::Info,
            LogLevel::Debug => types::LogLevel::Debug,
            LogLevel::Trace => types::LogLevel::Trace,
        };
        host::log(level, message);
    }

    fn stream_status(&self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        let status = match status {
            StreamStatus::Started => types::StreamStatus::Started,
            StreamStatus::Running => types::StreamStatus::Running,
            StreamStatus::Complete => types::StreamStatus::Complete,
            StreamStatus::Incomplete => types::StreamStatus::Incomplete,
        };
        host::report_status(stream, status, rate_limited_until_ms);
    }

    fn error(&self, stream: Option<&str>, failure: &Failure) {
        host::error(stream, &to_wit(failure.clone()));
    }

    fn config_updated(&self, config: &str) {
        host::config_updated(config);
    }
}

/// A value as compact JSON text.
fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
