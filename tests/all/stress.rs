//! The scarce-slots stress test (issue 18, class 1): `run-many` rounds with random tenant counts
//! (1 to 100), request slots per tenant (1 to 16), host-wide pools, `num_workers`, latencies and
//! catalogs (any subset of streams: parents alone, children without their parents, both),
//! each under a deadline. Every tenant must finish with the records of a solo run of its catalog.
//!
//! Seeded and reproducible: `STRESS_SEED=N` replays a round set; `STRESS_ROUNDS=N` runs more
//! rounds. A failure names the seed and the round's parameters.

use e2e_tests::{ALL_STREAMS, Rng, Scratch, catalog_of, path_str, read_catalog, run_json_lines_within};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A non-empty random subset of the streams, in registry order.
fn random_catalog(rng: &mut Rng) -> Vec<&'static str> {
    loop {
        let picked: Vec<&str> = ALL_STREAMS.iter().copied().filter(|_| rng.next_u64().is_multiple_of(3)).collect();
        if !picked.is_empty() {
            return picked;
        }
    }
}

/// Each stream's records (data only, sorted) in an output directory.
fn outputs(dir: &Path, streams: &[&str]) -> BTreeMap<String, Vec<String>> {
    streams
        .iter()
        .map(|stream| {
            let text = std::fs::read_to_string(dir.join(format!("{stream}.jsonl"))).unwrap_or_default();
            let mut data: Vec<String> = text
                .lines()
                .map(|line| serde_json::from_str::<Value>(line).expect("json line")["data"].to_string())
                .collect();
            data.sort();
            ((*stream).to_owned(), data)
        })
        .collect()
}

#[test]
fn tenants_finish_with_solo_records_whatever_the_slots() {
    let seed: u64 = std::env::var("STRESS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(18);
    let rounds: u64 = std::env::var("STRESS_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let model = Model::generate(&ModelSpec {
        accounts: 2,
        media_per_account: 40,
        stories_per_account: 2,
        ..ModelSpec::default()
    });
    let mut rng = Rng::seeded(seed);
    let scratch = Scratch::new("stress");
    let mut solo: BTreeMap<Vec<&str>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let started = Instant::now();
    for round in 0..rounds {
        let latency = [0, 0, 5, 20][rng.between(0, 3) as usize];
        let options = SandboxOptions { latency: Duration::from_millis(latency), ..SandboxOptions::new(model.clone()) };
        let sandbox = Sandbox::start(options).expect("sandbox");
        let origin = format!("http://{}", sandbox.addr());
        let tenants = if rng.next_u64().is_multiple_of(3) { rng.between(50, 100) } else { rng.between(1, 30) };
        let pool = match rng.between(0, 3) {
            0 => 0,
            1 => rng.between(1, 4),
            _ => rng.between(5, 64),
        };
        let mut jobs = Vec::new();
        let mut catalogs = Vec::new();
        for tenant in 0..tenants {
            let catalog = random_catalog(&mut rng);
            let config = json!({"access_token": sandbox.token(), "base_url": sandbox.base_url(),
                                "num_workers": rng.between(2, 40)});
            jobs.push(json!({"name": format!("t{tenant}"), "config": config, "catalog": catalog_of(&catalog),
                             "output": format!("r{round}/t{tenant}"), "allow_hosts": [origin],
                             "limits": {"max_concurrent_requests": rng.between(1, 16)}}));
            catalogs.push(catalog);
        }
        let what = format!("seed {seed}, round {round}: {tenants} tenants, pool {pool}, latency {latency} ms");
        let jobs_path = scratch.write("jobs.json", &json!({"jobs": jobs}).to_string());
        let args = ["run-many", "--max-requests-total", &pool.to_string(), path_str(&jobs_path)];
        let summary = run_json_lines_within(&args, Duration::from_secs(240)).unwrap_or_else(|e| panic!("{what}: {e}"));
        let summary = summary.messages;
        assert_eq!(summary.len() as u64, tenants, "{what}");
        for (tenant, catalog) in catalogs.iter().enumerate() {
            let line = &summary[tenant];
            assert_eq!(line["status"], "succeeded", "{what}: {line}");
            let expected = solo.entry(catalog.clone()).or_insert_with(|| {
                let config = json!({"access_token": sandbox.token(), "base_url": sandbox.base_url()});
                let out = read_catalog(&scratch, &config, &catalog_of(catalog), &[]);
                assert_eq!(out.code, 0, "solo {catalog:?}: {:?}", out.errors());
                catalog.iter().map(|s| ((*s).to_owned(), out.record_set().remove(*s).unwrap_or_default())).collect()
            });
            let got = outputs(&scratch.path().join(format!("r{round}/t{tenant}")), catalog);
            assert_eq!(&got, expected, "{what}: tenant {tenant} ({catalog:?}) differs from a solo run");
        }
        let records: usize = (0..tenants as usize)
            .map(|tenant| {
                outputs(&scratch.path().join(format!("r{round}/t{tenant}")), &catalogs[tenant])
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum();
        assert!(records > 0, "{what}: no records at all");
        let _ = std::fs::remove_dir_all(scratch.path().join(format!("r{round}")));
        eprintln!(
            "stress: {what}: {records} records, every tenant equal to a solo run ({:.1} s)",
            started.elapsed().as_secs_f64()
        );
    }
}
