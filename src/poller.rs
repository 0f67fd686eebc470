//! The poller: when to ask, what to ask, and what to keep.
//!
//! Each poll works out the latest *complete* hour in the configured timezone, asks the gateway
//! for the whole days around it (shop ids batched per call, one call per device, at most
//! `max_in_flight` at once), picks from every answer the row whose `time` is that hour, and
//! publishes a new [`Snapshot`]. A target whose call failed keeps its last good values and is
//! marked down; the failure is counted by the client. [`Poller::run`] repeats this every
//! `poll_interval` until cancelled; [`Poller::poll_once`] is one round.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use std::sync::PoisonError;

use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use crate::client::{ApiError, Client};
use crate::config::Config;
use crate::hours::latest_complete_hour;
use crate::metrics::MetricsStore;
use crate::model::{Clock, DeviceRow, DeviceSample, ShopSample, ShopSeries, Snapshot, TargetStatus};
use crate::model::{DeviceTarget, TargetId};

/// What one poll did, for logs and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    /// The local hour reported.
    pub hour: Option<NaiveDateTime>,
    /// The first round for a new hour: every call at once, as fast as the rate limit allows.
    /// Otherwise a re-poll of the same hour (late data), its calls spread over the interval.
    pub priority: bool,
    pub calls: usize,
    pub failed_calls: usize,
    /// Calls of a re-poll left out because a new hour began while it ran.
    pub skipped_calls: usize,
    pub shops: usize,
    pub devices: usize,
}

/// Polls the gateway and publishes snapshots to the metrics store.
pub struct Poller {
    /// The configuration and client in force; replaced as a whole on reload.
    setup: std::sync::RwLock<Arc<Setup>>,
    store: Arc<MetricsStore>,
    clock: Clock,
    /// The last published snapshot and, per shop target, the shops it last produced. Held for
    /// the whole of a poll, so polls never overlap.
    state: Mutex<State>,
    /// Wakes the run loop for an immediate poll (after a reload).
    wake: Notify,
}

struct Setup {
    config: Arc<Config>,
    client: Client,
    /// This shard's targets, worked out once per configuration.
    shops: Vec<TargetId>,
    devices: Vec<DeviceTarget>,
}

impl Setup {
    fn new(config: Arc<Config>, client: Client) -> Self {
        let (shops, devices) = owned_targets(&config);
        let devices = devices.into_iter().cloned().collect();
        Setup {
            config,
            client,
            shops,
            devices,
        }
    }

    /// The calls one round makes: shop batches and devices.
    fn calls(&self) -> usize {
        self.shops
            .len()
            .div_ceil(self.config.gateway.max_ids_per_request.max(1))
            + self.devices.len()
    }
}

#[derive(Default)]
struct State {
    /// The hour whose first (priority) round has completed.
    refreshed_hour: Option<NaiveDateTime>,
    snapshot: Arc<Snapshot>,
    shops_of: BTreeMap<TargetId, BTreeSet<String>>,
}

enum Outcome {
    Shops(Vec<TargetId>, Result<Vec<ShopSeries>, ApiError>),
    Device(DeviceTarget, Result<Vec<DeviceRow>, ApiError>),
    /// Not called: the re-poll was overtaken by a new hour. Everything stays as it was.
    ShopsSkipped(Vec<TargetId>),
    DeviceSkipped(DeviceTarget),
}

/// How one round spaces its calls.
struct Plan {
    /// The hour the round asks for.
    hour: NaiveDateTime,
    /// Time between the starts of consecutive calls (`None`: as fast as allowed).
    pace: Option<std::time::Duration>,
}

impl Poller {
    pub fn new(config: Arc<Config>, client: Client, store: Arc<MetricsStore>, clock: Clock) -> Self {
        Self {
            setup: std::sync::RwLock::new(Arc::new(Setup::new(config, client))),
            store,
            clock,
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.setup().config)
    }

    fn setup(&self) -> Arc<Setup> {
        Arc::clone(&self.setup.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts a new configuration (and the client built for it) in force and asks the run loop
    /// for a poll now. A poll in progress finishes with the old one. Values of targets that
    /// are no longer configured vanish with that next poll.
    pub fn replace(&self, config: Arc<Config>, client: Client) {
        *self.setup.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(Setup::new(config, client));
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
            tracing::warn!(%now, "the latest complete hour does not exist in the configured timezone; skipping this poll");
            return PollReport::default();
        };
        let today = now.with_timezone(&tz).date_naive();
        let priority = state.refreshed_hour != Some(hour);
        let calls = setup.calls();
        // A re-poll spreads its calls evenly over the interval (the rate limit still applies);
        // the first round of an hour goes as fast as the rate limit allows.
        let pace = (spread_repolls && !priority && calls > 0).then(|| setup.config.poll_interval / calls as u32);
        let outcomes = fetch(&setup, &self.clock, hour.date(), today, Plan { hour, pace }).await;

        let round = Round {
            previous: &state.snapshot,
            shops_of: &state.shops_of,
            hour,
            hour_start,
            now: now.timestamp_millis() as f64 / 1000.0,
            stale_after: setup.config.stale_after.as_secs_f64(),
        };
        let (next, shops_of, mut report) = round.merge(outcomes);
        report.priority = priority;
        let next = Arc::new(next);
        let took = started.elapsed();
        // Encoding and compressing thousands of series is CPU work: keep it off the runtime
        // threads that serve /metrics.
        let (store, published) = (Arc::clone(&self.store), Arc::clone(&next));
        if let Err(e) = tokio::task::spawn_blocking(move || store.publish(&published, took)).await {
            tracing::error!(error = %e, "publishing the snapshot failed");
        }
        if priority {
            self.store.refreshed(took, report.calls);
            state.refreshed_hour = Some(hour);
        }
        state.snapshot = next;
        state.shops_of = shops_of;
        tracing::info!(
            hour = %hour,
            priority,
            calls = report.calls,
            failed = report.failed_calls,
            skipped = report.skipped_calls,
            shops = report.shops,
            devices = report.devices,
            took_ms = took.as_millis() as u64,
            "poll complete"
        );
        report
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
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
        }
        tracing::debug!("poller stopped");
    }
}

/// How long to wait, after a poll that started `since_start` ago and finished at `now`, for
/// the next one: until the interval is over, or until the priority poll of the next hour
/// (`hour_delay` into it) if that comes first — at once if that poll is already due.
pub fn next_poll_in(
    config: &Config,
    now: DateTime<Utc>,
    refreshed: Option<NaiveDateTime>,
    since_start: std::time::Duration,
) -> std::time::Duration {
    let tz = config.timezone;
    let local = now.with_timezone(&tz).naive_local();
    let this_hour = local.date().and_hms_opt(local.hour(), 0, 0).unwrap_or(local);
    let at = |hour: NaiveDateTime| {
        tz.from_local_datetime(&hour)
            .earliest()
            .map(|t| t.with_timezone(&Utc) + chrono::Duration::from_std(config.hour_delay).unwrap_or_default())
    };
    let until = |t: Option<DateTime<Utc>>| t.and_then(|t| (t - now).to_std().ok()).unwrap_or_default();
    let interval_left = config.poll_interval.saturating_sub(since_start);
    let due_hour = latest_complete_hour(now, tz).map(|(h, _)| h);
    if due_hour.is_some() && refreshed != due_hour {
        // The current hour's priority poll has not run yet.
        return until(at(this_hour)).min(interval_left);
    }
    until(at(this_hour + chrono::Duration::hours(1))).min(interval_left)
}

/// The shop ids and devices this replica polls (all of them without sharding).
pub fn owned_targets(config: &Config) -> (Vec<TargetId>, Vec<&DeviceTarget>) {
    let owns = |key: &str| config.sharding.is_none_or(|s| s.owns(key));
    let shops = config
        .shops
        .iter()
        .map(|s| s.id.clone())
        .filter(|id| owns(&id.to_string()))
        .collect();
    let devices = config.devices.iter().filter(|d| owns(&d.mac)).collect();
    (shops, devices)
}

/// Every call of one round, at most `max_in_flight` at a time: shop batches first (fewer
/// calls, more data), then devices. With a pace, call `i` starts no earlier than `i × pace`
/// after the round began, and is skipped if by then a new hour has begun.
async fn fetch(setup: &Setup, clock: &Clock, from: NaiveDate, to: NaiveDate, plan: Plan) -> Vec<Outcome> {
    let gateway = &setup.config.gateway;
    let tz = setup.config.timezone;
    let began = tokio::time::Instant::now();
    let (hour, pace) = (plan.hour, plan.pace);
    // Waits for call `i`'s slot; false if the round has been overtaken by a new hour.
    let slot = move |i: usize| async move {
        let Some(pace) = pace else { return true };
        tokio::time::sleep_until(began + pace * i as u32).await;
        latest_complete_hour(clock.now(), tz).map(|(h, _)| h) == Some(hour)
    };
    let mut calls: Vec<BoxFuture<'_, Outcome>> = Vec::new();
    for ids in setup.shops.chunks(gateway.max_ids_per_request.max(1)) {
        let (ids, i, client) = (ids.to_vec(), calls.len(), &setup.client);
        calls.push(Box::pin(async move {
            if !slot(i).await {
                return Outcome::ShopsSkipped(ids);
            }
            let mut result = client.shop_hours(&ids, from, to).await;
            // Keep only the hour asked for: a round holds every answer until it merges them.
            if let Ok(series) = &mut result {
                for shop in series.iter_mut() {
                    shop.rows.retain(|r| r.hour == hour);
                    shop.rows.shrink_to_fit();
                }
            }
            Outcome::Shops(ids, result)
        }));
    }
    for dev in &setup.devices {
        let (i, client) = (calls.len(), &setup.client);
        calls.push(Box::pin(async move {
            if !slot(i).await {
                return Outcome::DeviceSkipped(dev.clone());
            }
            let mut result = client.device_hours(&dev.mac, from, to).await;
            if let Ok(rows) = &mut result {
                rows.retain(|r| r.hour == hour);
                rows.shrink_to_fit();
            }
            Outcome::Device(dev.clone(), result)
        }));
    }
    stream::iter(calls)
        .buffer_unordered(gateway.max_in_flight.max(1))
        .collect()
        .await
}

/// What one round knows besides the answers: the previous snapshot, the hour asked for, now.
struct Round<'a> {
    previous: &'a Snapshot,
    shops_of: &'a BTreeMap<TargetId, BTreeSet<String>>,
    hour: NaiveDateTime,
    hour_start: i64,
    /// Unix seconds.
    now: f64,
    stale_after: f64,
}

impl Round<'_> {
    /// Builds the next snapshot from this round's answers. A target that answered gets its
    /// values for `hour` (or keeps its previous ones if the gateway has no row for the hour
    /// yet); a target whose call failed keeps its previous values until it has been failing
    /// for longer than `stale_after`, and is down. Targets not polled this round vanish.
    fn merge(&self, outcomes: Vec<Outcome>) -> (Snapshot, BTreeMap<TargetId, BTreeSet<String>>, PollReport) {
        let mut next = Snapshot::default();
        let mut shops_of = BTreeMap::new();
        let mut report = PollReport {
            hour: Some(self.hour),
            calls: outcomes.len(),
            ..PollReport::default()
        };
        for outcome in outcomes {
            match outcome {
                Outcome::Shops(ids, Ok(series)) => {
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
                            next.shops.insert(shop.dep_id, sample);
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
                                    self.keep_shops(&mut next, &target, [&dep]);
                                }
                                (found, BTreeSet::from([dep]))
                            }
                            TargetId::Org(_) => (true, of_orgs.clone()),
                        };
                        next.targets.insert(target.clone(), self.status(ok, &target));
                        shops_of.insert(id, owned);
                    }
                }
                Outcome::Shops(ids, Err(e)) => {
                    report.failed_calls += 1;
                    let targets = ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
                    tracing::warn!(error = %e, targets = %targets, "shop poll failed; keeping the last good values");
                    for id in ids {
                        let target = id.to_string();
                        if let Some(owned) = self.shops_of.get(&id) {
                            self.keep_shops(&mut next, &target, owned);
                            shops_of.insert(id, owned.clone());
                        }
                        next.targets.insert(target.clone(), self.status(false, &target));
                    }
                }
                Outcome::ShopsSkipped(ids) => {
                    report.skipped_calls += 1;
                    for id in ids {
                        let target = id.to_string();
                        if let Some(owned) = self.shops_of.get(&id) {
                            self.carry_shops(&mut next, owned);
                            shops_of.insert(id, owned.clone());
                        }
                        if let Some(status) = self.previous.targets.get(&target) {
                            next.targets.insert(target, *status);
                        }
                    }
                }
                Outcome::DeviceSkipped(dev) => {
                    report.skipped_calls += 1;
                    if let Some(sample) = self.previous.devices.get(&dev.mac) {
                        next.devices.insert(dev.mac.clone(), sample.clone());
                    }
                    if let Some(status) = self.previous.targets.get(&dev.mac) {
                        next.targets.insert(dev.mac.clone(), *status);
                    }
                }
                Outcome::Device(dev, result) => {
                    let ok = result.is_ok();
                    let fresh = match result {
                        Ok(rows) => rows.iter().find(|r| r.hour == self.hour).map(|r| DeviceSample {
                            mac: dev.mac.clone(),
                            name: dev.name.clone().unwrap_or_default(),
                            shop_id: dev.shop_id.clone().unwrap_or_default(),
                            hour_start: self.hour_start,
                            values: r.values,
                        }),
                        Err(e) => {
                            report.failed_calls += 1;
                            tracing::warn!(error = %e, mac = %dev.mac, "device poll failed; keeping the last good values");
                            None
                        }
                    };
                    let kept = || {
                        self.still_fresh(&dev.mac)
                            .then(|| self.previous.devices.get(&dev.mac).cloned())
                            .flatten()
                    };
                    if let Some(sample) = fresh.or_else(kept) {
                        next.devices.insert(dev.mac.clone(), sample);
                    }
                    next.targets.insert(dev.mac.clone(), self.status(ok, &dev.mac));
                }
            }
        }
        report.shops = next.shops.len();
        report.devices = next.devices.len();
        (next, shops_of, report)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn config(interval_secs: u64, delay_secs: u64) -> Config {
        let gateway =
            crate::config::GatewayConfig::new("http://127.0.0.1:1/m.api".parse().unwrap(), "k".into(), "s".into());
        Config {
            gateway,
            timezone: chrono_tz::Asia::Shanghai,
            poll_interval: std::time::Duration::from_secs(interval_secs),
            stale_after: crate::config::DEFAULT_STALE_AFTER,
            hour_delay: std::time::Duration::from_secs(delay_secs),
            sharding: None,
            shops: vec![],
            devices: vec![],
        }
    }

    fn secs(d: std::time::Duration) -> u64 {
        d.as_secs()
    }

    #[test]
    fn the_next_poll_waits_for_the_interval_or_the_new_hour() {
        let c = config(300, 60);
        // 14:30 local, the 13:00 refresh done, the poll took 10 s: 290 s of interval left.
        let now = utc("2024-05-01T06:30:00Z");
        let done = Some(latest_complete_hour(now, c.timezone).unwrap().0);
        assert_eq!(
            secs(next_poll_in(&c, now, done, std::time::Duration::from_secs(10))),
            290
        );
        // 14:58: the new hour (15:00 + 1 min delay) comes before the interval ends.
        let now = utc("2024-05-01T06:58:00Z");
        assert_eq!(
            secs(next_poll_in(&c, now, done, std::time::Duration::from_secs(0))),
            180
        );
    }

    #[test]
    fn a_pending_refresh_waits_only_for_the_hour_delay() {
        let c = config(3600, 60);
        let refreshed = Some(latest_complete_hour(utc("2024-05-01T06:30:00Z"), c.timezone).unwrap().0);
        // 15:00:20 local: the 14:00 hour is due but not refreshed; 40 s of delay left.
        let now = utc("2024-05-01T07:00:20Z");
        assert_eq!(
            secs(next_poll_in(&c, now, refreshed, std::time::Duration::from_secs(0))),
            40
        );
        // 15:02: overdue, poll at once.
        let now = utc("2024-05-01T07:02:00Z");
        assert_eq!(
            secs(next_poll_in(&c, now, refreshed, std::time::Duration::from_secs(0))),
            0
        );
    }

    #[test]
    fn sharded_replicas_split_the_calls() {
        let mut c = config(300, 60);
        c.shops = (0..100)
            .map(|i| crate::config::ShopTarget {
                id: TargetId::Shop(i + 1),
            })
            .collect();
        c.devices = (0..30u64)
            .map(|i| DeviceTarget {
                mac: format!("d47c449060{i:02x}"),
                name: None,
                shop_id: None,
            })
            .collect();
        c.gateway.max_ids_per_request = 10;
        let client = Client::new(
            &c.gateway,
            Clock::system(),
            crate::metrics::MetricsStore::new("t", "t").unwrap().api().clone(),
        )
        .unwrap();
        assert_eq!(Setup::new(Arc::new(c.clone()), client).calls(), 10 + 30);
        let mut shops = 0;
        let mut devices = 0;
        for index in 0..3 {
            c.sharding = Some(crate::config::Shard::new(index, 3).unwrap());
            let (s, d) = owned_targets(&c);
            shops += s.len();
            devices += d.len();
        }
        assert_eq!((shops, devices), (100, 30), "every target in exactly one shard");
    }
}
