//! State persistence for the CLI: after every STATE message, the latest state of every stream is
//! written to a file atomically (write a temporary file, fsync, rename), so a crash leaves either
//! the previous state or the new one, never a torn file. The protocol output is flushed before
//! each write, so the persisted state is never ahead of the records it covers.

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
        // The inner sink flushes the records before the state line.
        self.inner.state(stream, stream_state, record_count);
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

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.inner.error(stream, failure);
    }

    fn write_failure(&self) -> Option<String> {
        self.failed.clone().or_else(|| self.inner.write_failure())
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
    fn an_unwritable_path_fails_before_the_sync() {
        let path = std::env::temp_dir().join("no-such-dir-for-state").join("state.json");
        assert!(PersistingSink::new(AirbyteWriter::new(Vec::new()), path, None).is_err());
    }
}
