//! One hour of people counting once it has left the gateway's JSON behind: the rows the client
//! decodes and the poller, backfill and `fetch` pick hours from. A missing value is `None`,
//! never zero. The values themselves are declared with their metric families in
//! [`crate::schema`].

use chrono::NaiveDateTime;

use crate::schema::{DeviceValues, ShopValues};

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

/// One hour of a counting device. `hour` is the local start of the hour the row counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DeviceRow {
    pub hour: NaiveDateTime,
    pub values: DeviceValues,
}
