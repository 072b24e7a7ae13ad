//! The raw file shape: what serde reads, nothing checked yet beyond types
//! and known keys. Only [`super::validate`] sees it; the keys, their
//! defaults and whether a reload changes them are in docs/configuration.md.
//! Each field says what its key is and its default (`None` or absent: the
//! default, chosen in `validate`).

// A key without a word here is a key nobody can look up: clippy (run with
// `-D warnings`) refuses an undocumented field, type or function.
#![warn(clippy::missing_docs_in_private_items)]

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer};
use toml_parser::Source;
use toml_parser::lexer::TokenKind;

use crate::diagnostics::{ConfigError, Lines, closest};
use crate::names::Cloud;

/// The whole file: one field per table.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Spec {
    /// `[server]`: the DNS listeners; all defaults when absent.
    #[serde(default)]
    pub server: ServerSpec,
    /// `[metrics]`: the HTTP listener; none is started when absent.
    pub metrics: Option<MetricsSpec>,
    /// `[upstream]`: the resolvers asked for names not answered here;
    /// all defaults (Azure's resolver) when absent.
    #[serde(default)]
    pub upstream: UpstreamSpec,
    /// `[zone]`: how local names are answered; all defaults when absent.
    #[serde(default)]
    pub zone: ZoneSpec,
    /// `[log]`: what is logged besides events; all defaults when absent.
    #[serde(default)]
    pub log: LogSpec,
    /// `[[workspace]]`: Azure ML workspaces whose names are answered; none
    /// by default.
    #[serde(default)]
    pub workspace: Vec<WorkspaceSpec>,
    /// `[[record]]`: single names with their own answer; none by default.
    #[serde(default)]
    pub record: Vec<RecordSpec>,
    /// `[[import]]`: files of names (or another amldns's discovery) read
    /// along with this one; none by default.
    #[serde(default)]
    pub import: Vec<ImportSpec>,
    /// `[azure]`: discovery from Azure Resource Manager; off when absent.
    pub azure: Option<Spanned<AzureSpec>>,
}

/// `[server]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerSpec {
    /// `listen`: addresses answered on, UDP and TCP on each; default
    /// `["0.0.0.0:53"]`.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// `allow`: client networks that may query, everyone else gets REFUSED;
    /// default the private ranges, shared address space (100.64.0.0/10),
    /// loopback and link-local.
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    /// `tcp_connections`: TCP connections open at once, on all listeners
    /// together; default 1024.
    pub tcp_connections: Option<Spanned<u64>>,
    /// `tcp_idle_timeout_ms`: a TCP connection with no query for this long
    /// is closed; default 10000.
    pub tcp_idle_timeout_ms: Option<Spanned<u64>>,
    /// `identity`: what `id.server`/`hostname.bind` CH TXT and NSID say;
    /// default this host's name.
    pub identity: Option<Spanned<String>>,
    /// `threads`: threads answering, each with its own socket per listen
    /// address; default the cores this process may use.
    pub threads: Option<Spanned<u64>>,
    /// `doh_canary`: answer Firefox's DNS-over-HTTPS canary NXDOMAIN here;
    /// default true.
    pub doh_canary: Option<bool>,
}

/// `[metrics]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetricsSpec {
    /// `listen`: the HTTP listener's address; required in `[metrics]`.
    pub listen: Spanned<String>,
    /// `control_allow`: who may POST (`/reload`, `/cache/flush`); anyone
    /// who reaches the listener may GET. Default loopback only.
    pub control_allow: Option<Vec<Spanned<String>>>,
}

/// `[upstream]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct UpstreamSpec {
    /// `servers`: resolvers asked in order, `ip` or `ip:port`; default
    /// Azure's resolver, 168.63.129.16.
    pub servers: Option<Spanned<Vec<Spanned<String>>>>,
    /// `timeout_ms`: how long one upstream gets before the next is tried;
    /// default 2000.
    pub timeout_ms: Option<Spanned<u64>>,
    /// `cache_entries`: forwarded answers kept, 0 for no cache; default
    /// 10000.
    pub cache_entries: Option<u64>,
    /// `cache_bytes`: the memory those answers may hold, 0 for no cache;
    /// default 64 MiB.
    pub cache_bytes: Option<Spanned<u64>>,
    /// `max_in_flight`: questions asked upstream at once; default 150.
    pub max_in_flight: Option<Spanned<u64>>,
    /// `max_qps`: upstream queries per second; default 900.
    pub max_qps: Option<Spanned<u64>>,
}

/// `[zone]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ZoneSpec {
    /// `ttl`: TTL of local answers and of negative ones; default 60.
    pub ttl: Option<Spanned<u32>>,
    /// `answer`: `"a"` (every name its address) or `"cname"` (public names
    /// a CNAME to their `privatelink.` name, as Azure answers); default
    /// `"a"`.
    pub answer: Option<AnswerSpec>,
}

/// `[log]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LogSpec {
    /// `queries`: one line per query (client, name, type, outcome, rcode,
    /// latency); default false.
    #[serde(default)]
    pub queries: bool,
}

/// `[zone] answer`'s values.
#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum AnswerSpec {
    /// `"a"`: every name answered with its address.
    A,
    /// `"cname"`: a public name answered with a CNAME to its
    /// `privatelink.` name, which holds the address.
    Cname,
}

/// One `[[workspace]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkspaceSpec {
    /// `name`: the workspace's name; required.
    pub name: Spanned<String>,
    /// `id`: the workspace id (a UUID, `properties.workspaceId`); required.
    pub id: Spanned<String>,
    /// `region`: its region's short name, e.g. `eastus`; required.
    pub region: Spanned<String>,
    /// `cloud`: `"public"`, `"china"` or `"usgov"`; default `"public"`.
    #[serde(default)]
    pub cloud: Cloud,
    /// `ip`: the private endpoint's API address (api, cert.api, compute
    /// instances); required.
    pub ip: Spanned<String>,
    /// `notebook_ip`: the notebooks name's address; default `ip`.
    pub notebook_ip: Option<Spanned<String>>,
    /// `inference_ip`: online endpoints' address; default `ip`.
    pub inference_ip: Option<Spanned<String>>,
    /// `notebook_fqdn`: Azure's exact notebooks name, when it differs from
    /// the derived one; default derived.
    pub notebook_fqdn: Option<Spanned<String>>,
    /// `instances`: compute instance names (each also gets its `-22` SSH
    /// name); default none.
    #[serde(default)]
    pub instances: Vec<Spanned<String>>,
    /// `instances_wildcard`: answer every instance name of the region with
    /// `ip`, which captures other workspaces' public instances too;
    /// default false.
    #[serde(default)]
    pub instances_wildcard: bool,
    /// `online_endpoints`: online endpoint names; default none.
    #[serde(default)]
    pub online_endpoints: Vec<Spanned<String>>,
    /// `inference_wildcard`: answer every online endpoint name of the
    /// region with `inference_ip`; default false.
    #[serde(default)]
    pub inference_wildcard: bool,
    /// `[[workspace.projects]]`: the hub's projects, each with names of its
    /// own; default none.
    #[serde(default)]
    pub projects: Vec<ProjectSpec>,
}

/// One `[[workspace.projects]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectSpec {
    /// `name`: the project's name; required.
    pub name: Spanned<String>,
    /// `id`: the project's workspace id (a UUID); required.
    pub id: Spanned<String>,
    /// `notebook_fqdn`: Azure's own notebooks name for the project
    /// (its `notebookInfo.fqdn`), when it differs from the derived one;
    /// default: derived.
    pub notebook_fqdn: Option<Spanned<String>>,
}

/// One `[[record]]`: any other private-endpoint name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordSpec {
    /// `name`: the name, `*.` first for a one-label wildcard; required.
    pub name: Spanned<String>,
    /// `a`: IPv4 answers; default none (a record needs `a`, `aaaa` or
    /// `cname`).
    #[serde(default)]
    pub a: Vec<Spanned<String>>,
    /// `aaaa`: IPv6 answers; default none.
    #[serde(default)]
    pub aaaa: Vec<Spanned<String>>,
    /// `cname`: the name it is an alias of, instead of addresses; default
    /// none.
    pub cname: Option<Spanned<String>>,
    /// `ttl`: its own TTL; default `[zone] ttl`.
    pub ttl: Option<Spanned<u32>>,
}

/// One `[[import]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportSpec {
    /// `path`: a file or glob, relative to the config's folder; required.
    pub path: Spanned<String>,
    /// `optional`: a missing file is no error, for a replica importing
    /// another's discovery file that starts before the first one is
    /// written; default false.
    #[serde(default)]
    pub optional: bool,
}

/// `[azure]`: discovery from Azure Resource Manager.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AzureSpec {
    /// `subscriptions`: subscription ids to scan; default none (this or
    /// `management_groups` is needed).
    pub subscriptions: Option<Spanned<Vec<Spanned<String>>>>,
    /// `management_groups`: management groups (their ids) whose
    /// subscriptions, all the way down, are scanned too: Resource Graph
    /// answers for a group's subscriptions the identity may read, so a
    /// subscription added under it needs no config change. Default none.
    pub management_groups: Option<Spanned<Vec<Spanned<String>>>>,
    /// `resource_groups`: only these resource groups (case-insensitive);
    /// default all.
    #[serde(default)]
    pub resource_groups: Vec<Spanned<String>>,
    /// `virtual_networks`: only private endpoints in these VNets (resource
    /// ids); default all.
    #[serde(default)]
    pub virtual_networks: Vec<Spanned<String>>,
    /// `auth`: where the ARM token comes from; default
    /// `"managed-identity"`.
    #[serde(default)]
    pub auth: AuthSpec,
    /// `inventory`: where the list of resources comes from; default
    /// `"resource-graph"`.
    #[serde(default)]
    pub inventory: InventorySpec,
    /// `private_endpoints`: which private endpoints give names, the
    /// workspaces' own and their dependencies' or every approved one in
    /// scope; default `"workspaces"`.
    #[serde(default)]
    pub private_endpoints: PrivateEndpointsSpec,
    /// `client_id`: a user-assigned managed identity, or the workload
    /// identity's client; default the system-assigned identity (or
    /// `AZURE_CLIENT_ID`).
    pub client_id: Option<Spanned<String>>,
    /// `tenant_id`: the Entra tenant the Azure CLI and workload identity
    /// ask for a token in; default theirs (or `AZURE_TENANT_ID`).
    pub tenant_id: Option<Spanned<String>>,
    /// `interval_s`: seconds from the end of one round to the start of the
    /// next; default 300.
    pub interval_s: Option<Spanned<u64>>,
    /// `cloud`: picks the default `arm_endpoint` and the token's resource;
    /// default `"public"`.
    #[serde(default)]
    pub cloud: Cloud,
    /// `arm_endpoint`: Azure Resource Manager's address; default the
    /// cloud's (`https://management.azure.com` for the public one).
    pub arm_endpoint: Option<Spanned<String>>,
    /// `imds_endpoint`: where a managed identity's token is asked for;
    /// default `http://169.254.169.254`.
    pub imds_endpoint: Option<Spanned<String>>,
    /// `ca_file`: extra CA certificates (PEM) for ARM and Entra ID,
    /// relative to the config's folder; default none.
    pub ca_file: Option<Spanned<String>>,
    /// `timeout_ms`: one ARM or token request may take this long; default
    /// 10000.
    pub timeout_ms: Option<Spanned<u64>>,
    /// `max_reads_per_second`: ARM reads per second at most, so that a
    /// large round stays under ARM's throttling; default 20.
    pub max_reads_per_second: Option<Spanned<u64>>,
    /// `state_file`: where the last good discovery is kept, relative to
    /// the config's folder; default none (a restart waits for a round).
    pub state_file: Option<Spanned<String>>,
}

/// `[azure] auth`'s values.
#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "kebab-case")]
pub(super) enum AuthSpec {
    /// `"managed-identity"`: IMDS, a VM's or scale set's identity.
    #[default]
    ManagedIdentity,
    /// `"workload-identity"`: AKS's federated token.
    WorkloadIdentity,
    /// `"cli"`: `az account get-access-token`.
    Cli,
}

/// `[azure] inventory`'s values.
#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "kebab-case")]
pub(super) enum InventorySpec {
    /// `"resource-graph"`: Azure Resource Graph queries.
    #[default]
    ResourceGraph,
    /// `"arm"`: per-resource ARM reads.
    Arm,
}

/// `[azure] private_endpoints`' values.
#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "kebab-case")]
pub(super) enum PrivateEndpointsSpec {
    /// `"workspaces"`: the workspaces' own and their dependencies'.
    #[default]
    Workspaces,
    /// `"all"`: every approved private endpoint in scope.
    All,
}

/// Reads `lines`' text as a [`Spec`]; a TOML or shape error is located and,
/// where serde's words would leave an operator guessing, says what to write.
pub(super) fn read(lines: &Lines<'_>) -> Result<Spec, ConfigError> {
    match by_table(lines.text()) {
        Some(spec) => Ok(spec),
        None => whole(lines),
    }
}

/// The text as one document, as `toml` reads it: for files [`by_table`]
/// leaves, and for every error, so that errors are TOML's own.
fn whole(lines: &Lines<'_>) -> Result<Spec, ConfigError> {
    toml::from_str(lines.text()).map_err(|e| {
        let message = e.message().trim();
        let (offset, message) = match e.span() {
            Some(s) => (s.start, message.to_string()),
            // TOML's "recursion limit" on a key of too many dotted parts
            // (a table header, say) comes without a place: it is the
            // longest key.
            None => match longest_key(lines.text()) {
                Some((at, parts)) => (at, format!("{message}: a key of {parts} dotted parts")),
                None => (0, message.to_string()),
            },
        };
        ConfigError::Invalid {
            at: lines.locate(offset),
            message: explain(&message, lines.line_around(offset)).unwrap_or(message),
        }
    })
}

/// Where the key of the most dotted parts (`a.b.c`: 3) starts in `text`,
/// and how many parts it has; `None` when the text has no key.
fn longest_key(text: &str) -> Option<(usize, usize)> {
    let part = |k| {
        matches!(
            k,
            TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString
        )
    };
    let mut longest: Option<(usize, usize)> = None;
    // The key being read: where it starts, its parts so far, and whether a
    // dot waits for the next part.
    let mut key: Option<(usize, usize, bool)> = None;
    for token in Source::new(text).lex() {
        let kind = token.kind();
        match (&mut key, kind) {
            (_, TokenKind::Whitespace) => continue,
            (Some((_, parts, dot @ true)), k) if part(k) => {
                *parts += 1;
                *dot = false;
                continue;
            }
            (Some((_, _, dot @ false)), TokenKind::Dot) => {
                *dot = true;
                continue;
            }
            _ => {}
        }
        if let Some((start, parts, _)) = key.take()
            && longest.is_none_or(|(_, most)| parts > most)
        {
            longest = Some((start, parts));
        }
        if part(kind) {
            key = Some((token.span().start(), 1, false));
        }
    }
    // The last token, `Eof`, ended the last key above.
    longest
}

/// The text read one top-level table at a time. `toml` turns a whole
/// document into tokens, then events (about 7 bytes each per byte of text),
/// then its tree: for 10,000 workspaces 33 MB at once (heaptrack), nearly
/// twice the zone table they make, beside the table serving during a
/// reload. A table at a time it is a few kilobytes. `None` for the files
/// [`split`] leaves, and when a part fails: [`whole`] then reads the file
/// and says what is wrong.
fn by_table(text: &str) -> Option<Spec> {
    let mut spec = Spec::default();
    // The `[name]` tables, deserialized together at the end.
    let mut tables = DeTable::new();
    split(text, |part| {
        let Range { start, end } = part.range;
        let doc = DeTable::parse(&text[start..end]).ok()?;
        let table: DeTable<'_> = doc
            .into_inner()
            .into_iter()
            .map(|(k, v)| (moved(k, start), moved_value(v, start)))
            .collect();
        if part.array {
            // Only its own list is set: the lists are the parts' in order.
            let mut one =
                Spec::deserialize(Deserializer::from(Spanned::new(start..end, table))).ok()?;
            spec.workspace.append(&mut one.workspace);
            spec.record.append(&mut one.record);
            spec.import.append(&mut one.import);
        } else {
            tables.extend(table);
        }
        Some(())
    })?;
    let mut head =
        Spec::deserialize(Deserializer::from(Spanned::new(0..text.len(), tables))).ok()?;
    head.workspace = spec.workspace;
    head.record = spec.record;
    head.import = spec.import;
    Some(head)
}

/// The `path` of every `[[import]]`, read leniently (a part that does not
/// parse is passed over), and without the tree of the whole document: the
/// watcher reads them at every start and reload, beside the table serving.
pub(super) fn import_patterns(text: &str) -> Vec<String> {
    fn read(text: &str, found: &mut Vec<String>) {
        let table = text.parse::<toml::Table>().ok();
        let imports = table
            .as_ref()
            .and_then(|t| t.get("import"))
            .and_then(toml::Value::as_array);
        found.extend(
            imports
                .into_iter()
                .flatten()
                .filter_map(|i| Some(i.get("path")?.as_str()?.to_string())),
        );
    }
    let mut found = Vec::new();
    let split = split(text, |part| {
        if part.name == "import" {
            read(&text[part.range], &mut found);
        }
        Some(())
    });
    if split.is_none() {
        // Not of the shape read by table: the whole document, as `whole`.
        found.clear();
        read(text, &mut found);
    }
    found
}

/// A top-level table of the text: its header's first key (empty for a
/// text without headers), whether its header is `[[name]]`, and its bytes,
/// up to the next top-level header.
struct Part<'t> {
    /// The header's first key.
    name: &'t str,
    /// Whether the header is `[[name]]`.
    array: bool,
    /// Its bytes in the text.
    range: Range<usize>,
}

/// Calls `each` with the parts of `text`, in order, split before each
/// `[name]` or `[[name]]` header: TOML ties a table's lines to nothing
/// outside it but its own name's other headers. So the parts read alone
/// give what the document gives when no key is set before the first
/// header, each `[name]` is given once and not also as `[[name]]`, and a
/// dotted header (`[[workspace.projects]]`) stays under the header of its
/// first key. `None` for any other file, and when `each` gives `None`.
fn split<'t>(text: &'t str, mut each: impl FnMut(Part<'t>) -> Option<()>) -> Option<()> {
    // Each name with a header so far (a few), and whether as `[[name]]`.
    let mut named: Vec<(&str, bool)> = Vec::new();
    // The part being read: where it starts, its name, whether `[[name]]`.
    let mut part: Option<(usize, &str, bool)> = None;
    let mut tokens = Source::new(text).lex().peekable();
    // Open brackets and braces: a header is a `[` at the start of a line
    // outside any value.
    let mut depth = 0usize;
    // Where the current line starts, while it holds only whitespace.
    let mut line = Some(0);
    while let Some(token) = tokens.next() {
        match token.kind() {
            TokenKind::Newline => {
                line = Some(token.span().end());
                continue;
            }
            TokenKind::Whitespace | TokenKind::Comment | TokenKind::Eof => continue,
            TokenKind::LeftSquareBracket if depth == 0 && line.is_some() => {
                let start = line?;
                let array = tokens
                    .next_if(|t| t.kind() == TokenKind::LeftSquareBracket)
                    .is_some();
                depth += 1 + usize::from(array);
                while tokens
                    .next_if(|t| t.kind() == TokenKind::Whitespace)
                    .is_some()
                {}
                // A quoted first key could name any table: left to `whole`.
                let key = tokens.next_if(|t| t.kind() == TokenKind::Atom)?;
                let name = &text[key.span().start()..key.span().end()];
                while tokens
                    .next_if(|t| t.kind() == TokenKind::Whitespace)
                    .is_some()
                {}
                let dotted = tokens.peek()?.kind() == TokenKind::Dot;
                if dotted {
                    // Under the header of its first key, or left to `whole`.
                    part.filter(|&(_, of, _)| of == name)?;
                } else {
                    match named.iter().find(|&&(n, _)| n == name) {
                        Some(&(_, was_array)) if !(array && was_array) => return None,
                        Some(_) => {}
                        None => named.push((name, array)),
                    }
                    if let Some((from, before, was_array)) = part {
                        each(Part {
                            name: before,
                            array: was_array,
                            range: from..start,
                        })?;
                    }
                    // The first part holds the comments above it, which
                    // TOML checks too.
                    part = Some((if part.is_some() { start } else { 0 }, name, array));
                }
            }
            TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => depth += 1,
            TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                depth = depth.checked_sub(1)?;
            }
            // A key set before the first header belongs to no part.
            _ if part.is_none() => return None,
            _ => {}
        }
        line = None;
    }
    let (from, name, array) = part.unwrap_or((0, "", false));
    each(Part {
        name,
        array,
        range: from..text.len(),
    })
}

/// `value` as read from a part of the text that starts at byte `by`.
fn moved<T>(value: Spanned<T>, by: usize) -> Spanned<T> {
    let span = value.span();
    Spanned::new(span.start + by..span.end + by, value.into_inner())
}

/// [`moved`], and every value inside it.
fn moved_value(value: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = value.span();
    let inner = match value.into_inner() {
        DeValue::Table(t) => DeValue::Table(
            t.into_iter()
                .map(|(k, v)| (moved(k, by), moved_value(v, by)))
                .collect(),
        ),
        DeValue::Array(mut a) => {
            for v in a.iter_mut() {
                let placeholder = Spanned::new(0..0, DeValue::Boolean(false));
                *v = moved_value(std::mem::replace(v, placeholder), by);
            }
            DeValue::Array(a)
        }
        scalar => scalar,
    };
    Spanned::new(span.start + by..span.end + by, inner)
}

/// A plainer message for serde's most common complaints, given the line of
/// the value at fault split where it starts (`listen = `, `"0.0.0.0:53"`): a
/// list written as one value and the reverse, a `[table]` that should be an
/// `[[array of tables]]`, and an unknown key or value that is a typo of a
/// known one. Serde quotes names in backticks: the first is the one given,
/// the rest (after "expected") are those it knows.
fn explain(message: &str, (before, at): (&str, &str)) -> Option<String> {
    let key = before
        .trim_end()
        .strip_suffix('=')
        .map(str::trim)
        .filter(|k| !k.is_empty());
    if message == "invalid type: map, expected a sequence" {
        let table = at.trim().strip_prefix('[')?.split(']').next()?.trim();
        return Some(format!(
            "[{table}] is a list of tables: write [[{table}]], once for each"
        ));
    }
    if let Some(rest) = message.strip_prefix("invalid type: string ")
        && rest.ends_with("expected a sequence")
    {
        let value = rest
            .trim_end_matches("expected a sequence")
            .trim_end_matches([',', ' ']);
        let key = key?;
        return Some(format!(
            "{key} is a list: write {key} = [{value}] (a list), not {key} = {value}"
        ));
    }
    if message.starts_with("invalid type: sequence") && message.ends_with("expected a string") {
        let key = key?;
        return Some(format!(
            "{key} takes one value, not a list: write {key} = \"…\" without the brackets"
        ));
    }
    let what = if message.starts_with("unknown field") {
        "key"
    } else if message.starts_with("unknown variant") {
        "value"
    } else {
        return None;
    };
    let mut quoted = message.split('`').skip(1).step_by(2);
    let given = quoted.next()?;
    let known: Vec<&str> = quoted.collect();
    let listed = known
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(match closest(given, known.iter().copied()) {
        Some(near) => format!("unknown {what} `{given}`: did you mean `{near}`? (known: {listed})"),
        None if known.is_empty() => format!("unknown {what} `{given}`: nothing is expected here"),
        None => format!("unknown {what} `{given}`: expected one of {listed}"),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A file of every section, dotted headers under their table, a
    /// `[[workspace]]` on either side of another table, brackets in strings
    /// and comments, values over several lines, indentation and CRLF.
    const SHAPES: &str = r#"# amldns
[server]
listen = [
  "127.0.0.1:5353",
]
allow = ["10.0.0.0/8"]  # [not a header]
[metrics]
listen = "127.0.0.1:9153"
control_allow = [
"127.0.0.1", # ]
]

[[workspace]]
name = "mlw-1"
id = "00000000-0000-4000-8000-000000000001"
region = "eastus"
ip = "10.0.0.5"
instances = ["ci-1", """
[[not.a.header]]"""]
  [[workspace.projects]]
  name = "p"
  id = "00000000-0000-4000-8000-000000000002"

[upstream]
servers = ["127.0.0.1:9"]
[zone]
ttl = 30
[[workspace]]
name = "mlw-2"
id = "00000000-0000-4000-8000-000000000003"
region = "westeurope"
ip = "10.0.1.5"
[[record]]
name = "probe.privatelink.blob.core.windows.net"
a = ["10.9.9.9"]
[[import]]
path = "pe/*.json"
[log]
queries = true
[azure]
subscriptions = ["00000000-0000-4000-8000-00000000000a"]
"#;

    #[test]
    fn by_table_gives_what_the_whole_document_gives() {
        let crlf = SHAPES.replace('\n', "\r\n");
        let texts = [
            SHAPES,
            &crlf,
            include_str!("../../config/amldns.toml"),
            include_str!("../../deploy/debian/amldns.toml"),
            "",
            "# nothing but a comment\n",
        ];
        for text in texts {
            let whole: Spec = toml::from_str(text).unwrap();
            let parts = by_table(text).unwrap_or_else(|| panic!("not read by table:\n{text}"));
            // Debug shows every span as well as every value.
            assert_eq!(format!("{parts:?}"), format!("{whole:?}"), "{text}");
        }
    }

    /// What `by_table` leaves to `whole`: files whose tables are not
    /// independent, and every error, which `read` still reports as TOML does.
    #[test]
    fn other_shapes_and_errors_are_read_whole() {
        let texts = [
            // A key before the first header.
            "server = { listen = [\"127.0.0.1:53\"] }\n[[workspace]]\nname = \"a\"\n",
            "[server]\nidentity = \"a\"\n[server]\nidentity = \"b\"\n",
            "[workspace]\nname = \"a\"\n[[workspace]]\nname = \"b\"\n",
            "[[workspace]]\nname = \"a\"\n[workspace]\nname = \"b\"\n",
            // A dotted header away from its table.
            "[[workspace]]\nname = \"a\"\n[log]\n[[workspace.projects]]\nname = \"p\"\nid = \"i\"\n",
            "[\"server\"]\nidentity = \"a\"\n",
            "[server]\nlisten = [\"127.0.0.1:53\"\n[upstream]\n",
            "[server]\nlisten = \"127.0.0.1:53\"\n",
            "[log]\nqueries = true\n[[workspace]]\nname = 5\n",
            "[serve]\n",
            // Characters TOML refuses in a comment, above any header.
            "# \u{1}\n[log]\n",
            "# \u{1}\n",
        ];
        let path = Path::new("t.toml");
        for text in texts {
            assert!(by_table(text).is_none(), "{text}");
            let lines = Lines::new(path, text);
            assert_eq!(
                format!("{:?}", read(&lines)),
                format!("{:?}", whole(&lines)),
                "{text}"
            );
        }
    }

    #[test]
    fn import_patterns_are_read_part_by_part() {
        let text = "[server]\n[[import]]\npath = \"a/*.json\"\n[[record]]\nname = \"x\"\n\
                    [[import]]\npath = \"b.json\"\n";
        assert_eq!(import_patterns(text), ["a/*.json", "b.json"]);
        // Leniently: a part that does not parse is passed over.
        let broken = "[[import]]\npath = \"a.json\"\n[server]\nlisten = [\n";
        assert_eq!(import_patterns(broken), ["a.json"]);
        // A shape not read by table is read whole.
        assert_eq!(
            import_patterns("import = [{ path = \"c.json\" }]\n"),
            ["c.json"]
        );
        assert!(import_patterns("[log]\nqueries = true\n").is_empty());
    }

    #[test]
    fn plainer_messages() {
        let cases = [
            (
                "invalid type: string \"0.0.0.0:53\", expected a sequence",
                "listen = ",
                Some(
                    "listen is a list: write listen = [\"0.0.0.0:53\"] (a list), not \
                     listen = \"0.0.0.0:53\"",
                ),
            ),
            (
                "invalid type: sequence, expected a string",
                "  listen =",
                Some(
                    "listen takes one value, not a list: write listen = \"…\" without the brackets",
                ),
            ),
            (
                "unknown field `notebok_ip`, expected one of `name`, `id`, `notebook_ip`",
                "",
                Some(
                    "unknown key `notebok_ip`: did you mean `notebook_ip`? (known: `name`, `id`, `notebook_ip`)",
                ),
            ),
            (
                "unknown field `colour`, expected `name` or `id`",
                "",
                Some("unknown key `colour`: expected one of `name`, `id`"),
            ),
            (
                "unknown variant `pubilc`, expected one of `public`, `china`, `usgov`",
                "cloud = ",
                Some(
                    "unknown value `pubilc`: did you mean `public`? (known: `public`, `china`, `usgov`)",
                ),
            ),
            (
                "unknown field `x`, there are no fields",
                "",
                Some("unknown key `x`: nothing is expected here"),
            ),
            (
                "invalid type: integer `5`, expected a string",
                "ip = ",
                None,
            ),
        ];
        for (message, before, want) in cases {
            // The value at fault, as the line goes on after `before`.
            let at = if before.is_empty() {
                "[workspace]"
            } else {
                "\"…\""
            };
            assert_eq!(explain(message, (before, at)).as_deref(), want, "{message}");
        }
    }
}
