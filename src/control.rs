//! Asking the running server: what `/status` reports, and the
//! client side of `amldns status|records|flush|explain --server URL`, in
//! the spirit of `unbound-control`. The server side is [`crate::http`];
//! the types here (and the query string) are what both sides read and
//! write, so a field cannot be spelled two ways.
//!
//! The client speaks plain HTTP/1.1 (hyper's client, one request per
//! connection): the metrics listener is an administrative interface on
//! loopback or a private network, not the internet.

use std::fmt;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HOST;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::azure::Skipped;
use crate::forward::UpstreamHealth;
use crate::reload::LastReload;

/// Where `--server` points when neither it nor `AMLDNS_SERVER` says: the
/// `[metrics] listen` of the example configuration.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:9153";

/// A request gets this long, connecting included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0:?} is not a server URL: expected http://HOST:PORT")]
    Url(String),
    #[error("cannot reach {server}: {why}")]
    Unreachable { server: String, why: String },
    #[error("{server} did not answer within {REQUEST_TIMEOUT:?}")]
    Timeout { server: String },
    /// The server answered with an error status.
    #[error("{server} answered {status}: {body}")]
    Status {
        server: String,
        status: u16,
        body: String,
    },
    #[error("{server} sent what amldns cannot read: {why}")]
    Reply { server: String, why: String },
}

/// `GET /status`: what the running server serves and how it fares.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ServerStatus {
    pub version: String,
    /// The config file it loads, and the SHA-256 of the text it served last.
    pub config: String,
    pub sha256: String,
    pub generation: u64,
    pub names: usize,
    /// Unix time the served table was loaded.
    pub loaded_at: f64,
    /// `None` until the first reload since the start.
    pub last_reload: Option<LastReload>,
    /// `ok` or `degraded` (as `/healthz`), and each problem by its source.
    pub health: String,
    pub problems: Vec<Problem>,
    pub upstreams: Vec<UpstreamHealth>,
    pub cache: CacheStatus,
    /// Azure discovery, when the config has `[azure]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureStatus>,
}

/// Azure discovery's state; its problem, if any, is among `problems`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AzureStatus {
    /// Subscriptions configured by id.
    pub subscriptions: usize,
    /// Management groups configured, each standing for the subscriptions
    /// under it.
    #[serde(default)]
    pub management_groups: usize,
    pub interval_s: u64,
    /// Workspaces the discovery being served holds.
    pub workspaces: usize,
    /// Unix time of the last round that worked; `None` before the first.
    pub last_success: Option<f64>,
    /// What the last round left out, and why: resources ARM refused or no
    /// longer has, workspaces that cannot be served.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// One thing keeping the server from serving what its sources say.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    /// `reload`, `azure`…
    pub source: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CacheStatus {
    pub entries: u64,
    /// `[upstream] cache_entries`; 0: no cache.
    pub capacity: u64,
    /// Forwarded questions answered from the cache, and not, since the start.
    pub hits: u64,
    pub misses: u64,
    /// hits / (hits + misses); `None` before any forwarded question.
    pub hit_rate: Option<f64>,
}

/// For a person: one fact a line, problems first.
impl fmt::Display for ServerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "amldns {}: {}", self.version, self.health)?;
        for p in &self.problems {
            writeln!(f, "  problem ({}): {}", p.source, p.reason)?;
        }
        writeln!(f, "config:      {} (sha256 {})", self.config, self.sha256)?;
        writeln!(
            f,
            "table:       generation {}, {}, loaded {}",
            self.generation,
            count(self.names as u64, "name"),
            ago(self.loaded_at)
        )?;
        match &self.last_reload {
            None => writeln!(f, "last reload: none since the start")?,
            Some(r) => {
                let result = match (&r.error, &r.changes) {
                    (Some(e), _) => format!("FAILED, generation {} serves: {e}", r.generation),
                    (None, Some(c)) => format!("ok, generation {}: {c}", r.generation),
                    (None, None) => format!("ok, nothing changed (generation {})", r.generation),
                };
                writeln!(f, "last reload: {} by {}: {result}", ago(r.at), r.trigger)?;
            }
        }
        for u in &self.upstreams {
            let state = match u.failing_for_s {
                None => "healthy".to_string(),
                Some(s) => format!("FAILING for {s:.0} s"),
            };
            let latency = u
                .mean_latency_ms
                .map_or("no answer yet".into(), |ms| format!("mean {ms:.1} ms"));
            writeln!(
                f,
                "upstream:    {} {state}, {}, {}, {latency}",
                u.addr,
                count(u.requests, "request"),
                count(u.errors, "error")
            )?;
        }
        let c = &self.cache;
        let rate = c.hit_rate.map_or("no forwarded questions yet".into(), |r| {
            format!("hit rate {:.1}%", r * 100.0)
        });
        writeln!(
            f,
            "cache:       {} of {} entries, {}, {}, {rate}",
            c.entries,
            c.capacity,
            count(c.hits, "hit"),
            if c.misses == 1 {
                "1 miss".into()
            } else {
                format!("{} misses", c.misses)
            }
        )?;
        if let Some(a) = &self.azure {
            let last = a
                .last_success
                .map_or("no round has worked yet".into(), |t| {
                    format!("last good round {}", ago(t))
                });
            let mut scope = Vec::new();
            if a.subscriptions > 0 {
                scope.push(count(a.subscriptions as u64, "subscription"));
            }
            if a.management_groups > 0 {
                scope.push(count(a.management_groups as u64, "management group"));
            }
            writeln!(
                f,
                "azure:       {} from {}, a round every {} s, {last}",
                count(a.workspaces as u64, "workspace"),
                scope.join(" and "),
                a.interval_s
            )?;
            // The first few; `--format json` has them all.
            const SHOWN: usize = 10;
            for s in a.skipped.iter().take(SHOWN) {
                writeln!(f, "  skipped:   {}: {}", s.resource, s.reason)?;
            }
            if a.skipped.len() > SHOWN {
                writeln!(f, "  skipped:   {} more", a.skipped.len() - SHOWN)?;
            }
        }
        Ok(())
    }
}

/// `unix` as seconds ago, for a person.
fn ago(unix: f64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    format!("{:.0} s ago", (now - unix).max(0.0))
}

/// `POST /cache/flush`'s reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Flushed {
    /// The name flushed (every type of it), or `None` for everything.
    pub name: Option<String>,
    /// Answers dropped.
    pub flushed: u64,
}

/// `key=value&…`, each value percent-encoded (RFC 3986 §2.1) but for the
/// unreserved characters; pairs without a value are left out.
pub fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let encode = |v: &str| -> String {
        v.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let s: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", encode((*v)?))))
        .collect();
    if s.is_empty() {
        String::new()
    } else {
        format!("?{}", s.join("&"))
    }
}

/// A request's query string, read against the parameters its path takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The value of `key`, percent-decoded; `None` when the request left it out.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads `query` (`key=value&…`, values percent-encoded) strictly: a
/// parameter `takes` does not list (names are case-sensitive), one given
/// twice or without a value, a malformed percent escape or a value that is
/// not UTF-8 is an error that names it. Never read as left out: a missing
/// `name` means "everything" to `/records` and `/cache/flush`.
pub fn query_params(query: Option<&str>, takes: &[&'static str]) -> Result<Params, String> {
    let mut params = Params::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let Some(key) = takes.iter().find(|t| **t == k) else {
            let known = match takes {
                [] => "no parameters".to_string(),
                _ => takes.join(", "),
            };
            return Err(format!("unknown parameter {k:?}: this path takes {known}"));
        };
        if params.get(key).is_some() {
            return Err(format!("{key} is given twice"));
        }
        if v.is_empty() {
            return Err(format!("{key} has no value"));
        }
        let value = percent_decode(v)
            .ok_or_else(|| format!("{key}={v:?} is not a percent-encoded UTF-8 value"))?;
        params.0.push((key, value));
    }
    Ok(params)
}

/// `None` for a `%` not followed by two hex digits, or bytes that are not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                let hex = std::str::from_utf8(&hex).ok()?;
                // from_str_radix alone would take "+1".
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                u8::from_str_radix(hex, 16).ok()?
            }
            b'+' => b' ',
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// The `host:port` of `server` (`http://host:port`, a final `/` allowed).
fn authority(server: &str) -> Result<&str, ControlError> {
    server
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| ControlError::Url(server.to_string()))
}

/// Sends one request to `server` and returns the body of a 2xx reply; any
/// other status is [`ControlError::Status`] with the server's words.
pub async fn request(
    server: &str,
    method: Method,
    path_and_query: &str,
) -> Result<String, ControlError> {
    let authority = authority(server)?;
    let unreachable = |why: String| ControlError::Unreachable {
        server: server.to_string(),
        why,
    };
    let exchange = async {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(conn);
        let req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header(HOST, authority)
            .body(Full::new(Bytes::new()))
            .map_err(|_| ControlError::Url(server.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if status.is_success() {
            Ok(body)
        } else {
            Err(ControlError::Status {
                server: server.to_string(),
                status: status.as_u16(),
                body: body.trim().to_string(),
            })
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout {
            server: server.to_string(),
        })?
}

/// [`request`], its JSON reply read as `T`.
pub async fn request_json<T: serde::de::DeserializeOwned>(
    server: &str,
    method: Method,
    path_and_query: &str,
) -> Result<T, ControlError> {
    let body = request(server, method, path_and_query).await?;
    serde_json::from_str(&body).map_err(|e| ControlError::Reply {
        server: server.to_string(),
        why: e.to_string(),
    })
}

/// Runs one client call to completion, for the command line.
pub fn block_on<T>(f: impl Future<Output = T>) -> std::io::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// `n` and `noun`, plural unless `n` is 1: "1 name", "2 names".
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_round_trip() {
        let q = query_string(&[
            ("name", Some("ci-1.eastus.instances.azureml.ms")),
            ("type", None),
            ("from", Some("fd00::1 x&y")),
        ]);
        assert_eq!(
            q,
            "?name=ci-1.eastus.instances.azureml.ms&from=fd00%3A%3A1%20x%26y"
        );
        let raw = q.strip_prefix('?');
        let p = query_params(raw, &["name", "type", "from"]).unwrap();
        assert_eq!(p.get("name"), Some("ci-1.eastus.instances.azureml.ms"));
        assert_eq!(p.get("from"), Some("fd00::1 x&y"));
        assert_eq!(p.get("type"), None);
        assert_eq!(query_params(None, &["name"]), Ok(Params::default()));
        assert_eq!(query_params(Some(""), &[]), Ok(Params::default()));
        assert_eq!(query_string(&[("name", None)]), "");
    }

    /// What the server cannot read is an error naming it, never "left out"
    /// (which would mean "everything").
    #[test]
    fn bad_query_strings_are_errors() {
        let cases: [(&str, &[&'static str], &str); 10] = [
            ("name=keep1.lab%ZZ", &["name"], "name="),
            ("name=%zz", &["name"], "name="),
            ("name=%+1", &["name"], "name="),
            ("name=a%2", &["name"], "name="),
            ("name=%FF", &["name"], "name="),
            ("Name=x", &["name"], "\"Name\""),
            ("foo=1", &[], "takes no parameters"),
            ("name=a&name=b", &["name"], "twice"),
            ("name", &["name"], "no value"),
            ("name=", &["name"], "no value"),
        ];
        for (query, takes, says) in cases {
            let why = query_params(Some(query), takes).unwrap_err();
            assert!(why.contains(says), "{query}: {why}");
        }
    }

    #[test]
    fn server_urls() {
        assert_eq!(
            authority("http://127.0.0.1:9153/").unwrap(),
            "127.0.0.1:9153"
        );
        assert_eq!(authority("http://[::1]:9153").unwrap(), "[::1]:9153");
        for bad in [
            "127.0.0.1:9153",
            "https://x:1",
            "http://",
            "http://x:1/status",
        ] {
            assert!(authority(bad).is_err(), "{bad}");
        }
    }
}
