//! Day rows (`timeType=2`) of both methods: one row per asked day, whose values are the day as
//! the gateway shows it at a given moment — the sums of the day's hours as shown then (the hour
//! in progress partial, hours still to come zero, a late uploader's pending hours halved), with
//! the rates recomputed from the sums. A face-device shop's day walk-in is de-duplicated, as
//! the vendor's page warns: a person counted in several hours counts once in the day, so the
//! day is below the sum of its hours. [`shop_day`] and [`device_day`] give a day row's numbers
//! to tests that check the exporter without going through a client.

use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime};

use super::tenant::{SimDevice, SimShop};
use super::traffic::{device_hour_as_of, face_day_percent, shop_hour_as_of, SimDeviceHour, SimShopHour};

/// The numbers of a shop's day row, as the gateway sends them. `None` where the shop sends no
/// such field: no passing, outside or walk-in rate without an outside counter, no walk-out
/// from face devices.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SimShopDay {
    pub walk_in: u64,
    pub passing: Option<u64>,
    pub outside: Option<u64>,
    pub walk_out: Option<u64>,
    /// Walk-in / outside × 100, rounded half-up to 2 decimals, from the day's sums.
    pub walk_in_rate_percent: Option<f64>,
}

/// The numbers of a device's day row. `walk_out` is `None` for a face device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimDeviceDay {
    pub walk_in: u64,
    pub walk_out: Option<u64>,
}

/// The hours of `date` (0..=23) as hour starts.
fn hours_of(date: NaiveDate) -> impl Iterator<Item = NaiveDateTime> {
    (0..24).filter_map(move |h| date.and_hms_opt(h, 0, 0))
}

/// The counts behind `shop`'s day row for `date` at gateway-local `now`: the day's hours as the
/// gateway shows them then (under `late_upload` for a late uploader), summed; a face-device
/// shop's walk-in then de-duplicated to [`face_day_percent`] of the sum, floored (strictly below
/// the sum whenever it is above zero).
pub(crate) fn shop_day_counts(
    shop: &SimShop,
    date: NaiveDate,
    now: NaiveDateTime,
    late_upload: Option<Duration>,
) -> SimShopHour {
    let start = SimShopHour {
        fitting: shop.has_fitting_room.then_some(0),
        ..SimShopHour::default()
    };
    let mut day = hours_of(date).fold(start, |sum, hour| {
        let h = shop_hour_as_of(shop, hour, now, late_upload);
        SimShopHour {
            walk_in: sum.walk_in + h.walk_in,
            passing: sum.passing + h.passing,
            walk_out: sum.walk_out + h.walk_out,
            fitting: sum.fitting.zip(h.fitting).map(|(a, b)| a + b),
        }
    });
    if shop.face_device {
        day.walk_in = day.walk_in * face_day_percent(shop.dep_id, date) / 100;
    }
    day
}

/// The numbers of `shop`'s day row for `date` as the gateway sends them at gateway-local `now`
/// (its clock skew included), for a gateway without late uploads: a late uploader's hours are
/// counted as if uploaded on time.
pub fn shop_day(shop: &SimShop, date: NaiveDate, now: NaiveDateTime) -> SimShopDay {
    let day = shop_day_counts(shop, date, now, None);
    let outside = shop.outside_counter;
    SimShopDay {
        walk_in: day.walk_in,
        passing: outside.then_some(day.passing),
        outside: outside.then_some(day.outside()),
        walk_out: (!shop.face_device).then_some(day.walk_out),
        walk_in_rate_percent: outside.then(|| day.walk_in_rate_percent()),
    }
}

/// The counts behind `dev`'s day row for `date` at gateway-local `now`: its hours as shown then,
/// summed (no de-duplication).
pub(crate) fn device_day_counts(dev: &SimDevice, date: NaiveDate, now: NaiveDateTime) -> SimDeviceHour {
    hours_of(date).fold(SimDeviceHour::default(), |sum, hour| {
        let h = device_hour_as_of(dev, hour, now);
        SimDeviceHour {
            walk_in: sum.walk_in + h.walk_in,
            walk_out: sum.walk_out + h.walk_out,
        }
    })
}

/// The numbers of `dev`'s day row for `date` as the gateway sends them at gateway-local `now`.
pub fn device_day(dev: &SimDevice, date: NaiveDate, now: NaiveDateTime) -> SimDeviceDay {
    let day = device_day_counts(dev, date, now);
    SimDeviceDay {
        walk_in: day.walk_in,
        walk_out: (!dev.face_device).then_some(day.walk_out),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{at, demo_shop};
    use super::super::traffic::shop_hour;
    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, 15).unwrap()
    }

    #[test]
    fn a_complete_day_is_the_sum_of_its_full_hours() {
        let shop = demo_shop(9601);
        let day = shop_day(&shop, date(), at("2024-03-16 08:00:00"));
        let hours: Vec<SimShopHour> = hours_of(date()).map(|h| shop_hour(&shop, h)).collect();
        let walk_in: u64 = hours.iter().map(|h| h.walk_in).sum();
        let passing: u64 = hours.iter().map(|h| h.passing).sum();
        assert_eq!(day.walk_in, walk_in);
        assert_eq!(day.passing, Some(passing));
        assert_eq!(day.outside, Some(walk_in + passing));
        assert_eq!(day.walk_out, Some(hours.iter().map(|h| h.walk_out).sum()));
        let rate = (walk_in as f64 / (walk_in + passing) as f64 * 10_000.0).round() / 100.0;
        assert_eq!(day.walk_in_rate_percent, Some(rate));
    }

    #[test]
    fn a_day_in_progress_counts_only_what_the_gateway_shows() {
        let shop = demo_shop(9601);
        let now = at("2024-03-15 14:30:00");
        let day = shop_day(&shop, date(), now);
        let shown: u64 = hours_of(date())
            .map(|h| shop_hour_as_of(&shop, h, now, None).walk_in)
            .sum();
        let complete: u64 = hours_of(date()).take(14).map(|h| shop_hour(&shop, h).walk_in).sum();
        let current = shop_hour(&shop, at("2024-03-15 14:00:00")).walk_in / 2;
        assert_eq!(day.walk_in, shown);
        assert_eq!(day.walk_in, complete + current);
        let zero = SimShopDay {
            walk_in: 0,
            passing: Some(0),
            outside: Some(0),
            walk_out: Some(0),
            walk_in_rate_percent: Some(0.0),
        };
        assert_eq!(
            shop_day(&shop, date(), at("2024-03-14 23:59:59")),
            zero,
            "a day to come"
        );
    }

    #[test]
    fn a_face_device_day_is_de_duplicated_below_its_hours() {
        let mut shop = demo_shop(9601);
        let now = at("2024-03-16 08:00:00");
        let sum = shop_day(&shop, date(), now).walk_in;
        shop.face_device = true;
        let face = shop_day(&shop, date(), now);
        assert!(sum >= 5);
        assert!(
            face.walk_in < sum && face.walk_in >= sum * 80 / 100,
            "{} of {sum}",
            face.walk_in
        );
        assert_eq!(face.walk_out, None);
        for dep in 9601..=9620 {
            let pct = face_day_percent(dep, date());
            assert!((80..=90).contains(&pct), "{dep}: {pct}");
        }
    }

    #[test]
    fn a_late_uploaders_pending_hours_count_half_in_its_day() {
        let mut shop = demo_shop(9601);
        shop.late_uploader = true;
        let delay = Some(Duration::from_secs(20 * 60));
        let noon = shop_hour(&shop, at("2024-03-15 12:00:00"));
        // 13:00: the hour 12 is complete but pending until 13:20; the hour 13 has not begun.
        let one = at("2024-03-15 13:00:00");
        let day = shop_day_counts(&shop, date(), one, delay);
        let on_time = shop_day_counts(&shop, date(), one, None);
        assert!(noon.walk_in > 1);
        assert_eq!(on_time.walk_in - day.walk_in, noon.walk_in - noon.walk_in / 2);
        assert_eq!(shop_day(&shop, date(), one).walk_in, on_time.walk_in, "no late uploads");
        let hour = at("2024-03-15 12:00:00");
        assert_eq!(
            shop_hour_as_of(&shop, hour, at("2024-03-15 13:19:59"), delay),
            noon.scaled(1, 2)
        );
        assert_eq!(shop_hour_as_of(&shop, hour, at("2024-03-15 13:20:00"), delay), noon);
        // The hour in progress grows from half the counts: no count goes down at its end.
        let current = shop_hour_as_of(&shop, hour, at("2024-03-15 12:59:59"), delay);
        assert!(current.walk_in <= noon.walk_in / 2, "{current:?}");
    }
}
