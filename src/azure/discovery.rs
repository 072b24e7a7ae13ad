//! What a round found, as the `state_file` keeps it: each workspace with
//! the names it gives, before it is checked and served; and what a round
//! left out, and why.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::names::{self, Cloud, Workspace, WorkspaceFault, WorkspaceParts};

/// What a round found: also the `state_file`'s JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub workspaces: Vec<Found>,
    /// What the other private endpoints in scope list, with
    /// `private_endpoints = "all"`: Foundry accounts, ML registries, search
    /// services… Each name carries the resource its endpoint connects to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<FoundName>,
}

/// The version of [`DiscoveryFile`]'s shape.
pub const FILE_VERSION: u32 = 1;

/// A discovery as a file holds it, the `state_file` and the discovery file
/// `amldns discover --watch --out` writes for other replicas to import:
/// `{"amldns_discovery": 1, "workspaces": [...]}`. The version key marks
/// the shape for `[[import]]`; a state file written before it had none.
#[derive(Debug, Serialize, Deserialize)]
pub struct DiscoveryFile<F = Discovery> {
    #[serde(default = "file_version")]
    pub amldns_discovery: u32,
    #[serde(flatten)]
    pub found: F,
}

fn file_version() -> u32 {
    FILE_VERSION
}

impl DiscoveryFile {
    /// `found` as a file holds it.
    pub fn write(found: &Discovery) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec_pretty(&DiscoveryFile {
            amldns_discovery: FILE_VERSION,
            found,
        })
    }

    /// Reads a file's text; `Err` says why it is not a discovery this
    /// amldns reads.
    pub fn read(text: &str) -> Result<Discovery, String> {
        let file: DiscoveryFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.amldns_discovery != FILE_VERSION {
            return Err(format!(
                "amldns_discovery {} is not a version this amldns reads ({FILE_VERSION})",
                file.amldns_discovery
            ));
        }
        let mut found = file.found;
        found.normalize();
        Ok(found)
    }
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
    /// The private endpoint its addresses were read from: a workspace
    /// behind endpoints in several VNets is found once per endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundProject {
    pub name: String,
    pub id: String,
    /// The project's own `properties.notebookInfo.fqdn`, when ARM gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notebook_fqdn: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoundName {
    pub name: String,
    pub addrs: Vec<IpAddr>,
    /// The resource whose private endpoint lists it.
    pub resource_id: String,
    /// That private endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A resource a round left out, and why (`/status` lists them): one ARM
/// refused or no longer has (401, 403, 404), or a workspace that cannot be
/// served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Its resource id (a workspace ARM lists without one: its name).
    pub resource: String,
    pub reason: String,
    /// Logged at debug only: nothing is wrong (a workspace without a
    /// private endpoint is public by choice).
    #[serde(skip)]
    pub quiet: bool,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped {}: {}", self.resource, self.reason)
    }
}

impl Skipped {
    pub fn new(resource: &str, reason: impl Into<String>) -> Self {
        Skipped {
            resource: resource.to_string(),
            reason: reason.into(),
            quiet: false,
        }
    }
}

/// The subscription a resource id is in (`/subscriptions/<id>/…`).
pub fn subscription_of(resource_id: &str) -> Option<&str> {
    let mut parts = resource_id.split('/').skip_while(|p| p.is_empty());
    parts
        .next()
        .filter(|p| p.eq_ignore_ascii_case("subscriptions"))?;
    parts.next().filter(|s| !s.is_empty())
}

impl Discovery {
    /// Adds `from`'s workspaces in `subscriptions`: what a subscription that
    /// could not be read had, kept.
    pub(super) fn carry(&mut self, from: &Discovery, subscriptions: &[&str]) {
        let failed = |f: &&Found| {
            subscription_of(&f.resource_id)
                .is_some_and(|s| subscriptions.iter().any(|x| x.eq_ignore_ascii_case(s)))
        };
        self.workspaces
            .extend(from.workspaces.iter().filter(failed).cloned());
        // An endpoint's names go with the subscription the endpoint is in.
        self.endpoints.extend(
            (from.endpoints.iter())
                .filter(|n| {
                    subscription_of(n.endpoint.as_deref().unwrap_or(&n.resource_id))
                        .is_some_and(|s| subscriptions.iter().any(|x| x.eq_ignore_ascii_case(s)))
                })
                .cloned(),
        );
        self.normalize();
    }

    /// Puts back what `from` had and this lacks (whole workspaces, their
    /// instances, endpoints, projects and names), keeping this one's facts
    /// where both have them: a round's removals held, its additions and
    /// changes not.
    pub(super) fn restore(&mut self, from: &Discovery) {
        for old in &from.workspaces {
            let same = |f: &&mut Found| f.resource_id.eq_ignore_ascii_case(&old.resource_id);
            let Some(f) = self.workspaces.iter_mut().find(same) else {
                self.workspaces.push(old.clone());
                continue;
            };
            f.instances.extend(old.instances.iter().cloned());
            f.online_endpoints
                .extend(old.online_endpoints.iter().cloned());
            for p in &old.projects {
                if !f.projects.iter().any(|q| q.id == p.id) {
                    f.projects.push(p.clone());
                }
            }
            for n in &old.names {
                if !f.names.iter().any(|m| m.name == n.name) {
                    f.names.push(n.clone());
                }
            }
        }
        for n in &from.endpoints {
            if !self.endpoints.iter().any(|m| m.name == n.name) {
                self.endpoints.push(n.clone());
            }
        }
        self.normalize();
    }

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
            .sort_by_cached_key(|f| (f.resource_id.to_ascii_lowercase(), f.endpoint.clone()));
        self.endpoints
            .sort_by(|a, b| (&a.name, &a.endpoint).cmp(&(&b.name, &b.endpoint)));
        self.endpoints.dedup();
    }
}

impl Found {
    /// As a validated workspace; `Err` says why it cannot be one.
    pub(super) fn workspace(&self) -> Result<Workspace, String> {
        let cloud = self.cloud.parse::<Cloud>().map_err(|e| e.to_string())?;
        let parts = WorkspaceParts {
            name: &self.name,
            id: &self.id,
            region: &self.region,
            instances: self.instances.iter().map(String::as_str).collect(),
            online_endpoints: self.online_endpoints.iter().map(String::as_str).collect(),
            projects: (self.projects.iter())
                .map(|p| (p.name.as_str(), p.id.as_str()))
                .collect(),
        };
        let mut n = names::check_workspace(&parts).map_err(|fault| self.skip_reason(fault))?;
        // A project's notebooks FQDN is taken when it is the project's own,
        // as the workspace's is (`import::workspace_from_endpoint`).
        for (p, found) in n.projects.iter_mut().zip(&self.projects) {
            p.notebook_fqdn = (found.notebook_fqdn.as_deref())
                .map(str::to_ascii_lowercase)
                .filter(|f| names::is_notebooks_name_of(f, &p.id));
        }
        Ok(Workspace {
            name: n.name,
            id: n.id,
            region: n.region,
            cloud,
            ip: self.ip,
            notebook_ip: self.notebook_ip,
            inference_ip: self.inference_ip,
            notebook_fqdn: self.notebook_fqdn.clone(),
            instances: n.instances,
            instances_wildcard: false,
            online_endpoints: n.online_endpoints,
            inference_wildcard: false,
            projects: n.projects,
        })
    }

    /// Why `fault` keeps this workspace from being served.
    fn skip_reason(&self, fault: WorkspaceFault) -> String {
        let not_a_label = |what: &str, s: &str| format!("{what} {s:?} is not a DNS label");
        let not_a_name = |n: &str| format!("name {n:?} cannot make a notebooks label");
        let not_a_uuid = |s: &str| format!("id {s:?} is not a UUID");
        match fault {
            WorkspaceFault::Name => not_a_name(&self.name),
            WorkspaceFault::Id => not_a_uuid(&self.id),
            WorkspaceFault::Region => not_a_label("region", &self.region),
            WorkspaceFault::RegionTooLong => {
                format!("region {:?} is too long", self.region.to_ascii_lowercase())
            }
            WorkspaceFault::Instance(i) | WorkspaceFault::InstanceTooLong(i) => {
                not_a_label("compute instance", &self.instances[i])
            }
            WorkspaceFault::OnlineEndpoint(i) => {
                not_a_label("online endpoint", &self.online_endpoints[i])
            }
            WorkspaceFault::ProjectName(i) => not_a_name(&self.projects[i].name),
            WorkspaceFault::ProjectId(i) => not_a_uuid(&self.projects[i].id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found() -> Found {
        Found {
            resource_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw".into(),
            name: "mlw".into(),
            id: "FB7E20A0-8891-458B-B969-55DDB3382F51".into(),
            region: "EastUS".into(),
            cloud: "public".into(),
            ip: "10.1.0.5".parse().unwrap(),
            notebook_ip: "10.1.0.5".parse().unwrap(),
            inference_ip: "10.1.0.5".parse().unwrap(),
            notebook_fqdn: None,
            instances: vec!["ci-alice".into()],
            online_endpoints: vec!["fraud-score".into()],
            projects: vec![FoundProject {
                name: "proj-a".into(),
                id: "0d5c2f4e-1111-2222-3333-444455556666".into(),
                notebook_fqdn: None,
            }],
            names: Vec::new(),
            endpoint: None,
        }
    }

    #[test]
    fn a_resource_ids_subscription() {
        assert_eq!(
            subscription_of("/subscriptions/S1/resourceGroups/rg/providers/x/y/z"),
            Some("S1")
        );
        assert_eq!(subscription_of("/providers/x"), None);
        assert_eq!(subscription_of("mlw-no-id"), None);
    }

    /// A held round: what the last discovery had and the round lacks comes
    /// back; what the round changed stays changed.
    #[test]
    fn restore_puts_back_only_what_is_missing() {
        let mut gone = found();
        gone.resource_id = gone.resource_id.replace("/mlw", "/mlw-gone");
        let before = Discovery {
            workspaces: vec![found(), gone.clone()],
            ..Discovery::default()
        };
        let mut changed = found();
        changed.ip = "10.9.0.5".parse().unwrap();
        changed.instances = vec!["ci-bob".into()];
        let mut after = Discovery {
            workspaces: vec![changed],
            ..Discovery::default()
        };
        after.restore(&before);
        assert_eq!(after.workspaces.len(), 2);
        let kept = &after.workspaces[0];
        assert_eq!(kept.ip.to_string(), "10.9.0.5");
        assert_eq!(kept.instances, ["ci-alice", "ci-bob"]);
        assert_eq!(after.workspaces[1], gone);
    }

    #[test]
    fn a_failed_subscription_carries_its_workspaces_over() {
        let mut other = found();
        other.resource_id = other.resource_id.replace("/s/", "/t/");
        let before = Discovery {
            workspaces: vec![found(), other.clone()],
            ..Discovery::default()
        };
        let mut now = Discovery::default();
        now.carry(&before, &["T"]);
        assert_eq!(now.workspaces, [other]);
    }

    #[test]
    fn a_found_workspace_is_served_lower_case() {
        let ws = found().workspace().unwrap();
        assert_eq!(ws.id, "fb7e20a0-8891-458b-b969-55ddb3382f51");
        assert_eq!(ws.region, "eastus");
        assert_eq!(ws.cloud, Cloud::Public);
    }

    /// A project's own notebooks FQDN is served when it names the project;
    /// a state file written before projects had one still reads.
    #[test]
    fn a_projects_notebook_fqdn_when_it_is_its_own() {
        let p = "0d5c2f4e-1111-2222-3333-444455556666";
        let own = format!("ML-PROJ_A-eastus-{p}.eastus.notebooks.azure.net");
        let mut f = found();
        f.projects[0].notebook_fqdn = Some(own.clone());
        let ws = f.workspace().unwrap();
        assert_eq!(ws.projects[0].notebook_fqdn, Some(own.to_ascii_lowercase()));
        let hubs = format!("ml-mlw-eastus-{}.eastus.notebooks.azure.net", ws.id);
        f.projects[0].notebook_fqdn = Some(hubs);
        assert_eq!(f.workspace().unwrap().projects[0].notebook_fqdn, None);
        let old: FoundProject =
            serde_json::from_str(&format!(r#"{{"name": "proj-a", "id": "{p}"}}"#)).unwrap();
        assert_eq!(old.notebook_fqdn, None);
    }

    /// Each reason a workspace is not served, as the reload log says it.
    #[test]
    fn each_skip_reason_names_the_value() {
        /// What is wrong with the workspace.
        type Change = fn(&mut Found);
        let long = "c".repeat(61);
        let cases: Vec<(Change, String)> = vec![
            (
                |f| f.name = "mlw prod".into(),
                r#"name "mlw prod" cannot make a notebooks label"#.into(),
            ),
            (
                |f| f.id = "nope".into(),
                r#"id "nope" is not a UUID"#.into(),
            ),
            (
                |f| f.region = "East US".into(),
                r#"region "East US" is not a DNS label"#.into(),
            ),
            (
                |f| f.region = "R".repeat(23),
                format!("region {:?} is too long", "r".repeat(23)),
            ),
            (
                |f| f.instances.push("ci_bob".into()),
                r#"compute instance "ci_bob" is not a DNS label"#.into(),
            ),
            (
                |f| f.instances = vec!["c".repeat(61)],
                format!("compute instance {long:?} is not a DNS label"),
            ),
            (
                |f| f.online_endpoints = vec!["-ep".into()],
                r#"online endpoint "-ep" is not a DNS label"#.into(),
            ),
            (
                |f| f.projects[0].name = "p.q".into(),
                r#"name "p.q" cannot make a notebooks label"#.into(),
            ),
            (
                |f| f.projects[0].id = "x".into(),
                r#"id "x" is not a UUID"#.into(),
            ),
        ];
        for (change, want) in cases {
            let mut f = found();
            change(&mut f);
            assert_eq!(f.workspace().unwrap_err(), want);
        }
    }
}
