//! Splitting a shops call the gateway refused for what it asked. No source gives the longest
//! `id` list or the largest answer the gateway accepts, so a multi-id call that fails in a way
//! a smaller call can avoid ([`ApiError::is_worth_splitting`]: an answer too large, a list
//! refused) is asked again in halves, down to single ids; an organisation that fails on its own
//! is asked through its shops, when they are known. An id that still fails alone is reported
//! with its error while the rest of its batch is served. The caller remembers the parts that
//! worked ([`Split::parts`]) so the next poll does not pay for the search again.

use super::call::{pack, Packing};
use super::{ApiError, Call, Client, Target, METHOD_SHOPS};
use crate::model::{ShopSeries, TargetId};

/// One call a split search ended with: the ids asked together and what they answered.
#[derive(Debug)]
pub struct Leaf {
    pub ids: Vec<TargetId>,
    pub result: Result<Vec<ShopSeries>, ApiError>,
}

/// What a split search did: the calls it ended with, and how many calls it split.
#[derive(Debug, Default)]
pub struct Split {
    pub leaves: Vec<Leaf>,
    pub splits: usize,
}

impl Split {
    /// The ids of each final call: the split to remember (or the call itself, unsplit).
    pub fn parts(&self) -> Vec<Vec<TargetId>> {
        self.leaves.iter().map(|l| l.ids.clone()).collect()
    }
}

/// Who the shops of an organisation are, as far as the caller knows.
pub trait Members: Sync {
    /// The shops of `org` as `S_` ids, if known.
    fn members(&self, org: &TargetId) -> Option<Vec<TargetId>>;
}

/// Knows no organisation's shops.
impl Members for () {
    fn members(&self, _: &TargetId) -> Option<Vec<TargetId>> {
        None
    }
}

impl Client {
    /// Makes a shops call (`call.target` is [`Target::Shops`]); if it fails in a way a smaller
    /// call can avoid, asks each half instead, and so on down to single ids; a single
    /// organisation whose shops `members` knows is asked through them, packed by `packing`.
    /// Every split is counted in `opretail_api_batch_splits_total`.
    pub async fn fetch_splitting(&self, call: &Call, packing: Packing, members: &dyn Members) -> Split {
        let Target::Shops(ids) = &call.target else {
            return Split::default();
        };
        let mut split = Split::default();
        // Depth first, so the leaves come out in the order of the ids.
        let mut todo = vec![ids.clone()];
        while let Some(ids) = todo.pop() {
            let part = Call {
                target: Target::Shops(ids.clone()),
                ..call.clone()
            };
            let result = self.fetch(&part).await.map(super::Answer::into_shops);
            let error = match result {
                Err(e) if e.is_worth_splitting() => e,
                result => {
                    split.leaves.push(Leaf { ids, result });
                    continue;
                }
            };
            let parts: Vec<Vec<TargetId>> = match ids.as_slice() {
                [one @ TargetId::Org(_)] => match members.members(one).filter(|m| !m.is_empty()) {
                    Some(shops) => pack(shops.into_iter().map(|s| (s, Some(1))), call.hours.len(), packing),
                    None => Vec::new(),
                },
                [_] | [] => Vec::new(),
                _ => {
                    let (a, b) = ids.split_at(ids.len() / 2);
                    vec![a.to_vec(), b.to_vec()]
                }
            };
            if parts.is_empty() {
                split.leaves.push(Leaf {
                    ids,
                    result: Err(error),
                });
                continue;
            }
            tracing::info!(
                error = %error,
                ids = %Target::Shops(ids),
                parts = parts.len(),
                "the gateway refused a shops call for what it asked; asking in parts"
            );
            self.inner.metrics.split(METHOD_SHOPS);
            split.splits += 1;
            todo.extend(parts.into_iter().rev());
        }
        split
    }
}
