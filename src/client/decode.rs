//! The gateway's answers into the exporter's own types: the `stat` envelope, then the loosely
//! typed rows (numbers or numeric strings, absent or null values, renamed wrappers) of the two
//! methods. Nothing here panics on any input.

use chrono::{NaiveDate, NaiveDateTime};
use serde_json::Value;

use super::error::ApiError;
use super::{METHOD_DEVICES, METHOD_SHOPS, TIME_FORMAT};
use crate::model::{DeviceRow, DeviceValues, ShopRow, ShopSeries, ShopValues};

/// Decodes a whole answer of the shops method: envelope, then shops. Never panics.
pub fn parse_shops_answer(bytes: &[u8]) -> Result<Vec<ShopSeries>, ApiError> {
    shops(&decode_envelope(METHOD_SHOPS, bytes)?)
}

/// Decodes a whole answer of the device method: envelope, then rows. Never panics.
pub fn parse_devices_answer(bytes: &[u8]) -> Result<Vec<DeviceRow>, ApiError> {
    device_rows(&decode_envelope(METHOD_DEVICES, bytes)?)
}

fn decode_error(method: &str, detail: String) -> ApiError {
    ApiError::Decode {
        method: method.into(),
        detail,
    }
}

/// Checks the `stat` envelope and hands back `data` (`null` when absent).
pub(super) fn decode_envelope(method: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let decode = |detail: String| decode_error(method, detail);
    let mut doc: Value = serde_json::from_slice(bytes).map_err(|e| decode(format!("not JSON: {e}")))?;
    let stat = doc
        .get("stat")
        .ok_or_else(|| decode("no `stat` in the answer".into()))?;
    let code = stat
        .get("code")
        .and_then(integer)
        .ok_or_else(|| decode("`stat.code` is missing or not an integer".into()))?;
    if code != 0 {
        let codename = stat.get("codename").and_then(Value::as_str).unwrap_or("").to_string();
        let message = doc.get("result").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::Gateway {
            method: method.into(),
            code,
            codename,
            message: message.chars().take(200).collect(),
        });
    }
    Ok(doc.get_mut("data").map(Value::take).unwrap_or(Value::Null))
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

fn percent(v: Option<&Value>) -> Option<f64> {
    number(v).map(|p| p / 100.0)
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

/// `data` of the shops method: a list of shops, each with its hourly `dataList`.
pub(super) fn shops(data: &Value) -> Result<Vec<ShopSeries>, ApiError> {
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
            Some(Value::Array(rows)) => rows.iter().filter_map(shop_row).collect(),
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

fn shop_row(row: &Value) -> Option<ShopRow> {
    Some(ShopRow {
        hour: row_time(row.get("time"))?,
        values: ShopValues {
            walk_in: number(row.get("passengerFlow")),
            passing: number(row.get("passPassengerFlow")),
            outside: number(row.get("outSidePassengerFlow")).or_else(|| number(row.get("outsidePassengerFlow"))),
            walk_in_rate: percent(row.get("inShopRate")),
            walk_out: number(row.get("outFlowCount")),
            fitting_rate: percent(row.get("dressingRate")),
        },
    })
}

/// `data` of the device method: a bare list of rows, or an object wrapping one.
pub(super) fn device_rows(data: &Value) -> Result<Vec<DeviceRow>, ApiError> {
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
                hour: row_time(row.get("time"))?,
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
        let shops = shops(&data).unwrap();
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
    fn shops_wrong_shape_is_an_error() {
        assert!(shops(&json!({"a": 1})).is_err());
        assert_eq!(shops(&Value::Null).unwrap(), vec![]);
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
            let parsed = device_rows(&data).unwrap();
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
        assert!(device_rows(&json!({"other": []})).is_err());
        assert!(device_rows(&json!("x")).is_err());
    }

    #[test]
    fn envelope_codes_as_numbers_or_strings() {
        let ok = br#"{"stat":{"code":"0","codename":"SUCCESS"},"data":[1]}"#;
        assert_eq!(decode_envelope("m", ok).unwrap(), json!([1]));
        let err = br#"{"stat":{"code":7,"codename":"SIGN_WRONG"},"result":"bad sig","data":null}"#;
        let e = decode_envelope("m", err).unwrap_err();
        assert_eq!(e.code(), "7");
        assert!(e.to_string().contains("SIGN_WRONG"), "{e}");
        let e = decode_envelope("m", br#"{"stat":{"code":"-100"}}"#).unwrap_err();
        assert_eq!(e.code(), "-100");
        assert_eq!(decode_envelope("m", b"<html>").unwrap_err().code(), "decode");
        assert_eq!(decode_envelope("m", br#"{"data":[]}"#).unwrap_err().code(), "decode");
        assert_eq!(decode_envelope("m", br#"{"stat":{"code":0}}"#).unwrap(), Value::Null);
    }
}
