//! The source tree's layout: no two modules of a crate import each other,
//! directly or round a circle (CONTRIBUTING.md, "Where a feature's files
//! go"). A module may use its parent and its children; anything else it
//! uses must not use it back. Reads the sources as text, builds nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// The module a source file defines: `src/training/sagemaker/mod.rs` → training::sagemaker.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The longest prefix of `path` that is a module of the crate.
fn resolve(modules: &BTreeSet<Module>, path: &[String]) -> Option<Module> {
    (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| modules.contains(m))
}

/// Every `crate::a::b…` and `super::…` path a file names, outside its tests,
/// including the members of `crate::{a, b::c}` groups.
fn paths_named(text: &str, me: &Module) -> Vec<Vec<String>> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let ident = |s: &str| -> Vec<String> {
        s.split("::").map(|p| p.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>()).take_while(|p| !p.is_empty()).collect()
    };
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(0)];
            found.extend(inner.split(',').map(ident).filter(|p| !p.is_empty()));
        } else {
            found.push(ident(rest));
        }
    }
    // `super::` from a.rs means a's parent; from a/mod.rs too (the parent of a).
    let parent: Module = me[..me.len().saturating_sub(1)].to_vec();
    for (i, _) in code.match_indices("super::") {
        if i >= 2 && &code[i - 2..i] == "::" {
            continue;
        }
        let mut path = parent.clone();
        path.extend(ident(&code[i + "super::".len()..]));
        found.push(path);
    }
    found
}

fn related(a: &Module, b: &Module) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The crate's module graph: an edge a → b where a names b and neither
/// contains the other.
fn graph(crate_dir: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(&src, f)).filter(|m| !m.is_empty()).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let me = module_of(&src, file);
        if me.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for path in paths_named(&text, &me) {
            if let Some(target) = resolve(&modules, &path) {
                if !related(&me, &target) {
                    edges.entry(me.clone()).or_default().insert(target);
                }
            }
        }
    }
    edges
}

/// The groups of modules that reach each other (Tarjan's strongly connected
/// components of more than one module).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct Walk<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        found: Vec<Vec<Module>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: &Module) {
            let n = self.index.len();
            self.index.insert(v.clone(), n);
            self.low.insert(v.clone(), n);
            self.stack.push(v.clone());
            for w in self.edges.get(v).into_iter().flatten() {
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut group = Vec::new();
                while let Some(w) = self.stack.pop() {
                    let done = &w == v;
                    group.push(w);
                    if done {
                        break;
                    }
                }
                if group.len() > 1 {
                    self.found.push(group);
                }
            }
        }
    }
    let mut walk = Walk { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), found: Vec::new() };
    let nodes: BTreeSet<Module> = edges.keys().cloned().chain(edges.values().flatten().cloned()).collect();
    for v in &nodes {
        if !walk.index.contains_key(v) {
            walk.visit(v);
        }
    }
    walk.found
}

fn describe(edges: &BTreeMap<Module, BTreeSet<Module>>, group: &[Module]) -> String {
    let mut lines = Vec::new();
    for a in group {
        for b in edges.get(a).into_iter().flatten().filter(|b| group.contains(b)) {
            lines.push(format!("  {} uses {}", a.join("::"), b.join("::")));
        }
    }
    lines.join("\n")
}

fn assert_no_cycles(crate_name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().join(crate_name);
    let edges = graph(&dir);
    assert!(edges.len() > 10, "read too few modules of {crate_name} to judge ({})", edges.len());
    let found = cycles(&edges);
    let report: Vec<String> = found.iter().map(|g| describe(&edges, g)).collect();
    assert!(found.is_empty(), "modules of {crate_name} that import each other:\n{}", report.join("\n\n"));
}

#[test]
fn the_app_crate_has_no_import_cycles() {
    assert_no_cycles("app");
}

#[test]
fn the_server_crate_has_no_import_cycles() {
    assert_no_cycles("server");
}

#[test]
fn a_cycle_is_found_when_there_is_one() {
    let m = |s: &str| s.split("::").map(String::from).collect::<Module>();
    let mut edges = BTreeMap::new();
    edges.insert(m("training::page"), BTreeSet::from([m("training::job_page"), m("components")]));
    edges.insert(m("training::job_page"), BTreeSet::from([m("training::page")]));
    edges.insert(m("components"), BTreeSet::new());
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert!(describe(&edges, &found[0]).contains("training::job_page uses training::page"));
    // Paths as the sources name them resolve to the modules that exist.
    let modules = BTreeSet::from([m("training"), m("training::page")]);
    assert_eq!(resolve(&modules, &m("training::page::percent")), Some(m("training::page")));
    let named = paths_named("use super::page::percent;\nlet x = crate::{components, iam::rank};", &m("training::job_page"));
    assert_eq!(named, [m("components"), m("iam::rank"), m("training::page::percent")]);
}
