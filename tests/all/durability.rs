//! Nothing lost when output cannot be written (issue 18, classes 2 and 3): a full disk at random
//! sizes (a tmpfs in a mount namespace), stdout on `/dev/full`, a reader that closes its pipe at
//! random points, and kills at random points, for each output path (stdout with `--state-file`,
//! and `--output DIR`). Each time the run is resumed from what it persisted and compared with a
//! clean sync: every record there, no torn line, and the persisted state never ahead of the
//! records. Plus the locks: one sync per output directory and state file.

use e2e_tests::{
    Output, Rng, Scratch, catalog_all, component, config_for, host_binary, path_str, run_cli, run_json_lines,
};
use graph_sandbox::model::{Model, ModelSpec};
use graph_sandbox::{Sandbox, SandboxOptions};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn sandbox(latency_ms: u64) -> Sandbox {
    let model = Model::generate(&ModelSpec {
        accounts: 2,
        media_per_account: 40,
        stories_per_account: 2,
        ..ModelSpec::default()
    });
    Sandbox::start(SandboxOptions { latency: Duration::from_millis(latency_ms), ..SandboxOptions::new(model) })
        .expect("sandbox")
}

/// `(stream, data)` of every record, as text.
type Records = BTreeSet<(String, String)>;

/// The records of a protocol transcript's complete lines (a torn last line is what a destination
/// would drop, and the state never covers it).
fn records_of_stdout(text: &str) -> Records {
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["type"] == "RECORD")
        .map(|m| (m["record"]["stream"].as_str().unwrap_or("").to_owned(), m["record"]["data"].to_string()))
        .collect()
}

/// The records of an output directory; every line of every stream file must be whole JSON.
fn records_of_dir(dir: &Path) -> Records {
    let mut records = Records::new();
    for entry in std::fs::read_dir(dir).expect("output dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stream) = name.strip_suffix(".jsonl").filter(|_| name != "messages.jsonl") else { continue };
        let text = std::fs::read_to_string(entry.path()).expect("stream file");
        assert!(text.is_empty() || text.ends_with('\n'), "{name} ends inside a line");
        for line in text.lines() {
            let line: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{name}: a torn line ({e}): {line}"));
            records.insert((stream.to_owned(), line["data"].to_string()));
        }
    }
    records
}

fn args<'a>(config: &'a Path, catalog: &'a Path, origin: &'a str) -> Vec<&'a str> {
    vec!["read", "--config", path_str(config), "--catalog", path_str(catalog), "--allow-host", origin]
}

/// A clean sync's records, through stdout.
fn clean_records(config: &Path, catalog: &Path, origin: &str) -> Records {
    let clean = run_cli(&args(config, catalog, origin));
    assert_eq!(clean.code, 0, "{:?}", clean.errors());
    records_of_stdout(&clean.stdout)
}

/// Class 2: stdout fills up mid-run (a tmpfs of random size) while the state file, on another
/// disk, has room: the state file never claims records that did not reach stdout, so a resume
/// from it, with what stdout holds, has every record (before, the state was saved after the
/// failed flush and the resume skipped what it claimed). Also stdout on `/dev/full`.
#[test]
fn a_state_file_never_gets_ahead_of_stdout_that_cannot_be_written() {
    let sandbox = sandbox(0);
    let scratch = Scratch::new("stdout-full");
    let origin = format!("http://{}", sandbox.addr());
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_all().to_string());
    let clean = clean_records(&config, &catalog, &origin);
    let base: Vec<String> = args(&config, &catalog, &origin).into_iter().map(str::to_owned).collect();
    let mut rng = Rng::seeded(0x5747_0F11);
    for round in 0..8 {
        let kib = 8 + rng.between(0, 600);
        let state = scratch.path().join(format!("state{round}.json"));
        let persist = vec!["--state-file".to_owned(), state.display().to_string()];
        let (mount, copy) = (scratch.path().join(format!("mnt{round}")), scratch.path().join(format!("copy{round}")));
        let Some(code) = run_on_small_disk(kib, &mount, &copy, &[base.clone(), persist].concat(), true) else {
            assert_ne!(effective_uid(), 0, "mount namespaces must work as root (CI)");
            eprintln!("durability: no mount namespace for this user; the full-stdout test needs root");
            return;
        };
        let stdout = std::fs::read_to_string(copy.join("stdout.jsonl")).unwrap_or_default();
        let resume = run_cli(&[&args(&config, &catalog, &origin)[..], &["--state", path_str(&state)]].concat());
        assert_eq!(resume.code, 0, "{kib} KiB: {:?}", resume.errors());
        let all: Records = records_of_stdout(&stdout).union(&records_of_stdout(&resume.stdout)).cloned().collect();
        let missing: Vec<_> = clean.difference(&all).take(3).collect();
        assert!(missing.is_empty(), "{kib} KiB of stdout (exit {code}): the state file claimed {missing:?}");
    }
    // Stdout that cannot take a single line: the state file stays where the run started.
    let state = scratch.path().join("state.json");
    let full = std::fs::File::options().write(true).open("/dev/full").expect("/dev/full");
    let persist = ["--state", path_str(&state), "--state-file", path_str(&state)];
    let status = Command::new(host_binary())
        .arg(component())
        .args(args(&config, &catalog, &origin))
        .args(persist)
        .stdout(full)
        .stderr(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(1), "a run whose output cannot be written fails");
    let persisted: Value = serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    assert_eq!(persisted, json!([]), "nothing reached stdout, so no state may claim anything");
}

/// Runs `host args…` inside a fresh mount namespace whose `dir` is a tmpfs of `kib` KiB (stdout to
/// `dir/stdout.jsonl` when `stdout_to_disk`), then copies `dir` out to `copy` (tmpfs content
/// ends with the namespace). The exit code of the host, or `None` where mount namespaces are not
/// available to this user.
fn run_on_small_disk(kib: u64, dir: &Path, copy: &Path, host_args: &[String], stdout_to_disk: bool) -> Option<i32> {
    let quoted: Vec<String> = host_args.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect();
    let redirect = if stdout_to_disk { format!("> '{}/stdout.jsonl'", dir.display()) } else { "> /dev/null".into() };
    let script = format!(
        "mount -t tmpfs -o size={kib}k tmpfs '{dir}' || exit 97; '{host}' '{component}' {args} {redirect} 2>/dev/null; rc=$?; cp -a '{dir}/.' '{copy}'; exit $rc",
        dir = dir.display(),
        host = host_binary().display(),
        component = component().display(),
        args = quoted.join(" "),
        copy = copy.display(),
    );
    std::fs::create_dir_all(dir).expect("mount point");
    std::fs::create_dir_all(copy).expect("copy");
    let status = Command::new("unshare").args(["-m", "sh", "-c", &script]).status().ok()?;
    match status.code() {
        Some(97) | None => None,
        code => code,
    }
}

/// Class 2 and 3 on a disk that fills at random sizes, for `--output DIR` and for stdout with
/// `--state-file`: the run fails, nothing it persisted is ahead of its records, no stream file
/// ends torn, and a resume (on a disk with room) ends with every record of a clean sync.
#[test]
fn a_full_disk_at_any_size_loses_nothing() {
    let sandbox = sandbox(0);
    let scratch = Scratch::new("full-disk");
    let origin = format!("http://{}", sandbox.addr());
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_all().to_string());
    let clean = clean_records(&config, &catalog, &origin);
    let base: Vec<String> = args(&config, &catalog, &origin).into_iter().map(str::to_owned).collect();
    let mut rng = Rng::seeded(0x1818_1818);
    let mut failed_runs = 0;
    for round in 0..12 {
        // A few KiB up to well past what the sync needs (about 1 MiB of records).
        let kib = 4 + rng.between(0, 700);
        let (mount, copy) = (scratch.path().join(format!("mnt{round}")), scratch.path().join(format!("copy{round}")));
        let to_dir = round % 2 == 0;
        let persist: Vec<String> = if to_dir {
            let out = mount.join("out");
            vec![
                "--output".into(),
                out.display().to_string(),
                "--state".into(),
                out.join("state.json").display().to_string(),
            ]
        } else {
            let state = mount.join("state.json").display().to_string();
            vec!["--state".into(), state.clone(), "--state-file".into(), state]
        };
        let Some(code) = run_on_small_disk(kib, &mount, &copy, &[base.clone(), persist].concat(), !to_dir) else {
            assert_ne!(effective_uid(), 0, "mount namespaces must work as root (CI)");
            eprintln!("durability: no mount namespace for this user; the full-disk test needs root");
            return;
        };
        failed_runs += usize::from(code != 0);
        // Resume on a disk with room, from what the run persisted.
        let records = if to_dir {
            let out = copy.join("out");
            let before = records_of_dir(&out);
            let resume = run_cli(
                &[
                    &args(&config, &catalog, &origin)[..],
                    &["--output", path_str(&out), "--state", path_str(&out.join("state.json"))],
                ]
                .concat(),
            );
            assert_eq!(resume.code, 0, "{kib} KiB: {:?}", resume.errors());
            let after = records_of_dir(&out);
            assert!(before.is_subset(&after), "{kib} KiB: the resume kept what was written");
            after
        } else {
            let stdout = std::fs::read_to_string(copy.join("stdout.jsonl")).unwrap_or_default();
            let state = copy.join("state.json");
            let resume_args: Vec<&str> = if state.exists() { vec!["--state", path_str(&state)] } else { vec![] };
            let resume = run_cli(&[&args(&config, &catalog, &origin)[..], &resume_args[..]].concat());
            assert_eq!(resume.code, 0, "{kib} KiB: {:?}", resume.errors());
            records_of_stdout(&stdout).union(&records_of_stdout(&resume.stdout)).cloned().collect()
        };
        let missing: Vec<_> = clean.difference(&records).take(3).collect();
        assert!(
            missing.is_empty(),
            "{kib} KiB ({}): lost {missing:?}",
            if to_dir { "--output" } else { "--state-file" }
        );
    }
    assert!(failed_runs >= 4, "the disk filled in most rounds ({failed_runs})");
}

/// The effective user id, from /proc (no unsafe code, no extra crate).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|uid| uid.parse().ok())
        .unwrap_or(u32::MAX)
}

/// A reader that closes stdout at a random point: the run stops at once (exit 1), and a resume
/// from the last state the reader received gets every record the reader lost.
#[test]
fn a_reader_that_closes_its_pipe_loses_nothing() {
    let sandbox = sandbox(2);
    let scratch = Scratch::new("closed-pipe");
    let origin = format!("http://{}", sandbox.addr());
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_all().to_string());
    let clean = clean_records(&config, &catalog, &origin);
    let mut rng = Rng::seeded(0x00C1_05ED);
    for round in 0..6 {
        let keep = 2_000 + rng.between(0, 400_000) as usize;
        let mut child = Command::new(host_binary())
            .arg(component())
            .args(args(&config, &catalog, &origin))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run");
        let mut stdout = child.stdout.take().expect("stdout");
        let mut read = vec![0u8; keep];
        let mut got = 0;
        while got < keep {
            match stdout.read(&mut read[got..]) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        drop(stdout);
        let status = child.wait().expect("wait");
        let seen = String::from_utf8_lossy(&read[..got]).into_owned();
        let finished = seen
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|m| m["type"] == "LOG" && m["log"]["message"].as_str().unwrap_or("").starts_with("Read done"));
        assert!(finished || status.code() == Some(1), "round {round}: a closed stdout fails the run");
        // The reader resumes from the last state of each stream it received, as a destination does.
        let mut states = std::collections::BTreeMap::new();
        for message in seen.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            if message["type"] == "STATE" {
                let name = message["state"]["stream"]["stream_descriptor"]["name"].as_str().unwrap_or("").to_owned();
                states.insert(name, message["state"].clone());
            }
        }
        let state = scratch.write("state.json", &Value::Array(states.into_values().collect()).to_string());
        let resume = run_cli(&[&args(&config, &catalog, &origin)[..], &["--state", path_str(&state)]].concat());
        assert_eq!(resume.code, 0, "{:?}", resume.errors());
        let all: Records = records_of_stdout(&seen).union(&records_of_stdout(&resume.stdout)).cloned().collect();
        let missing: Vec<_> = clean.difference(&all).take(3).collect();
        assert!(missing.is_empty(), "round {round} (closed after {got} bytes): lost {missing:?}");
    }
}

/// Kills at random points, for `--output DIR` and for stdout with `--state-file`: each resume goes
/// on from what was persisted; in the end no line is torn and every record is there.
#[test]
fn kills_at_random_points_lose_nothing_and_tear_no_line() {
    let sandbox = sandbox(3);
    let scratch = Scratch::new("kills");
    let origin = format!("http://{}", sandbox.addr());
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_all().to_string());
    let clean = clean_records(&config, &catalog, &origin);
    let mut rng = Rng::seeded(0x0000_0000_0000_0009);
    let dir = scratch.path().join("out");
    let state = scratch.path().join("state.json");
    let mut stdout_seen = Records::new();
    for round in 0..8 {
        let to_dir = round % 2 == 0;
        let persist: Vec<String> = if to_dir {
            vec![
                "--output".into(),
                dir.display().to_string(),
                "--state".into(),
                dir.join("state.json").display().to_string(),
            ]
        } else {
            vec!["--state".into(), state.display().to_string(), "--state-file".into(), state.display().to_string()]
        };
        let log = scratch.path().join(format!("stdout{round}.jsonl"));
        let mut child = Command::new(host_binary())
            .arg(component())
            .args(args(&config, &catalog, &origin))
            .args(&persist)
            .stdout(std::fs::File::create(&log).expect("stdout file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("run");
        std::thread::sleep(Duration::from_millis(50 + rng.between(0, 1_500)));
        let _ = child.kill();
        let _ = child.wait();
        stdout_seen.extend(records_of_stdout(&std::fs::read_to_string(&log).unwrap_or_default()));
    }
    // Finish both from what they persisted.
    let finish_dir = run_cli(
        &[
            &args(&config, &catalog, &origin)[..],
            &["--output", path_str(&dir), "--state", path_str(&dir.join("state.json"))],
        ]
        .concat(),
    );
    assert_eq!(finish_dir.code, 0, "{:?}", finish_dir.errors());
    let resume_state: Vec<&str> = if state.exists() { vec!["--state", path_str(&state)] } else { vec![] };
    let finish_stdout = run_cli(&[&args(&config, &catalog, &origin)[..], &resume_state[..]].concat());
    assert_eq!(finish_stdout.code, 0, "{:?}", finish_stdout.errors());
    let in_dir = records_of_dir(&dir);
    assert!(clean.is_subset(&in_dir), "--output lost {:?}", clean.difference(&in_dir).take(3).collect::<Vec<_>>());
    stdout_seen.extend(records_of_stdout(&finish_stdout.stdout));
    assert!(
        clean.is_subset(&stdout_seen),
        "--state-file lost {:?}",
        clean.difference(&stdout_seen).take(3).collect::<Vec<_>>()
    );
}

/// A torn last line left by an earlier run is cut before the next run appends (before, the
/// resume glued a record onto it); the cut is logged.
#[test]
fn a_torn_last_line_is_cut_before_appending() {
    let sandbox = sandbox(0);
    let scratch = Scratch::new("torn");
    let origin = format!("http://{}", sandbox.addr());
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_all().to_string());
    let dir = scratch.path().join("out");
    std::fs::create_dir_all(&dir).expect("dir");
    let torn = "{\"emitted_at\":1,\"data\":{\"id\":\"17";
    std::fs::write(dir.join("media.jsonl"), format!("{{\"emitted_at\":1,\"data\":{{\"id\":\"1\"}}}}\n{torn}"))
        .expect("torn");
    let out = run_cli(&[&args(&config, &catalog, &origin)[..], &["--output", path_str(&dir)]].concat());
    assert_eq!(out.code, 0, "{:?}", out.errors());
    let records = records_of_dir(&dir);
    assert!(records.contains(&("media".to_owned(), json!({"id": "1"}).to_string())), "whole lines are kept");
    assert!(out.logs().iter().any(|l| l.contains("torn last line")), "{:?}", out.logs());
}

/// One sync per output directory and state file: a second process (or a second job of one
/// run-many) gets a `config_error` saying so, and the first is not disturbed.
#[test]
fn an_output_directory_or_state_file_serves_one_sync_at_a_time() {
    let sandbox = sandbox(250);
    let scratch = Scratch::new("locks");
    let origin = format!("http://{}", sandbox.addr());
    let config = scratch.write("config.json", &config_for(&sandbox).to_string());
    let catalog = scratch.write("catalog.json", &catalog_all().to_string());
    let dir = scratch.path().join("out");
    let state = scratch.path().join("state.json");
    for persist in [
        vec!["--output", path_str(&dir)],
        vec!["--state-file", path_str(&state)],
        vec!["--state-file", path_str(&dir.join("state.json"))],
    ] {
        let first_persist = if persist[0] == "--output" || persist[1].ends_with("out/state.json") {
            vec!["--output".to_owned(), dir.display().to_string()]
        } else {
            vec!["--state-file".to_owned(), state.display().to_string()]
        };
        let mut first = Command::new(host_binary())
            .arg(component())
            .args(args(&config, &catalog, &origin))
            .args(&first_persist)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("first");
        std::thread::sleep(Duration::from_millis(300));
        assert!(first.try_wait().expect("first").is_none(), "the first sync is still running");
        let second: Output = run_cli(&[&args(&config, &catalog, &origin)[..], &persist[..]].concat());
        assert_eq!(second.code, 1);
        let error = &second.errors()[0];
        assert_eq!(error["failure_type"], "config_error", "{error}");
        assert!(error["message"].as_str().unwrap_or("").contains("another sync is using it"), "{error}");
        assert!(second.of_type("RECORD").is_empty());
        assert_eq!(first.wait().expect("first").code(), Some(0), "the first sync is not disturbed");
    }
    let job = |name: &str| {
        json!({"name": name, "config": config_for(&sandbox), "catalog": catalog_all(), "output": "shared",
                                  "allow_hosts": [origin]})
    };
    let jobs = scratch.write("jobs.json", &json!({"jobs": [job("a"), job("b")]}).to_string());
    let summary = run_json_lines(&["run-many", path_str(&jobs)]).messages;
    let statuses: BTreeSet<&str> = summary.iter().filter_map(|s| s["status"].as_str()).collect();
    assert!(
        statuses.contains("succeeded")
            && summary.iter().any(|s| s["detail"].as_str().unwrap_or("").contains("another sync")),
        "{summary:?}"
    );
}
