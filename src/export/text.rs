//! Text helpers the outputs share: comment blocks, wildcard names, and the
//! scripts' placeholders.

use std::fmt::Write as _;

/// `text`, each line behind `prefix` (a comment marker).
pub(super) fn comment(out: &mut String, prefix: &str, text: &str) {
    for line in text.lines() {
        let _ = writeln!(out, "{}", format!("{prefix} {line}").trim_end());
    }
}

/// `*.x` → `Some("x")`.
pub(super) fn wildcard_parent(name: &str) -> Option<&str> {
    name.strip_prefix("*.")
}

/// A script under `scripts/` (read with `include_str!`) with its note cut
/// off and its placeholders filled. The note is everything up to the first
/// empty line: it says what the script is and what fills each placeholder.
/// A line that is only `{{name}}` is replaced by `name`'s value, whole lines
/// each ending in a newline (none when empty); `{{name}}` inside a line is
/// replaced by the value as it is.
pub(super) fn fill(script: &str, values: &[(&str, &str)]) -> String {
    let body = script.split_once("\n\n").map_or(script, |(_, body)| body);
    let values: Vec<(String, &str)> = values
        .iter()
        .map(|(name, value)| (format!("{{{{{name}}}}}"), *value))
        .collect();
    let mut out = String::new();
    for line in body.split_inclusive('\n') {
        match values
            .iter()
            .find(|(p, _)| line.strip_suffix('\n') == Some(p))
        {
            Some((_, lines)) => out.push_str(lines),
            None => {
                let filled = values
                    .iter()
                    .fold(line.to_string(), |l, (p, v)| l.replace(p, v));
                out.push_str(&filled);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::fill;

    /// A line that is only a placeholder becomes the value's lines; one
    /// inside a line, the value; the note before the first empty line goes.
    #[test]
    fn fill_places_values() {
        let script = "# note\n# {{a}}\n\nx\n{{a}}\ny = ({{b}})\n\nz\n";
        assert_eq!(
            fill(script, &[("a", "1\n2\n"), ("b", "3")]),
            "x\n1\n2\ny = (3)\n\nz\n"
        );
        assert_eq!(fill(script, &[("a", ""), ("b", "")]), "x\ny = ()\n\nz\n");
    }
}
