//! `fetch`: one gateway call for one shop, organisation or device and one shop-local day,
//! shown as an aligned table or as JSON. It is the first thing to run with a new key: it
//! either prints the rows or the gateway's code and name (`gateway error 7 SIGN_WRONG: …`).
//!
//! The table shows every row the gateway returned, rates as percentages; absent values are
//! `-`, and rows of the hour in progress or of hours still to come are marked, because the
//! gateway returns them too (zeros for the future). The JSON uses the exporter's units:
//! rates are ratios 0–1, absent values `null`.

use std::fmt::Write as _;

use chrono::{NaiveDate, NaiveDateTime, Timelike};
use serde_json::{json, Value};

use crate::client::{self, ApiError, Client, TIME_FORMAT};
use crate::model::TargetId;
use crate::model::{DeviceRow, ShopSeries};

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `S_<depId>` or `O_<orgId>`.
    Shops(TargetId),
    /// A normalised mac.
    Device(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Shops(id) => write!(f, "{id}"),
            Target::Device(mac) => write!(f, "device {mac}"),
        }
    }
}

/// The answer of one fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    Shops(Vec<ShopSeries>),
    Device(Vec<DeviceRow>),
}

/// One call for `target` on the shop-local day `date`.
pub async fn fetch(client: &Client, target: &Target, date: NaiveDate) -> Result<Fetched, ApiError> {
    match target {
        Target::Shops(id) => client
            .shop_hours(std::slice::from_ref(id), date, date)
            .await
            .map(Fetched::Shops),
        Target::Device(mac) => client.device_hours(mac, date, date).await.map(Fetched::Device),
    }
}

/// The `fetch` command: one call for `target` on `date` (shop-local; `now_local` marks hours
/// in progress or to come), printed as a table or JSON on stdout. Exit code 0, or 1 with the
/// gateway code and name (and a hint) on stderr.
pub async fn command(
    client: Client,
    target: Target,
    date: NaiveDate,
    json: bool,
    now_local: NaiveDateTime,
) -> std::process::ExitCode {
    use std::io::Write as _;
    use std::process::ExitCode;
    match fetch(&client, &target, date).await {
        Ok(fetched) => {
            let text = if json {
                format!("{:#}\n", render_json(&target, date, &fetched, now_local))
            } else {
                render_table(&target, date, &fetched, now_local)
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            match std::io::stdout().lock().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write to stdout: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("{}", error_line(&e));
            if let Some(hint) = hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// One line for a failed call: `gateway error 7 SIGN_WRONG: <message>` for a gateway refusal
/// (the name from the answer, else the documented one), the error itself otherwise.
pub fn error_line(e: &ApiError) -> String {
    match e {
        ApiError::Gateway {
            code,
            codename,
            message,
            ..
        } => {
            let name = if codename.is_empty() {
                client::codename(*code)
            } else {
                codename.as_str()
            };
            let message = if message.is_empty() {
                client::code_description(*code)
            } else {
                message.as_str()
            };
            format!("gateway error {code} {name}: {message}")
        }
        other => other.to_string(),
    }
}

/// A hint for the gateway codes a user checking a new key is likely to meet.
pub fn hint(e: &ApiError) -> Option<&'static str> {
    let ApiError::Gateway { code, .. } = e else {
        return None;
    };
    Some(match code {
        1..=3 => "check gateway.app_key (the app key of the open platform)",
        4 | 5 | 7 => "check gateway.app_secret and gateway.sign_method",
        11 | 12 => "check gateway.aid (S107 on openapi.opretail.com; the app's own id on cloudapi.ovopark.com)",
        14..=16 => "check this machine's clock: _timestamp is sent as Asia/Shanghai wall time",
        9 => "the gateway does not know this method for this app: check the app's permissions",
        -100 => "the gateway saw a repeated call: wait a little and try again",
        _ => return None,
    })
}

/// Where a row's hour stands at `now_local` (the same zone as the row).
fn status(hour: NaiveDateTime, now_local: NaiveDateTime) -> &'static str {
    let current = now_local
        .date()
        .and_hms_opt(now_local.hour(), 0, 0)
        .unwrap_or(now_local);
    if hour < current {
        ""
    } else if hour == current {
        "in progress"
    } else {
        "not yet"
    }
}

fn count(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{x}"),
        None => "-".to_string(),
    }
}

fn percent(v: Option<f64>) -> String {
    match v {
        Some(x) => format!("{:.2}", x * 100.0),
        None => "-".to_string(),
    }
}

/// Lays out `rows` (the first is the header) with the first column left-aligned and the
/// others right-aligned; trailing blanks trimmed.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i == 0 || i + 1 == columns {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            } else {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The answer as text: per shop a heading and a table, or the device's table.
pub fn render_table(target: &Target, date: NaiveDate, fetched: &Fetched, now_local: NaiveDateTime) -> String {
    let mut out = String::new();
    match fetched {
        Fetched::Shops(shops) if shops.is_empty() => {
            let _ = writeln!(out, "{target} {date}: the gateway returned no shop");
        }
        Fetched::Shops(shops) => {
            for (i, shop) in shops.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                let code = if shop.code.is_empty() { "-" } else { &shop.code };
                let _ = writeln!(
                    out,
                    "S_{}  {}  (shop_code {code})  {date}  {} rows",
                    shop.dep_id,
                    if shop.name.is_empty() { "-" } else { &shop.name },
                    shop.rows.len()
                );
                let mut rows = vec![[
                    "time",
                    "walk_in",
                    "passing",
                    "outside",
                    "walk_in_rate %",
                    "walk_out",
                    "fitting_rate %",
                    "",
                ]
                .map(String::from)
                .to_vec()];
                let mut sorted = shop.rows.clone();
                sorted.sort_by_key(|r| r.hour);
                for r in &sorted {
                    let v = &r.values;
                    rows.push(vec![
                        r.hour.format(TIME_FORMAT).to_string(),
                        count(v.walk_in),
                        count(v.passing),
                        count(v.outside),
                        percent(v.walk_in_rate),
                        count(v.walk_out),
                        percent(v.fitting_rate),
                        status(r.hour, now_local).to_string(),
                    ]);
                }
                out.push_str(&table(&rows));
            }
        }
        Fetched::Device(rows) => {
            let _ = writeln!(out, "{target}  {date}  {} rows", rows.len());
            let mut lines = vec![["time", "walk_in", "walk_out", ""].map(String::from).to_vec()];
            let mut sorted = rows.clone();
            sorted.sort_by_key(|r| r.hour);
            for r in &sorted {
                lines.push(vec![
                    r.hour.format(TIME_FORMAT).to_string(),
                    count(r.values.walk_in),
                    count(r.values.walk_out),
                    status(r.hour, now_local).to_string(),
                ]);
            }
            out.push_str(&table(&lines));
        }
    }
    out
}

/// The answer as JSON: rates as ratios 0–1, absent values `null`, `complete` false for the
/// hour in progress and later ones.
pub fn render_json(target: &Target, date: NaiveDate, fetched: &Fetched, now_local: NaiveDateTime) -> Value {
    let complete = |hour: NaiveDateTime| status(hour, now_local).is_empty();
    let time = |hour: NaiveDateTime| hour.format(TIME_FORMAT).to_string();
    match fetched {
        Fetched::Shops(shops) => json!({
            "target": target.to_string(),
            "date": date.to_string(),
            "shops": shops.iter().map(|s| {
                let mut rows = s.rows.clone();
                rows.sort_by_key(|r| r.hour);
                json!({
                    "shop_id": s.dep_id,
                    "shop_name": s.name,
                    "shop_code": s.code,
                    "rows": rows.iter().map(|r| json!({
                        "time": time(r.hour),
                        "complete": complete(r.hour),
                        "walk_in": r.values.walk_in,
                        "passing": r.values.passing,
                        "outside": r.values.outside,
                        "walk_in_rate": r.values.walk_in_rate,
                        "walk_out": r.values.walk_out,
                        "fitting_rate": r.values.fitting_rate,
                    })).collect::<Vec<_>>(),
                })
            }).collect::<Vec<_>>(),
        }),
        Fetched::Device(rows) => {
            let mut rows = rows.clone();
            rows.sort_by_key(|r| r.hour);
            json!({
                "target": target.to_string(),
                "date": date.to_string(),
                "rows": rows.iter().map(|r| json!({
                    "time": time(r.hour),
                    "complete": complete(r.hour),
                    "walk_in": r.values.walk_in,
                    "walk_out": r.values.walk_out,
                })).collect::<Vec<_>>(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ShopRow, ShopValues};

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
    }

    #[test]
    fn gateway_errors_read_code_name_and_message() {
        let e = ApiError::Gateway {
            method: "m".into(),
            code: 7,
            codename: "SIGN_WRONG".into(),
            message: "bad sig".into(),
        };
        assert_eq!(error_line(&e), "gateway error 7 SIGN_WRONG: bad sig");
        let e = ApiError::Gateway {
            method: "m".into(),
            code: 16,
            codename: String::new(),
            message: String::new(),
        };
        assert_eq!(
            error_line(&e),
            "gateway error 16 TIMESTAMP_OVERTIME: _timestamp has expired"
        );
        assert!(hint(&e).unwrap().contains("clock"));
    }

    #[test]
    fn table_aligns_marks_and_dashes() {
        let shop = ShopSeries {
            dep_id: "9642".into(),
            name: "Test".into(),
            code: String::new(),
            rows: vec![
                ShopRow {
                    hour: at("2024-05-01 11:00:00"),
                    values: ShopValues::default(),
                },
                ShopRow {
                    hour: at("2024-05-01 10:00:00"),
                    values: ShopValues {
                        walk_in: Some(12.0),
                        passing: Some(135.0),
                        outside: Some(147.0),
                        walk_in_rate: Some(0.0816),
                        walk_out: Some(11.0),
                        fitting_rate: None,
                    },
                },
            ],
        };
        let text = render_table(
            &Target::Shops(TargetId::Shop(9642)),
            at("2024-05-01 00:00:00").date(),
            &Fetched::Shops(vec![shop]),
            at("2024-05-01 11:20:00"),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "S_9642  Test  (shop_code -)  2024-05-01  2 rows");
        assert_eq!(
            lines[1],
            "time                 walk_in  passing  outside  walk_in_rate %  walk_out  fitting_rate %"
        );
        assert_eq!(
            lines[2],
            "2024-05-01 10:00:00       12      135      147            8.16        11               -"
        );
        assert_eq!(
            lines[3],
            "2024-05-01 11:00:00        -        -        -               -         -               -  in progress"
        );
    }
}
