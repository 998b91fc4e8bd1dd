//! Request counters and latency histograms, rendered in the Prometheus text
//! format at `/metrics`.
//!
//! Lock-free: every method has a fixed slot of atomics, so recording a
//! request costs a few relaxed atomic adds and never waits.

use crate::errors::code_name;
use registry_core::limits::LimitCounters;
use registry_core::{Catalog, Limit};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tonic::Code;

/// Every method counted, over both front doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// gRPC `registry.v1.Registry/Match`.
    Match,
    /// gRPC `registry.v1.Registry/MatchN`.
    MatchN,
    /// gRPC `registry.v1.Registry/Members`.
    Members,
    /// gRPC `registry.v1.Registry/Groups`.
    Groups,
    /// gRPC `registry.v1.Registry/Watch` (latency: time to open the stream).
    Watch,
    /// gRPC `R/Match` (compat).
    CompatMatch,
    /// gRPC `R/Members` (compat).
    CompatMembers,
    /// HTTP `GET /v1/match`.
    HttpMatch,
    /// HTTP `GET /v1/match_n`.
    HttpMatchN,
    /// HTTP `GET /v1/members`.
    HttpMembers,
    /// HTTP `GET /v1/groups`.
    HttpGroups,
}

impl Method {
    const ALL: [Method; 11] = [
        Method::Match,
        Method::MatchN,
        Method::Members,
        Method::Groups,
        Method::Watch,
        Method::CompatMatch,
        Method::CompatMembers,
        Method::HttpMatch,
        Method::HttpMatchN,
        Method::HttpMembers,
        Method::HttpGroups,
    ];

    /// `(transport, method)` labels.
    pub fn labels(self) -> (&'static str, &'static str) {
        match self {
            Method::Match => ("grpc", "registry.v1.Registry/Match"),
            Method::MatchN => ("grpc", "registry.v1.Registry/MatchN"),
            Method::Members => ("grpc", "registry.v1.Registry/Members"),
            Method::Groups => ("grpc", "registry.v1.Registry/Groups"),
            Method::Watch => ("grpc", "registry.v1.Registry/Watch"),
            Method::CompatMatch => ("grpc", "R/Match"),
            Method::CompatMembers => ("grpc", "R/Members"),
            Method::HttpMatch => ("http", "/v1/match"),
            Method::HttpMatchN => ("http", "/v1/match_n"),
            Method::HttpMembers => ("http", "/v1/members"),
            Method::HttpGroups => ("http", "/v1/groups"),
        }
    }
}

/// Upper bounds of the latency buckets, in seconds (the last is +Inf).
const BUCKETS: [f64; 12] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05, 0.25, 1.0,
];
const CODES: usize = 17;

struct MethodStats {
    by_code: [AtomicU64; CODES],
    buckets: [AtomicU64; BUCKETS.len()],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl MethodStats {
    fn new() -> Self {
        MethodStats {
            by_code: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

/// The server's own metrics; the catalog and gossip parts are read at
/// render time.
pub struct Metrics {
    methods: Vec<MethodStats>,
    watch_streams: AtomicI64,
    /// Requests refused by a limit (the catalog counts membership ones).
    limits: LimitCounters,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Metrics {
            methods: Method::ALL.iter().map(|_| MethodStats::new()).collect(),
            watch_streams: AtomicI64::new(0),
            limits: LimitCounters::default(),
        }
    }

    fn stats(&self, m: Method) -> &MethodStats {
        // ALL lists every variant in declaration order.
        &self.methods[m as usize]
    }

    /// Counts one request of `method` answered with `code` after `elapsed`.
    pub fn record(&self, method: Method, code: Code, elapsed: Duration) {
        let s = self.stats(method);
        let c = (code as usize).min(CODES - 1);
        s.by_code[c].fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            s.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        s.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        s.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Number of requests of `method` answered with `code` so far.
    pub fn count(&self, method: Method, code: Code) -> u64 {
        self.stats(method).by_code[(code as usize).min(CODES - 1)].load(Ordering::Relaxed)
    }

    /// A Watch stream opened (+1) or closed (-1).
    pub fn watch_streams_add(&self, delta: i64) {
        self.watch_streams.fetch_add(delta, Ordering::Relaxed);
    }

    /// Watch streams open now.
    pub fn watch_streams(&self) -> i64 {
        self.watch_streams.load(Ordering::Relaxed)
    }

    /// Counts a request refused by `limit`.
    pub fn limit_rejected(&self, limit: Limit) {
        self.limits.record(limit);
    }

    /// Refusals by `limit` so far: requests here plus membership events
    /// refused by `catalog`.
    pub fn limit_rejections(&self, catalog: &Catalog, limit: Limit) -> u64 {
        self.limits.get(limit) + catalog.limit_rejections().get(limit)
    }

    /// Appends the request and catalog metrics in Prometheus text format.
    pub fn render(&self, catalog: &Catalog, out: &mut String) {
        let groups = catalog.groups();
        let _ = writeln!(
            out,
            "# HELP registry_groups Groups that have at least one member."
        );
        let _ = writeln!(out, "# TYPE registry_groups gauge");
        let _ = writeln!(out, "registry_groups {}", groups.len());
        let _ = writeln!(out, "# HELP registry_members Members per group.");
        let _ = writeln!(out, "# TYPE registry_members gauge");
        for g in &groups {
            let _ = writeln!(
                out,
                "registry_members{{group=\"{}\"}} {}",
                escape(g.group()),
                g.members().len()
            );
        }
        let _ = writeln!(
            out,
            "# HELP registry_ring_version Version of each group's ring snapshot on this server."
        );
        let _ = writeln!(out, "# TYPE registry_ring_version gauge");
        for g in &groups {
            let _ = writeln!(
                out,
                "registry_ring_version{{group=\"{}\"}} {}",
                escape(g.group()),
                g.version()
            );
        }
        let _ = writeln!(out, "# HELP registry_watch_streams Watch streams open now.");
        let _ = writeln!(out, "# TYPE registry_watch_streams gauge");
        let _ = writeln!(out, "registry_watch_streams {}", self.watch_streams());
        let _ = writeln!(
            out,
            "# HELP registry_limit_rejections_total Requests and membership events refused by a limit."
        );
        let _ = writeln!(out, "# TYPE registry_limit_rejections_total counter");
        for limit in Limit::ALL {
            let _ = writeln!(
                out,
                "registry_limit_rejections_total{{limit=\"{}\"}} {}",
                limit.label(),
                self.limit_rejections(catalog, limit)
            );
        }
        let _ = writeln!(
            out,
            "# HELP registry_members_waiting Members refused by a count limit, admitted when room frees."
        );
        let _ = writeln!(out, "# TYPE registry_members_waiting gauge");
        let _ = writeln!(out, "registry_members_waiting {}", catalog.waiting());

        let _ = writeln!(
            out,
            "# HELP registry_requests_total Requests answered, by method and status code."
        );
        let _ = writeln!(out, "# TYPE registry_requests_total counter");
        for m in Method::ALL {
            let (transport, method) = m.labels();
            for (c, n) in self.stats(m).by_code.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "registry_requests_total{{transport=\"{transport}\",method=\"{method}\",code=\"{}\"}} {n}",
                        code_name(Code::from_i32(c as i32))
                    );
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP registry_request_duration_seconds Time to answer a request."
        );
        let _ = writeln!(out, "# TYPE registry_request_duration_seconds histogram");
        for m in Method::ALL {
            let (transport, method) = m.labels();
            let s = self.stats(m);
            let count = s.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            let labels = format!("transport=\"{transport}\",method=\"{method}\"");
            let mut cumulative = 0;
            for (b, n) in BUCKETS.iter().zip(&s.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "registry_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "registry_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let sum = s.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "registry_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "registry_request_duration_seconds_count{{{labels}}} {count}");
        }
    }
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_core::{MemberEvent, Service};

    #[test]
    fn renders_counts_histograms_and_groups() {
        let m = Metrics::new();
        m.record(Method::Match, Code::Ok, Duration::from_micros(30));
        m.record(Method::Match, Code::Ok, Duration::from_millis(3));
        m.record(
            Method::HttpMatch,
            Code::InvalidArgument,
            Duration::from_micros(10),
        );
        let catalog = Catalog::new();
        catalog.apply(MemberEvent::Joined(Service::new("a", "we\"b", "127.0.0.1:1")));
        let mut out = String::new();
        m.render(&catalog, &mut out);
        assert!(out.contains(
            "registry_requests_total{transport=\"grpc\",method=\"registry.v1.Registry/Match\",code=\"OK\"} 2"
        ));
        assert!(out.contains(
            "registry_requests_total{transport=\"http\",method=\"/v1/match\",code=\"INVALID_ARGUMENT\"} 1"
        ));
        assert!(out.contains(
            "registry_request_duration_seconds_bucket{transport=\"grpc\",method=\"registry.v1.Registry/Match\",le=\"0.00005\"} 1"
        ));
        assert!(out.contains(
            "registry_request_duration_seconds_count{transport=\"grpc\",method=\"registry.v1.Registry/Match\"} 2"
        ));
        assert!(out.contains("registry_members{group=\"we\\\"b\"} 1"));
        assert!(out.contains("registry_ring_version{group=\"we\\\"b\"} 1"));
        assert_eq!(m.count(Method::Match, Code::Ok), 2);
        assert!(out.contains("registry_limit_rejections_total{limit=\"watch_streams\"} 0"));
        m.limit_rejected(Limit::WatchStreams);
        let mut again = String::new();
        m.render(&catalog, &mut again);
        assert!(again.contains("registry_limit_rejections_total{limit=\"watch_streams\"} 1"));
        assert!(again.contains("registry_members_waiting 0"));
    }
}
