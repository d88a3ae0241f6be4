//! The host refuses requests to origins outside its allow-list (the embedding API, with the
//! real component and a real server that would have answered).

use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_host::egress::Origin;
use instagram_host::{AirbyteWriter, Connector, RunOptions};
use std::sync::{Arc, Mutex};

#[test]
fn a_request_to_a_foreign_origin_is_refused_and_logged() {
    let sandbox = Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default()))).expect("sandbox");
    let connector = Connector::from_file(&e2e_tests::component()).expect("component");
    let config = e2e_tests::config_for(&sandbox).to_string();
    // Allow only another port on the same host: the sandbox's own origin is foreign.
    let other = format!("http://127.0.0.1:{}/", sandbox.addr().port().wrapping_add(1).max(1));
    let options = RunOptions { allowed_origins: Origin::from_url(&other).into_iter().collect() };
    let buffer = Arc::new(Mutex::new(AirbyteWriter::new(Vec::new())));

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let result = runtime.block_on(connector.check(&options, buffer.clone(), &config)).expect("no host failure");

    let failure = result.expect_err("the check must fail");
    assert!(failure.message.contains("egress policy"), "{}", failure.message);
    assert!(sandbox.requests().is_empty(), "nothing reached the server");
    let written = String::from_utf8(buffer.lock().expect("lock").get_ref().clone()).expect("utf-8");
    let origin = format!("http://127.0.0.1:{}", sandbox.addr().port());
    assert!(written.contains(&format!("refused an outbound request to {origin}")), "{written}");
    assert!(!written.contains(sandbox.token()));
}

#[test]
fn the_default_policy_allows_only_the_base_url_origin() {
    let config = r#"{"access_token":"t","base_url":"http://127.0.0.1:4321/v23.0"}"#;
    let options = RunOptions::for_config(config);
    assert_eq!(options.allowed_origins, Origin::from_url("http://127.0.0.1:4321").into_iter().collect::<Vec<_>>());
    assert_eq!(
        RunOptions::for_config("{}").allowed_origins,
        Origin::from_url("https://graph.facebook.com").into_iter().collect::<Vec<_>>()
    );
}
