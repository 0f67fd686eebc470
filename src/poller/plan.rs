//! What one round asks of the gateway, shaped by what earlier answers taught: this replica's
//! shop ids packed into calls by the rows they are expected to return (an organisation's shop
//! count is learned from its answers; one not known yet is asked alone), an organisation too
//! big for one call asked through its shops (and itself again every `batch_memory`, so shops
//! that join or leave it appear or vanish), a batch the gateway refused whole asked in the
//! parts that worked last time, and every device on its own.
//!
//! What is learned here ([`Learned`]) lives as long as the configuration: a reload starts
//! afresh, and every lesson expires after `gateway.batch_memory`.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::round::ShopsOf;
use super::schedule::owned_targets;
use crate::client::{pack, Packing};
use crate::config::Config;
use crate::model::{DeviceTarget, TargetId};

/// One shops call of a round: the batch it was packed as (what a split is remembered by) and
/// the ids it asks (the batch, or one part of its remembered split).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ShopCall {
    pub(super) batch: Vec<TargetId>,
    pub(super) ids: Vec<TargetId>,
}

/// The calls of one round and what the merge needs to know about them.
#[derive(Debug, Default)]
pub(super) struct RoundPlan {
    pub(super) shops: Vec<ShopCall>,
    pub(super) devices: Vec<DeviceTarget>,
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
    /// The calls of a round of `hours` hours a call, at `now`, with the organisations' shops
    /// as last answered (`shops_of`).
    pub(super) fn plan(&mut self, config: &Config, shops_of: &ShopsOf, hours: usize, now: DateTime<Utc>) -> RoundPlan {
        let packing = Packing::of(&config.gateway);
        let memory = chrono::Duration::from_std(config.gateway.batch_memory).unwrap_or(chrono::Duration::MAX);
        self.splits.retain(|_, (_, since)| now - *since < memory);
        self.org_asked.retain(|_, since| now - *since < memory);
        let unsure = std::mem::take(&mut self.unsure);

        let (configured, devices) = owned_targets(config);
        let mut ask: Vec<(TargetId, Option<usize>)> = Vec::with_capacity(configured.len());
        let mut seen: HashSet<TargetId> = HashSet::with_capacity(configured.len());
        let mut via_shops = BTreeSet::new();
        for id in &configured {
            let members = match id {
                TargetId::Shop(_) => {
                    if seen.insert(id.clone()) {
                        ask.push((id.clone(), Some(1)));
                    }
                    continue;
                }
                TargetId::Org(_) => shops_of.get(id).filter(|_| !unsure.contains(id)),
            };
            let size = members.map(BTreeSet::len);
            let too_big = size.is_some_and(|n| n.saturating_mul(hours) > packing.max_rows);
            match members {
                Some(members) if too_big && self.org_asked.contains_key(id) => {
                    via_shops.insert(id.clone());
                    for shop in members.iter().filter_map(|dep| dep.parse().ok()).map(TargetId::Shop) {
                        if seen.insert(shop.clone()) {
                            ask.push((shop, Some(1)));
                        }
                    }
                }
                _ => {
                    self.org_asked.insert(id.clone(), now);
                    if seen.insert(id.clone()) {
                        ask.push((id.clone(), size));
                    }
                }
            }
        }
        let shops = pack(ask, hours, packing)
            .into_iter()
            .flat_map(|batch| {
                let parts = match self.splits.get(&batch) {
                    Some((parts, _)) => parts.clone(),
                    None => vec![batch.clone()],
                };
                parts.into_iter().map(move |ids| ShopCall {
                    batch: batch.clone(),
                    ids,
                })
            })
            .collect();
        RoundPlan {
            shops,
            devices: devices.into_iter().cloned().collect(),
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

    fn asked(plan: &RoundPlan) -> Vec<String> {
        plan.shops
            .iter()
            .map(|c| crate::client::Target::Shops(c.ids.clone()).to_string())
            .collect()
    }

    /// `n` shops of organisation `org`, dep ids from `first`.
    fn members(first: u64, n: u64) -> BTreeSet<String> {
        (first..first + n).map(|d| d.to_string()).collect()
    }

    #[test]
    fn organisations_are_asked_alone_until_their_size_is_known_then_packed_by_rows() {
        let c = with_orgs(config(300, 60), 2001..=2100);
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        let first = learned.plan(&c, &ShopsOf::new(), 1, now);
        assert_eq!(first.shops.len(), 100, "each unknown organisation alone");
        let shops_of: ShopsOf = (0..100u64)
            .map(|o| (TargetId::Org(2001 + o), members(100_001 + o * 100, 100)))
            .collect();
        let next = learned.plan(&c, &shops_of, 1, now);
        // 2,000 rows a call: 20 organisations of 100.
        assert_eq!(next.shops.len(), 5, "{:?}", asked(&next));
        assert!(next.via_shops.is_empty());
        // Three hours a call: 6 a call.
        assert_eq!(learned.plan(&c, &shops_of, 3, now).shops.len(), 17);
    }

    #[test]
    fn a_big_organisation_is_asked_through_its_shops_and_itself_now_and_then() {
        let c = with_orgs(config(300, 60), [7]);
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        assert_eq!(asked(&learned.plan(&c, &ShopsOf::new(), 1, now)), ["O_7"]);
        let shops_of = ShopsOf::from([(TargetId::Org(7), members(1, 10_000))]);
        let plan = learned.plan(&c, &shops_of, 1, now + chrono::Duration::hours(1));
        assert_eq!(plan.via_shops, BTreeSet::from([TargetId::Org(7)]));
        // 10,000 shops, 50 ids a call.
        assert_eq!(plan.shops.len(), 200);
        assert!(plan
            .shops
            .iter()
            .all(|c| c.ids.iter().all(|id| matches!(id, TargetId::Shop(_)))));
        // Once batch_memory (6 h) has passed since it was asked as itself, it is again.
        let later = now + chrono::Duration::hours(6);
        assert_eq!(asked(&learned.plan(&c, &shops_of, 1, later)), ["O_7"]);
        assert_eq!(learned.plan(&c, &shops_of, 1, later).shops.len(), 200);
    }

    #[test]
    fn a_remembered_split_is_asked_in_its_parts_until_it_expires() {
        let mut c = config(300, 60);
        c.shops = (1..=4)
            .map(|i| crate::config::ShopTarget { id: TargetId::Shop(i) })
            .collect();
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        let plan = learned.plan(&c, &ShopsOf::new(), 1, now);
        assert_eq!(asked(&plan), ["S_1,S_2,S_3,S_4"]);
        let batch = plan.shops[0].batch.clone();
        let parts = vec![batch[..2].to_vec(), batch[2..3].to_vec(), batch[3..].to_vec()];
        learned.split(batch.clone(), parts, now);
        let plan = learned.plan(&c, &ShopsOf::new(), 1, now + chrono::Duration::hours(1));
        assert_eq!(asked(&plan), ["S_1,S_2", "S_3", "S_4"]);
        assert!(plan.shops.iter().all(|call| call.batch == batch));
        let plan = learned.plan(&c, &ShopsOf::new(), 1, now + chrono::Duration::hours(6));
        assert_eq!(asked(&plan), ["S_1,S_2,S_3,S_4"], "forgotten after batch_memory");
    }

    #[test]
    fn an_organisation_in_doubt_is_asked_alone() {
        let c = with_orgs(config(300, 60), [1, 2]);
        let mut learned = Learned::default();
        let now = at("2024-05-01T06:30:00Z");
        let shops_of = ShopsOf::from([(TargetId::Org(1), members(1, 5)), (TargetId::Org(2), members(11, 5))]);
        assert_eq!(asked(&learned.plan(&c, &shops_of, 1, now)), ["O_1,O_2"]);
        learned.doubt(TargetId::Org(2));
        assert_eq!(asked(&learned.plan(&c, &shops_of, 1, now)), ["O_2", "O_1"]);
        assert_eq!(asked(&learned.plan(&c, &shops_of, 1, now)), ["O_1,O_2"], "once");
    }
}
