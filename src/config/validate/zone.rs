//! `[zone]`: how local names are answered, and the TTL rule a
//! `[[record]]`'s own TTL follows too.

use toml::Spanned;

use super::cx::Cx;
use crate::config::spec::{AnswerSpec, ZoneSpec};
use crate::diagnostics::ConfigError;
use crate::names::AnswerMode;
use crate::zone::ZoneSettings;

/// TTL of local answers; Azure's own private DNS records use 10 s, but the
/// table only changes on reload, so a minute spares clients' lookups.
const DEFAULT_TTL: u32 = 60;
/// RFC 2181 §8: TTLs are 31-bit; a week is already far more than useful here.
const MAX_TTL: u32 = 7 * 24 * 3600;

impl Cx<'_> {
    pub(super) fn zone(&self, zone: &ZoneSpec) -> Result<ZoneSettings, ConfigError> {
        let ttl = match &zone.ttl {
            Some(t) => self.ttl(t)?,
            None => DEFAULT_TTL,
        };
        let answer = match zone.answer {
            Some(AnswerSpec::Cname) => AnswerMode::Cname,
            Some(AnswerSpec::A) | None => AnswerMode::A,
        };
        Ok(ZoneSettings { ttl, answer })
    }

    pub(super) fn ttl(&self, t: &Spanned<u32>) -> Result<u32, ConfigError> {
        let v = *t.get_ref();
        if v == 0 || v > MAX_TTL {
            return Err(self.err(
                t,
                format!("ttl {v} is out of range: expected 1..={MAX_TTL}"),
            ));
        }
        Ok(v)
    }
}
