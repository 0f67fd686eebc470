//! The exporter's own vocabulary, below every other module: targets and their ids, one hour
//! of counting as decoded from the gateway, the snapshot `/metrics` is rendered from, the
//! signature method, and the clock every time decision is taken from.
//!
//! The client converts the gateway's loosely typed answers into these types; the poller picks
//! hours from them; the metrics store publishes them.

mod clock;
mod hourly;
mod ids;
mod sign_method;
mod snapshot;

pub use clock::Clock;
pub use hourly::{DeviceRow, DeviceValues, ShopRow, ShopSeries, ShopValues};
pub use ids::{normalize_mac, DeviceTarget, ParseMacError, ParseTargetIdError, TargetId};
pub use sign_method::{ParseSignMethodError, SignMethod};
pub use snapshot::{DeviceSample, ShopSample, Snapshot, TargetStatus};
