//! The value series' exposition, byte for byte, against `tests/golden/values.prom`.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the file after an intended change;
//! CI also runs `promtool check metrics` on it. The snapshot names its values by the schema's
//! short names, and a snapshot with every value set must show every family of the schema.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

use std::collections::BTreeMap;
use std::sync::Arc;

use opretail_exporter::metrics::render_snapshot;
use opretail_exporter::model::{
    DaySample, DeviceDayValues, DeviceSample, DeviceValues, ShopBaseline, ShopDayValues, ShopMeta, ShopSample,
    ShopValues, Snapshot, TargetStatus,
};
use opretail_exporter::schema;

/// Shop values by the schema's short names (`walk_in`, …); a value left out is absent.
fn shop_values(pairs: &[(&str, f64)]) -> ShopValues {
    let mut values = ShopValues::default();
    for (key, value) in pairs {
        assert!(values.set(key, Some(*value)), "the schema has no shop value {key}");
    }
    values
}

/// Device values by the schema's short names; a value left out is absent.
fn device_values(pairs: &[(&str, f64)]) -> DeviceValues {
    let mut values = DeviceValues::default();
    for (key, value) in pairs {
        assert!(values.set(key, Some(*value)), "the schema has no device value {key}");
    }
    values
}

fn snapshot() -> Snapshot {
    let hour = 1_714_539_600; // 2024-05-01 13:00 Asia/Shanghai
    let shops = [
        ShopSample {
            dep_id: "9642".into(),
            name: "Test store".into(),
            code: "55247".into(),
            hour_start: hour,
            values: shop_values(&[
                ("walk_in", 12.0),
                ("passing", 135.0),
                ("outside", 147.0),
                ("walk_in_rate", 0.0816),
                ("walk_out", 11.0),
                ("fitting_rate", 0.25),
            ]),
            // Configured by its own S_ id, open that hour, with static labels.
            meta: ShopMeta {
                open: true,
                org_id: None,
                labels: vec![
                    ("manager".to_string(), "Li \"Wei\"".to_string()),
                    ("region".to_string(), "north".to_string()),
                ]
                .into(),
            },
        },
        ShopSample {
            // No fitting room, no store code, a name that needs escaping.
            dep_id: "9643".into(),
            name: "万店掌 \"旗舰\" \\ 店".into(),
            code: String::new(),
            hour_start: hour,
            values: shop_values(&[
                ("walk_in", 0.0),
                ("passing", 3.0),
                ("outside", 3.0),
                ("walk_in_rate", 0.0),
                ("walk_out", 0.0),
            ]),
            // Returned by O_1834, closed that hour, without a manager.
            meta: ShopMeta {
                open: false,
                org_id: Some(1834),
                labels: vec![
                    ("city".to_string(), "Shanghai".to_string()),
                    ("region".to_string(), "east".to_string()),
                ]
                .into(),
            },
        },
    ];
    let devices = [DeviceSample {
        mac: "d47c44906f14".into(),
        name: "Main entrance".into(),
        shop_id: "9642".into(),
        hour_start: hour,
        values: device_values(&[("walk_in", 12.0)]),
    }];
    let targets = [
        (
            "S_9642",
            TargetStatus {
                up: true,
                last_success: Some(1_714_545_000.5),
            },
        ),
        (
            "O_1834",
            TargetStatus {
                up: false,
                last_success: Some(1_714_541_400.0),
            },
        ),
        (
            "d47c44906f14",
            TargetStatus {
                up: true,
                last_success: Some(1_714_545_000.5),
            },
        ),
        (
            "S_1",
            TargetStatus {
                up: false,
                last_success: None,
            },
        ),
    ];
    let day = 1_714_492_800; // 2024-05-01 00:00 Asia/Shanghai
    let mut today = ShopDayValues::default();
    for (key, value) in [
        ("walk_in_today", 96.0),
        ("passing_today", 1210.0),
        ("outside_today", 1306.0),
        ("walk_in_rate_today", 0.0735),
    ] {
        assert!(today.set(key, Some(value)), "the schema has no shop day value {key}");
    }
    // A face-device shop: no walk-outs.
    let shop_days = [(
        "9642",
        DaySample {
            day_start: day,
            values: today,
        },
    )];
    let mut device_today = DeviceDayValues::default();
    assert!(device_today.set("walk_in_today", Some(87.0)));
    let device_days = [(
        "d47c44906f14",
        DaySample {
            day_start: day,
            values: device_today,
        },
    )];
    // A baseline over three weeks for one shop; one for a shop not published (not shown).
    let shop_baselines = [
        ("9642", ShopBaseline::new(14.0, 10.4, 3)),
        ("9999", ShopBaseline::new(1.0, 1.0, 2)),
    ];
    Snapshot {
        shop_baselines: shop_baselines.into_iter().map(|(k, b)| (k.to_string(), b)).collect(),
        shop_days: Arc::new(shop_days.into_iter().map(|(k, d)| (k.to_string(), d)).collect()),
        device_days: Arc::new(device_days.into_iter().map(|(k, d)| (k.to_string(), d)).collect()),
        shops: Arc::new(shops.into_iter().map(|s| (s.dep_id.clone(), s)).collect()),
        devices: Arc::new(devices.into_iter().map(|d| (d.mac.clone(), d)).collect()),
        targets: Arc::new(
            targets
                .into_iter()
                .map(|(t, s)| (t.to_string(), s))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

#[test]
fn value_series_match_the_golden_file() {
    let rendered = render_snapshot(&snapshot());
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/values.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &rendered).expect("write golden file");
    }
    let golden = std::fs::read_to_string(path).expect("tests/golden/values.prom exists");
    assert_eq!(
        rendered, golden,
        "rendered exposition differs from {path} (UPDATE_GOLDEN=1 to accept)"
    );
}

#[test]
fn an_empty_snapshot_renders_no_series() {
    let rendered = render_snapshot(&Snapshot::default());
    assert!(
        rendered.lines().all(|l| l.starts_with('#') || l.is_empty()),
        "{rendered}"
    );
}

#[test]
fn every_value_set_renders_every_family_of_the_schema_in_name_order() {
    let mut full = snapshot();
    for shop in Arc::make_mut(&mut full.shops).values_mut() {
        shop.values = ShopValues::every(1.0);
    }
    for device in Arc::make_mut(&mut full.devices).values_mut() {
        device.values = DeviceValues::every(1.0);
    }
    for day in Arc::make_mut(&mut full.shop_days).values_mut() {
        day.values = ShopDayValues::every(1.0);
    }
    for day in Arc::make_mut(&mut full.device_days).values_mut() {
        day.values = DeviceDayValues::every(1.0);
    }
    let rendered = render_snapshot(&full);
    let families: Vec<&str> = rendered
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(families, schema::names());
}
