//! What makes a workspace servable: whether its name, id, region, compute
//! instances, online endpoints and projects, as a config file, an import or
//! an ARM read gives them, can make its DNS names. Each of those callers
//! says where a fault stands in its own way.

use super::derive::{MAX_REGION, Project};
use super::syntax::{MAX_LABEL, is_host_label, is_uuid};
use super::workspace_name::is_workspace_name;

/// A compute instance's SSH name is its name and `-22`, still one label.
const SSH_SUFFIX_LEN: usize = "-22".len();

/// A workspace's names as given, before they are checked.
#[derive(Debug, Default)]
pub struct WorkspaceParts<'a> {
    pub name: &'a str,
    pub id: &'a str,
    pub region: &'a str,
    pub instances: Vec<&'a str>,
    pub online_endpoints: Vec<&'a str>,
    /// Each hub project's name and id.
    pub projects: Vec<(&'a str, &'a str)>,
}

/// [`WorkspaceParts`] checked: ids, region and labels lower-case.
#[derive(Debug)]
pub struct WorkspaceNames {
    pub name: String,
    pub id: String,
    pub region: String,
    pub instances: Vec<String>,
    pub online_endpoints: Vec<String>,
    pub projects: Vec<Project>,
}

/// The first part of a [`WorkspaceParts`] that cannot make DNS names; an
/// index says which item of its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceFault {
    /// The name cannot make a notebooks label.
    Name,
    /// The id is not a UUID.
    Id,
    /// The region is not a DNS label.
    Region,
    /// The region leaves the notebooks label no room (past [`MAX_REGION`]).
    RegionTooLong,
    /// A compute instance is not a DNS label.
    Instance(usize),
    /// A compute instance's SSH name would not fit in a label.
    InstanceTooLong(usize),
    /// An online endpoint is not a DNS label.
    OnlineEndpoint(usize),
    /// A project's name cannot make a notebooks label.
    ProjectName(usize),
    /// A project's id is not a UUID.
    ProjectId(usize),
}

/// Checks `parts`, in the order a workspace is written: name, id, region,
/// instances, online endpoints, projects.
pub fn check_workspace(parts: &WorkspaceParts<'_>) -> Result<WorkspaceNames, WorkspaceFault> {
    use WorkspaceFault as F;
    let name = workspace_name(parts.name).ok_or(F::Name)?;
    let id = uuid(parts.id).ok_or(F::Id)?;
    let region = label(parts.region).ok_or(F::Region)?;
    if region.len() > MAX_REGION {
        return Err(F::RegionTooLong);
    }
    let mut instances = Vec::new();
    for (i, ci) in parts.instances.iter().enumerate() {
        let ci = label(ci).ok_or(F::Instance(i))?;
        if ci.len() + SSH_SUFFIX_LEN > MAX_LABEL {
            return Err(F::InstanceTooLong(i));
        }
        instances.push(ci);
    }
    let online_endpoints = (parts.online_endpoints.iter().enumerate())
        .map(|(i, e)| label(e).ok_or(F::OnlineEndpoint(i)))
        .collect::<Result<_, _>>()?;
    let projects = (parts.projects.iter().enumerate())
        .map(|(i, (name, id))| {
            Ok(Project {
                name: workspace_name(name).ok_or(F::ProjectName(i))?,
                id: uuid(id).ok_or(F::ProjectId(i))?,
                notebook_fqdn: None,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(WorkspaceNames {
        name,
        id,
        region,
        instances,
        online_endpoints,
        projects,
    })
}

fn workspace_name(s: &str) -> Option<String> {
    is_workspace_name(s).then(|| s.to_string())
}

fn uuid(s: &str) -> Option<String> {
    is_uuid(s).then(|| s.to_ascii_lowercase())
}

fn label(s: &str) -> Option<String> {
    is_host_label(s).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: &str = "FB7E20A0-8891-458B-B969-55DDB3382F51";

    fn parts() -> WorkspaceParts<'static> {
        WorkspaceParts {
            name: "MLW-Contoso_prod",
            id: GUID,
            region: "EastUS",
            instances: vec!["CI-alice"],
            online_endpoints: vec!["fraud-score"],
            projects: vec![("proj-a", GUID)],
        }
    }

    #[test]
    fn a_valid_workspace_comes_back_lower_case_but_for_its_names() {
        let n = check_workspace(&parts()).unwrap();
        assert_eq!(n.name, "MLW-Contoso_prod");
        assert_eq!(n.id, GUID.to_ascii_lowercase());
        assert_eq!(n.region, "eastus");
        assert_eq!(n.instances, ["ci-alice"]);
        assert_eq!(n.online_endpoints, ["fraud-score"]);
        assert_eq!(n.projects[0].id, GUID.to_ascii_lowercase());
    }

    #[test]
    fn each_fault_names_its_part() {
        let long_region = "r".repeat(MAX_REGION + 1);
        let long_instance = "c".repeat(MAX_LABEL - SSH_SUFFIX_LEN + 1);
        let fit_instance = "c".repeat(MAX_LABEL - SSH_SUFFIX_LEN);
        let cases: Vec<(WorkspaceParts<'_>, Result<(), WorkspaceFault>)> = vec![
            (
                WorkspaceParts {
                    name: "mlw contoso",
                    ..parts()
                },
                Err(WorkspaceFault::Name),
            ),
            (
                WorkspaceParts {
                    id: "nope",
                    ..parts()
                },
                Err(WorkspaceFault::Id),
            ),
            (
                WorkspaceParts {
                    region: "east us",
                    ..parts()
                },
                Err(WorkspaceFault::Region),
            ),
            (
                WorkspaceParts {
                    region: &long_region,
                    ..parts()
                },
                Err(WorkspaceFault::RegionTooLong),
            ),
            (
                WorkspaceParts {
                    instances: vec!["ci", "ci_bob"],
                    ..parts()
                },
                Err(WorkspaceFault::Instance(1)),
            ),
            (
                WorkspaceParts {
                    instances: vec![&long_instance],
                    ..parts()
                },
                Err(WorkspaceFault::InstanceTooLong(0)),
            ),
            (
                WorkspaceParts {
                    instances: vec![&fit_instance],
                    ..parts()
                },
                Ok(()),
            ),
            (
                WorkspaceParts {
                    online_endpoints: vec!["-ep"],
                    ..parts()
                },
                Err(WorkspaceFault::OnlineEndpoint(0)),
            ),
            (
                WorkspaceParts {
                    projects: vec![("p.q", GUID)],
                    ..parts()
                },
                Err(WorkspaceFault::ProjectName(0)),
            ),
            (
                WorkspaceParts {
                    projects: vec![("p", GUID), ("q", "x")],
                    ..parts()
                },
                Err(WorkspaceFault::ProjectId(1)),
            ),
            // The first fault in writing order wins.
            (
                WorkspaceParts {
                    name: "",
                    region: "",
                    ..parts()
                },
                Err(WorkspaceFault::Name),
            ),
        ];
        for (parts, want) in cases {
            assert_eq!(check_workspace(&parts).map(|_| ()), want, "{parts:?}");
        }
    }
}
