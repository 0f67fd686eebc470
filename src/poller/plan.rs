//! What one round asks of the gateway, shaped by what earlier answers taught: this replica's
//! shop ids packed into calls by the rows they are expected to return (an organisation's shop
//! count is learned from its answers; one not known yet is asked alone), an organisation too
//! big for one call asked through its shops (and itself again every `batch_memory`, so shops
//! that join or leave it appear or vanish), a batch the gateway refused whole asked in the
//! parts that worked last time, and every device on its own, each in its own hour of the
//! `device_poll_interval` cycle.
//!
//! Each call asks from the hour after its targets' last answer ([`Answered`]) to the hour being
//! refreshed: one hour normally, more after a gap (at most `max_catch_up_hours` back, and for
//! shop calls not before the hour's day, since `starthour`/`endhour` apply to every day asked).
//!
//! Windows are counted in the local wall-clock hours the gateway labels its rows with, not in
//! real time: across a spring-forward change the window 01:00..=03:00 is three rows asked for
//! two real hours (a row for the skipped 02:00 is ignored by the merge), and on a fall-back day
//! the repeated 02:00 is one row, asked again by the second refresh of that hour. Row counts
//! (for packing) are the naive hours, what the gateway sends. The device cycle, by contrast,
//! runs in real time: a device's turn is fixed by its hour's start instant, and it is overdue
//! `device_poll_interval` after the start of its last answered hour, whatever the clocks did.
//!
//! What is learned about asking ([`Learned`]) lives as long as the configuration: a reload
//! starts afresh, and every lesson expires after `gateway.batch_memory`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::round::ShopsOf;
use super::schedule::owned_targets;
use crate::client::{pack, Packing};
use crate::config::{stable_hash, Config};
use crate::model::{DeviceTarget, TargetId};

/// One shops call of a round: the batch it was packed as (what a split is remembered by), the
/// ids it asks (the batch, or one part of its remembered split), and its first hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShopCall {
    pub(super) batch: Vec<TargetId>,
    pub(super) ids: Vec<TargetId>,
    pub(super) first_hour: NaiveDateTime,
}

/// One device call of a round, from its first hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeviceCall {
    pub(super) device: DeviceTarget,
    pub(super) first_hour: NaiveDateTime,
}

/// The last hour each target's call answered: where its next window starts (and, for a
/// device, that hour's start in Unix seconds, where its cycle counts from).
#[derive(Debug, Default)]
pub(super) struct Answered {
    pub(super) shops: HashMap<TargetId, NaiveDateTime>,
    pub(super) devices: HashMap<String, (NaiveDateTime, i64)>,
}

/// The first hour to ask for a target last answered for `last`, in a round for `hour`: the
/// hour after `last` when that is earlier, but at most `cap` hours back.
pub(super) fn window_start(last: Option<NaiveDateTime>, hour: NaiveDateTime, cap: usize) -> NaiveDateTime {
    let earliest = hour - chrono::Duration::hours(cap as i64);
    match last {
        Some(last) if last < hour => (last + chrono::Duration::hours(1)).max(earliest),
        _ => hour,
    }
}

/// Whether the device `mac`, last answered for the hour starting at `last` (Unix seconds), is
/// polled in the round for the hour starting at `start` when devices are polled every `every`
/// hours: in its own hour of the cycle (a stable hash of the mac spreads them evenly), or
/// whenever it is overdue or new. Real hours: the cycle goes on through daylight-saving
/// changes.
pub(super) fn device_due(mac: &str, start: i64, every: u64, last: Option<i64>) -> bool {
    if every <= 1 {
        return true;
    }
    let Some(last) = last else { return true };
    if start.saturating_sub(last) >= (every as i64).saturating_mul(3600) {
        return true;
    }
    let index = start.div_euclid(3600).unsigned_abs();
    let phase = stable_hash(&format!("device-phase/{mac}"));
    (index % every + phase % every) % every == 0
}

/// The calls of one round and what the merge needs to know about them.
#[derive(Debug, Default)]
pub(super) struct RoundPlan {
    pub(super) shops: Vec<ShopCall>,
    pub(super) devices: Vec<DeviceCall>,
    /// Devices not due this round: they keep their values and status.
    pub(super) resting: Vec<DeviceTarget>,
    /// This replica's configured shop and organisation ids.
    pub(super) configured: Vec<TargetId>,
    /// Organisations asked through their shops this round (too big for one call).
    pub(super) via_shops: BTreeSet<TargetId>,
}

impl RoundPlan {
    /// Gateway calls the round starts with (a split adds more).
    pub(super) fn calls(&self) -> usize {
        self.shops.len() + self.devices.len()
    }
}

/// The parts a batch is asked in, and since when.
type Remembered = (Vec<Vec<TargetId>>, DateTime<Utc>);

/// What earlier answers taught about asking.
#[derive(Debug, Default)]
pub(super) struct Learned {
    /// Batches the gateway refused whole, and the parts that worked, since when.
    splits: HashMap<Vec<TargetId>, Remembered>,
    /// When each organisation was last asked as itself.
    org_asked: HashMap<TargetId, DateTime<Utc>>,
    /// Organisations whose shop list is in doubt (a shop no known list holds came back from a
    /// call with several organisations): asked alone next round.
    unsure: BTreeSet<TargetId>,
}

impl Learned {
    /// The calls of the round for `hour` (starting at `hour_start`, Unix seconds), at `now`,
    /// with the organisations' shops as last answered (`shops_of`) and each target's last
    /// answered hour.
    pub(super) fn plan(
        &mut self,
        config: &Config,
        shops_of: &ShopsOf,
        answered: &Answered,
        (hour, hour_start): (NaiveDateTime, i64),
        now: DateTime<Utc>,
    ) -> RoundPlan {
        let packing = Packing::of(&config.gateway);
        let memory = chrono::Duration::from_std(config.gateway.batch_memory).unwrap_or(chrono::Duration::MAX);
        self.splits.retain(|_, (_, since)| now - *since < memory);
        self.org_asked.retain(|_, since| now - *since < memory);
        let unsure = std::mem::take(&mut self.unsure);
        let cap = config.max_catch_up_hours;
        let day_start = hour.date().and_time(chrono::NaiveTime::MIN);
        let first_hour = |id: &TargetId| window_start(answered.shops.get(id).copied(), hour, cap).max(day_start);

        let (configured, devices) = owned_targets(config);
        // The ids to ask, by their first hour, each with its rows per hour.
        let mut ask: BTreeMap<NaiveDateTime, Vec<(TargetId, Option<usize>)>> = BTreeMap::new();
        let mut seen: HashSet<TargetId> = HashSet::with_capacity(configured.len());
        let mut push = |id: TargetId, rows: Option<usize>| {
            if seen.insert(id.clone()) {
                ask.entry(first_hour(&id)).or_default().push((id, rows));
            }
        };
        let mut via_shops = BTreeSet::new();
        for id in &configured {
            let members = match id {
                TargetId::Shop(_) => {
                    push(id.clone(), Some(1));
                    continue;
                }
                TargetId::Org(_) => shops_of.get(id).filter(|_| !unsure.contains(id)),
            };
            let size = members.map(BTreeSet::len);
            let hours = (hour - first_hour(id)).num_hours().unsigned_abs() as usize + 1;
            let too_big = size.is_some_and(|n| n.saturating_mul(hours) > packing.max_rows);
            match members {
                Some(members) if too_big && self.org_asked.contains_key(id) => {
                    via_shops.insert(id.clone());
                    for shop in members.iter().filter_map(|dep| dep.parse().ok()).map(TargetId::Shop) {
                        push(shop, Some(1));
                    }
                }
                _ => {
                    self.org_asked.insert(id.clone(), now);
                    push(id.clone(), size);
                }
            }
        }
        let mut shops = Vec::new();
        for (first_hour, ids) in ask {
            let hours = (hour - first_hour).num_hours().unsigned_abs() as usize + 1;
            for batch in pack(ids, hours, packing) {
                let parts = match self.splits.get(&batch) {
                    Some((parts, _)) => parts.clone(),
                    None => vec![batch.clone()],
                };
                shops.extend(parts.into_iter().map(|ids| ShopCall {
                    batch: batch.clone(),
                    ids,
                    first_hour,
                }));
            }
        }
        let every = (config.device_poll_interval.as_secs() / 3600).max(1);
        let device_cap = cap.max(every as usize);
        let last = |mac: &str| answered.devices.get(mac).copied();
        let (due, resting): (Vec<&DeviceTarget>, Vec<&DeviceTarget>) = devices
            .into_iter()
            .partition(|d| device_due(&d.mac, hour_start, every, last(&d.mac).map(|(_, start)| start)));
        RoundPlan {
            shops,
            devices: due
                .into_iter()
                .map(|d| DeviceCall {
                    device: d.clone(),
                    first_hour: window_start(last(&d.mac).map(|(hour, _)| hour), hour, device_cap),
                })
                .collect(),
            resting: resting.into_iter().cloned().collect(),
            configured,
            via_shops,
        }
    }

    /// Remembers that `batch` is to be asked in `parts` (those that worked, and the ids that
    /// failed alone), from `now` for `batch_memory`.
    pub(super) fn split(&mut self, batch: Vec<TargetId>, parts: Vec<Vec<TargetId>>, now: DateTime<Utc>) {
        self.splits.insert(batch, (parts, now));
    }

    /// Asks `org` alone next round: its shop list is in doubt.
    pub(super) fn doubt(&mut self, org: TargetId) {
        self.unsure.insert(org);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::poller::schedule::tests::{config, with_orgs};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// The local hour 13:00 of 2024-05-01 (`at(NOW)` is 14:30 in Shanghai).
    fn hour() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("2024-05-01 13:00:00", "%Y-%m-%d %H:%M:%S").unwrap()
    }

    /// The round for `hour()`: 13:00 in Shanghai starts at 05:00 UTC.
    fn round() -> (NaiveDateTime, i64) {
        (hour(), at("2024-05-01T05:00:00Z").timestamp())
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn asked(plan: &RoundPlan) -> Vec<String> {
        plan.shops
            .iter()
            .map(|c| crate::client::Target::Shops(c.ids.clone()).to_string())
            .collect()
    }

    /// `n` shops of organisation `org`, dep ids from `first`.
    /// `n` devices, macs `0a0000000000` + index.
    fn devices(n: u64) -> Vec<DeviceTarget> {
        (0..n)
            .map(|i| DeviceTarget {
                mac: format!("0a{i:010x}"),
                name: None,
                shop_id: None,
            })
            .collect()
    }

    fn members(first: u64, n: u64) -> BTreeSet<String> {
        (first..first + n).map(|d| d.to_string()).collect()
    }

    #[test]
    fn organisations_are_asked_alone_until_their_size_is_known_then_packed_by_rows() {
        let c = with_orgs(config(300, 60), 2001..=2100);
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        let first = learned.plan(&c, &ShopsOf::new(), &Answered::default(), round(), now);
        assert_eq!(first.shops.len(), 100, "each unknown organisation alone");
        let shops_of: ShopsOf = (0..100u64)
            .map(|o| (TargetId::Org(2001 + o), members(100_001 + o * 100, 100)))
            .collect();
        let next = learned.plan(&c, &shops_of, &Answered::default(), round(), now);
        // 2,000 rows a call: 20 organisations of 100.
        assert_eq!(next.shops.len(), 5, "{:?}", asked(&next));
        assert!(next.via_shops.is_empty());
        // After a gap, three hours a call: 6 organisations a call.
        let answered = Answered {
            shops: (2001..=2100)
                .map(|o| (TargetId::Org(o), local("2024-05-01 10:00:00")))
                .collect(),
            ..Answered::default()
        };
        let plan = learned.plan(&c, &shops_of, &answered, round(), now);
        assert_eq!(plan.shops.len(), 17);
        assert!(plan.shops.iter().all(|c| c.first_hour == local("2024-05-01 11:00:00")));
    }

    #[test]
    fn a_big_organisation_is_asked_through_its_shops_and_itself_now_and_then() {
        let c = with_orgs(config(300, 60), [7]);
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        assert_eq!(
            asked(&learned.plan(&c, &ShopsOf::new(), &Answered::default(), round(), now)),
            ["O_7"]
        );
        let shops_of = ShopsOf::from([(TargetId::Org(7), members(1, 10_000))]);
        let plan = learned.plan(
            &c,
            &shops_of,
            &Answered::default(),
            round(),
            now + chrono::Duration::hours(1),
        );
        assert_eq!(plan.via_shops, BTreeSet::from([TargetId::Org(7)]));
        // 10,000 shops, 50 ids a call.
        assert_eq!(plan.shops.len(), 200);
        assert!(plan
            .shops
            .iter()
            .all(|c| c.ids.iter().all(|id| matches!(id, TargetId::Shop(_)))));
        // Once batch_memory (6 h) has passed since it was asked as itself, it is again.
        let later = now + chrono::Duration::hours(6);
        assert_eq!(
            asked(&learned.plan(&c, &shops_of, &Answered::default(), round(), later)),
            ["O_7"]
        );
        assert_eq!(
            learned
                .plan(&c, &shops_of, &Answered::default(), round(), later)
                .shops
                .len(),
            200
        );
    }

    #[test]
    fn a_remembered_split_is_asked_in_its_parts_until_it_expires() {
        let mut c = config(300, 60);
        c.shops = (1..=4)
            .map(|i| crate::config::ShopTarget::new(TargetId::Shop(i)))
            .collect();
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        let plan = learned.plan(&c, &ShopsOf::new(), &Answered::default(), round(), now);
        assert_eq!(asked(&plan), ["S_1,S_2,S_3,S_4"]);
        let batch = plan.shops[0].batch.clone();
        let parts = vec![batch[..2].to_vec(), batch[2..3].to_vec(), batch[3..].to_vec()];
        learned.split(batch.clone(), parts, now);
        let plan = learned.plan(
            &c,
            &ShopsOf::new(),
            &Answered::default(),
            round(),
            now + chrono::Duration::hours(1),
        );
        assert_eq!(asked(&plan), ["S_1,S_2", "S_3", "S_4"]);
        assert!(plan.shops.iter().all(|call| call.batch == batch));
        let plan = learned.plan(
            &c,
            &ShopsOf::new(),
            &Answered::default(),
            round(),
            now + chrono::Duration::hours(6),
        );
        assert_eq!(asked(&plan), ["S_1,S_2,S_3,S_4"], "forgotten after batch_memory");
    }

    #[test]
    fn an_organisation_in_doubt_is_asked_alone() {
        let c = with_orgs(config(300, 60), [1, 2]);
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        let shops_of = ShopsOf::from([(TargetId::Org(1), members(1, 5)), (TargetId::Org(2), members(11, 5))]);
        assert_eq!(
            asked(&learned.plan(&c, &shops_of, &Answered::default(), round(), now)),
            ["O_1,O_2"]
        );
        learned.doubt(TargetId::Org(2));
        assert_eq!(
            asked(&learned.plan(&c, &shops_of, &Answered::default(), round(), now)),
            ["O_2", "O_1"]
        );
        assert_eq!(
            asked(&learned.plan(&c, &shops_of, &Answered::default(), round(), now)),
            ["O_1,O_2"],
            "once"
        );
    }

    #[test]
    fn a_window_reaches_back_to_the_last_answer_within_the_cap_and_the_day() {
        assert_eq!(window_start(None, hour(), 6), hour());
        assert_eq!(window_start(Some(local("2024-05-01 12:00:00")), hour(), 6), hour());
        assert_eq!(window_start(Some(hour()), hour(), 6), hour(), "a re-poll of the hour");
        assert_eq!(
            window_start(Some(local("2024-05-01 09:00:00")), hour(), 6),
            local("2024-05-01 10:00:00")
        );
        assert_eq!(
            window_start(Some(local("2024-04-30 09:00:00")), hour(), 6),
            local("2024-05-01 07:00:00"),
            "capped"
        );
        assert_eq!(window_start(Some(local("2024-05-01 09:00:00")), hour(), 0), hour());
        // A shop call stays within the hour's day.
        let mut c = config(300, 60);
        c.shops = vec![crate::config::ShopTarget::new(TargetId::Shop(1))].into();
        let answered = Answered {
            shops: [(TargetId::Shop(1), local("2024-04-30 22:00:00"))].into(),
            ..Answered::default()
        };
        let at_two = local("2024-05-01 02:00:00");
        let plan = Learned::default().plan(
            &c,
            &ShopsOf::new(),
            &answered,
            (at_two, at("2024-04-30T18:00:00Z").timestamp()),
            at("2024-04-30T18:30:00Z"),
        );
        assert_eq!(plan.shops[0].first_hour, local("2024-05-01 00:00:00"));
    }

    #[test]
    fn devices_polled_every_few_hours_are_spread_over_the_cycle() {
        let macs: Vec<String> = (0..3000u64).map(|i| format!("0a{i:010x}")).collect();
        let start = round().1;
        // Each device once in every 3 hours, about a third of them each hour.
        let mut last: HashMap<&str, i64> = HashMap::new();
        for h in 0..9 {
            let now = start + h * 3600;
            let due: Vec<&str> = macs
                .iter()
                .map(String::as_str)
                .filter(|m| device_due(m, now, 3, last.get(m).copied()))
                .collect();
            if h == 0 {
                assert_eq!(due.len(), 3000, "every device at first");
            } else {
                assert!((800..1200).contains(&due.len()), "hour {h}: {}", due.len());
            }
            for m in due {
                last.insert(m, now);
            }
            assert!(last.values().all(|t| now - *t < 3 * 3600), "none left out");
        }
        // An overdue device is asked at once, and every hour with an interval of 1h.
        assert!(device_due(&macs[0], start, 3, Some(start - 3 * 3600)));
        assert!(device_due(&macs[0], start, 1, Some(start)));
    }

    /// The rounds a poller makes every hour from `from` to `to` (UTC) in `tz`: each reported
    /// hour once per start.
    fn rounds(tz: chrono_tz::Tz, from: &str, to: &str) -> Vec<(NaiveDateTime, i64)> {
        let mut out: Vec<(NaiveDateTime, i64)> = Vec::new();
        let mut now = at(from);
        while now <= at(to) {
            let round = crate::hours::latest_complete_hour(now, tz).unwrap();
            if out.last() != Some(&round) {
                out.push(round);
            }
            now += chrono::Duration::minutes(30);
        }
        out
    }

    #[test]
    fn across_daylight_saving_changes_windows_count_local_hours_and_devices_real_ones() {
        let mut c = with_orgs(config(300, 60), []);
        c.timezone = chrono_tz::Europe::Berlin;
        c.shops = vec![crate::config::ShopTarget::new(TargetId::Shop(1))].into();
        c.devices = devices(300);
        c.device_poll_interval = std::time::Duration::from_secs(3 * 3600);
        for (from, to, hours) in [
            // 2026-03-29: 02:00 CET becomes 03:00 CEST; 22:00 to 07:00, no 02:00.
            ("2026-03-28T21:30:00Z", "2026-03-29T05:30:00Z", 9),
            // 2026-10-25: 03:00 CEST becomes 02:00 CET; 22:00 to 07:00, 02:00 twice.
            ("2026-10-24T20:30:00Z", "2026-10-25T06:30:00Z", 11),
        ] {
            let rounds = rounds(c.timezone, from, to);
            assert_eq!(rounds.len(), hours, "{rounds:?}");
            let mut learned = Learned::default();
            let mut answered = Answered::default();
            let mut device_starts: HashMap<String, i64> = HashMap::new();
            for (i, &(hour, start)) in rounds.iter().enumerate() {
                let now = DateTime::from_timestamp(start + 3600 + 120, 0).unwrap();
                let plan = learned.plan(&c, &ShopsOf::new(), &answered, (hour, start), now);
                // The shop asks from the hour after its last answer: the local hour, even the
                // skipped 02:00; the repeated 02:00 again by itself.
                let first = plan.shops[0].first_hour;
                match rounds.get(i.wrapping_sub(1)) {
                    Some((last, _)) if *last < hour => assert_eq!(first, *last + chrono::Duration::hours(1)),
                    _ => assert_eq!(first, hour, "{hour}"),
                }
                let due = plan.devices.len();
                if i > 0 {
                    assert!((60..140).contains(&due), "{hour} ({start}): {due} devices due");
                }
                answered.shops.insert(TargetId::Shop(1), hour);
                for d in &plan.devices {
                    assert!(d.first_hour <= hour);
                    answered.devices.insert(d.device.mac.clone(), (hour, start));
                    device_starts.insert(d.device.mac.clone(), start);
                }
                // Every device was asked within the last three real hours.
                assert_eq!(device_starts.len(), 300);
                assert!(
                    device_starts.values().all(|t| start - *t < 3 * 3600),
                    "{hour} ({start})"
                );
            }
        }
    }

    #[test]
    fn devices_not_due_rest_and_the_due_ones_ask_since_their_last_answer() {
        let mut c = with_orgs(config(300, 60), []);
        c.devices = devices(30);
        c.device_poll_interval = std::time::Duration::from_secs(3 * 3600);
        let answered = Answered {
            devices: c
                .devices
                .iter()
                .map(|d| {
                    (
                        d.mac.clone(),
                        (local("2024-05-01 11:00:00"), at("2024-05-01T03:00:00Z").timestamp()),
                    )
                })
                .collect(),
            ..Answered::default()
        };
        let plan = Learned::default().plan(&c, &ShopsOf::new(), &answered, round(), at("2024-05-01T06:30:00Z"));
        assert_eq!(plan.devices.len() + plan.resting.len(), 30);
        assert!(
            !plan.devices.is_empty() && !plan.resting.is_empty(),
            "{}",
            plan.devices.len()
        );
        assert!(plan
            .devices
            .iter()
            .all(|d| d.first_hour == local("2024-05-01 12:00:00")));
    }
}
