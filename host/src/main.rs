//! `source-instagram-host COMPONENT.wasm [OPTIONS] spec | check | discover | read | run-many`:
//! the Airbyte source CLI contract on top of the `instagram_host` library (see its `cli`
//! module). Protocol messages go to stdout, one JSON object per line; the host's own diagnostics
//! go to stderr.

use clap::Parser;
use instagram_host::cli::{OperatorSettings, Verb, Writer, run_verb};
use instagram_host::messages::trace_error;
use instagram_host::{AirbyteWriter, Connector, Failure, FailureType, HostError};
use std::io::{BufWriter, Stdout};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(version, about = "Runs the Instagram source connector component under wasmtime")]
struct Cli {
    /// The connector component (`instagram_connector.wasm`).
    component: PathBuf,
    #[command(flatten)]
    settings: OperatorSettings,
    #[command(subcommand)]
    verb: Verb,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    // When stdout is a file, a state persisted on disk must not get ahead of it: it is synced too.
    let stdout_file = std::io::stdout().as_fd().try_clone_to_owned().ok().map(std::fs::File::from);
    let writer = AirbyteWriter::new(BufWriter::new(std::io::stdout())).syncing(stdout_file);
    let writer: Writer<BufWriter<Stdout>> = Arc::new(Mutex::new(writer));
    let code = match run(cli, writer.clone()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(failure) => {
            writer.lock().unwrap_or_else(|p| p.into_inner()).write_message(&trace_error(None, &failure));
            ExitCode::FAILURE
        }
    };
    writer.lock().unwrap_or_else(|p| p.into_inner()).flush();
    code
}

fn run(cli: Cli, writer: Writer<BufWriter<Stdout>>) -> Result<bool, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure {
        message: format!("Cannot start the async runtime: {e}"),
        internal_message: None,
        failure_type: FailureType::SystemError,
    })?;
    let cache_dir = cli.settings.cache_dir();
    let (connector, _) = Connector::load(&cli.component, cache_dir.as_deref()).map_err(|e| {
        let error = HostError::Load(e);
        eprintln!("source-instagram-host: {error}");
        error.to_failure()
    })?;
    runtime.block_on(run_verb(cli.verb, &cli.settings, &connector, writer))
}
