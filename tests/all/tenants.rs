//! 100 well-behaved tenants and 5 hostile ones in one process (`run-many`): the hostile ones
//! fail with the right errors, and every well-behaved tenant's output equals a solo run's.

use e2e_tests::{Scratch, catalog_of, config_for, hostile_component, path_str, run_json_lines};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

const STREAMS: [&str; 4] = ["Api", "users", "media", "stories"];

/// Each stream file's records (data only, sorted), without `emitted_at`.
fn outputs(dir: &Path) -> BTreeMap<String, Vec<String>> {
    STREAMS
        .iter()
        .map(|stream| {
            let text = std::fs::read_to_string(dir.join(format!("{stream}.jsonl"))).unwrap_or_default();
            let mut data: Vec<String> = text
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).expect("json line")["data"].to_string())
                .collect();
            data.sort();
            ((*stream).to_owned(), data)
        })
        .collect()
}

fn run_many(scratch: &Scratch, jobs: &Value) -> Vec<Value> {
    let path = scratch.write("jobs.json", &jobs.to_string());
    let out = run_json_lines(&["run-many", path_str(&path)]);
    out.messages
}

#[test]
fn a_hundred_tenants_complete_while_five_hostile_ones_fail_alone() {
    let sandbox = Sandbox::start(SandboxOptions::new(e2e_tests::small_model())).expect("sandbox");
    let scratch = Scratch::new("tenants");
    let origin = format!("http://{}", sandbox.addr());
    let good = |name: String| {
        json!({"name": name, "config": config_for(&sandbox), "catalog": catalog_of(&STREAMS),
               "output": name, "allow_hosts": [origin]})
    };

    let solo = run_many(&scratch, &json!({"jobs": [good("solo".into())]}));
    assert_eq!(solo[0]["status"], "succeeded", "{solo:?}");
    let expected = outputs(&scratch.path().join("solo"));
    assert!(expected.values().all(|records| !records.is_empty()));

    let hostile = hostile_component();
    let hostile_job = |name: &str, config: Value, limits: Value| {
        json!({"name": name, "config": config, "catalog": {"streams": []}, "output": name,
               "component": hostile, "limits": limits})
    };
    let mut jobs: Vec<Value> = (0..100).map(|i| good(format!("tenant-{i:03}"))).collect();
    jobs.extend([
        hostile_job("busy-loop", json!({"mode": "busy-loop"}), json!({"cpu_secs": 0.3})),
        hostile_job("alloc-bomb", json!({"mode": "alloc-bomb"}), json!({"memory_mib": 64})),
        hostile_job("sleeper", json!({"mode": "sleep"}), json!({"wall_time_secs": 2})),
        hostile_job("forbidden-host", json!({"mode": "forbidden-host"}), json!({})),
        hostile_job(
            "loopback-name",
            json!({"mode": "fetch", "url": format!("https://localhost:{}/", sandbox.addr().port()),
                   "base_url": format!("https://localhost:{}/v23.0", sandbox.addr().port())}),
            json!({}),
        ),
    ]);
    let summary = run_many(&scratch, &json!({"jobs": jobs}));
    assert_eq!(summary.len(), 105);
    let by_name: BTreeMap<&str, &Value> = summary.iter().map(|s| (s["tenant"].as_str().unwrap_or(""), s)).collect();

    for i in 0..100 {
        let name = format!("tenant-{i:03}");
        assert_eq!(by_name[name.as_str()]["status"], "succeeded", "{}", by_name[name.as_str()]);
        assert_eq!(outputs(&scratch.path().join(&name)), expected, "{name} differs from the solo run");
        assert!(scratch.path().join(&name).join("state.json").exists());
    }
    let detail = |name: &str| {
        (
            by_name[name]["status"].as_str().unwrap_or("").to_owned(),
            by_name[name]["detail"].as_str().unwrap_or("").to_owned(),
        )
    };
    let (status, message) = detail("busy-loop");
    assert!(status == "stopped" && message.contains("CPU limit exceeded"), "{message}");
    let (status, message) = detail("alloc-bomb");
    assert!(status == "stopped" && message.contains("memory limit exceeded"), "{message}");
    let (status, message) = detail("sleeper");
    assert!(status == "stopped" && message.contains("wall-time limit exceeded"), "{message}");
    let (status, message) = detail("forbidden-host");
    assert!(status == "failed" && message.contains("HttpRequestDenied"), "{message}");
    let (status, message) = detail("loopback-name");
    assert!(status == "failed" && message.contains("DestinationIpProhibited"), "{message}");
    let log = std::fs::read_to_string(scratch.path().join("forbidden-host/messages.jsonl")).expect("log");
    assert!(log.contains("refused an outbound request to https://example.com:443"));
}

#[test]
fn a_tenant_whose_records_cannot_be_written_is_not_reported_as_succeeded() {
    let sandbox = Sandbox::start(SandboxOptions::new(e2e_tests::small_model())).expect("sandbox");
    let scratch = Scratch::new("unwritable");
    // `Api.jsonl` is a directory: the record file cannot be created.
    std::fs::create_dir_all(scratch.path().join("out/Api.jsonl")).expect("blocker");
    let job = json!({"name": "blocked", "config": config_for(&sandbox), "catalog": catalog_of(&["Api"]),
                     "output": "out", "allow_hosts": [format!("http://{}", sandbox.addr())]});
    let summary = run_many(&scratch, &json!({ "jobs": [job] }));
    assert_eq!(summary[0]["status"], "stopped", "{summary:?}");
    assert!(summary[0]["detail"].as_str().unwrap_or("").contains("Cannot write to the output directory"));
}

/// `--max-requests-total` caps the requests in flight across all tenants, as the server sees
/// them; the tenants still all succeed with a solo run's records. Without the cap the same jobs
/// run more requests at once (so the check can fail).
#[test]
fn a_host_wide_request_cap_holds_across_tenants() {
    let peak_with = |cap: &str| {
        let options = SandboxOptions {
            latency: std::time::Duration::from_millis(20),
            ..SandboxOptions::new(e2e_tests::small_model())
        };
        let sandbox = Sandbox::start(options).expect("sandbox");
        let scratch = Scratch::new("request-pool");
        let origin = format!("http://{}", sandbox.addr());
        let job = |name: String| {
            json!({"name": name, "config": config_for(&sandbox), "catalog": catalog_of(&STREAMS),
                   "output": name, "allow_hosts": [origin]})
        };
        let jobs = scratch.write(
            "jobs.json",
            &json!({"jobs": (0..12).map(|i| job(format!("t{i}"))).collect::<Vec<_>>()}).to_string(),
        );
        let summary = run_json_lines(&["run-many", "--max-requests-total", cap, path_str(&jobs)]).messages;
        assert!(summary.iter().all(|s| s["status"] == "succeeded"), "{summary:?}");
        let first = outputs(&scratch.path().join("t0"));
        assert!(first.values().all(|records| !records.is_empty()));
        assert!((1..12).all(|i| outputs(&scratch.path().join(format!("t{i}"))) == first));
        sandbox.stats().peak_in_flight
    };
    assert!(peak_with("2") <= 2);
    assert!(peak_with("0") > 2, "without a host-wide cap the tenants overlap");
}

/// A tenant that takes pool slots and never reads the answers gets them taken back at each
/// request's deadline: a well-behaved tenant sharing a pool of 2 finishes long before the
/// hoarder's own wall-time cap stops it (before, it waited for that cap).
#[test]
fn a_tenant_that_never_reads_its_answers_cannot_keep_the_pool() {
    let sandbox = Sandbox::start(SandboxOptions::new(e2e_tests::small_model())).expect("sandbox");
    let scratch = Scratch::new("hoard");
    let origin = format!("http://{}", sandbox.addr());
    let hoarder = json!({"name": "hoarder", "component": hostile_component(), "catalog": {"streams": []},
        "config": {"mode": "hoard", "count": 2, "url": format!("{}/me", sandbox.base_url())},
        "output": "hoarder", "allow_hosts": [origin], "limits": {"wall_time_secs": 20}});
    let good = json!({"name": "good", "config": config_for(&sandbox), "catalog": catalog_of(&STREAMS),
        "output": "good", "allow_hosts": [origin]});
    let jobs = scratch.write("jobs.json", &json!({"jobs": [hoarder, good]}).to_string());
    let summary =
        run_json_lines(&["run-many", "--max-requests-total", "2", "--request-timeout-secs", "2", path_str(&jobs)])
            .messages;
    let by_name = |name: &str| summary.iter().find(|s| s["tenant"] == name).cloned().expect(name);
    let (good, hoarder) = (by_name("good"), by_name("hoarder"));
    assert_eq!(good["status"], "succeeded", "{good}");
    assert_eq!(hoarder["status"], "stopped", "{hoarder}");
    let seconds = good["seconds"].as_f64().expect("seconds");
    assert!(seconds < 12.0, "the good tenant waited {seconds} s for the hoarder's slots");
}
