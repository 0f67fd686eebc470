//! The request rate against a gateway that counts requests per second: at the configured rate,
//! a refresh with more calls than fit in a second draws no `-100 API_CALL_REPEAT`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use common::{config, utc, Harness};
use opretail_exporter::simulator::RateRule;

/// An exporter at `rate` requests a second, without retries, polling `shops` and `devices`
/// devices, against a gateway allowing `rate` in any one second; its first refresh done.
async fn harness(rate: f64, shops: &[&str], devices: u64) -> Harness {
    let macs: Vec<String> = (0..devices).map(|i| format!("0b{i:010x}")).collect();
    let devices: Vec<(&str, &str, &str)> = macs.iter().map(|m| (m.as_str(), "", "")).collect();
    Harness::start_manual_with(
        utc("2024-05-01T06:30:00Z"),
        |sim| {
            sim.rate_limit = Some(rate);
            sim.rate_rule = RateRule::PerSecond;
        },
        |url| {
            let mut c = config(url, shops, &devices);
            c.gateway.requests_per_second = rate;
            c.gateway.max_retries = 0;
            c
        },
    )
    .await
}

#[tokio::test]
async fn a_refresh_at_the_configured_rate_draws_no_api_call_repeat() {
    const RATE: f64 = 20.0;
    let h = harness(RATE, &["O_1002"], 50).await;
    // The first refresh (51 calls, from a standing start) ran in `start_manual_with`; one more.
    let report = h.poll().await;
    assert_eq!((report.calls, report.failed_calls), (51, 0));
    let m = h.scrape().await;
    assert_eq!(
        m.get("opretail_api_errors_total", &[("code", "-100")]),
        None,
        "no request over the gateway's budget"
    );
    assert_eq!(
        m.value("opretail_api_rate_limit_requests_per_second", &[]),
        RATE,
        "never slowed down"
    );
    h.stop().await;
}

/// A reload right after a refresh builds a new client; it goes on from the old one's rate, so
/// the refresh the reload starts draws no `-100` either. A client that started afresh would.
#[tokio::test]
async fn a_reload_goes_on_from_the_old_clients_rate() {
    use opretail_exporter::client::Client;
    use std::sync::Arc;

    let h = harness(10.0, &[], 25).await;
    let poller = &h.exporter.poller;
    let config = poller.config();
    // Renewed: no request over the gateway's budget.
    poller.replace(Arc::clone(&config), poller.client().renewed(&config.gateway).unwrap());
    let report = h.poll().await;
    assert_eq!((report.calls, report.failed_calls), (25, 0));
    // Afresh: a second's worth at once, on top of the second before.
    let fresh = Client::new(&config.gateway, h.clock.clone(), h.exporter.store.api().clone()).unwrap();
    poller.replace(Arc::clone(&config), fresh);
    let report = h.poll().await;
    assert!(
        report.failed_calls > 0,
        "a fresh limiter goes over a per-second budget: {report:?}"
    );
    h.stop().await;
}
