//! Configuration reload through `POST /-/reload`: a valid file applies without a restart
//! (removed targets vanish, new ones appear), an invalid one is rejected whole while the old
//! configuration keeps running, and the reload metrics say which happened.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::{utc, Exposition, Harness, LOOPBACK};
use opretail_exporter::config::Config;
use opretail_exporter::model::Clock;
use opretail_exporter::simulator::{SimConfig, Simulator};

const NOW: &str = "2024-05-01T06:30:00Z";

fn yaml(url: &str, shops: &[&str], devices: &[&str], extra: &str) -> String {
    let mut text = format!(
        "gateway:\n  url: {url}\n  app_key: demo\n  app_secret: demo-secret\n  timeout: 2s\n  retry_backoff: 1ms\n  requests_per_second: 1000\npoll_interval: 1h\n{extra}"
    );
    text.push_str("shops:\n");
    for s in shops {
        text.push_str(&format!("  - id: {s}\n"));
    }
    text.push_str("devices:\n");
    for d in devices {
        text.push_str(&format!("  - mac: {d}\n"));
    }
    text
}

async fn start(first: impl FnOnce(&str) -> String) -> (Harness, PathBuf) {
    let clock = Clock::manual(utc(NOW));
    let sim = Simulator::new(SimConfig::demo(clock.clone()))
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("sim");
    let dir = common::temp_dir("reload");
    let path = dir.join("config.yaml");
    std::fs::write(&path, first(&sim.url())).expect("write");
    let config = Config::load(&path).expect("valid first config");
    let options = opretail_exporter::exporter::Options {
        config_file: Some(path.clone()),
        lifecycle: true,
        ..Default::default()
    };
    let exporter = opretail_exporter::exporter::start_with(config, SocketAddr::from(LOOPBACK), clock.clone(), options)
        .await
        .expect("exporter");
    let http = common::http_client();
    let h = Harness {
        sim,
        exporter,
        clock,
        http,
    };
    h.wait_ready().await;
    (h, path)
}

async fn post_reload(h: &Harness) -> (u16, String) {
    let r = h.http.post(h.url("/-/reload")).send().await.expect("POST");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// Scrapes until `done` holds (the poll the reload triggers has published), or fails.
async fn scrape_until(h: &Harness, what: &str, done: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = h.scrape().await;
        if done(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} not seen within 20 s:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn shop_ids(m: &Exposition) -> Vec<String> {
    let mut ids = m.label_values("opretail_shop_walk_in", "shop_id");
    ids.sort();
    ids
}

#[tokio::test]
async fn a_valid_file_applies_and_an_invalid_one_is_rejected() {
    let (h, path) = start(|url| yaml(url, &["S_9601"], &["d47c44906f01"], "")).await;
    let m = h.scrape().await;
    assert_eq!(shop_ids(&m), ["9601"]);
    assert_eq!(m.value("opretail_config_last_reload_successful", &[]), 1.0);
    let started = m.value("opretail_config_last_reload_success_timestamp_seconds", &[]);
    assert_eq!(started, utc(NOW).timestamp() as f64);

    // A new shop and an organisation in, the old shop and the device out.
    let url = h.sim.url();
    std::fs::write(&path, yaml(&url, &["S_9602", "O_1002"], &[], "")).expect("write");
    h.clock.set(utc("2024-05-01T06:40:00Z"));
    let (status, body) = post_reload(&h).await;
    assert_eq!((status, body.trim()), (200, "Reloaded"));
    let m = scrape_until(&h, "the reloaded targets", |m| {
        m.get("opretail_target_up", &[("target", "O_1002")]).is_some()
    })
    .await;
    let mut want = vec!["9602".to_string()];
    want.extend((9613..=9620).map(|d| d.to_string()));
    assert_eq!(shop_ids(&m), want);
    assert!(
        m.find("opretail_device_walk_in", &[]).is_empty(),
        "the removed device vanished"
    );
    assert_eq!(m.get("opretail_target_up", &[("target", "d47c44906f01")]), None);
    assert_eq!(m.get("opretail_target_up", &[("target", "S_9601")]), None);
    assert_eq!(m.value("opretail_config_last_reload_successful", &[]), 1.0);
    assert_eq!(
        m.value("opretail_config_last_reload_success_timestamp_seconds", &[]),
        utc("2024-05-01T06:40:00Z").timestamp() as f64
    );

    // An invalid file: every problem named, nothing applied.
    std::fs::write(&path, yaml(&url, &["S_1"], &[], "stale_after: soon\ncolour: blue\n")).expect("write");
    let (status, body) = post_reload(&h).await;
    assert_eq!(status, 400);
    // An anonymous caller is told no more than that; the reload's error (logged) lists it all.
    assert!(body.contains("rejected") && !body.contains("stale_after"), "{body}");
    let reloader = h.exporter.reloader.clone().expect("a reloader");
    let problems = reloader.reload().await.expect_err("invalid").to_string();
    assert!(
        problems.contains("stale_after") && problems.contains("colour"),
        "{problems}"
    );
    assert!(!body.contains("demo-secret") && !problems.contains("demo-secret"));
    let report = h.poll().await;
    assert_eq!(report.shops, 9, "the previous configuration keeps running");
    let m = h.scrape().await;
    assert_eq!(m.value("opretail_config_last_reload_successful", &[]), 0.0);
    assert_eq!(
        m.value("opretail_config_last_reload_success_timestamp_seconds", &[]),
        utc("2024-05-01T06:40:00Z").timestamp() as f64,
        "the last success stays"
    );
    assert_eq!(shop_ids(&m).len(), 9);

    // Mended: accepted again.
    std::fs::write(&path, yaml(&url, &["S_9603"], &[], "")).expect("write");
    let (status, _) = post_reload(&h).await;
    assert_eq!(status, 200);
    let m = scrape_until(&h, "S_9603", |m| shop_ids(m) == ["9603"]).await;
    assert_eq!(m.value("opretail_config_last_reload_successful", &[]), 1.0);
    h.stop().await;
}

#[tokio::test]
async fn reload_without_a_file_is_refused() {
    let options = opretail_exporter::exporter::Options {
        lifecycle: true,
        ..Default::default()
    };
    let h = Harness::start_full_with(
        utc(NOW),
        |_| {},
        |sim| common::config(&sim.url(), &["S_9601"], &[]),
        options,
    )
    .await;
    let (status, body) = post_reload(&h).await;
    assert_eq!(status, 400);
    assert!(body.contains("not started from a configuration file"), "{body}");
    let r = h.http.get(h.url("/-/reload")).send().await.expect("GET");
    assert_eq!(r.status().as_u16(), 405, "reload is POST only");
    h.stop().await;
}

#[tokio::test]
async fn a_shop_that_leaves_its_organisation_vanishes_at_the_next_poll() {
    // Two gateways: the second one's O_1002 no longer has shop 9620.
    let (h, path) = start(|url| yaml(url, &["O_1002"], &[], "")).await;
    let m = h.scrape().await;
    assert!(shop_ids(&m).contains(&"9620".to_string()));
    let mut smaller = SimConfig::demo(h.clock.clone());
    for org in &mut smaller.orgs {
        org.shops.retain(|s| s.dep_id != 9620);
    }
    let other = Simulator::new(smaller)
        .spawn(SocketAddr::from(LOOPBACK))
        .await
        .expect("sim");
    std::fs::write(&path, yaml(&other.url(), &["O_1002"], &[], "")).expect("write");
    let (status, _) = post_reload(&h).await;
    assert_eq!(status, 200);
    let m = scrape_until(&h, "9620 gone", |m| !shop_ids(m).contains(&"9620".to_string())).await;
    assert_eq!(shop_ids(&m).len(), 7);
    assert_eq!(m.value("opretail_target_up", &[("target", "O_1002")]), 1.0);
    other.shutdown().await;
    h.stop().await;
}
