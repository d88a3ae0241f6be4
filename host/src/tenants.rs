//! Many syncs in one process (`run-many JOBS.json`).
//!
//! Tenants share the compiled component and nothing else: each gets its own store (memory, CPU,
//! wall-time cap), its own egress policy and request slots, its own sink and output directory. One
//! tenant that traps, exhausts a limit or is denied egress ends only its own run.

use crate::read_job::{ReadError, ReadJob};
use crate::{AirbyteWriter, Connector, Limits, Origin, RequestPool, RunOptions, SharedSink};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The jobs file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsFile {
    /// Limits every job starts from.
    #[serde(default)]
    pub defaults: LimitOverrides,
    /// The tenants.
    pub jobs: Vec<Job>,
}

/// One tenant's sync.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Unique name, used in the summary.
    pub name: String,
    /// The config object, or a path to a config file (kept as text: a thousand tenants' parsed
    /// objects would be megabytes of small allocations held for the whole run).
    pub config: Box<RawValue>,
    /// The configured catalog object, or a path to one.
    pub catalog: Box<RawValue>,
    /// A state file to start from (and to update); missing means a first sync.
    #[serde(default)]
    pub state: Option<PathBuf>,
    /// Where records, `state.json` and `messages.jsonl` go.
    pub output: PathBuf,
    /// Extra origins this tenant may reach (e.g. `http://127.0.0.1:8123`).
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Limits for this tenant, over the defaults.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// Another component for this tenant (compiled once per distinct path, shared by its tenants).
    #[serde(default)]
    pub component: Option<PathBuf>,
    /// Write a config the connector hands back (a refreshed token) over the job's config file
    /// (`config` must then be a path).
    #[serde(default)]
    pub config_update: bool,
}

/// Limit settings in a jobs file; unset fields keep the value below them.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Guest memory in MiB.
    pub memory_mib: Option<usize>,
    /// Guest CPU time in seconds.
    pub cpu_secs: Option<f64>,
    /// Wall-time cap in seconds.
    pub wall_time_secs: Option<u64>,
    /// Outbound requests in flight.
    pub max_concurrent_requests: Option<usize>,
    /// Largest response body in MiB.
    pub max_response_mib: Option<u64>,
    /// Cap on each request timeout, in seconds.
    pub request_timeout_secs: Option<u64>,
    /// How long a failing request is retried, in seconds.
    pub retry_budget_secs: Option<u64>,
    /// The longest one pacing wait, in seconds.
    pub pacing_wait_secs: Option<u64>,
    /// How long pacing may hold a sync back in a row, in seconds.
    pub pacing_budget_secs: Option<u64>,
}

impl LimitOverrides {
    /// `base` with these overrides applied.
    pub fn apply(&self, mut base: Limits) -> Limits {
        if let Some(mib) = self.memory_mib {
            base.memory_bytes = mib << 20;
        }
        if let Some(secs) = self.cpu_secs.filter(|s| s.is_finite() && *s > 0.0) {
            base.cpu_time = Some(Duration::from_secs_f64(secs.min(1e9)));
        }
        if let Some(secs) = self.wall_time_secs {
            base.wall_time = Some(Duration::from_secs(secs));
        }
        if let Some(n) = self.max_concurrent_requests {
            base.max_concurrent_requests = n;
        }
        if let Some(mib) = self.max_response_mib {
            base.max_response_bytes = mib << 20;
        }
        let seconds = |setting: Option<u64>, value: &mut Duration| {
            if let Some(secs) = setting {
                *value = Duration::from_secs(secs);
            }
        };
        seconds(self.request_timeout_secs, &mut base.request_timeout);
        seconds(self.retry_budget_secs, &mut base.retry_budget);
        seconds(self.pacing_wait_secs, &mut base.pacing_wait_cap);
        seconds(self.pacing_budget_secs, &mut base.pacing_budget);
        base
    }
}

/// How a tenant's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every stream synced.
    Succeeded,
    /// The component reported a failure (some streams failed, bad config, …).
    Failed(String),
    /// The host stopped it (limit, trap) or could not start it.
    Stopped(String),
}

/// One line of the summary.
#[derive(Clone, Debug)]
pub struct TenantReport {
    /// The job's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Records written per stream.
    pub records: BTreeMap<String, u64>,
    /// Wall time of the run.
    pub duration: Duration,
}

fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

fn text_or_file(value: &RawValue, base: &Path, what: &str) -> Result<String, String> {
    if value.get().starts_with('{') {
        return Ok(value.get().to_owned());
    }
    match serde_json::from_str::<String>(value.get()) {
        Ok(path) => std::fs::read_to_string(resolve(base, Path::new(&path)))
            .map_err(|e| format!("cannot read the {what} file {path}: {e}")),
        Err(_) => Err(format!("the {what} must be an object or a file path")),
    }
}

/// Runs every job concurrently and reports on each, in the jobs file's order. Jobs without a
/// `component` use `connector`; the others load theirs through `cache_dir`. With a `pool`, all
/// jobs share its request slots (a host-wide cap on requests in flight).
pub async fn run_many(
    connector: &Connector,
    jobs: JobsFile,
    base_dir: &Path,
    base_limits: Limits,
    cache_dir: Option<&Path>,
    pool: Option<RequestPool>,
) -> Vec<TenantReport> {
    let defaults = jobs.defaults.apply(base_limits);
    let mut components: BTreeMap<PathBuf, Result<Connector, String>> = BTreeMap::new();
    for path in jobs.jobs.iter().filter_map(|job| job.component.as_ref()) {
        let path = resolve(base_dir, path);
        components
            .entry(path.clone())
            .or_insert_with(|| Connector::load(&path, cache_dir).map(|(c, _)| c).map_err(|e| format!("{e}")));
    }
    let handles: Vec<_> = jobs
        .jobs
        .into_iter()
        .map(|job| {
            let connector = match &job.component {
                Some(path) => {
                    components.get(&resolve(base_dir, path)).cloned().unwrap_or_else(|| Err("not loaded".into()))
                }
                None => Ok(connector.clone()),
            };
            let (base_dir, pool) = (base_dir.to_path_buf(), pool.clone());
            let limits = job.limits.apply(defaults.clone());
            let name = job.name.clone();
            let task = async move {
                match connector {
                    Ok(connector) => run_one(&connector, job, &base_dir, limits, pool).await,
                    Err(error) => TenantReport {
                        name: job.name,
                        outcome: Outcome::Stopped(format!("cannot load the component: {error}")),
                        records: BTreeMap::new(),
                        duration: Duration::ZERO,
                    },
                }
            };
            (name, tokio::spawn(task))
        })
        .collect();
    let mut reports = Vec::with_capacity(handles.len());
    for (name, handle) in handles {
        reports.push(handle.await.unwrap_or_else(|e| TenantReport {
            name,
            outcome: Outcome::Stopped(format!("the tenant's task failed: {e}")),
            records: BTreeMap::new(),
            duration: Duration::ZERO,
        }));
    }
    reports
}

async fn run_one(
    connector: &Connector,
    job: Job,
    base_dir: &Path,
    limits: Limits,
    pool: Option<RequestPool>,
) -> TenantReport {
    let started = Instant::now();
    let report =
        |outcome, records| TenantReport { name: job.name.clone(), outcome, records, duration: started.elapsed() };
    let inputs = (|| {
        let config = text_or_file(&job.config, base_dir, "config")?;
        let catalog = text_or_file(&job.catalog, base_dir, "catalog")?;
        let mut options = RunOptions { limits, pool, ..RunOptions::for_config(&config) };
        for host in &job.allow_hosts {
            options = options.allow_origin(host.parse::<Origin>()?);
        }
        Ok::<_, String>((config, catalog, options))
    })();
    let (config, catalog, options) = match inputs {
        Ok(inputs) => inputs,
        Err(message) => return report(Outcome::Stopped(message), BTreeMap::new()),
    };
    let output = resolve(base_dir, &job.output);
    let messages = |()| std::fs::File::options().create(true).append(true).open(output.join("messages.jsonl"));
    let log: SharedSink = match std::fs::create_dir_all(&output).and_then(messages) {
        Ok(file) => {
            Arc::new(Mutex::new(AirbyteWriter::new(BufWriter::with_capacity(crate::output_dir::OUTPUT_BUFFER, file))))
        }
        Err(e) => return report(Outcome::Stopped(format!("cannot create {}: {e}", output.display())), BTreeMap::new()),
    };
    // A missing state file is a first sync.
    let state = job.state.as_ref().map(|p| resolve(base_dir, p)).filter(|p| p.exists());
    let config_update = match (job.config_update, serde_json::from_str::<PathBuf>(job.config.get())) {
        (false, _) => None,
        (true, Ok(path)) => Some(resolve(base_dir, &path)),
        (true, Err(_)) => {
            let message = "`config_update` needs `config` as a file path, to write the updated config to".to_owned();
            return report(Outcome::Stopped(message), BTreeMap::new());
        }
    };
    let read = ReadJob { config, catalog, state, output: Some(output), config_update, ..ReadJob::default() };
    let (error, read_report) = match read.run(connector, options, log.clone()).await {
        Ok(read_report) => return report(Outcome::Succeeded, read_report.records),
        Err(failed) => failed,
    };
    let failure = error.to_failure();
    log.lock().unwrap_or_else(|p| p.into_inner()).error(None, &failure);
    let outcome = match error {
        // The summary sentence names the streams; the detail also says why each failed.
        ReadError::Sync(_) => Outcome::Failed(
            [failure.message].into_iter().chain(read_report.stream_failures).collect::<Vec<_>>().join(" | "),
        ),
        _ => Outcome::Stopped(failure.message),
    };
    report(outcome, read_report.records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_or_catalog_is_an_object_or_a_file_path() {
        let dir = std::env::temp_dir().join(format!("tenants-text-or-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("config.json"), r#"{"access_token": "t"}"#).expect("file");
        let raw = |text: &str| RawValue::from_string(text.to_owned()).expect("json");
        assert_eq!(text_or_file(&raw(r#"{"a": [1]}"#), &dir, "config"), Ok(r#"{"a": [1]}"#.to_owned()));
        assert_eq!(text_or_file(&raw(r#""config.json""#), &dir, "config"), Ok(r#"{"access_token": "t"}"#.to_owned()));
        assert!(text_or_file(&raw(r#""missing.json""#), &dir, "config").is_err_and(|e| e.contains("missing.json")));
        assert!(text_or_file(&raw("[1]"), &dir, "catalog").is_err_and(|e| e.contains("object or a file path")));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
