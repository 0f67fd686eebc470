//! The exporter's own vocabulary: what one hour of people counting looks like once it has left
//! the gateway's JSON behind, and the clock every time decision is taken from.
//!
//! The client converts the gateway's loosely typed answers into these types; the poller picks
//! hours from them; the metrics store publishes them. A missing value is `None`, never zero.

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, NaiveDateTime, Utc};

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

/// Where "now" comes from. Production uses the system clock; tests pin it so that the hour
/// the exporter asks for, and the hour the simulator serves, are known in advance.
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `at` until [`Clock::set`] moves it.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(t) => *t.lock().unwrap_or_else(PoisonError::into_inner),
            None => Utc::now(),
        }
    }

    /// Moves a manual clock (and every clone of it). A system clock ignores this.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(t) = &self.manual {
            *t.lock().unwrap_or_else(PoisonError::into_inner) = at;
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "Clock::manual({})", self.now()),
            None => f.write_str("Clock::system"),
        }
    }
}

/// Everything the value gauges show, as of the newest poll. Targets and shops absent from it
/// are absent from `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// By `depId`.
    pub shops: std::collections::BTreeMap<String, ShopSample>,
    /// By normalised mac.
    pub devices: std::collections::BTreeMap<String, DeviceSample>,
    /// By configured target (`S_…`, `O_…` or a mac).
    pub targets: std::collections::BTreeMap<String, TargetStatus>,
}

/// The newest known hour of one shop.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopSample {
    pub dep_id: String,
    pub name: String,
    pub code: String,
    /// Unix time of the start of the hour the values describe.
    pub hour_start: i64,
    pub values: ShopValues,
}

/// The newest known hour of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceSample {
    pub mac: String,
    pub name: String,
    pub shop_id: String,
    pub hour_start: i64,
    pub values: DeviceValues,
}

/// How the last poll of one configured target went.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TargetStatus {
    pub up: bool,
    /// Unix time of the last successful poll, if there was one.
    pub last_success: Option<f64>,
}
