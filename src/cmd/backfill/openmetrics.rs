//! What a backfill collected and how it is written: every complete hour by series, then the
//! OpenMetrics text with timestamps (families and series never interleaved, samples in time
//! order, `# EOF` last) that `promtool tsdb create-blocks-from openmetrics` reads. The
//! families, their HELP texts and labels are the schema's ([`crate::schema`]), in its order, and
//! the escaping is the live exporter's.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use chrono::NaiveDateTime;
use chrono_tz::Tz;

use super::CallFailure;
use crate::client::{Answer, Call, Target};
use crate::hours::hour_start;
use crate::metrics::{push_escaped, push_labels, push_value};
use crate::model::{DeviceValues, ShopValues};
use crate::schema::{Context, Family, DEVICE_FAMILIES, DEVICE_LABELS, SHOP_FAMILIES, SHOP_LABELS};

/// The label values of a shop series, in the order of [`SHOP_LABELS`]: `depId`, name, code.
type ShopKey = [String; SHOP_LABELS.len()];
/// The label values of a device series, in the order of [`DEVICE_LABELS`]: mac, name, shop.
type DeviceKey = [String; DEVICE_LABELS.len()];

/// Adds the hours of one series to `series` under `key`, by the Unix time of their start in
/// `tz` (an hour that does not exist there is dropped); an hour already there stays.
fn keep_first<K: Ord, V>(
    series: &mut BTreeMap<K, BTreeMap<i64, V>>,
    key: K,
    hours: impl Iterator<Item = (NaiveDateTime, V)>,
    tz: Tz,
) {
    let mut hours = hours
        .filter_map(|(hour, values)| Some((hour_start(hour, tz)?, values)))
        .peekable();
    if hours.peek().is_none() {
        return;
    }
    let kept = series.entry(key).or_default();
    for (ts, values) in hours {
        kept.entry(ts).or_insert(values);
    }
}

/// Everything a backfill fetched, by series and hour start (Unix seconds).
#[derive(Debug, Default)]
pub struct Backfill {
    /// The `account` label of every series written: the account's name in a file of several
    /// accounts, as on `/metrics`; `None` (no label) in the single-account form.
    pub account: Option<String>,
    shops: BTreeMap<ShopKey, BTreeMap<i64, ShopValues>>,
    devices: BTreeMap<DeviceKey, BTreeMap<i64, DeviceValues>>,
    /// Calls made (failed ones included).
    pub calls: usize,
    /// Calls that failed for good, in the order they failed.
    pub failures: Vec<CallFailure>,
}

impl Backfill {
    /// Keeps the complete hours of `call`'s days from its answer (the first answer for an hour
    /// wins).
    pub(super) fn absorb(&mut self, call: &Call, answer: Answer, last_complete: NaiveDateTime, tz: Tz) {
        let wanted = |hour: NaiveDateTime| (call.from..=call.to).contains(&hour.date()) && hour <= last_complete;
        match (answer, &call.target) {
            (Answer::Shops(series), _) => {
                for shop in series {
                    let rows = shop.rows.iter().map(|r| (r.hour, r.values));
                    let key = [shop.dep_id, shop.name, shop.code];
                    keep_first(&mut self.shops, key, rows.filter(|(h, _)| wanted(*h)), tz);
                }
            }
            (Answer::Device(rows), Target::Device(dev)) => {
                let key = [
                    dev.mac.clone(),
                    dev.name.clone().unwrap_or_default(),
                    dev.shop_id.clone().unwrap_or_default(),
                ];
                let rows = rows.iter().map(|r| (r.hour, r.values));
                keep_first(&mut self.devices, key, rows.filter(|(h, _)| wanted(*h)), tz);
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
    pub(crate) fn write_file(&self, output: &Path) -> io::Result<usize> {
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

    /// Writes the OpenMetrics text, the schema's shop families then its device families;
    /// returns the number of samples.
    pub fn write_openmetrics(&self, w: &mut impl Write) -> io::Result<usize> {
        let mut samples = 0;
        for family in SHOP_FAMILIES {
            samples += write_family(w, family, self.account.as_deref(), &self.shops)?;
        }
        for family in DEVICE_FAMILIES {
            samples += write_family(w, family, self.account.as_deref(), &self.devices)?;
        }
        w.write_all(b"# EOF\n")?;
        Ok(samples)
    }
}

/// How backfill ends the HELP texts of the value families.
const BACKFILL: Context = Context {
    hour: "in the hour starting at the sample's timestamp",
    source: "(hourly data, backfilled from the Opretail gateway)",
};

/// The metric names backfill writes, in order (for tests that compare them with the live ones).
pub fn family_names() -> Vec<&'static str> {
    SHOP_FAMILIES
        .iter()
        .map(|f| f.name)
        .chain(DEVICE_FAMILIES.iter().map(|f| f.name))
        .collect()
}

/// One family: `TYPE`, `HELP`, then every series with its samples in time order, each series
/// with the `account` label first when there is one. A family without samples is left out.
fn write_family<S, const N: usize>(
    w: &mut impl Write,
    family: &Family<S>,
    account: Option<&str>,
    series: &BTreeMap<[String; N], BTreeMap<i64, S>>,
) -> io::Result<usize> {
    let mut written = 0;
    let mut line = String::new();
    for (key, hours) in series {
        let mut labels: Option<String> = None;
        for (ts, values) in hours {
            let Some(x) = family.value(values, Some(*ts)).filter(|x| x.is_finite()) else {
                continue;
            };
            if written == 0 {
                line.clear();
                line.push_str("# TYPE ");
                line.push_str(family.name);
                line.push(' ');
                line.push_str(family.kind.as_str());
                line.push_str("\n# HELP ");
                line.push_str(family.name);
                line.push(' ');
                push_escaped(&mut line, &family.help(&BACKFILL));
                line.push('\n');
                w.write_all(line.as_bytes())?;
            }
            let labels = labels.get_or_insert_with(|| {
                let mut labels = String::new();
                push_labels(
                    &mut labels,
                    account
                        .map(|a| ("account", a))
                        .into_iter()
                        .chain(family.labels.iter().copied().zip(key.iter().map(String::as_str))),
                );
                labels
            });
            line.clear();
            line.push_str(family.name);
            line.push_str(labels);
            line.push(' ');
            push_value(&mut line, x);
            let _ = writeln!(line, " {ts}");
            w.write_all(line.as_bytes())?;
            written += 1;
        }
    }
    Ok(written)
}
