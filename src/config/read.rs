//! The config file to a [`Config`]: read, parsed into its raw shape
//! (`spec`), its imports read, then checked (`validate`, which reads
//! nothing itself).

use std::path::Path;

use super::{Config, spec, validate};
use crate::diagnostics::{ConfigError, Lines};
use crate::import;

/// Reads, parses and validates the config at `path`, and its imports.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &text)
}

/// Parses and validates `text`, read from `path` (imports are read relative to it).
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let lines = Lines::new(path, text);
    let spec = spec::read(&lines)?;
    let imported = spec
        .import
        .iter()
        .map(|i| import::load(path, i.path.get_ref(), i.optional))
        .collect();
    validate::validate(path, &lines, spec, imported)
}
