//! The request core's tests: answers to well-formed requests (past, current and future hours,
//! every device shape, multi-day windows, lean and full rows), the order of the validation
//! codes, faults, the rate limit, large tenants in organisations of any size, the `id` and
//! answer-size limits with their stand-in codes, the count of answers by code, and each
//! convention switch (end-of-hour labels, fraction rates, renamed fields, a skewed gateway
//! clock, late uploads, day rows, face devices, shops without an outside counter), all through
//! [`Simulator::handle`] without a socket.

use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::codes::codename;
use super::reply::JSON_CONTENT_TYPE;
use super::testkit::*;
use super::traffic::shop_hour_as_of;
use super::*;

fn call(sim: &Simulator, params: &[(String, String)]) -> Value {
    let r = reply(sim.handle(params));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, JSON_CONTENT_TYPE);
    r.json()
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        other => other.as_f64().unwrap(),
    }
}

fn row<'a>(shop: &'a Value, time: &str) -> &'a Value {
    shop["dataList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["time"] == time)
        .unwrap()
}

#[test]
fn shops_request_answers_past_current_and_future_hours() {
    let sim = sim();
    let v = call(&sim, &shops_request(&sim, "S_9601, O_1002"));
    assert_eq!(code_of(&v), 0);
    assert_eq!(v["stat"]["codename"], "SUCCESS");
    assert!(v["stat"]["cid"].as_str().is_some_and(|c| !c.is_empty()));
    assert_eq!(v["stat"]["systime"], clock().now().timestamp_millis());
    let shops = v["data"].as_array().unwrap();
    let ids: Vec<u64> = shops.iter().map(|s| s["depId"].as_u64().unwrap()).collect();
    assert_eq!(ids, [9601].into_iter().chain(9613..=9620).collect::<Vec<_>>());
    let first = &shops[0];
    assert_eq!(first["name"], "Shanghai Nanjing Rd");
    assert_eq!(first["shopId"], "SH-001");
    let rows = first["dataList"].as_array().unwrap();
    assert_eq!(rows.len(), 24);
    assert_eq!(rows[0]["time"], "2024-03-15 00:00:00");
    assert_eq!(rows[23]["time"], "2024-03-15 23:00:00");

    let shop = demo_shop(9601);
    // Past hour: the full model values.
    let full = shop_hour(&shop, at("2024-03-15 13:00:00"));
    let r = row(first, "2024-03-15 13:00:00");
    assert_eq!(r["passengerFlow"], full.walk_in);
    assert_eq!(r["passPassengerFlow"], full.passing);
    assert_eq!(r["outSidePassengerFlow"], full.outside());
    assert_eq!(r["outFlowCount"], full.walk_out);
    assert_eq!(r["inShopRate"].as_f64(), Some(full.walk_in_rate_percent()));
    assert_eq!(r["dressingRate"].as_f64(), full.fitting_rate_percent());
    assert_eq!(r["duplicatedFlow"], 0);
    // Current hour (14:30): half of the hour.
    let half = shop_hour(&shop, at("2024-03-15 14:00:00")).scaled(1800, 3600);
    let r = row(first, "2024-03-15 14:00:00");
    assert_eq!(r["passengerFlow"], half.walk_in);
    assert_eq!(r["passPassengerFlow"], half.passing);
    assert_eq!(r["outSidePassengerFlow"], half.outside());
    assert_eq!(r["outFlowCount"], half.walk_out);
    assert_eq!(r["inShopRate"].as_f64(), Some(half.walk_in_rate_percent()));
    assert_eq!(
        half,
        shop_hour_as_of(&shop, at("2024-03-15 14:00:00"), at("2024-03-15 14:30:00"), None)
    );
    assert!(half.walk_in < shop_hour(&shop, at("2024-03-15 14:00:00")).walk_in);
    // Future hour: zeros.
    let r = row(first, "2024-03-15 15:00:00");
    for key in [
        "passengerFlow",
        "passPassengerFlow",
        "outSidePassengerFlow",
        "outFlowCount",
        "inShopRate",
        "dressingRate",
    ] {
        assert_eq!(num(&r[key]), 0.0, "{key}");
    }
}

#[test]
fn numbers_as_strings_and_missing_fitting_room() {
    let sim = sim();
    // 9603: strings; 9604: no fitting room.
    let v = call(&sim, &shops_request(&sim, "S_9603,S_9604,S_9603,S_1,X_5,garbage"));
    let shops = v["data"].as_array().unwrap();
    assert_eq!(shops.len(), 2);
    let strings = &shops[0];
    assert_eq!(strings["depId"], 9603);
    assert_eq!(strings["shopId"], "SH-003");
    let full = shop_hour(&demo_shop(9603), at("2024-03-15 12:00:00"));
    let r = row(strings, "2024-03-15 12:00:00");
    assert_eq!(r["passengerFlow"], Value::String(full.walk_in.to_string()));
    assert_eq!(r["outSidePassengerFlow"], Value::String(full.outside().to_string()));
    assert_eq!(num(&r["inShopRate"]), full.walk_in_rate_percent());
    assert!(r["inShopRate"].is_string());
    assert_eq!(
        r["dressingRate"].as_str().map(|s| s.parse::<f64>().unwrap()),
        full.fitting_rate_percent()
    );
    let plain = &shops[1];
    assert_eq!(plain["depId"], 9604);
    assert_eq!(plain["shopId"], "HZ-001");
    for r in plain["dataList"].as_array().unwrap() {
        assert!(r.get("dressingRate").is_none());
        assert!(r["passengerFlow"].is_u64());
    }
}

#[test]
fn multi_day_window_and_whole_day_rule() {
    let sim = sim();
    let ok = request(
        &sim,
        METHOD_SHOPS,
        &[
            ("id", "S_9601"),
            ("startTime", "2024-03-14 00:00:00"),
            ("endTime", "2024-03-15 23:59:59"),
        ],
    );
    let v = call(&sim, &ok);
    assert_eq!(code_of(&v), 0);
    assert_eq!(v["data"][0]["dataList"].as_array().unwrap().len(), 48);
    // Yesterday evening is complete.
    let r = row(&v["data"][0], "2024-03-14 19:00:00");
    assert_eq!(
        r["passengerFlow"],
        shop_hour(&demo_shop(9601), at("2024-03-14 19:00:00")).walk_in
    );

    let bad = [
        ("2024-03-15 01:00:00", "2024-03-15 23:59:59"),
        ("2024-03-15 00:00:00", "2024-03-15 14:00:00"),
        ("2024-03-16 00:00:00", "2024-03-15 23:59:59"),
        ("2024-01-01 00:00:00", "2024-03-15 23:59:59"),
        ("20240315", "2024-03-15 23:59:59"),
    ];
    for (start, end) in bad {
        let p = request(
            &sim,
            METHOD_SHOPS,
            &[("id", "S_9601"), ("startTime", start), ("endTime", end)],
        );
        let v = call(&sim, &p);
        assert_eq!(code_of(&v), -500, "{start} {end}");
        assert_eq!(v["stat"]["codename"], "API_SYSTEM_CALL_ERROR");
        assert!(v["data"].is_null());
        assert!(!v["result"].as_str().unwrap().is_empty());
    }
    let p = request(
        &sim,
        METHOD_SHOPS,
        &[("id", "S_9601"), ("startTime", "2024-03-15 00:00:00")],
    );
    assert_eq!(code_of(&call(&sim, &p)), -500);
    // 31 days is fine.
    let p = request(
        &sim,
        METHOD_SHOPS,
        &[
            ("id", "S_9601"),
            ("startTime", "2024-02-14 00:00:00"),
            ("endTime", "2024-03-15 23:59:59"),
        ],
    );
    assert_eq!(code_of(&call(&sim, &p)), 0);
}

#[test]
fn device_request_in_every_shape() {
    for shape in DeviceShape::ALL {
        let mut cfg = SimConfig::demo(clock());
        cfg.device_shape = shape;
        let sim = Simulator::new(cfg);
        let v = call(&sim, &device_request(&sim, "d47c44906f02"));
        assert_eq!(code_of(&v), 0);
        let rows = match shape {
            DeviceShape::BareList => &v["data"],
            DeviceShape::DataList => &v["data"]["dataList"],
            DeviceShape::List => &v["data"]["list"],
            DeviceShape::Rows => &v["data"]["rows"],
            DeviceShape::Data => &v["data"]["data"],
        };
        let rows = rows.as_array().unwrap();
        assert_eq!(rows.len(), 24, "{shape:?}");
        let dev = sim.config().devices[1].clone();
        let past = rows.iter().find(|r| r["time"] == "2024-03-15 12:00:00").unwrap();
        let full = device_hour(&dev, at("2024-03-15 12:00:00"));
        assert_eq!(past["passengerFlow"], full.walk_in);
        assert_eq!(past["outFlowCount"], full.walk_out);
        let current = rows.iter().find(|r| r["time"] == "2024-03-15 14:00:00").unwrap();
        let half = device_hour(&dev, at("2024-03-15 14:00:00")).scaled(1800, 3600);
        assert_eq!(current["passengerFlow"], half.walk_in);
        let future = rows.iter().find(|r| r["time"] == "2024-03-15 20:00:00").unwrap();
        assert_eq!(future["passengerFlow"], 0);
        assert_eq!(future["outFlowCount"], 0);

        let v = call(&sim, &device_request(&sim, "000000000000"));
        assert_eq!(code_of(&v), 0);
        assert_eq!(v["data"], shape.wrap(Vec::new()));
    }
}

/// Rebuilds a signed request after `edit` (unless `resign` is false).
fn edited(sim: &Simulator, edit: impl Fn(&mut Vec<(String, String)>), resign: bool) -> Vec<(String, String)> {
    let mut p = common(sim, METHOD_SHOPS);
    p.extend([
        ("id".to_string(), "S_9601".to_string()),
        ("startTime".into(), "2024-03-15 00:00:00".into()),
        ("endTime".into(), "2024-03-15 23:59:59".into()),
    ]);
    if resign {
        edit(&mut p);
        with_sig(sim, p)
    } else {
        let mut p = with_sig(sim, p);
        edit(&mut p);
        p
    }
}

fn remove(name: &'static str) -> impl Fn(&mut Vec<(String, String)>) {
    move |p| p.retain(|(k, _)| k != name)
}

fn set(name: &'static str, value: &'static str) -> impl Fn(&mut Vec<(String, String)>) {
    move |p| {
        for (k, v) in p.iter_mut() {
            if k == name {
                *v = value.to_string();
            }
        }
    }
}

#[test]
fn validation_codes_in_order() {
    let sim = sim();
    let cases: Vec<(i64, Vec<(String, String)>)> = vec![
        (1, edited(&sim, remove("_akey"), true)),
        (1, edited(&sim, set("_akey", ""), true)),
        (2, edited(&sim, set("_akey", "nope"), true)),
        (4, edited(&sim, remove("_sm"), true)),
        (5, edited(&sim, set("_sm", "sha256"), true)),
        (6, edited(&sim, remove("_sig"), false)),
        (7, edited(&sim, set("_sig", "00000000000000000000000000000000"), false)),
        (7, edited(&sim, set("id", "S_9602"), false)),
        (8, edited(&sim, remove("_mt"), true)),
        (9, edited(&sim, set("_mt", "open.demo.nothing"), true)),
        (10, edited(&sim, remove("_requestMode"), true)),
        (11, edited(&sim, remove("_aid"), true)),
        (12, edited(&sim, set("_aid", "DC-000698"), true)),
        (13, edited(&sim, remove("_version"), true)),
        (14, edited(&sim, remove("_timestamp"), true)),
        (15, edited(&sim, set("_timestamp", "2024-03-15 14:30"), true)),
        (15, edited(&sim, set("_timestamp", "20241315143000"), true)),
        (16, edited(&sim, set("_timestamp", "20240315141900"), true)),
        (16, edited(&sim, set("_timestamp", "20240315064000"), true)),
        (17, edited(&sim, set("_format", "xml"), true)),
    ];
    for (expected, params) in cases {
        let v = call(&sim, &params);
        assert_eq!(code_of(&v), expected, "{params:?}");
        assert_eq!(v["stat"]["codename"], codename(expected));
        assert!(v["data"].is_null());
    }
    // Within the skew (9 minutes), sha1, no _format and no _nonce: fine.
    let ok = edited(
        &sim,
        |p| {
            set("_timestamp", "20240315142100")(p);
            set("_sm", "sha1")(p);
            remove("_format")(p);
            remove("_nonce")(p);
        },
        true,
    );
    assert_eq!(code_of(&call(&sim, &ok)), 0);
    assert_eq!(code_of(&call(&sim, &ok)), 0, "no nonce, no replay check");
    // A wrong signature wins over a later error (order of codes).
    let p = edited(
        &sim,
        |p| {
            set("_sig", "X")(p);
            remove("_aid")(p);
        },
        false,
    );
    assert_eq!(code_of(&call(&sim, &p)), 7);
    // The signature is case-sensitive.
    let p = edited(&sim, |_| {}, true);
    let lower: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| (k.clone(), if k == "_sig" { v.to_ascii_lowercase() } else { v.clone() }))
        .collect();
    assert_eq!(code_of(&call(&sim, &lower)), 7);
    // Parameter order does not matter.
    let mut reversed = p.clone();
    reversed.reverse();
    assert_eq!(code_of(&call(&sim, &reversed)), 0);
    // Replaying it does.
    assert_eq!(code_of(&call(&sim, &p)), -100);
    assert_eq!(code_of(&call(&sim, &p)), -100);
    assert_eq!(call(&sim, &p)["stat"]["codename"], "API_CALL_REPEAT");
}

#[test]
fn skew_follows_the_clock() {
    let sim = sim();
    let p = shops_request(&sim, "S_9601");
    sim.config()
        .clock
        .set(Utc.with_ymd_and_hms(2024, 3, 15, 7, 0, 0).single().unwrap());
    assert_eq!(code_of(&call(&sim, &p)), 16);
}

#[test]
fn every_fault() {
    let sim = sim();
    let p = shops_request(&sim, "S_9601");

    sim.set_fault(Some(Fault::Code(9_990_001)));
    let v = call(&sim, &p);
    assert_eq!(code_of(&v), 9_990_001);
    assert_eq!(v["stat"]["codename"], "TOKEN_NOT_EXIST");
    assert!(v["data"].is_null());
    sim.set_fault(Some(Fault::Code(-999)));
    assert_eq!(call(&sim, &p)["stat"]["codename"], "UNKNOWN_ERROR");
    sim.set_fault(Some(Fault::Code(424_242)));
    assert_eq!(call(&sim, &p)["stat"]["codename"], "UNKNOWN");

    sim.set_fault(Some(Fault::Http(503)));
    let r = reply(sim.handle(&p));
    assert_eq!(r.status, 503);
    assert!(r.content_type.starts_with("text/plain"));

    sim.set_fault(Some(Fault::Hang));
    assert_eq!(sim.handle(&p), Outcome::Hang);

    sim.set_fault(Some(Fault::Garbage));
    let r = reply(sim.handle(&p));
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("<html>"));
    assert!(serde_json::from_str::<Value>(&r.body).is_err());

    sim.set_fault(Some(Fault::Truncated));
    let r = reply(sim.handle(&p));
    assert_eq!((r.status, r.content_type), (200, JSON_CONTENT_TYPE));
    assert!(r.body.starts_with('{'));
    assert!(r.body.len() > 20);
    assert!(serde_json::from_str::<Value>(&r.body).is_err());

    sim.set_fault(Some(Fault::WrongContentType));
    let r = reply(sim.handle(&p));
    assert_eq!(r.status, 200);
    assert!(r.content_type.starts_with("text/html"));

    let before = sim.requests();
    sim.set_fault(None);
    assert_eq!(code_of(&call(&sim, &p)), 0, "faults do not consume the nonce");
    assert_eq!(sim.requests(), before + 1);
    assert_eq!(before, 8);
}

#[test]
fn a_large_tenant_is_indexed_and_answers_batches() {
    let sim = Simulator::new(SimConfig::large(clock(), 250, 10, 100));
    assert_eq!(sim.config().orgs.len(), 3);
    assert_eq!(sim.config().shops().count(), 250);
    assert_eq!(sim.config().devices[9].mac, "0a0000000009");
    let v = call(&sim, &shops_request(&sim, "S_100001,S_100250,O_2003,S_100201"));
    let deps: Vec<u64> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["depId"].as_u64().unwrap())
        .collect();
    // S_100250 is also in O_2003 (shops 100201..=100250): each shop once, in first-named order.
    assert_eq!(deps.len(), 2 + 49);
    assert_eq!(&deps[..3], &[100_001, 100_250, 100_201]);
    let dev = request(
        &sim,
        METHOD_DEVICES,
        &[
            ("mac", "0A:00:00:00:00:09"),
            ("startTime", "2024-03-15 00:00:00"),
            ("endTime", "2024-03-15 23:59:59"),
        ],
    );
    assert_eq!(call(&sim, &dev)["data"]["dataList"].as_array().unwrap().len(), 24);
}

#[test]
fn the_rate_limit_answers_api_call_repeat() {
    let mut cfg = SimConfig::demo(clock());
    cfg.rate_limit = Some(2.0);
    let sim = Simulator::new(cfg);
    let codes: Vec<i64> = (0..4)
        .map(|_| code_of(&call(&sim, &shops_request(&sim, "S_9601"))))
        .collect();
    assert_eq!(codes, [0, 0, -100, -100], "a burst of two, then over the budget");
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert_eq!(
        code_of(&call(&sim, &shops_request(&sim, "S_9601"))),
        0,
        "the bucket refills"
    );
}

/// A shops request for 2024-03-15 narrowed with `starthour`/`endhour`.
fn narrowed(sim: &Simulator, start: &str, end: &str) -> Value {
    let params = request(
        sim,
        METHOD_SHOPS,
        &[
            ("id", "S_9601"),
            ("startTime", "2024-03-15 00:00:00"),
            ("endTime", "2024-03-15 23:59:59"),
            ("timeType", "1"),
            ("starthour", start),
            ("endhour", end),
        ],
    );
    call(sim, &params)
}

fn row_times(v: &Value) -> Vec<String> {
    v["data"][0]["dataList"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["time"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn starthour_and_endhour_narrow_the_rows_under_either_reading_of_endhour() {
    let exclusive = sim();
    let v = narrowed(&exclusive, "13", "14");
    assert_eq!(code_of(&v), 0);
    assert_eq!(row_times(&v), ["2024-03-15 13:00:00"]);
    let full = shop_hour(&demo_shop(9601), at("2024-03-15 13:00:00"));
    assert_eq!(v["data"][0]["dataList"][0]["passengerFlow"], full.walk_in);
    assert_eq!(row_times(&narrowed(&exclusive, "0", "24")).len(), 24);
    assert_eq!(row_times(&narrowed(&exclusive, "23", "24")), ["2024-03-15 23:00:00"]);
    assert!(row_times(&narrowed(&exclusive, "5", "5")).is_empty());
    assert_eq!(exclusive.shop_rows(), 1 + 24 + 1);

    let mut cfg = SimConfig::demo(clock());
    cfg.end_hour_inclusive = true;
    let inclusive = Simulator::new(cfg);
    assert_eq!(
        row_times(&narrowed(&inclusive, "13", "14")),
        ["2024-03-15 13:00:00", "2024-03-15 14:00:00"]
    );
    assert_eq!(row_times(&narrowed(&inclusive, "23", "24")), ["2024-03-15 23:00:00"]);
    assert_eq!(row_times(&narrowed(&inclusive, "5", "5")), ["2024-03-15 05:00:00"]);
}

#[test]
fn bad_hour_windows_are_refused() {
    let sim = sim();
    for (start, end) in [("14", "13"), ("-1", "3"), ("3", "25"), ("x", "3")] {
        let v = narrowed(&sim, start, end);
        assert_eq!(code_of(&v), -500, "{start}..{end}: {v}");
    }
    assert_eq!(sim.shop_rows(), 0, "a refused request answers no rows");
}

fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// A demo gateway whose shop rows carry `detail`.
fn sim_with(detail: RowDetail) -> Simulator {
    let mut cfg = SimConfig::demo(clock());
    cfg.row_detail = detail;
    Simulator::new(cfg)
}

/// A shops request for the hour 13:00 of 2024-03-15 only.
fn one_hour(sim: &Simulator, id: &str) -> Vec<(String, String)> {
    shops_request_with(sim, id, &[("starthour", "13"), ("endhour", "14")])
}

#[test]
fn lean_rows_carry_exactly_the_old_fields_and_full_rows_the_undocumented_ones_too() {
    assert_eq!(
        sim().config().row_detail,
        RowDetail::Full,
        "the demo sends realistic rows"
    );
    assert_eq!(RowDetail::default(), RowDetail::Full);
    let lean_fields = [
        "dressingRate",
        "duplicatedFlow",
        "inShopRate",
        "outFlowCount",
        "outSidePassengerFlow",
        "passPassengerFlow",
        "passengerFlow",
        "time",
    ];
    let without_room: Vec<&str> = lean_fields.iter().copied().filter(|k| *k != "dressingRate").collect();
    let mut full_fields = lean_fields.to_vec();
    full_fields.push("inCountHavingPassDevice");
    full_fields.sort_unstable();
    let mut full_without_room = without_room.clone();
    full_without_room.push("inCountHavingPassDevice");
    full_without_room.sort_unstable();

    // 9601: plain numbers; 9603: numbers as strings; 9604: no fitting room.
    for (detail, with_room, no_room) in [
        (RowDetail::Lean, lean_fields.to_vec(), without_room),
        (RowDetail::Full, full_fields, full_without_room),
    ] {
        let sim = sim_with(detail);
        let v = call(&sim, &shops_request(&sim, "S_9601,S_9603,S_9604"));
        assert_eq!(code_of(&v), 0);
        let shops = v["data"].as_array().unwrap();
        assert_eq!(shops.len(), 3);
        for shop in shops {
            assert_eq!(keys(shop), ["dataList", "depId", "name", "shopId"], "{detail:?}");
            let rows = shop["dataList"].as_array().unwrap();
            assert_eq!(rows.len(), 24);
            let expected = if shop["depId"] == 9604 { &no_room } else { &with_room };
            for r in rows {
                assert_eq!(&keys(r), expected, "{detail:?} {}", shop["depId"]);
                if detail == RowDetail::Full {
                    assert_eq!(r["inCountHavingPassDevice"], r["passengerFlow"]);
                }
            }
        }
        if detail == RowDetail::Full {
            let strings = row(&shops[1], "2024-03-15 12:00:00");
            let walk_in = shop_hour(&demo_shop(9603), at("2024-03-15 12:00:00")).walk_in;
            assert_eq!(strings["inCountHavingPassDevice"], Value::String(walk_in.to_string()));
            let plain = row(&shops[0], "2024-03-15 12:00:00");
            let walk_in = shop_hour(&demo_shop(9601), at("2024-03-15 12:00:00")).walk_in;
            assert_eq!(plain["inCountHavingPassDevice"], walk_in);
        }
    }
}

#[test]
fn full_rows_weigh_more_by_exactly_their_extra_field() {
    let lean = sim_with(RowDetail::Lean);
    let full = sim_with(RowDetail::Full);
    let lean_body = reply(lean.handle(&one_hour(&lean, "O_1001"))).body;
    let full_body = reply(full.handle(&one_hour(&full, "O_1001"))).body;
    let v: Value = serde_json::from_str(&full_body).unwrap();
    let rows: Vec<&Value> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["dataList"].as_array().unwrap())
        .collect();
    assert_eq!(rows.len(), 12, "one row for each of the 12 shops");
    let extra: usize = rows
        .iter()
        .map(|r| r#","inCountHavingPassDevice":"#.len() + r["inCountHavingPassDevice"].to_string().len())
        .sum();
    assert_eq!(full_body.len() - lean_body.len(), extra);
    println!(
        "one-hour answer for O_1001 (12 shops): lean {} bytes, full {} bytes ({} extra bytes a row)",
        lean_body.len(),
        full_body.len(),
        extra as f64 / 12.0
    );
}

#[test]
fn organisations_of_any_size_answer_their_shops() {
    let sim = Simulator::new(SimConfig::large(clock(), 250, 0, 100));
    let sizes: Vec<usize> = sim.config().orgs.iter().map(|o| o.shops.len()).collect();
    assert_eq!(sizes, [100, 100, 50]);
    for (org, shops) in [("O_2001", 100), ("O_2003", 50), ("O_2004", 0)] {
        let v = call(&sim, &one_hour(&sim, org));
        assert_eq!(code_of(&v), 0);
        assert_eq!(v["data"].as_array().unwrap().len(), shops, "{org}");
    }
    let v = call(&sim, &one_hour(&sim, "O_2003"));
    assert_eq!(v["data"][0]["depId"], 100_201);
    assert_eq!(v["data"][49]["depId"], 100_250);

    let sim = Simulator::new(SimConfig::large(clock(), 10_000, 0, 10_000));
    assert_eq!(sim.config().orgs.len(), 1);
    let v = call(&sim, &one_hour(&sim, "O_2001"));
    let shops = v["data"].as_array().unwrap();
    assert_eq!(shops.len(), 10_000);
    assert_eq!(
        (&shops[0]["depId"], &shops[9_999]["depId"]),
        (&100_001.into(), &110_000.into())
    );
    assert_eq!(sim.shop_rows(), 10_000);
    assert_eq!(code_of(&call(&sim, &one_hour(&sim, "O_2002"))), 0);
}

/// A list of shop ids exactly `len` characters long (at least 10), commas included.
fn id_list(len: usize) -> String {
    let mut ids = "S_9601".to_owned();
    let mut dep = 9602;
    while ids.len() + 7 <= len - 4 {
        ids.push_str(&format!(",S_{dep}"));
        dep = if dep == 9620 { 9601 } else { dep + 1 };
    }
    let rest = len - ids.len();
    ids.push_str(&format!(",S_{}", "1".repeat(rest - 3)));
    assert_eq!(ids.chars().count(), len);
    ids
}

#[test]
fn an_id_longer_than_the_limit_is_refused_before_any_work() {
    let mut cfg = SimConfig::demo(clock());
    cfg.max_id_chars = Some(100);
    let sim = Simulator::new(cfg);
    let v = call(&sim, &shops_request(&sim, &id_list(101)));
    assert_eq!(code_of(&v), PARAM_TOO_LONG);
    assert_eq!(code_of(&v), 400_001);
    assert_eq!(v["stat"]["codename"], "PARAM_TOO_LONG");
    assert_eq!(v["result"], "id is longer than the gateway accepts");
    assert!(v["data"].is_null());
    assert_eq!(sim.shop_rows(), 0, "no rows were made");
    // Even with a window the gateway would refuse: the id is looked at first.
    let p = request(&sim, METHOD_SHOPS, &[("id", &id_list(101)), ("startTime", "x")]);
    assert_eq!(code_of(&call(&sim, &p)), PARAM_TOO_LONG);

    let v = call(&sim, &shops_request(&sim, &id_list(100)));
    assert_eq!(code_of(&v), 0);
    assert_eq!(v["data"].as_array().unwrap().len(), 13, "13 distinct demo shops named");
    // Blanks count: they are characters as received.
    let padded = format!(" {}", id_list(100));
    assert_eq!(code_of(&call(&sim, &shops_request(&sim, &padded))), PARAM_TOO_LONG);
    // The device method has no `id`.
    assert_eq!(code_of(&call(&sim, &device_request(&sim, "d47c44906f01"))), 0);
    // Without a limit any length is answered.
    let open = self::sim();
    assert_eq!(code_of(&call(&open, &shops_request(&open, &id_list(1_000)))), 0);
}

#[test]
fn an_answer_larger_than_the_limit_is_refused_and_a_smaller_one_sent() {
    let open = sim();
    let body = reply(open.handle(&shops_request(&open, "S_9601,S_9602"))).body;
    let size = body.len();
    assert!(size > 1_000, "{size}");

    let capped = |max: usize| {
        let mut cfg = SimConfig::demo(clock());
        cfg.max_answer_bytes = Some(max);
        Simulator::new(cfg)
    };
    let sim = capped(size);
    let r = reply(sim.handle(&shops_request(&sim, "S_9601,S_9602")));
    assert_eq!(r.body.len(), size, "the same answer, at exactly the limit");
    assert_eq!(code_of(&r.json()), 0);
    assert_eq!(sim.shop_rows(), 48);

    let sim = capped(size - 1);
    let v = call(&sim, &shops_request(&sim, "S_9601,S_9602"));
    assert_eq!(code_of(&v), DATA_TOO_LARGE);
    assert_eq!(code_of(&v), 400_002);
    assert_eq!(v["stat"]["codename"], "DATA_TOO_LARGE");
    assert_eq!(v["result"], "the answer is larger than the gateway sends");
    assert!(v["data"].is_null());
    assert_eq!(sim.shop_rows(), 0, "a refused answer sends no rows");
    // A smaller answer is sent.
    let v = call(&sim, &shops_request(&sim, "S_9601"));
    assert_eq!(code_of(&v), 0);
    assert_eq!(sim.shop_rows(), 24);
    // The limit is the shops method's: device answers and logins are not measured.
    let sim = capped(10);
    assert_eq!(code_of(&call(&sim, &device_request(&sim, "d47c44906f01"))), 0);
    let login = request(
        &sim,
        METHOD_LOGIN,
        &[("userName", "demo"), ("password", "demo-password")],
    );
    assert_eq!(code_of(&call(&sim, &login)), 0);
    assert_eq!(code_of(&call(&sim, &shops_request(&sim, "S_9601"))), DATA_TOO_LARGE);
}

#[test]
fn answers_are_counted_by_code() {
    let mut cfg = SimConfig::demo(clock());
    cfg.max_id_chars = Some(10);
    let sim = Simulator::new(cfg);
    assert!(sim.codes_answered().is_empty());
    assert_eq!(sim.answered(0), 0);
    call(&sim, &shops_request(&sim, "S_9601"));
    call(&sim, &device_request(&sim, "d47c44906f01"));
    call(&sim, &shops_request(&sim, "S_9601,S_9602"));
    call(&sim, &edited(&sim, set("_sig", "X"), false));
    let replayed = shops_request(&sim, "S_9602");
    call(&sim, &replayed);
    call(&sim, &replayed);
    sim.set_fault(Some(Fault::Code(9_990_001)));
    call(&sim, &replayed);
    sim.set_fault(Some(Fault::Http(502)));
    sim.handle(&replayed);
    sim.set_fault(Some(Fault::Garbage));
    sim.handle(&replayed);
    sim.set_fault(None);
    assert_eq!(sim.answered(0), 3);
    assert_eq!(sim.answered(PARAM_TOO_LONG), 1);
    assert_eq!(sim.answered(7), 1);
    assert_eq!(sim.answered(-100), 1);
    assert_eq!(sim.answered(9_990_001), 1);
    assert_eq!(sim.answered(-500), 0);
    let expected: BTreeMap<i64, u64> = [(-100, 1), (0, 3), (7, 1), (400_001, 1), (9_990_001, 1)].into();
    assert_eq!(sim.codes_answered(), expected);
    assert_eq!(
        sim.requests(),
        9,
        "HTTP errors and garbage are requests, not coded answers"
    );
    // Clones share the count.
    let clone = sim.clone();
    call(&clone, &shops_request(&clone, "S_9601"));
    assert_eq!(sim.answered(0), 4);
}

#[test]
fn the_rate_limit_answers_are_counted() {
    let mut cfg = SimConfig::demo(clock());
    cfg.rate_limit = Some(1.0);
    let sim = Simulator::new(cfg);
    for _ in 0..3 {
        call(&sim, &shops_request(&sim, "S_9601"));
    }
    assert_eq!((sim.answered(0), sim.answered(-100)), (1, 2));
}

/// The demo gateway after `edit` of its configuration.
fn sim_where(edit: impl FnOnce(&mut SimConfig)) -> Simulator {
    let mut cfg = SimConfig::demo(clock());
    edit(&mut cfg);
    Simulator::new(cfg)
}

/// The demo gateway with the shop `dep_id` changed by `edit`.
fn sim_with_shop(dep_id: u64, edit: impl Fn(&mut SimShop)) -> Simulator {
    sim_where(|cfg| {
        cfg.orgs
            .iter_mut()
            .flat_map(|o| o.shops.iter_mut())
            .filter(|s| s.dep_id == dep_id)
            .for_each(edit)
    })
}

/// The `dataList` of the first shop answered.
fn first_rows(v: &Value) -> &Vec<Value> {
    v["data"][0]["dataList"].as_array().unwrap()
}

/// A day-row (`timeType=2`) request for `id` over `start..=end` (whole days), with `more`.
fn day_request(sim: &Simulator, id: &str, start: &str, end: &str, more: &[(&str, &str)]) -> Vec<(String, String)> {
    let start = format!("{start} 00:00:00");
    let end = format!("{end} 23:59:59");
    let mut business = vec![
        ("id", id),
        ("startTime", start.as_str()),
        ("endTime", end.as_str()),
        ("timeType", "2"),
    ];
    business.extend_from_slice(more);
    request(sim, METHOD_SHOPS, &business)
}

/// The device rows of an answer in the demo's shape (`data.dataList`).
fn device_rows_of(v: &Value) -> &Vec<Value> {
    v["data"]["dataList"].as_array().unwrap()
}

#[test]
fn end_labels_name_the_end_of_each_hour() {
    assert_eq!(sim().config().row_time, SimRowTime::Start);
    let sim = sim_where(|cfg| cfg.row_time = SimRowTime::End);
    let v = call(&sim, &shops_request(&sim, "S_9601"));
    assert_eq!(code_of(&v), 0);
    let times = row_times(&v);
    assert_eq!(times.len(), 24);
    assert_eq!(times[0], "2024-03-15 01:00:00");
    assert_eq!(times[12], "2024-03-15 13:00:00");
    assert_eq!(times[23], "2024-03-16 00:00:00", "the last hour ends the next day");
    // The row labelled 14:00 counts the hour 13:00–14:00.
    let full = shop_hour(&demo_shop(9601), at("2024-03-15 13:00:00"));
    assert_eq!(row(&v["data"][0], "2024-03-15 14:00:00")["passengerFlow"], full.walk_in);
    // The hour in progress (14:30) is labelled 15:00; the hour 15 (to come) 16:00.
    let half = shop_hour(&demo_shop(9601), at("2024-03-15 14:00:00")).scaled(1800, 3600);
    assert_eq!(row(&v["data"][0], "2024-03-15 15:00:00")["passengerFlow"], half.walk_in);
    assert_eq!(row(&v["data"][0], "2024-03-15 16:00:00")["passengerFlow"], 0);
    assert!(!times.iter().any(|t| t == "2024-03-15 00:00:00"));

    // starthour/endhour still select hours by their start.
    let v = narrowed(&sim, "13", "14");
    assert_eq!(row_times(&v), ["2024-03-15 14:00:00"]);
    assert_eq!(first_rows(&v)[0]["passengerFlow"], full.walk_in);
    assert_eq!(row_times(&narrowed(&sim, "23", "24")), ["2024-03-16 00:00:00"]);

    // Device rows too; day rows keep their day's 00:00:00.
    let v = call(&sim, &device_request(&sim, "d47c44906f01"));
    let rows = device_rows_of(&v);
    assert_eq!(rows[0]["time"], "2024-03-15 01:00:00");
    assert_eq!(rows[23]["time"], "2024-03-16 00:00:00");
    let dev = sim.config().devices[0].clone();
    assert_eq!(
        rows[12]["passengerFlow"],
        device_hour(&dev, at("2024-03-15 12:00:00")).walk_in
    );
    let v = call(&sim, &day_request(&sim, "S_9601", "2024-03-14", "2024-03-15", &[]));
    assert_eq!(row_times(&v), ["2024-03-14 00:00:00", "2024-03-15 00:00:00"]);
}

#[test]
fn fraction_rates_are_ratios_with_four_decimals() {
    assert_eq!(sim().config().rate_scale, SimRateScale::Percent);
    let sim = sim_where(|cfg| cfg.rate_scale = SimRateScale::Fraction);
    // 9601: numbers; 9603: numbers as strings.
    let v = call(&sim, &one_hour(&sim, "S_9601,S_9603"));
    for (i, dep) in [(0, 9601), (1, 9603)] {
        let full = shop_hour(&demo_shop(dep), at("2024-03-15 13:00:00"));
        let r = &v["data"][i]["dataList"][0];
        let walk_in_rate = num(&r["inShopRate"]);
        let percent = full.walk_in_rate_percent();
        assert!(percent > 1.0, "{dep}: {percent}");
        assert_eq!(walk_in_rate, (percent * 100.0).round() / 10_000.0, "{dep}");
        assert_eq!(walk_in_rate, SimRateScale::Fraction.of_percent(percent));
        assert!(walk_in_rate > 0.0 && walk_in_rate < 1.0);
        let fitting = num(&r["dressingRate"]);
        assert_eq!(
            Some(fitting * 100.0).map(|f| (f * 100.0).round() / 100.0),
            full.fitting_rate_percent()
        );
        // Exactly the ratio of the counts, to 4 decimals.
        let ratio = full.walk_in as f64 / full.outside() as f64;
        assert!(
            (walk_in_rate - ratio).abs() <= 0.00005 + 1e-12,
            "{walk_in_rate} {ratio}"
        );
    }
    let strings = &v["data"][1]["dataList"][0];
    let text = strings["inShopRate"].as_str().unwrap();
    assert!(text.starts_with("0.") && text.len() == 6, "{text}");
    // The default sends percentages.
    let open = self::sim();
    let v = call(&open, &one_hour(&open, "S_9601"));
    let percent = shop_hour(&demo_shop(9601), at("2024-03-15 13:00:00")).walk_in_rate_percent();
    assert_eq!(first_rows(&v)[0]["inShopRate"].as_f64(), Some(percent));
    assert_eq!(SimRateScale::Percent.of_percent(percent), percent);
}

#[test]
fn renamed_fields_are_sent_under_their_new_name_only() {
    let sim = sim_where(|cfg| {
        cfg.renamed_fields = vec![
            ("passPassengerFlow".into(), "passFlow".into()),
            ("outFlowCount".into(), "walkOut".into()),
        ]
    });
    let full = shop_hour(&demo_shop(9601), at("2024-03-15 13:00:00"));
    let v = call(&sim, &one_hour(&sim, "S_9601"));
    let r = &first_rows(&v)[0];
    assert!(r.get("passPassengerFlow").is_none(), "{r}");
    assert_eq!(r["passFlow"], full.passing);
    assert!(r.get("outFlowCount").is_none());
    assert_eq!(r["walkOut"], full.walk_out);
    assert_eq!(r["passengerFlow"], full.walk_in, "other fields keep their names");
    // Day rows and device rows are renamed too.
    let v = call(&sim, &day_request(&sim, "S_9601", "2024-03-14", "2024-03-14", &[]));
    let r = &first_rows(&v)[0];
    assert!(
        r.get("passPassengerFlow").is_none() && r.get("passFlow").is_some(),
        "{r}"
    );
    let v = call(&sim, &device_request(&sim, "d47c44906f01"));
    let r = &device_rows_of(&v)[12];
    assert!(r.get("outFlowCount").is_none(), "{r}");
    let dev = sim.config().devices[0].clone();
    assert_eq!(r["walkOut"], device_hour(&dev, at("2024-03-15 12:00:00")).walk_out);
    // Without renames the documented names are sent.
    let open = self::sim();
    let v = call(&open, &one_hour(&open, "S_9601"));
    assert_eq!(first_rows(&v)[0]["passPassengerFlow"], full.passing);
}

#[test]
fn a_skewed_gateway_clock_moves_systime_freshness_and_hours() {
    let ahead = |skew: i64| {
        sim_where(|cfg| {
            cfg.clock_skew = skew;
            cfg.max_skew = std::time::Duration::from_secs(600);
        })
    };
    // Five minutes ahead: fresh enough, and systime is the gateway's.
    let sim = ahead(300);
    let v = call(&sim, &shops_request(&sim, "S_9601"));
    assert_eq!(code_of(&v), 0);
    let expected = clock().now().timestamp_millis() + 300_000;
    assert_eq!(v["stat"]["systime"], expected);
    assert_eq!(
        sim.config().gateway_now(),
        clock().now() + chrono::TimeDelta::seconds(300)
    );
    // Beyond max_skew either way: code 16, with systime still the gateway's.
    for skew in [601, -601, 3600] {
        let sim = ahead(skew);
        let v = call(&sim, &shops_request(&sim, "S_9601"));
        assert_eq!(code_of(&v), 16, "{skew}");
        assert_eq!(v["stat"]["systime"], clock().now().timestamp_millis() + skew * 1000);
    }
    // Which hours are complete follows the gateway's clock: at 14:30 (client), a gateway 40
    // minutes ahead has completed the hour 14 and is 10 minutes into the hour 15.
    let sim = sim_where(|cfg| {
        cfg.clock_skew = 2400;
        cfg.max_skew = std::time::Duration::from_secs(3600);
    });
    let v = call(&sim, &shops_request(&sim, "S_9601"));
    assert_eq!(code_of(&v), 0);
    let shop = demo_shop(9601);
    let r = row(&v["data"][0], "2024-03-15 14:00:00");
    assert_eq!(r["passengerFlow"], shop_hour(&shop, at("2024-03-15 14:00:00")).walk_in);
    let r = row(&v["data"][0], "2024-03-15 15:00:00");
    let share = shop_hour(&shop, at("2024-03-15 15:00:00")).scaled(600, 3600);
    assert_eq!(r["passengerFlow"], share.walk_in);
    // And behind: 40 minutes behind, the gateway is at 13:50.
    let sim = sim_where(|cfg| {
        cfg.clock_skew = -2400;
        cfg.max_skew = std::time::Duration::from_secs(3600);
    });
    let v = call(&sim, &shops_request(&sim, "S_9601"));
    let r = row(&v["data"][0], "2024-03-15 13:00:00");
    let share = shop_hour(&shop, at("2024-03-15 13:00:00")).scaled(3000, 3600);
    assert_eq!(r["passengerFlow"], share.walk_in);
    assert_eq!(row(&v["data"][0], "2024-03-15 14:00:00")["passengerFlow"], 0);
}

#[test]
fn a_late_uploaders_past_hour_shows_half_then_is_revised() {
    let sim = sim_where(|cfg| {
        cfg.late_upload = Some(std::time::Duration::from_secs(20 * 60));
        cfg.orgs[0].shops[0].late_uploader = true; // 9601
    });
    let hour = at("2024-03-15 13:00:00");
    let late = shop_hour(&demo_shop(9601), hour);
    let on_time = shop_hour(&demo_shop(9602), hour);
    let move_to = |h: u32, m: u32, s: u32| {
        sim.config()
            .clock
            .set(Utc.with_ymd_and_hms(2024, 3, 15, h - 8, m, s).single().unwrap())
    };
    let walk_ins = |sim: &Simulator| -> Vec<Value> {
        let v = call(sim, &one_hour(sim, "S_9601,S_9602"));
        assert_eq!(code_of(&v), 0);
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["dataList"][0]["passengerFlow"].clone())
            .collect()
    };
    assert!(late.walk_in > 1);
    // 14:10: the hour 13 is complete, but 9601's upload is due at 14:20.
    move_to(14, 10, 0);
    assert_eq!(walk_ins(&sim), [late.walk_in / 2, on_time.walk_in]);
    let v = call(&sim, &one_hour(&sim, "S_9601"));
    let r = &first_rows(&v)[0];
    let half = late.scaled(1, 2);
    assert_eq!(r["passPassengerFlow"], half.passing);
    assert_eq!(r["outFlowCount"], half.walk_out);
    assert_eq!(r["inShopRate"].as_f64(), Some(half.walk_in_rate_percent()));
    move_to(14, 19, 59);
    assert_eq!(walk_ins(&sim)[0], late.walk_in / 2);
    // 14:20: revised to the full counts.
    move_to(14, 20, 0);
    assert_eq!(walk_ins(&sim), [late.walk_in, on_time.walk_in]);
    // Without a delay the late uploader is on time.
    let sim = sim_with_shop(9601, |s| s.late_uploader = true);
    sim.config()
        .clock
        .set(Utc.with_ymd_and_hms(2024, 3, 15, 6, 10, 0).single().unwrap());
    assert_eq!(walk_ins(&sim)[0], late.walk_in);
}

/// The sums of the hourly rows' `key` in an answer's first shop.
fn sum_of(v: &Value, key: &str) -> u64 {
    first_rows(v).iter().map(|r| num(&r[key]) as u64).sum()
}

#[test]
fn day_rows_are_the_sum_of_the_hours_as_shown_now() {
    let sim = sim();
    // Two days: yesterday complete, today in progress (14:30); starthour/endhour ignored.
    let v = call(
        &sim,
        &day_request(
            &sim,
            "S_9601,S_9604",
            "2024-03-14",
            "2024-03-15",
            &[("starthour", "13"), ("endhour", "14")],
        ),
    );
    assert_eq!(code_of(&v), 0);
    assert_eq!(row_times(&v), ["2024-03-14 00:00:00", "2024-03-15 00:00:00"]);
    assert_eq!(
        (sim.day_rows(), sim.shop_rows()),
        (4, 0),
        "one day row per shop and day, counted apart from hourly rows"
    );
    let day_rows = first_rows(&v).clone();
    for (i, date) in ["2024-03-14", "2024-03-15"].into_iter().enumerate() {
        let hourly = request(
            &sim,
            METHOD_SHOPS,
            &[
                ("id", "S_9601"),
                ("startTime", &format!("{date} 00:00:00")),
                ("endTime", &format!("{date} 23:59:59")),
            ],
        );
        let hours = call(&sim, &hourly);
        let d = &day_rows[i];
        let walk_in = sum_of(&hours, "passengerFlow");
        let passing = sum_of(&hours, "passPassengerFlow");
        assert!(walk_in > 100, "{date}: {walk_in}");
        assert_eq!(d["passengerFlow"], walk_in, "{date}");
        assert_eq!(d["passPassengerFlow"], passing);
        assert_eq!(d["outSidePassengerFlow"], sum_of(&hours, "outSidePassengerFlow"));
        assert_eq!(d["outFlowCount"], sum_of(&hours, "outFlowCount"));
        let rate = ((walk_in * 20_000 + (walk_in + passing)) / (2 * (walk_in + passing))) as f64 / 100.0;
        assert_eq!(d["inShopRate"].as_f64(), Some(rate), "recomputed from the sums");
        let expected = shop_day(
            &demo_shop(9601),
            at(&format!("{date} 00:00:00")).date(),
            at("2024-03-15 14:30:00"),
        );
        assert_eq!(
            (
                expected.walk_in,
                expected.passing,
                expected.outside,
                expected.walk_out,
                expected.walk_in_rate_percent
            ),
            (
                walk_in,
                Some(passing),
                Some(walk_in + passing),
                Some(sum_of(&hours, "outFlowCount")),
                Some(rate)
            )
        );
    }
    assert!(
        day_rows[1]["passengerFlow"].as_u64() < day_rows[0]["passengerFlow"].as_u64(),
        "today is in progress"
    );
    // No fitting room, no dressingRate in its day row either.
    assert!(v["data"][1]["dataList"][0].get("dressingRate").is_none());
    assert!(day_rows[0].get("dressingRate").is_some());
    // Other time types are still refused.
    for tt in ["3", "0", "x"] {
        let p = shops_request_with(&sim, "S_9601", &[]);
        let p: Vec<(String, String)> = p
            .into_iter()
            .filter(|(k, _)| k != "_sig" && k != "_nonce")
            .map(|(k, v)| if k == "timeType" { (k, tt.to_owned()) } else { (k, v) })
            .chain([("_nonce".to_owned(), uuid::Uuid::new_v4().to_string())])
            .collect();
        let v = call(&sim, &with_sig(&sim, p));
        assert_eq!(code_of(&v), -500, "{tt}");
    }
}

#[test]
fn a_face_device_shop_sends_no_walk_outs_and_de_duplicates_its_day() {
    let sim = sim_with_shop(9601, |s| s.face_device = true);
    let hours = call(&sim, &shops_request(&sim, "S_9601,S_9602"));
    for r in first_rows(&hours) {
        assert!(r.get("outFlowCount").is_none(), "{r}");
        assert!(r.get("passengerFlow").is_some());
    }
    assert!(
        hours["data"][1]["dataList"][0].get("outFlowCount").is_some(),
        "9602 counts walk-outs"
    );
    let v = call(
        &sim,
        &day_request(&sim, "S_9601,S_9602", "2024-03-15", "2024-03-15", &[]),
    );
    let face = &first_rows(&v)[0];
    assert!(face.get("outFlowCount").is_none(), "{face}");
    let sum = sum_of(&hours, "passengerFlow");
    let walk_in = face["passengerFlow"].as_u64().unwrap();
    assert!(sum >= 5);
    assert!(walk_in < sum, "{walk_in} of {sum}");
    assert!(walk_in >= sum * 80 / 100, "{walk_in} of {sum}");
    let passing = face["passPassengerFlow"].as_u64().unwrap();
    assert_eq!(
        passing,
        sum_of(&hours, "passPassengerFlow"),
        "only walk-ins are de-duplicated"
    );
    assert_eq!(face["outSidePassengerFlow"], walk_in + passing);
    let shop = sim.config().shop(9601).unwrap().clone();
    let expected = shop_day(&shop, at("2024-03-15 00:00:00").date(), at("2024-03-15 14:30:00"));
    assert_eq!((expected.walk_in, expected.walk_out), (walk_in, None));
    // A shop without face devices: its day is exactly the sum.
    let other = &v["data"][1]["dataList"][0];
    let sum: u64 = hours["data"][1]["dataList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["passengerFlow"].as_u64().unwrap())
        .sum();
    assert_eq!(other["passengerFlow"], sum);
}

#[test]
fn a_shop_without_an_outside_counter_sends_no_passing_outside_or_rate() {
    assert!(sim()
        .config()
        .shops()
        .all(|s| s.outside_counter && !s.face_device && !s.late_uploader));
    let sim = sim_with_shop(9601, |s| s.outside_counter = false);
    let missing = ["passPassengerFlow", "outSidePassengerFlow", "inShopRate"];
    let full = shop_hour(&demo_shop(9601), at("2024-03-15 13:00:00"));
    let hours = call(&sim, &shops_request(&sim, "S_9601,S_9602"));
    let days = call(
        &sim,
        &day_request(&sim, "S_9601,S_9602", "2024-03-14", "2024-03-15", &[]),
    );
    for v in [&hours, &days] {
        for r in first_rows(v) {
            for key in missing {
                assert!(r.get(key).is_none(), "{key}: {r}");
            }
            for key in ["passengerFlow", "outFlowCount", "dressingRate", "time"] {
                assert!(r.get(key).is_some(), "{key}: {r}");
            }
            assert_eq!(r["inCountHavingPassDevice"], 0);
        }
        for r in v["data"][1]["dataList"].as_array().unwrap() {
            for key in missing {
                assert!(r.get(key).is_some(), "9602 {key}: {r}");
            }
        }
    }
    assert_eq!(
        row(&hours["data"][0], "2024-03-15 13:00:00")["passengerFlow"],
        full.walk_in
    );
    let shop = sim.config().shop(9601).unwrap().clone();
    let day = shop_day(&shop, at("2024-03-14 00:00:00").date(), at("2024-03-15 14:30:00"));
    assert_eq!((day.passing, day.outside, day.walk_in_rate_percent), (None, None, None));
    assert_eq!(first_rows(&days)[0]["passengerFlow"], day.walk_in);
}

#[test]
fn device_rows_of_a_face_device_carry_no_walk_outs_and_day_rows_sum_the_hours() {
    let sim = sim_where(|cfg| cfg.devices[0].face_device = true);
    let face = call(&sim, &device_request(&sim, "d47c44906f01"));
    let rows = device_rows_of(&face);
    assert_eq!(rows.len(), 24);
    for r in rows {
        assert!(r.get("outFlowCount").is_none(), "{r}");
        assert!(r.get("passengerFlow").is_some());
    }
    let plain = call(&sim, &device_request(&sim, "d47c44906f02"));
    assert!(device_rows_of(&plain).iter().all(|r| r.get("outFlowCount").is_some()));

    // timeType=2: one row for the day, the sums of the hours as shown now (14:30).
    for (mac, i, hourly) in [("d47c44906f01", 0, &face), ("d47c44906f02", 1, &plain)] {
        let v = call(&sim, &device_request_typed(&sim, mac, "2"));
        assert_eq!(code_of(&v), 0);
        let rows = device_rows_of(&v);
        assert_eq!(rows.len(), 1, "{mac}");
        assert_eq!(rows[0]["time"], "2024-03-15 00:00:00");
        let hours = device_rows_of(hourly);
        let walk_in: u64 = hours.iter().map(|r| r["passengerFlow"].as_u64().unwrap()).sum();
        assert!(walk_in > 0);
        assert_eq!(rows[0]["passengerFlow"], walk_in, "{mac}");
        let dev = sim.config().devices[i].clone();
        let day = device_day(&dev, at("2024-03-15 00:00:00").date(), at("2024-03-15 14:30:00"));
        assert_eq!(day.walk_in, walk_in);
        if i == 0 {
            assert!(rows[0].get("outFlowCount").is_none());
            assert_eq!(day.walk_out, None);
        } else {
            let walk_out: u64 = hours.iter().map(|r| r["outFlowCount"].as_u64().unwrap()).sum();
            assert_eq!(rows[0]["outFlowCount"], walk_out);
            assert_eq!(day.walk_out, Some(walk_out));
        }
    }
    assert_eq!(
        code_of(&call(&sim, &device_request_typed(&sim, "d47c44906f01", "3"))),
        -500
    );
}

#[test]
fn a_target_fault_fails_only_the_calls_that_name_its_target() {
    let sim = sim();
    sim.set_target_fault("S_9605", Some(Fault::Code(ID_NOT_ALLOWED)));
    sim.set_target_fault("D4:7C:44:90:6F:02", Some(Fault::Http(503)));
    let v = call(&sim, &shops_request(&sim, "S_9601, S_9605"));
    assert_eq!(code_of(&v), ID_NOT_ALLOWED);
    assert_eq!(v["stat"]["codename"], "ID_NOT_ALLOWED");
    assert!(v["stat"]["cid"].as_str().is_some_and(|c| !c.is_empty()));
    // The organisation holding the shop, and the other shops, answer as usual.
    assert_eq!(code_of(&call(&sim, &shops_request(&sim, "O_1001,S_9606"))), 0);
    assert_eq!(reply(sim.handle(&device_request(&sim, "d47c44906f02"))).status, 503);
    assert_eq!(reply(sim.handle(&device_request(&sim, "d47c44906f01"))).status, 200);
    assert_eq!(sim.answered(ID_NOT_ALLOWED), 1);
    sim.set_target_fault("S_9605", None);
    assert_eq!(code_of(&call(&sim, &shops_request(&sim, "S_9605"))), 0);
}
