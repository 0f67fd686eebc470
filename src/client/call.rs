//! One gateway call for some targets, as the poller, backfill and `fetch` all make it: what it
//! asks about ([`Target`]: a batch of shop/organisation ids, or one device), for which
//! shop-local days and hours ([`Call`]), and what it answered ([`Answer`]). [`batch`] is the
//! one place that decides how configured targets are grouped into calls.
//!
//! The hourly refresh asks for the one hour it publishes (`starthour`/`endhour`), not the
//! whole day: a 24th of the rows. Whether the gateway's `endhour` is inclusive is not known, so
//! the window is `hour..hour+1` and the rows are always picked by their `time`: under either
//! reading the hour asked for is in the answer. The device method documents no hour window, so
//! device calls always cover whole days.

use std::fmt;
use std::ops::Range;

use chrono::{NaiveDate, NaiveDateTime, Timelike};

use crate::config::GatewayConfig;
use crate::model::{DeviceRow, DeviceTarget, ShopSeries, TargetId};

/// What one call asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Shops and organisations (`S_…`, `O_…`), sent as one comma-separated `id`.
    Shops(Vec<TargetId>),
    /// One counting device.
    Device(DeviceTarget),
}

impl fmt::Display for Target {
    /// `S_1,O_2` for shops, `device <mac>` for a device.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Shops(ids) => {
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{id}")?;
                }
                Ok(())
            }
            Target::Device(d) => write!(f, "device {}", d.mac),
        }
    }
}

/// The hours of a day a call asks for when it does not narrow them.
pub const WHOLE_DAY: Range<u32> = 0..24;

/// What one row of a call's answer counts (`timeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Per {
    /// An hour (`timeType=1`): the rows the exporter publishes hour by hour.
    #[default]
    Hour,
    /// A day (`timeType=2`): the vendor's daily figures, in which face-counting devices count
    /// a person once a day. Shop calls only.
    Day,
}

/// One gateway call: a target, the shop-local days `from..=to`, the local hours of each day
/// (`starthour..endhour`; shop calls only, devices always get whole days), and what a row
/// counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub target: Target,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub hours: Range<u32>,
    pub per: Per,
}

impl Call {
    /// A call for the one day `day`, every hour of it.
    pub fn day(target: Target, day: NaiveDate) -> Self {
        Call {
            target,
            from: day,
            to: day,
            hours: WHOLE_DAY,
            per: Per::Hour,
        }
    }

    /// A call for the vendor's figures of the one day `day` (one row per shop): what its
    /// console shows for the day.
    pub fn day_figures(target: Target, day: NaiveDate) -> Self {
        Call {
            per: Per::Day,
            ..Call::day(target, day)
        }
    }

    /// A call for the one local hour starting at `hour` (for a device: its whole day).
    pub fn hour(target: Target, hour: NaiveDateTime) -> Self {
        Call::hours(target, hour, hour)
    }

    /// A call for the local hours `first..=last` (for a device: their whole days). Hours on
    /// different days ask for whole days: `starthour`/`endhour` apply to every day asked.
    pub fn hours(target: Target, first: NaiveDateTime, last: NaiveDateTime) -> Self {
        let (from, to) = (first.date(), last.date());
        let hours = if from == to {
            first.hour()..last.hour() + 1
        } else {
            WHOLE_DAY
        };
        Call {
            target,
            from,
            to,
            hours,
            per: Per::Hour,
        }
    }

    /// The `starthour`/`endhour` to send: none for a whole day or a device.
    pub(crate) fn hour_window(&self) -> Option<(u32, u32)> {
        match self.target {
            Target::Shops(_) if self.hours != WHOLE_DAY && self.per == Per::Hour => {
                Some((self.hours.start, self.hours.end))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Call {
    /// The target and its day (`S_1,S_2 2024-05-01`), or days (`… 2024-04-30..2024-05-01`),
    /// and its hours when narrowed (`… 2024-05-01 13:00-14:00`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{} {}", self.target, self.from)?;
        } else {
            write!(f, "{} {}..{}", self.target, self.from, self.to)?;
        }
        match (self.hour_window(), self.per) {
            (Some((start, end)), _) => write!(f, " {start:02}:00-{end:02}:00"),
            (None, Per::Day) => f.write_str(" (day figures)"),
            (None, Per::Hour) => Ok(()),
        }
    }
}

/// What a call answered: every shop behind the asked ids with its rows, or the device's rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Shops(Vec<ShopSeries>),
    Device(Vec<DeviceRow>),
}

impl Answer {
    /// Keeps only the rows whose hour `keep` accepts (a round holds every answer until it
    /// merges them, so it keeps no more than it needs).
    pub(crate) fn retain_hours(&mut self, keep: impl Fn(NaiveDateTime) -> bool) {
        match self {
            Answer::Shops(series) => {
                for shop in series.iter_mut() {
                    shop.rows.retain(|r| keep(r.hour));
                    shop.rows.shrink_to_fit();
                }
            }
            Answer::Device(rows) => {
                rows.retain(|r| keep(r.hour));
                rows.shrink_to_fit();
            }
        }
    }

    /// The shops of a shops answer (none for a device answer).
    pub(crate) fn into_shops(self) -> Vec<ShopSeries> {
        match self {
            Answer::Shops(series) => series,
            Answer::Device(_) => Vec::new(),
        }
    }

    /// The rows of a device answer (none for a shops answer).
    pub(crate) fn into_device_rows(self) -> Vec<DeviceRow> {
        match self {
            Answer::Device(rows) => rows,
            Answer::Shops(_) => Vec::new(),
        }
    }
}

/// The limits one shops call is packed under: ids, characters of the joined `id`, and rows
/// expected in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packing {
    pub max_ids: usize,
    pub max_id_chars: usize,
    pub max_rows: usize,
}

impl Packing {
    /// The limits configured for `gateway`.
    pub fn of(gateway: &GatewayConfig) -> Self {
        Packing {
            max_ids: gateway.max_ids_per_request,
            max_id_chars: gateway.max_id_chars,
            max_rows: gateway.max_rows_per_call,
        }
    }

    /// Whether `rows` expected rows (`None`: not known) fit in one call with nothing else.
    pub fn fits_alone(&self, rows: Option<usize>) -> bool {
        rows.is_some_and(|r| r <= self.max_rows)
    }
}

/// Packs shop ids into calls, in the order given: each id with the rows it answers per hour
/// (1 for a shop, an organisation's shop count once known; `None` while not known), for
/// `hours` hours a call. A call holds ids while they fit under every limit of `packing`; an
/// id of unknown size, or too big (or too long) on its own, is a call of its own.
pub fn pack(
    ids: impl IntoIterator<Item = (TargetId, Option<usize>)>,
    hours: usize,
    packing: Packing,
) -> Vec<Vec<TargetId>> {
    let hours = hours.max(1);
    let mut calls: Vec<Vec<TargetId>> = Vec::new();
    // The call being filled, its joined length and its expected rows.
    let mut open: (Vec<TargetId>, usize, usize) = (Vec::new(), 0, 0);
    for (id, rows) in ids {
        let chars = id.to_string().len();
        let rows = rows.map(|r| r.saturating_mul(hours));
        let Some(rows) = rows.filter(|r| *r <= packing.max_rows && chars <= packing.max_id_chars) else {
            calls.push(vec![id]);
            continue;
        };
        let (ids, open_chars, open_rows) = &open;
        let fits = ids.len() < packing.max_ids.max(1)
            && open_chars + 1 + chars <= packing.max_id_chars
            && open_rows + rows <= packing.max_rows;
        if !ids.is_empty() && !fits {
            calls.push(std::mem::take(&mut open.0));
            open = (Vec::new(), 0, 0);
        }
        open.1 += if open.0.is_empty() { chars } else { chars + 1 };
        open.2 += rows;
        open.0.push(id);
    }
    if !open.0.is_empty() {
        calls.push(open.0);
    }
    calls
}

/// The calls of a round whose organisations are not known yet (the first round, backfill,
/// a configuration's cost) for `hours` hours a call: shops packed under `packing` (each
/// organisation on its own), then every device on its own.
pub fn batch<'a>(
    shops: &[TargetId],
    devices: impl IntoIterator<Item = &'a DeviceTarget>,
    packing: Packing,
    hours: usize,
) -> Vec<Target> {
    let sizes = shops
        .iter()
        .map(|id| (id.clone(), matches!(id, TargetId::Shop(_)).then_some(1)));
    pack(sizes, hours, packing)
        .into_iter()
        .map(Target::Shops)
        .chain(devices.into_iter().cloned().map(Target::Device))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(mac: &str) -> DeviceTarget {
        DeviceTarget {
            mac: mac.into(),
            name: None,
            shop_id: None,
        }
    }

    fn packing(max_ids: usize, max_id_chars: usize, max_rows: usize) -> Packing {
        Packing {
            max_ids,
            max_id_chars,
            max_rows,
        }
    }

    fn joined(calls: &[Vec<TargetId>]) -> Vec<String> {
        calls.iter().map(|c| Target::Shops(c.clone()).to_string()).collect()
    }

    #[test]
    fn batches_shops_then_devices() {
        let shops: Vec<TargetId> = (1..=5).map(TargetId::Shop).chain([TargetId::Org(7)]).collect();
        let devices = [device("d47c44906f14"), device("d47c44906f15")];
        let targets = batch(&shops, &devices, packing(2, 500, 2000), 1);
        assert_eq!(targets.len(), 3 + 1 + 2);
        assert_eq!(targets[0].to_string(), "S_1,S_2");
        assert_eq!(
            targets[2].to_string(),
            "O_7",
            "an organisation of unknown size goes alone"
        );
        assert_eq!(targets[3].to_string(), "S_5");
        assert_eq!(targets[4].to_string(), "device d47c44906f14");
        assert_eq!(
            batch(&shops, &devices, packing(0, 500, 2000), 1).len(),
            6 + 2,
            "a batch holds at least one id"
        );
    }

    #[test]
    fn packs_by_rows_characters_and_ids() {
        // Organisations of 100 shops under 2,000 rows an hour: 20 a call.
        let orgs = (2001..2101).map(|o| (TargetId::Org(o), Some(100)));
        let calls = pack(orgs.clone(), 1, packing(50, 500, 2000));
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [20; 5]);
        // Three hours a call: 6 an hour's worth of 2,000 rows.
        assert_eq!(pack(orgs.clone(), 3, packing(50, 500, 2000))[0].len(), 6);
        // 100 characters: "O_2001" is 6, so 14 ids and 13 commas (97 characters).
        let calls = pack(orgs, 1, packing(50, 100, 1_000_000));
        assert_eq!(calls[0].len(), 14);
        assert!(joined(&calls).iter().all(|j| j.len() <= 100), "{:?}", joined(&calls));
        // Too big, unknown or too long on its own: a call of its own; the others still pack.
        let ids = [
            (TargetId::Shop(1), Some(1)),
            (TargetId::Org(2), Some(5000)),
            (TargetId::Shop(3), Some(1)),
            (TargetId::Org(4), None),
            (TargetId::Shop(5), Some(1)),
            (TargetId::Shop(6), Some(1)),
        ];
        assert_eq!(
            joined(&pack(ids, 1, packing(50, 500, 2000))),
            ["O_2", "O_4", "S_1,S_3,S_5,S_6"]
        );
        let long = [(TargetId::Shop(123_456_789), Some(1)), (TargetId::Shop(1), Some(1))];
        assert_eq!(joined(&pack(long, 1, packing(50, 10, 2000))), ["S_123456789", "S_1"]);
        assert_eq!(
            joined(&pack(
                (1..=4).map(|i| (TargetId::Shop(i), Some(1))),
                1,
                packing(50, 500, 2)
            )),
            ["S_1,S_2", "S_3,S_4"],
            "rows"
        );
    }

    #[test]
    fn a_call_names_its_target_and_days() {
        let day = NaiveDate::from_ymd_opt(2024, 5, 1).unwrap_or_default();
        let call = Call::day(Target::Shops(vec![TargetId::Shop(1), TargetId::Org(2)]), day);
        assert_eq!(call.to_string(), "S_1,O_2 2024-05-01");
        let call = Call {
            from: day.pred_opt().unwrap_or_default(),
            ..Call::day(Target::Device(device("d47c44906f14")), day)
        };
        assert_eq!(call.to_string(), "device d47c44906f14 2024-04-30..2024-05-01");
        let call = Call::day_figures(Target::Shops(vec![TargetId::Shop(1)]), day);
        assert_eq!((call.per, call.hour_window()), (Per::Day, None));
        assert_eq!(call.to_string(), "S_1 2024-05-01 (day figures)");
    }

    #[test]
    fn an_hour_call_narrows_shops_but_not_devices() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap_or_default();
        let call = Call::hour(Target::Shops(vec![TargetId::Org(2)]), at("2024-05-01 13:00:00"));
        assert_eq!(
            (call.from, call.to, call.hours.clone()),
            (
                at("2024-05-01 00:00:00").date(),
                at("2024-05-01 00:00:00").date(),
                13..14
            )
        );
        assert_eq!(call.hour_window(), Some((13, 14)));
        assert_eq!(call.to_string(), "O_2 2024-05-01 13:00-14:00");
        let call = Call::hour(Target::Shops(vec![TargetId::Org(2)]), at("2024-05-01 23:00:00"));
        assert_eq!(call.hour_window(), Some((23, 24)), "the last hour of a day");
        let call = Call::hours(
            Target::Shops(vec![TargetId::Org(2)]),
            at("2024-05-01 10:00:00"),
            at("2024-05-01 13:00:00"),
        );
        assert_eq!(call.to_string(), "O_2 2024-05-01 10:00-14:00", "hours since a gap");
        let call = Call::hours(
            Target::Shops(vec![TargetId::Org(2)]),
            at("2024-04-30 22:00:00"),
            at("2024-05-01 01:00:00"),
        );
        assert_eq!(
            call.to_string(),
            "O_2 2024-04-30..2024-05-01",
            "across midnight: whole days"
        );
        let call = Call::hour(Target::Device(device("d47c44906f14")), at("2024-05-01 13:00:00"));
        assert_eq!(call.hour_window(), None, "the device method has no hour window");
        assert_eq!(
            Call::day(Target::Shops(vec![TargetId::Shop(1)]), call.from).hour_window(),
            None
        );
    }
}
