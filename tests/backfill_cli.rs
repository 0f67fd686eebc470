//! `backfill` and `fetch` as users run them: the binary against a simulated gateway spawned in
//! this process on loopback. The simulator follows the system clock here, so the tests ask for
//! days before today (Asia/Shanghai) and compare with the simulator's model.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use common::LOOPBACK;
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{device_hour, shop_hour, RunningSimulator, SimConfig, Simulator};

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");

fn dir(name: &str) -> PathBuf {
    common::temp_dir(name)
}

fn write_config(dir: &std::path::Path, url: &str, secret: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let text = format!(
        "gateway:\n  url: {url}\n  app_key: demo\n  app_secret: {secret}\n  timeout: 5s\n\
         shops:\n  - id: S_9604\n  - id: O_1002\n\
         devices:\n  - mac: d47c44906f03\n    name: Door\n    shop_id: \"9602\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    // It holds the secret written out: only its owner may read it (else a warning is logged).
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    path
}

async fn sim() -> RunningSimulator {
    Simulator::new(SimConfig::demo(Clock::system()))
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("simulator starts")
}

/// Runs the binary without blocking the runtime the simulator serves on.
async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().expect("binary runs"))
        .await
        .expect("join")
}

fn days_ago(n: i64) -> NaiveDate {
    Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).date_naive() - Duration::days(n)
}

fn ts(day: NaiveDate, hour: u32) -> i64 {
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&day.and_hms_opt(hour, 0, 0).expect("hour"))
        .single()
        .expect("unambiguous")
        .timestamp()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_writes_model_values_and_plain_progress() {
    let sim = sim().await;
    let d = dir("ok");
    let config = write_config(&d, &sim.url(), "demo-secret");
    let output = d.join("history.om");
    let (from, to) = (days_ago(3), days_ago(1));
    let out = run(args(&[
        "backfill",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--from",
        &from.to_string(),
        "--to",
        &to.to_string(),
        "--output",
        output.to_str().expect("utf-8 path"),
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // stderr is a pipe here: plain lines, no terminal control sequences.
    assert!(!stderr.contains('\u{1b}'), "escape codes on a non-terminal:\n{stderr}");
    // An organisation of unknown size is asked alone: S_9604, O_1002 and the device, 3 days.
    assert!(stderr.contains("progress: 9/9 calls (100%), 0 failed"), "{stderr}");
    // 9 shops (S_9604 + 8 of O_1002) × 72 hours; 1 device × 72 hours.
    assert!(
        stderr.contains("(648 shop hours, 72 device hours) from 9 calls, 0 failed"),
        "{stderr}"
    );

    let om = std::fs::read_to_string(&output).expect("output written");
    assert!(om.ends_with("# EOF\n"));
    let cfg = sim.sim.config();
    let shop = cfg.shop(9604).expect("demo shop");
    let day = days_ago(2);
    let want = shop_hour(shop, day.and_hms_opt(12, 0, 0).expect("hour"));
    let line = format!(
        "opretail_shop_walk_in{{shop_id=\"9604\",shop_name=\"{}\",shop_code=\"{}\"}} {} {}\n",
        shop.name,
        shop.code,
        want.walk_in,
        ts(day, 12)
    );
    assert!(om.contains(&line), "{line} missing");
    let dev = cfg.device("d47c44906f03").expect("demo device");
    let want = device_hour(dev, from.and_hms_opt(19, 0, 0).expect("hour"));
    let line = format!(
        "opretail_device_walk_out{{mac=\"d47c44906f03\",device_name=\"Door\",shop_id=\"9602\"}} {} {}\n",
        want.walk_out,
        ts(from, 19)
    );
    assert!(om.contains(&line), "{line} missing");
    assert!(!d.join("history.om.tmp").exists());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_with_a_wrong_secret_reports_the_code_and_exits_1_but_writes_the_file() {
    let sim = sim().await;
    let d = dir("bad");
    let config = write_config(&d, &sim.url(), "not-the-secret-xyz");
    let output = d.join("history.om");
    let day = days_ago(1).to_string();
    let out = run(args(&[
        "backfill",
        "--config",
        config.to_str().expect("utf-8 path"),
        "--from",
        &day,
        "--to",
        &day,
        "--output",
        output.to_str().expect("utf-8 path"),
    ]))
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("O_1002 {day}: gateway error 7 SIGN_WRONG: ")),
        "{stderr}"
    );
    assert!(stderr.contains("error: 3 of 3 calls failed"), "{stderr}");
    assert!(!stderr.contains("not-the-secret-xyz"), "the secret leaked:\n{stderr}");
    assert_eq!(std::fs::read_to_string(&output).expect("written"), "# EOF\n");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_prints_a_table_json_and_gateway_errors() {
    let sim = sim().await;
    let d = dir("fetch");
    let config = write_config(&d, &sim.url(), "demo-secret");
    let cfg_path = config.to_str().expect("utf-8 path").to_string();
    let day = days_ago(1);
    let shop = sim.sim.config().shop(9604).expect("demo shop").clone();
    let want = shop_hour(&shop, day.and_hms_opt(12, 0, 0).expect("hour"));

    let out = run(args(&[
        "fetch",
        "--config",
        &cfg_path,
        "--id",
        "S_9604",
        "--date",
        &day.to_string(),
    ]))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2 + 24, "{table}");
    assert!(lines[0].starts_with(&format!(
        "S_9604  {}  (shop_code {})  {day}  24 rows",
        shop.name, shop.code
    )));
    let noon: Vec<&str> = lines
        .iter()
        .find(|l| l.starts_with(&format!("{day} 12:00:00")))
        .expect("12:00 row")
        .split_whitespace()
        .collect();
    // date, time, walk_in, passing, outside, rate %, walk_out, fitting % ("-": no fitting room)
    assert_eq!(
        noon[2..],
        [
            want.walk_in.to_string(),
            want.passing.to_string(),
            want.outside().to_string(),
            format!("{:.2}", want.walk_in_rate_percent()),
            want.walk_out.to_string(),
            "-".to_string(),
        ]
    );

    let dev = sim.sim.config().device("d47c44906f03").expect("demo device").clone();
    let want = device_hour(&dev, day.and_hms_opt(9, 0, 0).expect("hour"));
    let out = run(args(&[
        "fetch",
        "--config",
        &cfg_path,
        "--mac",
        "D4:7C:44:90:6F:03",
        "--date",
        &day.to_string(),
        "--json",
    ]))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["target"], "device d47c44906f03");
    let row = &json["rows"][9];
    assert_eq!(row["time"], format!("{day} 09:00:00"));
    assert_eq!(row["walk_in"], want.walk_in as f64);
    assert_eq!(row["walk_out"], want.walk_out as f64);
    assert_eq!(row["complete"], true);

    let bad = write_config(&dir("fetch-bad"), &sim.url(), "not-the-secret-xyz");
    let out = run(args(&[
        "fetch",
        "--config",
        bad.to_str().expect("path"),
        "--id",
        "S_9604",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "gateway error 7 SIGN_WRONG: Invalid signature, please check parameters and signature format [cid "
        ),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check gateway.app_secret"), "{stderr}");
    assert!(!stderr.contains("not-the-secret-xyz") && out.stdout.is_empty());

    // Exactly one of --id and --mac.
    for extra in [vec![], vec!["--id", "S_1", "--mac", "d47c44906f03"]] {
        let mut a = args(&["fetch", "--config", &cfg_path]);
        a.extend(args(&extra));
        let out = run(a).await;
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
    }
    sim.shutdown().await;
}
