//! `[[import]]`: the names read from Azure's own JSON (a private endpoint,
//! a NIC, a DNS zone group), the workspaces described beside them, and
//! their compute instances.

use std::collections::HashSet;
use std::net::IpAddr;

use super::cx::{Cx, captures_public_message};
use super::workspace::Workspaces;
use crate::azure::discovery::Discovery;
use crate::config::Located;
use crate::config::spec::ImportSpec;
use crate::diagnostics::{ConfigError, Location};
use crate::import::{ImportError, ImportedCompute, ImportedName, ImportedWorkspace, Loaded};
use crate::names::{self, AnswerMode, Cloud, Workspace, WorkspaceParts};

/// What the `[[import]]`s gave, in the order written.
#[derive(Default)]
pub(super) struct Imports {
    pub(super) names: Vec<ImportedName>,
    /// Workspace objects (`az ml workspace show`), not yet served.
    pub(super) workspaces: Vec<ImportedWorkspace>,
    /// Compute instance objects (`az ml compute show`), not yet served.
    pub(super) computes: Vec<ImportedCompute>,
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
            imports.computes.extend(loaded.computes);
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

    /// Serves each imported compute instance with the workspace its id
    /// names, one of `workspaces` (a `[[workspace]]`, or an imported
    /// workspace object, by name; a hub's project's go to the hub): its
    /// names, and at that workspace's API IP the hosts of its applications
    /// that lie under an instances zone of the workspace's cloud, added to
    /// `served` (the others, such as VS Code's `vscode://` link, name no
    /// host of the instance's). A compute whose workspace is not there, or
    /// is not one, is said where it was read.
    pub(super) fn imported_computes(
        &self,
        computes: Vec<ImportedCompute>,
        workspaces: &mut Workspaces,
        served: &mut Vec<ImportedName>,
    ) {
        for c in computes {
            let ci = &c.instance;
            let not_served = |why: String| {
                self.warn(
                    c.at.clone(),
                    format!("compute instance {} is not served: {why}", ci.name),
                );
            };
            let Some(name) = c.workspace.as_deref() else {
                not_served(format!(
                    "its id {:?} names no workspace (…/workspaces/<workspace>/computes/<name>)",
                    ci.resource_id
                ));
                continue;
            };
            let mut named = workspaces.named_mut(name);
            let ws = match (named.next(), named.next()) {
                (Some(ws), None) => ws,
                (None, _) => {
                    not_served(format!(
                        "its workspace {name} is neither a [[workspace]] nor an imported \
                         workspace object (az ml workspace show) of this config"
                    ));
                    continue;
                }
                (Some(_), Some(_)) => {
                    not_served(format!("more than one workspace is named {name}"));
                    continue;
                }
            };
            let parts = WorkspaceParts {
                name: &ws.name,
                id: &ws.id,
                region: &ws.region,
                instances: vec![&ci.name],
                ..WorkspaceParts::default()
            };
            if names::check_workspace(&parts).is_err() {
                not_served(
                    "its name is not a DNS label short enough for its \"-22\" SSH name".into(),
                );
                continue;
            }
            if !ws.instances.contains(&ci.name) {
                ws.instances.push(ci.name.clone());
            }
            let derived: HashSet<String> = names::derive(ws, AnswerMode::A)
                .into_iter()
                .map(|d| d.name)
                .collect();
            for host in &ci.hosts {
                if names::is_instance_host(host, ws.cloud)
                    && !derived.contains(host)
                    && !served.iter().any(|n| n.name == *host)
                {
                    served.push(ImportedName {
                        name: host.clone(),
                        addrs: vec![ws.ip],
                        at: c.at.clone(),
                    });
                }
            }
        }
    }

    /// The workspace an imported workspace object describes, its addresses
    /// read off the names imported beside it as discovery reads them off a
    /// private endpoint; a warning when they give none.
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
