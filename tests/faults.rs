//! The fault matrix: for every way the gateway can fail, the exporter stays up, `/metrics`
//! answers within a second during the fault, the right error counter moves by the right number
//! of attempts, the last good values stay, and the first poll after the fault clears restores
//! everything. Also: values of targets failing for longer than `stale_after` go away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, utc, Exposition, Harness};
use opretail_exporter::client::{METHOD_DEVICES, METHOD_SHOPS};
use opretail_exporter::simulator::Fault;

const NOW: &str = "2024-05-01T06:30:00Z";
const DEVICES: &[(&str, &str, &str)] = &[("d47c44906f01", "Entrance A", "9601"), ("d47c44906f02", "", "")];
const TARGETS: &[&str] = &["S_9603", "O_1002", "d47c44906f01", "d47c44906f02"];

async fn harness() -> Harness {
    Harness::start(utc(NOW), |url| {
        let mut c = config(url, &["S_9603", "O_1002"], DEVICES);
        c.gateway.max_response_bytes = 256 * 1024;
        c.stale_after = Duration::from_secs(30 * 60);
        c
    })
    .await
}

/// The value series (shops and devices) of a scrape, for before/after comparisons.
fn values(m: &Exposition) -> Vec<(String, String, f64)> {
    m.samples
        .iter()
        .filter(|(n, _, _)| n.starts_with("opretail_shop_") || n.starts_with("opretail_device_"))
        .map(|(n, l, v)| (n.clone(), format!("{l:?}"), *v))
        .collect()
}

fn errors(m: &Exposition, method: &str, code: &str) -> f64 {
    m.get("opretail_api_errors_total", &[("method", method), ("code", code)])
        .unwrap_or(0.0)
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Fault(Fault),
    Refused,
}

#[tokio::test]
async fn every_fault_is_counted_survived_and_recovered() {
    let mut h = harness().await;
    let base = h.scrape().await;
    let base_values = values(&base);
    assert_eq!(
        base_values
            .iter()
            .filter(|(n, _, _)| n == "opretail_shop_walk_in")
            .count(),
        9
    );

    // (case, error code label, transient: retried twice more)
    let mut cases: Vec<(Case, String, bool)> = vec![
        (Case::Fault(Fault::Http(500)), "http_500".into(), true),
        (Case::Fault(Fault::Http(502)), "http_502".into(), true),
        (Case::Fault(Fault::Http(503)), "http_503".into(), true),
        (Case::Fault(Fault::Hang), "timeout".into(), true),
        (Case::Refused, "transport".into(), true),
        (Case::Fault(Fault::Truncated), "decode".into(), false),
        (Case::Fault(Fault::WrongContentType), "decode".into(), false),
        (Case::Fault(Fault::Garbage), "decode".into(), false),
        (Case::Fault(Fault::Oversized(1024)), "too_large".into(), false),
    ];
    for code in (1..=17).chain([-100, -500, -999, 9_990_001]) {
        let transient = matches!(code, 16 | -100 | -500 | -999);
        cases.push((Case::Fault(Fault::Code(code)), code.to_string(), transient));
    }

    let scraper = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    for (case, code, transient) in cases {
        let before = h.scrape().await;
        match case {
            Case::Fault(f) => h.sim.sim.set_fault(Some(f)),
            Case::Refused => h.sim.stop_listening().await,
        }
        let poller = Arc::clone(&h.exporter.poller);
        let poll = tokio::spawn(async move { poller.poll_once().await });
        // While the poll struggles, /metrics answers within a second.
        let scraped = scraper.get(h.url("/metrics")).send().await;
        let scraped = match scraped {
            Ok(r) => r.text().await,
            Err(e) => Err(e),
        };
        assert!(
            scraped.is_ok_and(|body| body.contains("opretail_shop_walk_in")),
            "{case:?}: /metrics within 1 s"
        );
        let report = poll.await.expect("poll task");
        assert_eq!(report.failed_calls, report.calls, "{case:?}: every call fails");

        let m = h.scrape().await;
        let attempts = if transient { 3.0 } else { 1.0 };
        let splits = |m: &Exposition| {
            m.get("opretail_api_batch_splits_total", &[("method", METHOD_SHOPS)])
                .unwrap_or(0.0)
        };
        let shop_errors = errors(&m, METHOD_SHOPS, &code) - errors(&before, METHOD_SHOPS, &code);
        if code == "too_large" {
            // An answer too large is met by asking in parts, down to single shops; here every
            // part is too large, so nothing is remembered.
            assert!(shop_errors > 2.0, "{case:?}: {shop_errors} shop calls");
            assert!(splits(&m) > splits(&before), "{case:?}: split");
        } else {
            assert_eq!(shop_errors, attempts, "{case:?}: shop call counted as {code}");
            assert_eq!(splits(&m), splits(&before), "{case:?}: not split");
        }
        assert_eq!(
            errors(&m, METHOD_DEVICES, &code) - errors(&before, METHOD_DEVICES, &code),
            2.0 * attempts,
            "{case:?}: device calls counted as {code}"
        );
        let retries = |m: &Exposition| {
            m.get("opretail_api_retries_total", &[("method", METHOD_SHOPS)])
                .unwrap_or(0.0)
        };
        assert_eq!(retries(&m) - retries(&before), attempts - 1.0, "{case:?}: retries");
        assert_eq!(values(&m), base_values, "{case:?}: last good values kept");
        for t in TARGETS {
            assert_eq!(
                m.value("opretail_target_up", &[("target", t)]),
                0.0,
                "{case:?}: {t} down"
            );
            assert_eq!(
                m.value("opretail_target_last_success_timestamp_seconds", &[("target", t)]),
                utc(NOW).timestamp() as f64,
                "{case:?}: {t} last success stays"
            );
        }

        match case {
            Case::Fault(_) => h.sim.sim.set_fault(None),
            Case::Refused => h.sim.listen_again().await.expect("listen again"),
        }
        let report = h.poll().await;
        assert_eq!(report.failed_calls, 0, "{case:?}: recovered");
        let m = h.scrape().await;
        for t in TARGETS {
            assert_eq!(
                m.value("opretail_target_up", &[("target", t)]),
                1.0,
                "{case:?}: {t} up again"
            );
        }
        assert_eq!(values(&m), base_values, "{case:?}: values restored");
    }
    h.stop().await;
}

#[tokio::test]
async fn api_call_repeat_slows_the_request_rate() {
    let h = harness().await;
    let rate = |m: &Exposition| m.value("opretail_api_rate_limit_requests_per_second", &[]);
    assert_eq!(rate(&h.scrape().await), 10_000.0);
    h.sim.sim.set_fault(Some(Fault::Code(-100)));
    h.poll().await;
    let slowed = rate(&h.scrape().await);
    assert!(
        slowed < 10_000.0 / 8.0,
        "6 repeats halve the rate down to its floor: {slowed}"
    );
    let configured = |m: &Exposition| m.value("opretail_api_rate_limit_configured_requests_per_second", &[]);
    assert_eq!(configured(&h.scrape().await), 10_000.0, "the configured rate stays");
    h.sim.sim.set_fault(None);
    for _ in 0..40 {
        h.poll().await;
    }
    assert_eq!(rate(&h.scrape().await), 10_000.0, "successes win the rate back");
    h.stop().await;
}

#[tokio::test]
async fn values_of_targets_failing_longer_than_stale_after_vanish() {
    let h = harness().await;
    h.sim.sim.set_fault(Some(Fault::Http(503)));
    // 20 minutes of failure (stale_after is 30 minutes): values stay.
    h.clock.set(utc("2024-05-01T06:50:00Z"));
    h.poll().await;
    let m = h.scrape().await;
    assert!(m.get("opretail_shop_walk_in", &[("shop_id", "9613")]).is_some());
    assert!(m.get("opretail_device_walk_in", &[("mac", "d47c44906f01")]).is_some());
    // 40 minutes: the value series go, the targets stay, down.
    h.clock.set(utc("2024-05-01T07:10:00Z"));
    h.poll().await;
    let m = h.scrape().await;
    assert!(m.find("opretail_shop_walk_in", &[]).is_empty(), "{}", m.text);
    assert!(m.find("opretail_device_walk_in", &[]).is_empty());
    assert!(m.find("opretail_shop_hour_timestamp_seconds", &[]).is_empty());
    for t in TARGETS {
        assert_eq!(m.value("opretail_target_up", &[("target", t)]), 0.0, "{t}");
    }
    // Recovery brings them back, for the new hour.
    h.sim.sim.set_fault(None);
    h.poll().await;
    let m = h.scrape().await;
    assert_eq!(m.find("opretail_shop_walk_in", &[]).len(), 9);
    assert_eq!(
        m.value("opretail_shop_hour_timestamp_seconds", &[("shop_id", "9613")]),
        utc("2024-05-01T06:00:00Z").timestamp() as f64
    );
    h.stop().await;
}
