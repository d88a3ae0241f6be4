//! The `stdout-sink` world (`wit/source.wit`): every sink call becomes one Airbyte JSON line on
//! stdout, spelled by `airbyte-messages` exactly as the wasmtime host prints it. Stock hosts
//! cannot satisfy the connector's custom `sink` import; `wac plug` composes this component in.
//! It has no state of its own: `emitted_at` comes from the wall clock, output is flushed at
//! every STATE so a reader never sees a state before its records.

// The generated canonical-ABI glue needs `unsafe`; nothing else does.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod component {
    use bindings::airbyte::source::types::{Failure, LogLevel, StreamStatus};
    use bindings::exports::airbyte::source::sink::Guest;
    use serde_json::value::RawValue;
    use std::io::Write;
    use std::time::{SystemTime, UNIX_EPOCH};

    mod bindings {
        wit_bindgen::generate!({ path: "../../wit", world: "stdout-sink" });
    }

    struct StdoutSink;
    bindings::export!(StdoutSink with_types_in bindings);

    fn now_millis() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    /// One line; a closed stdout drops the line (the exit code still tells the caller).
    fn print(line: &impl serde::Serialize, flush: bool) {
        let mut out = std::io::stdout().lock();
        if serde_json::to_writer(&mut out, line).is_ok() && out.write_all(b"\n").is_ok() && flush {
            let _ = out.flush();
        }
    }

    /// A JSON text the connector produced, or the text as a JSON string if it is not JSON.
    fn raw(text: String) -> Box<RawValue> {
        RawValue::from_string(text.clone())
            .or_else(|_| serde_json::value::to_raw_value(&text))
            .unwrap_or_else(|_| Box::<RawValue>::default())
    }

    impl Guest for StdoutSink {
        fn record_emitted(stream_name: String, data: String) {
            print(&airbyte_messages::record(&stream_name, &raw(data), now_millis()), false);
        }

        fn state(stream_name: String, stream_state: String, record_count: u64) {
            print(&airbyte_messages::state(&stream_name, &raw(stream_state), record_count), true);
        }

        fn log(level: LogLevel, message: String) {
            print(&airbyte_messages::log(airbyte_messages::spelling::LOG_LEVELS[level as usize], &message), true);
        }

        fn report_status(stream_name: String, status: StreamStatus, rate_limited_until: Option<u64>) {
            let status = airbyte_messages::spelling::STREAM_STATUSES[status as usize];
            print(&airbyte_messages::stream_status(&stream_name, status, rate_limited_until, now_millis()), true);
        }

        fn error(stream_name: Option<String>, failure: Failure) {
            let error = airbyte_messages::ErrorTrace {
                stream: stream_name.as_deref(),
                message: &failure.message,
                internal_message: failure.internal_message.as_deref(),
                failure_type: airbyte_messages::spelling::FAILURE_TYPES[failure.failure_type as usize],
            };
            print(&airbyte_messages::trace_error(&error, now_millis()), true);
        }

        fn config_updated(config: String) {
            print(&airbyte_messages::connector_config(&raw(config), now_millis()), true);
        }
    }
}
