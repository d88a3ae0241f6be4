//! Faults, throttling and rate limits: every record still arrives, or the failure says why.

use e2e_tests::{Output, Scratch, catalog_all, config_for, read_catalog, start_days_ago};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{RateLimit, Sandbox, SandboxOptions};
use serde_json::Value;
use std::time::Duration;

fn model() -> Model {
    Model::generate(&ModelSpec { accounts: 2, media_per_account: 10, stories_per_account: 2, ..ModelSpec::default() })
}

fn sync(options: SandboxOptions) -> (Sandbox, Output) {
    let sandbox = Sandbox::start(options).expect("sandbox");
    let scratch = Scratch::new("resilience");
    let mut config = config_for(&sandbox);
    config["start_date"] = start_days_ago(5);
    let out = read_catalog(&scratch, &config, &catalog_all(), &[]);
    (sandbox, out)
}

#[test]
fn a_sync_under_ten_percent_faults_delivers_every_record() {
    let (_clean_sandbox, clean) = sync(SandboxOptions::new(model()));
    assert_eq!(clean.code, 0);
    let faulty =
        SandboxOptions { fault_rate: 0.10, fault_seed: 7, retry_after_secs: 0, ..SandboxOptions::new(model()) };
    let (sandbox, out) = sync(faulty);
    assert_eq!(out.code, 0, "{:?}", out.errors());
    let injected = sandbox.requests().iter().filter(|r| r.injected).count();
    assert!(injected >= 3, "faults were injected: {injected}");
    assert_eq!(out.record_set(), clean.record_set(), "same records as a clean run");
    let throttles = sandbox.requests().iter().filter(|r| r.injected && r.status == 400).count();
    if throttles > 0 {
        let announced = out.logs().iter().any(|l| l.contains("throttled by the Graph API"));
        assert!(announced, "throttling (code 4 as HTTP 400) is waited out, and said so");
    }
    let summary = out.logs().into_iter().find(|l| l.starts_with("Read done")).unwrap_or_default();
    assert!(!summary.contains(" 0 retries"), "faults were retried: {summary}");
}

#[test]
fn a_tight_per_token_rate_limit_is_waited_out() {
    let model = Model::generate(&ModelSpec {
        accounts: 1,
        media_per_account: 6,
        stories_per_account: 1,
        ..ModelSpec::default()
    });
    let (_unlimited, clean) = sync(SandboxOptions::new(model.clone()));
    assert_eq!(clean.code, 0, "{:?}", clean.errors());
    let limited = SandboxOptions {
        rate_limit: Some(RateLimit { calls: 8, window: Duration::from_secs(1) }),
        retry_after_secs: 1,
        ..SandboxOptions::new(model)
    };
    let (sandbox, out) = sync(limited);
    assert_eq!(out.code, 0, "{:?}", out.errors());
    assert!(sandbox.requests().iter().any(|r| r.injected), "the limit was hit");
    let rate_limited: Vec<&Value> = out
        .of_type("TRACE")
        .into_iter()
        .filter(|m| m["trace"]["stream_status"]["reasons"][0]["type"] == "RATE_LIMITED")
        .collect();
    assert!(!rate_limited.is_empty(), "waiting is announced as RUNNING with a RATE_LIMITED reason");
    assert_eq!(rate_limited[0]["trace"]["stream_status"]["status"], "RUNNING");
    assert!(rate_limited[0]["trace"]["stream_status"]["reasons"][0]["rate_limited"]["quota_reset"].is_u64());
    assert!(!out.records("user_insights").is_empty());
    assert_eq!(out.record_set(), clean.record_set(), "every record an unlimited sync delivers");
}

#[test]
fn an_endless_rate_limit_fails_after_six_attempts_with_the_reference_message() {
    let blocked = SandboxOptions {
        rate_limit: Some(RateLimit { calls: 0, window: Duration::from_secs(3600) }),
        retry_after_secs: 0,
        ..SandboxOptions::new(model())
    };
    let sandbox = Sandbox::start(blocked).expect("sandbox");
    let scratch = Scratch::new("blocked");
    let out = e2e_tests::read(&scratch, &config_for(&sandbox), &["users"]);
    assert_eq!(out.code, 1);
    let error = out.errors().into_iter().find(|e| e["stream_descriptor"]["name"] == "users").expect("users error");
    assert_eq!(error["failure_type"], "transient_error");
    assert!(
        error["message"].as_str().expect("m").starts_with("Rate limit exceeded for Instagram Graph API."),
        "{error}"
    );
    assert_eq!(sandbox.requests().len(), 6, "one attempt and five retries");
}

/// Meta's usage model with a quota smaller than the sync: paced, the sync finishes without one
/// throttling answer, says that it paced, and delivers what an unlimited sandbox does; unpaced,
/// the same sandbox throttles it.
#[test]
fn pacing_by_the_reported_usage_finishes_a_sync_larger_than_the_quota_unthrottled() {
    let model = || Model::generate(&ModelSpec { accounts: 2, media_per_account: 60, ..ModelSpec::default() });
    let (unlimited, clean) = sync(SandboxOptions::new(model()));
    assert_eq!(clean.code, 0);
    let needed = unlimited.stats().calls;
    let quota = RateLimit { calls: 40, window: Duration::from_millis(1_000) };
    assert!(needed > 3 * quota.calls as u64, "the sync ({needed} calls) outgrows the quota");

    let (sandbox, out) = sync(SandboxOptions { usage_quota: Some(quota), ..SandboxOptions::new(model()) });
    assert_eq!(out.code, 0, "{:?}", out.errors());
    assert_eq!(sandbox.stats().throttled, 0, "not one call was throttled");
    assert_eq!(out.record_set(), clean.record_set());
    assert!(out.logs().iter().any(|l| l.contains("quota is") && l.contains("pacing requests")));
    let paced = out
        .of_type("TRACE")
        .into_iter()
        .filter(|m| m["trace"]["stream_status"]["reasons"][0]["type"] == "RATE_LIMITED");
    assert!(paced.count() > 0, "pacing is reported as STREAM_STATUS RUNNING with rate_limited");

    let unpaced = SandboxOptions { usage_quota: Some(quota), ..SandboxOptions::new(model()) };
    let sandbox = Sandbox::start(unpaced).expect("sandbox");
    let mut config = config_for(&sandbox);
    config["pace_requests"] = serde_json::json!(false);
    let _ = read_catalog(&Scratch::new("unpaced"), &config, &catalog_all(), &[]);
    assert!(sandbox.stats().throttled > 0, "without pacing the same quota throttles the sync");
}
