//! The ring must give exactly the answers in `tests/vectors/ring.json`, the
//! file every front door (Rust, C, Go, Python) is tested against.
//!
//! This file is also the generator. To regenerate the vectors deliberately:
//!
//! ```text
//! REGISTRY_BLESS=1 cargo test -p registry-core --test ring_vectors
//! ```
//!
//! Blessing may add cases, but it refuses to change an existing answer
//! while [`RING_ALGORITHM`] keeps its name: clients compare that name, so a
//! change of answers needs a new algorithm name.

use registry_core::ring::{
    checksum_hex, key_position, point_position, Ring, HASH_SEED, RING_ALGORITHM, VNODES_PER_WEIGHT,
};
use registry_core::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

const FORMAT: &str = "registry-ring-vectors/1";

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vectors {
    format: String,
    algorithm: String,
    vnodes_per_weight: u32,
    hash_seed: String,
    hash_checks: Vec<HashCheck>,
    cases: Vec<Case>,
    errors: Vec<ErrorCase>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct HashCheck {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    vnode: Option<u32>,
    position: u32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct MemberSpec {
    id: String,
    weight: u32,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Case {
    name: String,
    members: Vec<MemberSpec>,
    /// `Ring::checksum` as 16 lowercase hex digits (absent from files
    /// written before it existed, so that blessing can still compare them).
    #[serde(default)]
    checksum: String,
    n: usize,
    keys: Vec<KeyAnswer>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct KeyAnswer {
    key: String,
    owner: String,
    top: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct ErrorCase {
    name: String,
    members: Vec<MemberSpec>,
    key: String,
    n: usize,
    error: String,
}

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/ring.json")
}

fn specs(members: &[(&str, u32)]) -> Vec<MemberSpec> {
    members
        .iter()
        .map(|(id, weight)| MemberSpec {
            id: id.to_string(),
            weight: *weight,
        })
        .collect()
}

/// The keys every case answers: ASCII, multibyte UTF-8, control and quote
/// characters, and long keys (over 240 bytes xxHash3 takes another path).
fn keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "a",
        "user:1",
        "user:2",
        "order/12345",
        "session-7f3a9c",
        "The quick brown fox jumps over the lazy dog",
        "with space",
        "tab\there",
        "line\nbreak",
        "quote\"and\\backslash",
        "ключ",
        "日本語のキー",
        "emoji 🦀🚀",
        "e\u{301}",
        "\u{e9}",
        "\u{10FFFF}",
        "ñandú",
        "0",
        "sixteen-byte-key",
        "seventeen-byte-ky",
    ]
    .iter()
    .map(|k| k.to_string())
    .collect();
    keys.push("x".repeat(128));
    keys.push("y".repeat(129));
    keys.push("z".repeat(240));
    keys.push("w".repeat(241));
    keys.push("長".repeat(400));
    keys.extend((0..40).map(|i| format!("key-{i}")));
    keys
}

type CaseDef = (&'static str, Vec<(String, u32)>, usize);

fn case_definitions() -> Vec<CaseDef> {
    let owned = |v: &[(&str, u32)]| v.iter().map(|(id, w)| (id.to_string(), *w)).collect::<Vec<_>>();
    vec![
        ("single", owned(&[("solo", 1)]), 2),
        ("three-equal", owned(&[("a", 1), ("b", 1), ("c", 1)]), 3),
        ("weighted", owned(&[("small", 1), ("medium", 2), ("large", 5)]), 2),
        (
            "ten-services",
            (0..10).map(|i| (format!("service-{i}"), 1)).collect(),
            3,
        ),
        (
            "unicode-ids",
            owned(&[("ñandú", 1), ("東京-1", 2), ("🦀-crab", 1), ("plain", 3)]),
            4,
        ),
        (
            "hundred-mixed",
            (0..100).map(|i| (format!("node-{i:03}"), 1 + i % 3)).collect(),
            5,
        ),
        // Scaled rings (mean weight above 4): level 8 and level 7.
        (
            "scaled-equal",
            (0..5).map(|i| (format!("heavy-{i}"), 1000)).collect(),
            3,
        ),
        (
            "scaled-mixed",
            owned(&[
                ("big", 1000),
                ("half", 500),
                ("tenth", 100),
                ("seven", 7),
                ("one", 1),
            ]),
            5,
        ),
    ]
}

fn kind(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument(_) => "invalid_argument",
        Error::NotFound(_) => "not_found",
        Error::AlreadyExists(_) => "already_exists",
        Error::Unavailable(_) => "unavailable",
        Error::Timeout(_) => "timeout",
        Error::LimitExceeded(_) => "limit_exceeded",
        Error::Internal(_) => "internal",
    }
}

/// What the ring answers for one error case: the error kind, or "ok".
fn error_answer(members: &[MemberSpec], key: &str, n: usize) -> String {
    match Ring::new(members.iter().map(|m| (m.id.as_str(), m.weight))) {
        Err(e) => kind(&e).to_string(),
        Ok(ring) => match ring.locate_n(key, n) {
            Err(e) => kind(&e).to_string(),
            Ok(_) => "ok".to_string(),
        },
    }
}

fn generate() -> Vectors {
    let mut hash_checks: Vec<HashCheck> = ["a", "user:1", "ключ", "🦀", &"w".repeat(241)]
        .iter()
        .map(|k| HashCheck {
            key: Some(k.to_string()),
            id: None,
            vnode: None,
            position: key_position(k),
        })
        .collect();
    for (id, vnode) in [("a", 0), ("a", 1), ("a", 1791), ("service-0", 0), ("ñandú", 5)] {
        hash_checks.push(HashCheck {
            key: None,
            id: Some(id.to_string()),
            vnode: Some(vnode),
            position: point_position(id, vnode),
        });
    }
    let cases = case_definitions()
        .into_iter()
        .map(|(name, members, n)| {
            let ring = Ring::new(members.iter().map(|(id, w)| (id.as_str(), *w)))
                .unwrap_or_else(|e| panic!("case {name}: {e}"));
            let id = |i: usize| ring.members()[i].id.to_string();
            let keys = keys()
                .into_iter()
                .map(|key| {
                    let owner = id(ring
                        .locate(&key)
                        .unwrap_or_else(|e| panic!("{name} {key:?}: {e}")));
                    let top = ring
                        .locate_n(&key, n)
                        .unwrap_or_else(|e| panic!("{name} {key:?}: {e}"));
                    KeyAnswer {
                        key,
                        owner,
                        top: top.into_iter().map(id).collect(),
                    }
                })
                .collect();
            Case {
                name: name.to_string(),
                members: members
                    .iter()
                    .map(|(id, w)| MemberSpec {
                        id: id.clone(),
                        weight: *w,
                    })
                    .collect(),
                checksum: checksum_hex(ring.checksum()),
                n,
                keys,
            }
        })
        .collect();
    let ab = [("a", 1), ("b", 1)];
    let errors = [
        ("empty key", specs(&ab), "", 1),
        ("n is zero", specs(&ab), "k", 0),
        ("empty ring", specs(&[]), "k", 1),
        ("weight zero", specs(&[("a", 0)]), "k", 1),
        ("weight above 1000", specs(&[("a", 1001)]), "k", 1),
        ("duplicate id", specs(&[("a", 1), ("a", 2)]), "k", 1),
        ("empty id", specs(&[("", 1)]), "k", 1),
        ("n above the member count is fine", specs(&ab), "k", 9),
    ]
    .into_iter()
    .map(|(name, members, key, n)| {
        let error = error_answer(&members, key, n);
        ErrorCase {
            name: name.to_string(),
            members,
            key: key.to_string(),
            n,
            error,
        }
    })
    .collect();
    Vectors {
        format: FORMAT.to_string(),
        algorithm: RING_ALGORITHM.to_string(),
        vnodes_per_weight: VNODES_PER_WEIGHT,
        hash_seed: format!("{HASH_SEED:#018x}"),
        hash_checks,
        cases,
        errors,
    }
}

const ABOUT: &str = r#"Shared test vectors of the registry ring (RING_ALGORITHM "xxh3-vnode-v2").
Every front door (Rust, C, Go, Python) must give exactly these answers.
Generated by core/tests/ring_vectors.rs; regenerate deliberately with
REGISTRY_BLESS=1 cargo test -p registry-core --test ring_vectors.
Fields: "hash_checks": key_position(key) or point_position(id, vnode), as u32.
"cases": a ring built from "members" ({id, weight}; order does not matter);
for each key, "owner" = locate(key) and "top" = locate_n(key, n) with the
case's "n" (fewer ids when the ring has fewer than n members).
"checksum": the ring's checksum, 16 lowercase hex digits (tests/vectors/README.md).
"errors": build the ring from "members", then call locate_n(key, n); "error"
is the kind of error ("invalid_argument", "not_found") or "ok"."#;

/// Writes the vectors with one key answer per line, so diffs stay readable.
fn render(v: &Vectors) -> String {
    let j = |x: &dyn erased::Json| x.json();
    let mut out = String::from("{\n");
    let about: Vec<String> = ABOUT.lines().map(|l| j(&l.to_string())).collect();
    let _ = writeln!(out, "  \"about\": [\n    {}\n  ],", about.join(",\n    "));
    let _ = writeln!(out, "  \"format\": {},", j(&v.format));
    let _ = writeln!(out, "  \"algorithm\": {},", j(&v.algorithm));
    let _ = writeln!(out, "  \"vnodes_per_weight\": {},", v.vnodes_per_weight);
    let _ = writeln!(out, "  \"hash_seed\": {},", j(&v.hash_seed));
    let checks: Vec<String> = v.hash_checks.iter().map(|c| j(c)).collect();
    let _ = writeln!(out, "  \"hash_checks\": [\n    {}\n  ],", checks.join(",\n    "));
    let mut cases = Vec::new();
    for c in &v.cases {
        let keys: Vec<String> = c.keys.iter().map(|k| j(k)).collect();
        cases.push(format!(
            "    {{\n      \"name\": {},\n      \"members\": {},\n      \"checksum\": {},\n      \"n\": {},\n      \"keys\": [\n        {}\n      ]\n    }}",
            j(&c.name),
            j(&c.members),
            j(&c.checksum),
            c.n,
            keys.join(",\n        ")
        ));
    }
    let _ = writeln!(out, "  \"cases\": [\n{}\n  ],", cases.join(",\n"));
    let errors: Vec<String> = v.errors.iter().map(|e| j(e)).collect();
    let _ = writeln!(out, "  \"errors\": [\n    {}\n  ]", errors.join(",\n    "));
    out.push_str("}\n");
    out
}

mod erased {
    /// Compact JSON of anything serializable, for `render`.
    pub trait Json {
        fn json(&self) -> String;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> String {
            serde_json::to_string(self).expect("vectors serialize")
        }
    }
}

/// The checksum as tests/vectors/README.md defines it, computed here from
/// that text alone (not from the ring), so the two cannot drift apart.
fn documented_checksum(members: &[MemberSpec]) -> u64 {
    let mut sorted: Vec<&MemberSpec> = members.iter().collect();
    sorted.sort_by(|a, b| a.id.as_bytes().cmp(b.id.as_bytes()));
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(RING_ALGORITHM.len() as u32).to_le_bytes());
    bytes.extend_from_slice(RING_ALGORITHM.as_bytes());
    bytes.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for m in sorted {
        bytes.extend_from_slice(&(m.id.len() as u32).to_le_bytes());
        bytes.extend_from_slice(m.id.as_bytes());
        bytes.extend_from_slice(&m.weight.to_le_bytes());
        bytes.push(0);
    }
    twox_hash::XxHash3_64::oneshot_with_seed(HASH_SEED, &bytes)
}

fn load() -> Vectors {
    let text = std::fs::read_to_string(path())
        .unwrap_or_else(|e| panic!("{}: {e}; generate it with REGISTRY_BLESS=1", path().display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path().display()))
}

/// Existing answers (by case and key) that the new vectors change.
fn changed_answers(old: &Vectors, new: &Vectors) -> Vec<String> {
    let mut answers: BTreeMap<(String, String), &KeyAnswer> = BTreeMap::new();
    for c in &new.cases {
        for k in &c.keys {
            answers.insert((c.name.clone(), k.key.clone()), k);
        }
    }
    let mut changed = Vec::new();
    for c in &old.cases {
        let same_case = new
            .cases
            .iter()
            .any(|n| n.name == c.name && n.members == c.members && n.n == c.n);
        let same_sum = new
            .cases
            .iter()
            .any(|n| n.name == c.name && n.checksum == c.checksum);
        if same_case && !c.checksum.is_empty() && !same_sum {
            changed.push(format!("{} checksum", c.name));
        }
        for k in &c.keys {
            match answers.get(&(c.name.clone(), k.key.clone())) {
                Some(now) if same_case && *now != k => changed.push(format!("{} {:?}", c.name, k.key)),
                _ => {}
            }
        }
    }
    for h in &old.hash_checks {
        if let Some(now) = new
            .hash_checks
            .iter()
            .find(|n| n.key == h.key && n.id == h.id && n.vnode == h.vnode)
        {
            if now.position != h.position {
                changed.push(format!("hash check {h:?}"));
            }
        }
    }
    changed
}

#[test]
fn the_ring_matches_the_shared_vectors() {
    if std::env::var_os("REGISTRY_BLESS").is_some() {
        let new = generate();
        if let Ok(text) = std::fs::read_to_string(path()) {
            if let Ok(old) = serde_json::from_str::<Vectors>(&text) {
                let changed = changed_answers(&old, &new);
                assert!(
                    old.algorithm != new.algorithm || changed.is_empty(),
                    "{} existing answers change but RING_ALGORITHM is still {:?}: rename the algorithm \
                     (clients compare it) before regenerating. First: {:?}",
                    changed.len(),
                    RING_ALGORITHM,
                    &changed[..changed.len().min(5)]
                );
            }
        }
        std::fs::write(path(), render(&new)).unwrap_or_else(|e| panic!("{}: {e}", path().display()));
        eprintln!("wrote {}", path().display());
    }

    let v = load();
    assert_eq!(v.format, FORMAT);
    assert_eq!(
        v.algorithm, RING_ALGORITHM,
        "the vectors are for another algorithm: bless deliberately"
    );
    assert_eq!(v.vnodes_per_weight, VNODES_PER_WEIGHT);
    assert_eq!(v.hash_seed, format!("{HASH_SEED:#018x}"));
    for h in &v.hash_checks {
        let got = match (&h.key, &h.id, h.vnode) {
            (Some(key), None, None) => key_position(key),
            (None, Some(id), Some(vnode)) => point_position(id, vnode),
            _ => panic!("malformed hash check {h:?}"),
        };
        assert_eq!(got, h.position, "{h:?}");
    }
    let mut answers = 0;
    for c in &v.cases {
        let ring = Ring::new(c.members.iter().map(|m| (m.id.as_str(), m.weight)))
            .unwrap_or_else(|e| panic!("case {}: {e}", c.name));
        assert_eq!(
            checksum_hex(ring.checksum()),
            c.checksum,
            "case {} checksum",
            c.name
        );
        assert_eq!(
            ring.checksum(),
            documented_checksum(&c.members),
            "case {}",
            c.name
        );
        let id = |i: usize| ring.members()[i].id.to_string();
        for k in &c.keys {
            let owner = ring.locate(&k.key).map(id);
            assert_eq!(owner.as_ref(), Ok(&k.owner), "case {} key {:?}", c.name, k.key);
            let top = ring
                .locate_n(&k.key, c.n)
                .map(|t| t.into_iter().map(id).collect::<Vec<_>>());
            assert_eq!(top.as_ref(), Ok(&k.top), "case {} key {:?}", c.name, k.key);
            answers += 1;
        }
    }
    assert!(
        answers >= 300,
        "only {answers} answers: the vectors file lost cases"
    );
    for e in &v.errors {
        assert_eq!(
            error_answer(&e.members, &e.key, e.n),
            e.error,
            "error case {:?}",
            e.name
        );
    }
    // The file in the repository is exactly what the generator writes, so
    // a generator change cannot go unnoticed.
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    assert!(
        text == render(&generate()),
        "tests/vectors/ring.json differs from what core/tests/ring_vectors.rs generates: \
         regenerate deliberately with REGISTRY_BLESS=1"
    );
}
