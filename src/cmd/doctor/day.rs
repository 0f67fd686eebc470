//! The `day figures` check of `doctor`: a shop's day row (timeType=2) against the sum of its
//! hourly rows of the same day, both decoded as the exporter decodes them. The vendor's page
//! says face-counting devices count a person once an hour in hourly rows and once a day in
//! day rows, so such a shop's day walk-in is below the sum of its hours; any other counter's
//! day row should be that sum. [`compare_day`] gives each shop its [`DayVerdict`], and the
//! check names the de-duplicated shops (why `opretail_shop_walk_in_today` is below the hours'
//! sum for them) and warns about any other difference.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{shortened, Check, Seen, Status};
use crate::client::{decode_shops, Per, Reading, Target, METHOD_SHOPS, WHOLE_DAY};
use crate::model::{RowTime, ShopValues};

/// One count of a shop's day row against the sum of its hourly rows of the day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountDiff {
    /// `walk-in`, `passing`, `outside` or `walk-out`.
    pub count: &'static str,
    /// The day row's value.
    pub day: f64,
    /// The sum of the hourly rows' values.
    pub hours: f64,
}

/// How a shop's day row compares with the sum of its hours ([`compare_day`]).
#[derive(Debug, Clone, PartialEq)]
pub enum DayVerdict {
    /// Every count both carry is equal.
    Consistent,
    /// The day's walk-in is below the sum of the hours, everything else equal (outside
    /// traffic, which holds the walk-ins, may be short by as much): the de-duplication of
    /// face-counting devices.
    DeDuplicated { day: f64, hours: f64 },
    /// Any other difference: the counts that differ.
    Differs(Vec<CountDiff>),
    /// Nothing to compare, and why (no day row, no hourly rows, no count in both).
    NotCompared(&'static str),
}

/// Reads one count of a shop's values.
type CountOf = fn(&ShopValues) -> Option<f64>;

/// The counts a day row carries that are plain counts (rates are ratios the vendor
/// recomputes, not sums), with their names.
const DAY_COUNTS: [(&str, CountOf); 4] = [
    ("walk-in", |v| v.walk_in),
    ("passing", |v| v.passing),
    ("outside", |v| v.outside),
    ("walk-out", |v| v.walk_out),
];

/// Whether two counts are the same number.
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Compares a shop's day row (`None`: the day answer did not hold the shop) with its hourly
/// rows of the same day (empty: the hourly answers did not hold it), both decoded as the
/// exporter decodes them. A count is compared when the day row carries it and every hour
/// does (absent data is not zero: a sum over some hours says nothing).
pub fn compare_day(day: Option<&ShopValues>, hours: &[ShopValues]) -> DayVerdict {
    let Some(day) = day else {
        return DayVerdict::NotCompared("no day row");
    };
    if hours.is_empty() {
        return DayVerdict::NotCompared("no hourly rows");
    }
    let compared: Vec<CountDiff> = DAY_COUNTS
        .iter()
        .filter_map(|(count, get)| {
            let day = get(day)?;
            let hours = hours.iter().map(get).sum::<Option<f64>>()?;
            Some(CountDiff { count, day, hours })
        })
        .collect();
    if compared.is_empty() {
        return DayVerdict::NotCompared("no count in both");
    }
    let differing: Vec<CountDiff> = compared.into_iter().filter(|c| !same(c.day, c.hours)).collect();
    if differing.is_empty() {
        return DayVerdict::Consistent;
    }
    let walk_in = differing
        .iter()
        .find(|c| c.count == "walk-in")
        .filter(|w| w.day < w.hours);
    if let Some(w) = walk_in {
        let short = w.hours - w.day;
        let explained = differing
            .iter()
            .all(|c| c.count == "walk-in" || (c.count == "outside" && same(c.hours - c.day, short)));
        if explained {
            return DayVerdict::DeDuplicated {
                day: w.day,
                hours: w.hours,
            };
        }
    }
    DayVerdict::Differs(differing)
}

/// What became of the day figures (step 4 of the module doc).
#[derive(Debug, Clone, PartialEq)]
pub enum DayFigures {
    /// Not asked: no list of `S_` ids worked, so no shop's whole day was in hand.
    NotAsked,
    /// The call failed or was given up: why.
    Failed(String),
    /// Each shop asked (dep id), in the order asked, and how its day compares with its hours.
    Compared(Vec<(String, DayVerdict)>),
}

impl DayFigures {
    /// The dep ids of the shops whose verdict `keep` accepts.
    pub fn shops(&self, keep: impl Fn(&DayVerdict) -> bool) -> Vec<String> {
        match self {
            DayFigures::Compared(shops) => shops.iter().filter(|(_, v)| keep(v)).map(|(d, _)| d.clone()).collect(),
            DayFigures::NotAsked | DayFigures::Failed(_) => Vec::new(),
        }
    }
}

/// The day rows of the day-figures answer against the hourly rows of `day` in the whole-day
/// hourly answers (decoded under `hourly`, so that rows are picked by the hour they count),
/// for each shop the day call asked.
pub(super) fn compare_days(day: NaiveDate, seen: &[Seen], hourly: Reading) -> DayFigures {
    let Some(day_answer) = seen.iter().find(|s| s.method == METHOD_SHOPS && s.call.per == Per::Day) else {
        return DayFigures::Failed("no answer kept".to_string());
    };
    // Day rows are labelled with their date, as the client reads them.
    let day_reading = Reading {
        row_time: RowTime::Start,
        ..Reading::default()
    };
    let days: BTreeMap<String, ShopValues> = decode_shops(&day_answer.envelope.data, day_reading)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|shop| {
            let row = match shop.rows.iter().find(|r| r.hour.date() == day) {
                Some(row) => Some(row),
                None if shop.rows.len() == 1 => shop.rows.first(),
                None => None,
            };
            row.map(|r| (shop.dep_id.clone(), r.values))
        })
        .collect();
    // Every hour of the day once per shop, whichever whole-day answer held it.
    let mut hours: BTreeMap<String, BTreeMap<chrono::NaiveDateTime, ShopValues>> = BTreeMap::new();
    let whole_days = seen
        .iter()
        .filter(|s| s.method == METHOD_SHOPS && s.call.per == Per::Hour && s.call.hours == WHOLE_DAY);
    for answer in whole_days {
        for shop in decode_shops(&answer.envelope.data, hourly).unwrap_or_default() {
            let rows = hours.entry(shop.dep_id).or_default();
            rows.extend(
                shop.rows
                    .iter()
                    .filter(|r| r.hour.date() == day)
                    .map(|r| (r.hour, r.values)),
            );
        }
    }
    let asked: Vec<String> = match &day_answer.call.target {
        Target::Shops(ids) => ids.iter().map(|id| id.number().to_string()).collect(),
        Target::Device(_) => Vec::new(),
    };
    DayFigures::Compared(
        asked
            .into_iter()
            .map(|dep| {
                let rows: Vec<ShopValues> = hours
                    .get(&dep)
                    .map(|h| h.values().copied().collect())
                    .unwrap_or_default();
                let verdict = compare_day(days.get(&dep), &rows);
                (dep, verdict)
            })
            .collect(),
    )
}

/// The counts of a shop that differ, written for people: `walk-in day 120 / hours 118`.
fn differences(counts: &[CountDiff]) -> String {
    counts
        .iter()
        .map(|c| format!("{} day {} / hours {}", c.count, c.day, c.hours))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The check of the day figures: which shops' day rows equal the sums of their hours, which
/// are de-duplicated (face-counting devices), and which differ otherwise.
pub(super) fn day_figures_check(figures: &DayFigures) -> Check {
    const NAME: &str = "day figures";
    let shops = match figures {
        DayFigures::NotAsked => {
            return Check {
                name: NAME,
                status: Status::Ok,
                finding: "not asked: no list of S_ shops worked, so no shop's whole day was in hand".to_string(),
            }
        }
        DayFigures::Failed(e) => {
            return Check {
                name: NAME,
                status: Status::Warn,
                finding: format!(
                    "the day rows (timeType=2) were not compared with the hours: {e}; opretail_shop_*_today come from such calls"
                ),
            }
        }
        DayFigures::Compared(shops) => shops,
    };
    let n = shops.len();
    let consistent = figures.shops(|v| *v == DayVerdict::Consistent);
    let de_duplicated = figures.shops(|v| matches!(v, DayVerdict::DeDuplicated { .. }));
    let differing: Vec<String> = shops
        .iter()
        .filter_map(|(dep, v)| match v {
            DayVerdict::Differs(counts) => Some(format!("{dep} ({})", differences(counts))),
            _ => None,
        })
        .collect();
    let not_compared: Vec<String> = shops
        .iter()
        .filter_map(|(dep, v)| match v {
            DayVerdict::NotCompared(why) => Some(format!("{dep} ({why})")),
            _ => None,
        })
        .collect();
    let mut parts = vec![format!(
        "day rows equal the sums of their hours in {} of {n} shops",
        consistent.len()
    )];
    if !de_duplicated.is_empty() {
        parts.push(format!(
            "day walk-in below the sum of the hours in {} of {n} shops: {}; face-counting devices count a person once a day (the vendor's de-duplication), so opretail_shop_walk_in_today for them is below the sum of their hourly walk-ins by design",
            de_duplicated.len(),
            shortened(&de_duplicated)
        ));
    }
    let mut status = Status::Ok;
    if !differing.is_empty() {
        status = Status::Warn;
        parts.push(format!(
            "day rows differ from the sums of their hours in {} of {n} shops: {}; uploads that reached the gateway between the two calls, or a day boundary other than the shop-local midnight, may explain it; no setting changes it",
            differing.len(),
            shortened(&differing)
        ));
    }
    if !not_compared.is_empty() {
        status = Status::Warn;
        parts.push(format!(
            "not compared in {} of {n} shops: {}",
            not_compared.len(),
            shortened(&not_compared)
        ));
    }
    Check {
        name: NAME,
        status,
        finding: parts.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(walk_in: Option<f64>, passing: Option<f64>, outside: Option<f64>, walk_out: Option<f64>) -> ShopValues {
        ShopValues {
            walk_in,
            passing,
            outside,
            walk_out,
            ..ShopValues::default()
        }
    }

    /// 24 hours of 10 walk-ins, 30 passers-by, 40 outside and 9 walk-outs (`None` for a face
    /// device).
    fn hours(walk_out: Option<f64>) -> Vec<ShopValues> {
        vec![values(Some(10.0), Some(30.0), Some(40.0), walk_out); 24]
    }

    fn diff(count: &'static str, day: f64, hours: f64) -> CountDiff {
        CountDiff { count, day, hours }
    }

    #[test]
    fn a_day_equal_to_the_sum_of_its_hours_is_consistent() {
        let day = ShopValues {
            walk_in_rate: Some(0.3),
            ..values(Some(240.0), Some(720.0), Some(960.0), Some(216.0))
        };
        assert_eq!(
            compare_day(Some(&day), &hours(Some(9.0))),
            DayVerdict::Consistent,
            "rates are not compared"
        );
        // Without an outside counter nor walk-outs: the walk-ins alone.
        let hourly = vec![values(Some(3.0), None, None, None); 24];
        let day = values(Some(72.0), None, None, None);
        assert_eq!(compare_day(Some(&day), &hourly), DayVerdict::Consistent);
    }

    #[test]
    fn a_walk_in_below_the_sum_of_the_hours_alone_is_de_duplicated() {
        let de_duplicated = DayVerdict::DeDuplicated {
            day: 200.0,
            hours: 240.0,
        };
        // Outside traffic holds the walk-ins: short by as much, or equal.
        let day = values(Some(200.0), Some(720.0), Some(920.0), None);
        assert_eq!(compare_day(Some(&day), &hours(None)), de_duplicated);
        let day = values(Some(200.0), Some(720.0), Some(960.0), None);
        assert_eq!(compare_day(Some(&day), &hours(None)), de_duplicated);
        // No outside counter.
        let hourly = vec![values(Some(10.0), None, None, None); 24];
        let day = values(Some(200.0), None, None, None);
        assert_eq!(compare_day(Some(&day), &hourly), de_duplicated);
    }

    #[test]
    fn any_other_difference_is_inconsistent() {
        // A day above its hours.
        let day = values(Some(250.0), Some(720.0), Some(970.0), Some(216.0));
        assert_eq!(
            compare_day(Some(&day), &hours(Some(9.0))),
            DayVerdict::Differs(vec![diff("walk-in", 250.0, 240.0), diff("outside", 970.0, 960.0)])
        );
        // Walk-ins below, but passers-by differ too.
        let day = values(Some(200.0), Some(700.0), Some(900.0), None);
        assert_eq!(
            compare_day(Some(&day), &hours(None)),
            DayVerdict::Differs(vec![
                diff("walk-in", 200.0, 240.0),
                diff("passing", 700.0, 720.0),
                diff("outside", 900.0, 960.0),
            ])
        );
        // Walk-ins below, outside short by another amount.
        let day = values(Some(200.0), Some(720.0), Some(950.0), None);
        assert!(matches!(compare_day(Some(&day), &hours(None)), DayVerdict::Differs(_)));
        // Walk-outs alone.
        let day = values(Some(240.0), Some(720.0), Some(960.0), Some(200.0));
        assert_eq!(
            compare_day(Some(&day), &hours(Some(9.0))),
            DayVerdict::Differs(vec![diff("walk-out", 200.0, 216.0)])
        );
    }

    #[test]
    fn missing_values_and_absent_shops_are_not_compared() {
        let day = values(Some(240.0), Some(720.0), Some(960.0), Some(216.0));
        assert_eq!(
            compare_day(None, &hours(Some(9.0))),
            DayVerdict::NotCompared("no day row")
        );
        assert_eq!(compare_day(Some(&day), &[]), DayVerdict::NotCompared("no hourly rows"));
        // An hour without walk-ins: its sum says nothing, the other counts still do.
        let mut hourly = hours(Some(9.0));
        hourly[5].walk_in = None;
        let day = values(Some(100.0), Some(720.0), Some(960.0), Some(216.0));
        assert_eq!(compare_day(Some(&day), &hourly), DayVerdict::Consistent);
        // A day row that carries only what no hour carries.
        let hourly = vec![values(None, Some(30.0), Some(40.0), None); 24];
        let day = values(Some(100.0), None, None, Some(3.0));
        assert_eq!(
            compare_day(Some(&day), &hourly),
            DayVerdict::NotCompared("no count in both")
        );
    }
}
