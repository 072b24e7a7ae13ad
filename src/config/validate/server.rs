//! `[server]`: the DNS listeners, who may ask them, and how many threads
//! and TCP connections answer.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::cx::Cx;
use crate::config::ServerConfig;
use crate::config::spec::ServerSpec;
use crate::diagnostics::ConfigError;

/// Default client networks: private ranges, CGNAT, loopback and
/// link-local, so that amldns is never an open resolver by default.
const DEFAULT_ALLOW: [&str; 9] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fe80::/10",
    "fc00::/7",
];

const DEFAULT_LISTEN: &str = "0.0.0.0:53";
const DEFAULT_TCP_CONNECTIONS: u64 = 1024;
/// More answering threads than this is a typo, not a machine.
const MAX_THREADS: u64 = 1024;
/// RFC 7766 §6.2.3 leaves it to the server; Unbound and BIND use 30 s,
/// dnsdist 5 s. Ten seconds keeps a pipelining client's connection up.
const DEFAULT_TCP_IDLE_TIMEOUT_MS: u64 = 10_000;

impl Cx<'_> {
    pub(super) fn server(&self, server: &ServerSpec) -> Result<ServerConfig, ConfigError> {
        Ok(ServerConfig {
            listen: self.listen(&server.listen)?,
            allow: self.allow(&server.allow)?,
            tcp_connections: self.within(
                &server.tcp_connections,
                1..=1_000_000,
                DEFAULT_TCP_CONNECTIONS,
                "tcp_connections",
            )? as usize,
            tcp_idle_timeout: Duration::from_millis(self.within(
                &server.tcp_idle_timeout_ms,
                100..=3_600_000,
                DEFAULT_TCP_IDLE_TIMEOUT_MS,
                "tcp_idle_timeout_ms",
            )?),
            identity: self.identity(&server.identity)?,
            threads: self.within(&server.threads, 1..=MAX_THREADS, cores(), "threads")? as usize,
            doh_canary: server.doh_canary.unwrap_or(true),
        })
    }

    fn listen(
        &self,
        listen: &Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        match listen {
            Some(list) if list.get_ref().is_empty() => Err(self.err(
                list,
                "listen is empty: give at least one address:port such as \"0.0.0.0:53\"",
            )),
            Some(list) => list
                .get_ref()
                .iter()
                .map(|l| self.parse(l, "an address:port such as \"0.0.0.0:53\""))
                .collect(),
            None => Ok(vec![DEFAULT_LISTEN.parse().expect("valid default")]),
        }
    }

    fn allow(
        &self,
        allow: &Option<Spanned<Vec<Spanned<String>>>>,
    ) -> Result<Vec<IpNet>, ConfigError> {
        let Some(list) = allow else {
            return Ok(DEFAULT_ALLOW
                .iter()
                .map(|n| n.parse().expect("valid default"))
                .collect());
        };
        if list.get_ref().is_empty() {
            self.warn(
                self.at_span(list),
                "allow is empty: every client will be REFUSED",
            );
        }
        let mut nets = Vec::new();
        for a in list.get_ref() {
            let net = self.parse_net(a)?;
            if net.prefix_len() == 0 {
                self.warn(
                    self.at_span(a),
                    format!("allow {net} lets anyone query: amldns is then an open resolver"),
                );
            }
            nets.push(net);
        }
        Ok(nets)
    }

    /// `[server] identity`, or this host's name: one TXT string (RFC 1035
    /// §3.3.14: at most 255 bytes) of printable ASCII, as `dig +nsid`
    /// shows it.
    fn identity(&self, v: &Option<Spanned<String>>) -> Result<String, ConfigError> {
        let Some(v) = v else {
            return Ok(host_name());
        };
        let id = v.get_ref();
        if id.is_empty() || id.len() > 255 || !id.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        {
            return Err(self.err(
                v,
                "identity must be 1 to 255 printable ASCII characters (it is sent as a TXT \
                 string and as NSID)",
            ));
        }
        Ok(id.clone())
    }
}

/// This host's name (`[server] identity`'s default), or "amldns" when it
/// has none that reads as printable ASCII.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_else(|| "amldns".into())
}

/// `[server] threads`' default: the cores this process may run on (its CPU
/// affinity and cgroup quota, as `nproc` counts them), at most
/// [`MAX_THREADS`].
fn cores() -> u64 {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get() as u64)
        .min(MAX_THREADS)
}
