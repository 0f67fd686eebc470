//! The poller: when to ask, what to ask, and what to keep.
//!
//! Each poll works out the latest *complete* hour in the configured timezone, asks the gateway
//! for that hour (shop ids batched per call with `starthour`/`endhour`; one call per device,
//! for the hour's day; at most `max_in_flight` at once), picks from every answer the row whose
//! `time` is that hour, and
//! publishes a new [`Snapshot`]. A target whose call failed keeps its last good values and is
//! marked down; the failure is counted by the client. [`Poller::run`] repeats this every
//! `poll_interval` until cancelled; [`Poller::poll_once`] is one round.

mod round;
mod schedule;

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use chrono::NaiveDateTime;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use tokio::sync::{Mutex, Notify};
use tokio_util::sync::CancellationToken;

use self::round::{Outcome, Round, ShopsOf};
pub use self::schedule::RefreshCost;
pub(crate) use self::schedule::{next_poll_in, owned_targets, refresh_targets};
use crate::client::{Call, Client, Target};
use crate::config::Config;
use crate::hours::latest_complete_hour;
use crate::metrics::MetricsStore;
use crate::model::{Clock, Snapshot};

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
    /// This shard's calls, worked out once per configuration: shop batches, then devices.
    targets: Vec<Target>,
}

impl Setup {
    fn new(config: Arc<Config>, client: Client) -> Self {
        let targets = refresh_targets(&config);
        Setup {
            config,
            client,
            targets,
        }
    }
}

#[derive(Default)]
struct State {
    /// The hour whose first (priority) round has completed.
    refreshed_hour: Option<NaiveDateTime>,
    snapshot: Arc<Snapshot>,
    shops_of: ShopsOf,
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
        let priority = state.refreshed_hour != Some(hour);
        let calls = setup.targets.len();
        // A re-poll spreads its calls evenly over the interval (the rate limit still applies);
        // the first round of an hour goes as fast as the rate limit allows.
        let pace = (spread_repolls && !priority && calls > 0).then(|| setup.config.poll_interval / calls as u32);
        let outcomes = fetch(&setup, &self.clock, Plan { hour, pace }).await;

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

/// Every call of one round, at most `max_in_flight` at a time: shop batches first (fewer
/// calls, more data), then devices. With a pace, call `i` starts no earlier than `i × pace`
/// after the round began, and is skipped if by then a new hour has begun.
async fn fetch(setup: &Setup, clock: &Clock, plan: Plan) -> Vec<Outcome> {
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
    let mut calls: Vec<BoxFuture<'_, Outcome>> = Vec::with_capacity(setup.targets.len());
    for (i, target) in setup.targets.iter().enumerate() {
        calls.push(Box::pin(async move {
            if !slot(i).await {
                return Outcome::Skipped(target.clone());
            }
            let call = Call::hour(target.clone(), hour);
            let mut result = setup.client.fetch(&call).await;
            // Keep only the hour asked for: a round holds every answer until it merges them.
            if let Ok(answer) = &mut result {
                answer.retain_hours(|h| h == hour);
            }
            Outcome::Answered(call.target, result)
        }));
    }
    stream::iter(calls)
        .buffer_unordered(gateway.max_in_flight.max(1))
        .collect()
        .await
}
