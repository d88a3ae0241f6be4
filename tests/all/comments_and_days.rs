//! The `comments` stream (with replies, errors and its call cost) and cheap daily re-syncs:
//! incremental `media`, `media_insights` and `comments` over a sandbox one simulated day later.

use e2e_tests::{Scratch, config_for, read, read_catalog};
use graph_sandbox::comments;
use graph_sandbox::model::{CommentsBehaviour, Model, ModelSpec, graph_epoch};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn ids(records: &[Value]) -> BTreeSet<String> {
    records.iter().map(|r| r["id"].as_str().unwrap_or("?").to_owned()).collect()
}

#[test]
fn comments_and_replies_of_commented_media_only_with_skips_warned() {
    let model = Model::generate(&ModelSpec { seed: 9, accounts: 2, media_per_account: 40, ..ModelSpec::default() });
    let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let out = read(&Scratch::new("comments"), &config_for(&sandbox), &["comments"]);
    assert_eq!(out.code, 0, "{:?}", out.errors());

    let mut expected = BTreeSet::new();
    let mut replies = 0;
    let mut commented = 0;
    for (_, user) in model.users() {
        for media in user.media.iter().filter(|m| m.comments_count > 0) {
            commented += 1;
            if media.comments == CommentsBehaviour::AgeGated {
                continue;
            }
            for comment in comments::of_media(media) {
                let node = comment.node();
                expected.insert(node["id"].as_str().expect("id").to_owned());
                // The deleted comment's replies past the first expanded page are lost with it.
                let kept = if media.comments == CommentsBehaviour::RepliesOfDeletedComment { 50 } else { usize::MAX };
                for reply in comment.replies().iter().take(kept) {
                    expected.insert(reply["id"].as_str().expect("id").to_owned());
                    replies += 1;
                }
            }
        }
    }
    let records = out.records("comments");
    assert_eq!(ids(&records), expected);
    assert_eq!(records.len(), expected.len(), "no comment twice");
    assert!(replies > 50);
    assert_eq!(records.iter().filter(|r| r["parent_id"].is_string()).count(), replies);
    for record in &records {
        assert!(
            record["media_id"].is_string()
                && record["business_account_id"].is_string()
                && record["from_id"].is_string()
        );
        assert!(record["timestamp"].as_str().is_some_and(|t| t.ends_with("+00:00")));
    }
    let warnings: Vec<String> = out.logs().into_iter().filter(|l| l.starts_with("comments: skipping")).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    let levels: Vec<&Value> = out.of_type("LOG").into_iter().map(|m| &m["log"]["level"]).collect();
    assert!(levels.iter().filter(|l| **l == "WARN").count() >= 2);

    // Only media with comments are asked, one call each, plus the deleted comment's replies.
    let asked = sandbox.requests().iter().filter(|r| r.path.ends_with("/comments")).count();
    assert_eq!(asked, commented);
    assert_eq!(sandbox.requests().iter().filter(|r| r.path.ends_with("/replies")).count(), 1);
}

#[test]
fn a_token_without_the_comments_permission_fails_only_comments() {
    let model = Model::generate(&ModelSpec { seed: 9, accounts: 2, media_per_account: 40, ..ModelSpec::default() });
    let options = SandboxOptions { comments_denied: true, ..SandboxOptions::new(model) };
    let sandbox = Sandbox::start(options).expect("sandbox");
    let out = read(&Scratch::new("comments-denied"), &config_for(&sandbox), &["media", "comments", "users"]);
    assert_ne!(out.code, 0);
    let errors: Vec<&Value> = out.errors().into_iter().filter(|e| e.get("stream_descriptor").is_some()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["failure_type"], "config_error");
    assert_eq!(errors[0]["stream_descriptor"]["name"], "comments");
    assert!(errors[0]["message"].as_str().unwrap_or("").contains("instagram_manage_comments"));
    for stream in ["media", "users"] {
        assert_eq!(out.timeline(stream).last().map(String::as_str), Some("COMPLETE"), "{stream}");
    }
    assert_eq!(out.records("media").len(), 80);
}

fn day(days_later: u32) -> Model {
    Model::generate(&ModelSpec {
        seed: 11,
        accounts: 2,
        media_per_account: 90,
        special_errors: false,
        media_interval_secs: 86_400,
        days_later,
        ..ModelSpec::default()
    })
}

/// Every stream's records by key, later reads replacing earlier ones (an `append_dedup` table).
fn dedup(reads: &[&e2e_tests::Output], streams: &[&str]) -> BTreeMap<(String, String), Value> {
    let mut table = BTreeMap::new();
    for out in reads {
        for stream in streams {
            for record in out.records(stream) {
                table.insert((stream.to_string(), record["id"].as_str().unwrap_or("?").to_owned()), record);
            }
        }
    }
    table
}

#[test]
fn the_next_day_reads_new_media_and_the_window_and_converges_to_a_full_refresh() {
    const STREAMS: [&str; 3] = ["media", "media_insights", "comments"];
    let incremental = json!({"streams": STREAMS.iter().map(|name| json!({
        "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"]},
        "sync_mode": "incremental", "destination_sync_mode": "append_dedup"
    })).collect::<Vec<_>>()});
    let scratch = Scratch::new("next-day");

    let first = Sandbox::start(SandboxOptions::new(day(0))).expect("sandbox");
    let day1 = read_catalog(&scratch, &config_for(&first), &incremental, &[]);
    assert_eq!(day1.code, 0, "{:?}", day1.errors());
    assert_eq!(day1.records("media").len(), 180);
    let day1_calls = first.stats().calls;
    let states: Vec<Value> = STREAMS
        .iter()
        .map(|s| json!({"type": "STREAM", "stream": {"stream_descriptor": {"name": s}, "stream_state": day1.last_state(s).expect("state")}}))
        .collect();
    let state = scratch.write("state.json", &Value::Array(states).to_string());

    let model = day(1);
    let second = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let day2 = read_catalog(&scratch, &config_for(&second), &incremental, &["--state", e2e_tests::path_str(&state)]);
    assert_eq!(day2.code, 0, "{:?}", day2.errors());

    // Exactly the new media plus those posted within 30 days before the last synced one.
    let mut window = BTreeSet::new();
    for (_, user) in model.users() {
        let newest_synced = day(0).user(&user.id).map(|u| graph_epoch(&u.media[0].timestamp)).expect("user");
        for media in user.media.iter().filter(|m| graph_epoch(&m.timestamp) >= newest_synced - 30 * 86_400) {
            window.insert(media.id.clone());
        }
    }
    assert_eq!(ids(&day2.records("media")), window);
    assert_eq!(ids(&day2.records("media_insights")), window);
    assert!((2 * (5 + 29)..=2 * (5 + 31)).contains(&window.len()), "5 new posts and 30 days of posts per account");
    let media_pages = second.requests().iter().filter(|r| r.path.ends_with("/media")).count();
    assert_eq!(media_pages, 2, "paging stops at the window");
    assert!(second.stats().calls * 2 < day1_calls, "{} vs {day1_calls}", second.stats().calls);

    // A deduped destination equals a full refresh of day 2, except the documented frozen values:
    // the oldest post's comments_count and the comment it gained.
    let full = read(&Scratch::new("next-day-full"), &config_for(&second), &STREAMS);
    let synced = dedup(&[&day1, &day2], &STREAMS);
    let truth = dedup(&[&full], &STREAMS);
    let oldest: BTreeSet<String> = model.users().map(|(_, u)| u.media.last().expect("media").id.clone()).collect();
    let mut differences: Vec<String> = Vec::new();
    for (key, record) in &truth {
        match synced.get(key) {
            Some(ours) if ours == record => {}
            Some(ours) => {
                assert!(oldest.contains(&key.1), "{key:?} changed outside the window");
                assert_eq!(ours["comments_count"].as_u64().map(|n| n + 1), record["comments_count"].as_u64());
                differences.push(format!("{}:{}", key.0, "comments_count"));
            }
            None => {
                assert_eq!(key.0, "comments", "{key:?}");
                assert!(oldest.contains(record["media_id"].as_str().unwrap_or("")), "{key:?}");
                differences.push("comments:new".into());
            }
        }
    }
    assert_eq!(synced.len() + differences.iter().filter(|d| *d == "comments:new").count(), truth.len());
    assert_eq!(differences.len(), 4, "{differences:?}");
}
