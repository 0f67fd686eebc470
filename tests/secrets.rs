//! Secrets never leak: with every log at trace level (the exporter's and its libraries'),
//! through logins, token expiry, faults, retries and a rejected reload, neither the logs,
//! `/metrics` nor the HTTP answers (the status page and its JSON included) contain the app
//! secret, the password, a token or a `_sig`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{config, utc, Harness};
use opretail_exporter::config::GatewayAuth;
use opretail_exporter::simulator::Fault;

const APP_SECRET: &str = "app-secret-Qm9vWmFy";
const PASSWORD: &str = "pass-word-S2V5Q29kZQ";

/// Every log line of the process, at trace level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_in_trace_logs_metrics_or_answers() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    let h = Harness::start_with(
        utc("2024-05-01T06:30:00Z"),
        |sim| {
            sim.app_secret = APP_SECRET.into();
            sim.require_token = true;
            sim.users = vec![("ops".into(), PASSWORD.into())];
        },
        |sim| {
            let mut c = config(&sim.url(), &["O_1001", "S_9613"], &[("d47c44906f01", "", "")]);
            c.gateway.app_secret = APP_SECRET.to_string().into();
            c.gateway.auth = GatewayAuth::Login {
                username: "ops".into(),
                password: PASSWORD.to_string().into(),
            };
            c
        },
    )
    .await;
    h.wait_ready().await;
    let mut tokens = h.sim.sim.tokens();
    // A token expiry (new login), transient faults (retries) and a permanent one.
    h.sim.sim.expire_tokens();
    h.poll().await;
    tokens.extend(h.sim.sim.tokens());
    for fault in [Fault::Http(503), Fault::Code(7), Fault::Truncated, Fault::Code(-100)] {
        h.sim.sim.set_fault(Some(fault));
        h.poll().await;
    }
    h.sim.sim.set_fault(None);
    h.poll().await;
    let metrics = h.get("/metrics").await.1;
    // The status page and its JSON show the last errors (kept after the recovery).
    let page = h.get("/").await.1;
    let targets = h.get("/api/v1/targets").await.1;
    assert!(
        targets.contains("\"error\":{"),
        "the targets' last errors are shown: {targets}"
    );
    let reload = h
        .http
        .post(h.url("/-/reload"))
        .send()
        .await
        .expect("POST")
        .text()
        .await
        .expect("body");
    // Debug output of the configuration and client, as a careless log line would print them.
    let debug = format!("{:?}", h.exporter.poller.config());
    let signatures = h.sim.sim.signatures();
    h.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the last log lines land

    let logs = String::from_utf8_lossy(&logs.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    assert!(
        logs.lines().count() > 100,
        "trace logging captured: {} lines",
        logs.lines().count()
    );
    assert!(logs.contains("TRACE"), "library trace logs are included");
    assert!(metrics.contains("opretail_shop_walk_in{"));
    assert!(tokens.len() >= 2, "two logins: {tokens:?}");
    assert!(signatures.len() > 20, "requests were signed: {}", signatures.len());

    let mut secrets: Vec<(&str, String)> = vec![("app secret", APP_SECRET.into()), ("password", PASSWORD.into())];
    secrets.extend(tokens.into_iter().map(|t| ("token", t)));
    secrets.extend(signatures.into_iter().map(|s| ("_sig", s)));
    for (what, secret) in &secrets {
        for (place, text) in [
            ("logs", &logs),
            ("/metrics", &metrics),
            ("/", &page),
            ("/api/v1/targets", &targets),
            ("/-/reload", &reload),
            ("Debug", &debug),
        ] {
            assert!(!text.contains(secret.as_str()), "the {what} appears in {place}");
        }
    }
    for (place, text) in [
        ("logs", &logs),
        ("/metrics", &metrics),
        ("/", &page),
        ("/api/v1/targets", &targets),
    ] {
        assert!(!text.contains("_sig="), "a signed body appears in {place}");
    }
}
