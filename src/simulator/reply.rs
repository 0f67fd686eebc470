//! What the simulated gateway sends back, byte for byte: the envelope every answer shares
//! (`stat` with `cid`, `code`, `codename` and `systime`; `result`; `data`), a shop's hourly rows
//! with the field names and quirks of the live gateway (`outSidePassengerFlow` with a capital
//! S, rates as percentages, numbers as strings for some shops, no `dressingRate` without a
//! fitting room, the undocumented fields only under [`RowDetail::Full`]), and device rows in
//! each [`DeviceShape`]. The request core decides *what* to answer; this module only writes it
//! down.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{json, Map, Value};

use super::codes::codename;
use super::tenant::{DeviceShape, RowDetail, SimDevice, SimShop};
use super::times::{days, HourWindow, TIME_FORMAT};
use super::traffic::{device_hour_as_of, shop_hour_as_of};
use crate::model::Clock;

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
/// is `clock`'s now.
pub(crate) fn envelope(clock: &Clock, code: i64, result: &str, data: Value) -> SimReply {
    let body = json!({
        "stat": {
            "cid": uuid::Uuid::new_v4().to_string(),
            "code": code,
            "codename": codename(code),
            "systime": clock.now().timestamp_millis(),
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

/// A shop of the shops method's `data`: its name, ids and one row per hour of `start..=end`
/// within `hours`, as the gateway shows them at `now`, with the row fields of `detail`.
pub(crate) fn shop_json(
    shop: &SimShop,
    start: NaiveDate,
    end: NaiveDate,
    hours: HourWindow,
    now: NaiveDateTime,
    detail: RowDetail,
) -> Value {
    let s = shop.numbers_as_strings;
    let rows: Vec<Value> = days(start, end, hours)
        .map(|hour| {
            let mut row = Map::new();
            row.insert("time".into(), Value::String(hour.format(TIME_FORMAT).to_string()));
            shop_hour_as_of(shop, hour, now).write_fields(&mut row, s, detail);
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

/// The device method's rows for `dev` (none for an unknown device): one per hour of
/// `start..=end` as the gateway shows them at `now`.
pub(crate) fn device_rows(dev: Option<&SimDevice>, start: NaiveDate, end: NaiveDate, now: NaiveDateTime) -> Vec<Value> {
    let Some(dev) = dev else {
        return Vec::new();
    };
    days(start, end, HourWindow::WHOLE_DAY)
        .map(|hour| {
            let mut row = Map::new();
            row.insert("time".into(), Value::String(hour.format(TIME_FORMAT).to_string()));
            device_hour_as_of(dev, hour, now).write_fields(&mut row);
            Value::Object(row)
        })
        .collect()
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
