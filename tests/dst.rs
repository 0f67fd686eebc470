//! A zone with daylight saving: the exporter in Europe/Berlin, its clock stepped every 30
//! minutes across the spring-forward day (2026-03-29, 02:00 CET → 03:00 CEST) and the fall-back
//! day (2026-10-25, 03:00 CEST → 02:00 CET). Every poll reports the right hour, the published
//! `*_hour_timestamp_seconds` is that hour's true Unix start, the simulator is asked for the
//! local (naive) hours its rows are labelled with, and both 02:00s of the fall-back day are
//! refreshed. Backfill over the same days writes each existing hour once, at its true start.
//!
//! The simulator's own wall clock runs in Asia/Shanghai, 6–7 hours ahead of Berlin, so every
//! Berlin hour asked is complete to it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::net::SocketAddr;

use chrono::{DateTime, NaiveDate, Utc};
use common::*;
use opretail_exporter::client::Client;
use opretail_exporter::cmd::backfill::{self, Options};
use opretail_exporter::config::Config;
use opretail_exporter::metrics::MetricsStore;
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{device_hour, shop_hour, SimConfig, Simulator};

const BERLIN: chrono_tz::Tz = chrono_tz::Europe::Berlin;
const SHOPS: &[&str] = &["S_9601", "S_9602"];
const DEVICE: &str = "d47c44906f01";

fn berlin(url: &str) -> Config {
    let mut c = config(url, SHOPS, &[(DEVICE, "", "")]);
    c.timezone = BERLIN;
    c
}

/// One step of the clock: when (UTC), the local hour reported and its start (UTC), whether it
/// is the hour's first (priority) round, and the `starthour`/`endhour` of its shops call.
struct Step {
    now: &'static str,
    hour: &'static str,
    start: &'static str,
    priority: bool,
    window: (u32, u32),
}

const fn step(now: &'static str, hour: &'static str, start: &'static str, priority: bool, window: (u32, u32)) -> Step {
    Step {
        now,
        hour,
        start,
        priority,
        window,
    }
}

/// Steps the clock of an exporter started at the first step through the others, polling at
/// each, and checks every poll against its step.
async fn walk(steps: &[Step]) {
    let h = Harness::start_manual(utc(steps[0].now), berlin).await;
    let sim = h.sim.sim.config().clone();
    let mut asked = 0;
    for (i, s) in steps.iter().enumerate() {
        let report = if i == 0 {
            None // start_manual made the first round
        } else {
            h.clock.set(utc(s.now));
            Some(h.poll().await)
        };
        let start = utc(s.start).timestamp();
        if let Some(report) = &report {
            assert_eq!(report.hour, Some(local(s.hour)), "at {}", s.now);
            assert_eq!(report.hour_start, Some(start), "at {}", s.now);
            assert_eq!(report.priority, s.priority, "at {}: priority", s.now);
            assert_eq!(report.failed_calls, 0, "at {}", s.now);
        }
        // The true start of the hour, not the naive arithmetic of wall times.
        let local_start = DateTime::from_timestamp(start, 0).unwrap().with_timezone(&BERLIN);
        assert_eq!(local_start.naive_local(), local(s.hour), "the table itself");

        let m = h.scrape().await;
        for dep in ["9601", "9602"] {
            let labels = [("shop_id", dep)];
            assert_eq!(
                m.value("opretail_shop_hour_timestamp_seconds", &labels),
                start as f64,
                "at {}: shop {dep}",
                s.now
            );
            let want = shop_hour(sim.shop(dep.parse().unwrap()).unwrap(), local(s.hour));
            assert_eq!(
                m.value("opretail_shop_walk_in", &labels),
                want.walk_in as f64,
                "at {}: shop {dep} has the row of {}",
                s.now,
                s.hour
            );
        }
        let labels = [("mac", DEVICE)];
        assert_eq!(
            m.value("opretail_device_hour_timestamp_seconds", &labels),
            start as f64,
            "at {}",
            s.now
        );
        let want = device_hour(sim.device(DEVICE).unwrap(), local(s.hour));
        assert_eq!(m.value("opretail_device_walk_in", &labels), want.walk_in as f64);

        // The shops call asked the hour's local day, narrowed to local hours.
        let all = h.sim.sim.shops_asked();
        let (new, days): (Vec<_>, Vec<_>) = all[asked..]
            .iter()
            .cloned()
            .partition(|a| a.time_type.as_deref() != Some("2"));
        asked = all.len();
        // A refresh also asks the day figures of the local day now: one call.
        assert_eq!(days.len(), usize::from(s.priority), "at {}: {days:?}", s.now);
        if let Some(d) = days.first() {
            let today = opretail_exporter::hours::local_day(utc(s.now), chrono_tz::Europe::Berlin);
            assert_eq!(d.start_time, format!("{today} 00:00:00"), "at {}", s.now);
        }
        assert_eq!(new.len(), 1, "at {}: one shops call: {new:?}", s.now);
        let day = local(s.hour).date();
        assert_eq!(new[0].start_time, format!("{day} 00:00:00"), "at {}", s.now);
        assert_eq!(new[0].end_time, format!("{day} 23:59:59"), "at {}", s.now);
        let (first, end) = s.window;
        assert_eq!(
            (new[0].starthour.as_deref(), new[0].endhour.as_deref()),
            (Some(first.to_string().as_str()), Some(end.to_string().as_str())),
            "at {}",
            s.now
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn spring_forward_reports_every_real_hour_and_never_the_missing_one() {
    walk(&[
        step(
            "2026-03-28T22:30:00Z",
            "2026-03-28 22:00:00",
            "2026-03-28T21:00:00Z",
            true,
            (22, 23),
        ),
        step(
            "2026-03-28T23:00:00Z",
            "2026-03-28 23:00:00",
            "2026-03-28T22:00:00Z",
            true,
            (23, 24),
        ),
        step(
            "2026-03-28T23:30:00Z",
            "2026-03-28 23:00:00",
            "2026-03-28T22:00:00Z",
            false,
            (23, 24),
        ),
        step(
            "2026-03-29T00:00:00Z",
            "2026-03-29 00:00:00",
            "2026-03-28T23:00:00Z",
            true,
            (0, 1),
        ),
        step(
            "2026-03-29T00:30:00Z",
            "2026-03-29 00:00:00",
            "2026-03-28T23:00:00Z",
            false,
            (0, 1),
        ),
        // 03:00 CEST: the hour just ended is 01:00 CET.
        step(
            "2026-03-29T01:00:00Z",
            "2026-03-29 01:00:00",
            "2026-03-29T00:00:00Z",
            true,
            (1, 2),
        ),
        step(
            "2026-03-29T01:30:00Z",
            "2026-03-29 01:00:00",
            "2026-03-29T00:00:00Z",
            false,
            (1, 2),
        ),
        // 04:00 CEST: 03:00 CEST began an hour after 01:00 CET. The window runs from the local
        // hour after the last answer, 02:00, which the gateway labels but the clocks skipped.
        step(
            "2026-03-29T02:00:00Z",
            "2026-03-29 03:00:00",
            "2026-03-29T01:00:00Z",
            true,
            (2, 4),
        ),
        step(
            "2026-03-29T02:30:00Z",
            "2026-03-29 03:00:00",
            "2026-03-29T01:00:00Z",
            false,
            (3, 4),
        ),
        step(
            "2026-03-29T03:00:00Z",
            "2026-03-29 04:00:00",
            "2026-03-29T02:00:00Z",
            true,
            (4, 5),
        ),
        step(
            "2026-03-29T03:30:00Z",
            "2026-03-29 04:00:00",
            "2026-03-29T02:00:00Z",
            false,
            (4, 5),
        ),
    ])
    .await;
}

#[tokio::test]
async fn fall_back_refreshes_the_repeated_hour_twice_with_two_starts() {
    walk(&[
        step(
            "2026-10-24T21:30:00Z",
            "2026-10-24 22:00:00",
            "2026-10-24T20:00:00Z",
            true,
            (22, 23),
        ),
        step(
            "2026-10-24T22:00:00Z",
            "2026-10-24 23:00:00",
            "2026-10-24T21:00:00Z",
            true,
            (23, 24),
        ),
        step(
            "2026-10-24T22:30:00Z",
            "2026-10-24 23:00:00",
            "2026-10-24T21:00:00Z",
            false,
            (23, 24),
        ),
        step(
            "2026-10-24T23:00:00Z",
            "2026-10-25 00:00:00",
            "2026-10-24T22:00:00Z",
            true,
            (0, 1),
        ),
        step(
            "2026-10-24T23:30:00Z",
            "2026-10-25 00:00:00",
            "2026-10-24T22:00:00Z",
            false,
            (0, 1),
        ),
        step(
            "2026-10-25T00:00:00Z",
            "2026-10-25 01:00:00",
            "2026-10-24T23:00:00Z",
            true,
            (1, 2),
        ),
        step(
            "2026-10-25T00:30:00Z",
            "2026-10-25 01:00:00",
            "2026-10-24T23:00:00Z",
            false,
            (1, 2),
        ),
        // 02:00 CET (the second time): the first 02:00, CEST, has ended.
        step(
            "2026-10-25T01:00:00Z",
            "2026-10-25 02:00:00",
            "2026-10-25T00:00:00Z",
            true,
            (2, 3),
        ),
        step(
            "2026-10-25T01:30:00Z",
            "2026-10-25 02:00:00",
            "2026-10-25T00:00:00Z",
            false,
            (2, 3),
        ),
        // 03:00 CET: the second 02:00, CET, has ended: a new hour, refreshed, its own start.
        step(
            "2026-10-25T02:00:00Z",
            "2026-10-25 02:00:00",
            "2026-10-25T01:00:00Z",
            true,
            (2, 3),
        ),
        step(
            "2026-10-25T02:30:00Z",
            "2026-10-25 02:00:00",
            "2026-10-25T01:00:00Z",
            false,
            (2, 3),
        ),
        step(
            "2026-10-25T03:00:00Z",
            "2026-10-25 03:00:00",
            "2026-10-25T02:00:00Z",
            true,
            (3, 4),
        ),
        step(
            "2026-10-25T03:30:00Z",
            "2026-10-25 03:00:00",
            "2026-10-25T02:00:00Z",
            false,
            (3, 4),
        ),
        step(
            "2026-10-25T04:00:00Z",
            "2026-10-25 04:00:00",
            "2026-10-25T03:00:00Z",
            true,
            (4, 5),
        ),
        step(
            "2026-10-25T04:30:00Z",
            "2026-10-25 04:00:00",
            "2026-10-25T03:00:00Z",
            false,
            (4, 5),
        ),
    ])
    .await;
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

/// Backfills `day` at `now` in Berlin; returns the plan's latest complete hour and shop 9601's
/// (timestamp, walk-ins) samples, in time order.
async fn backfill_day(day: &str, now: &str) -> (String, Vec<(i64, f64)>) {
    let clock = Clock::manual(utc(now));
    let sim = Simulator::new(SimConfig::demo(clock.clone()))
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("simulator starts");
    let cfg = berlin(&sim.url());
    let store = MetricsStore::new("test", "test").expect("store");
    let client = Client::new(&cfg.gateway, clock.clone(), store.api().clone()).expect("client");
    let plan = backfill::plan(&cfg, &Options::new(date(day), date(day)), clock.now()).expect("plan");
    let b = backfill::run(&cfg, &client, &plan, |_| {}).await;
    assert!(b.failures.is_empty(), "{:?}", b.failures);
    let mut out = Vec::new();
    b.write_openmetrics(&mut out).expect("write");
    let om = String::from_utf8(out).expect("utf-8");
    let samples = om
        .lines()
        .filter(|l| l.starts_with("opretail_shop_walk_in{shop_id=\"9601\""))
        .map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let t: i64 = parts.next().unwrap().parse().unwrap();
            let v: f64 = parts.next().unwrap().parse().unwrap();
            (t, v)
        })
        .collect();
    sim.shutdown().await;
    (plan.last_complete.to_string(), samples)
}

/// Every hour start of the local day `day` in Berlin, from its first instant, `hours` of them.
fn hour_starts(day: &str, hours: i64) -> Vec<i64> {
    let first = opretail_exporter::hours::day_start(date(day), BERLIN).expect("the day exists");
    (0..hours).map(|k| first + k * 3600).collect()
}

fn walk_ins(starts: &[i64]) -> Vec<(i64, f64)> {
    let sim = SimConfig::demo(Clock::manual(Utc::now()));
    let shop = sim.shop(9601).unwrap();
    starts
        .iter()
        .map(|t| {
            let hour = DateTime::from_timestamp(*t, 0)
                .unwrap()
                .with_timezone(&BERLIN)
                .naive_local();
            (*t, shop_hour(shop, hour).walk_in as f64)
        })
        .collect()
}

#[tokio::test]
async fn backfill_writes_23_hours_of_the_spring_forward_day() {
    // The whole day: 23 real hours, no 02:00.
    let (_, samples) = backfill_day("2026-03-29", "2026-03-30T12:00:00Z").await;
    assert_eq!(samples, walk_ins(&hour_starts("2026-03-29", 23)));
    // At 03:30 CEST, 00:00 and 01:00 CET are complete.
    let (last, samples) = backfill_day("2026-03-29", "2026-03-29T01:30:00Z").await;
    assert_eq!(last, "2026-03-29 01:00:00");
    assert_eq!(samples, walk_ins(&hour_starts("2026-03-29", 2)));
}

#[tokio::test]
async fn backfill_writes_the_repeated_hour_of_the_fall_back_day_once() {
    // 25 real hours; the gateway labels 24, and the two 02:00s share one row, written at the
    // first start (00:00 UTC), none at the second (01:00 UTC).
    let (_, samples) = backfill_day("2026-10-25", "2026-10-26T12:00:00Z").await;
    let mut starts = hour_starts("2026-10-25", 25);
    starts.retain(|t| *t != utc("2026-10-25T01:00:00Z").timestamp());
    assert_eq!(samples, walk_ins(&starts));
    // During the second 02:00 the row of 02:00 is not complete yet; after it, it is.
    let (last, samples) = backfill_day("2026-10-25", "2026-10-25T01:30:00Z").await;
    assert_eq!(last, "2026-10-25 01:00:00");
    assert_eq!(samples, walk_ins(&starts[..2]));
    let (last, samples) = backfill_day("2026-10-25", "2026-10-25T02:30:00Z").await;
    assert_eq!(last, "2026-10-25 02:00:00");
    assert_eq!(samples, walk_ins(&starts[..3]));
}
