//! Every DNS name an Azure ML workspace behind a private endpoint needs.
//!
//! Pure: a validated [`Workspace`] in, a list of [`DerivedName`]s out. No I/O and
//! no DNS library types, so the rules can be read and tested in one place.
//! The other rules about names live here too, one idea a file: the facts of
//! each cloud ([`Cloud`]), the private-link catalogue of zones every other
//! rule reads ([`catalogue`]), how a name is written and stored ([`domain_name`]),
//! keyed for lookups ([`NameKey`]), which names must stay public
//! ([`captures_public`]), what Azure accepts as a workspace name
//! ([`workspace_name_issue`]) and what makes a workspace's parts servable
//! ([`check_workspace`]).
//!
//! Sources: Microsoft Learn, "How to use your workspace with a custom DNS server"
//! (the FQDN tables per cloud) and "Configure a private endpoint for an Azure
//! Machine Learning workspace"; the notebook label cut is observed behaviour.

mod catalogue;
mod cloud;
mod derive;
mod key;
mod public;
mod syntax;
mod workspace_check;
mod workspace_name;

pub use catalogue::{
    Source, Zone, apex_of, catalogue, forwarder_zones, is_public_zone, notebooks_zone_of,
    private_twin, public_zones_of, zone_of,
};
pub use cloud::{Cloud, UnknownCloud};
pub use derive::{
    AnswerMode, DerivedName, MAX_REGION, Project, Purpose, Target, Workspace, derive,
    is_inference_wildcard_of, is_instance_host, is_notebooks_name_of,
    is_regional_inference_wildcard, is_regional_wildcard, notebook_label, workspace_id_in,
};
pub use key::NameKey;
pub use public::{Captured, captures_public};
pub use syntax::{MAX_LABEL, domain_name, is_at_or_below, is_host_label, is_uuid};
pub use workspace_check::{WorkspaceFault, WorkspaceNames, WorkspaceParts, check_workspace};
pub use workspace_name::{is_workspace_name, workspace_name_issue};
