//! Request counters and latency histograms, and the `/metrics` exposition.
//!
//! Lock-free: every method has a fixed slot of atomics, so recording a
//! request costs a few relaxed atomic adds and never waits. Nothing is
//! copied into metric objects on the request path: at scrape time one
//! prometheus-client [`Registry`] asks its collectors (these request and
//! catalog metrics, gossip in `cluster.rs`, TLS in `tls.rs`) to encode
//! what their atomics hold, in the Prometheus text format (version 0.0.4,
//! [`CONTENT_TYPE`]). Names, label escaping and number formatting are the
//! crate's; [`counter`] and [`gauge`] are the only ways to write a sample.

use crate::errors::code_name;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeLabelSet};
use prometheus_client::encoding::{EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use registry_core::limits::LimitCounters;
use registry_core::ring::checksum::checksum_low53;
use registry_core::{Catalog, GroupSnapshot, Limit};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;

/// The `Content-Type` of `/metrics`: Prometheus text format 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The latency histogram's name (its samples add `_bucket`, `_sum`, `_count`).
const DURATION: &str = "registry_request_duration_seconds";

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
/// scrape time.
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

    /// Appends the request and catalog metrics in Prometheus text format
    /// (what `/metrics` shows of them).
    pub fn render(&self, catalog: &Catalog, out: &mut String) {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self.scrape(catalog)));
        out.push_str(&encode(&registry));
    }

    /// Reads every counter once, for one scrape.
    fn scrape(&self, catalog: &Catalog) -> Scrape {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Scrape {
            groups: catalog.groups(),
            watch_streams: self.watch_streams(),
            rejections: Limit::ALL.map(|l| (l, self.limit_rejections(catalog, l))),
            waiting: catalog.waiting() as u64,
            methods: Method::ALL.map(|m| {
                let s = self.stats(m);
                MethodScrape {
                    method: m,
                    by_code: s.by_code.each_ref().map(load),
                    buckets: s.buckets.each_ref().map(load),
                    sum_nanos: load(&s.sum_nanos),
                    count: load(&s.count),
                }
            }),
        }
    }
}

/// The collector of the request and catalog metrics, registered in the
/// `/metrics` registry.
pub struct RequestCollector {
    metrics: Arc<Metrics>,
    catalog: Arc<Catalog>,
}

impl RequestCollector {
    /// Reads `metrics` and `catalog` at each scrape.
    pub fn new(metrics: Arc<Metrics>, catalog: Arc<Catalog>) -> Self {
        RequestCollector { metrics, catalog }
    }
}

impl fmt::Debug for RequestCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestCollector").finish_non_exhaustive()
    }
}

impl Collector for RequestCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        self.metrics.scrape(&self.catalog).encode(encoder)
    }
}

/// One method's counters as read for a scrape.
struct MethodScrape {
    method: Method,
    by_code: [u64; CODES],
    buckets: [u64; BUCKETS.len()],
    sum_nanos: u64,
    count: u64,
}

/// Every request and catalog value of one scrape.
struct Scrape {
    groups: Vec<Arc<GroupSnapshot>>,
    watch_streams: i64,
    rejections: [(Limit, u64); Limit::ALL.len()],
    waiting: u64,
    methods: [MethodScrape; Method::ALL.len()],
}

impl fmt::Debug for Scrape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let groups = &self.groups;
        gauge(
            &mut enc,
            "registry_groups",
            "Groups that have at least one member.",
            [(NO_LABELS, groups.len() as u64)],
        )?;
        gauge(
            &mut enc,
            "registry_members",
            "Members per group.",
            groups
                .iter()
                .map(|g| ([("group", g.group())], g.members().len() as u64)),
        )?;
        gauge(
            &mut enc,
            "registry_ring_version",
            "Version of each group's ring snapshot on this server.",
            groups.iter().map(|g| ([("group", g.group())], g.version())),
        )?;
        gauge(
            &mut enc,
            "registry_group_ring_checksum",
            "Low 53 bits of each group's ring checksum (exact as a float); equal on registries that agree.",
            groups
                .iter()
                .map(|g| ([("group", g.group())], checksum_low53(g.checksum()))),
        )?;
        gauge(
            &mut enc,
            "registry_watch_streams",
            "Watch streams open now.",
            [(NO_LABELS, self.watch_streams)],
        )?;
        counter(
            &mut enc,
            "registry_limit_rejections",
            "Requests and membership events refused by a limit.",
            self.rejections.iter().map(|(l, n)| ([("limit", l.label())], *n)),
        )?;
        gauge(
            &mut enc,
            "registry_members_waiting",
            "Members refused by a count limit, admitted when room frees.",
            [(NO_LABELS, self.waiting)],
        )?;
        counter(
            &mut enc,
            "registry_requests",
            "Requests answered, by method and status code.",
            self.methods.iter().flat_map(|m| {
                let (transport, method) = m.method.labels();
                let by_code = m.by_code.iter().enumerate().filter(|(_, n)| **n > 0);
                by_code.map(move |(c, n)| {
                    let code = code_name(Code::from_i32(c as i32));
                    ([("transport", transport), ("method", method), ("code", code)], *n)
                })
            }),
        )?;
        self.encode_durations(&mut enc)
    }
}

impl Scrape {
    fn encode_durations(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let mut metric =
            enc.encode_descriptor(DURATION, "Time to answer a request.", None, MetricType::Histogram)?;
        for m in self.methods.iter().filter(|m| m.count > 0) {
            let (transport, method) = m.method.labels();
            let labels = [("transport", transport), ("method", method)];
            let buckets: Vec<(f64, u64)> = BUCKETS.iter().copied().zip(m.buckets).collect();
            let sum = m.sum_nanos as f64 / 1e9;
            metric
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(sum, m.count, &buckets, None)?;
        }
        Ok(())
    }
}

/// The label set of a sample without labels.
pub const NO_LABELS: [(&str, &str); 0] = [];

/// Writes the counter family `name` (the encoder adds `_total`) with one
/// sample per `(labels, value)`.
pub fn counter<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut metric = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in samples {
        ConstCounter::new(v).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes the gauge family `name` with one sample per `(labels, value)`.
pub fn gauge<L: EncodeLabelSet, V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, V)>,
) -> fmt::Result {
    let mut metric = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes every collector of `registry` in the Prometheus text format
/// ([`CONTENT_TYPE`]), the body of `/metrics`.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::with_capacity(4096);
    // Writing into a String cannot fail, and no collector fails.
    let _ = prometheus_text::encode(&mut text, registry);
    decimal_le(text)
}

/// Writes the latency buckets' `le` as they have been served from the
/// start, in decimal (`le="0.00005"`), where the encoder writes bounds
/// below 1e-4 as Go does (`le="5e-05"`): a Prometheus 2 server keeps a
/// label's text as scraped, so a new spelling would start new series and
/// break every query naming the old one. Prometheus 3 reads both as the
/// same number.
fn decimal_le(text: String) -> String {
    let prefix = format!("{DURATION}_bucket{{");
    if !text.contains(&prefix) {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let bound = line
            .strip_prefix(&prefix)
            .and_then(|_| line.rfind("le=\""))
            .map(|at| at + "le=\"".len())
            .and_then(|start| Some((start, start + line[start..].find('"')?)));
        match bound {
            Some((start, end)) => match line[start..end].parse::<f64>() {
                Ok(v) if v.is_finite() => {
                    out.push_str(&line[..start]);
                    out.push_str(&v.to_string());
                    out.push_str(&line[end..]);
                }
                _ => out.push_str(line),
            },
            None => out.push_str(line),
        }
    }
    out
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
        let sum = catalog.snapshot("we\"b").unwrap().checksum();
        let line = format!(
            "registry_group_ring_checksum{{group=\"we\\\"b\"}} {}\n",
            sum & ((1 << 53) - 1)
        );
        assert!(out.contains(&line), "{out}");
        assert!(out.contains("# TYPE registry_group_ring_checksum gauge\n"));
        assert_eq!(m.count(Method::Match, Code::Ok), 2);
        assert!(out.contains("registry_limit_rejections_total{limit=\"watch_streams\"} 0"));
        m.limit_rejected(Limit::WatchStreams);
        let mut again = String::new();
        m.render(&catalog, &mut again);
        assert!(again.contains("registry_limit_rejections_total{limit=\"watch_streams\"} 1"));
        assert!(again.contains("registry_members_waiting 0"));
    }

    #[test]
    fn bucket_bounds_keep_their_decimal_spelling() {
        let m = Metrics::new();
        m.record(Method::Groups, Code::Ok, Duration::from_secs(2));
        let mut out = String::new();
        m.render(&Catalog::new(), &mut out);
        let les: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("registry_request_duration_seconds_bucket{"))
            .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
            .collect();
        assert_eq!(
            les,
            [
                "0.000025", "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                "0.05", "0.25", "1", "+Inf"
            ]
        );
        // A sample value is a number to every parser: the encoder's "2.0"
        // (today's text wrote "2") reads the same.
        assert!(out.contains("registry_request_duration_seconds_sum{transport=\"grpc\",method=\"registry.v1.Registry/Groups\"} 2.0\n"));
        assert!(out.contains("registry_request_duration_seconds_bucket{transport=\"grpc\",method=\"registry.v1.Registry/Groups\",le=\"1\"} 0\n"));
        assert!(out.contains("# TYPE registry_requests_total counter\n"));
    }
}
