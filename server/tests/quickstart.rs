//! Runs the README's Rust program (examples/rust/quickstart.rs) against a
//! registry on free loopback ports: it prints the owner of a key, and it
//! stops its registration (a graceful leave, not a crash to detect).

mod common;

use common::Proc;
use registry_core::gossip::GossipConfig;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Builds the example with the profile of this test (a no-op when it is
/// up to date) and returns the path of its binary.
fn quickstart_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let mut build = Command::new(env!("CARGO"));
    build.args([
        "build",
        "--quiet",
        "-p",
        "registry-core",
        "--example",
        "quickstart",
    ]);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some(profile) => {
            build.args(["--profile", profile]);
        }
    }
    let status = build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --example quickstart failed");
    let bin = profile_dir
        .join("examples")
        .join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} was not built", bin.display());
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_example_matches_a_key_and_leaves_the_cluster() {
    let bin = tokio::task::spawn_blocking(quickstart_binary)
        .await
        .expect("build thread");
    let registry = common::start("reg-quickstart").await;
    let gossip = registry.gossip_addr().to_string();

    let child = Command::new(&bin)
        .args([gossip, registry.grpc_addr().to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn quickstart");
    let id = format!("readme-example-{}", child.id());
    let run = Proc::new(child);
    let done = tokio::task::spawn_blocking(move || run.finish(Duration::from_secs(60)))
        .await
        .expect("wait thread");
    let out = String::from_utf8_lossy(&done.stdout);
    let err = String::from_utf8_lossy(&done.stderr);
    assert_eq!(
        done.code,
        Some(0),
        "quickstart failed\nstdout:\n{out}\nstderr:\n{err}"
    );
    // Alone in its group, it owns every key.
    assert!(
        out.contains(&format!("user-42 -> {id} at 127.0.0.1:8080")),
        "quickstart should print itself as the owner of user-42; printed:\n{out}"
    );

    // Gone well before a vanished process could be declared failed (that
    // takes a missed probe and then `suspect_to_down_after`): it left.
    let bound = GossipConfig::lan().suspect_to_down_after;
    let exited = Instant::now();
    while !registry
        .catalog()
        .snapshot_or_empty("readme-demo")
        .members()
        .is_empty()
    {
        assert!(
            exited.elapsed() < bound,
            "the registry still lists {id} {bound:?} after quickstart exited: it did not stop its registration"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    registry.shutdown().await;
}
