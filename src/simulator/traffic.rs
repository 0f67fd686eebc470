//! The deterministic traffic model: how many people a shop or a counting device counted in any
//! hour. Counts follow a day shape (peaks at 12:00 and 19:00, quiet nights), a weekend uplift
//! and a per-source size, with hash-based noise that depends only on the source, the date and
//! the hour, so every run, test and benchmark sees the same numbers and a test can compute what
//! the exporter must report. [`shop_hour_as_of`] and [`device_hour_as_of`] say what the gateway
//! shows at a given moment: full counts for a complete hour, a share of them for the hour in
//! progress, zeros for hours still to come, and half the counts of a late uploader's hour until
//! its late upload arrives. A simulated hour also writes its own fields of the gateway's rows
//! (the fields the shop's counters can count, rates in the tenant's scale), so that a new value
//! is modelled and sent in one place. The model also fixes how much of a face-device shop's day
//! survives de-duplication ([`face_day_percent`]).

use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Weekday};
use serde_json::{Map, Value};

use super::tenant::{normalize_mac, RowDetail, SimDevice, SimRateScale, SimShop};

/// The counts of one shop hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimShopHour {
    pub walk_in: u64,
    pub passing: u64,
    pub walk_out: u64,
    /// Fitting-room visitors; `None` for a shop without a fitting room.
    pub fitting: Option<u64>,
}

impl SimShopHour {
    /// Outside passenger flow = walk-in + passing.
    pub fn outside(&self) -> u64 {
        self.walk_in + self.passing
    }

    /// Walk-in / outside × 100, rounded half-up to 2 decimals; 0 when outside is 0.
    pub fn walk_in_rate_percent(&self) -> f64 {
        percent(self.walk_in, self.outside())
    }

    /// Fitting / walk-in × 100, rounded half-up to 2 decimals; `Some(0.0)` when walk-in is 0;
    /// `None` without a fitting room.
    pub fn fitting_rate_percent(&self) -> Option<f64> {
        self.fitting.map(|f| percent(f, self.walk_in))
    }

    /// The hour's (or a day's) fields in a row of the shops method, as the gateway writes them
    /// for `shop`: numbers, or numeric strings for a shop with `numbers_as_strings`; rates in
    /// `scale`; no `dressingRate` without a fitting room; no `outFlowCount` from face devices;
    /// no `passPassengerFlow`, `outSidePassengerFlow` or `inShopRate` without an outside
    /// counter; and the fields `detail` asks for.
    pub(crate) fn write_fields(
        &self,
        row: &mut Map<String, Value>,
        shop: &SimShop,
        detail: RowDetail,
        scale: SimRateScale,
    ) {
        let s = shop.numbers_as_strings;
        row.insert("passengerFlow".into(), number(self.walk_in, s));
        if shop.outside_counter {
            row.insert("passPassengerFlow".into(), number(self.passing, s));
            row.insert("outSidePassengerFlow".into(), number(self.outside(), s));
            row.insert("inShopRate".into(), rate(self.walk_in, self.outside(), scale, s));
        }
        if !shop.face_device {
            row.insert("outFlowCount".into(), number(self.walk_out, s));
        }
        if let Some(fitting) = self.fitting {
            row.insert("dressingRate".into(), rate(fitting, self.walk_in, scale, s));
        }
        row.insert("duplicatedFlow".into(), number(0, s));
        match detail {
            RowDetail::Lean => {}
            // Walk-ins of shops with a passing (outside) counter: all of them, or none.
            RowDetail::Full => {
                let counted = if shop.outside_counter { self.walk_in } else { 0 };
                row.insert("inCountHavingPassDevice".into(), number(counted, s));
            }
        }
    }

    /// Every count multiplied by `num / den`, rounded down (integer arithmetic; `den` 0 gives
    /// zeros). The hour in progress is served as `scaled(elapsed_seconds, 3600)`.
    pub fn scaled(&self, num: u64, den: u64) -> SimShopHour {
        SimShopHour {
            walk_in: scale(self.walk_in, num, den),
            passing: scale(self.passing, num, den),
            walk_out: scale(self.walk_out, num, den),
            fitting: self.fitting.map(|f| scale(f, num, den)),
        }
    }
}

/// The walk-in and walk-out of one device hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimDeviceHour {
    pub walk_in: u64,
    pub walk_out: u64,
}

impl SimDeviceHour {
    /// The hour's (or a day's) fields in a row of the device method, as the gateway writes
    /// them for `dev` (no `outFlowCount` from a face device).
    pub(crate) fn write_fields(&self, row: &mut Map<String, Value>, dev: &SimDevice) {
        row.insert("passengerFlow".into(), Value::from(self.walk_in));
        if !dev.face_device {
            row.insert("outFlowCount".into(), Value::from(self.walk_out));
        }
    }

    /// Both counts multiplied by `num / den`, rounded down.
    pub fn scaled(&self, num: u64, den: u64) -> SimDeviceHour {
        SimDeviceHour {
            walk_in: scale(self.walk_in, num, den),
            walk_out: scale(self.walk_out, num, den),
        }
    }
}

fn number(v: u64, as_string: bool) -> Value {
    if as_string {
        Value::String(v.to_string())
    } else {
        Value::from(v)
    }
}

/// `part / whole` as `scale` writes it (0 when `whole` is 0).
fn rate(part: u64, whole: u64, scale: SimRateScale, as_string: bool) -> Value {
    let bp = basis_points(part, whole) as f64;
    let (v, text) = match scale {
        SimRateScale::Percent => (bp / 100.0, format!("{:.2}", bp / 100.0)),
        SimRateScale::Fraction => (bp / 10_000.0, format!("{:.4}", bp / 10_000.0)),
    };
    if as_string {
        Value::String(text)
    } else {
        Value::from(v)
    }
}

fn scale(v: u64, num: u64, den: u64) -> u64 {
    if den == 0 {
        return 0;
    }
    let num = num.min(den);
    ((v as u128 * num as u128) / den as u128) as u64
}

/// `part / whole × 100` rounded half-up to 2 decimals, computed in integers (basis points)
/// and divided once, so it is exactly reproducible.
fn percent(part: u64, whole: u64) -> f64 {
    basis_points(part, whole) as f64 / 100.0
}

/// `part / whole × 10,000` rounded half-up; 0 when `whole` is 0.
fn basis_points(part: u64, whole: u64) -> u128 {
    if whole == 0 {
        return 0;
    }
    (part as u128 * 20_000 + whole as u128) / (2 * whole as u128)
}

/// Relative traffic per hour of the day, in percent of the peak (12:00 and 19:00).
const DAY_SHAPE: [u64; 24] = [
    2, 1, 0, 0, 0, 1, 5, 15, 35, 55, 70, 85, 100, 90, 75, 65, 60, 70, 90, 100, 85, 55, 25, 8,
];

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x51_7CC1_B727_220A, |acc, p| mix(acc ^ mix(*p)))
}

/// FNV-1a of a string, for macs.
fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |acc, b| {
        (acc ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}

/// `lo..=hi` picked by `h`.
fn pick(h: u64, lo: u64, hi: u64) -> u64 {
    lo + h % (hi - lo + 1)
}

fn date_key(d: NaiveDate) -> u64 {
    d.year() as u64 * 10_000 + d.month() as u64 * 100 + d.day() as u64
}

fn weekend_percent(d: NaiveDate) -> u64 {
    match d.weekday() {
        Weekday::Sat | Weekday::Sun => 115,
        _ => 100,
    }
}

/// Walk-ins of an hour for a source of size `base` (walk-ins at a weekday peak, ±15 %).
fn base_walk_in(base: u64, id: u64, hour: NaiveDateTime) -> u64 {
    let date = hour.date();
    let h = hour.hour() as usize;
    let variation = pick(hash(&[id, date_key(date), h as u64, 1]), 85, 115);
    base * DAY_SHAPE[h] * variation * weekend_percent(date) / 1_000_000
}

/// The full counts of the hour starting at `hour` (shop-local wall time; minutes and seconds
/// are ignored). Deterministic in (dep id, date, hour) and the shop's fitting room only.
pub fn shop_hour(shop: &SimShop, hour: NaiveDateTime) -> SimShopHour {
    let id = shop.dep_id;
    let date = date_key(hour.date());
    let h = hour.hour() as u64;
    let base = pick(hash(&[id, 0]), 20, 119);
    let walk_in = base_walk_in(base, id, hour);
    let passing_factor = pick(hash(&[id, date, h, 2]), 200, 450);
    let passing_noise = if DAY_SHAPE[h as usize] > 0 {
        hash(&[id, date, h, 3]) % 4
    } else {
        0
    };
    let passing = walk_in * passing_factor / 100 + passing_noise;
    let walk_out = walk_in * pick(hash(&[id, date, h, 4]), 90, 105) / 100;
    let fitting = shop
        .has_fitting_room
        .then(|| walk_in * pick(hash(&[id, date, h, 5]), 10, 35) / 100);
    SimShopHour {
        walk_in,
        passing,
        walk_out,
        fitting,
    }
}

/// The full counts of a device for the hour starting at `hour` (local wall time).
/// Deterministic in (mac, date, hour) only.
pub fn device_hour(dev: &SimDevice, hour: NaiveDateTime) -> SimDeviceHour {
    let id = hash_str(&normalize_mac(&dev.mac));
    let date = date_key(hour.date());
    let h = hour.hour() as u64;
    let base = pick(hash(&[id, 10]), 5, 54);
    let walk_in = base_walk_in(base, id, hour);
    let walk_out = walk_in * pick(hash(&[id, date, h, 11]), 90, 105) / 100;
    SimDeviceHour { walk_in, walk_out }
}

/// Where the hour starting at `hour` stands at `now` (both gateway wall time): `None` for a
/// complete hour, `Some(elapsed_seconds)` (0..3600) for the hour in progress, `Some(0)` for a
/// future hour.
fn elapsed_in(hour: NaiveDateTime, now: NaiveDateTime) -> Option<u64> {
    let start = hour.date().and_time(NaiveTime::MIN) + chrono::Duration::hours(hour.hour() as i64);
    let secs = (now - start).num_seconds();
    if secs >= 3600 {
        None
    } else {
        Some(secs.max(0) as u64)
    }
}

/// What the gateway answers for the shop hour starting at `hour` when asked at `now` (gateway
/// wall time): the full [`shop_hour`] for a complete hour, the counts scaled by the elapsed
/// fraction (whole seconds / 3600, floored) for the hour in progress, zeros for a future hour.
///
/// A [`SimShop::late_uploader`] under a `late_upload` delay shows half of that (half the full
/// counts, and of the half the elapsed share in the hour in progress) until `late_upload` after
/// the hour's end, then the full counts: the gateway revises the past hour once the late
/// counter's upload arrives, and no count ever goes down.
pub(crate) fn shop_hour_as_of(
    shop: &SimShop,
    hour: NaiveDateTime,
    now: NaiveDateTime,
    late_upload: Option<Duration>,
) -> SimShopHour {
    let full = shop_hour(shop, hour);
    let uploaded = match late_upload {
        Some(delay) if shop.late_uploader => is_uploaded(hour, delay, now),
        _ => true,
    };
    let shown = if uploaded { full } else { full.scaled(1, 2) };
    match elapsed_in(hour, now) {
        None => shown,
        Some(secs) => shown.scaled(secs, 3600),
    }
}

/// Whether `delay` after the end of the hour starting at `hour` is past at `now` (never, for a
/// delay beyond the calendar).
fn is_uploaded(hour: NaiveDateTime, delay: Duration, now: NaiveDateTime) -> bool {
    let start = hour.date().and_time(NaiveTime::MIN) + TimeDelta::hours(hour.hour() as i64);
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|delay| start.checked_add_signed(TimeDelta::hours(1) + delay))
        .is_some_and(|due| now >= due)
}

/// How much of a face-device shop's walk-in its day row keeps after de-duplication (a person
/// counted in several hours of the day counts once): 80–90 percent, deterministic in (dep id,
/// date) only.
pub(crate) fn face_day_percent(dep_id: u64, date: NaiveDate) -> u64 {
    pick(hash(&[dep_id, date_key(date), 6]), 80, 90)
}

/// The device counterpart of [`shop_hour_as_of`].
pub(crate) fn device_hour_as_of(dev: &SimDevice, hour: NaiveDateTime, now: NaiveDateTime) -> SimDeviceHour {
    let full = device_hour(dev, hour);
    match elapsed_in(hour, now) {
        None => full,
        Some(secs) => full.scaled(secs, 3600),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::super::times::TIME_FORMAT;
    use super::super::SimConfig;
    use super::*;
    use crate::model::Clock;

    /// 2024-03-15 (a Friday) 14:30:00 in Shanghai.
    fn demo() -> SimConfig {
        SimConfig::demo(Clock::manual(
            Utc.with_ymd_and_hms(2024, 3, 15, 6, 30, 0).single().unwrap(),
        ))
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    fn demo_shop(dep_id: u64) -> SimShop {
        demo().shop(dep_id).unwrap().clone()
    }

    #[test]
    fn traffic_model_is_deterministic_and_plausible() {
        let shop = demo_shop(9601);
        let noon = at("2024-03-15 12:00:00");
        assert_eq!(shop_hour(&shop, noon), shop_hour(&shop, noon));
        // Minutes are ignored.
        assert_eq!(shop_hour(&shop, at("2024-03-15 12:34:56")), shop_hour(&shop, noon));
        let h = shop_hour(&shop, noon);
        assert!(h.walk_in > 10, "{h:?}");
        assert!(h.passing >= 2 * h.walk_in);
        assert!(h.walk_out + 1 >= h.walk_in * 9 / 10 && h.walk_out <= h.walk_in * 106 / 100);
        assert!(h.fitting.unwrap() <= h.walk_in);
        let night = shop_hour(&shop, at("2024-03-15 03:00:00"));
        assert_eq!(night.walk_in, 0);
        assert_eq!(night.walk_in_rate_percent(), 0.0);
        assert_eq!(night.fitting_rate_percent(), Some(0.0));
        let no_room = demo_shop(9604);
        assert!(!no_room.has_fitting_room);
        assert_eq!(shop_hour(&no_room, noon).fitting, None);
        assert_eq!(shop_hour(&no_room, noon).fitting_rate_percent(), None);
        // Different shops, different days differ.
        assert_ne!(shop_hour(&demo_shop(9602), noon), h);
        assert_ne!(shop_hour(&shop, at("2024-03-16 12:00:00")), h);
        let dev = demo().devices[0].clone();
        let dev = &dev;
        let d = device_hour(dev, noon);
        assert_eq!(d, device_hour(dev, noon));
        assert!(d.walk_in > 0);
    }

    #[test]
    fn rates_round_to_two_decimals() {
        let h = SimShopHour {
            walk_in: 1,
            passing: 2,
            walk_out: 1,
            fitting: Some(2),
        };
        assert_eq!(h.outside(), 3);
        assert_eq!(h.walk_in_rate_percent(), 33.33);
        assert_eq!(h.fitting_rate_percent(), Some(200.0));
        let h = SimShopHour {
            walk_in: 2,
            passing: 1,
            walk_out: 0,
            fitting: Some(1),
        };
        assert_eq!(h.walk_in_rate_percent(), 66.67);
        assert_eq!(h.fitting_rate_percent(), Some(50.0));
        assert_eq!(SimShopHour::default().walk_in_rate_percent(), 0.0);
    }
}
