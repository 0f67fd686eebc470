//! The simulated tenant: who the gateway knows (app key, secret, `_aid`, accounts), which
//! organisations, shops and counting devices it holds (and what each shop's counters can count:
//! face devices, an outside counter, a late uploader), and how it behaves (device answer shape,
//! which fields a shop row carries, clock and its skew, allowed `_timestamp` skew, token
//! requirement, rate limit, the longest `id` and the largest answer it accepts to send, and the
//! conventions the vendor's pages leave open: row time labels, rate scale, field names, late
//! uploads). It also builds the two ready-made
//! tenants (`demo` for `opretail-exporter demo`, `large` for benchmarks, with organisations of
//! any size) and the exporter configuration that polls a tenant, so that the wiring of `demo`
//! need not know the tenant's insides. Nothing here answers requests; the request core reads
//! this as plain data.

use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use reqwest::Url;

use super::limits::RateRule;
use super::times::GATEWAY_TZ;
use crate::config::{Config, GatewayConfig, ShopTarget, DEFAULT_HOUR_DELAY, DEFAULT_STALE_AFTER};
use crate::model::{Clock, DeviceTarget, TargetId};

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
    /// The simulator's "now". The gateway's own clock runs [`SimConfig::clock_skew`] ahead of it
    /// ([`SimConfig::gateway_now`]), and that decides which hours are complete, in progress or
    /// still to come, and what `_timestamp` is fresh.
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
    /// How the request budget counts (the vendor does not say).
    pub rate_rule: RateRule,
    /// How the shops method reads `endhour`: the vendor's page gives `starthour` (default 0)
    /// and `endhour` (default 24) without saying whether `endhour` itself is answered. With
    /// `false` the rows are the hours `starthour..endhour`, with `true` `starthour..=endhour`.
    pub end_hour_inclusive: bool,
    /// Which fields a row of the shops method carries (and so how many bytes it weighs).
    pub row_detail: RowDetail,
    /// The largest answer the shops method sends, in bytes of the whole JSON body (envelope
    /// included). A successful answer that would be larger is refused instead with the
    /// simulator's stand-in code 400002 DATA_TOO_LARGE (the vendor documents no such limit
    /// and no code for it). `None`: no limit.
    pub max_answer_bytes: Option<usize>,
    /// The longest `id` parameter the shops method accepts, in characters as received (commas
    /// and blanks included). A longer one is refused before any work with the simulator's
    /// stand-in code 400001 PARAM_TOO_LONG. The method's page gives `id` a maximum length of
    /// 100 without saying what happens beyond it. `None`: no limit.
    pub max_id_chars: Option<usize>,
    /// Which moment of its hour an hourly row's `time` names (day rows always name their day's
    /// `00:00:00`).
    pub row_time: SimRowTime,
    /// How `inShopRate` and `dressingRate` are written: percentages or ratios.
    pub rate_scale: SimRateScale,
    /// Row fields sent under another name than the documented one, in both methods' hourly and
    /// day rows: (documented name, name sent), e.g. `("passPassengerFlow", "passFlow")`.
    /// Applied in order, after the row is written; a field the row does not carry is not
    /// added.
    pub renamed_fields: Vec<(String, String)>,
    /// Seconds the gateway's clock runs ahead (+) or behind (−) `clock`. `stat.systime`, the
    /// `_timestamp` freshness check and which hours are complete or in progress all use
    /// [`SimConfig::gateway_now`], `clock`'s now plus this.
    pub clock_skew: i64,
    /// For shops with [`SimShop::late_uploader`]: how long after an hour's end its full counts
    /// arrive. Until then the complete hour shows half its counts (a second counter of the shop
    /// uploads late, and the gateway revises the past hour when it does). `None`: every hour is
    /// complete as soon as it ends, late uploaders included.
    pub late_upload: Option<Duration>,
}

/// Which moment of its hour an hourly row's `time` names. FACTS.md infers the start (both
/// public integrations read it so), but the page's only example, `2021-11-14 01:00:00`, does
/// not rule out the end. `starthour`/`endhour` select the hours by their start either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimRowTime {
    /// The hour 13:00–14:00 is labelled `13:00:00`.
    #[default]
    Start,
    /// The hour 13:00–14:00 is labelled `14:00:00`; the last hour of a day is labelled the next
    /// day's `00:00:00`.
    End,
}

/// How `inShopRate` (walk-in rate) and `dressingRate` (fitting rate) are written. FACTS.md
/// saw percentages (`8.14`) in one live integration; the vendor's page gives a formula with
/// `*100%` that reads either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimRateScale {
    /// A percentage rounded to 2 decimals: `8.16`.
    #[default]
    Percent,
    /// A ratio from 0 to 1 rounded to 4 decimals: `0.0816`.
    Fraction,
}

impl SimRateScale {
    /// A rate given in percent (2 decimals, as [`super::SimShopHour::walk_in_rate_percent`]
    /// gives it) as this scale writes it: unchanged, or divided by 100 (4 decimals).
    pub fn of_percent(self, percent: f64) -> f64 {
        match self {
            SimRateScale::Percent => percent,
            SimRateScale::Fraction => (percent * 100.0).round() / 10_000.0,
        }
    }
}

/// Which fields a row of the shops method carries.
///
/// The vendor's page for `getManyShopsPassengerIndicatorData` documents `time`,
/// `passengerFlow`, `passPassengerFlow`, `outSidePassengerFlow`, `inShopRate`, `outFlowCount`
/// and `dressingRate` per row, and `name`, `depId` and `shopId` per shop. Two more row fields
/// are answered by the live gateway without being documented (FACTS.md, "sometimes"):
/// `duplicatedFlow` (the flow before de-duplication) and `inCountHavingPassDevice` (walk-ins
/// counted by shops that have a passing counter). Both are read by a public ETL integration of
/// the gateway (a Python 万店掌 passenger-flow ODS loader, whose hourly table stores exactly the
/// nine row fields above; the search index did not name its repository). No further row or
/// shop field was found in public integrations or in the vendor's SDKs, so none is invented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RowDetail {
    /// The fields the simulator has always sent: the documented ones (no `dressingRate`
    /// without a fitting room) plus `duplicatedFlow`.
    Lean,
    /// Every field a live row is known to carry: [`RowDetail::Lean`] plus
    /// `inCountHavingPassDevice` (every simulated shop has a passing counter, so it equals
    /// `passengerFlow`). Realistic byte sizes.
    #[default]
    Full,
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
    /// The shop counts with face-counting devices: its rows (hourly and day) carry no
    /// `outFlowCount` (face devices cannot count walk-outs), and a day row's walk-in is
    /// de-duplicated (a person seen in several hours counts once), so it is below the sum of
    /// the day's hours.
    pub face_device: bool,
    /// An outside (passing) counter is bound to the shop. Without one its rows carry no
    /// `passPassengerFlow`, `outSidePassengerFlow` or `inShopRate`, and
    /// `inCountHavingPassDevice` is 0.
    pub outside_counter: bool,
    /// The shop's complete hours show half their counts until [`SimConfig::late_upload`] after
    /// the hour's end (no effect while that is `None`).
    pub late_uploader: bool,
}

/// One counting device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    /// 12 lower-case hex digits.
    pub mac: String,
    pub dep_id: u64,
    pub name: String,
    /// A face-counting device: its rows carry no `outFlowCount`.
    pub face_device: bool,
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
    #[cfg(test)]
    /// Every shape, for tests that try them all.
    pub(crate) const ALL: [DeviceShape; 5] = [
        DeviceShape::BareList,
        DeviceShape::DataList,
        DeviceShape::List,
        DeviceShape::Rows,
        DeviceShape::Data,
    ];
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
                        face_device: false,
                        outside_counter: true,
                        late_uploader: false,
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
                face_device: false,
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
            rate_rule: RateRule::default(),
            end_hour_inclusive: false,
            row_detail: RowDetail::Full,
            max_answer_bytes: None,
            max_id_chars: None,
            row_time: SimRowTime::Start,
            rate_scale: SimRateScale::Percent,
            renamed_fields: Vec::new(),
            clock_skew: 0,
            late_upload: None,
        }
    }

    /// A large tenant for benchmarks: `shops` shops in organisations of `org_size` shops each
    /// (`O_2001`, `O_2002`, …; the last one holds what is left; an `org_size` of 0 counts as
    /// 1), dep ids from 100001, and `devices` devices (macs `0a0000000000` + index) spread
    /// round-robin over the shops. Same key, secret, traffic model and settings as the demo.
    pub fn large(clock: Clock, shops: u64, devices: u64, org_size: u64) -> Self {
        let size = org_size.max(1);
        let mut cfg = SimConfig::demo(clock);
        cfg.orgs = (0..shops.div_ceil(size))
            .map(|o| SimOrg {
                org_id: 2001 + o,
                name: format!("Region {}", o + 1),
                shops: (o * size..((o + 1) * size).min(shops))
                    .map(|i| SimShop {
                        dep_id: 100_001 + i,
                        name: format!("Shop {}", i + 1),
                        code: format!("L-{:05}", i + 1),
                        has_fitting_room: i % 4 != 3,
                        numbers_as_strings: i % 3 == 2,
                        face_device: false,
                        outside_counter: true,
                        late_uploader: false,
                    })
                    .collect(),
            })
            .collect();
        cfg.devices = (0..devices)
            .map(|i| SimDevice {
                mac: format!("0a{:010x}", i),
                dep_id: 100_001 + if shops == 0 { 0 } else { i % shops },
                name: format!("Counter {}", i + 1),
                face_device: false,
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

    /// The gateway's now: `clock`'s now plus [`SimConfig::clock_skew`] (unchanged if the sum
    /// is out of range).
    pub fn gateway_now(&self) -> DateTime<Utc> {
        let now = self.clock.now();
        TimeDelta::try_seconds(self.clock_skew)
            .and_then(|skew| now.checked_add_signed(skew))
            .unwrap_or(now)
    }

    /// The gateway's now ([`SimConfig::gateway_now`], clock skew included) as gateway
    /// (Asia/Shanghai) wall time.
    pub fn now_local(&self) -> NaiveDateTime {
        self.gateway_now().with_timezone(&GATEWAY_TZ).naive_local()
    }

    /// The exporter configuration that polls this tenant at `url` (what `demo` runs with):
    /// every organisation (each with a `region` label) and device, shops in gateway time
    /// (Asia/Shanghai), polled every minute, the other settings at their defaults.
    pub fn exporter_config(&self, url: Url) -> Config {
        Config {
            gateway: GatewayConfig::new(url, self.app_key.clone(), self.app_secret.clone()),
            timezone: GATEWAY_TZ,
            poll_interval: Duration::from_secs(60),
            stale_after: DEFAULT_STALE_AFTER,
            hour_delay: DEFAULT_HOUR_DELAY,
            device_poll_interval: std::time::Duration::from_secs(3600),
            max_catch_up_hours: 6,
            baseline: crate::config::BaselineConfig::default(),
            sharding: None,
            calendar: Default::default(),
            shop_overrides: Default::default(),
            shops: self
                .orgs
                .iter()
                .enumerate()
                .map(|(n, o)| ShopTarget {
                    // A region per organisation, so that the dashboards' region picker and the
                    // alert routes by region have something to show.
                    labels: vec![("region".to_string(), DEMO_REGIONS[n % DEMO_REGIONS.len()].to_string())].into(),
                    ..ShopTarget::new(TargetId::Org(o.org_id))
                })
                .collect(),
            devices: self
                .devices
                .iter()
                .map(|d| DeviceTarget {
                    mac: d.mac.clone(),
                    name: Some(d.name.clone()),
                    shop_id: Some(d.dep_id.to_string()),
                })
                .collect(),
        }
    }
}

/// The `region` labels the demo's organisations take in turn.
const DEMO_REGIONS: [&str; 5] = ["east", "north", "south", "west", "central"];

/// A mac as the gateway compares it: `:`, `-` and blanks dropped, lower case.
pub(crate) fn normalize_mac(mac: &str) -> String {
    mac.chars()
        .filter(|c| *c != ':' && *c != '-' && !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    /// 2024-03-15 (a Friday) 14:30:00 in Shanghai.
    fn clock() -> Clock {
        Clock::manual(Utc.with_ymd_and_hms(2024, 3, 15, 6, 30, 0).single().unwrap())
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
        assert_eq!(cfg.row_detail, RowDetail::Full);
        assert_eq!((cfg.max_answer_bytes, cfg.max_id_chars), (None, None));
    }

    #[test]
    fn large_tenants_come_in_organisations_of_any_size() {
        let sizes =
            |cfg: &SimConfig| -> Vec<(u64, usize)> { cfg.orgs.iter().map(|o| (o.org_id, o.shops.len())).collect() };
        let cfg = SimConfig::large(clock(), 250, 0, 100);
        assert_eq!(sizes(&cfg), [(2001, 100), (2002, 100), (2003, 50)]);
        assert_eq!(cfg.row_detail, RowDetail::Full);
        let one = SimConfig::large(clock(), 10_000, 0, 10_000);
        assert_eq!(sizes(&one), [(2001, 10_000)]);
        assert_eq!(one.orgs[0].shops.first().map(|s| s.dep_id), Some(100_001));
        assert_eq!(one.orgs[0].shops.last().map(|s| s.dep_id), Some(110_000));
        let ids: Vec<u64> = SimConfig::large(clock(), 7, 0, 3).shops().map(|s| s.dep_id).collect();
        assert_eq!(ids, (100_001..=100_007).collect::<Vec<_>>());
        assert_eq!(
            sizes(&SimConfig::large(clock(), 7, 0, 3)),
            [(2001, 3), (2002, 3), (2003, 1)]
        );
        assert_eq!(
            sizes(&SimConfig::large(clock(), 3, 0, 0)),
            [(2001, 1), (2002, 1), (2003, 1)],
            "0 counts as 1"
        );
        assert_eq!(sizes(&SimConfig::large(clock(), 5, 0, 50)), [(2001, 5)]);
        assert!(SimConfig::large(clock(), 0, 0, 100).orgs.is_empty());
    }

    #[test]
    fn the_exporter_config_polls_every_org_and_device() {
        use secrecy::ExposeSecret;

        let sim = SimConfig::demo(clock());
        let url: Url = "http://127.0.0.1:9/m.api".parse().unwrap();
        let cfg = sim.exporter_config(url.clone());
        assert_eq!(cfg.gateway.url, url);
        assert_eq!(cfg.gateway.app_key, "demo");
        assert_eq!(cfg.gateway.app_secret.expose_secret(), "demo-secret");
        assert_eq!(cfg.gateway.aid, sim.aid);
        assert_eq!(cfg.timezone, chrono_tz::Asia::Shanghai);
        assert_eq!(cfg.poll_interval, Duration::from_secs(60));
        assert_eq!(
            (cfg.stale_after, cfg.hour_delay),
            (DEFAULT_STALE_AFTER, DEFAULT_HOUR_DELAY)
        );
        assert_eq!(cfg.sharding, None);
        let shops: Vec<TargetId> = cfg.shops.iter().map(|s| s.id.clone()).collect();
        assert_eq!(shops, [TargetId::Org(1001), TargetId::Org(1002)]);
        assert_eq!(cfg.devices.len(), 10);
        assert_eq!(
            cfg.devices[2],
            DeviceTarget {
                mac: "d47c44906f03".to_owned(),
                name: Some("Entrance A".to_owned()),
                shop_id: Some("9602".to_owned()),
            }
        );
    }
}
