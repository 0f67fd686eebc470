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

use crate::model::{DeviceSample, ShopSample, Snapshot, TargetStatus};

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
        let text = render_snapshot(snapshot);
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

const HOURLY: &str = "of the latest complete hour (hourly data, polled from the Opretail gateway)";

/// One value family: name, help, and how to read its value from a sample.
struct Family<T> {
    name: &'static str,
    help: String,
    value: fn(&T) -> Option<f64>,
}

fn family<T>(name: &'static str, help: String, value: fn(&T) -> Option<f64>) -> Family<T> {
    Family { name, help, value }
}

/// Renders the value series of `snapshot` in the text exposition format. Absent values
/// (`None`) produce no sample; a family without samples is left out.
///
/// Written directly rather than through a `prometheus::Registry`: at 150,000 series a registry
/// of gauges costs hundreds of megabytes for a moment; this costs the text. The output is what
/// the `prometheus` crate's encoder writes (families by name; series by their label values in
/// label-name order; labels in name order), which the golden test pins byte for byte.
pub fn render_snapshot(snapshot: &Snapshot) -> String {
    let shop_families: [Family<&ShopSample>; 7] = [
        family("opretail_shop_fitting_rate", format!("Fitting-room rate as a ratio 0-1, fitting-room visitors over walk-ins, {HOURLY}."), |s| s.values.fitting_rate),
        family(
            "opretail_shop_hour_timestamp_seconds",
            "Unix time of the start of the hour the shop's values describe (hourly data, polled from the Opretail gateway).".into(),
            |s| Some(s.hour_start as f64),
        ),
        family("opretail_shop_outside", format!("Outside traffic, walk-ins plus passers-by, {HOURLY}."), |s| s.values.outside),
        family("opretail_shop_passing", format!("Passers-by who did not enter the shop {HOURLY}."), |s| s.values.passing),
        family("opretail_shop_walk_in", format!("Walk-ins (people entering the shop) {HOURLY}."), |s| s.values.walk_in),
        family("opretail_shop_walk_in_rate", format!("Walk-in rate as a ratio 0-1, walk-ins over outside traffic, {HOURLY}."), |s| s.values.walk_in_rate),
        family("opretail_shop_walk_out", format!("Walk-outs (people leaving the shop) {HOURLY}."), |s| s.values.walk_out),
    ];
    let device_families: [Family<&DeviceSample>; 3] = [
        family(
            "opretail_device_hour_timestamp_seconds",
            "Unix time of the start of the hour the device's values describe (hourly data, polled from the Opretail gateway).".into(),
            |d| Some(d.hour_start as f64),
        ),
        family("opretail_device_walk_in", format!("Walk-ins counted by the device {HOURLY}."), |d| d.values.walk_in),
        family("opretail_device_walk_out", format!("Walk-outs counted by the device {HOURLY}."), |d| d.values.walk_out),
    ];
    let target_families: [Family<(&String, &TargetStatus)>; 2] = [
        family(
            "opretail_target_last_success_timestamp_seconds",
            "Unix time of the last successful poll of the configured target (hourly data, polled).".into(),
            |(_, t)| t.last_success,
        ),
        family(
            "opretail_target_up",
            "1 if the last poll of the configured target (S_ shop, O_ organisation or device mac) succeeded, else 0 (hourly data, polled).".into(),
            |(_, t)| Some(if t.up { 1.0 } else { 0.0 }),
        ),
    ];

    // Series order: by label values, labels taken in name order.
    let mut shops: Vec<&ShopSample> = snapshot.shops.values().collect();
    shops.sort_by(|a, b| (&a.code, &a.dep_id, &a.name).cmp(&(&b.code, &b.dep_id, &b.name)));
    let mut devices: Vec<&DeviceSample> = snapshot.devices.values().collect();
    devices.sort_by(|a, b| (&a.name, &a.mac, &a.shop_id).cmp(&(&b.name, &b.mac, &b.shop_id)));
    let targets: Vec<(&String, &TargetStatus)> = snapshot.targets.iter().collect();

    let mut out = String::with_capacity(64 + shops.len() * 7 * 110 + devices.len() * 3 * 110 + targets.len() * 2 * 70);
    // Families in name order: device < shop < target.
    for f in &device_families {
        write_family(&mut out, f, &devices, |out, d| {
            labels(
                out,
                &[("device_name", &d.name), ("mac", &d.mac), ("shop_id", &d.shop_id)],
            )
        });
    }
    for f in &shop_families {
        write_family(&mut out, f, &shops, |out, s| {
            labels(
                out,
                &[("shop_code", &s.code), ("shop_id", &s.dep_id), ("shop_name", &s.name)],
            )
        });
    }
    for f in &target_families {
        write_family(&mut out, f, &targets, |out, (target, _)| {
            labels(out, &[("target", target)])
        });
    }
    out
}

/// Writes `# HELP`, `# TYPE` and one line per sample with a value; nothing if none has one.
fn write_family<T>(out: &mut String, f: &Family<T>, samples: &[T], write_labels: impl Fn(&mut String, &T)) {
    let mut header = false;
    for sample in samples {
        let Some(value) = (f.value)(sample) else { continue };
        if !header {
            out.push_str("# HELP ");
            out.push_str(f.name);
            out.push(' ');
            escape_help(out, &f.help);
            out.push_str("\n# TYPE ");
            out.push_str(f.name);
            out.push_str(" gauge\n");
            header = true;
        }
        out.push_str(f.name);
        write_labels(out, sample);
        out.push(' ');
        write_value(out, value);
        out.push('\n');
    }
}

fn labels(out: &mut String, pairs: &[(&str, &str)]) {
    out.push('{');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        push_escaped(out, value);
        out.push('"');
    }
    out.push('}');
}

/// Appends `value` escaped as a label value (also what OpenMetrics asks of HELP text):
/// backslash, double quote and newline.
pub(crate) fn push_escaped(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(out: &mut String, v: f64) {
    use std::fmt::Write as _;
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
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

    /// The hand-written encoder writes exactly what the `prometheus` crate's encoder writes for
    /// the same gauges, tricky label values and numbers included.
    #[test]
    fn render_matches_the_prometheus_crate() {
        use crate::model::{DeviceSample, DeviceValues, TargetStatus};
        let names = [
            "",
            "Plain",
            "万店掌 旗舰店",
            "quote \" back \\ slash",
            "new\nline",
            "Z",
            "a",
        ];
        let numbers = [0.0, 1.0, 12.0, 0.0816, 1_714_539_600.0, 1e21, 3.5e-7, 123_456.789];
        let mut snapshot = Snapshot::default();
        for i in 0..40usize {
            let n = |k: usize| Some(numbers[(i * 7 + k) % numbers.len()]).filter(|_| (i + k) % 5 != 0);
            let s = ShopSample {
                dep_id: format!("{}", 9600 + (i * 37) % 50),
                name: names[i % names.len()].to_string(),
                code: names[(i / 3) % names.len()].to_string(),
                hour_start: 1_714_539_600 + i as i64,
                values: ShopValues {
                    walk_in: n(0),
                    passing: n(1),
                    outside: n(2),
                    walk_in_rate: n(3),
                    walk_out: n(4),
                    fitting_rate: n(5),
                },
            };
            snapshot.shops.insert(format!("{i}"), s);
            let d = DeviceSample {
                mac: format!("d47c44906f{:02x}", (i * 13) % 64),
                name: names[(i + 2) % names.len()].to_string(),
                shop_id: format!("{}", i % 4),
                hour_start: 1_714_539_600,
                values: DeviceValues {
                    walk_in: n(6),
                    walk_out: n(7),
                },
            };
            snapshot.devices.insert(format!("{i}"), d);
            snapshot.targets.insert(
                format!("S_{}", i * 11 % 17),
                TargetStatus {
                    up: i % 2 == 0,
                    last_success: n(1),
                },
            );
        }

        let registry = Registry::new();
        let gauge = |name: &str, help: String, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).unwrap();
            registry.register(Box::new(g.clone())).unwrap();
            g
        };
        let shop = ["shop_id", "shop_name", "shop_code"];
        let dev = ["mac", "device_name", "shop_id"];
        let hour_help = |what: &str| {
            format!("Unix time of the start of the hour the {what}'s values describe (hourly data, polled from the Opretail gateway).")
        };
        let shop_gauges = [
            (
                gauge(
                    "opretail_shop_walk_in",
                    format!("Walk-ins (people entering the shop) {HOURLY}."),
                    &shop,
                ),
                0,
            ),
            (
                gauge(
                    "opretail_shop_passing",
                    format!("Passers-by who did not enter the shop {HOURLY}."),
                    &shop,
                ),
                1,
            ),
            (
                gauge(
                    "opretail_shop_outside",
                    format!("Outside traffic, walk-ins plus passers-by, {HOURLY}."),
                    &shop,
                ),
                2,
            ),
            (
                gauge(
                    "opretail_shop_walk_in_rate",
                    format!("Walk-in rate as a ratio 0-1, walk-ins over outside traffic, {HOURLY}."),
                    &shop,
                ),
                3,
            ),
            (
                gauge(
                    "opretail_shop_walk_out",
                    format!("Walk-outs (people leaving the shop) {HOURLY}."),
                    &shop,
                ),
                4,
            ),
            (
                gauge(
                    "opretail_shop_fitting_rate",
                    format!("Fitting-room rate as a ratio 0-1, fitting-room visitors over walk-ins, {HOURLY}."),
                    &shop,
                ),
                5,
            ),
            (
                gauge("opretail_shop_hour_timestamp_seconds", hour_help("shop"), &shop),
                6,
            ),
        ];
        for s in snapshot.shops.values() {
            let v = [
                s.values.walk_in,
                s.values.passing,
                s.values.outside,
                s.values.walk_in_rate,
                s.values.walk_out,
                s.values.fitting_rate,
                Some(s.hour_start as f64),
            ];
            for (g, k) in &shop_gauges {
                if let Some(x) = v[*k] {
                    g.with_label_values(&[s.dep_id.as_str(), &s.name, &s.code]).set(x);
                }
            }
        }
        let dev_gauges = [
            (
                gauge(
                    "opretail_device_walk_in",
                    format!("Walk-ins counted by the device {HOURLY}."),
                    &dev,
                ),
                0,
            ),
            (
                gauge(
                    "opretail_device_walk_out",
                    format!("Walk-outs counted by the device {HOURLY}."),
                    &dev,
                ),
                1,
            ),
            (
                gauge("opretail_device_hour_timestamp_seconds", hour_help("device"), &dev),
                2,
            ),
        ];
        for d in snapshot.devices.values() {
            let v = [d.values.walk_in, d.values.walk_out, Some(d.hour_start as f64)];
            for (g, k) in &dev_gauges {
                if let Some(x) = v[*k] {
                    g.with_label_values(&[d.mac.as_str(), &d.name, &d.shop_id]).set(x);
                }
            }
        }
        let up = gauge("opretail_target_up", "1 if the last poll of the configured target (S_ shop, O_ organisation or device mac) succeeded, else 0 (hourly data, polled).".into(), &["target"]);
        let last = gauge(
            "opretail_target_last_success_timestamp_seconds",
            "Unix time of the last successful poll of the configured target (hourly data, polled).".into(),
            &["target"],
        );
        for (t, s) in &snapshot.targets {
            up.with_label_values(&[t.as_str()]).set(if s.up { 1.0 } else { 0.0 });
            if let Some(x) = s.last_success {
                last.with_label_values(&[t.as_str()]).set(x);
            }
        }
        let expected = TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        assert_eq!(render_snapshot(&snapshot), expected);
    }
}
