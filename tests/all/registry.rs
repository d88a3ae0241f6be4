//! Adding a stream is one file plus one registry line: every other place (discover, the catalog
//! rules, the parent→child wiring, the host, the demo, the test helpers) reads the registry. This
//! test scans the production code and the shared test helpers for stream names spelled out.

use e2e_tests::{ALL_STREAMS, workspace_root};
use std::path::Path;

/// The code that must not spell out a stream name: everything that ships or drives every stream.
/// Unit tests, the e2e tests and the bench, which pick particular streams on purpose, are left out.
const SCANNED: [&str; 7] = [
    "connector/src",
    "host/src",
    "host/stdout-sink/src",
    "host/image",
    "tests/demo.sh",
    "tests/lib.rs",
    "tests/python/conftest.py",
];

fn production_lines(path: &Path) -> Vec<(usize, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .enumerate()
        .take_while(|(_, line)| !line.contains("#[cfg(test)]"))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect()
}

fn files(path: &Path, found: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("dir").flatten() {
            files(&entry.path(), found);
        }
    } else if path.extension().is_some_and(|e| e == "rs" || e == "py" || e == "sh")
        && !path.ends_with("parser_properties.rs")
        // Graph's metric names, one of which (`comments`) spells a stream's name.
        && !path.ends_with("connector/src/metrics.rs")
    {
        found.push(path.to_path_buf());
    }
}

#[test]
fn a_stream_is_named_only_in_its_own_file() {
    let root = workspace_root();
    let mut sources = Vec::new();
    for scanned in SCANNED {
        files(&root.join(scanned), &mut sources);
    }
    assert!(sources.len() > 25, "{} files", sources.len());
    let mut named_elsewhere = Vec::new();
    for stream in ALL_STREAMS {
        let own = root.join("connector/src/streams").join(format!("{}.rs", stream.to_lowercase()));
        for source in sources.iter().filter(|s| **s != own) {
            for (number, line) in production_lines(source) {
                let quoted = [format!("\"{stream}\""), format!("'{stream}'")];
                if quoted.iter().any(|q| line.contains(q.as_str())) {
                    named_elsewhere.push(format!("{}:{number}: {}", source.display(), line.trim()));
                }
            }
        }
        assert!(
            production_lines(&own).iter().any(|(_, l)| l.contains(&format!("pub const NAME: &str = \"{stream}\";")))
        );
    }
    assert!(named_elsewhere.is_empty(), "{named_elsewhere:#?}");
}
