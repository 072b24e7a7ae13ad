//! The checks across sections: an upstream that is amldns itself
//! (`[upstream]` against `[server]`), a config that gives nothing to answer
//! locally (every source of names), and imported names that disagree with
//! the workspaces served (`[[import]]` against `[[workspace]]`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use toml::Spanned;

use super::cx::Cx;
use crate::config::spec::ImportSpec;
use crate::config::{AZURE_RESOLVER, Located, Record};
use crate::diagnostics::{ConfigError, Location, Warning};
use crate::import::ImportedName;
use crate::names::{self, AnswerMode, Workspace};

impl Cx<'_> {
    /// No upstream `written` (parsed as `upstreams`) is one of amldns's own
    /// `listen` addresses: it would ask itself.
    pub(super) fn upstream_is_not_amldns(
        &self,
        written: &Option<Spanned<Vec<Spanned<String>>>>,
        upstreams: &[SocketAddr],
        listen: &[SocketAddr],
    ) -> Result<(), ConfigError> {
        let Some(written) = written else {
            return Ok(());
        };
        for (v, &upstream) in written.get_ref().iter().zip(upstreams) {
            if let Some(own) = listen.iter().find(|l| is_own(upstream, **l)) {
                return Err(self.err(
                    v,
                    format!(
                        "upstream {upstream} is amldns itself (it listens on {own}): every \
                         forwarded query would come back to it; name the resolver it forwards \
                         to, e.g. \"{}\"",
                        AZURE_RESOLVER.trim_end_matches(":53")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A configuration must give something to answer locally, so
    /// that a truncated or emptied file can never empty a running table; a
    /// reload refuses it like any broken config. Every source of local names
    /// counts here, and only here: discovery is one (`discovered`: an
    /// `[azure]` section, whose discovery survives restarts in `state_file`
    /// and a failed round keeps the last good one, or a discovery file).
    pub(super) fn gives_local_names(
        &self,
        workspaces: &[Located<Workspace>],
        records: &[Located<Record>],
        imported: &[ImportedName],
        imports: &[ImportSpec],
        discovered: bool,
    ) -> Result<(), ConfigError> {
        // A discovery file imported with `optional` may not be written yet:
        // the names it will give count, as `[azure]`'s do.
        let awaited = imports.iter().any(|i| i.optional);
        if discovered
            || awaited
            || !workspaces.is_empty()
            || !records.is_empty()
            || !imported.is_empty()
        {
            return Ok(());
        }
        let (at, imports_say) = match imports.first() {
            Some(i) => (
                self.at_span(&i.path),
                "; the [[import]]s match no file that lists a name",
            ),
            None => (Location::start_of(self.path), ""),
        };
        Err(ConfigError::Invalid {
            at,
            message: format!(
                "the config gives nothing to answer locally: no [[workspace]], [[record]] or \
                 [[import]] match{imports_say}; a truncated or emptied file would empty the table"
            ),
        })
    }
}

/// Whether amldns listening on `listen` would receive what it sends to
/// `upstream`: the same address and port, or the same port on the wildcard
/// address of the upstream's family (`0.0.0.0`, `::`) when the upstream is a
/// loopback or wildcard address, which always reach this host. IPv6 sockets
/// are bound IPv6-only (RFC 3493 §5.3), so `::` does not take 127.0.0.1.
/// Another address of this host on a wildcard listener is not caught:
/// telling that needs the host's interfaces, which a config check does not read.
fn is_own(upstream: SocketAddr, listen: SocketAddr) -> bool {
    let (up, own) = (upstream.ip().to_canonical(), listen.ip().to_canonical());
    upstream.port() == listen.port()
        && (up == own
            || (own.is_unspecified()
                && own.is_ipv4() == up.is_ipv4()
                && (up.is_loopback() || up.is_unspecified())))
}

/// Warnings about imported names: a notebooks FQDN that differs from
/// the one derived for the same workspace, and a workspace whose private
/// endpoint lists no notebooks or no cert.api name.
pub(in crate::config) fn import_warnings(
    imports: &[ImportedName],
    workspaces: &[Located<Workspace>],
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    // workspace id -> (first location, has notebooks, has cert.api)
    let mut seen: BTreeMap<&str, (&Location, bool, bool)> = BTreeMap::new();
    for imp in imports {
        let Some(id) = names::workspace_id_in(&imp.name) else {
            continue;
        };
        let entry = seen.entry(id).or_insert((&imp.at, false, false));
        let is_notebooks = names::notebooks_zone_of(&imp.name).is_some();
        if is_notebooks {
            entry.1 = true;
        } else if imp.name.contains(".cert.") {
            entry.2 = true;
        }
        if !is_notebooks {
            continue;
        }
        if let Some(ws) = workspaces.iter().find(|w| w.value.id == id) {
            let derived: Vec<String> = names::derive(&ws.value, AnswerMode::A)
                .into_iter()
                .filter(|d| d.purpose == names::Purpose::Notebooks)
                .map(|d| d.name)
                .collect();
            if !derived.contains(&imp.name) {
                warnings.push(Warning {
                    at: imp.at.clone(),
                    message: format!(
                        "imported notebooks name {} differs from the one derived for workspace \
                         {} ({}): set notebook_fqdn = \"{}\" on the workspace at {}",
                        imp.name,
                        ws.value.name,
                        derived.first().map_or("", String::as_str),
                        imp.name,
                        ws.at
                    ),
                });
            }
        }
    }
    for (id, (at, notebooks, cert)) in seen {
        for (missing, what) in [(notebooks, "notebooks"), (cert, "cert.api")] {
            if !missing {
                warnings.push(Warning {
                    at: at.clone(),
                    message: format!("workspace {id}: the imported names have no {what} name"),
                });
            }
        }
    }
    warnings
}
