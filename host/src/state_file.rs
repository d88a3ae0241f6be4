//! State persistence for the CLI: after every STATE message, the latest state of every stream is
//! written to a file atomically (write a temporary file, fsync, rename), so a crash leaves either
//! the previous state or the new one, never a torn file. Everything delivered before the state is
//! made durable first (flushed, and synced where it is a file), and a state is never persisted
//! once any of it failed to be written, so the persisted state is never ahead of the records it
//! covers. A state file is used by one sync at a time ([`lock`]).
//!
//! The same way, [`ConfigWritingSink`] writes a config the component hands back (CONTROL
//! `CONNECTOR_CONFIG`: a refreshed token) over the config file it was read from, when the operator
//! asks for it (`--config-update`), so the next run uses the new token.

use crate::messages::MessageSink;
use crate::{Failure, LogLevel, StreamStatus};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Wraps a sink and persists states to `path` as a JSON array of per-stream state messages (the
/// format `read --state` accepts).
pub struct PersistingSink<S: MessageSink> {
    inner: S,
    path: PathBuf,
    states: BTreeMap<String, Box<RawValue>>,
    failed: Option<String>,
}

impl<S: MessageSink> PersistingSink<S> {
    /// Starts from `initial` (the `--state` input, if any) so streams not synced this time keep
    /// their state, and writes that starting point at once: a path that cannot be written fails
    /// here, before the sync, not after it.
    pub fn new(inner: S, path: PathBuf, initial: Option<&str>) -> std::io::Result<Self> {
        // The connector refuses a state it cannot read before anything is persisted; what it can
        // read is carried over here, stream by stream.
        let null = RawValue::from_string("null".into()).map_err(std::io::Error::other)?;
        let states = airbyte_messages::parse_states(initial.unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .map(|(name, state)| (name, state.unwrap_or_else(|| null.clone())))
            .collect();
        let sink = PersistingSink { inner, path, states, failed: None };
        sink.persist()?;
        Ok(sink)
    }

    fn persist(&self) -> std::io::Result<()> {
        let messages: Vec<_> =
            self.states.iter().map(|(stream, state)| airbyte_messages::stream_state_message(stream, state)).collect();
        write_atomically(&self.path, serde_json::to_string_pretty(&messages)?.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = directory.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

impl<S: MessageSink> MessageSink for PersistingSink<S> {
    fn record(&mut self, stream: &str, data: &RawValue) {
        self.inner.record(stream, data);
    }

    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        if self.failed.is_some() {
            return;
        }
        self.inner.state(stream, stream_state, record_count);
        // Never ahead of the output: the records before this state, and the state line, must
        // have been written whole.
        if let Err(message) = self.inner.make_durable() {
            self.failed =
                Some(format!("The state was not saved, because the output before it was not written: {message}"));
            return;
        }
        self.states.insert(stream.to_owned(), stream_state.to_owned());
        if let Err(error) = self.persist() {
            let message = format!("Cannot write the state file {}: {error}", self.path.display());
            self.inner.log(LogLevel::Error, &message);
            self.failed.get_or_insert(message);
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.inner.log(level, message);
    }

    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        self.inner.stream_status(stream, status, rate_limited_until_ms);
    }

    fn config_updated(&mut self, config: &RawValue) {
        self.inner.config_updated(config);
    }

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.inner.error(stream, failure);
    }

    fn write_failure(&self) -> Option<String> {
        self.failed.clone().or_else(|| self.inner.write_failure())
    }

    fn make_durable(&mut self) -> Result<(), String> {
        self.inner.make_durable()?;
        self.failed.clone().map_or(Ok(()), Err)
    }
}

/// Holds `path` for this process: an exclusive lock on `.<name>.lock` beside it (a lock on the
/// file itself would not survive the rename of each save). A second sync that asks for the same
/// path, in this process or another, is refused with a message saying why, instead of
/// interleaving its writes with the first's. The lock lasts as long as the returned file.
pub fn lock(path: &Path) -> Result<std::fs::File, String> {
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lock_path = directory.join(format!(".{name}.lock"));
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot create its lock file {}: {e}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another sync is using it (it holds {}); give each sync its own output directory and state file",
            lock_path.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", lock_path.display())),
    }
}

/// Wraps a sink and writes each config the component hands back to `path` atomically, before the
/// CONTROL message goes on: once a reader has seen the new config, the file holds it too. A file
/// that cannot be written is an ERROR log (the previous token keeps working until it expires).
pub struct ConfigWritingSink<S: MessageSink> {
    inner: S,
    path: PathBuf,
}

impl<S: MessageSink> ConfigWritingSink<S> {
    /// Writes configs handed back to `path` (the file the config was read from).
    pub fn new(inner: S, path: PathBuf) -> Self {
        ConfigWritingSink { inner, path }
    }
}

impl<S: MessageSink> MessageSink for ConfigWritingSink<S> {
    fn record(&mut self, stream: &str, data: &RawValue) {
        self.inner.record(stream, data);
    }

    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        self.inner.state(stream, stream_state, record_count);
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.inner.log(level, message);
    }

    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        self.inner.stream_status(stream, status, rate_limited_until_ms);
    }

    fn config_updated(&mut self, config: &RawValue) {
        let pretty = serde_json::from_str::<serde_json::Value>(config.get())
            .and_then(|value| serde_json::to_string_pretty(&value));
        match pretty.map_err(std::io::Error::other).and_then(|text| write_atomically(&self.path, text.as_bytes())) {
            Ok(()) => self.inner.log(
                LogLevel::Info,
                &format!("The updated config (a refreshed token) was written to {}.", self.path.display()),
            ),
            Err(error) => self.inner.log(
                LogLevel::Error,
                &format!(
                    "The updated config could not be written to {} ({error}); the next run uses the config as it was.",
                    self.path.display()
                ),
            ),
        }
        self.inner.config_updated(config);
    }

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.inner.error(stream, failure);
    }

    fn write_failure(&self) -> Option<String> {
        self.inner.write_failure()
    }

    fn make_durable(&mut self) -> Result<(), String> {
        self.inner.make_durable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AirbyteWriter;

    #[test]
    fn keeps_other_streams_and_replaces_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("state-file-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.json");
        let initial = r#"[{"type":"STREAM","stream":{"stream_descriptor":{"name":"other"},"stream_state":{"x":1}}}]"#;
        let mut sink =
            PersistingSink::new(AirbyteWriter::new(Vec::new()), path.clone(), Some(initial)).expect("writable");
        let state = RawValue::from_string(r#"{"states":[]}"#.into()).expect("raw");
        sink.state("user_insights", &state, 3);
        let written: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("file")).expect("json");
        let names: Vec<&str> = written
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|m| m.pointer("/stream/stream_descriptor/name")?.as_str())
            .collect();
        assert_eq!(names, ["other", "user_insights"]);
        assert!(sink.write_failure().is_none());
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1, "no temporary file left behind");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_path_is_held_by_one_sync_at_a_time() {
        let dir = std::env::temp_dir().join(format!("state-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.json");
        let held = lock(&path).expect("first");
        assert!(lock(&path).expect_err("second").contains("another sync is using it"));
        drop(held);
        assert!(lock(&path).is_ok(), "free again once the first is done");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A state whose output before it was not written is never persisted, and nothing after it.
    #[test]
    fn a_state_is_not_saved_past_output_that_failed() {
        let dir = std::env::temp_dir().join(format!("state-durable-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("state.json");
        let full = std::fs::File::options().write(true).open("/dev/full").expect("/dev/full");
        let writer = AirbyteWriter::new(std::io::BufWriter::new(full));
        let mut sink = PersistingSink::new(writer, path.clone(), None).expect("writable");
        let before = std::fs::read_to_string(&path).expect("initial");
        let state = RawValue::from_string(r#"{"cursor":"2026-01-01"}"#.into()).expect("raw");
        sink.record("media", &state);
        sink.state("media", &state, 1);
        sink.state("media", &state, 0);
        assert_eq!(std::fs::read_to_string(&path).expect("file"), before, "the state file did not move");
        assert!(sink.write_failure().is_some());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unwritable_path_fails_before_the_sync() {
        let path = std::env::temp_dir().join("no-such-dir-for-state").join("state.json");
        assert!(PersistingSink::new(AirbyteWriter::new(Vec::new()), path, None).is_err());
    }
}
