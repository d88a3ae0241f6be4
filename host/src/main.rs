//! `source-instagram-host COMPONENT.wasm [OPTIONS] spec | check | discover | read | run-many`:
//! the Airbyte source CLI contract on top of the `instagram_host` library. Protocol messages go to
//! stdout, one JSON object per line; the host's own diagnostics go to stderr.

use clap::{Args, Parser, Subcommand};
use instagram_host::cassette::{Recorder, Replayer, Tape};
use instagram_host::messages::trace_error;
use instagram_host::output_dir::directory_with_state;
use instagram_host::progress::ProgressSink;
use instagram_host::state_file::PersistingSink;
use instagram_host::tenants::{Outcome, run_many};
use instagram_host::{
    AirbyteWriter, Connector, Failure, FailureType, HostError, Limits, Origin, RunOptions, SharedSink,
};
use serde_json::json;
use serde_json::value::RawValue;
use std::io::{BufWriter, IsTerminal, Stdout};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "Runs the Instagram source connector component under wasmtime")]
struct Cli {
    /// The connector component (`instagram_connector.wasm`).
    component: PathBuf,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(subcommand)]
    command: Command,
}

/// What the component may reach and use. Every limit that fires ends the run with a
/// `system_error` naming it.
///
/// Each flag can also come from a `SOURCE_INSTAGRAM_*` environment variable, because clients
/// that launch a source (PyAirbyte, the Airbyte platform, orchestrators) pass only the verb and
/// its files. A flag wins over its variable. These are the operator's settings: nothing in the
/// user's config can widen them.
#[derive(Args)]
struct SandboxArgs {
    /// Also allow this origin (e.g. `http://127.0.0.1:8123`), whatever its scheme or address.
    /// By default only the config's `base_url` origin is reachable, over https, on public addresses.
    #[arg(
        long = "allow-host",
        global = true,
        value_name = "ORIGIN",
        env = "SOURCE_INSTAGRAM_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    allow_hosts: Vec<String>,
    /// Guest memory cap in MiB.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_MEMORY_MIB", default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: usize,
    /// Guest CPU cap in fuel units (about one per wasm instruction; 0 = no cap).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_FUEL", default_value_t = Limits::default().fuel.unwrap_or(0))]
    fuel: u64,
    /// Wall-time cap of the whole command in seconds (0 = no cap).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_WALL_TIME_SECS", default_value_t = Limits::default().wall_time.map_or(0, |d| d.as_secs()))]
    wall_time_secs: u64,
    /// Outbound requests in flight at once.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_MAX_REQUESTS", default_value_t = Limits::default().max_concurrent_requests)]
    max_requests: usize,
    /// Largest response body in MiB.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_MAX_RESPONSE_MIB", default_value_t = Limits::default().max_response_bytes >> 20)]
    max_response_mib: u64,
    /// Each request's deadline in seconds, body included (also caps the guest's connect, first-byte
    /// and between-bytes timeouts).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_REQUEST_TIMEOUT_SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    request_timeout_secs: u64,
    /// Directory of precompiled components (default: ~/.cache/instagram-source).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile the component on every start.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_NO_CACHE")]
    no_cache: bool,
}

impl SandboxArgs {
    fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_mib << 20,
            fuel: (self.fuel > 0).then_some(self.fuel),
            wall_time: (self.wall_time_secs > 0).then(|| Duration::from_secs(self.wall_time_secs)),
            max_concurrent_requests: self.max_requests,
            max_response_bytes: self.max_response_mib << 20,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
        }
    }

    fn options(&self, config: &str) -> Result<RunOptions, Failure> {
        let mut options = RunOptions { limits: self.limits(), ..RunOptions::for_config(config) };
        // An empty variable or entry (`SOURCE_INSTAGRAM_ALLOW_HOSTS=""`, `a, b`) allows nothing extra.
        for host in self.allow_hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
            options = options.allow_origin(host.parse::<Origin>().map_err(|e| failure(FailureType::ConfigError, e))?);
        }
        Ok(options)
    }

    fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache { None } else { self.cache_dir.clone().or_else(instagram_host::engine::default_cache_dir) }
    }
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
        /// Write records to `DIR/<stream>.jsonl` and states to `DIR/state.json` instead of stdout.
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// Write every HTTP exchange, secrets redacted, to this cassette (for a bug report).
        #[arg(long, value_name = "FILE", conflicts_with = "replay")]
        record: Option<PathBuf>,
        /// Answer the component from this cassette; nothing goes to the network.
        #[arg(long, value_name = "FILE")]
        replay: Option<PathBuf>,
    },
    /// Run the syncs of a jobs file concurrently in this process; prints one summary line per job.
    RunMany {
        /// The jobs file (see README, "Running untrusted or many connectors").
        jobs: PathBuf,
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

fn emit(writer: &Writer, message: &impl serde::Serialize) {
    writer.lock().unwrap_or_else(|p| p.into_inner()).write_message(message);
}

fn failure(failure_type: FailureType, message: String) -> Failure {
    Failure { message, internal_message: None, failure_type }
}

fn read_file(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| failure(FailureType::ConfigError, format!("Cannot read the {what} file {}: {e}", path.display())))
}

/// A failure of the host or a limit: reported as a `system_error`.
fn host_failure(error: HostError) -> Failure {
    eprintln!("source-instagram-host: {error}");
    error.to_failure()
}

fn run(cli: Cli, writer: Writer) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failure(FailureType::SystemError, format!("Cannot start the async runtime: {e}")))?;
    let cache_dir = cli.sandbox.cache_dir();
    let (connector, _) =
        Connector::load(&cli.component, cache_dir.as_deref()).map_err(|e| host_failure(HostError::Trap(e)))?;
    runtime.block_on(async {
        match cli.command {
            Command::Spec => {
                let spec = connector.spec(writer.clone()).await.map_err(host_failure)?;
                let spec = RawValue::from_string(spec)
                    .map_err(|e| failure(FailureType::SystemError, format!("The connector's spec is not JSON: {e}")))?;
                emit(&writer, &airbyte_messages::spec(&spec));
                Ok(ExitCode::SUCCESS)
            }
            Command::Check { config } => {
                let config = read_file(&config, "config")?;
                let options = cli.sandbox.options(&config)?;
                let status = connector.check(&options, writer.clone(), &config).await.map_err(host_failure)?;
                emit(&writer, &airbyte_messages::connection_status(status.err().as_ref().map(|f| f.message.as_str())));
                Ok(ExitCode::SUCCESS)
            }
            Command::Discover { config } => {
                let config = read_file(&config, "config")?;
                let options = cli.sandbox.options(&config)?;
                let catalog = connector.discover(&options, writer.clone(), &config).await.map_err(host_failure)??;
                let catalog = RawValue::from_string(catalog).map_err(|e| {
                    failure(FailureType::SystemError, format!("The connector's catalog is not JSON: {e}"))
                })?;
                emit(&writer, &airbyte_messages::catalog(&catalog));
                Ok(ExitCode::SUCCESS)
            }
            Command::Read { config, catalog, state, state_file, output, record, replay } => {
                if let (Some(_), Some(dir)) = (&state_file, &output) {
                    return Err(failure(
                        FailureType::ConfigError,
                        format!("--state-file and --output both persist state; with --output the state goes to {}, so drop --state-file.", dir.join("state.json").display()),
                    ));
                }
                let config = read_file(&config, "config")?;
                let catalog = read_file(&catalog, "catalog")?;
                // A state file that does not exist yet is the first sync.
                let chained = |path: &PathBuf| {
                    state_file.as_ref() == Some(path)
                        || output.as_ref().is_some_and(|dir| dir.join("state.json") == *path)
                };
                let state = match state {
                    Some(path) if chained(&path) && !path.exists() => None,
                    Some(path) => Some(read_file(&path, "state")?),
                    None => None,
                };
                let mut options = cli.sandbox.options(&config)?;
                let recorder = record.as_ref().map(|_| Arc::new(Recorder::new(Recorder::secrets_of(&config))));
                options.tape = match (&recorder, &replay) {
                    (Some(recorder), _) => Some(Tape::Record(recorder.clone())),
                    (None, Some(path)) => Some(Tape::Replay(Arc::new(
                        Replayer::load(path).map_err(|e| failure(FailureType::ConfigError, e))?,
                    ))),
                    (None, None) => None,
                };
                let directory = match &output {
                    Some(dir) => Some(Arc::new(Mutex::new(
                        directory_with_state(dir, writer.clone(), state.as_deref()).map_err(|e| {
                            failure(
                                FailureType::ConfigError,
                                format!("Cannot use the output directory {}: {e}", dir.display()),
                            )
                        })?,
                    ))),
                    None => None,
                };
                let persisting = match state_file {
                    Some(path) => Some(Arc::new(Mutex::new(
                        PersistingSink::new(writer.clone(), path.clone(), state.as_deref()).map_err(|e| {
                            failure(FailureType::ConfigError, format!("Cannot write the state file {}: {e}", path.display()))
                        })?,
                    ))),
                    None => None,
                };
                let sink: SharedSink = match (&directory, &persisting) {
                    (Some(directory), _) => directory.clone(),
                    (None, Some(persisting)) => persisting.clone(),
                    (None, None) => writer.clone(),
                };
                // A person at a terminal sees live progress on stderr; pipes and files see nothing extra.
                let progress = std::io::stderr()
                    .is_terminal()
                    .then(|| Arc::new(Mutex::new(ProgressSink::new(sink.clone(), options.requests_sent.clone()))));
                let sink: SharedSink = match &progress {
                    Some(progress) => progress.clone(),
                    None => sink,
                };
                let outcome = connector.read(&options, sink, &config, &catalog, state.as_deref()).await;
                if let Some(progress) = progress {
                    progress.lock().unwrap_or_else(|p| p.into_inner()).finish();
                }
                if let (Some(recorder), Some(path)) = (recorder, &record) {
                    recorder.save(path).map_err(|e| {
                        failure(FailureType::SystemError, format!("Cannot write the cassette {}: {e}", path.display()))
                    })?;
                }
                let outcome = outcome.map_err(host_failure)?;
                // Records or states that never reached the disk fail the run, whatever the connector said.
                if let Some(directory) = directory {
                    let mut directory = directory.lock().unwrap_or_else(|p| p.into_inner());
                    let flushed = directory.sync_files().map_err(|e| e.to_string());
                    let failed = directory.write_error().or(directory.inner().write_error()).map(str::to_owned);
                    if let Some(message) = failed.or(flushed.err()) {
                        return Err(failure(FailureType::SystemError, message));
                    }
                }
                if let Some(failed) = persisting.and_then(|p| p.lock().unwrap_or_else(|p| p.into_inner()).write_error().map(str::to_owned)) {
                    return Err(failure(FailureType::SystemError, failed));
                }
                outcome?;
                Ok(ExitCode::SUCCESS)
            }
            Command::RunMany { jobs } => {
                let text = read_file(&jobs, "jobs")?;
                let parsed = serde_json::from_str(&text)
                    .map_err(|e| failure(FailureType::ConfigError, format!("The jobs file is not valid: {e}")))?;
                let base = jobs.parent().unwrap_or(Path::new(".")).to_path_buf();
                let reports = run_many(&connector, parsed, &base, cli.sandbox.limits(), cache_dir.as_deref()).await;
                let mut all_ok = true;
                let mut out = writer.lock().unwrap_or_else(|p| p.into_inner());
                for report in &reports {
                    let (status, detail) = match &report.outcome {
                        Outcome::Succeeded => ("succeeded", String::new()),
                        Outcome::Failed(message) => ("failed", message.clone()),
                        Outcome::Stopped(message) => ("stopped", message.clone()),
                    };
                    all_ok &= report.outcome == Outcome::Succeeded;
                    out.write_message(&json!({
                        "tenant": report.name, "status": status, "detail": detail,
                        "records": report.records, "seconds": report.duration.as_secs_f64(),
                    }));
                }
                Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
            }
        }
    })
}
