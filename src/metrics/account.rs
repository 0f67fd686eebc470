//! One account's series in the store: its gateway-call counters ([`ApiMetrics`]), its poll,
//! refresh and revision series, all labelled `account="<name>"` when the account is named
//! (none in the single-account form), and the newest snapshot its poller published, from which
//! the store renders the account's value series.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{Gauge, IntCounter, Opts, Registry};

use super::api::ApiMetrics;
use super::register;
use crate::model::Snapshot;

/// An account's own series and its newest snapshot. Its poller records into it; the store
/// renders every account's snapshot into `/metrics`.
pub struct AccountMetrics {
    name: Option<String>,
    api: ApiMetrics,
    poll_duration: Gauge,
    refresh_duration: Gauge,
    refresh_calls: Gauge,
    refresh_budget: Gauge,
    shop_revisions: IntCounter,
    device_revisions: IntCounter,
    /// Shared with the poller (never copied); `None` until the first poll completed.
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    /// Set once a snapshot of the account has been rendered into `/metrics`.
    ready: AtomicBool,
}

impl std::fmt::Debug for AccountMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountMetrics")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A registered gauge with the account's constant labels.
fn gauge(registry: &Registry, account: &HashMap<String, String>, name: &str, help: &str) -> prometheus::Result<Gauge> {
    register(
        registry,
        Gauge::with_opts(Opts::new(name, help).const_labels(account.clone()))?,
    )
}

/// A registered counter with the account's constant labels.
fn counter(
    registry: &Registry,
    account: &HashMap<String, String>,
    name: &str,
    help: &str,
) -> prometheus::Result<IntCounter> {
    register(
        registry,
        IntCounter::with_opts(Opts::new(name, help).const_labels(account.clone()))?,
    )
}

impl AccountMetrics {
    /// Registers the series of the account `name` (`None`: the single-account form, no
    /// `account` label) in `registry`.
    pub(super) fn new(registry: &Registry, name: Option<&str>) -> prometheus::Result<Self> {
        let labels: HashMap<String, String> = name
            .map(|n| HashMap::from([("account".to_string(), n.to_string())]))
            .unwrap_or_default();
        let labels = &labels;
        let api = ApiMetrics::new(registry, labels)?;
        let poll_duration = gauge(
            registry,
            labels,
            "opretail_poll_duration_seconds",
            "Duration of the last completed poll of every configured shop and device (the data is hourly data, polled).",
        )?;
        let refresh_duration = gauge(
            registry,
            labels,
            "opretail_refresh_duration_seconds",
            "Duration of the last full refresh: the first poll of every target for a new hour of hourly data.",
        )?;
        let refresh_calls = gauge(
            registry,
            labels,
            "opretail_refresh_requests",
            "Gateway calls the last full refresh of the hourly data needed (shop batches, each for the hour and the day figures, plus devices of this shard).",
        )?;
        let refresh_budget = gauge(
            registry,
            labels,
            "opretail_refresh_budget_seconds",
            "The least time a full refresh of the hourly data can take: its gateway calls divided by the configured request rate (over 3600, the hour is over before it is refreshed).",
        )?;
        let shop_revisions = counter(
            registry,
            labels,
            "opretail_shop_hour_revisions_total",
            "Times a re-poll of the hourly data found a different value for a shop hour already published (a counter that uploaded late); the newest value is published while that hour is the reported one.",
        )?;
        let device_revisions = counter(
            registry,
            labels,
            "opretail_device_hour_revisions_total",
            "Times a re-poll of the hourly data found a different value for a device hour already published (a counter that uploaded late); the newest value is published while that hour is the reported one.",
        )?;
        Ok(AccountMetrics {
            name: name.map(String::from),
            api,
            poll_duration,
            refresh_duration,
            refresh_calls,
            refresh_budget,
            shop_revisions,
            device_revisions,
            snapshot: RwLock::new(None),
            ready: AtomicBool::new(false),
        })
    }

    /// The account's name (`None` in the single-account form).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The account's gateway-call counters, to hand to its client.
    pub fn api(&self) -> &ApiMetrics {
        &self.api
    }

    /// Every collector of the account, to unregister when the account goes.
    pub(super) fn collectors(&self) -> Vec<Box<dyn Collector>> {
        let mut all = self.api.collectors();
        all.push(Box::new(self.poll_duration.clone()));
        all.push(Box::new(self.refresh_duration.clone()));
        all.push(Box::new(self.refresh_calls.clone()));
        all.push(Box::new(self.refresh_budget.clone()));
        all.push(Box::new(self.shop_revisions.clone()));
        all.push(Box::new(self.device_revisions.clone()));
        all
    }

    /// Keeps `snapshot` as the account's newest and records the poll's duration.
    pub(super) fn published(&self, snapshot: Arc<Snapshot>, poll_took: Duration) {
        let old = self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(snapshot);
        drop(old);
        self.poll_duration.set(poll_took.as_secs_f64());
    }

    /// Marks the account's values as shown by `/metrics`.
    pub(super) fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// True once a snapshot of the account has been rendered.
    pub(super) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The newest snapshot, if a poll has completed.
    pub(super) fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Publishes the least time a full refresh of the account's configuration can take.
    pub(crate) fn refresh_budget(&self, seconds: f64) {
        self.refresh_budget.set(seconds);
    }

    /// Records a completed full refresh (the first round for a new hour).
    pub(crate) fn refreshed(&self, took: Duration, calls: usize) {
        self.refresh_duration.set(took.as_secs_f64());
        self.refresh_calls.set(calls as f64);
    }

    /// Counts hours already published that a re-poll found revised.
    pub(crate) fn revised(&self, shops: usize, devices: usize) {
        self.shop_revisions.inc_by(shops as u64);
        self.device_revisions.inc_by(devices as u64);
    }
}
