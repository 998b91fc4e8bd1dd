//! Measuring helpers shared by the load tools (`registry-bench`,
//! `registry-soak`): latency percentiles, a process's resident memory and
//! the CPU time it used.

use std::time::Duration;

/// Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on
/// Linux whatever the kernel's own tick rate).
const USER_HZ: u64 = 100;

/// The `q` quantile (0.0..=1.0) of `sorted` latencies; zero when empty.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or_default()
}

/// Requests per second over `elapsed`, p50 and p99 of `lat` (sorted here).
pub fn summarize(mut lat: Vec<Duration>, elapsed: Duration) -> (f64, Duration, Duration) {
    lat.sort_unstable();
    (
        lat.len() as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
    )
}

/// Resident set size of `pid` in KiB, from `/proc/<pid>/status` (`VmRSS`);
/// `None` when the process is gone or not on Linux.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU time (user + system) `pid` has used so far, from `/proc/<pid>/stat`
/// (10 ms resolution); `None` when the process is gone or not on Linux.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_hundred_and_of_nothing() {
        let lat: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let (rps, p50, p99) = summarize(lat, Duration::from_secs(2));
        assert_eq!(
            (rps, p50, p99),
            (50.0, Duration::from_millis(51), Duration::from_millis(100))
        );
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn rss_of_this_process_is_read() {
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
        assert_eq!(rss_kib(u32::MAX), None);
    }

    #[test]
    fn cpu_time_of_this_process_grows_with_work_and_never_beats_the_clock() {
        let pid = std::process::id();
        let before = cpu_time(pid).unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        // One thread spinning: its CPU time grows, at most as fast as the
        // clock (the units are right), however busy the machine is.
        let used = loop {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let used = cpu_time(pid).unwrap() - before;
            if used >= Duration::from_millis(50) || start.elapsed() > Duration::from_secs(20) {
                break used;
            }
        };
        assert!(used >= Duration::from_millis(50), "{used:?}");
        assert!(used <= start.elapsed() + Duration::from_millis(20), "{used:?}");
        assert_eq!(cpu_time(u32::MAX), None);
    }
}
