//! What the simulated gateway sends back, byte for byte: the envelope every answer shares
//! (`stat` with `cid`, `code`, `codename` and `systime` from the gateway's skewed clock;
//! `result`; `data`), a shop's hourly or day rows ([`Rows`]) with the field names and quirks of
//! the live gateway (`outSidePassengerFlow` with a capital S, rates as percentages, numbers as
//! strings for some shops, no `dressingRate` without a fitting room, no `outFlowCount` from face
//! devices, no passing, outside or walk-in rate without an outside counter, the undocumented
//! fields only under [`super::RowDetail::Full`]), and device rows in each [`DeviceShape`]. The
//! tenant's conventions are applied here: an hourly row's `time` names the start or the end of
//! its hour ([`SimRowTime`]), a day row's its day's `00:00:00`, and fields are renamed last. The
//! request core decides *what* to answer; this module only writes it down.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};

use super::codes::codename;
use super::day::{device_day_counts, shop_day_counts};
use super::tenant::{DeviceShape, SimConfig, SimDevice, SimRowTime, SimShop};
use super::times::{days, each_day, HourWindow, TIME_FORMAT};
use super::traffic::{device_hour_as_of, shop_hour_as_of, SimDeviceHour, SimShopHour};

/// Content type of every gateway answer (errors included), as the real gateway sends it.
pub(crate) const JSON_CONTENT_TYPE: &str = "application/json;charset=UTF-8";
/// Content type of plain-text answers (HTTP errors, released hangs).
pub(crate) const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";
/// Content type of HTML error pages.
pub(crate) const HTML_CONTENT_TYPE: &str = "text/html;charset=UTF-8";

/// What the gateway core decided to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Reply(SimReply),
    /// Never answer ([`super::Fault::Hang`]).
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

/// HTTP 200, the gateway envelope with `code` (and its codename), `result` and `data`; `systime`
/// is `now` (the gateway's, [`super::SimConfig::gateway_now`]) in milliseconds.
pub(crate) fn envelope(now: DateTime<Utc>, code: i64, result: &str, data: Value) -> SimReply {
    let body = json!({
        "stat": {
            "cid": uuid::Uuid::new_v4().to_string(),
            "code": code,
            "codename": codename(code),
            "systime": now.timestamp_millis(),
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

/// Which rows a call asks for: one per hour of its days (`timeType=1`, the shops method within
/// an hour window) or one per day (`timeType=2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    Hourly(HourWindow),
    Daily,
}

impl Rows {
    /// How many rows one shop (or device) has for the days `start..=end`.
    pub(crate) fn count(self, start: NaiveDate, end: NaiveDate) -> u64 {
        match self {
            Rows::Hourly(hours) => days(start, end, hours).count() as u64,
            Rows::Daily => each_day(start, end).count() as u64,
        }
    }
}

/// The `time` of the hourly row of the hour starting at `hour`: its start, or its end under
/// [`SimRowTime::End`].
fn hour_label(hour: NaiveDateTime, row_time: SimRowTime) -> String {
    let label = match row_time {
        SimRowTime::Start => hour,
        SimRowTime::End => hour.checked_add_signed(TimeDelta::hours(1)).unwrap_or(hour),
    };
    label.format(TIME_FORMAT).to_string()
}

/// The `time` of a day row: the day's `00:00:00`.
fn day_label(date: NaiveDate) -> String {
    date.and_time(NaiveTime::MIN).format(TIME_FORMAT).to_string()
}

/// `row` with its `time`, its fields renamed as `cfg` says.
fn finish(mut row: Map<String, Value>, time: String, cfg: &SimConfig) -> Value {
    row.insert("time".into(), Value::String(time));
    for (from, to) in &cfg.renamed_fields {
        if let Some(value) = row.remove(from) {
            row.insert(to.clone(), value);
        }
    }
    Value::Object(row)
}

/// A shop of the shops method's `data`: its name, ids and its `rows` for `start..=end` as the
/// gateway of `cfg` shows them at `now` (gateway wall time).
pub(crate) fn shop_json(
    cfg: &SimConfig,
    shop: &SimShop,
    start: NaiveDate,
    end: NaiveDate,
    rows: Rows,
    now: NaiveDateTime,
) -> Value {
    let row = |counts: SimShopHour, time: String| {
        let mut row = Map::new();
        counts.write_fields(&mut row, shop, cfg.row_detail, cfg.rate_scale);
        finish(row, time, cfg)
    };
    let rows: Vec<Value> = match rows {
        Rows::Hourly(hours) => days(start, end, hours)
            .map(|hour| {
                let counts = shop_hour_as_of(shop, hour, now, cfg.late_upload);
                row(counts, hour_label(hour, cfg.row_time))
            })
            .collect(),
        Rows::Daily => each_day(start, end)
            .map(|date| row(shop_day_counts(shop, date, now, cfg.late_upload), day_label(date)))
            .collect(),
    };
    json!({
        "name": shop.name,
        "depId": shop.dep_id,
        "shopId": shop.code,
        "dataList": rows,
    })
}

/// The device method's rows for `dev` (none for an unknown device): its `rows` for
/// `start..=end` as the gateway of `cfg` shows them at `now`.
pub(crate) fn device_rows(
    cfg: &SimConfig,
    dev: Option<&SimDevice>,
    start: NaiveDate,
    end: NaiveDate,
    rows: Rows,
    now: NaiveDateTime,
) -> Vec<Value> {
    let Some(dev) = dev else {
        return Vec::new();
    };
    let row = |counts: SimDeviceHour, time: String| {
        let mut row = Map::new();
        counts.write_fields(&mut row, dev);
        finish(row, time, cfg)
    };
    match rows {
        Rows::Hourly(hours) => days(start, end, hours)
            .map(|hour| row(device_hour_as_of(dev, hour, now), hour_label(hour, cfg.row_time)))
            .collect(),
        Rows::Daily => each_day(start, end)
            .map(|date| row(device_day_counts(dev, date, now), day_label(date)))
            .collect(),
    }
}

impl DeviceShape {
    /// The device method's `data` holding `rows` in this shape.
    pub(crate) fn wrap(self, rows: Vec<Value>) -> Value {
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
