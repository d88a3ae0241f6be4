//! `account_ids`: only the listed Instagram accounts sync; `check` names an id the token cannot
//! read; a token that cannot list Facebook Pages still syncs the listed accounts, with a null
//! `page_id`.

use e2e_tests::{Scratch, config_for, path_str, read, run_cli};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

fn model() -> Model {
    Model::generate(&ModelSpec { seed: 5, accounts: 3, media_per_account: 4, ..ModelSpec::default() })
}

fn ids(records: &[Value], field: &str) -> Vec<String> {
    let mut ids: Vec<String> = records.iter().map(|r| r[field].as_str().unwrap_or("?").to_owned()).collect();
    ids.dedup();
    ids
}

fn check(sandbox: &Sandbox, config: &Value) -> Value {
    let scratch = Scratch::new("selection-check");
    let path = scratch.write("config.json", &config.to_string());
    let out = run_cli(&["check", "--config", path_str(&path)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(sandbox.requests().iter().all(|r| !r.query.contains_key("access_token")));
    out.of_type("CONNECTION_STATUS")[0]["connectionStatus"].clone()
}

#[test]
fn only_the_listed_accounts_sync_in_the_listed_order() {
    let model = model();
    let users: Vec<(String, String)> = model.users().map(|(page, user)| (page.id.clone(), user.id.clone())).collect();
    let sandbox = Sandbox::start(SandboxOptions::new(model)).expect("sandbox");
    let mut config = config_for(&sandbox);
    config["account_ids"] = json!([users[2].1, users[0].1]);

    assert_eq!(check(&sandbox, &config), json!({"status": "SUCCEEDED"}));
    let out = read(&Scratch::new("selection-read"), &config, &["Api", "users", "media"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(ids(&out.records("users"), "id"), [users[2].1.clone(), users[0].1.clone()]);
    assert_eq!(ids(&out.records("users"), "page_id"), [users[2].0.clone(), users[0].0.clone()]);
    assert_eq!(ids(&out.records("Api"), "id"), [users[2].0.clone(), users[0].0.clone()]);
    let media_accounts = out.records("media").iter().map(|m| m["business_account_id"].clone()).collect::<Vec<_>>();
    assert!(!media_accounts.contains(&json!(users[1].1)), "an account not listed is not read");
    assert_eq!(media_accounts.len(), 8);
    assert!(sandbox.requests().iter().all(|r| !r.path.contains(&users[1].1)), "nothing of it is even asked");
}

#[test]
fn check_and_read_name_an_id_the_token_cannot_read() {
    let model = model();
    let known = model.users().next().map(|(_, user)| user.id.clone()).expect("user");
    let sandbox = Sandbox::start(SandboxOptions::new(model)).expect("sandbox");
    let mut config = config_for(&sandbox);
    config["account_ids"] = json!([known, "17841499999999999"]);

    let status = check(&sandbox, &config);
    assert_eq!(status["status"], "FAILED");
    let message = status["message"].as_str().expect("message");
    assert!(message.contains("17841499999999999") && message.contains("account_ids"), "{message}");
    assert!(!message.contains(&known), "only the unreadable id is named: {message}");

    let out = read(&Scratch::new("selection-unreadable"), &config, &["users"]);
    assert_ne!(out.code, 0);
    let errors = out.errors();
    assert_eq!(errors[0]["failure_type"], "config_error");
    assert!(errors[0]["message"].as_str().unwrap_or("").contains("17841499999999999"));
    assert!(out.records("users").is_empty());
}

#[test]
fn a_token_that_cannot_list_pages_syncs_the_listed_accounts_with_a_null_page_id() {
    let model = model();
    let wanted: Vec<String> = model.users().map(|(_, user)| user.id.clone()).take(2).collect();
    let options = SandboxOptions { pages_denied: true, ..SandboxOptions::new(model) };
    let sandbox = Sandbox::start(options).expect("sandbox");

    let status = check(&sandbox, &config_for(&sandbox));
    assert_eq!(status["status"], "FAILED", "without account_ids such a token cannot find any account");

    let mut config = config_for(&sandbox);
    config["account_ids"] = json!(wanted);
    assert_eq!(check(&sandbox, &config), json!({"status": "SUCCEEDED"}));
    let out = read(&Scratch::new("selection-no-pages"), &config, &["Api", "users", "media", "media_insights"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(ids(&out.records("users"), "id"), wanted);
    assert!(out.records("users").iter().all(|u| u["page_id"].is_null()));
    assert!(out.records("media").iter().all(|m| m["page_id"].is_null() && m["business_account_id"].is_string()));
    assert!(!out.records("media_insights").is_empty());
    assert!(out.records("Api").is_empty(), "Api lists Pages; the token sees none");
    assert!(out.logs().iter().any(|l| l.contains("cannot list Facebook Pages")));
}
