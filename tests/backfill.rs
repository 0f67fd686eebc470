//! Backfill against the simulated gateway on loopback with a pinned clock: exact values from
//! the simulator's model for past and today's complete hours, nothing for hours not complete,
//! OpenMetrics ordering rules, the live exporter's metric names, and failures that keep what
//! the other calls fetched.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::NaiveDate;
use common::{config, local, utc, Exposition, LOOPBACK};
use opretail_exporter::client::Client;
use opretail_exporter::client::Target;
use opretail_exporter::cmd::backfill::{self, Backfill, Options};
use opretail_exporter::config::Config;
use opretail_exporter::metrics::{render_snapshot, MetricsStore};
use opretail_exporter::model::{Clock, DeviceSample, DeviceValues, ShopSample, ShopValues, Snapshot, TargetStatus};
use opretail_exporter::simulator::{device_hour, shop_hour, Fault, RunningSimulator, SimConfig, Simulator};

/// 14:20 in Shanghai on Wednesday 2024-05-01: the latest complete hour is 13:00 local.
const NOW: &str = "2024-05-01T06:20:00Z";

/// O_1001 (12 shops, 9601..=9612) in one batch with S_9613, then S_9601 again (already in
/// O_1001) alone; two devices.
fn make_config(url: &str) -> Config {
    let mut c = config(
        url,
        &["O_1001", "S_9613", "S_9601"],
        &[("d47c44906f01", "Entrance A", "9601"), ("d47c44906f02", "", "")],
    );
    c.gateway.max_ids_per_request = 2;
    c.gateway.max_in_flight = 3;
    c
}

async fn start() -> (RunningSimulator, Clock) {
    let clock = Clock::manual(utc(NOW));
    let sim = Simulator::new(SimConfig::demo(clock.clone()))
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("simulator starts");
    (sim, clock)
}

fn client(config: &Config, clock: &Clock) -> Client {
    let store = MetricsStore::new("test", "test").expect("store");
    Client::new(&config.gateway, clock.clone(), store.api().clone()).expect("client")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

fn text(b: &Backfill) -> String {
    let mut out = Vec::new();
    b.write_openmetrics(&mut out).expect("write");
    String::from_utf8(out).expect("utf-8")
}

/// Unix seconds of a Shanghai wall time.
fn ts(local_time: &str) -> i64 {
    use chrono::TimeZone;
    chrono_tz::Asia::Shanghai
        .from_local_datetime(&local(local_time))
        .single()
        .expect("unambiguous")
        .timestamp()
}

/// (name, labels, value, timestamp) of every sample line.
fn samples(om: &str) -> Vec<(String, String, f64, i64)> {
    om.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, rest) = l.split_once("} ").expect("labelled sample");
            let (name, labels) = series.split_once('{').expect("labels");
            let (value, t) = rest.split_once(' ').expect("timestamp");
            (
                name.to_string(),
                labels.to_string(),
                value.parse().expect("value"),
                t.parse().expect("integer seconds"),
            )
        })
        .collect()
}

fn value(om: &str, name: &str, label: &str, at: i64) -> Option<f64> {
    let found: Vec<f64> = samples(om)
        .into_iter()
        .filter(|(n, l, _, t)| n == name && l.contains(label) && *t == at)
        .map(|(_, _, v, _)| v)
        .collect();
    assert!(
        found.len() <= 1,
        "{name}{{{label}}} @{at} appears {} times",
        found.len()
    );
    found.first().copied()
}

#[tokio::test]
async fn backfills_exact_model_values_for_complete_hours_only() {
    let (sim, clock) = start().await;
    let cfg = make_config(&sim.url());
    let opts = Options::new(date("2024-04-29"), date("2024-05-03"));
    let plan = backfill::plan(&cfg, &opts, clock.now()).expect("plan");
    assert_eq!(plan.to, date("2024-05-01"), "clamped to today");
    assert!(plan.clamped);
    assert_eq!(plan.last_complete, local("2024-05-01 13:00:00"));
    // 3 days × (2 shop batches + 2 devices)
    assert_eq!(plan.calls.len(), 12);
    assert_eq!(
        plan.calls
            .iter()
            .filter(|c| matches!(&c.target, Target::Shops(ids) if ids.len() == 2))
            .count(),
        3
    );

    let mut seen = Vec::new();
    let b = backfill::run(&cfg, &client(&cfg, &clock), &plan, |p| {
        assert!(p.failure.is_none());
        seen.push((p.done, p.total));
    })
    .await;
    assert_eq!(seen.last(), Some(&(12, 12)));
    assert_eq!(b.calls, 12);
    assert!(b.failures.is_empty(), "{:?}", b.failures);
    // 13 distinct shops (9601 twice asked, once kept) × (48 + 14 hours); 2 devices × 62.
    assert_eq!(b.shop_hours(), 13 * 62);
    assert_eq!(b.device_hours(), 2 * 62);
    let om = text(&b);
    assert!(om.ends_with("\n# EOF\n"));

    let cfg_sim = sim.sim.config().clone();
    for (dep, hour) in [
        (9604, "2024-04-29 12:00:00"), // no fitting room
        (9603, "2024-04-30 19:00:00"), // numbers as strings
        (9613, "2024-05-01 13:00:00"), // the latest complete hour, shop of O_1002
        (9601, "2024-05-01 00:00:00"),
    ] {
        let shop = cfg_sim.shop(dep).expect("demo shop");
        let want = shop_hour(shop, local(hour));
        let at = ts(hour);
        let l = format!("shop_id=\"{dep}\"");
        assert_eq!(
            value(&om, "opretail_shop_walk_in", &l, at),
            Some(want.walk_in as f64),
            "{dep} {hour}"
        );
        assert_eq!(value(&om, "opretail_shop_passing", &l, at), Some(want.passing as f64));
        assert_eq!(value(&om, "opretail_shop_outside", &l, at), Some(want.outside() as f64));
        assert_eq!(value(&om, "opretail_shop_walk_out", &l, at), Some(want.walk_out as f64));
        assert_eq!(
            value(&om, "opretail_shop_walk_in_rate", &l, at),
            Some(want.walk_in_rate_percent() / 100.0)
        );
        assert_eq!(
            value(&om, "opretail_shop_fitting_rate", &l, at),
            want.fitting_rate_percent().map(|p| p / 100.0)
        );
        assert_eq!(
            value(&om, "opretail_shop_hour_timestamp_seconds", &l, at),
            Some(at as f64)
        );
    }
    let s9613 = cfg_sim.shop(9613).expect("demo shop");
    let labels = format!(
        "opretail_shop_walk_in{{shop_id=\"9613\",shop_name=\"{}\",shop_code=\"{}\"}} ",
        s9613.name, s9613.code
    );
    assert!(om.contains(&labels), "{labels} missing");

    let dev = cfg_sim.device("d47c44906f01").expect("demo device");
    let want = device_hour(dev, local("2024-04-30 12:00:00"));
    let l = "mac=\"d47c44906f01\",device_name=\"Entrance A\",shop_id=\"9601\"";
    let at = ts("2024-04-30 12:00:00");
    assert_eq!(value(&om, "opretail_device_walk_in", l, at), Some(want.walk_in as f64));
    assert_eq!(
        value(&om, "opretail_device_walk_out", l, at),
        Some(want.walk_out as f64)
    );
    assert!(om.contains("opretail_device_walk_in{mac=\"d47c44906f02\",device_name=\"\",shop_id=\"\"} "));

    // Nothing of the hour in progress (14:00) or later; nothing of 2024-05-02.
    let latest = samples(&om).iter().map(|s| s.3).max().expect("samples");
    assert_eq!(latest, ts("2024-05-01 13:00:00"));
    let earliest = samples(&om).iter().map(|s| s.3).min().expect("samples");
    assert_eq!(earliest, ts("2024-04-29 00:00:00"));

    sim.shutdown().await;
}

#[tokio::test]
async fn openmetrics_order_and_the_live_exporters_names() {
    let (sim, clock) = start().await;
    let cfg = make_config(&sim.url());
    let opts = Options::new(date("2024-04-30"), date("2024-05-01"));
    let plan = backfill::plan(&cfg, &opts, clock.now()).expect("plan");
    let b = backfill::run(&cfg, &client(&cfg, &clock), &plan, |_| {}).await;
    let om = text(&b);

    // Families: TYPE then HELP, each once, never interleaved; series contiguous; time order.
    let mut families_seen: Vec<String> = Vec::new();
    let mut series_seen: BTreeSet<String> = BTreeSet::new();
    let mut current_series = String::new();
    let mut last_ts = i64::MIN;
    let lines: Vec<&str> = om.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("type line");
            assert_eq!(kind, "gauge");
            assert!(!families_seen.iter().any(|f| f == name), "{name} declared twice");
            families_seen.push(name.to_string());
            assert!(
                lines[i + 1].starts_with(&format!("# HELP {name} ")),
                "HELP follows TYPE"
            );
            continue;
        }
        if line.starts_with("# HELP") || *line == "# EOF" {
            assert!(*line != "# EOF" || i + 1 == lines.len(), "# EOF is last");
            continue;
        }
        let (series, rest) = line.split_once("} ").expect("sample");
        let name = series.split('{').next().expect("name");
        assert_eq!(
            Some(name),
            families_seen.last().map(String::as_str),
            "sample of the current family"
        );
        let t: i64 = rest.split(' ').nth(1).expect("timestamp").parse().expect("seconds");
        if series != current_series {
            assert!(series_seen.insert(series.to_string()), "series {series} interleaved");
            current_series = series.to_string();
        } else {
            assert!(t > last_ts, "time order in {series}");
        }
        last_ts = t;
    }

    // The same names and label names as /metrics of the live exporter.
    assert_eq!(families_seen, backfill::family_names());
    let live = render_snapshot(&full_snapshot());
    let live = Exposition::parse(&live);
    for name in backfill::family_names() {
        let (_, live_labels, _) = live
            .samples
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} is not a live family"));
        let ours = samples(&om)
            .into_iter()
            .find(|s| s.0 == name)
            .map(|s| s.1)
            .expect("backfilled");
        let our_names: BTreeSet<&str> = ours.split(',').map(|kv| kv.split('=').next().unwrap_or("")).collect();
        let live_names: BTreeSet<&str> = live_labels.keys().map(String::as_str).collect();
        assert_eq!(our_names, live_names, "{name}");
    }
    sim.shutdown().await;
}

/// A snapshot with every value present, so every live family has a sample.
fn full_snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    Arc::make_mut(&mut s.shops).insert(
        "1".into(),
        ShopSample {
            dep_id: "1".into(),
            name: "n".into(),
            code: "c".into(),
            hour_start: 0,
            values: ShopValues::every(1.0),
            meta: Default::default(),
        },
    );
    Arc::make_mut(&mut s.devices).insert(
        "m".into(),
        DeviceSample {
            mac: "m".into(),
            name: "n".into(),
            shop_id: "1".into(),
            hour_start: 0,
            values: DeviceValues::every(1.0),
        },
    );
    Arc::make_mut(&mut s.targets).insert("S_1".into(), TargetStatus::default());
    s
}

#[tokio::test]
async fn failed_calls_are_reported_with_code_and_name_and_the_rest_is_kept() {
    let (sim, clock) = start().await;
    let mut cfg = make_config(&sim.url());
    cfg.gateway.max_in_flight = 1; // one call at a time: the fault starts after exactly two
    let opts = Options::new(date("2024-04-30"), date("2024-04-30"));
    let plan = backfill::plan(&cfg, &opts, clock.now()).expect("plan");
    assert_eq!(plan.calls.len(), 4);
    let mut failures = Vec::new();
    let b = backfill::run(&cfg, &client(&cfg, &clock), &plan, |p| {
        if let Some(f) = p.failure {
            failures.push(f.to_string());
        }
        if p.done == 2 {
            sim.sim.set_fault(Some(Fault::Code(7)));
        }
    })
    .await;
    assert_eq!(b.calls, 4);
    assert_eq!(b.failures.len(), 2);
    assert_eq!(failures.len(), 2);
    for f in &b.failures {
        assert_eq!(f.error.code(), "7");
    }
    assert!(
        failures[0].contains(
            ": gateway error 7 SIGN_WRONG: Invalid signature, please check parameters and signature format [cid "
        ),
        "{}",
        failures[0]
    );
    // The two shop batches came first and were kept: 13 shops × 24 hours.
    assert_eq!(b.shop_hours(), 13 * 24);
    assert_eq!(b.device_hours(), 0);
    let om = text(&b);
    assert!(om.ends_with("# EOF\n"));
    assert!(!om.contains("opretail_device_"));
    sim.shutdown().await;
}

#[tokio::test]
async fn http_errors_are_reported_and_the_file_stays_valid() {
    let (sim, clock) = start().await;
    let mut cfg = make_config(&sim.url());
    cfg.shops = cfg.shops.iter().take(1).cloned().collect();
    cfg.devices.clear();
    let opts = Options::new(date("2024-04-30"), date("2024-04-30"));
    let plan = backfill::plan(&cfg, &opts, clock.now()).expect("plan");
    sim.sim.set_fault(Some(Fault::Http(503)));
    let b = backfill::run(&cfg, &client(&cfg, &clock), &plan, |_| {}).await;
    assert_eq!(b.failures.len(), 1);
    assert_eq!(b.failures[0].error.code(), "http_503");
    assert!(
        b.failures[0].to_string().starts_with("O_1001 2024-04-30: "),
        "{}",
        b.failures[0]
    );
    assert_eq!(text(&b), "# EOF\n");
    sim.shutdown().await;
}

#[test]
fn plans_refuse_reversed_and_future_ranges() {
    let cfg = make_config("http://127.0.0.1:9/m.api");
    let now = utc(NOW);
    let err = backfill::plan(&cfg, &Options::new(date("2024-05-01"), date("2024-04-30")), now).unwrap_err();
    assert_eq!(err.to_string(), "--from 2024-05-01 is after --to 2024-04-30");
    let err = backfill::plan(&cfg, &Options::new(date("2024-05-02"), date("2024-05-03")), now).unwrap_err();
    assert!(err.to_string().contains("in the future"), "{err}");
    let mut empty = cfg.clone();
    empty.shops = Default::default();
    empty.devices.clear();
    assert!(backfill::plan(&empty, &Options::new(date("2024-04-30"), date("2024-04-30")), now).is_err());
}
