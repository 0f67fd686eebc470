//! The metrics store: owns the Prometheus registry and everything `/metrics` shows.
//!
//! Two kinds of series live here. Health series (API requests, errors, latency, poll duration,
//! build info, process) are ordinary collectors in the store's [`Registry`], updated as things
//! happen. Value series (per shop, per device, per target) are rendered from the newest
//! [`Snapshot`] when a poll publishes it, and the text is cached: a scrape never waits on a poll,
//! never re-encodes thousands of gauges, and a shop or device absent from the newest snapshot
//! is absent from `/metrics`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use flate2::write::DeflateEncoder;
use flate2::{Compress, Compression, Crc, FlushCompress};
use prometheus::{Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::model::Snapshot;

/// Counters of gateway calls, shared by every clone of the client.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    retries: IntCounterVec,
    duration: HistogramVec,
    rate_limit: Gauge,
}

impl ApiMetrics {
    fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "opretail_api_requests_total",
                "Requests sent to the Opretail gateway while polling its hourly data, by gateway method.",
            ),
            &["method"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "opretail_api_errors_total",
                "Failed Opretail gateway requests while polling its hourly data, by method and code: the gateway's stat.code, or http_<status>, timeout, transport, decode.",
            ),
            &["method", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "opretail_api_request_duration_seconds",
                "Duration of Opretail gateway requests while polling its hourly data, by gateway method.",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            &["method"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "opretail_api_retries_total",
                "Gateway requests retried after a transient failure while polling hourly data, by gateway method.",
            ),
            &["method"],
        )?;
        let rate_limit = Gauge::with_opts(Opts::new(
            "opretail_api_rate_limit_requests_per_second",
            "Gateway requests per second allowed now while polling hourly data (lowered after -100 API_CALL_REPEAT answers).",
        ))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(rate_limit.clone()))?;
        Ok(Self {
            requests,
            errors,
            retries,
            duration,
            rate_limit,
        })
    }

    /// Records one finished call; `error_code` is `None` on success.
    pub fn observe(&self, method: &str, took: Duration, error_code: Option<&str>) {
        self.requests.with_label_values(&[method]).inc();
        self.duration.with_label_values(&[method]).observe(took.as_secs_f64());
        if let Some(code) = error_code {
            self.errors.with_label_values(&[method, code]).inc();
        }
    }

    /// Counts one retry of a request to `method`.
    pub fn retried(&self, method: &str) {
        self.retries.with_label_values(&[method]).inc();
    }

    /// Publishes the request rate in force.
    pub fn set_rate_limit(&self, per_second: f64) {
        self.rate_limit.set(per_second);
    }

    /// Current value of `opretail_api_errors_total{method, code}` (for tests and logs).
    pub fn errors(&self, method: &str, code: &str) -> u64 {
        self.errors.with_label_values(&[method, code]).get()
    }

    /// Current value of `opretail_api_requests_total{method}`.
    pub fn requests(&self, method: &str) -> u64 {
        self.requests.with_label_values(&[method]).get()
    }
}

/// The registry, the cached value series, and readiness.
pub struct MetricsStore {
    registry: Registry,
    api: ApiMetrics,
    poll_duration: Gauge,
    refresh_duration: Gauge,
    refresh_calls: Gauge,
    reload_ok: Gauge,
    reload_time: Gauge,
    values: RwLock<Arc<Rendered>>,
    ready: AtomicBool,
}

impl std::fmt::Debug for MetricsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsStore")
            .field("ready", &self.is_ready())
            .finish_non_exhaustive()
    }
}

impl MetricsStore {
    /// A store with the health series registered. `revision` labels the build info.
    pub fn new(version: &str, revision: &str) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let api = ApiMetrics::new(&registry)?;
        let poll_duration = Gauge::with_opts(Opts::new(
            "opretail_poll_duration_seconds",
            "Duration of the last completed poll of every configured shop and device (the data is hourly data, polled).",
        ))?;
        registry.register(Box::new(poll_duration.clone()))?;
        let refresh_duration = Gauge::with_opts(Opts::new(
            "opretail_refresh_duration_seconds",
            "Duration of the last full refresh: the first poll of every target for a new hour of hourly data.",
        ))?;
        let refresh_calls = Gauge::with_opts(Opts::new(
            "opretail_refresh_requests",
            "Gateway calls the last full refresh of the hourly data needed (shop batches plus devices of this shard).",
        ))?;
        registry.register(Box::new(refresh_duration.clone()))?;
        registry.register(Box::new(refresh_calls.clone()))?;
        let reload_ok = Gauge::with_opts(Opts::new(
            "opretail_config_last_reload_successful",
            "1 if the last configuration (re)load of the exporter of polled hourly Opretail data succeeded, else 0.",
        ))?;
        let reload_time = Gauge::with_opts(Opts::new(
            "opretail_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration (re)load of the exporter of polled hourly Opretail data.",
        ))?;
        registry.register(Box::new(reload_ok.clone()))?;
        registry.register(Box::new(reload_time.clone()))?;
        let build_info = GaugeVec::new(
            Opts::new(
                "opretail_exporter_build_info",
                "A constant 1 labelled by the version and revision of opretail-exporter, the exporter of polled hourly Opretail data.",
            ),
            &["version", "revision"],
        )?;
        build_info.with_label_values(&[version, revision]).set(1.0);
        registry.register(Box::new(build_info))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(Self {
            registry,
            api,
            poll_duration,
            refresh_duration,
            refresh_calls,
            reload_ok,
            reload_time,
            values: RwLock::new(Arc::new(Rendered::default())),
            ready: AtomicBool::new(false),
        })
    }

    /// The API counters, to hand to the client.
    pub fn api(&self) -> &ApiMetrics {
        &self.api
    }

    /// Replaces the value series with those of `snapshot` and records the poll's duration.
    /// Marks the store ready: a poll has completed.
    /// CPU-heavy for large snapshots (encoding and compressing): call it from a blocking
    /// context.
    pub fn publish(&self, snapshot: &Snapshot, poll_took: Duration) {
        let text = match render_snapshot(snapshot) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(error = %e, "could not render the snapshot; keeping the previous one");
                return;
            }
        };
        let rendered = match Rendered::new(text) {
            Ok(rendered) => rendered,
            Err(e) => {
                tracing::error!(error = %e, "could not compress the snapshot; keeping the previous one");
                return;
            }
        };
        *self.values.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(rendered);
        self.poll_duration.set(poll_took.as_secs_f64());
        self.ready.store(true, Ordering::Release);
    }

    /// Records a configuration load: `Some(unix_time)` for a success, `None` for a failure.
    pub fn config_loaded(&self, success_at: Option<f64>) {
        match success_at {
            Some(t) => {
                self.reload_ok.set(1.0);
                self.reload_time.set(t);
            }
            None => self.reload_ok.set(0.0),
        }
    }

    /// Records a completed full refresh (the first round for a new hour).
    pub fn refreshed(&self, took: Duration, calls: usize) {
        self.refresh_duration.set(took.as_secs_f64());
        self.refresh_calls.set(calls as f64);
    }

    /// True once a poll has completed.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The whole exposition: health series, then the cached value series.
    pub fn render(&self) -> Vec<u8> {
        self.exposition(false).concat()
    }

    /// The exposition in parts, to be sent one after the other: the health series, encoded
    /// now (a few dozen series, so counters and process figures are current), then the value
    /// series as rendered by the last poll (shared bytes, never re-encoded or re-compressed).
    /// With `gzip` the parts together are one gzip member: header and the health series as
    /// non-final deflate blocks, the cached deflate stream of the value series, and a trailer
    /// whose CRC-32 combines both.
    pub fn exposition(&self, gzip: bool) -> Vec<Bytes> {
        let values = Arc::clone(&self.values.read().unwrap_or_else(PoisonError::into_inner));
        let mut health = Vec::with_capacity(8 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut health) {
            tracing::error!(error = %e, "could not encode the health metrics");
        }
        if !gzip {
            return vec![Bytes::from(health), values.plain.clone()];
        }
        let mut head = GZIP_HEADER.to_vec();
        deflate_sync(&health, &mut head);
        let mut crc = Crc::new();
        crc.update(&health);
        crc.combine(&values.crc);
        let mut trailer = Vec::with_capacity(8);
        trailer.extend_from_slice(&crc.sum().to_le_bytes());
        trailer.extend_from_slice(&crc.amount().to_le_bytes());
        vec![Bytes::from(head), values.deflate.clone(), Bytes::from(trailer)]
    }
}

/// The value series of the last published snapshot: the text, its raw deflate stream (ending
/// in a final block) and the CRC-32 of the text, ready to be wrapped into gzip.
struct Rendered {
    plain: Bytes,
    deflate: Bytes,
    crc: Crc,
}

impl Default for Rendered {
    fn default() -> Self {
        // An empty text still needs a final deflate block (a final, empty fixed block).
        Rendered {
            plain: Bytes::new(),
            deflate: Bytes::from_static(&[3, 0]),
            crc: Crc::new(),
        }
    }
}

impl Rendered {
    fn new(text: String) -> std::io::Result<Self> {
        // Fast compression: the text is large and highly repetitive.
        let mut encoder = DeflateEncoder::new(Vec::with_capacity(text.len() / 8 + 64), Compression::fast());
        encoder.write_all(text.as_bytes())?;
        let deflate = encoder.finish()?;
        let mut crc = Crc::new();
        crc.update(text.as_bytes());
        Ok(Rendered {
            plain: Bytes::from(text),
            deflate: Bytes::from(deflate),
            crc,
        })
    }
}

/// A gzip member header: deflate, no name, no time, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Appends `data` to `out` as raw deflate blocks ending in a sync flush: byte-aligned and not
/// final, so that another deflate stream may follow.
fn deflate_sync(data: &[u8], out: &mut Vec<u8>) {
    let mut compress = Compress::new(Compression::fast(), false);
    let mut input = data;
    loop {
        out.reserve(input.len() + 1024);
        let before_in = compress.total_in();
        if let Err(e) = compress.compress_vec(input, out, FlushCompress::Sync) {
            tracing::error!(error = %e, "could not compress the health metrics");
            return;
        }
        let consumed = usize::try_from(compress.total_in() - before_in).unwrap_or(input.len());
        input = &input[consumed.min(input.len())..];
        // Done once all input is in and the flush did not fill `out` (so it is complete).
        if input.is_empty() && out.len() < out.capacity() {
            return;
        }
    }
}

const SHOP_LABELS: &[&str] = &["shop_id", "shop_name", "shop_code"];
const DEVICE_LABELS: &[&str] = &["mac", "device_name", "shop_id"];

/// Renders the value series of `snapshot` in the text exposition format. Absent values
/// (`None`) produce no sample.
pub fn render_snapshot(snapshot: &Snapshot) -> prometheus::Result<String> {
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, labels: &[&str]| -> prometheus::Result<GaugeVec> {
        let g = GaugeVec::new(Opts::new(name, help), labels)?;
        registry.register(Box::new(g.clone()))?;
        Ok(g)
    };
    const HOURLY: &str = "of the latest complete hour (hourly data, polled from the Opretail gateway)";
    let shop_walk_in = gauge(
        "opretail_shop_walk_in",
        &format!("Walk-ins (people entering the shop) {HOURLY}."),
        SHOP_LABELS,
    )?;
    let shop_passing = gauge(
        "opretail_shop_passing",
        &format!("Passers-by who did not enter the shop {HOURLY}."),
        SHOP_LABELS,
    )?;
    let shop_outside = gauge(
        "opretail_shop_outside",
        &format!("Outside traffic, walk-ins plus passers-by, {HOURLY}."),
        SHOP_LABELS,
    )?;
    let shop_rate = gauge(
        "opretail_shop_walk_in_rate",
        &format!("Walk-in rate as a ratio 0-1, walk-ins over outside traffic, {HOURLY}."),
        SHOP_LABELS,
    )?;
    let shop_walk_out = gauge(
        "opretail_shop_walk_out",
        &format!("Walk-outs (people leaving the shop) {HOURLY}."),
        SHOP_LABELS,
    )?;
    let shop_fitting = gauge(
        "opretail_shop_fitting_rate",
        &format!("Fitting-room rate as a ratio 0-1, fitting-room visitors over walk-ins, {HOURLY}."),
        SHOP_LABELS,
    )?;
    let shop_hour = gauge(
        "opretail_shop_hour_timestamp_seconds",
        "Unix time of the start of the hour the shop's values describe (hourly data, polled from the Opretail gateway).",
        SHOP_LABELS,
    )?;
    let dev_walk_in = gauge(
        "opretail_device_walk_in",
        &format!("Walk-ins counted by the device {HOURLY}."),
        DEVICE_LABELS,
    )?;
    let dev_walk_out = gauge(
        "opretail_device_walk_out",
        &format!("Walk-outs counted by the device {HOURLY}."),
        DEVICE_LABELS,
    )?;
    let dev_hour = gauge(
        "opretail_device_hour_timestamp_seconds",
        "Unix time of the start of the hour the device's values describe (hourly data, polled from the Opretail gateway).",
        DEVICE_LABELS,
    )?;
    let up = gauge(
        "opretail_target_up",
        "1 if the last poll of the configured target (S_ shop, O_ organisation or device mac) succeeded, else 0 (hourly data, polled).",
        &["target"],
    )?;
    let last_success = gauge(
        "opretail_target_last_success_timestamp_seconds",
        "Unix time of the last successful poll of the configured target (hourly data, polled).",
        &["target"],
    )?;

    let set = |g: &GaugeVec, labels: &[&str], v: Option<f64>| {
        if let Some(v) = v {
            g.with_label_values(labels).set(v);
        }
    };
    for s in snapshot.shops.values() {
        let l = [s.dep_id.as_str(), s.name.as_str(), s.code.as_str()];
        let v = &s.values;
        set(&shop_walk_in, &l, v.walk_in);
        set(&shop_passing, &l, v.passing);
        set(&shop_outside, &l, v.outside);
        set(&shop_rate, &l, v.walk_in_rate);
        set(&shop_walk_out, &l, v.walk_out);
        set(&shop_fitting, &l, v.fitting_rate);
        set(&shop_hour, &l, Some(s.hour_start as f64));
    }
    for d in snapshot.devices.values() {
        let l = [d.mac.as_str(), d.name.as_str(), d.shop_id.as_str()];
        set(&dev_walk_in, &l, d.values.walk_in);
        set(&dev_walk_out, &l, d.values.walk_out);
        set(&dev_hour, &l, Some(d.hour_start as f64));
    }
    for (target, status) in &snapshot.targets {
        set(&up, &[target], Some(if status.up { 1.0 } else { 0.0 }));
        set(&last_success, &[target], status.last_success);
    }
    TextEncoder::new().encode_to_string(&registry.gather())
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
        let text = gunzip(&store.exposition(true));
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
        };
        snapshot.shops = (0..2000).map(|i| (i.to_string(), sample(i))).collect();
        store.publish(&snapshot, Duration::from_millis(5));
        let plain = store.render();
        let gz = store.exposition(true);
        assert!(gz.iter().map(Bytes::len).sum::<usize>() * 5 < plain.len(), "compresses");
        let text = gunzip(&gz);
        let values = |t: &str| t.lines().filter(|l| l.starts_with("opretail_shop_walk_in{")).count();
        assert_eq!(values(&text), 2000);
        assert_eq!(values(&text), values(&String::from_utf8(plain).expect("utf-8")));
    }

    #[test]
    fn the_value_bytes_are_shared_not_re_rendered() {
        let store = MetricsStore::new("1", "r").expect("store");
        let mut snapshot = Snapshot::default();
        snapshot.targets.insert(
            "S_1".into(),
            crate::model::TargetStatus {
                up: true,
                last_success: Some(1.0),
            },
        );
        store.publish(&snapshot, Duration::ZERO);
        let a = store.exposition(false);
        let b = store.exposition(false);
        assert_eq!(a[1].as_ptr(), b[1].as_ptr(), "two scrapes serve the same cached buffer");
        let a = store.exposition(true);
        let b = store.exposition(true);
        assert_eq!(a[1].as_ptr(), b[1].as_ptr(), "and the same compressed one");
    }
}
