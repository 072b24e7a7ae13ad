//! `[[import]]`: what the Azure CLI prints about a private endpoint, taken as
//! is (SPEC §1 "What Azure CLI prints"). Recognised shapes:
//!
//! - `az network private-endpoint show` (the whole object, or a list of them),
//!   whose `customDnsConfigs` holds `{fqdn, ipAddresses}`;
//! - that array alone (`--query customDnsConfigs`);
//! - the projected NIC form `[{IPAddress, FQDNs}]`;
//! - the raw NIC object (`ipConfigurations[].privateIPAddress` and
//!   `…privateLinkConnectionProperties.fqdns`, also under `properties`).
//!
//! Key case varies between CLI versions and ARM (`privateIpAddress`), so keys
//! are matched case-insensitively.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::diagnostics::{Lines, Location};
use crate::names::domain_name;

/// One name from an import file and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedName {
    /// Lower-case, no final dot; `*.` first for a wildcard.
    pub name: String,
    pub addrs: Vec<IpAddr>,
    pub at: Location,
}

/// What one `[[import]]` gave.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Files the path matched: a glob may match none yet.
    pub files: usize,
    pub names: Vec<ImportedName>,
    /// Files of a known shape that list no names.
    pub empty: Vec<PathBuf>,
    /// A hash of every file's path and text, as read.
    pub digest: u64,
}

/// The folder a pattern's files live in (up to its first glob component),
/// for watching: a new file matching the glob appears there.
pub fn base_dir(config_path: &Path, pattern: &str) -> PathBuf {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let mut base = dir.to_path_buf();
    let full = dir.join(pattern);
    let parts: Vec<_> = full.components().collect();
    for (i, c) in parts.iter().enumerate() {
        let is_last = i + 1 == parts.len();
        if is_last || c.as_os_str().to_string_lossy().contains(['*', '?', '[']) {
            break;
        }
        base = parts[..=i].iter().collect();
    }
    base
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The `path` itself is wrong; the caller locates it in the config.
    #[error("{0}")]
    Pattern(String),
    #[error("{at}: {message}")]
    At { at: Location, message: String },
}

/// The files `pattern` names now, relative to the config file's folder:
/// a glob's matches (maybe none), or the one file a plain path names.
pub fn files(config_path: &Path, pattern: &str) -> Result<Vec<PathBuf>, ImportError> {
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let full = dir.join(pattern);
    if !pattern.contains(['*', '?', '[']) {
        if !full.is_file() {
            return Err(ImportError::Pattern(format!(
                "import file {} does not exist",
                full.display()
            )));
        }
        return Ok(vec![full]);
    }
    let full = full
        .to_str()
        .ok_or_else(|| ImportError::Pattern(format!("import path {pattern:?} is not UTF-8")))?;
    let mut v = glob::glob(full)
        .map_err(|e| ImportError::Pattern(format!("import path {pattern:?}: {e}")))?
        .filter_map(Result::ok)
        .filter(|p| p.is_file())
        .collect::<Vec<_>>();
    v.sort();
    Ok(v)
}

/// Reads every file `pattern` names, relative to the config file's folder.
pub fn load(config_path: &Path, pattern: &str) -> Result<Loaded, ImportError> {
    let paths = files(config_path, pattern)?;
    let mut loaded = Loaded {
        files: paths.len(),
        ..Loaded::default()
    };
    let mut digest = DefaultHasher::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).map_err(|e| ImportError::At {
            at: Location::start_of(&path),
            message: format!("cannot read: {e}"),
        })?;
        (&path, &text).hash(&mut digest);
        let names = parse(&path, &text)?;
        if names.is_empty() {
            loaded.empty.push(path);
        }
        loaded.names.extend(names);
    }
    loaded.digest = digest.finish();
    Ok(loaded)
}

/// Names and addresses in one file's text.
pub fn parse(file: &Path, text: &str) -> Result<Vec<ImportedName>, ImportError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ImportError::At {
        at: Location {
            file: file.to_path_buf(),
            line: e.line().max(1),
            col: e.column().max(1),
        },
        message: format!("not JSON: {e}"),
    })?;
    let pairs = pairs(&value).ok_or(());
    let bad_shape = |why: &str| ImportError::At {
        at: Location::start_of(file),
        message: format!(
            "{why}: expected the output of `az network private-endpoint show` \
             (customDnsConfigs), or of `az network nic show` (ipConfigurations, or the \
             [{{IPAddress, FQDNs}}] projection)"
        ),
    };
    // An empty list is a known shape: Azure empties customDnsConfigs once a
    // private DNS zone group is attached. The caller warns about it.
    let pairs = pairs.map_err(|_| bad_shape("not a private-endpoint or NIC shape"))?;

    // Values are met in document order (almost: object keys come sorted), so
    // each search starts where the last one matched, keeping a large file
    // linear; a miss searches again from the top.
    let lines = Lines::new(file, text);
    let cursor = std::cell::Cell::new(0);
    let locate = |s: &str| {
        let needle = format!("\"{s}\"");
        let from = cursor.get();
        let at = text[from..]
            .find(&needle)
            .map(|i| i + from)
            .or_else(|| text.find(&needle))
            .unwrap_or(0);
        cursor.set(at);
        lines.locate(at)
    };
    let mut out = Vec::new();
    for (fqdn, ips) in pairs {
        let name = domain_name(fqdn).map_err(|why| ImportError::At {
            at: locate(fqdn),
            message: format!("{fqdn:?} is not a domain name: {why}"),
        })?;
        if ips.is_empty() {
            return Err(ImportError::At {
                at: locate(fqdn),
                message: format!("{fqdn} has no IP address"),
            });
        }
        let mut addrs = Vec::new();
        for ip in ips {
            let addr = ip.trim().parse::<IpAddr>().map_err(|_| ImportError::At {
                at: locate(ip),
                message: format!("{ip:?} is not an IP address"),
            })?;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        out.push(ImportedName {
            name,
            addrs,
            at: locate(fqdn),
        });
    }
    Ok(out)
}

/// (FQDN, its addresses) as found in the JSON.
pub type Pair<'a> = (&'a str, Vec<&'a str>);

/// The names and addresses in `v`, one of the shapes above; `None` when it
/// is none of them. Discovery reads ARM's private endpoints and NICs with it.
pub fn pairs(v: &Value) -> Option<Vec<Pair<'_>>> {
    let mut out = Ok(Vec::new());
    collect(v, &mut out);
    out.ok()
}

/// Walks one of the known shapes; `Err(())` when `v` is none of them.
fn collect<'a>(v: &'a Value, out: &mut Result<Vec<Pair<'a>>, ()>) {
    let Ok(pairs) = out else { return };
    match v {
        Value::Array(items) => {
            for item in items {
                collect(item, out);
            }
        }
        Value::Object(obj) => {
            // {fqdn, ipAddresses}: one entry of customDnsConfigs.
            if let Some(fqdn) = get(obj, "fqdn").and_then(Value::as_str) {
                pairs.push((fqdn, strings(get(obj, "ipAddresses"))));
            // {IPAddress, FQDNs}: the projected NIC form.
            } else if let Some(fqdns) = get(obj, "FQDNs") {
                let ip = get(obj, "IPAddress").and_then(Value::as_str);
                for f in strings(Some(fqdns)) {
                    pairs.push((f, ip.into_iter().collect()));
                }
            } else if let Some(configs) = field(obj, "customDnsConfigs") {
                collect(configs, out);
            } else if let Some(ipconfigs) = field(obj, "ipConfigurations") {
                let Some(list) = ipconfigs.as_array() else {
                    *out = Err(());
                    return;
                };
                for ipc in list.iter().filter_map(Value::as_object) {
                    let ip = field(ipc, "privateIPAddress").and_then(Value::as_str);
                    let fqdns = field(ipc, "privateLinkConnectionProperties")
                        .and_then(Value::as_object)
                        .and_then(|p| get(p, "fqdns"));
                    for f in strings(fqdns) {
                        pairs.push((f, ip.into_iter().collect()));
                    }
                }
            } else {
                *out = Err(());
            }
        }
        _ => *out = Err(()),
    }
}

/// A key of `obj`, in any letter case.
fn get<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// A key of `obj` or of its ARM `properties` object.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    get(obj, key).or_else(|| {
        get(obj, "properties")
            .and_then(Value::as_object)
            .and_then(|p| get(p, key))
    })
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, Vec<String>)> {
        parse(Path::new("pe.json"), text)
            .unwrap()
            .into_iter()
            .map(|n| (n.name, n.addrs.iter().map(ToString::to_string).collect()))
            .collect()
    }

    fn err(text: &str) -> (usize, usize, String) {
        match parse(Path::new("pe.json"), text) {
            Err(ImportError::At { at, message }) => (at.line, at.col, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    const G: &str = "fb7e20a0-8891-458b-b969-55ddb3382f51";

    #[test]
    fn private_endpoint_object() {
        let text = format!(
            r#"{{"name": "pe-mlw", "customDnsConfigs": [
                {{"fqdn": "{G}.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}},
                {{"fqdn": "*.{G}.inference.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.7"]}}
              ], "networkInterfaces": [{{"id": "/subscriptions/x"}}]}}"#
        );
        assert_eq!(
            names(&text),
            vec![
                (
                    format!("{G}.workspace.eastus.api.azureml.ms"),
                    vec!["10.1.0.5".into()]
                ),
                (
                    format!("*.{G}.inference.eastus.api.azureml.ms"),
                    vec!["10.1.0.7".into()]
                ),
            ]
        );
    }

    #[test]
    fn arm_properties_and_lists_of_endpoints() {
        let text = r#"[{"properties": {"customDnsConfigs": [
            {"FQDN": "A.Example.Com", "IPADDRESSES": ["10.0.0.1", "10.0.0.1", "10.0.0.2"]}]}}]"#;
        assert_eq!(
            names(text),
            vec![(
                "a.example.com".into(),
                vec!["10.0.0.1".into(), "10.0.0.2".into()]
            )]
        );
    }

    #[test]
    fn bare_custom_dns_configs_array() {
        let text =
            r#"[{"fqdn": "x.workspace.eastus.api.azureml.ms", "ipAddresses": ["10.1.0.5"]}]"#;
        assert_eq!(
            names(text),
            vec![(
                "x.workspace.eastus.api.azureml.ms".into(),
                vec!["10.1.0.5".into()]
            )]
        );
    }

    #[test]
    fn projected_nic_form() {
        let text = r#"[{"IPAddress": "10.1.0.5", "FQDNs": ["a.api.azureml.ms", "b.api.azureml.ms"]},
                       {"ipAddress": "10.1.0.6", "fqdns": ["nb.notebooks.azure.net"]}]"#;
        assert_eq!(
            names(text),
            vec![
                ("a.api.azureml.ms".into(), vec!["10.1.0.5".into()]),
                ("b.api.azureml.ms".into(), vec!["10.1.0.5".into()]),
                ("nb.notebooks.azure.net".into(), vec!["10.1.0.6".into()]),
            ]
        );
    }

    #[test]
    fn raw_nic_object_in_both_key_spellings() {
        let text = r#"{"ipConfigurations": [
            {"privateIPAddress": "10.1.0.5",
             "privateLinkConnectionProperties": {"fqdns": ["a.api.azureml.ms"]}},
            {"properties": {"privateIpAddress": "10.1.0.6",
             "privateLinkConnectionProperties": {"fqdns": ["nb.notebooks.azure.net"]}}}]}"#;
        assert_eq!(
            names(text),
            vec![
                ("a.api.azureml.ms".into(), vec!["10.1.0.5".into()]),
                ("nb.notebooks.azure.net".into(), vec!["10.1.0.6".into()]),
            ]
        );
        let arm = r#"{"properties": {"ipConfigurations": [{"properties": {"privateIPAddress":
            "10.1.0.5", "privateLinkConnectionProperties": {"fqdns": ["a.api.azureml.ms"]}}}]}}"#;
        assert_eq!(
            names(arm),
            vec![("a.api.azureml.ms".into(), vec!["10.1.0.5".into()])]
        );
    }

    #[test]
    fn base_dirs_for_watching() {
        let cfg = Path::new("/etc/amldns/amldns.toml");
        let cases = [
            ("pe/*.json", "/etc/amldns/pe"),
            ("pe/ws.json", "/etc/amldns/pe"),
            ("ws.json", "/etc/amldns"),
            ("*/pe.json", "/etc/amldns"),
            ("/var/lib/pe/*.json", "/var/lib/pe"),
        ];
        for (pattern, want) in cases {
            assert_eq!(base_dir(cfg, pattern), Path::new(want), "{pattern}");
        }
    }

    #[test]
    fn errors_are_located() {
        let (line, col, m) = err(
            "{\"customDnsConfigs\": [\n  {\"fqdn\": \"a.b\", \"ipAddresses\": [\"10.0.0.300\"]}]}",
        );
        assert_eq!((line, col), (2, 35), "{m}");
        assert!(m.contains("not an IP address"));

        let (line, col, m) = err("[{\"fqdn\": \"bad name.b\", \"ipAddresses\": [\"10.0.0.1\"]}]");
        assert_eq!((line, col), (1, 11));
        assert!(m.contains("not a domain name"));

        let (line, _, m) = err("{\n\"customDnsConfigs\": [,]}");
        assert_eq!(line, 2);
        assert!(m.contains("not JSON"));

        let (_, _, m) = err(r#"{"hello": "world"}"#);
        assert!(m.contains("not a private-endpoint or NIC shape"), "{m}");

        assert!(
            parse(Path::new("pe.json"), r#"{"customDnsConfigs": []}"#)
                .unwrap()
                .is_empty()
        );
        assert!(parse(Path::new("pe.json"), "[]").unwrap().is_empty());

        let (_, _, m) = err(r#"[{"fqdn": "a.b", "ipAddresses": []}]"#);
        assert!(m.contains("no IP address"), "{m}");
    }
}
