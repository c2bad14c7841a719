//! Fails when a new import cycle appears between the top-level modules of `src/`.
//!
//! The graph has an edge `a -> b` when a file under `src/a` (or `src/a.rs`) names `crate::b`
//! (in a `use` line, a `use crate::{b, …}` group or a path in code). A few edges that still
//! close cycles are listed in `KNOWN_BACK_EDGES`, to be broken one by one: the test also fails
//! when a listed edge is gone, so the list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Edges that close a cycle today. Remove an entry when its edge is gone. Empty since the
/// intake, the pages, the casework and the originals build from their own parts of the
/// settings (`config::Settings::{intake_parts, web_parts, originals}`) and no longer name
/// `config`.
const KNOWN_BACK_EDGES: &[(&str, &str)] = &[];

#[test]
fn no_new_cycle_between_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = module_graph(&src);
    for (from, to) in KNOWN_BACK_EDGES {
        let present = graph.get_mut(*from).is_some_and(|t| t.remove(*to));
        assert!(
            present,
            "the known back edge {from} -> {to} is gone: remove it from KNOWN_BACK_EDGES"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "import cycle between top-level modules: {}",
            cycle.join(" -> ")
        );
    }
}

#[test]
fn the_detector_finds_a_cycle_and_accepts_a_dag() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    let dag = graph(&[("a", "b"), ("b", "c"), ("a", "c")]);
    assert_eq!(find_cycle(&dag), None);
    let cyclic = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]);
    assert_eq!(
        find_cycle(&cyclic),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let pair = graph(&[("web", "cli"), ("cli", "web")]);
    assert_eq!(
        find_cycle(&pair),
        Some(vec!["cli".into(), "web".into(), "cli".into()])
    );
}

#[test]
fn references_are_read_from_use_lines_groups_and_paths() {
    let refs = references(
        "use crate::config::Settings;\nuse crate::{store::Store, intake};\n// crate::web in a comment\nfn f() { crate::ops::start(); }\n",
    );
    let expected: BTreeSet<String> = ["config", "store", "intake", "ops"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(refs, expected);
}

/// The top-level modules and the modules each refers to.
fn module_graph(src: &Path) -> Graph {
    let modules: BTreeSet<String> = std::fs::read_dir(src)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let module = name.strip_suffix(".rs").unwrap_or(&name).to_string();
            (e.path().is_dir() || name.ends_with(".rs")).then_some(module)
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = Graph::new();
    for module in &modules {
        let mut files = Vec::new();
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
        collect_rs(&src.join(module), &mut files);
        let targets = graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            targets.extend(
                references(&text)
                    .into_iter()
                    .filter(|t| t != module && modules.contains(t)),
            );
        }
    }
    graph
}

fn collect_rs(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect_rs(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The first path segments after `crate::` in code (comment lines left out).
fn references(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::X, b}`: the first segment of each item (nested groups are
            // deeper than the first segment, so only top-level commas matter).
            let mut depth = 0;
            let mut item_start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        out.insert(ident(&group[j..]));
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.remove("");
    out
}

/// A cycle as the list of its modules, first repeated at the end; `None` for a DAG.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::Open => {
                    let start = path.iter().position(|n| n == next).unwrap();
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
            if let Some(c) = visit(node, graph, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}
