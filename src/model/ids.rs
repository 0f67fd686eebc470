//! Who the exporter asks about: the gateway's shop and organisation ids (`S_…`, `O_…`) and
//! counting devices by MAC address. Parsed and normalised here once, so that the configuration,
//! the command line and the client all speak of a target in the same words.

use std::fmt;
use std::str::FromStr;

/// The gateway's `id` parameter: `S_<depId>` for a shop, `O_<orgId>` for an organisation node
/// (all its shops).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetId {
    Shop(u64),
    Org(u64),
}

impl TargetId {
    /// The number after the prefix.
    pub fn number(&self) -> u64 {
        match self {
            TargetId::Shop(n) | TargetId::Org(n) => *n,
        }
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetId::Shop(n) => write!(f, "S_{n}"),
            TargetId::Org(n) => write!(f, "O_{n}"),
        }
    }
}

/// Why a text is not a [`TargetId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseTargetIdError {
    /// Neither `S_` nor `O_` in front.
    #[error(
        "invalid id {0:?}: must start with S_ or O_ (S_<depId> for a shop, O_<orgId> for an organisation), e.g. S_9642"
    )]
    Prefix(String),
    /// The prefix is followed by something other than a positive integer.
    #[error("invalid id {id:?}: expected a positive integer after {prefix}, e.g. {prefix}9642")]
    Number { id: String, prefix: &'static str },
}

impl FromStr for TargetId {
    type Err = ParseTargetIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, make, digits): (&str, fn(u64) -> TargetId, &str) = if let Some(rest) = s.strip_prefix("S_") {
            ("S_", TargetId::Shop, rest)
        } else if let Some(rest) = s.strip_prefix("O_") {
            ("O_", TargetId::Org, rest)
        } else {
            return Err(ParseTargetIdError::Prefix(s.to_string()));
        };
        let bad = || ParseTargetIdError::Number {
            id: s.to_string(),
            prefix,
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        match digits.parse::<u64>() {
            Ok(n) if n > 0 => Ok(make(n)),
            _ => Err(bad()),
        }
    }
}

/// A counting device to poll with the per-device method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTarget {
    /// 12 lowercase hex digits, e.g. `d47c44906f14`.
    pub mac: String,
    /// Optional label.
    pub name: Option<String>,
    /// Optional label: the shop's depId in decimal, e.g. `9642`.
    pub shop_id: Option<String>,
}

/// Why a text is not a MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected 12 hex digits such as d47c44906f14 or D4:7C:44:90:6F:14")]
pub struct ParseMacError(String);

/// Normalises a MAC address (`D4:7C:44:90:6F:14`, `d4-7c-44-90-6f-14`, `d47c.4490.6f14`,
/// `d47c44906f14`) to 12 lowercase hex digits.
pub fn normalize_mac(s: &str) -> Result<String, ParseMacError> {
    let digits: String = s.chars().filter(|c| !matches!(c, ':' | '-' | '.')).collect();
    if digits.len() != 12 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ParseMacError(s.to_string()));
    }
    Ok(digits.to_ascii_lowercase())
}
