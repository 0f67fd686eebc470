//! The declarations themselves: the label sets, the shop and device values with their
//! families, and the two families of the configured targets. This is the file to edit to add
//! a value metric (then decode it in `client::decode`, send it from the simulator, and give it
//! a row in the README's metric table).
//!
//! The order of the values is the order backfill writes their families and `fetch` shows
//! its columns; the live exposition sorts families by name.

use super::{Ending, Family, Kind, Read, Unit};

/// The labels of a shop series: the shop's `depId`, its name and its store code.
pub(crate) const SHOP_LABELS: [&str; 3] = ["shop_id", "shop_name", "shop_code"];
/// The labels of a device series: its normalised mac, its configured name and shop.
pub(crate) const DEVICE_LABELS: [&str; 3] = ["mac", "device_name", "shop_id"];
/// The labels of `opretail_shop_info` before the configured static labels: the shop's, and the
/// configured organisation that returned it.
pub(crate) const SHOP_INFO_LABELS: [&str; 4] = ["shop_id", "shop_name", "shop_code", "org_id"];
/// The label of a configured target's series: `S_…`, `O_…` or a mac.
pub(crate) const TARGET_LABELS: [&str; 1] = ["target"];

hourly_values! {
    /// The counts of one shop hour. Rates are ratios (0–1), not percentages.
    pub struct ShopValues, families SHOP_FAMILIES, labels SHOP_LABELS, prefix "opretail_shop_";
    hour_timestamp_seconds: "Unix time of the start of the hour the shop's values describe";
    walk_in: Count, "Walk-ins (people entering the shop)";
    passing: Count, "Passers-by who did not enter the shop";
    outside: Count, "Outside traffic, walk-ins plus passers-by,";
    walk_in_rate: Ratio, "Walk-in rate as a ratio 0-1, walk-ins over outside traffic,";
    walk_out: Count, "Walk-outs (people leaving the shop)";
    fitting_rate: Ratio, "Fitting-room rate as a ratio 0-1, fitting-room visitors over walk-ins,";
}

hourly_values! {
    /// The counts of one device hour.
    pub struct DeviceValues, families DEVICE_FAMILIES, labels DEVICE_LABELS, prefix "opretail_device_";
    hour_timestamp_seconds: "Unix time of the start of the hour the device's values describe";
    walk_in: Count, "Walk-ins counted by the device";
    walk_out: Count, "Walk-outs counted by the device";
}

hourly_values! {
    /// The vendor's figures of one shop's local day so far. Rates are ratios (0–1).
    pub struct ShopDayValues, families SHOP_DAY_FAMILIES, labels SHOP_LABELS, prefix "opretail_shop_", ending Complete, stamp Complete;
    day_timestamp_seconds: "Unix time of the start of the shop-local day the shop's today values describe (the vendor's daily figures, polled from the Opretail gateway).";
    walk_in_today: Count, "Walk-ins of the shop-local day so far: the vendor's daily figure (the gateway's day rows, timeType=2), what the vendor console shows. Face-counting devices count a person once a day, so it can be below the sum of the hours. Fetched once per refresh, so it survives restarts and carries late uploads (polled from the Opretail gateway).";
    passing_today: Count, "Passers-by of the shop-local day so far: the vendor's daily figure (day rows, timeType=2; polled from the Opretail gateway).";
    outside_today: Count, "Outside traffic of the shop-local day so far: the vendor's daily figure (day rows, timeType=2; absent for a shop without an outside counter; polled from the Opretail gateway).";
    walk_out_today: Count, "Walk-outs of the shop-local day so far: the vendor's daily figure (day rows, timeType=2). Absent, never 0, when the vendor sends none (face-counting devices cannot count walk-outs; polled from the Opretail gateway).";
    walk_in_rate_today: Ratio, "Walk-in rate of the shop-local day so far as a ratio 0-1: the vendor's daily figure (day rows, timeType=2; absent for a shop without an outside counter; polled from the Opretail gateway).";
}

hourly_values! {
    /// One device's local day so far.
    pub struct DeviceDayValues, families DEVICE_DAY_FAMILIES, labels DEVICE_LABELS, prefix "opretail_device_", ending Complete, stamp Complete;
    day_timestamp_seconds: "Unix time of the start of the local day the device's today values describe (sums of its hourly rows, polled from the Opretail gateway).";
    walk_in_today: Count, "Walk-ins counted by the device in the local day so far: the sum of the device's hourly rows of the day, which every device call already answers (no extra call; polled from the Opretail gateway).";
    walk_out_today: Count, "Walk-outs counted by the device in the local day so far: the sum of its hourly rows of the day. Absent, never 0, when the device sends none (face-counting devices cannot count walk-outs; polled from the Opretail gateway).";
}

/// Static labels of a shop from the configuration, sorted by name: shared by every shop that
/// takes them as they are.
pub type StaticLabels = std::sync::Arc<[(String, String)]>;

/// What the configuration says of a shop, published with its hourly series (and vanishing
/// with them): whether their hour was an opening hour, which configured organisation returned
/// the shop, and its static labels.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ShopMeta {
    /// The hour the shop's values describe was an opening hour of its business calendar.
    pub open: bool,
    /// The number of the configured organisation (`O_<n>`) that returned the shop; `None` for a
    /// shop configured by its own `S_` id.
    pub org_id: Option<u64>,
    pub labels: StaticLabels,
}

/// The family of a shop's opening hour, with the labels of its hourly series.
pub(crate) static SHOP_META_FAMILIES: &[Family<ShopMeta>] = &[Family {
    name: "opretail_shop_open",
    key: "open",
    help: "1 if the hour the shop's values describe (opretail_shop_hour_timestamp_seconds, shop-local) was an opening hour by the shop's configured business calendar (default 10:00-22:00 every day), else 0 (hourly data, polled from the Opretail gateway).",
    ending: Ending::Complete,
    kind: Kind::Gauge,
    labels: &SHOP_LABELS,
    unit: Unit::Bool,
    read: Read::Value(|m: &ShopMeta| Some(if m.open { 1.0 } else { 0.0 })),
}];

/// The family of a shop's metadata: its labels are [`SHOP_INFO_LABELS`] and every static label
/// configured for any published shop (empty where a shop has none).
pub(crate) static SHOP_INFO_FAMILIES: &[Family<ShopMeta>] = &[Family {
    name: "opretail_shop_info",
    key: "info",
    help: "A constant 1 labelled by the shop's id, name and code, the configured organisation (O_ id) that returned it (empty for a shop configured by its own S_ id) and the static labels configured for it, for joins with group_left (hourly data, polled from the Opretail gateway).",
    ending: Ending::Complete,
    kind: Kind::Gauge,
    labels: &SHOP_INFO_LABELS,
    unit: Unit::Bool,
    read: Read::Value(|_: &ShopMeta| Some(1.0)),
}];

/// How the last poll of one configured target went.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TargetStatus {
    pub up: bool,
    /// Unix time of the last successful poll, if there was one.
    pub last_success: Option<f64>,
}

/// The families of the configured targets: only the live exporter shows them.
pub(crate) static TARGET_FAMILIES: &[Family<TargetStatus>] = &[
    Family {
        name: "opretail_target_up",
        key: "up",
        help: "1 if the last poll of the configured target (S_ shop, O_ organisation or device mac) succeeded, else 0 (hourly data, polled).",
        ending: Ending::Complete,
        kind: Kind::Gauge,
        labels: &TARGET_LABELS,
        unit: Unit::Bool,
        read: Read::Value(|t: &TargetStatus| Some(if t.up { 1.0 } else { 0.0 })),
    },
    Family {
        name: "opretail_target_last_success_timestamp_seconds",
        key: "last_success_timestamp_seconds",
        help: "Unix time of the last successful poll of the configured target (hourly data, polled).",
        ending: Ending::Complete,
        kind: Kind::Gauge,
        labels: &TARGET_LABELS,
        unit: Unit::Seconds,
        read: Read::Value(|t: &TargetStatus| t.last_success),
    },
];

/// The labels of a baseline statistic: a shop's labels and which statistic (`median`, `p10`).
pub(crate) const BASELINE_LABELS: [&str; 4] = ["shop_id", "shop_name", "shop_code", "stat"];

/// One statistic of a shop's walk-in baseline: one series of `opretail_shop_walk_in_baseline`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineStat {
    /// The `stat` label: `median` or `p10`.
    pub stat: &'static str,
    pub value: f64,
}

/// The walk-in baseline of the hour a shop's values describe: the median and the 10th
/// percentile of its walk-ins at the same weekday and hour of past weeks, and how many weeks
/// went into them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShopBaseline {
    /// The median, then the 10th percentile.
    pub stats: [BaselineStat; 2],
    /// Past weeks that went into the statistics.
    pub weeks: usize,
}

impl ShopBaseline {
    pub fn new(median: f64, p10: f64, weeks: usize) -> Self {
        ShopBaseline {
            stats: [
                BaselineStat {
                    stat: "median",
                    value: median,
                },
                BaselineStat {
                    stat: "p10",
                    value: p10,
                },
            ],
            weeks,
        }
    }

    /// The median.
    pub fn median(&self) -> f64 {
        self.stats[0].value
    }

    /// The 10th percentile.
    pub fn p10(&self) -> f64 {
        self.stats[1].value
    }
}

/// The baseline statistics: one series per shop and statistic.
pub(crate) static SHOP_BASELINE_FAMILIES: &[Family<BaselineStat>] = &[Family {
    name: "opretail_shop_walk_in_baseline",
    key: "walk_in_baseline",
    help: "Walk-in baseline of the hour the shop's values describe: the median (stat=\"median\") or the 10th percentile (stat=\"p10\", PromQL's quantile) of the shop's walk-ins at the same weekday and hour over the last baseline.weeks weeks, leaving out days on which that hour was closed or has no row; absent with fewer than 2 usable weeks (past days fetched once from the Opretail gateway).",
    ending: Ending::Complete,
    kind: Kind::Gauge,
    labels: &BASELINE_LABELS,
    unit: Unit::Count,
    read: Read::Value(|s: &BaselineStat| Some(s.value)),
}];

/// The number of weeks behind each shop's baseline.
pub(crate) static SHOP_BASELINE_WEEKS_FAMILIES: &[Family<ShopBaseline>] = &[Family {
    name: "opretail_shop_walk_in_baseline_samples",
    key: "walk_in_baseline_samples",
    help: "The number of past weeks (one sample each, the same weekday and hour) that went into opretail_shop_walk_in_baseline for the hour the shop's values describe (2 to baseline.weeks; past days fetched once from the Opretail gateway).",
    ending: Ending::Complete,
    kind: Kind::Gauge,
    labels: &SHOP_LABELS,
    unit: Unit::Count,
    read: Read::Value(|b: &ShopBaseline| Some(b.weeks as f64)),
}];
