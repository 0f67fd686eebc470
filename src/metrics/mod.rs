//! The metrics store: owns the Prometheus registry and everything `/metrics` shows.
//!
//! Two kinds of series live here. Health series (API requests, errors, latency, poll duration,
//! build info, process) are ordinary collectors in the store's [`Registry`], updated as things
//! happen. Value series (per shop, per device, per target) are rendered from the newest
//! [`Snapshot`] when a poll publishes it, and the text is cached: a scrape never waits on a poll,
//! never re-encodes thousands of gauges, and a shop or device absent from the newest snapshot
//! is absent from `/metrics`.
//!
//! Each account has its own health series and newest snapshot (`account`): a named account's
//! series carry `account="<name>"` (a constant label of its collectors, and the first label of
//! its value series), the unnamed account of the single-account form's none, and process-wide
//! series (build info, reloads, process) never. A publish renders the union of every account's
//! newest snapshot (shared, never copied), each family declared once; the store is ready once
//! every account has published.
//!
//! Inside: `account` (one account's series and snapshot), `api` (the gateway-call counters the
//! client records into), `encode` (the value series as text, from the schema's families, and
//! the escaping), `gzip` (the cached compressed parts).

mod account;
mod api;
mod encode;
mod gzip;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use prometheus::core::Collector;
use prometheus::{Encoder, Gauge, GaugeVec, Opts, Registry, TextEncoder};

use crate::model::Snapshot;
use gzip::Rendered;

pub use account::AccountMetrics;
pub use api::ApiMetrics;
pub(crate) use encode::{push_escaped, push_labels, push_value};
pub use encode::{render_accounts, render_snapshot};

/// Gives the allocator's free pages back to the system (glibc's `malloc_trim`): before
/// rendering a snapshot, what the poll's answers and merge left free; after, the previous
/// rendering and what rendering needed meanwhile; after a reload, what parsing the file
/// needed (about 36 MiB for 10,000 shop ids and 20,000 devices). Otherwise those pages stay
/// resident, and what comes next lands beside them. A trim takes about 1-3 ms.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is safe to call at any
    // time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Registers `collector` in `registry` and hands it back, for its owner to update.
fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> prometheus::Result<C> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

/// A registered gauge without labels.
fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<Gauge> {
    register(registry, Gauge::with_opts(Opts::new(name, help))?)
}

/// The registry, every account's series, the cached value series, and readiness.
pub struct MetricsStore {
    registry: Registry,
    /// The first account the store was made with.
    first_made: Arc<AccountMetrics>,
    reload_ok: Gauge,
    reload_time: Gauge,
    /// By name (the unnamed account of the single-account form first): the order their value
    /// series are rendered in.
    accounts: RwLock<BTreeMap<Option<String>, Arc<AccountMetrics>>>,
    /// Held while the value series are rendered, so that the last rendering has the newest
    /// snapshot of every account.
    rendering: Mutex<()>,
    values: RwLock<Arc<Rendered>>,
}

impl std::fmt::Debug for MetricsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsStore")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl MetricsStore {
    /// A store with the health series of the single-account form registered (no `account`
    /// label). `revision` labels the build info.
    pub fn new(version: &str, revision: &str) -> prometheus::Result<Self> {
        Self::with_accounts(version, revision, &[None])
    }

    /// A store with the health series of each of `accounts` registered (none given: the unnamed account; `None`: the unnamed
    /// account of the single-account form; named accounts' series carry `account="<name>"`).
    /// The unnamed account and named ones cannot share a store: their series have different
    /// label names.
    pub fn with_accounts(version: &str, revision: &str, accounts: &[Option<&str>]) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let reload_ok = gauge(
            &registry,
            "opretail_config_last_reload_successful",
            "1 if the last configuration (re)load of the exporter of polled hourly Opretail data succeeded, else 0.",
        )?;
        let reload_time = gauge(
            &registry,
            "opretail_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration (re)load of the exporter of polled hourly Opretail data.",
        )?;
        let build_info = GaugeVec::new(
            Opts::new(
                "opretail_exporter_build_info",
                "A constant 1 labelled by the version and revision of opretail-exporter, the exporter of polled hourly Opretail data.",
            ),
            &["version", "revision"],
        )?;
        register(&registry, build_info)?
            .with_label_values(&[version, revision])
            .set(1.0);
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let mut made = BTreeMap::new();
        let mut first_made = None;
        for name in accounts.iter().copied().chain(accounts.is_empty().then_some(None)) {
            let account = Arc::new(AccountMetrics::new(&registry, name)?);
            first_made.get_or_insert_with(|| Arc::clone(&account));
            made.insert(name.map(String::from), account);
        }
        let first_made = match first_made {
            Some(first) => first,
            None => Arc::new(AccountMetrics::new(&registry, None)?),
        };
        Ok(Self {
            registry,
            first_made,
            reload_ok,
            reload_time,
            accounts: RwLock::new(made),
            rendering: Mutex::new(()),
            values: RwLock::new(Arc::new(Rendered::default())),
        })
    }

    /// The series of the account `name`, registered now if the store has none yet. Fails if
    /// the unnamed account and named ones would mix (their series have different label names).
    pub fn account(&self, name: Option<&str>) -> prometheus::Result<Arc<AccountMetrics>> {
        let mut accounts = self.accounts.write().unwrap_or_else(PoisonError::into_inner);
        let key = name.map(String::from);
        if let Some(found) = accounts.get(&key) {
            return Ok(Arc::clone(found));
        }
        let account = Arc::new(AccountMetrics::new(&self.registry, name)?);
        accounts.insert(key, Arc::clone(&account));
        Ok(account)
    }

    /// Removes the account `name`: its health series and its value series vanish.
    pub(crate) fn remove_account(&self, name: Option<&str>) {
        let removed = self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&name.map(String::from));
        if let Some(account) = removed {
            for collector in account.collectors() {
                // Registered by this store when the account was added.
                let _ = self.registry.unregister(collector);
            }
            self.render_all();
        }
    }

    /// The accounts' names, in rendering order.
    pub fn account_names(&self) -> Vec<Option<String>> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// The API counters of the first account the store was made with (in the single-account
    /// form, the only one), to hand to a client.
    pub fn api(&self) -> &ApiMetrics {
        self.first_made.api()
    }

    /// The series of the first account the store was made with.
    pub fn first_account(&self) -> Arc<AccountMetrics> {
        Arc::clone(&self.first_made)
    }

    #[cfg(test)]
    fn first(&self) -> Option<Arc<AccountMetrics>> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .next()
            .cloned()
    }

    /// The registry of the health series, for other owners of series to register into (the
    /// web config's reload gauges).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Makes `snapshot` the newest of `account` and renders the value series of every account
    /// again (the others' last snapshots, shared, not copied), recording the poll's duration.
    /// CPU-heavy for large snapshots (encoding and compressing): call it from a blocking
    /// context.
    /// The free memory of the poll and the previous rendering is given back to the system
    /// before and after (see [`release_free_memory`]).
    pub(crate) fn publish(&self, account: &AccountMetrics, snapshot: Arc<Snapshot>, poll_took: Duration) {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(PoisonError::into_inner);
        account.published(snapshot, poll_took);
        self.render_locked();
        // Ready only once the values are there to scrape.
        account.mark_ready();
    }

    /// Renders the value series of every account again (after one was removed).
    fn render_all(&self) {
        let _one_at_a_time = self.rendering.lock().unwrap_or_else(PoisonError::into_inner);
        self.render_locked();
    }

    fn render_locked(&self) {
        release_free_memory();
        let snapshots: Vec<(Option<String>, Arc<Snapshot>)> = self
            .accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(name, account)| Some((name.clone(), account.snapshot()?)))
            .collect();
        let parts: Vec<(Option<&str>, &Snapshot)> = snapshots
            .iter()
            .map(|(name, snapshot)| (name.as_deref(), &**snapshot))
            .collect();
        let rendered = match Rendered::new(&parts) {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::error!(error = %e, "could not compress the snapshot; keeping the previous one");
                return;
            }
        };
        drop(parts);
        drop(snapshots);
        let old = std::mem::replace(
            &mut *self.values.write().unwrap_or_else(PoisonError::into_inner),
            Arc::new(rendered),
        );
        drop(old);
        release_free_memory();
    }

    /// Records a configuration load: `Some(unix_time)` for a success, `None` for a failure.
    pub(crate) fn config_loaded(&self, success_at: Option<f64>) {
        match success_at {
            Some(t) => {
                self.reload_ok.set(1.0);
                self.reload_time.set(t);
            }
            None => self.reload_ok.set(0.0),
        }
    }

    /// True once every account has completed a poll.
    pub(crate) fn is_ready(&self) -> bool {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .all(|a| a.is_ready())
    }

    #[cfg(test)]
    /// The whole exposition: health series, then the cached value series.
    pub(crate) fn render(&self) -> Vec<u8> {
        self.exposition(false).concat()
    }

    /// The exposition in parts, to be sent one after the other: the health series, encoded
    /// now (a few dozen series, so counters and process figures are current), then the value
    /// series as rendered by the last poll (never re-encoded). With `gzip` the parts together
    /// are one gzip member: header and the health series as non-final deflate blocks, the
    /// cached deflate stream of the value series (shared bytes, never re-compressed), and a
    /// trailer whose CRC-32 combines both. Without, the value series are inflated from that
    /// stream a piece at a time as the parts are taken.
    pub fn exposition(&self, gzip: bool) -> Exposition {
        let values = Arc::clone(&self.values.read().unwrap_or_else(PoisonError::into_inner));
        let mut health = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut health) {
            tracing::error!(error = %e, "could not encode the health metrics");
        }
        if gzip {
            let parts = values.gzip_after(&health);
            let len = parts.iter().map(Bytes::len).sum();
            return Exposition {
                len,
                head: parts.into_iter(),
                text: None,
            };
        }
        Exposition {
            len: health.len() + values.len(),
            head: vec![Bytes::from(health)].into_iter(),
            text: Some(values.plain()),
        }
    }
}

/// One scrape's answer body, in parts to send one after the other (an iterator of shared or
/// freshly made bytes), and its length.
pub struct Exposition {
    len: usize,
    head: std::vec::IntoIter<Bytes>,
    text: Option<gzip::Inflate>,
}

impl Exposition {
    /// The length of the whole body (its `Content-Length`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the body is empty (it never is: the health series are always there).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The whole body in one piece (for tests and the bench).
    pub fn concat(self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.len);
        for part in self {
            body.extend_from_slice(&part);
        }
        body
    }
}

impl Iterator for Exposition {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        self.head.next().or_else(|| self.text.as_mut()?.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ShopSample, ShopValues};
    use std::io::Read;

    fn gunzip(parts: &[Bytes]) -> String {
        let raw = parts.concat();
        let mut text = String::new();
        let mut decoder = flate2::read::GzDecoder::new(&raw[..]);
        decoder.read_to_string(&mut text).expect("one valid gzip member");
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).expect("rest");
        assert!(rest.is_empty());
        text
    }

    #[test]
    fn gzip_before_the_first_poll_and_after() {
        let store = MetricsStore::new("1.2.3", "abc").expect("store");
        let text = gunzip(&store.exposition(true).collect::<Vec<_>>());
        assert!(text.contains("opretail_exporter_build_info{revision=\"abc\",version=\"1.2.3\"} 1"));
        let own = |t: &str| {
            t.lines()
                .filter(|l| !l.contains("process_"))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(own(&text), own(&String::from_utf8(store.render()).expect("utf-8")));

        let mut snapshot = Snapshot::default();
        let sample = |i: u32| ShopSample {
            dep_id: i.to_string(),
            name: format!("Shop {i}"),
            code: String::new(),
            hour_start: 1_714_539_600,
            values: ShopValues {
                walk_in: Some(f64::from(i)),
                ..ShopValues::default()
            },
            meta: crate::model::ShopMeta::default(),
        };
        snapshot.shops = (0..2000)
            .map(|i| (i.to_string(), sample(i)))
            .collect::<BTreeMap<_, _>>()
            .into();
        store.publish(
            &store.first().expect("account"),
            Arc::new(snapshot),
            Duration::from_millis(5),
        );
        let plain = store.render();
        let gz: Vec<Bytes> = store.exposition(true).collect();
        assert!(gz.iter().map(Bytes::len).sum::<usize>() * 5 < plain.len(), "compresses");
        let text = gunzip(&gz);
        let values = |t: &str| t.lines().filter(|l| l.starts_with("opretail_shop_walk_in{")).count();
        assert_eq!(values(&text), 2000);
        assert_eq!(values(&text), values(&String::from_utf8(plain).expect("utf-8")));
    }

    #[test]
    fn the_value_series_are_rendered_once_and_inflated_in_pieces() {
        let store = MetricsStore::new("1", "r").expect("store");
        let mut snapshot = Snapshot::default();
        for i in 0..20_000 {
            Arc::make_mut(&mut snapshot.targets).insert(
                format!("S_{i}"),
                crate::model::TargetStatus {
                    up: i % 3 > 0,
                    last_success: Some(f64::from(i)),
                },
            );
        }
        let snapshot = Arc::new(snapshot);
        store.publish(&store.first().expect("account"), Arc::clone(&snapshot), Duration::ZERO);
        let a: Vec<Bytes> = store.exposition(true).collect();
        let b: Vec<Bytes> = store.exposition(true).collect();
        assert_eq!(
            a[1].as_ptr(),
            b[1].as_ptr(),
            "two gzip scrapes send the same cached stream"
        );

        let text = render_snapshot(&snapshot);
        assert!(text.len() > 3 * gzip::PIECE, "several pieces: {}", text.len());
        let plain = store.exposition(false);
        let declared = plain.len();
        let parts: Vec<Bytes> = plain.collect();
        assert!(
            parts.iter().all(|p| p.len() <= gzip::PIECE),
            "never the whole text at once"
        );
        let body = parts.concat();
        assert_eq!(body.len(), declared, "Content-Length is the body's");
        let body = String::from_utf8(body).expect("utf-8");
        assert!(body.ends_with(&text), "the cached text, inflated");
        assert!(body.contains("opretail_exporter_build_info"), "after the health series");
    }

    #[test]
    fn each_account_has_its_series_and_readiness_waits_for_all() {
        let store = MetricsStore::with_accounts("1", "r", &[Some("b"), Some("a")]).expect("store");
        assert_eq!(store.account_names(), [Some("a".to_string()), Some("b".to_string())]);
        let mut snapshot = Snapshot::default();
        Arc::make_mut(&mut snapshot.targets).insert(
            "S_1".into(),
            crate::model::TargetStatus {
                up: true,
                last_success: Some(1.0),
            },
        );
        let snapshot = Arc::new(snapshot);
        let a = store.account(Some("a")).expect("a");
        let b = store.account(Some("b")).expect("b");
        assert!(Arc::ptr_eq(&b, &store.first_account()), "the first made");
        a.api().observe("m", Duration::ZERO, Some("7"));
        store.publish(&a, Arc::clone(&snapshot), Duration::ZERO);
        assert!(!store.is_ready(), "b has not polled");
        store.publish(&b, Arc::clone(&snapshot), Duration::ZERO);
        assert!(store.is_ready());
        assert_eq!(Arc::strong_count(&snapshot), 3, "shared, not copied");
        let text = String::from_utf8(store.render()).expect("utf-8");
        assert!(text.contains("opretail_target_up{account=\"a\",target=\"S_1\"} 1\nopretail_target_up{account=\"b\",target=\"S_1\"} 1\n"), "{text}");
        assert!(text.contains("opretail_api_errors_total{account=\"a\",code=\"7\",method=\"m\"} 1"));
        assert!(text.contains("opretail_poll_duration_seconds{account=\"b\"} 0"));
        assert!(text.contains("opretail_exporter_build_info{revision=\"r\",version=\"1\"} 1"));
        assert_eq!(
            text.matches("# TYPE opretail_api_rate_limit_requests_per_second gauge")
                .count(),
            1
        );
        // The unnamed account cannot join named ones: different label names.
        assert!(store.account(None).is_err());

        store.remove_account(Some("a"));
        let text = String::from_utf8(store.render()).expect("utf-8");
        assert!(!text.contains("account=\"a\""), "{text}");
        assert!(text.contains("opretail_target_up{account=\"b\",target=\"S_1\"} 1"));
        assert_eq!(Arc::strong_count(&snapshot), 3, "a's metrics are still held here");
        drop(a);
        assert_eq!(Arc::strong_count(&snapshot), 2, "a's snapshot went with it");
        // Added again, it starts afresh.
        let a = store.account(Some("a")).expect("a again");
        assert!(!store.is_ready());
        store.publish(&a, snapshot, Duration::ZERO);
        assert!(store.is_ready());
    }
}
