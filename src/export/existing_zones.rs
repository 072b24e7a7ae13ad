//! `records --existing-zones SUBSCRIPTION/RESOURCE_GROUP`: the scripts for
//! Azure Private DNS (`azcli`, `powershell`) write only record sets, into the
//! zones that already exist in that resource group. A landing zone keeps its
//! `privatelink.*` zones there, centrally, and its policy forbids making them
//! anywhere else, so a script that makes zones fails there.

use std::str::FromStr;

/// Where the record sets go: the central zones' subscription (its id or
/// name) and resource group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingZones {
    pub subscription: String,
    pub resource_group: String,
}

/// A `--existing-zones` value that is not `SUBSCRIPTION/RESOURCE_GROUP`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadExistingZones {
    #[error(
        "{0:?}: give SUBSCRIPTION/RESOURCE_GROUP, the central private DNS zones' subscription and resource group"
    )]
    NoSlash(String),
    #[error("{0:?}: the {1} is empty (SUBSCRIPTION/RESOURCE_GROUP)")]
    Empty(String, &'static str),
    #[error(
        "{0:?}: {1:?} cannot be in a subscription or resource group here (letters, digits, spaces and - _ . ( ) only; give the subscription by its id)"
    )]
    Char(String, char),
}

impl FromStr for ExistingZones {
    type Err = BadExistingZones;

    /// The value goes into the scripts inside single quotes: the characters
    /// Azure allows in a resource group's name (and a subscription's id)
    /// cannot end the quote or expand there, and nothing else is taken.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (subscription, resource_group) = s
            .split_once('/')
            .ok_or_else(|| BadExistingZones::NoSlash(s.into()))?;
        for (part, what) in [
            (subscription, "subscription"),
            (resource_group, "resource group"),
        ] {
            if part.trim().is_empty() {
                return Err(BadExistingZones::Empty(s.into(), what));
            }
            if let Some(c) = part
                .chars()
                .find(|c| !(c.is_alphanumeric() || " -_.()".contains(*c)))
            {
                return Err(BadExistingZones::Char(s.into(), c));
            }
        }
        Ok(ExistingZones {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{BadExistingZones, ExistingZones};

    /// A subscription and a resource group, each non-empty, with no
    /// character that could leave the scripts' quotes.
    #[test]
    fn existing_zones_parse() {
        let ok: ExistingZones = "0b1f6471-1bf0-4dda-aec3-111122223333/rg-dns (central)"
            .parse()
            .unwrap();
        assert_eq!(ok.subscription, "0b1f6471-1bf0-4dda-aec3-111122223333");
        assert_eq!(ok.resource_group, "rg-dns (central)");
        let bad = |s: &str| s.parse::<ExistingZones>().unwrap_err();
        assert_eq!(bad("rg-dns"), BadExistingZones::NoSlash("rg-dns".into()));
        assert_eq!(
            bad("/rg-dns"),
            BadExistingZones::Empty("/rg-dns".into(), "subscription")
        );
        assert_eq!(
            bad("sub/"),
            BadExistingZones::Empty("sub/".into(), "resource group")
        );
        assert_eq!(
            bad("sub/rg/x"),
            BadExistingZones::Char("sub/rg/x".into(), '/')
        );
        assert_eq!(
            bad("sub/rg'x"),
            BadExistingZones::Char("sub/rg'x".into(), '\'')
        );
        assert_eq!(bad("s$b/rg"), BadExistingZones::Char("s$b/rg".into(), '$'));
    }
}
