//! One `read` as the CLI and each `run-many` tenant run it: where the state comes from and is
//! persisted, where records go, HTTP record/replay, live progress, and the checks after the run
//! (records and states that never reached the disk fail it, whatever the connector said).

use crate::cassette::{Recorder, Replayer, Tape};
use crate::output_dir::directory_with_state;
use crate::progress::ProgressSink;
use crate::state_file::{self, ConfigWritingSink, PersistingSink};
use crate::{Connector, Failure, FailureType, HostError, RunOptions, SharedSink};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a read uses and where its output goes.
#[derive(Default)]
pub struct ReadJob {
    /// The config (JSON text).
    pub config: String,
    /// The configured catalog (JSON text).
    pub catalog: String,
    /// Where the incoming state is; a missing file that is also where state is persisted means
    /// a first sync.
    pub state: Option<PathBuf>,
    /// Persist the latest state of every stream here after each STATE.
    pub state_file: Option<PathBuf>,
    /// Records to `DIR/<stream>.jsonl` (appended), states to `DIR/state.json`.
    pub output: Option<PathBuf>,
    /// Write every HTTP exchange, redacted, to this cassette.
    pub record: Option<PathBuf>,
    /// Answer from this cassette instead of the network.
    pub replay: Option<PathBuf>,
    /// Live progress on stderr when it is a terminal.
    pub progress: bool,
    /// Write a config the component hands back (a refreshed token) over this file.
    pub config_update: Option<PathBuf>,
}

/// How a read ended.
#[derive(Debug)]
pub enum ReadError {
    /// Refused before the sync (bad files, flags that contradict each other): a `config_error`.
    Setup(Failure),
    /// The host or a limit stopped the component.
    Host(HostError),
    /// The component finished but output did not reach the disk: a `system_error`.
    Output(String),
    /// The component reported the sync failed (stream errors were already emitted).
    Sync(Failure),
}

impl ReadError {
    /// The closing failure to report.
    pub fn to_failure(&self) -> Failure {
        match self {
            ReadError::Setup(failure) | ReadError::Sync(failure) => failure.clone(),
            ReadError::Host(error) => error.to_failure(),
            ReadError::Output(message) => failure(FailureType::SystemError, message.clone()),
        }
    }
}

fn failure(failure_type: FailureType, message: String) -> Failure {
    Failure { message, internal_message: None, failure_type }
}

/// Reads a file the user named, as a `config_error` when it cannot be read.
pub fn read_file(path: &Path, what: &str) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| failure(FailureType::ConfigError, format!("Cannot read the {what} file {}: {e}", path.display())))
}

/// What a finished read leaves behind.
#[derive(Debug, Default)]
pub struct ReadReport {
    /// Records per stream (written to the output directory, when there is one).
    pub records: std::collections::BTreeMap<String, u64>,
    /// Each failed stream with its message and `failure_type`.
    pub stream_failures: Vec<String>,
}

impl ReadJob {
    /// Runs the read; messages other than records in `output` go to `messages`.
    pub async fn run(
        self,
        connector: &Connector,
        mut options: RunOptions,
        messages: SharedSink,
    ) -> Result<ReadReport, (ReadError, ReadReport)> {
        let setup = |f: Failure| (ReadError::Setup(f), ReadReport::default());
        if let (Some(_), Some(dir)) = (&self.state_file, &self.output) {
            let message = format!(
                "--state-file and --output both persist state; with --output the state goes to {}, so drop --state-file.",
                dir.join("state.json").display()
            );
            return Err(setup(failure(FailureType::ConfigError, message)));
        }
        let persisted_at = self.state_file.clone().or_else(|| self.output.as_ref().map(|dir| dir.join("state.json")));
        // One sync per state file, held until this run ends (every writer of an output directory
        // persists to its `state.json`, so this serves the directory too); taken before the state
        // is read, so the state read is the one the last sync left.
        if let Some(dir) = &self.output {
            std::fs::create_dir_all(dir).map_err(|e| {
                setup(failure(
                    FailureType::ConfigError,
                    format!("Cannot use the output directory {}: {e}", dir.display()),
                ))
            })?;
        }
        let _lock = match &persisted_at {
            Some(path) => Some(lock(path).map_err(setup)?),
            None => None,
        };
        let state = match &self.state {
            Some(path) if Some(path) == persisted_at.as_ref() && !path.exists() => None,
            Some(path) => Some(read_file(path, "state").map_err(setup)?),
            None => None,
        };
        let recorder = self.record.as_ref().map(|_| Arc::new(Recorder::new(Recorder::secrets_of(&self.config))));
        options.tape = match (&recorder, &self.replay) {
            (Some(recorder), _) => Some(Tape::Record(recorder.clone())),
            (None, Some(path)) => Some(Tape::Replay(Arc::new(
                Replayer::load(path).map_err(|e| setup(failure(FailureType::ConfigError, e)))?,
            ))),
            (None, None) => None,
        };
        let directory = match &self.output {
            Some(dir) => Some(Arc::new(Mutex::new(
                directory_with_state(dir, messages.clone(), state.as_deref()).map_err(|e| {
                    setup(failure(
                        FailureType::ConfigError,
                        format!("Cannot use the output directory {}: {e}", dir.display()),
                    ))
                })?,
            ))),
            None => None,
        };
        let persisting = match &self.state_file {
            Some(path) => Some(Arc::new(Mutex::new(
                PersistingSink::new(messages.clone(), path.clone(), state.as_deref()).map_err(|e| {
                    setup(failure(
                        FailureType::ConfigError,
                        format!("Cannot write the state file {}: {e}", path.display()),
                    ))
                })?,
            ))),
            None => None,
        };
        let sink: SharedSink = match (&directory, persisting) {
            (Some(directory), _) => directory.clone(),
            (None, Some(persisting)) => persisting,
            (None, None) => messages,
        };
        let sink: SharedSink = match &self.config_update {
            Some(path) => Arc::new(Mutex::new(ConfigWritingSink::new(sink, path.clone()))),
            None => sink,
        };
        // A person at a terminal sees live progress on stderr; pipes and files see nothing extra.
        let progress = (self.progress && std::io::stderr().is_terminal())
            .then(|| Arc::new(Mutex::new(ProgressSink::new(sink.clone(), options.requests_sent.clone()))));
        let sink: SharedSink = match &progress {
            Some(progress) => progress.clone(),
            None => sink,
        };

        let outcome = connector.read(&options, sink, &self.config, &self.catalog, state.as_deref()).await;
        if let Some(progress) = progress {
            progress.lock().unwrap_or_else(|p| p.into_inner()).finish();
        }
        // A write that failed during the sync already stopped it (the sink's calls trap); what
        // is left is the last flush of the stream files.
        let mut report = ReadReport::default();
        let mut disk_error = None;
        if let Some(directory) = directory {
            let mut directory = directory.lock().unwrap_or_else(|p| p.into_inner());
            disk_error = directory.sync_files().err().map(|e| format!("Cannot write to the output directory: {e}"));
            report.records = directory.counts().clone();
            report.stream_failures = directory.stream_failures().to_vec();
        }
        if let (Some(recorder), Some(path)) = (recorder, &self.record) {
            let saved = recorder.save(path).map_err(|e| format!("Cannot write the cassette {}: {e}", path.display()));
            disk_error = disk_error.or(saved.err());
        }
        let error = match (outcome, disk_error) {
            (Err(host), _) => Some(ReadError::Host(host)),
            (Ok(_), Some(message)) => Some(ReadError::Output(message)),
            (Ok(Err(failure)), None) => Some(ReadError::Sync(failure)),
            (Ok(Ok(())), None) => None,
        };
        match error {
            Some(error) => Err((error, report)),
            None => Ok(report),
        }
    }
}

/// Locks the state file at `path` (see [`state_file::lock`]).
fn lock(path: &Path) -> Result<std::fs::File, Failure> {
    state_file::lock(path).map_err(|why| {
        failure(FailureType::ConfigError, format!("Cannot use the state file {}: {why}.", path.display()))
    })
}
