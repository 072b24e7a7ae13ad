//! The HTTP side of discovery: hyper clients (rustls on ring, HTTP/1.1)
//! for ARM and the token endpoints, every request bounded in time and size
//! and tried again when its failure may pass, a round bounded by the time
//! since a request last got an answer, and the ways a request fails, in
//! the words `/healthz` and the metrics use.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderMap, RETRY_AFTER};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus::IntCounter;
use tracing::debug;

use super::proxy::{Connector, Proxy};
use super::trust;
use crate::config::AzureConfig;
use crate::metrics::AzureResult;

/// The largest answer read: a page of 100 workspaces is a few hundred KiB;
/// past this something is wrong, and it must not fill the memory.
const MAX_BODY: usize = 32 << 20;

/// Why a round failed; the last good discovery keeps serving.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("no token: {0}")]
    Token(String),
    #[error("{url}: HTTP {status}: {}", denied_hint(*.status))]
    Denied {
        url: String,
        status: u16,
        arm: ArmError,
    },
    /// HTTP 404: the resource is gone, or (a subscription) the identity's
    /// tenant does not have it.
    #[error("{url}: HTTP 404: not found")]
    NotFound { url: String, arm: ArmError },
    /// A subscription Resource Graph does not show: gone, or out of the
    /// identity's reach (it answers for the others, without an error).
    #[error(
        "Resource Graph does not show subscription {0}: it is gone, or the identity cannot read it"
    )]
    Unseen(String),
    /// HTTP 429; the next round waits `retry_after` when ARM says so.
    #[error("{url}: HTTP 429: ARM throttles this identity")]
    Throttled {
        url: String,
        retry_after: Option<Duration>,
        arm: ArmError,
    },
    #[error("{url}: HTTP {status}")]
    Unavailable {
        url: String,
        status: u16,
        arm: ArmError,
    },
    #[error("{url}: no answer within {0} ms", .timeout.as_millis())]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: {why}")]
    Network { url: String, why: String },
    #[error("{url}: unexpected answer: {why}")]
    Malformed { url: String, why: String },
    /// No request of the round got an answer for this long.
    #[error("no request of the round got an answer for {} s", .0.as_secs())]
    Round(Duration),
}

impl Failure {
    /// The `result` of `amldns_azure_sync_total` it counts as.
    pub fn kind(&self) -> AzureResult {
        match self {
            Failure::Token(_) => AzureResult::Token,
            Failure::Denied { .. } => AzureResult::Denied,
            Failure::NotFound { .. } | Failure::Unseen(_) => AzureResult::NotFound,
            Failure::Throttled { .. } => AzureResult::Throttled,
            Failure::Unavailable { .. } => AzureResult::Unavailable,
            Failure::Timeout { .. } | Failure::Round(_) => AzureResult::Timeout,
            Failure::Network { .. } => AzureResult::Network,
            Failure::Malformed { .. } => AzureResult::Malformed,
        }
    }

    /// How long ARM asked to be left alone, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status ARM answered, when it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Failure::Denied { status, .. } | Failure::Unavailable { status, .. } => Some(*status),
            Failure::NotFound { .. } => Some(404),
            Failure::Throttled { .. } => Some(429),
            _ => None,
        }
    }

    /// What ARM's answer said of the failure, when it answered.
    pub fn arm(&self) -> Option<&ArmError> {
        match self {
            Failure::Denied { arm, .. }
            | Failure::NotFound { arm, .. }
            | Failure::Throttled { arm, .. }
            | Failure::Unavailable { arm, .. } => Some(arm),
            _ => None,
        }
    }

    pub(super) fn malformed(url: &str, why: impl Into<String>) -> Self {
        Failure::Malformed {
            url: shown(url),
            why: why.into(),
        }
    }
}

/// What to do about a refusal: a 401 is a token ARM does not take (most
/// often one from another tenant, `az`'s default), a 403 a missing role.
fn denied_hint(status: u16) -> &'static str {
    if status == 401 {
        "ARM does not take the token (from another tenant? set [azure] tenant_id)"
    } else {
        "the identity may not read it (give it Reader on the subscription, see deploy/azure)"
    }
}

/// What ARM's error answer says, for the log: its `error.code`
/// (`AuthorizationFailed`, `SubscriptionNotFound`…) and the
/// `x-ms-correlation-request-id` Microsoft's support asks for. Kept out of
/// the failure's text, which must read the same each round.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArmError {
    pub code: Option<String>,
    pub correlation_id: Option<String>,
}

impl ArmError {
    /// From an answer's headers and body (ARM's `{"error": {"code": …}}`).
    pub(super) fn read(headers: &HeaderMap, body: &[u8]) -> Self {
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.pointer("/error/code")?.as_str().map(str::to_string));
        let correlation_id = headers
            .get("x-ms-correlation-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        ArmError {
            code,
            correlation_id,
        }
    }
}

/// A URL as logs show it: without the query (api-version, skip tokens), so
/// that one failure repeated reads the same and is logged once.
pub(super) fn shown(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_string()
}

/// A request's answer: status, headers and the whole body.
pub type Answer = (StatusCode, HeaderMap, Bytes);

/// Tries of one request at most, for ARM and Entra ID: one and three
/// retries, as Azure's SDKs do.
const MAX_TRIES: u32 = 4;

/// The first retry's wait, doubled for each next one (0.8, 1.6, 3.2 s),
/// each with a fifth of jitter either way so that clients throttled
/// together do not come back together.
const BACKOFF: Duration = Duration::from_millis(800);

/// Longest `Retry-After` waited for within a round; a longer one ends the
/// request, and the next round waits for it instead.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// Longest `Retry-After` the next round waits for: past it, a round in an
/// hour tells more.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// IMDS answers 410 while it updates itself, for up to 70 s (Microsoft
/// Learn, "Use managed identities on a virtual machine to acquire an access
/// token": error handling): tried again until this long after the first try.
const IMDS_GONE_FOR: Duration = Duration::from_secs(70);

/// Who a request goes to, which says whether it may go through a proxy
/// and when it is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// ARM or Entra ID: through `HTTPS_PROXY` unless `NO_PROXY` says not;
    /// tried again on 408, 429, 500, 502, 503, 504 and a connection that
    /// fails or does not answer.
    Azure,
    /// The VM's IMDS, a link-local address: never through a proxy; tried
    /// again on 404 (the identity not yet there), 408, 429, 5xx and a
    /// failed connection, and on 410 for [`IMDS_GONE_FOR`].
    Imds,
}

impl Route {
    /// How long to wait before try `tries + 1`, if there is to be one,
    /// after `outcome`; `since` is how long ago the first try started;
    /// `lasting`: a failure that another try would only repeat (a
    /// certificate not trusted).
    fn again(
        self,
        tries: u32,
        since: Duration,
        outcome: &Result<Answer, Failure>,
        lasting: bool,
    ) -> Option<Duration> {
        let status = match outcome {
            Ok((status, ..)) => Some(status.as_u16()),
            Err(Failure::Network { .. } | Failure::Timeout { .. }) if !lasting => None,
            Err(_) => return None,
        };
        let wait = match outcome {
            Ok((_, headers, _)) => match retry_after(headers) {
                Some(asked) if asked > MAX_RETRY_WAIT => return None,
                Some(asked) => asked,
                None => backoff(tries),
            },
            Err(_) => backoff(tries),
        };
        let retried = match (self, status) {
            (Route::Imds, Some(410)) => return (since + wait <= IMDS_GONE_FOR).then_some(wait),
            (_, None) => true,
            (Route::Azure, Some(s)) => matches!(s, 408 | 429 | 500 | 502 | 503 | 504),
            (Route::Imds, Some(s)) => matches!(s, 404 | 408 | 429 | 500..=599),
        };
        (retried && tries < MAX_TRIES).then_some(wait)
    }
}

/// The wait after try `tries` (1 for the first): [`BACKOFF`] doubled for
/// each try before it, at most three times, with jitter.
fn backoff(tries: u32) -> Duration {
    let base = BACKOFF * 2u32.pow(tries.clamp(1, 3) - 1);
    base.mul_f64(rand::random_range(0.8..1.2))
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3; Azure sends seconds, not
/// dates), at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// When a request last got an answer: a round ends as failed only when
/// none has for a while, however long it has run.
struct Progress(Mutex<Instant>);

impl Progress {
    fn mark(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn last(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `work`, unless no request got an answer for `stall` (counted from
    /// now at the latest).
    async fn unless_stalled<T>(
        &self,
        stall: Duration,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        self.mark();
        let watch = async {
            loop {
                let due = self.last() + stall;
                if Instant::now() >= due {
                    return;
                }
                tokio::time::sleep_until(due.into()).await;
            }
        };
        tokio::select! {
            r = work => r,
            () = watch => Err(Failure::Round(stall)),
        }
    }
}

type Pool = Client<HttpsConnector<Connector>, Full<Bytes>>;

/// The HTTP clients, with their per-request deadline.
pub struct Http {
    /// ARM and Entra ID, through the environment's proxy if any.
    azure: Pool,
    /// IMDS, never through a proxy: the token must not leave the VM.
    imds: Pool,
    /// Why https cannot be trusted as configured (`ca_file` unreadable):
    /// every https request fails saying so.
    tls_problem: Option<String>,
    timeout: Duration,
    /// Requests sent again (`amldns_azure_retries_total`).
    retries: IntCounter,
    progress: Progress,
}

impl Http {
    /// https checked against the roots of [`trust`]; plain http only where
    /// the config's endpoints say so (IMDS is http by design; stand-ins in
    /// tests).
    pub fn new(cfg: &AzureConfig, retries: IntCounter) -> Self {
        let (tls, tls_problem) = match trust::client_config(cfg.ca_file.as_deref()) {
            Ok(tls) => (tls, None),
            Err(why) => (
                trust::client_config(None).expect("the built-in roots"),
                Some(why),
            ),
        };
        let pool = |proxy| {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls.clone())
                .https_or_http()
                .enable_http1()
                .wrap_connector(Connector::new(proxy));
            Client::builder(TokioExecutor::new()).build(https)
        };
        Http {
            azure: pool(Proxy::from_env().map(Arc::new)),
            imds: pool(None),
            tls_problem,
            timeout: cfg.timeout,
            retries,
            progress: Progress(Mutex::new(Instant::now())),
        }
    }

    /// The per-request deadline, which a token command also gets.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `work` (a round), failed once no request has had an answer for
    /// `stall`: a long round that still advances is never cut off.
    pub async fn unless_stalled<T>(
        &self,
        stall: Duration,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        self.progress.unless_stalled(stall, work).await
    }

    /// Sends what `next` makes, again as `route` says while it fails in a
    /// way that may pass; returns the last answer. `next` is called before
    /// each try (to wait for its turn, to get a token).
    pub async fn send<F, Fut>(&self, route: Route, mut next: F) -> Result<Answer, Failure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Request<Full<Bytes>>, Failure>>,
    {
        let first = Instant::now();
        let mut tries = 0;
        loop {
            let req = next().await?;
            let url = shown(&req.uri().to_string());
            tries += 1;
            let (outcome, lasting) = self.once(route, req).await;
            let Some(wait) = route.again(tries, first.elapsed(), &outcome, lasting) else {
                return outcome;
            };
            debug!(
                url,
                tries,
                wait_ms = wait.as_millis() as u64,
                answer = %match &outcome {
                    Ok((status, ..)) => status.to_string(),
                    Err(e) => e.to_string(),
                },
                "trying again"
            );
            self.retries.inc();
            tokio::time::sleep(wait).await;
        }
    }

    /// One try: the status, headers and whole body; and whether a failure
    /// is one that another try would only repeat.
    async fn once(
        &self,
        route: Route,
        req: Request<Full<Bytes>>,
    ) -> (Result<Answer, Failure>, bool) {
        let url = shown(&req.uri().to_string());
        if let Some(why) = &self.tls_problem
            && req.uri().scheme_str() == Some("https")
        {
            let failure = Failure::Network {
                url,
                why: why.clone(),
            };
            return (Err(failure), true);
        }
        let mut lasting = false;
        let client = match route {
            Route::Azure => &self.azure,
            Route::Imds => &self.imds,
        };
        let exchange = async {
            let resp = client.request(req).await.map_err(|e| {
                lasting = is_tls(&e);
                Failure::Network {
                    url: url.clone(),
                    why: error_chain(&e),
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| Failure::Network {
                    url: url.clone(),
                    why: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            self.progress.mark();
            Ok((parts.status, parts.headers, body))
        };
        let outcome = tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                })
            });
        (outcome, lasting)
    }
}

/// Whether TLS refused the connection (the certificate, the protocol):
/// rustls's error somewhere in hyper's causes, which hold it inside I/O
/// errors (an I/O error's `source` skips what it wraps: `get_ref` has it).
fn is_tls(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

/// hyper's errors say little at the top ("client error (Connect)"): the
/// causes say what happened.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_read_the_same_each_time() {
        assert_eq!(
            shown("http://127.0.0.1:1/subscriptions/s/x?api-version=1&$skipToken=abc"),
            "http://127.0.0.1:1/subscriptions/s/x"
        );
        let f = Failure::Throttled {
            url: "u".into(),
            retry_after: Some(Duration::from_secs(3)),
            arm: ArmError::default(),
        };
        assert_eq!(f.kind(), AzureResult::Throttled);
        assert_eq!(f.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(
            Failure::Round(Duration::from_secs(600)).kind(),
            AzureResult::Timeout
        );
        let denied = |status| Failure::Denied {
            url: "u".into(),
            status,
            arm: ArmError::default(),
        };
        assert!(denied(401).to_string().contains("tenant_id"));
        assert!(denied(403).to_string().contains("Reader"));
    }

    fn answered(status: u16, retry_after: Option<&str>) -> Result<Answer, Failure> {
        let mut h = HeaderMap::new();
        if let Some(r) = retry_after {
            h.insert(RETRY_AFTER, r.parse().unwrap());
        }
        Ok((StatusCode::from_u16(status).unwrap(), h, Bytes::new()))
    }

    #[test]
    fn what_is_tried_again_and_after_how_long() {
        let now = Duration::ZERO;
        let refused = Err(Failure::Network {
            url: "u".into(),
            why: "connection refused".into(),
        });
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(
                Route::Azure
                    .again(1, now, &answered(s, None), false)
                    .is_some(),
                "{s}"
            );
        }
        for s in [200, 400, 401, 403, 404, 410, 501] {
            assert_eq!(
                Route::Azure.again(1, now, &answered(s, None), false),
                None,
                "{s}"
            );
        }
        assert!(Route::Azure.again(1, now, &refused, false).is_some());
        // Four tries at most: the fourth failing is the answer.
        assert!(
            Route::Azure
                .again(3, now, &answered(503, None), false)
                .is_some()
        );
        assert_eq!(
            Route::Azure.again(4, now, &answered(503, None), false),
            None
        );
        // Retry-After is waited for, up to a minute; past that, not retried.
        assert_eq!(
            Route::Azure.again(1, now, &answered(429, Some("0")), false),
            Some(Duration::ZERO)
        );
        assert_eq!(
            Route::Azure.again(1, now, &answered(429, Some("7")), false),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            Route::Azure.again(1, now, &answered(429, Some("61")), false),
            None
        );
        // The backoff doubles, with jitter, from about 0.8 s.
        for (tries, mid) in [(1, 800), (2, 1600), (3, 3200)] {
            let w = Route::Azure
                .again(tries, now, &answered(500, None), false)
                .unwrap();
            let mid = Duration::from_millis(mid);
            assert!(w >= mid.mul_f64(0.79) && w <= mid.mul_f64(1.21), "{w:?}");
        }
        // IMDS: 404 and every 5xx; 410 for 70 s, however many tries.
        for s in [404, 408, 429, 500, 501, 503, 599] {
            assert!(
                Route::Imds
                    .again(1, now, &answered(s, None), false)
                    .is_some(),
                "{s}"
            );
        }
        assert_eq!(Route::Imds.again(4, now, &answered(500, None), false), None);
        assert_eq!(Route::Imds.again(1, now, &answered(400, None), false), None);
        let gone = answered(410, Some("1"));
        assert!(
            Route::Imds
                .again(20, Duration::from_secs(60), &gone, false)
                .is_some()
        );
        assert_eq!(
            Route::Imds.again(20, Duration::from_secs(70), &gone, false),
            None
        );
        assert!(Route::Imds.again(1, now, &refused, false).is_some());
        // A certificate not trusted stays so: not tried again.
        assert_eq!(Route::Azure.again(1, now, &refused, true), None);
        assert_eq!(Route::Imds.again(1, now, &refused, true), None);
    }

    #[test]
    fn retry_after_in_seconds_and_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "17".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(17)));
        h.insert(RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3600)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    /// A round longer than the stall limit that keeps getting answers ends
    /// on its own; one that gets none ends at the limit.
    #[tokio::test]
    async fn only_a_round_without_answers_is_cut_off() {
        let p = Progress(Mutex::new(Instant::now()));
        let stall = Duration::from_secs(1);
        let advancing = async {
            for _ in 0..30 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                p.mark();
            }
            Ok("done")
        };
        assert_eq!(p.unless_stalled(stall, advancing).await, Ok("done"));
        let start = Instant::now();
        let silent = std::future::pending::<Result<(), Failure>>();
        assert_eq!(
            p.unless_stalled(stall, silent).await,
            Err(Failure::Round(stall))
        );
        assert!(start.elapsed() >= stall);
    }
}
