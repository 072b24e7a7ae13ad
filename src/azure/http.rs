//! The HTTP side of discovery: one hyper client (rustls on ring, HTTP/1.1)
//! for ARM and the token endpoints, every request bounded in time and size,
//! and the ways a request fails, in the words `/healthz` and the metrics use.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::metrics::AzureResult;

/// The largest answer read: a page of 100 workspaces is a few hundred KiB;
/// past this something is wrong, and it must not fill the memory.
const MAX_BODY: usize = 32 << 20;

/// Why a round failed; the last good discovery keeps serving (SPEC §8).
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
    #[error("the round took longer than {} s", .0.as_secs())]
    Round(Duration),
}

impl Failure {
    /// The `result` of `amldns_azure_sync_total` it counts as.
    pub fn kind(&self) -> AzureResult {
        match self {
            Failure::Token(_) => AzureResult::Token,
            Failure::Denied { .. } => AzureResult::Denied,
            Failure::NotFound { .. } => AzureResult::NotFound,
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

/// The HTTP client, with its per-request deadline.
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Http {
    /// https with the Mozilla roots built in, so that a container without a
    /// CA store still verifies ARM; plain http only where the config's
    /// endpoints say so (IMDS is http by design; stand-ins in tests).
    pub fn new(timeout: Duration) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        Http {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
        }
    }

    /// The per-request deadline, which a token command also gets.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req`; returns the status, headers and whole body.
    pub async fn send(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Failure> {
        let url = shown(&req.uri().to_string());
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| Failure::Network {
                    url: url.clone(),
                    why: error_chain(&e),
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
            Ok((parts.status, parts.headers, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                })
            })
    }
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
}
