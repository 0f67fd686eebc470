//! The poller: when to ask, what to ask, and what to keep.
//!
//! Each poll works out the latest *complete* hour in the configured timezone, asks the gateway
//! for that hour (shop ids packed into calls by the rows they return, with
//! `starthour`/`endhour`, see `plan`; one call per device, for the hour's day; at most
//! `max_in_flight` at once; a shops call the gateway refuses for what it asked is split), picks
//! from every answer the row whose `time` is that hour, and publishes a new [`Snapshot`]. A target whose call failed keeps its last good values and is
//! marked down; the failure is counted by the client. The first round for a new hour also
//! asks each shop batch for the vendor's figures of the local day so far (`timeType=2`, one
//! more call per batch); while the row-time convention is `auto` and undecided, a device's
//! whole-day call goes first (or one whole-day call for one shop) so the answers are read
//! right. [`Poller::run`] repeats this every `poll_interval` until cancelled;
//! [`Poller::poll_once`] is one round.
//!
//! With `baseline.weeks` above 0, a poll then spends the time left before the next one on the
//! past days the walk-in baseline needs (`history`), and every snapshot carries the baseline
//! of each shop's hour, from the days kept and the shops' [`OpeningHours`].

mod history;
mod plan;
mod round;
mod schedule;
mod status;

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use chrono::{NaiveDate, NaiveDateTime};
use futures_util::future::BoxFuture;
use futures_util::stream::StreamExt;
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use self::plan::{Answered, Learned, RoundPlan};
use self::round::{Outcome, Round, ShopsOf};
pub use self::schedule::RefreshCost;
pub(crate) use self::schedule::{next_poll_in, owned_targets};
use crate::baseline::{History, OpeningHours};
use crate::client::{Call, Client, Packing, Target};
use crate::config::Config;
use crate::hours::latest_complete_hour;
use crate::metrics::{AccountMetrics, MetricsStore};
use crate::model::{Clock, Snapshot};

/// What one poll did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// The local hour reported.
    pub hour: Option<NaiveDateTime>,
    /// Its start, Unix seconds: what tells the two 02:00s of a fall-back day apart.
    pub hour_start: Option<i64>,
    /// The first round for a new hour: every call at once, as fast as the rate limit allows.
    /// Otherwise a re-poll of the same hour (late data), its calls spread over the interval.
    pub priority: bool,
    /// Gateway calls of the round: made (the parts of a split included) or skipped.
    pub calls: usize,
    pub failed_calls: usize,
    /// Shops calls split in parts after the gateway refused them whole.
    pub splits: usize,
    /// Calls of a re-poll left out because a new hour began while it ran.
    pub skipped_calls: usize,
    pub shops: usize,
    pub devices: usize,
    /// Day-figure calls (`timeType=2`) of the round, the parts of a split included: one per
    /// shop batch in a first round for a new hour, none in a re-poll.
    pub day_calls: usize,
    /// Shop hours already published that this round found with different values (late
    /// uploads), and device hours likewise.
    pub shop_revisions: usize,
    pub device_revisions: usize,
    /// History calls made after the round (whole past days for the baseline, the parts of a
    /// split included), and those that failed. Not part of `calls`.
    pub history_calls: usize,
    pub history_failed_calls: usize,
}

/// Polls the gateway of one account and publishes its snapshots to the metrics store, under
/// that account (each account of an exporter has a poller of its own).
pub struct Poller {
    /// The configuration and client in force; replaced as a whole on reload.
    setup: std::sync::RwLock<Arc<Setup>>,
    store: Arc<MetricsStore>,
    /// The series of the account polled, in `store`.
    account: Arc<AccountMetrics>,
    clock: Clock,
    /// The last published snapshot and, per shop target, the shops it last produced. Held for
    /// the whole of a poll, so polls never overlap.
    state: Mutex<State>,
    /// Wakes the run loop for an immediate poll (after a reload).
    wake: Notify,
    /// Set by a reload: the next round is a first round (its calls go at once, not spread).
    reloaded: std::sync::atomic::AtomicBool,
    /// How the last round left every target, for the status page.
    status: Arc<crate::status::StatusBoard>,
}

/// The configured business calendars, as the baseline asks for them: each shop resolved with
/// the organisation that returned it, as for its `opretail_shop_open`.
struct Calendars<'a> {
    config: &'a Config,
    shops: &'a std::collections::BTreeMap<String, crate::model::ShopSample>,
}

impl<'a> Calendars<'a> {
    fn of(config: &'a Config, shops: &'a std::collections::BTreeMap<String, crate::model::ShopSample>) -> Self {
        Calendars { config, shops }
    }
}

impl OpeningHours for Calendars<'_> {
    fn is_open(&self, shop_id: &str, hour_start: NaiveDateTime) -> bool {
        let org = self.shops.get(shop_id).and_then(|s| s.meta.org_id);
        self.config.calendar_of(shop_id.parse().ok(), org).is_open(hour_start)
    }
}

struct Setup {
    config: Arc<Config>,
    client: Client,
    /// What this configuration's answers taught about asking (forgotten on reload).
    learned: std::sync::Mutex<Learned>,
}

impl Setup {
    fn new(config: Arc<Config>, client: Client) -> Self {
        Setup {
            config,
            client,
            learned: std::sync::Mutex::new(Learned::default()),
        }
    }
}

#[derive(Default)]
struct State {
    /// The start (Unix seconds) of the hour whose first (priority) round has completed: an
    /// hour is known by its start, since a local hour repeats on a fall-back day.
    refreshed_hour: Option<i64>,
    snapshot: Arc<Snapshot>,
    shops_of: ShopsOf,
    /// The last hour each target's call answered.
    answered: Answered,
    /// The past days kept for the baseline.
    history: History,
}

/// How one round spaces its calls.
struct Plan {
    /// The hour the round asks for, and its start (Unix seconds).
    hour: NaiveDateTime,
    hour_start: i64,
    /// Time between the starts of consecutive calls (`None`: as fast as allowed).
    pace: Option<std::time::Duration>,
    /// The local day now.
    today: NaiveDate,
    /// Ask every shop batch for the vendor's figures of `today` too (first rounds only).
    day_figures: bool,
    /// Make the first device call alone before the others (its whole-day answer tells the
    /// row-time convention before the shops' answers are read).
    device_first: bool,
}

/// While the row-time convention is `auto` and not yet decided and no device is due, one
/// whole-day call for one target (yesterday, a complete day) tells it before the round's
/// answers are read: a shop configured by its `S_` id, else a shop an organisation's answer
/// named, else a device. The answer itself is not published.
async fn probe_row_time(setup: &Setup, shops_of: &ShopsOf, hour: NaiveDateTime) {
    use crate::model::TargetId;
    let config = &setup.config;
    let shop = config
        .shops
        .iter()
        .map(|s| &s.id)
        .find(|id| matches!(id, TargetId::Shop(_)))
        .cloned()
        .or_else(|| {
            shops_of
                .values()
                .flatten()
                .find_map(|dep| dep.parse().ok().map(TargetId::Shop))
        });
    // An organisation's whole day may be megabytes: before one has named its shops, the
    // round goes without (its end-labelled rows, read as start-labelled, would name the hour
    // after the one asked and be left out, not published wrong), and the next round asks one
    // of its shops.
    let target = match (shop, config.devices.first()) {
        (Some(id), _) => Target::Shops(vec![id]),
        (None, Some(device)) => Target::Device(device.clone()),
        (None, None) => return,
    };
    let Some(yesterday) = hour.date().pred_opt() else {
        return;
    };
    let call = Call::day(target, yesterday);
    match setup.client.fetch(&call).await {
        Ok(_) => {
            let (row_time, source) = setup.client.row_time();
            tracing::debug!(call = %call, row_time = %row_time, source = source.as_str(), "row-time probe answered");
        }
        Err(e) => {
            tracing::debug!(call = %call, error = %e, "row-time probe failed; start-labelled rows are assumed this round")
        }
    }
}

impl Poller {
    /// A poller of the first account of `store` (in the single-account form, the only one).
    pub fn new(config: Arc<Config>, client: Client, store: Arc<MetricsStore>, clock: Clock) -> Self {
        let account = store.first_account();
        Self::for_account(config, client, store, account, clock)
    }

    /// A poller of `account`, whose series live in `store`. The client should record into the
    /// account's [`AccountMetrics::api`].
    pub fn for_account(
        config: Arc<Config>,
        client: Client,
        store: Arc<MetricsStore>,
        account: Arc<AccountMetrics>,
        clock: Clock,
    ) -> Self {
        Self {
            setup: std::sync::RwLock::new(Arc::new(Setup::new(config, client))),
            store,
            account,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            reloaded: std::sync::atomic::AtomicBool::new(false),
            status: Arc::new(crate::status::StatusBoard::new(clock.clone())),
            clock,
        }
    }

    /// The past days the baseline history holds (over all shops), and about how many bytes
    /// of memory they take.
    pub async fn history_size(&self) -> (usize, usize) {
        let state = self.state.lock().await;
        (state.history.days(), state.history.heap_bytes())
    }

    /// The account polled (`None` in the single-account form).
    pub fn account(&self) -> Option<&str> {
        self.account.name()
    }

    /// The series of the account polled.
    pub(crate) fn account_metrics(&self) -> &Arc<AccountMetrics> {
        &self.account
    }

    /// How the last round left every target (the status page's data).
    pub(crate) fn status(&self) -> Arc<crate::status::StatusBoard> {
        Arc::clone(&self.status)
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.setup().config)
    }

    /// The client in force.
    pub fn client(&self) -> Client {
        self.setup().client.clone()
    }

    fn setup(&self) -> Arc<Setup> {
        Arc::clone(&self.setup.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts a new configuration (and the client built for it) in force and asks the run loop
    /// for a poll now, a first round for the new targets (its calls at once, not spread). A
    /// poll in progress finishes with the old one. Values of targets that are no longer
    /// configured vanish with that next poll.
    pub fn replace(&self, config: Arc<Config>, client: Client) {
        *self.setup.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Setup::new(config, client));
        self.reloaded.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// One round now: ask for every target, as fast as the rate limit allows, and publish
    /// the new snapshot.
    pub async fn poll_once(&self) -> PollReport {
        self.poll(false).await
    }

    /// One round as the run loop makes it: the first round for a new hour as fast as the
    /// rate limit allows, a re-poll of the same hour with its calls spread over the interval.
    pub async fn poll_scheduled(&self) -> PollReport {
        self.poll(true).await
    }

    async fn poll(&self, spread_repolls: bool) -> PollReport {
        let mut state = self.state.lock().await;
        let setup = self.setup();
        let started = Instant::now();
        let now = self.clock.now();
        let tz = setup.config.timezone;
        let Some((hour, hour_start)) = latest_complete_hour(now, tz) else {
            tracing::warn!(%now, "the latest complete hour is out of range in the configured timezone; skipping this poll");
            return PollReport::default();
        };
        let reloaded = self.reloaded.swap(false, std::sync::atomic::Ordering::SeqCst);
        let priority = reloaded || state.refreshed_hour != Some(hour_start);
        let round_plan = setup.learned.lock().unwrap_or_else(PoisonError::into_inner).plan(
            &setup.config,
            &state.shops_of,
            &state.answered,
            (hour, hour_start),
            now,
        );
        // While the row-time convention is not known, a device's call (whole days) goes first
        // and tells it; without a device due, one whole-day call for one shop does.
        let undecided = setup.client.row_time().1 == crate::client::Source::Assumed;
        if undecided && round_plan.devices.is_empty() {
            probe_row_time(&setup, &state.shops_of, hour).await;
        }
        let calls = round_plan.calls();
        // A re-poll spreads its calls evenly over the interval (the rate limit still applies);
        // the first round of an hour goes as fast as the rate limit allows.
        let pace = (spread_repolls && !priority && calls > 0).then(|| setup.config.poll_interval / calls as u32);
        let today = crate::hours::local_day(now, tz);
        let plan = Plan {
            hour,
            hour_start,
            pace,
            today,
            day_figures: priority,
            device_first: undecided,
        };
        let outcomes = fetch(&setup, &self.clock, &round_plan, &state.shops_of, plan).await;
        learn_splits(&setup, &outcomes, now);
        remember_answers(&mut state.answered, &outcomes, (hour, hour_start));
        let seen = status::seen(&outcomes, now.timestamp_millis() as f64 / 1000.0, priority);

        let round = Round {
            config: &setup.config,
            previous: &state.snapshot,
            shops_of: &state.shops_of,
            plan: &round_plan,
            hour,
            hour_start,
            tz,
            now: now.timestamp_millis() as f64 / 1000.0,
            stale_after: setup.config.stale_after.as_secs_f64(),
            today,
            today_start: crate::hours::day_start(today, tz).unwrap_or(hour_start),
        };
        let (merged, mut report) = round.merge(outcomes);
        report.priority = priority;
        {
            let mut learned = setup.learned.lock().unwrap_or_else(PoisonError::into_inner);
            for org in merged.doubted {
                learned.doubt(org);
            }
        }
        self.account.revised(report.shop_revisions, report.device_revisions);
        let mut snapshot = merged.snapshot;
        state.history.set_weeks(setup.config.baseline.weeks);
        let opening = Calendars::of(&setup.config, &snapshot.shops);
        snapshot.shop_baselines = crate::baseline::baselines(&state.history, &snapshot.shops, tz, &opening);
        let next = Arc::new(snapshot);
        // The previous snapshot is no longer needed: let it go before the new one is rendered
        // (at 30,000 targets, megabytes).
        state.snapshot = Arc::clone(&next);
        state.shops_of = merged.shops_of;
        let result = crate::status::RoundResult {
            snapshot: Arc::clone(&next),
            shops_of: &state.shops_of,
            hour,
            tz,
            configured_rate: setup.config.gateway.requests_per_second,
        };
        self.status.record(seen, result);
        let took = started.elapsed();
        // Before the publish that makes the exporter ready: a scrape that finds it ready finds
        // the refresh's figures too.
        if priority {
            self.account.refreshed(took, report.calls + report.day_calls);
            self.account
                .refresh_budget((calls + round_plan.shops.len()) as f64 / setup.config.gateway.requests_per_second);
        }
        self.publish(next, took).await;
        if priority {
            state.refreshed_hour = Some(hour_start);
        }
        tracing::info!(
            hour = %hour,
            priority,
            calls = report.calls,
            failed = report.failed_calls,
            splits = report.splits,
            orgs_through_shops = round_plan.via_shops.len(),
            skipped = report.skipped_calls,
            day_calls = report.day_calls,
            revisions = report.shop_revisions + report.device_revisions,
            shops = report.shops,
            devices = report.devices,
            took_ms = took.as_millis() as u64,
            "poll complete"
        );
        if setup.config.baseline.weeks > 0 {
            self.fill_history(&setup, &mut state, (hour, started, took), &mut report)
                .await;
        }
        report
    }

    /// Publishes `snapshot`. Encoding and compressing thousands of series is CPU work: it is
    /// kept off the runtime threads that serve /metrics.
    async fn publish(&self, snapshot: Arc<Snapshot>, took: std::time::Duration) {
        let store = Arc::clone(&self.store);
        let account = Arc::clone(&self.account);
        if let Err(e) = tokio::task::spawn_blocking(move || store.publish(&account, snapshot, took)).await {
            tracing::error!(error = %e, "publishing the snapshot failed");
        }
    }

    /// After the round for `hour` (begun at `started`, its poll done in `took`): drops the
    /// history of targets and shops no longer polled, asks for the missing past days until the
    /// next poll is due (or a reload), and when some came in publishes the snapshot again with
    /// the new baselines.
    async fn fill_history(
        &self,
        setup: &Setup,
        state: &mut State,
        (hour, started, took): (NaiveDateTime, Instant, std::time::Duration),
        report: &mut PollReport,
    ) {
        let config = &setup.config;
        let now = self.clock.now();
        let now_local = now.with_timezone(&config.timezone).naive_local();
        let (targets, _) = owned_targets(config);
        let targets: std::collections::HashSet<&crate::model::TargetId> = targets.iter().collect();
        let polled: std::collections::HashSet<&str> = state
            .snapshot
            .shops
            .keys()
            .map(String::as_str)
            .chain(state.shops_of.values().flatten().map(String::as_str))
            .collect();
        let own = |id: &crate::model::TargetId| targets.contains(id);
        let own_shop = |dep: &str| {
            polled.contains(dep)
                || dep
                    .parse()
                    .is_ok_and(|n| targets.contains(&crate::model::TargetId::Shop(n)))
        };
        state.history.prune(hour.date(), own, own_shop);
        let wait = next_poll_in(config, now, state.refreshed_hour, started.elapsed());
        let deadline = tokio::time::Instant::now() + wait;
        let time_left =
            || tokio::time::Instant::now() < deadline && !self.reloaded.load(std::sync::atomic::Ordering::SeqCst);
        let fetched = history::fetch(
            setup,
            &mut state.history,
            &state.shops_of,
            hour.date(),
            now_local,
            time_left,
        )
        .await;
        report.history_calls = fetched.calls;
        report.history_failed_calls = fetched.failed;
        if fetched.calls > 0 {
            tracing::info!(
                calls = fetched.calls,
                failed = fetched.failed,
                days_kept = state.history.days(),
                shops_kept = state.history.shops(),
                history_bytes = state.history.heap_bytes(),
                "history calls complete"
            );
        }
        if fetched.kept > 0 {
            let opening = Calendars::of(config, &state.snapshot.shops);
            let baselines =
                crate::baseline::baselines(&state.history, &state.snapshot.shops, config.timezone, &opening);
            if baselines != state.snapshot.shop_baselines {
                // The new snapshot shares every map but the baselines with the one it follows.
                let now = &state.snapshot;
                let next = Arc::new(Snapshot {
                    shops: Arc::clone(&now.shops),
                    devices: Arc::clone(&now.devices),
                    targets: Arc::clone(&now.targets),
                    shop_days: Arc::clone(&now.shop_days),
                    device_days: Arc::clone(&now.device_days),
                    shop_baselines: baselines,
                });
                state.snapshot = Arc::clone(&next);
                self.publish(next, took).await;
            }
        }
    }

    /// Polls now, then again every `poll_interval` (from the start of one poll to the start
    /// of the next) — except that the first poll for a new hour starts `hour_delay` after the
    /// hour begins, without waiting for the interval, and a reload polls at once. Runs until
    /// `cancel` fires; a poll in progress then is abandoned.
    pub async fn run(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let started = tokio::time::Instant::now();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.poll_scheduled() => {}
            }
            let refreshed = self.state.lock().await.refreshed_hour;
            let config = self.config();
            let wait = next_poll_in(&config, self.clock.now(), refreshed, started.elapsed());
            self.status.plan_next_poll(self.status.now() + wait.as_secs_f64());
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
        tracing::debug!("poller stopped");
    }
}

/// Every call of one round, at most `max_in_flight` at a time: shop calls first (fewer
/// calls, more data), then devices. With a pace, call `i` starts no earlier than `i × pace`
/// after the round began, and is skipped if by then a new hour has begun. A shops call the
/// gateway refuses for what it asked is split (an organisation into its shops, as `shops_of`
/// knows them). A call's future is made only when a place is free: made all at once, 20,000
/// of them would hold tens of megabytes before the first answer.
async fn fetch(setup: &Setup, clock: &Clock, round: &RoundPlan, shops_of: &ShopsOf, plan: Plan) -> Vec<Outcome> {
    let calls = Calls {
        setup,
        clock,
        round,
        shops_of,
        hour: plan.hour,
        hour_start: plan.hour_start,
        pace: plan.pace,
        today: plan.today,
        day_figures: plan.day_figures,
        began: tokio::time::Instant::now(),
    };
    let total = round.calls();
    let places = setup.config.gateway.max_in_flight.max(1);
    let mut running = futures_util::stream::FuturesUnordered::new();
    let mut outcomes = Vec::with_capacity(total);
    let first_device = round.shops.len();
    if plan.device_first && first_device < total {
        outcomes.push(calls.call(first_device).await);
    }
    let mut order = (0..total).filter(|i| !(plan.device_first && *i == first_device));
    let mut next = order.next();
    loop {
        while running.len() < places {
            let Some(i) = next else { break };
            running.push(calls.call(i));
            next = order.next();
        }
        match running.next().await {
            Some(outcome) => outcomes.push(outcome),
            None => break,
        }
    }
    outcomes
}

/// What every call of a round shares.
#[derive(Clone, Copy)]
struct Calls<'a> {
    setup: &'a Setup,
    clock: &'a Clock,
    round: &'a RoundPlan,
    shops_of: &'a ShopsOf,
    hour: NaiveDateTime,
    hour_start: i64,
    pace: Option<std::time::Duration>,
    today: NaiveDate,
    day_figures: bool,
    began: tokio::time::Instant,
}

impl<'a> Calls<'a> {
    /// Call `i`: the shop calls, then the devices.
    fn call(self, i: usize) -> BoxFuture<'a, Outcome> {
        match i.checked_sub(self.round.shops.len()) {
            None => Box::pin(self.shops(i)),
            Some(d) => Box::pin(self.device(i, d)),
        }
    }

    /// Waits for call `i`'s slot; false if the round has been overtaken by a new hour.
    async fn slot(self, i: usize) -> bool {
        let Some(pace) = self.pace else { return true };
        tokio::time::sleep_until(self.began + pace * i as u32).await;
        let tz = self.setup.config.timezone;
        latest_complete_hour(self.clock.now(), tz).map(|(_, start)| start) == Some(self.hour_start)
    }

    async fn shops(self, i: usize) -> Outcome {
        let Some(shop_call) = self.round.shops.get(i) else {
            return Outcome::Skipped(Target::Shops(Vec::new()));
        };
        let (hour, first) = (self.hour, shop_call.first_hour);
        let target = Target::Shops(shop_call.ids.clone());
        if !self.slot(i).await {
            return Outcome::Skipped(target);
        }
        let packing = Packing::of(&self.setup.config.gateway);
        let client = &self.setup.client;
        let day_call = self.day_figures.then(|| Call::day_figures(target.clone(), self.today));
        let call = Call::hours(target, first, hour);
        let mut split = client.fetch_splitting(&call, packing, &OrgShops(self.shops_of)).await;
        // The vendor's figures of today: one more call per batch, in a first round only, and
        // not when the batch's hourly call failed whole (it would fail alike).
        let answered = split.leaves.iter().any(|l| l.result.is_ok());
        let days = match day_call.filter(|_| answered) {
            Some(call) => Some(client.fetch_splitting(&call, packing, &OrgShops(self.shops_of)).await),
            None => None,
        };
        // Keep only the hours asked for: a round holds every answer until it merges them.
        for leaf in &mut split.leaves {
            if let Ok(series) = &mut leaf.result {
                for shop in series.iter_mut() {
                    shop.rows.retain(|r| (first..=hour).contains(&r.hour));
                    shop.rows.shrink_to_fit();
                }
            }
        }
        Outcome::Shops {
            batch: shop_call.batch.clone(),
            split,
            days,
        }
    }

    /// Call `i`, the round's device `d`.
    async fn device(self, i: usize, d: usize) -> Outcome {
        let Some(device_call) = self.round.devices.get(d) else {
            return Outcome::Skipped(Target::Shops(Vec::new()));
        };
        let dev = &device_call.device;
        if !self.slot(i).await {
            return Outcome::Skipped(Target::Device(dev.clone()));
        }
        let (hour, first, today) = (self.hour, device_call.first_hour, self.today);
        // Through today, so that the day so far is summed (past midnight the round's hour is
        // still yesterday's).
        let call = Call {
            to: today.max(hour.date()),
            ..Call::hours(Target::Device(dev.clone()), first, hour)
        };
        let mut today_sum = None;
        let result = self.setup.client.fetch(&call).await.map(|mut answer| {
            today_sum = Some(round::day_sum(&answer, today));
            answer.retain_hours(|h| (first..=hour).contains(&h));
            answer.into_device_rows()
        });
        Outcome::Device(dev.clone(), result, today_sum)
    }
}

/// The organisations' shops as their last answers named them.
struct OrgShops<'a>(&'a ShopsOf);

impl crate::client::Members for OrgShops<'_> {
    fn members(&self, org: &crate::model::TargetId) -> Option<Vec<crate::model::TargetId>> {
        self.0.get(org).map(|deps| {
            deps.iter()
                .filter_map(|d| d.parse().ok())
                .map(crate::model::TargetId::Shop)
                .collect()
        })
    }
}

/// Records the hour (and, for devices, its start) every target whose call answered was
/// answered for.
fn remember_answers(answered: &mut Answered, outcomes: &[Outcome], (hour, hour_start): (NaiveDateTime, i64)) {
    for outcome in outcomes {
        match outcome {
            Outcome::Shops { split, .. } => {
                for leaf in split.leaves.iter().filter(|l| l.result.is_ok()) {
                    answered.shops.extend(leaf.ids.iter().map(|id| (id.clone(), hour)));
                }
            }
            Outcome::Device(dev, Ok(_), _) => {
                answered.devices.insert(dev.mac.clone(), (hour, hour_start));
            }
            Outcome::Device(_, Err(_), _) | Outcome::Skipped(_) => {}
        }
    }
}

/// Remembers, per batch, the parts a split found (those that worked, and the ids that failed
/// alone), when it was split this round and some part worked.
fn learn_splits(setup: &Setup, outcomes: &[Outcome], now: chrono::DateTime<chrono::Utc>) {
    #[derive(Default)]
    struct Found {
        parts: Vec<Vec<crate::model::TargetId>>,
        split: bool,
        worked: bool,
    }
    let mut found: std::collections::HashMap<&[crate::model::TargetId], Found> = std::collections::HashMap::new();
    for outcome in outcomes {
        if let Outcome::Shops { batch, split, .. } = outcome {
            let entry = found.entry(batch.as_slice()).or_default();
            entry.parts.extend(split.parts());
            entry.split |= split.splits > 0;
            entry.worked |= split.leaves.iter().any(|l| l.result.is_ok());
        }
    }
    let mut learned = setup.learned.lock().unwrap_or_else(PoisonError::into_inner);
    for (batch, found) in found {
        if found.split && found.worked {
            learned.split(batch.to_vec(), found.parts, now);
        }
    }
}
