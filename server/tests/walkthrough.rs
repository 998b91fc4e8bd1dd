//! Runs the walkthrough of server/README.md, verbatim, with the built
//! binaries first on PATH, and checks what it prints.

mod common;

use common::Proc;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn walkthrough() -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- walkthrough:start -->")
        .expect("walkthrough start marker");
    let end = readme
        .find("<!-- walkthrough:end -->")
        .expect("walkthrough end marker");
    let block = &readme[start..end];
    let body_start = block.find("```sh\n").expect("sh block") + "```sh\n".len();
    let body_end = block.rfind("```").expect("block end");
    block[body_start..body_end].to_string()
}

#[test]
fn the_readme_walkthrough_runs_and_prints_what_it_says() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_registry-server"))
        .parent()
        .expect("bin dir")
        .to_path_buf();
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl is not installed; the walkthrough needs it");
        return;
    }
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Job control on (`%1`), errors fatal, and every job killed however
    // the script ends.
    let script = format!(
        "set -euo pipefail\nset -m\ntrap 'kill -9 $(jobs -p) 2>/dev/null || true' EXIT\n{}",
        walkthrough()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut proc = Proc::new(child);
    let code = proc.wait_timeout(Duration::from_secs(120));
    drop(proc);
    let out = out_thread.join().unwrap_or_default();
    let err = err_thread.join().unwrap_or_default();
    assert_eq!(
        code,
        Some(0),
        "walkthrough failed\nstdout:\n{out}\nstderr:\n{err}"
    );

    let lines: Vec<&str> = out.lines().collect();
    let has = |words: &[&str]| lines.iter().any(|l| words.iter().all(|w| l.contains(w)));
    assert!(
        has(&["registry-group", "2"]),
        "groups lists both registries:\n{out}"
    );
    assert!(has(&["web", "2"]), "groups lists web with 2 members:\n{out}");
    assert!(has(&["web-1", "127.0.0.1:18081"]), "members lists web-1:\n{out}");
    assert!(has(&["web-2", "127.0.0.1:18082"]), "members lists web-2:\n{out}");
    // The CLI's match and curl's /v1/match name the same instance.
    let http: serde_json::Value = lines
        .iter()
        .find(|l| l.contains("\"service\""))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("curl /v1/match printed JSON:\n{out}"));
    let owner = http["service"]["id"].as_str().expect("owner id");
    assert!(
        has(&[owner, "127.0.0.1:1808"]),
        "registry match printed {owner}:\n{out}"
    );
    assert!(out.contains("{\"addr\":\"127.0.0.1:18081\",\"group\":\"web\",\"id\":\"web-1\"}"));
    // After web-1 left, the last table has only web-2.
    let last_table = out.rsplit("ID ").next().unwrap_or("");
    assert!(
        last_table.contains("web-2") && !last_table.contains("web-1"),
        "{out}"
    );
}
