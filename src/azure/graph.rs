//! Where a round reads what exists: Azure Resource Graph (a few paged
//! queries per resource type, for every subscription at once), or ARM's
//! per-resource reads. A round asks this [`Inventory`] for resources and
//! lists as it would ask ARM; what Resource Graph gave is answered from
//! its rows, anything else (computes, which Resource Graph does not hold;
//! a resource in a subscription not listed) is read through ARM.
//!
//! Resource Graph 2022-10-01 (`specification/resourcegraph`,
//! `Microsoft.ResourceGraph/stable/2022-10-01`): `POST
//! /providers/Microsoft.ResourceGraph/resources` with the subscriptions
//! or the management groups, a query, and `options` (`$top`, `$skipToken`,
//! `resultFormat`); the answer's `data` holds the rows, `$skipToken` the
//! next page's token.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Value, json};

use super::arm::Arm;
use super::discovery::subscription_of;
use super::http::Failure;
use crate::config::AzureConfig;

const GRAPH_API: &str = "2022-10-01";
const GRAPH_PATH: &str = "/providers/Microsoft.ResourceGraph/resources";

/// Rows a page: Resource Graph's most.
const PAGE_ROWS: usize = 1000;

/// Subscriptions one query may name: Resource Graph's most.
const SUBSCRIPTIONS_PER_QUERY: usize = 1000;

/// A query with more pages than this is looping (with a new token each
/// time), not long: ten million rows of one type.
const MAX_PAGES: usize = 10_000;

const WORKSPACES: &str = "microsoft.machinelearningservices/workspaces";
const PRIVATE_ENDPOINTS: &str = "microsoft.network/privateendpoints";

/// The query for the subscriptions themselves.
const SUBSCRIPTIONS: &str =
    "resourcecontainers | where type =~ 'microsoft.resources/subscriptions'";

/// Every type a round looks at besides workspaces: their online endpoints,
/// private endpoints and the NICs that list an endpoint's names, and the
/// dependencies a workspace names. Only NICs of private endpoints are
/// asked for: a tenant's VMs have many more.
const TYPES: [(&str, &str); 6] = [
    (
        "microsoft.machinelearningservices/workspaces/onlineendpoints",
        "",
    ),
    (PRIVATE_ENDPOINTS, ""),
    (
        "microsoft.network/networkinterfaces",
        " | where isnotnull(properties.privateEndpoint)",
    ),
    ("microsoft.storage/storageaccounts", ""),
    ("microsoft.keyvault/vaults", ""),
    ("microsoft.containerregistry/registries", ""),
];

/// The members of a row a round reads (`round`: a workspace's, an
/// endpoint's, a NIC's, a dependency's); the rest (tags, SKUs, most
/// properties) is dropped as each page arrives, so that the rows of a
/// tenant of 10,000 workspaces stay a fraction of what Resource Graph sends.
const KEPT: [&str; 5] = ["id", "name", "type", "location", "kind"];
const KEPT_PROPERTIES: [&str; 12] = [
    "workspaceId",
    "notebookInfo",
    "hubResourceId",
    "privateEndpointConnections",
    "storageAccount",
    "keyVault",
    "containerRegistry",
    "subnet",
    "customDnsConfigs",
    "ipConfigurations",
    // An endpoint's own side of its connection: its state and the resource
    // it connects to.
    "privateLinkServiceConnections",
    "manualPrivateLinkServiceConnections",
];

/// `row` with only [`KEPT`] and [`KEPT_PROPERTIES`], and an endpoint's
/// NIC ids.
fn slim(row: Value) -> Value {
    let Value::Object(mut row) = row else {
        return row;
    };
    let mut out = serde_json::Map::new();
    for k in KEPT {
        if let Some(v) = row.remove(k) {
            out.insert(k.to_string(), v);
        }
    }
    if let Some(Value::Object(mut props)) = row.remove("properties") {
        let mut kept = serde_json::Map::new();
        for k in KEPT_PROPERTIES {
            if let Some(v) = props.remove(k) {
                kept.insert(k.to_string(), v);
            }
        }
        // An endpoint's NICs: their ids only.
        if let Some(Value::Array(nics)) = props.remove("networkInterfaces") {
            let ids = nics.into_iter().map(|n| json!({"id": n["id"]})).collect();
            kept.insert("networkInterfaces".to_string(), Value::Array(ids));
        }
        out.insert("properties".to_string(), Value::Object(kept));
    }
    Value::Object(out)
}

/// What a failure could not read: a subscription (as configured, or as a
/// management group's rows name it), or a management group whose query
/// failed, which names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Subscription(String),
    ManagementGroup(String),
}

impl Scope {
    /// The subscription, when it is one.
    pub fn subscription(&self) -> Option<&str> {
        match self {
            Scope::Subscription(s) => Some(s),
            Scope::ManagementGroup(_) => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Subscription(s) => write!(f, "subscription {s}"),
            Scope::ManagementGroup(g) => write!(f, "management group {g}"),
        }
    }
}

/// What one set of queries (one per type) covers. A request names
/// subscriptions or management groups, never both (Microsoft Learn,
/// "Understanding the Azure Resource Graph query language", query scope),
/// and each management group has queries of its own, so that one the
/// identity may not read fails only what it covers.
#[derive(Clone, Copy)]
enum Covered<'c> {
    /// Up to [`SUBSCRIPTIONS_PER_QUERY`] of the configured subscriptions.
    Subscriptions(&'c [String]),
    /// A management group: the subscriptions under it, at every level,
    /// that the identity may read.
    Group(&'c str),
}

impl Covered<'_> {
    /// The request body's member naming it.
    fn member(self) -> (&'static str, Value) {
        match self {
            Covered::Subscriptions(subs) => ("subscriptions", json!(subs)),
            Covered::Group(g) => ("managementGroups", json!([g])),
        }
    }
}

/// What one [`Covered`]'s queries gave: the subscriptions they read, the
/// workspaces, and every other type's rows.
struct Part {
    readable: HashSet<String>,
    workspaces: Vec<Value>,
    rows: Vec<(&'static str, Value)>,
}

/// What a round reads resources and lists from.
pub struct Inventory<'a> {
    arm: &'a Arm,
    /// Lower-case resource id → the resource as Resource Graph gives it;
    /// empty when everything is read through ARM.
    rows: HashMap<String, Value>,
    /// Lower-case list path (`<workspace>/onlineendpoints`) → its entries,
    /// for the lists Resource Graph answered.
    lists: HashMap<String, Vec<Value>>,
    /// The private endpoints Resource Graph showed, by lower-case id, in
    /// the order read; `None` when everything is read through ARM.
    endpoints: Option<Vec<String>>,
}

impl<'a> Inventory<'a> {
    /// Everything read through ARM.
    pub fn arm(arm: &'a Arm) -> Self {
        Inventory {
            arm,
            rows: HashMap::new(),
            lists: HashMap::new(),
            endpoints: None,
        }
    }

    /// Resource Graph's rows of every type a round looks at, over `cfg`'s
    /// subscriptions and management groups; the workspaces; and the
    /// subscriptions read (lower-case). What could not be read goes to
    /// `failed`: each configured subscription of a failed query, one
    /// Resource Graph does not show, and a management group whose query
    /// failed.
    pub async fn graph(
        arm: &'a Arm,
        cfg: &AzureConfig,
        failed: &mut Vec<(Scope, Failure)>,
    ) -> (Self, Vec<Value>, HashSet<String>) {
        let covered = (cfg.subscriptions.chunks(SUBSCRIPTIONS_PER_QUERY))
            .map(Covered::Subscriptions)
            .chain(cfg.management_groups.iter().map(|g| Covered::Group(g)));
        let mut inventory = Inventory::arm(arm);
        inventory.endpoints = Some(Vec::new());
        let mut workspaces = Vec::new();
        let mut read = HashSet::new();
        // A subscription in several of them gives its rows once.
        let mut merged = HashSet::new();
        for covers in covered {
            let part = match read_part(arm, covers).await {
                Ok(part) => part,
                Err(f) => {
                    failed.extend(match covers {
                        Covered::Subscriptions(subs) => (subs.iter())
                            .map(|s| (Scope::Subscription(s.clone()), f.clone()))
                            .collect(),
                        Covered::Group(g) => vec![(Scope::ManagementGroup(g.to_string()), f)],
                    });
                    continue;
                }
            };
            // Resource Graph answers for the subscriptions it can read and
            // leaves the others out without an error: a configured one it
            // does not show is not one without workspaces.
            if let Covered::Subscriptions(subs) = covers {
                failed.extend(
                    (subs.iter())
                        .filter(|s| !part.readable.contains(&s.to_ascii_lowercase()))
                        .map(|s| (Scope::Subscription(s.clone()), Failure::Unseen(s.clone()))),
                );
            }
            read.extend(part.readable);
            let mut new = |row: &Value| {
                let id = row.get("id").and_then(Value::as_str)?;
                Some(id.to_ascii_lowercase()).filter(|id| merged.insert(id.clone()))
            };
            for w in part.workspaces {
                // A workspace Resource Graph shows with no online endpoint has none.
                if let Some(id) = new(&w) {
                    inventory
                        .lists
                        .insert(format!("{id}/onlineendpoints"), Vec::new());
                    workspaces.push(w);
                }
            }
            for (ty, row) in part.rows {
                let Some(id) = new(&row) else {
                    continue;
                };
                if ty.ends_with("/onlineendpoints") {
                    if let Some((list, _)) = id.rsplit_once('/')
                        && let Some(entries) = inventory.lists.get_mut(list)
                    {
                        entries.push(row);
                    }
                } else {
                    if ty == PRIVATE_ENDPOINTS
                        && let Some(list) = &mut inventory.endpoints
                    {
                        list.push(id.clone());
                    }
                    inventory.rows.insert(id, row);
                }
            }
        }
        (inventory, workspaces, read)
    }

    /// The resource `path` (see [`Arm::get`]): Resource Graph's row, or
    /// else ARM's answer.
    pub async fn get(&self, path: &str, api_version: &str) -> Result<Value, Failure> {
        match self.rows.get(&path.to_ascii_lowercase()) {
            Some(row) => Ok(row.clone()),
            None => self.arm.get(path, api_version).await,
        }
    }

    /// Every private endpoint Resource Graph showed; `None` when the round
    /// reads through ARM, which lists them per subscription.
    pub fn private_endpoints(&self) -> Option<Vec<Value>> {
        let ids = self.endpoints.as_ref()?;
        Some(
            ids.iter()
                .filter_map(|id| self.rows.get(id).cloned())
                .collect(),
        )
    }

    /// Every entry of the list `path` (see [`Arm::list`]): from Resource
    /// Graph's rows where they hold it, or else ARM's.
    pub async fn list(&self, path: &str, api_version: &str) -> Result<Vec<Value>, Failure> {
        match self.lists.get(&path.to_ascii_lowercase()) {
            Some(entries) => Ok(entries.clone()),
            None => self.arm.list(path, api_version).await,
        }
    }
}

/// Every query of a round over what `covers` covers: the subscriptions
/// it can read, then each type; the first failure fails them all.
async fn read_part(arm: &Arm, covers: Covered<'_>) -> Result<Part, Failure> {
    let mut readable = HashSet::new();
    for row in pages(arm, covers, SUBSCRIPTIONS).await? {
        let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
        if let Some(sub) = subscription_of(id) {
            readable.insert(sub.to_ascii_lowercase());
        }
    }
    let workspaces = pages(arm, covers, &of_type(WORKSPACES, "")).await?;
    let mut rows = Vec::new();
    for (ty, narrowed) in TYPES {
        let page = pages(arm, covers, &of_type(ty, narrowed)).await?;
        rows.extend(page.into_iter().map(|row| (ty, row)));
    }
    Ok(Part {
        readable,
        workspaces,
        rows,
    })
}

/// The query for every row of `ty`, narrowed by `narrowed` (a KQL tail).
fn of_type(ty: &str, narrowed: &str) -> String {
    format!("resources | where type =~ '{ty}'{narrowed}")
}

/// The rows of one query, following `$skipToken`; a token that comes back
/// ends the query as failed instead of reading the same pages for ever.
async fn pages(arm: &Arm, covers: Covered<'_>, kql: &str) -> Result<Vec<Value>, Failure> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut skip: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut options = json!({"$top": PAGE_ROWS, "resultFormat": "objectArray"});
        if let Some(token) = &skip {
            options["$skipToken"] = token.clone().into();
        }
        let mut body = json!({"query": kql, "options": options});
        let (member, scope) = covers.member();
        body[member] = scope;
        let mut page = arm.post(GRAPH_PATH, GRAPH_API, &body).await?;
        match page.get_mut("data").map(Value::take) {
            Some(Value::Array(data)) => rows.extend(data.into_iter().map(slim)),
            _ => {
                return Err(Failure::malformed(
                    GRAPH_PATH,
                    format!("{kql}: an answer without a \"data\" array of objects"),
                ));
            }
        }
        skip = match page.get("$skipToken") {
            Some(Value::String(t)) if !t.is_empty() => Some(t.clone()),
            Some(Value::String(_) | Value::Null) | None => return Ok(rows),
            Some(_) => return Err(Failure::malformed(GRAPH_PATH, "$skipToken is not a string")),
        };
        if let Some(token) = &skip
            && !seen.insert(token.clone())
        {
            return Err(Failure::malformed(
                GRAPH_PATH,
                format!("{kql}: $skipToken comes back to a page already read"),
            ));
        }
    }
    Err(Failure::malformed(
        GRAPH_PATH,
        format!("{kql}: more than {MAX_PAGES} pages"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_only_what_a_round_reads() {
        let row = json!({"id": "/subscriptions/s/x", "name": "pe", "type": "t",
            "location": "eastus", "tags": {"a": "b"}, "sku": {"name": "S"},
            "subscriptionId": "s", "resourceGroup": "rg",
            "properties": {"subnet": {"id": "/sn"}, "customDnsConfigs": [],
                "provisioningState": "Succeeded",
                "networkInterfaces": [{"id": "/nic", "properties": {"big": 1}}]}});
        assert_eq!(
            slim(row),
            json!({"id": "/subscriptions/s/x", "name": "pe", "type": "t", "location": "eastus",
                "properties": {"subnet": {"id": "/sn"}, "customDnsConfigs": [],
                    "networkInterfaces": [{"id": "/nic"}]}})
        );
    }
}
