//! `make bench`: host start-up and multi-tenant figures, measured on this machine.
//!
//! * `spec` wall time: compiling (empty cache), loading a precompiled artifact (warm cache), and
//!   with the cache disabled;
//! * instantiation: one fresh store + instance + `spec` call, averaged, in-process;
//! * peak RSS of one `run-many` process for 1, 100 and 500 tenants, idle (blocked in the host) and
//!   syncing (Api, users, media, stories from the sandbox), read with `wait4`.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use e2e_tests::{Scratch, catalog_of, component, host_binary, hostile_component};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_host::{AirbyteWriter, Connector};
use serde_json::json;
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

/// Wall time and peak RSS (KiB) of a host child process (reaped by `wait4`, which reports its usage).
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (Duration, i64, bool) {
    let started = Instant::now();
    let child = Command::new(host_binary())
        .arg(component())
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: plain libc call on our own child's pid, with valid out-pointers.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        usage
    };
    (started.elapsed(), usage.ru_maxrss, status == 0)
}

fn main() {
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

    println!("\n## Tenants in one `run-many` process (peak RSS of the whole process)");
    println!("| tenants | idle: peak RSS | idle: wall | syncing: peak RSS | syncing: wall | all succeeded |");
    let model = Model::generate(&ModelSpec {
        accounts: 2,
        media_per_account: 4,
        stories_per_account: 1,
        ..ModelSpec::default()
    });
    let sandbox = Sandbox::start(SandboxOptions::new(model)).expect("sandbox");
    let origin = format!("http://{}", sandbox.addr());
    let config = json!({"access_token": sandbox.token(), "base_url": sandbox.base_url()});
    for tenants in [1usize, 100, 500] {
        let scratch = Scratch::new("bench-tenants");
        let idle: Vec<_> = (0..tenants)
            .map(|i| json!({"name": format!("idle-{i}"), "config": {"mode": "sleep"}, "catalog": {"streams": []},
                            "output": format!("idle-{i}"), "component": hostile_component(), "limits": {"wall_time_secs": 2}}))
            .collect();
        let syncing: Vec<_> = (0..tenants)
            .map(|i| json!({"name": format!("sync-{i}"), "config": config, "catalog": catalog_of(&["Api", "users", "media", "stories"]),
                            "output": format!("sync-{i}"), "allow_hosts": [origin]}))
            .collect();
        let idle_jobs = scratch.write("idle.json", &json!({"jobs": idle}).to_string());
        let sync_jobs = scratch.write("sync.json", &json!({"jobs": syncing}).to_string());
        let cache = ["--cache-dir", warm_dir.path().to_str().expect("path")];
        let (idle_wall, idle_rss, _) =
            run_measured(&[&cache[..], &["run-many", idle_jobs.to_str().expect("path")]].concat());
        let (sync_wall, sync_rss, ok) =
            run_measured(&[&cache[..], &["run-many", sync_jobs.to_str().expect("path")]].concat());
        println!(
            "| {tenants} | {:.1} MiB | {} | {:.1} MiB | {} | {ok} |",
            idle_rss as f64 / 1024.0,
            ms(idle_wall),
            sync_rss as f64 / 1024.0,
            ms(sync_wall)
        );
    }
}
