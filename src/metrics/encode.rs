//! The value series as Prometheus text, written by hand from the schema's families rather than
//! through thousands of `prometheus` gauges (each series' labels are escaped once, not once per
//! family), and held by a test byte for byte to what the crate's `TextEncoder` writes for the
//! same gauges. This is also the one place that escapes label values and HELP
//! texts; backfill's OpenMetrics writer uses it too.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{DaySample, Snapshot, TargetId};
use crate::schema::{
    self, AnyFamily, BaselineStat, Context, DeviceDayValues, DeviceValues, Family, ShopBaseline, ShopDayValues,
    ShopMeta, ShopValues, TargetStatus, BASELINE_LABELS, DEVICE_LABELS, SHOP_INFO_LABELS, SHOP_LABELS, TARGET_LABELS,
};

/// How the live exposition ends the HELP texts of the value families.
pub(crate) const LIVE: Context = Context {
    hour: "of the latest complete hour",
    source: "(hourly data, polled from the Opretail gateway)",
};

/// Renders the value series of `snapshot` in the text exposition format, as the `prometheus`
/// crate's `TextEncoder` would for the same gauges: families in name order, `HELP` then
/// `TYPE`, labels sorted by name, series sorted by their label values. A family without a
/// single value is left out.
///
/// The text is written into one allocation of exactly its length. (The live exporter does not
/// hold it: see [`render_chunks`].)
pub fn render_snapshot(snapshot: &Snapshot) -> String {
    render_accounts(&[(None, snapshot)])
}

/// Renders the value series of several accounts' snapshots as one exposition: each family's
/// `HELP` and `TYPE` once, then the series of every account in the order given (by name, as
/// `TextEncoder` sorts them: `account` is the first label), those of a named account with
/// `account="<name>"`; an unnamed account (`None`) adds no label.
pub fn render_accounts(accounts: &[(Option<&str>, &Snapshot)]) -> String {
    let subjects: Vec<Subjects<'_>> = accounts
        .iter()
        .map(|(account, snapshot)| Subjects::new(snapshot, *account))
        .collect();
    let mut out = String::with_capacity(len(&subjects));
    write(&subjects, &mut out, &mut |_| {});
    out
}

/// The same text as [`render_accounts`], handed to `sink` in pieces of about `chunk` bytes
/// (whole lines), never whole: at 10,000 shops and 20,000 devices with their day figures the
/// text is about 27 MiB, and the exporter keeps only its compressed form.
pub(crate) fn render_chunks(accounts: &[(Option<&str>, &Snapshot)], chunk: usize, mut sink: impl FnMut(&str)) {
    let subjects: Vec<Subjects<'_>> = accounts
        .iter()
        .map(|(account, snapshot)| Subjects::new(snapshot, *account))
        .collect();
    let mut out = String::with_capacity(chunk + 4096);
    write(&subjects, &mut out, &mut |out: &mut String| {
        if out.len() >= chunk {
            sink(out);
            out.clear();
        }
    });
    if !out.is_empty() {
        sink(&out);
    }
}

/// The series of a snapshot, ready to write: shops, devices and targets, each with its label
/// blocks written once; a shop's or device's day figures, a shop's opening hour and its
/// baseline weeks carry the labels of its hourly sample, and a shop's baseline statistics those
/// labels and `stat`. A shop's info series has label blocks of its own (with the static labels).
struct Subjects<'a> {
    shops: Series<'a, ShopValues>,
    baseline_stats: Series<'a, BaselineStat>,
    baseline_weeks: Vec<Row<'a, ShopBaseline>>,
    devices: Series<'a, DeviceValues>,
    targets: Series<'a, TargetStatus>,
    shop_days: Vec<Row<'a, ShopDayValues>>,
    device_days: Vec<Row<'a, DeviceDayValues>>,
    shop_meta: Vec<Row<'a, ShopMeta>>,
    shop_info: Series<'a, ShopMeta>,
}

impl<'a> Subjects<'a> {
    /// The series of `snapshot`, each labelled `account="<name>"` too for a named `account`.
    fn new(snapshot: &'a Snapshot, account: Option<&'a str>) -> Self {
        let shops = Series::new(&SHOP_LABELS, account, snapshot.shops.iter(), |(key, s)| {
            (
                key.as_str(),
                [s.dep_id.as_str(), &s.name, &s.code],
                &s.values,
                Some(s.hour_start),
            )
        });
        let devices = Series::new(&DEVICE_LABELS, account, snapshot.devices.iter(), |(key, d)| {
            (
                key.as_str(),
                [d.mac.as_str(), &d.name, &d.shop_id],
                &d.values,
                Some(d.hour_start),
            )
        });
        let targets = Series::new(&TARGET_LABELS, account, snapshot.targets.iter(), |(target, status)| {
            (target.as_str(), [target.as_str()], status, None)
        });
        let shop_days = shops.days(&snapshot.shop_days);
        let device_days = devices.days(&snapshot.device_days);
        let shop_meta = shops.beside(|key| snapshot.shops.get(key).map(|s| (&s.meta, None)));
        let shop_info = shop_info(snapshot, account);
        // Only for shops published: a baseline vanishes with its shop.
        let stats = snapshot.shop_baselines.iter().filter_map(|(key, b)| {
            let s = snapshot.shops.get(key)?;
            Some(b.stats.iter().map(move |stat| (key, s, stat)))
        });
        let baseline_stats = Series::new(&BASELINE_LABELS, account, stats.flatten(), |(key, s, stat)| {
            (
                key.as_str(),
                [s.dep_id.as_str(), &s.name, &s.code, stat.stat],
                stat,
                None,
            )
        });
        let baseline_weeks = shops.beside(|key| snapshot.shop_baselines.get(key).map(|b| (b, None)));
        Subjects {
            shops,
            baseline_stats,
            baseline_weeks,
            devices,
            targets,
            shop_days,
            device_days,
            shop_meta,
            shop_info,
        }
    }
}

/// The parts of one family over every account: each account's label blocks and rows.
macro_rules! parts {
    ($subjects:expr, $labels:ident . $series:ident, $rows:ident) => {
        $subjects.iter().map(|s| (s.$labels.$series.as_str(), &s.$rows[..]))
    };
    ($subjects:expr, $series:ident) => {
        $subjects
            .iter()
            .map(|s| (s.$series.labels.as_str(), &s.$series.rows[..]))
    };
}

/// The length of the text of `subjects`, to the byte.
fn len(subjects: &[Subjects<'_>]) -> usize {
    schema::all()
        .into_iter()
        .map(|family| match family {
            AnyFamily::Shop(f) => family_len(f, parts!(subjects, shops)),
            AnyFamily::ShopDay(f) => family_len(f, parts!(subjects, shops.labels, shop_days)),
            AnyFamily::ShopMeta(f) => family_len(f, parts!(subjects, shops.labels, shop_meta)),
            AnyFamily::ShopInfo(f) => family_len(f, parts!(subjects, shop_info)),
            AnyFamily::ShopBaseline(f) => family_len(f, parts!(subjects, baseline_stats)),
            AnyFamily::ShopBaselineWeeks(f) => family_len(f, parts!(subjects, shops.labels, baseline_weeks)),
            AnyFamily::Device(f) => family_len(f, parts!(subjects, devices)),
            AnyFamily::DeviceDay(f) => family_len(f, parts!(subjects, devices.labels, device_days)),
            AnyFamily::Target(f) => family_len(f, parts!(subjects, targets)),
        })
        .sum()
}

/// Writes the text of `subjects` into `out`, calling `line_done` after each line.
fn write(subjects: &[Subjects<'_>], out: &mut String, line_done: &mut dyn FnMut(&mut String)) {
    for family in schema::all() {
        match family {
            AnyFamily::Shop(f) => write_family(out, f, parts!(subjects, shops), line_done),
            AnyFamily::ShopDay(f) => write_family(out, f, parts!(subjects, shops.labels, shop_days), line_done),
            AnyFamily::ShopMeta(f) => write_family(out, f, parts!(subjects, shops.labels, shop_meta), line_done),
            AnyFamily::ShopInfo(f) => write_family(out, f, parts!(subjects, shop_info), line_done),
            AnyFamily::ShopBaseline(f) => write_family(out, f, parts!(subjects, baseline_stats), line_done),
            AnyFamily::ShopBaselineWeeks(f) => {
                write_family(out, f, parts!(subjects, shops.labels, baseline_weeks), line_done)
            }
            AnyFamily::Device(f) => write_family(out, f, parts!(subjects, devices), line_done),
            AnyFamily::DeviceDay(f) => write_family(out, f, parts!(subjects, devices.labels, device_days), line_done),
            AnyFamily::Target(f) => write_family(out, f, parts!(subjects, targets), line_done),
        }
    }
}

/// The series of one subject (shops, devices or targets), in exposition order, each with its
/// label block written once for all its families (and its day figures' families).
struct Series<'a, S> {
    /// Every series' label block, `{name="value",…}` with the labels sorted by name, one after
    /// the other (one allocation, not one per series).
    labels: String,
    rows: Vec<Row<'a, S>>,
}

struct Row<'a, S> {
    /// The sample's key in the snapshot.
    key: &'a str,
    /// Where its label block is in [`Series::labels`].
    labels: std::ops::Range<usize>,
    values: &'a S,
    hour_start: Option<i64>,
}

impl<'a, S> Series<'a, S> {
    /// `read` gives a sample's key, its label values in the order of `names` (the schema's),
    /// what its families read, and the start of its hour.
    fn new<T, const N: usize>(
        names: &[&str; N],
        account: Option<&'a str>,
        samples: impl Iterator<Item = T>,
        read: impl Fn(T) -> (&'a str, [&'a str; N], &'a S, Option<i64>),
    ) -> Self {
        let mut order: [usize; N] = std::array::from_fn(|i| i);
        order.sort_by_key(|&i| names[i]);
        let sorted: Vec<(&'a str, [&'a str; N], &'a S, Option<i64>)> = samples
            .map(|sample| {
                let (key, values, of, hour_start) = read(sample);
                (key, order.map(|i| values[i]), of, hour_start)
            })
            .collect();
        let names = order.map(|i| names[i]);
        Self::sorted(&names, account, sorted)
    }

    /// The series of `samples` (key, label values in the order of `names`, sorted by name,
    /// what the families read, the start of the hour), sorted by their label values; with an
    /// `account`, `account="<name>"` leads every label block (it sorts before every name of
    /// the schema).
    fn sorted<L: AsRef<str>, V: AsRef<[L]> + Ord>(
        names: &[&str],
        account: Option<&'a str>,
        mut samples: Vec<(&'a str, V, &'a S, Option<i64>)>,
    ) -> Self {
        // Stable: samples with equal labels keep the snapshot's order.
        samples.sort_by(|a, b| a.1.cmp(&b.1));
        // `{`, `}`, and per label `name="value"` and a comma; escaping may add a little.
        let fixed: usize =
            2 + names.iter().map(|n| n.len() + 4).sum::<usize>() + account.map_or(0, |a| ACCOUNT.len() + a.len() + 4);
        let values: usize = samples
            .iter()
            .flat_map(|(_, v, _, _)| v.as_ref().iter())
            .map(|v| v.as_ref().len())
            .sum();
        let mut labels = String::with_capacity(fixed * samples.len() + values);
        let rows = samples
            .into_iter()
            .map(|(key, values, of, hour_start)| {
                let start = labels.len();
                let pairs = names.iter().copied().zip(values.as_ref().iter().map(AsRef::as_ref));
                push_labels(&mut labels, account.map(|a| (ACCOUNT, a)).into_iter().chain(pairs));
                Row {
                    key,
                    labels: start..labels.len(),
                    values: of,
                    hour_start,
                }
            })
            .collect();
        Series { labels, rows }
    }

    /// The rows of the day figures in `days` (by the same keys), in this series' order and
    /// with its label blocks; keys without a row here are left out.
    fn days<V>(&self, days: &'a BTreeMap<String, DaySample<V>>) -> Vec<Row<'a, V>> {
        self.beside(|key| days.get(key).map(|day| (&day.values, Some(day.day_start))))
    }

    /// Rows of other values of the same subjects, found by key by `of` (with the start of
    /// their hour or day), in this series' order and with its label blocks; keys `of` does not
    /// find are left out.
    fn beside<V>(&self, of: impl Fn(&str) -> Option<(&'a V, Option<i64>)>) -> Vec<Row<'a, V>> {
        self.rows
            .iter()
            .filter_map(|row| {
                let (values, hour_start) = of(row.key)?;
                Some(Row {
                    key: row.key,
                    labels: row.labels.clone(),
                    values,
                    hour_start,
                })
            })
            .collect()
    }
}

/// The series of `opretail_shop_info`: one per shop, labelled by [`SHOP_INFO_LABELS`] and
/// every static label of any shop (sorted by name; empty where a shop has none), so that every
/// series of the family has the same label names; and by `account` for a named account (a
/// static label of that name is left out: the account wins).
fn shop_info<'a>(snapshot: &'a Snapshot, account: Option<&'a str>) -> Series<'a, ShopMeta> {
    let statics: BTreeSet<&str> = snapshot
        .shops
        .values()
        .flat_map(|s| s.meta.labels.iter().map(|(name, _)| name.as_str()))
        .filter(|name| !SHOP_INFO_LABELS.contains(name))
        .filter(|name| account.is_none() || *name != ACCOUNT)
        .collect();
    let mut names: Vec<&str> = SHOP_INFO_LABELS
        .iter()
        .copied()
        .chain(statics)
        .chain(account.map(|_| ACCOUNT))
        .collect();
    names.sort_unstable();
    let samples = snapshot
        .shops
        .iter()
        .map(|(key, s)| {
            let values: Vec<Cow<'_, str>> = names
                .iter()
                .map(|name| match *name {
                    "shop_id" => Cow::Borrowed(s.dep_id.as_str()),
                    "shop_name" => Cow::Borrowed(s.name.as_str()),
                    "shop_code" => Cow::Borrowed(s.code.as_str()),
                    "org_id" => s
                        .meta
                        .org_id
                        .map_or(Cow::Borrowed(""), |n| Cow::Owned(TargetId::Org(n).to_string())),
                    ACCOUNT if account.is_some() => Cow::Borrowed(account.unwrap_or_default()),
                    other => Cow::Borrowed(
                        s.meta
                            .labels
                            .iter()
                            .find(|(name, _)| name == other)
                            .map_or("", |(_, value)| value.as_str()),
                    ),
                })
                .collect();
            (key.as_str(), values, &s.meta, None)
        })
        .collect();
    Series::sorted(&names, None, samples)
}

/// The label naming a series' account.
const ACCOUNT: &str = "account";

/// Exactly what [`write_family`] writes for `family`.
fn family_len<'r, 'a: 'r, S: 'a>(
    family: &Family<S>,
    parts: impl Iterator<Item = (&'r str, &'r [Row<'a, S>])>,
) -> usize {
    let mut scratch = String::with_capacity(32);
    let lines: usize = parts
        .flat_map(|(_, rows)| rows.iter())
        .filter_map(|row| family.value(row.values, row.hour_start).map(|v| (row, v)))
        .map(|(row, v)| {
            scratch.clear();
            push_value(&mut scratch, v);
            family.name.len() + row.labels.len() + scratch.len() + 2
        })
        .sum();
    if lines == 0 {
        return 0;
    }
    let mut header = String::new();
    write_header(&mut header, family);
    lines + header.len()
}

/// `# HELP name help` and `# TYPE name kind`.
fn write_header<S>(out: &mut String, family: &Family<S>) {
    out.push_str("# HELP ");
    out.push_str(family.name);
    out.push(' ');
    escape_help(out, &family.help(&LIVE));
    out.push_str("\n# TYPE ");
    out.push_str(family.name);
    out.push(' ');
    out.push_str(family.kind.as_str());
    out.push('\n');
}

/// Writes `# HELP`, `# TYPE` and one line per series with a value, the series of each part
/// (an account's label blocks and rows) one after the other; nothing if none has one.
fn write_family<'r, 'a: 'r, S: 'a>(
    out: &mut String,
    family: &Family<S>,
    parts: impl Iterator<Item = (&'r str, &'r [Row<'a, S>])>,
    line_done: &mut dyn FnMut(&mut String),
) {
    let mut header = false;
    for (labels, row) in parts.flat_map(|(labels, rows)| rows.iter().map(move |row| (labels, row))) {
        let Some(value) = family.value(row.values, row.hour_start) else {
            continue;
        };
        if !header {
            write_header(out, family);
            header = true;
        }
        out.push_str(family.name);
        out.push_str(labels.get(row.labels.clone()).unwrap_or_default());
        out.push(' ');
        push_value(out, value);
        out.push('\n');
        line_done(out);
    }
}

/// Appends a label block, `{name="value",…}`, the pairs in the order given and the values
/// escaped.
pub(crate) fn push_labels<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    out.push('{');
    for (i, (name, value)) in pairs.into_iter().enumerate() {
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

/// Appends a HELP text escaped as the Prometheus text format asks: backslash and newline
/// (a double quote stays as it is).
fn escape_help(out: &mut String, help: &str) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Appends a sample value: the shortest decimal that reads back as `v`, or `NaN`, `+Inf`,
/// `-Inf`.
pub(crate) fn push_value(out: &mut String, v: f64) {
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
    use crate::model::{
        DaySample, DeviceDayValues, DeviceSample, DeviceValues, ShopDayValues, ShopMeta, ShopSample, ShopValues,
        TargetStatus,
    };
    use prometheus::{GaugeVec, Opts, Registry, TextEncoder};
    use std::collections::HashMap;
    use std::sync::Arc;

    /// The labels of a shop's hourly series, for the `prometheus` crate.
    fn shop_labels(s: &ShopSample) -> HashMap<&'static str, &str> {
        HashMap::from([
            ("shop_id", s.dep_id.as_str()),
            ("shop_name", s.name.as_str()),
            ("shop_code", s.code.as_str()),
        ])
    }

    /// Registers `family` as a `prometheus` gauge with a value for every series that has one.
    fn gauge<'a, S: 'a>(
        registry: &Registry,
        family: &Family<S>,
        series: impl Iterator<Item = (HashMap<&'a str, &'a str>, &'a S, Option<i64>)>,
    ) {
        let g = GaugeVec::new(Opts::new(family.name, family.help(&LIVE)), family.labels).unwrap();
        registry.register(Box::new(g.clone())).unwrap();
        for (labels, values, hour_start) in series {
            if let Some(x) = family.value(values, hour_start) {
                g.with(&labels).set(x);
            }
        }
    }

    /// Registers `opretail_shop_info` (`family`, under `opts`) as a `prometheus` gauge: the
    /// family's labels and every static label name of any shop, the same for every series.
    fn shop_info_gauge(registry: &Registry, family: &Family<ShopMeta>, opts: Opts, snapshot: &Snapshot) {
        let statics = ["city", "manager", "region"];
        let names: Vec<&str> = family.labels.iter().chain(statics.iter()).copied().collect();
        let g = GaugeVec::new(opts, &names).unwrap();
        registry.register(Box::new(g.clone())).unwrap();
        for s in snapshot.shops.values() {
            let org = s.meta.org_id.map(|n| format!("O_{n}")).unwrap_or_default();
            let mut labels = shop_labels(s);
            labels.insert("org_id", &org);
            for name in statics {
                let value = s.meta.labels.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v);
                labels.insert(name, value);
            }
            g.with(&labels).set(family.value(&s.meta, None).unwrap());
        }
    }

    /// Shop `i`'s metadata: open or not, an organisation or none, and some of three static
    /// labels (tricky values included).
    fn meta(i: usize) -> ShopMeta {
        let all = [("city", "上海"), ("manager", "Li \"Wei\"\n"), ("region", "east")];
        let labels: Vec<(String, String)> = all
            .iter()
            .enumerate()
            .filter(|(k, _)| (i + k) % 3 != 0)
            .map(|(_, (n, v))| (n.to_string(), v.to_string()))
            .collect();
        ShopMeta {
            open: i % 2 == 0,
            org_id: (i % 4 != 0).then_some(1000 + (i % 3) as u64),
            labels: labels.into(),
        }
    }

    /// The hand-written encoder writes exactly what the `prometheus` crate's encoder writes for
    /// the same gauges, tricky label values and numbers included. The gauges are made from the
    /// schema, their label values named one by one.
    #[test]
    fn render_matches_the_prometheus_crate() {
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
        let shop_values = schema::SHOP_FAMILIES.iter().filter(|f| f.is_value()).count();
        let mut snapshot = Snapshot::default();
        for i in 0..40usize {
            let n = |k: usize| Some(numbers[(i * 7 + k) % numbers.len()]).filter(|_| (i + k) % 5 != 0);
            let mut values = ShopValues::default();
            for (k, f) in schema::SHOP_FAMILIES.iter().filter(|f| f.is_value()).enumerate() {
                assert!(values.set(f.key, n(k)));
            }
            let s = ShopSample {
                dep_id: format!("{}", 9600 + (i * 37) % 50),
                name: names[i % names.len()].to_string(),
                code: names[(i / 3) % names.len()].to_string(),
                hour_start: 1_714_539_600 + i as i64,
                values,
                meta: meta(i),
            };
            Arc::make_mut(&mut snapshot.shops).insert(format!("{i}"), s);
            let mut values = DeviceValues::default();
            for (k, f) in schema::DEVICE_FAMILIES.iter().filter(|f| f.is_value()).enumerate() {
                assert!(values.set(f.key, n(shop_values + k)));
            }
            let d = DeviceSample {
                mac: format!("d47c44906f{:02x}", (i * 13) % 64),
                name: names[(i + 2) % names.len()].to_string(),
                shop_id: format!("{}", i % 4),
                hour_start: 1_714_539_600,
                values,
            };
            Arc::make_mut(&mut snapshot.devices).insert(format!("{i}"), d);
            let mut day = ShopDayValues::default();
            for (k, f) in schema::SHOP_DAY_FAMILIES.iter().filter(|f| f.is_value()).enumerate() {
                assert!(day.set(f.key, n(k + 3)));
            }
            let sample = DaySample {
                day_start: 1_714_492_800 + i as i64,
                values: day,
            };
            // Some shops without day figures, and day figures of no shop (not published).
            let key = if i % 6 == 0 {
                format!("gone {i}")
            } else {
                format!("{i}")
            };
            if i % 5 != 1 {
                Arc::make_mut(&mut snapshot.shop_days).insert(key, sample);
            }
            let mut day = DeviceDayValues::default();
            for (k, f) in schema::DEVICE_DAY_FAMILIES.iter().filter(|f| f.is_value()).enumerate() {
                assert!(day.set(f.key, n(k + 5)));
            }
            let sample = DaySample {
                day_start: 1_714_492_800,
                values: day,
            };
            let key = if i % 7 == 0 {
                format!("gone {i}")
            } else {
                format!("{i}")
            };
            Arc::make_mut(&mut snapshot.device_days).insert(key, sample);
            // Some shops without a baseline, and baselines of no shop (not published).
            let key = if i % 8 == 0 {
                format!("gone {i}")
            } else {
                format!("{i}")
            };
            if i % 3 != 1 {
                let baseline = crate::model::ShopBaseline::new(n(2).unwrap_or(7.5), n(4).unwrap_or(0.25), 2 + i % 7);
                snapshot.shop_baselines.insert(key, baseline);
            }
            Arc::make_mut(&mut snapshot.targets).insert(
                format!("S_{}", i * 11 % 17),
                TargetStatus {
                    up: i % 2 == 0,
                    last_success: n(1),
                },
            );
        }

        let registry = Registry::new();
        for family in schema::all() {
            match family {
                AnyFamily::Shop(f) => gauge(
                    &registry,
                    f,
                    snapshot
                        .shops
                        .values()
                        .map(|s| (shop_labels(s), &s.values, Some(s.hour_start))),
                ),
                AnyFamily::ShopMeta(f) => gauge(
                    &registry,
                    f,
                    snapshot.shops.values().map(|s| (shop_labels(s), &s.meta, None)),
                ),
                AnyFamily::ShopInfo(f) => shop_info_gauge(&registry, f, Opts::new(f.name, f.help(&LIVE)), &snapshot),
                AnyFamily::ShopDay(f) => gauge(
                    &registry,
                    f,
                    snapshot.shop_days.iter().filter_map(|(key, day)| {
                        let s = snapshot.shops.get(key)?;
                        Some((shop_labels(s), &day.values, Some(day.day_start)))
                    }),
                ),
                AnyFamily::ShopBaseline(f) => gauge(
                    &registry,
                    f,
                    snapshot
                        .shop_baselines
                        .iter()
                        .filter_map(|(key, b)| {
                            let s = snapshot.shops.get(key)?;
                            Some(b.stats.iter().map(move |stat| {
                                let mut labels = shop_labels(s);
                                labels.insert("stat", stat.stat);
                                (labels, stat, None)
                            }))
                        })
                        .flatten(),
                ),
                AnyFamily::ShopBaselineWeeks(f) => gauge(
                    &registry,
                    f,
                    snapshot.shop_baselines.iter().filter_map(|(key, b)| {
                        let s = snapshot.shops.get(key)?;
                        Some((shop_labels(s), b, None))
                    }),
                ),
                AnyFamily::DeviceDay(f) => gauge(
                    &registry,
                    f,
                    snapshot.device_days.iter().filter_map(|(key, day)| {
                        let d = snapshot.devices.get(key)?;
                        let labels = [
                            ("mac", d.mac.as_str()),
                            ("device_name", &d.name),
                            ("shop_id", &d.shop_id),
                        ];
                        Some((HashMap::from(labels), &day.values, Some(day.day_start)))
                    }),
                ),
                AnyFamily::Device(f) => gauge(
                    &registry,
                    f,
                    snapshot.devices.values().map(|d| {
                        let labels = [
                            ("mac", d.mac.as_str()),
                            ("device_name", &d.name),
                            ("shop_id", &d.shop_id),
                        ];
                        (HashMap::from(labels), &d.values, Some(d.hour_start))
                    }),
                ),
                AnyFamily::Target(f) => gauge(
                    &registry,
                    f,
                    snapshot
                        .targets
                        .iter()
                        .map(|(t, status)| (HashMap::from([("target", t.as_str())]), status, None)),
                ),
            }
        }
        let expected = TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        let rendered = render_snapshot(&snapshot);
        assert_eq!(rendered, expected);
        assert!(rendered.contains("_today{"), "day figures rendered");
        assert!(rendered.contains("opretail_shop_open{"), "opening hours rendered");
        assert!(rendered.contains(",org_id=\"O_1001\","), "organisations rendered");
        assert!(
            rendered.contains("manager=\"\","),
            "a static label a shop lacks is empty"
        );
        // Sized to the byte: one allocation, nothing to trim.
        assert_eq!(rendered.capacity(), rendered.len());
    }

    /// Two named accounts (and the same ids in both) render as the `prometheus` crate renders
    /// the same gauges registered once per account with the constant label `account`: one
    /// HELP and TYPE per family, `account` first, the accounts' series in name order.
    #[test]
    fn render_accounts_matches_the_prometheus_crate() {
        let snapshot = |scale: f64| {
            let mut snapshot = Snapshot::default();
            for i in 0..6usize {
                let mut values = ShopValues::default();
                assert!(values.set("walk_in", Some(scale * i as f64)));
                Arc::make_mut(&mut snapshot.shops).insert(
                    format!("{i}"),
                    ShopSample {
                        dep_id: format!("{}", 9600 + i),
                        name: format!("Shop \"{i}\""),
                        code: String::new(),
                        hour_start: 1_714_539_600,
                        values,
                        meta: meta(i),
                    },
                );
                let mut values = DeviceValues::default();
                assert!(values.set("walk_in", Some(scale + i as f64)));
                Arc::make_mut(&mut snapshot.devices).insert(
                    format!("{i}"),
                    DeviceSample {
                        mac: format!("d47c44906f{i:02x}"),
                        name: String::new(),
                        shop_id: format!("{}", 9600 + i),
                        hour_start: 1_714_539_600,
                        values,
                    },
                );
                Arc::make_mut(&mut snapshot.targets).insert(
                    format!("S_{}", 9600 + i),
                    TargetStatus {
                        up: i % 2 == 0,
                        last_success: Some(scale),
                    },
                );
            }
            snapshot
        };
        let (a, b) = (snapshot(1.0), snapshot(3.0));
        let registry = Registry::new();
        for (account, snapshot) in [("b-2", &b), ("a.1", &a)] {
            let opts = |name: &str, help: String| Opts::new(name, help).const_label("account", account);
            for family in schema::all() {
                match family {
                    AnyFamily::Shop(f) => {
                        let g = GaugeVec::new(opts(f.name, f.help(&LIVE)), f.labels).unwrap();
                        registry.register(Box::new(g.clone())).unwrap();
                        for s in snapshot.shops.values() {
                            if let Some(x) = f.value(&s.values, Some(s.hour_start)) {
                                g.with(&shop_labels(s)).set(x);
                            }
                        }
                    }
                    AnyFamily::ShopMeta(f) => {
                        let g = GaugeVec::new(opts(f.name, f.help(&LIVE)), f.labels).unwrap();
                        registry.register(Box::new(g.clone())).unwrap();
                        for s in snapshot.shops.values() {
                            g.with(&shop_labels(s)).set(f.value(&s.meta, None).unwrap());
                        }
                    }
                    AnyFamily::ShopInfo(f) => shop_info_gauge(&registry, f, opts(f.name, f.help(&LIVE)), snapshot),
                    AnyFamily::Device(f) => {
                        let g = GaugeVec::new(opts(f.name, f.help(&LIVE)), f.labels).unwrap();
                        registry.register(Box::new(g.clone())).unwrap();
                        for d in snapshot.devices.values() {
                            if let Some(x) = f.value(&d.values, Some(d.hour_start)) {
                                let labels = [
                                    ("mac", d.mac.as_str()),
                                    ("device_name", &d.name),
                                    ("shop_id", &d.shop_id),
                                ];
                                g.with(&HashMap::from(labels)).set(x);
                            }
                        }
                    }
                    AnyFamily::Target(f) => {
                        let g = GaugeVec::new(opts(f.name, f.help(&LIVE)), f.labels).unwrap();
                        registry.register(Box::new(g.clone())).unwrap();
                        for (t, status) in snapshot.targets.iter() {
                            if let Some(x) = f.value(status, None) {
                                g.with(&HashMap::from([("target", t.as_str())])).set(x);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        let expected = TextEncoder::new().encode_to_string(&registry.gather()).unwrap();
        let rendered = render_accounts(&[(Some("a.1"), &a), (Some("b-2"), &b)]);
        assert_eq!(rendered, expected);
        assert!(rendered.contains("opretail_shop_walk_in{account=\"b-2\",shop_code"));
        assert_eq!(rendered.matches("# HELP opretail_target_up ").count(), 1);
        assert_eq!(rendered.capacity(), rendered.len());
        // The unnamed account alone is the single-account form.
        assert_eq!(render_accounts(&[(None, &a)]), render_snapshot(&a));
    }
}
