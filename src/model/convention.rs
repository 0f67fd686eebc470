//! The conventions the vendor's pages leave open, as settings: whether a row's `time` is the
//! start or the end of the hour it counts ([`RowTime`]), and whether rates arrive as
//! percentages or fractions ([`RateScale`]). Each is configured as [`Convention::Auto`]
//! (detected from the gateway's answers) or fixed; the client decides and applies them, and
//! `doctor` reports what it found.

use std::fmt;
use std::str::FromStr;

/// What a row's `time` labels: the start of the hour it counts (`13:00` for 13:00–14:00), or
/// its end (`14:00` for the same hour; the day's last hour is the next day's `00:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowTime {
    Start,
    End,
}

/// How `inShopRate` and `dressingRate` arrive: percentages (`8.14`) or fractions (`0.0814`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateScale {
    Percent,
    Fraction,
}

/// A convention as configured: detected from the answers, or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Convention<T> {
    #[default]
    Auto,
    Fixed(T),
}

/// The words a convention is written with in the configuration, in metrics and in `doctor`.
pub trait Named: Copy + Sized + 'static {
    /// Every value, with its word.
    const NAMES: &'static [(Self, &'static str)];

    fn as_str(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::NAMES
            .iter()
            .find(|(v, _)| *v == self)
            .map_or("", |(_, name)| *name)
    }
}

impl Named for RowTime {
    const NAMES: &'static [(Self, &'static str)] = &[(RowTime::Start, "start"), (RowTime::End, "end")];
}

impl Named for RateScale {
    const NAMES: &'static [(Self, &'static str)] =
        &[(RateScale::Percent, "percent"), (RateScale::Fraction, "fraction")];
}

impl fmt::Display for RowTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for RateScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a text is not a convention: the text and the words expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {given:?} (expected {expected})")]
pub struct ParseConventionError {
    given: String,
    expected: String,
}

impl<T: Named + PartialEq> FromStr for Convention<T> {
    type Err = ParseConventionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let word = s.trim().to_ascii_lowercase();
        if word == "auto" {
            return Ok(Convention::Auto);
        }
        T::NAMES
            .iter()
            .find(|(_, name)| *name == word)
            .map(|(v, _)| Convention::Fixed(*v))
            .ok_or_else(|| ParseConventionError {
                given: s.trim().to_string(),
                expected: std::iter::once("auto")
                    .chain(T::NAMES.iter().map(|(_, n)| *n))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl<T: Named + PartialEq> fmt::Display for Convention<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Convention::Auto => f.write_str("auto"),
            Convention::Fixed(v) => f.write_str(v.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conventions_read_and_write_their_words() {
        assert_eq!("auto".parse::<Convention<RowTime>>(), Ok(Convention::Auto));
        assert_eq!(
            " End ".parse::<Convention<RowTime>>(),
            Ok(Convention::Fixed(RowTime::End))
        );
        assert_eq!(
            "fraction".parse::<Convention<RateScale>>(),
            Ok(Convention::Fixed(RateScale::Fraction))
        );
        let e = "middle".parse::<Convention<RowTime>>().unwrap_err();
        assert_eq!(e.to_string(), r#"unknown value "middle" (expected auto, start, end)"#);
        assert_eq!(Convention::Fixed(RateScale::Percent).to_string(), "percent");
        assert_eq!(Convention::<RowTime>::Auto.to_string(), "auto");
    }
}
