//! A peer cannot inject what a local caller cannot, against a real
//! `registry-server` process: metadata records whose address or tags break
//! the rules of `registry_core::validate`, sent to its gossip port as a
//! peer sends them, are dropped and counted
//! (`registry_gossip_packets_dropped_total{reason="bad_metadata"}`), while a
//! valid record on the same path is applied; the registry's member list and
//! the `registry` CLI's table keep showing each member as it registered,
//! one row each.

mod common;

use common::{connect_started, metric, spawn_registry, wait_members};
use registry_core::gossip::identity::NodeId;
use registry_core::gossip::packet::{MetaRecord, KIND_META, WIRE_PLAIN};
use registry_core::registration::{Registration, RegistrationConfig};
use registry_core::wire::v1::MembersRequest;
use registry_core::Service;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

const BAD_METADATA: &str = "registry_gossip_packets_dropped_total{reason=\"bad_metadata\"}";

/// A plain datagram carrying `service` as the newest record of `node`.
fn record(node: NodeId, version: u64, service: &Service) -> Vec<u8> {
    let rec = MetaRecord {
        node,
        version,
        leaving: false,
        service: service.clone(),
    };
    let mut d = vec![WIRE_PLAIN, KIND_META];
    d.extend(rec.encode());
    d
}

/// Polls `/metrics` until the bad-metadata count is `want`; panics with
/// the last count after 5 s.
fn wait_bad_metadata(http: SocketAddr, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = metric(http, BAD_METADATA);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "bad_metadata count {now}, want {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_a_local_caller_could_not_register_are_dropped_counted_and_never_listed() {
    let registry = spawn_registry("bad-metadata", "127.0.0.1:0", &[]);
    let gossip: SocketAddr = registry.field("gossip").parse().expect("gossip addr");
    let http: SocketAddr = registry.field("http").parse().expect("http addr");
    let mut c = connect_started(&registry).await;
    let member = Registration::start(
        RegistrationConfig::new("web-1", "web", "127.0.0.1:8080").registry(gossip.to_string()),
    )
    .await
    .expect("register web-1");
    wait_members(&mut [&mut c], "web", &["web-1"], Duration::from_secs(10)).await;

    // A peer's valid record is decoded and not counted. (Today it is also
    // listed for a few seconds, though the peer never joined: an
    // unencrypted cluster lets anyone who can send it a datagram gossip.
    // Its newer records below break the rules and must change nothing.)
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind a peer socket");
    let node = NodeId::with_gen(peer.local_addr().expect("peer addr"), 1);
    let start = metric(http, BAD_METADATA);
    let good = Service::new("web-2", "web", "127.0.0.1:8081");
    peer.send_to(&record(node, 1, &good), gossip).expect("send");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(metric(http, BAD_METADATA), start, "a valid record was counted");

    let mut bad = Vec::new();
    for addr in ["web-2:80\nweb-3 10.6.6.6:1", "not an address", "10.0.0.2", "h:0"] {
        bad.push(Service::new("web-2", "web", addr));
    }
    let mut escape = good.clone();
    escape.tags.insert("zone".into(), "eu\u{1b}[2J".into());
    bad.push(escape);
    let mut version = 1;
    for service in &bad {
        assert!(service.validate().is_err(), "{service:?} is refused locally");
        version += 1;
        peer.send_to(&record(node, version, service), gossip)
            .expect("send");
        wait_bad_metadata(http, start + version - 1);
    }

    // Every member listed as it registered: web-1, and web-2 while the
    // registry lists it; none with a bad addr or a tag.
    let listed = c
        .members(MembersRequest { group: "web".into() })
        .await
        .expect("members")
        .into_inner()
        .services;
    let seen: Vec<(&str, &str, usize)> = listed
        .iter()
        .map(|s| (s.id.as_str(), s.addr.as_str(), s.tags.len()))
        .collect();
    let both = [("web-1", "127.0.0.1:8080", 0), ("web-2", "127.0.0.1:8081", 0)];
    assert!(seen == both[..1] || seen == both, "{seen:?}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_registry"))
        .args(["--registry", &registry.field("grpc"), "members", "web"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run registry");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{table}");
    assert!(
        (2..=3).contains(&table.lines().count()),
        "a header and one row per member:\n{table}"
    );
    assert!(!table.contains("10.6.6.6"), "{table}");
    member.stop().await.expect("stop web-1");
}
