//! Every stream against the sandbox, checked item by item against the reference
//! (`docs/source-instagram.md` §3–§9, checklist §14).

use e2e_tests::{Output, Scratch, catalog_all, config_for, graph_path, read_catalog};
use graph_sandbox::model::{InsightsBehaviour, Model, ModelSpec};
use graph_sandbox::{LoggedRequest, Sandbox, SandboxOptions};
use serde_json::json;
use std::collections::HashMap;

fn sync_all(model: &Model) -> (Sandbox, Output) {
    sync_all_with(model, json!({}))
}

/// Syncs every stream with `settings` merged into the config (e.g. the reference's request
/// pattern, to check rules that concern individual requests).
fn sync_all_with(model: &Model, settings: serde_json::Value) -> (Sandbox, Output) {
    let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let scratch = Scratch::new("all-streams");
    let mut config = config_for(&sandbox);
    for (key, value) in settings.as_object().into_iter().flatten() {
        config[key] = value.clone();
    }
    let out = read_catalog(&scratch, &config, &catalog_all(), &[]);
    (sandbox, out)
}

/// The reference's request pattern: one GET per slide, per insights object, per day.
fn reference_pattern() -> serde_json::Value {
    json!({"expand_carousel_children": false, "batch_insights_requests": false, "user_insights_date_ranges": false})
}

fn insights_requests(sandbox: &Sandbox) -> HashMap<String, LoggedRequest> {
    sandbox
        .requests()
        .into_iter()
        .filter_map(|r| {
            let id = r.path.strip_prefix(&graph_path("/"))?.strip_suffix("/insights")?.to_owned();
            Some((id, r))
        })
        .collect()
}

#[test]
fn every_stream_completes_with_the_reference_shapes() {
    let model = Model::generate(&ModelSpec::default());
    let (sandbox, out) = sync_all(&model);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for stream in e2e_tests::ALL_STREAMS {
        assert_eq!(out.timeline(stream).last().map(String::as_str), Some("COMPLETE"), "{stream}");
    }
    // Parents are read once per sync (checklist: no re-read for child streams).
    let requests = sandbox.requests();
    assert_eq!(requests.iter().filter(|r| r.path == graph_path("/me/accounts")).count(), 1);
    for (_, user) in model.users() {
        let media_path = graph_path(&format!("/{}/media", user.id));
        assert_eq!(requests.iter().filter(|r| r.path == media_path).count(), 1);
    }
    assert!(!out.stdout.contains("sandbox-token"));
}

#[test]
fn media_records_carry_info_ids_rfc3339_and_clean_urls() {
    let model = Model::generate(&ModelSpec::default());
    let (_sandbox, out) = sync_all(&model);
    let media = out.records("media");
    let expected: usize = model.users().map(|(_, u)| u.media.len()).sum();
    assert_eq!(media.len(), expected);
    for (page, user) in model.users() {
        for source in &user.media {
            let record = media.iter().find(|r| r["id"] == source.id).expect("a record per media");
            assert_eq!(
                record["media_insights_info"],
                json!({"media_id": source.id, "media_type": source.media_type, "media_product_type": source.media_product_type,
                       "business_account_id": user.id, "page_id": page.id, "timestamp": source.timestamp}),
                "media_insights_info is built from the raw record (timestamp as Graph wrote it, as 4.2.27's manifest adds it)"
            );
            assert_eq!(record["timestamp"], source.timestamp.replace("+0000", "+00:00"));
            assert_eq!(
                (record["page_id"].as_str(), record["business_account_id"].as_str()),
                (Some(page.id.as_str()), Some(user.id.as_str()))
            );
            let media_url = record["media_url"].as_str().expect("media_url");
            assert!(!media_url.contains("_nc_rid") && media_url.contains("_nc_cat=104"), "{media_url}");
            if source.media_type == "VIDEO" {
                assert!(
                    record["thumbnail_url"].as_str().expect("thumb").contains("_nc_rid=keep"),
                    "thumbnail_url is never cleaned"
                );
            }
        }
    }
}

#[test]
fn carousel_slides_are_fetched_with_the_reduced_fields_and_a_deleted_one_is_skipped_with_a_warning() {
    let model = Model::generate(&ModelSpec::default());
    let (sandbox, out) = sync_all_with(&model, reference_pattern());
    let media = out.records("media");
    let mut checked_deleted = false;
    for (_, user) in model.users() {
        for source in user.media.iter().filter(|m| !m.children.is_empty()) {
            let record = media.iter().find(|r| r["id"] == source.id).expect("carousel record");
            let children = record["children"].as_array().expect("children list");
            let alive: Vec<_> = source.children.iter().filter(|c| !c.deleted).collect();
            assert_eq!(children.len(), alive.len());
            for (child, expected) in children.iter().zip(alive) {
                assert_eq!(child["id"], expected.id);
                assert_eq!(child["timestamp"], expected.timestamp.replace("+0000", "+00:00"));
                assert!(!child["media_url"].as_str().expect("url").contains("_nc_rid"));
                for absent in ["caption", "like_count", "page_id", "business_account_id", "children"] {
                    assert!(child.get(absent).is_none(), "child has {absent}");
                }
            }
            for deleted in source.children.iter().filter(|c| c.deleted) {
                checked_deleted = true;
                let warned = out.of_type("LOG").iter().any(|m| {
                    let text = m["log"]["message"].as_str().unwrap_or("");
                    m["log"]["level"] == "WARN" && text.contains(&deleted.id) && text.contains(&source.id)
                });
                assert!(warned, "a WARN names child {} and parent {}", deleted.id, source.id);
            }
            let child_request =
                sandbox.requests().into_iter().find(|r| r.path == graph_path(&format!("/{}", source.children[0].id)));
            assert_eq!(
                child_request.and_then(|r| r.query.get("fields").cloned()).as_deref(),
                Some("id,ig_id,media_type,media_url,owner,permalink,shortcode,thumbnail_url,timestamp,username")
            );
        }
    }
    assert!(checked_deleted, "the model seeds a deleted slide");
}

#[test]
fn media_insights_use_the_metric_list_of_each_type_and_skip_the_ignorable_errors() {
    let model = Model::generate(&ModelSpec::default());
    let (sandbox, out) = sync_all(&model);
    assert!(sandbox.requests().iter().any(|r| r.batched), "insights went through the Batch API");
    let requests = insights_requests(&sandbox);
    let records = out.records("media_insights");
    let mut ignored = 0;
    for (page, user) in model.users() {
        for media in &user.media {
            let metric = requests.get(&media.id).and_then(|r| r.query.get("metric")).expect("one insights request");
            let expected = match (media.media_type, media.media_product_type) {
                (_, "REELS") => {
                    "comments,ig_reels_avg_watch_time,ig_reels_video_view_total_time,likes,reach,saved,shares,views,reposts,reels_skip_rate,crossposted_views,facebook_views"
                }
                ("VIDEO", "FEED") => "reach,saved,views,reposts",
                ("CAROUSEL_ALBUM", _) => "reach,saved,shares,follows,profile_visits,reposts",
                _ => "reach,saved,likes,comments,shares,follows,profile_visits,reposts",
            };
            assert_eq!(metric, expected, "{} {}", media.media_type, media.media_product_type);
            let record = records.iter().find(|r| r["id"] == media.id);
            if media.insights != InsightsBehaviour::Normal {
                assert!(record.is_none());
                ignored += 1;
                continue;
            }
            let record = record.expect("insights record");
            for name in expected.split(',') {
                assert!(record[name].is_number(), "{name} in {record}");
            }
            assert_eq!(record["page_id"], page.id);
            assert_eq!(record["business_account_id"], user.id);
            assert_eq!(record["timestamp"], media.timestamp.replace("+0000", "+00:00"));
            assert!(record.get("data").is_none());
        }
    }
    assert_eq!(ignored, 3);
    let logs = out.logs();
    assert!(logs.iter().any(|l| l.contains("Insights error for business_account_id: Invalid parameter")));
    assert!(logs.iter().any(|l| l == "media_insights: Check provided permissions for: Invalid parameter"));
    assert!(
        logs.iter().any(|l| l.contains("Check provided permissions for: (#10) Application does not have permission"))
    );
}

#[test]
fn media_insights_fail_on_a_code_10_with_another_message_while_other_streams_go_on() {
    let mut model = Model::generate(&ModelSpec { accounts: 1, special_errors: false, ..ModelSpec::default() });
    if let Some(user) = model.pages.iter_mut().find_map(|p| p.instagram.as_mut()) {
        user.media[0].insights = InsightsBehaviour::NotEnoughViewers;
    }
    let (_sandbox, out) = sync_all(&model);
    assert_eq!(out.code, 1);
    assert_eq!(out.timeline("media_insights").last().map(String::as_str), Some("INCOMPLETE"));
    let error = out.errors().into_iter().find(|e| e["stream_descriptor"]["name"] == "media_insights").expect("error");
    assert_eq!(error["failure_type"], "system_error");
    assert!(error["message"].as_str().expect("m").contains("Not enough viewers"));
    assert_eq!(out.timeline("user_insights").last().map(String::as_str), Some("COMPLETE"));
}

#[test]
fn stories_and_story_insights_ignore_any_code_10() {
    let model = Model::generate(&ModelSpec::default());
    let (_sandbox, out) = sync_all(&model);
    let stories = out.records("stories");
    assert_eq!(stories.len(), 9);
    let first = &stories[0];
    assert_eq!(first["story_insights_info"]["story_id"], first["id"]);
    assert!(first["timestamp"].as_str().expect("ts").ends_with("+00:00"));
    assert!(first.get("comments_count").is_none(), "stories use their own field list");
    let insights = out.records("story_insights");
    assert_eq!(insights.len(), 8, "the story with too few viewers is skipped");
    assert!(
        out.logs()
            .iter()
            .any(|l| l == "story_insights: Insights error: (#10) Not enough viewers for the media to show insights")
    );
    for record in &insights {
        for metric in ["reach", "replies", "follows", "profile_visits", "shares", "total_interactions", "views"] {
            assert!(record[metric].is_number(), "{metric}");
        }
    }
}

#[test]
fn follower_demographics_keep_every_dimension_in_their_keys() {
    let model = Model::generate(&ModelSpec::default());
    let (sandbox, out) = sync_all(&model);
    let records = out.records("user_lifetime_insights");
    assert_eq!(records.len(), 9, "3 breakdowns x 3 accounts");
    let age_gender = records.iter().find(|r| r["breakdown"] == "age,gender").expect("age,gender");
    let keys: Vec<&String> = age_gender["value"].as_object().expect("value").keys().collect();
    assert_eq!(keys.len(), 15, "5 ages x 3 genders, none collapsed");
    assert!(keys.iter().all(|k| k.split(',').count() == 2));
    let city = records.iter().find(|r| r["breakdown"] == "city").expect("city");
    assert!(city["value"].get("London, England").is_some());
    assert_eq!(
        age_gender.as_object().expect("obj").keys().collect::<Vec<_>>(),
        ["breakdown", "business_account_id", "page_id", "metric", "value"]
    );
    let request =
        sandbox.requests().into_iter().find(|r| r.query.get("breakdown").map(String::as_str) == Some("age,gender"));
    let query = request.expect("request").query;
    assert_eq!(query.get("metric_type").map(String::as_str), Some("total_value"));
    assert_eq!(query.get("period").map(String::as_str), Some("lifetime"));
}

#[test]
fn user_insights_merge_four_groups_per_day_with_literal_utc_offsets() {
    let model = Model::generate(&ModelSpec {
        accounts: 1,
        media_per_account: 0,
        stories_per_account: 0,
        ..ModelSpec::default()
    });
    let before = chrono::Utc::now();
    let (sandbox, out) = sync_all_with(&model, reference_pattern());
    let after = chrono::Utc::now();
    let records = out.records("user_insights");
    assert_eq!(records.len(), 31, "30 days back to tomorrow, one record per day");
    for record in &records {
        let keys: Vec<&String> = record.as_object().expect("obj").keys().collect();
        assert_eq!(
            keys,
            [
                "date",
                "follower_count",
                "reach",
                "reach_week",
                "reach_days_28",
                "online_followers",
                "page_id",
                "business_account_id"
            ]
        );
        assert!(record["date"].as_str().expect("date").ends_with("T07:00:00+00:00"));
    }
    let windows: Vec<LoggedRequest> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/insights") && r.query.contains_key("since"))
        .filter(|r| !r.query.contains_key("metric_type"))
        .collect();
    assert_eq!(windows.len(), 31 * 4, "four groups per window");
    let since = |r: &LoggedRequest| r.query.get("since").cloned().unwrap_or_default();
    assert!(windows.iter().all(|r| since(r).ends_with("+00:00") && r.query["until"].ends_with("+00:00")));
    let first = windows.iter().map(since).min().expect("first since");
    let first = chrono::DateTime::parse_from_rfc3339(&first).expect("rfc3339");
    assert!(
        first >= before - chrono::Duration::days(30) - chrono::Duration::seconds(1)
            && first <= after - chrono::Duration::days(30)
    );
    let last_until = windows.iter().filter_map(|r| r.query.get("until")).max().expect("until");
    let last_until = chrono::DateTime::parse_from_rfc3339(last_until).expect("rfc3339");
    assert!(last_until >= before + chrono::Duration::days(1) - chrono::Duration::seconds(1));
    let state = out.last_state("user_insights").expect("state");
    assert_eq!(state["states"][0]["cursor"]["date"], records.last().expect("record")["date"]);

    // 30-day ranges: 2 requests per group instead of 31, the same records.
    let (ranged_sandbox, ranged) = sync_all(&model);
    let ranged_requests = ranged_sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/insights") && r.query.contains_key("since"))
        .filter(|r| !r.query.contains_key("metric_type"))
        .count();
    assert_eq!(ranged_requests, 2 * 4);
    let strip = |records: Vec<serde_json::Value>| records.into_iter().map(|r| r.to_string()).collect::<Vec<_>>();
    assert_eq!(strip(ranged.records("user_insights")), strip(records));
}
