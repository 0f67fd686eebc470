//! Business calendars and shop metadata end to end: the exporter on port 0 against the demo
//! simulator (O_1001 holds shops 9601-9612, O_1002 shops 9613-9620), on a pinned clock, its
//! configuration read from a file. `opretail_shop_info` carries the organisation that returned
//! each shop and the labels of its levels; `opretail_shop_open` follows each shop's calendar for
//! the hour its values describe; a reload applies new labels and calendars, and a shop's two
//! series vanish with it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use std::path::Path;
use std::time::Duration;

use common::{utc, Exposition, Harness};
use opretail_exporter::config::Config;
use opretail_exporter::exporter::Options;

/// Wednesday 2024-05-01, 14:30 in Asia/Shanghai: the reported hour is 13:00-14:00.
const NOW: &str = "2024-05-01T06:30:00Z";

/// The configuration file: O_1001 with labels, O_1002 opening at 14:00 on Wednesdays, shop 9601
/// of O_1001 also listed by its own id and closed today, shop 9602 overridden.
fn yaml(url: &str) -> String {
    format!(
        r#"gateway:
  url: {url}
  app_key: demo
  app_secret: demo-secret
  timeout: 2s
  retry_backoff: 1ms
  requests_per_second: 1000
poll_interval: 1h
hour_delay: 0s
calendar:
  hours: {{all: "10:00-22:00"}}
shops:
  - id: O_1001
    labels: {{region: east, city: Shanghai}}
  - id: O_1002
    labels: {{region: west}}
    calendar:
      hours: {{wed: "14:00-22:00"}}
  - id: S_9601
    labels: {{region: north}}
    calendar: {{closed_dates: ["2024-05-01"]}}
shop_overrides:
  - shop_id: "9602"
    labels: {{manager: Zhang, region: south}}
    calendar: {{hours: {{wed: "13:45-14:00"}}}}
"#
    )
}

/// Starts the exporter on `path` (written by `write(sim_url)`), with no poll loop, after its
/// first round.
async fn start(path: &Path, write: impl FnOnce(&str) -> String) -> Harness {
    let options = Options {
        config_file: Some(path.to_path_buf()),
        manual_polling: true,
        ..Options::default()
    };
    let h = Harness::start_full_with(
        utc(NOW),
        |_| {},
        |sim| {
            std::fs::write(path, write(&sim.url())).expect("write config");
            let mut config = Config::load(path).expect("valid config");
            config.gateway.retry_backoff_max = Duration::from_millis(5);
            config
        },
        options,
    )
    .await;
    h.poll().await;
    h.wait_ready().await;
    h
}

/// The labels of shop `dep`'s info series, as `name=value` pairs (the shop's own three left
/// out), or `None` without one.
fn info(m: &Exposition, dep: &str) -> Option<Vec<String>> {
    let found: Vec<_> = m
        .samples
        .iter()
        .filter(|(n, l, _)| n == "opretail_shop_info" && l.get("shop_id").map(String::as_str) == Some(dep))
        .collect();
    assert!(found.len() <= 1, "one info series per shop: {found:?}");
    let (_, labels, value) = found.first()?;
    assert_eq!(*value, 1.0);
    Some(
        labels
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "shop_id" | "shop_name" | "shop_code"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    )
}

fn open(m: &Exposition, dep: &str) -> Option<f64> {
    m.get("opretail_shop_open", &[("shop_id", dep)])
}

#[tokio::test]
async fn shops_carry_their_organisation_labels_and_opening_hours() {
    let dir = common::temp_dir("calendar");
    let path = dir.join("config.yaml");
    let h = start(&path, yaml).await;
    let m = h.scrape().await;

    // Every shop with hourly series has both, with the labels of its hourly series.
    let shops = m.label_values("opretail_shop_walk_in", "shop_id");
    assert_eq!(shops.len(), 20, "{shops:?}");
    for dep in &shops {
        assert!(open(&m, dep).is_some(), "no opretail_shop_open for {dep}");
        assert!(info(&m, dep).is_some(), "no opretail_shop_info for {dep}");
    }
    let walk_in_labels = |dep: &str| {
        m.samples
            .iter()
            .find(|(n, l, _)| n == "opretail_shop_walk_in" && l["shop_id"] == dep)
            .map(|(_, l, _)| l.clone())
            .unwrap()
    };
    let open_labels = m
        .samples
        .iter()
        .find(|(n, l, _)| n == "opretail_shop_open" && l["shop_id"] == "9603")
        .map(|(_, l, _)| l.clone())
        .unwrap();
    assert_eq!(open_labels, walk_in_labels("9603"), "the hourly series' labels");

    // A shop of O_1001: its organisation and labels; 13:00 is within 10:00-22:00.
    assert_eq!(
        info(&m, "9603").unwrap(),
        ["city=Shanghai", "manager=", "org_id=O_1001", "region=east"]
    );
    assert_eq!(open(&m, "9603"), Some(1.0));
    // Its override wins over the organisation: its region, a manager, its Wednesday (13:45
    // lies inside the 13:00 hour).
    assert_eq!(
        info(&m, "9602").unwrap(),
        ["city=Shanghai", "manager=Zhang", "org_id=O_1001", "region=south"]
    );
    assert_eq!(open(&m, "9602"), Some(1.0));
    // A shop of O_1002: closed at 13:00 on Wednesdays.
    assert_eq!(
        info(&m, "9613").unwrap(),
        ["city=", "manager=", "org_id=O_1002", "region=west"]
    );
    assert_eq!(open(&m, "9613"), Some(0.0));
    // Shop 9601, listed by its own id: no organisation, only its own labels, closed today.
    assert_eq!(
        info(&m, "9601").unwrap(),
        ["city=", "manager=", "org_id=", "region=north"]
    );
    assert_eq!(open(&m, "9601"), Some(0.0));

    // An hour later (the 14:00 hour): O_1002 has opened, 9602's Wednesday range has ended, 9601
    // is still on its closed date.
    h.clock.set(utc("2024-05-01T07:30:00Z"));
    h.poll().await;
    let m = h.scrape().await;
    assert_eq!(
        m.value("opretail_shop_hour_timestamp_seconds", &[("shop_id", "9613")]),
        utc("2024-05-01T06:00:00Z").timestamp() as f64
    );
    assert_eq!(open(&m, "9613"), Some(1.0));
    assert_eq!(open(&m, "9603"), Some(1.0));
    assert_eq!(open(&m, "9602"), Some(0.0));
    assert_eq!(open(&m, "9601"), Some(0.0));

    // A reload: O_1002 is gone, O_1001 has a new region and is closed today. Its shops' series
    // follow at the next round; O_1002's shops lose both with their hourly series.
    let text = yaml(&h.sim.url())
        .replace("region: east", "region: east-2")
        .replace(
            "    labels: {region: east-2, city: Shanghai}\n",
            "    labels: {region: east-2, city: Shanghai}\n    calendar: {closed_dates: [\"2024-04-30/2024-05-02\"]}\n",
        )
        .replace(
            "  - id: O_1002\n    labels: {region: west}\n    calendar:\n      hours: {wed: \"14:00-22:00\"}\n",
            "",
        );
    assert!(
        !text.contains("O_1002") && text.contains("2024-04-30/2024-05-02"),
        "{text}"
    );
    std::fs::write(&path, text).expect("write config");
    let reloader = h.exporter.reloader.clone().expect("started from a file");
    reloader.reload().await.expect("the new configuration is valid");
    h.poll().await;
    let m = h.scrape().await;
    for dep in ["9613", "9620"] {
        assert!(m.get("opretail_shop_walk_in", &[("shop_id", dep)]).is_none(), "{dep}");
        assert_eq!(open(&m, dep), None, "{dep}'s opretail_shop_open vanished");
        assert_eq!(info(&m, dep), None, "{dep}'s opretail_shop_info vanished");
    }
    assert_eq!(m.label_values("opretail_shop_info", "shop_id").len(), 12);
    assert_eq!(
        info(&m, "9603").unwrap(),
        ["city=Shanghai", "manager=", "org_id=O_1001", "region=east-2"]
    );
    assert_eq!(open(&m, "9603"), Some(0.0), "closed by the new organisation calendar");
    let mut orgs = m.label_values("opretail_shop_info", "org_id");
    orgs.sort();
    orgs.dedup();
    assert_eq!(orgs, ["", "O_1001"]);
    h.stop().await;
}
