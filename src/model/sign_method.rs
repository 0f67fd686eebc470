//! The `_sm` signature algorithm a gateway app is configured with: a setting of the
//! configuration that the client signs with, so it lives below both.

use std::fmt;
use std::str::FromStr;

/// The `_sm` signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignMethod {
    #[default]
    Md5,
    Sha1,
}

impl SignMethod {
    /// The value sent as `_sm`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignMethod::Md5 => "md5",
            SignMethod::Sha1 => "sha1",
        }
    }
}

impl fmt::Display for SignMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not a [`SignMethod`] (the text is shown lowercased).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sign method {0:?} (expected md5 or sha1)")]
pub struct ParseSignMethodError(String);

impl FromStr for SignMethod {
    type Err = ParseSignMethodError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "md5" => Ok(SignMethod::Md5),
            "sha1" => Ok(SignMethod::Sha1),
            other => Err(ParseSignMethodError(other.to_string())),
        }
    }
}
