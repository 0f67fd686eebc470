//! The request scheduler: the first round for a new hour is a priority refresh, later rounds
//! in the same hour re-poll (late data) with their calls spread over the interval, a re-poll
//! overtaken by a new hour stops, and sharded replicas split the targets between them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{config, utc, Harness};
use opretail_exporter::config::Shard;

const NOW: &str = "2024-05-01T06:30:00Z";
const DEVICES: &[(&str, &str, &str)] = &[
    ("d47c44906f01", "", ""),
    ("d47c44906f02", "", ""),
    ("d47c44906f03", "", ""),
];

/// An exporter whose every round the test runs itself, so that no round of the poll loop
/// races the ones under test.
async fn harness(interval: Duration) -> Harness {
    Harness::start_manual(utc(NOW), |url| {
        let mut c = config(url, &["O_1002"], DEVICES);
        c.poll_interval = interval;
        c
    })
    .await
}

#[tokio::test]
async fn a_new_hour_is_a_priority_refresh_then_re_polls_follow() {
    let h = harness(Duration::from_millis(400)).await;
    let m = h.scrape().await;
    assert_eq!(
        m.value("opretail_refresh_requests", &[]),
        5.0,
        "one shop batch, for the hour and the day figures, and three devices"
    );
    assert!(m.value("opretail_refresh_duration_seconds", &[]) > 0.0);

    // Same hour: a re-poll, its 4 calls 100 ms apart.
    let requests = h.sim.sim.requests();
    let report = h.exporter.poller.poll_scheduled().await;
    assert!(!report.priority);
    assert_eq!((report.calls, report.failed_calls, report.skipped_calls), (4, 0, 0));
    assert_eq!(h.sim.sim.requests() - requests, 4, "late data is asked for again");

    // A new hour: priority again.
    h.clock.set(utc("2024-05-01T07:01:00Z"));
    let report = h.poll().await;
    assert!(report.priority);
    assert_eq!(
        report.hour.map(|t| t.to_string()),
        Some("2024-05-01 14:00:00".to_string())
    );
    h.stop().await;
}

#[tokio::test]
async fn a_re_poll_overtaken_by_a_new_hour_stops_and_keeps_what_it_had() {
    // 4 calls over 3 s: one every 750 ms.
    let h = harness(Duration::from_secs(3)).await;
    let before = h.scrape().await;
    let requests = h.sim.sim.requests();
    let poller = Arc::clone(&h.exporter.poller);
    let round = tokio::spawn(async move { poller.poll_scheduled().await });
    // Wait until the first call has reached the gateway, then let the hour turn.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while h.sim.sim.requests() == requests {
        assert!(tokio::time::Instant::now() < deadline, "the re-poll never called");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.clock.set(utc("2024-05-01T07:00:30Z"));
    let report = round.await.expect("round");
    assert!(!report.priority);
    assert_eq!(
        (report.calls, report.skipped_calls),
        (4, 3),
        "the three later calls are skipped"
    );
    assert_eq!(h.sim.sim.requests() - requests, 1);
    let m = h.scrape().await;
    for mac in ["d47c44906f01", "d47c44906f02", "d47c44906f03"] {
        assert_eq!(
            m.value("opretail_target_up", &[("target", mac)]),
            1.0,
            "{mac} keeps its status"
        );
        assert_eq!(
            m.value("opretail_device_walk_in", &[("mac", mac)]),
            before.value("opretail_device_walk_in", &[("mac", mac)]),
            "{mac} keeps its value"
        );
    }
    // The next round is the priority refresh of the new hour.
    assert!(h.poll().await.priority);
    h.stop().await;
}

#[tokio::test]
async fn shards_split_the_chain_without_overlap() {
    let shops: Vec<String> = (9601..=9620).map(|d| format!("S_{d}")).collect();
    let shop_refs: Vec<&str> = shops.iter().map(String::as_str).collect();
    let macs: Vec<String> = (1..=10).map(|n| format!("d47c44906f{n:02x}")).collect();
    let devices: Vec<(&str, &str, &str)> = macs.iter().map(|m| (m.as_str(), "", "")).collect();
    let mut seen_shops = BTreeSet::new();
    let mut seen_targets = BTreeSet::new();
    let mut total_shops = 0;
    for index in 0..2 {
        let h = Harness::start(utc(NOW), |url| {
            let mut c = config(url, &shop_refs, &devices);
            c.sharding = Some(Shard::new(index, 2).expect("shard"));
            c
        })
        .await;
        let m = h.scrape().await;
        let mine = m.label_values("opretail_shop_walk_in", "shop_id");
        assert!(!mine.is_empty(), "shard {index} polls some shops");
        total_shops += mine.len();
        seen_shops.extend(mine);
        for t in m.label_values("opretail_target_up", "target") {
            assert!(seen_targets.insert(t.clone()), "{t} polled by two shards");
        }
        h.stop().await;
    }
    assert_eq!((total_shops, seen_shops.len()), (20, 20), "every shop once");
    assert_eq!(seen_targets.len(), 30, "every target once");
}
