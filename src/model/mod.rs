//! The exporter's own vocabulary, below every other module but the schema: targets and their
//! ids, one hour of counting as decoded from the gateway, the snapshot `/metrics` is rendered
//! from, the signature method, the gateway conventions the vendor leaves open, and the clock every time decision is taken from. The value structs
//! (`ShopValues`, `DeviceValues`, `TargetStatus`) are declared in [`crate::schema`] with the
//! metric families that publish them, and re-exported here.
//!
//! The client converts the gateway's loosely typed answers into these types; the poller picks
//! hours from them; the metrics store publishes them.

mod clock;
mod convention;
mod hourly;
mod ids;
mod sign_method;
mod snapshot;

pub use crate::schema::{
    BaselineStat, DeviceDayValues, DeviceValues, ShopBaseline, ShopDayValues, ShopMeta, ShopValues, StaticLabels,
    TargetStatus,
};
pub use clock::Clock;
pub use convention::{Convention, Named, ParseConventionError, RateScale, RowTime};
pub use hourly::{DeviceRow, ShopRow, ShopSeries};
pub use ids::{normalize_mac, DeviceTarget, ParseMacError, ParseTargetIdError, TargetId};
pub use sign_method::{ParseSignMethodError, SignMethod};
pub use snapshot::{DaySample, DeviceSample, ShopSample, Snapshot};
