//! Where a round reads what exists: Azure Resource Graph (a few paged
//! queries per resource type, for every subscription at once), or ARM's
//! per-resource reads. A round asks this [`Inventory`] for resources and
//! lists as it would ask ARM; what Resource Graph gave is answered from
//! its rows, anything else (computes, which Resource Graph does not hold;
//! a resource in a subscription not listed) is read through ARM.
//!
//! Resource Graph 2022-10-01 (`specification/resourcegraph`,
//! `Microsoft.ResourceGraph/stable/2022-10-01`): `POST
//! /providers/Microsoft.ResourceGraph/resources` with the subscriptions,
//! a query, and `options` (`$top`, `$skipToken`, `resultFormat`); the
//! answer's `data` holds the rows, `$skipToken` the next page's token.

use std::collections::{HashMap, HashSet};

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
    ("microsoft.network/privateendpoints", ""),
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
const KEPT_PROPERTIES: [&str; 10] = [
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

/// What a round reads resources and lists from.
pub struct Inventory<'a> {
    arm: &'a Arm,
    /// Lower-case resource id → the resource as Resource Graph gives it;
    /// empty when everything is read through ARM.
    rows: HashMap<String, Value>,
    /// Lower-case list path (`<workspace>/onlineendpoints`) → its entries,
    /// for the lists Resource Graph answered.
    lists: HashMap<String, Vec<Value>>,
}

impl<'a> Inventory<'a> {
    /// Everything read through ARM.
    pub fn arm(arm: &'a Arm) -> Self {
        Inventory {
            arm,
            rows: HashMap::new(),
            lists: HashMap::new(),
        }
    }

    /// Resource Graph's rows of every type a round looks at, over `cfg`'s
    /// subscriptions; and the workspaces, as (where they were read, row).
    pub async fn graph(
        arm: &'a Arm,
        cfg: &AzureConfig,
    ) -> Result<(Self, Vec<(String, Value)>, HashSet<String>), Failure> {
        let readable = readable_subscriptions(arm, cfg).await?;
        let workspaces = query(arm, cfg, WORKSPACES, "").await?;
        let mut inventory = Inventory::arm(arm);
        // A workspace Resource Graph shows with no online endpoint has none.
        for w in &workspaces {
            if let Some(id) = w.get("id").and_then(Value::as_str) {
                let list = format!("{id}/onlineendpoints").to_ascii_lowercase();
                inventory.lists.insert(list, Vec::new());
            }
        }
        for (ty, narrowed) in TYPES {
            for row in query(arm, cfg, ty, narrowed).await? {
                let Some(id) = row.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let id = id.to_ascii_lowercase();
                if ty.ends_with("/onlineendpoints") {
                    if let Some((list, _)) = id.rsplit_once('/')
                        && let Some(entries) = inventory.lists.get_mut(list)
                    {
                        entries.push(row);
                    }
                } else {
                    inventory.rows.insert(id, row);
                }
            }
        }
        let workspaces = workspaces
            .into_iter()
            .map(|w| (GRAPH_PATH.to_string(), w))
            .collect();
        Ok((inventory, workspaces, readable))
    }

    /// The resource `path` (see [`Arm::get`]): Resource Graph's row, or
    /// else ARM's answer.
    pub async fn get(&self, path: &str, api_version: &str) -> Result<Value, Failure> {
        match self.rows.get(&path.to_ascii_lowercase()) {
            Some(row) => Ok(row.clone()),
            None => self.arm.get(path, api_version).await,
        }
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

/// The subscriptions of `cfg` Resource Graph can read, lower-case. It
/// answers for those only and leaves the others out without an error, so a
/// subscription gone or out of the identity's reach would read as one
/// without workspaces: one query tells them apart.
async fn readable_subscriptions(arm: &Arm, cfg: &AzureConfig) -> Result<HashSet<String>, Failure> {
    let mut readable = HashSet::new();
    for subscriptions in cfg.subscriptions.chunks(SUBSCRIPTIONS_PER_QUERY) {
        for row in pages(arm, subscriptions, SUBSCRIPTIONS).await? {
            let id = row.get("id").and_then(Value::as_str).unwrap_or_default();
            if let Some(sub) = subscription_of(id) {
                readable.insert(sub.to_ascii_lowercase());
            }
        }
    }
    Ok(readable)
}

/// Every row of `ty` (narrowed by `narrowed`, a KQL tail) in `cfg`'s
/// subscriptions, a page at a time.
async fn query(
    arm: &Arm,
    cfg: &AzureConfig,
    ty: &str,
    narrowed: &str,
) -> Result<Vec<Value>, Failure> {
    let mut rows = Vec::new();
    for subscriptions in cfg.subscriptions.chunks(SUBSCRIPTIONS_PER_QUERY) {
        rows.extend(
            pages(
                arm,
                subscriptions,
                &format!("resources | where type =~ '{ty}'{narrowed}"),
            )
            .await?,
        );
    }
    Ok(rows)
}

/// The rows of one query, following `$skipToken`; a token that comes back
/// ends the query as failed instead of reading the same pages for ever.
async fn pages(arm: &Arm, subscriptions: &[String], kql: &str) -> Result<Vec<Value>, Failure> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut skip: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut options = json!({"$top": PAGE_ROWS, "resultFormat": "objectArray"});
        if let Some(token) = &skip {
            options["$skipToken"] = token.clone().into();
        }
        let body = json!({"subscriptions": subscriptions, "query": kql, "options": options});
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
