//! `GET /api/v1/targets`: the status page's data as JSON, for scripts, with the same filter and
//! paging parameters. `total` counts the targets matching the filter; `rows` are the page's,
//! failing first. Times are Unix seconds; figures absent from the gateway's answer are absent.
//! With named accounts the answer is of all accounts merged, or of the one `account=` names:
//! it names the one shown (`null`: all), lists every account, and each row carries its
//! `account`; merged, `summary.accounts` holds each account's own figures.

use serde_json::{json, Map, Value};

use super::board::{Figures, Row, Table};
use super::query::{Query, PAGE_SIZE};
#[cfg(test)]
use super::summary::Summary;
use super::view::Frame;
#[cfg(test)]
use super::AccountView;

/// The answer for `query`, as of `now` (Unix seconds). (the single-account form).
#[cfg(test)]
pub(crate) fn render_json(table: &Table, summary: &Summary, query: &Query, now: f64, next_poll: Option<f64>) -> Value {
    render_json_of(table, summary, query, now, next_poll, None)
}

/// The answer for `query` of the account `view` shows (`None`: the single-account form).
#[cfg(test)]
pub(crate) fn render_json_of(
    table: &Table,
    summary: &Summary,
    query: &Query,
    now: f64,
    next_poll: Option<f64>,
    view: Option<AccountView<'_>>,
) -> Value {
    let part = [super::view::Part {
        name: view.and_then(|v| v.shown),
        table,
        summary,
    }];
    render_json_frame(&Frame::one(&part, query, now, next_poll, view), query)
}

/// The answer of `frame`, asked by `query`. With named accounts it has `account` (the one
/// shown; `null` when all are merged) and `accounts` (every name), and each row its
/// `account`; merged, `summary.accounts` has each account's own figures and the summary's
/// `rate_limit` and `configured_rate` are `null` (a rate is an account's own).
pub(crate) fn render_json_frame(frame: &Frame<'_>, query: &Query) -> Value {
    let o = &frame.overview;
    let summary = &*frame.summary;
    let rows: Vec<Value> = frame
        .rows
        .iter()
        .map(|p| row_json(frame.table_of(p), p.row, frame.now, frame.account_of(p)))
        .collect();
    let errors: Vec<Value> = summary
        .errors
        .iter()
        .map(|e| json!({"code": e.code, "name": e.name, "requests": e.requests}))
        .collect();
    let warnings: Vec<Value> = summary
        .warnings
        .iter()
        .map(|(level, text)| json!({"level": level.as_str(), "text": text}))
        .collect();
    let merged = frame.merged();
    let rate = |r: f64| if merged { Value::Null } else { json!(r) };
    let mut answer = json!({
        "total": frame.total,
        "page": query.page,
        "pages": frame.pages,
        "per_page": PAGE_SIZE,
        "q": query.q,
        "status": query.status.as_str(),
        "summary": {
            "targets": o.targets,
            "up": o.up,
            "down": o.down,
            "polled_at": o.polled_at,
            "hour": o.hour.map(|h| h.format("%Y-%m-%dT%H:%M:%S").to_string()),
            "timezone": o.tz.name(),
            "refreshed_at": o.refreshed_at,
            "next_poll_at": frame.next_poll,
            "rate_limit": rate(summary.rate_limit),
            "configured_rate": rate(summary.configured_rate),
            "last_hour": {"requests": summary.requests, "failed": summary.failed(), "errors": errors},
            "warnings": warnings,
        },
        "rows": rows,
    });
    if let (Some(view), Some(object)) = (frame.view, answer.as_object_mut()) {
        object.insert("account".into(), json!(view.shown));
        object.insert("accounts".into(), json!(view.all));
    }
    if merged {
        let accounts: Vec<Value> = frame
            .accounts
            .iter()
            .map(|a| {
                json!({
                    "name": a.name,
                    "targets": a.targets,
                    "up": a.up,
                    "polled_at": a.polled_at,
                    "rate_limit": a.rate_limit,
                    "configured_rate": a.configured_rate,
                    "requests": a.requests,
                    "failed": a.failed,
                })
            })
            .collect();
        if let Some(summary) = answer.get_mut("summary").and_then(Value::as_object_mut) {
            summary.insert("accounts".into(), Value::Array(accounts));
        }
    }
    answer
}

fn figures(f: &Figures) -> Value {
    let mut out = Map::new();
    for (key, v) in [
        ("walk_in", f.walk_in),
        ("walk_out", f.walk_out),
        ("passing", f.passing),
        ("outside", f.outside),
        ("walk_in_rate", f.walk_in_rate),
    ] {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            out.insert(key.into(), json!(v));
        }
    }
    Value::Object(out)
}

fn row_json(table: &Table, row: &Row, now: f64, account: Option<&str>) -> Value {
    let shown = table.shown(row);
    let error = row
        .error
        .as_ref()
        .map(|e| json!({"code": e.code, "name": e.name, "message": e.message, "cid": e.cid, "at": e.at}));
    let mut out = json!({
        "kind": row.kind.as_str(),
        "id": row.id,
        "name": shown.name,
        "up": row.up,
        "last_success": row.last_success,
        "last_attempt": row.last_attempt,
        "data_hour": shown.data_hour,
        "data_hour_age_seconds": shown.data_hour.map(|h| (now - h as f64).max(0.0).round()),
        "shops": shown.shops,
        "hour": figures(&shown.hour),
        "today": figures(&shown.today),
        "error": error,
    });
    if let (Some(account), Some(object)) = (account, out.as_object_mut()) {
        object.insert("account".into(), json!(account));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::board::tests::board_with;
    use super::super::query::StatusFilter;
    use super::*;

    /// Four requests, no errors, no warnings, the configured rate in force.
    fn quiet_summary() -> Summary {
        Summary {
            requests: 4,
            errors: Vec::new(),
            rate_limit: 5.0,
            configured_rate: 5.0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_json_has_the_pages_rows_failing_first_and_the_total() {
        let name = "万店掌 \"旗舰\" \\ 店";
        let board = board_with(&[("S_1", true), ("S_2", false), ("O_9", true)], name);
        let t = board.table();
        let summary = quiet_summary();
        let v = render_json(&t, &summary, &Query::default(), 1_714_550_000.0, None);
        assert_eq!(v["total"], 3);
        assert_eq!(v["summary"]["up"], 2);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows[0]["id"], "S_2");
        assert_eq!(rows[0]["up"], false);
        assert_eq!(rows[0]["error"]["name"], "SIGN_WRONG");
        assert_eq!(rows[0]["error"]["cid"], "cid-7");
        assert_eq!(rows[1]["name"], name, "exact, JSON-escaped by the encoder");
        assert_eq!(rows[1]["hour"]["walk_in"], 5.0);
        assert_eq!(rows[1]["data_hour_age_seconds"], 6800.0);
        assert_eq!(rows[2]["kind"], "organisation");
        assert_eq!(rows[2]["shops"], 2);
        let text = serde_json::to_string(&v).unwrap();
        assert!(text.contains(r#"万店掌 \"旗舰\" \\ 店"#), "{text}");
        let down = Query {
            status: StatusFilter::Down,
            ..Query::default()
        };
        let v = render_json(&t, &summary, &down, 1_714_550_000.0, None);
        assert_eq!(
            (v["total"].as_u64(), v["rows"].as_array().map(Vec::len)),
            (Some(1), Some(1))
        );
    }

    #[test]
    fn with_named_accounts_the_answer_and_every_row_name_the_account() {
        let board = board_with(&[("S_1", true), ("S_2", false)], "x");
        let t = board.table();
        let summary = quiet_summary();
        let all = vec!["a".to_string(), "b".to_string()];
        let view = AccountView {
            shown: Some("b"),
            all: &all,
        };
        let v = render_json_of(&t, &summary, &Query::default(), 1_714_550_000.0, None, Some(view));
        assert_eq!(v["account"], "b");
        assert_eq!(v["accounts"], json!(["a", "b"]));
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r["account"] == "b"));
        let v = render_json(&t, &summary, &Query::default(), 1_714_550_000.0, None);
        assert!(v.get("account").is_none() && v["rows"][0].get("account").is_none());
    }

    #[test]
    fn all_accounts_merged_answer_with_every_accounts_rows_and_figures() {
        let a = board_with(&[("S_1", true), ("S_2", false)], "x");
        let b = board_with(&[("S_1", false), ("S_3", true), ("O_9", true)], "y");
        let (ta, tb) = (a.table(), b.table());
        let sa = quiet_summary();
        let sb = Summary {
            rate_limit: 2.5,
            requests: 6,
            errors: vec![super::super::summary::ErrorCount {
                code: "7".into(),
                name: "SIGN_WRONG".into(),
                requests: 2,
            }],
            ..quiet_summary()
        };
        let parts = [
            super::super::view::Part {
                name: Some("a"),
                table: &ta,
                summary: &sa,
            },
            super::super::view::Part {
                name: Some("b"),
                table: &tb,
                summary: &sb,
            },
        ];
        let names = vec!["a".to_string(), "b".to_string()];
        let q = Query::default();
        let v = render_json_frame(&Frame::all(&parts, &names, &q, 1_714_550_000.0, None), &q);
        assert_eq!(v["account"], Value::Null);
        assert_eq!(v["accounts"], json!(["a", "b"]));
        assert_eq!(v["total"], 5);
        let rows: Vec<(&str, &str, bool)> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["account"].as_str().unwrap(),
                    r["id"].as_str().unwrap(),
                    r["up"].as_bool().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("b", "S_1", false),
                ("a", "S_2", false),
                ("a", "S_1", true),
                ("b", "S_3", true),
                ("b", "O_9", true)
            ]
        );
        let s = &v["summary"];
        assert_eq!(
            (s["targets"].as_u64(), s["up"].as_u64(), s["down"].as_u64()),
            (Some(5), Some(3), Some(2))
        );
        assert_eq!(s["last_hour"]["requests"], 10);
        assert_eq!(s["last_hour"]["failed"], 2);
        assert_eq!(s["last_hour"]["errors"][0]["code"], "7");
        assert_eq!((&s["rate_limit"], &s["configured_rate"]), (&Value::Null, &Value::Null));
        assert_eq!(s["accounts"][0]["name"], "a");
        assert_eq!(
            (&s["accounts"][1]["rate_limit"], &s["accounts"][1]["configured_rate"]),
            (&json!(2.5), &json!(5.0))
        );
        assert_eq!(
            (&s["accounts"][1]["requests"], &s["accounts"][1]["failed"]),
            (&json!(6), &json!(2))
        );
        assert_eq!(
            (&s["accounts"][1]["targets"], &s["accounts"][1]["up"]),
            (&json!(3), &json!(2))
        );
        let down = Query::parse(Some("status=down&q=s_1")).unwrap();
        let v = render_json_frame(&Frame::all(&parts, &names, &down, 1_714_550_000.0, None), &down);
        assert_eq!(
            (v["total"].as_u64(), v["rows"][0]["account"].as_str()),
            (Some(1), Some("b"))
        );
    }
}
