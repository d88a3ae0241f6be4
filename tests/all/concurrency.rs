//! `num_workers` requests really are in flight at once inside the single-threaded component,
//! shown on the sandbox's request timestamps (not on wall-clock assertions).

use e2e_tests::{Scratch, peak_in_flight, read};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{LoggedRequest, Sandbox, SandboxOptions};
use serde_json::json;
use std::time::Duration;

/// Sequential round trips: the longest chain of requests each sent after the previous answered.
fn sequential_rounds(requests: &[LoggedRequest]) -> usize {
    let mut sorted: Vec<&LoggedRequest> = requests.iter().collect();
    sorted.sort_by_key(|r| r.answered);
    let mut depth: Vec<usize> = Vec::with_capacity(sorted.len());
    for (i, request) in sorted.iter().enumerate() {
        let before = (0..i).filter(|&j| sorted[j].answered <= request.received).map(|j| depth[j]).max().unwrap_or(0);
        depth.push(before + 1);
    }
    depth.into_iter().max().unwrap_or(0)
}

#[test]
fn insights_of_80_media_take_about_10_round_trips_with_8_workers() {
    let model = Model::generate(&ModelSpec {
        accounts: 1,
        pages_without_instagram: 0,
        media_per_account: 80,
        stories_per_account: 0,
        special_errors: false,
        ..ModelSpec::default()
    });
    let options = SandboxOptions { latency: Duration::from_millis(200), ..SandboxOptions::new(model) };
    let sandbox = Sandbox::start(options).expect("sandbox");
    let scratch = Scratch::new("concurrency");
    // Single requests (no Batch API), to show the in-flight pool itself.
    let config = json!({"access_token": sandbox.token(), "base_url": sandbox.base_url(), "num_workers": 8,
                        "batch_insights_requests": false});
    let out = read(&scratch, &config, &["media_insights"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.records("media_insights").len(), 80);

    let insights: Vec<LoggedRequest> =
        sandbox.requests().into_iter().filter(|r| r.path.ends_with("/insights")).collect();
    assert_eq!(insights.len(), 80);
    assert_eq!(peak_in_flight(&insights), 8, "exactly num_workers requests in flight");
    let rounds = sequential_rounds(&insights);
    assert!((10..=12).contains(&rounds), "80 requests / 8 workers ≈ 10 sequential round trips, got {rounds}");
}
