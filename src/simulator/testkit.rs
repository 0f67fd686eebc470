//! Helpers the simulator's unit tests share: a fixed clock, the demo gateway, and requests
//! signed with the simulator's own signature code, as a well-behaved client on that clock would
//! send them (its `_timestamp` knows nothing of the gateway's clock skew).

use chrono::{NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

use super::times::{GATEWAY_TZ, TIMESTAMP_FORMAT, TIME_FORMAT};
use super::verify::{signature, Algorithm};
use super::{param, Outcome, SimConfig, SimReply, SimShop, Simulator, METHOD_DEVICES, METHOD_SHOPS};
use crate::model::Clock;

pub(crate) type Params = Vec<(String, String)>;

/// 2024-03-15 (a Friday) 14:30:00 in Shanghai.
pub(crate) fn clock() -> Clock {
    Clock::manual(Utc.with_ymd_and_hms(2024, 3, 15, 6, 30, 0).single().unwrap())
}

pub(crate) fn sim() -> Simulator {
    Simulator::new(SimConfig::demo(clock()))
}

pub(crate) fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
}

/// The common parameters of a request for `mt`, with a fresh `_nonce`, not yet signed. The
/// `_timestamp` is the client's: the clock's now in gateway time, without the gateway's
/// [`SimConfig::clock_skew`].
pub(crate) fn common(sim: &Simulator, mt: &str) -> Params {
    let cfg = sim.config();
    let ts = cfg
        .clock
        .now()
        .with_timezone(&GATEWAY_TZ)
        .format(TIMESTAMP_FORMAT)
        .to_string();
    [
        ("_aid", cfg.aid.as_str()),
        ("_akey", cfg.app_key.as_str()),
        ("_mt", mt),
        ("_sm", "md5"),
        ("_requestMode", "post"),
        ("_version", "v1"),
        ("_timestamp", ts.as_str()),
        ("_format", "json"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([("_nonce".to_string(), uuid::Uuid::new_v4().to_string())])
    .collect()
}

/// `params` with `_sig` appended (md5 unless `_sm` names sha1).
pub(crate) fn with_sig(sim: &Simulator, mut params: Params) -> Params {
    let algorithm = Algorithm::from_sm(param(&params, "_sm").unwrap_or("md5")).unwrap_or(Algorithm::Md5);
    let pairs = params.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let sig = signature(pairs, &sim.config().app_secret, algorithm);
    params.push(("_sig".into(), sig));
    params
}

pub(crate) fn request(sim: &Simulator, mt: &str, business: &[(&str, &str)]) -> Params {
    let mut p = common(sim, mt);
    p.extend(business.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    with_sig(sim, p)
}

pub(crate) fn shops_request(sim: &Simulator, id: &str) -> Params {
    shops_request_with(sim, id, &[])
}

/// A shops request for `id` and the whole of 2024-03-15, with `more` business parameters.
pub(crate) fn shops_request_with(sim: &Simulator, id: &str, more: &[(&str, &str)]) -> Params {
    let mut business = vec![
        ("id", id),
        ("startTime", "2024-03-15 00:00:00"),
        ("endTime", "2024-03-15 23:59:59"),
        ("timeType", "1"),
    ];
    business.extend_from_slice(more);
    request(sim, METHOD_SHOPS, &business)
}

pub(crate) fn device_request(sim: &Simulator, mac: &str) -> Params {
    device_request_typed(sim, mac, "1")
}

/// A device request for 2024-03-15 with `timeType` `time_type`.
pub(crate) fn device_request_typed(sim: &Simulator, mac: &str, time_type: &str) -> Params {
    request(
        sim,
        METHOD_DEVICES,
        &[
            ("mac", mac),
            ("startTime", "2024-03-15 00:00:00"),
            ("endTime", "2024-03-15 23:59:59"),
            ("timeType", time_type),
            ("isOnBusinessTime", "0"),
        ],
    )
}

pub(crate) fn reply(o: Outcome) -> SimReply {
    match o {
        Outcome::Reply(r) => r,
        Outcome::Hang => panic!("unexpected hang"),
    }
}

pub(crate) fn code_of(v: &Value) -> i64 {
    v["stat"]["code"].as_i64().unwrap()
}

pub(crate) fn demo_shop(dep_id: u64) -> SimShop {
    sim().config().shop(dep_id).unwrap().clone()
}
