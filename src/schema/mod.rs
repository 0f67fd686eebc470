//! The metric schema: every value family the exporter publishes, declared once. A family's
//! name, HELP text, type, label names, unit and the way it reads its value live in
//! `families.rs`, and so do the structs holding the values ([`ShopValues`], [`DeviceValues`],
//! [`TargetStatus`], and [`ShopMeta`], what the configuration says of a shop: its opening hour
//! and its metadata). The shop and device structs are generated from the same declaration as
//! their families, so a value cannot exist without its family or the other way round.
//!
//! Everything that shows values reads this table: the live encoder (`metrics`), backfill's
//! OpenMetrics writer, `fetch`'s table and JSON, the tests comparing them, and the README's
//! metric table (a test here checks it). Adding a value metric is one line in `families.rs`,
//! its decoding in `client::decode`, and the simulator sending it.
//!
//! The schema sits below the model and depends on nothing else in the crate; the model
//! re-exports the value structs as part of its vocabulary.

#[macro_use]
mod declare;
mod families;

pub use families::{
    BaselineStat, DeviceDayValues, DeviceValues, ShopBaseline, ShopDayValues, ShopMeta, ShopValues, StaticLabels,
    TargetStatus,
};
pub(crate) use families::{
    BASELINE_LABELS, DEVICE_DAY_FAMILIES, DEVICE_FAMILIES, DEVICE_LABELS, SHOP_BASELINE_FAMILIES,
    SHOP_BASELINE_WEEKS_FAMILIES, SHOP_DAY_FAMILIES, SHOP_FAMILIES, SHOP_INFO_FAMILIES, SHOP_INFO_LABELS, SHOP_LABELS,
    SHOP_META_FAMILIES, TARGET_FAMILIES, TARGET_LABELS,
};

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
}

impl Kind {
    /// As written after `# TYPE <name> `.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
        }
    }
}

/// What a family's value measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// People counted.
    Count,
    /// A rate as a ratio 0–1 (`fetch`'s table shows it as a percentage).
    Ratio,
    /// Unix time or a duration, in seconds.
    Seconds,
    /// 1 or 0.
    Bool,
}

/// How a family's HELP text ends. The fixed part is declared with the family; what it is
/// followed by depends on who writes it (see [`Context`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A value of an hour: the context's hour, then its source (`Walk-ins … of the latest
    /// complete hour (hourly data, polled …).`).
    HourAndSource,
    /// About the hour itself: the context's source only.
    Source,
    /// The HELP text is complete as declared (families only the live exporter shows).
    Complete,
}

/// The endings the writer of a family appends to its HELP text: the live exporter says the
/// values are of the latest complete hour and polled, backfill that they are of the hour at
/// the sample's timestamp and backfilled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    /// Which hour a value belongs to: `of the latest complete hour`.
    pub(crate) hour: &'static str,
    /// Where the data comes from, in parentheses.
    pub(crate) source: &'static str,
}

/// How a family reads its value from what it describes.
#[derive(Clone, Copy)]
pub(crate) enum Read<S> {
    /// A value of the hour (or of the target); `None` when the gateway did not send it.
    Value(fn(&S) -> Option<f64>),
    /// The start of the hour the values describe, in Unix seconds.
    HourStart,
}

/// One metric family. `S` is what one series' sample is read from: [`ShopValues`],
/// [`DeviceValues`] or [`TargetStatus`].
pub(crate) struct Family<S: 'static> {
    pub(crate) name: &'static str,
    /// The short name: the field of `S`, `fetch`'s column and JSON key.
    pub(crate) key: &'static str,
    /// The HELP text, without the ending [`Ending`] says.
    help: &'static str,
    ending: Ending,
    pub(crate) kind: Kind,
    /// Label names, in the order backfill writes them (the live exposition sorts them).
    pub(crate) labels: &'static [&'static str],
    pub(crate) unit: Unit,
    read: Read<S>,
}

impl<S> Family<S> {
    /// The HELP text as the writer of `context` shows it.
    pub(crate) fn help(&self, context: &Context) -> String {
        match self.ending {
            Ending::HourAndSource => format!("{} {} {}.", self.help, context.hour, context.source),
            Ending::Source => format!("{} {}.", self.help, context.source),
            Ending::Complete => self.help.to_string(),
        }
    }

    /// The value of one series: read from `of`, or the start of the hour `of` describes
    /// (`hour_start`, Unix seconds, when there is one).
    pub(crate) fn value(&self, of: &S, hour_start: Option<i64>) -> Option<f64> {
        match self.read {
            Read::Value(read) => read(of),
            Read::HourStart => hour_start.map(|t| t as f64),
        }
    }

    /// True for a value the gateway sends (what `fetch` shows as a column), false for the
    /// hour's timestamp.
    pub(crate) fn is_value(&self) -> bool {
        matches!(self.read, Read::Value(_))
    }
}

/// A family of any of the three subjects, for what treats them all alike.
#[derive(Clone, Copy)]
pub(crate) enum AnyFamily {
    Shop(&'static Family<ShopValues>),
    ShopDay(&'static Family<ShopDayValues>),
    /// A shop's opening hour, with the labels of its hourly series.
    ShopMeta(&'static Family<ShopMeta>),
    /// A shop's metadata, with the configured static labels besides [`SHOP_INFO_LABELS`].
    ShopInfo(&'static Family<ShopMeta>),
    /// A shop's baseline statistics (one series per statistic), and its weeks.
    ShopBaseline(&'static Family<BaselineStat>),
    ShopBaselineWeeks(&'static Family<ShopBaseline>),
    Device(&'static Family<DeviceValues>),
    DeviceDay(&'static Family<DeviceDayValues>),
    Target(&'static Family<TargetStatus>),
}

impl AnyFamily {
    pub(crate) fn name(self) -> &'static str {
        match self {
            AnyFamily::Shop(f) => f.name,
            AnyFamily::ShopDay(f) => f.name,
            AnyFamily::ShopMeta(f) | AnyFamily::ShopInfo(f) => f.name,
            AnyFamily::ShopBaseline(f) => f.name,
            AnyFamily::ShopBaselineWeeks(f) => f.name,
            AnyFamily::Device(f) => f.name,
            AnyFamily::DeviceDay(f) => f.name,
            AnyFamily::Target(f) => f.name,
        }
    }

    #[cfg(test)]
    pub(crate) fn labels(self) -> &'static [&'static str] {
        match self {
            AnyFamily::Shop(f) => f.labels,
            AnyFamily::ShopDay(f) => f.labels,
            AnyFamily::ShopMeta(f) | AnyFamily::ShopInfo(f) => f.labels,
            AnyFamily::ShopBaseline(f) => f.labels,
            AnyFamily::ShopBaselineWeeks(f) => f.labels,
            AnyFamily::Device(f) => f.labels,
            AnyFamily::DeviceDay(f) => f.labels,
            AnyFamily::Target(f) => f.labels,
        }
    }
}

/// Every family, in name order (the order of the live exposition).
pub(crate) fn all() -> Vec<AnyFamily> {
    let mut all: Vec<AnyFamily> = SHOP_FAMILIES
        .iter()
        .map(AnyFamily::Shop)
        .chain(SHOP_DAY_FAMILIES.iter().map(AnyFamily::ShopDay))
        .chain(SHOP_META_FAMILIES.iter().map(AnyFamily::ShopMeta))
        .chain(SHOP_INFO_FAMILIES.iter().map(AnyFamily::ShopInfo))
        .chain(SHOP_BASELINE_FAMILIES.iter().map(AnyFamily::ShopBaseline))
        .chain(SHOP_BASELINE_WEEKS_FAMILIES.iter().map(AnyFamily::ShopBaselineWeeks))
        .chain(DEVICE_FAMILIES.iter().map(AnyFamily::Device))
        .chain(DEVICE_DAY_FAMILIES.iter().map(AnyFamily::DeviceDay))
        .chain(TARGET_FAMILIES.iter().map(AnyFamily::Target))
        .collect();
    all.sort_by_key(|f| f.name());
    all
}

/// The name of every family, in name order.
pub fn names() -> Vec<&'static str> {
    all().into_iter().map(AnyFamily::name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn names_are_unique_and_prefixed_by_their_subject() {
        let names = names();
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for f in all() {
            let prefix = match f {
                AnyFamily::Shop(_)
                | AnyFamily::ShopDay(_)
                | AnyFamily::ShopMeta(_)
                | AnyFamily::ShopInfo(_)
                | AnyFamily::ShopBaseline(_)
                | AnyFamily::ShopBaselineWeeks(_) => "opretail_shop_",
                AnyFamily::Device(_) | AnyFamily::DeviceDay(_) => "opretail_device_",
                AnyFamily::Target(_) => "opretail_target_",
            };
            assert!(f.name().starts_with(prefix), "{}", f.name());
        }
    }

    #[test]
    fn values_set_by_key_read_back_through_their_family() {
        let mut v = ShopValues::default();
        for (i, f) in SHOP_FAMILIES.iter().filter(|f| f.is_value()).enumerate() {
            assert!(v.set(f.key, Some(i as f64)), "{}", f.key);
        }
        assert!(!v.set("no_such_value", Some(1.0)));
        for (i, f) in SHOP_FAMILIES.iter().filter(|f| f.is_value()).enumerate() {
            assert_eq!(f.value(&v, None), Some(i as f64), "{}", f.name);
        }
        let hour = SHOP_FAMILIES.iter().find(|f| !f.is_value()).expect("an hour family");
        assert_eq!(hour.value(&v, Some(3600)), Some(3600.0));
        assert_eq!(hour.value(&v, None), None);
        let every = DeviceValues::every(2.0);
        assert!(DEVICE_FAMILIES
            .iter()
            .all(|f| !f.is_value() || f.value(&every, None) == Some(2.0)));
    }

    /// The README's `## Metrics` table: `| metric | labels | meaning |`, a labels cell of
    /// `same` repeating the row above. Returns the label names (backticked lower-case words)
    /// of every `opretail_shop_`, `opretail_device_` and `opretail_target_` row.
    fn readme_value_rows() -> BTreeMap<String, BTreeSet<String>> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let section = readme
            .split("\n## Metrics\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a ## Metrics section");
        let mut rows = BTreeMap::new();
        let mut previous = BTreeSet::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            let labels: BTreeSet<String> = if cells[2] == "same" {
                previous.clone()
            } else {
                cells[2]
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                    .map(String::from)
                    .collect()
            };
            previous = labels.clone();
            // Counters (`…_total`) are the store's own series, not value families.
            if ["opretail_shop_", "opretail_device_", "opretail_target_"]
                .iter()
                .any(|p| name.starts_with(p))
                && !name.ends_with("_total")
            {
                rows.insert(name, labels);
            }
        }
        rows
    }

    #[test]
    fn the_readme_documents_every_family_with_its_labels() {
        let rows = readme_value_rows();
        for f in all() {
            let labels = rows
                .get(f.name())
                .unwrap_or_else(|| panic!("README.md's metric table has no row for {}", f.name()));
            let want: BTreeSet<String> = f.labels().iter().map(|l| l.to_string()).collect();
            assert_eq!(labels, &want, "the README's labels of {}", f.name());
        }
        let names: BTreeSet<&str> = names().into_iter().collect();
        for documented in rows.keys() {
            assert!(
                names.contains(documented.as_str()),
                "README.md documents {documented}, which the schema does not declare"
            );
        }
    }
}
