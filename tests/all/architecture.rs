//! The modules of the connector and of the host form no circle: each top-level module depends
//! only on modules that do not depend back on it, so each can be read (and tested) knowing only
//! what it uses. The dependencies are read from the production code's `crate::…` paths (and a
//! top-level file's `super::…`), as a reader would follow them.

use e2e_tests::workspace_root;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules its production code names.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(path: &Path, found: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("a directory").flatten() {
            rust_files(&entry.path(), found);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        found.push(path.to_path_buf());
    }
}

/// The code before the file's first `#[cfg(test)]` (unit tests may use anything).
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("a source file");
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end].lines().filter(|line| !line.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The first path segment of every path that starts with `prefix` (`crate::a::b` → `a`,
/// `crate::{a, b::c}` → `a`, `b`).
fn named_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |text: &str| text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut names = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        let Some(group) = rest.strip_prefix('{') else {
            names.insert(ident(rest));
            continue;
        };
        let (mut depth, mut item_start) = (0, true);
        for (offset, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                c if item_start && !c.is_whitespace() => {
                    names.insert(ident(&group[offset..]));
                    item_start = false;
                }
                _ => {}
            }
        }
    }
    names.retain(|name| !name.is_empty() && name != "self");
    names
}

/// The module graph of the crate whose sources are in `src`.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src).expect("src").flatten() {
        let path = entry.path();
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        if ["lib", "main", "parser_properties"].contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&path, &mut files);
        let mut uses = BTreeSet::new();
        for file in files {
            let code = production_code(&file);
            uses.extend(named_after(&code, "crate::"));
            // In a top-level file, `super` is the crate root.
            if file.parent() == Some(src) {
                uses.extend(named_after(&code, "super::"));
            }
        }
        uses.remove(&name);
        graph.insert(name, uses);
    }
    let modules: BTreeSet<String> = graph.keys().cloned().collect();
    graph.values_mut().for_each(|uses| uses.retain(|used| modules.contains(used)));
    graph
}

/// A circle of the graph, if it has one (as the path that closes it).
fn find_circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(node: &str, graph: &Graph, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_connector_and_the_host_have_no_circles_among_their_modules() {
    for (src, known_edge) in [("connector/src", ("streams", "model")), ("host/src", ("read_job", "output_dir"))] {
        let graph = module_graph(&workspace_root().join(src));
        // The reader sees the dependencies that are there.
        assert!(graph[known_edge.0].contains(known_edge.1), "{src}: {graph:#?}");
        if let Some(circle) = find_circle(&graph) {
            panic!("{src}: the modules {} depend on each other in a circle", circle.join(" → "));
        }
    }
}

#[test]
fn the_circle_finder_finds_circles_and_grouped_paths() {
    let code = "use crate::{a::B, b, c::{D, e::F}};\nuse super::z; fn f() { crate::y::g(); }";
    let names: Vec<String> = named_after(code, "crate::").into_iter().collect();
    assert_eq!(names, ["a", "b", "c", "y"]);
    let edge = |from: &str, to: &[&str]| (from.to_owned(), to.iter().map(|t| t.to_string()).collect());
    let graph: Graph = [edge("a", &["b"]), edge("b", &["c"]), edge("c", &["a"]), edge("d", &[])].into();
    assert_eq!(find_circle(&graph), Some(["a", "b", "c", "a"].map(String::from).to_vec()));
    let graph: Graph = [edge("a", &["b"]), edge("b", &["c"]), edge("c", &[])].into();
    assert_eq!(find_circle(&graph), None);
}
