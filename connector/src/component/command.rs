//! Command mode (`wasi:cli/run`): the same verbs for stock hosts that cannot call `source`
//! directly. Arguments come from `wasi:cli/environment`, the named files are read through the
//! host's preopened directories (nothing else is opened), the verb's result message goes to
//! stdout and every other message through the `sink` import (the stdout-sink component on
//! `wasmtime run`, a JavaScript function under jco). Output matches the wasmtime host's.

use super::{HostSink, drive};
use crate::command_line::Invocation;
use crate::protocol::{Failure, Sink};
use crate::source;
use serde_json::value::RawValue;
use std::io::Write;
use std::path::Path;

/// Runs one invocation; `Err` makes the host exit non-zero.
pub fn run() -> Result<(), ()> {
    let args = wasi::cli::environment::get_arguments();
    let outcome = Invocation::parse(args.get(1..).unwrap_or_default()).and_then(execute);
    outcome.map_err(|failure| HostSink.error(None, &failure))
}

fn execute(invocation: Invocation) -> Result<(), Failure> {
    let runtime = &super::wasi_runtime::WasiRuntime;
    match invocation {
        Invocation::Spec => print(&airbyte_messages::spec(&raw(source::spec()?)?)),
        Invocation::Check { config } => {
            let status = drive(source::check(&read_file(&config, "config")?, runtime, &HostSink));
            print(&airbyte_messages::connection_status(status.err().as_ref().map(|f| f.message.as_str())))
        }
        Invocation::Discover { config } => {
            print(&airbyte_messages::catalog(&raw(source::discover(&read_file(&config, "config")?)?)?))
        }
        Invocation::Read { config, catalog, state } => {
            let state = state.map(|path| read_file(&path, "state")).transpose()?;
            let (config, catalog) = (read_file(&config, "config")?, read_file(&catalog, "catalog")?);
            // Stock hosts have no operator settings: the defaults the WIT documents.
            let budgets = crate::http::client::Budgets::default();
            drive(source::read(&config, &catalog, state.as_deref(), &budgets, runtime, &HostSink))
        }
    }
}

/// Reads a named file through the preopened directories.
fn read_file(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| {
        Failure::config(format!(
            "Cannot read the {what} file {}: {e} (is its directory preopened, e.g. `wasmtime run --dir`?)",
            path.display()
        ))
    })
}

fn raw(json: String) -> Result<Box<RawValue>, Failure> {
    RawValue::from_string(json).map_err(|e| Failure::system(format!("The connector produced invalid JSON: {e}")))
}

fn print(message: &airbyte_messages::Message<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, message)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(|e| Failure::system(format!("Cannot write to stdout: {e}")))
}
