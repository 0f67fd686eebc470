//! The summary above the table: the gateway's last hour by error label with each label's name,
//! the rate limit in force, and the warnings the exporter knows now (a field the exporter
//! reads missing from the gateway's rows, the host's clock off from the gateway's, a
//! convention not decided yet, the request rate lowered after `-100` answers). Read from the
//! API metrics the client records into, at the moment a page is asked for.

use super::board::Table;
use super::recent::LastHour;
use crate::client::conventions::SKEW_WARNING_SECONDS;
use crate::client::{label_name, METHOD_DEVICES, METHOD_SHOPS};
use crate::metrics::ApiMetrics;

/// Row fields without which a row means nothing: missing, they are a warning (as in the alert
/// `OpretailGatewayFieldMissing`); others missing are normal for some shops, and a note.
const VITAL_FIELDS: [&str; 2] = ["time", "passengerFlow"];

/// How much a line of the summary matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Warning,
    Note,
}

impl Level {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// One error label of the last hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ErrorCount {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) requests: u64,
}

/// What the summary shows of the gateway.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    pub(crate) requests: u64,
    /// Most frequent first.
    pub(crate) errors: Vec<ErrorCount>,
    pub(crate) rate_limit: f64,
    pub(crate) configured_rate: f64,
    /// Warnings first, then notes.
    pub(crate) warnings: Vec<(Level, String)>,
}

impl Summary {
    /// The summary as of now.
    pub(crate) fn of(api: &ApiMetrics, table: &Table) -> Summary {
        Summary::from_parts(
            api.recent().last_hour(),
            api.rate_limit(),
            table.configured_rate,
            api.clock_skew(),
            &api.fields_missing(),
            &api.conventions(),
        )
    }

    fn from_parts(
        hour: LastHour,
        rate_limit: f64,
        configured_rate: f64,
        skew: f64,
        missing: &[(String, String, f64)],
        conventions: &[(String, String, String)],
    ) -> Summary {
        let mut errors: Vec<ErrorCount> = hour
            .errors
            .iter()
            .map(|(code, n)| ErrorCount {
                code: code.clone(),
                name: hour
                    .names
                    .get(code)
                    .cloned()
                    .unwrap_or_else(|| label_name(code).into_owned()),
                requests: *n,
            })
            .collect();
        most_first(&mut errors);
        let mut warnings = Vec::new();
        if skew.abs() > SKEW_WARNING_SECONDS {
            let side = if skew > 0.0 { "ahead of" } else { "behind" };
            warnings.push((
                Level::Warning,
                format!(
                    "this host's clock is {:.0} s {side} the gateway's (stat.systime); the gateway refuses requests whose _timestamp is too far off (code 16 TIMESTAMP_OVERTIME): synchronise the clock (NTP)",
                    skew.abs()
                ),
            ));
        }
        if configured_rate > 0.0 && rate_limit > 0.0 && rate_limit < configured_rate {
            warnings.push((
                Level::Warning,
                format!("the request rate is lowered to {rate_limit:.2}/s (configured {configured_rate}/s) after -100 API_CALL_REPEAT answers"),
            ));
        }
        for (method, field, rows) in missing.iter().filter(|(_, _, rows)| *rows > 0.0) {
            let method = match method.as_str() {
                METHOD_SHOPS => "shops",
                METHOD_DEVICES => "devices",
                other => other,
            };
            if VITAL_FIELDS.contains(&field.as_str()) {
                warnings.push((
                    Level::Warning,
                    format!("{rows:.0} rows of the last {method} answer lacked {field}, a field the exporter reads: the gateway may have renamed it; run `opretail-exporter doctor`"),
                ));
            } else {
                warnings.push((
                    Level::Note,
                    format!("{rows:.0} rows of the last {method} answer lacked {field} (normal for shops or devices without such a counter)"),
                ));
            }
        }
        for (setting, value, _) in conventions.iter().filter(|(_, _, s)| s == "assumed") {
            warnings.push((
                Level::Note,
                format!("gateway.{setting} is auto and not decided from the answers yet: {value} is assumed"),
            ));
        }
        warnings.sort_by_key(|(level, _)| *level);
        Summary {
            requests: hour.requests,
            errors,
            rate_limit,
            configured_rate,
            warnings,
        }
    }

    /// The summaries of several accounts (name, summary) as one: requests and errors summed per
    /// code, each account's warnings after its name (warnings of all first, then notes), and
    /// the rates summed (what the exporter may ask of the gateway in all; each account's own
    /// rate is shown beside it, not this).
    pub(crate) fn merged(accounts: &[(&str, &Summary)]) -> Summary {
        let mut by_code: Vec<ErrorCount> = Vec::new();
        for e in accounts.iter().flat_map(|(_, s)| &s.errors) {
            match by_code.iter_mut().find(|c| c.code == e.code) {
                Some(c) => c.requests += e.requests,
                None => by_code.push(e.clone()),
            }
        }
        most_first(&mut by_code);
        let mut warnings: Vec<(Level, String)> = accounts
            .iter()
            .flat_map(|(name, s)| {
                s.warnings
                    .iter()
                    .map(move |(level, text)| (*level, format!("{name}: {text}")))
            })
            .collect();
        warnings.sort_by_key(|(level, _)| *level);
        Summary {
            requests: accounts.iter().map(|(_, s)| s.requests).sum(),
            errors: by_code,
            rate_limit: accounts.iter().map(|(_, s)| s.rate_limit).sum(),
            configured_rate: accounts.iter().map(|(_, s)| s.configured_rate).sum(),
            warnings,
        }
    }

    /// Failed requests of the last hour.
    pub(crate) fn failed(&self) -> u64 {
        self.errors.iter().map(|e| e.requests).sum()
    }
}

/// Orders error counts as the summary shows them: most requests first, then by code.
fn most_first(errors: &mut [ErrorCount]) {
    errors.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.code.cmp(&b.code)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_named_and_warnings_come_first() {
        let mut hour = LastHour {
            requests: 30,
            ..LastHour::default()
        };
        hour.errors.insert("7".into(), 2);
        hour.errors.insert("http_502".into(), 5);
        hour.errors.insert("400003".into(), 1);
        hour.names.insert("400003".into(), "ID_NOT_ALLOWED".into());
        let missing = [
            (METHOD_SHOPS.to_string(), "dressingRate".to_string(), 4.0),
            (METHOD_SHOPS.to_string(), "passengerFlow".to_string(), 12.0),
            (METHOD_DEVICES.to_string(), "time".to_string(), 0.0),
        ];
        let conventions = [
            ("rate_scale".to_string(), "percent".to_string(), "detected".to_string()),
            ("row_time".to_string(), "start".to_string(), "assumed".to_string()),
        ];
        let s = Summary::from_parts(hour, 2.5, 5.0, -187.0, &missing, &conventions);
        assert_eq!((s.requests, s.failed()), (30, 8));
        assert_eq!(s.errors[0].name, "HTTP 502 Bad Gateway");
        assert_eq!(
            (s.errors[1].code.as_str(), s.errors[1].name.as_str()),
            ("7", "SIGN_WRONG")
        );
        assert_eq!(
            (s.errors[2].code.as_str(), s.errors[2].name.as_str()),
            ("400003", "ID_NOT_ALLOWED"),
            "an undocumented code by the gateway's own name"
        );
        let levels: Vec<Level> = s.warnings.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            levels,
            [Level::Warning, Level::Warning, Level::Warning, Level::Note, Level::Note]
        );
        let text = s
            .warnings
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("187 s behind"), "{text}");
        assert!(text.contains("lowered to 2.50/s"), "{text}");
        assert!(
            text.contains("12 rows of the last shops answer lacked passengerFlow"),
            "{text}"
        );
        assert!(text.contains("lacked dressingRate (normal"), "{text}");
        assert!(text.contains("gateway.row_time is auto"), "{text}");
        assert!(!text.contains("rate_scale"), "a detected convention is no news: {text}");
        let quiet = Summary::from_parts(LastHour::default(), 5.0, 5.0, 3.0, &[], &[]);
        assert!(quiet.warnings.is_empty() && quiet.errors.is_empty());
    }

    #[test]
    fn merged_summaries_sum_per_code_and_name_each_accounts_warnings() {
        let mut a = LastHour {
            requests: 30,
            ..LastHour::default()
        };
        a.errors.insert("7".into(), 2);
        a.errors.insert("http_502".into(), 1);
        let mut b = LastHour {
            requests: 10,
            ..LastHour::default()
        };
        b.errors.insert("7".into(), 4);
        b.errors.insert("-100".into(), 3);
        let conventions = [("row_time".to_string(), "start".to_string(), "assumed".to_string())];
        let a = Summary::from_parts(a, 5.0, 5.0, 0.0, &[], &conventions);
        let b = Summary::from_parts(b, 2.5, 5.0, 200.0, &[], &[]);
        let m = Summary::merged(&[("brand-a", &a), ("b.2", &b)]);
        assert_eq!((m.requests, m.failed()), (40, 10));
        let errors: Vec<(&str, u64)> = m.errors.iter().map(|e| (e.code.as_str(), e.requests)).collect();
        assert_eq!(errors, [("7", 6), ("-100", 3), ("http_502", 1)]);
        assert_eq!(m.errors[0].name, "SIGN_WRONG");
        let warnings: Vec<(Level, &str)> = m.warnings.iter().map(|(l, t)| (*l, t.as_str())).collect();
        assert_eq!(warnings.len(), 3);
        assert!(
            warnings[0].1.starts_with("b.2: this host's clock is 200 s ahead"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].1.starts_with("b.2: the request rate is lowered to 2.50/s"),
            "{warnings:?}"
        );
        assert_eq!(warnings[2].0, Level::Note);
        assert!(
            warnings[2].1.starts_with("brand-a: gateway.row_time is auto"),
            "{warnings:?}"
        );
        assert_eq!((m.rate_limit, m.configured_rate), (7.5, 10.0));
    }
}
