//! The history calls: the past days the walk-in baseline needs (see [`crate::baseline`]),
//! fetched in the time a poll leaves before the next one is due, so that they never hold up an
//! hourly refresh.
//!
//! After each round has published its hour, the poller spends the time until its next poll
//! (the next hour's refresh, or the end of `poll_interval`) on whole-day hourly calls
//! (`Call::day`, `timeType=1`) for the days of the window that are final and not yet answered,
//! through the same client as the round (same rate limit, at most `max_in_flight` at once). A
//! call is started only while there is time left; one in flight when time is up finishes. The
//! shop ids of a day are packed as the hourly calls are (`client::pack`, 24 rows a shop and an
//! organisation's 24 rows per known shop); an organisation too big for one call is asked
//! through its shops, and has answered the day when all of those calls have; a call refused
//! whole is split like any shops call.
//!
//! The first fill asks `7 × baseline.weeks` days of every batch (the baseline's own weekday
//! first, so that it appears as soon as two weeks are in); after it, the only new day each day
//! is yesterday, once final (`hour_delay` plus [`crate::baseline::SETTLE`] after local
//! midnight): one call per batch per day. A day whose call failed is asked again by a later
//! poll; one that answered is never asked again. These calls are counted in the `opretail_api_*`
//! metrics like every gateway request, but not in `opretail_refresh_requests`, which counts the
//! hourly refresh alone.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use futures_util::stream::{FuturesUnordered, StreamExt};

use super::round::ShopsOf;
use super::{OrgShops, Setup};
use crate::baseline::History;
use crate::client::{pack, Call, Packing, Split, Target};
use crate::model::TargetId;

/// What one poll's history calls did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Fetched {
    /// Calls made (the parts of a split included), and those that failed.
    pub(super) calls: usize,
    pub(super) failed: usize,
    /// Calls whose answer was kept.
    pub(super) kept: usize,
}

/// Asks for the missing final days of the window of `day` (the reported hour's local day) for
/// this replica's shop targets, at local time `now`, while `time_left` says so, and keeps what
/// answered in `history`.
pub(super) async fn fetch(
    setup: &Setup,
    history: &mut History,
    shops_of: &ShopsOf,
    day: NaiveDate,
    now: NaiveDateTime,
    time_left: impl Fn() -> bool,
) -> Fetched {
    let mut fetched = Fetched::default();
    if history.weeks() == 0 {
        return fetched;
    }
    let config = &setup.config;
    let (targets, _) = super::owned_targets(config);
    let packing = Packing::of(&config.gateway);
    let mut calls: Vec<DayCall> = Vec::new();
    // Per organisation asked through its shops, per day: the calls still out, and whether
    // every one so far answered.
    let mut through_shops: HashMap<(NaiveDate, TargetId), (usize, bool)> = HashMap::new();
    for (date, ids) in history.missing(&targets, day, now, config.hour_delay) {
        let mut sized = Vec::with_capacity(ids.len());
        for id in ids {
            let members = match &id {
                TargetId::Shop(_) => {
                    sized.push((id, Some(1)));
                    continue;
                }
                TargetId::Org(_) => shops_of.get(&id),
            };
            match members {
                // Too big for one call of 24 rows a shop: asked through its shops.
                Some(members) if members.len().saturating_mul(24) > packing.max_rows => {
                    let shops = members.iter().filter_map(|dep| dep.parse().ok()).map(TargetId::Shop);
                    let parts = pack(shops.map(|s| (s, Some(1))), 24, packing);
                    through_shops.insert((date, id.clone()), (parts.len(), true));
                    calls.extend(parts.into_iter().map(|ids| DayCall {
                        date,
                        ids,
                        owner: Some(id.clone()),
                    }));
                }
                members => {
                    let size = members.map(|m| m.len().max(1));
                    sized.push((id, size));
                }
            }
        }
        calls.extend(
            pack(sized, 24, packing)
                .into_iter()
                .map(|ids| DayCall { date, ids, owner: None }),
        );
    }
    let members = OrgShops(shops_of);
    let client = &setup.client;
    let ask = |call: DayCall| {
        let members = &members;
        async move {
            let asked = Call::day(Target::Shops(call.ids.clone()), call.date);
            let split = client.fetch_splitting(&asked, packing, members).await;
            (call, split)
        }
    };
    let places = config.gateway.max_in_flight.max(1);
    let mut pending = calls.into_iter();
    let mut running = FuturesUnordered::new();
    loop {
        while running.len() < places && time_left() {
            let Some(next) = pending.next() else { break };
            running.push(ask(next));
        }
        let Some((call, split)) = running.next().await else {
            break;
        };
        let answered = keep(history, day, &call, split, &mut fetched);
        // An organisation asked through its shops has answered the day when all its calls have.
        if let Some(org) = call.owner {
            let key = (call.date, org);
            if let Some((left, ok)) = through_shops.get_mut(&key) {
                *left = left.saturating_sub(1);
                *ok &= answered;
                if *left == 0 && *ok {
                    history.record(call.date, day, std::slice::from_ref(&key.1), &[]);
                }
            }
        }
    }
    fetched
}

/// One history call: the ids of one day, and the organisation it answers for when that one is
/// asked through its shops (`None`: the ids themselves).
struct DayCall {
    date: NaiveDate,
    ids: Vec<TargetId>,
    owner: Option<TargetId>,
}

/// Keeps the days a call answered: every shop of its answered parts, and the day as answered
/// for the call's ids when every part answered (else for the ids of the parts that did; the
/// others are asked again). An organisation asked through its shops is marked by the caller.
/// Returns whether every part answered.
fn keep(history: &mut History, day: NaiveDate, call: &DayCall, split: Split, fetched: &mut Fetched) -> bool {
    let all_answered = split.leaves.iter().all(|l| l.result.is_ok());
    for leaf in split.leaves {
        fetched.calls += 1;
        match leaf.result {
            Ok(series) => {
                fetched.kept += 1;
                let answered: &[TargetId] = match (&call.owner, all_answered) {
                    (Some(_), _) => &[],
                    (None, true) => &call.ids,
                    (None, false) => &leaf.ids,
                };
                history.record(call.date, day, answered, &series);
            }
            Err(e) => {
                fetched.failed += 1;
                let targets = Target::Shops(leaf.ids);
                tracing::warn!(error = %e, targets = %targets, date = %call.date, "history call failed; the day is asked again later");
            }
        }
    }
    all_answered
}
