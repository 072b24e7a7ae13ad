//! What Azure accepts as a workspace name.

/// Whether `name` holds only what a workspace name may: letters, digits,
/// `-` and `_`. Anything else could not go into its notebooks label at all.
pub fn is_workspace_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Why Azure would not accept `name` (already [`is_workspace_name`]) as a
/// workspace or hub project name: it takes 3–33 characters, starting with a
/// letter or digit (the rule of the Azure portal and `az ml workspace create`).
pub fn workspace_name_issue(name: &str) -> Option<String> {
    let chars = name.chars().count();
    if !(3..=33).contains(&chars) {
        return Some(format!("has {chars} characters; Azure accepts 3 to 33"));
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("starts with neither a letter nor a digit".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names_azure_accepts() {
        let cases = [
            ("mlw-contoso-prod", None),
            ("mlw_contoso_prod", None),
            ("MLW1", None),
            ("9lives", None),
            (&"a".repeat(33)[..], None),
            ("ab", Some("has 2 characters; Azure accepts 3 to 33")),
            (
                &"a".repeat(56)[..],
                Some("has 56 characters; Azure accepts 3 to 33"),
            ),
            ("-mlw", Some("starts with neither a letter nor a digit")),
            ("_mlw", Some("starts with neither a letter nor a digit")),
        ];
        for (name, want) in cases {
            assert!(is_workspace_name(name), "{name}");
            assert_eq!(workspace_name_issue(name).as_deref(), want, "{name}");
        }
        assert!(!is_workspace_name("mlw.prod"));
        assert!(!is_workspace_name("mlw contoso"));
        assert!(!is_workspace_name(""));
    }
}
