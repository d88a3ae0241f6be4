//! Call reduction changes how many requests are made, never what comes out: the same records with
//! every optimisation on, all off (the reference's request pattern), and on the fallback paths.

use e2e_tests::{Output, Scratch, catalog_all, config_for, read_catalog};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions, Stats};
use serde_json::{Value, json};

fn model() -> Model {
    Model::generate(&ModelSpec { accounts: 2, media_per_account: 120, stories_per_account: 3, ..ModelSpec::default() })
}

fn sync(options: SandboxOptions, settings: Value) -> (Output, Stats) {
    let sandbox = Sandbox::start(options).expect("sandbox");
    let scratch = Scratch::new("optimizations");
    let mut config = config_for(&sandbox);
    for (key, value) in settings.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    let out = read_catalog(&scratch, &config, &catalog_all(), &[]);
    assert_eq!(out.code, 0, "{:?}", out.errors());
    // The daily totals ask one request per day and breakdown either way (only batched or not).
    let totals = sandbox.requests().iter().filter(|r| r.query.contains_key("metric_type")).count() as u64;
    let stats = sandbox.stats();
    (out, Stats { calls: stats.calls - totals, ..stats })
}

fn all(on: bool) -> Value {
    json!({"expand_carousel_children": on, "batch_insights_requests": on, "user_insights_date_ranges": on})
}

#[test]
fn records_are_identical_with_optimisations_on_and_off() {
    let (plain, plain_stats) = sync(SandboxOptions::new(model()), all(false));
    let (optimised, optimised_stats) = sync(SandboxOptions::new(model()), all(true));
    let (expected, got) = (plain.record_set(), optimised.record_set());
    assert_eq!(expected.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (stream, records) in &expected {
        assert_eq!(records.len(), got[stream].len(), "{stream}");
        assert_eq!(records, &got[stream], "{stream} records differ");
    }
    assert!(optimised_stats.calls * 10 < plain_stats.calls * 6, "{optimised_stats:?} vs {plain_stats:?}");
    assert!(optimised_stats.round_trips * 5 < plain_stats.round_trips, "{optimised_stats:?} vs {plain_stats:?}");
    for (switch, on) in
        [("expand_carousel_children", true), ("batch_insights_requests", true), ("user_insights_date_ranges", true)]
    {
        let mut one = all(false);
        one[switch] = json!(on);
        let (single, _) = sync(SandboxOptions::new(model()), one);
        assert_eq!(single.record_set(), expected, "{switch} alone changes no record");
    }
}

#[test]
fn a_failing_field_expansion_falls_back_to_one_request_per_slide() {
    let (plain, _) = sync(SandboxOptions::new(model()), all(false));
    let (_, expanded) = sync(SandboxOptions::new(model()), all(true));
    let (fallback, stats) = sync(SandboxOptions { expansion_fails: true, ..SandboxOptions::new(model()) }, all(true));
    assert_eq!(fallback.record_set(), plain.record_set());
    assert!(fallback.logs().iter().any(|l| l.contains("asking for it again without field expansion")));
    assert!(stats.calls > expanded.calls, "the fallback fetched slides one by one: {stats:?} vs {expanded:?}");
}
