//! The gRPC and HTTP front doors of an in-process server on loopback,
//! queried with a real tonic client and raw HTTP/1.1; membership is fed
//! through the server's event queue, as gossip will.

mod common;

use common::{client, feed, get, start, svc, wait_until};
use registry_core::wire::compat::r_client::RClient;
use registry_core::wire::{compat, v1};
use registry_core::MemberEvent;
use registry_server::metrics::Method;
use std::time::Duration;
use tonic::Code;

const MAX_KEY: usize = 64 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_documented_codes_and_the_server_stays_up() {
    let running = start("r-codes").await;
    let mut c = client(&running).await;
    feed(&running, vec![MemberEvent::Joined(svc("a", "web"))]).await;
    feed(
        &running,
        vec![
            MemberEvent::Joined(svc("gone-1", "gone")),
            MemberEvent::Joined(svc("gone-2", "gone")),
        ],
    )
    .await;
    feed(
        &running,
        vec![
            MemberEvent::Left(svc("gone-1", "gone")),
            MemberEvent::Failed(svc("gone-2", "gone")),
        ],
    )
    .await;

    let m = |group: &str, key: &str| v1::MatchRequest {
        group: group.into(),
        key: key.into(),
    };
    let huge = "k".repeat(MAX_KEY + 1);
    let long_group = "g".repeat(129);
    // (request, expected code, text the message must contain)
    let table: Vec<(v1::MatchRequest, Code, &str)> = vec![
        (m("", "k"), Code::InvalidArgument, "group is empty"),
        (m("web", ""), Code::InvalidArgument, "key is empty"),
        (m("web", &huge), Code::InvalidArgument, "the limit is 65536"),
        (m(&long_group, "k"), Code::InvalidArgument, "group is 129 bytes"),
        (
            m("never-seen", "k"),
            Code::NotFound,
            "\"never-seen\" has no members: none has registered",
        ),
        (
            m("gone", "k"),
            Code::NotFound,
            "\"gone\" has no members: its last member left",
        ),
    ];
    for (req, code, text) in &table {
        let err = c.r#match(req.clone()).await.expect_err("must fail");
        assert_eq!(
            err.code(),
            *code,
            "Match {:?}/{} bytes: {err:?}",
            req.group,
            req.key.len()
        );
        assert!(err.message().contains(text), "{:?} lacks {text:?}", err.message());
        // MatchN checks the same way.
        let err = c
            .match_n(v1::MatchNRequest {
                group: req.group.clone(),
                key: req.key.clone(),
                n: 2,
            })
            .await
            .expect_err("must fail");
        assert_eq!(err.code(), *code);
        // The compat service too.
        let mut r = RClient::connect(format!("http://{}", running.grpc_addr()))
            .await
            .unwrap();
        let err = r
            .r#match(compat::MatchRequest {
                group: req.group.clone(),
                key: req.key.clone(),
            })
            .await
            .expect_err("must fail");
        assert_eq!(err.code(), *code);
    }
    let err = c
        .match_n(v1::MatchNRequest {
            group: "web".into(),
            key: "k".into(),
            n: 0,
        })
        .await
        .expect_err("n = 0");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Members: bad group → InvalidArgument; no members (never seen or
    // emptied) → an empty list, not an error.
    let err = c
        .members(v1::MembersRequest { group: String::new() })
        .await
        .expect_err("empty group");
    assert_eq!(err.code(), Code::InvalidArgument);
    for group in ["never-seen", "gone"] {
        let r = c
            .members(v1::MembersRequest { group: group.into() })
            .await
            .unwrap()
            .into_inner();
        assert!(r.services.is_empty(), "{group}");
    }
    let err = c
        .watch(v1::WatchRequest { group: String::new() })
        .await
        .expect_err("empty group");
    assert_eq!(err.code(), Code::InvalidArgument);

    // HTTP: the same table, plus keys and groups that are not UTF-8.
    let http = running.http_addr();
    let cases: Vec<(String, u16, &str)> = vec![
        ("/v1/match?group=&key=k".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/match?key=k".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/match?group=web&key=".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/match?group=web&key=%FF%FE".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/match?group=%C3%28&key=k".into(), 400, "INVALID_ARGUMENT"),
        (
            "/v1/match_n?group=web&key=%80&n=2".into(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/v1/match_n?group=web&key=k&n=zero".into(),
            400,
            "INVALID_ARGUMENT",
        ),
        ("/v1/match_n?group=web&key=k&n=0".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/members?group=%FF".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/members?group=".into(), 400, "INVALID_ARGUMENT"),
        ("/v1/match?group=never-seen&key=k".into(), 404, "NOT_FOUND"),
        ("/v1/match?group=gone&key=k".into(), 404, "NOT_FOUND"),
        ("/v1/match_n?group=gone&key=k&n=1".into(), 404, "NOT_FOUND"),
        ("/no/such/path".into(), 404, "NOT_FOUND"),
    ];
    for (path, status, code) in &cases {
        let a = get(http, path).await;
        let shown = &path[..path.len().min(60)];
        assert_eq!(a.status, *status, "{shown}: {}", a.body);
        let j = a.json();
        assert_eq!(j["error"]["code"], *code, "{shown}");
        assert!(j["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // A URI over 64 KiB is refused by the HTTP layer itself (hyper's
    // limit): 414, and the server stays up. Keys that large go over gRPC.
    let a = get(http, &format!("/v1/match?group=web&key={huge}")).await;
    assert_eq!(a.status, 414);
    let a = get(http, "/v1/match?group=web&key=%FF").await;
    assert_eq!(a.json()["error"]["message"], "key is not valid UTF-8");
    let a = get(http, "/v1/members?group=gone").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.json()["services"], serde_json::json!([]));
    let a = common::http_request_async(http, "POST", "/v1/groups").await;
    assert_eq!(a.status, 405);

    // Still up and answering after all of that.
    let groups = c.groups(v1::GroupsRequest {}).await.unwrap().into_inner();
    let names: Vec<&str> = groups.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["registry-group", "web"]);
    assert_eq!(get(http, "/healthz").await.status, 200);
    assert!(running.metrics().count(Method::Match, Code::InvalidArgument) >= 4);
    assert!(running.metrics().count(Method::HttpMatch, Code::InvalidArgument) >= 6);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_limit_is_configurable_and_the_same_on_both_front_doors() {
    let mut settings = registry_server::config::Settings::loopback("r-limit");
    settings.limits.max_key_bytes = 1000;
    let running = common::start_with(settings).await;
    feed(&running, vec![MemberEvent::Joined(svc("a", "web"))]).await;
    let over = "k".repeat(1001);
    let a = get(running.http_addr(), &format!("/v1/match?group=web&key={over}")).await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"]["code"], "INVALID_ARGUMENT");
    assert_eq!(
        a.json()["error"]["message"],
        "key is 1001 bytes, the limit is 1000"
    );
    let mut c = client(&running).await;
    let err = c
        .r#match(v1::MatchRequest {
            group: "web".into(),
            key: over,
        })
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(err.message(), "key is 1001 bytes, the limit is 1000");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_is_the_snapshot_answer_on_every_front_door() {
    let running = start("r-match").await;
    let mut c = client(&running).await;
    let mut r = RClient::connect(format!("http://{}", running.grpc_addr()))
        .await
        .unwrap();
    let mut heavy = svc("web-3", "web");
    heavy.weight = 3;
    feed(
        &running,
        vec![
            MemberEvent::Joined(svc("web-1", "web")),
            MemberEvent::Joined(svc("web-2", "web")),
            MemberEvent::Joined(heavy),
        ],
    )
    .await;
    let snap = running.catalog().snapshot("web").expect("web has members");
    let mut owners = std::collections::BTreeSet::new();
    for i in 0..500 {
        let key = format!("user-{i}");
        let want = snap.match_key(&key).unwrap();
        let got = c
            .r#match(v1::MatchRequest {
                group: "web".into(),
                key: key.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(got.version, snap.version());
        assert_eq!(
            got.service.as_ref().map(|s| s.id.as_str()),
            Some(want.id.as_str()),
            "{key}"
        );
        let old = r
            .r#match(compat::MatchRequest {
                group: "web".into(),
                key: key.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(old.id, want.id, "compat R, {key}");
        assert_eq!(old.addr, want.addr);
        let n = c
            .match_n(v1::MatchNRequest {
                group: "web".into(),
                key: key.clone(),
                n: 10,
            })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<&str> = n.services.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "n is capped by the group size");
        assert_eq!(ids[0], want.id, "MatchN starts with Match");
        let want_n: Vec<&str> = snap
            .match_n(&key, 3)
            .unwrap()
            .iter()
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, want_n);
        owners.insert(want.id.clone());
        if i % 50 == 0 {
            let a = get(running.http_addr(), &format!("/v1/match?group=web&key={key}")).await;
            assert_eq!(a.status, 200);
            assert_eq!(a.json()["service"]["id"], want.id.as_str());
            let a = get(
                running.http_addr(),
                &format!("/v1/match_n?group=web&key={key}&n=2"),
            )
            .await;
            let j = a.json();
            assert_eq!(j["services"][0]["id"], want.id.as_str());
            assert_eq!(j["services"].as_array().map(Vec::len), Some(2));
        }
    }
    assert_eq!(owners.len(), 3, "500 keys spread over every member");
    // A key of exactly the limit is accepted; UTF-8 keys work over HTTP.
    let at_limit = "k".repeat(MAX_KEY);
    assert!(c
        .r#match(v1::MatchRequest {
            group: "web".into(),
            key: at_limit,
        })
        .await
        .is_ok());
    let euro = get(running.http_addr(), "/v1/match?group=web&key=%E2%82%AC").await;
    assert_eq!(
        euro.json()["service"]["id"],
        snap.match_key("€").unwrap().id.as_str()
    );
    // Members over gRPC, compat and HTTP agree, sorted by id.
    let m = c
        .members(v1::MembersRequest { group: "web".into() })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<&str> = m.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["web-1", "web-2", "web-3"]);
    assert_eq!(m.services[2].weight, 3);
    let old = r
        .members(compat::MembersRequest { group: "web".into() })
        .await
        .unwrap()
        .into_inner();
    let old_ids: Vec<&str> = old.services.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(old_ids, ids);
    let j = get(running.http_addr(), "/v1/members?group=web").await.json();
    assert_eq!(j["services"][1]["id"], "web-2");
    assert_eq!(j["version"], m.version);
    running.shutdown().await;
}

async fn next(s: &mut tonic::Streaming<v1::Snapshot>) -> v1::Snapshot {
    tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .expect("a snapshot in time")
        .expect("no error")
        .expect("stream open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sends_the_snapshot_then_one_per_change_and_ends_on_shutdown() {
    let running = start("r-watch").await;
    let mut c = client(&running).await;
    let mut stream = c
        .watch(v1::WatchRequest { group: "web".into() })
        .await
        .unwrap()
        .into_inner();
    let ids = |s: &v1::Snapshot| s.services.iter().map(|m| m.id.clone()).collect::<Vec<_>>();

    let first = next(&mut stream).await;
    assert_eq!(first.group, "web");
    assert!(first.services.is_empty(), "a group with no members starts empty");
    assert_eq!(first.ring, registry_core::ring::RING_ALGORITHM);

    let mut last_version = first.version;
    let steps: Vec<(MemberEvent, Vec<&str>)> = vec![
        (MemberEvent::Joined(svc("a", "web")), vec!["a"]),
        (MemberEvent::Joined(svc("b", "web")), vec!["a", "b"]),
        (MemberEvent::Left(svc("a", "web")), vec!["b"]),
        (MemberEvent::Failed(svc("b", "web")), vec![]),
        (MemberEvent::Joined(svc("c", "web")), vec!["c"]),
    ];
    for (event, want) in steps {
        feed(&running, vec![event.clone()]).await;
        let snap = next(&mut stream).await;
        assert_eq!(ids(&snap), want, "after {event:?}");
        assert!(snap.version > last_version, "versions only grow");
        last_version = snap.version;
    }
    // A change to another group sends nothing on this stream.
    feed(&running, vec![MemberEvent::Joined(svc("x", "other"))]).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), stream.message())
            .await
            .is_err(),
        "no message for another group's change"
    );
    assert_eq!(running.metrics().watch_streams(), 1);

    // Shutdown ends the stream cleanly (end of stream, status OK).
    let stopping = tokio::spawn(running.shutdown());
    let end = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("stream ends in time");
    assert!(matches!(end, Ok(None)), "clean end, got {end:?}");
    tokio::time::timeout(Duration::from_secs(15), stopping)
        .await
        .expect("shutdown completes")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reflection_groups_and_metrics() {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let running = start("r-meta").await;
    let url = format!("http://{}", running.grpc_addr());
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "registry.v1.Registry", "R"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, 1, "{service:?} SERVING");
    }

    let mut refl = ServerReflectionClient::new(channel.clone());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer {answer:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for want in ["registry.v1.Registry", "R", "grpc.health.v1.Health"] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    // The file that declares a service is served (what `grpcurl describe`
    // and `grpcurl -d ... Match` need), for the package-less `R` too.
    for symbol in ["registry.v1.Registry", "R"] {
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
        };
        let mut answers = refl
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().expect("one answer");
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("no file for {symbol}: {answer:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{symbol}");
    }
    // v1alpha too (older grpcurl).
    let mut old =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let req = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut answers = old
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    assert!(answers.message().await.unwrap().is_some());

    // The registry lists itself in registry-group at its gRPC address.
    let j = get(running.http_addr(), "/v1/members?group=registry-group")
        .await
        .json();
    assert_eq!(j["services"][0]["id"], "r-meta");
    assert_eq!(j["services"][0]["addr"], running.grpc_addr().to_string());

    feed(
        &running,
        vec![
            MemberEvent::Joined(svc("a", "web")),
            MemberEvent::Joined(svc("b", "web")),
        ],
    )
    .await;
    let g = get(running.http_addr(), "/v1/groups").await.json();
    assert_eq!(g["groups"][1]["name"], "web");
    assert_eq!(g["groups"][1]["members"], 2);
    let _ = get(running.http_addr(), "/v1/match?group=&key=k").await;
    let _ = get(running.http_addr(), "/v1/members?group=web").await;
    let metrics = get(running.http_addr(), "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.starts_with("text/plain")));
    let body = &metrics.body;
    for want in [
        "registry_members{group=\"web\"} 2",
        "registry_members{group=\"registry-group\"} 1",
        "registry_groups 2",
        "registry_requests_total{transport=\"http\",method=\"/v1/match\",code=\"INVALID_ARGUMENT\"} 1",
        "registry_requests_total{transport=\"http\",method=\"/v1/members\",code=\"OK\"} 2",
        "registry_request_duration_seconds_count{transport=\"http\",method=\"/v1/members\"} 2",
        "registry_gossip_packets_sent_total ",
        "registry_gossip_packets_dropped_total{reason=\"decrypt_failed\"} 0",
        "registry_gossip_live_members 0",
    ] {
        assert!(body.contains(want), "{want} missing in\n{body}");
    }
    let version = running.catalog().snapshot("web").unwrap().version();
    assert!(body.contains(&format!("registry_ring_version{{group=\"web\"}} {version}")));

    // After shutdown both listeners are closed.
    let http = running.http_addr();
    running.shutdown().await;
    assert!(std::net::TcpStream::connect(http).is_err());
    wait_until("the gRPC port is closed", || {
        std::net::TcpStream::connect(url.trim_start_matches("http://")).is_err()
    })
    .await;
}

/// `MatchRequest` with the key as raw bytes, to send what a correct client
/// never would: a key that is not UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawMatchRequest {
    #[prost(string, tag = "1")]
    group: String,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_utf8_key_over_grpc_is_refused_and_the_server_stays_up() {
    let running = start("r-raw").await;
    feed(&running, vec![MemberEvent::Joined(svc("a", "web"))]).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", running.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/registry.v1.Registry/Match");
    let codec = tonic_prost::ProstCodec::<RawMatchRequest, v1::MatchResponse>::default();
    let req = RawMatchRequest {
        group: "web".into(),
        key: vec![0xff, 0xfe],
    };
    let err = grpc
        .unary(tonic::Request::new(req), path, codec)
        .await
        .expect_err("not UTF-8");
    // Refused while decoding, before any handler runs, with the code and
    // words of the HTTP front door.
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert_eq!(err.message(), "key is not valid UTF-8");
    assert!(
        err.message().contains("UTF-8") || err.message().contains("utf-8"),
        "{err:?}"
    );
    let mut c = client(&running).await;
    let ok = c
        .r#match(v1::MatchRequest {
            group: "web".into(),
            key: "k".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.service.map(|s| s.id).as_deref(), Some("a"));
    running.shutdown().await;
}

/// Every answer's checksum as the catalog's snapshot of `group` has it.
fn catalog_checksum(running: &registry_server::daemon::Running, group: &str) -> u64 {
    running.catalog().snapshot_or_empty(group).checksum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_checksum_of_the_ring_it_came_from() {
    use registry_core::ring::{checksum_hex, Ring};
    let running = start("r-sum").await;
    let mut c = client(&running).await;
    let mut stream = c
        .watch(v1::WatchRequest { group: "web".into() })
        .await
        .unwrap()
        .into_inner();
    let empty = next(&mut stream).await;
    assert_eq!(
        empty.checksum,
        Ring::default().checksum(),
        "the empty group's ring"
    );
    let mut heavy = svc("b", "web");
    heavy.weight = 2;
    // Join, join, weight change, leave: each step a new checksum, that of
    // a ring built from the members alone.
    let steps: Vec<(MemberEvent, Vec<(&str, u32)>)> = vec![
        (MemberEvent::Joined(svc("a", "web")), vec![("a", 1)]),
        (MemberEvent::Joined(svc("b", "web")), vec![("a", 1), ("b", 1)]),
        (MemberEvent::Updated(heavy), vec![("a", 1), ("b", 2)]),
        (MemberEvent::Left(svc("a", "web")), vec![("b", 2)]),
    ];
    let mut seen = vec![empty.checksum];
    for (event, members) in steps {
        feed(&running, vec![event.clone()]).await;
        let want = Ring::new(members.iter().copied()).unwrap().checksum();
        assert_eq!(catalog_checksum(&running, "web"), want, "after {event:?}");
        assert!(!seen.contains(&want), "a new checksum after {event:?}");
        seen.push(want);
        let hex = checksum_hex(want);
        let watched = next(&mut stream).await;
        assert_eq!(watched.checksum, want, "Watch after {event:?}");

        let m = c
            .r#match(v1::MatchRequest {
                group: "web".into(),
                key: "k".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((m.version, m.checksum), (watched.version, want));
        let n = c
            .match_n(v1::MatchNRequest {
                group: "web".into(),
                key: "k".into(),
                n: 2,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((n.version, n.checksum), (watched.version, want));
        let mem = c
            .members(v1::MembersRequest { group: "web".into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(mem.checksum, want);
        let groups = c.groups(v1::GroupsRequest {}).await.unwrap().into_inner();
        let web = groups
            .groups
            .iter()
            .find(|g| g.name == "web")
            .expect("web listed");
        assert_eq!((web.version, web.checksum), (watched.version, want));

        for path in [
            "/v1/match?group=web&key=k",
            "/v1/match_n?group=web&key=k&n=2",
            "/v1/members?group=web",
        ] {
            let j = get(running.http_addr(), path).await.json();
            assert_eq!(j["checksum"], hex.as_str(), "{path}");
            assert_eq!(j["version"], watched.version, "{path}");
        }
        let j = get(running.http_addr(), "/v1/groups").await.json();
        let web = j["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "web")
            .cloned();
        assert_eq!(web.expect("web listed")["checksum"], hex.as_str());
        let metrics = get(running.http_addr(), "/metrics").await.body;
        let line = format!(
            "registry_group_ring_checksum{{group=\"web\"}} {}\n",
            want & ((1 << 53) - 1)
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    // A group with no members: Members answers with the empty ring's.
    let none = c
        .members(v1::MembersRequest { group: "none".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.checksum, Ring::default().checksum());
    running.shutdown().await;
}
