//! `[upstream]`: the resolvers asked for what is not answered here, and
//! how hard they may be asked.

use std::net::SocketAddr;
use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::Spanned;

use super::cx::Cx;
use crate::config::spec::UpstreamSpec;
use crate::config::{AZURE_RESOLVER, UpstreamConfig};
use crate::diagnostics::ConfigError;
use crate::resolve::QUERY_DEADLINE;

const DEFAULT_TIMEOUT_MS: u64 = 2000;
const DEFAULT_CACHE_ENTRIES: u64 = 10_000;
/// ~1,000 answers of 60 KB; ten thousand of the usual size.
const DEFAULT_CACHE_BYTES: u64 = 64 << 20;
/// From room for the largest answer to a gigabyte; 0 turns the cache off.
const CACHE_BYTES_RANGE: RangeInclusive<u64> = 64 << 10..=1 << 30;
/// One try can take at most the whole query deadline.
const TIMEOUT_MS_RANGE: Range<u64> = 50..QUERY_DEADLINE.as_millis() as u64 + 1;
/// Below Azure's 200 in flight per VM, with room for other software on it.
const DEFAULT_MAX_IN_FLIGHT: u64 = 150;
/// Below Azure's 1000 queries/s per VM, with the same room.
const DEFAULT_MAX_QPS: u64 = 900;

impl Cx<'_> {
    pub(super) fn upstream(&self, upstream: &UpstreamSpec) -> Result<UpstreamConfig, ConfigError> {
        let servers = match &upstream.servers {
            Some(list) if list.get_ref().is_empty() => {
                return Err(self.err(
                    list,
                    "upstream servers is empty: list at least one resolver, e.g. \"168.63.129.16\"",
                ));
            }
            Some(list) => list
                .get_ref()
                .iter()
                .map(|s| self.resolver(s))
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![AZURE_RESOLVER.parse().expect("valid default")],
        };
        let timeout_ms = match &upstream.timeout_ms {
            Some(t) if !TIMEOUT_MS_RANGE.contains(t.get_ref()) => {
                return Err(self.err(
                    t,
                    format!(
                        "timeout_ms {} is out of range: expected {}..={} (a client gets \
                         SERVFAIL once {} ms have passed, whatever the upstreams do)",
                        t.get_ref(),
                        TIMEOUT_MS_RANGE.start,
                        TIMEOUT_MS_RANGE.end - 1,
                        QUERY_DEADLINE.as_millis()
                    ),
                ));
            }
            Some(t) => *t.get_ref(),
            None => DEFAULT_TIMEOUT_MS,
        };
        let cache_bytes = match &upstream.cache_bytes {
            Some(b) if *b.get_ref() != 0 && !CACHE_BYTES_RANGE.contains(b.get_ref()) => {
                return Err(self.err(
                    b,
                    format!(
                        "cache_bytes {} is out of range: expected 0 (no cache) or {}..={}",
                        b.get_ref(),
                        CACHE_BYTES_RANGE.start(),
                        CACHE_BYTES_RANGE.end()
                    ),
                ));
            }
            Some(b) => *b.get_ref(),
            None => DEFAULT_CACHE_BYTES,
        };
        Ok(UpstreamConfig {
            servers,
            timeout: Duration::from_millis(timeout_ms),
            cache_entries: upstream.cache_entries.unwrap_or(DEFAULT_CACHE_ENTRIES),
            cache_bytes,
            max_in_flight: self.within(
                &upstream.max_in_flight,
                1..=100_000,
                DEFAULT_MAX_IN_FLIGHT,
                "max_in_flight",
            )? as usize,
            max_qps: self.within(&upstream.max_qps, 1..=1_000_000, DEFAULT_MAX_QPS, "max_qps")?
                as u32,
        })
    }

    /// An upstream resolver: `ip:port`, or a bare IP meaning port 53.
    fn resolver(&self, v: &Spanned<String>) -> Result<SocketAddr, ConfigError> {
        let s = v.get_ref().trim();
        crate::config::addr::dns_server(s).ok_or_else(|| {
            self.err(
                v,
                format!("{s:?} is not a resolver address: expected \"ip\" or \"ip:port\""),
            )
        })
    }
}
