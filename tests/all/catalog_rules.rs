//! The configured-catalog rules of Airbyte's Python CDK (`AbstractSource.read`), which clients
//! such as PyAirbyte rely on. (An unknown stream failing alone: `read_accounts.rs`.)

use e2e_tests::{ALL_STREAMS, Scratch, catalog_all, config_for, read_catalog};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};

fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::new(Model::generate(&ModelSpec::default()))).expect("sandbox")
}

/// Every stream with the same entry fields, as PyAirbyte builds its catalog.
fn catalog_with(fields: Value) -> Value {
    json!({"streams": ALL_STREAMS.iter().map(|name| {
        let mut entry = json!({"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]}});
        entry.as_object_mut().expect("object").extend(fields.as_object().expect("object").clone());
        entry
    }).collect::<Vec<_>>()})
}

#[test]
fn incremental_asked_for_a_full_refresh_stream_reads_it_in_full_refresh_and_says_so() {
    let sandbox = sandbox();
    let scratch = Scratch::new("catalog-incremental");
    let config = config_for(&sandbox);
    let expected = read_catalog(&scratch, &config, &catalog_all(), &[]);
    let out = read_catalog(
        &scratch,
        &config,
        &catalog_with(json!({"sync_mode": "incremental", "destination_sync_mode": "append_dedup"})),
        &[],
    );
    assert_eq!(out.code, 0, "{:?}", out.errors());
    assert_eq!(out.record_set(), expected.record_set());
    let full_refresh_only = instagram_connector::streams::REGISTRY.iter().filter(|s| !s.supports_incremental());
    for stream in full_refresh_only.map(|s| s.name) {
        assert_eq!(out.timeline(stream).last().map(String::as_str), Some("COMPLETE"), "{stream}");
        let said = format!("The stream `{stream}` supports only full_refresh; the catalog asks for incremental");
        assert!(out.logs().iter().any(|l| l.starts_with(&said)), "{stream}: {:?}", out.logs());
        assert_eq!(out.last_state(stream), Some(json!({"__ab_no_cursor_state_message": true})), "{stream}");
    }
    for stream in ["user_insights", "media", "media_insights", "comments"] {
        assert!(!out.logs().iter().any(|l| l.contains(&format!("`{stream}` supports only"))));
    }
}

#[test]
fn destination_sync_mode_and_cursor_and_key_overrides_are_ignored() {
    let sandbox = sandbox();
    let scratch = Scratch::new("catalog-overrides");
    let config = config_for(&sandbox);
    let expected = read_catalog(&scratch, &config, &catalog_all(), &[]);
    for overrides in [
        json!({"sync_mode": "full_refresh", "destination_sync_mode": "append", "cursor_field": ["page_id"]}),
        json!({"sync_mode": "full_refresh", "destination_sync_mode": "overwrite_dedup", "primary_key": [["page_id"], ["nope"]]}),
        json!({"sync_mode": "full_refresh"}),
    ] {
        let out = read_catalog(&scratch, &config, &catalog_with(overrides.clone()), &[]);
        assert_eq!(out.code, 0, "{overrides}: {:?}", out.errors());
        assert_eq!(out.record_set(), expected.record_set(), "{overrides}");
    }
}
