//! `make bench`: host start-up and multi-tenant figures, measured on this machine.
//!
//! * `spec` wall time: compiling (empty cache), loading a precompiled artifact (warm cache), and
//!   with the cache disabled;
//! * instantiation: one fresh store + instance + `spec` call, averaged, in-process;
//! * peak RSS of one `run-many` process for 1, 100, 500 and 1,000 tenants, idle (blocked in the
//!   host), syncing four streams (Api, users, media, stories), and syncing every stream (full
//!   catalogs) from the sandbox, read with `wait4`; every tenant compared with a solo run;
//! * Benchmark L: 2 accounts × 2,000 media (mixed types, carousels of 2–5 slides), 5 stories and
//!   30 days of insights, every stream, against the sandbox as a separate process, at 0 and
//!   50 ms latency, with the call-reduction switches on and off. Wall time, user+sys CPU and peak
//!   RSS of the host process (`wait4`), calls and round trips from the sandbox's counters.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use e2e_tests::{Scratch, catalog_of, component, host_binary, hostile_component};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_host::{AirbyteWriter, Connector};
use serde_json::Value;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn spec_once(extra: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(host_binary()).arg(component()).args(extra).arg("spec").output().expect("spec");
    assert!(status.status.success());
    started.elapsed()
}

/// What `wait4` reports of a finished host process.
struct Measured {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: i64,
    ok: bool,
}

/// Runs the host with `args`, stdout to `stdout` (or nowhere), and measures it.
///
/// Through a freshly started copy of this binary (`--measure`): Linux carries the parent's memory
/// high-water mark into a child's `ru_maxrss` at `exec`, so a child of this (large) process would
/// report at least this process's RSS.
fn measure(args: &[&str], stdout: Option<&Path>) -> Measured {
    let out = match stdout {
        Some(path) => std::process::Stdio::from(std::fs::File::create(path).expect("stdout file")),
        None => std::process::Stdio::null(),
    };
    let helper = Command::new(std::env::current_exe().expect("bench binary"))
        .arg("--measure")
        .arg(host_binary())
        .arg(component())
        .args(args)
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("measuring helper");
    let report = String::from_utf8_lossy(&helper.stderr);
    let numbers: Vec<u64> =
        report.lines().last().unwrap_or("").split_whitespace().filter_map(|n| n.parse().ok()).collect();
    let [wall_us, cpu_us, rss_kib, status] = numbers[..] else { panic!("no measurement: {report}") };
    Measured {
        wall: Duration::from_micros(wall_us),
        cpu: Duration::from_micros(cpu_us),
        peak_rss_kib: rss_kib as i64,
        ok: status == 0,
    }
}

/// `bench --measure PROGRAM ARGS…`: run it with inherited stdout and print
/// `wall_us cpu_us maxrss_kib status` on stderr.
#[allow(clippy::zombie_processes)]
fn measure_helper(program: &str, args: &[String]) -> ! {
    let started = Instant::now();
    let child = Command::new(program).args(args).spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: plain libc call on our own child's pid, with valid out-pointers; it reaps the child.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    eprintln!(
        "{} {} {} {}",
        started.elapsed().as_micros(),
        micros(usage.ru_utime) + micros(usage.ru_stime),
        usage.ru_maxrss,
        status
    );
    std::process::exit(0)
}

fn run_measured(args: &[&str]) -> (Duration, i64, bool) {
    let m = measure(args, None);
    (m.wall, m.peak_rss_kib, m.ok)
}

/// The sandbox binary on a free port; its base URL.
struct SandboxProcess {
    child: std::process::Child,
    base_url: String,
}

impl SandboxProcess {
    fn start(args: &[&str]) -> SandboxProcess {
        let binary = e2e_tests::workspace_root().join("target/release/graph-sandbox");
        let mut child = Command::new(binary)
            .args(["--port", "0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("sandbox");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("base url");
        SandboxProcess { child, base_url: line.trim().to_owned() }
    }

    /// Benchmark L's model: 2 accounts × 2,000 media and 5 stories, plus `args`.
    fn start_l(args: &[&str]) -> SandboxProcess {
        let l = ["--accounts", "2", "--pages-without-instagram", "0", "--media", "2000", "--stories", "5"];
        SandboxProcess::start(&[&l[..], args].concat())
    }

    fn stats(&self) -> Value {
        let authority = self.base_url.trim_start_matches("http://").split('/').next().unwrap_or("");
        let mut stream = std::net::TcpStream::connect(authority).expect("connect");
        write!(stream, "GET /__sandbox/stats HTTP/1.0\r\nHost: {authority}\r\n\r\n").expect("request");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("answer");
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("{}")).expect("stats")
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One measured `read` of every stream (incremental where supported) against `sandbox`; the
/// measurements and the file holding stdout.
fn read_every_stream(
    warm_cache: &Path,
    sandbox: &SandboxProcess,
    scratch: &Scratch,
    config: &Value,
    extra: &[&str],
) -> (Measured, std::path::PathBuf) {
    let config_path = scratch.write("config.json", &config.to_string());
    let catalog_path = scratch.write("catalog.json", &e2e_tests::catalog_all().to_string());
    let origin = sandbox.base_url.rsplit_once("/v").map_or(sandbox.base_url.as_str(), |(origin, _)| origin).to_owned();
    let output = scratch.path().join("messages.jsonl");
    let mut args = vec![
        "--cache-dir",
        warm_cache.to_str().expect("path"),
        "--allow-host",
        &origin,
        "read",
        "--config",
        config_path.to_str().expect("path"),
        "--catalog",
        catalog_path.to_str().expect("path"),
    ];
    args.extend_from_slice(extra);
    let measured = measure(&args, Some(&output));
    (measured, output)
}

fn benchmark_l(warm_cache: &Path) {
    println!(
        "\n## Benchmark L: 2 accounts x 2,000 media, 5 stories, 30 days, every stream (num_workers 15; optimisations on: median of 5 runs)"
    );
    println!(
        "| latency | optimisations | wall | CPU (user+sys) | peak RSS | Graph API calls | round trips | records |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for latency in ["0", "50"] {
        for optimised in [true, false] {
            // The default setting's figures are the median run of 5 (by CPU); one run of the other.
            let runs = if optimised { 5 } else { 1 };
            let mut measured: Vec<_> = (0..runs)
                .map(|_| {
                    let sandbox = SandboxProcess::start_l(&["--latency-ms", latency]);
                    let scratch = Scratch::new("bench-l");
                    let config = json!({"access_token": "sandbox-token", "base_url": sandbox.base_url,
                                        "expand_carousel_children": optimised, "batch_insights_requests": optimised,
                                        "user_insights_date_ranges": optimised});
                    let (m, output) = read_every_stream(warm_cache, &sandbox, &scratch, &config, &[]);
                    (m, std::fs::read_to_string(output).unwrap_or_default(), sandbox.stats(), scratch)
                })
                .collect();
            measured.sort_by_key(|(m, ..)| m.cpu);
            let (m, output, stats, _) = measured.swap_remove(runs / 2);
            let mut counts = std::collections::BTreeMap::new();
            for line in output.lines() {
                let message: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                if message["type"] == "RECORD" {
                    *counts.entry(message["record"]["stream"].as_str().unwrap_or("").to_owned()).or_insert(0u64) += 1;
                }
            }
            let records: Vec<String> =
                e2e_tests::ALL_STREAMS.iter().map(|n| format!("{n} {}", counts.get(*n).unwrap_or(&0))).collect();
            println!(
                "| {latency} ms | {} | {} | {:.2} s | {:.1} MiB | {} | {} | {}{} |",
                if optimised { "on" } else { "off" },
                ms(m.wall),
                m.cpu.as_secs_f64(),
                m.peak_rss_kib as f64 / 1024.0,
                stats["calls"],
                stats["round_trips"],
                records.join(", "),
                if m.ok { "" } else { " (exit 1)" }
            );
        }
    }
}

/// RECORD lines in a file of protocol messages.
fn count_records(messages: &Path) -> usize {
    let text = std::fs::read_to_string(messages).unwrap_or_default();
    text.lines().filter(|line| line.contains(r#""type":"RECORD""#)).count()
}

/// Benchmark L synced, then re-synced one simulated day later (5 new posts per account, recent
/// posts' likes, comments and insights moving) with every stream incremental where it can be.
fn next_day(warm_cache: &Path) {
    println!("\n## Next-day re-sync of Benchmark L (every stream incremental where supported, 30-day insights window)");
    println!(
        "| posting cadence | sync | Graph API calls | round trips | wall | records | share of first sync's calls |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (cadence, interval) in [("one post a day", "86400"), ("one post every 2 h", "7200")] {
        let scratch = Scratch::new("bench-next-day");
        let state = scratch.path().join("state.json");
        let mut first_calls = 0u64;
        for days_later in ["0", "1"] {
            let sandbox = SandboxProcess::start_l(&["--media-interval-secs", interval, "--days-later", days_later]);
            let config = json!({"access_token": "sandbox-token", "base_url": sandbox.base_url});
            let state_path = state.to_str().expect("path");
            let extra = ["--state", state_path, "--state-file", state_path];
            let (m, output) = read_every_stream(warm_cache, &sandbox, &scratch, &config, &extra);
            let stats = sandbox.stats();
            let calls = stats["calls"].as_u64().unwrap_or(0);
            if days_later == "0" {
                first_calls = calls;
            }
            let records = count_records(&output);
            println!(
                "| {cadence} | {} | {calls} | {} | {} | {records} | {:.1} %{} |",
                if days_later == "0" { "first" } else { "next day" },
                stats["round_trips"],
                ms(m.wall),
                100.0 * calls as f64 / first_calls.max(1) as f64,
                if m.ok { "" } else { " (exit 1)" }
            );
        }
    }
}

/// Benchmark L's data at 1×, 5× and 10× (2,000 to 20,000 media per account), every stream.
fn scale(warm_cache: &Path) {
    println!("\n## How cost grows: Benchmark L data x1, x5, x10 (0 ms latency, every stream, num_workers 15)");
    println!(
        "| data | media | wall | CPU (user+sys) | peak RSS | Graph API calls | round trips | records | CPU per 1,000 records |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for factor in [1u32, 5, 10] {
        let media = (2_000 * factor).to_string();
        let args = ["--accounts", "2", "--pages-without-instagram", "0", "--media", &media, "--stories", "5"];
        let sandbox = SandboxProcess::start(&args);
        let scratch = Scratch::new("bench-scale");
        let config = json!({"access_token": "sandbox-token", "base_url": sandbox.base_url});
        let (m, output) = read_every_stream(warm_cache, &sandbox, &scratch, &config, &[]);
        let stats = sandbox.stats();
        let records = count_records(&output);
        println!(
            "| {factor}x | {} | {} | {:.2} s | {:.1} MiB | {} | {} | {records} | {:.1} ms{} |",
            2 * 2_000 * factor,
            ms(m.wall),
            m.cpu.as_secs_f64(),
            m.peak_rss_kib as f64 / 1024.0,
            stats["calls"],
            stats["round_trips"],
            m.cpu.as_secs_f64() * 1e6 / records.max(1) as f64,
            if m.ok { "" } else { " (exit 1)" }
        );
    }
}

/// A tenant's records per stream (data only, sorted), from its output directory.
fn tenant_records(dir: &Path) -> BTreeMap<String, Vec<String>> {
    let mut records = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stream) = name.strip_suffix(".jsonl").filter(|s| *s != "messages") else { continue };
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let mut data: Vec<String> = text
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).map(|v| v["data"].to_string()).unwrap_or_default())
            .collect();
        data.sort();
        records.insert(stream.to_owned(), data);
    }
    records
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--measure") && args.len() > 2 {
        measure_helper(&args[2], &args[3..]);
    }
    println!("## Host start-up (median of runs; `source-instagram-host … spec`)");
    let cold: Vec<Duration> = (0..3)
        .map(|_| {
            let scratch = Scratch::new("bench-cold");
            spec_once(&["--cache-dir", scratch.path().to_str().expect("path")])
        })
        .collect();
    let warm_dir = Scratch::new("bench-warm");
    let warm_arg = ["--cache-dir", warm_dir.path().to_str().expect("path")];
    spec_once(&warm_arg);
    let warm: Vec<Duration> = (0..15).map(|_| spec_once(&warm_arg)).collect();
    let uncached: Vec<Duration> = (0..3).map(|_| spec_once(&["--no-cache"])).collect();
    println!("| spec, empty cache (compile + store) | {} |", ms(median(cold)));
    println!("| spec, warm cache (load precompiled) | {} |", ms(median(warm)));
    println!("| spec, cache disabled (compile)      | {} |", ms(median(uncached)));

    let (connector, _) = Connector::load(&component(), Some(warm_dir.path())).expect("load");
    Connector::load(&hostile_component(), Some(warm_dir.path())).expect("warm the idle tenants' component");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let rounds = 300;
    let started = Instant::now();
    for _ in 0..rounds {
        let sink = Arc::new(Mutex::new(AirbyteWriter::new(std::io::sink())));
        runtime.block_on(connector.spec(sink)).expect("spec");
    }
    println!(
        "| instantiate + spec call, per tenant | {:.0} µs |",
        started.elapsed().as_secs_f64() * 1e6 / rounds as f64
    );

    benchmark_l(warm_dir.path());
    next_day(warm_dir.path());
    scale(warm_dir.path());

    println!("\n## Tenants in one `run-many` process (peak RSS of the whole process)");
    println!(
        "| tenants | idle: peak RSS | idle: wall | syncing: peak RSS | syncing: wall | all succeeded | records equal to a solo run | every stream: peak RSS | every stream: wall | every stream: all succeeded, equal to a solo run |"
    );
    type Records = Option<BTreeMap<String, Vec<String>>>;
    let (mut solo, mut solo_full): (Records, Records) = (None, None);
    let sandbox = Sandbox::start(SandboxOptions::new(e2e_tests::small_model())).expect("sandbox");
    let origin = format!("http://{}", sandbox.addr());
    let config = json!({"access_token": sandbox.token(), "base_url": sandbox.base_url()});
    for tenants in [1usize, 100, 500, 1_000] {
        let scratch = Scratch::new("bench-tenants");
        let idle: Vec<_> = (0..tenants)
            .map(|i| json!({"name": format!("idle-{i}"), "config": {"mode": "sleep"}, "catalog": {"streams": []},
                            "output": format!("idle-{i}"), "component": hostile_component(), "limits": {"wall_time_secs": 2}}))
            .collect();
        let syncing: Vec<_> = (0..tenants)
            .map(|i| json!({"name": format!("sync-{i}"), "config": config, "catalog": catalog_of(&["Api", "users", "media", "stories"]),
                            "output": format!("sync-{i}"), "allow_hosts": [origin]}))
            .collect();
        let full: Vec<_> = (0..tenants)
            .map(|i| {
                json!({"name": format!("full-{i}"), "config": config, "catalog": e2e_tests::catalog_all(),
                            "output": format!("full-{i}"), "allow_hosts": [origin]})
            })
            .collect();
        let idle_jobs = scratch.write("idle.json", &json!({"jobs": idle}).to_string());
        let sync_jobs = scratch.write("sync.json", &json!({"jobs": syncing}).to_string());
        let full_jobs = scratch.write("full.json", &json!({"jobs": full}).to_string());
        let cache = ["--cache-dir", warm_dir.path().to_str().expect("path")];
        let (idle_wall, idle_rss, _) =
            run_measured(&[&cache[..], &["run-many", idle_jobs.to_str().expect("path")]].concat());
        let (sync_wall, sync_rss, ok) =
            run_measured(&[&cache[..], &["run-many", sync_jobs.to_str().expect("path")]].concat());
        let (full_wall, full_rss, full_ok) =
            run_measured(&[&cache[..], &["run-many", full_jobs.to_str().expect("path")]].concat());
        let equal_to_solo = |prefix: &str, solo: &mut Records| {
            let outputs: Vec<_> =
                (0..tenants).map(|i| tenant_records(&scratch.path().join(format!("{prefix}-{i}")))).collect();
            let reference = solo.get_or_insert_with(|| outputs[0].clone());
            outputs.iter().filter(|records| *records == reference).count()
        };
        let (equal, equal_full) = (equal_to_solo("sync", &mut solo), equal_to_solo("full", &mut solo_full));
        println!(
            "| {tenants} | {:.1} MiB | {} | {:.1} MiB | {} | {ok} | {equal} of {tenants} | {:.1} MiB | {} | {full_ok}, {equal_full} of {tenants} |",
            idle_rss as f64 / 1024.0,
            ms(idle_wall),
            sync_rss as f64 / 1024.0,
            ms(sync_wall),
            full_rss as f64 / 1024.0,
            ms(full_wall)
        );
    }
}
