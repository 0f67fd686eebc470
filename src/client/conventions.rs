//! What the gateway's answers are checked for, because the vendor's pages leave it open: the
//! row fields the exporter reads (present, missing, extra), whether a row's `time` is the
//! start or the end of its hour, whether rates are percentages or fractions, and how far this
//! host's clock is from the gateway's `stat.systime`.
//!
//! The checks are plain functions over the answer's JSON, shared by `doctor` (which reports
//! them once) and by [`Conventions`], the client's running record: it looks at every answer
//! before it is decoded, decides the `auto` conventions from the evidence, publishes the
//! result (`opretail_gateway_fields_missing`, `opretail_gateway_clock_skew_seconds`,
//! `opretail_gateway_convention`) and warns once per finding in the log.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::Value;

use super::{METHOD_SHOPS, TIME_FORMAT};
use crate::metrics::ApiMetrics;
use crate::model::{Convention, Named, RateScale, RowTime};

/// The row fields the exporter reads from the shops method. `outSidePassengerFlow` is also
/// accepted as `outsidePassengerFlow` (the daily spelling).
pub const SHOP_ROW_FIELDS: [&str; 7] = [
    "time",
    "passengerFlow",
    "passPassengerFlow",
    "outSidePassengerFlow",
    "inShopRate",
    "outFlowCount",
    "dressingRate",
];
/// The shop fields the exporter reads from the shops method.
pub const SHOP_FIELDS: [&str; 4] = ["depId", "name", "shopId", "dataList"];
/// The row fields the exporter reads from the device method.
pub const DEVICE_ROW_FIELDS: [&str; 3] = ["time", "passengerFlow", "outFlowCount"];
/// Fields live answers are known to carry that the exporter does not read (not "extra").
const KNOWN_UNREAD: [&str; 3] = ["duplicatedFlow", "inCountHavingPassDevice", "outsidePassengerFlow"];
/// A clock further than this from the gateway's is warned about.
pub const SKEW_WARNING_SECONDS: f64 = 60.0;

/// The rows of an answer's `data`: every shop's `dataList` rows (shops method), or the device
/// rows, bare or wrapped (device method).
pub fn rows<'v>(method: &str, data: &'v Value) -> Vec<&'v Value> {
    if method == METHOD_SHOPS {
        data.as_array()
            .into_iter()
            .flatten()
            .filter_map(|shop| shop.get("dataList").and_then(Value::as_array))
            .flatten()
            .collect()
    } else {
        let list = match data {
            Value::Array(a) => Some(a),
            Value::Object(o) => ["dataList", "list", "rows", "data"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_array)),
            _ => None,
        };
        list.into_iter().flatten().collect()
    }
}

/// Which of the fields the exporter reads the rows of an answer carry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldCheck {
    /// Rows looked at.
    pub rows: usize,
    /// Per field read: rows that lacked it (absent or `null`); every read field is listed.
    pub missing: BTreeMap<&'static str, usize>,
    /// Fields the rows (and shops) carried that the exporter neither reads nor knows.
    pub extra: BTreeSet<String>,
}

impl FieldCheck {
    /// The fields every one of at least one row lacked.
    pub fn missing_everywhere(&self) -> Vec<&'static str> {
        self.missing
            .iter()
            .filter(|(_, n)| self.rows > 0 && **n == self.rows)
            .map(|(f, _)| *f)
            .collect()
    }
}

/// Checks the fields of an answer of `method` (its `data`).
pub fn check_fields(method: &str, data: &Value) -> FieldCheck {
    let read: &[&'static str] = if method == METHOD_SHOPS {
        &SHOP_ROW_FIELDS
    } else {
        &DEVICE_ROW_FIELDS
    };
    let mut check = FieldCheck {
        missing: read.iter().map(|f| (*f, 0)).collect(),
        ..FieldCheck::default()
    };
    let known = |k: &str| read.contains(&k) || KNOWN_UNREAD.contains(&k);
    for row in rows(method, data) {
        check.rows += 1;
        let Some(fields) = row.as_object() else {
            check.missing.values_mut().for_each(|n| *n += 1);
            continue;
        };
        for field in read {
            let has = |k: &str| fields.get(k).is_some_and(|v| !v.is_null());
            let present = has(field) || (*field == "outSidePassengerFlow" && has("outsidePassengerFlow"));
            if !present {
                *check.missing.entry(field).or_insert(0) += 1;
            }
        }
        check.extra.extend(fields.keys().filter(|k| !known(k)).cloned());
    }
    if method == METHOD_SHOPS {
        for shop in data.as_array().into_iter().flatten().filter_map(Value::as_object) {
            check
                .extra
                .extend(shop.keys().filter(|k| !SHOP_FIELDS.contains(&k.as_str())).cloned());
        }
    }
    check
}

/// The row-time convention a whole-day answer for the days `from..=to` shows: rows from
/// `from 00:00` are start-labelled; rows up to `to+1 00:00` and none at `from 00:00` are
/// end-labelled. `None` when the rows tell neither (no rows, or both).
pub fn row_time_of(times: &[NaiveDateTime], from: NaiveDate, to: NaiveDate) -> Option<RowTime> {
    let first = from.and_hms_opt(0, 0, 0)?;
    let after = to.succ_opt()?.and_hms_opt(0, 0, 0)?;
    let starts = times.contains(&first);
    let ends = times.contains(&after);
    match (starts, ends) {
        (true, false) => Some(RowTime::Start),
        (false, true) => Some(RowTime::End),
        _ => None,
    }
}

/// The row times of an answer's rows (those that parse).
pub fn row_times(method: &str, data: &Value) -> Vec<NaiveDateTime> {
    rows(method, data)
        .into_iter()
        .filter_map(|r| r.get("time").and_then(Value::as_str))
        .filter_map(|s| NaiveDateTime::parse_from_str(s.trim(), TIME_FORMAT).ok())
        .collect()
}

/// How many rows of an answer speak for each rate scale: rows whose `inShopRate` matches
/// walk-ins over outside traffic as a percentage, or as a fraction. Rows with no traffic, no
/// rate, or a rate matching neither count for neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateVotes {
    pub percent: usize,
    pub fraction: usize,
}

impl RateVotes {
    /// Counts the votes of the rows of a shops answer.
    pub fn of(data: &Value) -> Self {
        let mut votes = RateVotes::default();
        for row in rows(METHOD_SHOPS, data) {
            let walk_in = number(row.get("passengerFlow"));
            let outside = number(row.get("outSidePassengerFlow")).or_else(|| number(row.get("outsidePassengerFlow")));
            let (Some(walk_in), Some(outside), Some(rate)) = (walk_in, outside, number(row.get("inShopRate"))) else {
                continue;
            };
            match rate_scale_of(walk_in, outside, rate) {
                Some(RateScale::Percent) => votes.percent += 1,
                Some(RateScale::Fraction) => votes.fraction += 1,
                None => {}
            }
        }
        votes
    }

    /// The scale the votes agree on: at least one vote, none against.
    pub fn decided(self) -> Option<RateScale> {
        match (self.percent, self.fraction) {
            (p, 0) if p > 0 => Some(RateScale::Percent),
            (0, f) if f > 0 => Some(RateScale::Fraction),
            _ => None,
        }
    }
}

/// The scale a rate `rate` of `walk_in` over `outside` is written in: within rounding to two
/// decimals of the percentage, or to four of the fraction. `None` when there was no traffic
/// (0 is 0 on either scale) or it matches neither.
pub fn rate_scale_of(walk_in: f64, outside: f64, rate: f64) -> Option<RateScale> {
    if outside <= 0.0 || walk_in <= 0.0 || rate <= 0.0 {
        return None;
    }
    let ratio = walk_in / outside;
    let close = |a: f64, b: f64, tolerance: f64| (a - b).abs() <= tolerance + b.abs() * 1e-6;
    if close(rate, ratio * 100.0, 0.0051) {
        Some(RateScale::Percent)
    } else if close(rate, ratio, 0.000051) {
        Some(RateScale::Fraction)
    } else {
        None
    }
}

/// Host clock minus the gateway's `stat.systime` (milliseconds), in seconds: positive when this
/// host is ahead.
pub fn clock_skew(now: DateTime<Utc>, systime_ms: i64) -> f64 {
    (now.timestamp_millis() - systime_ms) as f64 / 1000.0
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// Where a convention in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Set in the configuration.
    Configured,
    /// Detected from the gateway's answers.
    Detected,
    /// `auto`, not decided yet: the documented default is used.
    Assumed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Configured => "configured",
            Source::Detected => "detected",
            Source::Assumed => "assumed",
        }
    }
}

/// The conventions an answer is decoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub row_time: RowTime,
    pub rate_scale: RateScale,
}

impl Default for Reading {
    /// What is assumed until detected: start-labelled rows, rates in percent.
    fn default() -> Self {
        Reading {
            row_time: RowTime::Start,
            rate_scale: RateScale::Percent,
        }
    }
}

/// The client's running record of the conventions: configured, or decided from the answers.
pub(super) struct Conventions {
    row_time: Convention<RowTime>,
    rate_scale: Convention<RateScale>,
    state: Mutex<State>,
    metrics: ApiMetrics,
}

#[derive(Default, Clone)]
pub(super) struct State {
    row_time: Option<RowTime>,
    rate_scale: Option<RateScale>,
    /// Findings already warned about.
    warned: HashSet<String>,
    /// Unknown fields logged so far; at most [`MAX_EXTRA_FIELDS_NOTED`], so that a gateway
    /// inventing field names cannot grow `warned` without end.
    extra_fields_noted: usize,
}

/// Unknown answer fields logged (and remembered) at most.
const MAX_EXTRA_FIELDS_NOTED: usize = 64;

impl Conventions {
    /// The record for these settings, going on from `before` (what a previous client of the
    /// same process decided and warned about), and published.
    pub(super) fn new(
        row_time: Convention<RowTime>,
        rate_scale: Convention<RateScale>,
        metrics: ApiMetrics,
        before: Option<&Conventions>,
    ) -> Self {
        let state = before.map(|b| b.lock().clone()).unwrap_or_default();
        let conventions = Conventions {
            row_time,
            rate_scale,
            state: Mutex::new(state),
            metrics,
        };
        conventions.publish(&conventions.lock());
        conventions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The row time in force, and where it comes from.
    pub(super) fn row_time(&self) -> (RowTime, Source) {
        in_force(self.row_time, self.lock().row_time, RowTime::Start)
    }

    /// The rate scale in force, and where it comes from.
    pub(super) fn rate_scale(&self) -> (RateScale, Source) {
        in_force(self.rate_scale, self.lock().rate_scale, RateScale::Percent)
    }

    /// Looks at the `data` of a successful answer of `method` before it is decoded: checks
    /// its fields, and takes the evidence for the `auto` conventions (`whole_days`: the days
    /// `from..=to` when every hour of them was asked, so the row times tell the convention).
    /// Returns the conventions to decode it with.
    pub(super) fn observe(&self, method: &str, data: &Value, whole_days: Option<(NaiveDate, NaiveDate)>) -> Reading {
        let fields = check_fields(method, data);
        for (field, rows) in &fields.missing {
            self.metrics.set_fields_missing(method, field, *rows);
        }
        let mut state = self.lock();
        for field in fields.missing_everywhere() {
            if state.warned.insert(format!("missing {method} {field}")) {
                tracing::warn!(
                    method,
                    field,
                    rows = fields.rows,
                    extra = %fields.extra.iter().map(|f| super::sanitize(f)).collect::<Vec<_>>().join(", "),
                    "every row of a gateway answer lacks a field the exporter reads, so its metric is absent for them (normal for shops without such a counter; if no shop ever has it, the gateway may have renamed it: run `opretail-exporter doctor`)"
                );
            }
        }
        for field in &fields.extra {
            let key = format!("extra {method} {field}");
            if state.warned.contains(&key) || state.extra_fields_noted >= MAX_EXTRA_FIELDS_NOTED {
                continue;
            }
            state.extra_fields_noted += 1;
            state.warned.insert(key);
            if state.extra_fields_noted == MAX_EXTRA_FIELDS_NOTED {
                tracing::info!(method, field = %super::sanitize(field), "the gateway's answer carries a field the exporter does not know; further unknown fields are not logged");
            } else {
                tracing::info!(method, field = %super::sanitize(field), "the gateway's answer carries a field the exporter does not know");
            }
        }
        let before = (state.row_time, state.rate_scale);
        if let (Convention::Auto, Some((from, to))) = (self.row_time, whole_days) {
            if let Some(found) = row_time_of(&row_times(method, data), from, to) {
                state.row_time = Some(found);
            }
        }
        if self.rate_scale == Convention::Auto && method == METHOD_SHOPS {
            if let Some(found) = RateVotes::of(data).decided() {
                state.rate_scale = Some(found);
            }
        }
        if (state.row_time, state.rate_scale) != before {
            self.publish(&state);
        }
        let reading = Reading {
            row_time: in_force(self.row_time, state.row_time, RowTime::Start).0,
            rate_scale: in_force(self.rate_scale, state.rate_scale, RateScale::Percent).0,
        };
        self.check_configured(&mut state, method, data, whole_days);
        reading
    }

    /// With a fixed convention, warns once if an answer contradicts it.
    fn check_configured(
        &self,
        state: &mut State,
        method: &str,
        data: &Value,
        whole_days: Option<(NaiveDate, NaiveDate)>,
    ) {
        if let (Convention::Fixed(set), Some((from, to))) = (self.row_time, whole_days) {
            match row_time_of(&row_times(method, data), from, to) {
                Some(found) if found != set && state.warned.insert("row_time".into()) => {
                    tracing::warn!(configured = %set, found = %found, "gateway.row_time contradicts the gateway's whole-day answer: every published hour is off by one; set gateway.row_time: {found} (or auto)");
                }
                _ => {}
            }
        }
        if let Convention::Fixed(set) = self.rate_scale {
            if method == METHOD_SHOPS {
                match RateVotes::of(data).decided() {
                    Some(found) if found != set && state.warned.insert("rate_scale".into()) => {
                        tracing::warn!(configured = %set, found = %found, "gateway.rate_scale contradicts the gateway's rates: published rates are off by a factor of 100; set gateway.rate_scale: {found} (or auto)");
                    }
                    _ => {}
                }
            }
        }
    }

    /// Records the gateway's clock from an answer's `stat.systime` (ms), as seen at `now`.
    pub(super) fn observe_systime(&self, systime_ms: i64, now: DateTime<Utc>) {
        let skew = clock_skew(now, systime_ms);
        self.metrics.set_clock_skew(skew);
        if skew.abs() > SKEW_WARNING_SECONDS && self.lock().warned.insert("clock_skew".into()) {
            tracing::warn!(
                skew_seconds = skew,
                "this host's clock is off from the gateway's stat.systime (positive: ahead); the gateway refuses requests whose _timestamp is too far off (code 16): fix the clock (NTP)"
            );
        }
    }

    fn publish(&self, state: &State) {
        let (row_time, row_source) = in_force(self.row_time, state.row_time, RowTime::Start);
        let (rate_scale, rate_source) = in_force(self.rate_scale, state.rate_scale, RateScale::Percent);
        self.metrics
            .set_convention("row_time", row_time.as_str(), row_source.as_str());
        self.metrics
            .set_convention("rate_scale", rate_scale.as_str(), rate_source.as_str());
        for (setting, value, source, configured) in [
            (
                "row_time",
                row_time.as_str(),
                row_source,
                self.row_time == Convention::Auto,
            ),
            (
                "rate_scale",
                rate_scale.as_str(),
                rate_source,
                self.rate_scale == Convention::Auto,
            ),
        ] {
            if configured && source == Source::Detected {
                tracing::info!(setting, value, "gateway convention detected from its answers");
            }
        }
    }
}

fn in_force<T: Copy>(setting: Convention<T>, decided: Option<T>, assumed: T) -> (T, Source) {
    match (setting, decided) {
        (Convention::Fixed(v), _) => (v, Source::Configured),
        (Convention::Auto, Some(v)) => (v, Source::Detected),
        (Convention::Auto, None) => (assumed, Source::Assumed),
    }
}

#[cfg(test)]
mod tests {
    use super::super::METHOD_DEVICES;
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn fields_missing_everywhere_and_extra() {
        let data = json!([{"depId": 1, "name": "a", "shopId": "", "region": "x", "dataList": [
            {"time": "2024-05-01 10:00:00", "passengerFlow": 3, "passFlow": 5, "outSidePassengerFlow": 8,
             "inShopRate": 37.5, "outFlowCount": null, "duplicatedFlow": 0},
            {"time": "2024-05-01 11:00:00", "passengerFlow": 3, "passFlow": 5, "outsidePassengerFlow": 8,
             "inShopRate": 37.5, "outFlowCount": 2, "dressingRate": 10}
        ]}]);
        let check = check_fields(METHOD_SHOPS, &data);
        assert_eq!(check.rows, 2);
        assert_eq!(check.missing["passPassengerFlow"], 2);
        assert_eq!(check.missing["outFlowCount"], 1, "null counts as missing");
        assert_eq!(check.missing["dressingRate"], 1);
        assert_eq!(check.missing["outSidePassengerFlow"], 0, "either spelling");
        assert_eq!(check.missing_everywhere(), ["passPassengerFlow"]);
        assert_eq!(
            check.extra.iter().map(String::as_str).collect::<Vec<_>>(),
            ["passFlow", "region"]
        );
        let devices = check_fields(METHOD_DEVICES, &json!({"list": [{"time": "x", "passengerFlow": 1}]}));
        assert_eq!((devices.rows, devices.missing["outFlowCount"]), (1, 1));
        assert!(check_fields(METHOD_SHOPS, &Value::Null).missing_everywhere().is_empty());
    }

    #[test]
    fn row_time_from_a_whole_day() {
        let d = day("2024-05-01");
        let start: Vec<NaiveDateTime> = (0..24).map(|h| d.and_hms_opt(h, 0, 0).unwrap()).collect();
        let end: Vec<NaiveDateTime> = start.iter().map(|t| *t + chrono::Duration::hours(1)).collect();
        assert_eq!(row_time_of(&start, d, d), Some(RowTime::Start));
        assert_eq!(row_time_of(&end, d, d), Some(RowTime::End));
        assert_eq!(row_time_of(&[], d, d), None);
        assert_eq!(row_time_of(&[at("2024-05-01 12:00:00")], d, d), None);
        let both = [at("2024-05-01 00:00:00"), at("2024-05-02 00:00:00")];
        assert_eq!(row_time_of(&both, d, d), None);
    }

    #[test]
    fn rate_scale_from_walk_ins_over_outside() {
        assert_eq!(rate_scale_of(12.0, 147.0, 8.16), Some(RateScale::Percent));
        assert_eq!(rate_scale_of(12.0, 147.0, 0.0816), Some(RateScale::Fraction));
        assert_eq!(rate_scale_of(1.0, 3.0, 33.33), Some(RateScale::Percent));
        assert_eq!(
            rate_scale_of(1.0, 1.0, 1.0),
            Some(RateScale::Fraction),
            "100% as a fraction"
        );
        assert_eq!(rate_scale_of(1.0, 1.0, 100.0), Some(RateScale::Percent));
        assert_eq!(rate_scale_of(0.0, 10.0, 0.0), None, "no walk-ins: either scale");
        assert_eq!(rate_scale_of(5.0, 10.0, 7.0), None, "matches neither");
        let data = json!([{"depId": 1, "dataList": [
            {"passengerFlow": "12", "outSidePassengerFlow": "147", "inShopRate": "8.16"},
            {"passengerFlow": 0, "outSidePassengerFlow": 0, "inShopRate": 0}
        ]}]);
        let votes = RateVotes::of(&data);
        assert_eq!(
            votes,
            RateVotes {
                percent: 1,
                fraction: 0
            }
        );
        assert_eq!(votes.decided(), Some(RateScale::Percent));
        assert_eq!(
            RateVotes {
                percent: 3,
                fraction: 1
            }
            .decided(),
            None
        );
        assert_eq!(RateVotes::default().decided(), None);
    }

    use crate::test_log::logged;

    #[test]
    fn a_renamed_field_is_counted_and_warned_about_once() {
        let store = crate::metrics::MetricsStore::new("t", "t").unwrap();
        let conventions = Conventions::new(Convention::Auto, Convention::Auto, store.api().clone(), None);
        let data = json!([{"depId": 1, "dataList": [
            {"time": "2024-05-01 10:00:00", "passengerFlow": 3, "passFlow": 5, "outSidePassengerFlow": 8, "inShopRate": 37.5},
            {"time": "2024-05-01 11:00:00", "passengerFlow": 2, "passFlow": 4, "outSidePassengerFlow": 6, "inShopRate": 33.33}
        ]}]);
        let log = logged(|| {
            conventions.observe(METHOD_SHOPS, &data, None);
            conventions.observe(METHOD_SHOPS, &data, None);
        });
        let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
        let about = |field: &str| {
            warnings
                .iter()
                .filter(|l| l.contains(&format!("field=\"{field}\"")))
                .count()
        };
        assert_eq!(about("passPassengerFlow"), 1, "warned once: {log}");
        assert!(
            warnings.iter().any(|l| l.contains("passFlow")),
            "the unknown field is named: {log}"
        );
        let text = String::from_utf8(store.exposition(false).concat()).unwrap();
        let line =
            format!("opretail_gateway_fields_missing{{field=\"passPassengerFlow\",method=\"{METHOD_SHOPS}\"}} 2");
        assert!(text.contains(&line), "{text}");
        assert!(
            text.contains(
                "opretail_gateway_convention{setting=\"rate_scale\",source=\"detected\",value=\"percent\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn invented_field_names_are_noted_up_to_a_bound() {
        let store = crate::metrics::MetricsStore::new("t", "t").unwrap();
        let conventions = Conventions::new(Convention::Auto, Convention::Auto, store.api().clone(), None);
        let log = logged(|| {
            for round in 0..20 {
                let mut row = serde_json::Map::new();
                row.insert("time".into(), json!("2024-05-01 10:00:00"));
                row.insert("passengerFlow".into(), json!(1));
                for i in 0..50 {
                    row.insert(format!("invented{round}x{i}"), json!(0));
                }
                conventions.observe(METHOD_SHOPS, &json!([{"depId": 1, "dataList": [row]}]), None);
            }
        });
        let noted = log.lines().filter(|l| l.contains("does not know")).count();
        assert_eq!(noted, MAX_EXTRA_FIELDS_NOTED, "{log}");
        assert!(log.contains("further unknown fields are not logged"), "{log}");
        assert!(conventions.lock().warned.len() <= MAX_EXTRA_FIELDS_NOTED + 16);
    }

    #[test]
    fn skew_is_host_minus_gateway() {
        let now = DateTime::from_timestamp(1_700_000_100, 0).unwrap();
        assert_eq!(clock_skew(now, 1_700_000_000_000), 100.0);
        assert_eq!(clock_skew(now, 1_700_000_130_500), -30.5);
    }
}
