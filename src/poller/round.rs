//! One round's answers into the next snapshot: which values a target gets, which it keeps
//! after a failure (until `stale_after`), which vanish, and whether it is up.
//!
//! A target that answered gets its values for the round's hour, or (after a gap, when the
//! call asked for several hours) for the newest hour the gateway has, or keeps its previous
//! ones if the gateway has nothing newer yet. A device not due this round (see
//! `device_poll_interval`) keeps its values and status. A target whose call failed keeps its previous
//! values until it has been failing for longer than `stale_after`, and is down. A call a
//! re-poll skipped (a new hour began) changes nothing. Targets not polled this round vanish.
//! A value is published with the Unix start of its hour in the configured zone: the round's
//! own start for the round's hour (on a fall-back day, the second 02:00 has its own), the
//! zone's for the other hours of a catch-up window (true across a daylight-saving change); a
//! row for an hour the clocks skipped is ignored.
//!
//! Shop answers are flat lists of shops, whoever asked for them, so each configured id is
//! judged by the final call (after any split) that asked it, and an organisation's shops are
//! worked out from what it held before (see [`Round::merge`]).
//!
//! The round also sets the day figures: a shop's from its batch's day-figure call (first
//! rounds only), a device's summed from the hourly rows of today its call answered. A shop or
//! device without new ones keeps those of the same local day; at local midnight they start the
//! new day. A re-poll that finds an hour already published with other values (a late upload)
//! counts a revision.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::plan::RoundPlan;
use super::PollReport;
use crate::client::{Answer, ApiError, Leaf, Split, Target};
use crate::config::Config;
use crate::hours;
use crate::model::{
    DaySample, DeviceDayValues, DeviceRow, DeviceSample, DeviceTarget, ShopDayValues, ShopMeta, ShopSample, ShopSeries,
    Snapshot, TargetId, TargetStatus,
};

/// The shops each organisation (`O_`) produced: its members as last answered. (An `S_` id's
/// shop is itself, so it is not stored: at 10,000 shops that would be megabytes.)
pub(super) type ShopsOf = BTreeMap<TargetId, BTreeSet<String>>;

/// How one call of a round ended.
pub(super) enum Outcome {
    /// A shops call of the batch `batch`, and the calls it took (more than one if split).
    Shops {
        batch: Vec<TargetId>,
        split: Split,
        /// The batch's day-figure call, when the round made one.
        days: Option<Split>,
    },
    /// A device call, and the device's day so far summed from the rows it answered.
    Device(DeviceTarget, Result<Vec<DeviceRow>, ApiError>, Option<DeviceDayValues>),
    /// Not called: the re-poll was overtaken by a new hour. Everything stays as it was.
    Skipped(Target),
}

/// What one round knows besides the answers: the previous snapshot, the hour asked for, now.
pub(super) struct Round<'a> {
    /// The configuration in force: the shops' calendars and static labels.
    pub(super) config: &'a Config,
    pub(super) previous: &'a Snapshot,
    pub(super) shops_of: &'a ShopsOf,
    pub(super) plan: &'a RoundPlan,
    pub(super) hour: NaiveDateTime,
    pub(super) hour_start: i64,
    /// The configured timezone: where the Unix starts of the window's other hours come from.
    pub(super) tz: Tz,
    /// Unix seconds.
    pub(super) now: f64,
    pub(super) stale_after: f64,
    /// The local day now, and its Unix start.
    pub(super) today: NaiveDate,
    pub(super) today_start: i64,
}

/// A device's day so far: the sums of the walk-ins and walk-outs of `today`'s hourly rows in
/// `answer` (each `None` when no row carried it).
pub(super) fn day_sum(answer: &Answer, today: NaiveDate) -> DeviceDayValues {
    let mut day = DeviceDayValues::default();
    if let Answer::Device(rows) = answer {
        for row in rows.iter().filter(|r| r.hour.date() == today) {
            let add = |sum: Option<f64>, v: Option<f64>| match (sum, v) {
                (s, None) => s,
                (s, Some(v)) => Some(s.unwrap_or(0.0) + v),
            };
            day.walk_in_today = add(day.walk_in_today, row.values.walk_in);
            day.walk_out_today = add(day.walk_out_today, row.values.walk_out);
        }
    }
    day
}

/// What a round builds: the snapshot, the shop memberships, and the organisations whose
/// shop list came back in doubt.
#[derive(Default)]
pub(super) struct Next {
    pub(super) snapshot: Snapshot,
    pub(super) shops_of: ShopsOf,
    pub(super) doubted: BTreeSet<TargetId>,
}

/// How the call that asked an id ended: the shops it returned, or its error.
type Asked<'l> = Result<&'l BTreeSet<String>, &'l ApiError>;

/// One final shops call: its ids, and the dep ids it returned or its error.
type Answered = (Vec<TargetId>, Result<BTreeSet<String>, ApiError>);

/// The final calls of a round's shop batches, by the ids they asked.
#[derive(Default)]
struct ShopCalls {
    /// Each call's ids and the dep ids it returned (or its error).
    calls: Vec<Answered>,
    /// The call that asked each id.
    by_id: HashMap<TargetId, usize>,
    /// Ids whose call a re-poll skipped.
    skipped: HashSet<TargetId>,
}

impl ShopCalls {
    fn asked(&self, id: &TargetId) -> Option<Asked<'_>> {
        self.by_id
            .get(id)
            .and_then(|i| self.calls.get(*i))
            .map(|(_, r)| r.as_ref())
    }
}

impl Round<'_> {
    /// Builds the next snapshot (and shop memberships) from this round's outcomes.
    pub(super) fn merge(&self, outcomes: Vec<Outcome>) -> (Next, PollReport) {
        let mut next = Next::default();
        let mut report = PollReport {
            hour: Some(self.hour),
            hour_start: Some(self.hour_start),
            ..PollReport::default()
        };
        let mut shops = ShopCalls::default();
        for outcome in outcomes {
            match outcome {
                Outcome::Shops { split, days, .. } => {
                    if let Some(days) = days {
                        report.splits += days.splits;
                        report.day_calls += days.leaves.len();
                        self.days_answered(&mut next, days);
                    }
                    report.splits += split.splits;
                    for Leaf { ids, result } in split.leaves {
                        report.calls += 1;
                        let returned = match result {
                            Ok(series) => Ok(self.shops_answered(&mut next, series, &mut report)),
                            Err(e) => {
                                report.failed_calls += 1;
                                let targets = Target::Shops(ids.clone());
                                tracing::warn!(error = %e, targets = %targets, "shop poll failed; keeping the last good values");
                                Err(e)
                            }
                        };
                        for id in &ids {
                            shops.by_id.insert(id.clone(), shops.calls.len());
                        }
                        shops.calls.push((ids, returned));
                    }
                }
                Outcome::Device(dev, result, today) => {
                    report.calls += 1;
                    if let Err(e) = &result {
                        report.failed_calls += 1;
                        tracing::warn!(error = %e, mac = %dev.mac, "device poll failed; keeping the last good values");
                    }
                    if let Some(values) = today {
                        let day = DaySample {
                            day_start: self.today_start,
                            values,
                        };
                        Arc::make_mut(&mut next.snapshot.device_days).insert(dev.mac.clone(), day);
                    }
                    self.device(&mut next, &dev, result.ok(), &mut report);
                }
                Outcome::Skipped(target) => {
                    report.calls += 1;
                    report.skipped_calls += 1;
                    match target {
                        Target::Shops(ids) => shops.skipped.extend(ids),
                        Target::Device(dev) => self.device_skipped(&mut next, dev),
                    }
                }
            }
        }
        for dev in &self.plan.resting {
            self.device_skipped(&mut next, dev.clone());
        }
        for id in &self.plan.configured {
            match id {
                TargetId::Shop(_) => self.shop_target(&mut next, id, &shops),
                // Asked as itself, or (too big, or split) through its shops.
                TargetId::Org(_) if shops.skipped.contains(id) || shops.by_id.contains_key(id) => {
                    self.org_target(&mut next, id, &shops);
                }
                TargetId::Org(_) => self.org_via_shops(&mut next, id, &shops),
            }
        }
        self.carry_days(&mut next.snapshot);
        self.describe_shops(&mut next);
        report.shops = next.snapshot.shops.len();
        report.devices = next.snapshot.devices.len();
        (next, report)
    }

    /// The day figures of every shop a day-figure call returned: its row of today (or its only
    /// row: the call asked for today alone).
    fn days_answered(&self, next: &mut Next, days: Split) {
        for series in days.leaves.into_iter().filter_map(|l| l.result.ok()).flatten() {
            let row = match series.rows.iter().find(|r| r.hour.date() == self.today) {
                Some(row) => Some(row),
                None if series.rows.len() == 1 => series.rows.first(),
                None => None,
            };
            let Some(row) = row else { continue };
            let v = row.values;
            let values = ShopDayValues {
                walk_in_today: v.walk_in,
                passing_today: v.passing,
                outside_today: v.outside,
                walk_out_today: v.walk_out,
                walk_in_rate_today: v.walk_in_rate,
            };
            let day = DaySample {
                day_start: self.today_start,
                values,
            };
            Arc::make_mut(&mut next.snapshot.shop_days).insert(series.dep_id, day);
        }
    }

    /// Sets what the configuration in force says of every published shop, kept values
    /// included (so that a reload applies at once): the configured organisation that returned
    /// it, whether its hour was an opening hour, its static labels. A shop listed by its own
    /// `S_` id has no organisation, even when one also returns it; any other shop has the first
    /// configured organisation (in the file's order) whose members hold it.
    fn describe_shops(&self, next: &mut Next) {
        let mut org_of: HashMap<&str, u64> = HashMap::new();
        for id in &self.plan.configured {
            if let (TargetId::Org(n), Some(members)) = (id, next.shops_of.get(id)) {
                for dep in members {
                    org_of.entry(dep.as_str()).or_insert(*n);
                }
            }
        }
        for (dep, sample) in Arc::make_mut(&mut next.snapshot.shops).iter_mut() {
            let number = dep.parse::<u64>().ok();
            let org_id = match number {
                Some(n) if self.config.lists_shop(n) => None,
                _ => org_of.get(dep.as_str()).copied(),
            };
            let hour =
                chrono::DateTime::from_timestamp(sample.hour_start, 0).map(|t| t.with_timezone(&self.tz).naive_local());
            let open = hour.is_some_and(|h| self.config.calendar_of(number, org_id).is_open(h));
            sample.meta = ShopMeta {
                open,
                org_id,
                labels: self.config.labels_of(number, org_id),
            };
        }
    }

    /// Day figures only for shops and devices still published: new ones, else the previous
    /// ones of the same local day.
    fn carry_days(&self, next: &mut Snapshot) {
        let today = self.today_start;
        Arc::make_mut(&mut next.shop_days).retain(|dep, _| next.shops.contains_key(dep));
        for dep in next.shops.keys() {
            if let Some(day) = self.previous.shop_days.get(dep).filter(|d| d.day_start == today) {
                Arc::make_mut(&mut next.shop_days)
                    .entry(dep.clone())
                    .or_insert_with(|| day.clone());
            }
        }
        Arc::make_mut(&mut next.device_days).retain(|mac, _| next.devices.contains_key(mac));
        for mac in next.devices.keys() {
            if let Some(day) = self.previous.device_days.get(mac).filter(|d| d.day_start == today) {
                Arc::make_mut(&mut next.device_days)
                    .entry(mac.clone())
                    .or_insert_with(|| day.clone());
            }
        }
    }

    /// The Unix start of `hour`, an hour of the round's window, from the zone: the round's
    /// own start for its hour (the second one when the hour repeats), the earlier start for
    /// another repeated hour, `None` for an hour the clocks skipped (the gateway labels rows by
    /// local wall time, so it may send one).
    fn start_of(&self, hour: NaiveDateTime) -> Option<i64> {
        if hour == self.hour {
            Some(self.hour_start)
        } else {
            hours::hour_start(hour, self.tz)
        }
    }

    /// The newest of `rows` up to the round's hour that exists in the zone, with its Unix
    /// start, unless older than `previous` (the Unix start of the hour published before; the
    /// same hour again is taken, revised): the round's hour when the gateway has it, else
    /// (after a gap) the newest it has.
    fn newest<'r, R>(
        &self,
        rows: &'r [R],
        hour: impl Fn(&R) -> NaiveDateTime,
        previous: Option<i64>,
    ) -> Option<(&'r R, i64)> {
        rows.iter()
            .filter(|r| hour(r) <= self.hour)
            .filter_map(|r| Some((r, self.start_of(hour(r))?)))
            .max_by_key(|(r, _)| hour(r))
            .filter(|(_, start)| previous.is_none_or(|p| *start >= p))
    }

    /// Every shop a call returned gets its newest hour, or keeps its last values if the
    /// gateway has no newer row yet. Returns the dep ids returned.
    fn shops_answered(&self, next: &mut Next, series: Vec<ShopSeries>, report: &mut PollReport) -> BTreeSet<String> {
        let mut returned = BTreeSet::new();
        for shop in series {
            returned.insert(shop.dep_id.clone());
            let previous = self.previous.shops.get(&shop.dep_id);
            let newest = self.newest(&shop.rows, |r| r.hour, previous.map(|p| p.hour_start));
            if let (Some((row, start)), Some(p)) = (newest, previous) {
                if start == p.hour_start && row.values != p.values {
                    report.shop_revisions += 1;
                }
            }
            let sample = match newest {
                Some((row, hour_start)) => Some(ShopSample {
                    dep_id: shop.dep_id.clone(),
                    name: shop.name,
                    code: shop.code,
                    hour_start,
                    values: row.values,
                    meta: ShopMeta::default(),
                }),
                // No newer row yet: keep what we had.
                None => previous.cloned(),
            };
            if let Some(sample) = sample {
                Arc::make_mut(&mut next.snapshot.shops).insert(shop.dep_id, sample);
            }
        }
        returned
    }

    /// A configured `S_` id: up when its call returned it; otherwise down, keeping its values
    /// while fresh.
    fn shop_target(&self, next: &mut Next, id: &TargetId, shops: &ShopCalls) {
        let target = id.to_string();
        let dep = id.number().to_string();
        if shops.skipped.contains(id) {
            self.carry_shops(&mut next.snapshot, [&dep]);
            self.carry_status(next, target);
            return;
        }
        let ok = match shops.asked(id) {
            Some(Ok(returned)) if returned.contains(&dep) => true,
            Some(Ok(_)) => {
                tracing::warn!(target = %target, "the gateway returned no data for this shop");
                false
            }
            Some(Err(_)) | None => false,
        };
        if !ok {
            self.keep_shops(&mut next.snapshot, &target, [&dep]);
        }
        Arc::make_mut(&mut next.snapshot.targets).insert(target.clone(), self.status(ok, &target));
    }

    /// A configured `O_` id asked as itself: up when its call answered, its shops those the
    /// call returned that belong to it; otherwise down, keeping its shops while fresh.
    fn org_target(&self, next: &mut Next, id: &TargetId, shops: &ShopCalls) {
        let target = id.to_string();
        let previous = self.shops_of.get(id);
        if shops.skipped.contains(id) {
            if let Some(owned) = previous {
                self.carry_shops(&mut next.snapshot, owned);
                next.shops_of.insert(id.clone(), owned.clone());
            }
            self.carry_status(next, target);
            return;
        }
        let call = shops.by_id.get(id).and_then(|i| shops.calls.get(*i));
        let Some((ids, Ok(returned))) = call else {
            if let Some(owned) = previous {
                self.keep_shops(&mut next.snapshot, &target, owned);
                next.shops_of.insert(id.clone(), owned.clone());
            }
            Arc::make_mut(&mut next.snapshot.targets).insert(target.clone(), self.status(false, &target));
            return;
        };
        let members = self.members(next, id, ids, returned);
        next.shops_of.insert(id.clone(), members);
        Arc::make_mut(&mut next.snapshot.targets).insert(target.clone(), self.status(true, &target));
    }

    /// Which of the shops a call returned belong to the organisation `id` it asked: those it
    /// held before, and those nobody asked for by their own `S_` id. With several
    /// organisations in the call, a shop none of them held before is given to each of them,
    /// and they are asked alone next round to settle it.
    fn members(
        &self,
        next: &mut Next,
        id: &TargetId,
        ids: &[TargetId],
        returned: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let empty = BTreeSet::new();
        let before = self.shops_of.get(id).unwrap_or(&empty);
        let by_own_id: BTreeSet<String> = ids
            .iter()
            .filter(|i| matches!(i, TargetId::Shop(_)))
            .map(|i| i.number().to_string())
            .collect();
        let orgs: Vec<&TargetId> = ids.iter().filter(|i| matches!(i, TargetId::Org(_))).collect();
        let mut members: BTreeSet<String> = before.intersection(returned).cloned().collect();
        let known: BTreeSet<&String> = orgs.iter().filter_map(|o| self.shops_of.get(*o)).flatten().collect();
        let new: Vec<&String> = returned
            .iter()
            .filter(|dep| !by_own_id.contains(*dep) && !known.contains(dep))
            .collect();
        if orgs.len() > 1 && !new.is_empty() {
            next.doubted.insert(id.clone());
        }
        members.extend(new.into_iter().cloned());
        members
    }

    /// A configured `O_` id asked through its shops (too big for one call, or split after a
    /// refusal): up when every call holding them answered; a shop whose call failed keeps its
    /// values while the organisation is fresh. Its shop list stays as last answered by the
    /// organisation itself.
    fn org_via_shops(&self, next: &mut Next, id: &TargetId, shops: &ShopCalls) {
        let target = id.to_string();
        let Some(members) = self.shops_of.get(id) else {
            return;
        };
        let mut ok = true;
        for dep in members {
            let Ok(number) = dep.parse::<u64>() else { continue };
            let shop = TargetId::Shop(number);
            if shops.skipped.contains(&shop) {
                self.carry_shops(&mut next.snapshot, [dep]);
                continue;
            }
            match shops.asked(&shop) {
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    ok = false;
                    self.keep_shops(&mut next.snapshot, &target, [dep]);
                }
            }
        }
        next.shops_of.insert(id.clone(), members.clone());
        Arc::make_mut(&mut next.snapshot.targets).insert(target.clone(), self.status(ok, &target));
    }

    /// A device answered (`Some` rows) or failed (`None`).
    fn device(&self, next: &mut Next, dev: &DeviceTarget, rows: Option<Vec<DeviceRow>>, report: &mut PollReport) {
        let ok = rows.is_some();
        let before = self.previous.devices.get(&dev.mac);
        let previous = before.map(|p| p.hour_start);
        let fresh = rows.and_then(|rows| {
            let newest = self.newest(&rows, |r| r.hour, previous);
            if let (Some((row, start)), Some(p)) = (newest, before) {
                if start == p.hour_start && row.values != p.values {
                    report.device_revisions += 1;
                }
            }
            newest.map(|(r, hour_start)| DeviceSample {
                mac: dev.mac.clone(),
                name: dev.name.clone().unwrap_or_default(),
                shop_id: dev.shop_id.clone().unwrap_or_default(),
                hour_start,
                values: r.values,
            })
        });
        let kept = || {
            self.still_fresh(&dev.mac)
                .then(|| self.previous.devices.get(&dev.mac).cloned())
                .flatten()
        };
        if let Some(sample) = fresh.or_else(kept) {
            Arc::make_mut(&mut next.snapshot.devices).insert(dev.mac.clone(), sample);
        }
        Arc::make_mut(&mut next.snapshot.targets).insert(dev.mac.clone(), self.status(ok, &dev.mac));
    }

    /// A device call a re-poll skipped: it carries over exactly as it was.
    fn device_skipped(&self, next: &mut Next, dev: DeviceTarget) {
        if let Some(sample) = self.previous.devices.get(&dev.mac) {
            Arc::make_mut(&mut next.snapshot.devices).insert(dev.mac.clone(), sample.clone());
        }
        self.carry_status(next, dev.mac);
    }

    fn carry_status(&self, next: &mut Next, target: String) {
        if let Some(status) = self.previous.targets.get(&target) {
            Arc::make_mut(&mut next.snapshot.targets).insert(target, *status);
        }
    }

    fn status(&self, ok: bool, target: &str) -> TargetStatus {
        TargetStatus {
            up: ok,
            last_success: if ok { Some(self.now) } else { self.last_success(target) },
        }
    }

    fn last_success(&self, target: &str) -> Option<f64> {
        self.previous.targets.get(target).and_then(|t| t.last_success)
    }

    /// A failing target's values are kept while its last success is within `stale_after`.
    fn still_fresh(&self, target: &str) -> bool {
        self.last_success(target)
            .is_some_and(|t| self.now - t <= self.stale_after)
    }

    /// Carries the previous samples of `dep_ids` into `next` for a target that did not deliver
    /// them this round, unless the target has been failing for too long.
    fn keep_shops<'s>(&self, next: &mut Snapshot, target: &str, dep_ids: impl IntoIterator<Item = &'s String>) {
        if self.still_fresh(target) {
            self.carry_shops(next, dep_ids);
        }
    }

    /// Carries the previous samples of `dep_ids` into `next` (unless a fresher one is there).
    fn carry_shops<'s>(&self, next: &mut Snapshot, dep_ids: impl IntoIterator<Item = &'s String>) {
        for dep in dep_ids {
            if let Some(sample) = self.previous.shops.get(dep) {
                Arc::make_mut(&mut next.shops)
                    .entry(dep.clone())
                    .or_insert_with(|| sample.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;
    use crate::model::{ShopRow, ShopValues};

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn unix(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
    }

    /// What the round for `hour` (starting at `start`) in Europe/Berlin publishes for shop 1,
    /// answered with a row for each of `rows` (walk-ins: the row's local hour), after
    /// `previous` (a sample's hour start).
    fn published(hour: &str, start: &str, rows: &[&str], previous: Option<i64>) -> Option<(i64, f64)> {
        let mut before = Snapshot::default();
        if let Some(hour_start) = previous {
            let sample = ShopSample {
                dep_id: "1".into(),
                name: String::new(),
                code: String::new(),
                hour_start,
                values: ShopValues::every(-1.0),
                meta: ShopMeta::default(),
            };
            Arc::make_mut(&mut before.shops).insert("1".into(), sample);
        }
        let plan = RoundPlan {
            configured: vec![TargetId::Shop(1)],
            ..RoundPlan::default()
        };
        let config = crate::poller::schedule::tests::config(300, 60);
        let round = Round {
            config: &config,
            previous: &before,
            shops_of: &ShopsOf::new(),
            plan: &plan,
            hour: local(hour),
            hour_start: unix(start),
            tz: chrono_tz::Europe::Berlin,
            now: unix(start) as f64 + 3900.0,
            stale_after: 7200.0,
            today: local(hour).date(),
            today_start: 0,
        };
        let rows = rows
            .iter()
            .map(|r| ShopRow {
                hour: local(r),
                values: ShopValues {
                    walk_in: Some(f64::from(local(r).hour())),
                    ..ShopValues::default()
                },
            })
            .collect();
        let series = ShopSeries {
            dep_id: "1".into(),
            name: String::new(),
            code: String::new(),
            rows,
        };
        let split = Split {
            leaves: vec![Leaf {
                ids: vec![TargetId::Shop(1)],
                result: Ok(vec![series]),
            }],
            splits: 0,
        };
        let outcome = Outcome::Shops {
            batch: vec![TargetId::Shop(1)],
            split,
            days: None,
        };
        let (next, _) = round.merge(vec![outcome]);
        let sample = next.snapshot.shops.get("1")?;
        Some((sample.hour_start, sample.values.walk_in?))
    }

    #[test]
    fn a_row_before_a_daylight_saving_change_gets_its_true_start() {
        // 2026-03-29 in Berlin: 02:00 CET became 03:00 CEST. The round for 04:00 CEST (02:00
        // UTC) after a gap, the gateway a little late: the newest row is 01:00 CET.
        let rows = ["2026-03-29 00:00:00", "2026-03-29 01:00:00"];
        assert_eq!(
            published("2026-03-29 04:00:00", "2026-03-29T02:00:00Z", &rows, None),
            Some((unix("2026-03-29T00:00:00Z"), 1.0))
        );
        // A row for the 02:00 that never was is not taken for the newest.
        let rows = ["2026-03-29 01:00:00", "2026-03-29 02:00:00"];
        assert_eq!(
            published("2026-03-29 03:00:00", "2026-03-29T01:00:00Z", &rows, None),
            Some((unix("2026-03-29T00:00:00Z"), 1.0))
        );
        // 2026-10-25: 03:00 CEST became 02:00 CET. The round for 04:00 CET (03:00 UTC), the
        // newest row 01:00 CEST.
        let rows = ["2026-10-25 00:00:00", "2026-10-25 01:00:00"];
        assert_eq!(
            published("2026-10-25 04:00:00", "2026-10-25T03:00:00Z", &rows, None),
            Some((unix("2026-10-24T23:00:00Z"), 1.0))
        );
    }

    #[test]
    fn the_repeated_hour_is_published_at_the_rounds_own_start() {
        let rows = ["2026-10-25 01:00:00", "2026-10-25 02:00:00"];
        // The first 02:00 (CEST, 00:00 UTC), then the second (CET, 01:00 UTC).
        let first = published("2026-10-25 02:00:00", "2026-10-25T00:00:00Z", &rows, None);
        assert_eq!(first, Some((unix("2026-10-25T00:00:00Z"), 2.0)));
        let second = published("2026-10-25 02:00:00", "2026-10-25T01:00:00Z", &rows, first.map(|f| f.0));
        assert_eq!(second, Some((unix("2026-10-25T01:00:00Z"), 2.0)));
        // The round for 03:00 CET without its row yet keeps the second 02:00: the row's first
        // start is older than what was published.
        let later = published(
            "2026-10-25 03:00:00",
            "2026-10-25T02:00:00Z",
            &rows,
            second.map(|s| s.0),
        );
        assert_eq!(later, Some((unix("2026-10-25T01:00:00Z"), -1.0)));
    }
}

#[cfg(test)]
mod describe_tests {
    use super::*;
    use crate::model::{ShopRow, ShopValues};

    /// Shops 10 and 11 of O_1, 11 and 12 of O_2, and S_3 (also returned by nobody else).
    #[test]
    fn a_shop_takes_the_first_organisation_that_holds_it_and_a_listed_shop_none() {
        let yaml = r#"
gateway: {url: "http://127.0.0.1:1/m.api", app_key: k, app_secret: s}
shops:
  - id: O_1
    labels: {region: a}
  - id: O_2
    labels: {region: b, city: c}
    calendar: {hours: {all: closed}}
  - id: S_3
    labels: {manager: m}
"#;
        let config = Config::from_yaml_str(yaml, &|_| None).unwrap();
        let hour = NaiveDateTime::parse_from_str("2024-05-01 13:00:00", "%Y-%m-%d %H:%M:%S").unwrap();
        let hour_start = chrono::DateTime::parse_from_rfc3339("2024-05-01T05:00:00Z")
            .unwrap()
            .timestamp();
        let ids = vec![TargetId::Org(1), TargetId::Org(2), TargetId::Shop(3)];
        let plan = RoundPlan {
            configured: ids.clone(),
            ..RoundPlan::default()
        };
        let shops_of: ShopsOf = [
            (TargetId::Org(1), ["10", "11"].map(String::from).into()),
            (TargetId::Org(2), ["11", "12"].map(String::from).into()),
        ]
        .into();
        let previous = Snapshot::default();
        let round = Round {
            config: &config,
            previous: &previous,
            shops_of: &shops_of,
            plan: &plan,
            hour,
            hour_start,
            tz: chrono_tz::Asia::Shanghai,
            now: hour_start as f64 + 3900.0,
            stale_after: 7200.0,
            today: hour.date(),
            today_start: 0,
        };
        let series = ["10", "11", "12", "3"]
            .map(|dep| ShopSeries {
                dep_id: dep.into(),
                name: String::new(),
                code: String::new(),
                rows: vec![ShopRow {
                    hour,
                    values: ShopValues::every(1.0),
                }],
            })
            .to_vec();
        let split = Split {
            leaves: vec![Leaf {
                ids: ids.clone(),
                result: Ok(series),
            }],
            splits: 0,
        };
        let (next, _) = round.merge(vec![Outcome::Shops {
            batch: ids,
            split,
            days: None,
        }]);
        let meta = |dep: &str| next.snapshot.shops.get(dep).map(|s| s.meta.clone()).unwrap();
        let labels = |dep: &str| {
            meta(dep)
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!((meta("10").org_id, meta("10").open), (Some(1), true));
        assert_eq!(
            (meta("11").org_id, meta("11").open),
            (Some(1), true),
            "the first organisation"
        );
        assert_eq!(labels("11"), ["region=a"]);
        assert_eq!((meta("12").org_id, meta("12").open), (Some(2), false), "O_2 is closed");
        assert_eq!(labels("12"), ["city=c", "region=b"]);
        assert_eq!((meta("3").org_id, meta("3").open), (None, true));
        assert_eq!(labels("3"), ["manager=m"]);
    }
}
