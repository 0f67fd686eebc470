//! The exporter's own status, for the people on call: how the last poll of every configured
//! target went and why a failing one fails, and the gateway's last hour. It feeds the status
//! page (`GET /`, server-rendered HTML) and its JSON twin (`GET /api/v1/targets`).
//!
//! The poller hands each round's outcome to the [`StatusBoard`] (one record per configured
//! target, so memory follows the configuration), which keeps the rows sorted, failing targets
//! first, so that a page of 30,000 targets is a filter and a slice, not a sort. The values
//! shown (latest hour, today) are read from the newest snapshot, shared with the poller, never
//! copied. The gateway's side (requests and errors of the last hour, the rate limit, clock
//! skew, missing fields, conventions) is read from the API metrics the client records into.
//!
//! With named accounts, each account has its board and its gateway figures. A request without
//! `account=` (or with an empty one: names are never empty) shows all accounts merged: every
//! row with its account, failing rows of every account first (the board's order, ties in the
//! configuration's order of the accounts), filtered and paged over the merged rows by a lazy
//! merge of the boards' sorted rows; its summary adds the accounts up and lists each one's own
//! rate limit and last hour, and each account's warnings after its name. `account=NAME` shows
//! that account alone, its rows labelled with it. Either links to "All accounts" and to every
//! account. The single-account form shows what it always did (an `account=` is refused).
//!
//! Inside: `recent` (the last hour of requests, per minute), `board` (the records and the
//! sorted rows), `query` (filter and paging of a request), `summary` (the gateway's last hour,
//! the rate limit and the warnings, and several accounts' merged), `view` (what a request
//! shows: one account's rows, or all accounts' merged, with the summary's figures), `page`
//! (the HTML, every vendor string escaped), `json` (the API).

mod board;
mod json;
mod page;
mod query;
mod recent;
mod summary;
mod view;

use std::sync::Arc;

pub(crate) use board::{RoundResult, RoundSeen, StatusBoard};
pub(crate) use json::render_json_frame;
pub(crate) use page::render_page_frame;
pub(crate) use query::Query;
pub(crate) use recent::RecentCalls;
pub(crate) use summary::Summary;
pub(crate) use view::Frame;

use view::Part;

use crate::client::{sanitize, ApiError};
use crate::metrics::ApiMetrics;

/// One account's status: its board and the gateway-call figures of its client.
pub(crate) struct AccountStatus {
    /// `None` in the single-account form.
    pub(crate) name: Option<String>,
    pub(crate) board: Arc<StatusBoard>,
    pub(crate) api: ApiMetrics,
}

/// The accounts the exporter polls now, in the order of the configuration.
pub(crate) trait StatusSource: Send + Sync {
    fn statuses(&self) -> Vec<AccountStatus>;
}

/// Which account a request shows, among which (named accounts only).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AccountView<'a> {
    /// `None`: all accounts merged.
    pub(crate) shown: Option<&'a str>,
    pub(crate) all: &'a [String],
}

/// What a request shows.
pub(crate) enum Pick {
    /// One account (the single-account form's, or the one `account=` names), and the names of
    /// all (none in the single-account form).
    One(AccountStatus, Vec<String>),
    /// All named accounts merged, in the configuration's order, and their names.
    All(Vec<AccountStatus>, Vec<String>),
}

/// What `query` asks for among `statuses`: with named accounts, the one `account=` names, or
/// all of them when it names none (absent or empty); in the single-account form its one
/// account (an `account=` naming one is an error). An error text when it names an account
/// there is not.
pub(crate) fn pick_account(statuses: Vec<AccountStatus>, query: &Query) -> Result<Pick, String> {
    let names: Vec<String> = statuses.iter().filter_map(|s| s.name.clone()).collect();
    let wanted = query.account.as_str();
    if wanted.is_empty() && !names.is_empty() {
        return Ok(Pick::All(statuses, names));
    }
    let mut statuses = statuses.into_iter();
    let found = if wanted.is_empty() {
        statuses.next()
    } else {
        statuses.find(|s| s.name.as_deref() == Some(wanted))
    };
    match found {
        Some(status) => Ok(Pick::One(status, names)),
        None if names.is_empty() => Err("account: the exporter polls a single unnamed account".to_string()),
        None => Err(format!(
            "account: there is no account {wanted:?} (the accounts are {})",
            names.join(", ")
        )),
    }
}

/// What a request of the status page or API shows, rendered by `render` (the page or the
/// JSON) from the frame of the account(s) `pick` chose.
pub(crate) fn show<T>(pick: Pick, query: &Query, render: impl FnOnce(&Frame<'_>) -> T) -> T {
    match pick {
        Pick::One(account, names) => {
            let table = account.board.table();
            let summary = Summary::of(&account.api, &table);
            let view = account.name.as_deref().map(|shown| AccountView {
                shown: Some(shown),
                all: &names,
            });
            let part = [Part {
                name: account.name.as_deref(),
                table: &table,
                summary: &summary,
            }];
            let board = &account.board;
            render(&Frame::one(&part, query, board.now(), board.next_poll(), view))
        }
        Pick::All(accounts, names) => {
            let tables: Vec<Arc<board::Table>> = accounts.iter().map(|a| a.board.table()).collect();
            let summaries: Vec<Summary> = accounts
                .iter()
                .zip(&tables)
                .map(|(a, t)| Summary::of(&a.api, t))
                .collect();
            let parts: Vec<Part<'_>> = accounts
                .iter()
                .zip(tables.iter().zip(&summaries))
                .map(|(a, (table, summary))| Part {
                    name: a.name.as_deref(),
                    table,
                    summary,
                })
                .collect();
            let now = accounts.first().map_or(0.0, |a| a.board.now());
            let next_poll = accounts
                .iter()
                .filter_map(|a| a.board.next_poll())
                .min_by(f64::total_cmp);
            render(&Frame::all(&parts, &names, query, now, next_poll))
        }
    }
}

/// Vendor text (an error's message) is cut to this many characters: a record per target must
/// stay small at 30,000 targets.
const MAX_MESSAGE_CHARS: usize = 200;

/// What a configured target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Shop,
    Organisation,
    Device,
}

impl Kind {
    /// `S_…` a shop, `O_…` an organisation, anything else a device's mac.
    pub(crate) fn of(target: &str) -> Kind {
        if target.starts_with("S_") {
            Kind::Shop
        } else if target.starts_with("O_") {
            Kind::Organisation
        } else {
            Kind::Device
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Shop => "shop",
            Kind::Organisation => "organisation",
            Kind::Device => "device",
        }
    }
}

/// Why the last failed poll of a target failed. Every text in it is shown through
/// [`sanitize`] already (and is escaped again for HTML where it is shown); no secret is ever
/// in an [`ApiError`]'s text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TargetError {
    /// The label of `opretail_api_errors_total` (`7`, `http_502`, `timeout`, …), or `no_data`
    /// when the call answered without the target's shop.
    pub(crate) code: String,
    /// The gateway's name of the code, or what the label stands for.
    pub(crate) name: String,
    /// The gateway's `result` text, or the error's own text.
    pub(crate) message: String,
    /// The gateway's `stat.cid` of the failed call; empty when the answer had none.
    pub(crate) cid: String,
    /// Unix seconds of the round that met it.
    pub(crate) at: f64,
}

impl TargetError {
    /// The record of `e`, met by the round at `at`.
    pub(crate) fn of(e: &ApiError, at: f64) -> TargetError {
        let (message, cid) = match e {
            ApiError::Gateway { message, cid, .. } => (sanitize(message).into_owned(), sanitize(cid).into_owned()),
            other => (other.to_string(), String::new()),
        };
        TargetError {
            code: e.code(),
            name: e.code_name().into_owned(),
            message: cut(message, MAX_MESSAGE_CHARS),
            cid: cut(cid, MAX_MESSAGE_CHARS),
            at,
        }
    }

    /// A call that answered, but without this shop.
    pub(crate) fn no_data(at: f64) -> TargetError {
        TargetError {
            code: "no_data".into(),
            name: "no data".into(),
            message: "the gateway's answer had no data for this shop".into(),
            cid: String::new(),
            at,
        }
    }
}

/// `s` cut to at most `max` characters (an ellipsis marks a cut).
fn cut(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s,
    }
}

/// What one shared error is held as: a batch of 50 shops failing together holds it once.
pub(crate) type SharedError = Arc<TargetError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_record_keeps_code_name_message_and_cid_sanitised_and_short() {
        let e = ApiError::Gateway {
            method: "m".into(),
            code: 7,
            codename: String::new(),
            message: format!("bad\nsig {}", "x".repeat(500)),
            cid: "c-1\x1b".into(),
        };
        let r = TargetError::of(&e, 5.0);
        assert_eq!((r.code.as_str(), r.name.as_str()), ("7", "SIGN_WRONG"));
        assert!(r.message.starts_with(r"bad\nsig xxx"), "{}", r.message);
        assert_eq!(r.message.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(r.cid, r"c-1\u{1b}");
        let t = TargetError::of(
            &ApiError::Http {
                method: "m".into(),
                status: 502,
            },
            5.0,
        );
        assert_eq!(
            (t.code.as_str(), t.name.as_str(), t.cid.as_str()),
            ("http_502", "HTTP 502 Bad Gateway", "")
        );
        assert!(t.message.contains("HTTP 502"));
        assert_eq!(Kind::of("S_1"), Kind::Shop);
        assert_eq!(Kind::of("O_1"), Kind::Organisation);
        assert_eq!(Kind::of("d47c44906f01"), Kind::Device);
    }
}
