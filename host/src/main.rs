//! `source-instagram-host COMPONENT.wasm spec | check | discover | read`: the Airbyte source CLI
//! contract on top of the `instagram_host` library. Protocol messages go to stdout, one JSON
//! object per line; the host's own diagnostics go to stderr.

use clap::{Parser, Subcommand};
use instagram_host::messages::trace_error;
use instagram_host::state_file::PersistingSink;
use instagram_host::{AirbyteWriter, Connector, Failure, FailureType, RunOptions, SharedSink};
use serde_json::json;
use std::io::{BufWriter, Stdout};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

#[derive(Parser)]
#[command(version, about = "Runs the Instagram source connector component under wasmtime")]
struct Cli {
    /// The connector component (`instagram_connector.wasm`).
    component: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the connector's SPEC message.
    Spec,
    /// Validate a config and test the connection.
    Check {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the catalog of streams.
    Discover {
        #[arg(long)]
        config: PathBuf,
    },
    /// Sync the streams of a configured catalog.
    Read {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        catalog: PathBuf,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Write the latest state of every stream here (atomically) after each STATE message.
        #[arg(long)]
        state_file: Option<PathBuf>,
    },
}

type Writer = Arc<Mutex<AirbyteWriter<BufWriter<Stdout>>>>;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS };
        }
    };
    let writer: Writer = Arc::new(Mutex::new(AirbyteWriter::new(BufWriter::new(std::io::stdout()))));
    let code = match run(cli, writer.clone()) {
        Ok(code) => code,
        Err(failure) => {
            emit(&writer, &trace_error(None, &failure));
            ExitCode::FAILURE
        }
    };
    writer.lock().unwrap_or_else(|p| p.into_inner()).flush();
    code
}

fn emit(writer: &Writer, message: &serde_json::Value) {
    writer.lock().unwrap_or_else(|p| p.into_inner()).write_message(message);
}

fn failure(failure_type: FailureType, message: String) -> Failure {
    Failure { message, internal_message: None, failure_type }
}

fn read_file(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| failure(FailureType::ConfigError, format!("Cannot read the {what} file {}: {e}", path.display())))
}

/// A failure of the host itself (the component trapped, could not load, …).
fn host_failure(error: wasmtime::Error) -> Failure {
    eprintln!("source-instagram-host: {error:?}");
    Failure {
        message: format!("The connector component failed: {error}"),
        internal_message: Some(format!("{error:?}")),
        failure_type: FailureType::SystemError,
    }
}

fn run(cli: Cli, writer: Writer) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failure(FailureType::SystemError, format!("Cannot start the async runtime: {e}")))?;
    let connector = Connector::from_file(&cli.component).map_err(host_failure)?;
    runtime.block_on(async {
        match cli.command {
            Command::Spec => {
                let spec = connector.spec(writer.clone()).await.map_err(host_failure)?;
                let spec: serde_json::Value = serde_json::from_str(&spec)
                    .map_err(|e| failure(FailureType::SystemError, format!("The connector's spec is not JSON: {e}")))?;
                emit(&writer, &json!({"type": "SPEC", "spec": spec}));
                Ok(ExitCode::SUCCESS)
            }
            Command::Check { config } => {
                let config = read_file(&config, "config")?;
                let options = RunOptions::for_config(&config);
                let status = match connector.check(&options, writer.clone(), &config).await.map_err(host_failure)? {
                    Ok(()) => json!({"status": "SUCCEEDED"}),
                    Err(failure) => json!({"status": "FAILED", "message": failure.message}),
                };
                emit(&writer, &json!({"type": "CONNECTION_STATUS", "connectionStatus": status}));
                Ok(ExitCode::SUCCESS)
            }
            Command::Discover { config } => {
                let config = read_file(&config, "config")?;
                let options = RunOptions::for_config(&config);
                let catalog = connector.discover(&options, writer.clone(), &config).await.map_err(host_failure)??;
                let catalog: serde_json::Value = serde_json::from_str(&catalog).map_err(|e| {
                    failure(FailureType::SystemError, format!("The connector's catalog is not JSON: {e}"))
                })?;
                emit(&writer, &json!({"type": "CATALOG", "catalog": catalog}));
                Ok(ExitCode::SUCCESS)
            }
            Command::Read { config, catalog, state, state_file } => {
                let config = read_file(&config, "config")?;
                let catalog = read_file(&catalog, "catalog")?;
                // A state file that does not exist yet is the first sync.
                let state = match state {
                    Some(path) if state_file.as_ref() == Some(&path) && !path.exists() => None,
                    Some(path) => Some(read_file(&path, "state")?),
                    None => None,
                };
                let options = RunOptions::for_config(&config);
                let sink: SharedSink = match state_file {
                    Some(path) => Arc::new(Mutex::new(PersistingSink::new(writer.clone(), path, state.as_deref()))),
                    None => writer.clone(),
                };
                connector.read(&options, sink, &config, &catalog, state.as_deref()).await.map_err(host_failure)??;
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}
