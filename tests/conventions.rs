//! The points the vendor's pages leave open, each played by the simulator both ways: the
//! exporter publishes the same values at the same hours whether rows are labelled by the start
//! or the end of their hour and whether rates are percentages or fractions (detected with
//! `auto`, or as configured), shows a renamed field and the clock skew, publishes the vendor's
//! daily figures (face-device de-duplication included), leaves out what a shop does not count,
//! and counts late uploads as revisions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use opretail_exporter::client::{METHOD_DEVICES, METHOD_SHOPS};
use opretail_exporter::config::Accounts;
use opretail_exporter::model::{Convention, RateScale, RowTime};
use opretail_exporter::simulator::{device_day, shop_day, SimConfig, SimRateScale, SimRowTime};

/// 14:30 in Shanghai: the latest complete hour is 13:00.
const NOW: &str = "2024-05-01T06:30:00Z";

const SHOPS: &[&str] = &["S_9601", "S_9602", "S_9605", "O_1002"];
const DEVICES: &[(&str, &str, &str)] = &[("d47c44906f01", "A", "9601"), ("d47c44906f03", "A", "9602")];

/// Every value series of shops and devices: name and labels to value.
fn values(m: &Exposition) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for family in [
        "opretail_shop_walk_in",
        "opretail_shop_passing",
        "opretail_shop_outside",
        "opretail_shop_walk_in_rate",
        "opretail_shop_walk_out",
        "opretail_shop_fitting_rate",
        "opretail_shop_hour_timestamp_seconds",
        "opretail_shop_walk_in_today",
        "opretail_shop_walk_in_rate_today",
        "opretail_device_walk_in",
        "opretail_device_walk_out",
        "opretail_device_hour_timestamp_seconds",
        "opretail_device_walk_in_today",
    ] {
        for id in m
            .label_values(family, "shop_id")
            .into_iter()
            .chain(m.label_values(family, "mac"))
        {
            let key = if family.starts_with("opretail_device_") {
                "mac"
            } else {
                "shop_id"
            };
            if let Some(v) = m.get(family, &[(key, &id)]) {
                // Rates within the rounding of either scale (2 decimals of a percentage).
                let v = if family.contains("rate") {
                    (v * 10_000.0).round()
                } else {
                    v
                };
                out.insert(format!("{family}{{{key}={id}}}"), v);
            }
        }
    }
    out
}

fn convention(m: &Exposition, setting: &str) -> (String, String) {
    let value: std::collections::BTreeSet<String> = m
        .label_values("opretail_gateway_convention", "value")
        .into_iter()
        .collect();
    let source: std::collections::BTreeSet<String> = m
        .label_values("opretail_gateway_convention", "source")
        .into_iter()
        .collect();
    let mut found = Vec::new();
    for v in &value {
        for s in &source {
            if m.get(
                "opretail_gateway_convention",
                &[("setting", setting), ("value", v), ("source", s)],
            ) == Some(1.0)
            {
                found.push((v.clone(), s.clone()));
            }
        }
    }
    assert_eq!(found.len(), 1, "{setting}: {found:?}");
    found.remove(0)
}

async fn run(
    adjust: impl FnOnce(&mut SimConfig),
    row_time: Convention<RowTime>,
    rate_scale: Convention<RateScale>,
) -> Harness {
    Harness::start_manual_with(utc(NOW), adjust, |url| {
        let mut c = config(url, SHOPS, DEVICES);
        c.gateway.row_time = row_time;
        c.gateway.rate_scale = rate_scale;
        c
    })
    .await
}

/// Start- and end-labelled gateways, percent and fraction rates: with `auto` the same values
/// at the same hour timestamps, this hour and the next; the decision is published.
#[tokio::test]
async fn every_convention_publishes_the_same_values_at_the_same_hours() {
    let reference = run(|_| {}, Convention::Auto, Convention::Auto).await;
    let expected = values(&reference.scrape().await);
    assert!(expected.len() > 100, "{expected:?}");
    assert_eq!(
        convention(&reference.scrape().await, "row_time"),
        ("start".into(), "detected".into())
    );
    reference.clock.set(utc("2024-05-01T07:30:00Z"));
    reference.poll().await;
    let next_hour = values(&reference.scrape().await);
    reference.stop().await;

    for (row_time, rate_scale) in [
        (SimRowTime::End, SimRateScale::Percent),
        (SimRowTime::Start, SimRateScale::Fraction),
        (SimRowTime::End, SimRateScale::Fraction),
    ] {
        let h = run(
            |s| {
                s.row_time = row_time;
                s.rate_scale = rate_scale;
            },
            Convention::Auto,
            Convention::Auto,
        )
        .await;
        let m = h.scrape().await;
        let case = format!("{row_time:?} {rate_scale:?}");
        assert_eq!(values(&m), expected, "{case}");
        let words = |r: SimRowTime| if r == SimRowTime::End { "end" } else { "start" };
        assert_eq!(
            convention(&m, "row_time"),
            (words(row_time).into(), "detected".into()),
            "{case}"
        );
        let scale = if rate_scale == SimRateScale::Fraction {
            "fraction"
        } else {
            "percent"
        };
        assert_eq!(
            convention(&m, "rate_scale"),
            (scale.into(), "detected".into()),
            "{case}"
        );
        h.clock.set(utc("2024-05-01T07:30:00Z"));
        let report = h.poll().await;
        assert_eq!(report.failed_calls, 0, "{case}");
        assert_eq!(values(&h.scrape().await), next_hour, "{case}: the next hour");
        h.stop().await;
    }
}

/// Configured conventions are used as given: right, they match `auto`; wrong, every value is
/// off (an hour late, or rates 100 times too small), which is why `doctor` checks them.
#[tokio::test]
async fn configured_conventions_are_applied_as_given() {
    let reference = run(|_| {}, Convention::Auto, Convention::Auto).await;
    let expected = values(&reference.scrape().await);
    reference.stop().await;

    let end = |s: &mut SimConfig| {
        s.row_time = SimRowTime::End;
        s.rate_scale = SimRateScale::Fraction;
    };
    let right = run(
        end,
        Convention::Fixed(RowTime::End),
        Convention::Fixed(RateScale::Fraction),
    )
    .await;
    let m = right.scrape().await;
    assert_eq!(values(&m), expected);
    assert_eq!(convention(&m, "row_time"), ("end".into(), "configured".into()));
    right.stop().await;

    // End labels read as starts: the row of the hour asked for is taken for the next hour,
    // so nothing is published for it.
    let wrong = run(
        end,
        Convention::Fixed(RowTime::Start),
        Convention::Fixed(RateScale::Fraction),
    )
    .await;
    let m = wrong.scrape().await;
    assert!(m.find("opretail_shop_walk_in", &[]).is_empty());
    wrong.stop().await;

    // Fractions read as percentages: every rate 100 times too small.
    let fraction = |s: &mut SimConfig| s.rate_scale = SimRateScale::Fraction;
    let wrong = run(
        fraction,
        Convention::Fixed(RowTime::Start),
        Convention::Fixed(RateScale::Percent),
    )
    .await;
    let m = wrong.scrape().await;
    for rate in ["opretail_shop_walk_in_rate", "opretail_shop_walk_in_rate_today"] {
        let got = m.value(rate, &[("shop_id", "9601")]);
        let want = expected[&format!("{rate}{{shop_id=9601}}")] / 10_000.0;
        assert!((got * 100.0 - want).abs() < 1e-3, "{rate}: {got} against {want}");
    }
    assert_eq!(convention(&m, "rate_scale"), ("percent".into(), "configured".into()));
    wrong.stop().await;
}

/// A field sent under another name: counted per row in `opretail_gateway_fields_missing`, and
/// its metric absent (never 0).
#[tokio::test]
async fn a_renamed_field_shows_as_missing() {
    let h = run(
        |s| s.renamed_fields = vec![("passPassengerFlow".into(), "passFlow".into())],
        Convention::Auto,
        Convention::Auto,
    )
    .await;
    let m = h.scrape().await;
    let missing = |field: &str| {
        m.value(
            "opretail_gateway_fields_missing",
            &[("method", METHOD_SHOPS), ("field", field)],
        )
    };
    assert!(missing("passPassengerFlow") >= 1.0);
    assert_eq!(missing("passengerFlow"), 0.0);
    assert_eq!(
        m.value(
            "opretail_gateway_fields_missing",
            &[("method", METHOD_DEVICES), ("field", "passengerFlow")]
        ),
        0.0
    );
    assert!(m.find("opretail_shop_passing", &[]).is_empty(), "absent, never 0");
    assert!(!m.find("opretail_shop_walk_in", &[]).is_empty());
    h.stop().await;
}

/// The gateway's clock five minutes ahead: the host is 300 s behind.
#[tokio::test]
async fn clock_skew_is_published() {
    let h = run(|s| s.clock_skew = 300, Convention::Auto, Convention::Auto).await;
    let skew = h.scrape().await.value("opretail_gateway_clock_skew_seconds", &[]);
    assert!((skew + 300.0).abs() < 2.0, "{skew}");
    h.stop().await;
}

/// Face-device shops: today's walk-ins are the vendor's de-duplicated day figure, below the
/// sum of the hours; no walk-outs at all. A shop without an outside counter has walk-ins but no
/// outside traffic, passers-by or walk-in rate. A device's today is the sum of its hours.
#[tokio::test]
async fn daily_figures_and_what_a_shop_does_not_count() {
    let h = run(
        |s| {
            for shop in s.orgs.iter_mut().flat_map(|o| o.shops.iter_mut()) {
                shop.face_device = shop.dep_id == 9601;
                shop.outside_counter = shop.dep_id != 9602;
            }
            s.devices[0].face_device = true;
        },
        Convention::Auto,
        Convention::Auto,
    )
    .await;
    let m = h.scrape().await;
    let cfg = h.sim.sim.config();
    let now = cfg.now_local();
    let today = now.date();
    let face = cfg.shop(9601).unwrap();
    let day = shop_day(face, today, now);
    // The same shop counting people hour by hour without de-duplication: the sum of its hours.
    let mut plain = face.clone();
    plain.face_device = false;
    let sum = shop_day(&plain, today, now).walk_in;
    let shop = |family: &str, dep: &str| m.get(family, &[("shop_id", dep)]);
    assert_eq!(shop("opretail_shop_walk_in_today", "9601"), Some(day.walk_in as f64));
    assert!(day.walk_in < sum, "de-duplicated: {} < {sum}", day.walk_in);
    assert_eq!(shop("opretail_shop_walk_out_today", "9601"), None);
    assert_eq!(shop("opretail_shop_walk_out", "9601"), None, "absent, never 0");
    let day_start = utc("2024-04-30T16:00:00Z").timestamp() as f64;
    assert_eq!(shop("opretail_shop_day_timestamp_seconds", "9601"), Some(day_start));

    let normal = shop_day(cfg.shop(9605).unwrap(), today, now);
    assert_eq!(shop("opretail_shop_walk_in_today", "9605"), Some(normal.walk_in as f64));
    assert_eq!(
        shop("opretail_shop_walk_out_today", "9605"),
        normal.walk_out.map(|w| w as f64)
    );
    assert_eq!(
        shop("opretail_shop_outside_today", "9605"),
        normal.outside.map(|o| o as f64)
    );

    assert!(shop("opretail_shop_walk_in", "9602").is_some());
    for family in [
        "opretail_shop_outside",
        "opretail_shop_passing",
        "opretail_shop_walk_in_rate",
        "opretail_shop_outside_today",
        "opretail_shop_walk_in_rate_today",
    ] {
        assert_eq!(shop(family, "9602"), None, "{family}: no outside counter");
    }

    for (i, mac) in ["d47c44906f01", "d47c44906f03"].into_iter().enumerate() {
        let dev = cfg.device(mac).unwrap();
        let day = device_day(dev, today, now);
        let get = |family: &str| m.get(family, &[("mac", mac)]);
        assert_eq!(get("opretail_device_walk_in_today"), Some(day.walk_in as f64), "{mac}");
        assert_eq!(
            get("opretail_device_walk_out_today"),
            day.walk_out.map(|w| w as f64),
            "{mac}"
        );
        assert_eq!(
            get("opretail_device_walk_out").is_none(),
            i == 0,
            "{mac}: a face device counts no walk-outs"
        );
    }
    h.stop().await;
}

/// The daily figures are fetched once per refresh (one call per shop batch) and start the new
/// day at local midnight.
#[tokio::test]
async fn daily_figures_cost_one_call_per_batch_and_start_the_day_at_midnight() {
    let h = Harness::start_manual(utc("2024-05-01T15:30:00Z"), |url| {
        let mut c = config(url, &["S_9601", "S_9602", "O_1002"], &[]);
        c.gateway.row_time = Convention::Fixed(RowTime::Start);
        c
    })
    .await;
    let m = h.scrape().await;
    let day = |m: &Exposition| m.value("opretail_shop_day_timestamp_seconds", &[("shop_id", "9601")]);
    assert_eq!(day(&m), utc("2024-04-30T16:00:00Z").timestamp() as f64);
    let late = m.value("opretail_shop_walk_in_today", &[("shop_id", "9601")]);
    // A re-poll of the same hour asks no day figures and keeps them.
    let report = h.poll().await;
    assert_eq!((report.priority, report.day_calls), (false, 0));
    assert_eq!(
        h.scrape()
            .await
            .value("opretail_shop_walk_in_today", &[("shop_id", "9601")]),
        late
    );
    // 00:10 the next day: the refresh of 23:00 asks today's figures, the new day's.
    h.clock.set(utc("2024-05-01T16:10:00Z"));
    let report = h.poll().await;
    assert!(report.priority);
    assert_eq!(
        report.day_calls, 1,
        "one batch: the organisation's size is known now, so it is packed with the shops"
    );
    let m = h.scrape().await;
    assert_eq!(day(&m), utc("2024-05-01T16:00:00Z").timestamp() as f64);
    let fresh = m.value("opretail_shop_walk_in_today", &[("shop_id", "9601")]);
    assert!(fresh < late, "a new day: {fresh} after {late}");
    h.stop().await;
}

/// A counter that uploads late: the refresh publishes half the hour, the re-poll after the
/// upload publishes all of it and counts the revision.
#[tokio::test]
async fn late_uploads_are_published_and_counted() {
    let h = Harness::start_manual_with(
        utc("2024-05-01T06:05:00Z"),
        |s| {
            s.late_upload = Some(Duration::from_secs(20 * 60));
            for shop in s.orgs.iter_mut().flat_map(|o| o.shops.iter_mut()) {
                shop.late_uploader = shop.dep_id == 9601;
            }
        },
        |url| config(url, &["S_9601", "S_9602"], &[]),
    )
    .await;
    let walk_in = |m: &Exposition, dep: &str| m.value("opretail_shop_walk_in", &[("shop_id", dep)]);
    let hour = local("2024-05-01 13:00:00");
    let full =
        |dep: u64| opretail_exporter::simulator::shop_hour(h.sim.sim.config().shop(dep).unwrap(), hour).walk_in as f64;
    let m = h.scrape().await;
    assert_eq!(
        walk_in(&m, "9601"),
        (full(9601) / 2.0).floor(),
        "half, before the upload"
    );
    assert_eq!(walk_in(&m, "9602"), full(9602));
    assert_eq!(m.value("opretail_shop_hour_revisions_total", &[]), 0.0);
    h.clock.set(utc("2024-05-01T06:25:00Z"));
    let report = h.poll().await;
    assert_eq!(report.shop_revisions, 1);
    let m = h.scrape().await;
    assert_eq!(walk_in(&m, "9601"), full(9601), "the revised hour");
    assert_eq!(m.value("opretail_shop_hour_revisions_total", &[]), 1.0);
    h.poll().await;
    assert_eq!(
        h.scrape().await.value("opretail_shop_hour_revisions_total", &[]),
        1.0,
        "once"
    );
    h.stop().await;
}

/// Organisations only, no devices, an end-labelled gateway: no whole-day call is made for an
/// organisation (it may be megabytes), so the first round publishes nothing of the hour (its
/// rows read as start-labelled name the next hour), never a wrong value; the next round asks
/// one of the shops it named for a whole day, and publishes the right values.
#[tokio::test]
async fn organisations_alone_learn_the_row_time_from_one_of_their_shops() {
    let reference = Harness::start_manual(utc(NOW), |url| config(url, &["O_1002"], &[])).await;
    reference.poll().await;
    let expected = values(&reference.scrape().await);
    reference.stop().await;

    let h = Harness::start_manual_with(
        utc(NOW),
        |s| s.row_time = SimRowTime::End,
        |url| config(url, &["O_1002"], &[]),
    )
    .await;
    let m = h.scrape().await;
    assert!(m.find("opretail_shop_walk_in", &[]).is_empty());
    assert_eq!(convention(&m, "row_time"), ("start".into(), "assumed".into()));
    let asked = h.sim.sim.shops_asked();
    assert!(
        asked
            .iter()
            .all(|a| a.id == "O_1002" && a.starthour.is_some() || a.time_type.as_deref() == Some("2")),
        "{asked:?}"
    );
    h.poll().await;
    let m = h.scrape().await;
    assert_eq!(convention(&m, "row_time"), ("end".into(), "detected".into()));
    let hourly = |v: &BTreeMap<String, f64>| -> BTreeMap<String, f64> {
        v.iter()
            .filter(|(k, _)| !k.contains("_today"))
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    };
    assert_eq!(hourly(&values(&m)), hourly(&expected));
    h.stop().await;
}

/// A reload that keeps the gateway keeps what its answers showed (the row time found on an
/// end-labelled gateway is still in force before any new answer); a reload to another gateway
/// starts over (assumed until that gateway's answers show it), so that the hours of a
/// start-labelled gateway are never read as an end-labelled one's.
#[tokio::test]
async fn a_reload_keeps_the_conventions_found_on_the_same_gateway_only() {
    let dir = temp_dir("conventions-reload");
    let path = dir.join("config.yaml");
    std::fs::write(&path, "# reloads are applied in code\n").expect("write");
    let options = opretail_exporter::exporter::Options {
        config_file: Some(path),
        manual_polling: true,
        ..Default::default()
    };
    let h = Harness::start_full_with(
        utc(NOW),
        |s| s.row_time = SimRowTime::End,
        |sim| config(&sim.url(), SHOPS, DEVICES),
        options,
    )
    .await;
    h.poll().await;
    let found = || async { convention(&h.scrape().await, "row_time") };
    assert_eq!(found().await, ("end".into(), "detected".into()));
    let reloader = h.exporter.reloader.as_ref().expect("started from a file");

    // The same gateway, another rate: the convention found stays in force.
    let mut same = config(&h.sim.url(), SHOPS, DEVICES);
    same.gateway.requests_per_second += 1.0;
    reloader.apply(Accounts::single(same)).await.expect("reload");
    assert_eq!(found().await, ("end".into(), "detected".into()), "same gateway");

    // Another gateway, start-labelled: assumed until its answers show it.
    let other = opretail_exporter::simulator::Simulator::new(SimConfig::demo(h.clock.clone()))
        .spawn(std::net::SocketAddr::from(LOOPBACK))
        .await
        .expect("second gateway");
    reloader
        .apply(Accounts::single(config(&other.url(), SHOPS, DEVICES)))
        .await
        .expect("reload");
    assert_eq!(found().await, ("start".into(), "assumed".into()), "another gateway");
    h.poll().await;
    assert_eq!(found().await, ("start".into(), "detected".into()), "its answers decide");
    h.stop().await;
    other.shutdown().await;
}
