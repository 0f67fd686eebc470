//! Business calendars and static labels: what a shop's opening hours and closed dates are, and
//! which labels `opretail_shop_info` gives it. Both are set at three levels, the top-level
//! `calendar`, an organisation's `shops` entry and a shop's own level (its `S_` entry or its
//! `shop_overrides` entry); this module reads one level ([`CalendarLevel`], [`Labels`]) and
//! resolves the levels of one shop into a [`ShopCalendar`], which answers whether an hour was
//! an opening hour. The rules of an opening hour are kept here, in one place, because the
//! `opretail_shop_open` series and whoever skips closed days must agree on them.
//!
//! Hours are merged weekday by weekday (a lower level replaces only the days it names),
//! closed dates are added, and labels are merged by name (the lower level wins). Without any
//! calendar, a shop opens 10:00-22:00 every day ([`DEFAULT_HOURS`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use serde_yaml::Value;

use super::walk::{describe, join, Walker};

/// The keys of a `calendar` mapping.
pub(super) const CALENDAR_KEYS: &[&str] = &["hours", "closed_dates"];

/// Label names a static label may not take: those of the shop series and those Prometheus or
/// the exporter's other series give a meaning.
pub(crate) const RESERVED_LABELS: &[&str] = &[
    "shop_id",
    "shop_name",
    "shop_code",
    "org_id",
    "instance",
    "job",
    "stat",
    "account",
    "target",
];

/// The days of the week as written in `hours`, Monday first (chrono's
/// `num_days_from_monday` order).
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Minutes in a day: the end of a range written `24:00`.
const DAY_MINUTES: u16 = 24 * 60;

/// The opening hours of a day without any calendar: 10:00-22:00.
pub(crate) const DEFAULT_HOURS: DayHours = DayHours::Open {
    start: 10 * 60,
    end: 22 * 60,
};

/// The opening hours of one weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayHours {
    /// Not open that day (its own range; the tail of the day before still counts).
    Closed,
    /// Open from `start` to `end`, in minutes after midnight. `end` after `start`: within the
    /// day (`24h` is 0 to 1440); `end` before `start`: past midnight, into the next day.
    Open { start: u16, end: u16 },
}

/// Closed dates, each an inclusive span of shop-local days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateSpan {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// One level's `calendar` as configured: the weekdays it names (`None`: left to the level
/// above) and the dates it closes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarLevel {
    pub hours: [Option<DayHours>; 7],
    pub closed_dates: Arc<[DateSpan]>,
}

/// One level's static labels, sorted by name (the schema's [`crate::model::StaticLabels`]).
pub type Labels = crate::model::StaticLabels;

/// One shop's business calendar, resolved from its levels: cheap to clone (the closed dates
/// are shared with the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopCalendar {
    week: [DayHours; 7],
    closed: [Arc<[DateSpan]>; 3],
}

impl Default for ShopCalendar {
    /// 10:00-22:00 every day, no closed date.
    fn default() -> Self {
        ShopCalendar::resolve(&[])
    }
}

impl ShopCalendar {
    /// The calendar of a shop whose levels are `levels`, the highest (the top level) first:
    /// each weekday from the lowest level that names it (else 10:00-22:00), the closed dates of
    /// every level.
    pub(crate) fn resolve(levels: &[&CalendarLevel]) -> ShopCalendar {
        let mut week = [DEFAULT_HOURS; 7];
        for (i, day) in week.iter_mut().enumerate() {
            if let Some(hours) = levels.iter().rev().find_map(|l| l.hours[i]) {
                *day = hours;
            }
        }
        let mut closed: [Arc<[DateSpan]>; 3] = Default::default();
        for (slot, level) in closed
            .iter_mut()
            .zip(levels.iter().filter(|l| !l.closed_dates.is_empty()))
        {
            *slot = Arc::clone(&level.closed_dates);
        }
        ShopCalendar { week, closed }
    }

    /// The opening hours of `day`'s weekday.
    pub fn hours(&self, day: chrono::Weekday) -> DayHours {
        self.week[day.num_days_from_monday() as usize]
    }

    /// Whether the shop-local `day` is a closed date.
    pub fn is_closed_date(&self, day: NaiveDate) -> bool {
        self.closed
            .iter()
            .flat_map(|spans| spans.iter())
            .any(|s| s.first <= day && day <= s.last)
    }

    /// Whether the hour starting at `hour_start` (shop-local) was an opening hour: whether any
    /// part of it lies inside the opening range of its day, or inside the part past midnight
    /// of the day before's range. A closed date closes its own day's range, not the tail of the
    /// day before's (that belongs to the day it started on).
    pub fn is_open(&self, hour_start: NaiveDateTime) -> bool {
        let day = hour_start.date();
        let from = hour_start.hour() * 60 + hour_start.minute();
        let to = from + 60;
        let own = match self.day_hours(day) {
            Some(DayHours::Open { start, end }) if end > start => u32::from(start) < to && u32::from(end) > from,
            Some(DayHours::Open { start, .. }) => u32::from(start) < to,
            _ => false,
        };
        let tail = match day.pred_opt().and_then(|before| self.day_hours(before)) {
            Some(DayHours::Open { start, end }) if end < start => from < u32::from(end),
            _ => false,
        };
        own || tail
    }

    /// The hours of `day`, or `None` on a closed date.
    fn day_hours(&self, day: NaiveDate) -> Option<DayHours> {
        (!self.is_closed_date(day)).then(|| self.hours(day.weekday()))
    }
}

/// Static labels merged over levels, the highest first: a lower level's value wins. Shared
/// with the level when only one has any.
pub(crate) fn merge_labels(levels: &[&Labels]) -> Labels {
    let mut with = levels.iter().filter(|l| !l.is_empty());
    match (with.next(), with.next()) {
        (None, _) => Labels::default(),
        (Some(only), None) => Arc::clone(only),
        _ => {
            let mut merged: BTreeMap<&str, &str> = BTreeMap::new();
            for level in levels {
                merged.extend(level.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            }
            merged
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }
    }
}

/// A `calendar` mapping: `hours` and `closed_dates`.
pub(super) fn read_calendar(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<CalendarLevel> {
    let f = w.mapping(path, value, CALENDAR_KEYS)?;
    let hours = w.optional(&f, path, "hours", [None; 7], read_hours);
    let closed = w.optional(&f, path, "closed_dates", Vec::new(), read_closed_dates);
    Some(CalendarLevel {
        hours: hours?,
        closed_dates: closed?.into(),
    })
}

/// What a key of `hours` names: its days and how specific it is (a day beats a range, a range
/// beats `all`).
fn read_day_key(key: &str) -> Option<(Vec<usize>, u8)> {
    let day = |name: &str| DAYS.iter().position(|d| *d == name);
    if key == "all" {
        return Some(((0..7).collect(), 0));
    }
    if let Some(i) = day(key) {
        return Some((vec![i], 2));
    }
    let (from, to) = key.split_once('-')?;
    let (from, to) = (day(from.trim())?, day(to.trim())?);
    if from == to {
        return None;
    }
    let len = (to + 7 - from) % 7 + 1;
    Some(((0..len).map(|k| (from + k) % 7).collect(), 1))
}

/// The `hours` mapping: a weekday, a range of weekdays or `all`, each to its opening hours.
/// The most specific key naming a day wins; two keys of the same kind may not name the same
/// day.
fn read_hours(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<[Option<DayHours>; 7]> {
    let Value::Mapping(map) = value else {
        w.error(path, format!("expected a mapping, found {}", describe(value)));
        return None;
    };
    // Per day: the hours, how specific the key that set them is, and that key.
    let mut week: [Option<(DayHours, u8, String)>; 7] = Default::default();
    let mut ok = true;
    for (key, v) in map {
        let Value::String(key) = key else {
            w.error(path, format!("keys must be strings, found {}", describe(key)));
            ok = false;
            continue;
        };
        let key_path = join(path, key);
        let Some((days, rank)) = read_day_key(key) else {
            w.error(
                &key_path,
                "unknown key (expected a day mon, tue, wed, thu, fri, sat or sun, a range of days such as mon-fri, or all)",
            );
            ok = false;
            continue;
        };
        let Some(hours) = read_day_hours(w, &key_path, v) else {
            ok = false;
            continue;
        };
        for day in days {
            match &week[day] {
                Some((_, r, other)) if *r == rank => {
                    w.error(
                        &key_path,
                        format!(
                            "{} is also named by {other}: keys of the same kind may not name the same day",
                            DAYS[day]
                        ),
                    );
                    ok = false;
                    break;
                }
                Some((_, r, _)) if *r > rank => {}
                _ => week[day] = Some((hours, rank, key.clone())),
            }
        }
    }
    ok.then(|| week.map(|d| d.map(|(hours, _, _)| hours)))
}

/// One day's opening hours: `HH:MM-HH:MM` (the end may be `24:00`; an end before the start runs
/// past midnight), `24h` or `closed`.
fn read_day_hours(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<DayHours> {
    const HINT: &str = "expected opening hours such as \"10:00-22:00\" (the end may be 24:00; an end before the start runs past midnight), 24h or closed";
    let text = w.text(path, value)?;
    let text = text.trim();
    match text {
        "24h" => {
            return Some(DayHours::Open {
                start: 0,
                end: DAY_MINUTES,
            })
        }
        "closed" => return Some(DayHours::Closed),
        _ => {}
    }
    let times = text
        .split_once('-')
        .and_then(|(a, b)| Some((read_time(a.trim())?, read_time(b.trim())?)));
    match times {
        Some((start, _)) if start == DAY_MINUTES => {
            w.error(
                path,
                format!("invalid opening hours {text:?}: only an end may be 24:00"),
            );
            None
        }
        Some((start, end)) if start == end => {
            w.error(
                path,
                format!("invalid opening hours {text:?}: the end equals the start (write 24h for a whole day, closed for none)"),
            );
            None
        }
        Some((start, end)) => Some(DayHours::Open { start, end }),
        None => {
            w.error(path, format!("invalid opening hours {text:?}: {HINT}"));
            None
        }
    }
}

/// `HH:MM` (or `H:MM`) from 00:00 to 24:00, in minutes.
fn read_time(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 2) || !digits(m, 2) || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// The `closed_dates` list: dates (`2026-12-25`) and inclusive ranges (`2026-10-01/2026-10-07`).
fn read_closed_dates(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Vec<DateSpan>> {
    let items = w.list(path, value)?;
    let mut spans = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match read_date_span(w, &format!("{path}[{i}]"), item) {
            Some(span) => spans.push(span),
            None => ok = false,
        }
    }
    ok.then_some(spans)
}

fn read_date_span(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<DateSpan> {
    let text = w.text(path, value)?;
    let text = text.trim();
    let date = |s: &str| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
    let span = match text.split_once('/') {
        Some((a, b)) => date(a).zip(date(b)),
        None => date(text).map(|d| (d, d)),
    };
    match span {
        Some((first, last)) if last < first => {
            w.error(path, format!("invalid date range {text:?}: it ends before it starts"));
            None
        }
        Some((first, last)) => Some(DateSpan { first, last }),
        None => {
            w.error(
                path,
                format!("invalid date {text:?}: expected a date such as 2026-12-25 or an inclusive range such as 2026-10-01/2026-10-07"),
            );
            None
        }
    }
}

/// A `labels` mapping: label names (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`, not
/// reserved) to plain strings.
pub(super) fn read_labels(w: &mut Walker<'_>, path: &str, value: &Value) -> Option<Labels> {
    let Value::Mapping(map) = value else {
        w.error(path, format!("expected a mapping, found {}", describe(value)));
        return None;
    };
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    let mut ok = true;
    for (key, v) in map {
        let Value::String(name) = key else {
            w.error(path, format!("keys must be strings, found {}", describe(key)));
            ok = false;
            continue;
        };
        let label_path = join(path, name);
        if let Err(problem) = check_label_name(name) {
            w.error(&label_path, problem);
            ok = false;
            continue;
        }
        let Some(text) = w.string(&label_path, v, false) else {
            ok = false;
            continue;
        };
        if labels.insert(name.clone(), text).is_some() {
            w.error(&label_path, "duplicate label name");
            ok = false;
        }
    }
    ok.then(|| labels.into_iter().collect())
}

/// Why `name` cannot be a static label's name, if it cannot.
fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err("invalid label name (expected letters, digits and _, not starting with a digit)".to_string());
    }
    if name.starts_with("__") {
        return Err("invalid label name: names starting with __ are reserved for Prometheus".to_string());
    }
    if RESERVED_LABELS.contains(&name) {
        return Err(format!(
            "reserved label name (the exporter's series use {})",
            RESERVED_LABELS.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    /// A level read from YAML, or the errors as `path: message` lines.
    fn level(yaml: &str) -> Result<CalendarLevel, Vec<String>> {
        let env = |_: &str| None;
        let mut w = Walker::new(&env, &[]);
        let value: Value = serde_yaml::from_str(yaml).unwrap();
        let level = read_calendar(&mut w, "calendar", &value);
        let (errors, _) = w.into_parts();
        match level {
            Some(level) if errors.is_empty() => Ok(level),
            _ => Err(errors.iter().map(ToString::to_string).collect()),
        }
    }

    fn cal(levels: &[&str]) -> ShopCalendar {
        let levels: Vec<CalendarLevel> = levels.iter().map(|y| level(y).unwrap()).collect();
        ShopCalendar::resolve(&levels.iter().collect::<Vec<_>>())
    }

    /// The opening hours of `day` (2026-11-23 is a Monday) as the hours of the day open.
    fn open_hours(c: &ShopCalendar, day: &str) -> Vec<u32> {
        (0..24).filter(|h| c.is_open(at(&format!("{day} {h:02}:00")))).collect()
    }

    fn errors_of(yaml: &str) -> Vec<String> {
        level(yaml).unwrap_err()
    }

    fn has(errors: &[String], path: &str, word: &str) -> bool {
        errors
            .iter()
            .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(word))
    }

    #[test]
    fn without_a_calendar_a_shop_opens_ten_to_ten() {
        let c = ShopCalendar::default();
        assert_eq!(open_hours(&c, "2026-11-23"), (10..22).collect::<Vec<_>>());
        assert_eq!(open_hours(&c, "2026-11-29"), (10..22).collect::<Vec<_>>());
    }

    #[test]
    fn an_hour_is_open_when_any_part_of_it_is() {
        let c = cal(&["hours: {all: \"09:30-22:00\"}"]);
        assert_eq!(open_hours(&c, "2026-11-23"), (9..22).collect::<Vec<_>>());
        let c = cal(&["hours: {all: \"10:00-21:15\"}"]);
        assert_eq!(open_hours(&c, "2026-11-23"), (10..22).collect::<Vec<_>>());
        let c = cal(&["hours: {all: \"10:00-24:00\"}"]);
        assert_eq!(open_hours(&c, "2026-11-23"), (10..24).collect::<Vec<_>>());
    }

    #[test]
    fn an_overnight_range_belongs_to_the_day_it_starts_on() {
        // Fridays 20:00-02:00; Saturdays open at 12:00.
        let c = cal(&["hours: {all: closed, fri: \"20:00-02:00\", sat: \"12:00-18:00\"}"]);
        assert_eq!(open_hours(&c, "2026-11-27"), vec![20, 21, 22, 23]);
        assert_eq!(
            open_hours(&c, "2026-11-28"),
            vec![0, 1, 12, 13, 14, 15, 16, 17],
            "the tail on Saturday, before Saturday's own range"
        );
        assert_eq!(open_hours(&c, "2026-11-26"), Vec::<u32>::new(), "Thursday is closed");
        assert_eq!(
            open_hours(&c, "2026-11-29"),
            Vec::<u32>::new(),
            "no tail after Saturday"
        );
    }

    #[test]
    fn a_whole_day_and_a_closed_weekday() {
        let c = cal(&["hours: {all: 24h, mon: closed}"]);
        assert_eq!(open_hours(&c, "2026-11-24"), (0..24).collect::<Vec<_>>());
        assert!(open_hours(&c, "2026-11-23").is_empty());
        assert_eq!(c.hours(chrono::Weekday::Mon), DayHours::Closed);
    }

    #[test]
    fn a_day_beats_a_range_and_a_range_beats_all() {
        let c =
            cal(&["hours: {sun: \"11:00-20:00\", all: \"10:00-22:00\", sat-sun: \"09:00-23:00\", mon-wed: closed}"]);
        assert_eq!(c.hours(chrono::Weekday::Sun), DayHours::Open { start: 660, end: 1200 });
        assert_eq!(c.hours(chrono::Weekday::Sat), DayHours::Open { start: 540, end: 1380 });
        assert_eq!(c.hours(chrono::Weekday::Tue), DayHours::Closed);
        assert_eq!(c.hours(chrono::Weekday::Thu), DayHours::Open { start: 600, end: 1320 });
        // A range may wrap past Sunday.
        let c = cal(&["hours: {fri-mon: 24h}"]);
        let open: Vec<bool> = DAYS
            .iter()
            .enumerate()
            .map(|(i, _)| c.week[i] == DayHours::Open { start: 0, end: 1440 })
            .collect();
        assert_eq!(open, [true, false, false, false, true, true, true]);
    }

    #[test]
    fn closed_dates_close_their_day_but_not_the_tail_of_the_day_before() {
        let c = cal(&["hours: {all: \"20:00-02:00\"}\nclosed_dates: [\"2026-11-24\", \"2026-12-01/2026-12-03\"]"]);
        assert_eq!(open_hours(&c, "2026-11-24"), vec![0, 1], "only Monday's tail");
        assert_eq!(
            open_hours(&c, "2026-11-25"),
            vec![20, 21, 22, 23],
            "no tail of the closed day"
        );
        for day in ["2026-12-01", "2026-12-02", "2026-12-03"] {
            assert!(c.is_closed_date(NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap()));
        }
        assert!(!c.is_closed_date(NaiveDate::from_ymd_opt(2026, 12, 4).unwrap()));
        assert_eq!(open_hours(&c, "2026-12-04"), vec![20, 21, 22, 23]);
    }

    #[test]
    fn lower_levels_replace_the_days_they_name_and_add_closed_dates() {
        let top = "hours: {all: \"10:00-22:00\", sun: \"11:00-20:00\"}\nclosed_dates: [\"2026-12-25\"]";
        let org = "hours: {sun: closed}\nclosed_dates: [\"2026-12-26\"]";
        let shop = "hours: {sat-sun: 24h}\nclosed_dates: [\"2026-12-27\"]";
        let c = cal(&[top, org]);
        assert_eq!(c.hours(chrono::Weekday::Sun), DayHours::Closed);
        assert_eq!(c.hours(chrono::Weekday::Sat), DayHours::Open { start: 600, end: 1320 });
        let c = cal(&[top, org, shop]);
        assert_eq!(c.hours(chrono::Weekday::Sun), DayHours::Open { start: 0, end: 1440 });
        assert_eq!(c.hours(chrono::Weekday::Fri), DayHours::Open { start: 600, end: 1320 });
        for d in 25..=27 {
            assert!(c.is_closed_date(NaiveDate::from_ymd_opt(2026, 12, d).unwrap()), "{d}");
        }
        assert!(!cal(&[top]).is_closed_date(NaiveDate::from_ymd_opt(2026, 12, 26).unwrap()));
    }

    #[test]
    fn labels_merge_by_name_the_lower_level_winning() {
        let org: Labels = vec![("city".into(), "Shanghai".into()), ("region".into(), "east".into())].into();
        let shop: Labels = vec![("manager".into(), "Li".into()), ("region".into(), "north".into())].into();
        let merged = merge_labels(&[&org, &shop]);
        let pairs: Vec<(&str, &str)> = merged.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(pairs, [("city", "Shanghai"), ("manager", "Li"), ("region", "north")]);
        assert!(Arc::ptr_eq(&merge_labels(&[&org, &Labels::default()]), &org), "shared");
        assert!(merge_labels(&[]).is_empty());
    }

    #[test]
    fn bad_calendars_name_the_field() {
        let e = errors_of("hours: {mon: \"25:00-22:00\"}");
        assert!(
            has(&e, "calendar.hours.mon", "invalid opening hours \"25:00-22:00\""),
            "{e:?}"
        );
        let e = errors_of("hours: {mon: \"10:00-10:00\"}");
        assert!(has(&e, "calendar.hours.mon", "the end equals the start"), "{e:?}");
        let e = errors_of("hours: {mon: \"24:00-10:00\"}");
        assert!(has(&e, "calendar.hours.mon", "only an end may be 24:00"), "{e:?}");
        let e = errors_of("hours: {mon: \"10-22\", tue: 9}");
        assert!(has(&e, "calendar.hours.mon", "invalid opening hours"), "{e:?}");
        assert!(has(&e, "calendar.hours.tue", "expected a string"), "{e:?}");
        let e = errors_of("hours: {monday: closed, mon-mon: closed, Mon: closed}");
        for key in ["monday", "mon-mon", "Mon"] {
            assert!(has(&e, &format!("calendar.hours.{key}"), "unknown key"), "{e:?}");
        }
        let e = errors_of("hours: {mon-fri: 24h, fri-sun: closed}");
        assert!(
            has(&e, "calendar.hours.fri-sun", "fri is also named by mon-fri"),
            "{e:?}"
        );
        let e = errors_of("closed_dates: [\"2026-02-30\", \"2026-10-07/2026-10-01\", \"tomorrow\"]");
        assert!(
            has(&e, "calendar.closed_dates[0]", "invalid date \"2026-02-30\""),
            "{e:?}"
        );
        assert!(has(&e, "calendar.closed_dates[1]", "ends before it starts"), "{e:?}");
        assert!(has(&e, "calendar.closed_dates[2]", "invalid date"), "{e:?}");
        let e = errors_of("hours: {mon: closed}\nweekends: closed");
        assert!(has(&e, "calendar.weekends", "unknown key"), "{e:?}");
        assert_eq!(errors_of("closed_dates: 2026-12-25").len(), 1);
    }

    #[test]
    fn bad_label_names_are_refused() {
        let read = |yaml: &str| {
            let env = |_: &str| None;
            let mut w = Walker::new(&env, &[]);
            let value: Value = serde_yaml::from_str(yaml).unwrap();
            let labels = read_labels(&mut w, "shops[2].labels", &value);
            let (errors, _) = w.into_parts();
            (labels, errors.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        let (labels, e) = read("{Region: east, _floor: \"3\", city: \"\"}");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(labels.unwrap().len(), 3);
        let (_, e) = read("{2nd: x, __name: x, shop_id: x, job: x, my-label: x, ok: \"${HOME}\", n: 3}");
        assert!(has(&e, "shops[2].labels.2nd", "invalid label name"), "{e:?}");
        assert!(has(&e, "shops[2].labels.__name", "reserved for Prometheus"), "{e:?}");
        assert!(has(&e, "shops[2].labels.shop_id", "reserved label name"), "{e:?}");
        assert!(has(&e, "shops[2].labels.job", "reserved label name"), "{e:?}");
        assert!(has(&e, "shops[2].labels.my-label", "invalid label name"), "{e:?}");
        assert!(has(&e, "shops[2].labels.ok", "is not expanded here"), "{e:?}");
        assert!(has(&e, "shops[2].labels.n", "expected a string"), "{e:?}");
        assert_eq!(e.len(), 7, "every problem at once: {e:?}");
    }
}
