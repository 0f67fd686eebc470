//! One hour of people counting once it has left the gateway's JSON behind: the rows the client
//! decodes and the poller, backfill and `fetch` pick hours from. A missing value is `None`,
//! never zero.

use chrono::NaiveDateTime;

/// One shop as the gateway describes it, with every hourly row it returned.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopSeries {
    /// The shop's numeric id (`depId`), the key of `S_<depId>` ids.
    pub dep_id: String,
    /// Display name; may be empty.
    pub name: String,
    /// The store code (`shopId`); often empty.
    pub code: String,
    pub rows: Vec<ShopRow>,
}

/// One hour of a shop. `hour` is the shop-local start of the hour the row counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ShopRow {
    pub hour: NaiveDateTime,
    pub values: ShopValues,
}

/// The counts of one shop hour. Rates are ratios (0–1), not percentages.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ShopValues {
    pub walk_in: Option<f64>,
    pub passing: Option<f64>,
    pub outside: Option<f64>,
    pub walk_in_rate: Option<f64>,
    pub walk_out: Option<f64>,
    pub fitting_rate: Option<f64>,
}

/// One hour of a counting device. `hour` is the local start of the hour the row counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceRow {
    pub hour: NaiveDateTime,
    pub values: DeviceValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceValues {
    pub walk_in: Option<f64>,
    pub walk_out: Option<f64>,
}
