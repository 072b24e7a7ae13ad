//! `[[workspace]]`: each workspace or hub the file lists, and the rule that
//! an id is served once.

use std::collections::HashMap;
use std::net::IpAddr;

use toml::Spanned;

use super::cx::Cx;
use crate::config::Located;
use crate::config::spec::WorkspaceSpec;
use crate::diagnostics::{ConfigError, Location};
use crate::names::{self, Cloud, Workspace, WorkspaceFault, WorkspaceParts, domain_name};

/// The workspaces served, with every hub, workspace and project id and where
/// it was first given: each is served once.
pub(super) struct Workspaces {
    list: Vec<Located<Workspace>>,
    ids: HashMap<String, Location>,
}

impl Workspaces {
    /// Whether a workspace or project with `id` is served already.
    pub(super) fn has(&self, id: &str) -> bool {
        self.ids.contains_key(id)
    }

    /// Adds `ws`, whose id [`Workspaces::has`] not.
    pub(super) fn push(&mut self, at: Location, ws: Workspace) {
        self.ids.insert(ws.id.clone(), at.clone());
        self.list.push(Located { at, value: ws });
    }

    /// The workspaces named `name`, or with a project so named (Azure's
    /// names are case-insensitive): what serves that workspace's computes.
    pub(super) fn named_mut<'s>(
        &'s mut self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s mut Workspace> + 's {
        (self.list.iter_mut())
            .map(|w| &mut w.value)
            .filter(move |w| {
                w.name.eq_ignore_ascii_case(name)
                    || w.projects.iter().any(|p| p.name.eq_ignore_ascii_case(name))
            })
    }

    pub(super) fn list(&self) -> &[Located<Workspace>] {
        &self.list
    }

    pub(super) fn into_list(self) -> Vec<Located<Workspace>> {
        self.list
    }
}

impl Cx<'_> {
    /// The `[[workspace]]` tables, in the order written.
    pub(super) fn workspaces(&self, specs: &[WorkspaceSpec]) -> Result<Workspaces, ConfigError> {
        let mut workspaces = Workspaces {
            list: Vec::new(),
            ids: HashMap::new(),
        };
        for w in specs {
            let ws = self.workspace(w)?;
            let given = std::iter::once((&ws.id, &w.id)).chain(
                ws.projects
                    .iter()
                    .zip(&w.projects)
                    .map(|(p, s)| (&p.id, &s.id)),
            );
            for (id, span) in given {
                if let Some(prev) = workspaces.ids.get(id) {
                    return Err(self.err(
                        span,
                        format!(
                            "id {id} is already listed at {prev}: each workspace and project once"
                        ),
                    ));
                }
                workspaces.ids.insert(id.clone(), self.at_span(span));
            }
            workspaces.list.push(Located {
                at: self.at_span(&w.id),
                value: ws,
            });
        }
        Ok(workspaces)
    }

    fn workspace(&self, w: &WorkspaceSpec) -> Result<Workspace, ConfigError> {
        fn trim(v: &Spanned<String>) -> &str {
            v.get_ref().trim()
        }
        let parts = WorkspaceParts {
            name: trim(&w.name),
            id: trim(&w.id),
            region: trim(&w.region),
            instances: w.instances.iter().map(trim).collect(),
            online_endpoints: w.online_endpoints.iter().map(trim).collect(),
            projects: (w.projects.iter())
                .map(|p| (trim(&p.name), trim(&p.id)))
                .collect(),
        };
        let mut n =
            names::check_workspace(&parts).map_err(|fault| self.workspace_fault(w, fault))?;
        // The warnings, in the order the values are written.
        self.workspace_name(&w.name, "workspace");
        let cloud = w.cloud;
        self.region_of(cloud, &n.region, &w.region);
        let ip = self.answer::<IpAddr>(&w.ip, "an IP address")?;
        let notebook_ip = match &w.notebook_ip {
            Some(v) => self.answer::<IpAddr>(v, "an IP address")?,
            None => ip,
        };
        let inference_ip = match &w.inference_ip {
            Some(v) => self.answer::<IpAddr>(v, "an IP address")?,
            None => ip,
        };
        let notebook_fqdn = match &w.notebook_fqdn {
            Some(v) => Some(self.notebook_fqdn(v, cloud, &n.id, &n.region)?),
            None => None,
        };
        for (p, spec) in n.projects.iter_mut().zip(&w.projects) {
            self.workspace_name(&spec.name, "project");
            if let Some(v) = &spec.notebook_fqdn {
                p.notebook_fqdn = Some(self.notebook_fqdn(v, cloud, &p.id, &n.region)?);
            }
        }
        Ok(Workspace {
            name: n.name,
            id: n.id,
            region: n.region,
            cloud,
            ip,
            notebook_ip,
            inference_ip,
            notebook_fqdn,
            instances: n.instances,
            instances_wildcard: w.instances_wildcard,
            online_endpoints: n.online_endpoints,
            inference_wildcard: w.inference_wildcard,
            projects: n.projects,
        })
    }

    /// The error for `fault`, at the value of `w` it is about.
    fn workspace_fault(&self, w: &WorkspaceSpec, fault: WorkspaceFault) -> ConfigError {
        let not_a_name = |v: &Spanned<String>, what: &str| {
            let name = v.get_ref().trim();
            self.err(
                v,
                format!(
                    "{what} name {name:?} is not valid: expected letters, digits, hyphens and \
                     underscores"
                ),
            )
        };
        let not_a_uuid = |v: &Spanned<String>| {
            let s = v.get_ref().trim();
            self.err(
                v,
                format!(
                    "{s:?} is not a UUID: expected the workspace id (properties.workspaceId), \
                     e.g. \"fb7e20a0-8891-458b-b969-55ddb3382f51\""
                ),
            )
        };
        let not_a_label = |v: &Spanned<String>, what: &str| {
            let s = v.get_ref().trim();
            self.err(
                v,
                format!(
                    "{what} {s:?} is not a DNS label: expected 1-63 letters, digits and \
                     hyphens, not starting or ending with a hyphen"
                ),
            )
        };
        let lower = |v: &Spanned<String>| v.get_ref().trim().to_ascii_lowercase();
        match fault {
            WorkspaceFault::Name => not_a_name(&w.name, "workspace"),
            WorkspaceFault::Id => not_a_uuid(&w.id),
            WorkspaceFault::Region => not_a_label(&w.region, "region"),
            WorkspaceFault::RegionTooLong => self.err(
                &w.region,
                format!(
                    "region {:?} is longer than any Azure region: the notebooks label \
                     has room for {} characters of it",
                    lower(&w.region),
                    names::MAX_REGION
                ),
            ),
            WorkspaceFault::Instance(i) => not_a_label(&w.instances[i], "compute instance"),
            WorkspaceFault::InstanceTooLong(i) => self.err(
                &w.instances[i],
                format!(
                    "compute instance {:?} is too long for its \"-22\" SSH name",
                    lower(&w.instances[i])
                ),
            ),
            WorkspaceFault::OnlineEndpoint(i) => {
                not_a_label(&w.online_endpoints[i], "online endpoint")
            }
            WorkspaceFault::ProjectName(i) => not_a_name(&w.projects[i].name, "project"),
            WorkspaceFault::ProjectId(i) => not_a_uuid(&w.projects[i].id),
        }
    }

    /// Warns when a workspace or project name, valid for DNS, is one Azure
    /// would not accept.
    fn workspace_name(&self, v: &Spanned<String>, what: &str) {
        let name = v.get_ref().trim();
        if let Some(why) = names::workspace_name_issue(name) {
            self.warn(
                self.at_span(v),
                format!("{what} name {name:?} {why}: Azure would not accept it"),
            );
        }
    }

    /// Warns when `region` (at `v`) is not a region of `cloud` that amldns
    /// knows. Only a warning: Azure adds regions.
    fn region_of(&self, cloud: Cloud, region: &str, v: &Spanned<String>) {
        if cloud.regions().contains(&region) {
            return;
        }
        let hint = match Cloud::of_region(region) {
            Some(other) => format!(
                "it is a region of the {} cloud: set cloud = \"{}\", or use a region of the \
                 {} cloud",
                other.as_str(),
                other.as_str(),
                cloud.as_str()
            ),
            None => match crate::diagnostics::closest(region, cloud.regions().iter().copied()) {
                Some(near) => format!("did you mean \"{near}\"?"),
                None => "check the spelling; if Azure has opened it since, ignore this".into(),
            },
        };
        self.warn_once(
            || self.at_span(v),
            format!(
                "region \"{region}\" is not an Azure region of the {} cloud: {hint}",
                cloud.as_str()
            ),
        );
    }

    /// Azure's exact notebooks FQDN of a workspace or a hub's project (`id`):
    /// it must sit in the workspace's cloud's notebooks zone, and its first
    /// label becomes the notebooks label.
    fn notebook_fqdn(
        &self,
        v: &Spanned<String>,
        cloud: Cloud,
        id: &str,
        region: &str,
    ) -> Result<String, ConfigError> {
        let fqdn = domain_name(v.get_ref())
            .map_err(|why| self.err(v, format!("notebook_fqdn {:?}: {why}", v.get_ref())))?;
        let (label, rest) = fqdn.split_once('.').unwrap_or((&fqdn, ""));
        let shaped = label.starts_with("ml-") && label.ends_with(id);
        let in_zone = match names::notebooks_zone_of(&fqdn) {
            Some((c, zone)) => {
                c == cloud
                    && (rest == zone || rest.strip_suffix(zone) == Some(&format!("{region}.")))
            }
            None => false,
        };
        if !shaped || !in_zone {
            return Err(self.err(
                v,
                format!(
                    "notebook_fqdn {fqdn:?} is not the notebooks name of {id}: expected \
                     ml-<name>-{region}-{id}.{region}.<notebooks zone of the {} cloud>, as in \
                     properties.notebookInfo.fqdn",
                    cloud.as_str()
                ),
            ));
        }
        Ok(fqdn)
    }
}
