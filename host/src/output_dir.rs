//! `--output DIR`: one JSONL file of record data per stream plus `state.json`.
//!
//! Order of writes is the guarantee: before a state is persisted, every stream file is flushed and
//! synced, so after a crash the state on disk never covers records that are not on disk. Stream
//! files are only ever appended to: a resumed or repeated sync adds its records after the earlier
//! ones (at-least-once, like an Airbyte `append` destination) and never truncates records an
//! earlier state already covers. What it does cut is a torn last line (a record half written when
//! a run was killed or its disk filled): no state covers it, so the resumed sync writes it again,
//! and appending after it would have glued two records into one unreadable line.

use crate::messages::{MessageSink, describe_stream_failure, now_millis};
use crate::state_file::PersistingSink;
use crate::{Failure, LogLevel, StreamStatus};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};

/// The write buffer of each output file. Small on purpose: a `run-many` of 1,000 tenants holds
/// five per tenant at once (1 KiB instead of 4: 6 MiB less at 1,000 tenants, for 3 % more CPU on
/// a 20,000-record sync into a directory; `docs/performance.md`).
pub const OUTPUT_BUFFER: usize = 1024;
use std::path::{Path, PathBuf};

/// Records to files; everything else (logs, statuses, errors, states) to `inner`.
pub struct DirectorySink<S: MessageSink> {
    dir: PathBuf,
    files: BTreeMap<String, BufWriter<File>>,
    counts: BTreeMap<String, u64>,
    inner: S,
    failed: Option<String>,
    stream_failures: Vec<String>,
}

impl<S: MessageSink> DirectorySink<S> {
    /// Creates `dir` if needed; stream files are opened for appending on their first record.
    pub fn create(dir: &Path, inner: S) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(DirectorySink {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            counts: BTreeMap::new(),
            inner,
            failed: None,
            stream_failures: Vec::new(),
        })
    }

    /// Records written per stream.
    pub fn counts(&self) -> &BTreeMap<String, u64> {
        &self.counts
    }

    /// Every stream failure reported so far, as `stream: message (failure_type)`.
    pub fn stream_failures(&self) -> &[String] {
        &self.stream_failures
    }

    fn write_record(&mut self, stream: &str, data: &RawValue) -> std::io::Result<()> {
        if !self.files.contains_key(stream) {
            let safe: String =
                stream.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
            let path = self.dir.join(format!("{safe}.jsonl"));
            let file = File::options().create(true).read(true).append(true).open(&path)?;
            let cut = cut_torn_line(&file)?;
            if cut > 0 {
                let message = format!(
                    "{}: removed a torn last line of {cut} bytes (a record half written when an earlier run stopped; no state covers it, so it is read again)",
                    path.display()
                );
                self.inner.log(LogLevel::Warn, &message);
            }
            self.files.insert(stream.to_owned(), BufWriter::with_capacity(OUTPUT_BUFFER, file));
        }
        if let Some(file) = self.files.get_mut(stream) {
            writeln!(file, r#"{{"emitted_at":{},"data":{}}}"#, now_millis(), data.get())?;
        }
        *self.counts.entry(stream.to_owned()).or_default() += 1;
        Ok(())
    }

    /// Flushes and syncs every stream file.
    pub fn sync_files(&mut self) -> std::io::Result<()> {
        for file in self.files.values_mut() {
            file.flush()?;
            file.get_ref().sync_data()?;
        }
        Ok(())
    }

    /// The first write failure ends the output: lines still buffered are dropped (no state
    /// covers them) and each file is cut back to its last whole line, so it stays readable.
    fn note_failure(&mut self, error: std::io::Error) {
        if self.failed.is_some() {
            return;
        }
        let message = format!("Cannot write to the output directory {}: {error}", self.dir.display());
        self.inner.log(LogLevel::Error, &message);
        self.failed = Some(message);
        for (_, file) in std::mem::take(&mut self.files) {
            let (file, _unwritten) = file.into_parts();
            let _ = cut_torn_line(&file);
        }
    }
}

/// Cuts `file` back to just after its last newline, if it ends inside a line; the bytes cut.
fn cut_torn_line(file: &File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let length = file.metadata()?.len();
    let mut reader = file;
    let mut end = length;
    let mut chunk = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let part = &mut chunk[..(end - start) as usize];
        reader.seek(SeekFrom::Start(start))?;
        reader.read_exact(part)?;
        if let Some(newline) = part.iter().rposition(|&b| b == b'\n') {
            end = start + newline as u64 + 1;
            break;
        }
        end = start;
    }
    if end < length {
        file.set_len(end)?;
    }
    Ok(length - end)
}

impl<S: MessageSink> MessageSink for DirectorySink<S> {
    fn record(&mut self, stream: &str, data: &RawValue) {
        if self.failed.is_some() {
            return;
        }
        if let Err(error) = self.write_record(stream, data) {
            self.note_failure(error);
        }
    }

    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        // Data first: a state must never be on disk before the records it covers, nor after a
        // record that could not be written.
        if self.make_durable().is_ok() {
            self.inner.state(stream, stream_state, record_count);
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.inner.log(level, message);
    }

    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        self.inner.stream_status(stream, status, rate_limited_until_ms);
    }

    fn write_failure(&self) -> Option<String> {
        self.failed.clone().or_else(|| self.inner.write_failure())
    }

    fn make_durable(&mut self) -> Result<(), String> {
        if let Err(error) = self.sync_files() {
            self.note_failure(error);
        }
        self.failed.clone().map_or(Ok(()), Err)?;
        self.inner.make_durable()
    }

    fn config_updated(&mut self, config: &RawValue) {
        self.inner.config_updated(config);
    }

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        let _ = self.sync_files();
        if let Some(stream) = stream {
            self.stream_failures.push(describe_stream_failure(stream, failure));
        }
        self.inner.error(stream, failure);
    }
}

/// A directory sink whose states are persisted to `DIR/state.json`.
pub fn directory_with_state<S: MessageSink>(
    dir: &Path,
    inner: S,
    initial_state: Option<&str>,
) -> std::io::Result<DirectorySink<PersistingSink<S>>> {
    std::fs::create_dir_all(dir)?;
    let persisting = PersistingSink::new(inner, dir.join("state.json"), initial_state)?;
    DirectorySink::create(dir, persisting)
}
