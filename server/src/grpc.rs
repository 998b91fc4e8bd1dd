//! The gRPC front door: `registry.v1.Registry`, the compat service `R`,
//! `grpc.health.v1` and server reflection (v1 and v1alpha).

use crate::api::Api;
use crate::convert;
use crate::metrics::{Method, Metrics};
use registry_core::wire::compat::r_server::{RServer, R};
use registry_core::wire::v1::registry_server::{Registry, RegistryServer};
use registry_core::wire::{compat, v1, FILE_DESCRIPTOR_SET};
use registry_core::Error;
use registry_core::Limit;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::http;
use tonic::service::Routes;
use tonic::{Code, Request, Response, Status};
use tonic_health::server::HealthReporter;

/// Counts a finished request and turns its result into a gRPC answer.
fn finish<T>(
    api: &Api,
    method: Method,
    start: Instant,
    res: Result<T, Error>,
) -> Result<Response<T>, Status> {
    match res {
        Ok(v) => {
            api.metrics().record(method, Code::Ok, start.elapsed());
            Ok(Response::new(v))
        }
        Err(e) => {
            let status = Status::from(e);
            api.metrics().record(method, status.code(), start.elapsed());
            Err(status)
        }
    }
}

/// `registry.v1.Registry` over the shared [`Api`].
#[derive(Clone)]
pub struct V1 {
    api: Arc<Api>,
}

impl V1 {
    /// The service over `api`.
    pub fn new(api: Arc<Api>) -> Self {
        V1 { api }
    }
}

#[tonic::async_trait]
impl Registry for V1 {
    async fn r#match(&self, req: Request<v1::MatchRequest>) -> Result<Response<v1::MatchResponse>, Status> {
        let start = Instant::now();
        let r = req.get_ref();
        let res = self
            .api
            .match_key(&r.group, &r.key)
            .map(|(s, ring)| v1::MatchResponse {
                service: Some(v1::Service::from(&*s)),
                version: ring.version,
                checksum: ring.checksum,
            });
        finish(&self.api, Method::Match, start, res)
    }

    async fn match_n(&self, req: Request<v1::MatchNRequest>) -> Result<Response<v1::MatchNResponse>, Status> {
        let start = Instant::now();
        let r = req.get_ref();
        let res = self
            .api
            .match_n(&r.group, &r.key, r.n)
            .map(|(owners, ring)| v1::MatchNResponse {
                services: owners.iter().map(|s| v1::Service::from(&**s)).collect(),
                version: ring.version,
                checksum: ring.checksum,
            });
        finish(&self.api, Method::MatchN, start, res)
    }

    async fn members(
        &self,
        req: Request<v1::MembersRequest>,
    ) -> Result<Response<v1::MembersResponse>, Status> {
        let start = Instant::now();
        let res = self
            .api
            .members(&req.get_ref().group)
            .map(|snap| v1::MembersResponse {
                services: snap.members().iter().map(|s| v1::Service::from(&**s)).collect(),
                version: snap.version(),
                checksum: snap.checksum(),
            });
        finish(&self.api, Method::Members, start, res)
    }

    async fn groups(&self, _req: Request<v1::GroupsRequest>) -> Result<Response<v1::GroupsResponse>, Status> {
        let start = Instant::now();
        let res = self.api.groups().map(|groups| v1::GroupsResponse {
            groups: groups
                .iter()
                .map(|g| v1::GroupInfo {
                    name: g.group().to_string(),
                    members: u32::try_from(g.members().len()).unwrap_or(u32::MAX),
                    version: g.version(),
                    checksum: g.checksum(),
                })
                .collect(),
        });
        finish(&self.api, Method::Groups, start, res)
    }

    type WatchStream = ReceiverStream<Result<v1::Snapshot, Status>>;

    async fn watch(&self, req: Request<v1::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let start = Instant::now();
        let res = self.api.watch(&req.get_ref().group);
        let (mut rx, permit) = match res {
            Ok(open) => open,
            Err(e) => return finish(&self.api, Method::Watch, start, Err(e)),
        };
        let (tx, out) = mpsc::channel(4);
        let api = self.api.clone();
        let shutdown = api.shutdown().wait();
        api.metrics().watch_streams_add(1);
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            let mut first = true;
            loop {
                if !first {
                    tokio::select! {
                        _ = &mut shutdown => break,
                        _ = tx.closed() => break,
                        changed = rx.changed() => if changed.is_err() { break },
                    }
                }
                first = false;
                let msg = convert::snapshot(&rx.borrow_and_update().clone());
                tokio::select! {
                    _ = &mut shutdown => break,
                    sent = tx.send(Ok(msg)) => if sent.is_err() { break },
                }
            }
            api.metrics().watch_streams_add(-1);
            drop(permit);
        });
        finish(&self.api, Method::Watch, start, Ok(ReceiverStream::new(out)))
    }
}

/// The compat service `R` of the system we replace: same answers as
/// `registry.v1`, in the old message shapes.
#[derive(Clone)]
pub struct Compat {
    api: Arc<Api>,
}

impl Compat {
    /// The service over `api`.
    pub fn new(api: Arc<Api>) -> Self {
        Compat { api }
    }
}

#[tonic::async_trait]
impl R for Compat {
    async fn r#match(
        &self,
        req: Request<compat::MatchRequest>,
    ) -> Result<Response<compat::MatchResponse>, Status> {
        let start = Instant::now();
        let r = req.get_ref();
        let res = self
            .api
            .match_key(&r.group, &r.key)
            .map(|(s, _)| compat::MatchResponse::from(&*s));
        finish(&self.api, Method::CompatMatch, start, res)
    }

    async fn members(
        &self,
        req: Request<compat::MembersRequest>,
    ) -> Result<Response<compat::MembersResponse>, Status> {
        let start = Instant::now();
        let res = self
            .api
            .members(&req.get_ref().group)
            .map(|snap| compat::MembersResponse {
                services: snap
                    .members()
                    .iter()
                    .map(|s| compat::MatchResponse::from(&**s))
                    .collect(),
            });
        finish(&self.api, Method::CompatMembers, start, res)
    }
}

/// Every gRPC service of the server, and the health reporter that flips
/// them to NOT_SERVING on shutdown.
pub async fn routes(api: Arc<Api>) -> Result<(Routes, HealthReporter), String> {
    let (health, health_service) = tonic_health::server::health_reporter();
    set_serving(&health).await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| format!("reflection (v1): {e}"))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| format!("reflection (v1alpha): {e}"))?;
    let routes = Routes::new(RegistryServer::new(V1::new(api.clone())))
        .add_service(RServer::new(Compat::new(api)))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    Ok((routes, health))
}

/// Marks every service SERVING.
pub async fn set_serving(health: &HealthReporter) {
    health.set_serving::<RegistryServer<V1>>().await;
    health.set_serving::<RServer<Compat>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
}

/// Marks every service NOT_SERVING (while joining, and first step of a
/// graceful shutdown).
pub async fn set_not_serving(health: &HealthReporter) {
    health.set_not_serving::<RegistryServer<V1>>().await;
    health.set_not_serving::<RServer<Compat>>().await;
    health
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
}

/// A layer over the gRPC routes that counts requests refused for their
/// size: tonic answers them OUT_OF_RANGE before any handler runs (no
/// handler of ours returns that code), so the count is taken from the
/// answer, as `registry_limit_rejections_total{limit="message_bytes"}`.
#[derive(Clone)]
pub struct CountOversizedLayer(pub Arc<Metrics>);

impl<S> tower_layer::Layer<S> for CountOversizedLayer {
    type Service = CountOversized<S>;

    fn layer(&self, inner: S) -> CountOversized<S> {
        CountOversized {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// The service of [`CountOversizedLayer`].
#[derive(Clone)]
pub struct CountOversized<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tonic::codegen::Service<http::Request<B>> for CountOversized<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(req);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let resp = answer.await?;
            let code = resp.headers().get("grpc-status");
            if code.is_some_and(|c| c.as_bytes() == b"11") {
                metrics.limit_rejected(Limit::MessageBytes);
            }
            Ok(resp)
        })
    }
}
