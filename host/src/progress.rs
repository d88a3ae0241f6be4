//! A live view of a sync for a person at a terminal: one line per stream (records, status,
//! rate-limit waits with their end) under a header with the requests sent, and a summary table
//! at the end. The CLI uses it only when stderr is a TTY; it draws on stderr and passes every
//! message on unchanged, so stdout stays protocol-only.

use crate::messages::MessageSink;
use crate::{Failure, LogLevel, StreamStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Wraps a sink and shows the sync's progress on stderr.
pub struct ProgressSink<S: MessageSink> {
    inner: S,
    bars: MultiProgress,
    header: ProgressBar,
    streams: BTreeMap<String, StreamLine>,
    requests_sent: Arc<AtomicU64>,
    started: Instant,
}

struct StreamLine {
    bar: ProgressBar,
    status: &'static str,
}

impl<S: MessageSink> ProgressSink<S> {
    /// `requests_sent` is the run's request counter ([`crate::RunOptions::requests_sent`]).
    pub fn new(inner: S, requests_sent: Arc<AtomicU64>) -> Self {
        let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let header = bars.add(ProgressBar::no_length());
        header.set_style(style("{spinner} {elapsed:>4} {pos} requests sent"));
        header.enable_steady_tick(std::time::Duration::from_millis(200));
        ProgressSink { inner, bars, header, streams: BTreeMap::new(), requests_sent, started: Instant::now() }
    }

    fn line(&mut self, stream: &str) -> &mut StreamLine {
        self.header.set_position(self.requests_sent.load(Ordering::Relaxed));
        let bars = &self.bars;
        self.streams.entry(stream.to_owned()).or_insert_with(|| {
            let bar = bars.add(ProgressBar::no_length());
            bar.set_style(style("  {prefix:<24} {pos:>9} records  {msg}"));
            bar.set_prefix(stream.to_owned());
            StreamLine { bar, status: "STARTED" }
        })
    }

    /// Clears the live lines and prints the summary table on stderr.
    pub fn finish(&mut self) {
        self.header.finish_and_clear();
        self.streams.values().for_each(|line| line.bar.finish_and_clear());
        let _ = self.bars.clear();
        let mut table = format!("{:<24} {:>9}  status\n", "stream", "records");
        for (name, line) in &self.streams {
            table.push_str(&format!("{name:<24} {:>9}  {}\n", line.bar.position(), line.status));
        }
        table.push_str(&format!(
            "{} requests in {:.1} s",
            self.requests_sent.load(Ordering::Relaxed),
            self.started.elapsed().as_secs_f64()
        ));
        eprintln!("{table}");
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn clock(epoch_millis: u64) -> String {
    let seconds = (epoch_millis / 1000) % 86_400;
    format!("{:02}:{:02}:{:02} UTC", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

impl<S: MessageSink> MessageSink for ProgressSink<S> {
    fn record(&mut self, stream: &str, data: &RawValue) {
        let line = self.line(stream);
        line.bar.inc(1);
        if line.status != "RUNNING" {
            line.status = "RUNNING";
            line.bar.set_message("RUNNING");
        }
        self.inner.record(stream, data);
    }

    fn state(&mut self, stream: &str, stream_state: &RawValue, record_count: u64) {
        self.inner.state(stream, stream_state, record_count);
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        self.inner.log(level, message);
    }

    fn stream_status(&mut self, stream: &str, status: StreamStatus, rate_limited_until_ms: Option<u64>) {
        let line = self.line(stream);
        line.status = match status {
            StreamStatus::Started => "STARTED",
            StreamStatus::Running => "RUNNING",
            StreamStatus::Complete => "COMPLETE",
            StreamStatus::Incomplete => "INCOMPLETE",
        };
        match rate_limited_until_ms {
            Some(until) => line.bar.set_message(format!("RATE LIMITED until {}", clock(until))),
            None => line.bar.set_message(line.status),
        }
        self.inner.stream_status(stream, status, rate_limited_until_ms);
    }

    fn config_updated(&mut self, config: &RawValue) {
        self.inner.config_updated(config);
    }

    fn error(&mut self, stream: Option<&str>, failure: &Failure) {
        self.inner.error(stream, failure);
    }

    fn write_failure(&self) -> Option<String> {
        self.inner.write_failure()
    }
}
