//! The exporter end to end against the simulated gateway on loopback: exact values for the
//! latest complete hour, error counters under faults, last good values kept, and recovery.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed assumption is a failed test

mod common;

use common::{config, local, utc, Exposition, Harness};
use opretail_exporter::client::{METHOD_DEVICES, METHOD_SHOPS};
use opretail_exporter::simulator::{device_hour, shop_hour, Fault};

const SHOPS: &[&str] = &["S_9603", "S_9604", "O_1002", "S_99999"];
const DEVICES: &[(&str, &str, &str)] = &[
    ("d47c44906f01", "Entrance A", "9601"),
    ("D4:7C:44:90:6F:02", "", ""),
    ("0000000000ff", "Ghost", ""),
];

/// 14:30 in Shanghai on a Wednesday: the latest complete hour is 13:00 local, 05:00 UTC.
const NOW: &str = "2024-05-01T06:30:00Z";

async fn harness() -> Harness {
    Harness::start(utc(NOW), |url| {
        let mut c = config(url, SHOPS, DEVICES);
        for d in &mut c.devices {
            d.mac = opretail_exporter::model::normalize_mac(&d.mac).expect("mac");
        }
        c
    })
    .await
}

/// Asserts every shop gauge of `dep_id` equals the simulator's model for `hour`.
fn assert_shop(m: &Exposition, h: &Harness, dep_id: u64, hour: &str, hour_ts: i64) {
    let shop = h.sim.sim.config().shop(dep_id).expect("demo shop").clone();
    let want = shop_hour(&shop, local(hour));
    let dep = dep_id.to_string();
    let l = [
        ("shop_id", dep.as_str()),
        ("shop_name", shop.name.as_str()),
        ("shop_code", shop.code.as_str()),
    ];
    assert_eq!(
        m.value("opretail_shop_walk_in", &l),
        want.walk_in as f64,
        "walk_in of {dep}"
    );
    assert_eq!(
        m.value("opretail_shop_passing", &l),
        want.passing as f64,
        "passing of {dep}"
    );
    assert_eq!(
        m.value("opretail_shop_outside", &l),
        want.outside() as f64,
        "outside of {dep}"
    );
    assert_eq!(
        m.value("opretail_shop_walk_out", &l),
        want.walk_out as f64,
        "walk_out of {dep}"
    );
    let rate = m.value("opretail_shop_walk_in_rate", &l);
    assert!(
        (rate - want.walk_in_rate_percent() / 100.0).abs() < 1e-9,
        "walk_in_rate of {dep}: {rate}"
    );
    assert!((0.0..=1.0).contains(&rate));
    match want.fitting_rate_percent() {
        Some(p) => {
            let got = m.value("opretail_shop_fitting_rate", &l);
            assert!((got - p / 100.0).abs() < 1e-9, "fitting_rate of {dep}: {got} vs {p}%");
        }
        None => assert_eq!(
            m.get("opretail_shop_fitting_rate", &l),
            None,
            "no fitting room, no sample for {dep}"
        ),
    }
    assert_eq!(m.value("opretail_shop_hour_timestamp_seconds", &l), hour_ts as f64);
    assert!(want.walk_in > 0, "the model should have traffic at {hour} for {dep}");
}

#[tokio::test]
async fn publishes_the_latest_complete_hour_exactly() {
    let h = harness().await;
    let m = h.scrape().await;
    let hour_ts = utc("2024-05-01T05:00:00Z").timestamp();

    // S_9603 answers numbers as strings; S_9604 has no fitting room; O_1002 is 9613..=9620.
    assert_shop(&m, &h, 9603, "2024-05-01 13:00:00", hour_ts);
    assert_shop(&m, &h, 9604, "2024-05-01 13:00:00", hour_ts);
    for dep in 9613..=9620 {
        assert_shop(&m, &h, dep, "2024-05-01 13:00:00", hour_ts);
    }
    let mut shops = m.label_values("opretail_shop_walk_in", "shop_id");
    shops.sort();
    let mut want: Vec<String> = ["9603", "9604"].iter().map(|s| s.to_string()).collect();
    want.extend((9613..=9620).map(|d| d.to_string()));
    assert_eq!(shops, want, "exactly the configured shops and the organisation's shops");

    // The hour in progress (14:00) and the hours to come must not leak in: the gateway
    // returns them too, as partial counts and zeros.
    let shop = h.sim.sim.config().shop(9613).expect("shop").clone();
    let in_progress = shop_hour(&shop, local("2024-05-01 14:00:00"));
    assert_ne!(
        in_progress.walk_in,
        shop_hour(&shop, local("2024-05-01 13:00:00")).walk_in
    );

    // Devices, with their configured labels; a mac given with colons is normalised.
    let dev = h.sim.sim.config().device("d47c44906f01").expect("device").clone();
    let want = device_hour(&dev, local("2024-05-01 13:00:00"));
    let l = [
        ("mac", "d47c44906f01"),
        ("device_name", "Entrance A"),
        ("shop_id", "9601"),
    ];
    assert_eq!(m.value("opretail_device_walk_in", &l), want.walk_in as f64);
    assert_eq!(m.value("opretail_device_walk_out", &l), want.walk_out as f64);
    assert_eq!(m.value("opretail_device_hour_timestamp_seconds", &l), hour_ts as f64);
    let dev2 = h.sim.sim.config().device("d47c44906f02").expect("device").clone();
    let l2 = [("mac", "d47c44906f02"), ("device_name", ""), ("shop_id", "")];
    assert_eq!(
        m.value("opretail_device_walk_in", &l2),
        device_hour(&dev2, local("2024-05-01 13:00:00")).walk_in as f64
    );
    assert_eq!(
        m.get("opretail_device_walk_in", &[("mac", "0000000000ff")]),
        None,
        "an unknown device has no values"
    );

    // Targets: every configured one, up except the shop the gateway does not know.
    let now = utc(NOW).timestamp() as f64;
    for t in [
        "S_9603",
        "S_9604",
        "O_1002",
        "d47c44906f01",
        "d47c44906f02",
        "0000000000ff",
    ] {
        assert_eq!(m.value("opretail_target_up", &[("target", t)]), 1.0, "{t} up");
        assert_eq!(
            m.value("opretail_target_last_success_timestamp_seconds", &[("target", t)]),
            now
        );
    }
    assert_eq!(m.value("opretail_target_up", &[("target", "S_99999")]), 0.0);
    assert_eq!(
        m.get(
            "opretail_target_last_success_timestamp_seconds",
            &[("target", "S_99999")]
        ),
        None
    );

    // The organisation alone (its size is not known yet), one call for the shop ids, each
    // batch's day-figure call, one call per device, no errors.
    assert_eq!(m.value("opretail_api_requests_total", &[("method", METHOD_SHOPS)]), 4.0);
    assert_eq!(
        m.value("opretail_api_requests_total", &[("method", METHOD_DEVICES)]),
        3.0
    );
    assert!(m.find("opretail_api_errors_total", &[]).iter().all(|v| *v == 0.0));
    assert_eq!(
        m.value(
            "opretail_exporter_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert!(m.get("opretail_poll_duration_seconds", &[]).is_some());
    assert!(m.text.contains("# HELP opretail_shop_walk_in "));
    for line in m.text.lines().filter(|l| l.starts_with("# HELP opretail_")) {
        let daily = line.contains("_today ") || line.contains("_day_timestamp_seconds ");
        assert!(
            line.contains("hourly") || daily && line.contains("daily figure") || daily && line.contains("hourly rows"),
            "HELP must say the data is hourly, or which daily source it is: {line}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn a_new_hour_replaces_the_values() {
    let h = harness().await;
    h.clock.set(utc("2024-05-01T07:05:00Z")); // 15:05 local
    h.exporter.poller.poll_once().await;
    let m = h.scrape().await;
    assert_shop(
        &m,
        &h,
        9615,
        "2024-05-01 14:00:00",
        utc("2024-05-01T06:00:00Z").timestamp(),
    );
    h.stop().await;
}

#[tokio::test]
async fn just_after_midnight_reports_yesterdays_last_hour() {
    // 00:10 in Shanghai on 2 May is 16:10 UTC on 1 May.
    let h = Harness::start(utc("2024-05-01T16:10:00Z"), |url| {
        config(url, &["O_1002"], &[("d47c44906f03", "", "")])
    })
    .await;
    let m = h.scrape().await;
    let ts = utc("2024-05-01T15:00:00Z").timestamp();
    for dep in 9613..=9620 {
        assert_shop(&m, &h, dep, "2024-05-01 23:00:00", ts);
    }
    let dev = h.sim.sim.config().device("d47c44906f03").expect("device").clone();
    assert_eq!(
        m.value("opretail_device_walk_in", &[("mac", "d47c44906f03")]),
        device_hour(&dev, local("2024-05-01 23:00:00")).walk_in as f64
    );
    assert_eq!(
        m.get("opretail_api_errors_total", &[("code", "-500")]),
        None,
        "whole-day windows are accepted"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_moved_hour_during_an_outage_keeps_the_old_hour_labelled_as_such() {
    let h = harness().await;
    h.sim.sim.set_fault(Some(Fault::Http(502)));
    h.clock.set(utc("2024-05-01T07:30:00Z"));
    h.exporter.poller.poll_once().await;
    let m = h.scrape().await;
    // The values are still those of 13:00 local, and the hour gauge says so.
    assert_shop(
        &m,
        &h,
        9614,
        "2024-05-01 13:00:00",
        utc("2024-05-01T05:00:00Z").timestamp(),
    );
    h.sim.sim.set_fault(None);
    h.exporter.poller.poll_once().await;
    let m = h.scrape().await;
    assert_shop(
        &m,
        &h,
        9614,
        "2024-05-01 14:00:00",
        utc("2024-05-01T06:00:00Z").timestamp(),
    );
    h.stop().await;
}

#[tokio::test]
async fn not_ready_until_the_first_poll_and_metrics_never_wait() {
    let h = Harness::start_unready(utc(NOW), |url| {
        let mut c = config(url, &["O_1001"], &[]);
        c.gateway.timeout = std::time::Duration::from_secs(3);
        c.gateway.max_retries = 0;
        c
    })
    .await;
    // The simulator hangs: the first poll cannot finish until the timeout.
    h.sim.sim.set_fault(Some(Fault::Hang));
    let (status, _) = h.get("/-/ready").await;
    // The first poll may have finished before the fault was set; only when it has not is the
    // exporter unready — and then /metrics must still answer at once.
    if status == 503 {
        let (status, body) = h.get("/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("opretail_exporter_build_info"));
        assert!(
            !body.contains("opretail_shop_walk_in{"),
            "no values before the first poll"
        );
    } else {
        assert_eq!(status, 200);
    }
    let (status, body) = h.get("/-/healthy").await;
    assert_eq!((status, body.trim()), (200, "OK"));
    let (status, body) = h.get("/").await;
    assert_eq!(status, 200);
    assert!(body.contains("href=\"/metrics\""));
    h.wait_ready().await;
    h.sim.sim.set_fault(None);
    h.stop().await;
}

#[tokio::test]
async fn a_wrong_secret_is_a_signature_error() {
    let h = Harness::start(utc(NOW), |url| {
        let mut c = config(url, &["O_1001"], &[("d47c44906f01", "", "")]);
        c.gateway.app_secret = "not-the-secret".to_string().into();
        c
    })
    .await;
    let m = h.scrape().await;
    assert_eq!(
        m.value("opretail_api_errors_total", &[("method", METHOD_SHOPS), ("code", "7")]),
        1.0
    );
    assert_eq!(
        m.value(
            "opretail_api_errors_total",
            &[("method", METHOD_DEVICES), ("code", "7")]
        ),
        1.0
    );
    assert_eq!(m.value("opretail_target_up", &[("target", "O_1001")]), 0.0);
    assert!(!m.text.contains("not-the-secret"));
    h.stop().await;
}

#[tokio::test]
async fn sha1_signing_and_small_batches() {
    let h = Harness::start(utc(NOW), |url| {
        let mut c = config(url, &["S_9601", "S_9602", "S_9603", "S_9604", "S_9605"], &[]);
        c.gateway.sign_method = opretail_exporter::model::SignMethod::Sha1;
        c.gateway.max_ids_per_request = 2;
        c
    })
    .await;
    let m = h.scrape().await;
    assert_eq!(
        m.value("opretail_api_requests_total", &[("method", METHOD_SHOPS)]),
        1.0 + 3.0 + 3.0,
        "the row-time probe, then 5 ids in batches of 2, for the hour and for the day figures"
    );
    assert_eq!(m.label_values("opretail_shop_walk_in", "shop_id").len(), 5);
    assert_shop(
        &m,
        &h,
        9605,
        "2024-05-01 13:00:00",
        utc("2024-05-01T05:00:00Z").timestamp(),
    );
    h.stop().await;
}

#[tokio::test]
async fn gzip_when_asked_with_the_same_series() {
    use std::io::Read;
    let h = harness().await;
    let get = |encoding: Option<&'static str>| {
        let mut req = h.http.get(h.url("/metrics"));
        if let Some(e) = encoding {
            req = req.header("Accept-Encoding", e);
        }
        req.send()
    };
    let plain = get(None).await.expect("plain");
    assert_eq!(plain.headers().get("content-encoding"), None);
    let plain = plain.text().await.expect("body");

    for accept in ["gzip", "deflate, gzip;q=0.8", "*"] {
        let r = get(Some(accept)).await.expect("gzip");
        assert_eq!(
            r.headers().get("content-encoding").map(|v| v.to_str().unwrap()),
            Some("gzip"),
            "{accept}"
        );
        let length: usize = r.headers()["content-length"].to_str().unwrap().parse().unwrap();
        let raw = r.bytes().await.expect("bytes");
        assert_eq!(raw.len(), length);
        assert!(
            raw.len() * 3 < plain.len(),
            "compressed: {} vs {}",
            raw.len(),
            plain.len()
        );
        // One gzip member (clients that stop after the first member must see everything).
        let mut text = String::new();
        let mut decoder = flate2::read::GzDecoder::new(&raw[..]);
        decoder
            .read_to_string(&mut text)
            .expect("valid gzip with a correct CRC and length");
        let mut rest = Vec::new();
        decoder.into_inner().read_to_end(&mut rest).expect("rest");
        assert!(rest.is_empty(), "nothing after the first member");
        let values = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.starts_with("opretail_shop_") || l.starts_with("opretail_device_"))
                .map(String::from)
                .collect()
        };
        assert_eq!(values(&text), values(&plain), "{accept}: the same value series");
        assert!(
            text.contains("opretail_exporter_build_info"),
            "{accept}: health series included"
        );
    }
    for refuse in ["gzip;q=0", "identity", "br"] {
        let r = get(Some(refuse)).await.expect("plain");
        assert_eq!(r.headers().get("content-encoding"), None, "{refuse}");
        assert!(r.text().await.expect("body").contains("opretail_shop_walk_in{"));
    }
    h.stop().await;
}

/// The refresh asks for the one hour it publishes (`starthour`/`endhour`), and gets it right
/// whether the gateway answers `endhour` itself or not; it downloads a small part of what a
/// whole-day call of the same shops does.
#[tokio::test]
async fn the_refresh_asks_for_one_hour_under_either_reading_of_endhour() {
    use opretail_exporter::client::{Call, Client, Target};
    use opretail_exporter::metrics::MetricsStore;
    use opretail_exporter::model::TargetId;

    let ts = utc("2024-05-01T05:00:00Z").timestamp();
    // (endhour answered, rows per shop, whole day ÷ one hour in bytes at least)
    for (inclusive, rows_per_shop, fewer) in [(false, 1, 10.0), (true, 2, 5.0)] {
        let h = Harness::start_manual_with(
            utc(NOW),
            |sim| sim.end_hour_inclusive = inclusive,
            |url| {
                // The row-time convention is given, so no whole-day probe is asked.
                let mut c = config(url, &["O_1002"], &[]);
                c.gateway.row_time =
                    opretail_exporter::model::Convention::Fixed(opretail_exporter::model::RowTime::Start);
                c
            },
        )
        .await;
        let m = h.scrape().await;
        for dep in 9613..=9620 {
            assert_shop(&m, &h, dep, "2024-05-01 13:00:00", ts);
        }
        assert_eq!(
            (h.sim.sim.shop_rows(), h.sim.sim.day_rows()),
            (8 * rows_per_shop, 8),
            "8 shops, the asked hour only, and their day rows (endhour answered: {inclusive})"
        );
        // A re-poll of the hour makes the hourly call alone (the refresh also asked the day
        // figures).
        let bytes = |m: &Exposition| m.value("opretail_api_response_bytes_total", &[("method", METHOD_SHOPS)]);
        let before = bytes(&m);
        assert_eq!(h.poll().await.day_calls, 0);
        let hour_bytes = bytes(&h.scrape().await) - before;
        assert!(hour_bytes > 0.0);

        // The same shops as a whole-day call, as backfill and `fetch` ask.
        let store = MetricsStore::new("t", "t").expect("store");
        let config = config(&h.sim.url(), &["O_1002"], &[]);
        let client = Client::new(&config.gateway, h.clock.clone(), store.api().clone()).expect("client");
        let day = local("2024-05-01 13:00:00").date();
        client
            .fetch(&Call::day(Target::Shops(vec![TargetId::Org(1002)]), day))
            .await
            .expect("whole day");
        let text = String::from_utf8(store.exposition(false).concat()).expect("utf-8");
        let day_bytes =
            Exposition::parse(&text).value("opretail_api_response_bytes_total", &[("method", METHOD_SHOPS)]);
        assert!(
            day_bytes >= fewer * hour_bytes,
            "one hour {hour_bytes} bytes, a whole day {day_bytes} bytes (endhour answered: {inclusive})"
        );
        h.stop().await;
    }
}

/// What a refresh costs is published: its calls over the configured rate.
#[tokio::test]
async fn the_refresh_budget_is_published() {
    let h = harness().await;
    let m = h.scrape().await;
    // The organisation alone and a batch of the three shop ids, each for the hour and for the
    // day figures, and three devices, at the configured rate.
    let rate = h.exporter.poller.config().gateway.requests_per_second;
    assert_eq!(m.value("opretail_refresh_budget_seconds", &[]), 7.0 / rate);
    assert_eq!(m.value("opretail_refresh_requests", &[]), 7.0);
    h.stop().await;
}
