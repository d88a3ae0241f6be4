//! `read` of `Api` and `users` (`docs/source-instagram.md` §3, §4) against the sandbox.

use e2e_tests::{Scratch, config_for, graph_path, read, sample};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

#[test]
fn api_and_users_yield_exactly_the_reference_records() {
    let model =
        Model::generate(&ModelSpec { seed: 7, accounts: 4, pages_without_instagram: 3, ..ModelSpec::default() });
    let sandbox = Sandbox::start(SandboxOptions::new(model.clone())).expect("sandbox");
    let scratch = Scratch::new("read-accounts");
    let out = read(&scratch, &config_for(&sandbox), &["Api", "users"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);

    let expected_api: Vec<Value> = model
        .users()
        .map(|(page, user)| json!({"id": page.id, "account": {"business_account_id": user.id, "page_id": page.id}}))
        .collect();
    assert_eq!(out.records("Api"), expected_api, "pages without an Instagram account are dropped");

    let expected_users: Vec<Value> = model
        .users()
        .map(|(page, user)| {
            let mut record = user.node();
            record["profile_picture_url"] = json!(user.profile_picture_url.replace("&ccb=1-7", ""));
            record["page_id"] = json!(page.id);
            record
        })
        .collect();
    assert_eq!(out.records("users"), expected_users);
    for record in out.records("users") {
        assert!(record["page_id"].is_string());
        assert!(record.get("business_account_id").is_none(), "users get no business_account_id");
    }

    for stream in ["Api", "users"] {
        let n = expected_api.len();
        let mut want = vec!["STARTED".to_owned(), "RUNNING".to_owned()];
        want.extend(std::iter::repeat_n("RECORD".to_owned(), n));
        want.extend(["STATE".to_owned(), "COMPLETE".to_owned()]);
        assert_eq!(out.timeline(stream), want, "{stream}");
    }
    let states = out.of_type("STATE");
    assert_eq!(states[0]["state"]["stream"]["stream_state"], json!({"__ab_no_cursor_state_message": true}));
    assert_eq!(states[0]["state"]["sourceStats"]["recordCount"], json!(4.0));

    // Every request carried the bearer token; none put it in the URL.
    for request in sandbox.requests() {
        assert!(!request.query.contains_key("access_token"));
        assert_eq!(request.status, 200);
    }
    // Accounts are read once and shared by users.
    assert_eq!(sandbox.requests().iter().filter(|r| r.path == graph_path("/me/accounts")).count(), 1);
}

#[test]
fn reference_accounts_sample_is_paged_and_filtered_to_13_accounts() {
    let pages: Vec<(String, Option<String>)> = sample("api_for_not_instagram_business_account.json")["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().expect("id").to_owned(),
                p["instagram_business_account"]["id"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(pages.len(), 24);
    let options = SandboxOptions {
        max_page_size: 5,
        ..SandboxOptions::new(Model::from_pages(
            &ModelSpec { media_per_account: 0, stories_per_account: 0, ..ModelSpec::default() },
            &pages,
        ))
    };
    let sandbox = Sandbox::start(options).expect("sandbox");
    let scratch = Scratch::new("read-sample");
    let out = read(&scratch, &config_for(&sandbox), &["Api"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let records = out.records("Api");
    assert_eq!(records.len(), 13);
    assert_eq!(
        records[0],
        json!({"id": "118981261308043", "account": {"business_account_id": "17841462785487205", "page_id": "118981261308043"}})
    );
    let requests: Vec<_> = sandbox.requests().into_iter().filter(|r| r.path == graph_path("/me/accounts")).collect();
    assert_eq!(requests.len(), 5, "24 pages at 5 per page, no extra request after the last page");
    assert_eq!(requests[0].query.get("after"), None);
    assert_eq!(requests[0].query.get("limit").map(String::as_str), Some("100"));
    assert_eq!(requests[0].query.get("fields").map(String::as_str), Some("id,instagram_business_account"));
    assert!(requests[1..].iter().all(|r| r.query.contains_key("after")));
}

#[test]
fn unsupported_streams_fail_alone_and_the_read_exits_1() {
    let sandbox = Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default()))).expect("sandbox");
    let scratch = Scratch::new("read-partial");
    let out = read(&scratch, &config_for(&sandbox), &["no_such_stream", "users"]);
    assert_eq!(out.code, 1);
    assert_eq!(out.timeline("no_such_stream"), vec!["STARTED", "ERROR", "INCOMPLETE"]);
    assert_eq!(out.records("users").len(), 3, "the other stream still syncs");
    let errors = out.errors();
    assert_eq!(errors[0]["failure_type"], "config_error");
    assert!(errors[0]["message"].as_str().expect("m").contains("not found in the source"));
    let last = errors.last().expect("summary");
    assert!(last["message"].as_str().expect("m").contains("no_such_stream"));
    assert!(last.get("stream_descriptor").is_none());
}
