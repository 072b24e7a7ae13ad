//! Azure Resource Manager: paced, authorized GETs of resources and of
//! paged lists, Resource Graph's query POSTs, what each answer's status
//! means, and which URLs the token may go to.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, USER_AGENT};
use hyper::{Method, Request, Uri};
use prometheus::IntCounter;
use serde_json::Value;

use super::http::{ArmError, Failure, Http, Route, retry_after, shown};
use super::token::Tokens;

/// A list with more pages than this is looping (with a new link each
/// time), not long: ARM pages hold 100 entries or more.
const MAX_PAGES: usize = 10_000;

/// A round ends as failed once no request has had an answer for this
/// long; a round that still gets answers runs as long as it needs (10,000
/// private workspaces take hours at the default pacing).
const ROUND_STALL: Duration = Duration::from_secs(600);

/// ARM refills a subscription's read bucket at 25 per second (Microsoft
/// Learn, "Understand how Azure Resource Manager throttles requests").
const ARM_REFILL_PER_SECOND: u32 = 25;

/// Below this many reads left in ARM's bucket, reads slow down in
/// proportion, to the refill rate at this mark and to one per second near
/// empty, so that a round never drains what other readers of the
/// subscription need.
const LOW_READS: u32 = 100;

/// Resource Graph: with this few queries left in its window, the next one
/// waits for the window to reset.
const LOW_QUERIES: u32 = 1;

/// Resource Graph's window, when it does not say when it resets.
const QUOTA_WINDOW: Duration = Duration::from_secs(5);

const USER_AGENT_VALUE: &str = concat!("amldns/", env!("CARGO_PKG_VERSION"));

/// Azure Resource Manager at one endpoint, with one identity.
pub struct Arm {
    http: Http,
    /// `scheme://host[:port][/path]` as configured, no final `/`.
    base: String,
    /// The scheme, host and port the token may go to, and the path under
    /// which everything is asked.
    origin: Origin,
    tokens: Tokens,
    /// Time between two reads: requests are paced, not bursted, so that a
    /// round of 1,000 workspaces stays under ARM's read limits.
    spacing: Duration,
    /// The longer spacing ARM's last answer asked for, if any.
    budget: Mutex<Option<Duration>>,
    /// Reads spaced further for it (`amldns_azure_reads_slowed_total`).
    slowed: IntCounter,
    /// When the next read may start.
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Arm {
    pub fn new(
        base: &str,
        http: Http,
        tokens: Tokens,
        reads_per_second: u32,
        slowed: IntCounter,
    ) -> Self {
        Arm {
            http,
            base: base.to_string(),
            origin: Origin::of(base).unwrap_or_default(),
            tokens,
            spacing: Duration::from_secs(1) / reads_per_second.max(1),
            budget: Mutex::new(None),
            slowed,
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// `round`, failed once no request has had an answer for
    /// [`ROUND_STALL`].
    pub async fn bounded<T>(
        &self,
        round: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        self.http.unless_stalled(ROUND_STALL, round).await
    }

    /// Waits for this read's turn.
    async fn pace(&self) {
        let budget = *self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        let spacing = match budget {
            Some(b) if b > self.spacing => {
                self.slowed.inc();
                b
            }
            _ => self.spacing,
        };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + spacing;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// The URL of `path` (a resource id from an answer, or a path made
    /// here) at `api_version`; only an ARM path is put after the endpoint,
    /// so that no id can move the request (and the token) elsewhere.
    fn url(&self, path: &str, api_version: &str) -> Result<String, Failure> {
        if !arm_path(path) {
            return Err(Failure::malformed(
                path,
                "not an ARM resource path (/subscriptions/… or /providers/…): not asked",
            ));
        }
        Ok(format!("{}{path}?api-version={api_version}", self.base))
    }

    /// GETs `path` (a resource id, or a path under the endpoint) at
    /// `api_version`; a resource that is gone is [`Failure::NotFound`].
    pub async fn get(&self, path: &str, api_version: &str) -> Result<Value, Failure> {
        self.get_url(&self.url(path, api_version)?).await
    }

    /// Every entry of a list, following `nextLink` (ARM pages its lists)
    /// only where the token may go, and never twice: a list that comes
    /// back to a page it gave fails instead of growing for ever.
    pub async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>, Failure> {
        let mut url = self.url(path, api_version)?;
        let mut out = Vec::new();
        let mut followed = HashSet::new();
        let mut skip_tokens = HashSet::new();
        followed.insert(Origin::key(&url, path));
        for _ in 0..MAX_PAGES {
            let mut page = self.get_url(&url).await?;
            match page.get_mut("value").map(Value::take) {
                Some(Value::Array(items)) => out.extend(items),
                _ => return Err(Failure::malformed(&url, "a list without a \"value\" array")),
            }
            let next = match page.get("nextLink") {
                Some(Value::String(next)) if !next.is_empty() => next,
                Some(Value::String(_) | Value::Null) | None => return Ok(out),
                Some(_) => return Err(Failure::malformed(&url, "nextLink is not a string")),
            };
            let Some(next_path) = self.origin.path_of(next).filter(|p| arm_path(p)) else {
                return Err(Failure::malformed(
                    &url,
                    format!("nextLink {} leaves {}", shown(next), self.base),
                ));
            };
            let skip = skip_token(next);
            if !followed.insert(Origin::key(next, &next_path))
                || skip.is_some_and(|t| !skip_tokens.insert(t))
            {
                return Err(Failure::malformed(
                    &url,
                    format!("nextLink {} comes back to a page already read", shown(next)),
                ));
            }
            url = next.clone();
        }
        Err(Failure::malformed(
            &url,
            format!("more than {MAX_PAGES} pages"),
        ))
    }

    /// POSTs `body` (JSON) to `path` at `api_version`: a query that reads
    /// (Resource Graph's), paced, retried and budgeted like a GET.
    pub async fn post(
        &self,
        path: &str,
        api_version: &str,
        body: &Value,
    ) -> Result<Value, Failure> {
        let url = self.url(path, api_version)?;
        self.send(Method::POST, &url, Bytes::from(body.to_string()))
            .await
    }

    async fn get_url(&self, url: &str) -> Result<Value, Failure> {
        self.send(Method::GET, url, Bytes::new()).await
    }

    /// One authorized request (an empty `body` sends none), and what its
    /// answer means.
    async fn send(&self, method: Method, url: &str, body: Bytes) -> Result<Value, Failure> {
        let (status, headers, body) = self
            .http
            .send(Route::Azure, || async {
                let token = self.tokens.get(&self.http).await?;
                self.pace().await;
                let mut req = Request::builder()
                    .method(method.clone())
                    .uri(url)
                    .header(AUTHORIZATION, format!("Bearer {token}"))
                    .header(ACCEPT, "application/json")
                    .header(USER_AGENT, USER_AGENT_VALUE);
                if !body.is_empty() {
                    req = req.header(CONTENT_TYPE, "application/json");
                }
                req.body(Full::new(body.clone()))
                    .map_err(|e| Failure::malformed(url, format!("not a URL: {e}")))
            })
            .await?;
        *self.budget.lock().unwrap_or_else(PoisonError::into_inner) = budget_spacing(&headers);
        let url = shown(url);
        let arm = || ArmError::read(&headers, &body);
        match status.as_u16() {
            200 => serde_json::from_slice(&body).map_err(|e| Failure::Malformed {
                url,
                why: format!("not JSON: {e}"),
            }),
            404 => Err(Failure::NotFound { url, arm: arm() }),
            s @ (401 | 403) => {
                // A token ARM does not take (401) is dropped: the next request
                // gets a new one. A 403 is a role missing on that resource (a
                // managed network's endpoint, say): the token is good, and
                // asking IMDS again for each such resource would only run
                // into its rate limit.
                if s == 401 {
                    self.tokens.forget().await;
                }
                Err(Failure::Denied {
                    url,
                    status: s,
                    arm: arm(),
                })
            }
            429 => Err(Failure::Throttled {
                url,
                retry_after: retry_after(&headers),
                arm: arm(),
            }),
            status => Err(Failure::Unavailable {
                url,
                status,
                arm: arm(),
            }),
        }
    }
}

/// A resource id fit to follow the endpoint in a URL: an absolute ARM path
/// and nothing that could end the path, reach another host or climb out
/// of it.
fn arm_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    (lower.starts_with("/subscriptions/") || lower.starts_with("/providers/"))
        && !path.contains(['@', '?', '#', '\\'])
        && !path.split('/').any(|seg| seg == "..")
        && !path.chars().any(|c| c.is_ascii_control() || c == ' ')
}

/// A `nextLink`'s `$skipToken`, which names the page it asks for.
fn skip_token(url: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|kv| {
            kv.strip_prefix("$skipToken=")
                .or(kv.strip_prefix("%24skipToken="))
        })
        .map(str::to_string)
}

/// Scheme, host and port, compared as URLs mean them: case-insensitive,
/// and the scheme's default port the same as none; and the endpoint's path.
#[derive(Debug, Default, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl Origin {
    fn of(url: &str) -> Option<Self> {
        let uri: Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let authority = uri.authority()?.as_str();
        if authority.contains('@') {
            return None;
        }
        let port = uri.port_u16().or(match scheme.as_str() {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        })?;
        Some(Origin {
            host: uri.host()?.to_ascii_lowercase(),
            scheme,
            port,
            path: uri.path().trim_end_matches('/').to_string(),
        })
    }

    /// The path below the endpoint's of `url`, when `url` is at this origin.
    fn path_of(&self, url: &str) -> Option<String> {
        let o = Origin::of(url)?;
        let below = o.path.strip_prefix(&self.path)?;
        (o.scheme == self.scheme && o.host == self.host && o.port == self.port)
            .then(|| below.to_string())
    }

    /// What makes two links the same page: the path and the query.
    fn key(url: &str, path: &str) -> String {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        format!("{}?{query}", path.to_ascii_lowercase())
    }
}

/// How long to space reads after an answer that shows ARM's budget for
/// this identity running low: `x-ms-ratelimit-remaining-subscription-reads`
/// for ARM, `x-ms-user-quota-remaining` (and `…-resets-after`, `hh:mm:ss`)
/// for Resource Graph.
fn budget_spacing(headers: &HeaderMap) -> Option<Duration> {
    let number =
        |name: &str| -> Option<u32> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    if let Some(left) = number("x-ms-ratelimit-remaining-subscription-reads")
        && left < LOW_READS
    {
        let per_second = (ARM_REFILL_PER_SECOND * left / LOW_READS).max(1);
        return Some(Duration::from_secs(1) / per_second);
    }
    if let Some(left) = number("x-ms-user-quota-remaining")
        && left <= LOW_QUERIES
    {
        let reset = headers
            .get("x-ms-user-quota-resets-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.trim()
                    .split(':')
                    .try_fold(0u64, |acc, part| Some(acc * 60 + part.parse::<u64>().ok()?))
            })
            .map_or(QUOTA_WINDOW, Duration::from_secs);
        return Some(reset.min(Duration::from_secs(60)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arm_paths_follow_the_endpoint() {
        let pe = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/privateEndpoints/p";
        assert!(arm_path(pe));
        assert!(arm_path(
            "/providers/Microsoft.Management/managementGroups/m"
        ));
        for bad in [
            "@127.0.0.2:18081/subscriptions/s/x",
            "0/subscriptions/s/x",
            "/subscriptions/s/../../x",
            "/subscriptions/s/x?api-version=1",
            "/subscriptions/s/x#f",
            "/subscriptions/s@127.0.0.2/x",
            "//127.0.0.2/subscriptions/s",
            "subscriptions/s",
            "",
        ] {
            assert!(!arm_path(bad), "{bad}");
        }
    }

    #[test]
    fn next_links_at_the_same_origin_only() {
        let base = Origin::of("https://management.azure.com").unwrap();
        let path = |u: &str| base.path_of(u);
        assert_eq!(
            path("https://management.azure.com:443/subscriptions/s/x?$skipToken=2").as_deref(),
            Some("/subscriptions/s/x")
        );
        assert_eq!(
            path("HTTPS://Management.Azure.COM/subscriptions/s").as_deref(),
            Some("/subscriptions/s")
        );
        for elsewhere in [
            "https://management.azure.com:8443/subscriptions/s",
            "http://management.azure.com/subscriptions/s",
            "https://management.azure.com.evil.example/subscriptions/s",
            "https://management.azure.com@evil.example/subscriptions/s",
            "https://evil.example/subscriptions/s",
            "/subscriptions/s",
        ] {
            assert_eq!(path(elsewhere), None, "{elsewhere}");
        }
        let local = Origin::of("http://127.0.0.1:8080").unwrap();
        assert!(
            local
                .path_of("http://127.0.0.1:8080/subscriptions/s")
                .is_some()
        );
        assert!(local.path_of("http://127.0.0.1/subscriptions/s").is_none());
        let under = Origin::of("https://arm.example/prefix/").unwrap();
        assert_eq!(
            under
                .path_of("https://arm.example:443/prefix/subscriptions/s")
                .as_deref(),
            Some("/subscriptions/s")
        );
        assert_eq!(under.path_of("https://arm.example/subscriptions/s"), None);
        assert_eq!(
            skip_token("https://a/x?api-version=1&$skipToken=abc").as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn reads_slow_down_as_arms_budget_runs_low() {
        let with = |k: &'static str, v: &str| {
            let mut h = HeaderMap::new();
            h.insert(k, v.parse().unwrap());
            budget_spacing(&h)
        };
        let reads = "x-ms-ratelimit-remaining-subscription-reads";
        assert_eq!(with(reads, "11999"), None);
        assert_eq!(with(reads, "100"), None);
        assert_eq!(with(reads, "80"), Some(Duration::from_millis(50)));
        assert_eq!(with(reads, "8"), Some(Duration::from_millis(500)));
        assert_eq!(with(reads, "0"), Some(Duration::from_secs(1)));
        let graph = "x-ms-user-quota-remaining";
        assert_eq!(with(graph, "14"), None);
        assert_eq!(with(graph, "1"), Some(QUOTA_WINDOW));
        let mut h = HeaderMap::new();
        h.insert(graph, "0".parse().unwrap());
        h.insert("x-ms-user-quota-resets-after", "00:00:03".parse().unwrap());
        assert_eq!(budget_spacing(&h), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn reads_are_paced() {
        let config = crate::config::parse(
            std::path::Path::new("t.toml"),
            "[azure]\nsubscriptions = [\"0b1f6471-1bf0-4dda-aec3-111122223333\"]\n\
             max_reads_per_second = 50\n",
        )
        .unwrap();
        let cfg = config.azure.unwrap();
        let counter = || IntCounter::new("t", "t").unwrap();
        let arm = Arm::new(
            "http://127.0.0.1:9",
            Http::new(&cfg, counter()),
            Tokens::new(&cfg),
            cfg.max_reads_per_second,
            counter(),
        );
        let start = std::time::Instant::now();
        for _ in 0..6 {
            arm.pace().await;
        }
        // The first at once, then one every 20 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(arm.slowed.get(), 0);
    }
}
