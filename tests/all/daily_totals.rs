//! Issue 20 end to end: `user_daily_totals` against the sandbox's per-day truth (with Meta's 48-hour
//! lag), metric lists that heal when Graph refuses a metric, metric lists the user chooses, and
//! the API version.

use e2e_tests::{Output, Scratch, catalog_all, config_for, path_str, read_catalog, run_cli, start_days_ago};
use graph_sandbox::insights::{TOTALS, TOTALS_BREAKDOWNS, daily_total, dimensions};
use graph_sandbox::model::{InsightsBehaviour, Model, ModelSpec, Rng};
use graph_sandbox::{LoggedRequest, Sandbox, SandboxOptions};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

const DAY: i64 = 86_400;

fn model(media: usize) -> Model {
    Model::generate(&ModelSpec {
        accounts: 2,
        media_per_account: media,
        stories_per_account: 2,
        ..ModelSpec::default()
    })
}

fn totals_catalog() -> Value {
    json!({"streams": [{
        "stream": {"name": "user_daily_totals", "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup",
        "cursor_field": ["date"], "primary_key": [["business_account_id"], ["date"]]}]})
}

/// Days since the epoch of a record's `date`.
fn day_of(record: &Value) -> i64 {
    let date = record["date"].as_str().expect("date");
    chrono::DateTime::parse_from_rfc3339(date).expect("rfc3339").timestamp().div_euclid(DAY)
}

/// The record the sandbox's figures make for an account and day, as Graph reports them at `now`.
fn truth(page_id: &str, user_id: &str, day: i64, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut record = Map::new();
    record.insert(
        "date".into(),
        json!(
            chrono::DateTime::from_timestamp(day * DAY, 0).expect("day").format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
        ),
    );
    for metric in TOTALS {
        record.insert((*metric).into(), json!(daily_total(user_id, metric, None, day, now)));
    }
    for (breakdown, metrics) in TOTALS_BREAKDOWNS {
        for metric in metrics {
            let split: Map<String, Value> = dimensions(breakdown, metric)
                .iter()
                .map(|value| {
                    ((*value).to_owned(), json!(daily_total(user_id, metric, Some((breakdown, value)), day, now)))
                })
                .collect();
            record.insert(format!("{metric}_by_{breakdown}"), Value::Object(split));
        }
    }
    record.insert("page_id".into(), json!(page_id));
    record.insert("business_account_id".into(), json!(user_id));
    Value::Object(record)
}

/// A deduped destination: the last record of each key.
fn deduped(records: impl IntoIterator<Item = Value>) -> BTreeMap<(String, i64), Value> {
    records.into_iter().map(|r| ((r["business_account_id"].as_str().expect("id").to_owned(), day_of(&r)), r)).collect()
}

#[test]
fn two_accounts_over_40_days_equal_the_sandbox_and_a_day_later_the_lagged_days_are_read_again() {
    let model = model(3);
    let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let scratch = Scratch::new("daily-totals");
    let mut config = config_for(&sandbox);
    config["start_date"] = start_days_ago(39);
    let state = scratch.path().join("state.json");
    let args = ["--state", path_str(&state), "--state-file", path_str(&state)];
    let first = read_catalog(&scratch, &config, &totals_catalog(), &args);
    assert_eq!(first.code, 0, "{:?}", first.errors());
    let today = sandbox.now().timestamp().div_euclid(DAY);
    let records = first.records("user_daily_totals");
    assert_eq!(records.len(), 2 * 40, "one record per account and day");
    for (page, user) in model.users() {
        let days: Vec<i64> = records.iter().filter(|r| r["business_account_id"] == user.id).map(day_of).collect();
        assert_eq!(days, (today - 39..=today).collect::<Vec<_>>(), "{}: 40 days in order", user.id);
        for record in records.iter().filter(|r| r["business_account_id"] == user.id) {
            assert_eq!(record, &truth(&page.id, &user.id, day_of(record), sandbox.now()), "day {}", day_of(record));
        }
    }
    let totals_calls = sandbox.requests().iter().filter(|r| r.query.contains_key("metric_type")).count();
    assert_eq!(totals_calls, 2 * 40 * 5, "the totals and four breakdowns per account and day");
    let round_trips = sandbox.requests().iter().filter(|r| !r.batched).count();
    assert!(round_trips < 2 * 40 * 5 / 10, "through the Batch API: {round_trips} round trips");

    // One simulated day later: Graph's figures of the lagged days have grown.
    sandbox.set_clock_offset(chrono::Duration::days(1));
    let before = sandbox.requests().len();
    let second = read_catalog(&scratch, &config, &totals_catalog(), &args);
    assert_eq!(second.code, 0, "{:?}", second.errors());
    let asked: BTreeSet<i64> = sandbox.requests()[before..]
        .iter()
        .filter_map(|r| r.query.get("since"))
        .map(|since| chrono::DateTime::parse_from_rfc3339(since).expect("since").timestamp().div_euclid(DAY))
        .collect();
    assert_eq!(asked, (today - 2..=today).collect(), "the cursor's day and the two lag days before it");
    let again = second.records("user_daily_totals");
    assert_eq!(again.len(), 2 * 3);
    let grown = again.iter().filter(|r| first.records("user_daily_totals").contains(r)).count();
    assert_eq!(grown, 0, "every lagged day's figures grew since the first sync");

    let destination = deduped(records.into_iter().chain(again));
    assert_eq!(destination.len(), 2 * 40);
    let final_at = sandbox.now() + chrono::Duration::days(30);
    for (page, user) in model.users() {
        for day in today - 39..=today {
            let held = &destination[&(user.id.clone(), day)];
            assert_eq!(held, &truth(&page.id, &user.id, day, sandbox.now()), "what Graph reports now, day {day}");
            if day <= today - 2 {
                assert_eq!(held, &truth(&page.id, &user.id, day, final_at), "final, day {day}");
            }
        }
    }
}

/// Which metric list a logged insights request belongs to, for the model's objects.
fn scope_of(request: &LoggedRequest, model: &Model) -> String {
    object_scope(request, model).0
}

/// The scope, and whether the object answers insights normally (the sandbox seeds objects whose
/// insights fail with their own errors).
fn object_scope(request: &LoggedRequest, model: &Model) -> (String, bool) {
    let id = request.path.trim_end_matches("/insights").rsplit('/').next().unwrap_or_default();
    for (_, user) in model.users() {
        if let Some(media) = user.media.iter().find(|m| m.id == id) {
            return (format!("media {}", media.media_product_type), media.insights == InsightsBehaviour::Normal);
        }
        if let Some(story) = user.stories.iter().find(|s| s.id == id) {
            return ("stories".into(), story.insights == InsightsBehaviour::Normal);
        }
        if user.id == id {
            let breakdown = request.query.get("breakdown").map_or("none", String::as_str);
            let metric_type = request.query.get("metric_type").map_or("", String::as_str);
            return (format!("account {metric_type} {breakdown}"), true);
        }
    }
    panic!("an insights request of an unknown object: {}", request.path)
}

/// The WARNs saying a metric was dropped.
fn healing_warnings(out: &Output) -> Vec<String> {
    out.of_type("LOG")
        .into_iter()
        .filter(|m| m["log"]["level"] == "WARN")
        .filter_map(|m| m["log"]["message"].as_str().map(str::to_owned))
        .filter(|m| m.contains("Graph refuses the metric") || m.contains("Graph no longer serves the metric"))
        .collect()
}

fn healing_sync(options: SandboxOptions) -> (Sandbox, Output) {
    let sandbox = Sandbox::start(options).expect("sandbox");
    let scratch = Scratch::new("healing");
    let mut config = config_for(&sandbox);
    config["start_date"] = start_days_ago(3);
    let out = read_catalog(&scratch, &config, &catalog_all(), &[]);
    (sandbox, out)
}

#[test]
fn a_retired_and_an_unsupported_metric_are_dropped_once_per_scope_and_every_stream_completes() {
    let model = model(30);
    let (plain_sandbox, plain) = healing_sync(SandboxOptions::new(model.clone()));
    assert_eq!(plain.code, 0, "{:?}", plain.errors());
    let refusing = SandboxOptions {
        retired_metrics: vec!["views".into()],
        unsupported_metrics: vec![("reach".into(), "REELS".into())],
        ..SandboxOptions::new(model.clone())
    };
    let (sandbox, healed) = healing_sync(refusing);
    assert_eq!(healed.code, 0, "{:?}", healed.errors());
    assert!(healed.errors().is_empty());

    let warnings = healing_warnings(&healed);
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("no longer serves the metric `views`")), "{warnings:#?}");
    assert!(warnings.iter().any(|w| w.contains("refuses the metric `reach` for insights of REELS media")));

    // The records are the plain sync's, less exactly the refused fields.
    let reels: BTreeSet<&str> = model
        .users()
        .flat_map(|(_, u)| u.media.iter())
        .filter(|m| m.media_product_type == "REELS")
        .map(|m| m.id.as_str())
        .collect();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in plain.of_type("RECORD") {
        let stream = record["record"]["stream"].as_str().expect("stream").to_owned();
        let mut data = record["record"]["data"].as_object().expect("data").clone();
        if stream.ends_with("insights") || stream == "user_daily_totals" {
            data.retain(|key, _| key != "views" && !key.starts_with("views_by_"));
        }
        if stream == "media_insights" && reels.contains(data["id"].as_str().expect("id")) {
            data.shift_remove("reach");
        }
        expected.entry(stream).or_default().push(Value::Object(data).to_string());
    }
    expected.values_mut().for_each(|records| records.sort());
    let got = healed.record_set();
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (stream, records) in &expected {
        let missing: Vec<&String> = records.iter().filter(|r| !got[stream].contains(r)).collect();
        let extra: Vec<&String> = got[stream].iter().filter(|r| !records.contains(r)).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{stream}: missing {missing:#?}, unexpected {extra:#?}");
    }

    // No metric is refused twice in one scope (objects with errors of their own left aside),
    // and the extra calls are at most one per scope.
    let refused: Vec<(String, String)> = sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/insights") && r.status == 400)
        .filter_map(|r| {
            let (scope, normal) = object_scope(r, &model);
            let metrics = &r.query["metric"];
            let metric = if metrics.split(',').any(|m| m == "views") { "views" } else { "reach" };
            normal.then(|| (scope, metric.to_owned()))
        })
        .collect();
    let distinct: BTreeSet<&(String, String)> = refused.iter().collect();
    assert_eq!(distinct.len(), refused.len(), "a metric refused twice in a scope: {refused:#?}");
    let scopes: BTreeSet<String> = plain_sandbox
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/insights"))
        .map(|r| scope_of(r, &model))
        .collect();
    // Requests whose every metric is refused are not sent at all (views by follower type).
    let unsent =
        plain_sandbox.requests().iter().filter(|r| r.query.get("metric").is_some_and(|m| m == "views")).count();
    let extra = (sandbox.stats().calls + unsent as u64).saturating_sub(plain_sandbox.stats().calls);
    assert!(extra >= 2, "a refusal costs a call: {extra}");
    assert!(extra as usize <= scopes.len(), "{extra} extra calls, {} scopes: {scopes:?}", scopes.len());
}

fn metric_fields(schema: &Value, known: &[&str]) -> BTreeSet<String> {
    let properties = schema["json_schema"]["properties"].as_object().expect("properties");
    properties.keys().filter(|k| known.iter().any(|m| *k == m || k.starts_with(&format!("{m}_by_")))).cloned().collect()
}

#[test]
fn chosen_metric_lists_change_the_requests_and_the_schemas_and_an_unknown_name_is_a_config_error() {
    let model = model(30);
    let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let scratch = Scratch::new("chosen-metrics");
    let mut config = config_for(&sandbox);
    config["start_date"] = start_days_ago(2);
    config["media_insights_metrics"] = json!({"FEED": ["reach", "likes"], "REELS": ["views", "reposts"]});
    config["story_insights_metrics"] = json!(["reach"]);
    config["daily_totals_metrics"] = json!(["views", "follows_and_unfollows"]);
    let config_path = scratch.write("config.json", &config.to_string());
    let discovered = run_cli(&["discover", "--config", path_str(&config_path)]);
    assert_eq!(discovered.code, 0, "{}", discovered.stderr);
    let streams = discovered.of_type("CATALOG")[0]["catalog"]["streams"].as_array().expect("streams").clone();
    let schema = |name: &str| streams.iter().find(|s| s["name"] == name).expect("stream").clone();
    let every: Vec<&str> = [TOTALS, &["saved", "follows", "profile_visits", "navigation", "reels_skip_rate"]].concat();
    let names = |list: &[&str]| list.iter().map(|m| (*m).to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(metric_fields(&schema("media_insights"), &every), names(&["likes", "reach", "reposts", "views"]));
    assert_eq!(metric_fields(&schema("story_insights"), &every), names(&["reach"]));
    assert_eq!(
        metric_fields(&schema("user_daily_totals"), &every),
        names(&[
            "follows_and_unfollows",
            "follows_and_unfollows_by_follow_type",
            "views",
            "views_by_follower_type",
            "views_by_media_product_type"
        ])
    );

    let out = read_catalog(&scratch, &config, &catalog_all(), &[]);
    assert_eq!(out.code, 0, "{:?}", out.errors());
    for request in sandbox.requests().iter().filter(|r| r.path.ends_with("/insights")) {
        let asked = request.query["metric"].as_str();
        let allowed: &[&str] = match scope_of(request, &model).as_str() {
            _ if asked == "follower_demographics" => continue, // user_lifetime_insights
            "media REELS" => &["views,reposts"],
            "stories" => &["reach"],
            scope if scope.starts_with("media") => &["reach,likes"],
            scope if scope.starts_with("account total_value") => {
                &["views,follows_and_unfollows", "views", "follows_and_unfollows"]
            }
            _ => continue, // user_insights: the reference's groups
        };
        assert!(allowed.contains(&asked), "{} asked {asked}", request.path);
    }
    assert!(!out.records("media_insights").is_empty() && !out.records("user_daily_totals").is_empty());

    for (field, value) in [
        ("daily_totals_metrics", json!(["views", "impressions"])),
        ("story_insights_metrics", json!(["reach", "plays"])),
        ("media_insights_metrics", json!({"REELS": ["clips_replays_count"]})),
    ] {
        let mut bad = config_for(&sandbox);
        bad[field] = value;
        let bad_path = scratch.write("bad.json", &bad.to_string());
        let checked = run_cli(&["check", "--config", path_str(&bad_path)]);
        let status = &checked.of_type("CONNECTION_STATUS")[0]["connectionStatus"];
        assert_eq!(status["status"], "FAILED", "{field}");
        let message = status["message"].as_str().expect("message");
        assert!(message.contains(field) && message.contains("the known ones are:"), "{message}");
        let read = read_catalog(&scratch, &bad, &catalog_all(), &[]);
        assert_eq!(read.code, 1);
        assert_eq!(read.errors()[0]["failure_type"], "config_error", "{field}");
    }
}

/// Method, path without the version, and sorted query of every GET (alone or in a batch).
fn requests_without_version(sandbox: &Sandbox, version: &str) -> Vec<String> {
    let mut requests: Vec<String> = sandbox
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| {
            let path =
                r.path.strip_prefix(&format!("/{version}")).unwrap_or_else(|| panic!("{} lacks {version}", r.path));
            format!("{path} {:?}", r.query.iter().collect::<BTreeMap<_, _>>())
        })
        .collect();
    requests.sort();
    requests
}

#[test]
fn api_version_changes_every_request_path_and_nothing_else() {
    let model = model(12);
    let sync = |settings: &dyn Fn(&Sandbox, &mut Value)| {
        let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
        let scratch = Scratch::new("api-version");
        let mut config = config_for(&sandbox);
        config["start_date"] = start_days_ago(2);
        settings(&sandbox, &mut config);
        let out = read_catalog(&scratch, &config, &catalog_all(), &[]);
        assert_eq!(out.code, 0, "{:?}", out.errors());
        (sandbox, out)
    };
    let (default_sandbox, default) = sync(&|_, _| {});
    let (moved_sandbox, moved) = sync(&|sandbox, config| {
        config["base_url"] = json!(format!("http://{}", sandbox.addr()));
        config["api_version"] = json!("v24.0");
    });
    assert!(moved_sandbox.requests().iter().all(|r| r.path.starts_with("/v24.0/")), "every path names v24.0");
    assert_eq!(moved.record_set(), default.record_set(), "the same records");
    assert_eq!(
        requests_without_version(&moved_sandbox, "v24.0"),
        requests_without_version(&default_sandbox, instagram_connector::model::API_VERSION),
        "the same requests otherwise"
    );
}

/// The class behind the example above: random metrics refused in random scopes (media product
/// types, stories, the account totals), and sometimes one retired. `HEAL_SEED=N` replays a set,
/// `HEAL_ROUNDS=N` runs more. Every stream completes, the records are the plain sync's less
/// exactly the refused fields (a media item left with no metric has no record), and no metric is
/// warned about twice in a scope.
#[test]
fn random_refusals_leave_exactly_the_refused_fields_out() {
    let seed: u64 = std::env::var("HEAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let rounds: u64 = std::env::var("HEAL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut rng = Rng::new(seed);
    let model = model(24);
    let (_, plain) = healing_sync(SandboxOptions::new(model.clone()));
    assert_eq!(plain.code, 0, "{:?}", plain.errors());
    let lists: [(&str, &[&str]); 4] = [
        ("FEED", &["reach", "saved", "likes", "comments", "shares", "follows", "profile_visits", "reposts", "views"]),
        (
            "REELS",
            &["comments", "likes", "reach", "saved", "shares", "views", "reposts", "reels_skip_rate", "facebook_views"],
        ),
        ("STORY", &["reach", "replies", "follows", "profile_visits", "shares", "total_interactions", "views"]),
        ("ACCOUNT", TOTALS),
    ];
    let pick = |rng: &mut Rng, list: &[&str]| list[rng.range(0, list.len() as u64 - 1) as usize].to_owned();
    let mut healed_fields = 0;
    for round in 0..rounds {
        let mut refused: BTreeSet<(String, String)> = BTreeSet::new();
        for _ in 0..rng.range(1, 3) {
            let (scope, list) = lists[rng.range(0, 3) as usize];
            refused.insert((pick(&mut rng, list), scope.to_owned()));
        }
        // user_insights asks reach, follower_count and online_followers: not retired here.
        let retired: Vec<String> = (rng.range(0, 1) == 1)
            .then(|| pick(&mut rng, &["saved", "shares", "views", "likes", "reposts", "profile_visits"]))
            .into_iter()
            .collect();
        let what = format!("seed {seed}, round {round}: refused {refused:?}, retired {retired:?}");
        let options = SandboxOptions {
            retired_metrics: retired.clone(),
            unsupported_metrics: refused.iter().cloned().collect(),
            ..SandboxOptions::new(model.clone())
        };
        let (_, healed) = healing_sync(options);
        assert_eq!(healed.code, 0, "{what}: {:?}", healed.errors());

        let gone = |metric: &str, scope: &str| {
            let metric = metric.split_once("_by_").map_or(metric, |(m, _)| m);
            retired.iter().any(|r| r == metric) || refused.contains(&(metric.to_owned(), scope.to_owned()))
        };
        let product_type: BTreeMap<&str, &str> =
            model.users().flat_map(|(_, u)| u.media.iter()).map(|m| (m.id.as_str(), m.media_product_type)).collect();
        let not_metrics = ["id", "page_id", "business_account_id", "timestamp", "date"];
        let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for record in plain.of_type("RECORD") {
            let stream = record["record"]["stream"].as_str().expect("stream").to_owned();
            let mut data = record["record"]["data"].as_object().expect("data").clone();
            let scope = match stream.as_str() {
                "media_insights" => product_type[data["id"].as_str().expect("id")],
                "story_insights" => "STORY",
                "user_daily_totals" => "ACCOUNT",
                _ => "",
            };
            if !scope.is_empty() {
                data.retain(|key, _| not_metrics.contains(&key.as_str()) || !gone(key, scope));
                if data.keys().all(|key| not_metrics.contains(&key.as_str())) {
                    continue;
                }
            }
            expected.entry(stream).or_default().push(Value::Object(data).to_string());
        }
        expected.values_mut().for_each(|records| records.sort());
        let got = healed.record_set();
        healed_fields += plain.record_set().iter().filter(|(stream, records)| got[*stream] != **records).count();
        for (stream, records) in &expected {
            assert_eq!(&got[stream], records, "{what}: {stream}");
        }

        // Each WARN without Graph's words: the stream, the metric and the scope.
        let warnings: Vec<String> =
            healing_warnings(&healed).iter().map(|m| m.split(" (").next().unwrap_or_default().to_owned()).collect();
        let distinct: BTreeSet<&String> = warnings.iter().collect();
        assert_eq!(distinct.len(), warnings.len(), "{what}: one WARN per metric and scope: {warnings:#?}");
        assert!(warnings.len() <= retired.len() + refused.len() * 5, "{what}: {warnings:#?}");
    }
    assert!(healed_fields > 0, "seed {seed}: some refusal changed some records");
}
