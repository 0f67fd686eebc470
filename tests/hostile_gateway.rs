//! A gateway that works against the exporter: redirects that would carry the password, `_sig`
//! and the user token to another address (never followed), and vendor text built to forge log
//! lines or drive the terminal (shown escaped in errors, logs and `fetch`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

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
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
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
            assert!(
                text.contains(&format!("http://{elsewhere}")),
                "{what}: names where: {text}"
            );
            assert!(
                !text.contains("collect") && !text.contains("from=gateway"),
                "{what}: no path or query: {text}"
            );
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

/// A gateway stand-in that answers every request with `answer`.
async fn answering(answer: serde_json::Value) -> SocketAddr {
    let app = Router::new().fallback(move || {
        let answer = answer.clone();
        async move { json(answer) }
    });
    serve(app).await
}

/// A refusal whose `codename`, `result` and `cid` carry a forged log line and escape codes.
fn hostile_refusal() -> serde_json::Value {
    serde_json::json!({
        "stat": {"code": 7, "codename": format!("SIGN_WRONG{FORGED}{RED}"), "cid": format!("cid{RED}")},
        "result": format!("bad sig{FORGED}{RED}"),
        "data": null
    })
}

/// A shops answer whose shop name, code and id carry a forged log line and escape codes.
fn hostile_shops() -> serde_json::Value {
    serde_json::json!({
        "stat": {"code": 0, "codename": "SUCCESS"},
        "data": [{
            "name": format!("Entrance{FORGED}{RED}\u{202e}"),
            "depId": format!("9642{FORGED}{RED}"),
            "shopId": "\x1b]0;title\x07",
            "dataList": [{"time": "2024-05-01 10:00:00", "passengerFlow": 5, "unknownField\x1b[2J": 1}]
        }]
    })
}

/// Asserts `text` carries neither an escape code nor a line that the gateway's text started.
fn assert_clean(what: &str, text: &str) {
    assert!(!text.contains('\x1b'), "{what}: an escape code got through:\n{text:?}");
    assert!(
        !text.contains('\u{202e}'),
        "{what}: a bidi override got through:\n{text:?}"
    );
    assert!(
        !text.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "{what}: a forged line got through:\n{text}"
    );
}

/// A configuration file for the gateway at `addr`, one shop.
fn config_file(name: &str, addr: SocketAddr) -> std::path::PathBuf {
    let dir = common::temp_dir(name);
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!("gateway:\n  url: http://{addr}/m.api\n  app_key: k\n  app_secret: {APP_SECRET}\n  max_retries: 0\nshops:\n  - id: S_9642\n"),
    )
    .unwrap();
    path
}

/// Runs the binary with `args` to the end (off the runtime's threads, so that the stand-in
/// keeps answering); returns its exit code, stdout and stderr.
async fn run(args: Vec<String>) -> (Option<i32>, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN).args(&args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

fn args(words: &[&str], config: &std::path::Path) -> Vec<String> {
    let mut args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    args.push("--config".into());
    args.push(config.display().to_string());
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusals_text_cannot_forge_lines_or_drive_the_terminal() {
    let addr = answering(hostile_refusal()).await;
    let e = client(&gateway(addr, GatewayAuth::None))
        .fetch(&a_day_of_one_shop())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "7");
    for text in [e.to_string(), format!("{e:#}")] {
        assert!(!text.contains('\n'), "a line break inside the error: {text:?}");
        assert_clean("the error", &text);
        assert!(
            text.contains(r"\n2026-01-01T00:00:00Z  INFO forged\u{1b}[31m"),
            "shown escaped: {text}"
        );
    }
    let config = config_file("refusal", addr);
    let (code, stdout, stderr) = run(args(&["fetch", "--id", "S_9642", "--date", "2024-05-01"], &config)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("gateway error 7 SIGN_WRONG"), "{stderr}");
    assert_clean("fetch's stderr", &stderr);
    assert_clean("fetch's stdout", &stdout);
    let (_, stdout, stderr) = run(args(&["doctor"], &config)).await;
    assert!(stdout.contains("SIGN_WRONG"), "{stdout}");
    assert_clean("doctor's report", &stdout);
    assert_clean("doctor's stderr", &stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn shop_names_and_ids_cannot_forge_lines_or_drive_the_terminal() {
    let addr = answering(hostile_shops()).await;
    let config = config_file("shops", addr);
    let (code, stdout, stderr) = run(args(&["fetch", "--id", "S_9642", "--date", "2024-05-01"], &config)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains(r"Entrance\n2026-01-01T00:00:00Z  INFO forged\u{1b}[31m\u{202e}"),
        "{stdout}"
    );
    assert!(stdout.contains(r"(shop_code \u{1b}]0;title\u{7})"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("S_9642")).count(),
        1,
        "one heading:\n{stdout}"
    );
    assert_clean("fetch's table", &stdout);
    assert_clean("fetch's stderr", &stderr);
    // JSON keeps the vendor's text exact, escaped as JSON escapes it.
    let (code, stdout, _) = run(args(
        &["fetch", "--id", "S_9642", "--date", "2024-05-01", "--json"],
        &config,
    ))
    .await;
    assert_eq!(code, Some(0));
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        answer["shops"][0]["shop_name"],
        format!("Entrance{FORGED}{RED}\u{202e}")
    );
    assert!(!stdout.contains('\x1b'));
    let (_, stdout, stderr) = run(args(&["doctor"], &config)).await;
    assert!(
        stdout.contains(r"9642\n2026-01-01T00:00:00Z"),
        "the shop is named, escaped:\n{stdout}"
    );
    assert_clean("doctor's report", &stdout);
    assert_clean("doctor's stderr", &stderr);
}

/// The exporter's text log of a failed poll: the refusal's text is one escaped field.
#[tokio::test(flavor = "multi_thread")]
async fn a_text_log_shows_the_refusal_escaped() {
    let addr = answering(hostile_refusal()).await;
    let config = config_file("log", addr);
    let mut child = Command::new(BIN)
        .args(["--config"])
        .arg(&config)
        .args(["--web.listen-address", "127.0.0.1:0", "--log.format", "text"])
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !log.iter().any(|l: &String| l.contains("poll failed")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join("\n");
    let failed: Vec<&str> = log.lines().filter(|l| l.contains("poll failed")).collect();
    assert!(!failed.is_empty(), "no failed poll logged:\n{log}");
    assert!(
        failed
            .iter()
            .all(|l| l.contains(r"SIGN_WRONG\n2026-01-01T00:00:00Z  INFO forged\u{1b}[31m")),
        "{log}"
    );
    assert_clean("the log", &log);
    assert!(!log.contains(APP_SECRET));
}
