//! ARM access tokens from the three sources `[azure] auth` names (a managed
//! identity through IMDS, workload identity, the Azure CLI), each asked only
//! when the cached token is near its end. Written here rather than taken
//! from `azure_identity`: that crate brings `azure_core`'s pipeline and a
//! second HTTP client (reqwest by default) for three small requests that
//! hyper, already here, makes; and here the IMDS address comes from the
//! config, so tests point it at a loopback stand-in.

use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request};
use serde_json::Value;

use super::http::{Failure, Http, Route};
use crate::config::{AzureAuth, AzureConfig};
use crate::names::Cloud;

/// A token is replaced this long before it ends, so that no request of a
/// round carries one that expires on the way.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);

/// When a source does not say how long its token lasts (an old `az`).
const ASSUMED_LIFETIME: Duration = Duration::from_secs(600);

/// IMDS's token API version (Microsoft Learn, "How to use managed identities
/// for Azure resources on an Azure VM to acquire an access token").
const IMDS_API_VERSION: &str = "2018-02-01";

/// Where tokens come from, and the one in hand.
pub struct Tokens {
    source: AzureAuth,
    /// The ARM resource of the cloud (the token's audience).
    resource: &'static str,
    cloud: Cloud,
    client_id: Option<String>,
    tenant_id: Option<String>,
    imds: String,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl Tokens {
    pub fn new(cfg: &AzureConfig) -> Self {
        Tokens {
            source: cfg.auth,
            resource: cfg.cloud.arm_audience(),
            cloud: cfg.cloud,
            client_id: cfg.client_id.clone(),
            tenant_id: cfg.tenant_id.clone(),
            imds: cfg.imds_endpoint.clone(),
            cached: tokio::sync::Mutex::new(None),
        }
    }

    /// A token for ARM: the cached one while it lasts, else a new one.
    pub async fn get(&self, http: &Http) -> Result<String, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some((token, until)) = &*cached
            && Instant::now() + REFRESH_BEFORE < *until
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = match self.source {
            AzureAuth::ManagedIdentity => self.imds(http).await?,
            AzureAuth::WorkloadIdentity => self.workload(http).await?,
            AzureAuth::Cli => self.cli(http).await?,
        };
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    /// Drops the cached token (ARM refused it).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    /// `GET {imds}/metadata/identity/oauth2/token` with `Metadata: true`,
    /// which IMDS requires so that a server-side request forgery through
    /// some proxy cannot fetch the token.
    async fn imds(&self, http: &Http) -> Result<(String, Duration), Failure> {
        let mut url = format!(
            "{}/metadata/identity/oauth2/token?api-version={IMDS_API_VERSION}&resource={}",
            self.imds,
            encode(self.resource)
        );
        if let Some(id) = &self.client_id {
            url.push_str("&client_id=");
            url.push_str(&encode(id));
        }
        let req = || {
            Request::builder()
                .method(Method::GET)
                .uri(&url)
                .header("Metadata", "true")
                .body(Full::default())
        };
        token_answer(http, Route::Imds, req, "IMDS").await
    }

    /// Workload identity (AKS): the service account's projected token,
    /// exchanged at Entra ID for an ARM token (OAuth 2.0 client
    /// credentials with a JWT assertion, RFC 7523 §2.2). The webhook sets
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_FEDERATED_TOKEN_FILE`
    /// and `AZURE_AUTHORITY_HOST`; the file is read each time, as the
    /// kubelet rotates it.
    async fn workload(&self, http: &Http) -> Result<(String, Duration), Failure> {
        let env = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| {
                    Failure::Token(format!(
                        "workload identity: {k} is not set (is the pod labelled \
                         azure.workload.identity/use: \"true\"?)"
                    ))
                })
        };
        let client_id = match &self.client_id {
            Some(c) => c.clone(),
            None => env("AZURE_CLIENT_ID")?,
        };
        let tenant = match &self.tenant_id {
            Some(t) => t.clone(),
            None => env("AZURE_TENANT_ID")?,
        };
        let file = env("AZURE_FEDERATED_TOKEN_FILE")?;
        let authority = std::env::var("AZURE_AUTHORITY_HOST")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| self.cloud.authority().to_string());
        // A token of a few KiB on a local (projected) volume.
        let assertion = std::fs::read_to_string(&file)
            .map_err(|e| Failure::Token(format!("cannot read {file}: {e}")))?;
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            authority.trim_end_matches('/'),
            encode(&tenant)
        );
        let scope = format!("{}.default", self.resource);
        let body = [
            ("client_id", client_id.as_str()),
            ("scope", scope.as_str()),
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion.trim()),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
        let body = Bytes::from(body);
        let req = || {
            Request::builder()
                .method(Method::POST)
                .uri(&url)
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(Full::new(body.clone()))
        };
        token_answer(http, Route::Azure, req, "Entra ID").await
    }

    /// `az account get-access-token`: the signed-in user's token, for
    /// `amldns discover` on a workstation.
    async fn cli(&self, http: &Http) -> Result<(String, Duration), Failure> {
        let run = tokio::process::Command::new("az")
            .args([
                "account",
                "get-access-token",
                "--resource",
                self.resource,
                "--output",
                "json",
            ])
            .args(self.tenant_id.iter().flat_map(|t| ["--tenant", t.as_str()]))
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(http.timeout(), run)
            .await
            .map_err(|_| Failure::Token("az account get-access-token took too long".into()))?
            .map_err(|e| Failure::Token(format!("cannot run az: {e}")))?;
        if !out.status.success() {
            return Err(Failure::Token(format!(
                "az account get-access-token failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let v: Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| Failure::Token(format!("az printed no JSON: {e}")))?;
        let token = v["accessToken"]
            .as_str()
            .ok_or_else(|| Failure::Token("az printed no accessToken".into()))?;
        // `expires_on` (Unix seconds) in az 2.54 and later.
        let lifetime = number(&v["expires_on"])
            .and_then(|at| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_secs();
                at.checked_sub(now)
            })
            .map_or(ASSUMED_LIFETIME, Duration::from_secs);
        Ok((token.to_string(), lifetime))
    }
}

/// `{access_token, expires_in}` from IMDS or Entra ID, asked with what
/// `req` makes, as many times as `route` allows.
async fn token_answer(
    http: &Http,
    route: Route,
    req: impl Fn() -> hyper::http::Result<Request<Full<Bytes>>>,
    who: &str,
) -> Result<(String, Duration), Failure> {
    let (status, _, body) = http
        .send(route, || {
            let r = req().map_err(|e| Failure::Token(format!("{who}: {e}")));
            async { r }
        })
        .await
        .map_err(|e| match e {
            Failure::Token(_) => e,
            e => Failure::Token(format!("{who}: {e}")),
        })?;
    if !status.is_success() {
        return Err(Failure::Token(format!(
            "{who} answered HTTP {}: {}",
            status.as_u16(),
            String::from_utf8_lossy(&body[..body.len().min(300)]).trim()
        )));
    }
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| Failure::Token(format!("{who} sent no JSON: {e}")))?;
    let token = v["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::Token(format!("{who} sent no access_token")))?;
    let lifetime = number(&v["expires_in"]).map_or(ASSUMED_LIFETIME, Duration::from_secs);
    Ok((token.to_string(), lifetime))
}

/// IMDS writes numbers as strings ("3599"), Entra ID as numbers.
fn number(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

/// Percent-encodes everything but RFC 3986 §2.3's unreserved characters.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_a_form() {
        assert_eq!(
            encode("https://management.azure.com/"),
            "https%3A%2F%2Fmanagement.azure.com%2F"
        );
        assert_eq!(encode("a b~c"), "a%20b~c");
    }

    #[test]
    fn lifetimes_as_numbers_or_strings() {
        assert_eq!(number(&serde_json::json!("3599")), Some(3599));
        assert_eq!(number(&serde_json::json!(86399)), Some(86399));
        assert_eq!(number(&serde_json::json!(null)), None);
    }
}
