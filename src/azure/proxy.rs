//! `HTTPS_PROXY`/`https_proxy` and `NO_PROXY`/`no_proxy` for ARM and Entra
//! ID: the connection to an https endpoint goes through an HTTP CONNECT
//! tunnel at the proxy, and TLS runs inside it end to end, so the server's
//! certificate is checked as without a proxy. Written here: hyper-util's
//! proxy support needs a crate the build does not have, and a tunnel is a
//! request and a status line.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{info, warn};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest answer to CONNECT read: a status line and a few headers.
const MAX_PROXY_HEAD: usize = 16 << 10;

/// A proxy for https destinations, and the destinations it does not serve.
#[derive(Debug)]
pub struct Proxy {
    /// `host:port` of the proxy.
    at: String,
    /// `Proxy-Authorization` when the proxy URL carries `user:password@`.
    auth: Option<String>,
    bypass: Vec<Bypass>,
}

#[derive(Debug)]
enum Bypass {
    All,
    Net(IpNet),
    Addr(IpAddr),
    /// A domain and its subdomains (lower-case, no leading dot).
    Domain(String),
}

impl Proxy {
    /// The proxy the environment names (curl's rules: the lower-case
    /// variable first, a URL without a scheme is `http://`); `None` without
    /// one or when it is not a URL.
    pub fn from_env() -> Option<Self> {
        let var = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        let url = var(["https_proxy", "HTTPS_PROXY"])?;
        let no = var(["no_proxy", "NO_PROXY"]).unwrap_or_default();
        let proxy = Self::new(&url, &no);
        match &proxy {
            Some(p) => info!(proxy = %p.at, no_proxy = %no, "ARM and Entra ID through the proxy"),
            None => warn!(
                "HTTPS_PROXY {:?} is not an http://host:port proxy: ARM and Entra ID are asked \
                 directly",
                url.split('@').next_back().unwrap_or_default()
            ),
        }
        proxy
    }

    fn new(url: &str, no_proxy: &str) -> Option<Self> {
        let url = url.trim();
        let url = if url.contains("://") {
            url.to_string()
        } else {
            format!("http://{url}")
        };
        let (scheme, rest) = url.split_once("://")?;
        if !scheme.eq_ignore_ascii_case("http") {
            // A TLS connection to the proxy itself is not supported.
            return None;
        }
        let authority = rest.split('/').next()?;
        let (auth, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, hp)) => (Some(format!("Basic {}", base64(&unescape(userinfo)))), hp),
            None => (None, authority),
        };
        let uri: Uri = format!("http://{host_port}").parse().ok()?;
        let host = uri.host()?;
        let at = format!("{host}:{}", uri.port_u16().unwrap_or(80));
        let bypass = no_proxy
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| {
                if e == "*" {
                    Bypass::All
                } else if let Ok(n) = e.parse::<IpNet>() {
                    Bypass::Net(n)
                } else if let Ok(a) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
                    Bypass::Addr(a)
                } else {
                    // `example.com`, `.example.com` and `*.example.com` alike;
                    // a port after the name is not compared.
                    let d = e.trim_start_matches('*').trim_start_matches('.');
                    let d = d.split(':').next().unwrap_or(d);
                    Bypass::Domain(d.to_ascii_lowercase())
                }
            })
            .collect();
        Some(Proxy { at, auth, bypass })
    }

    /// Whether a connection to `dst` goes through the proxy: https only,
    /// and not to a host `NO_PROXY` names.
    fn serves(&self, dst: &Uri) -> bool {
        if dst.scheme_str() != Some("https") {
            return false;
        }
        let Some(host) = dst.host() else {
            return false;
        };
        let host = host.trim_matches(['[', ']']).to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        !self.bypass.iter().any(|b| match (b, ip) {
            (Bypass::All, _) => true,
            (Bypass::Net(n), Some(ip)) => n.contains(&ip),
            (Bypass::Addr(a), Some(ip)) => *a == ip,
            (Bypass::Domain(d), None) => {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|p| p.ends_with('.'))
            }
            _ => false,
        })
    }
}

/// hyper's TCP connector, with the proxy in front when one applies.
#[derive(Clone)]
pub struct Connector {
    tcp: HttpConnector,
    proxy: Option<Arc<Proxy>>,
}

impl Connector {
    /// `proxy`: `None` for a client that never uses one (IMDS).
    pub fn new(proxy: Option<Arc<Proxy>>) -> Self {
        let mut tcp = HttpConnector::new();
        // https URLs pass through here on their way to TLS.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        Connector { tcp, proxy }
    }
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.tcp.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut tcp = self.tcp.clone();
        match self.proxy.clone().filter(|p| p.serves(&dst)) {
            None => Box::pin(async move { tcp.call(dst).await.map_err(Into::into) }),
            Some(proxy) => Box::pin(async move {
                let at: Uri = format!("http://{}", proxy.at).parse()?;
                let mut io = tcp
                    .call(at)
                    .await
                    .map_err(|e| format!("proxy {}: {e}", proxy.at))?;
                tunnel(io.inner_mut(), &proxy, &dst).await?;
                Ok(io)
            }),
        }
    }
}

/// Asks the proxy for a tunnel to `dst` (RFC 9110 §9.3.6).
async fn tunnel(s: &mut TcpStream, proxy: &Proxy, dst: &Uri) -> Result<(), BoxError> {
    let host = dst.host().ok_or("no host")?;
    let target = format!("{host}:{}", dst.port_u16().unwrap_or(443));
    let mut ask = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.auth {
        ask.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    ask.push_str("\r\n");
    s.write_all(ask.as_bytes()).await?;
    // Nothing follows the proxy's answer until TLS starts: reading past
    // its end would only find what a broken proxy sent.
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_PROXY_HEAD {
            return Err(format!("proxy {}: no answer to CONNECT {target}", proxy.at).into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status = String::from_utf8_lossy(&head);
    let line = status.lines().next().unwrap_or_default();
    match line.split(' ').nth(1) {
        Some(code) if code.starts_with('2') => Ok(()),
        _ => Err(format!("proxy {} refused CONNECT {target}: {line}", proxy.at).into()),
    }
}

/// Percent-decodes a URL's `user:password` (RFC 3986 §2.1).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// RFC 4648 base64 with padding, for `Proxy-Authorization: Basic`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn no_proxy_names_hosts_domains_and_networks() {
        let p = Proxy::new(
            "proxy.corp:3128",
            "localhost, .internal.corp,10.0.0.0/8, 192.168.1.7,[::1]",
        )
        .unwrap();
        assert_eq!(p.at, "proxy.corp:3128");
        assert!(p.serves(&uri("https://management.azure.com/x")));
        assert!(
            !p.serves(&uri("http://management.azure.com/x")),
            "https only"
        );
        assert!(!p.serves(&uri("https://localhost:8443/")));
        assert!(!p.serves(&uri("https://a.internal.corp/")));
        assert!(!p.serves(&uri("https://internal.corp/")));
        assert!(p.serves(&uri("https://notinternal.corp/")));
        assert!(!p.serves(&uri("https://10.1.2.3/")));
        assert!(!p.serves(&uri("https://192.168.1.7/")));
        assert!(p.serves(&uri("https://192.168.1.8/")));
        assert!(!p.serves(&uri("https://[::1]:443/")));
        let all = Proxy::new("http://p:1", "*").unwrap();
        assert!(!all.serves(&uri("https://management.azure.com/")));
        assert!(Proxy::new("https://p:1", "").is_none());
    }

    #[test]
    fn credentials_in_the_url_are_sent_as_basic() {
        let p = Proxy::new("http://Aladdin:open%20sesame@p:8080/", "").unwrap();
        assert_eq!(p.at, "p:8080");
        assert_eq!(
            p.auth.as_deref(),
            Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==")
        );
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
