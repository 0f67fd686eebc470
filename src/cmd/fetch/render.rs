//! How `fetch` shows an answer: an aligned table (rates as percentages, absent values `-`,
//! hours in progress or to come marked) or JSON in the exporter's units. The columns and JSON
//! keys are the schema's values, in its order, each under its short name. The gateway's text
//! (shop ids, names and codes) is shown through [`sanitize`] in the table, so that a control
//! character in it can neither break a line nor drive the terminal; the JSON keeps it exact
//! (JSON escapes control characters itself).

use std::fmt::Write as _;

use chrono::{NaiveDateTime, Timelike};
use serde_json::{json, Map, Value};

use crate::client::{sanitize, Answer, Call, TIME_FORMAT};
use crate::schema::{Family, Unit, DEVICE_FAMILIES, SHOP_FAMILIES};

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

/// The families `fetch` shows: the values the gateway sends, not the hour's timestamp.
fn shown<S>(families: &'static [Family<S>]) -> impl Iterator<Item = &'static Family<S>> {
    families.iter().filter(|f| f.is_value())
}

/// The header of a table: `time`, every value (rates marked `%`), and the status column.
fn header<S>(families: &'static [Family<S>]) -> Vec<String> {
    let values = shown(families).map(|f| match f.unit {
        Unit::Ratio => format!("{} %", f.key),
        _ => f.key.to_string(),
    });
    std::iter::once("time".to_string())
        .chain(values)
        .chain(std::iter::once(String::new()))
        .collect()
}

/// One line of a table: the hour, every value (rates as percentages, absent values `-`), and
/// where the hour stands.
fn line<S>(families: &'static [Family<S>], hour: NaiveDateTime, values: &S, now_local: NaiveDateTime) -> Vec<String> {
    let values = shown(families).map(|f| match (f.value(values, None), f.unit) {
        (None, _) => "-".to_string(),
        (Some(x), Unit::Ratio) => format!("{:.2}", x * 100.0),
        (Some(x), _) => format!("{x}"),
    });
    std::iter::once(hour.format(TIME_FORMAT).to_string())
        .chain(values)
        .chain(std::iter::once(status(hour, now_local).to_string()))
        .collect()
}

/// One row as JSON: `time`, `complete`, and every value by its short name (`null` if absent).
fn json_row<S>(families: &'static [Family<S>], hour: NaiveDateTime, values: &S, now_local: NaiveDateTime) -> Value {
    let mut row = Map::new();
    row.insert("time".into(), json!(hour.format(TIME_FORMAT).to_string()));
    row.insert("complete".into(), json!(status(hour, now_local).is_empty()));
    for f in shown(families) {
        row.insert(f.key.into(), json!(f.value(values, None)));
    }
    Value::Object(row)
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
pub(crate) fn render_table(call: &Call, answer: &Answer, now_local: NaiveDateTime) -> String {
    let (target, date) = (&call.target, call.from);
    let mut out = String::new();
    match answer {
        Answer::Shops(shops) if shops.is_empty() => {
            let _ = writeln!(out, "{target} {date}: the gateway returned no shop");
        }
        Answer::Shops(shops) => {
            for (i, shop) in shops.iter().enumerate() {
                if i > 0 {
                    out.push('\n');
                }
                // The gateway's text, shown escaped: it can neither break the line nor drive
                // the terminal.
                let code = if shop.code.is_empty() {
                    "-".into()
                } else {
                    sanitize(&shop.code)
                };
                let name = if shop.name.is_empty() {
                    "-".into()
                } else {
                    sanitize(&shop.name)
                };
                let _ = writeln!(
                    out,
                    "S_{}  {name}  (shop_code {code})  {date}  {} rows",
                    sanitize(&shop.dep_id),
                    shop.rows.len()
                );
                let mut rows = vec![header(SHOP_FAMILIES)];
                let mut sorted = shop.rows.clone();
                sorted.sort_by_key(|r| r.hour);
                rows.extend(sorted.iter().map(|r| line(SHOP_FAMILIES, r.hour, &r.values, now_local)));
                out.push_str(&table(&rows));
            }
        }
        Answer::Device(rows) => {
            let _ = writeln!(out, "{target}  {date}  {} rows", rows.len());
            let mut lines = vec![header(DEVICE_FAMILIES)];
            let mut sorted = rows.clone();
            sorted.sort_by_key(|r| r.hour);
            lines.extend(
                sorted
                    .iter()
                    .map(|r| line(DEVICE_FAMILIES, r.hour, &r.values, now_local)),
            );
            out.push_str(&table(&lines));
        }
    }
    out
}

/// The answer as JSON: rates as ratios 0–1, absent values `null`, `complete` false for the
/// hour in progress and later ones.
pub(crate) fn render_json(call: &Call, answer: &Answer, now_local: NaiveDateTime) -> Value {
    let (target, date) = (&call.target, call.from);
    match answer {
        Answer::Shops(shops) => json!({
            "target": target.to_string(),
            "date": date.to_string(),
            "shops": shops.iter().map(|s| {
                let mut rows = s.rows.clone();
                rows.sort_by_key(|r| r.hour);
                json!({
                    "shop_id": s.dep_id,
                    "shop_name": s.name,
                    "shop_code": s.code,
                    "rows": rows
                        .iter()
                        .map(|r| json_row(SHOP_FAMILIES, r.hour, &r.values, now_local))
                        .collect::<Vec<_>>(),
                })
            }).collect::<Vec<_>>(),
        }),
        Answer::Device(rows) => {
            let mut rows = rows.clone();
            rows.sort_by_key(|r| r.hour);
            json!({
                "target": target.to_string(),
                "date": date.to_string(),
                "rows": rows
                    .iter()
                    .map(|r| json_row(DEVICE_FAMILIES, r.hour, &r.values, now_local))
                    .collect::<Vec<_>>(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Target;
    use crate::model::{ShopRow, ShopSeries, ShopValues, TargetId};

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, TIME_FORMAT).unwrap()
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
            &Call::day(
                Target::Shops(vec![TargetId::Shop(9642)]),
                at("2024-05-01 00:00:00").date(),
            ),
            &Answer::Shops(vec![shop]),
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
