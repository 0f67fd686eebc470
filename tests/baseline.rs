//! The walk-in baseline against the simulator on a pinned clock: the published median and
//! 10th percentile equal those of the simulator's own traffic at the same weekday and hour of
//! the past weeks; the first fill asks every batch for each day of the window once, the next
//! day only yesterday; a failed day is asked again, then kept; `baseline.weeks: 0` asks and
//! publishes nothing; closed days (configured closed dates) are left out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use common::*;
use opretail_exporter::config::{BaselineConfig, Config, DateSpan};
use opretail_exporter::model::{Convention, RowTime};
use opretail_exporter::simulator::{shop_hour, Fault, ShopsAsked};

/// Wednesday 2024-05-29 14:30 in Shanghai: the reported hour is 13:00.
const NOW: &str = "2024-05-29T06:30:00Z";

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A config of `shops` with a baseline over `weeks` weeks, rows labelled by their start (so no
/// whole-day call probes the convention), `max_ids` ids a call.
fn with_baseline(url: &str, shops: &[&str], weeks: usize, max_ids: usize) -> Config {
    let mut c = config(url, shops, &[]);
    c.baseline = BaselineConfig { weeks };
    c.gateway.row_time = Convention::Fixed(RowTime::Start);
    c.gateway.max_ids_per_request = max_ids;
    c
}

/// The whole-day hourly calls the simulator answered: (ids, day).
fn day_calls(asked: &[ShopsAsked]) -> Vec<(String, NaiveDate)> {
    asked
        .iter()
        .filter(|a| a.time_type.as_deref() == Some("1") && a.starthour.is_none())
        .filter_map(|a| {
            let (from, to) = (a.start_time.get(..10)?, a.end_time.get(..10)?);
            (from == to).then(|| (a.id.clone(), date(from)))
        })
        .collect()
}

/// PromQL's quantile, written out: rank phi·(n−1), linear between the closest ranks.
fn promql_quantile(phi: f64, values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = phi * (v.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, (rank.ceil() as usize).min(v.len() - 1));
    v[lo] + (v[hi] - v[lo]) * (rank - rank.floor())
}

/// The simulator's walk-ins of shop `dep` at `hour` of each of the `weeks` weeks before.
fn past_walk_ins(h: &Harness, dep: u64, hour: NaiveDateTime, weeks: i64) -> Vec<f64> {
    let shop = h.sim.sim.config().shop(dep).unwrap();
    (1..=weeks)
        .map(|k| shop_hour(shop, hour - chrono::Duration::days(7 * k)).walk_in as f64)
        .collect()
}

#[tokio::test]
async fn the_baseline_is_the_median_and_p10_of_the_simulators_past_weeks() {
    let h = Harness::start_manual(utc(NOW), |url| with_baseline(url, &["O_1002", "S_9601"], 4, 50)).await;
    let m = h.scrape().await;
    let hour = local("2024-05-29 13:00:00");
    let shops: Vec<u64> = std::iter::once(9601)
        .chain(h.sim.sim.config().orgs[1].shops.iter().map(|s| s.dep_id))
        .collect();
    assert_eq!(shops.len(), 9);
    for dep in shops {
        let id = dep.to_string();
        let values = past_walk_ins(&h, dep, hour, 4);
        let shop = h.sim.sim.config().shop(dep).unwrap();
        let labels = [
            ("shop_id", id.as_str()),
            ("shop_name", shop.name.as_str()),
            ("shop_code", shop.code.as_str()),
        ];
        let with = |stat: &'static str| [labels[0], labels[1], labels[2], ("stat", stat)];
        let median = m.value("opretail_shop_walk_in_baseline", &with("median"));
        let p10 = m.value("opretail_shop_walk_in_baseline", &with("p10"));
        assert!(
            (median - promql_quantile(0.5, &values)).abs() < 1e-9,
            "{id}: {median} vs {values:?}"
        );
        assert!(
            (p10 - promql_quantile(0.1, &values)).abs() < 1e-9,
            "{id}: {p10} vs {values:?}"
        );
        assert_eq!(m.value("opretail_shop_walk_in_baseline_samples", &labels), 4.0);
        // Beside the shop's hourly series, with the same labels, for the same hour.
        assert!(m.get("opretail_shop_walk_in", &labels).is_some());
        let stamp = m.value("opretail_shop_hour_timestamp_seconds", &labels);
        assert_eq!(stamp as i64, utc("2024-05-29T05:00:00Z").timestamp());
        assert_eq!(hour.hour(), 13);
    }
    h.stop().await;
}

#[tokio::test]
async fn the_first_fill_asks_each_batch_for_each_day_once_then_one_day_a_day() {
    let shops = ["S_9601", "S_9602", "S_9603", "S_9604", "S_9605", "S_9606"];
    // Four ids a call: two batches.
    let h = Harness::start_manual(utc(NOW), |url| with_baseline(url, &shops, 4, 4)).await;
    let fill = day_calls(&h.sim.sim.shops_asked());
    assert_eq!(fill.len(), 2 * 7 * 4, "{fill:?}");
    let unique: BTreeSet<&(String, NaiveDate)> = fill.iter().collect();
    assert_eq!(unique.len(), fill.len(), "no day asked twice");
    let days: BTreeSet<NaiveDate> = fill.iter().map(|(_, d)| *d).collect();
    assert_eq!(days.first(), Some(&date("2024-05-01")));
    assert_eq!(days.last(), Some(&date("2024-05-28")));
    assert_eq!(days.len(), 28);
    let batches: BTreeSet<&str> = fill.iter().map(|(ids, _)| ids.as_str()).collect();
    assert_eq!(batches.len(), 2, "{batches:?}");

    // Another round the same hour: nothing new to ask.
    let report = h.poll().await;
    assert_eq!(report.history_calls, 0);
    assert_eq!(day_calls(&h.sim.sim.shops_asked()).len(), fill.len());

    // The next day: yesterday only, one call per batch.
    h.clock.set(utc("2024-05-30T06:30:00Z"));
    let report = h.poll().await;
    assert_eq!((report.history_calls, report.history_failed_calls), (2, 0));
    let all = day_calls(&h.sim.sim.shops_asked());
    let new: Vec<&(String, NaiveDate)> = all.iter().skip(fill.len()).collect();
    assert_eq!(new.len(), 2, "{new:?}");
    assert!(new.iter().all(|(_, d)| *d == date("2024-05-29")));
    let unique: BTreeSet<&(String, NaiveDate)> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "no day asked twice");
    // The history holds the window: 28 days of 6 shops.
    assert_eq!(h.exporter.poller.history_size().await.0, 6 * 28);
    // The gateway requests count the history calls too.
    let m = h.scrape().await;
    let requests = m.find("opretail_api_requests_total", &[]).iter().sum::<f64>();
    assert!(requests >= (all.len() + 2 * 3) as f64, "{requests}");
    h.stop().await;
}

#[tokio::test]
async fn a_day_whose_call_failed_is_asked_again_and_then_kept() {
    let h = Harness::start_manual(utc(NOW), |url| with_baseline(url, &["S_9601", "S_9602"], 2, 50)).await;
    assert_eq!(day_calls(&h.sim.sim.shops_asked()).len(), 14);
    h.clock.set(utc("2024-05-30T06:30:00Z"));
    h.sim.sim.set_fault(Some(Fault::Code(-500)));
    let report = h.poll().await;
    assert_eq!((report.history_calls, report.history_failed_calls), (1, 1));
    h.sim.sim.set_fault(None);
    let report = h.poll().await;
    assert_eq!((report.history_calls, report.history_failed_calls), (1, 0));
    let asked = day_calls(&h.sim.sim.shops_asked());
    assert_eq!(asked.last().map(|(_, d)| *d), Some(date("2024-05-29")));
    assert_eq!(asked.len(), 15);
    // Kept: not asked again.
    let report = h.poll().await;
    assert_eq!(report.history_calls, 0);
    assert_eq!(day_calls(&h.sim.sim.shops_asked()).len(), 15);
    // Thursday 13:00: the baseline of two Thursdays, the latest fetched before the fault.
    let m = h.scrape().await;
    let values = past_walk_ins(&h, 9601, local("2024-05-30 13:00:00"), 2);
    let median = m.value(
        "opretail_shop_walk_in_baseline",
        &[("shop_id", "9601"), ("stat", "median")],
    );
    assert!((median - promql_quantile(0.5, &values)).abs() < 1e-9);
    h.stop().await;
}

#[tokio::test]
async fn weeks_zero_makes_no_history_calls_and_publishes_no_baseline() {
    let h = Harness::start_manual(utc(NOW), |url| with_baseline(url, &["O_1001", "S_9620"], 0, 50)).await;
    let report = h.poll().await;
    assert_eq!(report.history_calls, 0);
    assert!(day_calls(&h.sim.sim.shops_asked()).is_empty());
    let m = h.scrape().await;
    assert!(m.get("opretail_shop_walk_in", &[("shop_id", "9620")]).is_some());
    assert!(m.find("opretail_shop_walk_in_baseline", &[]).is_empty());
    assert!(m.find("opretail_shop_walk_in_baseline_samples", &[]).is_empty());
    assert_eq!(h.exporter.poller.history_size().await.0, 0);
    h.stop().await;
}

#[tokio::test]
async fn one_week_is_too_few_for_a_baseline() {
    let h = Harness::start_manual(utc(NOW), |url| with_baseline(url, &["S_9601"], 1, 50)).await;
    assert_eq!(day_calls(&h.sim.sim.shops_asked()).len(), 7);
    let m = h.scrape().await;
    assert!(m.get("opretail_shop_walk_in", &[("shop_id", "9601")]).is_some());
    assert!(m.find("opretail_shop_walk_in_baseline", &[]).is_empty());
    h.stop().await;
}

/// The baseline configuration of `with_baseline`, with the business calendar closing `dates`.
fn closed_on(url: &str, dates: &[&str]) -> Config {
    let mut c = with_baseline(url, &["S_9601"], 4, 50);
    c.calendar.closed_dates = dates
        .iter()
        .map(|d| DateSpan {
            first: date(d),
            last: date(d),
        })
        .collect();
    c
}

#[tokio::test]
async fn closed_days_are_left_out_of_the_baseline() {
    let h = Harness::start_manual(utc(NOW), |url| closed_on(url, &["2024-05-22"])).await;
    let hour = local("2024-05-29 13:00:00");
    h.poll().await;
    let m = h.scrape().await;
    let shop = [("shop_id", "9601")];
    assert_eq!(m.value("opretail_shop_walk_in_baseline_samples", &shop), 3.0);
    let values: Vec<f64> = past_walk_ins(&h, 9601, hour, 4).into_iter().skip(1).collect();
    let median = m.value(
        "opretail_shop_walk_in_baseline",
        &[("shop_id", "9601"), ("stat", "median")],
    );
    assert!((median - promql_quantile(0.5, &values)).abs() < 1e-9);
    h.stop().await;

    // Three of four weeks closed: no baseline.
    let h = Harness::start_manual(utc(NOW), |url| {
        closed_on(url, &["2024-05-22", "2024-05-15", "2024-05-08"])
    })
    .await;
    h.poll().await;
    let m = h.scrape().await;
    assert!(m.find("opretail_shop_walk_in_baseline", &[]).is_empty());
    assert!(m.get("opretail_shop_walk_in", &shop).is_some());
    h.stop().await;
}

#[tokio::test]
async fn an_organisation_too_big_for_a_day_call_is_asked_through_its_shops_once() {
    // O_1001 has 12 shops: 288 rows a day, over 200 rows a call, so 8 shops a call (2 calls).
    let h = Harness::start_manual(utc(NOW), |url| {
        let mut c = with_baseline(url, &["O_1001"], 2, 50);
        c.gateway.max_rows_per_call = 200;
        c
    })
    .await;
    let fill = day_calls(&h.sim.sim.shops_asked());
    assert_eq!(fill.len(), 2 * 14, "{fill:?}");
    assert!(fill.iter().all(|(ids, _)| ids.starts_with("S_")), "{fill:?}");
    let report = h.poll().await;
    assert_eq!(report.history_calls, 0, "the organisation has answered every day");
    let m = h.scrape().await;
    let values = past_walk_ins(&h, 9605, local("2024-05-29 13:00:00"), 2);
    let median = m.value(
        "opretail_shop_walk_in_baseline",
        &[("shop_id", "9605"), ("stat", "median")],
    );
    assert!((median - promql_quantile(0.5, &values)).abs() < 1e-9);
    assert_eq!(m.find("opretail_shop_walk_in_baseline_samples", &[]).len(), 12);
    h.stop().await;
}

#[tokio::test]
async fn the_fill_takes_only_the_time_a_poll_leaves_and_goes_on_at_the_next_polls() {
    let shops = ["S_9601", "S_9602", "S_9603", "S_9604", "S_9605", "S_9606"];
    // 56 history calls at 20 requests a second need almost 3 s; a poll leaves at most 1 s.
    let h = Harness::start_manual(utc(NOW), |url| {
        let mut c = with_baseline(url, &shops, 4, 4);
        c.poll_interval = std::time::Duration::from_secs(1);
        c.gateway.requests_per_second = 20.0;
        c
    })
    .await;
    let first = day_calls(&h.sim.sim.shops_asked()).len();
    assert!(first < 56, "{first} history calls in the first poll");
    let mut polls = 0;
    while day_calls(&h.sim.sim.shops_asked()).len() < 56 {
        polls += 1;
        assert!(polls <= 30, "the fill is not done after {polls} more polls");
        let report = h.poll().await;
        // Every round still refreshes its hour first.
        assert_eq!(report.calls, 2);
    }
    let all = day_calls(&h.sim.sim.shops_asked());
    let unique: BTreeSet<&(String, NaiveDate)> = all.iter().collect();
    assert_eq!((all.len(), unique.len()), (56, 56), "no day asked twice");
    let m = h.scrape().await;
    assert_eq!(m.find("opretail_shop_walk_in_baseline_samples", &[]).len(), 6);
    h.stop().await;
}

#[tokio::test]
async fn a_target_removed_from_the_configuration_loses_its_history() {
    let h = Harness::start_manual(utc(NOW), |url| with_baseline(url, &["S_9601", "O_1002"], 2, 50)).await;
    // 9601 and the 8 shops of O_1002, 14 days each.
    assert_eq!(h.exporter.poller.history_size().await.0, 9 * 14);
    let poller = &h.exporter.poller;
    let mut config = (*poller.config()).clone();
    config.shops = config
        .shops
        .iter()
        .filter(|s| s.id.to_string() == "S_9601")
        .cloned()
        .collect();
    poller.replace(Arc::new(config), poller.client());
    let report = h.poll().await;
    assert_eq!(report.history_calls, 0, "nothing new to ask");
    assert_eq!(h.exporter.poller.history_size().await.0, 14);
    let m = h.scrape().await;
    assert_eq!(
        m.label_values("opretail_shop_walk_in_baseline_samples", "shop_id"),
        ["9601"]
    );
    h.stop().await;
}
