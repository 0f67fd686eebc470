//! The `baseline` section: how many past weeks the walk-in baseline of each shop's reported
//! hour is computed over (see `crate::baseline`). Its own section so that later settings of the
//! baseline have a home beside `weeks`.

use super::declare::section;
use super::walk::Walker;

/// Default `baseline.weeks`: the same weekday and hour of the last four weeks.
pub(crate) const DEFAULT_BASELINE_WEEKS: usize = 4;
/// The most weeks `baseline.weeks` accepts: the history kept is 7 days per week for every shop.
pub(crate) const MAX_BASELINE_WEEKS: usize = 8;

section! {
    /// The walk-in baseline.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BaselineConfig, constructor with_defaults {
        /// Past weeks the baseline is computed over (1 to 8); 0 turns the baseline and its
        /// history calls off.
        weeks: usize = default(DEFAULT_BASELINE_WEEKS, read_weeks),
    }
}

impl Default for BaselineConfig {
    fn default() -> Self {
        BaselineConfig::with_defaults()
    }
}

fn read_weeks(w: &mut Walker<'_>, path: &str, value: &serde_yaml::Value) -> Option<usize> {
    w.integer(path, value, 0..=MAX_BASELINE_WEEKS)
}
