//! Every rejection is a clear status: a `registry-server` process asked,
//! over raw gRPC, for keys and groups that are not UTF-8 answers
//! INVALID_ARGUMENT naming the field, on Match and MatchN, and keeps
//! serving.

mod common;

use common::{connect_started, spawn_registry};
use registry_core::wire::v1;
use registry_core::REGISTRY_GROUP;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Code;

/// `MatchRequest` / `MatchNRequest` with both strings as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawRequest {
    #[prost(bytes = "vec", tag = "1")]
    group: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    key: Vec<u8>,
    #[prost(uint32, tag = "3")]
    n: u32,
}

async fn send<Resp: prost::Message + Default + Send + std::fmt::Debug + 'static>(
    grpc: &str,
    path: &'static str,
    req: RawRequest,
) -> tonic::Status {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<RawRequest, Resp>::default();
    client
        .unary(tonic::Request::new(req), PathAndQuery::from_static(path), codec)
        .await
        .expect_err("refused")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strings_that_are_not_utf8_are_invalid_arguments_naming_the_field() {
    let registry = spawn_registry("r-utf8", "127.0.0.1:0", &[]);
    let grpc = registry.field("grpc");
    let bad = vec![b'k', 0xff, 0xfe];
    let cases = [
        (
            "/registry.v1.Registry/Match",
            REGISTRY_GROUP.as_bytes().to_vec(),
            bad.clone(),
            "key",
        ),
        (
            "/registry.v1.Registry/MatchN",
            REGISTRY_GROUP.as_bytes().to_vec(),
            bad.clone(),
            "key",
        ),
        ("/registry.v1.Registry/Match", bad.clone(), b"k".to_vec(), "group"),
    ];
    for (path, group, key, field) in cases {
        let req = RawRequest { group, key, n: 1 };
        let status = if path.ends_with("MatchN") {
            send::<v1::MatchNResponse>(&grpc, path, req).await
        } else {
            send::<v1::MatchResponse>(&grpc, path, req).await
        };
        assert_eq!(status.code(), Code::InvalidArgument, "{path}: {status:?}");
        assert_eq!(status.message(), format!("{field} is not valid UTF-8"), "{path}");
    }
    // Still serving.
    let ok = connect_started(&registry)
        .await
        .r#match(v1::MatchRequest {
            group: REGISTRY_GROUP.into(),
            key: "k".into(),
        })
        .await
        .expect("a valid Match answers");
    assert!(ok.into_inner().service.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_size_limit_is_out_of_range_and_counted() {
    let registry = spawn_registry("r-size", "127.0.0.1:0", &[]);
    let grpc = registry.field("grpc");
    let http: std::net::SocketAddr = registry.field("http").parse().unwrap();
    let sample = "registry_limit_rejections_total{limit=\"message_bytes\"} ";
    let count = move || {
        let text = common::http_get(http, "/metrics").body;
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {sample} in /metrics:\n{text}"))
    };
    assert_eq!(tokio::task::spawn_blocking(count).await.unwrap(), 0);
    let req = RawRequest {
        group: b"web".to_vec(),
        key: vec![b'k'; 5 << 20],
        n: 1,
    };
    let status = send::<v1::MatchResponse>(&grpc, "/registry.v1.Registry/Match", req).await;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(status.message().contains("too large"), "{status:?}");
    assert_eq!(tokio::task::spawn_blocking(count).await.unwrap(), 1);
}
