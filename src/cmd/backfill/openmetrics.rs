//! What a backfill collected and how it is written: every complete hour by series, then the
//! OpenMetrics text with timestamps (families and series never interleaved, samples in time
//! order, `# EOF` last) that `promtool tsdb create-blocks-from openmetrics` reads.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::CallFailure;
use crate::client::{Answer, Call, Target};
use crate::hours::hour_start;
use crate::model::{DeviceValues, ShopValues};

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

impl Backfill {
    /// Keeps the complete hours of `call`'s day from its answer (the first answer for an hour
    /// wins).
    pub(super) fn absorb(&mut self, call: &Call, answer: Answer, last_complete: NaiveDateTime, tz: Tz) {
        let wanted = |hour: NaiveDateTime| (call.from..=call.to).contains(&hour.date()) && hour <= last_complete;
        match (answer, &call.target) {
            (Answer::Shops(series), _) => {
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
            (Answer::Device(rows), Target::Device(dev)) => {
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
            (Answer::Device(_), Target::Shops(_)) => {}
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
