//! `[[record]]`: any other private-endpoint name, with its addresses or
//! the name it is an alias of.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::cx::{Cx, captures_public_message};
use crate::config::spec::RecordSpec;
use crate::config::{Located, Record, RecordAnswer};
use crate::diagnostics::ConfigError;
use crate::names::{self, domain_name};

impl Cx<'_> {
    /// The `[[record]]` tables, in the order written. Each spec is freed
    /// once checked, so that a file of many records is not held twice.
    pub(super) fn records(
        &self,
        records: Vec<RecordSpec>,
    ) -> Result<Vec<Located<Record>>, ConfigError> {
        let mut checked = Vec::with_capacity(records.len());
        for r in records {
            checked.push(Located {
                at: self.at_span(&r.name),
                value: self.record(&r)?,
            });
        }
        Ok(checked)
    }

    fn record(&self, r: &RecordSpec) -> Result<Record, ConfigError> {
        let name = domain_name(r.name.get_ref()).map_err(|why| {
            self.err(
                &r.name,
                format!("record name {:?}: {why}", r.name.get_ref()),
            )
        })?;
        if let Some(why) = names::captures_public(&name) {
            return Err(self.err(&r.name, captures_public_message("record", &name, why)));
        }
        let ttl = r.ttl.as_ref().map(|t| self.ttl(t)).transpose()?;
        let answer = match (&r.cname, r.a.is_empty() && r.aaaa.is_empty()) {
            (Some(c), true) => {
                let target = domain_name(c.get_ref())
                    .map_err(|why| self.err(c, format!("cname {:?}: {why}", c.get_ref())))?;
                if target.starts_with("*.") {
                    return Err(self.err(c, "a cname target cannot be a wildcard"));
                }
                if target == name {
                    return Err(self.err(c, "a cname cannot point at itself"));
                }
                RecordAnswer::Cname(target)
            }
            (Some(c), false) => {
                return Err(self.err(c, "a record has either a/aaaa or cname, not both"));
            }
            (None, true) => {
                return Err(self.err(&r.name, "record needs a = [...], aaaa = [...] or cname"));
            }
            (None, false) => {
                let mut addrs = Vec::new();
                for a in &r.a {
                    addrs.push(self.answer::<Ipv4Addr>(a, "an IPv4 address")?);
                }
                for a in &r.aaaa {
                    addrs.push(self.answer::<Ipv6Addr>(a, "an IPv6 address")?);
                }
                RecordAnswer::Addrs(addrs)
            }
        };
        Ok(Record { name, answer, ttl })
    }
}
