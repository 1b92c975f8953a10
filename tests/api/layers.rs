//! The house's one-way layering, checked on the source: every top-level module of `src/` has
//! a layer, and a module may name (`crate::x`) only modules of lower layers. So the store
//! knows no room, no room imports `http`, and no two modules import each other. A new
//! top-level module must be given its layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of every top-level module, lowest first. Rooms of one layer may not import each
/// other; a room that builds on another sits one layer up.
const LAYERS: &[(&str, u32)] = &[
    ("error", 0),
    ("kernel", 1),
    ("config", 2),
    ("store", 3),
    ("net", 3),
    // rooms
    ("audit", 4),
    ("incidents", 4),
    ("observability", 4),
    ("search", 5),
    ("intel", 6),
    ("transfer", 6),
    // rooms over the incident log and its intelligence
    ("risk", 7),
    ("backlog", 7),
    ("alerts", 7),
    // the pipeline, then its tools, then what calls tools
    ("gateway", 8),
    ("tools", 9),
    ("graphs", 10),
    ("jobs", 10),
    // wiring, edges, serving, the command line
    ("app", 11),
    ("http", 12),
    ("server", 13),
    ("cli", 14),
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The code of a file without its comments (doc links may name any module).
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `crate::x` names in `code`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + 7..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
        rest = after;
    }
    out
}

/// module → (module it names → first file that does).
fn module_graph() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        let deps = graph.entry(module.clone()).or_default();
        for m in named_modules(&code) {
            if m != module {
                deps.entry(m).or_insert_with(|| rel.display().to_string());
            }
        }
    }
    graph
}

#[test]
fn modules_import_only_lower_layers() {
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let graph = module_graph();
    let mut wrong = Vec::new();
    for (module, deps) in &graph {
        let Some(&mine) = layer.get(module.as_str()) else {
            wrong.push(format!("src/{module} has no layer in tests/api/layers.rs"));
            continue;
        };
        for (dep, file) in deps {
            match layer.get(dep.as_str()) {
                Some(&theirs) if theirs < mine => {}
                Some(&theirs) => wrong.push(format!(
                    "src/{file}: {module} (layer {mine}) imports {dep} (layer {theirs})"
                )),
                None => wrong.push(format!(
                    "src/{file}: names crate::{dep}, which has no layer"
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_imports_and_skips_comments() {
    let code = code_of("use crate::store::Store; // crate::http is only mentioned\n/// [`crate::app`]\nlet x = crate::kernel::clock::now;");
    let found: Vec<String> = named_modules(&code).into_iter().collect();
    assert_eq!(found, ["kernel", "store"]);
    // and the real tree is seen: the gateway names the audit room and the store names none
    let g = module_graph();
    assert!(g["gateway"].contains_key("audit"));
    assert!(!g["store"]
        .keys()
        .any(|m| ["incidents", "audit", "graphs", "gateway"].contains(&m.as_str())));
}
