//! The top-level README's Rust block is examples/rust/quickstart.rs byte for
//! byte, so the README shows a program that compiles (the example is built
//! by `cargo test` and linted by `cargo clippy --all-targets`).

const README: &str = include_str!("../../README.md");
const QUICKSTART: &str = include_str!("../../examples/rust/quickstart.rs");

/// The bodies of every ```rust block in `markdown`.
fn rust_blocks(markdown: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("\n```rust\n") {
        let body = &rest[start + "\n```rust\n".len()..];
        let end = body.find("\n```\n").expect("a ```rust block is closed") + 1;
        blocks.push(&body[..end]);
        rest = &body[end..];
    }
    blocks
}

#[test]
fn the_readme_rust_block_is_the_quickstart_example() {
    let blocks = rust_blocks(README);
    assert_eq!(blocks.len(), 1, "README.md should have one ```rust block");
    assert!(
        blocks[0] == QUICKSTART,
        "README.md's ```rust block differs from examples/rust/quickstart.rs; \
         copy the example into the README\n--- README ---\n{}\n--- example ---\n{}",
        blocks[0],
        QUICKSTART
    );
}

#[test]
fn rust_blocks_are_found_whole() {
    let md = "a\n```rust\nfn x() {}\n```\nb\n```sh\nls\n```\n```rust\n//! y\n```\n";
    assert_eq!(rust_blocks(md), ["fn x() {}\n", "//! y\n"]);
}
