//! Each stream's records and its schema agree both ways, so a field cannot be added to one and
//! not the other: what the connector asks Graph for (field lists, metric lists) is in the schema,
//! every field a record carries is a property of its schema, and every property is carried by
//! some record of a sync of the sandbox, whose data has every field Graph sends. The only
//! exceptions are the reference's own, named below with the reason.

use e2e_tests::{Scratch, catalog_all, config_for, read_catalog, run_cli};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use instagram_connector::graph;
use instagram_connector::metrics::{self, Chosen};
use instagram_connector::streams::{
    comments, media, media_insights, stories, story_insights, user_daily_totals, user_insights, users,
};
use std::collections::{BTreeMap, BTreeSet};

/// Fields a record carries that its schema does not declare, as the reference emits them
/// (`docs/source-instagram.md` §5.2, §7.1: its children's partitions, not data).
const EMITTED_NOT_DECLARED: [(&str, &str); 2] =
    [(media::NAME, "media_insights_info"), (stories::NAME, "story_insights_info")];

/// Properties the schema declares that no request asks for: the reference keeps
/// `total_interactions` in the media_insights schema after taking it out of the queries.
const DECLARED_NOT_ASKED: [(&str, &str); 1] = [(media_insights::NAME, "total_interactions")];

/// Every stream's schema properties, from `discover`.
fn schema_properties() -> BTreeMap<String, BTreeSet<String>> {
    let scratch = Scratch::new("schemas");
    let config = scratch.write("config.json", r#"{"access_token": "t"}"#);
    let out = run_cli(&["discover", "--config", config.to_str().expect("path")]);
    let catalog = &out.of_type("CATALOG")[0]["catalog"]["streams"];
    let streams = catalog.as_array().expect("streams");
    streams
        .iter()
        .map(|stream| {
            let properties = stream["json_schema"]["properties"].as_object().expect("properties");
            (stream["name"].as_str().expect("name").to_owned(), properties.keys().cloned().collect())
        })
        .collect()
}

fn names(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',').map(str::to_owned)
}

#[test]
fn what_is_asked_for_is_declared() {
    let schemas = schema_properties();
    let metric_lists = [("VIDEO", "REELS"), ("VIDEO", "FEED"), ("VIDEO", "AD"), ("CAROUSEL_ALBUM", "FEED"), ("", "")]
        .map(|(kind, product)| metrics::default_media_metrics(Some(kind), Some(product)));
    let user_metrics = user_insights::GROUPS.iter().flat_map(|(period, metrics)| {
        let suffix = match *period {
            "week" => "_week",
            "days_28" => "_days_28",
            _ => "",
        };
        names(metrics).map(move |metric| format!("{metric}{suffix}"))
    });
    let asked: [(&str, Vec<String>); 5] = [
        (media::NAME, names(graph::MEDIA_FIELDS).collect()),
        (stories::NAME, names(graph::STORY_FIELDS).collect()),
        (users::NAME, names(graph::USER_FIELDS).collect()),
        (media_insights::NAME, metric_lists.iter().flat_map(|list| names(list)).collect()),
        (story_insights::NAME, names(metrics::DEFAULT_STORY_METRICS).collect()),
    ];
    let every_total =
        Chosen { totals: Some(metrics::TOTALS_METRICS.iter().map(|m| m.to_string()).collect()), ..Chosen::default() };
    let totals: Vec<String> =
        metrics::totals_fields(&every_total).map(|(_, chosen)| chosen).unwrap_or_default().into_iter().collect();
    let more = [(user_insights::NAME, user_metrics.collect()), (user_daily_totals::NAME, totals)];
    for (stream, fields) in asked.into_iter().chain(more) {
        for field in fields {
            assert!(schemas[stream].contains(&field), "{stream} asks Graph for `{field}`, which its schema lacks");
        }
    }
    // Comments are records of their own shape: every field Graph sends but `from` (whose id is
    // `from_id`) is one of the record's.
    for field in names(graph::COMMENT_FIELDS).filter(|f| f != "from") {
        assert!(schemas[comments::NAME].contains(&field), "comments lacks `{field}`");
    }
}

#[test]
fn every_record_field_is_declared_and_every_declared_field_is_in_some_record() {
    let model = Model::generate(&ModelSpec::default());
    let sandbox = Sandbox::start(SandboxOptions::new(model)).expect("sandbox");
    let scratch = Scratch::new("schemas-read");
    let out = read_catalog(&scratch, &config_for(&sandbox), &catalog_all(), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut carried: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for message in out.of_type("RECORD") {
        let stream = message["record"]["stream"].as_str().expect("stream").to_owned();
        let fields = message["record"]["data"].as_object().expect("an object").keys().cloned();
        carried.entry(stream).or_default().extend(fields);
    }
    for (stream, declared) in schema_properties() {
        let carried = carried.remove(&stream).unwrap_or_default();
        let extra = |list: &[(&str, &str)]| -> BTreeSet<String> {
            list.iter().filter(|(s, _)| *s == stream).map(|(_, f)| f.to_string()).collect()
        };
        let undeclared: Vec<&String> =
            carried.difference(&declared).filter(|f| !extra(&EMITTED_NOT_DECLARED).contains(*f)).collect();
        let never_carried: Vec<&String> =
            declared.difference(&carried).filter(|f| !extra(&DECLARED_NOT_ASKED).contains(*f)).collect();
        assert!(undeclared.is_empty(), "{stream}: records carry {undeclared:?}, which its schema lacks");
        assert!(never_carried.is_empty(), "{stream}: no record carries {never_carried:?} of its schema");
    }
}
