//! The binary as users run it: `check-config` exit codes and messages, a bad config refused at
//! start-up, `demo` serving the simulated chain until SIGTERM, and the commands on a file of
//! several accounts (`--account`), against a simulated gateway on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = common::temp_dir(name);
    let path = dir.join("config.yaml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn check_config_accepts_the_example() {
    let out = Command::new(BIN)
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml"),
        ])
        .env("OPRETAIL_APP_KEY", "key")
        .env("OPRETAIL_APP_SECRET", "secret")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));
}

#[test]
fn check_config_accepts_the_accounts_example() {
    let out = Command::new(BIN)
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config.accounts.example.yaml"),
        ])
        .env("BRAND_A_APP_KEY", "ka")
        .env("BRAND_A_APP_SECRET", "sa")
        .env("BRAND_B_APP_KEY", "kb")
        .env("BRAND_B_APP_SECRET", "sb")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("valid (2 accounts"), "{stdout}");
    assert!(stdout.contains("account brand-a: 2 shop ids, 1 devices"), "{stdout}");
}

/// `check-config` prints the configuration's warnings (valid but unsafe), and still exits 0.
#[test]
fn check_config_prints_the_warnings() {
    use std::os::unix::fs::PermissionsExt as _;
    let path = write_config(
        "warnings",
        "gateway:\n  url: http://gw.example/m.api\n  app_key: k\n  app_secret: written-out\nshops:\n  - id: S_1\n",
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: gateway.url"),
        "the cleartext gateway: {stderr}"
    );
    assert!(
        stderr.contains("warning: the file is readable by group or others (mode 644) and holds gateway.app_secret"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("written-out"),
        "the secret itself is never shown: {stderr}"
    );
}

/// `check-config` says what a refresh costs, and warns when it needs longer than the hour.
#[test]
fn check_config_states_the_refresh_cost() {
    let head = "gateway:\n  url: https://gw.example/m.api\n  app_key: k\n  app_secret: s\n";
    let small = write_config("cost-small", &format!("{head}shops:\n  - id: O_1\n"));
    let devices: String = (0..20_000u64).map(|i| format!("  - mac: 0a{i:010x}\n")).collect();
    let large = write_config("cost-large", &format!("{head}shops:\n  - id: O_1\ndevices:\n{devices}"));
    let run = |path: &std::path::Path| {
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(path)
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (stdout, stderr) = run(&small);
    assert!(
        stdout.contains("a refresh needs 2 gateway calls, at least 1s at 5 requests/s"),
        "{stdout}"
    );
    assert!(!stderr.contains("warning: a refresh needs"), "{stderr}");
    let (stdout, stderr) = run(&large);
    // 1 shop batch (for the hour and the day figures) and 20,000 devices at 5 requests/s:
    // 4,000.4 s.
    assert!(
        stdout.contains("a refresh needs 20002 gateway calls, at least 1h 6m 41s"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: a refresh needs longer than the hour"),
        "{stderr}"
    );
    assert!(stderr.contains("--shard"), "names the remedies: {stderr}");
}

#[test]
fn check_config_lists_every_problem_and_exits_2() {
    let path = write_config(
        "bad",
        "gateway:\n  url: https://openapi.opretail.com/m.api\n  app_key: ${OPRETAIL_TEST_UNSET_VAR}\n  app_secret: s3cr3t-value\n  timeout: soon\n  colour: blue\nshops:\n  - id: X_1\ndevices:\n  - mac: nothex\n",
    );
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .env_remove("OPRETAIL_TEST_UNSET_VAR")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "gateway.app_key",
        "OPRETAIL_TEST_UNSET_VAR",
        "gateway.timeout",
        "gateway.colour",
        "shops[0].id",
        "devices[0].mac",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
    assert!(!err.contains("s3cr3t-value"), "the secret leaked:\n{err}");
}

#[test]
fn a_missing_file_or_bad_config_stops_the_exporter_with_2() {
    let out = Command::new(BIN)
        .args(["check-config", "--config", "/nonexistent/opretail.yaml"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/opretail.yaml"));

    let path = write_config(
        "empty",
        "gateway:\n  url: http://127.0.0.1:1/m.api\n  app_key: k\n  app_secret: s\n",
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["--web.listen-address", "127.0.0.1:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shops"));
}

/// Reads JSON log lines from `reader` until one carries `field`; returns its value.
fn log_field(reader: &mut impl BufRead, field: &str) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read log");
        assert!(n > 0, "process ended before logging {field}");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(value) = v["fields"][field].as_str() {
            return value.to_string();
        }
    }
}

#[test]
fn demo_serves_the_simulated_chain_and_stops_on_sigterm() {
    let demo = Child::spawn(&["demo", "--web.listen-address", "127.0.0.1:0"]);
    let body = scrape_until(&demo.addr, "the first poll", |b| b.contains("opretail_shop_walk_in{"));
    let shops = body.lines().filter(|l| l.starts_with("opretail_shop_walk_in{")).count();
    let devices = body
        .lines()
        .filter(|l| l.starts_with("opretail_device_walk_in{"))
        .count();
    assert_eq!((shops, devices), (20, 10), "{body}");
    assert!(!body.contains("demo-secret"));
    assert_eq!(get(&format!("http://{}/-/ready", demo.addr)).map(|(s, _)| s), Some(200));
    let status = demo.stop();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

/// `demo --demo.failing-shop` adds the shop as a target of its own, which the simulated
/// gateway refuses: the status API lists it first, down, with the stand-in code and a cid.
#[test]
fn the_demo_can_make_one_shop_fail() {
    let demo = Child::spawn(&[
        "demo",
        "--web.listen-address",
        "127.0.0.1:0",
        "--demo.failing-shop",
        "9605",
    ]);
    let url = format!("http://{}/api/v1/targets", demo.addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let v = loop {
        if let Some((200, body)) = get(&url) {
            let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if v["summary"]["polled_at"].is_number() {
                break v;
            }
        }
        assert!(std::time::Instant::now() < deadline, "no poll within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    // O_1001, O_1002, S_9605 and 10 devices.
    assert_eq!(
        (v["total"].as_u64(), v["summary"]["down"].as_u64()),
        (Some(13), Some(1)),
        "{v}"
    );
    let first = &v["rows"][0];
    assert_eq!(
        (first["id"].as_str(), first["up"].as_bool()),
        (Some("S_9605"), Some(false)),
        "{v}"
    );
    assert_eq!(first["error"]["code"], "400003");
    assert_eq!(first["error"]["name"], "ID_NOT_ALLOWED");
    assert!(first["error"]["cid"].as_str().is_some_and(|c| !c.is_empty()), "{v}");
    assert_eq!(v["rows"][1]["up"], true, "its organisation answers: {v}");
    assert!(demo.stop().success());

    let out = Command::new(BIN)
        .args([
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--demo.failing-shop",
            "42",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("9601..=9620"));
}

/// A log written to a pipe (journald, Docker, `> log`) is plain text: no ANSI escape codes.
#[test]
fn a_text_log_to_a_pipe_carries_no_escape_codes() {
    let mut child = Command::new(BIN)
        .args(["demo", "--web.listen-address", "127.0.0.1:0"])
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = stderr.read_until(b'\n', &mut line).expect("read log");
        log.extend_from_slice(&line);
        if n == 0 || String::from_utf8_lossy(&line).contains("serving /metrics") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let log = String::from_utf8_lossy(&log);
    assert!(
        log.lines()
            .any(|l| l.contains("INFO") && l.contains("serving /metrics")),
        "no log line saying it serves:\n{log}"
    );
    assert!(!log.contains('\x1b'), "escape codes in a piped log:\n{log:?}");
}

const GOOD_GATEWAY: &str = "gateway:\n  url: http://127.0.0.1:1/m.api\n  app_key: k\n  app_secret: s\n";

/// Each malformed configuration: both `check-config` and the exporter itself exit 2 with a
/// message naming the field.
#[test]
fn every_kind_of_bad_config_exits_2_naming_the_field() {
    let shops = "shops:\n  - id: S_1\n";
    let cases: Vec<(&str, String, &[&str])> = vec![
        ("missing key", format!("gateway:\n  app_key: k\n  app_secret: s\n{shops}"), &["gateway.url", "missing"]),
        ("unknown key", format!("{GOOD_GATEWAY}{shops}colour: blue\n"), &["colour", "unknown key"]),
        ("unknown nested key", format!("{GOOD_GATEWAY}  colour: blue\n{shops}"), &["gateway.colour"]),
        ("bad duration", format!("{GOOD_GATEWAY}poll_interval: five minutes\n{shops}"), &["poll_interval", "duration"]),
        ("bad timezone", format!("{GOOD_GATEWAY}timezone: Mars/Olympus\n{shops}"), &["timezone", "Mars/Olympus"]),
        ("bad mac", format!("{GOOD_GATEWAY}devices:\n  - mac: d47c44906f1z\n"), &["devices[0].mac"]),
        ("bad id prefix", format!("{GOOD_GATEWAY}shops:\n  - id: X_9642\n"), &["shops[0].id", "S_ or O_"]),
        (
            "unset variable",
            format!("gateway:\n  url: http://127.0.0.1:1/m.api\n  app_key: ${{OPRETAIL_TEST_NOT_SET}}\n  app_secret: s\n{shops}"),
            &["gateway.app_key", "OPRETAIL_TEST_NOT_SET"],
        ),
        ("empty shops and devices", format!("{GOOD_GATEWAY}shops: []\ndevices: []\n"), &["shops", "nothing to poll"]),
        ("secret file missing", "gateway:\n  url: http://127.0.0.1:1/m.api\n  app_key: k\n  app_secret_file: /nonexistent/secret\nshops:\n  - id: S_1\n".to_string(), &["gateway.app_secret_file", "/nonexistent/secret"]),
        ("login without password", format!("{GOOD_GATEWAY}  login:\n    username: ops\n{shops}"), &["gateway.login.password"]),
    ];
    for (name, text, needles) in cases {
        let path = write_config(&name.replace(' ', "-"), &text);
        for args in [
            vec!["check-config", "--config"],
            vec!["--web.listen-address", "127.0.0.1:0", "--config"],
        ] {
            let out = Command::new(BIN)
                .args(&args)
                .arg(&path)
                .env_remove("OPRETAIL_TEST_NOT_SET")
                .output()
                .expect("runs");
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name} ({args:?}): {err}");
            for needle in needles {
                assert!(
                    err.contains(needle),
                    "{name} ({args:?}): {needle:?} missing from:\n{err}"
                );
            }
        }
    }
}

/// A child process whose JSON log is read for its listening address.
struct Child {
    child: std::process::Child,
    addr: String,
    drain: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        let mut child = Command::new(BIN)
            .args(args)
            .args(["--log.format", "json"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("starts");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let addr = log_field(&mut stderr, "addr");
        let drain = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Child {
            child,
            addr,
            drain: Some(drain),
        }
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([sig, &pid]).status().expect("kill").success());
    }

    fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let status = self.child.wait().expect("exits");
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        status
    }
}

fn get(url: &str) -> Option<(u16, String)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?;
        let status = r.status().as_u16();
        Some((status, r.text().await.ok()?))
    })
}

/// Scrapes `addr` until `done` holds for the body (30 s at most).
fn scrape_until(addr: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, body)) = get(&format!("http://{addr}/metrics")) {
            if done(&body) {
                return body;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{what} not seen within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_reloads_the_configuration_file() {
    let gateway = Child::spawn(&["simulate", "--listen", "127.0.0.1:0"]);
    let config = |shop: &str| {
        format!(
            "gateway:\n  url: http://{}/m.api\n  app_key: demo\n  app_secret: demo-secret\npoll_interval: 1h\nshops:\n  - id: {shop}\n",
            gateway.addr
        )
    };
    let path = write_config("sighup", &config("S_9601"));
    let exporter = Child::spawn(&[
        "--config",
        path.to_str().expect("utf-8 path"),
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    scrape_until(&exporter.addr, "S_9601", |b| {
        b.contains("opretail_target_up{target=\"S_9601\"} 1")
    });

    std::fs::write(&path, config("S_9602")).expect("rewrite");
    exporter.signal("-HUP");
    let body = scrape_until(&exporter.addr, "S_9602 after SIGHUP", |b| {
        b.contains("opretail_target_up{target=\"S_9602\"} 1")
    });
    assert!(!body.contains("target=\"S_9601\""), "the removed shop vanished");
    assert!(body.contains("opretail_config_last_reload_successful 1"));

    std::fs::write(&path, "gateway: {}\n").expect("break it");
    exporter.signal("-HUP");
    scrape_until(&exporter.addr, "a rejected reload", |b| {
        b.contains("opretail_config_last_reload_successful 0")
    });
    let body = scrape_until(&exporter.addr, "the old targets", |b| {
        b.contains("opretail_target_up{target=\"S_9602\"} 1")
    });
    assert!(body.contains("opretail_shop_walk_in{"));

    assert!(exporter.stop().success(), "SIGTERM: graceful exit 0");
    assert!(gateway.stop().success());
}

#[test]
fn a_bad_web_config_stops_run_and_demo_with_2_naming_the_field() {
    let config = write_config(
        "webcfg",
        "gateway:\n  url: http://127.0.0.1:1/m.api\n  app_key: k\n  app_secret: s\nshops:\n  - id: S_1\n",
    );
    let dir = config.parent().expect("dir").to_path_buf();
    let web = dir.join("web.yml");
    std::fs::write(&web, "basic_auth_users:\n  alice: not-a-hash-s3cr3t\n").expect("write");
    let run = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--web.listen-address", "127.0.0.1:0", "--web.config.file"])
        .arg(&web)
        .output()
        .expect("runs");
    let demo = Command::new(BIN)
        .args(["demo", "--web.listen-address", "127.0.0.1:0", "--web.config.file"])
        .arg(&web)
        .output()
        .expect("runs");
    for out in [run, demo] {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("basic_auth_users.alice: not a bcrypt hash"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        assert!(!err.contains("serving"), "started before refusing: {err}");
    }

    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["demo", "--web.listen-address", "127.0.0.1:0", "--web.config.file"])
        .arg(&web)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tls_server_config.cert_file") && err.contains("missing.crt"),
        "{err}"
    );
}

#[test]
fn demo_with_tls_and_basic_auth_stops_on_sigterm() {
    let dir = write_config("demo-tls", "").parent().expect("dir").to_path_buf();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    std::fs::write(dir.join("server.crt"), cert.cert.pem()).expect("write cert");
    std::fs::write(dir.join("server.key"), cert.key_pair.serialize_pem()).expect("write key");
    let hash = bcrypt::hash("pw", 4).expect("hash");
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prom: {hash}\n"
        ),
    )
    .expect("write web config");

    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
            "--web.config.file",
        ])
        .arg(&web)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let addr = log_field(&mut stderr, "addr");
    let drain = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("cert"))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("https://{addr}/-/ready"))
                .basic_auth("prom", Some("pw"))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if ready.ok() == Some(200) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "demo not ready in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = |r: reqwest::Result<reqwest::Response>| r.expect("request").status().as_u16();
        let url = format!("https://{addr}/metrics");
        assert_eq!(status(http.get(&url).basic_auth("prom", Some("pw")).send().await), 200);
        assert_eq!(status(http.get(&url).send().await), 401);
    });

    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    let status = child.wait().expect("exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    drain.join().expect("drain").expect("copy");
}

#[test]
fn a_bad_shard_exits_2_and_a_good_one_runs() {
    let path = write_config(
        "shard",
        &format!("{GOOD_GATEWAY}shops:\n  - id: S_1\n  - id: S_2\n  - id: S_3\n"),
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&path)
        .args(["--shard", "3/3"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("below the number of shards"));

    let path_str = path.to_str().expect("utf-8 path");
    let child = Child::spawn(&[
        "--config",
        path_str,
        "--web.listen-address",
        "127.0.0.1:0",
        "--shard",
        "opretail-exporter-1/2",
    ]);
    assert!(child.stop().success());
}

/// A file of two accounts on the simulated gateway at `url`: `brand-a` signs with the right
/// secret, `brand-b` with a wrong one (and carries its own calendar).
fn two_accounts(name: &str, url: &str) -> std::path::PathBuf {
    let path = write_config(
        name,
        &format!(
            "timezone: Asia/Shanghai\npoll_interval: 5m\naccounts:\n\
             - name: brand-a\n  gateway:\n    url: {url}\n    app_key: demo\n    app_secret: demo-secret\n    timeout: 5s\n    requests_per_second: 100\n  \
             shops:\n    - id: S_9604\n    - id: S_9605\n    - id: O_1001\n    - id: O_1002\n  devices:\n    - mac: d47c44906f03\n\
             - name: brand-b\n  gateway:\n    url: {url}\n    app_key: demo\n    app_secret: not-the-secret-b\n    timeout: 5s\n    requests_per_second: 2\n  \
             devices:\n    - mac: d47c44906f04\n  calendar: {{hours: {{all: 24h}}}}\n"
        ),
    );
    // It holds the secrets written out: only its owner may read it.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    path
}

/// Runs the binary with `args` (and the config file) without blocking the runtime a
/// simulator serves on: exit code, stdout, stderr.
async fn run_async(args: &[&str], config: &std::path::Path) -> (Option<i32>, String, String) {
    let mut full: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    full.push("--config".into());
    full.push(config.into());
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).args(&full).output().expect("runs"))
        .await
        .expect("join");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn simulator() -> opretail_exporter::simulator::RunningSimulator {
    use opretail_exporter::simulator::{SimConfig, Simulator};
    Simulator::new(SimConfig::demo(opretail_exporter::model::Clock::system()))
        .spawn(std::net::SocketAddr::from(common::LOOPBACK))
        .await
        .expect("simulator starts")
}

/// `check-config` on a file of two accounts: one line per account, its warnings after its
/// name; `--account` summarises one, and an unknown one exits 2 naming the accounts.
#[test]
fn check_config_summarises_each_account() {
    let path = two_accounts("accounts-check", "http://gw.example/m.api");
    let run = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .args(extra)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].ends_with(": valid (2 accounts, poll every 5m)"), "{stdout}");
    assert!(
        lines[1].starts_with("account brand-a: 4 shop ids, 1 devices; a refresh needs"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with(
            "account brand-b: 0 shop ids, 1 devices; a refresh needs 1 gateway calls, at least 1s at 2 requests/s"
        ),
        "{stdout}"
    );
    for name in ["brand-a", "brand-b"] {
        assert!(
            stderr.contains(&format!("warning: {name}: accounts["))
                && stderr.contains("gateway.url is http://gw.example:80"),
            "{name}: {stderr}"
        );
    }
    assert!(
        !stderr.contains("demo-secret") && !stderr.contains("not-the-secret-b"),
        "{stderr}"
    );

    let (code, stdout, _) = run(&["--account", "brand-b"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(
        stdout.contains("account brand-b:") && !stdout.contains("brand-a"),
        "{stdout}"
    );

    let (code, stdout, stderr) = run(&["--account", "brand-c"]);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.contains("no account \"brand-c\" (the accounts are brand-a, brand-b)"),
        "{stderr}"
    );

    // A problem in one account fails the file, naming the account's field.
    let text = std::fs::read_to_string(&path).expect("read").replace(
        "app_key: demo\n    app_secret: not",
        "app_key: ${OPRETAIL_TEST_UNSET_KEY}\n    app_secret: not",
    );
    let bad = write_config("accounts-check-bad", &text);
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&bad)
        .env_remove("OPRETAIL_TEST_UNSET_KEY")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("accounts[1].gateway.app_key: environment variable OPRETAIL_TEST_UNSET_KEY is not set"),
        "{stderr}"
    );
}

/// `fetch --account` calls with that account's key only: brand-a's answers, brand-b's wrong
/// secret is refused; without `--account` nothing is called and the accounts are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_uses_the_account_it_is_given() {
    let sim = simulator().await;
    let path = two_accounts("accounts-fetch", &sim.url());
    let yesterday = (chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        - chrono::Duration::days(1))
    .to_string();

    let before = sim.sim.requests();
    let (code, stdout, stderr) = run_async(&["fetch", "--id", "S_9604", "--date", &yesterday], &path).await;
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.contains("the file has 2 accounts; choose one with --account (brand-a, brand-b)"),
        "{stderr}"
    );
    assert_eq!(sim.sim.requests(), before, "no call without an account");

    let (code, stdout, stderr) = run_async(
        &["fetch", "--account", "brand-a", "--id", "S_9604", "--date", &yesterday],
        &path,
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("S_9604  "), "{stdout}");
    assert_eq!(stdout.lines().count(), 2 + 24, "{stdout}");

    let (code, stdout, stderr) = run_async(&["fetch", "--account", "brand-b", "--mac", "d47c44906f04"], &path).await;
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stderr.starts_with("gateway error 7 SIGN_WRONG"), "{stderr}");
    assert!(!stderr.contains("not-the-secret-b"), "{stderr}");

    // The single-account form has no names to give.
    let single = write_config(
        "accounts-fetch-single",
        &format!(
            "gateway:\n  url: {}\n  app_key: demo\n  app_secret: demo-secret\nshops:\n  - id: S_9604\n",
            sim.url()
        ),
    );
    let (code, _, stderr) = run_async(&["fetch", "--account", "brand-a", "--id", "S_9604"], &single).await;
    assert_eq!(code, Some(2));
    assert!(
        stderr.contains("single unnamed account (leave out --account)"),
        "{stderr}"
    );
    sim.shutdown().await;
}

/// `backfill --account` writes that account's history with its `account` label, as the live
/// series carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_labels_the_account_it_is_given() {
    let sim = simulator().await;
    let path = two_accounts("accounts-backfill", &sim.url());
    let output = path.with_file_name("history.om");
    let day = (chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        - chrono::Duration::days(1))
    .to_string();
    let out = output.to_str().expect("utf-8 path");
    let args = ["backfill", "--from", &day, "--to", &day, "--output", out];

    let (code, _, stderr) = run_async(&args, &path).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--account (brand-a, brand-b)"), "{stderr}");
    assert!(!output.exists(), "nothing written without an account");

    let mut with_account = args.to_vec();
    with_account.extend(["--account", "brand-a"]);
    let (code, _, stderr) = run_async(&with_account, &path).await;
    assert_eq!(code, Some(0), "{stderr}");
    let text = std::fs::read_to_string(&output).expect("written");
    let series: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!series.is_empty(), "{text}");
    assert!(
        series.iter().all(|l| l.contains("{account=\"brand-a\",")),
        "every series carries the account:\n{text}"
    );
    assert!(
        series
            .iter()
            .any(|l| l.starts_with("opretail_shop_walk_in{account=\"brand-a\",shop_id=\"9604\"")),
        "{text}"
    );
    assert!(series
        .iter()
        .any(|l| l.starts_with("opretail_device_walk_in{account=\"brand-a\",mac=\"d47c44906f03\"")));
    sim.shutdown().await;
}

/// `doctor` on a file of two accounts needs `--account` (exit 2 listing the names, no call);
/// with it, it checks that account alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_account_it_is_given() {
    let sim = simulator().await;
    let path = two_accounts("accounts-doctor", &sim.url());

    let before = sim.sim.requests();
    let (code, stdout, stderr) = run_async(&["doctor"], &path).await;
    assert_eq!(code, Some(2), "{stdout}");
    assert!(stderr.contains("--account (brand-a, brand-b)"), "{stderr}");
    assert_eq!(sim.sim.requests(), before, "no call without an account");

    let (code, stdout, stderr) = run_async(&["doctor", "--account", "brand-a"], &path).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("verdict: ok, the exporter can run as configured"),
        "{stdout}"
    );

    let (code, stdout, _) = run_async(&["doctor", "--account", "brand-b", "--json"], &path).await;
    assert_eq!(code, Some(1), "brand-b's wrong secret: {stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(json["ok"], false, "{json}");
    assert!(!stdout.contains("not-the-secret-b"));
    sim.shutdown().await;
}
