//! The request rate against a gateway that counts requests per second: at the configured rate,
//! a refresh with more calls than fit in a second draws no `-100 API_CALL_REPEAT`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use common::{config, utc, Harness};
use opretail_exporter::simulator::RateRule;

#[tokio::test]
async fn a_refresh_at_the_configured_rate_draws_no_api_call_repeat() {
    const RATE: f64 = 20.0;
    let macs: Vec<String> = (0..50u64).map(|i| format!("0b{i:010x}")).collect();
    let devices: Vec<(&str, &str, &str)> = macs.iter().map(|m| (m.as_str(), "", "")).collect();
    let h = Harness::start_manual_with(
        utc("2024-05-01T06:30:00Z"),
        |sim| {
            sim.rate_limit = Some(RATE);
            sim.rate_rule = RateRule::PerSecond;
        },
        |url| {
            let mut c = config(url, &["O_1002"], &devices);
            c.gateway.requests_per_second = RATE;
            c.gateway.max_retries = 0;
            c
        },
    )
    .await;
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
