//! The config file to a [`Config`]: read, parsed into its raw shape
//! (`spec`), then checked (`validate`).

use std::path::Path;

use super::{Config, spec, validate};
use crate::diagnostics::{ConfigError, Lines};

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
    validate::validate(path, &lines, spec)
}
