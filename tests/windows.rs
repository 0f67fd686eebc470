//! Which hours a refresh asks for: after a gap, the hours since each target's last answer
//! (capped); and devices polled every few hours, each in its own hour, covering every hour
//! since its last answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use opretail_exporter::client::METHOD_DEVICES;
use opretail_exporter::model::{Convention, RowTime};
use opretail_exporter::simulator::Fault;

/// 14:30 in Shanghai: the latest complete hour is 13:00.
const NOW: &str = "2024-05-01T06:30:00Z";

const SHOPS: &[&str] = &["S_9601", "S_9602", "S_9603"];

/// After two hours of failures, the recovering refresh asks for the hours since the last
/// answer (up to `max_catch_up_hours`), and publishes the newest.
#[tokio::test]
async fn after_a_gap_a_refresh_asks_for_the_hours_since_the_last_answer() {
    // (max_catch_up_hours, rows per shop asked by the recovering refresh)
    for (cap, rows) in [(6, 3), (1, 2), (0, 1)] {
        let h = Harness::start_manual(utc(NOW), |url| {
            let mut c = config(url, SHOPS, &[]);
            c.max_catch_up_hours = cap;
            // Given, so that no whole-day call tells the row-time convention: every shop row
            // counted here is one the windows asked for.
            c.gateway.row_time = Convention::Fixed(RowTime::Start);
            c
        })
        .await;
        assert_eq!(h.sim.sim.shop_rows(), 3, "one hour of three shops");
        h.sim.sim.set_fault(Some(Fault::Code(-999)));
        for now in ["2024-05-01T07:30:00Z", "2024-05-01T08:30:00Z"] {
            h.clock.set(utc(now));
            assert_eq!(h.poll().await.failed_calls, 1);
        }
        h.sim.sim.set_fault(None);
        h.clock.set(utc("2024-05-01T09:30:00Z"));
        let report = h.poll().await;
        assert_eq!(report.failed_calls, 0);
        // 14:00 and 15:00 were missed: 14:00..=16:00 within the cap.
        assert_eq!(h.sim.sim.shop_rows() - 3, 3 * rows, "cap {cap}");
        let m = h.scrape().await;
        let sixteen = utc("2024-05-01T08:00:00Z").timestamp() as f64;
        for dep in ["9601", "9602", "9603"] {
            assert_eq!(
                m.value("opretail_shop_hour_timestamp_seconds", &[("shop_id", dep)]),
                sixteen,
                "cap {cap}: the newest hour is published"
            );
        }
        // The next hour asks one hour again.
        h.clock.set(utc("2024-05-01T10:30:00Z"));
        let before = h.sim.sim.shop_rows();
        h.poll().await;
        assert_eq!(h.sim.sim.shop_rows() - before, 3, "cap {cap}");
        h.stop().await;
    }
}

/// With `device_poll_interval: 3h`, each device is asked once in every three hours, the
/// calls spread over them, and a device resting this hour keeps its values and status.
#[tokio::test]
async fn devices_polled_every_three_hours_are_spread_and_keep_their_values() {
    let macs: Vec<String> = (1..=10).map(|n| format!("d47c44906f{n:02x}")).collect();
    let devices: Vec<(&str, &str, &str)> = macs.iter().map(|m| (m.as_str(), "", "")).collect();
    let h = Harness::start_manual(utc(NOW), |url| {
        let mut c = config(url, &[], &devices);
        c.device_poll_interval = Duration::from_secs(3 * 3600);
        c
    })
    .await;
    let calls = |m: &Exposition| {
        m.get("opretail_api_requests_total", &[("method", METHOD_DEVICES)])
            .unwrap_or(0.0)
    };
    let mut last = calls(&h.scrape().await);
    assert_eq!(last, 10.0, "every device at first");
    let mut per_hour = Vec::new();
    for now in ["2024-05-01T07:30:00Z", "2024-05-01T08:30:00Z", "2024-05-01T09:30:00Z"] {
        h.clock.set(utc(now));
        let report = h.poll().await;
        assert_eq!(report.failed_calls, 0);
        let m = h.scrape().await;
        per_hour.push(calls(&m) - last);
        last = calls(&m);
        let now = utc(now).timestamp() as f64;
        for mac in &macs {
            assert_eq!(m.value("opretail_target_up", &[("target", mac)]), 1.0, "{mac}");
            let hour = m.value("opretail_device_hour_timestamp_seconds", &[("mac", mac)]);
            assert!(
                now - hour <= 3.0 * 3600.0 + 1800.0,
                "{mac}: its values are at most 3 hours old"
            );
        }
    }
    assert_eq!(
        per_hour.iter().sum::<f64>(),
        10.0,
        "each device once in three hours: {per_hour:?}"
    );
    assert!(per_hour.iter().all(|n| *n < 10.0), "spread: {per_hour:?}");
    let budget = h.scrape().await.value("opretail_refresh_budget_seconds", &[]);
    assert!(budget > 0.0);
    h.stop().await;
}
