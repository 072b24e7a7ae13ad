//! Azure Resource Manager: paced, authorized GETs of resources and of
//! paged lists, and what each answer's status means.

use std::time::Duration;

use http_body_util::Full;
use hyper::header::{ACCEPT, AUTHORIZATION, HeaderMap, RETRY_AFTER, USER_AGENT};
use hyper::{Method, Request};
use serde_json::Value;

use super::http::{ArmError, Failure, Http, shown};
use super::token::Tokens;

/// A list with more pages than this is looping (a `nextLink` that points
/// back), not long: ARM pages hold 100 entries or more.
const MAX_PAGES: usize = 10_000;

/// Longest `Retry-After` honoured: past it, a round in an hour tells more.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

const USER_AGENT_VALUE: &str = concat!("amldns/", env!("CARGO_PKG_VERSION"));

/// Azure Resource Manager at one endpoint, with one identity.
pub struct Arm {
    http: Http,
    /// `scheme://host[:port]`, no final `/`.
    base: String,
    tokens: Tokens,
    /// Time between two reads: requests are paced, not bursted, so that a
    /// round of 1,000 workspaces stays under ARM's read limits.
    spacing: Duration,
    /// When the next read may start.
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Arm {
    pub fn new(base: &str, http: Http, tokens: Tokens, reads_per_second: u32) -> Self {
        Arm {
            http,
            base: base.to_string(),
            tokens,
            spacing: Duration::from_secs(1) / reads_per_second.max(1),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for this read's turn.
    async fn pace(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.spacing;
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// GETs `path` (a resource id, or a path under the endpoint) at
    /// `api_version`; a resource that is gone is [`Failure::NotFound`].
    pub async fn get(&self, path: &str, api_version: &str) -> Result<Value, Failure> {
        self.get_url(&format!("{}{path}?api-version={api_version}", self.base))
            .await
    }

    /// Every entry of a list, following `nextLink` (ARM pages its lists).
    pub async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>, Failure> {
        let mut url = format!("{}{path}?api-version={api_version}", self.base);
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut page = self.get_url(&url).await?;
            match page.get_mut("value").map(Value::take) {
                Some(Value::Array(items)) => out.extend(items),
                _ => return Err(Failure::malformed(&url, "a list without a \"value\" array")),
            }
            match page.get("nextLink") {
                Some(Value::String(next)) if !next.is_empty() => {
                    // The token goes only where the config says ARM is.
                    if !next.starts_with(&format!("{}/", self.base)) {
                        return Err(Failure::malformed(
                            &url,
                            format!("nextLink {} leaves {}", shown(next), self.base),
                        ));
                    }
                    url = next.clone();
                }
                Some(Value::String(_) | Value::Null) | None => return Ok(out),
                Some(_) => return Err(Failure::malformed(&url, "nextLink is not a string")),
            }
        }
        Err(Failure::malformed(
            &url,
            format!("more than {MAX_PAGES} pages"),
        ))
    }

    async fn get_url(&self, url: &str) -> Result<Value, Failure> {
        let token = self.tokens.get(&self.http).await?;
        self.pace().await;
        let req = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(Full::default())
            .map_err(|e| Failure::malformed(url, format!("not a URL: {e}")))?;
        let (status, headers, body) = self.http.send(req).await?;
        let url = shown(url);
        let arm = || ArmError::read(&headers, &body);
        match status.as_u16() {
            200 => serde_json::from_slice(&body).map_err(|e| Failure::Malformed {
                url,
                why: format!("not JSON: {e}"),
            }),
            404 => Err(Failure::NotFound { url, arm: arm() }),
            s @ (401 | 403) => {
                // A token ARM refuses is not asked for again until it is
                // replaced: drop it, the next round gets a new one.
                self.tokens.forget().await;
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

/// `Retry-After` in seconds (RFC 9110 §10.2.3; ARM sends seconds, not dates).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_seconds_and_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "17".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(17)));
        h.insert(RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
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
        let arm = Arm::new(
            "http://127.0.0.1:9",
            Http::new(cfg.timeout),
            Tokens::new(&cfg),
            cfg.max_reads_per_second,
        );
        let start = std::time::Instant::now();
        for _ in 0..6 {
            arm.pace().await;
        }
        // The first at once, then one every 20 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }
}
