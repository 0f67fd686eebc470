//! Backfill: fetch past hourly data from the gateway and write it as OpenMetrics with
//! timestamps, for `promtool tsdb create-blocks-from openmetrics`, so that a new installation
//! starts with history.
//!
//! For every shop-local day in `[from, to]` (dates in the configuration's `timezone`) there is
//! one call per batch of shop ids (`max_ids_per_request` per call) and one per device, at most
//! `max_in_flight` at once, through the same [`Client`] the exporter polls with. Every
//! *complete* hour of the answers becomes one sample per value, timestamped with the start of
//! the hour (Unix seconds), under the live exporter's metric names and labels (see
//! [`crate::metrics::render_snapshot`]): `opretail_shop_*` by `shop_id`, `shop_name`,
//! `shop_code`, and `opretail_device_*` by `mac`, `device_name`, `shop_id`. The poll-health
//! families (`opretail_target_*`, `opretail_api_*`) describe a running exporter and are not
//! backfilled. Hours not yet complete are skipped, and so are values the gateway did not send.
//!
//! The output follows the OpenMetrics text format: one `TYPE` and `HELP` per family, families
//! and series never interleaved, the samples of a series in time order, `# EOF` last. That
//! needs every sample before the first line is written, so the fetched hours are held in
//! memory (roughly 100 bytes per shop hour); backfill years of thousands of shops in pieces.
//!
//! A failed call is reported with its gateway code and name (retrying transient failures is the
//! client's business, as for polling); the other calls go on and whatever they fetched is
//! still written.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use futures_util::stream::{self, StreamExt};

use crate::client::{ApiError, Client};
use crate::cmd::fetch::error_line;
use crate::config::Config;
use crate::hours::{hour_start, latest_complete_hour};
use crate::model::{DeviceRow, DeviceValues, ShopSeries, ShopValues};
use crate::model::{DeviceTarget, TargetId};

/// Which days to backfill.
#[derive(Debug, Clone)]
pub struct Options {
    /// First shop-local day.
    pub from: NaiveDate,
    /// Last shop-local day (clamped to today).
    pub to: NaiveDate,
}

impl Options {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Self {
        Self { from, to }
    }
}

/// Why a backfill could not start.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("--from {from} is after --to {to}")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("--from {from} is in the future (today is {today} in {tz})")]
    Future { from: NaiveDate, today: NaiveDate, tz: Tz },
    #[error("the configuration lists no shops and no devices")]
    NothingConfigured,
}

/// The calls of a backfill, before any is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub from: NaiveDate,
    /// `to` after clamping to today.
    pub to: NaiveDate,
    /// True if `to` was later than today and was clamped.
    pub clamped: bool,
    /// The latest complete hour (shop-local): later hours are skipped.
    pub last_complete: NaiveDateTime,
    pub calls: Vec<Call>,
}

/// One gateway call of a backfill: what and which day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub day: NaiveDate,
    pub target: CallTarget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallTarget {
    Shops(Vec<TargetId>),
    Device(DeviceTarget),
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.target {
            CallTarget::Shops(ids) => {
                let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
                write!(f, "{} {}", ids.join(","), self.day)
            }
            CallTarget::Device(d) => write!(f, "device {} {}", d.mac, self.day),
        }
    }
}

/// A call that failed for good.
#[derive(Debug)]
pub struct CallFailure {
    pub call: Call,
    pub error: ApiError,
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.call, error_line(&self.error))
    }
}

/// Works out the calls for `opts` at `now`.
pub fn plan(config: &Config, opts: &Options, now: DateTime<Utc>) -> Result<Plan, PlanError> {
    let tz = config.timezone;
    let today = now.with_timezone(&tz).date_naive();
    if opts.from > opts.to {
        return Err(PlanError::Reversed {
            from: opts.from,
            to: opts.to,
        });
    }
    if opts.from > today {
        return Err(PlanError::Future {
            from: opts.from,
            today,
            tz,
        });
    }
    if config.shops.is_empty() && config.devices.is_empty() {
        return Err(PlanError::NothingConfigured);
    }
    let to = opts.to.min(today);
    // Without a latest complete hour (a local hour that does not exist) nothing of today is.
    let last_complete = latest_complete_hour(now, tz)
        .map(|(h, _)| h)
        .unwrap_or_else(|| today.and_time(chrono::NaiveTime::MIN) - chrono::Duration::hours(1));
    let batch = config.gateway.max_ids_per_request.max(1);
    let ids: Vec<TargetId> = config.shops.iter().map(|s| s.id.clone()).collect();
    let mut calls = Vec::new();
    for day in opts.from.iter_days().take_while(|d| *d <= to) {
        for chunk in ids.chunks(batch) {
            calls.push(Call {
                day,
                target: CallTarget::Shops(chunk.to_vec()),
            });
        }
        for dev in &config.devices {
            calls.push(Call {
                day,
                target: CallTarget::Device(dev.clone()),
            });
        }
    }
    Ok(Plan {
        from: opts.from,
        to,
        clamped: to < opts.to,
        last_complete,
        calls,
    })
}

/// The labels of a shop series: `shop_id`, `shop_name`, `shop_code`.
type ShopKey = (String, String, String);
/// The labels of a device series: `mac`, `device_name`, `shop_id`.
type DeviceKey = (String, String, String);

/// Everything a backfill fetched, by series and hour start (Unix seconds).
#[derive(Debug, Default)]
pub struct Backfill {
    shops: BTreeMap<ShopKey, BTreeMap<i64, ShopValues>>,
    devices: BTreeMap<DeviceKey, BTreeMap<i64, DeviceValues>>,
    /// Calls made (failed ones included).
    pub calls: usize,
    /// Calls that failed for good, in the order they failed.
    pub failures: Vec<CallFailure>,
}

/// Progress of a running backfill, reported after every call.
#[derive(Debug)]
pub struct Progress<'a> {
    pub done: usize,
    pub total: usize,
    /// The call that just failed for good, if it did.
    pub failure: Option<&'a CallFailure>,
}

enum Fetched {
    Shops(Vec<ShopSeries>),
    Device(Vec<DeviceRow>),
}

/// Makes every call of `plan` with `client` (at most `max_in_flight` at once) and collects the
/// complete hours. `progress` is called after each call. Never fails as a whole: failed calls
/// are in [`Backfill::failures`].
pub async fn run(config: &Config, client: &Client, plan: &Plan, mut progress: impl FnMut(Progress<'_>)) -> Backfill {
    let tz = config.timezone;
    let total = plan.calls.len();
    let mut out = Backfill::default();
    let mut results = stream::iter(plan.calls.iter().cloned())
        .map(|call| async move {
            let result = fetch_one(client, &call).await;
            (call, result)
        })
        .buffer_unordered(config.gateway.max_in_flight.max(1));
    while let Some((call, result)) = results.next().await {
        out.calls += 1;
        let failed = match result {
            Ok(fetched) => {
                out.absorb(&call, fetched, plan.last_complete, tz);
                false
            }
            Err(error) => {
                out.failures.push(CallFailure { call, error });
                true
            }
        };
        progress(Progress {
            done: out.calls,
            total,
            failure: if failed { out.failures.last() } else { None },
        });
    }
    out
}

async fn fetch_one(client: &Client, call: &Call) -> Result<Fetched, ApiError> {
    match &call.target {
        CallTarget::Shops(ids) => client.shop_hours(ids, call.day, call.day).await.map(Fetched::Shops),
        CallTarget::Device(dev) => client
            .device_hours(&dev.mac, call.day, call.day)
            .await
            .map(Fetched::Device),
    }
}

impl Backfill {
    fn absorb(&mut self, call: &Call, fetched: Fetched, last_complete: NaiveDateTime, tz: Tz) {
        let wanted = |hour: NaiveDateTime| hour.date() == call.day && hour <= last_complete;
        match (fetched, &call.target) {
            (Fetched::Shops(series), _) => {
                for shop in series {
                    let key = (shop.dep_id, shop.name, shop.code);
                    for row in shop.rows.iter().filter(|r| wanted(r.hour)) {
                        if let Some(ts) = hour_start(row.hour, tz) {
                            self.shops
                                .entry(key.clone())
                                .or_default()
                                .entry(ts)
                                .or_insert(row.values);
                        }
                    }
                }
            }
            (Fetched::Device(rows), CallTarget::Device(dev)) => {
                let key = (
                    dev.mac.clone(),
                    dev.name.clone().unwrap_or_default(),
                    dev.shop_id.clone().unwrap_or_default(),
                );
                for row in rows.iter().filter(|r| wanted(r.hour)) {
                    if let Some(ts) = hour_start(row.hour, tz) {
                        self.devices
                            .entry(key.clone())
                            .or_default()
                            .entry(ts)
                            .or_insert(row.values);
                    }
                }
            }
            (Fetched::Device(_), CallTarget::Shops(_)) => {}
        }
    }

    /// Shop hours collected (one per shop and hour, whatever values it has).
    pub fn shop_hours(&self) -> usize {
        self.shops.values().map(BTreeMap::len).sum()
    }

    /// Device hours collected.
    pub fn device_hours(&self) -> usize {
        self.devices.values().map(BTreeMap::len).sum()
    }

    /// Writes the OpenMetrics text (ending in `# EOF`); returns the number of samples.
    /// Writes the OpenMetrics text to `output.tmp`, syncs it, and renames it to `output`;
    /// returns the number of samples.
    pub fn write_file(&self, output: &Path) -> io::Result<usize> {
        let mut tmp_name = output.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp_name);
        let written = std::fs::File::create(&tmp).and_then(|file| {
            let mut w = io::BufWriter::new(file);
            let samples = self.write_openmetrics(&mut w)?;
            w.flush()?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, output)?;
            Ok(samples)
        });
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    pub fn write_openmetrics(&self, w: &mut impl Write) -> io::Result<usize> {
        let mut samples = 0;
        for family in SHOP_FAMILIES {
            samples += write_family(w, family.0, family.1, SHOP_LABELS, &self.shops, |ts, v| {
                (family.2)(ts, v)
            })?;
        }
        for family in DEVICE_FAMILIES {
            samples += write_family(w, family.0, family.1, DEVICE_LABELS, &self.devices, |ts, v| {
                (family.2)(ts, v)
            })?;
        }
        w.write_all(b"# EOF\n")?;
        Ok(samples)
    }
}

/// The content type of what [`Backfill::write_openmetrics`] writes.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const SHOP_LABELS: [&str; 3] = ["shop_id", "shop_name", "shop_code"];
const DEVICE_LABELS: [&str; 3] = ["mac", "device_name", "shop_id"];

type Family<V> = (&'static str, &'static str, fn(i64, &V) -> Option<f64>);

const AT: &str = "in the hour starting at the sample's timestamp (hourly data, backfilled from the Opretail gateway)";

/// Name, HELP and value of every shop family, in the live exporter's order.
const SHOP_FAMILIES: [Family<ShopValues>; 7] = [
    ("opretail_shop_walk_in", "Walk-ins (people entering the shop) {AT}.", |_, v| v.walk_in),
    ("opretail_shop_passing", "Passers-by who did not enter the shop {AT}.", |_, v| v.passing),
    ("opretail_shop_outside", "Outside traffic, walk-ins plus passers-by, {AT}.", |_, v| v.outside),
    (
        "opretail_shop_walk_in_rate",
        "Walk-in rate as a ratio 0-1, walk-ins over outside traffic, {AT}.",
        |_, v| v.walk_in_rate,
    ),
    ("opretail_shop_walk_out", "Walk-outs (people leaving the shop) {AT}.", |_, v| v.walk_out),
    (
        "opretail_shop_fitting_rate",
        "Fitting-room rate as a ratio 0-1, fitting-room visitors over walk-ins, {AT}.",
        |_, v| v.fitting_rate,
    ),
    (
        "opretail_shop_hour_timestamp_seconds",
        "Unix time of the start of the hour the shop's values describe (hourly data, backfilled from the Opretail gateway).",
        |ts, _| Some(ts as f64),
    ),
];

/// Name, HELP and value of every device family, in the live exporter's order.
const DEVICE_FAMILIES: [Family<DeviceValues>; 3] = [
    ("opretail_device_walk_in", "Walk-ins counted by the device {AT}.", |_, v| v.walk_in),
    ("opretail_device_walk_out", "Walk-outs counted by the device {AT}.", |_, v| v.walk_out),
    (
        "opretail_device_hour_timestamp_seconds",
        "Unix time of the start of the hour the device's values describe (hourly data, backfilled from the Opretail gateway).",
        |ts, _| Some(ts as f64),
    ),
];

/// The `backfill` command: plans `from..=to`, fetches with progress on stderr (a bar on a
/// terminal, a line at every tenth otherwise), and writes `output` next to itself first and
/// renamed, so a reader never sees half a file. Exit code 0; 1 if a call failed (what the
/// others fetched is still written) or the file could not be written; 2 for a bad range.
pub async fn command(
    config: Config,
    client: Client,
    from: NaiveDate,
    to: NaiveDate,
    output: &Path,
    now: DateTime<Utc>,
) -> ExitCode {
    use std::io::IsTerminal;

    let plan = match plan(&config, &Options::new(from, to), now) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if plan.clamped {
        eprintln!("note: --to {to} is after today; backfilling until {}", plan.to);
    }
    let total = plan.calls.len();
    eprintln!(
        "backfill {}..={} ({}): {} calls, at most {} at once",
        plan.from, plan.to, config.timezone, total, config.gateway.max_in_flight
    );
    // A bar only on a terminal; otherwise plain lines at every tenth, which logs keep readable.
    let tty = std::io::stderr().is_terminal();
    let bar = if tty {
        let bar = indicatif::ProgressBar::new(total as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{wide_bar}] {pos}/{len} calls, {msg} failed, eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("0");
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut failed = 0usize;
    let mut reported_tenth = 0usize;
    let result = run(&config, &client, &plan, |p| {
        if let Some(f) = p.failure {
            failed += 1;
            if tty {
                bar.println(format!("failed: {f}"));
                bar.set_message(failed.to_string());
            } else {
                eprintln!("failed: {f}");
            }
        }
        if tty {
            bar.set_position(p.done as u64);
        } else {
            let tenth = p.done * 10 / p.total.max(1);
            if tenth > reported_tenth || p.done == p.total {
                reported_tenth = tenth;
                eprintln!(
                    "progress: {}/{} calls ({}%), {failed} failed",
                    p.done,
                    p.total,
                    p.done * 100 / p.total.max(1)
                );
            }
        }
    })
    .await;
    bar.finish_and_clear();

    let samples = match result.write_file(output) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", output.display());
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "wrote {}: {samples} samples ({} shop hours, {} device hours) from {} calls, {} failed",
        output.display(),
        result.shop_hours(),
        result.device_hours(),
        result.calls,
        result.failures.len()
    );
    if result.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("error: {} of {} calls failed:", result.failures.len(), result.calls);
        for f in &result.failures {
            eprintln!("  {f}");
        }
        ExitCode::FAILURE
    }
}

/// The metric names backfill writes, in order (for tests that compare them with the live ones).
pub fn family_names() -> Vec<&'static str> {
    SHOP_FAMILIES
        .iter()
        .map(|f| f.0)
        .chain(DEVICE_FAMILIES.iter().map(|f| f.0))
        .collect()
}

/// One family: `TYPE`, `HELP`, then every series with its samples in time order. A family
/// without samples is left out.
fn write_family<V>(
    w: &mut impl Write,
    name: &str,
    help: &str,
    label_names: [&str; 3],
    series: &BTreeMap<(String, String, String), BTreeMap<i64, V>>,
    value: impl Fn(i64, &V) -> Option<f64>,
) -> io::Result<usize> {
    let mut written = 0;
    for ((a, b, c), hours) in series {
        let mut labels: Option<String> = None;
        for (ts, v) in hours {
            let Some(x) = value(*ts, v).filter(|x| x.is_finite()) else {
                continue;
            };
            if written == 0 {
                writeln!(w, "# TYPE {name} gauge")?;
                writeln!(w, "# HELP {name} {}", escape(&help.replace("{AT}", AT)))?;
            }
            let labels = labels.get_or_insert_with(|| {
                format!(
                    "{}=\"{}\",{}=\"{}\",{}=\"{}\"",
                    label_names[0],
                    escape(a),
                    label_names[1],
                    escape(b),
                    label_names[2],
                    escape(c)
                )
            });
            writeln!(w, "{name}{{{labels}}} {x} {ts}")?;
            written += 1;
        }
    }
    Ok(written)
}

/// OpenMetrics escaping of label values and HELP text: backslash, double quote, line feed.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    crate::metrics::push_escaped(&mut out, s);
    out
}
