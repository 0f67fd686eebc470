//! How `doctor` shows its [`Report`]: one screen of text (a heading, a line per check with
//! `ok`, `warn` or `FAIL` and the finding, the recommended settings as YAML to paste under
//! `gateway:`, then every problem with its fix and the verdict), or one JSON object with the
//! same content. Neither holds a secret: the report never had one. The text shows every
//! finding, problem and fix through [`sanitize`] (they quote the gateway: its error texts,
//! shop ids, field names), so that nothing in them breaks a line or drives the terminal; the
//! JSON keeps them exact (JSON escapes control characters itself).

use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::{size_setting, DayFigures, DayVerdict, Report, Status};
use crate::client::sanitize;
use crate::model::Named as _;

/// The width of the check names in the text report.
const NAME_WIDTH: usize = 16;

/// The report as text, one screen.
pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "opretail-exporter doctor: {} ({}, day {})",
        sanitize(&report.gateway),
        report.timezone,
        report.day
    );
    for check in &report.checks {
        let _ = writeln!(
            out,
            "{:<4}  {:<NAME_WIDTH$}  {}",
            check.status.as_str(),
            check.name,
            sanitize(&check.finding)
        );
    }
    if let Some(r) = &report.recommended {
        out.push_str("\nrecommended settings (under gateway:):\n");
        let _ = writeln!(out, "  row_time: {}", r.row_time);
        let _ = writeln!(out, "  rate_scale: {}", r.rate_scale);
        let _ = writeln!(out, "  max_ids_per_request: {}", r.max_ids_per_request);
        let _ = writeln!(out, "  max_id_chars: {}", r.max_id_chars);
        let _ = writeln!(out, "  max_rows_per_call: {}", r.max_rows_per_call);
        let _ = writeln!(out, "  max_response_bytes: {}", size_setting(r.max_response_bytes));
    }
    out.push('\n');
    if report.problems.is_empty() {
        let warnings = report.checks.iter().filter(|c| c.status == Status::Warn).count();
        let note = match warnings {
            0 => String::new(),
            1 => " (1 warning above)".to_string(),
            n => format!(" ({n} warnings above)"),
        };
        let _ = writeln!(out, "verdict: ok, the exporter can run as configured{note}");
    } else {
        let n = report.problems.len();
        let _ = writeln!(out, "{n} problem{}:", if n == 1 { "" } else { "s" });
        for (i, p) in report.problems.iter().enumerate() {
            let _ = writeln!(out, "  {}. {}", i + 1, sanitize(&p.problem));
            let _ = writeln!(out, "     fix: {}", sanitize(&p.fix));
        }
        let _ = writeln!(out, "verdict: FAIL, fix the problems above and run doctor again");
    }
    out
}

/// The report as JSON.
pub fn render_json(report: &Report) -> Value {
    let mut fields = Map::new();
    for (method, check) in &report.fields {
        let partly: Map<String, Value> = check
            .missing
            .iter()
            .filter(|(_, n)| **n > 0 && **n < check.rows)
            .map(|(f, n)| ((*f).to_string(), json!(n)))
            .collect();
        fields.insert(
            (*method).to_string(),
            json!({
                "rows": check.rows,
                "missing": check.missing_everywhere(),
                "missing_in_some_rows": partly,
                "extra": check.extra,
            }),
        );
    }
    let signature_error = match &report.signature {
        super::Signature::Rejected { error } | super::Signature::Unknown { error } => json!(error),
        super::Signature::Accepted => Value::Null,
    };
    let lists = &report.id_lists;
    json!({
        "ok": report.ok(),
        "gateway": report.gateway,
        "timezone": report.timezone.name(),
        "day": report.day.to_string(),
        "first_call": report.first_call,
        "signature": report.signature.as_str(),
        "signature_error": signature_error,
        "clock_skew_seconds": report.clock_skew_seconds,
        "row_time": report.row_time.map_or("unknown", |v| v.as_str()),
        "rate_scale": report.rate_scale.map_or("unknown", |v| v.as_str()),
        "id_lists": {
            "accepted": lists.accepted(),
            "max_ids_ok": lists.max_ids_ok(),
            "ids_available": lists.available,
            "tried": lists.tried.iter().map(|t| json!({
                "ids": t.ids,
                "chars": t.chars,
                "worked": t.worked(),
                "answered": t.answered,
                "missing": t.missing,
                "error": t.error,
            })).collect::<Vec<_>>(),
        },
        "fields": fields,
        "shops_seen": report.shops_seen,
        "face_device_shops": report.face_device_shops,
        "no_outside_counter_shops": report.no_outside_counter_shops,
        "day_figures": day_figures(&report.day_figures),
        "organisations": report.organisations.iter().map(|o| json!({
            "id": o.id.to_string(),
            "shops": o.shops,
            "rows": o.rows,
            "bytes": o.bytes,
            "error": o.error,
        })).collect::<Vec<_>>(),
        "organisations_not_asked": report
            .organisations_not_asked
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        "recommended": report.recommended.as_ref().map(|r| json!({
            "row_time": r.row_time,
            "rate_scale": r.rate_scale,
            "max_ids_per_request": r.max_ids_per_request,
            "max_id_chars": r.max_id_chars,
            "max_rows_per_call": r.max_rows_per_call,
            "max_response_bytes": r.max_response_bytes,
        })),
        "checks": report.checks.iter().map(|c| json!({
            "check": c.name,
            "status": c.status.as_str().to_ascii_lowercase(),
            "finding": c.finding,
        })).collect::<Vec<_>>(),
        "problems": report.problems.iter().map(|p| json!({
            "problem": p.problem,
            "fix": p.fix,
        })).collect::<Vec<_>>(),
        "calls": report.calls,
        "elapsed_seconds": report.elapsed.as_secs_f64(),
    })
}

/// The day figures as JSON: whether the call was asked, why it failed, and the shops by
/// verdict (the differing ones with their counts).
fn day_figures(figures: &DayFigures) -> Value {
    let (asked, error) = match figures {
        DayFigures::NotAsked => (false, None),
        DayFigures::Failed(e) => (true, Some(e.as_str())),
        DayFigures::Compared(_) => (true, None),
    };
    let shops = match figures {
        DayFigures::Compared(shops) => shops.as_slice(),
        DayFigures::NotAsked | DayFigures::Failed(_) => &[],
    };
    let differing: Vec<Value> = shops
        .iter()
        .filter_map(|(dep, v)| match v {
            DayVerdict::Differs(counts) => Some(json!({
                "shop": dep,
                "counts": counts
                    .iter()
                    .map(|c| json!({"count": c.count, "day": c.day, "hours": c.hours}))
                    .collect::<Vec<_>>(),
            })),
            _ => None,
        })
        .collect();
    let not_compared: Vec<Value> = shops
        .iter()
        .filter_map(|(dep, v)| match v {
            DayVerdict::NotCompared(why) => Some(json!({"shop": dep, "reason": why})),
            _ => None,
        })
        .collect();
    json!({
        "asked": asked,
        "error": error,
        "consistent": figures.shops(|v| *v == DayVerdict::Consistent),
        "de_duplicated": figures.shops(|v| matches!(v, DayVerdict::DeDuplicated { .. })),
        "differing": differing,
        "not_compared": not_compared,
    })
}
