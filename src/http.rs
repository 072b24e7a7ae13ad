//! The `[metrics]` listener: `GET /metrics`, `GET /healthz`,
//! `GET /readyz`, `POST /reload`; and, to ask the running server what it
//! serves, `GET /status`, `GET /records[?name=]`, `GET /explain?name=`,
//! `POST /cache/flush[?name=]` (their types are in [`crate::control`]).
//! Over hyper's HTTP/1.1 server. Connections are capped, each client holds
//! a bounded share of them (`slots`), and every connection has a deadline,
//! so slow or idle clients cannot keep probes out. A query string is read
//! strictly against the parameters its path takes. Anyone who reaches the
//! listener may read (GET); only `[metrics] control_allow` (loopback by
//! default) may POST.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::azure::Served as _;
use crate::control::{self, AzureStatus, CacheStatus, Flushed, Params, Problem, ServerStatus};
use crate::explain;
use crate::export;
use crate::health::Health;
use crate::logging::RateLimited;
use crate::metrics::Metrics;
use crate::names;
use crate::reload::{ReloadError, Reloader, Trigger};
use crate::resolve::rtype;

mod records;
mod slots;

pub use slots::{MAX_CONNECTIONS, PER_CLIENT};

/// A client must send its request headers within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lives longer than this (a reload of a huge table included).
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(30);
/// A refused control request is at most one warning per this.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(10);

/// A response body: in one piece, or (`/records`) in chunks.
type Reply = BoxBody<Bytes, Infallible>;

/// What the endpoints read.
pub struct Endpoints {
    pub reloader: Arc<Reloader>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Cancelled when the stop begins: from then on `/readyz` says 503.
    pub stopping: CancellationToken,
    /// Who may POST, that is reload or flush (`[metrics] control_allow`).
    pub control_allow: Vec<IpNet>,
    /// Refused control requests: a scanner must not flood the log.
    refused_log: RateLimited,
}

impl Endpoints {
    pub fn new(
        reloader: Arc<Reloader>,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
        stopping: CancellationToken,
        control_allow: Vec<IpNet>,
    ) -> Self {
        Endpoints {
            reloader,
            metrics,
            health,
            stopping,
            control_allow,
            refused_log: RateLimited::new(REFUSED_LOG_EVERY),
        }
    }

    fn may_control(&self, peer: IpAddr) -> bool {
        // A v4 client on a dual-stack listener shows up as ::ffff:a.b.c.d.
        let peer = peer.to_canonical();
        self.control_allow.iter().any(|n| n.contains(&peer))
    }
}

/// Serves until `stop`.
pub async fn serve(listener: TcpListener, endpoints: Arc<Endpoints>, stop: CancellationToken) {
    let slots = Arc::new(slots::Slots::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                debug!("metrics listener accept: {e}");
                continue;
            }
        };
        // No room, even by closing an idle connection: closed at once.
        let Some(slot) = slots.admit(peer.ip()) else {
            debug!(%peer, "metrics listener full, closing a connection");
            continue;
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|req| {
                slot.answering();
                let endpoints = endpoints.clone();
                async move { Ok::<_, Infallible>(route(&endpoints, peer, req).await) }
            });
            // No keep-alive: the deadline below would cut a reused connection
            // mid-scrape; a scrape every few seconds can afford a handshake.
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                done = tokio::time::timeout(CONNECTION_DEADLINE, conn) => {
                    if let Ok(Err(e)) = done {
                        debug!(%peer, "metrics connection: {e}");
                    }
                }
                () = slot.closed.cancelled() => {
                    debug!(%peer, "metrics connection closed to make room for another");
                }
            }
        });
    }
}

/// What the listener answers.
enum Route {
    Metrics,
    Healthz,
    Readyz,
    Status,
    Records,
    Explain,
    CacheFlush,
    Reload,
}

/// Every path the listener serves, with the one method it answers there
/// and the query parameters it takes: another method gets 405, another path
/// 404, another parameter 400.
const ROUTES: &[(&str, Method, Route, &[&str])] = &[
    ("/metrics", Method::GET, Route::Metrics, &[]),
    ("/healthz", Method::GET, Route::Healthz, &[]),
    ("/readyz", Method::GET, Route::Readyz, &[]),
    ("/status", Method::GET, Route::Status, &[]),
    ("/records", Method::GET, Route::Records, &["name"]),
    (
        "/explain",
        Method::GET,
        Route::Explain,
        &["name", "type", "from"],
    ),
    ("/cache/flush", Method::POST, Route::CacheFlush, &["name"]),
    ("/reload", Method::POST, Route::Reload, &[]),
];

async fn route(e: &Endpoints, peer: SocketAddr, req: Request<Incoming>) -> Response<Reply> {
    // Every POST changes something, whatever its path.
    if req.method() == Method::POST && !e.may_control(peer.ip()) {
        if let Some(held_back) = e.refused_log.check() {
            warn!(
                client = %peer.ip(),
                held_back,
                "refused a POST: the client is not in [metrics] control_allow"
            );
        }
        return reply(
            StatusCode::FORBIDDEN,
            "text/plain",
            "forbidden: this address is not in [metrics] control_allow\n".into(),
        );
    }
    let Some((_, method, route, takes)) =
        ROUTES.iter().find(|(path, ..)| *path == req.uri().path())
    else {
        return reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into());
    };
    if method != req.method() {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
    }
    // Read before anything is done: a parameter misread as left out would
    // make a flush or a lookup about one name one about every name.
    let params = match control::query_params(req.uri().query(), takes) {
        Ok(p) => p,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    match route {
        Route::Metrics => metrics(e),
        Route::Healthz => healthz(e),
        Route::Readyz => readyz(e),
        Route::Status => json(StatusCode::OK, &status(e)),
        Route::Records => records(e, &params),
        Route::Explain => match explain_asked(e, &params) {
            Ok(x) => json(StatusCode::OK, &x),
            Err(why) => error(StatusCode::BAD_REQUEST, why),
        },
        Route::CacheFlush => cache_flush(e, &params),
        Route::Reload => reload(e).await,
    }
}

fn metrics(e: &Endpoints) -> Response<Reply> {
    let forwarder = e.reloader.forwarder().now();
    e.metrics.cache.entries.set(forwarder.cache().len() as i64);
    e.metrics.cache.bytes.set(forwarder.cache().bytes() as i64);
    let problems = e.health.problems();
    e.metrics
        .process
        .set_degraded(problems.iter().map(|(source, _)| *source));
    reply(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        e.metrics.render(),
    )
}

/// The process is up (200 even when degraded: the last good table serves,
/// and a liveness probe must not restart it for that); the body says what
/// it serves and what is wrong, if anything.
fn healthz(e: &Endpoints) -> Response<Reply> {
    let s = e.reloader.status();
    let mut body = serde_json::json!({
        "status": health_word(e),
        "generation": s.generation,
        "names": s.names,
        "loaded_at": s.loaded_at,
    });
    if let Some(reason) = e.health.reason() {
        body["reason"] = reason.into();
        body["problems"] = e
            .health
            .problems()
            .into_iter()
            .map(|(source, why)| (source.as_str().to_string(), why.into()))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    reply(StatusCode::OK, "application/json", format!("{body}\n"))
}

fn readyz(e: &Endpoints) -> Response<Reply> {
    if e.stopping.is_cancelled() {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        )
    } else {
        reply(StatusCode::OK, "text/plain", "ready\n".into())
    }
}

/// `GET /records[?name=]`: the whole table (in chunks), or the row of one name.
fn records(e: &Endpoints, params: &Params) -> Response<Reply> {
    let snapshot = e.reloader.snapshot().load_full();
    let Some(name) = params.get("name") else {
        let rows = records::all(snapshot).boxed();
        return with_type(StatusCode::OK, "application/json", rows);
    };
    match export::row_for(&snapshot.table, name) {
        Some(row) => json(StatusCode::OK, &[row]),
        None => error(
            StatusCode::NOT_FOUND,
            format!("{name} is not in the table: it is forwarded"),
        ),
    }
}

/// `POST /cache/flush[?name=]`: the whole cache, or one name's answers.
fn cache_flush(e: &Endpoints, params: &Params) -> Response<Reply> {
    let name = match params
        .get("name")
        .map(|n| names::domain_name(n).map_err(|why| format!("{n:?}: {why}")))
        .transpose()
    {
        Ok(n) => n,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let cache = e.reloader.forwarder().now().cache().clone();
    let flushed = cache.flush(name.as_deref());
    info!(
        name = name.as_deref().unwrap_or("(all)"),
        flushed, "cache flushed"
    );
    json(StatusCode::OK, &Flushed { name, flushed })
}

/// In a task of its own: a client that goes away does not cancel a reload
/// half done.
async fn reload(e: &Endpoints) -> Response<Reply> {
    let reloader = e.reloader.clone();
    match tokio::spawn(async move { reloader.reload(Trigger::Http).await })
        .await
        .unwrap_or_else(|join| Err(ReloadError::Task(join.to_string())))
    {
        Ok(generation) => {
            let body = serde_json::json!({ "generation": generation });
            reply(StatusCode::OK, "application/json", format!("{body}\n"))
        }
        Err(err) => {
            let body = serde_json::json!({
                "error": err.to_string(),
                "generation": e.reloader.status().generation,
            });
            reply(
                StatusCode::UNPROCESSABLE_ENTITY,
                "application/json",
                format!("{body}\n"),
            )
        }
    }
}

/// `ok`, or `degraded` while a source has a problem.
fn health_word(e: &Endpoints) -> &'static str {
    if e.health.problems().is_empty() {
        "ok"
    } else {
        "degraded"
    }
}

fn status(e: &Endpoints) -> ServerStatus {
    let s = e.reloader.status();
    let forwarder = e.reloader.forwarder().now();
    let (hits, misses) = (e.metrics.cache.hits.get(), e.metrics.cache.misses.get());
    let asked = hits + misses;
    ServerStatus {
        version: env!("CARGO_PKG_VERSION").to_string(),
        config: e.reloader.path().display().to_string(),
        sha256: s.sha256,
        generation: s.generation,
        names: s.names,
        loaded_at: s.loaded_at,
        last_reload: e.reloader.last_reload(),
        health: health_word(e).to_string(),
        problems: e
            .health
            .problems()
            .into_iter()
            .map(|(source, reason)| Problem {
                source: source.as_str().to_string(),
                reason,
            })
            .collect(),
        upstreams: forwarder.health(),
        cache: CacheStatus {
            entries: forwarder.cache().len(),
            capacity: forwarder.config().cache_entries,
            hits,
            misses,
            hit_rate: (asked > 0).then(|| hits as f64 / asked as f64),
        },
        azure: e.reloader.azure().map(|cfg| AzureStatus {
            subscriptions: cfg.subscriptions.len(),
            management_groups: cfg.management_groups.len(),
            interval_s: cfg.interval.as_secs(),
            workspaces: e.reloader.discovered().len(),
            last_success: Some(e.metrics.azure.last_success.get()).filter(|t| *t > 0.0),
            skipped: e.reloader.skipped().to_vec(),
        }),
    }
}

/// `GET /explain?name=&type=&from=`, run on the snapshot being served.
fn explain_asked(e: &Endpoints, params: &Params) -> Result<explain::Explanation, String> {
    let name = params.get("name").ok_or("name= is missing")?;
    let qtype = match params.get("type") {
        Some(t) => explain::parse_type(t).map_err(|err| err.to_string())?,
        None => rtype::A,
    };
    let from = match params.get("from") {
        Some(f) => Some(
            f.parse()
                .map_err(|_| format!("{f:?} is not an IP address"))?,
        ),
        None => None,
    };
    let snapshot = e.reloader.snapshot().load();
    let forwarder = e.reloader.forwarder().now();
    let upstreams = &forwarder.config().servers;
    explain::explain(
        &snapshot.table,
        &snapshot.policy,
        upstreams,
        name,
        qtype,
        from,
    )
    .map(|x| x.with_cache(forwarder.cache(), qtype))
    .map_err(|err| err.to_string())
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Reply> {
    let mut body = serde_json::to_string_pretty(value).unwrap_or_default();
    body.push('\n');
    reply(status, "application/json", body)
}

fn error(status: StatusCode, why: String) -> Response<Reply> {
    json(status, &serde_json::json!({ "error": why }))
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Reply> {
    with_type(status, content_type, Full::new(Bytes::from(body)).boxed())
}

fn with_type(status: StatusCode, content_type: &'static str, body: Reply) -> Response<Reply> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A path listed twice would answer with its first entry only.
    #[test]
    fn each_path_is_routed_once() {
        for (i, (path, ..)) in ROUTES.iter().enumerate() {
            assert!(
                ROUTES[i + 1..].iter().all(|(other, ..)| other != path),
                "{path} is listed twice"
            );
        }
    }
}
