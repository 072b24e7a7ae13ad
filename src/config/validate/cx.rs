//! What every section's validator shares: the file being validated, how a
//! value in it is located, how a value is parsed, and the warnings it gets.

use std::cell::RefCell;
use std::collections::HashSet;
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::Path;
use std::str::FromStr;

use ipnet::IpNet;
use toml::Spanned;

use crate::config::is_private;
use crate::diagnostics::{ConfigError, Lines, Location, Warning};
use crate::names;

/// The file being validated, for locating values, and what it is warned about.
pub(super) struct Cx<'a> {
    /// The config file: imports and `state_file` are relative to its folder.
    pub(super) path: &'a Path,
    pub(super) lines: &'a Lines<'a>,
    warnings: RefCell<Vec<Warning>>,
    /// What [`Cx::warn_once`] has said: a mistake repeated over many
    /// workspaces or imported names (one public address, one unknown
    /// region) is said once, where it is first met.
    said: RefCell<HashSet<String>>,
}

impl<'a> Cx<'a> {
    pub(super) fn new(path: &'a Path, lines: &'a Lines<'a>) -> Self {
        Cx {
            path,
            lines,
            warnings: RefCell::default(),
            said: RefCell::default(),
        }
    }
}

impl Cx<'_> {
    pub(super) fn warn(&self, at: Location, message: impl Into<String>) {
        self.warnings.borrow_mut().push(Warning {
            at,
            message: message.into(),
        });
    }

    pub(super) fn warn_once(&self, at: impl FnOnce() -> Location, message: String) {
        if self.said.borrow_mut().insert(message.clone()) {
            self.warn(at(), message);
        }
    }

    /// The warnings given so far, in the order given.
    pub(super) fn take_warnings(&self) -> Vec<Warning> {
        self.warnings.take()
    }

    /// Warns when `addr`, an answer, is not a private address: a
    /// private endpoint's address is, so a public one is most likely a
    /// copy of the public answer, which the private endpoint exists to
    /// avoid. Loopback is not private either: clients would ask themselves.
    pub(super) fn answer_address(&self, addr: IpAddr, at: impl FnOnce() -> Location) {
        if !is_private(addr) {
            self.warn_once(
                at,
                format!(
                    "answer address {addr} is not private (RFC 1918, 100.64.0.0/10 or fc00::/7): \
                     a private endpoint's addresses are, so this is likely a public answer copied by mistake"
                ),
            );
        }
    }

    pub(super) fn at_span<T>(&self, v: &Spanned<T>) -> Location {
        self.lines.locate(v.span().start)
    }

    pub(super) fn err<T>(&self, v: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            at: self.at_span(v),
            message: message.into(),
        }
    }

    /// Parses a string value, or says what was expected where it stands.
    pub(super) fn parse<T: FromStr>(
        &self,
        v: &Spanned<String>,
        expected: &str,
    ) -> Result<T, ConfigError> {
        v.get_ref()
            .trim()
            .parse()
            .map_err(|_| self.err(v, format!("{:?} is not {expected}", v.get_ref())))
    }

    pub(super) fn parse_net(&self, v: &Spanned<String>) -> Result<IpNet, ConfigError> {
        let s = v.get_ref().trim();
        // A bare address means just that host.
        s.parse::<IpNet>()
            .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| {
                self.err(
                    v,
                    format!("{s:?} is not a network: expected a CIDR such as \"10.0.0.0/8\""),
                )
            })
    }

    /// `v`, `default` when absent; an error at `v` when outside `range`.
    pub(super) fn within(
        &self,
        v: &Option<Spanned<u64>>,
        range: RangeInclusive<u64>,
        default: u64,
        key: &str,
    ) -> Result<u64, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) if range.contains(s.get_ref()) => Ok(*s.get_ref()),
            Some(s) => Err(self.err(
                s,
                format!(
                    "{key} {} is out of range: expected {}..={}",
                    s.get_ref(),
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// An address a local name answers with, of type `T` (`expected` says which).
    pub(super) fn answer<T: Into<IpAddr> + FromStr>(
        &self,
        v: &Spanned<String>,
        expected: &str,
    ) -> Result<IpAddr, ConfigError> {
        let addr: IpAddr = self.parse::<T>(v, expected)?.into();
        self.answer_address(addr, || self.at_span(v));
        Ok(addr)
    }
}

/// Why a wildcard (a `[[record]]`'s, or an imported one) is refused.
pub(super) fn captures_public_message(what: &str, name: &str, why: names::Captured) -> String {
    format!(
        "{what} {name} would capture names that must keep resolving publicly: {why}; \
         give the workspace's exact names instead"
    )
}
