//! `doctor` as users run it: the binary against a simulated gateway spawned in this process on
//! loopback (following the system clock, as `doctor` does), its verdict checked in the text
//! and in the JSON, its calls counted from the gateway's side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::LOOPBACK;
use opretail_exporter::cmd::doctor::MAX_CALLS;
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{RunningSimulator, SimConfig, SimRateScale, SimRowTime, Simulator};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_opretail-exporter");
const SECRET: &str = "demo-secret";

/// A configuration for the simulator at `url`: `gateway` holds extra lines under `gateway:`
/// (indented by two blanks), then the shop ids and device macs.
struct Setup<'a> {
    secret: &'a str,
    gateway: &'a str,
    shops: Vec<String>,
    macs: Vec<String>,
}

impl<'a> Setup<'a> {
    /// Two shops, both demo organisations and two devices.
    fn demo() -> Self {
        Setup {
            secret: SECRET,
            gateway: "",
            shops: ["S_9604", "S_9605", "O_1001", "O_1002"].map(String::from).to_vec(),
            macs: ["d47c44906f03", "d47c44906f04"].map(String::from).to_vec(),
        }
    }

    fn write(&self, name: &str, url: &str) -> PathBuf {
        let dir = common::temp_dir(name);
        let path = dir.join("config.yaml");
        let mut text = format!(
            "gateway:\n  url: {url}\n  app_key: demo\n  app_secret: {}\n  timeout: 5s\n  requests_per_second: 100\n{}",
            self.secret, self.gateway
        );
        if !self.shops.is_empty() {
            text.push_str("shops:\n");
            for id in &self.shops {
                text.push_str(&format!("  - id: {id}\n"));
            }
        }
        if !self.macs.is_empty() {
            text.push_str("devices:\n");
            for mac in &self.macs {
                text.push_str(&format!("  - mac: {mac}\n"));
            }
        }
        std::fs::write(&path, text).expect("write config");
        path
    }
}

async fn sim(adjust: impl FnOnce(&mut SimConfig)) -> RunningSimulator {
    let mut cfg = SimConfig::demo(Clock::system());
    adjust(&mut cfg);
    Simulator::new(cfg)
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("simulator starts")
}

/// What one run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// Gateway requests the run made.
    requests: u64,
}

/// Runs `doctor --config <config> [--json]` without blocking the runtime the simulator
/// serves on, and counts the requests it made.
async fn doctor(sim: &RunningSimulator, config: &Path, json: bool) -> Run {
    let mut args = vec![
        "doctor".to_string(),
        "--config".to_string(),
        config.to_str().expect("utf-8 path").to_string(),
    ];
    if json {
        args.push("--json".to_string());
    }
    let before = sim.sim.requests();
    let out = tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().expect("binary runs"))
        .await
        .expect("join");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        requests: sim.sim.requests() - before,
    }
}

/// Both runs, text and JSON: the JSON parsed.
async fn both(sim: &RunningSimulator, config: &Path) -> (Run, Run, Value) {
    let text = doctor(sim, config, false).await;
    let json = doctor(sim, config, true).await;
    let value: Value = serde_json::from_str(&json.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", json.stdout, json.stderr));
    (text, json, value)
}

/// The text line of the check `name`.
fn line<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"))
}

fn fixes(json: &Value) -> Vec<String> {
    json["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .map(|p| p["fix"].as_str().expect("fix").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_gateway_passes_every_check() {
    let sim = sim(|_| {}).await;
    let config = Setup::demo().write("ok", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(0), "{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(
        out.contains("\nverdict: ok, the exporter can run as configured\n"),
        "{out}"
    );
    assert!(!out.contains("FAIL") && !out.contains("warn "), "{out}");
    for name in [
        "signature",
        "clock",
        "row time",
        "rate scale",
        "fields",
        "id lists",
        "organisations",
        "walk-outs",
        "outside counters",
        "day figures",
        "devices",
        "calls",
    ] {
        assert!(line(out, name).starts_with("ok    "), "{name}: {out}");
    }
    assert!(line(out, "row time").contains("start"), "{out}");
    assert!(line(out, "rate scale").contains("percent"), "{out}");
    assert!(line(out, "organisations").contains("O_1001: 12 shops"), "{out}");
    assert!(
        out.contains("\n  row_time: start\n  rate_scale: percent\n  max_ids_per_request: 50\n"),
        "{out}"
    );
    assert!(out.lines().count() <= 25, "one screen:\n{out}");

    assert_eq!(json_run.code, Some(0), "{}", json_run.stderr);
    assert_eq!(json["ok"], true);
    assert_eq!(json["signature"], "accepted");
    assert!(json["clock_skew_seconds"].as_f64().expect("skew").abs() < 5.0, "{json}");
    assert_eq!(json["row_time"], "start");
    assert_eq!(json["rate_scale"], "percent");
    assert_eq!(json["id_lists"]["accepted"], true);
    assert_eq!(json["id_lists"]["max_ids_ok"], 10, "1, 2 and 10 of the 20 demo shops");
    let shops = &json["fields"]["open.passengerflow.getManyShopsPassengerIndicatorData"];
    assert_eq!(shops["missing"], serde_json::json!([]));
    assert_eq!(shops["extra"], serde_json::json!([]));
    assert!(
        shops["missing_in_some_rows"]["dressingRate"]
            .as_u64()
            .expect("no fitting room in some shops")
            > 0,
        "{shops}"
    );
    let devices = &json["fields"]["open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator"];
    assert_eq!(devices["missing"], serde_json::json!([]));
    assert_eq!(json["face_device_shops"], serde_json::json!([]));
    assert_eq!(json["no_outside_counter_shops"], serde_json::json!([]));
    assert_eq!(json["problems"], serde_json::json!([]));
    assert_eq!(json["organisations"][0]["id"], "O_1001");
    assert_eq!(json["organisations"][0]["shops"], 12);
    assert!(json["organisations"][0]["bytes"].as_u64().expect("bytes") > 0);
    assert_eq!(json["organisations"][1]["shops"], 8);
    assert_eq!(json["recommended"]["row_time"], "start");
    assert_eq!(json["recommended"]["rate_scale"], "percent");
    assert_eq!(json["recommended"]["max_ids_per_request"], 50);
    assert_eq!(json["shops_seen"], 20);

    // No face device: every shop's day row is the sum of its hours.
    assert!(
        line(out, "day figures")
            .starts_with("ok    day figures       day rows equal the sums of their hours in 10 of 10 shops"),
        "{out}"
    );
    let figures = &json["day_figures"];
    assert_eq!(figures["asked"], true);
    assert_eq!(
        figures["consistent"].as_array().expect("consistent").len(),
        10,
        "{figures}"
    );
    for verdict in ["de_duplicated", "differing", "not_compared"] {
        assert_eq!(figures[verdict], serde_json::json!([]), "{figures}");
    }
    assert!(json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .any(|c| c["check"] == "day figures" && c["status"] == "ok"));
    // The day call asks for day rows (timeType=2) of the ten shops of the longest list.
    let day_calls: Vec<_> = sim
        .sim
        .shops_asked()
        .into_iter()
        .filter(|a| a.time_type.as_deref() == Some("2"))
        .collect();
    assert_eq!(day_calls.len(), 2, "one per run: {day_calls:?}");
    assert!(day_calls
        .iter()
        .all(|a| a.id.split(',').count() == 10 && a.id.starts_with("S_9604,S_9605,")));

    // The first call, two organisations, lists of 2 and 10, the day rows, two devices.
    assert_eq!(json["calls"], 8);
    assert_eq!((text.requests, json_run.requests), (8, 8));
    assert!(!text.stdout.contains(SECRET) && !json_run.stdout.contains(SECRET));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_configuration_costs_no_more_calls() {
    // 10 organisations of 30 shops, 8 devices; the configuration names 60 shops, every
    // organisation and every device.
    let sim = Simulator::new(SimConfig::large(Clock::system(), 300, 8, 30))
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("simulator starts");
    let mut setup = Setup::demo();
    setup.shops = (100_001..=100_060).map(|n| format!("S_{n}")).collect();
    setup.shops.extend((2001..=2010).map(|n| format!("O_{n}")));
    setup.macs = (0..8).map(|i| format!("0a{i:010x}")).collect();
    let config = setup.write("large", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(0), "{}\n{}", text.stdout, text.stderr);
    assert_eq!(json_run.code, Some(0));
    assert_eq!(json["id_lists"]["max_ids_ok"], 50);
    let tried: Vec<u64> = json["id_lists"]["tried"]
        .as_array()
        .expect("tried")
        .iter()
        .map(|t| t["ids"].as_u64().expect("ids"))
        .collect();
    assert_eq!(tried, [1, 2, 10, 50]);
    assert_eq!(json["organisations"].as_array().expect("orgs").len(), 5);
    assert_eq!(json["organisations_not_asked"].as_array().expect("rest").len(), 5);
    assert!(
        line(&text.stdout, "organisations").contains("5 more not asked"),
        "{}",
        text.stdout
    );
    assert!(
        line(&text.stdout, "devices").contains("2 of 8 asked"),
        "{}",
        text.stdout
    );
    // The first call, 5 organisations, lists of 2, 10 and 50, the day rows of 50 shops, 2
    // devices.
    assert_eq!(json["calls"], 12);
    assert!(text.requests <= MAX_CALLS as u64 && json_run.requests <= MAX_CALLS as u64);
    assert_eq!(text.requests, 12);
    assert_eq!(
        json["day_figures"]["consistent"].as_array().expect("consistent").len(),
        50,
        "{}",
        json["day_figures"]
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_rejected_and_stops_the_checks() {
    let sim = sim(|_| {}).await;
    let mut setup = Setup::demo();
    setup.secret = "not-the-secret-xyz";
    let config = setup.write("bad-secret", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(1), "{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(
        line(out, "signature").starts_with("FAIL  signature         rejected: gateway error 7 SIGN_WRONG: "),
        "{out}"
    );
    assert!(
        out.contains("     fix: check gateway.app_secret and gateway.sign_method\n"),
        "{out}"
    );
    assert!(out.contains("\nverdict: FAIL"), "{out}");
    assert!(!out.contains("recommended"), "no settings from a refused call:\n{out}");

    assert_eq!(json_run.code, Some(1));
    assert_eq!(json["ok"], false);
    assert_eq!(json["signature"], "rejected");
    assert!(
        json["signature_error"]
            .as_str()
            .expect("error")
            .starts_with("gateway error 7 SIGN_WRONG"),
        "{json}"
    );
    assert_eq!(fixes(&json), ["check gateway.app_secret and gateway.sign_method"]);
    assert_eq!(json["row_time"], "unknown");
    assert_eq!(json["id_lists"]["accepted"], Value::Null);
    assert_eq!(json["calls"], 1);
    assert_eq!((text.requests, json_run.requests), (1, 1), "nothing after the refusal");
    for run in [&text, &json_run] {
        assert!(!run.stdout.contains("not-the-secret-xyz") && !run.stderr.contains("not-the-secret-xyz"));
        assert!(!run.stdout.contains("_sig"));
    }
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_refusing_long_id_lists_gets_a_shorter_max_ids_per_request() {
    // 13 characters (S_9604,S_9605) pass, 69 (ten ids) do not.
    let sim = sim(|cfg| cfg.max_id_chars = Some(40)).await;
    let config = Setup::demo().write("id-chars", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(1), "{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(
        line(out, "id lists").starts_with("FAIL  id lists          lists of 2 ids worked"),
        "{out}"
    );
    assert!(line(out, "id lists").contains("400001 PARAM_TOO_LONG"), "{out}");
    assert!(out.contains("     fix: gateway.max_ids_per_request: 2\n"), "{out}");
    assert!(out.contains("\n  max_ids_per_request: 2\n"), "{out}");

    assert_eq!(json_run.code, Some(1));
    assert_eq!(json["ok"], false);
    assert_eq!(json["id_lists"]["accepted"], true);
    assert_eq!(json["id_lists"]["max_ids_ok"], 2);
    let tried = &json["id_lists"]["tried"];
    assert_eq!(tried[2]["ids"], 10);
    assert_eq!(tried[2]["worked"], false);
    assert_eq!(fixes(&json), ["gateway.max_ids_per_request: 2"]);
    assert_eq!(json["recommended"]["max_ids_per_request"], 2);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_row_time_the_gateway_contradicts_is_a_problem() {
    let sim = sim(|_| {}).await;
    let mut setup = Setup::demo();
    setup.gateway = "  row_time: end\n  rate_scale: percent\n";
    let config = setup.write("row-time", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(1), "{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(
        line(out, "row time").starts_with("FAIL  row time          start: "),
        "{out}"
    );
    assert!(line(out, "row time").ends_with("but gateway.row_time is end"), "{out}");
    assert!(line(out, "rate scale").starts_with("ok "), "as configured: {out}");
    assert!(out.contains("     fix: gateway.row_time: start\n"), "{out}");

    assert_eq!(json_run.code, Some(1));
    assert_eq!(json["ok"], false);
    assert_eq!(json["row_time"], "start");
    assert_eq!(fixes(&json), ["gateway.row_time: start"]);
    assert_eq!(json["recommended"]["row_time"], "start");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_configurations_exit_2() {
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().expect("binary runs"))
    };
    let out = run(vec!["doctor".into()]).await.expect("join");
    assert_eq!(out.status.code(), Some(2), "--config is required");
    let dir = common::temp_dir("invalid");
    let path = dir.join("config.yaml");
    std::fs::write(&path, "gateway:\n  url: http://127.0.0.1:9/m.api\nshops: []\n").expect("write");
    let path = path.to_str().expect("utf-8 path").to_string();
    let out = run(vec!["doctor".into(), "--config".into(), path]).await.expect("join");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid configuration"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_labelled_rows_and_fraction_rates_are_found() {
    let sim = sim(|cfg| {
        cfg.row_time = SimRowTime::End;
        cfg.rate_scale = SimRateScale::Fraction;
    })
    .await;
    let config = Setup::demo().write("end-fraction", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(0), "auto finds both:\n{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(
        line(out, "row time").starts_with("ok    row time          end: "),
        "{out}"
    );
    assert!(
        line(out, "rate scale").starts_with("ok    rate scale        fraction: "),
        "{out}"
    );
    assert!(out.contains("\n  row_time: end\n  rate_scale: fraction\n"), "{out}");
    // The hours are summed as the end labels say: all 24 of the day, as in its day row.
    assert!(
        line(out, "day figures")
            .starts_with("ok    day figures       day rows equal the sums of their hours in 10 of 10 shops"),
        "{out}"
    );

    assert_eq!(json_run.code, Some(0));
    assert_eq!(json["ok"], true);
    assert_eq!(json["row_time"], "end");
    assert_eq!(json["rate_scale"], "fraction");
    assert_eq!(json["recommended"]["row_time"], "end");
    assert_eq!(json["recommended"]["rate_scale"], "fraction");

    // Against fixed settings that say otherwise: both are problems with their fix.
    let mut setup = Setup::demo();
    setup.gateway = "  row_time: start\n  rate_scale: percent\n";
    let fixed = setup.write("end-fraction-fixed", &sim.url());
    let (text, _, json) = both(&sim, &fixed).await;
    assert_eq!(text.code, Some(1));
    assert!(line(&text.stdout, "rate scale").starts_with("FAIL  rate scale        fraction: "));
    assert_eq!(fixes(&json), ["gateway.row_time: end", "gateway.rate_scale: fraction"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_field_is_missing_and_extra() {
    let sim = sim(|cfg| cfg.renamed_fields = vec![("passPassengerFlow".into(), "passFlow".into())]).await;
    let config = Setup::demo().write("renamed", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(1), "{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(
        line(out, "fields").starts_with("FAIL  fields            shops: passPassengerFlow missing from all "),
        "{out}"
    );
    assert!(line(out, "fields").contains("(unknown fields: passFlow)"), "{out}");
    assert!(out.contains("the gateway may have renamed it (fields it sends that the exporter does not read: passFlow)"));

    assert_eq!(json_run.code, Some(1));
    assert_eq!(json["ok"], false);
    let shops = &json["fields"]["open.passengerflow.getManyShopsPassengerIndicatorData"];
    assert_eq!(shops["missing"], serde_json::json!(["passPassengerFlow"]));
    assert_eq!(shops["extra"], serde_json::json!(["passFlow"]));
    assert_eq!(json["problems"].as_array().expect("problems").len(), 1);
    assert!(json["problems"][0]["problem"]
        .as_str()
        .expect("problem")
        .contains("passPassengerFlow"));
    // The other checks still run: the rates are still there to tell their scale.
    assert_eq!(json["rate_scale"], "percent");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_clock_300_s_ahead_is_a_problem() {
    let sim = sim(|cfg| cfg.clock_skew = 300).await;
    let config = Setup::demo().write("skew", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(text.code, Some(1), "{}\n{}", text.stdout, text.stderr);
    let out = &text.stdout;
    assert!(line(out, "clock").starts_with("FAIL  clock             -30"), "{out}");
    assert!(out.contains("this host's clock is 300 s behind the gateway's"), "{out}");
    assert!(out.contains("     fix: synchronise this host's clock (NTP)\n"), "{out}");

    assert_eq!(json_run.code, Some(1));
    let skew = json["clock_skew_seconds"].as_f64().expect("skew");
    assert!((skew + 300.0).abs() < 5.0, "{skew}");
    assert_eq!(fixes(&json), ["synchronise this host's clock (NTP)"]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_device_and_no_outside_counter_shops_are_listed() {
    let sim = sim(|cfg| {
        for shop in cfg.orgs.iter_mut().flat_map(|o| o.shops.iter_mut()) {
            shop.face_device = (9601..=9603).contains(&shop.dep_id);
            shop.outside_counter = shop.dep_id < 9619;
        }
        for device in &mut cfg.devices {
            device.face_device = (9601..=9603).contains(&device.dep_id);
        }
    })
    .await;
    // The configured devices belong to shop 9602: face devices too.
    let config = Setup::demo().write("face", &sim.url());
    let (text, json_run, json) = both(&sim, &config).await;

    assert_eq!(
        text.code,
        Some(0),
        "findings, not problems:\n{}\n{}",
        text.stdout,
        text.stderr
    );
    let out = &text.stdout;
    assert!(
        line(out, "walk-outs").starts_with(
            "warn  walk-outs         no walk-outs (face-counting devices) in 3 of 20 shops: 9601, 9602, 9603; "
        ),
        "{out}"
    );
    assert!(
        line(out, "outside counters").starts_with("warn  outside counters  no outside counter (no outside traffic, or 0 beside walk-ins) in 2 of 20 shops: 9619, 9620; "),
        "{out}"
    );
    assert!(
        line(out, "fields").starts_with("warn  fields"),
        "walk-outs no device sends: {out}"
    );
    assert!(
        out.contains("verdict: ok, the exporter can run as configured (3 warnings above)"),
        "{out}"
    );

    assert_eq!(json_run.code, Some(0));
    assert_eq!(json["ok"], true);
    assert_eq!(json["face_device_shops"], serde_json::json!(["9601", "9602", "9603"]));
    assert_eq!(json["no_outside_counter_shops"], serde_json::json!(["9619", "9620"]));
    // The ten shops of the day call hold the three face-device shops: their day walk-in is
    // de-duplicated, the others' days are the sums of their hours.
    assert!(
        line(out, "day figures").starts_with(
            "ok    day figures       day rows equal the sums of their hours in 7 of 10 shops; day walk-in below the sum of the hours in 3 of 10 shops: 9601, 9602, 9603; "
        ),
        "{out}"
    );
    assert!(
        line(out, "day figures")
            .contains("opretail_shop_walk_in_today for them is below the sum of their hourly walk-ins by design"),
        "{out}"
    );
    let figures = &json["day_figures"];
    assert_eq!(figures["de_duplicated"], serde_json::json!(["9601", "9602", "9603"]));
    assert_eq!(
        figures["consistent"].as_array().expect("consistent").len(),
        7,
        "{figures}"
    );
    assert_eq!(figures["differing"], serde_json::json!([]));
    assert_eq!(figures["not_compared"], serde_json::json!([]));
    let devices = &json["fields"]["open.shopwebpassengerflow.customerflow.listDevicePassengerIndicator"];
    assert_eq!(devices["missing"], serde_json::json!(["outFlowCount"]));
    assert_eq!(json["rate_scale"], "percent", "the shops with an outside counter tell");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_s_ids_the_first_call_is_an_organisation_or_a_device() {
    let sim = sim(|_| {}).await;
    // Organisations only (as `demo` polls): the lists come from the shops they named.
    let mut setup = Setup::demo();
    setup.shops = vec!["O_1001".into(), "O_1002".into()];
    let config = setup.write("orgs-only", &sim.url());
    let run = doctor(&sim, &config, true).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert!(
        json["first_call"].as_str().expect("first").starts_with("O_1001 "),
        "{json}"
    );
    assert_eq!(json["row_time"], "start", "from the list of one, a whole day");
    assert_eq!(json["id_lists"]["max_ids_ok"], 10);
    assert_eq!(json["organisations"][0]["shops"], 12);
    // The first organisation's answer is the first call's: two organisations, lists of 1, 2
    // and 10, the day rows, two devices.
    assert_eq!((json["calls"].as_u64(), run.requests), (Some(8), 8));

    // Devices only.
    let mut setup = Setup::demo();
    setup.shops.clear();
    let config = setup.write("devices-only", &sim.url());
    let run = doctor(&sim, &config, false).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        line(&run.stdout, "signature").contains("accepted (device d47c44906f03 "),
        "{}",
        run.stdout
    );
    assert!(
        line(&run.stdout, "row time").starts_with("ok    row time          start"),
        "{}",
        run.stdout
    );
    assert!(line(&run.stdout, "id lists").contains("not tried"), "{}", run.stdout);
    assert!(
        line(&run.stdout, "day figures").starts_with("ok    day figures       not asked: "),
        "{}",
        run.stdout
    );
    assert_eq!(run.requests, 2, "no day rows without a shop's day");
    sim.shutdown().await;
}
