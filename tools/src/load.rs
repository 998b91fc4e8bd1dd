//! Measuring helpers shared by the load tools (`registry-bench`,
//! `registry-soak`): latency percentiles and a process's resident memory.

use std::time::Duration;

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
}
