//! From the raw [`Spec`] to a [`Config`]: every value checked and located
//! (file, line and column), defaults filled in, and the warnings gathered. Pure: the
//! import files come read.
//!
//! One file per section, each turning that section's spec into its checked
//! type and giving its own warnings: `server`, `metrics`, `upstream`,
//! `zone`, `workspace`, `record`, `import`, `azure`. `across` holds the
//! checks between sections, `cx` what every section's check shares.

mod across;
mod azure;
mod cx;
mod import;
mod metrics;
mod record;
mod server;
mod upstream;
mod workspace;
mod zone;

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;

use super::spec::Spec;
use super::{Config, LogConfig};
use crate::diagnostics::{ConfigError, Lines};
use crate::import::{ImportError, Loaded};
use crate::names;
pub(super) use across::import_warnings;
use cx::Cx;

/// Checks `spec`, read from `path` whose text `lines` holds, with what each
/// of its `[[import]]`s read, in order.
pub(super) fn validate(
    path: &Path,
    lines: &Lines<'_>,
    spec: Spec,
    imported: Vec<Result<Loaded, ImportError>>,
) -> Result<Config, ConfigError> {
    let cx = Cx::new(path, lines);
    let Spec {
        server,
        metrics,
        upstream: upstream_spec,
        zone,
        log,
        workspace,
        record,
        import,
        azure,
    } = spec;
    let server = cx.server(&server)?;
    let metrics = metrics.map(|m| cx.metrics(&m)).transpose()?;
    let upstream = cx.upstream(&upstream_spec)?;
    cx.upstream_is_not_amldns(&upstream_spec.servers, &upstream.servers, &server.listen)?;
    let zone = cx.zone(&zone)?;
    let mut workspaces = cx.workspaces(&workspace)?;
    let records = cx.records(record)?;
    let mut imports = cx.imports(&import, imported)?;
    cx.imported_workspaces(imports.workspaces, &imports.names, &mut workspaces);
    cx.imported_computes(imports.computes, &mut workspaces, &mut imports.names);
    let azure = azure.map(|a| cx.azure(&a)).transpose()?;
    cx.gives_local_names(
        workspaces.list(),
        &records,
        &imports.names,
        &import,
        azure.is_some() || !imports.discoveries.is_empty(),
    )?;
    let mut warnings = cx.take_warnings();
    warnings.extend(import_warnings(&imports.names, workspaces.list()));
    // A regional wildcard an endpoint lists only said which address is the
    // inference (or API) IP, read above; it is not served.
    let mut served = imports.names;
    served.retain(|n| !names::is_regional_wildcard(&n.name));

    Ok(Config {
        path: path.to_path_buf(),
        server,
        metrics,
        upstream,
        zone,
        log: LogConfig {
            queries: log.queries,
        },
        workspaces: workspaces.into_list(),
        records,
        imports: served,
        discoveries: imports.discoveries,
        azure,
        warnings,
        fingerprint: fingerprint(lines.text(), &imports.digests),
        sha256: super::sha256_hex(lines.text()),
    })
}

/// A hash of the config's text and of each import's files, as read: equal
/// fingerprints, equal configurations.
fn fingerprint(text: &str, import_digests: &[u64]) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    for digest in import_digests {
        digest.hash(&mut h);
    }
    h.finish()
}
