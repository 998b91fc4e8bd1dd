//! The HTTP/JSON front door: `/v1/match`, `/v1/match_n`, `/v1/members`,
//! `/v1/groups`, `/healthz` and `/metrics`.
//!
//! Every answer from a group's ring carries its `"checksum"` as a string of
//! 16 lowercase hex digits (a JSON number would lose a u64's low bits).
//!
//! Query strings are decoded here, byte-exact: a parameter whose
//! percent-decoded bytes are not UTF-8 is an InvalidArgument (400), never
//! silently replaced by U+FFFD (which a lossy decoder would do, and which
//! would then match a different key).

use crate::api::Api;
use crate::cli::service_json;
use crate::errors::{code_name, http_status};
use crate::metrics::Method;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use registry_core::ring::checksum_hex;
use registry_core::Error;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;
use tonic::{Code, Status};

#[derive(Clone)]
struct HttpState {
    api: Arc<Api>,
    metrics: Arc<Registry>,
}

/// The HTTP router over `api`; `/metrics` encodes the collectors of
/// `metrics`.
pub fn router(api: Arc<Api>, metrics: Arc<Registry>) -> Router {
    Router::new()
        .route("/v1/match", get(get_match))
        .route("/v1/match_n", get(get_match_n))
        .route("/v1/members", get(get_members))
        .route("/v1/groups", get(get_groups))
        .route("/healthz", get(healthz))
        .route("/metrics", get(get_metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(HttpState { api, metrics })
}

/// `{"error": {"code": "...", "message": "..."}}` with the status for `code`.
fn error_response(code: Code, msg: &str) -> Response {
    let body = json!({"error": {"code": code_name(code), "message": msg}});
    (http_status(code), Json(body)).into_response()
}

/// Counts a finished request and turns its result into an HTTP answer.
fn finish(api: &Api, method: Method, start: Instant, res: Result<Value, Error>) -> Response {
    match res {
        Ok(v) => {
            api.metrics().record(method, Code::Ok, start.elapsed());
            (StatusCode::OK, Json(v)).into_response()
        }
        Err(e) => {
            let status = Status::from(e);
            api.metrics().record(method, status.code(), start.elapsed());
            error_response(status.code(), status.message())
        }
    }
}

async fn get_match(State(st): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let start = Instant::now();
    let res = Params::parse(q.as_deref()).and_then(|p| {
        let (s, ring) = st.api.match_key(&p.get("group")?, &p.get("key")?)?;
        Ok(json!({"service": service_json(&s), "version": ring.version, "checksum": checksum_hex(ring.checksum)}))
    });
    finish(&st.api, Method::HttpMatch, start, res)
}

async fn get_match_n(State(st): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let start = Instant::now();
    let res = Params::parse(q.as_deref()).and_then(|p| {
        let n = p.get_u32("n")?;
        let (owners, ring) = st.api.match_n(&p.get("group")?, &p.get("key")?, n)?;
        let services: Vec<Value> = owners.iter().map(|s| service_json(s)).collect();
        Ok(json!({"services": services, "version": ring.version, "checksum": checksum_hex(ring.checksum)}))
    });
    finish(&st.api, Method::HttpMatchN, start, res)
}

async fn get_members(State(st): State<HttpState>, RawQuery(q): RawQuery) -> Response {
    let start = Instant::now();
    let res = Params::parse(q.as_deref()).and_then(|p| {
        let snap = st.api.members(&p.get("group")?)?;
        let services: Vec<Value> = snap.members().iter().map(|s| service_json(s)).collect();
        Ok(json!({"services": services, "version": snap.version(), "checksum": checksum_hex(snap.checksum())}))
    });
    finish(&st.api, Method::HttpMembers, start, res)
}

async fn get_groups(State(st): State<HttpState>) -> Response {
    let start = Instant::now();
    let res = st.api.groups().map(|groups| {
        let groups: Vec<Value> = groups
            .iter()
            .map(|g| {
                json!({
                    "name": g.group(),
                    "members": g.members().len(),
                    "version": g.version(),
                    "checksum": checksum_hex(g.checksum()),
                })
            })
            .collect();
        json!({ "groups": groups })
    });
    finish(&st.api, Method::HttpGroups, start, res)
}

async fn healthz(State(st): State<HttpState>) -> Response {
    if !st.api.is_serving() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "NOT_SERVING"})),
        )
            .into_response()
    } else {
        (StatusCode::OK, Json(json!({"status": "SERVING"}))).into_response()
    }
}

async fn get_metrics(State(st): State<HttpState>) -> Response {
    let text = crate::metrics::encode(&st.metrics);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

async fn not_found(uri: Uri) -> Response {
    error_response(Code::NotFound, &format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed() -> Response {
    let mut r = error_response(Code::Unimplemented, "only GET is supported");
    *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// Decoded query parameters, kept as raw bytes until asked for.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Params {
    /// Splits and percent-decodes `a=1&b=2` (`+` is a space, as in HTML
    /// forms). Never fails today; returns a `Result` so that stricter
    /// parsing stays a local change.
    pub fn parse(query: Option<&str>) -> Result<Params, Error> {
        let mut pairs = Vec::new();
        for part in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((percent_decode(k.as_bytes()), percent_decode(v.as_bytes())));
        }
        Ok(Params { pairs })
    }

    /// The first value of `name` as UTF-8 text; "" when absent (as proto3
    /// does for an unset field, so both front doors give the same error).
    pub fn get(&self, name: &str) -> Result<String, Error> {
        match self.pairs.iter().find(|(k, _)| k == name.as_bytes()) {
            None => Ok(String::new()),
            Some((_, v)) => {
                String::from_utf8(v.clone()).map_err(|_| Error::invalid(format!("{name} is not valid UTF-8")))
            }
        }
    }

    /// The first value of `name` as a `u32`; 0 when absent.
    pub fn get_u32(&self, name: &str) -> Result<u32, Error> {
        let v = self.get(name)?;
        if v.is_empty() {
            return Ok(0);
        }
        v.parse::<u32>()
            .map_err(|_| Error::invalid(format!("{name} is not a number from 0 to {}", u32::MAX)))
    }
}

/// Percent-decodes bytes; `+` becomes a space; a `%` not followed by two hex
/// digits is kept as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(input.get(i + 1)), hex(input.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_plus_and_keeps_bad_escapes() {
        assert_eq!(percent_decode(b"a%20b+c"), b"a b c");
        assert_eq!(percent_decode(b"%E2%82%AC"), "€".as_bytes());
        assert_eq!(percent_decode(b"100%"), b"100%");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
        assert_eq!(percent_decode(b"%41"), b"A");
    }

    #[test]
    fn invalid_utf8_is_an_invalid_argument() {
        let p = Params::parse(Some("group=g&key=%FF%FE")).unwrap();
        assert_eq!(p.get("group").unwrap(), "g");
        assert_eq!(p.get("key"), Err(Error::invalid("key is not valid UTF-8")));
        assert_eq!(p.get("missing").unwrap(), "");
    }

    #[test]
    fn numbers_are_checked() {
        let p = Params::parse(Some("n=3&m=x&big=99999999999")).unwrap();
        assert_eq!(p.get_u32("n").unwrap(), 3);
        assert!(p.get_u32("m").is_err());
        assert!(p.get_u32("big").is_err());
        assert_eq!(p.get_u32("absent").unwrap(), 0);
    }
}
