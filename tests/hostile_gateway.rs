//! A gateway that works against the exporter: redirects that would carry the password, `_sig`
//! and the user token to another address (never followed), and vendor text built to forge log
//! lines or drive the terminal (shown escaped in errors, logs and `fetch`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::NaiveDate;
use opretail_exporter::client::{ApiError, Call, Client, Target};
use opretail_exporter::config::{GatewayAuth, GatewayConfig};
use opretail_exporter::metrics::MetricsStore;
use opretail_exporter::model::{Clock, TargetId};

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");
const APP_SECRET: &str = "app-secret-UmVkaXJlY3Q";
const PASSWORD: &str = "pass-word-Rm9sbG93ZWQ";
const TOKEN: &str = "user-token-Q2FycmllZA";

/// A forged log line and terminal escape codes, as a hostile gateway sends them.
const FORGED: &str = "\n2026-01-01T00:00:00Z  INFO forged";
const RED: &str = "\x1b[31m";

/// Serves `app` on 127.0.0.1, port 0; returns its address.
async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// `value` as a JSON answer.
fn json(value: serde_json::Value) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

/// Everything a listener received: request line, headers and body of each request.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<String>>>);

impl Received {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A listener that records every request and answers each as a gateway would (a login token,
/// an empty list of shops), so that a client that followed a redirect here would go on.
async fn recorder() -> (SocketAddr, Received) {
    let received = Received::default();
    let log = received.clone();
    let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
        let log = log.clone();
        async move {
            let headers: Vec<String> = headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            log.0.lock().unwrap().push(format!(
                "{method} {uri}\n{}\n\n{}",
                headers.join("\n"),
                String::from_utf8_lossy(&body)
            ));
            let data = if String::from_utf8_lossy(&body).contains("mobileLogin") {
                serde_json::json!({"enterpriseId": 1, "token": "token-from-elsewhere"})
            } else {
                serde_json::json!([])
            };
            json(serde_json::json!({"stat": {"code": 0, "codename": "SUCCESS"}, "data": data}))
        }
    });
    (serve(app).await, received)
}

/// A gateway that answers every request with `status` and `Location: location`.
async fn redirector(status: StatusCode, location: String) -> SocketAddr {
    let app = Router::new().fallback(move || {
        let location = location.clone();
        async move { (status, [(axum::http::header::LOCATION, location)], "moved").into_response() }
    });
    serve(app).await
}

fn gateway(addr: SocketAddr, auth: GatewayAuth) -> GatewayConfig {
    let mut g = GatewayConfig::new(
        format!("http://{addr}/m.api").parse().unwrap(),
        "demo".into(),
        APP_SECRET.into(),
    );
    g.timeout = Duration::from_secs(5);
    g.max_retries = 1;
    g.retry_backoff = Duration::from_millis(1);
    g.retry_backoff_max = Duration::from_millis(5);
    g.requests_per_second = 10_000.0;
    g.auth = auth;
    g
}

fn client(gateway: &GatewayConfig) -> Client {
    let store = MetricsStore::new("test", "test").unwrap();
    Client::new(gateway, Clock::system(), store.api().clone()).unwrap()
}

fn a_day_of_one_shop() -> Call {
    Call::day(
        Target::Shops(vec![TargetId::Shop(9642)]),
        NaiveDate::from_ymd_opt(2024, 5, 1).unwrap(),
    )
}

/// 307 and 302 to a second listener, with a login (password, `_sig`) and with a fixed token:
/// the second listener hears nothing, and the error names the redirect and where it pointed
/// (scheme, host and port only), counted as `http_<status>`.
#[tokio::test]
async fn redirects_are_not_followed_and_carry_nothing_elsewhere() {
    let (elsewhere, received) = recorder().await;
    for status in [StatusCode::TEMPORARY_REDIRECT, StatusCode::FOUND] {
        let location = format!("http://{elsewhere}/collect?from=gateway");
        let gateway_addr = redirector(status, location).await;
        let logins = [
            GatewayAuth::Login {
                username: "ops".into(),
                password: PASSWORD.to_string().into(),
            },
            GatewayAuth::Token(TOKEN.to_string().into()),
        ];
        for auth in logins {
            let what = format!("{status} with {auth:?}");
            let client = client(&gateway(gateway_addr, auth));
            let e = client.fetch(&a_day_of_one_shop()).await.unwrap_err();
            let text = e.to_string();
            assert_eq!(e.code(), format!("http_{}", status.as_u16()), "{what}: {text}");
            assert!(matches!(e, ApiError::Redirect { .. }), "{what}: {e:?}");
            assert!(text.contains(&status.to_string()), "{what}: names the status: {text}");
            assert!(text.contains("redirects are not followed"), "{what}: {text}");
            assert!(text.contains(&format!("http://{elsewhere}")), "{what}: names where: {text}");
            assert!(!text.contains("collect") && !text.contains("from=gateway"), "{what}: no path or query: {text}");
            assert!(text.contains("gateway.url"), "{what}: says what to fix: {text}");
        }
    }
    let received = received.all();
    assert!(
        received.is_empty(),
        "the second listener received {} requests:\n{}",
        received.len(),
        received.join("\n----\n")
    );
}
