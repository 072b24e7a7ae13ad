//! What a round found, as the `state_file` keeps it: each workspace with
//! the names it gives, before it is checked and served.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::names::{self, Cloud, Project, Workspace};

/// What a round found: also the `state_file`'s JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub workspaces: Vec<Found>,
}

/// One workspace (or hub, with its projects) and every name it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    pub resource_id: String,
    pub name: String,
    pub id: String,
    pub region: String,
    pub cloud: String,
    pub ip: IpAddr,
    pub notebook_ip: IpAddr,
    pub inference_ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notebook_fqdn: Option<String>,
    #[serde(default)]
    pub instances: Vec<String>,
    #[serde(default)]
    pub online_endpoints: Vec<String>,
    #[serde(default)]
    pub projects: Vec<FoundProject>,
    /// Names its private endpoint lists beyond the derived ones, and those
    /// of its storage account, key vault and registry's own endpoints.
    #[serde(default)]
    pub names: Vec<FoundName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundProject {
    pub name: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundName {
    pub name: String,
    pub addrs: Vec<IpAddr>,
    /// The resource whose private endpoint lists it.
    pub resource_id: String,
}

impl Discovery {
    /// Sorted and without repeats, so that equal findings compare equal.
    pub(super) fn normalize(&mut self) {
        for f in &mut self.workspaces {
            for v in [&mut f.instances, &mut f.online_endpoints] {
                v.sort();
                v.dedup();
            }
            f.projects.sort_by(|a, b| a.id.cmp(&b.id));
            f.projects.dedup();
            f.names.sort_by(|a, b| a.name.cmp(&b.name));
            f.names
                .dedup_by(|a, b| a.name == b.name && a.addrs == b.addrs);
        }
        self.workspaces
            .sort_by_key(|f| f.resource_id.to_ascii_lowercase());
    }
}

impl Found {
    /// As a validated workspace; `Err` says why it cannot be one.
    pub(super) fn workspace(&self) -> Result<Workspace, String> {
        let uuid = |s: &str| {
            names::is_uuid(s)
                .then(|| s.to_ascii_lowercase())
                .ok_or_else(|| format!("id {s:?} is not a UUID"))
        };
        let label = |s: &str, what: &str, room: usize| {
            (names::is_host_label(s) && s.len() + room <= names::MAX_LABEL)
                .then(|| s.to_ascii_lowercase())
                .ok_or_else(|| format!("{what} {s:?} is not a DNS label"))
        };
        let cloud = self.cloud.parse::<Cloud>().map_err(|e| e.to_string())?;
        let region = label(&self.region, "region", 0)?;
        if region.len() > names::MAX_REGION {
            return Err(format!("region {region:?} is too long"));
        }
        let name_ok = |n: &str| {
            names::is_workspace_name(n)
                .then(|| n.to_string())
                .ok_or_else(|| format!("name {n:?} cannot make a notebooks label"))
        };
        Ok(Workspace {
            name: name_ok(&self.name)?,
            id: uuid(&self.id)?,
            region,
            cloud,
            ip: self.ip,
            notebook_ip: self.notebook_ip,
            inference_ip: self.inference_ip,
            notebook_fqdn: self.notebook_fqdn.clone(),
            // "-22" makes the SSH name: three more characters.
            instances: self
                .instances
                .iter()
                .map(|i| label(i, "compute instance", 3))
                .collect::<Result<_, _>>()?,
            instances_wildcard: false,
            online_endpoints: self
                .online_endpoints
                .iter()
                .map(|e| label(e, "online endpoint", 0))
                .collect::<Result<_, _>>()?,
            inference_wildcard: false,
            projects: self
                .projects
                .iter()
                .map(|p| {
                    Ok(Project {
                        name: name_ok(&p.name)?,
                        id: uuid(&p.id)?,
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}
