//! The walk-in history behind `opretail_shop_walk_in_baseline`: per shop, per past shop-local
//! day, the 24 hourly walk-ins the gateway answered, and the baseline of a reported hour
//! computed from them (the median and the 10th percentile of the same weekday and hour of the
//! last `baseline.weeks` weeks, as PromQL's `quantile` computes them).
//!
//! A past day never changes once it is final, so it is fetched once and kept: [`History`]
//! remembers, per configured target (`S_…`, `O_…`), which days its calls answered, and the
//! poller asks only for the days missing (see `poller::history`). A day is final
//! [`SETTLE`] after the shop-local day ended plus `hour_delay` (uploads that arrive late are
//! in by then; the baseline needs a day only a week later, so waiting costs nothing).
//!
//! Memory is bounded by construction: only the days of the window (the `7 × weeks` days
//! before the reported hour's day) are kept, each as `[u16; 24]` (48 bytes, `u16::MAX` for an
//! hour without a row), so the history holds at most shops × 7·weeks days × 24 values,
//! about 1.5 KiB a shop at 4 weeks (15 MiB at 10,000 shops). A shop that is no longer polled,
//! or a target removed from the configuration, is dropped with its days.
//!
//! Which hours count is not decided here: [`OpeningHours`] says whether a past hour was an
//! opening hour of a shop; the poller answers it from the configured business calendars
//! ([`crate::config::ShopCalendar`]), each shop resolved with the organisation that returned it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use chrono::{Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use chrono_tz::Tz;

use crate::model::{ShopBaseline, ShopSample, ShopSeries, TargetId};

/// Whether a shop was open in a past hour: the hours a baseline may count.
pub trait OpeningHours: Send + Sync {
    /// Whether the hour starting at `hour_start` (shop-local) was an opening hour of the shop
    /// `shop_id` (its `depId`, as in the `shop_id` label).
    fn is_open(&self, shop_id: &str, hour_start: NaiveDateTime) -> bool;
}

/// Every hour of every shop is an opening hour (as a `24h` calendar would say).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysOpen;

impl OpeningHours for AlwaysOpen {
    fn is_open(&self, _: &str, _: NaiveDateTime) -> bool {
        true
    }
}

/// How long after a shop-local day ended (plus `hour_delay`) it counts as final and is
/// fetched for the history.
pub(crate) const SETTLE: Duration = Duration::from_secs(2 * 3600);

/// The fewest past weeks a baseline is published with: below that there is none (a new
/// installation has no baseline, so no drop alert can fire for it).
pub(crate) const MIN_WEEKS: usize = 2;

/// An hour without a row in the gateway's answer.
const NO_ROW: u16 = u16::MAX;

/// One past day of one shop: its hourly walk-ins (`NO_ROW` where the answer had no row or no
/// walk-ins; counts above 65,534 are kept as 65,534).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Day {
    date: NaiveDate,
    walk_in: [u16; 24],
}

/// The past days of every shop, and which days each target's calls have answered.
#[derive(Debug, Default)]
pub(crate) struct History {
    weeks: usize,
    /// By `depId`: the days kept, oldest first, at most `7 × weeks`.
    shops: HashMap<String, Vec<Day>>,
    /// By configured target: the days its history calls answered (within the window).
    answered: HashMap<TargetId, BTreeSet<NaiveDate>>,
}

impl History {
    /// An empty history for baselines over `weeks` weeks (0: none is kept).
    #[cfg(test)]
    pub(crate) fn new(weeks: usize) -> Self {
        History {
            weeks,
            ..History::default()
        }
    }

    /// The weeks baselines are computed over.
    pub(crate) fn weeks(&self) -> usize {
        self.weeks
    }

    /// Changes the weeks (a reload): the window follows at the next [`History::prune`]; 0
    /// forgets everything.
    pub(crate) fn set_weeks(&mut self, weeks: usize) {
        self.weeks = weeks;
        if weeks == 0 {
            self.shops.clear();
            self.answered.clear();
        }
    }

    /// The days a round reporting an hour of `day` keeps: the `7 × weeks` days before it,
    /// oldest first (none with 0 weeks).
    pub(crate) fn window(&self, day: NaiveDate) -> Vec<NaiveDate> {
        (1..=7 * self.weeks as u64)
            .rev()
            .filter_map(|back| day.checked_sub_days(chrono::Days::new(back)))
            .collect()
    }

    /// Whether the shop-local day `day` is final at the local time `now`: its end, plus
    /// `hour_delay` and [`SETTLE`], has passed.
    pub(crate) fn is_final(day: NaiveDate, now: NaiveDateTime, hour_delay: Duration) -> bool {
        let settle = chrono::Duration::from_std(hour_delay + SETTLE).unwrap_or(chrono::Duration::MAX);
        day.succ_opt()
            .map(|next| next.and_time(NaiveTime::MIN))
            .and_then(|end| end.checked_add_signed(settle))
            .is_some_and(|ready| now >= ready)
    }

    /// The days of the window of `day` still to ask for, final at `now`, each with the
    /// targets of `targets` its calls have not answered yet. The days the baseline of `day`
    /// needs (its weekday) come first, then the others, newest first: the baseline appears as
    /// soon as two weeks are in.
    pub(crate) fn missing(
        &self,
        targets: &[TargetId],
        day: NaiveDate,
        now: NaiveDateTime,
        hour_delay: Duration,
    ) -> Vec<(NaiveDate, Vec<TargetId>)> {
        let mut days: Vec<NaiveDate> = self
            .window(day)
            .into_iter()
            .filter(|d| History::is_final(*d, now, hour_delay))
            .collect();
        days.sort_by_key(|d| (d.weekday() != day.weekday(), std::cmp::Reverse(*d)));
        days.into_iter()
            .filter_map(|d| {
                let ids: Vec<TargetId> = targets
                    .iter()
                    .filter(|id| !self.answered.get(*id).is_some_and(|days| days.contains(&d)))
                    .cloned()
                    .collect();
                (!ids.is_empty()).then_some((d, ids))
            })
            .collect()
    }

    /// Keeps the hourly walk-ins of `date` from every shop of `series` (rows of other days are
    /// ignored), and remembers that the calls of `answered` have answered `date`. A day
    /// outside the window of `day` is not kept.
    pub(crate) fn record(&mut self, date: NaiveDate, day: NaiveDate, answered: &[TargetId], series: &[ShopSeries]) {
        let window = self.window(day);
        if !window.contains(&date) {
            return;
        }
        let capacity = window.len();
        for shop in series {
            let mut walk_in = [NO_ROW; 24];
            for row in shop.rows.iter().filter(|r| r.hour.date() == date) {
                let Some(slot) = walk_in.get_mut(row.hour.hour() as usize) else {
                    continue;
                };
                if let Some(v) = row.values.walk_in.filter(|v| v.is_finite()) {
                    *slot = v.round().clamp(0.0, f64::from(NO_ROW - 1)) as u16;
                }
            }
            let days = self.shops.entry(shop.dep_id.clone()).or_default();
            match days.binary_search_by_key(&date, |d| d.date) {
                Ok(i) => {
                    if let Some(kept) = days.get_mut(i) {
                        kept.walk_in = walk_in;
                    }
                }
                Err(i) => {
                    if days.capacity() < capacity {
                        days.reserve_exact(capacity - days.len());
                    }
                    days.insert(i, Day { date, walk_in });
                }
            }
        }
        for id in answered {
            self.answered.entry(id.clone()).or_default().insert(date);
        }
    }

    /// Drops the days before the window of `day`, the targets `keep_target` refuses (no longer
    /// configured) and the shops `keep_shop` refuses (no longer polled).
    pub(crate) fn prune(
        &mut self,
        day: NaiveDate,
        keep_target: impl Fn(&TargetId) -> bool,
        keep_shop: impl Fn(&str) -> bool,
    ) {
        let Some(first) = self.window(day).first().copied() else {
            self.shops.clear();
            self.answered.clear();
            return;
        };
        self.answered.retain(|id, days| {
            days.retain(|d| *d >= first);
            keep_target(id) && !days.is_empty()
        });
        self.shops.retain(|dep, days| {
            days.retain(|d| d.date >= first);
            keep_shop(dep) && !days.is_empty()
        });
    }

    /// The baseline of the shop `dep` for the local hour starting at `hour`: its walk-ins at
    /// the same hour of the same weekday 1 to `weeks` weeks before, leaving out the days on
    /// which that hour was not an opening hour or had no row; `None` below [`MIN_WEEKS`].
    pub(crate) fn baseline(&self, dep: &str, hour: NaiveDateTime, opening: &dyn OpeningHours) -> Option<ShopBaseline> {
        let days = self.shops.get(dep)?;
        let slot = hour.hour() as usize;
        let mut values: Vec<f64> = (1..=self.weeks as u64)
            .filter_map(|weeks| hour.date().checked_sub_days(chrono::Days::new(7 * weeks)))
            .filter_map(|date| {
                let day = days
                    .binary_search_by_key(&date, |d| d.date)
                    .ok()
                    .and_then(|i| days.get(i))?;
                let walk_in = *day.walk_in.get(slot)?;
                let open = opening.is_open(dep, date.and_time(hour.time()));
                (walk_in != NO_ROW && open).then_some(f64::from(walk_in))
            })
            .collect();
        if values.len() < MIN_WEEKS {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(ShopBaseline::new(
            quantile(0.5, &values)?,
            quantile(0.1, &values)?,
            values.len(),
        ))
    }

    /// Shops with at least one day kept.
    pub(crate) fn shops(&self) -> usize {
        self.shops.len()
    }

    /// Shop days kept, over all shops.
    pub(crate) fn days(&self) -> usize {
        self.shops.values().map(Vec::len).sum()
    }

    /// The days the calls of `target` have answered, oldest first.
    #[cfg(test)]
    pub(crate) fn answered(&self, target: &TargetId) -> Vec<NaiveDate> {
        self.answered
            .get(target)
            .map(|d| d.iter().copied().collect())
            .unwrap_or_default()
    }

    /// About how many bytes the history holds on the heap: the shops' day arrays as allocated,
    /// their keys and table slots, and the answered days (B-tree nodes counted at their
    /// entries' size, twice for their slack).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let shop_slot = size_of::<(String, Vec<Day>)>() + 1;
        let shops: usize = self
            .shops
            .iter()
            .map(|(dep, days)| dep.capacity() + days.capacity() * size_of::<Day>())
            .sum::<usize>()
            + self.shops.capacity() * shop_slot;
        let target_slot = size_of::<(TargetId, BTreeSet<NaiveDate>)>() + 1;
        let answered: usize = self
            .answered
            .values()
            .map(|days| 2 * days.len() * size_of::<NaiveDate>())
            .sum::<usize>()
            + self.answered.capacity() * target_slot;
        shops + answered
    }
}

/// The baseline of the hour each shop of `shops` describes (its sample's hour start, read in
/// `tz`), for the shops that have one: what a snapshot publishes beside them.
pub(crate) fn baselines(
    history: &History,
    shops: &BTreeMap<String, ShopSample>,
    tz: Tz,
    opening: &dyn OpeningHours,
) -> BTreeMap<String, ShopBaseline> {
    if history.weeks() == 0 {
        return BTreeMap::new();
    }
    shops
        .iter()
        .filter_map(|(dep, sample)| {
            let hour = chrono::DateTime::from_timestamp(sample.hour_start, 0)?
                .with_timezone(&tz)
                .naive_local();
            Some((dep.clone(), history.baseline(&sample.dep_id, hour, opening)?))
        })
        .collect()
}

/// The `phi`-quantile (0 to 1) of `sorted` (ascending) as PromQL's `quantile` computes it:
/// rank `phi × (n − 1)`, interpolated linearly between the values at the closest ranks.
/// `None` for no values.
pub(crate) fn quantile(phi: f64, sorted: &[f64]) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = phi.clamp(0.0, 1.0) * last as f64;
    let lower = (rank.floor() as usize).min(last);
    let upper = (lower + 1).min(last);
    let weight = rank - rank.floor();
    let (a, b) = (*sorted.get(lower)?, *sorted.get(upper)?);
    Some(a * (1.0 - weight) + b * weight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ShopRow, ShopValues};

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// Shop `dep`'s answer for `day`: walk-ins `value(hour)` for every hour it gives.
    fn series(dep: &str, day: NaiveDate, value: impl Fn(u32) -> Option<f64>) -> ShopSeries {
        ShopSeries {
            dep_id: dep.into(),
            name: String::new(),
            code: String::new(),
            rows: (0..24)
                .map(|h| ShopRow {
                    hour: day.and_hms_opt(h, 0, 0).unwrap(),
                    values: ShopValues {
                        walk_in: value(h),
                        ..ShopValues::default()
                    },
                })
                .collect(),
        }
    }

    /// Closed on the dates listed.
    struct ClosedOn(Vec<NaiveDate>);

    impl OpeningHours for ClosedOn {
        fn is_open(&self, _: &str, hour_start: NaiveDateTime) -> bool {
            !self.0.contains(&hour_start.date())
        }
    }

    /// A history of `weeks` weeks reporting on `today`, shop "1" having walk-ins `value(k)` at
    /// every hour `k` weeks before today (only the days of today's weekday).
    fn weekly(weeks: usize, today: NaiveDate, value: impl Fn(u64) -> Option<f64>) -> History {
        let mut h = History::new(weeks);
        for k in 1..=weeks as u64 {
            let day = today - chrono::Days::new(7 * k);
            h.record(day, today, &[TargetId::Shop(1)], &[series("1", day, |_| value(k))]);
        }
        h
    }

    #[test]
    fn quantiles_are_promqls() {
        // PromQL: quantile(0.5, ...) and quantile(0.1, ...) over 1 to 8 values.
        assert_eq!(quantile(0.5, &[]), None);
        assert_eq!(quantile(0.5, &[7.0]), Some(7.0));
        assert_eq!(quantile(0.1, &[7.0]), Some(7.0));
        assert_eq!(quantile(0.5, &[10.0, 20.0]), Some(15.0));
        assert!((quantile(0.1, &[10.0, 20.0]).unwrap() - 11.0).abs() < 1e-9);
        assert_eq!(quantile(0.5, &[1.0, 2.0, 10.0]), Some(2.0));
        assert!((quantile(0.1, &[1.0, 2.0, 10.0]).unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(quantile(0.5, &[1.0, 2.0, 3.0, 10.0]), Some(2.5));
        assert!((quantile(0.1, &[1.0, 2.0, 3.0, 10.0]).unwrap() - 1.3).abs() < 1e-9);
        let eight: Vec<f64> = (1..=8).map(|v| f64::from(v) * 10.0).collect();
        assert_eq!(quantile(0.5, &eight), Some(45.0));
        assert!((quantile(0.1, &eight).unwrap() - 17.0).abs() < 1e-9);
        assert_eq!(quantile(0.0, &eight), Some(10.0));
        assert_eq!(quantile(1.0, &eight), Some(80.0));
    }

    #[test]
    fn the_baseline_is_the_same_weekday_and_hour_of_past_weeks() {
        let today = date("2024-05-29");
        // Weeks 1..4 before: 40, 10, 30, 20 at every hour.
        let h = weekly(4, today, |k| Some([40.0, 10.0, 30.0, 20.0][k as usize - 1]));
        let b = h.baseline("1", at("2024-05-29 13:00:00"), &AlwaysOpen).unwrap();
        assert_eq!((b.median(), b.weeks), (25.0, 4));
        assert!((b.p10() - 13.0).abs() < 1e-9, "{b:?}");
        // The day after has no history of its weekday: no baseline.
        assert_eq!(h.baseline("1", at("2024-05-30 13:00:00"), &AlwaysOpen), None);
        assert_eq!(h.baseline("2", at("2024-05-29 13:00:00"), &AlwaysOpen), None);
    }

    #[test]
    fn one_to_eight_weeks() {
        let today = date("2024-06-26");
        for weeks in 1..=8usize {
            let h = weekly(weeks, today, |k| Some(k as f64 * 3.0));
            let b = h.baseline("1", at("2024-06-26 10:00:00"), &AlwaysOpen);
            if weeks < MIN_WEEKS {
                assert_eq!(b, None, "{weeks} weeks");
                continue;
            }
            let mut values: Vec<f64> = (1..=weeks).map(|k| k as f64 * 3.0).collect();
            values.sort_by(f64::total_cmp);
            let b = b.unwrap();
            assert_eq!(b.weeks, weeks);
            assert_eq!(Some(b.median()), quantile(0.5, &values));
            assert_eq!(Some(b.p10()), quantile(0.1, &values));
        }
    }

    #[test]
    fn closed_days_and_missing_rows_are_left_out_and_below_two_weeks_there_is_none() {
        let today = date("2024-05-29");
        // Week 2 has no walk-ins (no row).
        let h = weekly(4, today, |k| (k != 2).then_some(k as f64 * 10.0));
        let hour = at("2024-05-29 13:00:00");
        let b = h.baseline("1", hour, &AlwaysOpen).unwrap();
        assert_eq!((b.median(), b.weeks), (30.0, 3));
        // Week 1 closed (a holiday): two weeks left.
        let closed = ClosedOn(vec![date("2024-05-22")]);
        let b = h.baseline("1", hour, &closed).unwrap();
        assert_eq!((b.median(), b.weeks), (35.0, 2));
        // Weeks 1 and 3 closed: one week left, no baseline.
        let closed = ClosedOn(vec![date("2024-05-22"), date("2024-05-08")]);
        assert_eq!(h.baseline("1", hour, &closed), None);
    }

    #[test]
    fn only_the_window_is_kept_and_older_days_are_dropped() {
        let mut h = History::new(2);
        let today = date("2024-05-29");
        let window = h.window(today);
        assert_eq!(window.len(), 14);
        assert_eq!(window.first(), Some(&date("2024-05-15")));
        assert_eq!(window.last(), Some(&date("2024-05-28")));
        // Days outside the window are not kept.
        for d in [date("2024-05-14"), date("2024-05-29")] {
            h.record(d, today, &[TargetId::Shop(1)], &[series("1", d, |_| Some(1.0))]);
        }
        assert_eq!(h.days(), 0);
        for d in &window {
            h.record(*d, today, &[TargetId::Shop(1)], &[series("1", *d, |_| Some(1.0))]);
            h.record(*d, today, &[TargetId::Shop(1)], &[series("1", *d, |_| Some(2.0))]);
        }
        assert_eq!(h.days(), 14, "a day answered twice is kept once");
        let bytes = h.heap_bytes();
        // A day later, the oldest day goes.
        let tomorrow = date("2024-05-30");
        h.prune(tomorrow, |_| true, |_| true);
        assert_eq!(h.days(), 13);
        assert_eq!(h.answered(&TargetId::Shop(1)).first(), Some(&date("2024-05-16")));
        let d = date("2024-05-29");
        h.record(d, tomorrow, &[TargetId::Shop(1)], &[series("1", d, |_| Some(1.0))]);
        assert_eq!(h.days(), 14);
        assert!(h.heap_bytes() <= bytes, "the memory does not grow day by day");
        // A shop no longer polled, and a target no longer configured, are forgotten.
        h.prune(tomorrow, |id| *id != TargetId::Shop(1), |dep| dep != "1");
        assert_eq!((h.days(), h.shops()), (0, 0));
        assert!(h.answered(&TargetId::Shop(1)).is_empty());
        // With 0 weeks nothing is kept at all.
        let mut off = History::new(0);
        assert!(off.window(today).is_empty());
        off.record(d, today, &[TargetId::Shop(1)], &[series("1", d, |_| Some(1.0))]);
        assert_eq!(off.days(), 0);
    }

    #[test]
    fn a_day_is_asked_once_final_and_only_by_targets_that_lack_it() {
        let mut h = History::new(1);
        let today = date("2024-05-29");
        let targets = [TargetId::Shop(1), TargetId::Org(2)];
        let delay = Duration::from_secs(60);
        // At 02:00 yesterday is not final yet (00:00 + 1m + 2h).
        let missing = h.missing(&targets, today, at("2024-05-29 02:00:00"), delay);
        assert_eq!(missing.len(), 6);
        assert!(missing.iter().all(|(d, ids)| *d < date("2024-05-28") && ids.len() == 2));
        let missing = h.missing(&targets, today, at("2024-05-29 02:01:00"), delay);
        assert_eq!(missing.len(), 7);
        // The weekday of today first (a week ago), then newest first.
        let days: Vec<NaiveDate> = missing.iter().map(|(d, _)| *d).collect();
        assert_eq!(days.first(), Some(&date("2024-05-22")));
        assert_eq!(days.get(1), Some(&date("2024-05-28")));
        assert_eq!(days.last(), Some(&date("2024-05-23")));
        // Answered for one target: only the other one lacks it.
        let d = date("2024-05-22");
        h.record(d, today, &[TargetId::Org(2)], &[series("7", d, |_| Some(1.0))]);
        let missing = h.missing(&targets, today, at("2024-05-29 12:00:00"), delay);
        let of_d = missing.iter().find(|(day, _)| *day == d).map(|(_, ids)| ids.clone());
        assert_eq!(of_d, Some(vec![TargetId::Shop(1)]));
        h.record(d, today, &[TargetId::Shop(1)], &[series("1", d, |_| Some(1.0))]);
        let missing = h.missing(&targets, today, at("2024-05-29 12:00:00"), delay);
        assert!(missing.iter().all(|(day, _)| *day != d));
    }

    #[test]
    fn hours_without_a_row_and_huge_counts_are_stored_as_such() {
        let mut h = History::new(1);
        let today = date("2024-05-29");
        let d = date("2024-05-22");
        let answer = series("1", d, |hour| match hour {
            3 => None,
            4 => Some(1e9),
            _ => Some(f64::from(hour)),
        });
        h.record(d, today, &[TargetId::Shop(1)], &[answer]);
        let mut other = History::new(2);
        let d2 = date("2024-05-15");
        other.record(d, today, &[], &[series("1", d, |hour| Some(f64::from(hour)))]);
        other.record(d2, today, &[], &[series("1", d2, |hour| Some(f64::from(hour) + 1.0))]);
        let b = other.baseline("1", at("2024-05-29 04:00:00"), &AlwaysOpen).unwrap();
        assert_eq!((b.median(), b.weeks), (4.5, 2));
        let days = h.shops.get("1").unwrap();
        assert_eq!(days[0].walk_in[3], NO_ROW);
        assert_eq!(days[0].walk_in[4], NO_ROW - 1);
        assert_eq!(days[0].walk_in[5], 5);
    }
}
