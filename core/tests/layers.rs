//! The core's layers (DESIGN.md): dependencies point down only. Reads the
//! sources and fails when a module uses a module of a higher layer, when
//! two modules of one layer use each other, or when a module has no
//! layer yet (give a new module its place here).

use std::collections::BTreeMap;
use std::path::Path;

/// Layer of each top-level module of `core/src`.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("limits", 0),
    ("service", 0),
    ("tls", 0),
    ("runtime", 0),
    ("validate", 0),
    ("ring", 1),
    ("catalog", 2),
    ("gossip", 3),
    ("bridge", 4),
    ("wire", 5),
    ("client", 6),
    ("registration", 6),
];

/// The modules a source file uses through `crate::NAME`, outside comments.
fn uses(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, with the top-level module it belongs to.
fn sources(dir: &Path, module: Option<&str>, out: &mut Vec<(String, String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read core/src").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            sources(&path, Some(module.unwrap_or(&name)), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let owner = module.map_or(name.clone(), str::to_string);
            let text = std::fs::read_to_string(&path).expect("read a source file");
            out.push((path.display().to_string(), owner, text));
        }
    }
}

#[test]
fn dependencies_point_down_only() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        None,
        &mut files,
    );
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (path, owner, text) in &files {
        if owner == "lib" {
            continue;
        }
        let Some(&from) = layers.get(owner.as_str()) else {
            wrong.push(format!(
                "{path}: module {owner:?} has no layer in core/tests/layers.rs"
            ));
            continue;
        };
        for used in uses(text) {
            if used == *owner {
                continue;
            }
            match layers.get(used.as_str()) {
                Some(&to) if to > from => {
                    wrong.push(format!("{path}: {owner} (layer {from}) uses {used} (layer {to})"))
                }
                Some(_) => {
                    edges.insert((owner.clone(), used.clone()), path.clone());
                }
                None => {}
            }
        }
    }
    for ((a, b), path) in &edges {
        if a < b && edges.contains_key(&(b.clone(), a.clone())) {
            wrong.push(format!("{path}: {a} and {b} use each other"));
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
    assert!(files.len() > 10, "core/src was not read");
}

#[test]
fn uses_finds_code_and_skips_comments() {
    let src = "use crate::ring::Ring; // crate::client\n/// see [`crate::wire`]\nlet x = crate::limits::MAX;";
    assert_eq!(uses(src), ["ring", "limits"]);
}
