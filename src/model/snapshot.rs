//! What `/metrics` shows of the data, as of the newest poll: the newest hour of every shop and
//! device, and how the last poll of every configured target went.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::schema::{DeviceDayValues, DeviceValues, ShopBaseline, ShopDayValues, ShopMeta, ShopValues, TargetStatus};

/// Everything the value gauges show, as of the newest poll. Targets and shops absent from it
/// are absent from `/metrics`.
///
/// Each map is shared (`Arc`): a snapshot published again with new baselines shares the rest
/// with the one before, so that at 30,000 targets no second copy of megabytes is made while
/// both are held (by the metrics store, the status page and the poller). A round builds fresh
/// maps, which `Arc::make_mut` changes in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// By `depId`.
    pub shops: Arc<BTreeMap<String, ShopSample>>,
    /// By normalised mac.
    pub devices: Arc<BTreeMap<String, DeviceSample>>,
    /// By configured target (`S_…`, `O_…` or a mac).
    pub targets: Arc<BTreeMap<String, TargetStatus>>,
    /// The vendor's figures of each shop's local day so far, by `depId`: only for shops in
    /// `shops`, whose labels they are published with.
    pub shop_days: Arc<BTreeMap<String, DaySample<ShopDayValues>>>,
    /// Each device's local day so far, by normalised mac: only for devices in `devices`,
    /// whose labels they are published with.
    pub device_days: Arc<BTreeMap<String, DaySample<DeviceDayValues>>>,
    /// The walk-in baseline of the hour each shop's sample describes, by `depId`: only for
    /// shops in `shops`, whose labels they are published with.
    pub shop_baselines: BTreeMap<String, ShopBaseline>,
}

/// The figures of one shop's or device's local day so far. Its name and code are those of
/// its hourly sample (not held twice: at 30,000 targets that would be megabytes a snapshot).
#[derive(Debug, Clone, PartialEq)]
pub struct DaySample<V> {
    /// Unix time of the start of the local day.
    pub day_start: i64,
    pub values: V,
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
    /// What the configuration says of the shop and of that hour (`opretail_shop_open`,
    /// `opretail_shop_info`), set anew by every round.
    pub meta: ShopMeta,
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
