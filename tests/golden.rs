//! The value series' exposition, byte for byte, against `tests/golden/values.prom`.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the file after an intended change;
//! CI also runs `promtool check metrics` on it.

use std::collections::BTreeMap;

use opretail_exporter::metrics::render_snapshot;
use opretail_exporter::model::{DeviceSample, DeviceValues, ShopSample, ShopValues, Snapshot, TargetStatus};

fn snapshot() -> Snapshot {
    let hour = 1_714_539_600; // 2024-05-01 13:00 Asia/Shanghai
    let shops = [
        ShopSample {
            dep_id: "9642".into(),
            name: "Test store".into(),
            code: "55247".into(),
            hour_start: hour,
            values: ShopValues {
                walk_in: Some(12.0),
                passing: Some(135.0),
                outside: Some(147.0),
                walk_in_rate: Some(0.0816),
                walk_out: Some(11.0),
                fitting_rate: Some(0.25),
            },
        },
        ShopSample {
            // No fitting room, no store code, a name that needs escaping.
            dep_id: "9643".into(),
            name: "万店掌 \"旗舰\" \\ 店".into(),
            code: String::new(),
            hour_start: hour,
            values: ShopValues {
                walk_in: Some(0.0),
                passing: Some(3.0),
                outside: Some(3.0),
                walk_in_rate: Some(0.0),
                walk_out: Some(0.0),
                fitting_rate: None,
            },
        },
    ];
    let devices = [DeviceSample {
        mac: "d47c44906f14".into(),
        name: "Main entrance".into(),
        shop_id: "9642".into(),
        hour_start: hour,
        values: DeviceValues {
            walk_in: Some(12.0),
            walk_out: None,
        },
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
    Snapshot {
        shops: shops.into_iter().map(|s| (s.dep_id.clone(), s)).collect(),
        devices: devices.into_iter().map(|d| (d.mac.clone(), d)).collect(),
        targets: targets
            .into_iter()
            .map(|(t, s)| (t.to_string(), s))
            .collect::<BTreeMap<_, _>>(),
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
