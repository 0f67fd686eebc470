//! Basic auth against clients without the password, and the web config re-read live: the
//! exporter on 127.0.0.1 port 0 flooded with bogus credentials while a cached scraper scrapes,
//! clients that hang up while waiting for bcrypt, the cost ceiling, refusal times that do not
//! tell user names apart, and a [`LiveWebConfig`] whose password hash and certificate files are
//! changed under it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{config, temp_dir, utc, write_server_cert, Harness};
use opretail_exporter::web_config::{AuthOutcome, BasicAuth, LiveWebConfig, WebConfig, MAX_WAITING};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW: &str = "2024-05-01T06:30:00Z";

/// Held by each test that runs bcrypt through the exporter: verifications run one at a time on
/// one thread per process, so a flood in one test would queue another test's checks (and skew
/// its timings) if they ran side by side.
static BCRYPT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const USER: &str = "alice";
const PASSWORD: &str = "correct horse";

fn load(dir: &Path, yaml: &str) -> Arc<WebConfig> {
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).expect("write web config");
    Arc::new(WebConfig::load(&path).expect("valid web config"))
}

fn auth_of(web: &WebConfig) -> Arc<BasicAuth> {
    Arc::clone(web.basic_auth.as_ref().expect("basic auth configured"))
}

async fn start(web: Arc<WebConfig>) -> Harness {
    Harness::start_unready_with(utc(NOW), |url| config(url, &["S_9603"], &[]), Some(web)).await
}

fn url(h: &Harness, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", h.exporter.addr.port())
}

/// Polls `/-/ready` with the right credentials until it answers 200; the pair is then cached.
async fn wait_ready(h: &Harness) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = h
            .http
            .get(url(h, "/-/ready"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(Instant::now() < deadline, "exporter not ready within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `done()` holds, checking every few milliseconds, for at most `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn basic(user: &str, password: &str) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bogus_passwords_does_not_delay_a_cached_scrape() {
    let _bcrypt = BCRYPT.lock().await;
    const FLOODERS: usize = 600;
    let dir = temp_dir("flood");
    let hash = bcrypt::hash(PASSWORD, 6).expect("bcrypt");
    let web = load(&dir, &format!("basic_auth_users:\n  {USER}: {hash}\n"));
    let auth = auth_of(&web);
    let h = start(web).await;
    wait_ready(&h).await;

    // Each flooder keeps one bogus request in flight, a new password every time; after a 503
    // it waits about as long as Retry-After says (spread, so that the flooders come back one
    // after another rather than all at once).
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let flood = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut flooders = Vec::new();
    for i in 0..FLOODERS {
        let (stop, answered, flood) = (Arc::clone(&stop), Arc::clone(&answered), flood.clone());
        let target = url(&h, "/metrics");
        flooders.push(tokio::spawn(async move {
            let (mut refused, mut busy, mut n) = (0u32, 0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let r = flood
                    .get(&target)
                    .basic_auth(USER, Some(format!("guess-{i}-{n}")))
                    .send()
                    .await;
                let Ok(r) = r else { continue };
                if n == 1 {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                match r.status().as_u16() {
                    401 => refused += 1,
                    503 => {
                        assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
                        busy += 1;
                        let spread = u64::try_from(i * 37 % 1000).expect("small");
                        tokio::time::sleep(Duration::from_millis(1000 + spread)).await;
                    }
                    other => panic!("a bogus password was answered {other}"),
                }
            }
            (refused, busy)
        }));
    }
    // The flood is on once the queue for bcrypt is full and the first wave beyond it has been
    // answered.
    wait_until("flood under way", Duration::from_secs(60), || {
        auth.stats().waiting == MAX_WAITING && answered.load(Ordering::Relaxed) >= FLOODERS - MAX_WAITING - 1
    })
    .await;

    let mut latencies = Vec::new();
    let measuring = Instant::now();
    while measuring.elapsed() < Duration::from_millis(2500) {
        let started = Instant::now();
        let r = h
            .http
            .get(url(&h, "/metrics"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("scrape");
        assert_eq!(r.status(), 200);
        r.bytes().await.expect("body");
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut refused, mut busy) = (0, 0);
    for f in flooders {
        let (r, b) = f.await.expect("flooder");
        refused += r;
        busy += b;
    }
    let stats = auth.stats();
    latencies.sort();
    let (median, slowest) = (latencies[latencies.len() / 2], latencies[latencies.len() - 1]);
    println!(
        "cached scrapes under the flood: {} scrapes, median {median:?}, slowest {slowest:?}; \
         {refused} refused, {busy} busy, {} verifications, at most {} at once",
        latencies.len(),
        stats.verifications,
        stats.max_concurrent
    );
    assert!(refused > 0 && busy > 0, "{refused} refused, {busy} busy");
    assert_eq!(stats.max_concurrent, 1, "bcrypt ran more than once at a time");
    assert!(
        stats.verifications <= u64::from(refused) + 1,
        "{} verifications for {refused} refusals",
        stats.verifications
    );
    assert!(
        median < Duration::from_millis(50),
        "median cached scrape {median:?} under the flood"
    );
    assert!(
        slowest < Duration::from_millis(300),
        "a cached scrape took {slowest:?} under the flood"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_client_that_hangs_up_while_waiting_costs_no_verification() {
    let _bcrypt = BCRYPT.lock().await;
    let dir = temp_dir("hangup");
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let web = load(&dir, &format!("basic_auth_users:\n  {USER}: {hash}\n"));
    let auth = auth_of(&web);
    let h = start(web).await;
    // Nothing has been verified; keep the next checks waiting.
    let held = auth.hold_verifier().await.expect("permit");

    let mut hangers = Vec::new();
    for i in 0..3 {
        let mut tcp = tokio::net::TcpStream::connect(h.exporter.addr).await.expect("connect");
        let request = format!(
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
            String::from_utf8(basic(USER, &format!("guess-{i}"))).expect("ascii")
        );
        tcp.write_all(request.as_bytes()).await.expect("send");
        hangers.push(tcp);
    }
    wait_until("three checks waiting", Duration::from_secs(10), || {
        auth.stats().waiting == 3
    })
    .await;
    drop(hangers);
    wait_until("the queue left", Duration::from_secs(10), || auth.stats().waiting == 0).await;
    drop(held);
    // A check that does run shows that the counter counts.
    let r = h
        .http
        .get(url(&h, "/-/healthy"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    assert_eq!(
        auth.stats().verifications,
        1,
        "a client that hung up caused a verification"
    );
    h.stop().await;
}

#[test]
fn costs_above_12_are_refused_and_12_is_accepted() {
    let dir = temp_dir("ceiling");
    let path = dir.join("web.yml");
    let cheap = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let forged = format!("$2b$13{}", &cheap[6..]);
    std::fs::write(
        &path,
        format!("basic_auth_users:\n  {USER}: {forged}\n  bob: {cheap}\n"),
    )
    .expect("write");
    let e = WebConfig::load(&path).expect_err("cost 13").to_string();
    assert!(
        e.starts_with("basic_auth_users.alice: bcrypt cost 13 is above the ceiling of 12: each failed login would take seconds of CPU"),
        "{e}"
    );
    assert!(e.contains("htpasswd -nBC 10 alice"), "{e}");
    assert!(!e.contains(&forged[7..]), "hash echoed: {e}");
    let e = LiveWebConfig::load(&path).expect_err("cost 13").to_string();
    assert!(e.starts_with("basic_auth_users.alice: bcrypt cost 13"), "{e}");

    let twelve = bcrypt::hash(PASSWORD, 12).expect("bcrypt");
    std::fs::write(
        &path,
        format!("basic_auth_users:\n  {USER}: {twelve}\n  bob: {cheap}\n"),
    )
    .expect("write");
    let started = Instant::now();
    let web = WebConfig::load(&path).expect("cost 12 is accepted");
    println!("loading users of cost 12 and 4 took {:?}", started.elapsed());
    let auth = auth_of(&web);
    assert!(auth.refusal_time() > Duration::ZERO);
}

/// The median time of refusing `user` with passwords not tried before.
async fn refusal_time(auth: &Arc<BasicAuth>, user: &str, tag: &str) -> Duration {
    let mut times = Vec::new();
    for i in 0..7 {
        let header = basic(user, &format!("{tag}-{i}"));
        let started = Instant::now();
        assert_eq!(auth.check_header(Some(&header)).await, AuthOutcome::Refused);
        times.push(started.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test]
async fn an_unknown_user_is_refused_as_slowly_as_a_known_user_of_lower_cost() {
    let _bcrypt = BCRYPT.lock().await;
    let dir = temp_dir("timing");
    let alice = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let bob = bcrypt::hash(PASSWORD, 6).expect("bcrypt");
    let web = load(&dir, &format!("basic_auth_users:\n  alice: {alice}\n  bob: {bob}\n"));
    let auth = auth_of(&web);
    let h = start(Arc::clone(&web)).await;
    // The padding follows the verifications observed since the file was loaded (a moving
    // average): a few first, so that it reflects the machine as it is now, not as it was at
    // loading (a test run among builds is several times slower at times).
    for i in 0..4 {
        let header = basic("mallory", &format!("warm-{i}"));
        assert_eq!(auth.check_header(Some(&header)).await, AuthOutcome::Refused);
    }

    // Over HTTP, as a client sees it.
    let mut times = Vec::new();
    for (user, i) in [
        ("alice", 0),
        ("mallory", 0),
        ("alice", 1),
        ("mallory", 1),
        ("alice", 2),
        ("mallory", 2),
    ] {
        let started = Instant::now();
        let r = h
            .http
            .get(url(&h, "/metrics"))
            .basic_auth(user, Some(format!("wrong-{i}")))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401);
        times.push((user, started.elapsed()));
    }
    let median = |who: &str| {
        let mut t: Vec<Duration> = times.iter().filter(|(u, _)| *u == who).map(|(_, t)| *t).collect();
        t.sort();
        t[t.len() / 2]
    };
    let (known, unknown) = (median("alice"), median("mallory"));
    // And directly, with more samples; a cached refusal too.
    let known_direct = refusal_time(&auth, "alice", "direct").await;
    let unknown_direct = refusal_time(&auth, "mallory", "direct").await;
    let started = Instant::now();
    let header = basic("alice", "direct-0");
    assert_eq!(auth.check_header(Some(&header)).await, AuthOutcome::Refused);
    let cached = started.elapsed();
    println!(
        "refusal times: known user of cost 4 {known:?} / {known_direct:?}, unknown user {unknown:?} / {unknown_direct:?}, \
         cached {cached:?}, padded to {:?}",
        auth.refusal_time()
    );
    let close = |a: Duration, b: Duration| a.min(b).as_secs_f64() / a.max(b).as_secs_f64() >= 0.75;
    assert!(close(known, unknown), "over HTTP: known {known:?}, unknown {unknown:?}");
    assert!(
        close(known_direct, unknown_direct),
        "direct: known {known_direct:?}, unknown {unknown_direct:?}"
    );
    assert!(
        close(cached, unknown_direct),
        "cached {cached:?}, unknown {unknown_direct:?}"
    );
    h.stop().await;
}

/// The value of a gauge in `text` (exposition format).
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn a_changed_password_hash_applies_without_restart_and_a_broken_file_keeps_the_old_one() {
    let _bcrypt = BCRYPT.lock().await;
    let dir = temp_dir("live-auth");
    let path = dir.join("web.yml");
    let users = |password: &str| {
        format!(
            "basic_auth_users:\n  {USER}: {}\n",
            bcrypt::hash(password, 4).expect("bcrypt")
        )
    };
    std::fs::write(&path, users("old password")).expect("write");
    let live = LiveWebConfig::load(&path).expect("valid");
    // The reload gauges, on the exporter's /metrics.
    let h = Harness::start_unready_with(utc(NOW), |url| config(url, &["S_9603"], &[]), None).await;
    live.register(h.exporter.store.registry()).expect("register");
    let scrape = || async {
        let (status, body) = h.get("/metrics").await;
        assert_eq!(status, 200);
        body
    };
    let body = scrape().await;
    assert_eq!(
        gauge(&body, "opretail_web_config_last_reload_successful"),
        Some(1.0),
        "{body}"
    );
    let loaded_at = gauge(&body, "opretail_web_config_last_reload_success_timestamp_seconds").expect("timestamp");
    assert!(loaded_at > 1.7e9, "{loaded_at}");

    let check = |password: &'static str| {
        let auth = auth_of(&live.current());
        async move { auth.check_header(Some(&basic(USER, password))).await }
    };
    assert_eq!(check("old password").await, AuthOutcome::Allowed);
    assert_eq!(check("old password").await, AuthOutcome::Allowed, "now from the cache");
    let before = live.current();

    // The password is changed: the old one, although cached, stops working.
    std::fs::write(&path, users("new password")).expect("write");
    let changed_at = Instant::now();
    let deadline = changed_at + Duration::from_secs(10);
    while Arc::ptr_eq(&live.current(), &before) {
        assert!(Instant::now() < deadline, "the changed file was not picked up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("the changed hash applied after {:?}", changed_at.elapsed());
    assert_eq!(check("old password").await, AuthOutcome::Refused);
    assert_eq!(check("new password").await, AuthOutcome::Allowed);

    // A broken file: logged and flagged, the last good configuration stays.
    let good = live.current();
    std::fs::write(&path, "basic_auth_users:\n  alice: plaintext\n").expect("write");
    wait_until("reload flagged as failed", Duration::from_secs(10), || {
        let _ = live.current();
        !live.last_reload_successful()
    })
    .await;
    let body = scrape().await;
    assert_eq!(
        gauge(&body, "opretail_web_config_last_reload_successful"),
        Some(0.0),
        "{body}"
    );
    assert!(Arc::ptr_eq(&live.current(), &good));
    assert_eq!(check("new password").await, AuthOutcome::Allowed);
    assert!(!body.contains("plaintext"), "{body}");

    // Fixed, with the example password: applied, flagged good, and warned about.
    std::fs::write(&path, users("change-me")).expect("write");
    wait_until("reload flagged as good", Duration::from_secs(10), || {
        let _ = live.current();
        live.last_reload_successful()
    })
    .await;
    let body = scrape().await;
    assert_eq!(
        gauge(&body, "opretail_web_config_last_reload_successful"),
        Some(1.0),
        "{body}"
    );
    let reloaded_at = gauge(&body, "opretail_web_config_last_reload_success_timestamp_seconds").expect("timestamp");
    assert!(reloaded_at >= loaded_at, "{reloaded_at} < {loaded_at}");
    assert_eq!(check("change-me").await, AuthOutcome::Allowed);
    assert_eq!(check("new password").await, AuthOutcome::Refused);
    let warnings = live.current().warnings().to_vec();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("basic_auth_users.alice: the hash is of the example password")),
        "{warnings:?}"
    );

    // Basic auth turned off.
    std::fs::write(&path, "# no users\n").expect("write");
    wait_until("basic auth off", Duration::from_secs(10), || {
        live.current().basic_auth.is_none()
    })
    .await;
    h.stop().await;
}

/// Serves on `listener` as the exporter's listener does: every handshake with the TLS
/// configuration current at that moment; answers each connection with a fixed 200.
async fn serve_tls(listener: tokio::net::TcpListener, live: Arc<LiveWebConfig>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else { return };
        let server_config = live.current().tls_server_config().expect("TLS configured");
        tokio::spawn(async move {
            let Ok(mut tls) = tokio_rustls::TlsAcceptor::from(server_config).accept(tcp).await else {
                return;
            };
            let mut request = [0u8; 1024];
            let _ = tls.read(&mut request).await;
            let _ = tls
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n")
                .await;
            let _ = tls.shutdown().await;
        });
    }
}

/// Whether a new connection from a client that trusts only `cert_pem` succeeds.
async fn trusted(addr: SocketAddr, cert_pem: &str) -> bool {
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("cert"))
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let url = format!("https://127.0.0.1:{}/", addr.port());
    client.get(url).send().await.is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn rotated_certificate_files_apply_to_new_connections() {
    let dir = temp_dir("live-tls");
    let first = write_server_cert(&dir);
    let path = dir.join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n",
    )
    .expect("write");
    let live = Arc::new(LiveWebConfig::load(&path).expect("valid"));
    let server_config = live.current().tls_server_config().expect("TLS configured");
    assert_eq!(server_config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(live.current().warnings().is_empty(), "{:?}", live.current().warnings());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(serve_tls(listener, Arc::clone(&live)));
    assert!(trusted(addr, &first).await, "the first certificate is served");

    let second = write_server_cert(&dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !trusted(addr, &second).await {
        assert!(Instant::now() < deadline, "the new certificate was not served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!trusted(addr, &first).await, "the old certificate is still served");

    // Turning TLS off needs a restart: refused, TLS stays.
    std::fs::write(&path, "# plain\n").expect("write");
    wait_until("TLS off refused", Duration::from_secs(10), || {
        let _ = live.current();
        !live.last_reload_successful()
    })
    .await;
    assert!(live.current().tls_server_config().is_some());
    assert!(trusted(addr, &second).await);
    server.abort();
}
