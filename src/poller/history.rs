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
//! organisation's 24 rows per known shop), and a call refused whole is split like any shops call.
//!
//! The first fill asks `7 × baseline.weeks` days of every batch (the baseline's own weekday
//! first, so that it appears as soon as two weeks are in); after it, the only new day each day
//! is yesterday, once final (`hour_delay` plus [`crate::baseline::SETTLE`] after local
//! midnight): one call per batch per day. A day whose call failed is asked again by a later
//! poll; one that answered is never asked again. These calls are counted in the `opretail_api_*`
//! metrics like every gateway request, but not in `opretail_refresh_requests`, which counts the
//! hourly refresh alone.

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
    let size = |id: &TargetId| match id {
        TargetId::Shop(_) => Some(1),
        TargetId::Org(_) => shops_of.get(id).map(|m| m.len().max(1)),
    };
    let calls: Vec<(NaiveDate, Vec<TargetId>)> = history
        .missing(&targets, day, now, config.hour_delay)
        .into_iter()
        .flat_map(|(date, ids)| {
            let sized: Vec<(TargetId, Option<usize>)> = ids.into_iter().map(|id| (id.clone(), size(&id))).collect();
            pack(sized, 24, packing).into_iter().map(move |batch| (date, batch))
        })
        .collect();
    let members = OrgShops(shops_of);
    let client = &setup.client;
    let ask = |(date, batch): (NaiveDate, Vec<TargetId>)| {
        let members = &members;
        async move {
            let call = Call::day(Target::Shops(batch.clone()), date);
            let split = client.fetch_splitting(&call, packing, members).await;
            (date, batch, split)
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
        let Some((date, batch, split)) = running.next().await else {
            break;
        };
        keep(history, day, date, &batch, split, &mut fetched);
    }
    fetched
}

/// Keeps the days a call answered: every shop of its answered parts, and the day as answered
/// for the whole batch when every part answered (else for the ids of the parts that did; the
/// others are asked again).
fn keep(
    history: &mut History,
    day: NaiveDate,
    date: NaiveDate,
    batch: &[TargetId],
    split: Split,
    fetched: &mut Fetched,
) {
    let all_answered = split.leaves.iter().all(|l| l.result.is_ok());
    for leaf in split.leaves {
        fetched.calls += 1;
        match leaf.result {
            Ok(series) => {
                fetched.kept += 1;
                let answered: &[TargetId] = if all_answered { batch } else { &leaf.ids };
                history.record(date, day, answered, &series);
            }
            Err(e) => {
                fetched.failed += 1;
                let targets = Target::Shops(leaf.ids);
                tracing::warn!(error = %e, targets = %targets, %date, "history call failed; the day is asked again later");
            }
        }
    }
}
