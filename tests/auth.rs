//! The user token: logging in with `open.shopweb.security.mobileLogin`, sending the token in
//! both headers, caching it, logging in again once when the gateway answers 9990001, and a
//! fixed token from the configuration.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use common::{config, utc, Exposition, Harness};
use opretail_exporter::client::{METHOD_DEVICES, METHOD_LOGIN, METHOD_SHOPS};
use opretail_exporter::config::GatewayAuth;
use opretail_exporter::simulator::Simulator;

const NOW: &str = "2024-05-01T06:30:00Z";

async fn harness(auth: impl FnOnce(&Simulator) -> GatewayAuth) -> Harness {
    let h = Harness::start_with(
        utc(NOW),
        |sim| {
            sim.require_token = true;
            sim.users = vec![("ops".into(), "pa55-word".into())];
        },
        |sim| {
            let mut c = config(&sim.url(), &["O_1001"], &[("d47c44906f01", "", "")]);
            c.gateway.auth = auth(&sim.sim);
            c
        },
    )
    .await;
    h.wait_ready().await;
    h
}

fn requests(m: &Exposition, method: &str) -> f64 {
    m.get("opretail_api_requests_total", &[("method", method)])
        .unwrap_or(0.0)
}

fn login(user: &str, password: &str) -> GatewayAuth {
    GatewayAuth::Login {
        username: user.into(),
        password: password.to_string().into(),
    }
}

#[tokio::test]
async fn logs_in_once_and_reuses_the_token() {
    let h = harness(|_| login("ops", "pa55-word")).await;
    h.poll().await;
    let m = h.scrape().await;
    assert_eq!(requests(&m, METHOD_LOGIN), 1.0, "one login for two polls");
    // The refresh's hourly and day-figure calls, the re-poll's hourly call.
    assert_eq!(requests(&m, METHOD_SHOPS), 3.0);
    assert_eq!(m.find("opretail_shop_walk_in", &[]).len(), 12);
    assert_eq!(m.value("opretail_target_up", &[("target", "d47c44906f01")]), 1.0);
    assert_eq!(m.find("opretail_api_errors_total", &[]).iter().sum::<f64>(), 0.0);
    h.stop().await;
}

#[tokio::test]
async fn an_expired_token_means_one_new_login() {
    let h = harness(|_| login("ops", "pa55-word")).await;
    h.sim.sim.expire_tokens();
    let report = h.poll().await;
    assert_eq!(report.failed_calls, 0, "the calls succeed after logging in again");
    let m = h.scrape().await;
    assert_eq!(
        requests(&m, METHOD_LOGIN),
        2.0,
        "concurrent refusals share one new login"
    );
    let refused = m
        .find("opretail_api_errors_total", &[("code", "9990001")])
        .iter()
        .sum::<f64>();
    assert!(
        (1.0..=2.0).contains(&refused),
        "each call refused at most once: {refused}"
    );
    assert_eq!(m.value("opretail_target_up", &[("target", "O_1001")]), 1.0);
    h.stop().await;
}

#[tokio::test]
async fn a_wrong_password_is_counted_and_nothing_breaks() {
    let h = harness(|_| login("ops", "wrong")).await;
    let m = h.scrape().await;
    assert!(
        m.value(
            "opretail_api_errors_total",
            &[("method", METHOD_LOGIN), ("code", "103095")]
        ) >= 1.0
    );
    assert_eq!(requests(&m, METHOD_SHOPS), 0.0, "no business call without a token");
    assert_eq!(m.value("opretail_target_up", &[("target", "O_1001")]), 0.0);
    assert_eq!(m.value("opretail_target_up", &[("target", "d47c44906f01")]), 0.0);
    let h2 = harness(|_| login("nobody", "x")).await;
    let m = h2.scrape().await;
    assert!(
        m.value(
            "opretail_api_errors_total",
            &[("method", METHOD_LOGIN), ("code", "103094")]
        ) >= 1.0
    );
    h.stop().await;
    h2.stop().await;
}

#[tokio::test]
async fn a_fixed_token_is_sent_and_never_replaced() {
    let h = harness(|sim| GatewayAuth::Token(sim.issue_token().into())).await;
    let m = h.scrape().await;
    assert_eq!(m.find("opretail_shop_walk_in", &[]).len(), 12);
    assert_eq!(requests(&m, METHOD_LOGIN), 0.0);
    h.sim.sim.expire_tokens();
    h.poll().await;
    let m = h.scrape().await;
    assert_eq!(
        m.value(
            "opretail_api_errors_total",
            &[("method", METHOD_SHOPS), ("code", "9990001")]
        ),
        1.0
    );
    assert_eq!(
        m.value(
            "opretail_api_errors_total",
            &[("method", METHOD_DEVICES), ("code", "9990001")]
        ),
        1.0
    );
    assert_eq!(requests(&m, METHOD_LOGIN), 0.0, "a fixed token cannot log in again");
    h.stop().await;
}

#[tokio::test]
async fn without_a_token_the_gateway_refuses() {
    let h = harness(|_| GatewayAuth::None).await;
    let m = h.scrape().await;
    assert_eq!(
        m.value(
            "opretail_api_errors_total",
            &[("method", METHOD_SHOPS), ("code", "9990001")]
        ),
        1.0
    );
    h.stop().await;
}
