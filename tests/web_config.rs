//! `--web.config.file` end to end: the exporter against the simulator on 127.0.0.1 port 0,
//! serving TLS with a certificate made at test time and/or requiring basic auth, reached by
//! reqwest clients that trust that certificate (or not) and send the right credentials (or
//! not).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, temp_dir, utc, write_server_cert, Harness};
use opretail_exporter::web_config::WebConfig;

const NOW: &str = "2024-05-01T06:30:00Z";
const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

fn users_yaml() -> String {
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    format!("basic_auth_users:\n  {USER}: {hash}\n")
}

const TLS_YAML: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

fn load(dir: &std::path::Path, yaml: &str) -> Arc<WebConfig> {
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).expect("write web config");
    Arc::new(WebConfig::load(&path).expect("valid web config"))
}

async fn start(web: Arc<WebConfig>) -> Harness {
    Harness::start_unready_with(utc(NOW), |url| config(url, &["S_9603"], &[]), Some(web)).await
}

fn client_trusting(cert_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("cert"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn https(h: &Harness, path: &str) -> String {
    format!("https://localhost:{}{path}", h.exporter.addr.port())
}

fn http(h: &Harness, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", h.exporter.addr.port())
}

/// Polls `/-/ready` with `request` until it answers 200.
async fn wait_ready(request: impl Fn() -> reqwest::RequestBuilder) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = request().send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "exporter not ready within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("request").status().as_u16()
}

#[tokio::test]
async fn tls_and_basic_auth_together() {
    let dir = temp_dir("both");
    let cert = write_server_cert(&dir);
    let h = start(load(&dir, &format!("{TLS_YAML}{}", users_yaml()))).await;
    // localhost is pinned to the listener's address (no ::1 surprises).
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("cert"))
        .resolve("localhost", h.exporter.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    wait_ready(|| client.get(https(&h, "/-/ready")).basic_auth(USER, Some(PASSWORD))).await;

    let r = client
        .get(https(&h, "/metrics"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    let body = r.text().await.expect("body");
    assert!(body.contains("opretail_shop_walk_in{"), "{body}");

    // No credentials: 401 with a challenge, on every path.
    let r = client.get(https(&h, "/metrics")).send().await.expect("request");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()),
        Some("Basic realm=\"opretail-exporter\"")
    );
    for path in ["/", "/api/v1/targets", "/-/healthy", "/-/ready", "/no-such-path"] {
        assert_eq!(status(client.get(https(&h, path))).await, 401, "{path}");
    }
    // Wrong password, unknown user, another scheme.
    assert_eq!(
        status(client.get(https(&h, "/metrics")).basic_auth(USER, Some("wrong"))).await,
        401
    );
    assert_eq!(
        status(client.get(https(&h, "/metrics")).basic_auth(USER, None::<&str>)).await,
        401
    );
    assert_eq!(
        status(client.get(https(&h, "/metrics")).basic_auth("mallory", Some(PASSWORD))).await,
        401
    );
    assert_eq!(
        status(client.get(https(&h, "/metrics")).bearer_auth(PASSWORD)).await,
        401
    );
    // Repeated scrapes keep working (served from the cache of successful checks).
    for _ in 0..3 {
        assert_eq!(
            status(client.get(https(&h, "/metrics")).basic_auth(USER, Some(PASSWORD))).await,
            200
        );
    }

    // Plain HTTP to the TLS port is told so, and served nothing.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let r = plain
        .get(http(&h, "/metrics"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status(), 400);
    let body = r.text().await.expect("body");
    assert_eq!(body, "Client sent an HTTP request to an HTTPS server.\n");
    // A client that does not trust the certificate fails the handshake.
    let untrusting = reqwest::Client::builder()
        .resolve("localhost", h.exporter.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let r = untrusting.get(https(&h, "/metrics")).send().await;
    assert!(r.is_err(), "untrusted certificate accepted: {r:?}");

    // The server still serves after the failed handshakes, and shuts down gracefully while
    // `client` holds an idle keep-alive connection.
    assert_eq!(
        status(client.get(https(&h, "/metrics")).basic_auth(USER, Some(PASSWORD))).await,
        200
    );
    let addr = h.exporter.addr;
    tokio::time::timeout(Duration::from_secs(10), h.stop())
        .await
        .expect("graceful shutdown within 10 s");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening after shutdown"
    );
}

#[tokio::test]
async fn tls_alone_needs_no_credentials() {
    let dir = temp_dir("tls");
    let cert = write_server_cert(&dir);
    let h = start(load(&dir, TLS_YAML)).await;
    // The certificate's IP address SAN, without any name pinning.
    let client = client_trusting(&cert);
    let url = |path: &str| format!("https://127.0.0.1:{}{path}", h.exporter.addr.port());
    wait_ready(|| client.get(url("/-/ready"))).await;
    let r = client.get(url("/metrics")).send().await.expect("scrape");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some(opretail_exporter::http::EXPOSITION_CONTENT_TYPE)
    );
    assert!(r
        .text()
        .await
        .expect("body")
        .contains("opretail_target_up{target=\"S_9603\"} 1"));
    h.stop().await;
}

#[tokio::test]
async fn basic_auth_alone_over_plain_http() {
    let dir = temp_dir("auth");
    let web = load(&dir, &users_yaml());
    let h = start(Arc::clone(&web)).await;
    let client = &h.http;
    wait_ready(|| client.get(http(&h, "/-/ready")).basic_auth(USER, Some(PASSWORD))).await;
    assert_eq!(
        status(client.get(http(&h, "/metrics")).basic_auth(USER, Some(PASSWORD))).await,
        200
    );
    assert_eq!(status(client.get(http(&h, "/metrics"))).await, 401);
    assert_eq!(
        status(client.get(http(&h, "/metrics")).basic_auth(USER, Some("nope"))).await,
        401
    );
    for _ in 0..3 {
        assert_eq!(
            status(client.get(http(&h, "/metrics")).basic_auth(USER, Some(PASSWORD))).await,
            200
        );
    }
    // One successful (user, password) pair remembered: later scrapes skip bcrypt.
    let auth = web.basic_auth.as_ref().expect("basic auth configured");
    assert_eq!(auth.cached_len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn client_certificates_are_required_and_verified() {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    let dir = temp_dir("mtls");
    let cert = write_server_cert(&dir);
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    std::fs::write(dir.join("ca.crt"), ca.pem()).expect("write ca");
    let client_key = KeyPair::generate().expect("client key");
    let mut client_params = CertificateParams::new(vec!["scraper".to_string()]).expect("client params");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &ca, &ca_key).expect("client cert");

    let h = start(load(
        &dir,
        &format!("{TLS_YAML}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n"),
    ))
    .await;
    let identity_pem = format!("{}{}", client_cert.pem(), client_key.serialize_pem());
    let identity = || reqwest::Identity::from_pem(identity_pem.as_bytes()).expect("identity");
    let with_cert = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("cert"))
        .identity(identity())
        .resolve("localhost", h.exporter.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    wait_ready(|| with_cert.get(https(&h, "/-/ready"))).await;
    assert_eq!(status(with_cert.get(https(&h, "/metrics"))).await, 200);

    let without_cert = client_trusting(&cert);
    let url = format!("https://127.0.0.1:{}/metrics", h.exporter.addr.port());
    let r = without_cert.get(&url).send().await;
    assert!(r.is_err(), "served without a client certificate: {r:?}");

    // TLS 1.2 is refused with min_version TLS13, even with a good client certificate.
    let tls12 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).expect("cert"))
        .identity(identity())
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    assert!(tls12.get(&url).send().await.is_err(), "TLS 1.2 accepted");
    h.stop().await;
}

/// The exporter serves the web config in force: a password changed in the file works, and the
/// old one stops working, without a restart; the reload gauges are on `/metrics`.
#[tokio::test]
async fn the_exporter_takes_a_changed_password_from_the_file_without_a_restart() {
    use opretail_exporter::http::WebSource;
    use opretail_exporter::web_config::LiveWebConfig;
    let dir = temp_dir("live");
    let path = dir.join("web.yml");
    std::fs::write(&path, users_yaml()).expect("write web config");
    let live = LiveWebConfig::load_checking_every(&path, Duration::from_millis(50)).expect("valid");
    let options = opretail_exporter::exporter::Options {
        web: Some(WebSource::Live(Arc::new(live))),
        ..Default::default()
    };
    let h = Harness::start_full_with(utc(NOW), |_| {}, |sim| config(&sim.url(), &["S_9603"], &[]), options).await;
    let get = |password: &'static str| h.http.get(http(&h, "/-/healthy")).basic_auth(USER, Some(password));
    assert_eq!(status(get(PASSWORD)).await, 200);
    let hash = bcrypt::hash("rotated password", 4).expect("bcrypt");
    std::fs::write(&path, format!("basic_auth_users:\n  {USER}: {hash}\n")).expect("rewrite");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status(get("rotated password")).await != 200 {
        assert!(std::time::Instant::now() < deadline, "the new password never worked");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(get(PASSWORD)).await, 401, "the old password still works");
    let metrics = h
        .http
        .get(http(&h, "/metrics"))
        .basic_auth(USER, Some("rotated password"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("opretail_web_config_last_reload_successful 1"),
        "{metrics}"
    );
    h.stop().await;
}
