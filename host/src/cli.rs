//! The command line as a library: the operator's settings (flags, each also read from a
//! `SOURCE_INSTAGRAM_*` variable) and what each verb does and prints. `main.rs` only parses
//! arguments and turns the outcome into an exit code.

use crate::read_job::{ReadError, ReadJob, read_file};
use crate::tenants::{Outcome, run_many};
use crate::{AirbyteWriter, Connector, Failure, FailureType, HostError, Limits, Origin, RequestPool, RunOptions};
use clap::{Args, Subcommand};
use serde_json::json;
use serde_json::value::RawValue;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the component may reach and use. Every limit that fires ends the run with a
/// `system_error` naming it.
///
/// Each flag can also come from a `SOURCE_INSTAGRAM_*` environment variable, because clients
/// that launch a source (PyAirbyte, the Airbyte platform, orchestrators) pass only the verb and
/// its files. A flag wins over its variable. These are the operator's settings: nothing in the
/// user's config can widen them.
#[derive(Args)]
pub struct OperatorSettings {
    /// Also allow this origin (e.g. `http://127.0.0.1:8123`), whatever its scheme or address.
    /// By default only the config's `base_url` origin is reachable, over https, on public addresses.
    #[arg(
        long = "allow-host",
        global = true,
        value_name = "ORIGIN",
        env = "SOURCE_INSTAGRAM_ALLOW_HOSTS",
        value_delimiter = ','
    )]
    pub allow_hosts: Vec<String>,
    /// Guest memory cap in MiB.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_MEMORY_MIB", default_value_t = Limits::default().memory_bytes >> 20)]
    pub memory_mib: usize,
    /// Guest CPU cap in seconds of time executing wasm (0 = no cap).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_CPU_SECS", default_value_t = Limits::default().cpu_time.map_or(0.0, |d| d.as_secs_f64()))]
    pub cpu_secs: f64,
    /// Wall-time cap of the whole command in seconds (0 = no cap).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_WALL_TIME_SECS", default_value_t = Limits::default().wall_time.map_or(0, |d| d.as_secs()))]
    pub wall_time_secs: u64,
    /// Outbound requests in flight at once.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_MAX_REQUESTS", default_value_t = Limits::default().max_concurrent_requests)]
    pub max_requests: usize,
    /// Largest response body in MiB.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_MAX_RESPONSE_MIB", default_value_t = Limits::default().max_response_bytes >> 20)]
    pub max_response_mib: u64,
    /// Each request's deadline in seconds, body included (also caps the guest's connect, first-byte
    /// and between-bytes timeouts).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_REQUEST_TIMEOUT_SECS", default_value_t = Limits::default().request_timeout.as_secs())]
    pub request_timeout_secs: u64,
    /// A request that keeps failing is given up this many seconds after its first attempt (its
    /// stream then fails; the next sync continues from the state).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_RETRY_BUDGET_SECS", default_value_t = Limits::default().retry_budget.as_secs())]
    pub retry_budget_secs: u64,
    /// The longest one pacing wait, in seconds, when Graph does not say when the quota frees up.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_PACING_WAIT_SECS", default_value_t = Limits::default().pacing_wait_cap.as_secs())]
    pub pacing_wait_secs: u64,
    /// How long pacing may hold a sync back in a row, in seconds, before the connector stops
    /// pacing and leaves the limit to Graph's throttling.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_PACING_BUDGET_SECS", default_value_t = Limits::default().pacing_budget.as_secs())]
    pub pacing_budget_secs: u64,
    /// Directory of precompiled components (default: ~/.cache/instagram-source).
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile the component on every start.
    #[arg(long, global = true, env = "SOURCE_INSTAGRAM_NO_CACHE")]
    pub no_cache: bool,
}

impl OperatorSettings {
    /// The limits these settings ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_mib << 20,
            cpu_time: (self.cpu_secs > 0.0).then(|| Duration::from_secs_f64(self.cpu_secs.min(1e9))),
            wall_time: (self.wall_time_secs > 0).then(|| Duration::from_secs(self.wall_time_secs)),
            max_concurrent_requests: self.max_requests,
            max_response_bytes: self.max_response_mib << 20,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            retry_budget: Duration::from_secs(self.retry_budget_secs),
            pacing_wait_cap: Duration::from_secs(self.pacing_wait_secs),
            pacing_budget: Duration::from_secs(self.pacing_budget_secs),
        }
    }

    /// The run options for `config`: its `base_url` origin plus the operator's allow-list.
    pub fn options(&self, config: &str) -> Result<RunOptions, Failure> {
        let mut options = RunOptions { limits: self.limits(), ..RunOptions::for_config(config) };
        // An empty variable or entry (`SOURCE_INSTAGRAM_ALLOW_HOSTS=""`, `a, b`) allows nothing extra.
        for host in self.allow_hosts.iter().map(|h| h.trim()).filter(|h| !h.is_empty()) {
            options = options.allow_origin(host.parse::<Origin>().map_err(|e| failure(FailureType::ConfigError, e))?);
        }
        Ok(options)
    }

    /// Where precompiled components are kept, if anywhere.
    pub fn cache_dir(&self) -> Option<PathBuf> {
        if self.no_cache { None } else { self.cache_dir.clone().or_else(crate::engine::default_cache_dir) }
    }
}

/// The verbs of the Airbyte source command line, plus `run-many`.
#[derive(Subcommand)]
pub enum Verb {
    /// Print the connector's SPEC message.
    Spec,
    /// Validate a config and test the connection.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the catalog of streams.
    Discover {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Sync the streams of a configured catalog.
    Read {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The configured catalog file.
        #[arg(long)]
        catalog: PathBuf,
        /// The state to start from (a missing file that is also where state is persisted is a first sync).
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
        /// Write a config the connector hands back (CONTROL: a refreshed Instagram Login token)
        /// over the `--config` file, atomically, so the next run uses it.
        #[arg(long, env = "SOURCE_INSTAGRAM_CONFIG_UPDATE")]
        config_update: bool,
    },
    /// Run the syncs of a jobs file concurrently in this process; prints one summary line per job.
    RunMany {
        /// The jobs file (see README, "Running untrusted or many connectors").
        jobs: PathBuf,
        /// Outbound requests in flight at once across all jobs, on top of each job's own cap
        /// (0 = no host-wide cap).
        #[arg(long, env = "SOURCE_INSTAGRAM_MAX_REQUESTS_TOTAL", default_value_t = 256)]
        max_requests_total: usize,
    },
}

/// Where protocol messages go (stdout for the CLI).
pub type Writer<W> = Arc<Mutex<AirbyteWriter<W>>>;

fn emit<W: Write + Send>(writer: &Writer<W>, message: &impl serde::Serialize) {
    writer.lock().unwrap_or_else(|p| p.into_inner()).write_message(message);
}

fn failure(failure_type: FailureType, message: String) -> Failure {
    Failure { message, internal_message: None, failure_type }
}

/// A failure of the host or a limit: reported as a `system_error` (and on stderr).
fn host_failure(error: HostError) -> Failure {
    eprintln!("source-instagram-host: {error}");
    error.to_failure()
}

/// Runs `verb`; `Ok(true)` when it succeeded, `Ok(false)` when a tenant of `run-many` did not,
/// `Err` with the failure to print as the closing TRACE ERROR.
pub async fn run_verb<W: Write + Send + 'static>(
    verb: Verb,
    settings: &OperatorSettings,
    connector: &Connector,
    writer: Writer<W>,
) -> Result<bool, Failure> {
    match verb {
        Verb::Spec => {
            let spec = connector.spec(writer.clone()).await.map_err(host_failure)?;
            let spec = RawValue::from_string(spec)
                .map_err(|e| failure(FailureType::SystemError, format!("The connector's spec is not JSON: {e}")))?;
            emit(&writer, &airbyte_messages::spec(&spec));
        }
        Verb::Check { config } => {
            let config = read_file(&config, "config")?;
            let options = settings.options(&config)?;
            let status = connector.check(&options, writer.clone(), &config).await.map_err(host_failure)?;
            emit(&writer, &airbyte_messages::connection_status(status.err().as_ref().map(|f| f.message.as_str())));
        }
        Verb::Discover { config } => {
            let config = read_file(&config, "config")?;
            let options = settings.options(&config)?;
            let catalog = connector.discover(&options, writer.clone(), &config).await.map_err(host_failure)??;
            let catalog = RawValue::from_string(catalog)
                .map_err(|e| failure(FailureType::SystemError, format!("The connector's catalog is not JSON: {e}")))?;
            emit(&writer, &airbyte_messages::catalog(&catalog));
        }
        Verb::Read { config: config_path, catalog, state, state_file, output, record, replay, config_update } => {
            let config = read_file(&config_path, "config")?;
            let options = settings.options(&config)?;
            let catalog = read_file(&catalog, "catalog")?;
            let config_update = config_update.then_some(config_path);
            let job =
                ReadJob { config, catalog, state, state_file, output, record, replay, progress: true, config_update };
            job.run(connector, options, writer.clone()).await.map_err(|(error, _)| match error {
                ReadError::Host(error) => host_failure(error),
                other => other.to_failure(),
            })?;
        }
        Verb::RunMany { jobs, max_requests_total } => {
            let text = read_file(&jobs, "jobs")?;
            let parsed = serde_json::from_str(&text)
                .map_err(|e| failure(FailureType::ConfigError, format!("The jobs file is not valid: {e}")))?;
            let base = jobs.parent().unwrap_or(Path::new(".")).to_path_buf();
            let cache_dir = settings.cache_dir();
            let pool = (max_requests_total > 0).then(|| RequestPool::new(max_requests_total));
            let reports = run_many(connector, parsed, &base, settings.limits(), cache_dir.as_deref(), pool).await;
            let mut out = writer.lock().unwrap_or_else(|p| p.into_inner());
            for report in &reports {
                let (status, detail) = match &report.outcome {
                    Outcome::Succeeded => ("succeeded", String::new()),
                    Outcome::Failed(message) => ("failed", message.clone()),
                    Outcome::Stopped(message) => ("stopped", message.clone()),
                };
                out.write_message(&json!({
                    "tenant": report.name, "status": status, "detail": detail,
                    "records": report.records, "seconds": report.duration.as_secs_f64(),
                }));
            }
            return Ok(reports.iter().all(|report| report.outcome == Outcome::Succeeded));
        }
    }
    Ok(true)
}

/// An executable's command line, or the exit code once clap has printed help, the version (0)
/// or a usage error (1).
pub fn parse<T: clap::Parser>() -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|error| {
        let _ = error.print();
        if error.use_stderr() { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS }
    })
}

/// Where an executable's connector component comes from.
pub enum ComponentSource {
    /// A `.wasm` file named on the command line (`source-instagram-host COMPONENT …`).
    File(PathBuf),
    /// Bytes carried inside the executable (the one-file `source-instagram`).
    Embedded(&'static [u8]),
}

/// An executable's whole run: protocol messages to stdout (a closing TRACE ERROR if the command
/// fails), the host's own diagnostics to stderr; the process exit code.
pub fn main(component: ComponentSource, settings: OperatorSettings, verb: Verb) -> std::process::ExitCode {
    use std::os::fd::AsFd;
    // When stdout is a file, a state persisted on disk must not get ahead of it: it is synced too.
    let stdout_file = std::io::stdout().as_fd().try_clone_to_owned().ok().map(std::fs::File::from);
    let writer = AirbyteWriter::new(std::io::BufWriter::new(std::io::stdout())).syncing(stdout_file);
    let writer: Writer<std::io::BufWriter<std::io::Stdout>> = Arc::new(Mutex::new(writer));
    let code = match run_with(component, settings, verb, writer.clone()) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(failure) => {
            writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write_message(&crate::messages::trace_error(None, &failure));
            std::process::ExitCode::FAILURE
        }
    };
    writer.lock().unwrap_or_else(|p| p.into_inner()).flush();
    code
}

fn run_with(
    component: ComponentSource,
    settings: OperatorSettings,
    verb: Verb,
    writer: Writer<std::io::BufWriter<std::io::Stdout>>,
) -> Result<bool, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Failure {
        message: format!("Cannot start the async runtime: {e}"),
        internal_message: None,
        failure_type: FailureType::SystemError,
    })?;
    let cache_dir = settings.cache_dir();
    let loaded = match &component {
        ComponentSource::File(path) => Connector::load(path, cache_dir.as_deref()),
        ComponentSource::Embedded(bytes) => Connector::load_bytes(bytes, cache_dir.as_deref()),
    };
    let (connector, _) = loaded.map_err(|e| {
        let error = HostError::Load(e);
        eprintln!("source-instagram: {error}");
        error.to_failure()
    })?;
    runtime.block_on(run_verb(verb, &settings, &connector, writer))
}
