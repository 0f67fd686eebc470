//! The binary as users run it: `check-config` exit codes and messages, a bad config refused at
//! start-up, and `demo` serving the simulated chain until SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");

fn write_config(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("opretail-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
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
    let mut child = Command::new(BIN)
        .args(["demo", "--web.listen-address", "127.0.0.1:0", "--log.format", "json"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let addr = log_field(&mut stderr, "addr");
    // Keep draining the log so the child never blocks on a full pipe.
    let drain = std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let body = rt.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(format!("http://{addr}/-/ready"))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if ready.ok() == Some(200) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "demo not ready in 30 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        http.get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("body")
    });
    let shops = body.lines().filter(|l| l.starts_with("opretail_shop_walk_in{")).count();
    let devices = body
        .lines()
        .filter(|l| l.starts_with("opretail_device_walk_in{"))
        .count();
    assert_eq!((shops, devices), (20, 10), "{body}");
    assert!(!body.contains("demo-secret"));

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
