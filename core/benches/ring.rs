//! Ring benchmark: prints every target figure of the ring (balance, key
//! counts, movement, build time, memory, lookup times).
//!
//! ```text
//! cargo bench -p registry-core --bench ring                 # the figures in BENCHMARKS.md
//! cargo bench -p registry-core --bench ring -- sweep        # also the vnode-count sweep
//! cargo bench -p registry-core --bench ring -- sweep-only   # only the sweep
//! cargo bench -p registry-core --bench ring -- locate-only  # lookup times, bucket sizes
//! cargo bench -p registry-core --bench ring -- moves-only   # what moved at a join, timed
//! ```
//!
//! A plain binary (no criterion): every figure is a median over repeated
//! runs, printed as one table, in well under two minutes.

use registry_core::ring::{Builder, Moves, Ring, VNODES_PER_WEIGHT};
use std::hint::black_box;
use std::time::Instant;

/// Keys counted per member for the key-count balance figure.
const COUNT_KEYS: usize = 10_000_000;
/// Keys sampled for the movement figures.
const MOVE_KEYS: usize = 1_000_000;
/// Pre-generated random keys for the lookup timings.
const TIMING_KEYS: usize = 1 << 20;
/// Distinct keys of the hot-key lookup timing.
const HOT_KEYS: usize = 4096;
/// Keys per timed batch.
const BATCH: usize = 1024;

/// splitmix64: a tiny deterministic generator, so every run sees the same keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The canonical member ids used for the headline figures.
fn canonical_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("service-{i}")).collect()
}

/// Random member ids (like instance UUIDs), for balance distributions.
fn random_ids(n: usize, rng: &mut Rng) -> Vec<String> {
    (0..n)
        .map(|_| format!("{:016x}{:016x}", rng.next(), rng.next()))
        .collect()
}

fn build(builder: &Builder, ids: &[String]) -> Ring {
    match builder.build(ids.iter().map(|id| (id.as_str(), 1))) {
        Ok(r) => r,
        Err(e) => panic!("ring build failed: {e}"),
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i]
}

/// (peak, min) of each member's exact share relative to the mean share.
fn exact_balance(ring: &Ring) -> (f64, f64) {
    let shares = ring.shares();
    let mean = 1.0 / shares.len() as f64;
    let peak = shares.iter().cloned().fold(f64::MIN, f64::max);
    let min = shares.iter().cloned().fold(f64::MAX, f64::min);
    (peak / mean, min / mean)
}

/// (peak, min) of per-member key counts over `keys` keys, relative to the mean.
fn key_balance(ring: &Ring, keys: usize) -> (f64, f64) {
    let mut counts = vec![0u64; ring.len()];
    let mut key = String::new();
    for i in 0..keys {
        key.clear();
        use std::fmt::Write;
        let _ = write!(key, "key-{i}");
        if let Ok(m) = ring.locate(&key) {
            counts[m] += 1;
        }
    }
    let mean = keys as f64 / ring.len() as f64;
    let peak = counts.iter().copied().max().unwrap_or(0) as f64;
    let min = counts.iter().copied().min().unwrap_or(0) as f64;
    (peak / mean, min / mean)
}

/// Owner ids of the movement sample keys.
fn owners<'r>(ring: &'r Ring, keys: &[String]) -> Vec<&'r str> {
    keys.iter()
        .map(|k| match ring.locate(k) {
            Ok(i) => &*ring.members()[i].id,
            Err(e) => panic!("locate failed: {e}"),
        })
        .collect()
}

struct Movement {
    /// Fraction of sampled keys that changed owner.
    sampled: f64,
    /// Exact fraction of the hash space that changed owner.
    exact: f64,
    /// Sampled keys that moved between two members that are in both rings.
    violations: usize,
}

fn movement_add(builder: &Builder, ids: &[String], keys: &[String]) -> Movement {
    let before = build(builder, ids);
    let mut more = ids.to_vec();
    let new_id = format!("service-{}", ids.len());
    more.push(new_id.clone());
    let after = build(builder, &more);
    let (a, b) = (owners(&before, keys), owners(&after, keys));
    let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    let violations = a.iter().zip(&b).filter(|(x, y)| x != y && **y != new_id).count();
    let new_index = after.members().iter().position(|m| *m.id == *new_id).unwrap_or(0);
    Movement {
        sampled: moved as f64 / keys.len() as f64,
        exact: after.shares()[new_index],
        violations,
    }
}

fn movement_remove(builder: &Builder, ids: &[String], keys: &[String]) -> Movement {
    let before = build(builder, ids);
    let gone = ids[ids.len() / 2].clone();
    let fewer: Vec<String> = ids.iter().filter(|id| **id != gone).cloned().collect();
    let after = build(builder, &fewer);
    let (a, b) = (owners(&before, keys), owners(&after, keys));
    let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    let violations = a.iter().zip(&b).filter(|(x, y)| x != y && **x != gone).count();
    let gone_index = before.members().iter().position(|m| *m.id == *gone).unwrap_or(0);
    Movement {
        sampled: moved as f64 / keys.len() as f64,
        exact: before.shares()[gone_index],
        violations,
    }
}

/// CPU time this thread has run, in nanoseconds (Linux schedstat; updated
/// at least every scheduler tick), or None where unavailable.
fn thread_cpu_ns() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Build time in milliseconds: (median wall, fastest wall, mean CPU time)
/// over `runs` builds. On a shared, oversubscribed machine the wall time
/// includes time the thread waited for a CPU; the CPU time does not.
fn build_ms(builder: &Builder, ids: &[String], runs: usize) -> (f64, f64, f64) {
    let cpu_start = thread_cpu_ns();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(build(builder, black_box(ids)));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu = match (cpu_start, thread_cpu_ns()) {
        (Some(a), Some(b)) => (b - a) / 1e6 / runs as f64,
        _ => f64::NAN,
    };
    (median(&mut times), percentile(&mut times, 0.0), cpu)
}

/// Random keys packed in one buffer, so that reading them streams through
/// memory instead of chasing a pointer per key.
struct Keys {
    text: String,
    ends: Vec<usize>,
}

impl Keys {
    fn random(count: usize, seed: u64) -> Keys {
        let mut rng = Rng(seed);
        let mut text = String::with_capacity(count * 21);
        let mut ends = Vec::with_capacity(count);
        for _ in 0..count {
            use std::fmt::Write;
            let _ = write!(text, "user:{:016x}", rng.next());
            ends.push(text.len());
        }
        Keys { text, ends }
    }

    /// Keys `from..to`.
    fn range(&self, from: usize, to: usize) -> impl Iterator<Item = &str> {
        let start = |i: usize| if i == 0 { 0 } else { self.ends[i - 1] };
        (from..to).map(move |i| &self.text[start(i)..self.ends[i]])
    }
}

/// Per-call time of `f` in nanoseconds over batches of [`BATCH`] keys: two
/// passes over all keys, the first one only warms up; returns the median
/// and the 10th percentile of the batches.
fn per_call_ns(keys: &Keys, f: impl FnMut(&str) -> usize) -> (f64, f64) {
    per_call_ns_passes(keys, 2, f)
}

/// [`per_call_ns`] with `passes` passes over the keys (the first warms up).
fn per_call_ns_passes(keys: &Keys, passes: usize, mut f: impl FnMut(&str) -> usize) -> (f64, f64) {
    let mut acc = 0usize;
    let count = keys.ends.len();
    let mut times = Vec::with_capacity(count * passes / BATCH);
    for pass in 0..passes {
        for from in (0..count).step_by(BATCH) {
            let to = (from + BATCH).min(count);
            let t = Instant::now();
            for k in keys.range(from, to) {
                acc = acc.wrapping_add(f(black_box(k)));
            }
            let ns = t.elapsed().as_nanos() as f64 / (to - from) as f64;
            if pass > 0 {
                times.push(ns);
            }
        }
    }
    black_box(acc);
    (percentile(&mut times, 0.5), percentile(&mut times, 0.1))
}

fn locate_ns(ring: &Ring, keys: &Keys) -> (f64, f64) {
    per_call_ns(keys, |k| ring.locate(k).unwrap_or(0))
}

/// `locate` over a hot set of [`HOT_KEYS`] distinct keys, cycled: the ring
/// lines they touch stay in cache, as for a working set of popular keys.
fn locate_hot_ns(ring: &Ring, hot: &Keys) -> (f64, f64) {
    per_call_ns_passes(hot, 1 + TIMING_KEYS / HOT_KEYS, |k| ring.locate(k).unwrap_or(0))
}

/// Floor for any lookup structure of `bytes` bytes on this machine: hash
/// the key, then one read at a random place in an array that large.
fn floor_ns(keys: &Keys, bytes: usize) -> (f64, f64) {
    let array = vec![1u32; (bytes / 4).max(1)];
    let len = array.len() as u64;
    per_call_ns(keys, |k| {
        let slot = (u64::from(registry_core::ring::key_position(k)) * len) >> 32;
        array[slot as usize] as usize
    })
}

fn locate_n_ns(ring: &Ring, keys: &Keys, n: usize) -> (f64, f64) {
    per_call_ns(keys, |k| ring.locate_n(k, n).map(|v| v[0]).unwrap_or(0))
}

/// Peak-to-mean of exact shares over `sets` random id sets of `n` members.
fn balance_distribution(builder: &Builder, n: usize, sets: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..sets)
        .map(|_| exact_balance(&build(builder, &random_ids(n, &mut rng))).0)
        .collect()
}

fn headline(keys: &Keys) {
    let builder = Builder::new();
    let hot = Keys::random(HOT_KEYS, 9);
    let move_keys: Vec<String> = (0..MOVE_KEYS).map(|i| format!("move-{i}")).collect();
    println!("vnodes per weight: {VNODES_PER_WEIGHT}; ids service-0 .. service-(n-1), weight 1");
    println!();
    for n in [10usize, 100, 1000] {
        let ids = canonical_ids(n);
        let ring = build(&builder, &ids);
        let (peak, min) = exact_balance(&ring);
        let (kpeak, kmin) = key_balance(&ring, COUNT_KEYS);
        let add = movement_add(&builder, &ids, &move_keys);
        let remove = movement_remove(&builder, &ids, &move_keys);
        let runs = if n >= 1000 { 9 } else { 21 };
        let build_time = build_ms(&builder, &ids, runs);
        let locate = locate_ns(&ring, keys);
        let locate3 = locate_n_ns(&ring, keys, 3);
        let hot_locate = locate_hot_ns(&ring, &hot);
        let floor = floor_ns(keys, ring.memory_bytes());
        let bound = 1.1 / (n as f64 + 1.0);
        println!(
            "n = {n}  ({} points, {} bucket bits)",
            ring.point_count(),
            ring.bucket_bits()
        );
        println!("  exact shares      peak/mean {peak:.4}  min/mean {min:.4}");
        println!("  10M keys          peak/mean {kpeak:.4}  min/mean {kmin:.4}");
        println!(
            "  add one member    moved {:.5} (exact {:.5})  1/(n+1) = {:.5}  ratio {:.3}  limit 1.1/(n+1) = {bound:.5}  keys moved between survivors: {}",
            add.sampled,
            add.exact,
            1.0 / (n as f64 + 1.0),
            add.exact * (n as f64 + 1.0),
            add.violations
        );
        println!(
            "  remove one member moved {:.5} (its exact share {:.5})  1/n = {:.5}  keys moved that it did not own: {}",
            remove.sampled,
            remove.exact,
            1.0 / n as f64,
            remove.violations
        );
        println!(
            "  build             {:.3} ms median of {runs}, {:.3} ms fastest, {:.3} ms mean CPU time",
            build_time.0, build_time.1, build_time.2
        );
        println!(
            "  memory            {} bytes ({:.2} MB, {:.2} bytes/point)",
            ring.memory_bytes(),
            ring.memory_bytes() as f64 / 1e6,
            ring.memory_bytes() as f64 / ring.point_count() as f64
        );
        println!(
            "  locate            {:.1} ns median, {:.1} ns p10 (batches of {BATCH} random keys)",
            locate.0, locate.1
        );
        println!(
            "  floor             {:.1} ns median, {:.1} ns p10 (hash + one random read in an array of the ring's size)",
            floor.0, floor.1
        );
        println!(
            "  locate, hot keys  {:.1} ns median, {:.1} ns p10 ({HOT_KEYS} distinct keys, cycled)",
            hot_locate.0, hot_locate.1
        );
        println!(
            "  locate_n(3)       {:.1} ns median, {:.1} ns p10",
            locate3.0, locate3.1
        );
        println!();
    }
    let hash = per_call_ns(keys, |k| registry_core::ring::key_position(k) as usize);
    println!(
        "key hash alone (xxh3-64 of a 21-byte key): {:.1} ns median, {:.1} ns p10",
        hash.0, hash.1
    );
    println!();

    let weights = [("a", 1u32), ("b", 2), ("c", 3)];
    if let Ok(ring) = Ring::new(weights) {
        let shares = ring.shares();
        let mut counts = [0u64; 3];
        for i in 0..1_000_000 {
            if let Ok(m) = ring.locate(&format!("key-{i}")) {
                counts[m] += 1;
            }
        }
        println!("weights 1, 2, 3 (ids a, b, c): share / expected, keys (1M) / expected");
        for (i, (id, w)) in weights.iter().enumerate() {
            let expected = f64::from(*w) / 6.0;
            println!(
                "  {id} weight {w}: exact {:.4}  keys {:.4}",
                shares[i] / expected,
                counts[i] as f64 / 1e6 / expected
            );
        }
        println!();
    }

    println!("balance over random id sets (exact peak/mean of shares):");
    for (n, sets) in [(10usize, 1000usize), (100, 100), (1000, 20)] {
        let mut d = balance_distribution(&builder, n, sets, 7);
        let over = |limit: f64| d.iter().filter(|x| **x > limit).count() as f64 / d.len() as f64;
        let (o105, o110) = (over(1.05), over(1.10));
        println!(
            "  n = {n:4} over {sets:4} sets: median {:.4}  p90 {:.4}  p99 {:.4}  max {:.4}  share of sets over 1.05: {:.1}%  over 1.10: {:.1}%",
            percentile(&mut d, 0.5),
            percentile(&mut d, 0.9),
            percentile(&mut d, 0.99),
            percentile(&mut d, 1.0),
            o105 * 100.0,
            o110 * 100.0
        );
    }
}

/// `Moves::between` at a join of one member to n: median wall time and
/// mean CPU time over repeated runs, beside the build of the new ring.
fn moves() {
    for n in [10usize, 100, 1000] {
        let ids = canonical_ids(n + 1);
        let (old, new) = (build(&Builder::new(), &ids[..n]), build(&Builder::new(), &ids));
        let runs = if n == 1000 { 15 } else { 101 };
        let cpu_start = thread_cpu_ns();
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                black_box(Moves::between(black_box(&old), black_box(&new)));
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let cpu = match (cpu_start, thread_cpu_ns()) {
            (Some(a), Some(b)) => (b - a) / 1e6 / runs as f64,
            _ => f64::NAN,
        };
        let m = Moves::between(&old, &new);
        let (build_median, _, _) = build_ms(&Builder::new(), &ids, runs);
        println!(
            "n = {n} + 1: moves {:.3} ms median wall, {cpu:.3} ms CPU; {} ranges, {:.4} of the keys (1/(n+1) = {:.4}); build of the new ring {build_median:.3} ms",
            median(&mut times),
            m.ranges().len(),
            m.fraction(),
            1.0 / (n + 1) as f64
        );
    }
}

/// The sweep that chose VNODES_PER_WEIGHT.
fn sweep(keys: &Keys) {
    println!();
    println!("vnode sweep: exact peak/mean of shares; random id sets (1000 of 10 members, 30 of 1000),");
    println!("canonical ids for the rest; memory, build and locate at 1000 members");
    println!("   V | n=10: canon median  p90  >1.05 | n=1000: canon median  p90   max  >1.10 |  MB | build ms | locate ns");
    for v in [512u32, 1024, 1280, 1408, 1536, 1600, 1664, 1792, 2048] {
        let builder = Builder::new().vnodes_per_weight(v);
        let mut d10 = balance_distribution(&builder, 10, 1000, 11);
        let over10 = d10.iter().filter(|x| **x > 1.05).count() as f64 / d10.len() as f64;
        let mut d1000 = balance_distribution(&builder, 1000, 30, 13);
        let over1000 = d1000.iter().filter(|x| **x > 1.10).count() as f64 / d1000.len() as f64;
        let canon10 = exact_balance(&build(&builder, &canonical_ids(10))).0;
        let ids = canonical_ids(1000);
        let ring = build(&builder, &ids);
        println!(
            "{v:4} | {canon10:.4} {:.4} {:.4} {:5.1}% | {:.4} {:.4} {:.4} {:.4} {:5.1}% | {:.2} | {:6.1} | {:6.1}",
            percentile(&mut d10, 0.5),
            percentile(&mut d10, 0.9),
            over10 * 100.0,
            exact_balance(&ring).0,
            percentile(&mut d1000, 0.5),
            percentile(&mut d1000, 0.9),
            percentile(&mut d1000, 1.0),
            over1000 * 100.0,
            ring.memory_bytes() as f64 / 1e6,
            build_ms(&builder, &ids, 5).0,
            locate_ns(&ring, keys).0
        );
    }
}

/// Latency of one dependent random read in a `kb`-kilobyte array (a pointer
/// chase), in nanoseconds: the machine's memory latency at the moment, to
/// read the lookup timings against.
fn memory_latency_ns(kb: usize) -> f64 {
    let n = kb * 1024 / 8;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Rng(5);
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % i as u64) as usize);
    }
    let mut next = vec![0usize; n];
    for i in 0..n {
        next[order[i]] = order[(i + 1) % n];
    }
    let steps = 1_000_000;
    let mut p = 0;
    let t = Instant::now();
    for _ in 0..steps {
        p = next[p];
    }
    black_box(p);
    t.elapsed().as_nanos() as f64 / steps as f64
}

/// The machine's load averages, to read the timings against.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    println!("load average at start: {}", load());
    println!(
        "memory latency (dependent random reads): {:.1} ns in 256 KB, {:.1} ns in 8 MB",
        memory_latency_ns(256),
        memory_latency_ns(8192)
    );
    let keys = Keys::random(TIMING_KEYS, 42);
    if args.iter().any(|a| a == "locate-only") {
        for n in [10usize, 100, 1000] {
            let ring = build(&Builder::new(), &canonical_ids(n));
            let (median, p10) = locate_ns(&ring, &keys);
            println!("n = {n}: locate {median:.1} ns (p10 {p10:.1})");
        }
        // Bucket sizing at 1,000 members: configurations interleaved in
        // rounds, so that a noisy moment hits all of them alike.
        let all_bits = [11u32, 12, 13, 14, 15, 16, 17];
        let rings: Vec<Ring> = all_bits
            .iter()
            .map(|&b| build(&Builder::new().bucket_bits(b), &canonical_ids(1000)))
            .collect();
        let mut results = vec![Vec::new(); rings.len()];
        for _ in 0..8 {
            for (r, ring) in rings.iter().enumerate() {
                results[r].push(locate_ns(ring, &keys).0);
            }
        }
        for ((bits, ring), times) in all_bits.iter().zip(&rings).zip(&mut results) {
            println!(
                "n = 1000, {bits} bucket bits ({:.0} points/bucket, {:.2} MB): locate median over rounds {:.1} ns, best round {:.1} ns",
                ring.point_count() as f64 / f64::from(1u32 << bits),
                ring.memory_bytes() as f64 / 1e6,
                percentile(times, 0.5),
                percentile(times, 0.0)
            );
        }
        return;
    }
    if args.iter().any(|a| a == "moves-only") {
        moves();
        return;
    }
    if args.iter().any(|a| a == "sweep-only") {
        sweep(&keys);
        return;
    }
    headline(&keys);
    if args.iter().any(|a| a == "sweep") {
        sweep(&keys);
    }
    println!("load average at end: {}", load());
}
