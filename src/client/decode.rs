//! The gateway's answers into the exporter's own types: the `stat` envelope, then the loosely
//! typed rows (numbers or numeric strings, absent or null values, renamed wrappers) of the two
//! methods. Nothing here panics on any input.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::conventions::Reading;
use super::error::ApiError;
use super::{METHOD_DEVICES, METHOD_SHOPS, TIME_FORMAT};
use crate::model::{DeviceRow, DeviceValues, ShopRow, ShopSeries, ShopValues};
use crate::model::{RateScale, RowTime};

/// Decodes a whole answer of the shops method: envelope, then shops (start-labelled rows,
/// rates in percent). Never panics.
pub fn parse_shops_answer(bytes: &[u8]) -> Result<Vec<ShopSeries>, ApiError> {
    shops(&decode_envelope(METHOD_SHOPS, bytes)?.data, Reading::default())
}

/// Decodes a whole answer of the device method: envelope, then rows. Never panics.
pub fn parse_devices_answer(bytes: &[u8]) -> Result<Vec<DeviceRow>, ApiError> {
    device_rows(&decode_envelope(METHOD_DEVICES, bytes)?.data, Reading::default())
}

/// A successful answer: its `data`, and what its `stat` said besides the code.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `data` (`null` when absent).
    pub data: Value,
    /// `stat.cid`, the gateway's id of the call (the vendor's support asks for it).
    pub cid: String,
    /// `stat.systime`: the gateway's clock, in Unix milliseconds.
    pub systime_ms: Option<i64>,
    /// Bytes of the whole answer.
    pub bytes: usize,
}

fn decode_error(method: &str, detail: String) -> ApiError {
    ApiError::Decode {
        method: method.into(),
        detail,
    }
}

/// Checks the `stat` envelope and hands back `data` (`null` when absent) with `stat.cid` and
/// `stat.systime`; a refusal carries the cid too.
pub(super) fn decode_envelope(method: &str, bytes: &[u8]) -> Result<Envelope, ApiError> {
    let decode = |detail: String| decode_error(method, detail);
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| decode(format!("not JSON: {e}")))?;
    let stat = doc
        .get("stat")
        .ok_or_else(|| decode("no `stat` in the answer".into()))?;
    let code = stat
        .get("code")
        .and_then(integer)
        .ok_or_else(|| decode("`stat.code` is missing or not an integer".into()))?;
    let cid = text(stat.get("cid")).chars().take(64).collect::<String>();
    let systime_ms = stat.get("systime").and_then(integer);
    if code != 0 {
        let codename = stat.get("codename").and_then(Value::as_str).unwrap_or("").to_string();
        let message = doc.get("result").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::Gateway {
            method: method.into(),
            code,
            codename,
            message: message.chars().take(200).collect(),
            cid,
        });
    }
    Ok(Envelope {
        data: doc.get_mut("data").map(Value::take).unwrap_or(Value::Null),
        cid,
        systime_ms,
        bytes: bytes.len(),
    })
}

/// An integer given as a JSON number or a numeric string.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A finite number given as a JSON number or a numeric string; anything else (absent, null,
/// empty, text) is no value.
fn number(v: Option<&Value>) -> Option<f64> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// A text field; numbers become their decimal text (ids arrive either way).
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A rate as a ratio 0–1, from a percentage or a fraction as `scale` says.
fn rate(v: Option<&Value>, scale: RateScale) -> Option<f64> {
    number(v).map(|r| match scale {
        RateScale::Percent => r / 100.0,
        RateScale::Fraction => r,
    })
}

/// The start of the hour a row counts, from its `time` under `convention`.
fn hour_of(v: Option<&Value>, convention: RowTime) -> Option<NaiveDateTime> {
    let time = row_time(v)?;
    Some(match convention {
        RowTime::Start => time,
        RowTime::End => time - chrono::Duration::hours(1),
    })
}

/// Row `time`: `yyyy-MM-dd HH:mm:ss` (also without seconds, or a bare date).
fn row_time(v: Option<&Value>) -> Option<NaiveDateTime> {
    let s = v?.as_str()?.trim();
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M"))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// `data` of the shops method: a list of shops, each with its hourly `dataList`, read under
/// `reading`.
pub(crate) fn shops(data: &Value, reading: Reading) -> Result<Vec<ShopSeries>, ApiError> {
    let shops = match data {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        other => {
            let detail = format!("expected a list of shops, got {}", kind(other));
            return Err(decode_error(METHOD_SHOPS, detail));
        }
    };
    let mut out = Vec::with_capacity(shops.len());
    for shop in shops {
        let dep_id = text(shop.get("depId"));
        if dep_id.is_empty() {
            continue; // a shop we cannot name cannot be published
        }
        let rows = match shop.get("dataList") {
            Some(Value::Array(rows)) => rows.iter().filter_map(|r| shop_row(r, reading)).collect(),
            _ => Vec::new(),
        };
        out.push(ShopSeries {
            dep_id,
            name: text(shop.get("name")),
            code: text(shop.get("shopId")),
            rows,
        });
    }
    Ok(out)
}

fn shop_row(row: &Value, reading: Reading) -> Option<ShopRow> {
    let walk_in = number(row.get("passengerFlow"));
    let outside = number(row.get("outSidePassengerFlow")).or_else(|| number(row.get("outsidePassengerFlow")));
    // A shop without an outside counter sends no outside traffic, or 0 beside walk-ins (the
    // outside traffic includes the walk-ins): it has no passers-by and no walk-in rate, which
    // the vendor's enterprise rate leaves out too.
    let counted_outside = outside.filter(|o| !(*o == 0.0 && walk_in.is_some_and(|w| w > 0.0)));
    let outside_counter = counted_outside.is_some();
    Some(ShopRow {
        hour: hour_of(row.get("time"), reading.row_time)?,
        values: ShopValues {
            walk_in,
            passing: number(row.get("passPassengerFlow")).filter(|_| outside_counter),
            outside: counted_outside,
            walk_in_rate: rate(row.get("inShopRate"), reading.rate_scale).filter(|_| outside_counter),
            walk_out: number(row.get("outFlowCount")),
            fitting_rate: rate(row.get("dressingRate"), reading.rate_scale),
        },
    })
}

/// `data` of the device method: a bare list of rows, or an object wrapping one, read under
/// `reading`.
pub(super) fn device_rows(data: &Value, reading: Reading) -> Result<Vec<DeviceRow>, ApiError> {
    let rows = match data {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        Value::Object(o) => ["dataList", "list", "rows", "data"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .ok_or_else(|| {
                let detail = "expected a list of rows, or an object with dataList/list/rows/data";
                decode_error(METHOD_DEVICES, detail.into())
            })?,
        other => {
            let detail = format!("expected a list of rows, got {}", kind(other));
            return Err(decode_error(METHOD_DEVICES, detail));
        }
    };
    Ok(rows
        .iter()
        .filter_map(|row| {
            Some(DeviceRow {
                hour: hour_of(row.get("time"), reading.row_time)?,
                values: DeviceValues {
                    walk_in: number(row.get("passengerFlow")),
                    walk_out: number(row.get("outFlowCount")),
                },
            })
        })
        .collect())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    #[test]
    fn shops_numbers_strings_and_missing_fields() {
        let data = json!([
            {"name": "Test store", "depId": 9642, "shopId": "", "dataList": [
                {"time": "2024-05-01 10:00:00", "passengerFlow": 12, "passPassengerFlow": 135,
                 "outSidePassengerFlow": 147, "inShopRate": 8.16, "outFlowCount": 11, "dressingRate": null},
                {"time": "2024-05-01 11:00:00", "passengerFlow": "7", "passPassengerFlow": "3",
                 "outsidePassengerFlow": "10", "inShopRate": "70", "outFlowCount": "x", "dressingRate": "25.5"},
                {"time": "garbage", "passengerFlow": 1}
            ]},
            {"name": "No id", "dataList": []},
            {"name": "Second", "depId": "9643", "shopId": "SH-2"}
        ]);
        let shops = shops(&data, Reading::default()).unwrap();
        assert_eq!(shops.len(), 2);
        assert_eq!(shops[0].dep_id, "9642");
        assert_eq!(shops[0].code, "");
        assert_eq!(shops[0].rows.len(), 2, "a row without a readable time is dropped");
        let r = shops[0].rows[0];
        assert_eq!(r.hour, at("2024-05-01 10:00:00"));
        assert_eq!(r.values.walk_in, Some(12.0));
        assert_eq!(r.values.passing, Some(135.0));
        assert_eq!(r.values.outside, Some(147.0));
        assert!((r.values.walk_in_rate.unwrap() - 0.0816).abs() < 1e-12);
        assert_eq!(r.values.walk_out, Some(11.0));
        assert_eq!(r.values.fitting_rate, None, "null is no value, not zero");
        let r = shops[0].rows[1];
        assert_eq!(r.values.walk_in, Some(7.0));
        assert_eq!(
            r.values.outside,
            Some(10.0),
            "lower-case outsidePassengerFlow is accepted"
        );
        assert_eq!(r.values.walk_in_rate, Some(0.7));
        assert_eq!(r.values.walk_out, None);
        assert_eq!(r.values.fitting_rate, Some(0.255));
        assert_eq!(shops[1].dep_id, "9643");
        assert_eq!(shops[1].code, "SH-2");
        assert!(shops[1].rows.is_empty());
    }

    #[test]
    fn end_labels_fractions_and_shops_without_an_outside_counter() {
        let data = json!([{"depId": 1, "dataList": [
            {"time": "2024-05-02 00:00:00", "passengerFlow": 12, "passPassengerFlow": 135,
             "outSidePassengerFlow": 147, "inShopRate": 0.0816, "dressingRate": 0.25},
            {"time": "2024-05-01 11:00:00", "passengerFlow": 7, "passPassengerFlow": 0,
             "outSidePassengerFlow": 0, "inShopRate": 0},
            {"time": "2024-05-01 12:00:00", "passengerFlow": 7}
        ]}]);
        let reading = Reading {
            row_time: RowTime::End,
            rate_scale: RateScale::Fraction,
        };
        let rows = &shops(&data, reading).unwrap()[0].rows;
        assert_eq!(
            rows[0].hour,
            at("2024-05-01 23:00:00"),
            "the day's last hour ends at midnight"
        );
        assert_eq!(rows[0].values.walk_in_rate, Some(0.0816));
        assert_eq!(rows[0].values.fitting_rate, Some(0.25));
        assert_eq!(rows[1].hour, at("2024-05-01 10:00:00"));
        for row in &rows[1..] {
            let v = row.values;
            assert_eq!(v.walk_in, Some(7.0));
            assert_eq!(
                (v.outside, v.passing, v.walk_in_rate),
                (None, None, None),
                "no outside counter: no outside traffic, passers-by or walk-in rate"
            );
        }
        let none = json!([{"time": "2024-05-01 10:00:00", "passengerFlow": 0, "outSidePassengerFlow": 0, "passPassengerFlow": 0}]);
        let v = device_rows(&json!([]), reading).unwrap();
        assert!(v.is_empty());
        let quiet = shops(&json!([{"depId": 2, "dataList": none}]), Reading::default()).unwrap();
        assert_eq!(
            quiet[0].rows[0].values.outside,
            Some(0.0),
            "a quiet hour is 0, not missing"
        );
    }

    #[test]
    fn shops_wrong_shape_is_an_error() {
        assert!(shops(&json!({"a": 1}), Reading::default()).is_err());
        assert_eq!(shops(&Value::Null, Reading::default()).unwrap(), vec![]);
    }

    #[test]
    fn device_rows_in_every_wrapping() {
        let rows = json!([{"time": "2024-05-01 10:00:00", "passengerFlow": 5, "outFlowCount": "4"}]);
        for data in [
            rows.clone(),
            json!({"dataList": rows}),
            json!({"list": rows}),
            json!({"rows": rows}),
            json!({"data": rows}),
            json!({"total": 1, "dataList": rows}),
        ] {
            let parsed = device_rows(&data, Reading::default()).unwrap();
            assert_eq!(parsed.len(), 1, "{data}");
            assert_eq!(parsed[0].hour, at("2024-05-01 10:00:00"));
            assert_eq!(
                parsed[0].values,
                DeviceValues {
                    walk_in: Some(5.0),
                    walk_out: Some(4.0)
                }
            );
        }
        assert!(device_rows(&json!({"other": []}), Reading::default()).is_err());
        assert!(device_rows(&json!("x"), Reading::default()).is_err());
    }

    #[test]
    fn envelope_codes_as_numbers_or_strings() {
        let ok = br#"{"stat":{"code":"0","codename":"SUCCESS"},"data":[1]}"#;
        let answer = decode_envelope("m", ok).unwrap();
        assert_eq!(
            (answer.data, answer.systime_ms, answer.cid.as_str()),
            (json!([1]), None, "")
        );
        let ok = br#"{"stat":{"code":0,"cid":"c-1","systime":1700000000000},"data":[]}"#;
        let answer = decode_envelope("m", ok).unwrap();
        assert_eq!(
            (answer.systime_ms, answer.cid.as_str(), answer.bytes),
            (Some(1_700_000_000_000), "c-1", ok.len())
        );
        let err = br#"{"stat":{"code":7,"codename":"SIGN_WRONG","cid":"abc-123"},"result":"bad sig","data":null}"#;
        let e = decode_envelope("m", err).unwrap_err();
        assert_eq!(e.code(), "7");
        assert!(e.to_string().contains("SIGN_WRONG"), "{e}");
        assert!(
            e.to_string().contains("cid abc-123"),
            "the cid is in every error line: {e}"
        );
        let e = decode_envelope("m", br#"{"stat":{"code":"-100"}}"#).unwrap_err();
        assert_eq!(e.code(), "-100");
        assert_eq!(decode_envelope("m", b"<html>").unwrap_err().code(), "decode");
        assert_eq!(decode_envelope("m", br#"{"data":[]}"#).unwrap_err().code(), "decode");
        assert_eq!(
            decode_envelope("m", br#"{"stat":{"code":0}}"#).unwrap().data,
            Value::Null
        );
    }
}
