//! The raw file shape (SPEC §2): what serde reads, nothing checked yet
//! beyond types and known keys. Only [`super::validate`] sees it.

use serde::Deserialize;
use toml::Spanned;

use crate::diagnostics::{ConfigError, Lines, closest};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct Spec {
    #[serde(default)]
    pub server: ServerSpec,
    pub metrics: Option<MetricsSpec>,
    #[serde(default)]
    pub upstream: UpstreamSpec,
    #[serde(default)]
    pub zone: ZoneSpec,
    #[serde(default)]
    pub log: LogSpec,
    #[serde(default)]
    pub workspace: Vec<WorkspaceSpec>,
    #[serde(default)]
    pub record: Vec<RecordSpec>,
    #[serde(default)]
    pub import: Vec<ImportSpec>,
    pub azure: Option<Spanned<AzureSpec>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ServerSpec {
    /// UDP and TCP on each address.
    pub listen: Option<Spanned<Vec<Spanned<String>>>>,
    /// Client networks that may query; everyone else gets REFUSED.
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    pub tcp_connections: Option<Spanned<u64>>,
    pub tcp_idle_timeout_ms: Option<Spanned<u64>>,
    /// What `id.server`/`hostname.bind` CH TXT and NSID say (SPEC §9).
    pub identity: Option<Spanned<String>>,
    /// Threads answering, each with its own socket per listen address.
    pub threads: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MetricsSpec {
    pub listen: Spanned<String>,
    /// Who may POST /reload (SPEC §4); default loopback only.
    pub control_allow: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct UpstreamSpec {
    pub servers: Option<Spanned<Vec<Spanned<String>>>>,
    pub timeout_ms: Option<Spanned<u64>>,
    pub cache_entries: Option<u64>,
    pub max_in_flight: Option<Spanned<u64>>,
    pub max_qps: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ZoneSpec {
    pub ttl: Option<Spanned<u32>>,
    pub answer: Option<AnswerSpec>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LogSpec {
    /// One line per query: client, name, type, outcome, rcode, latency.
    #[serde(default)]
    pub queries: bool,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum AnswerSpec {
    A,
    Cname,
}

#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub(super) enum CloudSpec {
    #[default]
    Public,
    China,
    Usgov,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WorkspaceSpec {
    pub name: Spanned<String>,
    pub id: Spanned<String>,
    pub region: Spanned<String>,
    #[serde(default)]
    pub cloud: CloudSpec,
    pub ip: Spanned<String>,
    pub notebook_ip: Option<Spanned<String>>,
    pub inference_ip: Option<Spanned<String>>,
    pub notebook_fqdn: Option<Spanned<String>>,
    #[serde(default)]
    pub instances: Vec<Spanned<String>>,
    #[serde(default)]
    pub instances_wildcard: bool,
    #[serde(default)]
    pub online_endpoints: Vec<Spanned<String>>,
    #[serde(default)]
    pub inference_wildcard: bool,
    #[serde(default)]
    pub projects: Vec<ProjectSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectSpec {
    pub name: Spanned<String>,
    pub id: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordSpec {
    pub name: Spanned<String>,
    #[serde(default)]
    pub a: Vec<Spanned<String>>,
    #[serde(default)]
    pub aaaa: Vec<Spanned<String>>,
    pub cname: Option<Spanned<String>>,
    pub ttl: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ImportSpec {
    pub path: Spanned<String>,
}

/// `[azure]` (SPEC §8): discovery from Azure Resource Manager.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AzureSpec {
    /// Subscription ids to scan.
    pub subscriptions: Spanned<Vec<Spanned<String>>>,
    /// Only these resource groups (case-insensitive); all when empty.
    #[serde(default)]
    pub resource_groups: Vec<Spanned<String>>,
    #[serde(default)]
    pub auth: AuthSpec,
    /// A user-assigned managed identity, or the workload identity's client.
    pub client_id: Option<Spanned<String>>,
    pub interval_s: Option<Spanned<u64>>,
    /// Picks the default `arm_endpoint` and the token's resource.
    #[serde(default)]
    pub cloud: CloudSpec,
    pub arm_endpoint: Option<Spanned<String>>,
    pub imds_endpoint: Option<Spanned<String>>,
    /// One ARM or token request may take this long.
    pub timeout_ms: Option<Spanned<u64>>,
    /// ARM reads per second at most, so that a large round stays under
    /// ARM's throttling.
    pub max_reads_per_second: Option<Spanned<u64>>,
    /// Where the last good discovery is kept, relative to the config's folder.
    pub state_file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "kebab-case")]
pub(super) enum AuthSpec {
    #[default]
    ManagedIdentity,
    WorkloadIdentity,
    Cli,
}

/// Reads `lines`' text as a [`Spec`]; a TOML or shape error is located and,
/// where serde's words would leave an operator guessing, says what to write.
pub(super) fn read(lines: &Lines) -> Result<Spec, ConfigError> {
    toml::from_str(lines.text()).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim();
        ConfigError::Invalid {
            at: lines.locate(offset),
            message: explain(message, lines.line_around(offset))
                .unwrap_or_else(|| message.to_string()),
        }
    })
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
    use super::*;

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
