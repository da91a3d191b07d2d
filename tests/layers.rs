//! The layer rule of `src/`, checked on the code itself (parsed with syn, not grepped):
//!
//! ```text
//! main > cli > explorer | serve > engine > model > analysis > support
//! ```
//! A file may use files of its own layer or of layers below, never above; the two front ends
//! (`explorer`, `serve`) share a rank and never use each other; nothing but `main`
//! uses `cli`; only `model` touches llama.cpp (`llama_cpp_2`, `llama_cpp_sys_2`); only `cli`
//! uses clap; only `explorer` uses the terminal (ratatui, crossterm); only `serve` uses the
//! HTTP stack (axum, tokio, hyper); the explorer's state and
//! update never use its views; no two files use each other in a cycle; no file has more than
//! 600 lines before its `#[cfg(test)]` module. Code under `#[cfg(test)]` is exempt.
//!
//! The checker itself is tested on small made-up trees, so that it is known to catch each kind
//! of violation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

const LAYERS: [&str; 8] = [
    "support", "analysis", "model", "engine", "explorer", "serve", "cli", "main",
];

/// A layer's rank: the front ends share one.
fn rank(layer: usize) -> usize {
    match LAYERS[layer] {
        "serve" => rank(4),
        _ if layer > 5 => layer - 1,
        _ => layer,
    }
}
const MAX_LINES: usize = 600;

/// A file's module path: `src/explorer/views/strip.rs` → `["explorer", "views", "strip"]`,
/// `mod.rs` → its folder, `lib.rs` → `[]`, `main.rs` → `["main"]` (a crate of its own).
fn module_of(rel: &str) -> Vec<String> {
    let rel = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    match parts.last().map(String::as_str) {
        Some("mod") | Some("lib") => {
            parts.pop();
        }
        _ => {}
    }
    parts
}

fn layer_of(module: &[String]) -> Option<usize> {
    let top = module.first().map_or("lib", String::as_str);
    LAYERS.iter().position(|l| *l == top)
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let t = a.meta.to_token_stream_string();
            t.contains("test") && !t.contains("not")
        }
    })
}

trait TokensString {
    fn to_token_stream_string(&self) -> String;
}
impl TokensString for syn::Meta {
    fn to_token_stream_string(&self) -> String {
        quote_free(self)
    }
}
fn quote_free(m: &syn::Meta) -> String {
    match m {
        syn::Meta::List(l) => l.tokens.to_string(),
        syn::Meta::Path(p) => path_string(p),
        syn::Meta::NameValue(_) => String::new(),
    }
}
fn path_string(p: &syn::Path) -> String {
    p.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Every path a file uses, as segment lists, outside `#[cfg(test)]` code.
#[derive(Default)]
struct Uses {
    paths: Vec<Vec<String>>,
}

impl Uses {
    fn tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let mut full = prefix.clone();
                if n.ident != "self" {
                    full.push(n.ident.to_string());
                }
                self.paths.push(full);
            }
            syn::UseTree::Rename(r) => {
                let mut full = prefix.clone();
                full.push(r.ident.to_string());
                self.paths.push(full);
            }
            syn::UseTree::Glob(_) => self.paths.push(prefix.clone()),
            syn::UseTree::Group(g) => {
                for t in &g.items {
                    self.tree(prefix, t);
                }
            }
        }
    }

    /// `crate :: a :: b` (and `super`, `self`, crate names) inside macro arguments.
    fn tokens(&mut self, ts: TokenStream) {
        let tokens: Vec<TokenTree> = ts.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.tokens(g.stream()),
                TokenTree::Ident(id) => {
                    let mut path = vec![id.to_string()];
                    let mut j = i + 1;
                    loop {
                        let colons = matches!(
                            (tokens.get(j), tokens.get(j + 1)),
                            (Some(TokenTree::Punct(a)), Some(TokenTree::Punct(b)))
                                if a.as_char() == ':' && b.as_char() == ':'
                        );
                        match tokens.get(j + 2) {
                            Some(TokenTree::Ident(next)) if colons => {
                                path.push(next.to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    if path.len() > 1 {
                        self.paths.push(path);
                    }
                    i = j;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

impl<'ast> Visit<'ast> for Uses {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let attrs = match item {
            syn::Item::Mod(m) => &m.attrs,
            syn::Item::Fn(f) => &f.attrs,
            syn::Item::Impl(i) => &i.attrs,
            syn::Item::Use(u) => &u.attrs,
            syn::Item::Const(c) => &c.attrs,
            syn::Item::Static(s) => &s.attrs,
            syn::Item::Struct(s) => &s.attrs,
            syn::Item::Enum(e) => &e.attrs,
            syn::Item::Trait(t) => &t.attrs,
            _ => return syn::visit::visit_item(self, item),
        };
        if !is_cfg_test(attrs) {
            syn::visit::visit_item(self, item);
        }
    }
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        self.tree(&mut Vec::new(), &u.tree);
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        self.paths
            .push(p.segments.iter().map(|s| s.ident.to_string()).collect());
        syn::visit::visit_path(self, p);
    }
    /// `pub(super)` names a module but uses nothing from it.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.tokens(m.tokens.clone());
        syn::visit::visit_macro(self, m);
    }
}

/// The problems of a tree given as (path relative to src/, source).
fn check(files: &BTreeMap<String, String>) -> Vec<String> {
    let modules: BTreeMap<Vec<String>, String> = files
        .keys()
        .map(|rel| (module_of(rel), rel.clone()))
        .collect();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in files {
        let module = module_of(rel);
        let is_main = rel == "main.rs";
        let Some(layer) = layer_of(&module).or(is_main.then_some(LAYERS.len() - 1)) else {
            continue; // lib.rs: module declarations only
        };
        let body = src.split("#[cfg(test)]").next().unwrap_or_default();
        let lines = body.lines().count();
        if lines > MAX_LINES {
            problems.push(format!(
                "{rel}: {lines} lines before its tests (the limit is {MAX_LINES})"
            ));
        }
        let ast = syn::parse_file(src).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let mut uses = Uses::default();
        uses.visit_file(&ast);
        // `self` inside a mod.rs is the folder; in a file, the file.
        let dir: Vec<String> = module.clone();
        for path in uses.paths {
            let first = path.first().map_or("", String::as_str);
            let external = |what: &str, allowed: &[&str]| {
                let top = module.first().map_or("", String::as_str);
                (!allowed.contains(&top))
                    .then(|| format!("{rel}: uses {what} ({})", path.join("::")))
            };
            let problem = match first {
                "llama_cpp_2" | "llama_cpp_sys_2" => external("llama.cpp", &["model"]),
                "clap" => external("clap", &["cli"]),
                "ratatui" | "crossterm" => external("the terminal", &["explorer"]),
                "axum" | "tokio" | "hyper" => external("the HTTP stack", &["serve"]),
                _ => None,
            };
            problems.extend(problem);
            let absolute: Vec<String> = match first {
                "crate" => path[1..].to_vec(),
                "logitscope" if is_main => path[1..].to_vec(),
                "super" => {
                    let mut base = dir.clone();
                    let mut rest = &path[..];
                    while rest.first().map(String::as_str) == Some("super") {
                        base.pop();
                        rest = &rest[1..];
                    }
                    base.extend_from_slice(rest);
                    base
                }
                "self" => {
                    let mut base = dir.clone();
                    base.extend_from_slice(&path[1..]);
                    base
                }
                _ => {
                    // A child module named directly (`use reader::Reader` in a mod.rs).
                    let mut child = dir.clone();
                    child.extend_from_slice(&path);
                    if rel.ends_with("mod.rs") || rel == "lib.rs" {
                        if (1..=child.len())
                            .any(|n| n > dir.len() && modules.contains_key(&child[..n]))
                        {
                            child
                        } else {
                            continue;
                        }
                    } else {
                        continue;
                    }
                }
            };
            // The longest prefix that is a file.
            let Some(target) = (0..=absolute.len())
                .rev()
                .find_map(|n| modules.get(&absolute[..n]))
            else {
                continue;
            };
            if target == rel || target == "lib.rs" {
                continue;
            }
            let target_module = module_of(target);
            let Some(target_layer) = layer_of(&target_module) else {
                continue;
            };
            if rank(target_layer) > rank(layer) {
                problems.push(format!(
                    "{rel}: layer {} uses {target} of layer {}, above it",
                    LAYERS[layer], LAYERS[target_layer]
                ));
            }
            if rank(target_layer) == rank(layer) && target_layer != layer {
                problems.push(format!(
                    "{rel}: the front end {} uses the front end {} ({target})",
                    LAYERS[layer], LAYERS[target_layer]
                ));
            }
            if LAYERS[target_layer] == "cli" && !is_main && LAYERS[layer] != "cli" {
                problems.push(format!("{rel}: uses the command line ({target})"));
            }
            let state_file = rel == "explorer/state.rs" || rel.starts_with("explorer/update");
            if state_file && target.starts_with("explorer/views") {
                problems.push(format!(
                    "{rel}: the explorer's state uses drawing code ({target})"
                ));
            }
            if std::env::var_os("LAYERS_DEBUG").is_some() {
                eprintln!("{rel} -> {target} via {}", path.join("::"));
            }
            edges.entry(rel.clone()).or_default().insert(target.clone());
        }
    }
    problems.extend(cycles(&edges));
    problems.sort();
    problems.dedup();
    problems
}

/// Cycles between files, each reported once (from its smallest file).
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn dfs(
        u: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        state.insert(u.to_owned(), 1);
        stack.push(u.to_owned());
        for v in edges.get(u).into_iter().flatten() {
            match state.get(v.as_str()) {
                Some(1) => {
                    let at = stack.iter().position(|s| s == v).unwrap_or(0);
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(v.clone());
                    out.push(format!("cycle: {}", cycle.join(" -> ")));
                }
                Some(_) => {}
                None => dfs(v, edges, state, stack, out),
            }
        }
        stack.pop();
        state.insert(u.to_owned(), 2);
    }
    let mut state = BTreeMap::new();
    let mut out = Vec::new();
    for u in edges.keys() {
        if !state.contains_key(u.as_str()) {
            dfs(u, edges, &mut state, &mut Vec::new(), &mut out);
        }
    }
    out
}

fn read_tree(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read_tree(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            out.insert(rel, std::fs::read_to_string(&path).unwrap());
        }
    }
}

#[test]
fn the_source_tree_keeps_the_layer_rule() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    read_tree(&root, &root, &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let problems = check(&files);
    assert!(
        problems.is_empty(),
        "layer problems:\n{}",
        problems.join("\n")
    );
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(p, s)| ((*p).to_owned(), (*s).to_owned()))
        .collect()
}

#[test]
fn the_checker_catches_each_kind_of_violation() {
    let ok = [
        ("lib.rs", "pub mod analysis; pub mod cli; pub mod model;"),
        ("main.rs", "fn main() { logitscope::cli::run(); }"),
        ("cli/mod.rs", "use crate::model::Model; pub fn run() {}"),
        (
            "model/mod.rs",
            "use llama_cpp_2::x; use crate::analysis::stats::f;",
        ),
        ("analysis/stats.rs", "pub fn f() {}"),
        ("analysis/mod.rs", "pub mod stats;"),
        (
            "explorer/mod.rs",
            "use crate::model::Model; pub struct App;",
        ),
    ];
    assert_eq!(check(&tree(&ok)), Vec::<String>::new());

    let with = |rel: &'static str, src: &'static str| {
        let mut t = tree(&ok);
        t.insert(rel.to_owned(), src.to_owned());
        check(&t)
    };
    let says = |problems: Vec<String>, want: &str| {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want:?} not in {problems:?}"
        );
    };
    says(
        with(
            "analysis/stats.rs",
            "use crate::explorer::App; pub fn f() {}",
        ),
        "analysis/stats.rs: layer analysis uses explorer/mod.rs of layer explorer, above it",
    );
    says(
        with("analysis/stats.rs", "pub fn f() { crate::cli::run(); }"),
        "analysis/stats.rs: uses the command line (cli/mod.rs)",
    );
    says(
        with(
            "analysis/stats.rs",
            "use llama_cpp_2::model::LlamaModel; pub fn f() {}",
        ),
        "analysis/stats.rs: uses llama.cpp",
    );
    says(
        with(
            "analysis/stats.rs",
            "pub fn f() { tracing::info!(\"{}\", crate::model::x()); }",
        ),
        "analysis/stats.rs: layer analysis uses model/mod.rs of layer model, above it",
    );
    says(
        with("model/mod.rs", "use crate::cli::run;"),
        "model/mod.rs: uses the command line",
    );
    says(
        with(
            "analysis/other.rs",
            "use super::stats::f; use clap::Parser;",
        ),
        "analysis/other.rs: uses clap",
    );
    says(
        with("serve/mod.rs", "use crate::explorer::App; pub fn run() {}"),
        "serve/mod.rs: the front end serve uses the front end explorer",
    );
    says(
        with("engine/mod.rs", "use axum::Router; pub fn f() {}"),
        "engine/mod.rs: uses the HTTP stack",
    );
    assert_eq!(
        with("serve/mod.rs", "use crate::model::Model; use axum::Router;"),
        Vec::<String>::new()
    );
    let mut cyclic = tree(&ok);
    cyclic.insert(
        "analysis/a.rs".into(),
        "use super::b::g; pub fn f() {}".into(),
    );
    cyclic.insert(
        "analysis/b.rs".into(),
        "use super::a::f; pub fn g() {}".into(),
    );
    says(
        check(&cyclic),
        "cycle: analysis/a.rs -> analysis/b.rs -> analysis/a.rs",
    );
    let long = "fn f() {}\n".repeat(MAX_LINES + 1) + "#[cfg(test)]\nmod tests {}";
    let mut big = tree(&ok);
    big.insert("analysis/big.rs".into(), long);
    says(check(&big), "analysis/big.rs: 601 lines before its tests");
    // Test code is exempt.
    assert_eq!(
        with(
            "analysis/stats.rs",
            "pub fn f() {}\n#[cfg(test)]\nmod tests { use crate::cli::run; }"
        ),
        Vec::<String>::new()
    );
}
