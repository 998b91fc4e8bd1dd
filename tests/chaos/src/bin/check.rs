//! `registry-chaos-check DIR`: checks a recorded run again (its
//! `events.jsonl` and `client.*.log`) and prints the report; exits 1 when
//! a guarantee is broken.

use registry_chaos::checker::{check, Bounds};
use registry_chaos::history::{parse_answers, Event};
use std::path::Path;

fn main() {
    let Some(dir) = std::env::args().nth(1) else {
        eprintln!("usage: registry-chaos-check DIR (a test's folder under target/tmp/chaos)");
        std::process::exit(2);
    };
    let dir = Path::new(&dir);
    let events: Vec<Event> = match std::fs::read_to_string(dir.join("events.jsonl")) {
        Ok(t) => t.lines().filter_map(|l| serde_json::from_str(l).ok()).collect(),
        Err(e) => {
            eprintln!(
                "registry-chaos-check: {}: {e}",
                dir.join("events.jsonl").display()
            );
            std::process::exit(2);
        }
    };
    let mut answers = Vec::new();
    for g in 1.. {
        match std::fs::read_to_string(dir.join(format!("client.{g}.log"))) {
            Ok(t) => answers.extend(parse_answers(&t)),
            Err(_) => break,
        }
    }
    let report = check(&events, &answers, Bounds::default());
    print!("{report}");
    if report.violations.len() > 5 {
        print!("every violation:\n{}", report.all_violations());
    }
    if !report.violations.is_empty() {
        std::process::exit(1);
    }
}
