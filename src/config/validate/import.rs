//! `[[import]]`: the names read from Azure's own JSON (a private endpoint,
//! a NIC, a DNS zone group), and the workspaces described beside them.

use std::net::IpAddr;

use super::cx::{Cx, captures_public_message};
use super::workspace::Workspaces;
use crate::azure::discovery::Discovery;
use crate::config::Located;
use crate::config::spec::ImportSpec;
use crate::diagnostics::{ConfigError, Location};
use crate::import::{ImportError, ImportedName, ImportedWorkspace, Loaded};
use crate::names::{self, Cloud, Workspace, WorkspaceParts};

/// What the `[[import]]`s gave, in the order written.
#[derive(Default)]
pub(super) struct Imports {
    pub(super) names: Vec<ImportedName>,
    /// Workspace objects (`az ml workspace show`), not yet served.
    pub(super) workspaces: Vec<ImportedWorkspace>,
    /// Discovery files, served as discovery is.
    pub(super) discoveries: Vec<Located<Discovery>>,
    /// Each import's hash of its files, for the config's fingerprint.
    pub(super) digests: Vec<u64>,
}

impl Cx<'_> {
    /// Checks what each of the `[[import]]`s read (`loaded`, in order).
    pub(super) fn imports(
        &self,
        specs: &[ImportSpec],
        loaded: Vec<Result<Loaded, ImportError>>,
    ) -> Result<Imports, ConfigError> {
        let mut imports = Imports::default();
        for (i, loaded) in specs.iter().zip(loaded) {
            let loaded = loaded.map_err(|e| match e {
                ImportError::Pattern(message) => self.err(&i.path, message),
                ImportError::At { at, message } => ConfigError::Invalid { at, message },
            })?;
            if loaded.files == 0 {
                self.warn(
                    self.at_span(&i.path),
                    format!("import {:?} matches no file yet", i.path.get_ref()),
                );
            }
            for file in loaded.empty {
                self.warn(
                    Location::start_of(&file),
                    "no names in this file: Azure empties customDnsConfigs once a private DNS \
                     zone group is attached; import the NIC instead (az network nic show)",
                );
            }
            for name in &loaded.names {
                self.imported(name)?;
            }
            imports
                .names
                .extend(loaded.names.into_iter().filter(|n| self.in_catalogue(n)));
            imports.workspaces.extend(loaded.workspaces);
            imports
                .discoveries
                .extend((loaded.discoveries.into_iter()).map(|(at, value)| Located { at, value }));
            imports.digests.push(loaded.digest);
        }
        Ok(imports)
    }

    /// An imported name: its addresses are answers, and an imported wildcard
    /// must not capture public names. Imported exact names are Azure's own
    /// list for a private endpoint, so they are taken as given.
    fn imported(&self, name: &ImportedName) -> Result<(), ConfigError> {
        if name.name.starts_with("*.")
            && let Some(why) = names::captures_public(&name.name)
        {
            return Err(ConfigError::Invalid {
                at: name.at.clone(),
                message: captures_public_message("imported wildcard", &name.name, why),
            });
        }
        for addr in &name.addrs {
            self.answer_address(*addr, || name.at.clone());
        }
        Ok(())
    }

    /// Whether an imported name lies in a zone of the private-link
    /// catalogue, the names a private endpoint may take over; one that does
    /// not is not served, and said once.
    fn in_catalogue(&self, name: &ImportedName) -> bool {
        let inside = names::zone_of(&name.name).is_some();
        if !inside {
            self.warn_once(
                || name.at.clone(),
                format!(
                    "{} lies in no zone of the private-link catalogue (amldns zones), so it is \
                     not served; give it as a [[record]] if it should be",
                    name.name
                ),
            );
        }
        inside
    }

    /// Serves each of the `described` workspaces that `workspaces` does not
    /// have, from the imported `names`: the file's `[[workspace]]` with that
    /// id wins.
    pub(super) fn imported_workspaces(
        &self,
        described: Vec<ImportedWorkspace>,
        names: &[ImportedName],
        workspaces: &mut Workspaces,
    ) {
        for d in described {
            if workspaces.has(&d.id) {
                continue;
            }
            if let Some(ws) = self.imported_workspace(&d, names) {
                workspaces.push(d.at, ws);
            }
        }
    }

    /// The workspace an imported workspace object describes, its addresses
    /// read off the names imported beside it as discovery reads them off a
    /// private endpoint (SPEC §8 step 2); a warning when they give none.
    fn imported_workspace(
        &self,
        d: &ImportedWorkspace,
        imports: &[ImportedName],
    ) -> Option<Workspace> {
        // The files that list this workspace's own names: a regional
        // wildcard names no workspace, so only its endpoint's file says
        // whose inference IP it marks.
        let own: Vec<&std::path::Path> = (imports.iter())
            .filter(|n| names::workspace_id_in(&n.name) == Some(d.id.as_str()))
            .map(|n| &*n.at.file)
            .collect();
        let pairs: Vec<(String, Vec<IpAddr>)> = (imports.iter())
            .filter(|n| own.contains(&&*n.at.file))
            .map(|n| (n.name.clone(), n.addrs.clone()))
            .collect();
        let parts = WorkspaceParts {
            name: &d.name,
            id: &d.id,
            region: &d.region,
            ..WorkspaceParts::default()
        };
        let valid = names::check_workspace(&parts).is_ok();
        let found = valid
            .then(|| {
                crate::import::workspace_from_endpoint(
                    &d.name,
                    &d.id,
                    &d.region,
                    d.notebook_fqdn.as_deref(),
                    &pairs,
                    Cloud::Public,
                )
            })
            .flatten();
        let why = match found {
            Some(ws) => return Some(ws),
            None if !valid => "its name, id or region cannot make DNS names".to_string(),
            None => format!(
                "no imported name gives its API address ({}.workspace.{}.<api zone>): import \
                 its private endpoint, NIC or DNS zone group beside it",
                d.id, d.region
            ),
        };
        self.warn(
            d.at.clone(),
            format!("workspace {} ({}) is not served: {why}", d.name, d.id),
        );
        None
    }
}
