//! One round's answers into the next snapshot: which values a target gets, which it keeps
//! after a failure (until `stale_after`), which vanish, and whether it is up.
//!
//! A target that answered gets its values for the round's hour, or keeps its previous ones if
//! the gateway has no row for that hour yet. A target whose call failed keeps its previous
//! values until it has been failing for longer than `stale_after`, and is down. A call a
//! re-poll skipped (a new hour began) changes nothing. Targets not polled this round vanish.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;

use super::PollReport;
use crate::client::{Answer, ApiError, Target};
use crate::model::{DeviceRow, DeviceSample, DeviceTarget, ShopSample, ShopSeries, Snapshot, TargetId, TargetStatus};

/// The shops each shop target produced: itself for `S_`, its members for `O_`.
pub(super) type ShopsOf = BTreeMap<TargetId, BTreeSet<String>>;

/// How one call of a round ended.
pub(super) enum Outcome {
    Answered(Target, Result<Answer, ApiError>),
    /// Not called: the re-poll was overtaken by a new hour. Everything stays as it was.
    Skipped(Target),
}

/// What one round knows besides the answers: the previous snapshot, the hour asked for, now.
pub(super) struct Round<'a> {
    pub(super) previous: &'a Snapshot,
    pub(super) shops_of: &'a ShopsOf,
    pub(super) hour: NaiveDateTime,
    pub(super) hour_start: i64,
    /// Unix seconds.
    pub(super) now: f64,
    pub(super) stale_after: f64,
}

/// The snapshot and shop memberships a round builds.
#[derive(Default)]
struct Next {
    snapshot: Snapshot,
    shops_of: ShopsOf,
}

impl Round<'_> {
    /// Builds the next snapshot (and shop memberships) from this round's outcomes.
    pub(super) fn merge(&self, outcomes: Vec<Outcome>) -> (Snapshot, ShopsOf, PollReport) {
        let mut next = Next::default();
        let mut report = PollReport {
            hour: Some(self.hour),
            calls: outcomes.len(),
            ..PollReport::default()
        };
        for outcome in outcomes {
            match outcome {
                Outcome::Answered(Target::Shops(ids), Ok(answer)) => {
                    self.shops_answered(&mut next, ids, answer.into_shops());
                }
                Outcome::Answered(Target::Shops(ids), Err(e)) => {
                    report.failed_calls += 1;
                    let targets = Target::Shops(ids.clone());
                    tracing::warn!(error = %e, targets = %targets, "shop poll failed; keeping the last good values");
                    self.shops_failed(&mut next, ids);
                }
                Outcome::Answered(Target::Device(dev), result) => {
                    let result = result.map(Answer::into_device_rows);
                    if let Err(e) = &result {
                        report.failed_calls += 1;
                        tracing::warn!(error = %e, mac = %dev.mac, "device poll failed; keeping the last good values");
                    }
                    self.device(&mut next, &dev, result.ok());
                }
                Outcome::Skipped(target) => {
                    report.skipped_calls += 1;
                    self.skipped(&mut next, target);
                }
            }
        }
        report.shops = next.snapshot.shops.len();
        report.devices = next.snapshot.devices.len();
        (next.snapshot, next.shops_of, report)
    }

    /// A shop batch answered: every shop returned gets its hour (or keeps its last one); an
    /// `S_` id the gateway did not return is down and keeps its values while fresh.
    fn shops_answered(&self, next: &mut Next, ids: Vec<TargetId>, series: Vec<ShopSeries>) {
        let returned: BTreeSet<String> = series.iter().map(|s| s.dep_id.clone()).collect();
        for shop in series {
            let sample = match shop.rows.iter().find(|r| r.hour == self.hour) {
                Some(row) => Some(ShopSample {
                    dep_id: shop.dep_id.clone(),
                    name: shop.name,
                    code: shop.code,
                    hour_start: self.hour_start,
                    values: row.values,
                }),
                // No row for the hour yet: keep what we had.
                None => self.previous.shops.get(&shop.dep_id).cloned(),
            };
            if let Some(sample) = sample {
                next.snapshot.shops.insert(shop.dep_id, sample);
            }
        }
        // Shops of an organisation are those not asked for by their own S_ id.
        let asked: BTreeSet<String> = ids
            .iter()
            .filter(|id| matches!(id, TargetId::Shop(_)))
            .map(|id| id.number().to_string())
            .collect();
        let of_orgs: BTreeSet<String> = returned.difference(&asked).cloned().collect();
        for id in ids {
            let target = id.to_string();
            let (ok, owned) = match id {
                TargetId::Shop(n) => {
                    let dep = n.to_string();
                    let found = returned.contains(&dep);
                    if !found {
                        tracing::warn!(target = %target, "the gateway returned no data for this shop");
                        self.keep_shops(&mut next.snapshot, &target, [&dep]);
                    }
                    (found, BTreeSet::from([dep]))
                }
                TargetId::Org(_) => (true, of_orgs.clone()),
            };
            next.snapshot.targets.insert(target.clone(), self.status(ok, &target));
            next.shops_of.insert(id, owned);
        }
    }

    /// A shop batch failed: each target is down and keeps its shops while fresh.
    fn shops_failed(&self, next: &mut Next, ids: Vec<TargetId>) {
        for id in ids {
            let target = id.to_string();
            if let Some(owned) = self.shops_of.get(&id) {
                self.keep_shops(&mut next.snapshot, &target, owned);
                next.shops_of.insert(id, owned.clone());
            }
            next.snapshot
                .targets
                .insert(target.clone(), self.status(false, &target));
        }
    }

    /// A device answered (`Some` rows) or failed (`None`).
    fn device(&self, next: &mut Next, dev: &DeviceTarget, rows: Option<Vec<DeviceRow>>) {
        let ok = rows.is_some();
        let fresh = rows.and_then(|rows| {
            rows.iter().find(|r| r.hour == self.hour).map(|r| DeviceSample {
                mac: dev.mac.clone(),
                name: dev.name.clone().unwrap_or_default(),
                shop_id: dev.shop_id.clone().unwrap_or_default(),
                hour_start: self.hour_start,
                values: r.values,
            })
        });
        let kept = || {
            self.still_fresh(&dev.mac)
                .then(|| self.previous.devices.get(&dev.mac).cloned())
                .flatten()
        };
        if let Some(sample) = fresh.or_else(kept) {
            next.snapshot.devices.insert(dev.mac.clone(), sample);
        }
        next.snapshot.targets.insert(dev.mac.clone(), self.status(ok, &dev.mac));
    }

    /// A skipped call: its targets carry over exactly as they were.
    fn skipped(&self, next: &mut Next, target: Target) {
        match target {
            Target::Shops(ids) => {
                for id in ids {
                    let target = id.to_string();
                    if let Some(owned) = self.shops_of.get(&id) {
                        self.carry_shops(&mut next.snapshot, owned);
                        next.shops_of.insert(id, owned.clone());
                    }
                    self.carry_status(next, target);
                }
            }
            Target::Device(dev) => {
                if let Some(sample) = self.previous.devices.get(&dev.mac) {
                    next.snapshot.devices.insert(dev.mac.clone(), sample.clone());
                }
                self.carry_status(next, dev.mac);
            }
        }
    }

    fn carry_status(&self, next: &mut Next, target: String) {
        if let Some(status) = self.previous.targets.get(&target) {
            next.snapshot.targets.insert(target, *status);
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
                next.shops.entry(dep.clone()).or_insert_with(|| sample.clone());
            }
        }
    }
}
