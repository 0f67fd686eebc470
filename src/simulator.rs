//! A fake Opretail gateway: it owns the simulated tenant (organisations, shops, counting
//! devices), a deterministic traffic model that says how many people each shop and device
//! counted in any hour ([`shop_hour`], [`device_hour`]), and an HTTP server that answers the two
//! gateway methods the exporter calls exactly like the real `m.api` does — same envelope, same
//! signature check (through [`crate::client::sign`]), same error codes in the same order, rows
//! for every hour of the asked days with zeros for hours still to come. Faults (gateway error
//! codes, HTTP errors, hangs, garbage, truncated bodies, wrong content type) can be switched on
//! from code ([`Simulator::set_fault`]) or over HTTP (`POST /-/fault`). It is used by
//! `opretail-exporter demo`, `opretail-exporter simulate` and the integration tests; the pure
//! request core ([`Simulator::handle`]) is separate from the thin axum layer so it can be tested
//! without a socket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};
use serde_json::{json, Map, Value};
use tokio_util::sync::CancellationToken;

use crate::client::{
    code_description, codename, sign, GATEWAY_TZ, METHOD_DEVICES, METHOD_LOGIN, METHOD_SHOPS, TIMESTAMP_FORMAT,
    TIME_FORMAT, TOKEN_HEADERS, TOKEN_NOT_EXIST,
};
use crate::model::{Clock, SignMethod};

/// Content type of every gateway answer (errors included), as the real gateway sends it.
pub const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";
const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
const HTML_CONTENT_TYPE: &str = "text/html;charset=UTF-8";
/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// How many `_nonce` values are remembered for replay detection.
const NONCE_MEMORY: usize = 100_000;
/// The longest window (in days) one call may ask for.
const MAX_DAYS: i64 = 31;
/// How long a [`Fault::Hang`] request hangs at most (unless released earlier).
const HANG_FOR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The simulated tenant and gateway settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The `_akey` the gateway accepts.
    pub app_key: String,
    /// The secret requests are signed with.
    pub app_secret: String,
    /// The `_aid` the gateway expects (`S107` on the public gateway).
    pub aid: String,
    pub orgs: Vec<SimOrg>,
    pub devices: Vec<SimDevice>,
    /// How the device method wraps its rows.
    pub device_shape: DeviceShape,
    /// The simulator's "now": decides which hours are complete, in progress or still to come,
    /// and what `_timestamp` is fresh.
    pub clock: Clock,
    /// Allowed `|_timestamp - now|`.
    pub max_skew: Duration,
    /// Accounts `open.shopweb.security.mobileLogin` accepts: (user name, password).
    pub users: Vec<(String, String)>,
    /// Whether business methods need a user token (`authenticator` or `Ovo-Authorization`
    /// header) from a login; without one they answer 9990001 TOKEN_NOT_EXIST.
    pub require_token: bool,
    /// The gateway's request budget, if it enforces one: requests per second, bursts of one
    /// second's worth. A request beyond it answers -100 API_CALL_REPEAT. Half a request of
    /// tolerance absorbs the jitter of requests in flight.
    pub rate_limit: Option<f64>,
}

/// An organisation node (`O_<org_id>`) and its shops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOrg {
    pub org_id: u64,
    pub name: String,
    pub shops: Vec<SimShop>,
}

/// One shop (`S_<dep_id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimShop {
    pub dep_id: u64,
    pub name: String,
    /// The store code, answered as `shopId`; may be empty.
    pub code: String,
    /// Without one, rows carry no `dressingRate`.
    pub has_fitting_room: bool,
    /// Answer the numeric row fields as JSON strings (`"12"`, `"8.14"`).
    pub numbers_as_strings: bool,
}

/// One counting device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    /// 12 lower-case hex digits.
    pub mac: String,
    pub dep_id: u64,
    pub name: String,
}

/// How the device method's `data` holds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceShape {
    /// `data: [rows]`
    BareList,
    /// `data: {"dataList": [rows]}`
    #[default]
    DataList,
    /// `data: {"list": [rows]}`
    List,
    /// `data: {"rows": [rows]}`
    Rows,
    /// `data: {"data": [rows]}`
    Data,
}

impl DeviceShape {
    /// Every shape, for tests that try them all.
    pub const ALL: [DeviceShape; 5] = [
        DeviceShape::BareList,
        DeviceShape::DataList,
        DeviceShape::List,
        DeviceShape::Rows,
        DeviceShape::Data,
    ];

    fn wrap(self, rows: Vec<Value>) -> Value {
        let key = match self {
            DeviceShape::BareList => return Value::Array(rows),
            DeviceShape::DataList => "dataList",
            DeviceShape::List => "list",
            DeviceShape::Rows => "rows",
            DeviceShape::Data => "data",
        };
        let mut map = Map::new();
        map.insert(key.to_owned(), Value::Array(rows));
        Value::Object(map)
    }
}

const EAST_SHOPS: [(&str, &str); 12] = [
    ("Shanghai Nanjing Rd", "SH-001"),
    ("Shanghai Huaihai Rd", ""),
    ("Shanghai Lujiazui", "SH-003"),
    ("Hangzhou West Lake", "HZ-001"),
    ("Hangzhou Wulin Square", ""),
    ("Suzhou Guanqian St", "SZ-001"),
    ("Nanjing Xinjiekou", "NJ-001"),
    ("Nanjing Confucius Temple", ""),
    ("Ningbo Tianyi Square", "NB-001"),
    ("Wuxi Chong'an Temple", "WX-001"),
    ("Hefei Huaihe Rd", ""),
    ("Xiamen Zhongshan Rd", "XM-001"),
];

const WEST_SHOPS: [(&str, &str); 8] = [
    ("Chengdu Chunxi Rd", "CD-001"),
    ("Chengdu Taikoo Li", ""),
    ("Chongqing Jiefangbei", "CQ-001"),
    ("Xi'an Bell Tower", "XA-001"),
    ("Kunming Nanping St", ""),
    ("Guiyang Fountain Square", "GY-001"),
    ("Lanzhou Zhangye Rd", "LZ-001"),
    ("Urumqi Grand Bazaar", ""),
];

impl SimConfig {
    /// The zero-configuration tenant of `opretail-exporter demo`: key `demo`, secret
    /// `demo-secret`, `_aid` `S107`; organisations `O_1001` "East region" (12 shops) and
    /// `O_1002` "West region" (8 shops) with dep ids 9601..=9620. Every 4th shop has no fitting
    /// room, every 3rd answers numbers as strings; 10 devices `d47c44906f01`..`d47c44906f0a`,
    /// two on each of the first five shops.
    pub fn demo(clock: Clock) -> Self {
        let mut index = 0u64;
        let mut make = |list: &[(&str, &str)]| -> Vec<SimShop> {
            list.iter()
                .map(|(name, code)| {
                    let i = index;
                    index += 1;
                    SimShop {
                        dep_id: 9601 + i,
                        name: (*name).to_owned(),
                        code: (*code).to_owned(),
                        has_fitting_room: i % 4 != 3,
                        numbers_as_strings: i % 3 == 2,
                    }
                })
                .collect()
        };
        let east = make(&EAST_SHOPS);
        let west = make(&WEST_SHOPS);
        let devices = (1..=10u64)
            .map(|n| SimDevice {
                mac: format!("d47c44906f{n:02x}"),
                dep_id: 9601 + (n - 1) / 2,
                name: format!("Entrance {}", if n % 2 == 1 { "A" } else { "B" }),
            })
            .collect();
        SimConfig {
            app_key: "demo".to_owned(),
            app_secret: "demo-secret".to_owned(),
            aid: "S107".to_owned(),
            orgs: vec![
                SimOrg {
                    org_id: 1001,
                    name: "East region".to_owned(),
                    shops: east,
                },
                SimOrg {
                    org_id: 1002,
                    name: "West region".to_owned(),
                    shops: west,
                },
            ],
            devices,
            device_shape: DeviceShape::default(),
            clock,
            max_skew: Duration::from_secs(600),
            users: vec![("demo".to_owned(), "demo-password".to_owned())],
            require_token: false,
            rate_limit: None,
        }
    }

    /// A large tenant for benchmarks: `shops` shops in organisations of 100 (`O_2001`, …;
    /// dep ids from 100001), and `devices` devices (macs `0a0000000000` + index) spread
    /// round-robin over the shops. Same key, secret and traffic model as the demo.
    pub fn large(clock: Clock, shops: u64, devices: u64) -> Self {
        let mut cfg = SimConfig::demo(clock);
        cfg.orgs = (0..shops.div_ceil(100))
            .map(|o| SimOrg {
                org_id: 2001 + o,
                name: format!("Region {}", o + 1),
                shops: (o * 100..((o + 1) * 100).min(shops))
                    .map(|i| SimShop {
                        dep_id: 100_001 + i,
                        name: format!("Shop {}", i + 1),
                        code: format!("L-{:05}", i + 1),
                        has_fitting_room: i % 4 != 3,
                        numbers_as_strings: i % 3 == 2,
                    })
                    .collect(),
            })
            .collect();
        cfg.devices = (0..devices)
            .map(|i| SimDevice {
                mac: format!("0a{:010x}", i),
                dep_id: 100_001 + if shops == 0 { 0 } else { i % shops },
                name: format!("Counter {}", i + 1),
            })
            .collect();
        cfg
    }

    /// Every shop of every organisation, in configuration order.
    pub fn shops(&self) -> impl Iterator<Item = &SimShop> {
        self.orgs.iter().flat_map(|o| o.shops.iter())
    }

    /// The shop with this dep id, if any.
    pub fn shop(&self, dep_id: u64) -> Option<&SimShop> {
        self.shops().find(|s| s.dep_id == dep_id)
    }

    /// The device with this mac (case, `:` and `-` ignored), if any.
    pub fn device(&self, mac: &str) -> Option<&SimDevice> {
        let wanted = normalize_mac(mac);
        self.devices.iter().find(|d| normalize_mac(&d.mac) == wanted)
    }

    /// The simulator's now as gateway (Asia/Shanghai) wall time.
    pub fn now_local(&self) -> NaiveDateTime {
        self.clock.now().with_timezone(&GATEWAY_TZ).naive_local()
    }
}

fn normalize_mac(mac: &str) -> String {
    mac.chars()
        .filter(|c| *c != ':' && *c != '-' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------------
// Traffic model
// ---------------------------------------------------------------------------------------------

/// The counts of one shop hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimShopHour {
    pub walk_in: u64,
    pub passing: u64,
    pub walk_out: u64,
    /// Fitting-room visitors; `None` for a shop without a fitting room.
    pub fitting: Option<u64>,
}

impl SimShopHour {
    /// Outside passenger flow = walk-in + passing.
    pub fn outside(&self) -> u64 {
        self.walk_in + self.passing
    }

    /// Walk-in / outside × 100, rounded half-up to 2 decimals; 0 when outside is 0.
    pub fn walk_in_rate_percent(&self) -> f64 {
        percent(self.walk_in, self.outside())
    }

    /// Fitting / walk-in × 100, rounded half-up to 2 decimals; `Some(0.0)` when walk-in is 0;
    /// `None` without a fitting room.
    pub fn fitting_rate_percent(&self) -> Option<f64> {
        self.fitting.map(|f| percent(f, self.walk_in))
    }

    /// Every count multiplied by `num / den`, rounded down (integer arithmetic; `den` 0 gives
    /// zeros). The hour in progress is served as `scaled(elapsed_seconds, 3600)`.
    pub fn scaled(&self, num: u64, den: u64) -> SimShopHour {
        SimShopHour {
            walk_in: scale(self.walk_in, num, den),
            passing: scale(self.passing, num, den),
            walk_out: scale(self.walk_out, num, den),
            fitting: self.fitting.map(|f| scale(f, num, den)),
        }
    }
}

/// The walk-in and walk-out of one device hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SimDeviceHour {
    pub walk_in: u64,
    pub walk_out: u64,
}

impl SimDeviceHour {
    /// Both counts multiplied by `num / den`, rounded down.
    pub fn scaled(&self, num: u64, den: u64) -> SimDeviceHour {
        SimDeviceHour {
            walk_in: scale(self.walk_in, num, den),
            walk_out: scale(self.walk_out, num, den),
        }
    }
}

fn scale(v: u64, num: u64, den: u64) -> u64 {
    if den == 0 {
        return 0;
    }
    let num = num.min(den);
    ((v as u128 * num as u128) / den as u128) as u64
}

/// `part / whole × 100` rounded half-up to 2 decimals, computed in integers (basis points)
/// and divided once, so it is exactly reproducible.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    let bp = (part as u128 * 20_000 + whole as u128) / (2 * whole as u128);
    bp as f64 / 100.0
}

/// Relative traffic per hour of the day, in percent of the peak (12:00 and 19:00).
const DAY_SHAPE: [u64; 24] = [
    2, 1, 0, 0, 0, 1, 5, 15, 35, 55, 70, 85, 100, 90, 75, 65, 60, 70, 90, 100, 85, 55, 25, 8,
];

fn mix(mut z: u64) -> u64 {
    // splitmix64 finaliser
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x51_7CC1_B727_220A, |acc, p| mix(acc ^ mix(*p)))
}

/// FNV-1a of a string, for macs.
fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |acc, b| {
        (acc ^ b as u64).wrapping_mul(0x0100_0000_01B3)
    })
}

/// `lo..=hi` picked by `h`.
fn pick(h: u64, lo: u64, hi: u64) -> u64 {
    lo + h % (hi - lo + 1)
}

fn date_key(d: NaiveDate) -> u64 {
    d.year() as u64 * 10_000 + d.month() as u64 * 100 + d.day() as u64
}

fn weekend_percent(d: NaiveDate) -> u64 {
    match d.weekday() {
        Weekday::Sat | Weekday::Sun => 115,
        _ => 100,
    }
}

/// Walk-ins of an hour for a source of size `base` (walk-ins at a weekday peak, ±15 %).
fn base_walk_in(base: u64, id: u64, hour: NaiveDateTime) -> u64 {
    let date = hour.date();
    let h = hour.hour() as usize;
    let variation = pick(hash(&[id, date_key(date), h as u64, 1]), 85, 115);
    base * DAY_SHAPE[h] * variation * weekend_percent(date) / 1_000_000
}

/// The full counts of the hour starting at `hour` (shop-local wall time; minutes and seconds
/// are ignored). Deterministic in (dep id, date, hour) and the shop's fitting room only.
pub fn shop_hour(shop: &SimShop, hour: NaiveDateTime) -> SimShopHour {
    let id = shop.dep_id;
    let date = date_key(hour.date());
    let h = hour.hour() as u64;
    let base = pick(hash(&[id, 0]), 20, 119);
    let walk_in = base_walk_in(base, id, hour);
    let passing_factor = pick(hash(&[id, date, h, 2]), 200, 450);
    let passing_noise = if DAY_SHAPE[h as usize] > 0 {
        hash(&[id, date, h, 3]) % 4
    } else {
        0
    };
    let passing = walk_in * passing_factor / 100 + passing_noise;
    let walk_out = walk_in * pick(hash(&[id, date, h, 4]), 90, 105) / 100;
    let fitting = shop
        .has_fitting_room
        .then(|| walk_in * pick(hash(&[id, date, h, 5]), 10, 35) / 100);
    SimShopHour {
        walk_in,
        passing,
        walk_out,
        fitting,
    }
}

/// The full counts of a device for the hour starting at `hour` (local wall time).
/// Deterministic in (mac, date, hour) only.
pub fn device_hour(dev: &SimDevice, hour: NaiveDateTime) -> SimDeviceHour {
    let id = hash_str(&normalize_mac(&dev.mac));
    let date = date_key(hour.date());
    let h = hour.hour() as u64;
    let base = pick(hash(&[id, 10]), 5, 54);
    let walk_in = base_walk_in(base, id, hour);
    let walk_out = walk_in * pick(hash(&[id, date, h, 11]), 90, 105) / 100;
    SimDeviceHour { walk_in, walk_out }
}

/// Where the hour starting at `hour` stands at `now` (both gateway wall time): `None` for a
/// complete hour, `Some(elapsed_seconds)` (0..3600) for the hour in progress, `Some(0)` for a
/// future hour.
fn elapsed_in(hour: NaiveDateTime, now: NaiveDateTime) -> Option<u64> {
    let start = hour.date().and_time(NaiveTime::MIN) + chrono::Duration::hours(hour.hour() as i64);
    let secs = (now - start).num_seconds();
    if secs >= 3600 {
        None
    } else {
        Some(secs.max(0) as u64)
    }
}

/// What the gateway answers for the shop hour starting at `hour` when asked at `now` (gateway
/// wall time): the full [`shop_hour`] for a complete hour, the counts scaled by the elapsed
/// fraction (whole seconds / 3600, floored) for the hour in progress, zeros for a future hour.
pub fn shop_hour_as_of(shop: &SimShop, hour: NaiveDateTime, now: NaiveDateTime) -> SimShopHour {
    let full = shop_hour(shop, hour);
    match elapsed_in(hour, now) {
        None => full,
        Some(secs) => full.scaled(secs, 3600),
    }
}

/// The device counterpart of [`shop_hour_as_of`].
pub fn device_hour_as_of(dev: &SimDevice, hour: NaiveDateTime, now: NaiveDateTime) -> SimDeviceHour {
    let full = device_hour(dev, hour);
    match elapsed_in(hour, now) {
        None => full,
        Some(secs) => full.scaled(secs, 3600),
    }
}

// ---------------------------------------------------------------------------------------------
// Codes and faults
// ---------------------------------------------------------------------------------------------

/// A failure the simulator plays instead of answering (before any validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 200, the envelope with this `stat.code` (and its codename), `data: null`.
    Code(i64),
    /// This HTTP status with a short text body.
    Http(u16),
    /// Never answer.
    Hang,
    /// HTTP 200 claiming JSON, with an HTML body.
    Garbage,
    /// HTTP 200 JSON, the first half of a valid success body.
    Truncated,
    /// HTTP 200 `text/html`, an HTML error page.
    WrongContentType,
    /// HTTP 200, a valid success envelope padded to this many KiB.
    Oversized(u32),
}

impl Fault {
    /// Parses the admin form value: `none` | `code:<n>` | `http:<status>` | `hang` |
    /// `garbage` | `truncated` | `wrong_content_type`. `none` is `Ok(None)`.
    pub fn parse(s: &str) -> Result<Option<Fault>, String> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        let fault = match lower.as_str() {
            "none" | "" => return Ok(None),
            "hang" => Fault::Hang,
            "garbage" => Fault::Garbage,
            "truncated" => Fault::Truncated,
            "wrong_content_type" | "wrong-content-type" => Fault::WrongContentType,
            other => {
                if let Some(n) = other.strip_prefix("oversized:") {
                    Fault::Oversized(n.trim().parse().map_err(|_| format!("bad size in KiB {n:?}"))?)
                } else if let Some(n) = other.strip_prefix("code:") {
                    Fault::Code(n.trim().parse().map_err(|_| format!("bad gateway code {n:?}"))?)
                } else if let Some(n) = other.strip_prefix("http:") {
                    let status: u16 = n.trim().parse().map_err(|_| format!("bad HTTP status {n:?}"))?;
                    if !(100..=999).contains(&status) {
                        return Err(format!("bad HTTP status {status}"));
                    }
                    Fault::Http(status)
                } else {
                    return Err(format!(
                        "unknown fault {s:?} (expected none, code:<n>, http:<status>, hang, garbage, truncated, wrong_content_type or oversized:<KiB>)"
                    ));
                }
            }
        };
        Ok(Some(fault))
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Code(c) => write!(f, "code:{c}"),
            Fault::Http(s) => write!(f, "http:{s}"),
            Fault::Hang => f.write_str("hang"),
            Fault::Garbage => f.write_str("garbage"),
            Fault::Truncated => f.write_str("truncated"),
            Fault::WrongContentType => f.write_str("wrong_content_type"),
            Fault::Oversized(kib) => write!(f, "oversized:{kib}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator
// ---------------------------------------------------------------------------------------------

/// What the gateway core decided to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(SimReply),
    /// Never answer ([`Fault::Hang`]).
    Hang,
}

/// One HTTP answer of the gateway core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimReply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl SimReply {
    /// The body as JSON (`Value::Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl IntoResponse for SimReply {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(header::CONTENT_TYPE, self.content_type)], self.body).into_response()
    }
}

/// A bounded memory of nonces already used.
#[derive(Default)]
struct Nonces {
    set: HashSet<String>,
    order: VecDeque<String>,
}

impl Nonces {
    /// Remembers `nonce`; false if it was already seen.
    fn insert(&mut self, nonce: &str) -> bool {
        if self.set.contains(nonce) {
            return false;
        }
        if self.order.len() >= NONCE_MEMORY {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(nonce.to_owned());
        self.order.push_back(nonce.to_owned());
        true
    }
}

struct Inner {
    cfg: SimConfig,
    /// Shops by dep id, and organisations and devices by id, for large tenants.
    shop_index: HashMap<u64, (usize, usize)>,
    org_index: HashMap<u64, usize>,
    device_index: HashMap<String, usize>,
    /// The gateway's token bucket (tokens, last refill), when `rate_limit` is set.
    bucket: Mutex<(f64, std::time::Instant)>,
    fault: Mutex<Option<Fault>>,
    nonces: Mutex<Nonces>,
    requests: AtomicU64,
    /// Tokens issued by logins and still valid.
    tokens: Mutex<HashSet<String>>,
    /// The most recent `_sig` values received (for tests that look for leaks).
    signatures: Mutex<VecDeque<String>>,
    /// Cancelled (and replaced) to release hanging requests: on shutdown and on a fault change.
    release: Mutex<CancellationToken>,
}

/// The fake gateway. Cheap to clone; clones share configuration, fault, nonces and counter.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("aid", &self.inner.cfg.aid)
            .field("shops", &self.inner.cfg.shops().count())
            .field("devices", &self.inner.cfg.devices.len())
            .field("fault", &self.fault())
            .field("requests", &self.requests())
            .finish()
    }
}

/// A gateway-level refusal: code and result text.
struct Refusal(i64, String);

impl Refusal {
    fn code(code: i64) -> Self {
        Refusal(code, code_description(code).to_owned())
    }
    fn system(text: impl Into<String>) -> Self {
        Refusal(-500, text.into())
    }
}

impl Simulator {
    pub fn new(cfg: SimConfig) -> Self {
        let mut shop_index = HashMap::new();
        let mut org_index = HashMap::new();
        for (o, org) in cfg.orgs.iter().enumerate() {
            org_index.entry(org.org_id).or_insert(o);
            for (i, shop) in org.shops.iter().enumerate() {
                shop_index.entry(shop.dep_id).or_insert((o, i));
            }
        }
        let device_index = cfg
            .devices
            .iter()
            .enumerate()
            .map(|(i, d)| (normalize_mac(&d.mac), i))
            .collect();
        let burst = cfg.rate_limit.unwrap_or(1.0).max(1.0);
        Simulator {
            inner: Arc::new(Inner {
                shop_index,
                org_index,
                device_index,
                bucket: Mutex::new((burst, std::time::Instant::now())),
                cfg,
                fault: Mutex::new(None),
                nonces: Mutex::new(Nonces::default()),
                requests: AtomicU64::new(0),
                tokens: Mutex::new(HashSet::new()),
                signatures: Mutex::new(VecDeque::new()),
                release: Mutex::new(CancellationToken::new()),
            }),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.cfg
    }

    /// Plays `fault` on every gateway request until cleared with `None`. Changing the fault
    /// releases requests hanging under [`Fault::Hang`].
    pub fn set_fault(&self, fault: Option<Fault>) {
        *self.inner.fault.lock().unwrap_or_else(PoisonError::into_inner) = fault;
        self.release_hangs();
        tracing::debug!(fault = ?fault, "simulator fault set");
    }

    /// The fault being played, if any.
    pub fn fault(&self) -> Option<Fault> {
        *self.inner.fault.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gateway requests received so far (faulted and refused ones included).
    pub fn requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// Invalidates every token issued so far: the next business call with one answers
    /// 9990001 TOKEN_NOT_EXIST.
    pub fn expire_tokens(&self) {
        self.inner.tokens.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Issues a token as a login would (for tests of a fixed configured token).
    pub fn issue_token(&self) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone());
        token
    }

    /// The tokens issued and still valid.
    pub fn tokens(&self) -> Vec<String> {
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The last (up to 10,000) `_sig` values received.
    pub fn signatures(&self) -> Vec<String> {
        self.inner
            .signatures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Takes a token from the gateway's bucket; false when the request is over the budget.
    fn within_rate_limit(&self) -> bool {
        let Some(rate) = self.inner.cfg.rate_limit else {
            return true;
        };
        let burst = rate.max(1.0);
        let mut bucket = self.inner.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let now = std::time::Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + now.duration_since(last).as_secs_f64() * rate).min(burst);
        // Half a token of tolerance: requests paced exactly at the rate arrive with jitter.
        if tokens >= 0.5 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }

    fn release_hangs(&self) {
        let mut guard = self.inner.release.lock().unwrap_or_else(PoisonError::into_inner);
        guard.cancel();
        *guard = CancellationToken::new();
    }

    fn release_token(&self) -> CancellationToken {
        self.inner
            .release
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The gateway core: counts the request, plays the fault if one is set, else validates the
    /// common parameters in the order of their code numbers and answers the method.
    pub fn handle(&self, params: &[(String, String)]) -> Outcome {
        self.handle_with_token(params, None)
    }

    /// [`Simulator::handle`] for a request that carried `token` in its `authenticator` or
    /// `Ovo-Authorization` header.
    pub fn handle_with_token(&self, params: &[(String, String)], token: Option<&str>) -> Outcome {
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(sig) = param(params, "_sig") {
            let mut sigs = self.inner.signatures.lock().unwrap_or_else(PoisonError::into_inner);
            if sigs.len() >= 10_000 {
                sigs.pop_front();
            }
            sigs.push_back(sig.to_owned());
        }
        let mt = param(params, "_mt").unwrap_or("");
        if let Some(fault) = self.fault() {
            tracing::debug!(method = mt, fault = %fault, "simulated gateway request (fault)");
            return self.fault_outcome(fault);
        }
        if !self.within_rate_limit() {
            tracing::debug!(method = mt, "simulated gateway request over the rate limit");
            return Outcome::Reply(self.envelope(-100, code_description(-100), Value::Null));
        }
        let (code, result, data) = match self.answer(params, token) {
            Ok(data) => (0, code_description(0).to_owned(), data),
            Err(Refusal(code, text)) => (code, text, Value::Null),
        };
        tracing::debug!(method = mt, code, "simulated gateway request");
        Outcome::Reply(self.envelope(code, &result, data))
    }

    fn envelope(&self, code: i64, result: &str, data: Value) -> SimReply {
        let body = json!({
            "stat": {
                "cid": uuid::Uuid::new_v4().to_string(),
                "code": code,
                "codename": codename(code),
                "systime": self.inner.cfg.clock.now().timestamp_millis(),
            },
            "result": result,
            "data": data,
        });
        SimReply {
            status: 200,
            content_type: JSON_CONTENT_TYPE,
            body: body.to_string(),
        }
    }

    fn fault_outcome(&self, fault: Fault) -> Outcome {
        let reply = match fault {
            Fault::Code(code) => self.envelope(code, code_description(code), Value::Null),
            Fault::Http(status) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                SimReply {
                    status: status.as_u16(),
                    content_type: TEXT_CONTENT_TYPE,
                    body: format!("simulated HTTP error {status}\n"),
                }
            }
            Fault::Hang => return Outcome::Hang,
            Fault::Garbage => SimReply {
                status: 200,
                content_type: JSON_CONTENT_TYPE,
                body: "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>\n".to_owned(),
            },
            Fault::Truncated => {
                let full = self.canned_success_body();
                let mut cut = full.len() / 2;
                while !full.is_char_boundary(cut) {
                    cut -= 1;
                }
                SimReply {
                    status: 200,
                    content_type: JSON_CONTENT_TYPE,
                    body: full[..cut].to_owned(),
                }
            }
            Fault::Oversized(kib) => {
                let pad = "x".repeat(kib as usize * 1024);
                let mut reply = self.envelope(0, code_description(0), Value::Array(Vec::new()));
                reply.body = format!("{{\"padding\":\"{pad}\",{}", reply.body.trim_start_matches('{'));
                reply
            }
            Fault::WrongContentType => SimReply {
                status: 200,
                content_type: HTML_CONTENT_TYPE,
                body: "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>System maintenance</h1><p>The service is temporarily unavailable.</p></body></html>\n".to_owned(),
            },
        };
        Outcome::Reply(reply)
    }

    /// A complete success answer for the first configured shop's current day.
    fn canned_success_body(&self) -> String {
        let now = self.inner.cfg.now_local();
        let data = match self.inner.cfg.shops().next() {
            Some(shop) => Value::Array(vec![shop_json(shop, now.date(), now.date(), now)]),
            None => Value::Array(Vec::new()),
        };
        self.envelope(0, code_description(0), data).body
    }

    /// Validation of the common parameters, then the method.
    fn answer(&self, params: &[(String, String)], token: Option<&str>) -> Result<Value, Refusal> {
        let cfg = &self.inner.cfg;
        let present = |name: &str| param(params, name).filter(|v| !v.is_empty());

        let akey = present("_akey").ok_or(Refusal::code(1))?;
        if akey != cfg.app_key {
            return Err(Refusal::code(2));
        }
        let sm = present("_sm").ok_or(Refusal::code(4))?;
        let method: SignMethod = sm.parse().map_err(|_| Refusal::code(5))?;
        let sig = present("_sig").ok_or(Refusal::code(6))?;
        let signed: Vec<(&str, &str)> = params
            .iter()
            .filter(|(k, _)| k != "_sig")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if sign(&signed, &cfg.app_secret, method) != sig {
            return Err(Refusal::code(7));
        }
        let mt = present("_mt").ok_or(Refusal::code(8))?;
        if mt != METHOD_SHOPS && mt != METHOD_DEVICES && mt != METHOD_LOGIN {
            return Err(Refusal::code(9));
        }
        present("_requestMode").ok_or(Refusal::code(10))?;
        let aid = present("_aid").ok_or(Refusal::code(11))?;
        if aid != cfg.aid {
            return Err(Refusal::code(12));
        }
        present("_version").ok_or(Refusal::code(13))?;
        let ts = present("_timestamp").ok_or(Refusal::code(14))?;
        let ts = parse_timestamp(ts).ok_or(Refusal::code(15))?;
        let now = cfg.now_local();
        let skew = (ts - now).abs().to_std().unwrap_or(Duration::MAX);
        if skew > cfg.max_skew {
            return Err(Refusal::code(16));
        }
        if let Some(format) = present("_format") {
            if !format.eq_ignore_ascii_case("json") {
                return Err(Refusal::code(17));
            }
        }
        if let Some(nonce) = present("_nonce") {
            let fresh = self
                .inner
                .nonces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(nonce);
            if !fresh {
                return Err(Refusal::code(-100));
            }
        }

        if mt == METHOD_LOGIN {
            return self.login(present("userName"), present("password"));
        }
        if cfg.require_token {
            let valid = token.is_some_and(|t| {
                self.inner
                    .tokens
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .contains(t)
            });
            if !valid {
                return Err(Refusal::code(TOKEN_NOT_EXIST));
            }
        }
        if let Some(tt) = present("timeType") {
            if tt.trim() != "1" {
                return Err(Refusal::system(format!(
                    "timeType {tt:?} is not simulated (only 1 = hour)"
                )));
            }
        }
        let (start, end) = whole_days(present("startTime"), present("endTime"))?;
        if mt == METHOD_SHOPS {
            let ids = present("id").ok_or_else(|| Refusal::system("id must not be empty"))?;
            let shops = self.match_shops(ids);
            Ok(Value::Array(
                shops.into_iter().map(|s| shop_json(s, start, end, now)).collect(),
            ))
        } else {
            let mac = present("mac").ok_or_else(|| Refusal::system("mac must not be empty"))?;
            let device = self
                .inner
                .device_index
                .get(&normalize_mac(mac))
                .and_then(|i| cfg.devices.get(*i));
            let rows = match device {
                Some(dev) => days(start, end)
                    .map(|hour| {
                        let v = device_hour_as_of(dev, hour, now);
                        json!({
                            "time": hour.format(TIME_FORMAT).to_string(),
                            "passengerFlow": v.walk_in,
                            "outFlowCount": v.walk_out,
                        })
                    })
                    .collect(),
                None => Vec::new(),
            };
            Ok(cfg.device_shape.wrap(rows))
        }
    }

    /// `open.shopweb.security.mobileLogin`: a fresh token for a known account.
    fn login(&self, user: Option<&str>, password: Option<&str>) -> Result<Value, Refusal> {
        let account = self.inner.cfg.users.iter().find(|(u, _)| Some(u.as_str()) == user);
        match account {
            None => Err(Refusal::code(103_094)),
            Some((_, p)) if Some(p.as_str()) != password => Err(Refusal::code(103_095)),
            Some(_) => Ok(json!({"enterpriseId": 1, "token": self.issue_token()})),
        }
    }

    /// The distinct shops named by `ids` (`S_<depId>`, `O_<orgId>`, comma-separated), in the
    /// order they are first named; unknown ids are skipped.
    fn match_shops<'a>(&'a self, ids: &str) -> Vec<&'a SimShop> {
        let inner: &'a Inner = &self.inner;
        let mut seen = HashSet::new();
        let mut out: Vec<&SimShop> = Vec::new();
        let mut push = |shop: &'a SimShop| {
            if seen.insert(shop.dep_id) {
                out.push(shop);
            }
        };
        for id in ids.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (kind, num) = match id.split_once('_') {
                Some((k, n)) => (k.trim().to_ascii_uppercase(), n.trim()),
                None => continue,
            };
            let Ok(num) = num.parse::<u64>() else {
                continue;
            };
            match kind.as_str() {
                "S" => {
                    if let Some(&(o, i)) = inner.shop_index.get(&num) {
                        push(&inner.cfg.orgs[o].shops[i]);
                    }
                }
                "O" => {
                    if let Some(&o) = inner.org_index.get(&num) {
                        inner.cfg.orgs[o].shops.iter().for_each(&mut push);
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The axum router: `POST`/`GET /m.api` (the gateway) and the admin routes
    /// `POST /-/fault`, `GET /-/fault`, `GET /-/requests`, `GET /-/healthy`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/m.api", post(gateway_route).get(gateway_route))
            .route("/-/fault", post(set_fault_route).get(get_fault_route))
            .route("/-/requests", get(requests_route))
            .route("/-/healthy", get(healthy_route))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.clone())
    }

    /// Serves the router on `listener` until `shutdown` completes, then shuts down gracefully
    /// (requests hanging under [`Fault::Hang`] are released first).
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let sim = self.clone();
        let signal = async move {
            shutdown.await;
            sim.release_hangs();
        };
        axum::serve(listener, self.router())
            .with_graceful_shutdown(signal)
            .await
    }

    /// Binds `addr` (port 0 picks a free one) and serves in a background task.
    pub async fn spawn(self, addr: SocketAddr) -> std::io::Result<RunningSimulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(self.clone().serve(listener, async move { signal.cancelled().await }));
        Ok(RunningSimulator {
            addr,
            sim: self,
            stop,
            task,
        })
    }
}

/// A simulator serving in a background task.
pub struct RunningSimulator {
    pub addr: SocketAddr,
    pub sim: Simulator,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("addr", &self.addr)
            .field("sim", &self.sim)
            .finish()
    }
}

impl RunningSimulator {
    /// The gateway URL, `http://{addr}/m.api`.
    pub fn url(&self) -> String {
        format!("http://{}/m.api", self.addr)
    }

    /// Stops serving: graceful shutdown, given up (task aborted) after 5 seconds.
    pub async fn shutdown(mut self) {
        self.stop_listening().await;
    }

    /// Stops serving and closes the port (connections to it are refused) but keeps the
    /// address, so that [`RunningSimulator::listen_again`] can reopen it.
    pub async fn stop_listening(&mut self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }

    /// Serves again on the same address after [`RunningSimulator::stop_listening`].
    pub async fn listen_again(&mut self) -> std::io::Result<()> {
        let listener = tokio::net::TcpListener::bind(self.addr).await?;
        self.stop = CancellationToken::new();
        let signal = self.stop.clone();
        self.task = tokio::spawn(
            self.sim
                .clone()
                .serve(listener, async move { signal.cancelled().await }),
        );
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers: parameters, times, rows
// ---------------------------------------------------------------------------------------------

/// The first value of `name`.
fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `yyyyMMddHHmmss`, exactly 14 digits.
fn parse_timestamp(s: &str) -> Option<NaiveDateTime> {
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(s, TIMESTAMP_FORMAT).ok()
}

/// The gateway's whole-day rule: `yyyy-MM-dd 00:00:00` .. `yyyy-MM-dd 23:59:59`, end date not
/// before start date, at most [`MAX_DAYS`] days.
fn whole_days(start: Option<&str>, end: Option<&str>) -> Result<(NaiveDate, NaiveDate), Refusal> {
    let start_s = start.ok_or_else(|| Refusal::system("startTime must not be empty"))?;
    let end_s = end.ok_or_else(|| Refusal::system("endTime must not be empty"))?;
    let start = NaiveDateTime::parse_from_str(start_s.trim(), TIME_FORMAT)
        .map_err(|_| Refusal::system(format!("startTime {start_s:?} is not yyyy-MM-dd HH:mm:ss")))?;
    let end = NaiveDateTime::parse_from_str(end_s.trim(), TIME_FORMAT)
        .map_err(|_| Refusal::system(format!("endTime {end_s:?} is not yyyy-MM-dd HH:mm:ss")))?;
    if start.time() != NaiveTime::MIN {
        return Err(Refusal::system(format!(
            "startTime {start_s:?} must be a whole day (yyyy-MM-dd 00:00:00)"
        )));
    }
    if end.time() != NaiveTime::from_hms_opt(23, 59, 59).unwrap_or(NaiveTime::MIN) {
        return Err(Refusal::system(format!(
            "endTime {end_s:?} must be a whole day (yyyy-MM-dd 23:59:59)"
        )));
    }
    let (start, end) = (start.date(), end.date());
    if end < start {
        return Err(Refusal::system("endTime is before startTime"));
    }
    if (end - start).num_days() + 1 > MAX_DAYS {
        return Err(Refusal::system(format!("at most {MAX_DAYS} days can be asked at once")));
    }
    Ok((start, end))
}

/// Every hour start of the days `start..=end`.
fn days(start: NaiveDate, end: NaiveDate) -> impl Iterator<Item = NaiveDateTime> {
    start
        .iter_days()
        .take_while(move |d| *d <= end)
        .flat_map(|d| (0..24u32).filter_map(move |h| d.and_hms_opt(h, 0, 0)))
}

fn number(v: u64, as_string: bool) -> Value {
    if as_string {
        Value::String(v.to_string())
    } else {
        Value::from(v)
    }
}

fn rate(v: f64, as_string: bool) -> Value {
    if as_string {
        Value::String(format!("{v:.2}"))
    } else {
        Value::from(v)
    }
}

fn shop_json(shop: &SimShop, start: NaiveDate, end: NaiveDate, now: NaiveDateTime) -> Value {
    let s = shop.numbers_as_strings;
    let rows: Vec<Value> = days(start, end)
        .map(|hour| {
            let v = shop_hour_as_of(shop, hour, now);
            let mut row = Map::new();
            row.insert("time".into(), Value::String(hour.format(TIME_FORMAT).to_string()));
            row.insert("passengerFlow".into(), number(v.walk_in, s));
            row.insert("passPassengerFlow".into(), number(v.passing, s));
            row.insert("outSidePassengerFlow".into(), number(v.outside(), s));
            row.insert("inShopRate".into(), rate(v.walk_in_rate_percent(), s));
            row.insert("outFlowCount".into(), number(v.walk_out, s));
            if let Some(fitting) = v.fitting_rate_percent() {
                row.insert("dressingRate".into(), rate(fitting, s));
            }
            row.insert("duplicatedFlow".into(), number(0, s));
            Value::Object(row)
        })
        .collect();
    json!({
        "name": shop.name,
        "depId": shop.dep_id,
        "shopId": shop.code,
        "dataList": rows,
    })
}

/// Decodes `application/x-www-form-urlencoded` (also a query string): `+` is a space, `%XX` a
/// byte; malformed escapes are kept literally; invalid UTF-8 is replaced.
pub fn parse_form(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &[u8]) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let decoded = match (s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
                    (Some(h), Some(l)) => Some(h * 16 + l),
                    _ => None,
                };
                match decoded {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Query-string parameters followed by body parameters.
fn request_params(uri: &Uri, body: &[u8]) -> Vec<(String, String)> {
    let mut params = uri.query().map(|q| parse_form(q.as_bytes())).unwrap_or_default();
    params.extend(parse_form(body));
    params
}

// ---------------------------------------------------------------------------------------------
// The axum layer
// ---------------------------------------------------------------------------------------------

async fn gateway_route(State(sim): State<Simulator>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    let params = request_params(&uri, &body);
    let token = TOKEN_HEADERS
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .filter(|t| !t.is_empty());
    match sim.handle_with_token(&params, token) {
        Outcome::Reply(reply) => reply.into_response(),
        Outcome::Hang => {
            let release = sim.release_token();
            tokio::select! {
                _ = tokio::time::sleep(HANG_FOR) => {}
                _ = release.cancelled() => {}
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)],
                "hang released\n",
            )
                .into_response()
        }
    }
}

async fn set_fault_route(State(sim): State<Simulator>, uri: Uri, body: Bytes) -> Response {
    let params = request_params(&uri, &body);
    let Some(value) = param(&params, "fault") else {
        return (StatusCode::BAD_REQUEST, "missing form field `fault`\n").into_response();
    };
    match Fault::parse(value) {
        Ok(fault) => {
            sim.set_fault(fault);
            let text = fault.map_or_else(|| "none".to_owned(), |f| f.to_string());
            (StatusCode::OK, format!("fault: {text}\n")).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

async fn get_fault_route(State(sim): State<Simulator>) -> String {
    sim.fault().map_or_else(|| "none".to_owned(), |f| f.to_string())
}

async fn requests_route(State(sim): State<Simulator>) -> String {
    sim.requests().to_string()
}

async fn healthy_route() -> &'static str {
    "ok\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// 2024-03-15 (a Friday) 14:30:00 in Shanghai.
    fn clock() -> Clock {
        Clock::manual(Utc.with_ymd_and_hms(2024, 3, 15, 6, 30, 0).single().unwrap())
    }

    fn sim() -> Simulator {
        Simulator::new(SimConfig::demo(clock()))
    }

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    fn common(sim: &Simulator, mt: &str) -> Vec<(String, String)> {
        let cfg = sim.config();
        let ts = cfg.now_local().format(TIMESTAMP_FORMAT).to_string();
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

    fn with_sig(sim: &Simulator, mut params: Vec<(String, String)>) -> Vec<(String, String)> {
        let method: SignMethod = param(&params, "_sm").unwrap_or("md5").parse().unwrap_or_default();
        let sig = sign(&params, &sim.config().app_secret, method);
        params.push(("_sig".into(), sig));
        params
    }

    fn request(sim: &Simulator, mt: &str, business: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut p = common(sim, mt);
        p.extend(business.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        with_sig(sim, p)
    }

    fn shops_request(sim: &Simulator, id: &str) -> Vec<(String, String)> {
        request(
            sim,
            METHOD_SHOPS,
            &[
                ("id", id),
                ("startTime", "2024-03-15 00:00:00"),
                ("endTime", "2024-03-15 23:59:59"),
                ("timeType", "1"),
            ],
        )
    }

    fn reply(o: Outcome) -> SimReply {
        match o {
            Outcome::Reply(r) => r,
            Outcome::Hang => panic!("unexpected hang"),
        }
    }

    fn call(sim: &Simulator, params: &[(String, String)]) -> Value {
        let r = reply(sim.handle(params));
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, JSON_CONTENT_TYPE);
        r.json()
    }

    fn code_of(v: &Value) -> i64 {
        v["stat"]["code"].as_i64().unwrap()
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

    fn demo_shop(dep_id: u64) -> SimShop {
        sim().config().shop(dep_id).unwrap().clone()
    }

    #[test]
    fn demo_config_is_as_described() {
        let cfg = SimConfig::demo(clock());
        assert_eq!(
            (cfg.app_key.as_str(), cfg.app_secret.as_str(), cfg.aid.as_str()),
            ("demo", "demo-secret", "S107")
        );
        assert_eq!(cfg.orgs.len(), 2);
        assert_eq!((cfg.orgs[0].org_id, cfg.orgs[0].shops.len()), (1001, 12));
        assert_eq!((cfg.orgs[1].org_id, cfg.orgs[1].shops.len()), (1002, 8));
        let ids: Vec<u64> = cfg.shops().map(|s| s.dep_id).collect();
        assert_eq!(ids, (9601..=9620).collect::<Vec<_>>());
        assert!(cfg.shops().any(|s| s.code.is_empty()) && cfg.shops().any(|s| s.code == "SH-001"));
        assert_eq!(cfg.shops().filter(|s| !s.has_fitting_room).count(), 5);
        assert_eq!(cfg.shops().filter(|s| s.numbers_as_strings).count(), 6);
        assert_eq!(cfg.devices.len(), 10);
        assert_eq!(cfg.devices[0].mac, "d47c44906f01");
        assert_eq!(cfg.devices[9].mac, "d47c44906f0a");
        assert!(cfg.devices.iter().all(|d| cfg.shop(d.dep_id).is_some()));
        assert_eq!(cfg.max_skew, Duration::from_secs(600));
    }

    #[test]
    fn traffic_model_is_deterministic_and_plausible() {
        let shop = demo_shop(9601);
        let noon = at("2024-03-15 12:00:00");
        assert_eq!(shop_hour(&shop, noon), shop_hour(&shop, noon));
        // Minutes are ignored.
        assert_eq!(shop_hour(&shop, at("2024-03-15 12:34:56")), shop_hour(&shop, noon));
        let h = shop_hour(&shop, noon);
        assert!(h.walk_in > 10, "{h:?}");
        assert!(h.passing >= 2 * h.walk_in);
        assert!(h.walk_out + 1 >= h.walk_in * 9 / 10 && h.walk_out <= h.walk_in * 106 / 100);
        assert!(h.fitting.unwrap() <= h.walk_in);
        let night = shop_hour(&shop, at("2024-03-15 03:00:00"));
        assert_eq!(night.walk_in, 0);
        assert_eq!(night.walk_in_rate_percent(), 0.0);
        assert_eq!(night.fitting_rate_percent(), Some(0.0));
        let no_room = demo_shop(9604);
        assert!(!no_room.has_fitting_room);
        assert_eq!(shop_hour(&no_room, noon).fitting, None);
        assert_eq!(shop_hour(&no_room, noon).fitting_rate_percent(), None);
        // Different shops, different days differ.
        assert_ne!(shop_hour(&demo_shop(9602), noon), h);
        assert_ne!(shop_hour(&shop, at("2024-03-16 12:00:00")), h);
        let dev = sim().config().devices[0].clone();
        let dev = &dev;
        let d = device_hour(dev, noon);
        assert_eq!(d, device_hour(dev, noon));
        assert!(d.walk_in > 0);
    }

    #[test]
    fn rates_round_to_two_decimals() {
        let h = SimShopHour {
            walk_in: 1,
            passing: 2,
            walk_out: 1,
            fitting: Some(2),
        };
        assert_eq!(h.outside(), 3);
        assert_eq!(h.walk_in_rate_percent(), 33.33);
        assert_eq!(h.fitting_rate_percent(), Some(200.0));
        let h = SimShopHour {
            walk_in: 2,
            passing: 1,
            walk_out: 0,
            fitting: Some(1),
        };
        assert_eq!(h.walk_in_rate_percent(), 66.67);
        assert_eq!(h.fitting_rate_percent(), Some(50.0));
        assert_eq!(SimShopHour::default().walk_in_rate_percent(), 0.0);
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
            shop_hour_as_of(&shop, at("2024-03-15 14:00:00"), at("2024-03-15 14:30:00"))
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

    fn device_request(sim: &Simulator, mac: &str) -> Vec<(String, String)> {
        request(
            sim,
            METHOD_DEVICES,
            &[
                ("mac", mac),
                ("startTime", "2024-03-15 00:00:00"),
                ("endTime", "2024-03-15 23:59:59"),
                ("timeType", "1"),
                ("isOnBusinessTime", "0"),
            ],
        )
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
    fn fault_parsing() {
        assert_eq!(Fault::parse("none"), Ok(None));
        assert_eq!(Fault::parse("code:9990001"), Ok(Some(Fault::Code(9_990_001))));
        assert_eq!(Fault::parse("code:-100"), Ok(Some(Fault::Code(-100))));
        assert_eq!(Fault::parse("http:502"), Ok(Some(Fault::Http(502))));
        assert_eq!(Fault::parse("hang"), Ok(Some(Fault::Hang)));
        assert_eq!(Fault::parse("garbage"), Ok(Some(Fault::Garbage)));
        assert_eq!(Fault::parse("truncated"), Ok(Some(Fault::Truncated)));
        assert_eq!(Fault::parse("wrong_content_type"), Ok(Some(Fault::WrongContentType)));
        for bad in ["code:x", "http:70000", "http:42", "explode"] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
        for f in [
            Fault::Code(7),
            Fault::Http(500),
            Fault::Hang,
            Fault::Garbage,
            Fault::Truncated,
            Fault::WrongContentType,
        ] {
            assert_eq!(Fault::parse(&f.to_string()), Ok(Some(f)));
        }
    }

    #[test]
    fn form_decoding() {
        let p = parse_form(b"a=1&b=x+y%20z&&c=&d&e=%E4%B8%AD&f=100%&g=%zz");
        let expected = [
            ("a", "1"),
            ("b", "x y z"),
            ("c", ""),
            ("d", ""),
            ("e", "中"),
            ("f", "100%"),
            ("g", "%zz"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(p, expected);
    }

    fn encode(params: &[(String, String)]) -> String {
        fn enc(s: &str) -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
                    b' ' => "+".to_string(),
                    b => format!("%{b:02X}"),
                })
                .collect()
        }
        params
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A minimal HTTP/1.1 exchange; returns (status, headers, body).
    async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, head.to_ascii_lowercase(), body.to_string())
    }

    #[tokio::test]
    async fn over_http() {
        let running = sim().spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = running.addr;
        assert_eq!(running.url(), format!("http://{addr}/m.api"));
        let sim = running.sim.clone();

        let (status, head, body) = http(addr, "POST", "/m.api", &encode(&shops_request(&sim, "O_1001"))).await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: application/json;charset=utf-8"), "{head}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code_of(&v), 0);
        assert_eq!(v["data"].as_array().unwrap().len(), 12);

        // GET with a query string.
        let path = format!("/m.api?{}", encode(&device_request(&sim, "d47c44906f01")));
        let (status, _, body) = http(addr, "GET", &path, "").await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code_of(&v), 0);
        assert_eq!(v["data"]["dataList"].as_array().unwrap().len(), 24);

        // A gateway error is still HTTP 200.
        let (status, _, body) = http(addr, "POST", "/m.api", "_akey=").await;
        assert_eq!(status, 200);
        assert_eq!(code_of(&serde_json::from_str(&body).unwrap()), 1);

        // Admin routes.
        assert_eq!(http(addr, "GET", "/-/healthy", "").await.0, 200);
        let (status, _, body) = http(addr, "GET", "/-/requests", "").await;
        assert_eq!((status, body.trim()), (200, "3"));
        assert_eq!(http(addr, "POST", "/-/fault", "fault=bogus").await.0, 400);
        assert_eq!(http(addr, "POST", "/-/fault", "").await.0, 400);
        assert_eq!(http(addr, "POST", "/-/fault", "fault=http%3A502").await.0, 200);
        assert_eq!(sim.fault(), Some(Fault::Http(502)));
        let (status, _, body) = http(addr, "POST", "/m.api", "").await;
        assert_eq!(status, 502);
        assert!(!body.is_empty());
        assert_eq!(http(addr, "POST", "/-/fault", "fault=wrong_content_type").await.0, 200);
        let (status, head, _) = http(addr, "POST", "/m.api", "").await;
        assert_eq!(status, 200);
        assert!(head.contains("content-type: text/html"));

        // A hanging request does not block others, and shutdown releases it.
        assert_eq!(http(addr, "POST", "/-/fault", "fault=hang").await.0, 200);
        let hung = tokio::spawn(async move { http(addr, "POST", "/m.api", "").await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!hung.is_finished());
        assert_eq!(http(addr, "GET", "/-/healthy", "").await.0, 200);
        assert_eq!(http(addr, "GET", "/-/fault", "").await.2, "hang");

        tokio::time::timeout(Duration::from_secs(10), running.shutdown())
            .await
            .unwrap();
        let (status, _, _) = tokio::time::timeout(Duration::from_secs(5), hung)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(status, 503);
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
    #[test]
    fn a_large_tenant_is_indexed_and_answers_batches() {
        let sim = Simulator::new(SimConfig::large(clock(), 250, 10));
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
}
